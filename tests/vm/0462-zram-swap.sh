#!/bin/sh
# Swap on a tracked zram device: on 6.1 swap-out reaches zram through
# bdev_write_page() and ->rw_page (no bio: the kretprobe marks it, as for
# brd in 0460); on 6.12 as bios, which zram ends itself (block_bio_complete).
# A memory cgroup too small for a tmpfs file of random data pushes its pages
# out; the map must hold exactly the device's non-zero blocks (zram reads
# back zeros where nothing was written; the swap header, written before the
# attach, excepted).
. /blktrack/tests/vm/lib/testlib.sh
CG=/sys/fs/cgroup
cleanup_zram() {
	[ -d "$BT_TMP/fill" ] && rm -rf "$BT_TMP/fill"
	swapoff /dev/zram0 2>/dev/null
	rmdir $CG/bttest 2>/dev/null
	cleanup_all
	rmmod zram 2>/dev/null
}
trap cleanup_zram EXIT
NONZERO=$BT_TOP/build/vmprogs/nonzero

# 6.1's default compressor is a module the kernel cannot load here.
grep -q "/lzo-rle.ko " /etc/blktrack-extra-modules && load_kmod lzo-rle
load_kmod zram num_devices=1
dev=/dev/zram0
[ -b $dev ] || fail "no $dev"
echo 128M >/sys/block/zram0/disksize || fail "cannot size $dev"
run mkswap $dev
bt attach $dev
run swapon $dev
grep -q " $CG cgroup2 " /proc/mounts || run mount -t cgroup2 none $CG
echo +memory >$CG/cgroup.subtree_control || fail "no memory controller"
run mkdir $CG/bttest
echo 16M >$CG/bttest/memory.max
# fill FILE MIB: random data into tmpfs from inside the cgroup.
fill() {
	sh -c "echo \$\$ >$CG/bttest/cgroup.procs &&
		exec dd if=/dev/urandom of=$1 bs=1M count=$2 status=none" ||
		fail "the fill failed"
}
pswpout() {
	awk '$1 == "pswpout" { print $2 }' /proc/vmstat
}
out0=$(pswpout)
mkdir -p "$BT_TMP/fill"
echo "+ 40 MiB of random data into tmpfs, in a cgroup of 16 MiB"
fill "$BT_TMP/fill/a" 40
out=$(($(pswpout) - out0))
[ "$out" -gt 256 ] || fail "only $out pages swapped out: the test proves nothing"
ok "$out pages swapped out to $dev"
bt checkpoint $dev
expect_clear
"$NONZERO" $dev 4096 4096 >"$(expect_file)" || fail "nonzero failed"
check_changes $dev 4096 --pending
bt commit $dev
rm -rf "$BT_TMP/fill"
run swapoff $dev
assert_status $dev state tracking
bt detach $dev
check_no_leak

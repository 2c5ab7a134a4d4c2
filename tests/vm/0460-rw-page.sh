#!/bin/sh
# Writes that never become a bio: on 6.1, swap-out to a brd (and zram, pmem)
# goes through bdev_write_page() and the driver's ->rw_page, which no block
# tracepoint sees; the tracker's kretprobe on bdev_write_page() marks them.
# (6.12 has no ->rw_page: swap-out is bios.) A memory cgroup too small for
# a tmpfs file of random data pushes its pages out to a tracked brd swap
# device; the map must hold exactly the device's non-zero blocks (the swap
# header, written by mkswap before the attach, excepted). Twice, on a fresh
# brd each time: the kretprobe goes with the last volume detached, and the
# next attach must hook it again.
. /blktrack/tests/vm/lib/testlib.sh
CG=/sys/fs/cgroup
cleanup_swap() {
	[ -d "$BT_TMP/fill" ] && rm -rf "$BT_TMP/fill"
	swapoff /dev/ram0 2>/dev/null
	rmdir $CG/bttest 2>/dev/null
	cleanup_all
	rmmod brd 2>/dev/null
}
trap cleanup_swap EXIT
NONZERO=$BT_TOP/build/vmprogs/nonzero

round() {
	load_kmod brd rd_nr=1 rd_size=65536
	dev=/dev/ram0
	[ -b $dev ] || fail "no $dev"
	run mkswap $dev
	bt attach $dev
	run swapon $dev
	grep -q " $CG cgroup2 " /proc/mounts || run mount -t cgroup2 none $CG
	echo +memory >$CG/cgroup.subtree_control || fail "no memory controller"
	run mkdir $CG/bttest
	echo 16M >$CG/bttest/memory.max
	out0=$(awk '$1 == "pswpout" { print $2 }' /proc/vmstat)
	mkdir -p "$BT_TMP/fill"
	echo "+ 40 MiB of random data into tmpfs, in a cgroup of 16 MiB"
	sh -c "echo \$\$ >$CG/bttest/cgroup.procs &&
		exec dd if=/dev/urandom of=$BT_TMP/fill/data bs=1M count=40 status=none" ||
		fail "the fill failed"
	out=$(($(awk '$1 == "pswpout" { print $2 }' /proc/vmstat) - out0))
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
}

round
run rmdir $CG/bttest
run rmmod brd
round
check_no_leak

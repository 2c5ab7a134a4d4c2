#!/bin/sh
# vm-append: memmap=128M!768M
# pmem (an e820 region from memmap= on the command line: a raw namespace,
# DAX-capable) and DAX. A filesystem mounted with -o dax stores file data
# to the disk's memory with the CPU: no bio, nothing a probe can see (the
# test shows that first, from the disk's own write statistics). So the
# attach of a DAX-capable disk, and of a dm device stacked on one, is
# refused with a message that says why (EOPNOTSUPP). The same pmem as a
# sector-mode (btt) namespace has no DAX: it is tracked, and swap-out to it
# (6.1: ->rw_page, no bio) and buffered writes are exactly in the map.
. /blktrack/tests/vm/lib/testlib.sh
ND=/sys/bus/nd/devices
cleanup_pmem() {
	swap_cleanup /dev/pmem0s
	umount "$BT_TMP/mnt" 2>/dev/null
	dmsetup remove btpmem 2>/dev/null
	cleanup_all
}
trap cleanup_pmem EXIT
NONZERO=$BT_TOP/build/vmprogs/nonzero

load_kmod nd_e820
load_kmod nd_pmem
load_kmod nd_btt
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -b /dev/pmem0 ] || fail "no /dev/pmem0 (memmap= on the command line?)"
assert_eq "/dev/pmem0 queue/dax" "$(cat /sys/block/pmem0/queue/dax)" 1

echo "# ---- a dax mount writes file data without a bio"
run mkfs_ext4 -q -F -b 4096 /dev/pmem0
mkdir -p "$BT_TMP/mnt"
run mount -o dax /dev/pmem0 "$BT_TMP/mnt"
grep " $BT_TMP/mnt " /proc/mounts | grep -q dax || fail "not mounted with dax"
# /sys/block/*/stat field 7: sectors written through the block layer.
wsect() {
	awk '{ print $7 }' /sys/block/pmem0/stat
}
run sync
w0=$(wsect)
run dd if=/dev/urandom of="$BT_TMP/mnt/f" bs=1M count=16 conv=fsync status=none
run sync
w=$(($(wsect) - w0))
echo "# 16 MiB written to a file, $((w / 2)) KiB of it through the block layer"
[ $((w / 2)) -lt 4096 ] || fail "the dax mount's data went through bios: the test proves nothing"
ok "a dax mount's data bypasses the block layer"

echo "# ---- the attach of a DAX-capable disk is refused, and says why"
echo "+ blktrack attach /dev/pmem0 (must fail)"
if blktrack attach /dev/pmem0 >"$BT_TMP/out" 2>&1; then
	# Show what it would lose: a dax mount's file data is in no map.
	run dd if=/dev/urandom of="$BT_TMP/mnt/f" bs=1M count=16 conv=notrunc,fsync status=none
	run sync
	bt checkpoint /dev/pmem0
	n=$(blktrack changes /dev/pmem0 --pending | awk '{ n += $2 } END { print n / 1048576 }')
	fail "attach succeeded: 16 MiB rewritten through the dax mount, $n MiB of changes in the map"
fi
cat "$BT_TMP/out"
grep -q "DAX" "$BT_TMP/out" || fail "the refusal does not say DAX"
attached | grep -q pmem0 && fail "/dev/pmem0 attached"
# The ioctl itself: exactly EOPNOTSUPP, nothing changed.
"$BT_TOP/build/vmprogs/ioctl-errno" --attach-refused /dev/pmem0 ||
	fail "ATTACH of /dev/pmem0 did not fail EOPNOTSUPP alone"
run umount "$BT_TMP/mnt"
# A dm device over it is DAX-capable too (a dax mount of it stores to pmem).
run dmsetup create btpmem --table "0 $(blockdev --getsz /dev/pmem0) linear /dev/pmem0 0"
dm=dm-$(dmsetup info -c --noheadings -o minor btpmem)
if [ "$(cat /sys/block/$dm/queue/dax)" = 1 ]; then
	echo "+ blktrack attach /dev/mapper/btpmem (must fail)"
	blktrack attach /dev/mapper/btpmem >"$BT_TMP/out" 2>&1 &&
		{ cat "$BT_TMP/out"; fail "attach of a DAX-capable dm device succeeded"; }
	cat "$BT_TMP/out"
	grep -q "DAX" "$BT_TMP/out" || fail "the refusal does not say DAX"
	ok "a dm device over DAX-capable pmem is refused"
else
	echo "# $dm over pmem is not DAX-capable on this kernel"
fi
run dmsetup remove btpmem
dmesg | grep "DAX-capable" || fail "no kernel message says why"

echo "# ---- the same pmem in sector mode (btt): tracked"
ns=$(basename "$(readlink -f /sys/block/pmem0/device)")
region=$(basename "$(readlink -f $ND/$ns/..)")
btt=$(cat $ND/$region/btt_seed)
[ -n "$btt" ] || fail "no btt seed in $region"
echo "+ $ns -> $btt (sector mode, 4096-byte sectors)"
echo "$ns" >/sys/bus/nd/drivers/nd_pmem/unbind || fail "cannot unbind $ns"
echo "$ns" >$ND/$btt/namespace || fail "cannot give $ns to $btt"
echo 4096 >$ND/$btt/sector_size || fail "sector_size"
cat /proc/sys/kernel/random/uuid >$ND/$btt/uuid || fail "uuid"
echo "$btt" >/sys/bus/nd/drivers_probe || fail "cannot probe $btt"
dev=/dev/pmem0s
i=0
while [ ! -b $dev ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -b $dev ] || fail "no $dev"
assert_eq "$dev queue/dax" "$(cat /sys/block/pmem0s/queue/dax)" 0
# The file system written above is still in the data area: zero it.
run dd if=/dev/zero of=$dev bs=4096 count=$(($(blockdev --getsize64 $dev) / 4096)) status=none
run mkswap $dev
[ -z "$("$NONZERO" $dev 4096 4096)" ] || fail "$dev is not zero past its swap header"
bt attach $dev
swap_out_check $dev
bt checkpoint $dev
bt commit $dev

echo "# ---- buffered writes through the page cache"
expect_clear
for b in 3 4 9 200 201 202 5000; do
	write_at $dev $((b * 4096)) 4096
	expect_write $((b * 4096)) 4096
done
run sync
bt checkpoint $dev
check_changes $dev 4096 --pending
bt commit $dev
assert_status $dev state tracking
bt detach $dev
check_no_leak

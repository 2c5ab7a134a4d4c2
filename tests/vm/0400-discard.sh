#!/bin/sh
# Reads and flushes mark nothing; DISCARD and WRITE_ZEROES (blkdiscard,
# blkdiscard -z, fallocate --zero-range/--punch-hole) mark what they cover,
# on a loop device and on a virtio partition.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

setup_disk
loop=$(make_loop 32)
sync

for dev in "$loop" /dev/vda1; do
	name=${dev##*/}
	echo "# ---- $dev"
	bt attach "$dev"
	# Reads (buffered and O_DIRECT) and flushes.
	run dd if="$dev" of=/dev/null bs=65536 count=64 status=none
	run dd if="$dev" of=/dev/null bs=4096 skip=100 count=16 iflag=direct status=none
	run sync
	run blockdev --flushbufs "$dev"
	run dd if=/dev/null of="$dev" conv=notrunc,fsync status=none	# fsync: a flush
	run sync
	check_empty "$dev" --active
	assert_status "$dev" active_dirty 0

	expect_clear "$name"
	disc=$(cat /sys/block/${name%%[0-9]*}/queue/discard_max_bytes 2>/dev/null || echo 0)
	case $name in loop*) disc=$(cat /sys/block/$name/queue/discard_max_bytes) ;; esac
	if [ "$disc" -gt 0 ]; then
		run blkdiscard -o 65536 -l 131072 "$dev"
		expect_write 65536 131072 "$name"
		run blkdiscard -o $((8 << 20)) -l 4096 "$dev"
		expect_write $((8 << 20)) 4096 "$name"
	else
		echo "# $dev does not support discard: discard part skipped"
	fi
	run blkdiscard -z -o $((1 << 20)) -l 12288 "$dev"
	expect_write $((1 << 20)) 12288 "$name"
	run blkdiscard -z -o $((3 << 20)) -l $((1 << 20)) "$dev"
	expect_write $((3 << 20)) $((1 << 20)) "$name"
	echo "+ fallocate --zero-range -o 5 MiB -l 8 KiB $dev"
	if fallocate --zero-range -o $((5 << 20)) -l 8192 "$dev"; then
		expect_write $((5 << 20)) 8192 "$name"
	else
		echo "# fallocate --zero-range on $dev unsupported: skipped"
	fi
	echo "+ fallocate --punch-hole -o 6 MiB -l 4 KiB $dev"
	if fallocate --punch-hole --keep-size -o $((6 << 20)) -l 4096 "$dev"; then
		expect_write $((6 << 20)) 4096 "$name"
	else
		echo "# fallocate --punch-hole on $dev unsupported: skipped"
	fi
	run sync
	bt checkpoint "$dev"
	check_changes "$dev" 4096 --pending "$name"
	bt commit "$dev"
	bt detach "$dev"
done
check_no_leak

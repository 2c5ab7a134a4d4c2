#!/bin/sh
# Writes through the whole disk count for a tracked partition where they
# overlap it, at partition-relative offsets; the whole disk itself can be
# tracked beside its partitions.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

setup_disk
sync
bt attach /dev/vda1
bt attach /dev/vda2
bt attach /dev/vda

# disk_write OFFSET LEN [DD-FLAGS]: write through /dev/vda, expect it on the
# disk and on the partitions it overlaps, clipped, partition-relative.
disk_write() {
	local off=$1 len=$2 end s e
	shift 2
	write_at /dev/vda "$off" "$len" "$@"
	expect_write "$off" "$len" vda
	end=$((off + len))
	s=$((off > P1_START ? off : P1_START))
	e=$((end < P2_START ? end : P2_START))
	[ $s -lt $e ] && expect_write $((s - P1_START)) $((e - s)) vda1
	s=$((off > P2_START ? off : P2_START))
	[ $s -lt $end ] && expect_write $((s - P2_START)) $((end - s)) vda2
	return 0
}

expect_clear vda
expect_clear vda1
expect_clear vda2
disk_write $((P1_START + 12288)) 4096 oflag=direct	# inside p1
disk_write $((P1_START - 4096)) 8192 oflag=direct	# straddles p1's start
disk_write $((P2_START - 4096)) 8192 oflag=direct	# straddles p1's end into p2
disk_write 32768 4096 oflag=direct			# before p1: disk only
disk_write $((P2_START + 1048576)) 4096 oflag=direct	# inside p2
disk_write $((P1_START + 100000)) 50			# buffered, inside p1
disk_write $((P1_START + 30000000)) 70000 conv=fsync	# buffered, inside p1
# Writes through the partitions show on the disk at absolute offsets.
write_direct /dev/vda1 $((20 << 20)) 4096
expect_write $((20 << 20)) 4096 vda1
expect_write $((P1_START + (20 << 20))) 4096 vda
write_at /dev/vda2 777 1
expect_write 777 1 vda2
expect_write $((P2_START + 777)) 1 vda
run sync

bt checkpoint /dev/vda1 /dev/vda2 /dev/vda
check_changes /dev/vda1 4096 --pending vda1
check_changes /dev/vda2 4096 --pending vda2
check_changes /dev/vda 4096 --pending vda
for d in /dev/vda1 /dev/vda2 /dev/vda; do
	bt commit $d
	bt detach $d
done
check_no_leak

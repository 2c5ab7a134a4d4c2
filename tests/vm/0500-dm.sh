#!/bin/sh
# A dm-linear stacked on a tracked partition: its writes show on the
# partition at the mapped offsets; the dm device itself can be tracked.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

setup_disk
sync
DM_OFF=$((3 << 20))		# the dm device starts 3 MiB into vda1
DM_SIZE=$((16 << 20))
run dmsetup create bt-lin --table "0 $((DM_SIZE / 512)) linear /dev/vda1 $((DM_OFF / 512))"
dm=/dev/mapper/bt-lin
[ -b $dm ] || fail "$dm did not appear"
assert_eq "size of $dm" "$(blockdev --getsize64 $dm)" $DM_SIZE

bt attach /dev/vda1
bt attach $dm
expect_clear vda1
expect_clear dm

# dm_write OFFSET LEN [DD-FLAGS]: through the dm device.
dm_write() {
	local off=$1 len=$2
	shift 2
	write_at $dm "$off" "$len" "$@"
	expect_write "$off" "$len" dm
	expect_write $((DM_OFF + off)) "$len" vda1
}
dm_write 0 4096 oflag=direct
dm_write 123456 1000
dm_write $((DM_SIZE - 8192)) 8192 oflag=direct
dm_write $((5 << 20)) 300000 conv=fsync
# Below the dm device, on the partition only.
write_direct /dev/vda1 $((DM_OFF + 65536)) 4096
expect_write $((DM_OFF + 65536)) 4096 vda1
write_direct /dev/vda1 4096 4096
expect_write 4096 4096 vda1
run sync

bt checkpoint /dev/vda1 $dm
check_changes /dev/vda1 4096 --pending vda1
check_changes $dm 4096 --pending dm
bt commit /dev/vda1
bt commit $dm

# The dm device tracked alone, at 64 KiB.
bt detach /dev/vda1
bt detach $dm
bt attach $dm --block-size 65536
expect_clear dm
dm_write 70000 10 oflag=sync
dm_write $((10 << 20)) 131072 oflag=direct
run sync
bt checkpoint $dm
check_changes $dm 65536 --pending dm
bt abort $dm
bt detach $dm
run dmsetup remove bt-lin
check_no_leak

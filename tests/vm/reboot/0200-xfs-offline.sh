#!/bin/sh
# XFS across reboots: /dev/vda2 (XFS, tracked), repository and state on ext4
# /dev/vda1. Boot by boot:
#  1  full backup, writes, unmount, detach --save (clean), power off
#  2  attach --restore-state: loaded (the XFS fingerprint, superblock and
#     log, is unchanged), an incremental of what changed since; unmount,
#     detach --save, power off
#  3  "another system" mounts the XFS read-write untracked and writes
#  4  the fingerprint changed: offline-change, resync; every point restores;
#     clean save, power off; the host changes the XFS label (xfs_db,
#     tests/vm/reboot/host-xfs-write.sh)
#  5  offline-change again, resync, every point restores
. /blktrack/tests/vm/lib/testlib.sh
boot=${BT_BOOT:?run by tests/vm/reboot.sh}
BT_VOL=/dev/vda2
mnt=/mnt/bt-xfs
smnt=/mnt/bt-state
SD=$smnt/state
R=$smnt/repo
IMG=/tmp/restore.img
mkdir -p $mnt $smnt
echo "# ---- boot $boot"
load_kmod xfs

if [ "$boot" = 1 ]; then
	setup_disk
	run mkfs_ext4 -q -F /dev/vda1
	run mkfs_xfs -q -f /dev/vda2
fi
state_volume_mount /dev/vda1

case $boot in
1)
	bt init --repo "$R"
	bt attach $BT_VOL
	run mount -t xfs $BT_VOL $mnt
	dd if=/dev/urandom of=$mnt/big bs=1M count=2 status=none || fail "write big"
	point p1
	assert_field p1 type full
	write_files a
	run umount $mnt
	bt detach $BT_VOL --save --state-dir $SD
	reboot_clean
	;;
2)
	attach_restore --state-dir $SD
	grep -q "saved history loaded" $BT_TMP/attach || fail "the clean XFS state was not loaded"
	run mount -t xfs $BT_VOL $mnt
	write_files b
	point p2
	assert_field p2 type incremental
	covered=$(jfield $BT_TMP/out.p2 covered_bytes)
	[ "$covered" -lt $((16 << 20)) ] ||
		fail "the incremental after a clean reboot covers $covered bytes"
	ok "the incremental after a clean reboot covers $covered bytes"
	run umount $mnt
	bt detach $BT_VOL --save --state-dir $SD
	reboot_clean
	;;
3)
	run rmmod blktrack
	run mount -t xfs $BT_VOL $mnt
	write_files offline
	run umount $mnt
	reboot_clean
	;;
4)
	attach_restore --state-dir $SD
	assert_status $BT_VOL reason offline-change
	run mount -t xfs $BT_VOL $mnt
	point p3
	assert_field p3 type resync
	restore_all
	run umount $mnt
	bt detach $BT_VOL --save --state-dir $SD
	echo "BLKTRACK-HOST-CMD xfs-write"
	reboot_clean
	;;
5)
	attach_restore --state-dir $SD
	assert_status $BT_VOL reason offline-change
	run mount -t xfs $BT_VOL $mnt
	point p4
	assert_field p4 type resync
	restore_all
	run umount $mnt
	bt detach $BT_VOL
	run umount $smnt
	check_no_leak
	;;
esac

#!/bin/sh
# Power cuts and reboots on one disk image (tests/vm/reboot.sh boots it again
# and again): ext4 on /dev/vda1 is tracked; the repository and the state
# directory are on ext4 /dev/vda2. Boot by boot:
#  1  full backup, writes, unmount, detach --save (clean), power off
#  2  attach --restore-state: the history goes on, the next backup is an
#     incremental of what was written since (not the volume), restored
#     bit-exactly; then the power is cut while writes run
#  3  the state is unclean (the load cleared its flag on disk): INVALID, the
#     backup resyncs, every point restores; then the power is cut during a
#     backup (a writer prints the marker at post-snapshot)
#  4  unclean again: resync; every point restores; clean save, power off
#  5  "another system" mounts /dev/vda1 read-write untracked and writes
#  6  the ext4 fingerprint changed: offline-change, resync, every point
#     restores; clean save, power off; the host writes a file into the image
#     (debugfs, tests/vm/reboot/host-ext4-write.sh)
#  7  offline-change again, resync, the host's file is there, every point
#     restores
. /blktrack/tests/vm/lib/testlib.sh
boot=${BT_BOOT:?run by tests/vm/reboot.sh}
mnt=/mnt/bt-rb
smnt=/mnt/bt-state
SD=$smnt/state
R=$smnt/repo
IMG=/tmp/restore.img
mkdir -p $mnt $smnt
echo "# ---- boot $boot"

if [ "$boot" = 1 ]; then
	setup_ext4 $mnt
	run mkfs_ext4 -q -F /dev/vda2
fi
state_volume_mount /dev/vda2

case $boot in
1)
	bt init --repo "$R"
	bt attach /dev/vda1
	point p1
	assert_field p1 type full
	write_files a
	run umount $mnt
	bt detach /dev/vda1 --save --state-dir $SD
	reboot_clean
	;;
2)
	attach_restore --state-dir $SD
	grep -q "saved history loaded" $BT_TMP/attach || fail "the clean state was not loaded"
	assert_status /dev/vda1 state tracking
	run mount -t ext4 /dev/vda1 $mnt
	write_files b
	point p2
	assert_field p2 type incremental
	assert_field p2 parent "$(cat $BT_TMP/id.p1)"
	covered=$(jfield $BT_TMP/out.p2 covered_bytes)
	[ "$covered" -lt $((8 << 20)) ] ||
		fail "the incremental after a clean reboot covers $covered bytes"
	ok "the incremental after a clean reboot covers $covered bytes of 64 MiB"
	restore_all
	echo "$POINTS" >$BT_TMP/points
	sync
	while :; do
		dd if=/dev/urandom of=$mnt/busy bs=64k count=16 conv=notrunc status=none
		sync
	done &
	sleep 3
	echo BLKTRACK-KILL-NOW
	sleep 600
	;;
3)
	attach_restore --state-dir $SD
	assert_status /dev/vda1 state invalid
	assert_status /dev/vda1 reason unclean
	run mount -t ext4 /dev/vda1 $mnt
	point p3
	assert_field p3 type resync
	restore_all
	echo "$POINTS" >$BT_TMP/points
	write_files c
	W=$BT_TMP/writers
	mkdir -p $W
	cat >$W/10-cut <<'WRITER'
#!/bin/sh
[ "$1" = post-snapshot ] || exit 0
echo BLKTRACK-KILL-NOW >/dev/console
sleep 600
WRITER
	chmod +x $W/10-cut
	sync
	echo "+ blktrack backup /dev/vda1 --repo $R --writers-dir $W (the power is cut in it)"
	blktrack backup /dev/vda1 --repo $R --writers-dir $W --writer-timeout 900
	fail "the backup returned ($?): the power cut did not happen"
	;;
4)
	rm -rf $BT_TMP/writers
	attach_restore --state-dir $SD
	assert_status /dev/vda1 reason unclean
	run mount -t ext4 /dev/vda1 $mnt
	point p4
	assert_field p4 type resync
	restore_all
	write_files d
	run umount $mnt
	bt detach /dev/vda1 --save --state-dir $SD
	reboot_clean
	;;
5)
	# Another system: no blktrack at all.
	run rmmod blktrack
	run mount -t ext4 /dev/vda1 $mnt
	write_files offline
	run umount $mnt
	reboot_clean
	;;
6)
	attach_restore --state-dir $SD
	assert_status /dev/vda1 reason offline-change
	run mount -t ext4 /dev/vda1 $mnt
	point p5
	assert_field p5 type resync
	restore_all
	run umount $mnt
	bt detach /dev/vda1 --save --state-dir $SD
	echo "BLKTRACK-HOST-CMD ext4-write"
	reboot_clean
	;;
7)
	attach_restore --state-dir $SD
	assert_status /dev/vda1 reason offline-change
	run mount -t ext4 /dev/vda1 $mnt
	[ -f $mnt/from-the-host ] || fail "the file the host wrote is not there"
	point p6
	assert_field p6 type resync
	restore_all
	run umount $mnt
	bt detach /dev/vda1
	run umount $smnt
	check_no_leak
	;;
esac

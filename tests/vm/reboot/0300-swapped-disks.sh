#!/bin/sh
# Two equal raw disks (no filesystem, no partition table: no UUID) swap
# names between boots; each keeps its own history, never the other's.
# /dev/vdb and /dev/vdc are the disks bt-disk-1 and bt-disk-2 (64 MiB each,
# serials set by tests/vm/reboot.sh); /dev/vda holds the repository and the
# state directory (ext4). Boot by boot:
#  1  attach both, a full backup of each, distinct writes to each, then a
#     RAM disk (brd: only a device number names it): save refused;
#     blktrack save both disks (clean), power off; the host swaps the disks
#  2  the serials moved (vdb is bt-disk-2 now); attach --restore-state each:
#     each gets its own history back (the blocks written to it, by serial),
#     the next backup is an incremental of its own full, every point
#     restores bit-exactly; the RAM disk (the same device number):
#     INVALID no-state, its next backup a new volume's full
#
# vm-extra-disks: 2
. /blktrack/tests/vm/lib/testlib.sh
boot=${BT_BOOT:?run by tests/vm/reboot.sh}
smnt=/mnt/bt-state
SD=$smnt/state
R=$smnt/repo
IMG=/tmp/restore.img
BS=4096
mkdir -p $smnt
echo "# ---- boot $boot"

if [ "$boot" = 1 ]; then
	[ -b /dev/vdc ] || fail "no /dev/vdc: run by tests/vm/reboot.sh with 2 extra disks"
	run mkfs_ext4 -q -F /dev/vda
fi
state_volume_mount /dev/vda

serial_of() {
	cat /sys/block/${1#/dev/}/serial
}

dev_sha() {
	dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}

# backup DEV NAME: back up DEV raw, record its id and sha256 under NAME.
backup() {
	dev_sha "$1" >"$BT_TMP/sha.$2"
	echo "+ blktrack backup $1 --repo $R --json"
	blktrack backup "$1" --repo "$R" --json >"$BT_TMP/out.$2" || fail "backup $2 exited $?"
	cat "$BT_TMP/out.$2"
	jfield "$BT_TMP/out.$2" backup >"$BT_TMP/id.$2"
	POINTS="$POINTS $2"
	ok "point $2: backup $(cat "$BT_TMP/id.$2"), $(jfield "$BT_TMP/out.$2" type), volume $(jfield "$BT_TMP/out.$2" volume_id)"
}

case $boot in
1)
	assert_eq "serial of vdb" "$(serial_of vdb)" bt-disk-1
	assert_eq "serial of vdc" "$(serial_of vdc)" bt-disk-2
	bt init --repo "$R"
	for d in vdb vdc; do
		s=$(serial_of $d)
		bt attach /dev/$d
		backup /dev/$d p1.$s
		assert_field p1.$s type full
		expect_clear $s
	done
	# Distinct blocks: 64 KiB at 1 MiB on bt-disk-1, 128 KiB at 8 MiB and
	# 4 KiB at 60 MiB on bt-disk-2.
	write_direct /dev/vdb $((1 << 20)) 65536
	expect_write $((1 << 20)) 65536 bt-disk-1
	write_direct /dev/vdc $((8 << 20)) 131072
	expect_write $((8 << 20)) 131072 bt-disk-2
	write_direct /dev/vdc $((60 << 20)) 4096
	expect_write $((60 << 20)) 4096 bt-disk-2
	check_changes /dev/vdb $BS --active bt-disk-1
	check_changes /dev/vdc $BS --active bt-disk-2

	# Nothing but a device number names a RAM disk: no saved state.
	load_kmod brd rd_nr=1 rd_size=16384
	ram=/dev/ram0
	bt attach "$ram"
	backup "$ram" p1.ram
	assert_field p1.ram type full
	write_direct "$ram" 0 4096
	# Checked in boot 2, after the disks (their histories are the point).
	echo "+ blktrack save --state-dir $SD $ram (must fail)"
	blktrack save --state-dir $SD "$ram" >$BT_TMP/save.ram 2>&1
	echo $? >$BT_TMP/save.ram.rc
	cat $BT_TMP/save.ram
	bt detach "$ram"

	bt save --state-dir $SD --json /dev/vdb /dev/vdc >$BT_TMP/save
	cat $BT_TMP/save
	assert_eq "clean saves" "$(grep -o '"clean": *true' $BT_TMP/save | wc -l)" 2
	ls -l $SD
	for d in vdb vdc; do
		bt detach /dev/$d
	done
	echo "BLKTRACK-SWAP-DISKS"
	reboot_clean
	;;
2)
	# The host listed the images the other way round: names moved, serials followed.
	assert_eq "serial of vdb after the swap" "$(serial_of vdb)" bt-disk-2
	assert_eq "serial of vdc after the swap" "$(serial_of vdc)" bt-disk-1
	for d in vdb vdc; do
		s=$(serial_of $d)
		BT_VOL=/dev/$d
		attach_restore --state-dir $SD
		grep -q "saved history loaded" $BT_TMP/attach ||
			fail "$d ($s): its own saved history was not loaded"
		assert_status /dev/$d state tracking
		# Its own blocks: another disk's history would differ here.
		check_changes /dev/$d $BS --active $s
		backup /dev/$d p2.$s
		assert_field p2.$s type incremental
		assert_field p1.$s volume_id "serial:$s"
		assert_field p2.$s volume_id "serial:$s"
		assert_field p2.$s parent "$(cat $BT_TMP/id.p1.$s)"
	done
	restore_all

	[ "$(cat $BT_TMP/save.ram.rc)" != 0 ] || fail "boot 1 saved a state under a device number"
	grep -q "no stable identity" $BT_TMP/save.ram || fail "the refusal does not say why"
	ok "a device-number volume's state was not saved"
	case $(jfield "$BT_TMP/out.p1.ram" volume_id) in
	devno:dev:1:0@boot-*) ok "a device-number volume id is for one boot only" ;;
	*) fail "the RAM disk's volume id is $(jfield "$BT_TMP/out.p1.ram" volume_id)" ;;
	esac

	load_kmod brd rd_nr=1 rd_size=16384
	ram=/dev/ram0
	BT_VOL=$ram
	attach_restore --state-dir $SD
	assert_status "$ram" state invalid
	assert_status "$ram" reason no-state
	grep -q "no stable identity" $BT_TMP/attach || fail "the INVALID does not say why"
	backup "$ram" p2.ram
	assert_field p2.ram type full
	[ "$(jfield "$BT_TMP/out.p2.ram" volume_id)" != "$(jfield "$BT_TMP/out.p1.ram" volume_id)" ] ||
		fail "the RAM disk after a reboot is the same repository volume"
	ok "the RAM disk after a reboot is a new repository volume"
	restore_point p2.ram
	bt detach "$ram"
	for d in vdb vdc; do
		bt detach /dev/$d
	done
	run umount $smnt
	check_no_leak
	;;
esac

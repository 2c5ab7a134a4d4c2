#!/bin/sh
# Tracking across a "reboot" (the module unloaded and loaded again: the
# kernel's maps are gone, the disk stays), ext4 on /dev/vda1:
#  - clean: unmounted, detach --save (state on /dev/vda2), reload, attach
#    --restore-state: the same stamps go on, the next backup is an
#    incremental and restores bit-exactly;
#  - no save (a crash): INVALID "unclean" (the load cleared the clean flag),
#    the next backup resyncs; the first commit makes the volume valid again;
#  - no state file: INVALID "no-state";
#  - written while not tracked (mounted rw between save and attach): INVALID
#    "offline-change" (the ext4 fingerprint), resync;
#  - the state directory on the tracked volume itself: saved normally while
#    read-write (not clean), in place through the block device once
#    read-only (clean); the incremental after the reload holds the state
#    file's own writes: it restores bit-exactly.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0970
smnt=/mnt/bt0970-state
R=$BT_TMP/repo
IMG=$BT_TMP/restore.img
SD=$smnt/state
cleanup_fs() {
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	umount $smnt 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

reload_module() {
	run rmmod blktrack
	load_module
}

setup_ext4 "$mnt"
run mkfs_ext4 -q -F /dev/vda2
mkdir -p $smnt
run mount -t ext4 /dev/vda2 $smnt
bt init --repo "$R"
bt attach /dev/vda1

echo "# ---- a clean save, a reload, the history goes on"
point p1
write_files a
run umount $mnt
gen=$(status_get /dev/vda1 generation)
epoch=$(status_get /dev/vda1 epoch)
dirty=$(status_get /dev/vda1 active_dirty)
bt detach /dev/vda1 --save --state-dir $SD
[ -f "$SD/$(jfield "$BT_TMP/out.p1" volume_id).state" ] || fail "no state file in $SD"
reload_module
attach_restore --state-dir $SD
grep -q "saved history loaded" "$BT_TMP/attach" || fail "the saved history was not loaded"
assert_status /dev/vda1 state tracking
assert_status /dev/vda1 generation "$gen"
assert_status /dev/vda1 epoch "$epoch"
assert_status /dev/vda1 active_dirty "$dirty"
run mount -t ext4 /dev/vda1 $mnt
write_files b
point p2
assert_field p2 type incremental
assert_field p2 fell_back false
assert_field p2 parent "$(cat "$BT_TMP/id.p1")"
restore_all

echo "# ---- no save (a crash): unclean, the next backup resyncs"
write_files c
run umount $mnt
bt detach /dev/vda1
reload_module
attach_restore --state-dir $SD
assert_status /dev/vda1 state invalid
assert_status /dev/vda1 reason unclean
blktrack-dump | grep -q "unclean" || fail "blktrack-dump does not show the reason"
run mount -t ext4 /dev/vda1 $mnt
point p3
assert_field p3 type resync
assert_field p3 fell_back true
assert_status /dev/vda1 state tracking
write_files d
point p4
assert_field p4 type incremental
restore_all

echo "# ---- no state file"
run umount $mnt
bt detach /dev/vda1
reload_module
attach_restore --state-dir $BT_TMP/empty-state-dir
assert_status /dev/vda1 reason no-state
run mount -t ext4 /dev/vda1 $mnt
point p5
assert_field p5 type resync

echo "# ---- written while not tracked: the ext4 fingerprint changed"
write_files e
run umount $mnt
bt detach /dev/vda1 --save --state-dir $SD
reload_module
run mount -t ext4 /dev/vda1 $mnt
write_files offline
run umount $mnt
attach_restore --state-dir $SD
assert_status /dev/vda1 reason offline-change
run mount -t ext4 /dev/vda1 $mnt
point p6
assert_field p6 type resync
restore_all

echo "# ---- the state directory on the tracked volume"
write_files f
bt save --state-dir $mnt/state /dev/vda1 >"$BT_TMP/save"
cat "$BT_TMP/save"
grep -q "NOT clean" "$BT_TMP/save" || fail "a save while read-write claims to be clean"
run mount -o remount,ro $mnt
bt save --state-dir $mnt/state --json /dev/vda1 >"$BT_TMP/save"
cat "$BT_TMP/save"
assert_eq "in-place save: clean" "$(jfield "$BT_TMP/save" clean)" true
assert_eq "in-place save: raw" "$(jfield "$BT_TMP/save" raw)" true
bt detach /dev/vda1
reload_module
attach_restore --state-dir $mnt/state
grep -q "saved history loaded" "$BT_TMP/attach" || fail "the in-place state was not loaded"
run mount -o remount,rw $mnt
write_files g
point p7
assert_field p7 type incremental
assert_field p7 parent "$(cat "$BT_TMP/id.p6")"
restore_all
# The load cleared the clean flag in place: a second load refuses it.
run umount $mnt
bt detach /dev/vda1
reload_module
run mount -o ro -t ext4 /dev/vda1 $mnt
attach_restore --state-dir $mnt/state
assert_status /dev/vda1 reason unclean
run umount $mnt
bt detach /dev/vda1
check_no_leak

#!/bin/sh
# Snapshot stores whose write-back could wait behind the snapshot's own held
# writes, or on something the module cannot see, are refused with nothing
# changed: a file on a filesystem that is neither a disk's nor tmpfs (here
# overlayfs: EINVAL from CHECKPOINT_SNAP), and, in the requester, a loop
# device over a file on the volume itself (EDEADLK, a clear message, no
# pending checkpoint). A store in a tmpfs file and on another disk work.
. /blktrack/tests/vm/lib/testlib.sh
cleanup_store() {
	umount "$BT_TMP/ovl" 2>/dev/null
	umount "$BT_TMP/mnt" 2>/dev/null
	cleanup_all
}
trap cleanup_store EXIT
V=/dev/vda1

setup_disk
run mkfs_ext4 -q -F $V
mkdir -p "$BT_TMP/mnt"
run mount $V "$BT_TMP/mnt"
bt attach $V

echo "# ---- a store on overlayfs: EINVAL, nothing changed"
load_kmod overlay
mkdir -p "$BT_TMP/lower" "$BT_TMP/upper" "$BT_TMP/work" "$BT_TMP/ovl"
run mount -t overlay overlay -o "lowerdir=$BT_TMP/lower,upperdir=$BT_TMP/upper,workdir=$BT_TMP/work" "$BT_TMP/ovl"
run truncate -s 16M "$BT_TMP/ovl/store"
snap_errno EINVAL take $V 0 all "$BT_TMP/ovl/store"
assert_status $V pending no
echo "# ---- the same store file in tmpfs: accepted"
run truncate -s 16M "$BT_TMP/store"
run "$SNAPREAD" take $V 0 all "$BT_TMP/store"
assert_status $V pending yes
bt abort $V

echo "# ---- a loop device over a file on the volume: refused by the requester"
R=$BT_TMP/repo
bt init --repo "$R"
run dd if=/dev/zero of="$BT_TMP/mnt/store.img" bs=1M count=16 status=none
loop=$(losetup -f --show "$BT_TMP/mnt/store.img") || fail "losetup"
echo "+ blktrack backup $V --repo $R --snapshot cow --snapshot-store $loop (must fail)"
blktrack backup $V --repo "$R" --snapshot cow --snapshot-store "$loop" 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "backup with a store over a file on the volume: exit" $rc 1
grep -q "$loop is a loop device over a file on the volume" "$BT_TMP/err" ||
	fail "the refusal does not say why"
assert_status $V pending no
assert_eq "backups" "$(blktrack list --repo "$R" --json | grep -c '"id"')" 0
losetup -d "$loop"
echo "# ---- a loop device over a file on another disk (tmpfs): accepted"
run dd if=/dev/zero of="$BT_TMP/store2.img" bs=1M count=16 status=none
loop=$(losetup -f --show "$BT_TMP/store2.img") || fail "losetup"
bt backup $V --repo "$R" --snapshot cow --snapshot-store "$loop"
losetup -d "$loop"
run umount "$BT_TMP/mnt"
bt detach $V
check_no_leak

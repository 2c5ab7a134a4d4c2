#!/bin/sh
# A repository on a full filesystem (an 8 MiB tmpfs): `blktrack backup`
# fails with exit 1 and a message that says ENOSPC, the kernel checkpoint is
# aborted (pending: no), the repository keeps no pending entry and no tmp
# file; once space is freed, the next backup holds the changes of the
# failed one: each point restores bit-exactly to the volume's sha256 taken
# while frozen. Twice: the data write fails (256 KiB left), and the very
# first step (the delta map, the catalog) fails (nothing left).
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0955
T=/mnt/bt0955-repo
R=$T/repo
IMG=$BT_TMP/restore.img
cleanup_fs() {
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	umount $T 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

setup_ext4 "$mnt"
mkdir -p $T
run mount -t tmpfs -o size=8m tmpfs $T
bt init --repo "$R"
bt attach /dev/vda1
point p1
assert_field p1 type full

# fill_repo_fs KIB: fill $T, then free KIB KiB of it again.
fill_repo_fs() {
	[ "$1" -gt 0 ] && dd if=/dev/zero of=$T/room bs=1k count="$1" status=none
	dd if=/dev/zero of=$T/filler bs=64k status=none 2>/dev/null
	rm -f $T/room
	sync
	echo "# repository filesystem: $(df -k $T | awk 'NR == 2 { print $4 }') KiB free"
}

# A backup that must fail with ENOSPC and leave nothing behind.
backup_enospc() {
	local what=$1 rc
	echo "+ blktrack backup /dev/vda1 --repo $R (must fail: $what)"
	blktrack backup /dev/vda1 --repo "$R" 2>"$BT_TMP/err" >"$BT_TMP/out"
	rc=$?
	cat "$BT_TMP/out" "$BT_TMP/err"
	assert_eq "exit of a backup on a full filesystem ($what)" $rc 1
	grep -q "No space left on device" "$BT_TMP/err" ||
		fail "the message does not say ENOSPC"
	assert_status /dev/vda1 pending no
	grep -q '"pending"' "$R/catalog" && fail "a pending entry is left in the catalog"
	find "$R" -name '*.tmp' >"$BT_TMP/tmps"
	[ -s "$BT_TMP/tmps" ] && { cat "$BT_TMP/tmps"; fail "tmp files left in $R"; }
	ok "no pending entry, no tmp file in $R"
}

echo "# ---- the data write fails"
write_files a
dd if=/dev/urandom of=$mnt/a.big bs=1M count=2 status=none || fail "write a.big"
sync
fill_repo_fs 256
backup_enospc "256 KiB left"
rm -f $T/filler
point p2
assert_field p2 type incremental
assert_field p2 parent "$(cat "$BT_TMP/id.p1")"

echo "# ---- no room at all: the delta map or the catalog fails"
write_files b
fill_repo_fs 0
backup_enospc "nothing left"
rm -f $T/filler
point p3
assert_field p3 type incremental
assert_field p3 parent "$(cat "$BT_TMP/id.p2")"

# The points after a failure hold its changes (p1 is 0950's business).
restore_point p2
restore_point p3
bt detach /dev/vda1

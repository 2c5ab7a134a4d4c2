#!/bin/sh
# The requester end to end on ext4 (/dev/vda1, 64 MiB): full -> writes ->
# incremental -> writes -> differential -> writes -> incremental, each point's
# volume sha256 captured while the filesystem is frozen (the backup runs
# inside the same freeze); every point restored to a file and compared.
# Then: a corrupt, truncated or missing backup file is refused with its exit
# code and named; a requester killed (SIGKILL, BLKTRACK_TEST_CRASH_AT) after
# the checkpoint, during the data write and after the catalog update is
# repaired by the next run and every point still restores bit-exactly; a
# module reload gives exit 6 with --on-invalid=fail, a resync by default
# that stores exactly the blocks that differ from the base's image (counted
# independently), a full when the base's hash file is corrupt or with
# --on-invalid=full. Restores onto devices: the mounted volume and a
# mounted device are refused (O_EXCL), a smaller one too and left as it
# was, a larger one gets the volume; a --snapshot-store holding ext4 is
# refused.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0950
R=$BT_TMP/repo
IMG=$BT_TMP/restore.img
cleanup_fs() {
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

# A crashed backup (the requester kills itself with SIGKILL at $1), taken
# frozen so that an after-catalog crash is a point too (named $2).
crash() {
	local at=$1 name=$2 rc
	run fsfreeze -f $mnt
	vol_sha >"$BT_TMP/sha.$name"
	echo "+ BLKTRACK_TEST_CRASH_AT=$at blktrack backup /dev/vda1 --repo $R"
	BLKTRACK_TEST_CRASH_AT=$at blktrack backup /dev/vda1 --repo "$R" >/dev/null
	rc=$?
	fsfreeze -u $mnt
	assert_eq "exit of the requester killed $at" $rc 137
	assert_status /dev/vda1 pending yes
}

setup_ext4 "$mnt"
bt init --repo "$R"
bt attach /dev/vda1

echo "# ---- full, incremental, differential, incremental"
point p1
assert_field p1 type full
write_files a
point p2
assert_field p2 type incremental
write_files b
point p3 --type differential
assert_field p3 type differential
write_files c
# verify --against the device inside the freeze of the point.
run fsfreeze -f $mnt
vol_sha >"$BT_TMP/sha.p4"
blktrack backup /dev/vda1 --repo "$R" --json >"$BT_TMP/out.p4" || {
	fsfreeze -u $mnt
	fail "backup p4"
}
echo "+ blktrack verify --repo $R --against /dev/vda1"
blktrack verify --repo "$R" --against /dev/vda1
rc=$?
if [ $rc != 0 ]; then
	# Still frozen: the evidence is the volume of the point.
	id=$(jfield "$BT_TMP/out.p4" backup)
	rm -f "$IMG"
	blktrack restore --repo "$R" --backup "$id" "$IMG" >/dev/null &&
		keep_evidence "verify --against /dev/vda1 (frozen) exited $rc" \
			"$IMG" /dev/vda1 "$R" "$id"
fi
fsfreeze -u $mnt
assert_eq "verify --against /dev/vda1 (frozen) exit" $rc 0
jfield "$BT_TMP/out.p4" backup >"$BT_TMP/id.p4"
POINTS="$POINTS p4"
assert_field p4 type incremental
assert_field p4 parent "$(cat "$BT_TMP/id.p2")"
bt list --repo "$R"
echo "+ blktrack-dump repo $R"
blktrack-dump repo "$R" || fail "blktrack-dump repo exited $?"
restore_all

echo "# ---- verify --against a file that differs by one byte: exit 5"
bt restore --repo "$R" "$IMG" >/dev/null
printf 'Z' | dd of="$IMG" bs=1 seek=12345 conv=notrunc status=none
bt_fails 5 verify --repo "$R" --against "$IMG"
rm -f "$IMG"

echo "# ---- restore onto block devices: in use, too small, larger; a store with a filesystem"
id4=$(cat "$BT_TMP/id.p4")
echo "+ blktrack restore --repo $R --backup $id4 /dev/vda1 (mounted: must fail with 1)"
blktrack restore --repo "$R" --backup "$id4" /dev/vda1 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "restore onto the mounted volume: exit" $rc 1
grep -q "/dev/vda1 is.*refused, nothing written" "$BT_TMP/err" ||
	fail "the refusal does not say the device is in use"
small=$(make_loop 32)
dd if=/dev/urandom of="$small" bs=1M count=32 status=none || fail "fill $small"
sha_small=$(dd if="$small" bs=1M status=none | sha256sum | cut -d' ' -f1)
echo "+ blktrack restore --repo $R --backup $id4 $small (32 MiB: must fail with 1)"
blktrack restore --repo "$R" --backup "$id4" "$small" 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "restore onto a smaller device: exit" $rc 1
grep -q "$small has 33554432 bytes" "$BT_TMP/err" || fail "the refusal does not give the sizes"
assert_eq "the smaller device after the refusal" \
	"$(dd if="$small" bs=1M status=none | sha256sum | cut -d' ' -f1)" "$sha_small"
big=$(make_loop 80)
mkfs_ext4 -q -F "$big" >/dev/null 2>&1 || fail "mkfs.ext4 $big"
echo "+ blktrack backup /dev/vda1 --repo $R --snapshot-store $big (ext4 on it: must fail with 1)"
blktrack backup /dev/vda1 --repo "$R" --snapshot-store "$big" 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "backup with a snapshot store holding ext4: exit" $rc 1
grep -q "snapshot-store $big holds ext4" "$BT_TMP/err" || fail "the refusal does not name ext4"
assert_status /dev/vda1 pending no
mkdir -p $mnt.big
run mount -t ext4 "$big" $mnt.big
bt_fails 1 restore --repo "$R" --backup "$id4" "$big"
run umount $mnt.big
# Tracked but not mounted: O_EXCL does not see the module's hold.
bt attach "$big"
echo "+ blktrack restore --repo $R --backup $id4 $big (tracked: must fail with 1)"
blktrack restore --repo "$R" --backup "$id4" "$big" 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "restore onto a tracked device: exit" $rc 1
grep -q "is (or holds) the tracked volume" "$BT_TMP/err" || fail "the refusal does not say why"
bt detach "$big"
bt restore --repo "$R" --backup "$id4" "$big"
assert_eq "sha256 of backup $id4 (p4) restored onto an 80 MiB device" \
	"$(dd if="$big" bs=1M count=64 status=none | sha256sum | cut -d' ' -f1)" \
	"$(cat "$BT_TMP/sha.p4")"
losetup -d "$small" "$big"

echo "# ---- a corrupt, truncated, missing backup file"
f2=$R/backups/$(cat "$BT_TMP/id.p2").bkt
cp "$f2" "$BT_TMP/saved.bkt"
size=$(wc -c <"$f2")
byte=$(dd if="$f2" bs=1 skip=$((size / 2)) count=1 status=none | od -An -tx1 | tr -d ' ')
new='\101'
[ "$byte" = 41 ] && new='\102'
printf "$new" | dd of="$f2" bs=1 seek=$((size / 2)) conv=notrunc status=none
echo "+ blktrack restore --backup p4 (must fail with 4, name $f2)"
blktrack restore --repo "$R" --backup "$(cat "$BT_TMP/id.p4")" "$IMG" 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "restore over a corrupt member: exit" $rc 4
grep -qF "$f2" "$BT_TMP/err" || fail "the message does not name $f2"
[ -e "$IMG" ] && fail "the target was created although the chain is bad"
grep -q "not written" "$BT_TMP/err" || fail "restore does not say the target is untouched"
bt_fails 4 verify --repo "$R" --backup "$(cat "$BT_TMP/id.p4")"
bt_fails 4 verify --repo "$R" --backup "$(cat "$BT_TMP/id.p2")"
# Other chains do not contain backup p2.
bt verify --repo "$R" --backup "$(cat "$BT_TMP/id.p3")"
dd if="$BT_TMP/saved.bkt" of="$f2" bs=$((size - 100)) count=1 status=none
bt_fails 4 restore --repo "$R" --backup "$(cat "$BT_TMP/id.p4")" "$IMG"
rm "$f2"
bt_fails 3 restore --repo "$R" --backup "$(cat "$BT_TMP/id.p4")" "$IMG"
bt_fails 3 verify --repo "$R" --backup "$(cat "$BT_TMP/id.p2")"
cp "$BT_TMP/saved.bkt" "$f2"
bt verify --repo "$R"

echo "# ---- requester killed after the checkpoint, during the write, after the catalog"
write_files d
crash after-checkpoint lost1
write_files e
point p5
assert_field p5 recovery abort
assert_field p5 type incremental
write_files f
crash during-write lost2
ls "$R/backups" | grep -q tmp || fail "no tmp file left by a crash during the write"
point p6
assert_field p6 recovery abort
ls "$R/backups" | grep -q tmp && fail "the tmp file survived recovery"
write_files g
crash after-catalog p7
write_files h
point p8
assert_field p8 recovery commit
jfield "$BT_TMP/out.p8" parent >"$BT_TMP/id.p7"
POINTS="$POINTS p7"
assert_eq "the after-catalog backup is p8's parent" "$(cat "$BT_TMP/id.p7")" \
	"$(( $(cat "$BT_TMP/id.p6") + 1 ))"
restore_all

# reload_module: detach, rmmod, load, attach, mount: the kernel's stamps no
# longer follow the repository's, and writes made meanwhile were not tracked.
reload_module() {
	run umount $mnt
	bt detach /dev/vda1
	run rmmod blktrack
	load_module
	bt attach /dev/vda1
	run mount -t ext4 /dev/vda1 $mnt
}

echo "# ---- module reload: tracking lost; the default resync stores what changed"
write_files i
reload_module
write_files j
run fsfreeze -f $mnt
echo "+ blktrack backup /dev/vda1 --repo $R --on-invalid=fail (must fail with 6)"
blktrack backup /dev/vda1 --repo "$R" --on-invalid=fail
rc=$?
fsfreeze -u $mnt
assert_eq "--on-invalid=fail after a reload: exit" $rc 6
assert_status /dev/vda1 pending no
# The reference: the blocks where the volume differs from p8's restored image.
BASE_IMG=$BT_TMP/p8.img
bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.p8")" "$BASE_IMG" >/dev/null
count_diff() {
	/blktrack/build/vmprogs/blockdiff "$BASE_IMG" /dev/vda1 4096 >"$BT_TMP/ndiff"
}
POINT_HOOK=count_diff
point p9
POINT_HOOK=
rm -f "$BASE_IMG"
ndiff=$(cat "$BT_TMP/ndiff")
echo "blocks that differ from p8: $ndiff"
[ "$ndiff" -gt 0 ] || fail "the test wrote nothing between p8 and p9"
assert_field p9 type resync
assert_field p9 fell_back true
grep -q "^blktrack: warning: .*; taking a resync backup$" "$BT_TMP/err.p9" ||
	fail "the fall-back to a resync is not said on stderr"
ok "the fall-back to a resync is a warning with its reason"
assert_field p9 parent "$(cat "$BT_TMP/id.p8")"
assert_field p9 hashes true
assert_field p9 changed_bytes $((ndiff * 4096))
assert_field p9 covered_bytes $((ndiff * 4096))
write_files k
point p10
assert_field p10 type incremental
assert_field p10 parent "$(cat "$BT_TMP/id.p9")"
assert_eq "block hash files kept: the newest base's only" "$(ls "$R/hashes")" \
	"$(cat "$BT_TMP/id.p10").bh"
restore_all
bt verify --repo "$R"

echo "# ---- a corrupt hash file: the resync refuses to trust it, takes a full"
write_files l
reload_module
hf=$R/hashes/$(cat "$BT_TMP/id.p10").bh
printf 'Z' | dd of="$hf" bs=1 seek=100 conv=notrunc status=none
point p11
assert_field p11 type full
assert_field p11 fell_back true
grep -q "^blktrack: warning: backup [0-9]* has no usable block hashes (.*): taking a full backup$" \
	"$BT_TMP/err.p11" || fail "the fall-back to a full is not said on stderr"
write_files m
reload_module
point p12 --on-invalid=full -q
assert_field p12 type full
assert_eq "stderr of a fall-back with -q" "$(cat "$BT_TMP/err.p12")" ""
restore_all

echo "# ---- --output -: a stream, no catalog entry, the checkpoint aborted"
n=$(blktrack list --repo "$R" --json | grep -c '"id"')
blktrack backup /dev/vda1 --output - >"$BT_TMP/stream.bkt" 2>"$BT_TMP/err" ||
	{ cat "$BT_TMP/err"; fail "backup --output - failed"; }
cat "$BT_TMP/err"
blktrack-dump backup "$BT_TMP/stream.bkt" >/dev/null || fail "the stream does not verify"
assert_eq "catalog entries after a stream" "$(blktrack list --repo "$R" --json | grep -c '"id"')" $n
assert_status /dev/vda1 pending no

echo "# ---- --no-compress: records stored raw, restored bit-exactly"
write_files n
point p13 --no-compress
f=$(jfield "$BT_TMP/out.p13" file)
blktrack-dump backup "$f" --json >"$BT_TMP/dump.p13" || fail "blktrack-dump backup $f"
assert_eq "p13 compression" "$(jfield "$BT_TMP/dump.p13" compression)" none
[ "$(jfield "$BT_TMP/out.p13" stored_bytes)" -gt "$(jfield "$BT_TMP/out.p13" data_bytes)" ] ||
	fail "p13 stores fewer bytes than its data without compression"
restore_point p13

echo "# ---- list and verify beside a writer; backup fails at once, or --wait[=SECONDS]"
rm -f "$BT_TMP/locked"
/blktrack/build/vmprogs/lockhold "$R/lock" 20 "$BT_TMP/locked" &
holder=$!
i=0
while [ ! -e "$BT_TMP/locked" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "$BT_TMP/locked" ] || fail "lockhold did not take the lock"
bt list --repo "$R" >/dev/null
bt verify --repo "$R" --backup "$(cat "$BT_TMP/id.p13")" >/dev/null
blktrack backup /dev/vda1 --repo "$R" 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "backup of a locked repository: exit" $rc 1
grep -q "in use by another blktrack (--wait waits for it)" "$BT_TMP/err" || fail "message"
blktrack backup /dev/vda1 --repo "$R" --wait=1 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "backup --wait=1 of a locked repository: exit" $rc 1
grep -q "waited in vain" "$BT_TMP/err" || fail "message"
kill -0 $holder 2>/dev/null || fail "the lock holder is gone too early: the test proves nothing"
write_files o
point p14 --wait=120
wait $holder
restore_point p14

echo "# ---- only the kernel COMMIT fails: said so, the backup is stored; the next run commits it"
write_files p
echo "+ BLKTRACK_TEST_COMMIT_FAIL=1 blktrack backup /dev/vda1 --repo $R"
BLKTRACK_TEST_COMMIT_FAIL=1 blktrack backup /dev/vda1 --repo "$R" >/dev/null 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "backup whose kernel COMMIT fails: exit" $rc 1
id15=$(($(cat "$BT_TMP/id.p14") + 1))
grep -q "^blktrack: backup $id15 is committed in the repository, but the kernel COMMIT failed (BLKTRACK_TEST_COMMIT_FAIL); the next backup finishes it$" \
	"$BT_TMP/err" || fail "the COMMIT failure is not said, with its cause"
grep -q "backup $id15 is stored and restorable; only the kernel checkpoint" "$BT_TMP/err" ||
	fail "the CLI does not say the backup is stored"
grep -q "nothing was backed up" "$BT_TMP/err" && fail "the CLI says nothing was backed up"
assert_status /dev/vda1 pending yes
write_files q
point p16
assert_field p16 recovery commit
assert_field p16 type incremental
assert_field p16 parent $id15
restore_point p16

run umount $mnt
bt detach /dev/vda1
check_no_leak

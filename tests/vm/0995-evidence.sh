#!/bin/sh
# The evidence of a failed bit-exact comparison (testlib.sh: keep_evidence,
# progs/evidence.c; the host copies the evidence disk out after the boot).
# A full and an incremental backup of the raw /dev/vda1, each restored and
# compared with the volume's sha256 at its point (restore_compare): equal,
# and nothing is kept.
# With BT_TEST_EVIDENCE_SELFTEST=1 (BT_TEST_EVIDENCE_SELFTEST=1
# tests/vm/run.sh 0995), the incremental's restored image is then corrupted
# in two blocks, one the incremental stored and one only the full did, and
# restore_compare must fail as any test would ("not ok - sha256 of backup
# ..."), having kept the repository, both images, the kernel log, the
# status and a report that names each block and the backup that last wrote
# it. The test checks that and passes: the evidence shows up on the host in
# build/vm/evidence/KVER-DATE-TIME/0995-evidence-1/.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT
R=$BT_TMP/repo
IMG=$BT_TMP/restore.img
BS=4096

# raw_point NAME ARGS...: the volume's sha256, then a backup (nothing else
# writes /dev/vda1: no freeze needed).
raw_point() {
	local name=$1
	shift
	vol_sha >"$BT_TMP/sha.$name"
	bt backup /dev/vda1 --repo "$R" --no-fs-freeze --json "$@" >"$BT_TMP/out.$name"
	cat "$BT_TMP/out.$name"
	jfield "$BT_TMP/out.$name" backup >"$BT_TMP/id.$name"
}

setup_disk
run dd if=/dev/urandom of=/dev/vda1 bs=1M count=8 oflag=direct status=none
bt attach /dev/vda1
bt init --repo "$R"
raw_point p1 --type full
# Blocks 1000-1002: the incremental stores these and nothing else.
write_direct /dev/vda1 $((1000 * BS)) $((3 * BS))
raw_point p2 --type incremental
assert_field p2 type incremental
assert_field p2 changed_bytes $((3 * BS))
id1=$(cat "$BT_TMP/id.p1")
id2=$(cat "$BT_TMP/id.p2")

for p in p1 p2; do
	restore_compare "$R" "$(cat "$BT_TMP/id.$p")" $p "$IMG"
done
for d in /evidence /tmp/evidence; do
	[ ! -e "$d/0995-evidence-1" ] || fail "a clean comparison kept evidence in $d"
done
ok "clean comparisons kept no evidence"

[ "${BT_TEST_EVIDENCE_SELFTEST:-0}" = 1 ] || exit 0

echo "# ---- self-test: a restored image corrupted in blocks 1001 and 5"
corrupt() {
	printf 'EVIDENCE-SELFTST' | dd of="$1" bs=1 seek=$((1001 * BS + 100)) \
		conv=notrunc status=none
	printf 'EVIDENCE-SELFTST' | dd of="$1" bs=1 seek=$((5 * BS)) conv=notrunc status=none
}
RESTORE_HOOK=corrupt
(restore_compare "$R" "$id2" p2 "$IMG") >"$BT_TMP/self.out" 2>&1
rc=$?
RESTORE_HOOK=
cat "$BT_TMP/self.out"
assert_eq "exit of the failing comparison" $rc 1
grep -q "^not ok - sha256 of backup $id2 (p2) restored: got '" "$BT_TMP/self.out" ||
	fail "the failing comparison did not fail as a test does"
d=$(sed -n 's/^# keep_evidence: kept in \([^ ]*\) .*/\1/p' "$BT_TMP/self.out")
case $d in
/evidence/0995-evidence-1) ;;
*) fail "evidence kept in '$d', wanted /evidence/0995-evidence-1 (the evidence disk)" ;;
esac
for f in info.txt report.txt restored.img reference.img dmesg.txt status.json \
	dump-kernel.txt dump-repo.txt repo; do
	[ -s "$d/$f" ] || [ -d "$d/$f" ] || fail "no $f in $d"
done
ls -l "$d" "$d/repo"
cmp -s "$d/reference.img" /dev/vda1 || fail "reference.img is not /dev/vda1"
[ "$(sha256sum <"$d/reference.img" | cut -d' ' -f1)" = "$(cat "$BT_TMP/sha.p2")" ] ||
	fail "reference.img is not the volume of p2"
/blktrack/build/blktrack list --repo "$d/repo" >/dev/null || fail "the repository copy does not list"
rep=$d/report.txt
# (The first differing byte is where the corruption starts, unless the
# bytes it overwrote began with the same ones: not checked.)
grep -q "^block 5 at byte $((5 * BS)): first difference at byte " "$rep" ||
	fail "the report does not name block 5"
grep -q "^block 1001 at byte $((1001 * BS)): first difference at byte " "$rep" ||
	fail "the report does not name block 1001"
# The writer of each block: 1001 the incremental (the full too), 5 the full only.
awk '/^block 1001 /{ getline; print }' "$rep" |
	grep -q "last written by backup $id2 (.*: $id2 $id1)" ||
	fail "the report does not say backup $id2 last wrote block 1001"
awk '/^block 5 /{ getline; print }' "$rep" | grep -q "last written by backup $id1 (.*: $id1)" ||
	fail "the report does not say backup $id1 last wrote block 5"
grep -q '^2 differing block(s) of 4096 bytes$' "$rep" || fail "the report does not count 2 blocks"
# "IDENCE" in hex, in the restored image's line of each block.
[ "$(grep -c '^  restored .* 49 44 45 4e 43 45' "$rep")" = 2 ] ||
	fail "the report does not show the corrupt bytes"
ok "the evidence: repository, both images, dmesg, status and a report naming blocks 5 and 1001"

#!/bin/sh
# Content that changes with no write: a read-only loop device given another
# file (LOOP_CHANGE_FD) moves the disk's sequence number. The volume turns
# INVALID (media-changed) at once; the next COMMIT starts a new history. A
# change during a backup's read fails that backup (exit 6, nothing kept);
# the next incremental resyncs and restores the new content bit-exactly.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT
CHANGE=$BT_TOP/build/vmprogs/loop-change-fd
MIB=$((1 << 20))

# Two backing files of one size: B is A with 40 blocks rewritten.
A=$BT_TMP/a.img B=$BT_TMP/b.img
run dd if=/dev/urandom of="$A" bs=1M count=16 status=none
run cp "$A" "$B"
for i in $(seq 1 40); do
	dd if=/dev/urandom of="$B" bs=4096 count=1 seek=$((i * 97)) conv=notrunc status=none
done
sha_a=$(sha256sum <"$A" | cut -d' ' -f1)
sha_b=$(sha256sum <"$B" | cut -d' ' -f1)
[ "$sha_a" != "$sha_b" ] || fail "the two files are equal"
loop=$(losetup -r -f --show "$A") || fail "losetup -r failed"
name=${loop#/dev/}
seq0=$(cat /sys/block/$name/diskseq)

bt attach "$loop"
assert_status "$loop" state tracking
echo "+ loop-change-fd $loop $B"
"$CHANGE" "$loop" "$B" || fail "LOOP_CHANGE_FD failed"
[ "$(cat /sys/block/$name/diskseq)" != "$seq0" ] || fail "the disk's sequence did not move"
assert_status "$loop" state invalid
assert_status "$loop" reason media-changed
check_empty "$loop" --active
bt checkpoint "$loop"
assert_status "$loop" state invalid
bt commit "$loop"
assert_status "$loop" state tracking
ok "COMMIT after the change starts a new history"

echo "# ---- a change during the read of a backup"
R=$BT_TMP/repo IMG=$BT_TMP/restored.img W=$BT_TMP/writers.d
bt init --repo "$R"
bt backup "$loop" --repo "$R" --type full
mkdir -p "$W"
cat >"$W/changefd" <<EOT
#!/bin/sh
[ "\$1" = post-snapshot ] || exit 0
exec $CHANGE $loop $A
EOT
chmod 755 "$W/changefd"
echo "+ blktrack backup $loop --repo $R --writers-dir $W --type incremental"
blktrack backup "$loop" --repo "$R" --writers-dir "$W" --type incremental \
	>"$BT_TMP/out" 2>&1
rc=$?
cat "$BT_TMP/out"
assert_eq "backup exit status" $rc 6
grep -q "media changed" "$BT_TMP/out" || fail "no message about the media"
assert_status "$loop" state invalid
assert_status "$loop" reason media-changed
assert_status "$loop" pending_dirty 0
n=$(blktrack list --repo "$R" --json | grep -c '"id"')
assert_eq "backups in the repository" "$n" 1

echo "# ---- the next incremental resyncs"
blktrack backup "$loop" --repo "$R" --type incremental --json >"$BT_TMP/out2" ||
	{ cat "$BT_TMP/out2"; fail "backup after the change failed"; }
cat "$BT_TMP/out2"
id=$(jfield "$BT_TMP/out2" backup)
bt restore --repo "$R" --backup "$id" "$IMG"
got=$(sha256sum <"$IMG" | cut -d' ' -f1)
[ "$got" = "$sha_a" ] || keep_evidence "backup $id restored: not the loop's file" \
	"$IMG" "$A" "$R" "$id"
assert_eq "restored sha" "$got" "$sha_a"
assert_status "$loop" state tracking
bt detach "$loop"
check_no_leak

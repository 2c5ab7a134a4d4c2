#!/bin/sh
# blktrack backup --snapshot=cow (issue 6) on ext4 (/dev/vda1) while fio
# rewrites files continuously, direct and buffered: the backup reads the
# volume as it was at the checkpoint through the kernel's copy-before-write
# snapshot. To know that instant, the test freezes the filesystem itself,
# takes the volume's sha256, and runs the backup (an "external" freeze that
# blktrack leaves alone); a post-snapshot writer thaws it and starts fio, so
# every rewrite happens during the read (or, for one full backup, deletes a
# file and runs fstrim: every block trimmed is copied aside first, or the
# snapshot is lost and the backup fails cleanly). Each backup, restored, equals the
# sha taken at its checkpoint; blocks were copied aside; nothing is reported
# rewritten. With blktrack holding the freeze itself, it lasts well under a
# second. A store too small for the rewrites fails the backup cleanly (no
# pending checkpoint) and the next backup restores exactly.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0987
R=$BT_TMP/repo
W=$BT_TMP/writers.d
IMG=$BT_TMP/restore.img
export FIO_PIDS=$BT_TMP/fio.pids MNT=$mnt WLOG=$BT_TMP/writer.log
stop_fio() {
	[ -f "$FIO_PIDS" ] && kill $(cat "$FIO_PIDS") 2>/dev/null
	[ -f "$FIO_PIDS" ] && while kill -0 $(cat "$FIO_PIDS") 2>/dev/null; do sleep 0.1; done
	rm -f "$FIO_PIDS"
}
cleanup_fs() {
	stop_fio
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

setup_ext4 $mnt
dd if=/dev/urandom of=$mnt/direct bs=1M count=8 status=none || fail "write direct"
dd if=/dev/urandom of=$mnt/buffered bs=1M count=8 status=none || fail "write buffered"
run sync
bt init --repo "$R" >/dev/null
bt attach /dev/vda1 >/dev/null

mkdir -p "$W"
# 10-rewrite: at post-snapshot (after the checkpoint), thaw the test's own
# freeze and start rewriting: every write lands during the read.
cat >"$W/10-rewrite" <<'EOF'
#!/bin/sh
[ "$1" = post-snapshot ] && [ -n "${REWRITE:-}" ] || exit 0
fsfreeze --unfreeze "$MNT" >>"$WLOG" 2>&1
echo "post-snapshot: thawed $MNT: $?" >>"$WLOG"
for mode in direct buffered; do
	d=1
	[ $mode = buffered ] && d=0
	setsid fio --name=$mode --filename="$MNT/$mode" --rw=randwrite --bs=4k \
		--ioengine=psync --direct=$d --size=8m --time_based --runtime=600 \
		--fsync=16 --minimal >/dev/null 2>&1 </dev/null &
	echo $! >>"$FIO_PIDS"
done
# Until fio's writes reach the volume (fio starts slowly on a loaded host):
# the read must not end before they come.
i=0
while [ "$(blktrack status /dev/vda1 | sed -n 's/^active_dirty: *//p')" -lt 64 ] &&
	[ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
EOF
chmod +x "$W/10-rewrite"
# 20-trim: at post-snapshot, thaw, free 8 MiB of data and trim every free
# block of the filesystem while the backup reads.
cat >"$W/20-trim" <<'EOF'
#!/bin/sh
[ "$1" = post-snapshot ] && [ -n "${TRIM:-}" ] || exit 0
fsfreeze --unfreeze "$MNT" >>"$WLOG" 2>&1
rm -f "$MNT/buffered" && sync
/usr/sbin/fstrim -v "$MNT" >>"$WLOG" 2>&1
echo "post-snapshot: fstrim $MNT: $?" >>"$WLOG"
EOF
chmod +x "$W/20-trim"

# cow_point NAME [OPTIONS...]: freeze, sha, back up with --snapshot=cow while
# the writer rewrites, stop fio; the backup's JSON in $BT_TMP/out.NAME.
cow_point() {
	local name=$1 rc
	shift
	run fsfreeze -f $mnt
	vol_sha >"$BT_TMP/sha.$name"
	echo "+ blktrack backup /dev/vda1 --repo $R --snapshot cow --json $*"
	env "${COW_WRITER:-REWRITE}=1" blktrack backup /dev/vda1 --repo "$R" --writers-dir "$W" \
		--snapshot cow --json "$@" >"$BT_TMP/out.$name" 2>"$BT_TMP/err.$name"
	rc=$?
	fsfreeze -u $mnt 2>/dev/null
	stop_fio
	cat "$WLOG" "$BT_TMP/err.$name" "$BT_TMP/out.$name" 2>/dev/null
	mv "$WLOG" "$BT_TMP/wlog.$name" 2>/dev/null
	RC=$rc
}

echo "# ---- a full backup read through the snapshot while fio rewrites"
cow_point full --type full
[ $RC = 0 ] || fail "backup full exited $RC"
assert_eq "full: snapshot" "$(jfield "$BT_TMP/out.full" snapshot)" cow
assert_eq "full: freeze" "$(jfield "$BT_TMP/out.full" freeze)" external
assert_eq "full: rewritten_during_read_bytes" \
	"$(jfield "$BT_TMP/out.full" rewritten_during_read_bytes)" 0
[ "$(jfield "$BT_TMP/out.full" snapshot_copied_blocks)" -gt 0 ] ||
	fail "full: no block copied aside although fio rewrote during the read"
assert_status /dev/vda1 pending no
restore_compare "$R" "$(jfield "$BT_TMP/out.full" backup)" full "$IMG"

echo "# ---- an incremental the same way: fio's writes of the full's read are in it"
cow_point incr
[ $RC = 0 ] || fail "backup incr exited $RC"
assert_eq "incr: type" "$(jfield "$BT_TMP/out.incr" type)" incremental
assert_eq "incr: snapshot" "$(jfield "$BT_TMP/out.incr" snapshot)" cow
[ "$(jfield "$BT_TMP/out.incr" changed_bytes)" -gt 0 ] || fail "incr: nothing changed"
restore_compare "$R" "$(jfield "$BT_TMP/out.incr" backup)" incr "$IMG"

echo "# ---- the store in a file (a directory's unnamed file), on a block device"
cow_point sdir --snapshot-store "$BT_TMP"
[ $RC = 0 ] || fail "backup with the store in $BT_TMP exited $RC"
assert_eq "sdir: snapshot_store" "$(jfield "$BT_TMP/out.sdir" snapshot_store)" "$BT_TMP"
[ "$(jfield "$BT_TMP/out.sdir" snapshot_copied_blocks)" -gt 0 ] ||
	fail "sdir: no block copied aside although fio rewrote during the read"
restore_compare "$R" "$(jfield "$BT_TMP/out.sdir" backup)" sdir "$IMG"
# An earlier test of this boot may have left a filesystem there (a store is
# refused over one): its first MiB zeroed, the signatures with it.
dd if=/dev/zero of=/dev/vda2 bs=1M count=1 oflag=direct status=none || fail "clear /dev/vda2"
cow_point sdev --snapshot-store /dev/vda2
[ $RC = 0 ] || fail "backup with the store on /dev/vda2 exited $RC"
assert_eq "sdev: snapshot_store" "$(jfield "$BT_TMP/out.sdev" snapshot_store)" /dev/vda2
restore_compare "$R" "$(jfield "$BT_TMP/out.sdev" backup)" sdev "$IMG"
# A store on the volume itself: refused before anything changes.
cow_point sself --snapshot-store "$mnt/direct"
[ $RC != 0 ] || fail "a backup with its store on the volume succeeded"
grep -q "store lies on the volume" "$BT_TMP/err.sself" || fail "no clear message for the store"
assert_status /dev/vda1 pending no

echo "# ---- a store too small: the backup fails cleanly, nothing is lost"
cow_point small --snapshot-store 8192
[ $RC != 0 ] || fail "a backup whose 8 KiB store overflowed succeeded"
grep -q "snapshot was lost" "$BT_TMP/err.small" || fail "no clear message for the lost snapshot"
assert_status /dev/vda1 pending no
cow_point after
[ $RC = 0 ] || fail "backup after the overflow exited $RC"
restore_compare "$R" "$(jfield "$BT_TMP/out.after" backup)" after "$IMG"

echo "# ---- blktrack holds the freeze itself: thawed right after the checkpoint"
REWRITE=1 sh "$W/10-rewrite" post-snapshot
bt backup /dev/vda1 --repo "$R" --snapshot cow --json >"$BT_TMP/out.own"
stop_fio
cat "$BT_TMP/out.own"
assert_eq "own freeze: freeze" "$(jfield "$BT_TMP/out.own" freeze)" thaw-early
awk -v s="$(jfield "$BT_TMP/out.own" freeze_seconds)" 'BEGIN { exit !(s < 1.0) }' ||
	fail "the freeze lasted $(jfield "$BT_TMP/out.own" freeze_seconds) s"
ok "the freeze lasted $(jfield "$BT_TMP/out.own" freeze_seconds) s"
bt verify --repo "$R" >/dev/null

echo "# ---- fstrim during a full backup (every block protected)"
COW_WRITER=TRIM cow_point trim --type full
# The writer runs to its end before the read starts: every trim came first.
grep -q "post-snapshot: fstrim $mnt: 0" "$BT_TMP/wlog.trim" || fail "trim: fstrim did not run"
if [ $RC = 0 ]; then
	[ "$(jfield "$BT_TMP/out.trim" snapshot_copied_blocks)" -gt 0 ] ||
		fail "trim: no block copied aside although fstrim ran during the read"
	restore_compare "$R" "$(jfield "$BT_TMP/out.trim" backup)" trim "$IMG"
else
	grep -q "snapshot was lost" "$BT_TMP/err.trim" ||
		fail "trim: the backup failed ($RC) without a clear message"
	ok "trim: the snapshot was lost, the backup failed cleanly"
	assert_status /dev/vda1 pending no
fi

run umount $mnt
bt detach /dev/vda1 >/dev/null
check_no_leak

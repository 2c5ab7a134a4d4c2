#!/bin/sh
# Writers (doc/WRITERS.md) on ext4 (/dev/vda1): a writer that records every
# event it gets (order and BLKTRACK_* variables checked), one that captures
# the volume's sha256 at post-snapshot (inside blktrack's own freeze), one
# that vetoes freeze and one that rejects at backup-complete when told to.
# A veto or a rejection exits 8, leaves no pending checkpoint, no catalog
# entry and no file, and the next backup still holds the changes: restored,
# it equals the volume captured while frozen. A writer past its time limit
# is killed with its process group. --thaw-early with a process rewriting a
# file during the read: rewritten_during_read_bytes > 0, and --strict
# rejects the backup with exit 7.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0960
R=$BT_TMP/repo
W=$BT_TMP/writers.d
IMG=$BT_TMP/restore.img
export REC_LOG=$BT_TMP/events SNAP=$BT_TMP/snap.sha FLAGS=$BT_TMP/flags
cleanup_fs() {
	[ -n "${rw_pid:-}" ] && kill "$rw_pid" 2>/dev/null
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

entries() {
	blktrack list --repo "$R" --json | grep -c '"id"'
}

mkdir -p "$W" "$FLAGS"
# 10-record: one line per event: the writer's name, then KEY=VALUE.
cat >"$W/10-record" <<'EOF'
#!/bin/sh
echo "$1 event=$BLKTRACK_EVENT dev=$BLKTRACK_DEVICE vol=$BLKTRACK_VOLUME_ID type=$BLKTRACK_BACKUP_TYPE prev=${BLKTRACK_PREV_STAMP-unset} new=${BLKTRACK_NEW_STAMP-unset} file=${BLKTRACK_BACKUP_FILE-unset} repo=${BLKTRACK_REPO-unset} id=${BLKTRACK_BACKUP_ID-unset}" >>"$REC_LOG"
echo "got $1"
EOF
# 20-snap: the volume's sha256 at post-snapshot (frozen unless thawed early).
cat >"$W/20-snap" <<'EOF'
#!/bin/sh
[ "$1" = post-snapshot ] || exit 0
[ -e "$FLAGS/slow" ] && sleep 1
/usr/bin/dd if="$BLKTRACK_DEVICE" bs=1M iflag=direct status=none | /usr/bin/sha256sum | cut -d' ' -f1 >"$SNAP"
EOF
# 30-judge: vetoes or rejects when a flag file says so.
cat >"$W/30-judge" <<'EOF'
#!/bin/sh
if [ -e "$FLAGS/veto-$1" ]; then
	echo "vetoing $1"
	exit 3
fi
if [ -e "$FLAGS/hang-$1" ]; then
	sleep 300 &
	echo $! >"$FLAGS/hang.pid"
	wait
fi
exit 0
EOF
chmod +x "$W/10-record" "$W/20-snap" "$W/30-judge"
# Not writers: a dot file and a file without the execute bit.
printf '#!/bin/sh\nexit 1\n' >"$W/.hidden"
printf '#!/bin/sh\nexit 1\n' >"$W/40-not-executable"

# backup NAME [OPTIONS...]: back up with the writers; output in out.NAME.
# --snapshot=freeze: the freeze held through the read is what 20-snap's
# capture relies on (cow with writers: 0987).
backup() {
	local name=$1
	shift
	: >"$REC_LOG"
	echo "+ blktrack backup /dev/vda1 --repo $R --writers-dir $W --snapshot freeze --json $*"
	blktrack backup /dev/vda1 --repo "$R" --writers-dir "$W" --snapshot freeze --json "$@" \
		>"$BT_TMP/out.$name" 2>"$BT_TMP/err.$name"
	rc=$?
	cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
}
events() {
	awk '{ printf "%s%s", sep, $1; sep = " " }' "$REC_LOG"
}
# ev EVENT KEY: the value of KEY in the recorded line of EVENT.
ev() {
	sed -n "s/^$1 .* $2=\([^ ]*\).*/\1/p" "$REC_LOG" | head -n 1
}
# restore_check NAME: restore backup NAME, compare with the captured sha256.
restore_check() {
	restore_compare "$R" "$(jfield "$BT_TMP/out.$1" backup)" "$1" "$IMG"
}
write_files() {
	dd if=/dev/urandom of=$mnt/new.$1 bs=4096 count=37 status=none || fail "write new.$1"
	dd if=/dev/urandom of=$mnt/big bs=4096 count=8 seek=$2 conv=notrunc status=none ||
		fail "rewrite big"
	sync
}

setup_ext4 "$mnt"
bt init --repo "$R"
bt attach /dev/vda1
vol=$(blktrack status /dev/vda1 | sed -n 's/^generation: *//p')

echo "# ---- a full backup: events in order, variables, the filesystem frozen through the read"
backup p1
assert_eq "backup p1 exit" $rc 0
for f in .hidden 40-not-executable; do
	grep -q "writers directory $W: $f: skipped: " "$BT_TMP/err.p1" ||
		fail "skipping $f is not reported"
done
assert_eq "events of p1" "$(events)" \
	"identify prepare-backup freeze post-snapshot thaw backup-complete"
cp "$SNAP" "$BT_TMP/sha.p1"
assert_eq "p1 freeze" "$(jfield "$BT_TMP/out.p1" freeze)" held
assert_eq "p1 mount point" "$(jfield "$BT_TMP/out.p1" mount_point)" $mnt
assert_eq "p1 writers" "$(jfield "$BT_TMP/out.p1" writers)" 3
assert_eq "p1 verified" "$(jfield "$BT_TMP/out.p1" verified)" true
assert_eq "p1 rewritten_during_read_bytes" \
	"$(jfield "$BT_TMP/out.p1" rewritten_during_read_bytes)" 0
grep -q "writer 10-record: got backup-complete" "$BT_TMP/err.p1" ||
	fail "the writer's output is not passed through with its name"
assert_eq "BLKTRACK_DEVICE" "$(ev identify dev)" /dev/vda1
assert_eq "BLKTRACK_VOLUME_ID" "$(ev freeze vol)" "$(jfield "$BT_TMP/out.p1" volume_id)"
assert_eq "BLKTRACK_BACKUP_TYPE at prepare-backup" "$(ev prepare-backup type)" full
assert_eq "BLKTRACK_REPO" "$(ev prepare-backup repo)" "$R"
assert_eq "BLKTRACK_NEW_STAMP before the checkpoint" "$(ev freeze new)" unset
assert_eq "BLKTRACK_PREV_STAMP" "$(ev freeze prev)" "$vol:0"
assert_eq "BLKTRACK_NEW_STAMP" "$(ev post-snapshot new)" "$vol:1"
assert_eq "BLKTRACK_BACKUP_FILE" "$(ev backup-complete file)" "$(jfield "$BT_TMP/out.p1" file)"
assert_eq "BLKTRACK_BACKUP_ID" "$(ev backup-complete id)" "$(jfield "$BT_TMP/out.p1" backup)"
assert_status /dev/vda1 epoch 1
restore_check p1

echo "# ---- a writer vetoes freeze: exit 8, no checkpoint, the changes stay tracked"
write_files a 10
n=$(entries)
touch "$FLAGS/veto-freeze"
backup veto
rm "$FLAGS/veto-freeze"
assert_eq "vetoed backup exit" $rc 8
assert_eq "events of the vetoed backup" "$(events)" \
	"identify prepare-backup freeze thaw abort"
grep -q "30-judge freeze: exit 3" "$BT_TMP/err.veto" || fail "the veto does not name its writer"
assert_status /dev/vda1 pending no
assert_status /dev/vda1 epoch 1
assert_eq "catalog entries after the veto" "$(entries)" "$n"
echo "x" >$mnt/probe || fail "the filesystem is still frozen after the veto"
rm $mnt/probe
sync
backup p2
assert_eq "backup p2 exit" $rc 0
cp "$SNAP" "$BT_TMP/sha.p2"
assert_eq "p2 type" "$(jfield "$BT_TMP/out.p2" type)" incremental
restore_check p2

echo "# ---- a writer rejects at backup-complete: exit 8, file and entry gone, ABORTed"
write_files b 100
n=$(entries)
touch "$FLAGS/veto-backup-complete"
backup reject
rm "$FLAGS/veto-backup-complete"
assert_eq "rejected backup exit" $rc 8
assert_eq "events of the rejected backup" "$(events)" \
	"identify prepare-backup freeze post-snapshot thaw backup-complete abort"
rejected=$(ev backup-complete file)
[ -n "$rejected" ] && [ "$rejected" != unset ] || fail "no backup file at backup-complete"
[ -e "$rejected" ] && fail "the rejected backup file $rejected is still there"
ok "the rejected backup file $rejected is gone"
assert_status /dev/vda1 pending no
assert_status /dev/vda1 epoch $((2 + 4294967296))	# the ABORT moved the high half
assert_eq "catalog entries after the rejection" "$(entries)" "$n"
blktrack list --repo "$R" | awk -v id="$(ev backup-complete id)" '$1 == id' | grep -q . &&
	fail "blktrack list shows the rejected backup $(ev backup-complete id)"
backup p3
assert_eq "backup p3 exit" $rc 0
cp "$SNAP" "$BT_TMP/sha.p3"
assert_eq "p3 type" "$(jfield "$BT_TMP/out.p3" type)" incremental
assert_eq "p3 parent" "$(jfield "$BT_TMP/out.p3" parent)" "$(jfield "$BT_TMP/out.p2" backup)"
restore_check p3

echo "# ---- a writer past its time limit is killed with its process group"
touch "$FLAGS/hang-prepare-backup"
t0=$(date +%s)
backup hang --writer-timeout 2
rm "$FLAGS/hang-prepare-backup"
assert_eq "timed-out backup exit" $rc 8
[ $(( $(date +%s) - t0 )) -lt 20 ] || fail "the time limit did not stop the writer"
grep -q "30-judge prepare-backup: no answer in 2 s" "$BT_TMP/err.hang" ||
	fail "the timeout is not reported"
st=$(awk '{ print $3 }' "/proc/$(cat "$FLAGS/hang.pid")/stat" 2>/dev/null)
[ -z "$st" ] || [ "$st" = Z ] || fail "the writer's child survived (state $st)"
ok "the writer's child was killed"
assert_status /dev/vda1 pending no

echo "# ---- --thaw-early with a file rewritten during the read"
dd if=/dev/urandom of=$mnt/hot bs=1M count=4 oflag=direct status=none || fail "write hot"
sync
( while [ ! -e "$FLAGS/stop" ]; do
	/usr/bin/dd if=/dev/urandom of=$mnt/hot bs=1M count=4 conv=notrunc oflag=direct \
		status=none
done ) &
rw_pid=$!
touch "$FLAGS/slow"
backup fuzzy --type full --thaw-early
assert_eq "fuzzy backup exit" $rc 0
assert_eq "events with --thaw-early" "$(events)" \
	"identify prepare-backup freeze thaw post-snapshot backup-complete"
assert_eq "fuzzy freeze" "$(jfield "$BT_TMP/out.fuzzy" freeze)" thaw-early
assert_eq "fuzzy verified (rewritten blocks excused)" \
	"$(jfield "$BT_TMP/out.fuzzy" verified)" true
rw=$(jfield "$BT_TMP/out.fuzzy" rewritten_during_read_bytes)
[ "$rw" -gt 0 ] 2>/dev/null || fail "rewritten_during_read_bytes is '$rw', wanted > 0"
ok "rewritten_during_read_bytes = $rw"
n=$(entries)
epoch=$(status_get /dev/vda1 epoch)
backup strict --type full --thaw-early --strict
assert_eq "--strict backup exit" $rc 7
grep -q "rewritten during the read" "$BT_TMP/err.strict" || fail "--strict does not say why"
assert_status /dev/vda1 pending no
assert_status /dev/vda1 epoch $((epoch + 4294967296))
assert_eq "catalog entries after --strict" "$(entries)" "$n"
touch "$FLAGS/stop"
wait "$rw_pid"
rw_pid=
rm "$FLAGS/slow"
sync

echo "# ---- the verify writer rejects a file that does not hold what was read"
n=$(entries)
epoch=$(status_get /dev/vda1 epoch)
export BLKTRACK_TEST_VERIFY_MISMATCH=1
backup badverify --type full
unset BLKTRACK_TEST_VERIFY_MISMATCH
assert_eq "backup with a mismatching file: exit" $rc 8
grep -q "does not hold what was read" "$BT_TMP/err.badverify" ||
	fail "the verify writer does not say why"
assert_status /dev/vda1 pending no
assert_status /dev/vda1 epoch $((epoch + 4294967296))
assert_eq "catalog entries after a rejected verify" "$(entries)" "$n"

echo "# ---- identify fails: the backup goes on, with a warning (none with -q)"
touch "$FLAGS/veto-identify"
backup idfail
assert_eq "backup with identify failing: exit" $rc 0
grep -q "^blktrack: warning: .*identify.*(identify failed: ignored)$" "$BT_TMP/err.idfail" ||
	fail "the identify failure is not a warning"
backup idfailq -q
rm "$FLAGS/veto-identify"
assert_eq "backup -q with identify failing: exit" $rc 0
grep -q "warning" "$BT_TMP/err.idfailq" && fail "-q shows a warning"

echo "# ---- a filesystem that cannot freeze: the backup goes on, with a warning"
export BLKTRACK_TEST_FIFREEZE_UNSUPPORTED=1
backup nofreeze
unset BLKTRACK_TEST_FIFREEZE_UNSUPPORTED
assert_eq "backup of a filesystem that cannot freeze: exit" $rc 0
assert_eq "freeze of a filesystem that cannot freeze" "$(jfield "$BT_TMP/out.nofreeze" freeze)" none
grep -q "^blktrack: warning: $mnt cannot freeze: the read is fuzzy$" "$BT_TMP/err.nofreeze" ||
	fail "a fuzzy read is not a warning"

echo "# ---- FITHAW fails on an error path: loud, non-zero, the filesystem left frozen said"
n=$(entries)
touch "$FLAGS/veto-post-snapshot"
export BLKTRACK_TEST_FITHAW_FAIL=1
backup thawfail -q
unset BLKTRACK_TEST_FITHAW_FAIL
rm "$FLAGS/veto-post-snapshot"
# Thaw at once: a test that fails below must not leave it frozen.
fsfreeze -u $mnt; frozen_rc=$?
assert_eq "backup with a veto and a failed thaw: exit" $rc 8
grep -q "30-judge post-snapshot: exit 3" "$BT_TMP/err.thawfail" ||
	fail "the veto, the first cause, is not said"
grep -q "^blktrack: CRITICAL: writer filesystem: FITHAW $mnt: .*left FROZEN" \
	"$BT_TMP/err.thawfail" || fail "a filesystem left frozen is not said loudly (even with -q)"
grep -q "(and then writer filesystem: FITHAW $mnt: .*left FROZEN" "$BT_TMP/err.thawfail" ||
	fail "the error message does not add the failed thaw"
assert_eq "fsfreeze -u after the failed thaw (it was left frozen)" $frozen_rc 0
assert_status /dev/vda1 pending no
assert_eq "catalog entries after the failed thaw" "$(entries)" "$n"

echo "# ---- after all that, a held backup restores bit-exactly"
backup p4 --verify-source
assert_eq "backup p4 exit" $rc 0
cp "$SNAP" "$BT_TMP/sha.p4"
restore_check p4
bt verify --repo "$R"

run umount $mnt
bt detach /dev/vda1
check_no_leak

#!/bin/sh
# One owner per kernel checkpoint (issue 13, point 3), on a loop device.
# A backup-complete writer plays an administrator: `blktrack abort DEV`,
# writes a block, `blktrack checkpoint DEV`. The backup must not COMMIT
# that other checkpoint (its stamp was aborted: ESTALE), so the block's
# write is not dropped: the other checkpoint stays pending, the next backup
# aborts it at recovery and resyncs, and every point restores bit-exactly;
# the chain then goes on with incrementals. Then the volume lock: while a
# backup holds it (a writer waits at post-snapshot), a backup of the same
# volume into another repository fails at once naming the holder's pid,
# --wait=1 gives up after a second, and --wait takes it when it is free.
. /blktrack/tests/vm/lib/testlib.sh
R=$BT_TMP/repo
R2=$BT_TMP/repo2
W=$BT_TMP/writers.d
IMG=$BT_TMP/restore.img
export FLAGS=$BT_TMP/flags
BLK=$((4096 * 1000))		# the block the "administrator" writes
trap cleanup_all EXIT

mkdir -p "$W" "$FLAGS"
# Writer names: [A-Za-z0-9_-]+, mode 0755, owned by root (doc/WRITERS.md).
cat >"$W/10-admin" <<EOF2
#!/bin/sh
[ "\$1" = backup-complete ] && [ -e "$FLAGS/meddle" ] || exit 0
blktrack abort "\$BLKTRACK_DEVICE" || exit 90
dd if=/dev/urandom of="\$BLKTRACK_DEVICE" bs=4096 count=1 seek=$((BLK / 4096)) \
	oflag=direct conv=notrunc status=none || exit 91
blktrack checkpoint "\$BLKTRACK_DEVICE" >/dev/null || exit 92
exit 0
EOF2
cat >"$W/20-hold" <<EOF2
#!/bin/sh
[ "\$1" = post-snapshot ] && [ -e "$FLAGS/hold" ] || exit 0
touch "$FLAGS/held"
while [ ! -e "$FLAGS/release" ]; do sleep 0.1; done
exit 0
EOF2
chmod 0755 "$W/10-admin" "$W/20-hold"

DEV=$(make_loop 16)
BT_VOL=$DEV
bt init --repo "$R"
bt init --repo "$R2"
bt attach "$DEV"

# backup NAME REPO [OPTIONS...]: output in out.NAME / err.NAME, exit in $rc.
backup() {
	local name=$1 repo=$2
	shift 2
	echo "+ blktrack backup $DEV --repo $repo --writers-dir $W --json $*"
	blktrack backup "$DEV" --repo "$repo" --writers-dir "$W" --json "$@" \
		>"$BT_TMP/out.$name" 2>"$BT_TMP/err.$name"
	rc=$?
	cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
}
# check NAME REPO: restore backup NAME from REPO, compare with sha.NAME.
check() {
	restore_compare "$2" "$(jfield "$BT_TMP/out.$1" backup)" "$1" "$IMG"
}

echo "# ---- a full backup"
write_at "$DEV" 0 $((16 * 1024 * 1024)) oflag=direct
vol_sha >"$BT_TMP/sha.p1"
backup p1 "$R" --type full
assert_eq "p1 exit" $rc 0
check p1 "$R"

echo "# ---- an administrator aborts and checkpoints again at backup-complete"
write_at "$DEV" 8192 4096 oflag=direct
vol_sha >"$BT_TMP/sha.p2"
touch "$FLAGS/meddle"
backup p2 "$R"
rm "$FLAGS/meddle"
# The backup is in the repository; the kernel refused its COMMIT (ESTALE).
assert_eq "p2 exit (the kernel COMMIT refused)" $rc 1
grep -q "committed in the repository, but the kernel COMMIT failed" "$BT_TMP/err.p2" ||
	fail "p2 does not say that only the kernel COMMIT failed"
grep -q "no longer this backup's (Stale file handle: another program aborted" \
	"$BT_TMP/err.p2" || fail "p2 does not say why"
assert_eq "the message said once" \
	"$(grep -o 'committed in the repository' "$BT_TMP/err.p2" | wc -l)" 1
# The administrator's checkpoint (with the block) is still pending: not
# committed by a requester that did not take it.
assert_status "$DEV" pending yes
p2=$(blktrack list --repo "$R" --json | grep -o '"id": *[0-9]*' | tail -n 1 | grep -o '[0-9]*$')
echo "{\"backup\": $p2}" >"$BT_TMP/out.p2"
check p2 "$R"
vol_sha >"$BT_TMP/sha.p3"

echo "# ---- the next backup: recovery aborts that checkpoint, a resync keeps the block"
backup p3 "$R"
assert_eq "p3 exit" $rc 0
assert_field p3 recovery abort
assert_field p3 type resync
assert_status "$DEV" pending no
check p3 "$R"

echo "# ---- the chain goes on: incrementals"
write_at "$DEV" $((BLK + 4096)) 4096 oflag=direct
vol_sha >"$BT_TMP/sha.p4"
backup p4 "$R"
assert_eq "p4 exit" $rc 0
assert_field p4 type incremental
check p4 "$R"
# A failed backup (a writer aborts) costs no resync: the epoch's ABORT half.
touch "$FLAGS/reject"
printf '#!/bin/sh\n[ "$1" = backup-complete ] && [ -e "%s/reject" ] && exit 1\nexit 0\n' \
	"$FLAGS" >"$W/30-reject"
chmod 0755 "$W/30-reject"
write_at "$DEV" $((BLK + 8192)) 4096 oflag=direct
backup rejected "$R"
assert_eq "rejected exit" $rc 8
rm "$FLAGS/reject"
vol_sha >"$BT_TMP/sha.p5"
backup p5 "$R"
assert_eq "p5 exit" $rc 0
assert_field p5 type incremental
check p5 "$R"

echo "# ---- a corrupt delta: a resync, not a failure of every later backup"
# p5's delta: the next incremental (based on p5) needs none, a differential
# (based on p1) needs all since p1.
d=$R/deltas/$(jfield "$BT_TMP/out.p5" backup).set
[ -f "$d" ] || fail "no $d"
printf '\377' | dd of="$d" bs=1 seek=30 conv=notrunc status=none
write_at "$DEV" $((BLK + 12288)) 4096 oflag=direct
vol_sha >"$BT_TMP/sha.p5b"
backup p5b "$R" --type differential
assert_eq "p5b exit" $rc 0
assert_field p5b type resync
grep -q "deltas/.*corrupt" "$BT_TMP/err.p5b" || fail "p5b does not name the corrupt delta"
check p5b "$R"
# verify checks the deltas later backups use: exit 4, naming the file,
# until a full backup makes that delta unused.
blktrack verify --repo "$R" >/dev/null 2>"$BT_TMP/err.verify"
rc=$?
cat "$BT_TMP/err.verify"
assert_eq "verify with a corrupt delta: exit" $rc 4
grep -q "$d.*corrupt" "$BT_TMP/err.verify" || fail "verify does not name $d"
vol_sha >"$BT_TMP/sha.p5c"
backup p5c "$R" --type full
assert_eq "p5c exit" $rc 0
bt verify --repo "$R"

echo "# ---- the volume lock: two repositories, one volume"
touch "$FLAGS/hold"
vol_sha >"$BT_TMP/sha.p6"
# In the background by itself: $! is the requester's pid.
blktrack backup "$DEV" --repo "$R" --writers-dir "$W" --json >"$BT_TMP/out.p6" &
holder=$!
i=0
while [ ! -e "$FLAGS/held" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "$FLAGS/held" ] || fail "the first backup never reached post-snapshot"
rm "$FLAGS/hold"
backup busy "$R2" --type full
assert_eq "a second requester of the volume: exit" $rc 1
grep -q "in use by another blktrack requester (pid $holder," "$BT_TMP/err.busy" ||
	fail "the refusal does not name the holder's pid $holder"
t0=$(date +%s)
backup busywait "$R2" --type full --wait=1
assert_eq "--wait=1 on a held volume: exit" $rc 1
grep -q "still after the wait" "$BT_TMP/err.busywait" || fail "--wait=1 does not say it waited"
[ $(( $(date +%s) - t0 )) -ge 1 ] || fail "--wait=1 did not wait"
vol_sha >"$BT_TMP/sha.q1"
blktrack backup "$DEV" --repo "$R2" --writers-dir "$W" --type full --wait --json \
	>"$BT_TMP/out.q1" &
waiter=$!
sleep 1
alive $waiter || fail "the --wait backup did not wait"
assert_status "$DEV" pending yes
touch "$FLAGS/release"
wait $holder || fail "the holder exited $?"
wait $waiter || fail "the --wait backup exited $?"
rm "$FLAGS/release" "$FLAGS/held"
check p6 "$R"
check q1 "$R2"
assert_status "$DEV" pending no
bt detach "$DEV"
ok "one owner per checkpoint"

#!/bin/sh
# A model-based chain test: a seeded random sequence of steps on a raw
# 8 MiB loop device (no filesystem: the test controls every byte), checked
# after each step against the test's own image of the volume (REF):
#  - writes (random byte offsets and sizes, O_DIRECT or buffered + fsync),
#    discards, zero-ranges (BLKZEROOUT, fallocate ZERO_RANGE and PUNCH_HOLE
#    on the device), each applied to REF as well (tests/vm/progs/chain-model.c);
#  - backups of a random type (full, incremental, differential, copy, resync,
#    the default): the type, parent, fell_back and recovery each must be the
#    one the model predicts (tracking lost since the base -> resync; no base
#    -> incremental and differential refused), then the backup is restored
#    and its hash must be REF's when it was taken (chain-model hash: fast
#    under TCG); now and then an older backup is restored too;
#  - failed backups: a writer rejecting at backup-complete (exit 8), the
#    requester killed after the checkpoint, during the write, after the
#    catalog update (exit 137; the next backup's recovery must abort or
#    commit accordingly, an after-catalog backup is a point of the chain);
#  - module reloads, re-attaches and unclean "reboots" (tracking lost,
#    sometimes a write while nothing tracks the volume: the next incremental
#    must be a resync, which must hold that write), and clean "reboots"
#    (detach --save, rmmod, insmod, attach --restore-state: the history goes
#    on, the next incremental is an incremental; refused while a crashed
#    backup's checkpoint is pending);
#  - blktrack verify, and verify --against the device, whose exit (0 or 5)
#    the model predicts from whether REF changed since the last backup.
# At each verify step and when a restore differs, the device must equal REF
# byte for byte (a check of the model itself). At the end, backups spread
# over the whole run are restored once more.
#
# Seed and length: BT_TEST_SEED (default: random, printed), BT_TEST_STEPS
# (default 200); from the host, e.g.
#	BT_TEST_SEED=123 BT_TEST_STEPS=2000 BLKTRACK_TEST_TIMEOUT=3000 \
#		VM_TIMEOUT=3600 tests/vm/run.sh 0980
# The repository (on /dev/vda2) is started afresh when it outgrows 100 MiB.
. /blktrack/tests/vm/lib/testlib.sh
M=/blktrack/build/vmprogs/chain-model
SEED=${BT_TEST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
STEPS=${BT_TEST_STEPS:-200}
SIZE=$((8 << 20))
REPO_MAX_KIB=$((100 << 10))
mnt=/mnt/bt0980
R=$mnt/repo
SD=$BT_TMP/state
REF=$BT_TMP/ref.img
IMG=$BT_TMP/restore.img
W=$BT_TMP/writers.d
PTS=$BT_TMP/points
cleanup_model() {
	umount $mnt 2>/dev/null
	cleanup_all
	echo "# seed $SEED, $STEPS steps (replay: BT_TEST_SEED=$SEED BT_TEST_STEPS=$STEPS tests/vm/run.sh 0980)"
}
trap cleanup_model EXIT

echo "# seed $SEED, $STEPS steps"
setup_disk
run mkfs_ext4 -q -F /dev/vda2
mkdir -p $mnt "$SD" "$W"
run mount -t ext4 /dev/vda2 $mnt
truncate -s $SIZE $BT_TMP/vol.img
DEV=$(losetup --show -f $BT_TMP/vol.img) || fail "losetup"
truncate -s $SIZE "$REF"
printf '#!/bin/sh\n[ "$1" = backup-complete ] && exit 1\nexit 0\n' >"$W/10-reject"
chmod +x "$W/10-reject"
bt init --repo "$R"
bt attach "$DEV"

# ---- the model -------------------------------------------------------------
# have_base: the repository holds a full (then also a base for incrementals)
# base_id, full_id: the newest full/incremental/resync, the newest full
# gap: tracking was lost since base_id (no full or resync since)
# kinvalid: the kernel reports the volume invalid (until the next commit)
# pending: none, or what the next backup's recovery must do (abort, commit)
# last_id, last_sha: the newest committed backup and REF's hash then
# saved: a state file exists (the next unclean restore says unclean)
have_base=0 base_id=0 full_id=0 gap=0 kinvalid=0 pending=none
last_id=0 last_sha= saved=0
: >"$PTS"
nbackups=0 nresync=0 nfull=0 nrestore=0 nrotate=0

ref_sha() {
	$M hash "$REF" || fail "chain-model hash $REF"
}

# The device must hold what the test wrote.
check_device() {
	$M cmp "$DEV" "$REF" && return 0
	# The test's image in the place of a restored one: no backup involved.
	keep_evidence "step $n: the device differs from the test's image" "$REF" "$DEV"
	fail "step $n: the device differs from the test's image"
}

# expect TYPE: what a backup of TYPE must do now: e_rc (0, or 1 when
# refused), e_type, e_parent, e_fell (fell_back).
expect() {
	local t=$1
	e_rc=0 e_fell=false e_parent=0
	if [ "$t" = auto ]; then
		t=full
		[ $have_base = 1 ] && t=incremental
	fi
	case $t in
	full|copy)
		e_type=$t ;;
	resync)
		e_type=full
		[ $have_base = 1 ] && e_type=resync e_parent=$base_id ;;
	incremental|differential)
		if [ $kinvalid = 1 ] || { [ $have_base = 1 ] && [ $gap = 1 ]; }; then
			e_fell=true e_type=full
			[ $have_base = 1 ] && e_type=resync e_parent=$base_id
		elif [ $have_base = 0 ]; then
			e_rc=1
		elif [ $t = incremental ]; then
			e_type=incremental e_parent=$base_id
		else
			e_type=differential e_parent=$full_id
		fi ;;
	esac
}

# committed TYPE ID SHA: the model after a committed backup.
committed() {
	case $1 in
	full) have_base=1 base_id=$2 full_id=$2 gap=0 nfull=$((nfull + 1)) ;;
	incremental) base_id=$2 ;;
	resync) base_id=$2 gap=0 nresync=$((nresync + 1)) ;;
	esac
	kinvalid=0 last_id=$2 last_sha=$3
	nbackups=$((nbackups + 1))
	echo "$2 $3 $1" >>"$PTS"
}

# restore_check ID SHA: restore backup ID, compare with SHA.
restore_check() {
	rm -f "$IMG"
	blktrack restore --repo "$R" --backup "$1" "$IMG" >"$BT_TMP/restore.out" 2>&1 || {
		cat "$BT_TMP/restore.out"
		fail "step $n: restore of backup $1 exited $?"
	}
	got=$($M hash "$IMG")
	[ "$got" = "$2" ] || {
		check_device
		$M cmp "$IMG" "$REF"
		# REF is the volume now, the backup's point if nothing changed since.
		keep_evidence "step $n: backup $1 restores to hash $got, wanted $2" \
			"$IMG" "$REF" "$R" "$1"
		fail "step $n: backup $1 restores to hash $got, the test's image was $2"
	}
	rm -f "$IMG"
	nrestore=$((nrestore + 1))
}

# assert_kernel yes|no: a checkpoint pending or not; if not, the state the
# model says (invalid from an unclean restore until a backup commits).
assert_kernel() {
	local want="pending: $1" got
	if [ "$1" = no ] && [ $kinvalid = 1 ]; then
		want="$want state: invalid"
	elif [ "$1" = no ]; then
		want="$want state: tracking"
	fi
	blktrack status "$DEV" >"$BT_TMP/status" || fail "step $n: blktrack status exited $?"
	got=$(grep '^pending:' "$BT_TMP/status" | tr -s ' ')
	[ "$1" = yes ] || got="$got $(grep '^state:' "$BT_TMP/status" | tr -s ' ')"
	[ "$got" = "$want" ] || { cat "$BT_TMP/status"; fail "step $n: status: '$got', wanted '$want'"; }
}

# A repository past REPO_MAX_KIB is replaced by an empty one (long runs).
maybe_rotate() {
	[ "$pending" = none ] || return 0
	[ "$(du -sk "$R" 2>/dev/null | cut -f1)" -gt $REPO_MAX_KIB ] 2>/dev/null || return 0
	echo "# step $n: the repository holds $(du -sh "$R" | cut -f1): starting a new one"
	rm -rf "$R"
	bt init --repo "$R" >/dev/null
	have_base=0 base_id=0 full_id=0 gap=0 last_id=0 last_sha=
	: >"$PTS"
	nrotate=$((nrotate + 1))
}

# backup_run TYPE [OPTIONS...]: output in $BT_TMP/out, exit in rc; killed
# at $crash_at when set.
crash_at=
backup_run() {
	local t=$1 tt=
	shift
	[ "$t" = auto ] || tt="--type $t"
	echo "+ ${crash_at:+BLKTRACK_TEST_CRASH_AT=$crash_at }blktrack backup $DEV --repo $R --json $tt $*"
	# shellcheck disable=SC2086
	env ${crash_at:+BLKTRACK_TEST_CRASH_AT=$crash_at} blktrack backup "$DEV" --repo "$R" \
		--json $tt "$@" >"$BT_TMP/out" 2>"$BT_TMP/err"
	rc=$?
}

# A field of the backup's JSON output must be the model's.
want() {
	local got
	got=$(jfield "$BT_TMP/out" "$1")
	[ "$got" = "$2" ] || {
		cat "$BT_TMP/out" "$BT_TMP/err"
		fail "step $n: backup $3: $1 is '$got', the model says '$2'"
	}
}

step_backup() {
	local t=$1 sha id
	maybe_rotate
	sha=$(ref_sha)
	expect "$t"
	backup_run "$t"
	if [ $e_rc != 0 ]; then
		[ $rc = $e_rc ] || {
			cat "$BT_TMP/out" "$BT_TMP/err"
			fail "step $n: backup --type $t exited $rc, the model says $e_rc (no base)"
		}
		ok "step $n: backup --type $t refused: no base"
		pending=none
		assert_kernel no
		return
	fi
	[ $rc = 0 ] || { cat "$BT_TMP/out" "$BT_TMP/err"; fail "step $n: backup $t exited $rc"; }
	want type "$e_type" "$t"
	want parent "$e_parent" "$t"
	want fell_back "$e_fell" "$t"
	want recovery "$pending" "$t"
	id=$(jfield "$BT_TMP/out" backup)
	pending=none
	committed "$e_type" "$id" "$sha"
	assert_kernel no
	restore_check "$id" "$sha"
	ok "step $n: backup $id ($t -> $e_type, parent $e_parent) restores to the image"
}

step_fail() {
	local t=$1 how=$2 sha last
	expect "$t"
	[ $e_rc = 0 ] || { step_backup "$t"; return; }
	maybe_rotate
	sha=$(ref_sha)
	if [ "$how" = reject ]; then
		backup_run "$t" --writers-dir "$W"
		[ $rc = 8 ] || { cat "$BT_TMP/out" "$BT_TMP/err"; fail "step $n: rejected backup exited $rc, not 8"; }
		pending=none
		assert_kernel no
		ok "step $n: backup $t rejected at backup-complete: exit 8"
		return
	fi
	crash_at=$how
	backup_run "$t"
	crash_at=
	[ $rc = 137 ] || { cat "$BT_TMP/out" "$BT_TMP/err"; fail "step $n: backup killed $how exited $rc, not 137"; }
	assert_kernel yes
	pending=abort
	if [ "$how" = after-catalog ]; then
		# The backup is committed in the catalog: a point of the chain.
		last=$(blktrack list --repo "$R" | awk 'NR > 1 { l = $1 " " $2 " " $3 " " $4 } END { print l }')
		set -- $last
		[ "$2 $3 $4" = "$e_type committed $e_parent" ] ||
			fail "step $n: the backup killed after the catalog is '$last', the model says '$e_type committed $e_parent'"
		committed "$e_type" "$1" "$sha"
		pending=commit
		restore_check "$1" "$sha"
	fi
	ok "step $n: backup $t killed $how (next recovery: $pending)"
}

load_again() {
	run rmmod blktrack
	load_module
}

# attach_restore REASON: attach --restore-state; REASON none: loaded.
attach_restore() {
	echo "+ blktrack attach $DEV --restore-state --state-dir $SD"
	blktrack attach "$DEV" --restore-state --state-dir "$SD" >"$BT_TMP/attach" ||
		fail "step $n: attach --restore-state exited $?"
	cat "$BT_TMP/attach"
	assert_status "$DEV" reason "$1"
}

step_reload() {
	local how=$1 off=$2 len=$3 dseed=$4
	bt detach "$DEV"
	[ "$how" = reattach ] || load_again
	if [ "$len" -gt 0 ]; then
		echo "# untracked write at $off, $len bytes"
		$M write "$DEV" "$REF" "$off" "$len" direct "$dseed" || fail "step $n: write"
	fi
	if [ "$how" = unclean ]; then
		if [ $saved = 1 ]; then attach_restore unclean; else attach_restore no-state; fi
		kinvalid=1
	else
		bt attach "$DEV"
		kinvalid=0
	fi
	gap=1 pending=none
	ok "step $n: $how reload: tracking lost"
}

step_reboot() {
	local gen epoch
	if [ "$pending" != none ]; then
		bt_fails 1 detach "$DEV" --save --state-dir "$SD"
		assert_kernel yes
		ok "step $n: no save while a checkpoint is pending: an unclean reboot instead"
		step_reload unclean 0 0 0
		return
	fi
	if [ $kinvalid = 1 ]; then
		# The map is not complete: the save is not clean.
		bt detach "$DEV" --save --state-dir "$SD" >"$BT_TMP/detach"
		cat "$BT_TMP/detach"
		grep -q "NOT clean (tracking invalid" "$BT_TMP/detach" ||
			fail "step $n: an invalid volume saved clean, or not saying why"
		saved=1
		load_again
		attach_restore unclean
		gap=1
		ok "step $n: reboot while invalid: still invalid"
		return
	fi
	gen=$(status_get "$DEV" generation)
	epoch=$(status_get "$DEV" epoch)
	bt detach "$DEV" --save --state-dir "$SD"
	saved=1
	load_again
	attach_restore none
	grep -q "saved history loaded" "$BT_TMP/attach" || fail "step $n: the saved history was not loaded"
	assert_status "$DEV" generation "$gen"
	assert_status "$DEV" epoch "$epoch"
	ok "step $n: clean reboot: the history goes on"
}

step_restore() {
	local k line
	k=$(wc -l <"$PTS")
	[ "$k" -gt 0 ] || return 0
	line=$(sed -n "$(($1 % k + 1))p" "$PTS")
	set -- $line
	restore_check "$1" "$2"
	ok "step $n: older backup $1 ($3) restores to the image it was taken from"
}

# blktrack verify of the newest backup's chain (its progress line, on the
# console's terminal, kept out of the log).
verify_chain() {
	echo "+ blktrack verify --repo $R"
	blktrack verify --repo "$R" >"$BT_TMP/verify" 2>&1 || {
		cat "$BT_TMP/verify"
		fail "step $n: blktrack verify exited $?"
	}
}

step_verify() {
	local want=5
	[ "$last_id" != 0 ] || return 0
	verify_chain
	check_device
	[ "$(ref_sha)" = "$last_sha" ] && want=0
	echo "+ blktrack verify --repo $R --against $DEV (must exit $want)"
	blktrack verify --repo "$R" --against "$DEV" >/dev/null 2>&1
	rc=$?
	if [ $rc != $want ]; then
		# The model's last backup: what verify --against compares with.
		rm -f "$IMG"
		blktrack restore --repo "$R" --backup "$last_id" "$IMG" >/dev/null 2>&1 &&
			keep_evidence "step $n: verify --against $DEV exited $rc, the model says $want" \
				"$IMG" "$DEV" "$R" "$last_id"
		fail "step $n: verify --against $DEV exited $rc, the model says $want"
	fi
	ok "step $n: verify, --against the device: $rc"
}

$M plan "$SEED" "$STEPS" $SIZE >"$BT_TMP/plan" || fail "chain-model plan"
while read -r n op a b c d <&3; do
	echo "# step $n: $op $a ${b:-} ${c:-} ${d:-} (at $(cut -d' ' -f1 /proc/uptime) s)"
	case $op in
	write) $M write "$DEV" "$REF" "$a" "$b" "$c" "$d" || fail "step $n: write" ;;
	discard) $M discard "$DEV" "$REF" "$a" "$b" || fail "step $n: discard" ;;
	zero) $M zero "$DEV" "$REF" "$a" "$b" "$c" || fail "step $n: zero" ;;
	backup) step_backup "$a" ;;
	fail) step_fail "$a" "$b" ;;
	reload) step_reload "$a" "$b" "$c" "$d" ;;
	reboot) step_reboot ;;
	restore) step_restore "$a" ;;
	verify) step_verify ;;
	*) fail "unknown step $op" ;;
	esac
done 3<"$BT_TMP/plan"

echo "# ---- the end: backups spread over the run still restore to their image"
n=end
step_backup incremental
k=$(wc -l <"$PTS")
stride=$(( (k + 11) / 12 ))
i=0
while read -r id sha type <&3; do
	[ $((i % stride)) = 0 ] && restore_check "$id" "$sha"
	i=$((i + 1))
done 3<"$PTS"
verify_chain
ok "seed $SEED: $STEPS steps, $nbackups backups ($nfull full, $nresync resync), $nrestore restores, $nrotate new repositories"
bt detach "$DEV"
run losetup -d "$DEV"
check_no_leak

#!/bin/sh
# Stress (issue 4), on 2 vCPUs, for STRESS_SECS seconds (default 20; `make
# soak` runs 600) in rounds of at most STRESS_ROUND_SECS (30). A round:
#   - a fresh repository and a full backup of /dev/vda1;
#   - fio, 4 writer jobs on /dev/vda1 (random writes of mixed sizes from
#     512 bytes to 128 KiB, one job trimming before it writes), O_DIRECT,
#     several requests in flight, STRESS_KIBPS (256) KiB/s per job;
#   - from fio's first write to its end, progs/stress-backup: a cycle every
#     50 ms (at least 10): incremental backups into the repository (checkpoint, read,
#     commit) and every fifth cycle an abort (a backup rejected by a writer
#     at backup-complete, or a bare checkpoint + read + abort); tracking must
#     never be lost, the epoch grows by one per commit and 2^32 per abort;
#   - a loop attaching /dev/vda2 (block sizes in turn), writing it, sometimes
#     checkpointing and committing it, and detaching it, sometimes with a
#     checkpoint pending;
#   - then, quiescent: one last incremental; the chain restored from the
#     repository equals /dev/vda1 bit for bit.
# At the end the kernel log must be free of oopses, warnings, lockups, RCU
# stalls and hung tasks, and after the detach the allocation counter is 0.
# vm-smp: 2
. /blktrack/tests/vm/lib/testlib.sh
W=$BT_TMP/reject.d
IMG=$BT_TMP/restore.img
STOP=$BT_TMP/stop
ERR=$BT_TMP/loop.err
secs=${STRESS_SECS:-20}
round_max=${STRESS_ROUND_SECS:-30}
kibps=${STRESS_KIBPS:-256}
cleanup_stress() {
	touch "$STOP"
	for p in ${FIO_PID:-} ${DRV_PID:-} ${LOOP_PID:-}; do
		kill "$p" 2>/dev/null
	done
	wait
	cleanup_all
}
trap cleanup_stress EXIT

ncpu=$(grep -c '^processor' /proc/cpuinfo)
# 2 vCPUs by default; `VM_SMP=1|4 make soak` runs it on 1 (the writers and the
# cycles interleave by preemption only) or 4.
[ "$ncpu" -ge 2 ] || echo "# 1 vCPU: writers and backups interleave by preemption only"
ok "$ncpu vCPUs; ${secs}s of stress in rounds of at most ${round_max}s, fio at $kibps KiB/s per job"

setup_disk
# Random content first: a block the tracker missed would restore stale.
run dd if=/dev/urandom of=/dev/vda1 bs=1M count=64 oflag=direct status=none
bt attach /dev/vda1
mkdir -p "$W"
printf '#!/bin/sh\n[ "$1" = backup-complete ] && exit 1\nexit 0\n' >"$W/10-reject"
chmod +x "$W/10-reject"

# attach_loop: /dev/vda2 attached, written, checkpointed, detached, until
# $STOP exists. The number of passes goes to $BT_TMP/passes, a failure to $ERR.
attach_loop() {
	local i=0 bs
	while [ ! -e "$STOP" ]; do
		case $((i % 3)) in
		0) bs=4096 ;;
		1) bs=65536 ;;
		2) bs=1048576 ;;
		esac
		blktrack attach /dev/vda2 --block-size $bs >/dev/null ||
			{ echo "pass $i: attach --block-size $bs failed" >>"$ERR"; return; }
		dd if=/dev/urandom of=/dev/vda2 bs=4096 count=$((i % 7 + 1)) \
			seek=$(((i * 97) % 40000)) oflag=direct conv=notrunc status=none ||
			{ echo "pass $i: write failed" >>"$ERR"; return; }
		blktrack status /dev/vda2 >/dev/null ||
			{ echo "pass $i: status failed" >>"$ERR"; return; }
		if [ $((i % 2)) = 1 ]; then
			blktrack checkpoint /dev/vda2 >/dev/null ||
				{ echo "pass $i: checkpoint failed" >>"$ERR"; return; }
			[ $((i % 4)) = 1 ] && { blktrack commit /dev/vda2 >/dev/null ||
				{ echo "pass $i: commit failed" >>"$ERR"; return; }; }
		fi
		blktrack detach /dev/vda2 ||
			{ echo "pass $i: detach failed" >>"$ERR"; return; }
		i=$((i + 1))
		echo $i >"$BT_TMP/passes"
	done
}

# backup_quiet NAME ARGS...: blktrack backup /dev/vda1 --repo $R --json
# ARGS, output in $BT_TMP/out.NAME (progress and errors in err.NAME).
backup_quiet() {
	local name=$1
	shift
	echo "+ blktrack backup /dev/vda1 --repo $R --json $*"
	blktrack backup /dev/vda1 --repo "$R" --json "$@" >"$BT_TMP/out.$name" \
		2>"$BT_TMP/err.$name" || {
		cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
		fail "backup $name failed"
	}
}

# wait_fio: until fio's writes show in the active map (fio starts slowly).
wait_fio() {
	local i=0
	while [ "$(status_get /dev/vda1 active_dirty)" = 0 ]; do
		kill -0 $FIO_PID 2>/dev/null || { cat "$BT_TMP/fio.out"; fail "fio ended early"; }
		[ $i -lt 600 ] || fail "fio wrote nothing within 60 s"
		sleep 0.1
		i=$((i + 1))
	done
}

# write_fio_job SECONDS: the fio job file, $BT_TMP/stress.fio.
write_fio_job() {
	cat >"$BT_TMP/stress.fio" <<-EOF
	[global]
	filename=/dev/vda1
	direct=1
	ioengine=libaio
	iodepth=4
	time_based
	runtime=$1
	randrepeat=0
	norandommap
	rate=${kibps}k
	[small]
	rw=randwrite
	bssplit=512/20:4k/60:8k/20
	[mixed]
	rw=randwrite
	bssplit=4k/40:16k/30:64k/30
	[large]
	rw=randwrite
	bssplit=32k/50:128k/50
	iodepth=2
	[trimwrite]
	rw=randtrimwrite
	ioengine=psync
	bs=4k-64k
	EOF
}

# stress_round N SECONDS
stress_round() {
	local n=$1 s=$2 t0 drc frc passes cycles id now
	echo "# ---- round $n: ${s}s of fio, backup cycles every 50 ms, attach/detach of /dev/vda2"
	R=$BT_TMP/repo.$n
	rm -rf "$BT_TMP"/repo.* "$STOP" "$ERR" "$BT_TMP/passes"
	bt init --repo "$R" >/dev/null
	backup_quiet full.$n --type full --on-invalid fail --no-fs-freeze --no-verify
	write_fio_job "$s"
	t0=$(cut -d' ' -f1 /proc/uptime)
	fio "$BT_TMP/stress.fio" >"$BT_TMP/fio.out" 2>&1 &
	FIO_PID=$!
	wait_fio
	"$BT_TOP"/build/vmprogs/stress-backup /dev/vda1 "$R" "$STOP" 50 "$W" \
		>"$BT_TMP/drv.out" 2>&1 &
	DRV_PID=$!
	attach_loop &
	LOOP_PID=$!

	wait $FIO_PID
	frc=$?
	FIO_PID=
	touch "$STOP"
	wait $DRV_PID
	drc=$?
	DRV_PID=
	wait $LOOP_PID
	LOOP_PID=
	echo "# round $n: stress phase took $(awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime)s"
	grep -v 'writer 10-reject' "$BT_TMP/drv.out"
	[ $drc = 0 ] || fail "stress-backup exited $drc"
	[ $frc = 0 ] || { cat "$BT_TMP/fio.out"; fail "fio exited $frc"; }
	grep -E '^ +(write|trim):' "$BT_TMP/fio.out" | sed 's/^ */# fio /'
	[ -s "$ERR" ] && { cat "$ERR"; fail "the attach/detach loop failed"; }
	passes=$(cat "$BT_TMP/passes" 2>/dev/null || echo 0)
	[ "$passes" -gt 0 ] || fail "the attach/detach loop did no pass"
	[ -z "$(attached | grep -F /dev/vda2)" ] || fail "/dev/vda2 still attached"
	cycles=$(sed -n 's/^stress-backup: \([0-9]*\) cycles.*/\1/p' "$BT_TMP/drv.out")
	ok "round $n: ${cycles:-?} backup cycles, $passes attach/detach passes of /dev/vda2"

	# Quiescent: the last incremental takes whatever the cycles left.
	backup_quiet last.$n --type incremental --on-invalid fail --no-fs-freeze --no-verify
	vol_sha >"$BT_TMP/sha.last.$n"
	echo "# repository: $(du -sk "$R" | cut -f1) KiB," \
		"$(blktrack list --repo "$R" --json | grep -c '"id"') backups"
	# A mismatch keeps the evidence (the repository, the restored image and
	# /dev/vda1's, the round's logs) before the test fails.
	id=$(jfield "$BT_TMP/out.last.$n" backup)
	EVIDENCE_FILES="$BT_TMP/drv.out $BT_TMP/fio.out $BT_TMP/stress.fio $BT_TMP/out.last.$n
		$BT_TMP/err.last.$n $BT_TMP/out.full.$n $BT_TMP/err.full.$n"
	restore_compare "$R" "$id" last.$n "$IMG" 2>/dev/null
	now=$(vol_sha)
	if [ "$now" != "$(cat "$BT_TMP/sha.last.$n")" ]; then
		rm -f "$IMG"
		blktrack restore --repo "$R" --backup "$id" "$IMG" >/dev/null &&
			keep_evidence "round $n: /dev/vda1 changed after its last backup" \
				"$IMG" /dev/vda1 "$R" "$id"
	fi
	assert_eq "round $n: /dev/vda1 unchanged since its last backup" "$now" \
		"$(cat "$BT_TMP/sha.last.$n")"
	rm -rf "$R" "$IMG"
}

n=1
left=$secs
while [ "$left" -gt 0 ]; do
	s=$left
	[ "$s" -le "$round_max" ] || s=$round_max
	stress_round $n $s
	left=$((left - s))
	n=$((n + 1))
done

echo "# ---- the kernel stayed quiet, nothing leaked"
bt detach /dev/vda1
check_no_leak
check_kernel_log

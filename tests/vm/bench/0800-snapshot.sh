#!/bin/sh
# Benchmark (issue 6): what a copy-before-write snapshot costs the writers,
# and what its store holds, in one boot.
#
# Devices: brd (BRD_MIB, filled once first: no case pays brd's page
# allocation, and a copy reads real data: the CPU cost), and null_blk with
# LAT_US microseconds of completion latency on every I/O (irqmode=2, a
# timer: deterministic under icount; memory_backed=0, so data is not kept):
# a device whose reads take time, as real ones do. Cases, each on the same
# device, after the same untimed dd of the region [0, REGION_MIB):
#   none:          nothing attached;
#   tracked:       attached at 4 KiB, then CHECKPOINT (a pending map, no
#                  snapshot: the writes mark a fresh active map, as below);
#   snap_pending:  attached, CHECKPOINT_SNAP: the pending map (the region)
#                  is protected;
#   snap_all:      attached, CHECKPOINT_SNAP with BLKTRACK_SNAP_ALL (what
#                  `blktrack backup --snapshot=cow` takes): every block is
#                  protected until the backup reads or releases it.
# Workloads, fio 4k random writes, libaio O_DIRECT, QD32, in this order:
#   first:    each block of the region once (fio's random map): under a
#             snapshot every write is the first to a protected block, so
#             each waits for its block's copy;
#   rewrite:  the region again, SECS guest seconds (no random map): every
#             block was copied by "first", so these are rewrites;
#   outside:  each block of [OUT_MIB, OUT_MIB + REGION_MIB) once: outside
#             the pending map, so not protected by snap_pending, but first
#             writes to protected blocks under snap_all (the policy's cost).
# Random offsets use a fixed seed per workload: every case writes the same
# blocks. Figures: IOPS, medians over ROUNDS, ratios to none and to tracked;
# SNAP_STATUS (copied blocks, store bytes) after each snapshot case. Keys
# brd_* and lat_*.
#
# Then the store against the bytes rewritten during a read (progs/snapchurn,
# a SNAP_ALL snapshot of the whole device, read in order in CHURN_CHUNK_MIB
# pieces that each release their range, as the requester reads; on brd, and
# the read is checked against the volume): CHURN_BLOCKS distinct blocks
# rewritten all before the read, then spread evenly over it.
# Prints "BENCH key value" lines.
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod brd 2>/dev/null; rmmod null_blk 2>/dev/null' EXIT

ROUNDS=${ROUNDS:-1}
SECS=${BT_TEST_SECS:-2}
BRD_MIB=256
LAT_US=100
REGION_MIB=64
OUT_MIB=128
STORE_LIMIT=$((192 << 20))
CHURN_BLOCKS=8192
CHURN_CHUNK_MIB=4
CASES="none tracked snap_pending snap_all"
WORKLOADS="first rewrite outside"
snap=$BT_TOP/build/vmprogs/snapread
churn=$BT_TOP/build/vmprogs/snapchurn
DEVS="brd lat"

[ -x $snap ] && [ -x $churn ] || fail "no $snap or $churn (make vmprogs)"
load_module
load_kmod brd rd_nr=1 rd_size=$((BRD_MIB * 1024))
load_kmod null_blk nr_devices=1 gb=1 queue_mode=2 irqmode=2 \
	completion_nsec=$((LAT_US * 1000)) memory_backed=0
[ -b /dev/ram0 ] && [ -b /dev/nullb0 ] || fail "no /dev/ram0 or /dev/nullb0"
run dd if=/dev/urandom of=/dev/ram0 bs=1M count=$BRD_MIB oflag=direct status=none

# fio_iops WORKLOAD: write IOPS of one run (terse v3: field 49).
fio_iops() {
	local opts
	case $1 in
	first) opts="--offset=0 --size=${REGION_MIB}M --randseed=801" ;;
	rewrite) opts="--offset=0 --size=${REGION_MIB}M --randseed=802 --norandommap
		--time_based --runtime=$SECS" ;;
	outside) opts="--offset=${OUT_MIB}M --size=${REGION_MIB}M --randseed=803" ;;
	esac
	# shellcheck disable=SC2086
	fio --name=w --filename=$dev --rw=randwrite --bs=4k --iodepth=32 \
		--ioengine=libaio --direct=1 $opts --minimal |
		awk -F';' '{ print $49 }'
}

snapget() {
	"$snap" status $dev | sed -n "s/^$1 //p"
}

case_up() {
	[ "$1" = none ] || blktrack attach $dev >/dev/null || fail "attach $dev"
	dd if=/dev/urandom of=$dev bs=1M count=$REGION_MIB oflag=direct status=none ||
		fail "dd to $dev"
	case $1 in
	tracked) blktrack checkpoint $dev >/dev/null || fail "checkpoint $dev" ;;
	snap_pending) "$snap" take $dev $STORE_LIMIT >/dev/null || fail "snapread take" ;;
	snap_all) "$snap" take $dev $STORE_LIMIT all >/dev/null || fail "snapread take all" ;;
	esac
}

case_down() {
	[ "$1" = none ] && return
	blktrack commit $dev >/dev/null || fail "commit $dev"
	blktrack detach $dev >/dev/null || fail "detach $dev"
}

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Runs go to $BT_TMP/runs.DEV.WORKLOAD.CASE, one figure per round.
for r in $(seq "$ROUNDS"); do
	for d in $DEVS; do
		case $d in
		brd) dev=/dev/ram0 ;;
		lat) dev=/dev/nullb0 ;;
		esac
		for c in $CASES; do
			case_up $c
			line="round $r $d $c:"
			for w in $WORKLOADS; do
				v=$(fio_iops $w)
				[ -n "$v" ] && [ "$v" -gt 0 ] || fail "fio $w ($d $c) gave '$v'"
				echo "$v" >>"$BT_TMP/runs.$d.$w.$c"
				line="$line $w $v"
				case $c in
				snap_*)
					line="$line (copied $(snapget copied))"
					[ "$(snapget overflow)" = 0 ] || fail "the snapshot was lost ($d $c $w)"
					;;
				esac
			done
			case $c in
			snap_*)
				"$snap" status $dev >"$BT_TMP/snapst.$d.$c"
				for k in protected copied held store_bytes; do
					echo "$(sed -n "s/^$k //p" "$BT_TMP/snapst.$d.$c")" >"$BT_TMP/st.$d.$c.$k"
				done
				line="$line; $(paste -s -d' ' "$BT_TMP/snapst.$d.$c")"
				;;
			esac
			case_down $c
			echo "$line"
		done
	done
done

for d in $DEVS; do
	for w in $WORKLOADS; do
		base=$(median <"$BT_TMP/runs.$d.$w.none")
		trk=$(median <"$BT_TMP/runs.$d.$w.tracked")
		for c in $CASES; do
			runs=$(paste -s -d' ' "$BT_TMP/runs.$d.$w.$c")
			m=$(echo "$runs" | median)
			echo "BENCH ${d}_${w}_${c} $m (runs: $runs)"
			[ $c = none ] && continue
			echo "BENCH ${d}_${w}_${c}_over_none $(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.3f", a / b }')"
			[ $c = tracked ] && continue
			echo "BENCH ${d}_${w}_${c}_over_tracked $(awk -v a="$m" -v b="$trk" 'BEGIN { printf "%.3f", a / b }')"
		done
	done
	for c in snap_pending snap_all; do
		for k in protected copied held store_bytes; do
			echo "BENCH ${d}_${c}_${k} $(cat "$BT_TMP/st.$d.$c.$k")"
		done
	done
done

echo "# ---- the store against the bytes rewritten during the read"
dev=/dev/ram0
bt attach $dev >/dev/null
for mode in before during; do
	echo "+ $churn $dev $CHURN_BLOCKS $CHURN_CHUNK_MIB $mode $STORE_LIMIT"
	$churn $dev $CHURN_BLOCKS $CHURN_CHUNK_MIB $mode $STORE_LIMIT >"$BT_TMP/churn.$mode" ||
		{ cat "$BT_TMP/churn.$mode"; fail "snapchurn $mode exited $?"; }
	cat "$BT_TMP/churn.$mode"
	while read -r k v; do
		echo "BENCH store_${mode}_$k $v"
	done <"$BT_TMP/churn.$mode"
	rw=$(sed -n 's/^rewritten_bytes //p' "$BT_TMP/churn.$mode")
	pk=$(sed -n 's/^peak_store_bytes //p' "$BT_TMP/churn.$mode")
	cp=$(sed -n 's/^copied_blocks //p' "$BT_TMP/churn.$mode")
	echo "BENCH store_${mode}_peak_over_rewritten $(awk -v a="$pk" -v b="$rw" 'BEGIN { printf "%.3f", a / b }')"
	echo "BENCH store_${mode}_copied_over_rewritten $(awk -v a="$cp" -v b="$rw" 'BEGIN { printf "%.3f", a * 4096 / b }')"
	bt commit $dev >/dev/null
done
bt detach $dev >/dev/null
check_no_leak

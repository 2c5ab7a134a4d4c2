#!/bin/sh
# Benchmark (issue 5): what a checkpoint costs, and whether a write waits
# for one. On 2 vCPUs, a null_blk volume (16 GiB, memory_backed=0,
# irqmode=0) tracked at 4 KiB; fio 4k random writes (libaio, O_DIRECT,
# pinned to CPU 0) at QD1 and QD32 for SECS guest seconds:
#   plain:  nothing else runs;
#   cycle:  progs/ckpt-cycle on CPU 1 runs CHECKPOINT then COMMIT every
#           100 ms, each ioctl timed (clock_gettime), then times one RCU
#           grace period alone (membarrier, -g): CHECKPOINT waits for one;
#   read:   the same with READ_EXTENTS of the whole pending map in between,
#           as a backup would.
# Figures: CHECKPOINT and COMMIT latency (median and max, ns), fio's write
# IOPS and completion latency (p99.9 and max, us) for each; medians over
# ROUNDS. Under -icount two vCPUs run in turn on one host thread and the
# clock counts the instructions of both: a write's latency then includes
# whatever CPU 1 ran meanwhile, lock or no lock (doc/BENCHMARKS.md).
# vm-smp: 2
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null' EXIT

ROUNDS=${ROUNDS:-1}
SECS=${BT_TEST_SECS:-5}
dev=/dev/nullb0
cycle=$BT_TOP/build/vmprogs/ckpt-cycle
[ -x $cycle ] || fail "no $cycle (make vmprogs)"
[ "$(grep -c '^processor' /proc/cpuinfo)" -ge 2 ] || fail "needs 2 CPUs"
load_module
load_kmod null_blk nr_devices=1 gb=16 queue_mode=2 irqmode=0 memory_backed=0 submit_queues=2
[ -b $dev ] || fail "no $dev"
bt attach $dev >/dev/null

# fio_lat QD: "IOPS P99.9_US MAX_US" of one run on CPU 0 (terse v3: write
# IOPS field 49, clat max 56, clat percentiles 59-78).
fio_lat() {
	fio --name=w --filename=$dev --rw=randwrite --bs=4k --iodepth="$1" \
		--ioengine=libaio --direct=1 --time_based --runtime="$SECS" \
		--norandommap --randseed=$((500 + $1)) --cpus_allowed=0 --minimal |
		awk -F';' '{
			p = ""
			for (i = 59; i <= 78; i++)
				if ($i ~ /^99\.900000%=/) { sub(/.*=/, "", $i); p = $i }
			print $49, p, $56
		}'
}

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# put KEY VALUE: one more run of KEY; keys listed in order of first use.
: >"$BT_TMP/keys"
put() {
	grep -qx "$1" "$BT_TMP/keys" || echo "$1" >>"$BT_TMP/keys"
	echo "$2" >>"$BT_TMP/runs.$1"
}

for r in $(seq "$ROUNDS"); do
	for qd in 1 32; do
		for mode in plain cycle read; do
			opt=
			[ $mode = read ] && opt=-r
			[ $mode = cycle ] && opt=-g
			[ $mode = plain ] || $cycle -c 1 $opt $dev "$SECS" >"$BT_TMP/cycle.out" 2>&1 &
			set -- $(fio_lat $qd)
			[ $# = 3 ] || fail "fio QD$qd ($mode) gave '$*'"
			[ $mode = plain ] || wait $! || { cat "$BT_TMP/cycle.out"; fail "ckpt-cycle failed"; }
			put qd${qd}_${mode}_iops "$1"
			put qd${qd}_${mode}_clat_p999_us "$2"
			put qd${qd}_${mode}_clat_max_us "$3"
			line="round $r QD$qd $mode: iops $1 clat p99.9 $2 us max $3 us"
			if [ $mode != plain ]; then
				while read -r k v; do
					put "qd${qd}_${mode}_$k" "$v"
				done <"$BT_TMP/cycle.out"
				line="$line; $(paste -s -d' ' "$BT_TMP/cycle.out")"
			fi
			echo "$line"
		done
	done
done

for key in $(cat "$BT_TMP/keys"); do
	runs=$(paste -s -d' ' "$BT_TMP/runs.$key")
	echo "BENCH ckpt_$key $(echo "$runs" | median) (runs: $runs)"
done
bt detach $dev >/dev/null
check_no_leak

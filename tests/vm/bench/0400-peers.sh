#!/bin/sh
# Benchmark (issue 5): the write path against the peers, in one boot.
#
# Devices: null_blk (16 GiB, memory_backed=0, irqmode=0, as 0100) and brd
# (256 MiB, filled once first so that no case pays brd's page allocation).
# Cases, each over the same device: none (blktrack.ko loaded, nothing
# attached), blktrack at 4 KiB, blktrack at 64 KiB, dm-era at 4 KiB (8
# sectors; fresh metadata on a second brd each time), dm-linear alone (what
# any dm layer costs). Workloads, fio libaio O_DIRECT, SECS guest seconds
# each, in this order on a fresh map or dm device: 4k random writes at QD1,
# 4k random writes at QD32, 1 MiB sequential writes at QD1 (IOPS = MiB/s),
# the same from a buffer in one huge page (seq1m_huge, below), then 4k
# random rewrites at QD32 of the first REWRITE_MIB, written once
# (untimed) just before: every write lands on a block already marked, the
# steady state of a hot working set (dm-era's fast path: its first write of
# a block in an era waits for a metadata commit in its worker).
# Random offsets use a fixed seed per workload: every case writes the same
# blocks. seq1m's buffer is fio's malloc: how many physically contiguous
# pieces it has decides how many bio_vecs a write carries and so what the
# block layer spends splitting it, and that changes with the guest's free
# memory from run to run (untracked, 5,250-5,740 MiB/s on 6.12 in one
# boot). seq1m_huge's buffer is one hugetlb page: the same for every case.
#
# Figures are medians over ROUNDS (default 1: under icount a round is
# deterministic to a few parts in 10^5) and each case's ratio to "none" of the
# same device and workload, in this boot. Prints "BENCH key value" lines.
#
# PEERS_JOBS=N (0400-peers-smp.sh): N fio jobs pinned one per CPU, null_blk
# with N submission queues, keys prefixed "smpN_".
. /blktrack/tests/vm/lib/testlib.sh
trap 'peers_cleanup' EXIT

ROUNDS=${ROUNDS:-1}
SECS=${BT_TEST_SECS:-2}
JOBS=${PEERS_JOBS:-1}
PFX=
[ "$JOBS" -gt 1 ] && PFX=smp${JOBS}_
NULL_GB=16
BRD_MIB=256
CASES="none bt4k bt64k era linear"
REWRITE_MIB=64
WORKLOADS="rand4k_qd1 rand4k_qd32 seq1m seq1m_huge rewrite4k_qd32"

peers_cleanup() {
	cleanup_all
	rmmod null_blk 2>/dev/null
	rmmod brd 2>/dev/null
	echo "${hugepages_before:-0}" >/proc/sys/vm/nr_hugepages
}

hugepages_before=$(cat /proc/sys/vm/nr_hugepages)
# One 2 MiB page per job for seq1m_huge's buffer, and a spare.
echo $((JOBS + 1)) >/proc/sys/vm/nr_hugepages
[ "$(cat /proc/sys/vm/nr_hugepages)" -gt "$JOBS" ] || fail "no huge pages for seq1m_huge"
ncpu=$(grep -c '^processor' /proc/cpuinfo)
[ "$ncpu" -ge "$JOBS" ] || fail "$JOBS jobs need $JOBS CPUs; the guest has $ncpu"
load_module
load_kmod null_blk nr_devices=1 gb=$NULL_GB queue_mode=2 irqmode=0 \
	memory_backed=0 submit_queues="$JOBS"
load_kmod brd rd_nr=2 rd_size=$((BRD_MIB * 1024))
load_kmod dm-era
[ -b /dev/nullb0 ] && [ -b /dev/ram0 ] && [ -b /dev/ram1 ] ||
	fail "no /dev/nullb0, /dev/ram0 or /dev/ram1"
meta=/dev/ram1
run dd if=/dev/zero of=/dev/ram0 bs=1M count=$BRD_MIB oflag=direct status=none

# fio_iops TARGET WORKLOAD: write IOPS of one run (terse v3: field 49).
fio_iops() {
	local target=$1 rw bs qd seed size jobopt mem=malloc
	case $2 in
	rand4k_qd1) rw=randwrite bs=4k qd=1 seed=401 ;;
	rand4k_qd32) rw=randwrite bs=4k qd=32 seed=432 ;;
	seq1m) rw=write bs=1M qd=1 seed=1 ;;
	seq1m_huge) rw=write bs=1M qd=1 seed=1 mem=shmhuge ;;
	rewrite4k_qd32) rw=randwrite bs=4k qd=32 seed=433 ;;
	esac
	size=$(blockdev --getsize64 "$target")
	jobopt=
	if [ $2 = rewrite4k_qd32 ]; then
		dd if=/dev/zero of="$target" bs=1M count=$REWRITE_MIB oflag=direct \
			status=none || fail "dd to $target"
		jobopt="--size=${REWRITE_MIB}M"
	fi
	if [ "$JOBS" -gt 1 ]; then
		# Sequential jobs write a part each; random ones the whole device.
		[ $rw = write ] && jobopt="--size=$((size / JOBS)) --offset_increment=$((size / JOBS))"
		jobopt="$jobopt --numjobs=$JOBS --group_reporting --cpus_allowed=0-$((JOBS - 1)) --cpus_allowed_policy=split"
	fi
	fio --name=w --filename="$target" --rw=$rw --bs=$bs --iodepth=$qd \
		--ioengine=libaio --direct=1 --time_based --runtime="$SECS" \
		--norandommap --randseed=$seed --mem=$mem $jobopt --minimal |
		awk -F';' '{ print $49 }'
}

# case_up DEV CASE: start tracking DEV as CASE; prints the device to write.
case_up() {
	local dev=$1 sect
	sect=$(blockdev --getsz "$dev")
	case $2 in
	none) ;;
	bt4k) blktrack attach "$dev" >/dev/null || fail "attach $dev" ;;
	bt64k) blktrack attach "$dev" --block-size 65536 >/dev/null || fail "attach $dev 64K" ;;
	era)
		# All-zero first block: dm-era formats fresh metadata.
		dd if=/dev/zero of=$meta bs=1M count=4 oflag=direct status=none
		dmsetup create bt-era --table "0 $sect era $meta $dev 8" ||
			fail "dmsetup create era over $dev"
		dev=/dev/mapper/bt-era ;;
	linear)
		dmsetup create bt-lin --table "0 $sect linear $dev 0" ||
			fail "dmsetup create linear over $dev"
		dev=/dev/mapper/bt-lin ;;
	esac
	[ -b "$dev" ] || fail "no $dev"
	echo "$dev"
}

case_down() {
	case $2 in
	bt4k|bt64k) blktrack detach "$1" >/dev/null || fail "detach $1" ;;
	era) dmsetup remove bt-era || fail "dmsetup remove bt-era" ;;
	linear) dmsetup remove bt-lin || fail "dmsetup remove bt-lin" ;;
	esac
}

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Runs go to $BT_TMP/runs.DEV.WORKLOAD.CASE, one figure per round.
for r in $(seq "$ROUNDS"); do
	for d in null brd; do
		case $d in
		null) dev=/dev/nullb0 ;;
		brd) dev=/dev/ram0 ;;
		esac
		for c in $CASES; do
			target=$(case_up $dev $c) || fail "$c over $dev: $target"
			line="round $r $d $c:"
			for w in $WORKLOADS; do
				v=$(fio_iops "$target" $w)
				[ -n "$v" ] && [ "$v" -gt 0 ] || fail "fio $w on $target ($c) gave '$v'"
				echo "$v" >>"$BT_TMP/runs.$d.$w.$c"
				line="$line $w $v"
			done
			[ "$c" = era ] && line="$line ($(dmsetup status bt-era))"
			case_down $dev $c
			echo "$line"
		done
	done
done

for d in null brd; do
	for w in $WORKLOADS; do
		base=$(median <"$BT_TMP/runs.$d.$w.none")
		for c in $CASES; do
			runs=$(cat "$BT_TMP/runs.$d.$w.$c" | paste -s -d' ' -)
			m=$(echo "$runs" | median)
			echo "BENCH ${PFX}${d}_${w}_${c} $m (runs: $runs)"
			[ $c = none ] && continue
			echo "BENCH ${PFX}${d}_${w}_${c}_over_none $(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.3f", a / b }')"
		done
	done
done
check_no_leak

#!/bin/sh
# Benchmark (issue 2): fio 4k random writes at queue depth 32 on a null_blk
# device, in one boot: no module / module loaded, volume not attached /
# volume tracked at 4 KiB. Rounds alternate so drift hits every case alike;
# the figure is the median of each case and its ratio to "no module".
# Prints "BENCH key value" lines that tests/vm/bench.sh collects.
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null' EXIT

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-6}
dev=/dev/nullb0

load_kmod null_blk nr_devices=1 gb=1024 queue_mode=2 irqmode=0 memory_backed=0
[ -b "$dev" ] || fail "no $dev after loading null_blk"

# Write IOPS of one fio run (terse v3: field 49 is write IOPS).
fio_iops() {
	fio --name=w --filename="$dev" --rw=randwrite --bs=4k --iodepth=32 \
		--ioengine=libaio --direct=1 --time_based --runtime="$SECS" \
		--norandommap --randrepeat=0 --minimal | awk -F';' '{ print $49 }'
}

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

none= loaded= tracked=
for r in $(seq "$ROUNDS"); do
	rmmod blktrack 2>/dev/null
	module_loaded && fail "blktrack still loaded"
	none="$none $(fio_iops)"
	load_module
	loaded="$loaded $(fio_iops)"
	bt attach "$dev" >/dev/null
	tracked="$tracked $(fio_iops)"
	map=$(status_get "$dev" map_bytes)
	bt detach "$dev" >/dev/null
	echo "round $r: iops none/loaded/tracked:$(echo "$none" | awk '{ print $NF }')/$(echo "$loaded" | awk '{ print $NF }')/$(echo "$tracked" | awk '{ print $NF }') map_bytes $map"
done
m_none=$(echo "$none" | median)
m_loaded=$(echo "$loaded" | median)
m_tracked=$(echo "$tracked" | median)
echo "BENCH randwrite_qd32_iops_no_module $m_none (runs:$none)"
echo "BENCH randwrite_qd32_iops_loaded $m_loaded (runs:$loaded)"
echo "BENCH randwrite_qd32_iops_tracked_4k $m_tracked (runs:$tracked)"
echo "BENCH randwrite_qd32_tracked_over_none $(awk -v a="$m_tracked" -v b="$m_none" 'BEGIN { printf "%.3f", a / b }')"
check_no_leak

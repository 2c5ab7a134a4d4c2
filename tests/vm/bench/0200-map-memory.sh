#!/bin/sh
# Benchmark (issue 2): map memory of a 1 TiB null_blk volume tracked at
# 4 KiB (a) after a sequential write of the whole volume and (b) after 1 GiB
# of 4k random writes (fio's LFSR: no block written twice, so exactly 262144
# distinct blocks), under the default memory limit and under a small one;
# and the backup amplification the limit causes: dirty bytes / bytes written.
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null' EXIT

dev=/dev/nullb0
load_module
load_kmod null_blk nr_devices=1 gb=1024 queue_mode=2 irqmode=0 memory_backed=0
[ -b "$dev" ] || fail "no $dev after loading null_blk"

fio_run() {
	fio --name=w --filename="$dev" --ioengine=libaio --direct=1 --minimal "$@" >/dev/null ||
		fail "fio $* failed"
}

report() {
	local name=$1 written=$2 dirty map
	dirty=$(status_get "$dev" active_dirty)
	map=$(status_get "$dev" map_bytes)
	echo "BENCH ${name}_map_bytes $map"
	echo "BENCH ${name}_dirty_blocks $dirty"
	echo "BENCH ${name}_amplification $(awk -v d="$dirty" -v w="$written" 'BEGIN { printf "%.3f", d * 4096 / w }')"
	[ "$dirty" -ge $((written / 4096)) ] || fail "$name: $dirty dirty blocks < $((written / 4096)) written"
}

# (a) sequential fill: 1 TiB in 16 MiB direct writes (null_blk drops data).
bt attach "$dev"
t0=$(cut -d' ' -f1 /proc/uptime)
fio_run --rw=write --bs=16m --iodepth=4 --size=1t
sleep 1		# let the coarsening worker finish
echo "BENCH seqfill_seconds $(awk -v t0="$t0" '{ printf "%.0f", $1 - t0 }' /proc/uptime)"
report seqfill $((1 << 40))
bt detach "$dev"

# (b) 1 GiB of 4k random writes over the whole volume.
for limit in default $((512 << 10)); do
	if [ "$limit" = default ]; then
		bt attach "$dev"
	else
		bt attach "$dev" --mem-limit "$limit"
	fi
	fio_run --rw=randwrite --bs=4k --iodepth=32 --size=1t --io_size=1g \
		--random_generator=lfsr --randrepeat=0
	sleep 1
	echo "BENCH rand1g_limit_${limit}_mem_limit $(status_get "$dev" mem_limit)"
	report "rand1g_limit_${limit}" $((1 << 30))
	bt detach "$dev"
done
check_no_leak

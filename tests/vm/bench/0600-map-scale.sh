#!/bin/sh
# Benchmark (issue 5, "Memory at scale"): map memory of null_blk volumes of
# 1 TiB and 16 TiB (memory_backed=0) tracked at 4 KiB under the default
# memory limit, after
#	seqfill   a sequential write of the volume, 64 MiB writes (fio,
#	          io_uring with registered buffers in huge pages: the cheapest
#	          way here to move 16 TiB through the block layer)
#	rand1g    1 GiB of 4k random writes over the whole volume
#	rand10g   10 GiB of the same
#	hot1g     1 GiB of 4k random writes, 90% of them in 1% of the volume
#	          (49% to 50%), the rest over the other 99%
# each on a fresh attach. Random writes use fio's LFSR in disjoint ranges,
# so no block is written twice: the distinct bytes written are the bytes
# written. Figures come from `blktrack status` only (map_bytes,
# active_dirty): nothing here depends on how the map stores its leaves.
# Per case: map bytes, map bytes over a flat bitmap of the volume (1 bit per
# 4 KiB block: 32 MiB at 1 TiB, 512 MiB at 16 TiB), and the amplification
# (dirty bytes a backup would copy / distinct bytes written).
#
# What a sequential fill costs is the block layer's and fio's, not the
# tracker's: null_blk's default max_sectors is 255, so each 64 MiB write was
# split into 516 requests, and fio rewrites part of every 512 bytes of each
# buffer before a write (scramble_buffers, on by default). With max_sectors
# of 8 MiB (the most 128 segments of 64 KiB carry; more does not help) and
# scramble_buffers=0, 64 GiB cost 0.55 guest seconds on 6.12 instead of 3.55
# (tracked; 0.51 / 3.42 untracked): ~9 s per TiB, 16 TiB in ~2.5 guest
# minutes. The tracker sees the same sequence of bios, only fewer and larger.
# The fill goes 1 TiB at a time and stops after BT_TEST_FILL_SECS guest
# seconds (300); seqfill_filled_gib says how much was written, and the
# amplification is over that.
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null; echo 0 >/proc/sys/vm/nr_hugepages' EXIT

dev=/dev/nullb0
fill_secs=${BT_TEST_FILL_SECS:-300}
sizes=$(echo "${BT_TEST_SCALE_GIB:-1024:16384}" | tr : " ")	# GiB, colon-separated
rand_mib=${BT_TEST_RAND_MIB:-1024}	# the "1g" patterns; rand10g is 10 times this
bs=4096

now() {
	cut -d' ' -f1 /proc/uptime
}

fio_run() {
	fio --filename="$dev" --direct=1 --minimal "$@" >"$BT_TMP/fio.out" 2>&1 || {
		cat "$BT_TMP/fio.out"
		fail "fio $* failed"
	}
}

# report CASE WRITTEN_BYTES: the figures of the attached volume.
report() {
	local name=${gib}g_$1 written=$2 dirty map
	dirty=$(status_get "$dev" active_dirty)
	map=$(status_get "$dev" map_bytes)
	echo "BENCH ${name}_map_bytes $map"
	echo "BENCH ${name}_map_over_flat $(awk -v m="$map" -v f="$flat" 'BEGIN { printf "%.4f", m / f }')"
	echo "BENCH ${name}_dirty_blocks $dirty"
	echo "BENCH ${name}_amplification $(awk -v d="$dirty" -v w="$written" \
		'BEGIN { printf "%.3f", d * 4096 / w }')"
	# Jobs of one run may share the block at a range boundary: 4 at most.
	[ "$dirty" -ge $((written / bs - 4)) ] ||
		fail "$name: $dirty dirty blocks < $((written / bs)) written"
	[ "$map" -le "$flat" ] || echo "# $name: map larger than a flat bitmap ($flat)"
}

rand_common="--ioengine=libaio --rw=randwrite --bs=4k --iodepth=32 --random_generator=lfsr
	--norandommap --randrepeat=0"

load_module
# Two 64 MiB buffers in 2 MiB pages, for the fill.
echo 80 >/proc/sys/vm/nr_hugepages
for gib in $sizes; do
	load_kmod null_blk nr_devices=1 gb="$gib" queue_mode=2 irqmode=0 memory_backed=0 \
		max_sectors=16384
	[ -b "$dev" ] || fail "no $dev after loading null_blk gb=$gib"
	q=/sys/block/${dev#/dev/}/queue
	cat "$q/max_hw_sectors_kb" >"$q/max_sectors_kb"
	echo "# request size limit $(cat "$q/max_sectors_kb") KiB"
	size=$(blockdev --getsize64 "$dev")
	flat=$((size / bs / 8))
	echo "BENCH ${gib}g_flat_bitmap_bytes $flat"

	bt attach "$dev" >/dev/null
	echo "BENCH ${gib}g_attached_map_bytes $(status_get "$dev" map_bytes)"
	echo "BENCH ${gib}g_mem_limit $(status_get "$dev" mem_limit)"
	t0=$(now)
	done_gib=0
	while [ "$done_gib" -lt "$gib" ]; do
		step=$((gib - done_gib < 1024 ? gib - done_gib : 1024))
		fio_run --name=fill --ioengine=io_uring --fixedbufs --iomem=mmaphuge \
			--scramble_buffers=0 \
			--rw=write --bs=64m --iodepth=2 --offset=$((done_gib << 30)) \
			--size=$((step << 30))
		done_gib=$((done_gib + step))
		awk -v t0="$t0" -v l="$fill_secs" '{ exit !($1 - t0 > l) }' /proc/uptime && break
	done
	sleep 1		# let the coarsening worker finish
	echo "BENCH ${gib}g_seqfill_filled_gib $done_gib"
	echo "BENCH ${gib}g_seqfill_guest_seconds $(awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime)"
	report seqfill $((done_gib << 30))
	bt detach "$dev" >/dev/null

	for n in 1 10; do
		bt attach "$dev" >/dev/null
		fio_run --name=r $rand_common --size=100% --io_size=$((n * rand_mib))m
		sleep 1
		report rand${n}g $((n * rand_mib << 20))
		bt detach "$dev" >/dev/null
	done

	hot=$((rand_mib * 90 / 100))
	cold=$(((rand_mib - hot) / 2))
	bt attach "$dev" >/dev/null
	fio_run $rand_common --name=hot --offset=49% --size=1% --io_size=${hot}m \
		--name=cold1 --offset=0 --size=49% --io_size=${cold}m \
		--name=cold2 --offset=50% --size=50% --io_size=${cold}m
	sleep 1
	report hot1g $(((hot + 2 * cold) << 20))
	bt detach "$dev" >/dev/null
	rmmod null_blk
done
check_no_leak

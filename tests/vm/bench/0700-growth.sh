#!/bin/sh
# Benchmark (issue 5, "Growth"): the cost of reading a pending map with
# READ_EXTENTS against the number of extents in it, 10^3 to 10^7, on a
# 1 TiB null_blk volume (memory_backed=0) tracked at 4 KiB.
#
# tests/vm/progs/growth-extents writes every other block (O_DIRECT, 256 in
# flight), so N writes leave N separated extents. The levels share the
# writes: each adds the blocks up to its N, takes a checkpoint, reads the
# pending map and aborts (the pending map goes back into the active one).
# Per level: the ioctl time alone (pages of 1024 extents, what the library
# asks for; the program checks every extent against what it wrote), and
# `blktrack changes DEV --pending | wc -l` (library iterator, formatting,
# the pipe) timed with /proc/uptime (10 ms resolution). Guest time counts
# instructions under icount. BT_TEST_GROWTH_MAX=N stops at N extents.
# The host side (composition, restore, chain length) is `make bench-growth`.
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null' EXIT

dev=/dev/nullb0
prog=$BT_TOP/build/vmprogs/growth-extents
max=${BT_TEST_GROWTH_MAX:-10000000}
[ -x "$prog" ] || fail "$prog missing (make vmprogs)"
load_module
load_kmod null_blk nr_devices=1 gb=1024 queue_mode=2 irqmode=0 memory_backed=0
[ -b "$dev" ] || fail "no $dev after loading null_blk"

now() {
	cut -d' ' -f1 /proc/uptime
}

bt attach "$dev"
prev=0
first_per=
for n in 1000 10000 100000 1000000 10000000; do
	[ "$n" -le "$max" ] || break
	out=$("$prog" write "$dev" "$prev" "$n" 4096) || fail "growth-extents write $prev..$n"
	echo "# wrote blocks $prev..$n: $out"
	prev=$n
	bt checkpoint "$dev" >/dev/null
	dirty=$(status_get "$dev" pending_dirty)
	assert_eq "pending blocks after $n writes" "$dirty" "$n"
	out=$("$prog" read "$dev" 1024) || fail "growth-extents read at $n"
	set -- $out
	[ "$2" = "$n" ] || fail "READ_EXTENTS gave $2 extents, wrote $n"
	ns=$6
	t0=$(now)
	got=$(blktrack changes "$dev" --pending | wc -l)
	t1=$(now)
	[ "$got" = "$n" ] || fail "blktrack changes --pending printed $got extents, wrote $n"
	per=$(awk -v t="$ns" -v n="$n" 'BEGIN { printf "%.1f", t / n }')
	echo "BENCH read_extents_${n}_calls $4"
	echo "BENCH read_extents_${n}_ns $ns"
	echo "BENCH read_extents_${n}_ns_per_extent $per"
	echo "BENCH changes_cli_${n}_ns_per_extent $(awk -v a="$t0" -v b="$t1" -v n="$n" \
		'BEGIN { printf "%.1f", (b - a) * 1e9 / n }')"
	echo "BENCH map_bytes_${n} $(status_get "$dev" map_bytes)"
	[ -n "$first_per" ] || first_per=$per
	last_per=$per
	bt abort "$dev" >/dev/null
done
echo "BENCH read_extents_per_extent_last_over_first $(awk -v a="$last_per" -v b="$first_per" \
	'BEGIN { printf "%.2f", a / b }')"
bt detach "$dev"
check_no_leak

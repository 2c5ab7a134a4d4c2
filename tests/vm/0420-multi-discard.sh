#!/bin/sh
# Discards that blk-mq merges into one request of several ranges (NVMe takes
# up to 256) are marked range by range at completion: the active map holds
# exactly the ranges discarded, not one run from the first range's start as
# long as all of them (which also left every later range unmarked by the
# completion, the mark that covers a discard in flight at a CHECKPOINT).
# tests/vm/kmod/discard_plug submits the discards under one plug; the disk's
# own statistics prove they were merged.
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod discard_plug 2>/dev/null' EXIT

dev=/dev/nvme0n1
[ -b "$dev" ] || fail "no $dev (the harness boots with an NVMe disk)"
[ "$(cat /sys/block/nvme0n1/queue/discard_max_bytes)" -gt 0 ] || fail "$dev takes no discard"
segs=$(cat /sys/block/nvme0n1/queue/max_discard_segments)
[ "$segs" -gt 1 ] || fail "$dev takes one discard range per request ($segs)"
PLUG=$BT_TOP/tests/vm/kmod/discard_plug.ko

# discard_merges: field 13 of the disk's stat (discards merged into a request).
discard_merges() {
	awk '{ print $13 }' /sys/block/nvme0n1/stat
}

for bs in 4096 65536; do
	echo "# ---- block size $bs"
	bt attach "$dev" --block-size $bs
	expect_clear
	# Three ranges far apart, in sectors: 1 MiB + 8 KiB, 9 MiB + 4 KiB, 30 MiB + 192 KiB.
	set -- 2048 16 18432 8 61440 384
	m0=$(discard_merges)
	echo "+ insmod discard_plug.ko ranges=$1,$2,$3,$4,$5,$6"
	insmod "$PLUG" fd=3 ranges=$1,$2,$3,$4,$5,$6 3<>"$dev" || fail "discard_plug failed"
	rmmod discard_plug
	merged=$(($(discard_merges) - m0))
	[ "$merged" -ge 2 ] || fail "the discards were not merged into one request ($merged merges)"
	ok "$merged discards merged into another's request"
	while [ $# -gt 0 ]; do
		expect_write $(($1 * 512)) $(($2 * 512))
		shift 2
	done
	check_changes "$dev" $bs --active
	bt checkpoint "$dev"
	check_changes "$dev" $bs --pending
	bt commit "$dev"
	bt detach "$dev"
done
check_no_leak

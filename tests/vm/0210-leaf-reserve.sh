#!/bin/sh
# The leaf reserve (module parameter leaf_reserve=N, the default on
# PREEMPT_RT, where a probe may not call the allocator): map leaves come from
# it, and a probe that finds it empty makes the region FULL. Every block
# written must be in the map either way: exactly the blocks written while
# nothing was missed, whole regions around them where the reserve ran dry.
# One leaf of each size and a burst of first writes to 3200 regions of a
# null_blk device: the probes take leaves far faster than the work item
# refills them.
. /blktrack/tests/vm/lib/testlib.sh
RESERVE=/sys/kernel/debug/blktrack/leaf_reserve
SCATTER=$BT_TOP/build/vmprogs/scatter
trap 'cleanup_all; rmmod null_blk 2>/dev/null; rmmod blktrack 2>/dev/null; load_module' EXIT

reserve_get() {
	sed -n "s/^$1 //p" "$RESERVE"
}

detach_all
run rmmod blktrack
load_module leaf_reserve=1
[ -r "$RESERVE" ] || fail "no $RESERVE"
assert_eq "leaves taken before any volume" "$(reserve_get taken)" 0
assert_eq "leaves in the reserve at load" "$(reserve_get ready)" 7

load_kmod null_blk nr_devices=1 gb=400 queue_mode=2 irqmode=0 memory_backed=0
dev=/dev/nullb0
[ -b "$dev" ] || fail "no $dev after loading null_blk"
bt attach "$dev"

# One write in each 128 MiB map region (32768 blocks of 4 KiB).
expect_clear
"$SCATTER" "$dev" 3200 134217728 >"$(expect_file)" || fail "scatter exited $?"
bt checkpoint "$dev"
taken=$(reserve_get taken)
missed=$(reserve_get missed)
echo "# leaves taken from the reserve: $taken, takes that found it empty: $missed"
[ "$taken" -gt 0 ] || fail "no leaf was taken from the reserve"
# The work item fills it back: one leaf of each of the 7 sizes.
sleep 0.5
assert_eq "leaves in the reserve after the burst" "$(reserve_get ready)" 7

if [ "$missed" = 0 ]; then
	# Nothing went FULL: the map is exact.
	check_changes "$dev" 4096 --pending
else
	blktrack changes "$dev" --pending >"$BT_TMP/changes.raw" || fail "changes exited $?"
	# Both lists ascend: sweep (FULL regions are too many blocks to list).
	awk 'NR == FNR { s[n] = $1; e[n] = $1 + $2; n++; next }
	     { while (i < n && e[i] <= $1) i++
	       if (i == n || s[i] > $1 || $1 + $2 > e[i]) { print "# not in the map: " $0; bad = 1 } }
	     END { exit bad }' "$BT_TMP/changes.raw" "$(expect_file)" ||
		fail "blocks written and not in the map"
	# Each extent is a block written (its region got a leaf: exact) or
	# whole regions that went FULL; scatter never writes a region's first
	# or last block, so the two kinds never merge.
	awk -v r=134217728 '$2 != 4096 && ($1 % r || $2 % r) { print "# " $0; bad = 1 }
		END { exit bad }' "$BT_TMP/changes.raw" ||
		fail "an extent that is neither one block written nor whole regions"
	full=$(awk -v r=134217728 '$2 != 4096 { n += $2 / r } END { print n + 0 }' "$BT_TMP/changes.raw")
	exact=$(awk '$2 == 4096' "$BT_TMP/changes.raw" | wc -l)
	assert_eq "regions in the map (exact + FULL)" $((exact + full)) 3200
	ok "every block written is in the map; $full region(s) FULL for $missed empty take(s)"
fi
bt commit "$dev"
bt detach "$dev"
check_no_leak

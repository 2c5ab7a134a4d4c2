#!/bin/sh
# A write in flight at the checkpoint instant: it was queued before, so it is
# in the pending map; its data may land after the backup read that block, so
# its completion marks the new active map too and the next backup takes it.
# null_blk completing each request 2 s after submission holds it in flight
# (longer on a slow debug kernel: BT_SLOW, init.sh; under null_blk's own
# request timeout of 5 s, past which the block layer fails the request).
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null' EXIT

hold=$((2000000000 * ${BT_SLOW:-1}))
[ $hold -le 4000000000 ] || hold=4000000000
load_kmod null_blk nr_devices=1 gb=1 queue_mode=2 irqmode=2 \
	completion_nsec=$hold memory_backed=0
dev=/dev/nullb0
[ -b "$dev" ] || fail "no $dev after loading null_blk"
bt attach "$dev"

# Completed before the checkpoint: pending only.
write_direct "$dev" 0 4096

# In flight across the checkpoint: pending and active.
write_direct "$dev" 1048576 8192 &
pid=$!
sleep 0.5
bt checkpoint "$dev"
kill -0 "$pid" 2>/dev/null ||
	fail "the write completed before the checkpoint: nothing was in flight"
ok "the write is still in flight after the checkpoint"
wait "$pid" || fail "the in-flight write failed"
expect_write 0 4096 pending
expect_write 1048576 8192 pending
expect_write 1048576 8192 active

check_changes "$dev" 4096 --pending pending
check_changes "$dev" 4096 --active active
bt commit "$dev"
bt detach "$dev"
check_no_leak

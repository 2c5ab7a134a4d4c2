#!/bin/sh
# ABORT merges the pending map back: a new checkpoint returns the writes
# from before the first checkpoint and those after it. Checkpoint, commit and
# abort out of turn are refused.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

loop=$(make_loop 16)
sync
bt attach "$loop"
bt_fails 1 commit "$loop"
bt_fails 1 abort "$loop"

expect_clear a
expect_clear ab
for w in "0 4096" "10000 5000" "1048576 65536" "5000000 3"; do
	set -- $w
	write_at "$loop" "$1" "$2"
	expect_write "$1" "$2" a
	expect_write "$1" "$2" ab
done
run sync
bt checkpoint "$loop"
bt_fails 1 checkpoint "$loop"
ok "a second checkpoint while one is pending is refused"
check_changes "$loop" 4096 --pending a

expect_clear b
for w in "4096 4096" "12000 100" "2097152 8192" "5000000 3" "16773120 4096"; do
	set -- $w
	write_at "$loop" "$1" "$2" oflag=sync
	expect_write "$1" "$2" b
	expect_write "$1" "$2" ab
done
run sync
check_changes "$loop" 4096 --active b
check_changes "$loop" 4096 --pending a

bt abort "$loop"
assert_status "$loop" pending no
# ABORT adds BLKTRACK_EPOCH_ABORT (2^32): the aborted stamp never returns.
assert_status "$loop" epoch 4294967296
check_changes "$loop" 4096 --active ab
bt checkpoint "$loop"
check_changes "$loop" 4096 --pending ab
check_empty "$loop" --active
bt commit "$loop"
assert_status "$loop" epoch 4294967297
bt_fails 1 abort "$loop"

# Abort after commit brought nothing back: the next delta is empty.
bt checkpoint "$loop"
check_empty "$loop" --pending
bt commit "$loop"
assert_status "$loop" epoch 4294967298
bt detach "$loop"
check_no_leak

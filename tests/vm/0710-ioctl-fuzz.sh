#!/bin/sh
# Random ioctls on /dev/blktrack-ctl (tests/vm/progs/ioctl-fuzz): 10^5 as
# root with a loop device attached (whatever state they leave is accepted
# and cleaned up), 2*10^4 as uid 65534 on a root-opened fd (every call
# EPERM or ENOTTY, open EACCES). Only errnos: run.sh fails the test on any
# oops, BUG or WARNING. Seeded; the seed is printed (replay: --seed N).
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

prog=$BT_TOP/build/vmprogs/ioctl-fuzz
[ -x "$prog" ] || fail "$prog is missing"
loop=$(make_loop 16)
echo "+ $prog --count 100000 $loop"
"$prog" --count 100000 "$loop" || fail "ioctl-fuzz as root exited $?"
echo "+ $prog --unprivileged --count 20000 $loop"
"$prog" --unprivileged --count 20000 "$loop" || fail "ioctl-fuzz --unprivileged exited $?"

# Whatever the calls left attached can be detached, and nothing leaks.
detach_all
assert_eq "volumes attached after detach" "$(attached | wc -l)" 0
check_no_leak
# The module still works: attach, a write, a checkpoint that lists it.
bt attach "$loop"
expect_clear
write_direct "$loop" 8192 4096
expect_write 8192 4096
bt checkpoint "$loop"
check_changes "$loop" 4096
bt commit "$loop"
bt detach "$loop"
check_no_leak

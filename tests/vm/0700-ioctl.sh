#!/bin/sh
# Every ioctl errno (tests/vm/progs/ioctl-errno), as root and unprivileged.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

prog=$BT_TOP/build/vmprogs/ioctl-errno
[ -x "$prog" ] || fail "$prog is missing"
loop=$(make_loop 16)
sync
echo "+ $prog $loop"
"$prog" "$loop" || fail "ioctl-errno $loop exited $?"
ok "ioctl-errno as root"
echo "+ $prog --unprivileged"
"$prog" --unprivileged || fail "ioctl-errno --unprivileged exited $?"
ok "ioctl-errno --unprivileged"

# The CLI as an unprivileged user: refused with exit 1 and a message.
echo "+ setpriv --reuid=65534 --regid=65534 --clear-groups blktrack attach $loop"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	blktrack attach "$loop" 2>"$BT_TMP/err"
rc=$?
cat "$BT_TMP/err"
assert_eq "exit status of an unprivileged attach" $rc 1
[ -s "$BT_TMP/err" ] || fail "no error message for an unprivileged attach"
assert_eq "volumes attached" "$(attached | wc -l)" 0
detach_all
check_no_leak

#!/bin/sh
# Attach a virtio partition and a loop device; status reports the right fields.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

setup_disk
ok "/dev/vda partitioned: vda1 $(blockdev --getsize64 /dev/vda1) bytes at 1 MiB, vda2 after"
loop=$(make_loop 32)
ok "loop device $loop over a 32 MiB file in tmpfs"

for dev in /dev/vda1 "$loop"; do
	bt attach "$dev"
	bt status "$dev"
	assert_status "$dev" size "$(blockdev --getsize64 "$dev")"
	assert_status "$dev" block_size 4096
	assert_status "$dev" state tracking
	assert_status "$dev" epoch 0
	assert_status "$dev" pending no
	assert_status "$dev" active_dirty 0
	assert_status "$dev" pending_dirty 0
	g=$(status_get "$dev" generation)
	[ -n "$g" ] || fail "$dev: empty generation"
	ok "$dev generation $g"
done
[ "$(status_get /dev/vda1 generation)" != "$(status_get "$loop" generation)" ] ||
	fail "two volumes share a generation"
ok "each attach has its own generation"

# The device list names both.
n=$(attached | wc -l)
assert_eq "volumes listed by 'blktrack status'" "$n" 2

bt_fails 1 attach /dev/vda1
ok "a second attach of /dev/vda1 is refused"
bt_fails 1 attach /dev/vda1 --block-size 65536

# A re-attach gets a new generation.
g1=$(status_get "$loop" generation)
bt detach "$loop"
bt_fails 1 status "$loop"
bt attach "$loop" --block-size 65536
assert_status "$loop" block_size 65536
assert_status "$loop" size "$(blockdev --getsize64 "$loop")"
[ "$(status_get "$loop" generation)" != "$g1" ] || fail "re-attach kept generation $g1"
ok "re-attach has a new generation"

for bs in 5000 2048 33554432; do
	echo "+ blktrack attach /dev/vda2 --block-size $bs (must fail)"
	blktrack attach /dev/vda2 --block-size "$bs" && fail "block size $bs was accepted"
	ok "block size $bs refused"
done
bt_fails 1 attach /dev/does-not-exist

bt detach /dev/vda1
bt detach "$loop"
assert_eq "volumes attached after detach" "$(attached | wc -l)" 0
check_no_leak

#!/bin/sh
# The module is loaded at boot: control device, debugfs counter, empty status.
. /blktrack/tests/vm/lib/testlib.sh

module_loaded || fail "blktrack.ko is not loaded"
ok "blktrack.ko loaded on $(uname -r)"
[ -c /dev/blktrack-ctl ] || fail "/dev/blktrack-ctl is missing"
ok "/dev/blktrack-ctl is a character device"
assert_eq "allocations with nothing attached" "$(allocations)" 0
bt status
[ -z "$(attached)" ] || fail "volumes attached at boot: $(attached)"
ok "no volume attached"

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
# The harness boots only the kernel lines the module was checked on: it
# loaded without untested_kernel=1, and said nothing of an unchecked line.
assert_eq "untested_kernel" "$(cat /sys/module/blktrack/parameters/untested_kernel)" N
case $(uname -r) in
6.1.*|6.12.*) ok "$(uname -r) is a checked line" ;;
*) fail "$(uname -r) is not a checked line, yet the module loaded" ;;
esac
grep -q "not a line blktrack was checked on" /tmp/dmesg.boot &&
	fail "the module warned about the kernel line"
ok "no warning about the kernel line"

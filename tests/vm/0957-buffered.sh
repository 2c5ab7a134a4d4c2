#!/bin/sh
# Buffered writes to a raw volume (no filesystem to freeze) wait in the
# device's page cache, where no probe sees them until writeback. A backup
# taken right after them must still hold them: the requester writes the
# page cache out before its checkpoint. Without that, the backup read the
# device as it was before the writes, whose writeback then landed after
# the checkpoint (the wrong restore of 0990: fio's trim jobs write
# buffered). Restored bit-exactly against the device read with O_DIRECT.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT
R=$BT_TMP/repo IMG=$BT_TMP/restore.img

setup_disk
run dd if=/dev/urandom of=/dev/vda1 bs=1M count=64 oflag=direct status=none
bt attach /dev/vda1
bt init --repo "$R"
bt backup /dev/vda1 --repo "$R" --type full --no-verify
# 256 KiB into the page cache only: writeback waits up to 30 s.
run dd if=/dev/urandom of=/dev/vda1 bs=4096 count=64 seek=1000 conv=notrunc status=none
dirty=$(awk '$1 == "Dirty:" { print $2 }' /proc/meminfo)
[ "$dirty" -ge 200 ] || fail "only $dirty kB dirty: the writes went out already, the test proves nothing"
ok "$dirty kB dirty in the page cache before the backup"
echo "+ blktrack backup /dev/vda1 --repo $R --type incremental --json"
blktrack backup /dev/vda1 --repo "$R" --type incremental --json >"$BT_TMP/out" ||
	fail "backup failed"
cat "$BT_TMP/out"
assert_status /dev/vda1 active_dirty 0
vol_sha >"$BT_TMP/sha.inc"
restore_compare "$R" "$(jfield "$BT_TMP/out" backup)" inc "$IMG"
bt detach /dev/vda1
check_no_leak

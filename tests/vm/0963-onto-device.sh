#!/bin/sh
# restore --onto a block device (doc/FILES.md, "A standby copy"): a standby
# device (a loop device) kept current with a tracked volume's backups, point
# after point, each step equal to the volume's sha256 at that point; the
# point it holds is recorded with its disk's state (diskseq, sectors
# written), so another point is refused (exit 3, nothing written), and so is
# any point once something else wrote the device, or it shows new media
# (the loop file set up again: another diskseq).
. /blktrack/tests/vm/lib/testlib.sh
R=$BT_TMP/repo
trap cleanup_all EXIT

A=$(make_loop 8)
B=$(make_loop 8)
bt attach "$A"
bt init --repo "$R" >/dev/null
dev_sha() {
	dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}
# vpoint NAME [OPTIONS...]: random writes to A, its sha256, its backup.
vpoint() {
	local name=$1
	shift
	dd if=/dev/urandom of="$A" bs=4096 count=$(( $(rnd 64) + 1 )) seek=$(rnd 1900) \
		oflag=direct conv=notrunc status=none || fail "write $A"
	dev_sha "$A" >"$BT_TMP/sha.$name"
	blktrack backup "$A" --repo "$R" --json "$@" >"$BT_TMP/out.$name" || fail "backup $name"
	jfield "$BT_TMP/out.$name" backup >"$BT_TMP/id.$name"
}
vpoint full --type full
bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.full")" "$B" >/dev/null
assert_eq "standby after full" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.full")"
for p in inc1 inc2 inc3; do
	vpoint $p
	bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.$p")" --onto "$B" >/dev/null
	assert_eq "standby after $p" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.$p")"
done
# Not the point B holds: refused, B unchanged.
bt_fails 3 restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc2")" --onto "$B"
assert_eq "standby after a refused --onto" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.inc3")"
# A write to B by anything but blktrack: the point it holds is unknown.
dd if=/dev/zero of="$B" bs=4096 count=1 seek=1000 oflag=direct conv=notrunc status=none ||
	fail "write $B"
vpoint inc3b
bt_fails 3 restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc3b")" --onto "$B"
bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc3b")" "$B" >/dev/null
assert_eq "standby after a whole restore" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.inc3b")"
# New media under B (its loop set up again): the point it holds is unknown.
file=$(cat /sys/block/${B#/dev/}/loop/backing_file)
losetup -d "$B" || fail "losetup -d"
B=$(losetup --show -f "$file") || fail "losetup $file"
vpoint inc4
bt_fails 3 restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc4")" --onto "$B"
assert_eq "new media: nothing written" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.inc3b")"
bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc4")" "$B" >/dev/null
assert_eq "standby after a whole restore" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.inc4")"
vpoint inc5
bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc5")" --onto "$B" >/dev/null
assert_eq "standby after inc5" "$(dev_sha "$B")" "$(cat "$BT_TMP/sha.inc5")"
ok "a standby device kept current with restore --onto"

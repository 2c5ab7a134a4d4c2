#!/bin/sh
# A tracked loop device grown and shrunk with losetup -c: the checkpoint
# after a resize takes the new size; a grown tail is dirty as a whole (its
# writes before the checkpoint fell outside the old map), a shrink drops what
# is past the new end. The incrementals go on (no resync), the stamps carry
# each size, and every point restores bit-exactly: a chain whose members
# have different sizes ends at the last one's.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT
R=$BT_TMP/repo
IMG=$BT_TMP/restore.img
F=$BT_TMP/vol.img
MiB=1048576

dd if=/dev/urandom of=$F bs=1M count=16 status=none || fail "backing file"
dev=$(losetup -f --show $F) || fail "losetup"
bt init --repo $R
BT_VOL=$dev	# what restore_compare keeps as evidence on a mismatch
bt attach $dev

POINTS=
# lpoint NAME [OPTIONS]: capture the device's sha256, back it up.
lpoint() {
	local name=$1
	shift
	dd if=$dev bs=1M iflag=direct status=none | sha256sum | cut -d" " -f1 >$BT_TMP/sha.$name
	echo "+ blktrack backup $dev --repo $R --json $*"
	blktrack backup $dev --repo $R --json "$@" >$BT_TMP/out.$name ||
		fail "backup $name exited $?"
	cat $BT_TMP/out.$name
	jfield $BT_TMP/out.$name backup >$BT_TMP/id.$name
	POINTS="$POINTS $name"
}

lpoint p1
assert_field p1 type full
dd if=/dev/urandom of=$dev bs=4096 count=3 seek=100 conv=notrunc oflag=direct status=none

echo "# ---- grow 16 -> 24 MiB; a write into the new tail before the checkpoint"
run truncate -s $((24 * MiB)) $F
run losetup -c $dev
dd if=/dev/urandom of=$dev bs=4096 count=2 seek=$((20 * 256)) conv=notrunc oflag=direct status=none ||
	fail "write into the grown tail"
lpoint p2
assert_field p2 type incremental
assert_field p2 volume_size $((24 * MiB))
# The 3 blocks written, and the whole 8 MiB tail.
assert_field p2 changed_bytes $(((3 + 2048) * 4096))
assert_status $dev size $((24 * MiB))
dd if=/dev/urandom of=$dev bs=4096 count=1 seek=$((23 * 256)) conv=notrunc oflag=direct status=none
lpoint p3
assert_field p3 type incremental
assert_field p3 changed_bytes 4096

echo "# ---- shrink 24 -> 12 MiB"
run truncate -s $((12 * MiB)) $F
run losetup -c $dev
dd if=/dev/urandom of=$dev bs=4096 count=1 seek=5 conv=notrunc oflag=direct status=none
lpoint p4
assert_field p4 type incremental
assert_field p4 volume_size $((12 * MiB))
assert_field p4 changed_bytes 4096
lpoint p5 --type differential
assert_field p5 type differential
for p in $POINTS; do
	restore_compare $R "$(cat $BT_TMP/id.$p)" $p $IMG
done
bt verify --repo $R
bt detach $dev
losetup -d $dev
check_no_leak

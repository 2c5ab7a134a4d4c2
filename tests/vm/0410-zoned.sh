#!/bin/sh
# Zoned devices: a zone reset, a zone finish and a reset of every zone carry
# no data yet change it; each marks what it changed (the zone, every zone).
# A snapshot of a zoned volume is refused (EOPNOTSUPP), with nothing changed.
# On null_blk zoned=1 (memory backed: a reset frees the zone's data).
. /blktrack/tests/vm/lib/testlib.sh
trap 'cleanup_all; rmmod null_blk 2>/dev/null' EXIT
blkzone() { /usr/sbin/blkzone "$@"; }

ZMIB=4
load_kmod null_blk nr_devices=1 gb=1 zoned=1 zone_size=$ZMIB zone_nr_conv=0 \
	memory_backed=1 bs=4096
dev=/dev/nullb0
[ -b "$dev" ] || fail "no $dev after loading null_blk"
[ "$(cat /sys/block/nullb0/queue/zoned)" = host-managed ] || fail "nullb0 is not zoned"
ZB=$((ZMIB << 20))
ZS=$((ZB / 512))

# write_zone ZONE BLOCKS: append BLOCKS 4 KiB blocks at the zone's write pointer.
write_zone() {
	local wp
	wp=$(blkzone report -o $(($1 * ZS)) -c 1 "$dev" | sed -n 's/.*wptr 0x\([0-9a-f]*\).*/\1/p')
	[ -n "$wp" ] || fail "no write pointer for zone $1"
	wp=$((0x$wp + $1 * ZS))
	run dd if=/dev/urandom of="$dev" bs=4096 count="$2" seek=$((wp / 8)) \
		oflag=direct conv=notrunc status=none
	expect_write $((wp * 512)) $(($2 * 4096))
}

bt attach "$dev"
write_zone 0 3
write_zone 1 2
write_zone 2 5
write_zone 3 1
bt checkpoint "$dev"
check_changes "$dev" 4096 --pending
bt commit "$dev"

echo "# ---- a zone reset and a zone finish mark their zone"
expect_clear
run blkzone reset -o $((1 * ZS)) -c 1 "$dev"
expect_write $((1 * ZB)) $ZB
run blkzone finish -o $((2 * ZS)) -c 1 "$dev"
expect_write $((2 * ZB)) $ZB
bt checkpoint "$dev"
check_changes "$dev" 4096 --pending
bt commit "$dev"

echo "# ---- a reset of every zone marks at least every zone that held data"
# The block layer sends one REQ_OP_ZONE_RESET_ALL (every zone marked) or,
# without device support, a reset of each zone that is not empty.
expect_clear
for z in 0 2 3; do
	expect_write $((z * ZB)) $ZB
done
run blkzone reset "$dev"
bt checkpoint "$dev"
blktrack changes "$dev" --pending >"$BT_TMP/changes.raw" || fail "changes failed"
_to_blocks 4096 <"$(expect_file)" >"$BT_TMP/exp.blocks"
_to_blocks 4096 <"$BT_TMP/changes.raw" >"$BT_TMP/got.blocks"
missing=$(_range_minus "$BT_TMP/exp.blocks" "$BT_TMP/got.blocks")
[ -z "$missing" ] || { echo "$missing"; fail "zones reset but not marked"; }
ok "the reset of every zone marked every zone that held data"
bt commit "$dev"

echo "# ---- no snapshot of a zoned volume"
write_zone 5 1
before=$(status_get "$dev" active_dirty)
snap_errno EOPNOTSUPP take "$dev"
assert_status "$dev" active_dirty "$before"
assert_status "$dev" pending_dirty 0
bt checkpoint "$dev"
bt commit "$dev"
bt detach "$dev"
check_no_leak

#!/bin/sh
# dm-multipath over two paths (two loop devices of one file), request-based
# (the default: the head's requests complete through block_rq_complete)
# and bio-based (queue_mode bio: dm ends the original bio). A write held in
# flight across CHECKPOINT and COMMIT (every path failed, queue_if_no_path:
# multipath queues it; reinstating a path lets it through) must be in the
# next map, or the volume must say "completions: partial" (STATUS, --json)
# and an unfrozen backup must be refused.
. /blktrack/tests/vm/lib/testlib.sh
cleanup_mpath() {
	detach_all
	dmsetup message btmp 0 reinstate_path "$p1" 2>/dev/null
	dmsetup message btmp 0 reinstate_path "$p2" 2>/dev/null
	dmsetup remove btmp 2>/dev/null
	cleanup_all
}
trap cleanup_mpath EXIT

load_kmod dm-multipath
load_kmod dm-round-robin
f=$(mktemp /tmp/mpath.XXXXXX)
truncate -s 32M "$f"
l1=$(losetup --show -f "$f") || fail "losetup $f failed"
l2=$(losetup --show -f "$f") || fail "losetup $f failed"
p1=$(cat /sys/block/${l1#/dev/}/dev)
p2=$(cat /sys/block/${l2#/dev/}/dev)
sects=$((32 << 11))

# mpath_test FEATURES: one round on a multipath device with these features.
mpath_test() {
	run dmsetup create btmp --table \
		"0 $sects multipath $1 0 1 1 round-robin 0 2 1 $p1 1000 $p2 1000"
	dev=/dev/mapper/btmp
	dm=dm-$(dmsetup info -c --noheadings -o minor btmp)
	if [ -d /sys/block/$dm/mq ]; then
		kind=rq
	else
		kind=bio
	fi
	echo "# $dm: $kind-based"
	[ $kind = "$2" ] || fail "$dm is $kind-based, wanted $2"
	bt attach $dev
	write_direct $dev $((100 * 4096)) 4096
	bt checkpoint $dev
	bt commit $dev

	echo "# ---- a write held by multipath (no path left) across CHECKPOINT and COMMIT"
	run dmsetup message btmp 0 fail_path "$p1"
	run dmsetup message btmp 0 fail_path "$p2"
	held_write $dev $((200 * 4096)) 4096 run dmsetup message btmp 0 reinstate_path "$p2"
	comp=$(status_get $dev completions)
	echo "# completions: $comp"
	if [ "$comp" = partial ]; then
		blktrack status $dev --json | grep -q '"completions": *"partial"' ||
			fail "status --json does not say completions partial"
		R=$BT_TMP/repo.$2
		bt init --repo "$R"
		echo "+ blktrack backup $dev --repo $R (no filesystem to freeze)"
		blktrack backup $dev --repo "$R" >"$BT_TMP/out" 2>&1 &&
			{ cat "$BT_TMP/out"; fail "backup succeeded"; }
		cat "$BT_TMP/out"
		grep -q "completions: partial" "$BT_TMP/out" || fail "no reason given"
		ok "a checkpoint that cannot be exact is refused"
	else
		# Covered: its completion marked the active map again.
		check_changes $dev 4096 --active
	fi
	run dmsetup message btmp 0 reinstate_path "$p1"
	bt detach $dev
	run dmsetup remove btmp
}

echo "# ==== request-based multipath"
mpath_test "1 queue_if_no_path" rq
echo "# ==== bio-based multipath"
mpath_test "3 queue_if_no_path queue_mode bio" bio
check_no_leak

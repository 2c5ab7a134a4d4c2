#!/bin/sh
# A filesystem on a tracked partition: after fsfreeze (which writes back every
# dirty page) a checkpoint's pending map holds every data block of a file
# written through ext4 (the map also holds metadata: checked as a superset),
# and a file rewritten after the checkpoint shows in the active map only.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt
cleanup_fs() {
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

setup_disk
run mkfs_ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 /dev/vda2
mkdir -p $mnt
run mount -t ext4 /dev/vda2 $mnt
run sync
bt attach /dev/vda2

# file_blocks FILE: its physical extents as "OFFSET LENGTH" bytes (4 KiB fs blocks).
file_blocks() {
	/usr/sbin/filefrag -e "$1" | awk '
		/^ *[0-9]+:/ { split($0, f, ":"); p = f[3]; sub(/\.\..*/, "", p)
			printf "%d %d\n", (p + 0) * 4096, (f[4] + 0) * 4096 }'
}

# contains_all DEV MODE SET: every block of SET is in `changes DEV MODE`.
contains_all() {
	blktrack changes "$1" "$2" >"$BT_TMP/got" || fail "changes $1 $2"
	_to_blocks 4096 <"$(expect_file "$3")" >"$BT_TMP/want.blocks"
	_to_blocks 4096 <"$BT_TMP/got" >"$BT_TMP/got.blocks"
	_range_minus "$BT_TMP/want.blocks" "$BT_TMP/got.blocks" >"$BT_TMP/missing"
	if [ -s "$BT_TMP/missing" ]; then
		sed 's/^/# missing blocks: /' "$BT_TMP/missing"
		fail "changes $1 $2 lacks blocks of $3"
	fi
	ok "changes $1 $2 holds all $(awk '{ n += $2 - $1 + 1 } END { print n }' \
		"$BT_TMP/want.blocks") blocks of $3"
}

dd if=/dev/urandom of=$mnt/a bs=65536 count=20 status=none || fail "write a"
dd if=/dev/urandom of=$mnt/b bs=1000 count=3 status=none || fail "write b"
run fsfreeze -f $mnt
bt checkpoint /dev/vda2
run fsfreeze -u $mnt
expect_clear files
for f in a b; do
	file_blocks $mnt/$f >"$BT_TMP/ext.$f"
	[ -s "$BT_TMP/ext.$f" ] || { /usr/sbin/filefrag -e $mnt/$f; fail "no extents for $f"; }
	cat "$BT_TMP/ext.$f" >>"$(expect_file files)"
done
contains_all /dev/vda2 --pending files
bt commit /dev/vda2

# Rewrite a in place (same blocks): they show in the new active map.
dd if=/dev/urandom of=$mnt/a bs=65536 count=20 conv=notrunc,fsync status=none ||
	fail "rewrite a"
expect_clear a
cat "$BT_TMP/ext.a" >>"$(expect_file a)"
contains_all /dev/vda2 --active a
run umount $mnt
bt detach /dev/vda2
check_no_leak

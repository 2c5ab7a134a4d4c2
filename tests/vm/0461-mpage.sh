#!/bin/sh
# mpage writeback without a bio: on 6.1, a filesystem that writes its pages
# with mpage_writepages() (FAT) hands a fully mapped page to
# bdev_write_page() and the driver's ->rw_page (brd here), which no block
# tracepoint sees (6.12: bios). A 4 MiB file written to a vfat on a tracked
# brd: every block whose content changed (compared with an image taken
# before the attach) must be in the map. Where ->rw_page exists, the
# block_bio_queue trace must show that most of it was no bio, or the test
# proves nothing.
. /blktrack/tests/vm/lib/testlib.sh
cleanup_mpage() {
	umount "$BT_TMP/mnt" 2>/dev/null
	cleanup_all
	rmmod brd 2>/dev/null
}
trap cleanup_mpage EXIT

load_kmod brd rd_nr=1 rd_size=65536
load_kmod vfat
# Its codepage and character sets: the guest's kernel cannot load them itself.
for m in nls_cp437 nls_ascii nls_utf8; do
	load_kmod $m
done
dev=/dev/ram0
[ -b $dev ] || fail "no $dev"
run mkdosfs $dev
run dd if=$dev of="$BT_TMP/before" bs=1M status=none
bt attach $dev
# The writes queued as bios on ram0 (brd keeps no I/O statistics).
T=/sys/kernel/debug/tracing
[ -d $T ] || mount -t tracefs none $T 2>/dev/null
[ -w $T/events/block/block_bio_queue/enable ] || fail "no block_bio_queue trace event"
: >$T/trace
echo 1 >$T/events/block/block_bio_queue/enable
mkdir -p "$BT_TMP/mnt"
run mount -t vfat $dev "$BT_TMP/mnt"
run dd if=/dev/urandom of="$BT_TMP/mnt/f" bs=1M count=4 status=none
run umount "$BT_TMP/mnt"
bt checkpoint $dev
echo 0 >$T/events/block/block_bio_queue/enable
# "1,0 W... SECTOR + COUNT": sectors written to ram0 as bios.
w=$(grep ' 1,0 W' $T/trace | sed 's/.* + \([0-9]*\) .*/\1/' | awk '{ s += $1 } END { print s + 0 }')
: >$T/trace

expect_clear
"$BT_TOP/build/vmprogs/changed" "$BT_TMP/before" $dev 4096 >"$(expect_file)" ||
	fail "changed failed"
n=$(_to_blocks 4096 <"$(expect_file)" | awk '{ n += $2 - $1 + 1 } END { print n + 0 }')
echo "# $n blocks changed; $((w / 8)) blocks' worth queued as bios"
[ "$n" -ge 1024 ] || fail "only $n blocks changed: the file is not on the disk"
if grep -q " bdev_write_page$" /proc/kallsyms; then
	[ $((w / 8)) -lt $((n / 2)) ] ||
		fail "the writes went through bios: ->rw_page was not exercised"
	ok "most of the file went through ->rw_page"
fi
blktrack changes $dev --pending >"$BT_TMP/got" || fail "changes $dev"
_to_blocks 4096 <"$(expect_file)" >"$BT_TMP/want.blocks"
_to_blocks 4096 <"$BT_TMP/got" >"$BT_TMP/got.blocks"
_range_minus "$BT_TMP/want.blocks" "$BT_TMP/got.blocks" >"$BT_TMP/missing"
if [ -s "$BT_TMP/missing" ]; then
	sed 's/^/# changed, not in the map: /' "$BT_TMP/missing"
	fail "blocks changed through the filesystem are missing from the map"
fi
ok "every changed block is in the map"
bt commit $dev
assert_status $dev state tracking
bt detach $dev
check_no_leak

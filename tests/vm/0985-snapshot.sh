#!/bin/sh
# Copy-before-write snapshot at a checkpoint (CHECKPOINT_SNAP, SNAP_READ):
# the snapshot of the pending map's blocks equals what the test wrote before
# the checkpoint, after direct, buffered, whole-disk and discard overwrites
# and under fio; blocks outside the pending map are never copied; reading
# releases; with SNAP_ALL blocks outside the pending map are protected too;
# RELEASE frees blocks (and their copies) without reading them; a full
# store loses the snapshot (EOVERFLOW) but no write, and the next
# checkpoint works; detach and rmmod with a snapshot held.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

snap=$SNAPREAD
V=/dev/vda1
MIB=1048576

# snapget KEY: a SNAP_STATUS counter of $V.
snapget() {
	snap_status_get "$V" "$1"
}

# sha OFFSET LEN FILE-OR-DEV: sha256 of a byte range (its bytes kept as the
# reference of compare_sha).
sha() {
	ref_image_sha "$3" "$1" "$2"
}
# sha_now OFFSET LEN FILE-OR-DEV: the same, nothing kept.
sha_now() {
	dd if="$3" bs=$MIB skip=$(($1 / MIB)) count=$(($2 / MIB)) iflag=direct status=none |
		sha256sum | cut -d' ' -f1
}

setup_disk
# Blocks outside the pending map: written before the attach.
run dd if=/dev/urandom of=$V bs=$MIB count=8 oflag=direct status=none
bt attach $V
# The pending map: [0, 4 MiB).
run dd if=/dev/urandom of=$V bs=$MIB count=4 oflag=direct status=none
run sync
want=$(sha 0 $((4 * MIB)) $V)

echo "# ---- snapshot, then overwrite its blocks every way"
run "$snap" take $V
assert_eq "protected blocks" "$(snapget protected)" 1024
assert_status $V snapshot held
write_direct $V 0 $MIB
write_at $V $MIB $MIB
run sync
# Through the whole disk into the partition.
write_direct /dev/vda $((P1_START + 2 * MIB)) $((MIB / 2))
run blkdiscard -o $((3 * MIB)) -l $MIB $V
# Outside the pending map: must not be copied.
write_direct $V $((4 * MIB)) $((4 * MIB))
run sync
assert_eq "copied blocks" "$(snapget copied)" 896
assert_eq "uncopied blocks" "$(snapget uncopied)" 128
assert_eq "store bytes" "$(snapget store_bytes)" $((896 * 4096))
[ "$(sha_now 0 $((4 * MIB)) $V)" != "$want" ] || fail "the overwrites changed nothing"

"$snap" read $V 0 $((4 * MIB)) keep >"$BT_TMP/snap.img" || fail "snapread read keep failed"
compare_sha "snapshot (keep) sha256" "$BT_TMP/snap.img" "$want"
assert_eq "released after keep" "$(snapget released)" 0
"$snap" read $V 0 $((4 * MIB)) >"$BT_TMP/snap.img" || fail "snapread read failed"
compare_sha "snapshot sha256" "$BT_TMP/snap.img" "$want"
assert_eq "released blocks" "$(snapget released)" 1024
assert_eq "store bytes after release" "$(snapget store_bytes)" 0
snap_errno EIDRM read $V 0 4096
# Outside the pending map: not protected, so not readable (the device's
# contents there are not the checkpoint's), also as part of a range.
snap_errno ENXIO read $V $((4 * MIB)) 4096
snap_errno ENXIO read $V $((4 * MIB - 4096)) 8192
write_direct $V 0 4096
assert_eq "copied after release" "$(snapget copied)" 896
assert_status $V pending yes
bt commit $V
snap_errno ENODATA status $V
snap_errno ENODATA read $V 0 4096

echo "# ---- SNAP_ALL: every block is protected; RELEASE frees without reading"
BLOCKS=$((P1_SIZE / 4096))
# [16, 24) MiB: written, then committed: outside the next pending map.
run dd if=/dev/urandom of=$V bs=$MIB seek=16 count=8 oflag=direct status=none
bt checkpoint $V
bt commit $V
# The pending map: [0, 1 MiB).
write_direct $V 0 $MIB
run sync
want_in=$(sha 0 $MIB $V)
want_out=$(sha $((16 * MIB)) $((8 * MIB)) $V)
run "$snap" take $V 0 all
assert_eq "protected blocks (all)" "$(snapget protected)" $BLOCKS
assert_eq "uncopied blocks (all)" "$(snapget uncopied)" $BLOCKS
# 4 MiB outside the pending map (1024 blocks) and its 256 blocks.
write_direct $V $((16 * MIB)) $((4 * MIB))
write_at $V 0 $MIB
run sync
assert_eq "copied blocks (all)" "$(snapget copied)" 1280
assert_eq "uncopied blocks (all)" "$(snapget uncopied)" $((BLOCKS - 1280))
assert_eq "store bytes (all)" "$(snapget store_bytes)" $((1280 * 4096))
[ "$(sha_now $((16 * MIB)) $((8 * MIB)) $V)" != "$want_out" ] || fail "the overwrites changed nothing"
"$snap" read $V $((16 * MIB)) $((8 * MIB)) keep >"$BT_TMP/snap.img" ||
	fail "snapread read (all, outside) failed"
compare_sha "snapshot outside the pending map" \
	"$BT_TMP/snap.img" "$want_out"
"$snap" read $V 0 $MIB keep >"$BT_TMP/snap.img" || fail "snapread read (all, inside) failed"
compare_sha "snapshot of the pending map (all)" \
	"$BT_TMP/snap.img" "$want_in"
# Uncopied blocks: released, then overwritten without a copy.
run "$snap" release $V $((20 * MIB)) $((4 * MIB))
assert_eq "released (uncopied range)" "$(snapget released)" 1024
assert_eq "uncopied after release" "$(snapget uncopied)" $((BLOCKS - 2304))
write_direct $V $((20 * MIB)) $((4 * MIB))
run sync
assert_eq "copied after writes to released blocks" "$(snapget copied)" 1280
snap_errno EIDRM read $V $((20 * MIB)) 4096
# Copied blocks: released, their copies freed.
run "$snap" release $V $((16 * MIB)) $((2 * MIB))
assert_eq "released (copied range)" "$(snapget released)" 1536
assert_eq "store bytes after release" "$(snapget store_bytes)" $((768 * 4096))
snap_errno EIDRM read $V $((16 * MIB)) 4096
# Released before: no error, not counted again; [18, 20) MiB is new.
run "$snap" release $V $((16 * MIB)) $((8 * MIB))
assert_eq "released (overlapping)" "$(snapget released)" 2048
assert_eq "store bytes (overlapping)" "$(snapget store_bytes)" $((256 * 4096))
# The whole volume in one call, longer than SNAP_READ_MAX.
run "$snap" release $V 0 $P1_SIZE
assert_eq "released (whole volume)" "$(snapget released)" $BLOCKS
assert_eq "uncopied (whole volume)" "$(snapget uncopied)" 0
assert_eq "store bytes (whole volume)" "$(snapget store_bytes)" 0
write_direct $V 0 $MIB
run sync
assert_eq "copied after the whole release" "$(snapget copied)" 1280
snap_errno EIDRM read $V 0 4096
bt commit $V
# A region never written nor cut: released whole, no leaf of its own.
run "$snap" take $V 0 all
run "$snap" release $V 0 $P1_SIZE
assert_eq "released (untouched, whole)" "$(snapget released)" $BLOCKS
write_direct $V $((30 * MIB)) $MIB
run sync
assert_eq "copied (untouched, whole)" "$(snapget copied)" 0
snap_errno EIDRM read $V $((30 * MIB)) 4096
bt commit $V

echo "# ---- a full store loses the snapshot, never a write"
run dd if=/dev/urandom of=$V bs=$MIB count=1 oflag=direct status=none
run sync
run "$snap" take $V 16384
write_direct $V 0 $MIB
run sync
assert_eq "overflow" "$(snapget overflow)" 1
assert_eq "error" "$(snapget error)" 75
snap_errno EOVERFLOW read $V 0 4096
snap_errno EOVERFLOW release $V 0 4096
assert_status $V snapshot lost
bt abort $V
write_direct $V $MIB $MIB
run sync
want=$(sha 0 $((2 * MIB)) $V)
run "$snap" take $V
write_direct $V 0 $((2 * MIB))
run sync
"$snap" read $V 0 $((2 * MIB)) >"$BT_TMP/snap.img" || fail "snapread read failed"
compare_sha "snapshot after an overflow" "$BT_TMP/snap.img" "$want"
bt commit $V

echo "# ---- the store in a file system's file, and on a block device"
# store_point STORE: a snapshot with its copies in STORE, overwritten
# and read back; the copies count against nothing but STORE's size.
store_point() {
	write_direct $V 0 $((2 * MIB))
	run sync
	want=$(sha 0 $((2 * MIB)) $V)
	run "$snap" take $V 0 pending "$1"
	write_direct $V 0 $((2 * MIB))
	write_at $V $((512 * 1024)) $MIB
	run sync
	assert_eq "copied blocks ($1)" "$(snapget copied)" 512
	assert_eq "store bytes ($1)" "$(snapget store_bytes)" $((512 * 4096))
	"$snap" read $V 0 $((2 * MIB)) >"$BT_TMP/snap.img" || fail "snapread read ($1) failed"
	compare_sha "snapshot, store $1" "$BT_TMP/snap.img" "$want"
	assert_eq "store bytes after the read ($1)" "$(snapget store_bytes)" 0
	bt commit $V
}
sloop=$(make_loop 64)
run mkfs.ext4 -q -F "$sloop"
mkdir -p /mnt/bt0985
run mount "$sloop" /mnt/bt0985
: >/mnt/bt0985/store
store_point /mnt/bt0985/store
run umount /mnt/bt0985
# Another partition of the volume's own disk.
store_point /dev/vda2
# A store on the volume (here, the disk holding it) would wait for itself.
write_direct $V 0 4096
run sync
snap_errno EDEADLK take $V 0 pending /dev/vda
assert_status $V pending no
# A store too small overflows like a full memory store: the snapshot is lost.
tiny=$(make_loop 1)
run "$snap" take $V 0 pending "$tiny"
write_direct $V 0 $((2 * MIB))
run sync
assert_eq "overflow (1 MiB store)" "$(snapget overflow)" 1
assert_eq "error (1 MiB store)" "$(snapget error)" 75
snap_errno EOVERFLOW read $V 0 4096
bt abort $V

echo "# ---- fio rewrites the volume while the snapshot is read"
run dd if=/dev/urandom of=$V bs=$MIB count=8 oflag=direct status=none
run sync
want=$(sha 0 $((8 * MIB)) $V)
run "$snap" take $V
# Direct and buffered writers on separate halves: a direct write over a
# page under buffered writeback fails the page cache's invalidation, and
# 6.12 then reports EIO to fsync (a collision of the test's own making).
fio --name=direct --filename=$V --size=$((4 * MIB)) --rw=randwrite --bs=4k --direct=1 \
	--ioengine=psync --time_based --runtime=8 \
	--name=buffered --filename=$V --offset=$((4 * MIB)) --size=$((4 * MIB)) \
	--rw=randwrite --bs=4k --direct=0 --ioengine=psync --time_based --runtime=8 \
	--fsync=16 >"$BT_TMP/fio.out" 2>&1 &
fio_pid=$!
i=0
while [ "$(snapget copied)" -lt 64 ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
"$snap" read $V 0 $((8 * MIB)) >"$BT_TMP/snap.img" || fail "snapread under fio failed"
copied=$(snapget copied)
wait $fio_pid || { cat "$BT_TMP/fio.out"; fail "fio failed"; }
ok "fio: $(grep -o 'IOPS=[^,]*' "$BT_TMP/fio.out" | tr '\n' ' ')"
compare_sha "snapshot under fio" "$BT_TMP/snap.img" "$want"
[ "$copied" -gt 0 ] || fail "fio's writes were not copied before the read"
ok "$copied blocks copied while the snapshot was read"
"$snap" status $V
bt commit $V

echo "# ---- detach with a snapshot held, under writes"
write_direct $V 0 $MIB
run sync
run "$snap" take $V
fio --name=w --filename=$V --size=$((4 * MIB)) --rw=randwrite --bs=4k --direct=1 \
	--ioengine=psync --time_based --runtime=4 >"$BT_TMP/fio.out" 2>&1 &
fio_pid=$!
sleep 1
bt detach $V
wait $fio_pid || { cat "$BT_TMP/fio.out"; fail "fio failed"; }
check_no_leak

echo "# ---- rmmod with a snapshot held"
bt attach $V
write_direct $V 0 $MIB
run sync
run "$snap" take $V
write_direct $V 0 4096
run rmmod blktrack
dmesg | grep -q leaked && { dmesg | grep leaked; fail "module exit reported a leak"; }
write_direct $V 0 $MIB
load_module
check_no_leak

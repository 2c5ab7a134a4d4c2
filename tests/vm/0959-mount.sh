#!/bin/sh
# Browsing a point (blktrack mount, umount, list --mounts): an ext4 volume
# backed up twice (a full, then an incremental after new, rewritten and
# removed files); both points mounted at once, each read-only with exactly
# the files the test listed (with their sha256) at its checkpoint; a second
# mount on a busy mount point refused; umount leaves no loop device, image
# or record. A point with no filesystem (random bytes) is refused with
# nothing left behind.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0959
R=$BT_TMP/repo
R2=$BT_TMP/repo2
cleanup_mounts() {
	blktrack umount /mnt/bt0959.p1 2>/dev/null
	blktrack umount /mnt/bt0959.p2 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_mounts EXIT

# listing DIR: "sha256  path" of every file under DIR, paths relative to it.
listing() {
	(cd "$1" && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum)
}

# images: what blktrack mount leaves in the temporary directory.
images() {
	ls -d "$BT_TMP"/blktrack-mount.* 2>/dev/null | wc -l
}

# loops: loop devices with a backing file.
loops() {
	cat /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l
}

setup_ext4 $mnt
bt attach /dev/vda1
bt init --repo "$R" >/dev/null
write_files a
listing $mnt >"$BT_TMP/list.1"
bt backup /dev/vda1 --repo "$R" --type full
write_files b
rm $mnt/new.a
echo changed >$mnt/small
run sync
listing $mnt >"$BT_TMP/list.2"
bt backup /dev/vda1 --repo "$R" --type incremental
cmp -s "$BT_TMP/list.1" "$BT_TMP/list.2" && fail "the two points list the same files"

mkdir -p $mnt.p1 $mnt.p2
bt mount --repo "$R" --backup 1 --tmp-dir "$BT_TMP" $mnt.p1
bt mount --repo "$R" --backup 2 --tmp-dir "$BT_TMP" --json $mnt.p2 >"$BT_TMP/m2"
cat "$BT_TMP/m2"
assert_eq "fstype of point 2" "$(jfield "$BT_TMP/m2" fstype)" ext4
listing $mnt.p1 >"$BT_TMP/got.1"
listing $mnt.p2 >"$BT_TMP/got.2"
cmp "$BT_TMP/got.1" "$BT_TMP/list.1" || fail "point 1 mounted: other files"
cmp "$BT_TMP/got.2" "$BT_TMP/list.2" || fail "point 2 mounted: other files"
ok "each point mounted shows its files: $(wc -l <"$BT_TMP/list.1") and $(wc -l <"$BT_TMP/list.2")"
touch $mnt.p1/x 2>/dev/null && fail "a mounted point is writable"
grep -q " $mnt.p1 ext4 ro," /proc/mounts || fail "$mnt.p1 is not mounted read-only"
blktrack list --mounts >"$BT_TMP/mounts"
cat "$BT_TMP/mounts"
assert_eq "points listed" "$(wc -l <"$BT_TMP/mounts")" 2
grep -q "^$mnt.p1  backup 1 of $R " "$BT_TMP/mounts" || fail "list --mounts: no point 1"
bt_fails 1 mount --repo "$R" --backup 2 --tmp-dir "$BT_TMP" $mnt.p1
assert_eq "images while two are mounted" "$(images)" 2

# Busy: it stays mounted, with its image.
(cd $mnt.p2 && sleep 30) &
busy=$!
sleep 0.5
bt_fails 1 umount $mnt.p2
grep -q " $mnt.p2 " /proc/mounts || fail "a busy point was unmounted"
kill $busy
wait $busy 2>/dev/null
bt umount $mnt.p1
bt umount $mnt.p2
assert_eq "images left" "$(images)" 0
assert_eq "loop devices left" "$(loops)" 0
assert_eq "points listed" "$(blktrack list --mounts | wc -l)" 0
bt_fails 1 umount $mnt.p1

# No filesystem in the point: refused, nothing left.
run dd if=/dev/urandom of=/dev/vda2 bs=1M count=8 oflag=direct status=none
bt attach /dev/vda2
bt init --repo "$R2" >/dev/null
bt backup /dev/vda2 --repo "$R2" --type full
bt_fails 1 mount --repo "$R2" --tmp-dir "$BT_TMP" $mnt.p1
assert_eq "images left" "$(images)" 0
assert_eq "loop devices left" "$(loops)" 0
grep -q " $mnt.p1 " /proc/mounts && fail "something is mounted on $mnt.p1"
run umount $mnt
detach_all
check_no_leak

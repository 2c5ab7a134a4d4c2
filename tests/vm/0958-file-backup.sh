#!/bin/sh
# Per-file backups (blktrack backup --file, doc/FILES.md): a VM image on
# ext4 (/dev/vda1) and on XFS (/dev/vda2), tracked at 4 KiB, backed up on
# its own while another file of the volume changes too. Between backups:
# random 4 KiB writes by fio, O_DIRECT and buffered (the backup's fsync
# writes the buffered ones out); a hole punched and a range zeroed
# (unwritten extents: no data written); a range reflinked from another file
# (XFS: shared blocks, no data written either); the defragmenter (e4defrag,
# xfs_fsr) moving the fragmented image; the file extended past a hole, then
# truncated; the file replaced by a changed copy (a new inode). Each point
# restores (restore --file) to the sha256 the test took of the quiet image;
# the incremental after fio covers the blocks fio wrote and no more, one
# after a hole and a zeroed range exactly those, one after the replacement
# the whole file. One point reads the frozen file instead of the snapshot;
# after a backup of the whole volume in between, the file's next backup is a
# resync holding what changed. A file on tmpfs, a device, a missing path:
# refused. A prune merges the chain into one full that keeps the newest
# extent map, and the next incremental is exact. The newest point exported
# as raw has its sha256; exported as qcow2 it is a backing chain of two
# images that qemu-img checks and finds equal to the raw export. A standby
# copy kept current with restore --onto equals each point; a point that
# does not follow what it holds is refused.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0958
R=$BT_TMP/repo
IMG=$BT_TMP/restore.img
MiB=1048576
cp_() { /usr/bin/cp "$@"; }
xfs_io() { /usr/sbin/xfs_io "$@"; }
filefrag() { /usr/sbin/filefrag "$@"; }
qemu_img() { /usr/bin/qemu-img "$@"; }
cleanup_fs() {
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_fs EXIT

# fpoint NAME [OPTIONS...]: the quiet image's sha256, then its backup.
fpoint() {
	local name=$1 rc
	shift
	sha256sum "$F" | cut -d' ' -f1 >"$BT_TMP/sha.$name"
	echo "+ blktrack backup --file $F --repo $R --json $*"
	blktrack backup --file "$F" --repo "$R" --json "$@" >"$BT_TMP/out.$name" \
		2>"$BT_TMP/err.$name"
	rc=$?
	cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
	[ $rc = 0 ] || fail "$FS: backup $name exited $rc"
	jfield "$BT_TMP/out.$name" backup >"$BT_TMP/id.$name"
	POINTS="$POINTS $name"
	ok "$FS point $name: backup $(cat "$BT_TMP/id.$name"), $(jfield "$BT_TMP/out.$name" type)"
}

# covered NAME LO HI: point NAME's backup holds LO to HI bytes of the file.
covered() {
	local c
	c=$(jfield "$BT_TMP/out.$1" covered_bytes)
	[ "$c" -ge "$2" ] && [ "$c" -le "$3" ] ||
		fail "$FS point $1 covers $c bytes, not $2 to $3"
	ok "$FS point $1 covers $c bytes ($2 to $3)"
}

# frestore NAME: point NAME restored (restore --file) into a new file: its sha256.
frestore() {
	local got
	rm -f "$IMG"
	blktrack restore --repo "$R" --file "$F" --backup "$(cat "$BT_TMP/id.$1")" "$IMG" \
		>"$BT_TMP/restore.out" 2>&1 || {
		cat "$BT_TMP/restore.out"
		fail "$FS: restore of point $1 failed"
	}
	got=$(sha256sum "$IMG" | cut -d' ' -f1)
	assert_eq "$FS: point $1 restored" "$got" "$(cat "$BT_TMP/sha.$1")"
}

# fio_write NAME DIRECT BYTES SEED: BYTES of 4 KiB writes at distinct random offsets.
fio_write() {
	fio --name=$1 --filename="$F" --rw=randwrite --bs=4k --size=20m --io_size=$3 \
		--direct=$2 --randseed=$4 --ioengine=psync --minimal >/dev/null ||
		fail "$FS: fio $1"
}

extents() {
	filefrag "$F" | sed -n 's/.*: \([0-9]*\) extents\{0,1\} found/\1/p'
}

# one_fs FS DEV: the whole story on a new filesystem FS on DEV.
one_fs() {
	local i before after
	FS=$1 POINTS=
	if [ $FS = xfs ]; then
		# A partition under xfsprogs' 300 MB floor: allowed for test setups.
		TEST_DIR=/t TEST_DEV=$2 QA_CHECK_FS=1 run mkfs_xfs -q -f "$2"
	else
		run mkfs_ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$2"
	fi
	mkdir -p $mnt
	run mount -t $FS "$2" $mnt
	bt attach "$2" --block-size 4096
	rm -rf "$R"
	bt init --repo "$R" >/dev/null
	F=$mnt/vm.img
	# The image in 1 MiB pieces between another file's: fragmented.
	for i in $(seq 0 23); do
		dd if=/dev/urandom of="$F" bs=1M count=1 seek=$i conv=notrunc status=none &&
			sync && dd if=/dev/urandom of=$mnt/filler bs=1M count=1 seek=$i \
			conv=notrunc status=none && sync || fail "$FS: writing the image"
	done
	rm $mnt/filler
	dd if=/dev/urandom of=$mnt/other bs=1M count=8 status=none || fail "write other"
	run sync
	fpoint full --type full

	# fio: 1 MiB direct and 512 KiB buffered into the image, 4 MiB into another file.
	fio_write direct 1 1m 1
	fio_write buffered 0 512k 2
	dd if=/dev/urandom of=$mnt/other bs=1M count=4 conv=notrunc status=none
	fpoint inc1 --type incremental
	covered inc1 $MiB $((MiB * 3 / 2))

	# A hole punched, a range zeroed: the extents change, no data is written.
	run fallocate --punch-hole --offset $((8 * MiB)) --length $MiB "$F"
	run fallocate --zero-range --offset $((12 * MiB)) --length $MiB "$F"
	fpoint inc2 --type incremental
	covered inc2 $((2 * MiB)) $((2 * MiB))

	# A range of another file shared (XFS), then the defragmenter.
	if [ $FS = xfs ]; then
		run xfs_io -c "reflink $mnt/other 0 $((4 * MiB)) $MiB" "$F"
	fi
	before=$(extents)
	if [ $FS = xfs ]; then
		/usr/sbin/xfs_fsr -v "$F" || echo "xfs_fsr exited $?"
	else
		/usr/sbin/e4defrag "$F" || echo "e4defrag exited $?"
	fi
	after=$(extents)
	ok "$FS: the defragmenter left $after extents of $before"
	fpoint inc3 --type incremental
	[ $FS = xfs ] && covered inc3 $MiB $((25 * MiB))

	# Extended past a hole (24 to 30 MiB), then a differential.
	run dd if=/dev/urandom of="$F" bs=1M count=1 seek=30 conv=notrunc status=none
	fpoint diff1 --type differential
	# Truncated inside a block.
	run dd of="$F" bs=1 count=0 seek=$((20 * MiB + 1000)) status=none
	fpoint inc4 --type incremental
	# Replaced by a copy with one block changed: another inode, the whole file.
	cp_ "$F" "$F.new" || fail "cp"
	run dd if=/dev/urandom of="$F.new" bs=4096 count=1 seek=3 conv=notrunc status=none
	mv "$F.new" "$F" || fail "mv"
	fpoint inc5 --type incremental
	covered inc5 $((20 * MiB + 1000)) $((20 * MiB + 1000))
	# Read from the frozen file, not through the snapshot.
	fio_write frozen 1 256k 3
	fpoint inc6 --type incremental --snapshot freeze
	covered inc6 $((256 * 1024)) $((256 * 1024))
	# The whole volume backed up in between (another repository): its kernel
	# checkpoint moved on without the file's chain, whose next backup resyncs
	# (hashes of the file's blocks) and holds what changed.
	rm -rf "$BT_TMP/vrepo"
	bt init --repo "$BT_TMP/vrepo" >/dev/null
	bt backup "$2" --repo "$BT_TMP/vrepo" --type full --json >/dev/null
	fio_write resync 1 128k 4
	fpoint inc7 --type incremental
	assert_field inc7 type resync
	covered inc7 $((128 * 1024)) $((128 * 1024))

	for i in $POINTS; do
		frestore $i
	done
	# A standby copy kept current point after point (restore --onto): each
	# step equals its point; a point that does not apply onto what the copy
	# holds is refused (exit 3) and writes nothing.
	S=$mnt/standby.img
	bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.full")" "$S" >/dev/null
	for i in inc1 inc2 inc3 inc4 inc5 inc6 inc7; do
		bt restore --repo "$R" --backup "$(cat "$BT_TMP/id.$i")" --onto "$S" >/dev/null
		assert_eq "$FS: standby after $i" "$(sha256sum "$S" | cut -d' ' -f1)" \
			"$(cat "$BT_TMP/sha.$i")"
	done
	bt_fails 3 restore --repo "$R" --backup "$(cat "$BT_TMP/id.inc6")" --onto "$S"
	bt_fails 1 restore --repo "$R" --backup "$(cat "$BT_TMP/id.full")" --onto "$S"
	assert_eq "$FS: standby after refused --onto" "$(sha256sum "$S" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha.inc7")"
	rm "$S"
	# The extent map each backup file carries, as blktrack-dump shows it.
	blktrack-dump backup "$(jfield "$BT_TMP/out.inc6" file)" >"$BT_TMP/dump" ||
		fail "blktrack-dump backup failed"
	grep -q "^extent map: [1-9][0-9]* extents, file size $((20 * MiB + 1000))," \
		"$BT_TMP/dump" || { cat "$BT_TMP/dump"; fail "$FS: no extent map in the dump"; }
	ok "$FS: $(grep '^extent map' "$BT_TMP/dump")"
	# Pruned to the newest point: its chain merged into one full that keeps
	# the newest extent map; the next incremental holds exactly what changed.
	bt prune --repo "$R" --keep-last 1
	fio_write pruned 1 64k 5
	fpoint inc8 --type incremental
	covered inc8 65536 65536
	frestore inc8
	# The formats QEMU reads: inc8 as raw, and as a qcow2 chain (the merged
	# full <- inc8), where the tmpfs has room for them.
	mkdir -p "$BT_TMP/exp"
	bt export --repo "$R" --file "$F" --format raw "$BT_TMP/exp/p.raw"
	assert_eq "$FS: raw export of inc8" "$(sha256sum "$BT_TMP/exp/p.raw" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha.inc8")"
	bt export --repo "$R" --file "$F" --format qcow2 "$BT_TMP/exp/p.qcow2"
	for i in "$BT_TMP"/exp/*.qcow2; do
		run qemu_img check -q "$i"
	done
	assert_eq "$FS: images in the qcow2 export's backing chain" \
		"$(qemu_img info --backing-chain "$BT_TMP/exp/p.qcow2" | grep -c '^image:')" 2
	run qemu_img compare -q -f qcow2 -F raw "$BT_TMP/exp/p.qcow2" "$BT_TMP/exp/p.raw"
	rm -rf "$BT_TMP/exp"
	# --file alone: the newest point; list names the file.
	rm -f "$IMG"
	bt restore --repo "$R" --file "$F" "$IMG"
	assert_eq "$FS: restore --file (newest)" "$(sha256sum "$IMG" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha.inc8")"
	rm -f "$IMG"
	blktrack list --repo "$R" | grep -q "file $F\$" || fail "$FS: list does not name $F"
	bt verify --repo "$R" --backup "$(cat "$BT_TMP/id.inc8")"
	run umount $mnt
	bt detach "$2"
}

setup_disk
# Not a file of a block device, not a regular file: refused, nothing made.
bt init --repo "$R" >/dev/null
echo x >"$BT_TMP/on-tmpfs"
bt_fails 1 backup --file "$BT_TMP/on-tmpfs" --repo "$R"
bt_fails 1 backup --file /dev/vda1 --repo "$R"
bt_fails 1 backup --file "$BT_TMP/missing" --repo "$R"
bt_fails 2 backup --file "$BT_TMP/on-tmpfs" --volume vol --repo "$R"
bt attach /dev/vda1
bt_fails 1 backup --file "$BT_TMP/on-tmpfs" /dev/vda1 --repo "$R"	# a set: all or none
bt detach /dev/vda1
[ "$(blktrack list --repo "$R" | wc -l)" = 1 ] || fail "a refused backup left an entry"
[ -e /etc/mtab ] || ln -s /proc/mounts /etc/mtab	# e4defrag and xfs_fsr read it
one_fs ext4 /dev/vda1
grep -qw xfs /proc/filesystems || load_kmod xfs
one_fs xfs /dev/vda2
check_no_leak

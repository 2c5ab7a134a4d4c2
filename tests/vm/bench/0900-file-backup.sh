#!/bin/sh
# Benchmark (issue 16): a per-file incremental of a VM image against a
# whole-volume incremental of the same change and against reading the image
# whole, in one boot. /dev/vdb1 (ext4, tracked at 4 KiB) holds an IMG_MIB
# image of random data; the repositories are on ext4 in /dev/vdb2.
#
# Each round: the image's chain (a full, then 1% of its blocks rewritten by
# fio, 4k random O_DIRECT, each block once, random data, then a per-file
# incremental), the volume's chain (a full, the same kind of change to other
# blocks, a volume incremental: the file's blocks and what ext4 wrote
# besides), then the image read whole: dd (O_DIRECT, 1 MiB) and qemu-img
# convert to /dev/null (what a backup without a tracker reads). Figures:
# bytes read (a backup's covered_bytes), bytes stored, guest seconds; the
# per-file incremental must hold exactly the bytes fio wrote.
#
# Host clock, as 0300 (waits for the disk): run it as
#	VM_QEMU_ARGS= tests/vm/run.sh --bench 0900
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0900
repos=/mnt/bt0900r
trap 'umount $mnt $repos 2>/dev/null; cleanup_all' EXIT

ROUNDS=1
IMG_MIB=1024
for arg in $(cat /proc/cmdline); do
	case $arg in
	blktrack.rounds=*) ROUNDS=${arg#*=} ;;
	blktrack.img_mib=*) IMG_MIB=${arg#*=} ;;
	esac
done
disk=/dev/vdb
grep -q 'blktrack.icount=1' /proc/cmdline &&
	skip "the guest clock counts instructions: run VM_QEMU_ARGS= tests/vm/run.sh --bench 0900"
[ -b $disk ] || skip "no $disk (run.sh --bench attaches one of VM_DISK2_MIB MiB)"
size_mib=$(($(blockdev --getsize64 $disk) >> 20))
vol_mib=$((IMG_MIB + IMG_MIB / 4 + 64))
[ "$size_mib" -ge $((vol_mib + 2 * IMG_MIB + 256)) ] ||
	fail "$disk has $size_mib MiB; needs $((vol_mib + 2 * IMG_MIB + 256)) (VM_DISK2_MIB)"
printf 'label: dos\nstart=2048, size=%d, type=83\nstart=%d, type=83\n' \
	$((vol_mib << 11)) $(((vol_mib + 1) << 11)) |
	sfdisk --quiet $disk >/dev/null 2>&1 || fail "sfdisk $disk"
blockdev --rereadpt $disk
i=0
while [ ! -b ${disk}2 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
vol=${disk}1
run mkfs_ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 $vol
run mkfs_ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 ${disk}2
mkdir -p $mnt $repos
run mount -t ext4 $vol $mnt
run mount -t ext4 ${disk}2 $repos
img=$mnt/vm.img
bs=4096
blocks=$((IMG_MIB * 256))
W=$((blocks / 100 * bs))		# 1% of the image's blocks

echo "# filling $img ($IMG_MIB MiB) with random data"
fio --name=fill --filename=$img --rw=write --bs=1m --size=${IMG_MIB}m --direct=1 \
	--ioengine=libaio --iodepth=4 --refill_buffers --minimal >/dev/null || fail "fio fill"
run sync
bt attach $vol --block-size $bs >/dev/null

now() {
	cut -d' ' -f1 /proc/uptime
}
record() {
	echo "$2" >>"$BT_TMP/v.$1"
	echo "round $r: $1 $2"
}
# timed KEY CMD...: CMD after sync and drop_caches; its guest seconds in T.
timed() {
	local key=$1 t0 t1
	shift
	sync
	echo 3 >/proc/sys/vm/drop_caches
	t0=$(now)
	"$@" >"$BT_TMP/out" 2>"$BT_TMP/err" || { cat "$BT_TMP/err"; fail "$* failed"; }
	t1=$(now)
	T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	record "${key}_seconds" "$T"
}
# figures KEY: a backup's bytes read and stored, from its JSON.
figures() {
	record "${1}_read_bytes" "$(jfield "$BT_TMP/out" covered_bytes)"
	record "${1}_stored_bytes" "$(jfield "$BT_TMP/out" stored_bytes)"
}
# rewrite SEED: 1% of the image's blocks, each once, random data.
rewrite() {
	fio --name=w --filename=$img --rw=randwrite --bs=4k --size=${IMG_MIB}m --io_size=$W \
		--direct=1 --ioengine=libaio --iodepth=16 --random_generator=lfsr \
		--randseed=$1 --refill_buffers --minimal >/dev/null || fail "fio rewrite"
}

for r in $(seq $ROUNDS); do
	rm -rf $repos/file $repos/vol
	bt init --repo $repos/file >/dev/null
	bt init --repo $repos/vol >/dev/null
	# The image's chain.
	timed file_full blktrack backup --file $img --repo $repos/file --type full --json
	figures file_full
	rewrite $((r * 2))
	timed file_incr blktrack backup --file $img --repo $repos/file --json
	figures file_incr
	assert_eq "per-file incremental: bytes read" "$(jfield "$BT_TMP/out" covered_bytes)" "$W"
	# The volume's chain, the same kind of change.
	timed vol_full blktrack backup $vol --repo $repos/vol --type full --json
	figures vol_full
	rewrite $((r * 2 + 1))
	timed vol_incr blktrack backup $vol --repo $repos/vol --json
	figures vol_incr
	# The image read whole, as a backup without a tracker reads it.
	timed dd_whole dd if=$img of=/dev/null bs=1M iflag=direct status=none
	record dd_whole_read_bytes $((IMG_MIB << 20))
	# To QEMU's null block driver: every byte read, nothing written.
	timed qemu_img_convert /usr/bin/qemu-img convert -n -f raw -T none $img \
		--target-image-opts driver=null-co,size=$((IMG_MIB << 20))
done
for f in "$BT_TMP"/v.*; do
	echo "median ${f#"$BT_TMP"/v.} $(sort -n "$f" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
done
ok "file backup benchmark: $ROUNDS round(s), image $IMG_MIB MiB, 1% = $W bytes"

#!/bin/sh
# Benchmark (issue 3): the requester, in one boot, on /dev/vdb (the scratch
# disk run.sh --bench attaches): a SRC_MIB source partition filled with
# incompressible data, the repository on ext4 in the rest of the disk.
#
# Each round: dd of the source to /dev/null (O_DIRECT and buffered, 1 MiB),
# fio 4k random reads of 10% of the blocks (QD1 and QD32), a copy streamed
# to /dev/null (read + zstd + xxh3 only), a full backup without and with
# the verify writer; then an incremental with nothing written (the fixed
# cost), and 4k random writes of 1% and 10% of the blocks (distinct blocks,
# random data), each followed by an incremental, with and without verify.
# Restore (issue 5): the full backup restored to a second partition of the
# source's size, against dd copying the backup file there (the same bytes
# read and written); the same for a full backup taken with --no-compress.
# Figures are medians over ROUNDS; MiB/s is 2^20 bytes per guest second
# (/proc/uptime). Checks: an incremental stores exactly the blocks written
# (changed = data = written).
#
# Needs the host clock: under -icount shift=0,sleep=off an idle guest's
# clock jumps to its next timer, so a wait for the disk costs whatever that
# is, not the I/O's time (doc/BENCHMARKS.md, "Why not icount for the backup
# benchmark"). Run it as
#	VM_QEMU_ARGS= tests/vm/run.sh --bench 0300
# (run.sh passes blktrack.icount=1 on the guest command line otherwise).
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0300
trap 'umount $mnt 2>/dev/null; cleanup_all' EXIT

ROUNDS=3
SRC_MIB=1024
for arg in $(cat /proc/cmdline); do	# VM_APPEND="blktrack.rounds=1 ..."
	case $arg in
	blktrack.rounds=*) ROUNDS=${arg#*=} ;;
	blktrack.src_mib=*) SRC_MIB=${arg#*=} ;;
	esac
done
disk=/dev/vdb
src=/dev/vdb1
bs=4096

grep -q 'blktrack.icount=1' /proc/cmdline &&
	skip "the guest clock counts instructions: run VM_QEMU_ARGS= tests/vm/run.sh --bench 0300"
[ -b $disk ] || skip "no $disk (run.sh --bench attaches one of VM_DISK2_MIB MiB)"
size_mib=$(($(blockdev --getsize64 $disk) >> 20))
[ "$size_mib" -ge $((SRC_MIB * 7 / 2)) ] ||
	fail "$disk has $size_mib MiB; needs $((SRC_MIB * 7 / 2)) (VM_DISK2_MIB)"
# 1: the source, 2: the restore target, 3: the repository (ext4).
printf 'label: dos\nstart=2048, size=%d, type=83\nstart=%d, size=%d, type=83\nstart=%d, type=83\n' \
	$((SRC_MIB << 11)) $(((SRC_MIB + 1) << 11)) $((SRC_MIB << 11)) \
	$(((2 * SRC_MIB + 2) << 11)) |
	sfdisk --quiet $disk >/dev/null 2>&1 || fail "sfdisk $disk"
blockdev --rereadpt $disk
i=0
while [ ! -b ${disk}3 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
tgt=${disk}2
[ -b $src ] && [ -b $tgt ] && [ -b ${disk}3 ] || fail "partitions of $disk did not appear"
run mkfs_ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 ${disk}3
mkdir -p $mnt
run mount -t ext4 ${disk}3 $mnt
src_bytes=$(blockdev --getsize64 $src)
blocks=$((src_bytes / bs))

fio_w() {
	fio --name=w --filename=$src --ioengine=libaio --direct=1 --refill_buffers \
		--minimal "$@" >/dev/null || fail "fio $* failed"
}

echo "# filling $src ($SRC_MIB MiB) with random data"
fio_w --rw=write --bs=1m --iodepth=4 --size=100%
bt attach $src >/dev/null

now() {
	cut -d' ' -f1 /proc/uptime
}

# quiesce: nothing cached, nothing dirty, before each timed run.
quiesce() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# record KEY VALUE: one round's value of KEY.
record() {
	echo "$2" >>"$BT_TMP/v.$1"
	echo "round $r: $1 $2"
}

mibps() {
	awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'
}

# timed KEY CMD...: run CMD (stdout to /dev/null, stderr kept: no progress
# line on the console), record its guest seconds.
timed() {
	local key=$1 t0 t1
	shift
	quiesce
	t0=$(now)
	"$@" >/dev/null 2>"$BT_TMP/err" || { cat "$BT_TMP/err"; fail "$* failed"; }
	t1=$(now)
	T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	record "${key}_seconds" "$T"
}

# jfield FILE KEY: a field of one-line JSON.
jfield() {
	sed -n "s/.*\"$2\": *\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"
}

# backup KEY REPO [OPTIONS...]: a timed backup of $src; its JSON in $BT_TMP/out.
backup() {
	local key=$1 repo=$2
	shift 2
	# A repository is made by blktrack init (untimed), once per directory.
	[ -e "$repo/catalog" ] || blktrack init --repo "$repo" >/dev/null ||
		fail "blktrack init --repo $repo"
	timed "$key" sh -c "blktrack backup $src --repo $repo --json $* >$BT_TMP/out"
	cat "$BT_TMP/out"
}

# write_frac PCT: 4k random writes of PCT% of the blocks, each block once
# (fio's LFSR), random data. Sets W to the bytes written.
write_frac() {
	W=$((blocks * $1 / 100 * bs))
	[ "$W" -gt 0 ] || return 0
	fio_w --rw=randwrite --bs=4k --iodepth=16 --io_size=$W \
		--random_generator=lfsr --randrepeat=0
}

# incr PCT [--no-verify]: write PCT% (0: nothing, the fixed cost of a
# backup), back up, check and record.
incr() {
	local pct=$1 key=incr_${1}pct changed data stored
	[ $# -gt 1 ] && key=${key}_noverify
	write_frac "$pct"
	backup "$key" "$mnt/chain" "${2:-}"
	assert_eq "$key type" "$(jfield "$BT_TMP/out" type)" incremental
	changed=$(jfield "$BT_TMP/out" changed_bytes)
	data=$(jfield "$BT_TMP/out" data_bytes)
	stored=$(jfield "$BT_TMP/out" stored_bytes)
	assert_eq "$key changed_bytes" "$changed" "$W"
	assert_eq "$key data_bytes" "$data" "$W"
	[ "$W" -gt 0 ] || return 0
	record "${key}_stored_over_written" "$(awk -v s="$stored" -v w="$W" \
		'BEGIN { printf "%.4f", s / w }')"
}

# restore_vs_dd KEY REPO: restore the backup just taken (its JSON in
# $BT_TMP/out) to $tgt, and dd its file there; the first round checks that
# the restore equals the source.
restore_vs_dd() {
	local key=$1 repo=$2 id file
	id=$(jfield "$BT_TMP/out" backup)
	file=$(jfield "$BT_TMP/out" file)
	timed restore_$key blktrack restore --repo "$repo" --backup "$id" $tgt
	record restore_${key}_mibps "$(mibps "$src_bytes" "$T")"
	[ "$r" != 1 ] || cmp -n "$src_bytes" $src $tgt ||
		fail "restore of backup $id ($key) differs from $src"
	# As many bytes as the volume (the file holds a few more: headers).
	timed dd_file_$key dd if="$file" of=$tgt bs=1M iflag=count_bytes count=$src_bytes \
		oflag=direct conv=fsync status=none
	record restore_${key}_over_dd_file "$(awk -v a="$T" -v b="$(tail -n1 \
		"$BT_TMP/v.restore_${key}_seconds")" 'BEGIN { printf "%.3f", a / b }')"
}

for r in $(seq $ROUNDS); do
	timed dd_direct dd if=$src of=/dev/null bs=1M iflag=direct status=none
	record dd_direct_mibps "$(mibps "$src_bytes" "$T")"
	timed dd_buffered dd if=$src of=/dev/null bs=1M status=none
	record dd_buffered_mibps "$(mibps "$src_bytes" "$T")"
	# --output -: type copy, no repository, no verify; the checkpoint is
	# aborted, so the tracked changes stay as they are.
	# The reads of a 10% incremental alone: 4k random O_DIRECT reads, one
	# at a time (as the requester issues them), of as many distinct blocks.
	timed randread_4k_10pct fio --name=r --filename=$src --rw=randread --bs=4k \
		--ioengine=psync --direct=1 --io_size=$((blocks / 10 * bs)) \
		--random_generator=lfsr --randrepeat=0 --minimal
	# The same with 32 in flight: what a requester with a queue would see.
	timed randread_4k_10pct_qd32 fio --name=r --filename=$src --rw=randread --bs=4k \
		--ioengine=libaio --iodepth=32 --direct=1 --io_size=$((blocks / 10 * bs)) \
		--random_generator=lfsr --randrepeat=0 --minimal
	timed copy_stream blktrack backup $src --output -
	record copy_stream_mibps "$(mibps "$src_bytes" "$T")"
	backup full_noverify "$mnt/full" --type full --no-verify
	record full_noverify_mibps "$(mibps "$src_bytes" "$T")"
	rm -rf "$mnt/full"
	backup full_nocompress "$mnt/full" --type full --no-compress
	record full_nocompress_mibps "$(mibps "$src_bytes" "$T")"
	restore_vs_dd nocompress "$mnt/full"
	rm -rf "$mnt/full"
	# The base of this round's chain: the full backup as run by default.
	backup full "$mnt/chain" --type full
	record full_mibps "$(mibps "$src_bytes" "$T")"
	record full_stored_over_volume "$(awk -v s="$(jfield "$BT_TMP/out" stored_bytes)" \
		-v v="$src_bytes" 'BEGIN { printf "%.4f", s / v }')"
	restore_vs_dd zstd "$mnt/chain"
	incr 0
	incr 1
	incr 1 --no-verify
	incr 10
	incr 10 --no-verify
	rm -rf "$mnt/chain"
done

median() {
	sort -n "$BT_TMP/v.$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

emit() {
	echo "BENCH $1 $(median "$1") (runs: $(tr '\n' ' ' <"$BT_TMP/v.$1"| sed 's/ $//'))"
}

echo "# source $src: $src_bytes bytes, ${ROUNDS} rounds, medians"
for k in dd_direct_mibps dd_buffered_mibps copy_stream_mibps full_noverify_mibps \
	full_mibps full_nocompress_mibps full_stored_over_volume full_seconds \
	restore_zstd_mibps restore_zstd_over_dd_file restore_nocompress_mibps \
	restore_nocompress_over_dd_file \
	randread_4k_10pct_seconds randread_4k_10pct_qd32_seconds incr_0pct_seconds incr_1pct_seconds incr_1pct_noverify_seconds incr_10pct_seconds \
	incr_10pct_noverify_seconds incr_1pct_stored_over_written \
	incr_10pct_stored_over_written; do
	emit $k
done
dd=$(median dd_direct_mibps)
full=$(median full_seconds)
fullnv=$(median full_noverify_seconds)
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'
}
echo "BENCH full_over_dd_direct $(ratio "$(median full_mibps)" "$dd")"
echo "BENCH full_noverify_over_dd_direct $(ratio "$(median full_noverify_mibps)" "$dd")"
echo "BENCH copy_stream_over_dd_direct $(ratio "$(median copy_stream_mibps)" "$dd")"
# Incremental time over the proportional share of the full backup's time
# (1.0: proportional).
for p in 1 10; do
	echo "BENCH incr_${p}pct_over_proportional $(ratio "$(median incr_${p}pct_seconds)" \
		"$(awk -v f="$full" -v p=$p 'BEGIN { print f * p / 100 }')")"
	echo "BENCH incr_${p}pct_noverify_over_proportional $(ratio \
		"$(median incr_${p}pct_noverify_seconds)" \
		"$(awk -v f="$fullnv" -v p=$p 'BEGIN { print f * p / 100 }')")"
done
umount $mnt
detach_all
check_no_leak

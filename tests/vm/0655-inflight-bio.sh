#!/bin/sh
# A write queued on a tracked bio-based device (dm) before a CHECKPOINT that
# lands after the backup committed: its queue mark is in the map the backup
# consumed, so only its completion (block_bio_complete) can put it in the
# next one. A suspended dm device holds the bios: `dmsetup suspend
# --noflush` queues them, `dmsetup resume` sends them down after the COMMIT.
# A write, a discard and a write-zeroes each straddle the boundary of two
# linear targets: dm splits them and ends the original bio with only its
# last part left in bi_iter (a write can be counted back in its data vector;
# a discard or write-zeroes has none: the tracker keeps its queued range).
# The discard and the write-zeroes are held in rounds of their own: each
# ioctl holds the device's invalidate lock until its bio ends, which the
# others would wait for before they are queued.
. /blktrack/tests/vm/lib/testlib.sh
MNT=/mnt/bt0655
# A failure while suspended must not leave the held writers hanging.
trap 'dmsetup resume bt-susp 2>/dev/null; cleanup_all; umount $MNT 2>/dev/null' EXIT
ZAP=$BT_TOP/build/vmprogs/zap

# The loop file on ext4: tmpfs has no FALLOC_FL_ZERO_RANGE, so a loop device
# over it refuses write-zeroes (and the kernel writes zero pages instead).
setup_disk
run mkfs.ext4 -q -F /dev/vda2
mkdir -p $MNT
run mount /dev/vda2 $MNT
run truncate -s 64M $MNT/loop.img
loop=$(losetup --show -f $MNT/loop.img) || fail "losetup failed"
HALF=$((16 << 20))		# the targets start at 0, 16, 32 and 48 MiB
T=$((HALF / 512))
printf '0 %d linear %s 0\n%d %d linear %s %d\n%d %d linear %s %d\n%d %d linear %s %d\n' \
	$T "$loop" $T $T "$loop" $T $((2 * T)) $T "$loop" $((2 * T)) $((3 * T)) $T "$loop" $((3 * T)) |
	dmsetup create bt-susp || fail "dmsetup create failed"
dm=/dev/mapper/bt-susp
[ -b $dm ] || fail "$dm did not appear"
bt attach $dm
expect_clear first
expect_clear second

# Completed before the checkpoint: the first map only.
write_direct $dm 0 4096
expect_write 0 4096 first

# wait_active RANGES: until the active map holds exactly these byte ranges
# (the queue marks of what was submitted): a loaded host is slow to submit.
wait_active() {
	local i=0
	while [ "$(blktrack changes $dm --active)" != "$1" ]; do
		if [ $i -ge 150 ]; then
			blktrack changes $dm --active | sed 's/^/# active: /'
			fail "not queued in 30 s: $(echo $1)"
		fi
		sleep 0.2
		i=$((i + 1))
	done
}

# held_round WHAT PIDS...: checkpoint and commit while PIDS' bios are held,
# then resume and wait for them: they landed after the backup.
held_round() {
	local what=$1 p
	shift
	sleep 0.5
	for p in "$@"; do
		alive $p || fail "$what: a bio completed on the suspended device"
	done
	ok "$what: queued and held by the suspended device"
	bt checkpoint $dm
	check_changes $dm 4096 --pending first
	bt commit $dm			# the backup has read and committed
	run dmsetup resume bt-susp
	for p in "$@"; do
		wait $p || fail "$what: a held bio failed"
	done
	ok "$what: landed after the commit"
	# The next checkpoint must return them.
	bt checkpoint $dm
	check_changes $dm 4096 --pending second
	bt commit $dm
	expect_clear first
	expect_clear second
}

echo "# ---- two writes, one split by dm at 16 MiB, and a discard split at 32 MiB"
run dmsetup suspend --noflush bt-susp
write_direct $dm 1048576 4096 &
p1=$!
write_direct $dm $((HALF - 4096)) 8192 &
p2=$!
wait_active "$(printf '0 4096\n1048576 4096\n%d 8192' $((HALF - 4096)))"
"$ZAP" $dm discard $((2 * HALF - 8192)) 16384 &
p3=$!
wait_active "$(printf '0 4096\n1048576 4096\n%d 8192\n%d 16384' \
	$((HALF - 4096)) $((2 * HALF - 8192)))"
for s in first second; do
	[ $s = first ] && expect_write 0 4096 first
	expect_write 1048576 4096 $s
	expect_write $((HALF - 4096)) 8192 $s
	expect_write $((2 * HALF - 8192)) 16384 $s
done
held_round "writes and a discard" $p1 $p2 $p3

echo "# ---- a write-zeroes split by dm at 48 MiB"
run dmsetup suspend --noflush bt-susp
"$ZAP" $dm zeroout $((3 * HALF - 8192)) 16384 &
p4=$!
wait_active "$(printf '%d 16384' $((3 * HALF - 8192)))"
expect_write $((3 * HALF - 8192)) 16384 first
expect_write $((3 * HALF - 8192)) 16384 second
held_round "a write-zeroes" $p4
dmesg | grep -q 'operation not supported.*WRITE_ZEROES' &&
	fail "the loop device refused write-zeroes: zero pages were written instead"
bt detach $dm
check_no_leak

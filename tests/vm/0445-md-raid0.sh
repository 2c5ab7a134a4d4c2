#!/bin/sh
# md raid0 with iostats off moves each bio in place to a member disk
# (bio_set_dev()), split at every chunk: it completes there, at the member's
# sectors, one offset per chunk. The tracker keeps each moved bio's range from
# its remap (tracker.c, "Ranges kept by bio"), so a write of 16 chunks held in
# flight by dm-delay below the members across CHECKPOINT and COMMIT is in the
# next map, exactly, and completions stay "seen". (Before, the offsets were
# the only way back: past 8 of them the volume reported its completions
# partial and the other chunks' completions marked nothing.)
. /blktrack/tests/vm/lib/testlib.sh
MD=/dev/md0
cleanup_md() {
	detach_all
	/usr/sbin/mdadm --stop $MD >/dev/null 2>&1
	cleanup_all
}
trap cleanup_md EXIT

load_kmod dm-delay
load_kmod raid0
sects=$((32 << 11))
for d in 0 1; do
	eval l$d=\$\(make_loop 32\)
done
# delay_table LOOP MS: writes to LOOP delayed by MS, reads not.
delay_table() {
	echo "0 $sects delay $1 0 0 $1 0 $2"
}
run dmsetup create btd0 --table "$(delay_table "$l0" 0)"
run dmsetup create btd1 --table "$(delay_table "$l1" 0)"
run /usr/sbin/mdadm --create $MD --run --quiet --level=0 --chunk=64 --raid-devices=2 \
	--metadata=1.2 /dev/mapper/btd0 /dev/mapper/btd1
[ -b $MD ] || fail "no $MD"
echo 0 >/sys/block/md0/queue/iostats || fail "cannot turn iostats off"
bt attach $MD
write_direct $MD 0 4096
bt checkpoint $MD
bt commit $MD
assert_status $MD completions seen

echo "# ---- 1 MiB (16 chunks of 64 KiB) held in flight by dm-delay across CHECKPOINT and COMMIT"
for d in 0 1; do
	run dmsetup suspend btd$d
	eval run dmsetup reload btd$d --table \"\$\(delay_table \$l$d 3000\)\"
	run dmsetup resume btd$d
done
held_write $MD 1048576 1048576
# Its 16 completions, on the members, mark md0's active map again.
check_changes $MD 4096 --active
assert_status $MD completions seen
for d in 0 1; do
	run dmsetup suspend btd$d
	eval run dmsetup reload btd$d --table \"\$\(delay_table \$l$d 0\)\"
	run dmsetup resume btd$d
done
bt detach $MD
check_no_leak

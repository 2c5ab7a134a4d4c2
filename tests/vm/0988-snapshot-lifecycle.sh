#!/bin/sh
# A snapshot's end while fio writes into its protected blocks (issue 6):
#   (a) DETACH, (b) rmmod (refused while /dev/blktrack-ctl is open, then
#   done: it ends the snapshot), (d) COMMIT and ABORT: each ends the
#   snapshot with writes held; no write is lost: every block fio wrote
#   carries its verify header afterwards (fio --verify_only, read back from
#   the device); the store is freed: SNAP_STATUS ENODATA, the allocation
#   counter back to its value before the snapshot (0 after a detach);
#   (c) the device goes away under the snapshot: a null_blk device deleted
#   (configfs power off) idle and under fio, and a dm device whose table
#   `dmsetup remove --force` replaces by an error target: SNAP_READ fails
#   with EOVERFLOW, SNAP_STATUS says why (ENODEV, or EIO for a failed copy
#   read; or, when no write needed a copy after the swap, with the error
#   target's EIO), the volume is reported removed, DETACH frees everything.
# A hang (fio never finishing) fails the test; the harness fails it on any
# oops, warning or hung task in the kernel log.
. /blktrack/tests/vm/lib/testlib.sh
V=/dev/vda1
MIB=1048576
NB=/sys/kernel/config/nullb/btgone
# A node of our own for the removed device: it outlives the device's.
G=$BT_TMP/gone
FIO_PID=
cleanup_lc() {
	[ -n "$FIO_PID" ] && kill "$FIO_PID" 2>/dev/null && wait "$FIO_PID"
	exec 4<&-
	[ -b "$G" ] && blktrack detach "$G" 2>/dev/null
	cleanup_all
	[ -d $NB ] && { echo 0 >$NB/power; rmdir $NB; } 2>/dev/null
	rmmod null_blk 2>/dev/null
}
trap cleanup_lc EXIT

# fio_job FILE DEV IOPS [direct]: a direct writer (libaio, 4 in flight) on
# [0, 2 MiB) of DEV and, unless "direct", a buffered one (fsync every 16
# writes) on [2, 4 MiB): each 4 KiB block written once with a crc32c verify
# header; IOPS per job (0: no limit).
fio_job() {
	{
		printf '[global]\nfilename=%s\nrw=randwrite\nbs=4k\nsize=2m\n' "$2"
		printf 'verify=crc32c\nverify_fatal=1\ndo_verify=0\nrate_iops=%s\n' "$3"
		printf '[direct]\ndirect=1\nioengine=libaio\niodepth=4\noffset=0\n'
		[ "${4:-}" = direct ] ||
			printf '[buffered]\ndirect=0\nioengine=psync\noffset=2m\nfsync=16\nend_fsync=1\n'
	} >"$1"
}

# snapshot_under_fio DEV [SNAPREAD-TAKE-ARGS...]: random data on [0, 4 MiB)
# (the pending map), CHECKPOINT_SNAP, then fio rewrites that range (a
# direct writer only with FIO_MODE=direct) at 250 writes/s per job until
# the snapshot has copied 32 blocks.
snapshot_under_fio() {
	local dev=$1 i=0
	shift
	run dd if=/dev/urandom of="$dev" bs=$MIB count=4 oflag=direct status=none
	run "$SNAPREAD" take "$dev" "$@"
	fio_job "$BT_TMP/w.fio" "$dev" 250 "${FIO_MODE:-}"
	# By path: $! must be fio's own pid (the fio function would be a subshell's).
	/usr/bin/fio "$BT_TMP/w.fio" >"$BT_TMP/fio.out" 2>&1 &
	FIO_PID=$!
	while [ "$(snap_status_get "$dev" copied)" -lt 32 ]; do
		alive $FIO_PID || { cat "$BT_TMP/fio.out"; fail "fio ended before 32 copies"; }
		[ $i -lt 300 ] || fail "fewer than 32 blocks copied in 30 s"
		sleep 0.1
		i=$((i + 1))
	done
	ok "snapshot of $dev: $(snap_status_get "$dev" copied) blocks copied," \
		"$(snap_status_get "$dev" held) writes held so far, fio running"
}

# in_flight EVENT: fio must still be writing when EVENT comes.
in_flight() {
	alive $FIO_PID || { cat "$BT_TMP/fio.out"; fail "fio ended before $1: nothing in flight"; }
}

# fio_done [may-fail]: fio ends within 60 s (exit 0 unless may-fail).
fio_done() {
	local rc=0
	wait_exit $FIO_PID 60 fio || rc=$?
	FIO_PID=
	if [ "${1:-}" = may-fail ]; then
		ok "fio ended (exit $rc)"
	else
		[ $rc = 0 ] || { cat "$BT_TMP/fio.out"; fail "fio exited $rc"; }
		ok "fio ended: $(grep -o 'IOPS=[^,]*' "$BT_TMP/fio.out" | tr '\n' ' ')"
	fi
}

# verify_fio DEV: every block fio wrote is on DEV, read back past the cache.
verify_fio() {
	run sync
	run blockdev --flushbufs "$1"
	fio_job "$BT_TMP/v.fio" "$1" 0 "${FIO_MODE:-}"
	fio --verify_only "$BT_TMP/v.fio" >"$BT_TMP/verify.out" 2>&1 ||
		{ cat "$BT_TMP/verify.out"; fail "fio --verify_only: a write fio made is not on $1"; }
	ok "every block fio wrote is on $1 (fio --verify_only)"
}

# allocations_now: the allocation counter once it holds still for 0.3 s
# (a map leaf replaced under writes is freed after an RCU grace period).
allocations_now() {
	local a b=x i=0
	a=$(allocations)
	while [ "$a" != "$b" ] && [ $i -lt 20 ]; do
		b=$a
		sleep 0.3
		a=$(allocations)
		i=$((i + 1))
	done
	echo "$a"
}

# allocations_settle WANT WHAT: the allocation counter reaches WANT within 5 s.
allocations_settle() {
	local i=0
	while [ "$(allocations)" != "$1" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	assert_eq "$2" "$(allocations)" "$1"
}

setup_disk
bt attach $V

echo "# ---- (a) DETACH with a snapshot held while fio writes"
snapshot_under_fio $V
in_flight detach
bt detach $V
snap_errno ENOENT status $V
fio_done
verify_fio $V
check_no_leak

echo "# ---- (b) rmmod with a snapshot held while fio writes"
bt attach $V
snapshot_under_fio $V
exec 4</dev/blktrack-ctl
echo "+ rmmod blktrack (the control device is open: must fail)"
rmmod blktrack 2>&1 && fail "rmmod succeeded while /dev/blktrack-ctl was open"
module_loaded || fail "the module went away although rmmod failed"
assert_eq "the snapshot after the refused rmmod: overflow" "$(snap_status_get $V overflow)" 0
exec 4<&-
in_flight rmmod
run rmmod blktrack
module_loaded && fail "blktrack still loaded after rmmod"
fio_done
verify_fio $V
dmesg | grep -q 'blktrack: leaked' && { dmesg | grep leaked; fail "module exit reported a leak"; }
dmesg | grep -q 'blktrack: unloaded' || fail "no 'unloaded' message from the module"
ok "module exit ended the snapshot and freed everything"
load_module
check_no_leak

echo "# ---- (d) COMMIT and ABORT end the snapshot and free its store"
bt attach $V
run dd if=/dev/urandom of=$V bs=$MIB count=4 oflag=direct status=none
for end in commit abort; do
	# Before: the volume's active map holds writes to [0, 4 MiB), no
	# checkpoint; after the end (and fio's writes to the same range) the
	# same holds: the same allocations.
	before=$(allocations_now)
	snapshot_under_fio $V
	# The store first: it only grows while fio writes.
	store=$(snap_status_get $V store_bytes)
	during=$(allocations)
	[ "$during" -ge $((before + store / 4096)) ] ||
		fail "$end: $during allocations with $store bytes stored, $before before"
	ok "$end: $during allocations with the snapshot ($before before, $((store / 4096)) copies stored)"
	in_flight $end
	bt $end $V
	snap_errno ENODATA status $V
	snap_errno ENODATA read $V 0 4096
	assert_status $V pending no
	fio_done
	verify_fio $V
	allocations_settle "$before" "$end: allocations back to their value before the snapshot"
done
bt detach $V
check_no_leak

echo "# ---- (c) the device removed under a snapshot: null_blk deleted"
load_kmod null_blk nr_devices=0
grep -q ' /sys/kernel/config ' /proc/mounts || run mount -t configfs none /sys/kernel/config
run mkdir $NB
ls /sys/block >"$BT_TMP/blocks.before"
echo 64 >$NB/size && echo 1 >$NB/memory_backed && echo 1 >$NB/power ||
	fail "cannot configure null_blk $NB"
# nullbN on 6.1, the configfs name on 6.12.
N=/dev/$(ls /sys/block | grep -vxF -f "$BT_TMP/blocks.before" | head -n 1)
i=0
while [ ! -b "$N" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$N" ] || fail "$N did not appear"
run mknod $G b $(tr ':' ' ' <"/sys/block/${N#/dev/}/dev")

# Idle: no write after the removal; reading the snapshot fails cleanly.
bt attach $N
run dd if=/dev/urandom of=$N bs=$MIB count=4 oflag=direct status=none
run "$SNAPREAD" take $N
echo 0 >$NB/power || fail "null_blk power off"
[ -b "$N" ] && fail "$N still there after its power off"
snap_errno EOVERFLOW read $G 0 4096
assert_eq "idle removal: overflow" "$(snap_status_get $G overflow)" 1
assert_eq "idle removal: error (ENODEV)" "$(snap_status_get $G error)" 19
blktrack status $G >"$BT_TMP/st" || fail "blktrack status of the removed device"
assert_eq "idle removal: reason" "$(sed -n 's/^reason: *//p' "$BT_TMP/st")" device-removed
bt detach $G
check_no_leak

# Under fio: the writes after the removal fail, none hangs.
echo 1 >$NB/power || fail "null_blk power on"
i=0
while [ ! -b "$N" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
bt attach $N
FIO_MODE=direct snapshot_under_fio $N 0 all
in_flight "the removal"
echo 0 >$NB/power || fail "null_blk power off"
fio_done may-fail
snap_errno EOVERFLOW read $G 0 4096
assert_eq "removal under fio: overflow" "$(snap_status_get $G overflow)" 1
err=$(snap_status_get $G error)
[ "$err" = 19 ] || [ "$err" = 5 ] || fail "removal under fio: error $err, wanted ENODEV or EIO"
ok "removal under fio: the snapshot was lost with error $err"
blktrack status $G >"$BT_TMP/st" || fail "blktrack status of the removed device"
assert_eq "removal under fio: reason" "$(sed -n 's/^reason: *//p' "$BT_TMP/st")" device-removed
bt detach $G
check_no_leak
run rmdir $NB
run rmmod null_blk

echo "# ---- (c) dmsetup remove --force of a snapshotted dm device under fio"
run dmsetup create bt-gone --table "0 $((16 * MIB / 512)) linear /dev/vda2 0"
D=/dev/mapper/bt-gone
[ -b $D ] || fail "$D did not appear"
bt attach $D
FIO_MODE=direct snapshot_under_fio $D 0 all
in_flight "dmsetup remove --force"
# Open (by blktrack): dm swaps in an error table, then refuses the removal.
echo "+ dmsetup remove --force bt-gone"
dmsetup remove --force bt-gone
dmsetup table bt-gone | grep -q ' error' || fail "bt-gone has no error table after remove --force"
fio_done may-fail
# A write that needed a copy after the swap lost the snapshot (its copy's
# read failed); if none came (fio's last writes were copied before), the
# snapshot holds and SNAP_READ fails with the device's own EIO. Never data.
if [ "$(snap_status_get $D overflow)" = 1 ]; then
	snap_errno EOVERFLOW read $D 0 4096
	assert_eq "dm removal: error (EIO)" "$(snap_status_get $D error)" 5
else
	snap_errno EIO read $D 0 4096
fi
bt detach $D
run dmsetup remove bt-gone
check_no_leak
check_kernel_log

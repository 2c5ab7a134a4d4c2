#!/bin/sh
# Snapshot stress (issue 6), on 2 vCPUs, for STRESS_SECS seconds (default
# 20, as 0990-stress):
#   - fio, 2 jobs through a dm-linear over the whole of /dev/vda1 (the
#     tracked volume): an O_DIRECT writer (libaio, 4 in flight, 4-64 KiB) on
#     the first half, a buffered one (512 bytes-8 KiB, fsync every 16) on
#     the second; each logs its writes (write_iolog);
#   - progs/snap-cycle: every 100 ms CHECKPOINT_SNAP (every fourth with
#     SNAP_ALL), SNAP_STATUS, READ_EXTENTS, a SNAP_READ of part of the
#     pending map (every fifth cycle a RELEASE too), then COMMIT and ABORT in
#     turn (SNAP_STATUS ENODATA after each); the committed pending maps go to
#     a file. Cycle 3 and every 25th: the dm device is suspended, the window
#     [24, 40) MiB of /dev/vda1 read as the image, CHECKPOINT_SNAP (SNAP_ALL),
#     resumed; the snapshot of the window, read while fio writes, must equal
#     the image;
#   - then a last checkpoint: the committed pending maps and its own must
#     cover every block fio logged (a missed block would be a lost change).
# The kernel log must stay free of oopses, warnings, lockups, RCU stalls and
# hung tasks, and nothing may leak.
# vm-smp: 2
. /blktrack/tests/vm/lib/testlib.sh
V=/dev/vda1
ST=/dev/mapper/bt-st
MIB=1048576
secs=${STRESS_SECS:-20}
FIO_PID=
CYC_PID=
cleanup_snapstress() {
	for p in $FIO_PID $CYC_PID; do
		kill "$p" 2>/dev/null
	done
	wait
	dmsetup resume bt-st 2>/dev/null
	cleanup_all
}
trap cleanup_snapstress EXIT

ncpu=$(grep -c '^processor' /proc/cpuinfo)
[ "$ncpu" -ge 2 ] || fail "the stress test needs 2 vCPUs, the guest has $ncpu"
ok "$ncpu vCPUs; ${secs}s of fio and snapshot cycles"

setup_disk
# Random content: a snapshot read that returns new data for old shows.
run dd if=/dev/urandom of=$V bs=$MIB count=64 oflag=direct status=none
bt attach $V
run dmsetup create bt-st --table "0 $((64 * MIB / 512)) linear $V 0"
[ -b $ST ] || fail "$ST did not appear"

cat >"$BT_TMP/snapstress.fio" <<EOF
[global]
filename=$ST
rw=randwrite
time_based
runtime=$secs
randrepeat=0
norandommap
size=32m
[direct]
direct=1
ioengine=libaio
iodepth=4
offset=0
bssplit=4k/50:16k/30:64k/20
rate=512k
write_iolog=$BT_TMP/iolog.direct
[buffered]
direct=0
ioengine=psync
offset=32m
bssplit=512/20:4k/60:8k/20
fsync=16
end_fsync=1
rate=256k
write_iolog=$BT_TMP/iolog.buffered
EOF
: >"$BT_TMP/committed"
/usr/bin/fio "$BT_TMP/snapstress.fio" >"$BT_TMP/fio.out" 2>&1 &
FIO_PID=$!
dms="DM_DISABLE_UDEV=1 /usr/sbin/dmsetup --noudevsync"
"$BT_TOP"/build/vmprogs/snap-cycle -p 100 -w $((24 * MIB)):$((16 * MIB)) -v 25 \
	-s "$dms suspend bt-st" -r "$dms resume bt-st" $V "$secs" "$BT_TMP/committed" \
	>"$BT_TMP/cycle.out" 2>&1 &
CYC_PID=$!

frc=0
wait_exit $FIO_PID $((secs + 120)) fio || frc=$?
FIO_PID=
crc=0
wait_exit $CYC_PID 120 snap-cycle || crc=$?
CYC_PID=
sed 's/^/# snap-cycle: /' "$BT_TMP/cycle.out"
[ $crc = 0 ] || fail "snap-cycle exited $crc"
[ $frc = 0 ] || { cat "$BT_TMP/fio.out"; fail "fio exited $frc"; }
grep -E '^ +write:' "$BT_TMP/fio.out" | sed 's/^ */# fio /'
verified=$(sed -n 's/^verified //p' "$BT_TMP/cycle.out")
[ "${verified:-0}" -ge 1 ] || fail "no snapshot was verified against its image"
ok "$(sed -n 's/^cycles //p' "$BT_TMP/cycle.out") cycles; $verified snapshot(s) equal to the image taken at their checkpoint"

echo "# ---- tracking held: the pending maps cover every block fio wrote"
run sync
bt checkpoint $V
blktrack changes $V --pending >>"$BT_TMP/committed" || fail "blktrack changes failed"
bt commit $V
# fio's logs: "TIME FILE write OFFSET LENGTH" (bytes; $ST maps $V one to one).
awk '$3 == "write" { print $4, $5 }' "$BT_TMP"/iolog.* >"$BT_TMP/written"
[ -s "$BT_TMP/written" ] || fail "fio logged no write"
_to_blocks 4096 <"$BT_TMP/written" >"$BT_TMP/written.blocks"
_to_blocks 4096 <"$BT_TMP/committed" >"$BT_TMP/union.blocks"
_range_minus "$BT_TMP/written.blocks" "$BT_TMP/union.blocks" >"$BT_TMP/missing"
if [ -s "$BT_TMP/missing" ]; then
	sed 's/^/#   missing block(s) /' "$BT_TMP/missing"
	fail "blocks fio wrote are in no pending map"
fi
extra=$(_range_minus "$BT_TMP/union.blocks" "$BT_TMP/written.blocks" | wc -l)
ok "$(wc -l <"$BT_TMP/written") writes by fio, all in the pending maps ($extra range(s) reported that fio did not write)"

bt detach $V
run dmsetup remove bt-st
check_no_leak
check_kernel_log

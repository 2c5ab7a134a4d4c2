#!/bin/sh
# The system test (make check-system): Debian bookworm with systemd, booted
# in QEMU from a whole disk image, blktrack installed from the .debs of
# `make deb`, and four boots that nobody types into (tests/system/guest.sh
# does each phase's checks inside, from a service):
#   1. 6.1, first boot: the volumes attached (root by the initramfs hook),
#      INVALID no-state; a full backup by blktrack-backup@data.service
#   2. 6.1, after a clean reboot: both attached with their saved histories
#      restored before their read-write mount; the next incremental holds
#      exactly the blocks written; then a power cut (QEMU killed)
#   3. 6.1, after the power cut: INVALID unclean, the next backup resyncs
#      and restores bit-exactly; the 6.12 kernel installed with dpkg: DKMS
#      builds the module
#   4. 6.12: the module is DKMS's, tracking goes on (an exact incremental);
#      a schedule in blktrack.conf gives a timer (the generator) whose
#      backups are pruned by keep-last, every kept point restoring exactly
# About 20-30 min here under TCG; downloads cached in build/system/apt.
set -eu
cd "$(dirname "$0")/../.."
out=build/system/run
K1=${SYSTEST_KERNEL1:-6.1.0-57-cloud-amd64}
K2=${SYSTEST_KERNEL2:-6.12.118+deb12-cloud-amd64}
export SYSTEST_KERNEL1=$K1 SYSTEST_KERNEL2=$K2
ROOT_UUID=5e7b1c1e-0001-4b1a-9c1e-b17c0ffee001

DEB_BUILD_OPTIONS=nocheck make -s deb >build/system-deb.log 2>&1 ||
	{ tail -20 build/system-deb.log; echo "not ok - make deb"; exit 1; }
tests/system/build-image.sh "$out"

# boot PHASE KVER [KILL-MARKER]: one boot to its end (poweroff, reboot) or
# to KILL-MARKER on the console (then SIGKILL: a power cut).
boot() {
	log=$out/phase$1.log
	echo "systest: phase $1 on $2 (log: $log)"
	timeout -k 10 2400 qemu-system-x86_64 -accel tcg -smp 2 -m 2048 \
		-kernel "$out/vmlinuz-$2" -initrd "$out/initrd.img-$2" \
		-append "root=UUID=$ROOT_UUID ro console=ttyS0 no_timer_check systest.phase=$1" \
		-drive file="$out/disk.img",format=raw,if=virtio,cache=unsafe \
		-drive file="$out/repo.img",format=raw,if=virtio,cache=unsafe \
		-nographic -no-reboot -nic none </dev/null >"$log" 2>&1 &
	qpid=$!
	if [ -n "${3:-}" ]; then
		while kill -0 $qpid 2>/dev/null && ! grep -q "$3" "$log"; do
			sleep 0.5
		done
		pkill -KILL -P $qpid || true
	fi
	wait $qpid 2>/dev/null || true
	# Not anchored: the console may put a login prompt before a line.
	grep -a 'SYSTEST ' "$log" | tr -d '\r' | sed 's/.*SYSTEST /    /' | awk '!seen[$0]++'
	if grep -aq 'SYSTEST not ok' "$log"; then
		echo "not ok - phase $1 (log: $log)"
		exit 1
	fi
	grep -aq "SYSTEST ${4:-PHASE-DONE $1}" "$log" ||
		{ tail -30 "$log"; echo "not ok - phase $1 did not finish (log: $log)"; exit 1; }
}

start=$(date +%s)
boot 1 "$K1"
boot 2 "$K1" "SYSTEST POWERCUT-READY" "POWERCUT-READY"
boot 3 "$K1"
for f in vmlinuz initrd.img; do
	debugfs -R "dump /boot/$f-$K2 $out/$f-$K2" "$out/repo.img" 2>/dev/null
	[ -s "$out/$f-$K2" ] || { echo "not ok - no /boot/$f-$K2 from phase 3"; exit 1; }
done
boot 4 "$K2"
grep -aq 'SYSTEST PASS' "$out/phase4.log" || { echo "not ok - no PASS"; exit 1; }
echo "ok - system test: 4 boots, $(( $(date +%s) - start )) s after the image was built"

#!/bin/sh
# Guest /init for the blktrack VM tests (busybox sh).
#
# Kernel command line:
#	blktrack.mode=test|demo|shell	what to run (default test)
#	blktrack.tests=GLOB[,GLOB...]	which tests/vm/NNNN-*.sh to run (default all)
#	blktrack.suite=/bench		run tests/vm/bench/NNNN-*.sh instead
#	blktrack.timeout=SECONDS	per test (default 900)
#	blktrack.boot=N			the Nth boot of a multi-boot test
#					(tests/vm/reboot/, run by reboot.sh): BT_BOOT
#	blktrack.rounds=N		benchmarks: rounds (their ROUNDS)
#	blktrack.stress_secs=SECONDS	STRESS_SECS for 0990, 0991 (default 20)
#	blktrack.env=NAME=VALUE		exported to the tests (run.sh: BT_TEST_*)
#
# For each test it prints, on the serial console:
#	BLKTRACK-TEST-BEGIN name
#	... the test's output, then the kernel messages it caused ("dmesg: ...") ...
#	BLKTRACK-TEST-END name rc
# then BLKTRACK-ALL-DONE, and powers off.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs -o size=256m tmpfs /tmp
mount -t tmpfs tmpfs /run
export PATH=/blktrack/build:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export BT_TOP=/blktrack
cd /blktrack || exit 1

# Start on a clean line: the firmware leaves escape codes on the console.
echo
mode=test
glob='*'
suite=
for arg in $(cat /proc/cmdline); do
	case $arg in
	blktrack.mode=*) mode=${arg#*=} ;;
	blktrack.tests=*) glob=${arg#*=} ;;
	blktrack.suite=*) suite=${arg#*=} ;;
	blktrack.timeout=*) BLKTRACK_TEST_TIMEOUT=${arg#*=} ;;
	blktrack.boot=*) BT_BOOT=${arg#*=}; export BT_BOOT ;;
	blktrack.rounds=*) ROUNDS=${arg#*=}; export ROUNDS ;;
	blktrack.stress_secs=*) export STRESS_SECS=${arg#*=} ;;
	blktrack.env=*) export "${arg#*=}" ;;
	esac
done

while read -r ko what; do
	if [ "$what" = dep ]; then
		# A CPU-specific variant (crc32c-intel, crct10dif-pclmul) finds
		# no such CPU under TCG: the generic code serves then.
		insmod "$ko" 2>/dev/null || echo "init: ${ko##*/}: not loaded (no such device?)"
	else
		insmod "$ko" || echo "init: insmod $ko failed"
	fi
done </etc/blktrack-boot-modules

if [ -f /blktrack/kmod/blktrack.ko ]; then
	insmod /blktrack/kmod/blktrack.ko || echo "init: insmod blktrack.ko failed"
else
	echo "init: no blktrack.ko in the initramfs"
fi
# Report a task stuck for 60 s, well within a test's time limit.
echo 60 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
# Messages from boot and module loading belong to no test.
dmesg -c >/tmp/dmesg.boot
grep -E 'Oops|BUG:|WARNING:|Call Trace|soft lockup|hung task|blocked for more than|detected stall' /tmp/dmesg.boot |
	sed 's/^/dmesg: /'

case $mode in
demo)
	sh /blktrack/tests/vm/lib/demo-guest.sh
	echo "BLKTRACK-DEMO-END $?"
	;;
shell)
	setsid cttyhack sh
	;;
*)
	for t in /blktrack/tests/vm$suite/[0-9][0-9][0-9][0-9]-*.sh; do
		name=${t##*/}
		name=${name%.sh}
		want=
		set -f
		IFS=,
		for g in $glob; do
			case $name in $g) want=1 ;; esac
		done
		unset IFS
		set +f
		[ -n "$want" ] || continue
		echo "BLKTRACK-TEST-BEGIN $name"
		t0=$(cut -d' ' -f1 /proc/uptime)
		cd /tmp || exit 1
		timeout "${BLKTRACK_TEST_TIMEOUT:-900}" sh "$t" 2>&1
		rc=$?
		cd /blktrack || exit 1
		# Each test's scratch files go with it: /tmp is one 256 MiB
		# tmpfs for every test of the boot.
		rm -rf /tmp/bt.* /tmp/loop.*
		sync
		dmesg -c | sed 's/^/dmesg: /'
		echo "BLKTRACK-TEST-TIME $name $(awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime)"
		echo "BLKTRACK-TEST-END $name $rc"
	done
	;;
esac
# The evidence disk (testlib.sh: keep_evidence), if a test kept any: clean
# for the host, which reads it after the power-off.
if grep -q ' /evidence ' /proc/mounts; then
	sync
	umount /evidence || echo "init: umount /evidence failed"
fi
echo "BLKTRACK-ALL-DONE"
poweroff -f

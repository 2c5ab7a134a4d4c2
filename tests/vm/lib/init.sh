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
#	blktrack.slow=N			a debug kernel's slowdown (host.sh): the
#					test timeout and hung-task limit times N;
#					BT_SLOW=N for the tests (how long they hold
#					a write in flight)
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
	blktrack.slow=*) slow=${arg#*=} ;;
	esac
done
slow=${slow:-1}
export BT_SLOW=$slow
BLKTRACK_TEST_TIMEOUT=$((${BLKTRACK_TEST_TIMEOUT:-900} * slow))

# kmemleak, on a debug kernel (scripts/build-debug-kernel.sh), scans only
# when asked: after each test. An unreferenced object with a blktrack frame
# in its backtrace is the module's leak and fails the test (host.sh:
# VM_CRASH_RE "kmemleak: blktrack"); so does one with a frame in a module
# since unloaded (kmemleak can no longer name it: blktrack, or a test's
# null_blk, brd or discard_plug). The kernel's own leaks are shown, the
# first in full, and fail nothing.
KMEMLEAK=/sys/kernel/debug/kmemleak
kmemleak_check() {
	[ -w $KMEMLEAK ] || return 0
	# An object is reported once it is 5 s old: scan again after that
	# (and a second scan drops most false positives: kmemleak.rst).
	echo scan >$KMEMLEAK
	sleep 6
	echo scan >$KMEMLEAK
	awk '
	function flush() {
		if (rec == "")
			return
		if (rec ~ /\[blktrack\]/)
			why = "blktrack"
		else if (rec ~ /\n +0x[0-9a-f]+(\n|$)/)
			why = "blktrack (a module since unloaded)"
		else
			why = ""
		if (why != "") {
			gsub(/\n/, "\nkmemleak:   ", rec)
			printf "kmemleak: %s leaked: %s\n", why, rec
		} else if (kernel++ == 0)
			first = rec
		rec = ""
	}
	/^unreferenced object/ { flush(); rec = $0; next }
	{ rec = rec "\n" $0 }
	END {
		flush()
		if (kernel) {
			printf "kmemleak: %d object(s) of the kernel'"'"'s own (not blktrack'"'"'s); the first:\n", kernel
			gsub(/\n/, "\nkmemleak:   ", first)
			printf "kmemleak:   %s\n", first
		}
	}' $KMEMLEAK
	echo clear >$KMEMLEAK
}

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
echo $((60 * slow)) >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
if [ "$slow" -gt 1 ]; then
	# A slow kernel on a loaded host: the guest's clock can jump 20 s
	# between two of its reads (a soft lockup in fio's munmap, no blktrack
	# frame, on the debug kernel): the lockup and RCU stall limits too
	# (their kernel maxima: 60 s, 300 s).
	t=$((10 * slow)); [ $t -le 60 ] || t=60
	echo $t >/proc/sys/kernel/watchdog_thresh 2>/dev/null
	t=$((21 * slow)); [ $t -le 300 ] || t=300
	echo $t >/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout 2>/dev/null
fi
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
	# What boot left (the kernel's, or the module's load).
	[ -w $KMEMLEAK ] && echo "init: kmemleak: a scan after each test"
	kmemleak_check
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
		kmemleak_check
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

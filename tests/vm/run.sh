#!/bin/sh
# Run the VM tests (tests/vm/NNNN-*.sh) on every selected kernel.
#
#   tests/vm/run.sh [--kernel KVER] [--bench] [TEST-GLOB[,TEST-GLOB...]]
#
# A plain name is a prefix: "0400" runs 0400-discard; "0050,0420,0440" three.
#
# --bench runs the benchmarks of tests/vm/bench/ instead (make bench) and
# ends with their "BENCH key value" figures as a table.
#
# The kernels: --kernel KVER, or every installed kernel of the flavours in
# VM_FLAVOURS (cloud, rt, generic or all; default cloud: scripts/kernels.sh).
# One QEMU boot per kernel runs every selected test in order; the kernels
# boot in parallel, VM_JOBS at a time (default: the host's CPUs). Prints
# "PASS kernel test" or "FAIL kernel test" (with the test's output) per
# test, then "N passed, N failed"; exits nonzero if any failed. A crash (no end marker, or an oops/BUG/WARNING/lockup in the kernel
# log) fails the test that was running. Full serial logs: build/vm/KVER.log.
# A failed bit-exact comparison keeps its evidence (testlib.sh:
# keep_evidence), copied out to build/vm/evidence/KVER-DATE-TIME/TEST-N/.
# Environment: BLKTRACK_TEST_TIMEOUT (seconds per test in the guest, 900),
# VM_TIMEOUT (seconds per boot, 3600): limits for a hang, not for speed;
# ROUNDS (--bench: rounds per benchmark; figures are deterministic under
# icount, so one round gives the same ones); STRESS_SECS (how long
# 0990 and 0991 stress, 20); VM_SMP (every test on this many vCPUs; by
# default a test gets 1, or N with a "# vm-smp: N" line, in a boot of its own).
# A "# vm-append: ARGS" line in a test's header adds ARGS to the kernel
# command line of a boot of its own (memmap= for pmem: tests/vm/0464).
# Variables named BT_TEST_* (values of letters, digits and ._:-) are passed
# to the tests in the guest, e.g. BT_TEST_SEED=123 BT_TEST_STEPS=2000 for 0980.
set -u

. "$(dirname "$0")/lib/host.sh"

only=
glob='*'
suite=tests/vm
gtimeout="blktrack.timeout=${BLKTRACK_TEST_TIMEOUT:-900}"
[ -n "${STRESS_SECS:-}" ] && gtimeout="$gtimeout blktrack.stress_secs=$STRESS_SECS"
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) only=$2; shift 2 ;;
	--bench)
		suite=tests/vm/bench
		gtimeout="blktrack.timeout=1500${ROUNDS:+ blktrack.rounds=$ROUNDS}"
		VM_TIMEOUT=${VM_TIMEOUT:-3000}; export VM_TIMEOUT
		# Guest time counts instructions (1 ns each): figures do not
		# depend on what else the host runs (doc/BENCHMARKS.md).
		VM_QEMU_ARGS=${VM_QEMU_ARGS-"-icount shift=0,sleep=off"}; export VM_QEMU_ARGS
		# Scratch disk /dev/vdb for the backup benchmark (sparse).
		VM_DISK2_MIB=${VM_DISK2_MIB-4096}; export VM_DISK2_MIB
		shift ;;
	-h|--help) sed -n '2,29p' "$0"; exit 0 ;;
	-*) echo "usage: $0 [--kernel KVER] [--bench] [TEST-GLOB[,TEST-GLOB...]]" >&2; exit 2 ;;
	*) glob=$1; shift ;;
	esac
done

cd "$VM_TOP" || exit 1
vm_lock
trap 'vm_kill_boots; exit 130' INT TERM
trap 'rm -f "$VM_PIDFILE"' EXIT
if [ -n "$only" ]; then
	kernels=$only
else
	kernels=$(vm_kernels) || exit 1
fi
[ -n "$kernels" ] || vm_die "no supported kernel installed"

# The selected tests, fixed now: the initramfs is built from the same list.
selected=$(vm_select $suite "$glob")
[ -n "$selected" ] || vm_die "no test matches '$glob'"

make -s all vmprogs >/dev/null || echo "vm: warning: make all vmprogs failed; testing what is built" >&2
mkdir -p "$VM_DIR"

# Build the module and initramfs for every kernel first (fast), then boot.
for kver in $kernels; do
	scripts/build-kmod-all.sh --kernel "$kver" >"$VM_DIR/kmod-$kver.out" 2>&1 || {
		cat "$VM_DIR/kmod-$kver.out" >&2
		echo "vm: module build failed for $kver; its tests will fail" >&2
		rm -f "build/kmod-$kver/kmod/blktrack.ko"
	}
	vm_initramfs "$kver" >/dev/null || vm_die "initramfs for $kver failed"
done

# vCPUs a test asks for: a "# vm-smp: N" line in its header, else 1 (TCG
# runs one vCPU fastest). VM_SMP=N runs every test on N vCPUs. A "# vm-append:
# ARGS" line asks for more kernel command line. Each kernel boots once per
# group (vCPU count and command line), one boot after the other; kernels in
# parallel.
test_smp() {
	if [ -n "${VM_SMP:-}" ]; then
		echo "$VM_SMP"
		return
	fi
	n=$(sed -n '1,40s/^# vm-smp: *\([0-9][0-9]*\).*/\1/p' "$suite/$1.sh" | head -n 1)
	echo "${n:-1}"
}
test_append() {
	sed -n '1,40s/^# vm-append: *//p' "$suite/$1.sh" | head -n 1
}
# A group: the vCPU count, and ".a" and a hash of the command line it adds.
test_group() {
	a=$(test_append "$1")
	if [ -n "$a" ]; then
		echo "$(test_smp "$1").a$(echo "$a" | cksum | cut -d' ' -f1)"
	else
		test_smp "$1"
	fi
}
group_of=$(for n in $selected; do echo "$n $(test_group "$n")"; done)
groups=$(echo "$group_of" | awk '{ print $2 }' | sort -u)
# group_tests GROUP: the selected tests of that group, one per line.
group_tests() {
	echo "$group_of" | awk -v s="$1" '$2 == s { print $1 }'
}
group_smp() {
	echo "${1%%.*}"
}
group_append() {
	test_append "$(group_tests "$1" | head -n 1)"
}
# group_base KVER GROUP: build/vm/KVER for one vCPU, build/vm/KVER.smpN
# else, .GROUP for one with a command line of its own; .log (serial),
# .qemu (QEMU's exit and seconds), .results (parsed).
group_base() {
	case $2 in
	1) echo "$VM_DIR/$1" ;;
	*.*) echo "$VM_DIR/$1.$2" ;;
	*) echo "$VM_DIR/$1.smp$2" ;;
	esac
}

# BT_TEST_* variables for the tests: blktrack.env=NAME=VALUE (init.sh).
genv=
for v in $(env | sed -n 's/^\(BT_TEST_[A-Za-z0-9_]*\)=.*/\1/p'); do
	eval "val=\$$v"
	case $val in
	*[!A-Za-z0-9._:-]*|'') vm_die "$v='$val': only letters, digits and ._:- pass to the guest" ;;
	esac
	genv="$genv blktrack.env=$v=$val"
done

boot_one() {
	kver=$1 all_qargs=${VM_QEMU_ARGS:-}
	for g in $groups; do
		echo "vm: booting $kver, $(group_smp "$g") vCPU(s)$(a=$(group_append "$g"); [ -n "$a" ] && echo ", $a") (log: $(group_base "$kver" "$g" | sed "s|^$VM_TOP/||").log)"
	done
	for g in $groups; do
		smp=$(group_smp "$g")
		qargs=$all_qargs icount=
		case $qargs in *-icount*) icount=blktrack.icount=1 ;; esac
		# icount runs the vCPUs in turn (their instructions add up), and
		# 6.1 did not boot with two under it: SMP boots use the host clock.
		if [ "$smp" -gt 1 ]; then
			qargs=$(echo "$qargs" | sed 's/-icount *[^ ]*//')
			icount=
		fi
		base=$(group_base "$kver" "$g")
		start=$(date +%s)
		VM_QEMU_ARGS=$qargs
		vm_boot "$kver" "$VM_DIR/initramfs-$kver.cpio" \
			"blktrack.mode=test blktrack.suite=${suite#tests/vm} blktrack.tests=$(group_tests "$g" | paste -s -d, -) $gtimeout $icount$genv $(group_append "$g")" \
			"$base.log" "$smp"
		qrc=$?
		echo "$qrc $(($(date +%s) - start))" >"$base.qemu"
	done
}

# Evidence directories newer than this mark are this run's (host.sh).
: >"$VM_DIR/.run-start.$$"
# shellcheck disable=SC2086
vm_each_kernel boot_one $kernels

# Parse one serial log. Output: "PASS name" / "FAIL name" records, the
# output of each failing test indented under it.
parse_log() {
	# Console escapes may precede a marker on its line: cut them off.
	tr -d '\r' <"$1" | sed 's/^.*\(BLKTRACK-[A-Z-]* \)/\1/; s/^.*BLKTRACK-ALL-DONE/BLKTRACK-ALL-DONE/' |
		awk -v qrc="$2" -v re="$VM_CRASH_RE" '
	# A test that announces BLKTRACK-OOM-EXPECTED may meet the OOM killer:
	# the stack in its report is no crash (anything else in it still is).
	function crashpat(s) {
		if (oom_ok && s ~ /invoked oom-killer:/)
			in_oom = 1
		if (in_oom && s ~ /Out of memory: Killed process/)
			in_oom = 0
		if (in_oom && s ~ /Call Trace/)
			return 0
		return s ~ re
	}
	/^BLKTRACK-TEST-BEGIN / { cur = $2; out = ""; crash = ""; oom_ok = 0; in_oom = 0; next }
	/^BLKTRACK-OOM-EXPECTED / { oom_ok = 1; next }
	/^BLKTRACK-TEST-END / && cur != "" {
		rc = $3
		if (rc == 0 && crash == "") print "PASS " cur
		else {
			why = (crash != "") ? "kernel reported: " crash : "exit status " rc
			if (crash == "" && (rc == 124 || rc == 143)) why = "timed out in the guest"
			print "FAIL " cur " (" why ")"
			printf "%s", out
		}
		cur = ""; next
	}
	/^BLKTRACK-TEST-TIME / { next }
	/^BLKTRACK-ALL-DONE/ { done = 1; next }
	{
		if (crashpat($0) && crash == "") {
			crash = $0
			if (cur == "") boot = boot "    " $0 "\n"
		}
		if (cur != "") out = out "    " $0 "\n"
		else tail = tail "    " $0 "\n"
	}
	END {
		if (cur != "") {
			why = (qrc == 124) ? "timeout: QEMU killed" : "kernel crash: no end marker"
			if (crash != "") why = why ", kernel reported: " crash
			print "FAIL " cur " (" why ")"
			printf "%s", out
		} else if (!done) {
			print "FAIL boot (no BLKTRACK-ALL-DONE marker, QEMU exit " qrc ")"
			printf "%s", tail
		} else if (boot != "") {
			print "FAIL boot (kernel reported outside any test)"
			printf "%s", boot
		}
	}'
}

passed=0
failed=0
for kver in $kernels; do
	for g in $groups; do
		smp=$(group_smp "$g")
		base=$(group_base "$kver" "$g")
		rel=${base#$VM_TOP/}
		read -r qrc secs <"$base.qemu"
		log=$base.log
		res=$base.results
		parse_log "$log" "$qrc" >"$res"
		while IFS= read -r line; do
			case $line in
			"PASS "*)
				echo "PASS $kver ${line#PASS }"
				passed=$((passed + 1)) ;;
			"FAIL "*)
				echo "FAIL $kver ${line#FAIL }"
				failed=$((failed + 1)) ;;
			*)
				echo "$line" ;;
			esac
		done <"$res"
		n=$(grep -c '^\(PASS\|FAIL\) ' "$res")
		# Selected tests that never started (a crash ended the boot first).
		for name in $(group_tests "$g"); do
			grep -q "^\(PASS\|FAIL\) $name\( \|\$\)" "$res" && continue
			echo "FAIL $kver $name (not run: the boot ended before it)"
			failed=$((failed + 1))
		done
		echo "vm: $kver: $n test(s) on $smp vCPU(s) reported in ${secs}s (log: $rel.log)"
		times=$(tr -d '\r' <"$log" | sed -n 's/^.*BLKTRACK-TEST-TIME \([^ ]*\) \([0-9.]*\)$/\1 \2s/p' |
			paste -s -d, - | sed 's/,/, /g')
		[ -n "$times" ] && echo "vm: $kver: seconds per test: $times"
	done
done
if [ "$suite" = tests/vm/bench ]; then
	echo "vm: benchmark figures (kernel, key, value):"
	for kver in $kernels; do
		for g in $groups; do
			tr -d '\r' <"$(group_base "$kver" "$g").log" |
				sed -n 's/^.*BENCH \([^ ]*\) \(.*\)$/\1 \2/p' |
				while read -r key val; do printf '%-28s %-44s %s\n' "$kver" "$key" "$val"; done
		done
	done
fi
# What failed comparisons kept (testlib.sh: keep_evidence).
if [ -d "$VM_DIR/evidence" ]; then
	find "$VM_DIR/evidence" -mindepth 1 -maxdepth 1 -type d -newer "$VM_DIR/.run-start.$$" |
		sort | while read -r d; do
		echo "vm: evidence kept in ${d#$VM_TOP/}: $(ls "$d" | paste -s -d' ' -)"
	done
fi
rm -f "$VM_DIR/.run-start.$$"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

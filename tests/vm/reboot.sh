#!/bin/sh
# Run the multi-boot tests (tests/vm/reboot/NNNN-*.sh) on every selected
# kernel: power cuts and reboots on one disk image.
#
#   tests/vm/reboot.sh [--kernel KVER] [TEST-GLOB[,TEST-GLOB...]]  (as for run.sh)
#
# The kernels, as for run.sh: --kernel KVER, or those of the flavours in
# VM_FLAVOURS (default cloud), VM_JOBS at a time (default: the host's CPUs).
# Each test runs in boot after boot of one VM on the same disk image; the
# guest learns which boot it is from BT_BOOT (1, 2, ...). A boot ends with
#	BLKTRACK-REBOOT		the test asks for another boot after a clean
#				power-off (it exits 0);
#	BLKTRACK-KILL-NOW	the host kills QEMU at once (SIGKILL: a power
#				cut), then boots again;
#	neither			the test is over: its exit status decides.
# Before the next boot, a "BLKTRACK-HOST-CMD NAME" line of the boot makes the
# host run tests/vm/reboot/host-NAME.sh DISK-IMAGE: a write from the host.
# A test with a line "# vm-extra-disks: N" gets N more disk images of 64 MiB,
# kept across its boots, as virtio disks with serials bt-disk-1..N after
# /dev/vda (vdb, vdc...); a "BLKTRACK-SWAP-DISKS" line of a boot reverses
# their order for the next boot: two equal disks swap names, their serials
# follow them.
# A kernel oops/BUG/WARNING/lockup in any boot fails the test. Prints
# "PASS|FAIL kernel test", then "N passed, N failed". Logs: build/vm/reboot/.
set -u

# Room for XFS (300 MiB at least) on /dev/vda2.
VM_DISK_MIB=${VM_DISK_MIB:-512}
. "$(dirname "$0")/lib/host.sh"

MAX_BOOTS=10
only=
glob='*'
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) only=$2; shift 2 ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	-*) echo "usage: $0 [--kernel KVER] [TEST-GLOB[,TEST-GLOB...]]" >&2; exit 2 ;;
	*) glob=$1; shift ;;
	esac
done

cd "$VM_TOP" || exit 1
vm_lock
trap 'vm_kill_boots; exit 130' INT TERM
trap 'rm -f "$VM_PIDFILE"' EXIT
kernels=${only:-$(vm_kernels)} || exit 1
[ -n "$kernels" ] || vm_die "no supported kernel installed"
selected=$(vm_select tests/vm/reboot "$glob")
[ -n "$selected" ] || vm_die "no reboot test matches '$glob'"

make -s all vmprogs >/dev/null || echo "vm: warning: make all vmprogs failed" >&2
mkdir -p "$VM_DIR/reboot"
for kver in $kernels; do
	scripts/build-kmod-all.sh --kernel "$kver" >"$VM_DIR/kmod-$kver.out" 2>&1 ||
		{ cat "$VM_DIR/kmod-$kver.out" >&2; vm_die "module build failed for $kver"; }
	vm_initramfs "$kver" >/dev/null || vm_die "initramfs for $kver failed"
done

# One test on one kernel, boot after boot. Prints its PASS/FAIL record.
run_test() {
	kver=$1 name=$2
	base=$VM_DIR/reboot/$kver-$name
	disk=$(mktemp "$VM_DIR/reboot/disk-$kver.XXXXXX") || return 1
	truncate -s "${VM_DISK_MIB}M" "$disk"
	xdisk_list=
	i=1
	nextra=$(sed -n 's/^# vm-extra-disks: \([0-9]*\)$/\1/p' "tests/vm/reboot/$name.sh")
	while [ "$i" -le "${nextra:-0}" ]; do
		truncate -s 64M "$disk.x$i"
		xdisk_list="$xdisk_list $disk.x$i=bt-disk-$i"
		i=$((i + 1))
	done
	: >"$base.log"
	boot=1
	while :; do
		VM_EXTRA_DISKS=$xdisk_list VM_DISK=$disk VM_KILL_ON=BLKTRACK-KILL-NOW vm_boot "$kver" \
			"$VM_DIR/initramfs-$kver.cpio" \
			"blktrack.mode=test blktrack.suite=/reboot blktrack.tests=$name blktrack.boot=$boot blktrack.timeout=${BLKTRACK_TEST_TIMEOUT:-900}" \
			"$base.boot$boot.log"
		qrc=$?
		tr -d '\r' <"$base.boot$boot.log" >>"$base.log"
		out=$(tr -d '\r' <"$base.boot$boot.log" | sed 's/^.*\(BLKTRACK-[A-Z-]*\)/\1/')
		crash=$(echo "$out" | grep -E "$VM_CRASH_RE" | head -1)
		end=$(echo "$out" | sed -n "s/^BLKTRACK-TEST-END $name //p")
		if [ -n "$crash" ]; then
			why="boot $boot: kernel reported: $crash"
		elif echo "$out" | grep -q '^BLKTRACK-KILL-NOW'; then
			why=
		elif [ -z "$end" ]; then
			why="boot $boot: no end marker (QEMU exit $qrc)"
		elif [ "$end" != 0 ]; then
			why="boot $boot: exit status $end"
		elif echo "$out" | grep -q '^BLKTRACK-REBOOT'; then
			why=
		else
			echo "PASS $kver $name ($boot boots)"
			break
		fi
		for cmd in $(echo "$out" | sed -n 's/^BLKTRACK-HOST-CMD \([a-z0-9-]*\).*/\1/p'); do
			[ -n "$why" ] && break
			sh "tests/vm/reboot/host-$cmd.sh" "$disk" >>"$base.log" 2>&1 ||
				why="after boot $boot: host-$cmd.sh failed"
		done
		if [ -n "$why" ]; then
			echo "FAIL $kver $name ($why)"
			echo "$out" | sed -n "/^BLKTRACK-TEST-BEGIN/,\$p" | sed 's/^/    /'
			break
		fi
		if echo "$out" | grep -q '^BLKTRACK-SWAP-DISKS'; then
			rev=
			for d in $xdisk_list; do
				rev="$d $rev"
			done
			xdisk_list=$rev
			echo "# host: extra disks now in the order $xdisk_list" >>"$base.log"
		fi
		boot=$((boot + 1))
		if [ $boot -gt $MAX_BOOTS ]; then
			echo "FAIL $kver $name (more than $MAX_BOOTS boots)"
			break
		fi
	done
	rm -f "$disk" "$disk".x* "$base".boot*.log
}

# Every selected test on one kernel, one after the other.
run_kernel() {
	start=$(date +%s)
	for name in $selected; do
		run_test "$1" "$name"
	done >"$VM_DIR/reboot/$1.results"
	echo "$(($(date +%s) - start))" >"$VM_DIR/reboot/$1.secs"
}
# shellcheck disable=SC2086
vm_each_kernel run_kernel $kernels

passed=0
failed=0
for kver in $kernels; do
	cat "$VM_DIR/reboot/$kver.results"
	echo "vm: $kver: reboot tests done in $(cat "$VM_DIR/reboot/$kver.secs")s (logs: build/vm/reboot/$kver-*.log)"
	passed=$((passed + $(grep -c '^PASS ' "$VM_DIR/reboot/$kver.results")))
	failed=$((failed + $(grep -c '^FAIL ' "$VM_DIR/reboot/$kver.results")))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

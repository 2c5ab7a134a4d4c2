#!/bin/sh
# Build blktrack.ko for every selected kernel: installed, supported and of a
# flavour in VM_FLAVOURS (scripts/kernels.sh).
#
#   scripts/build-kmod-all.sh [--kernel KVER] [--list]
#
# VM_FLAVOURS: the kernel flavours to build for, among cloud, rt, generic
# (or all), debug; default cloud. A kernel is installed when its image and headers
# are on this host (/boot/vmlinuz-KVER, /lib/modules/KVER/build) or unpacked
# by scripts/install-kernels.sh; supported when KVER starts with 6.1. or
# 6.12. (the Debian LTS series we test). --kernel KVER builds for that
# kernel alone, whatever its flavour. Each build happens in a private copy
# of the sources, build/kmod-KVER/, so the kernels never share object files.
# The test-only modules of tests/vm/kmod/ (ipmodify_hog.ko) are built next
# to it, in build/kmod-KVER/testkmod/, for the VM tests' initramfs. Any
# compiler or modpost warning that names our files fails the build.
# --list only prints the selected kernels found, one per line.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
KERNELS_TOP=$top
. "$top/scripts/kernels.sh"
only=
list=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) only=$2; shift 2 ;;
	--list) list=1; shift ;;
	*) echo "usage: $0 [--kernel KVER] [--list]" >&2; exit 2 ;;
	esac
done
flavours=${VM_FLAVOURS:-cloud}
# shellcheck disable=SC2086
kernel_flavours_check $flavours || exit 2

if [ -n "$only" ]; then
	if ! kernel_flavour "$only" >/dev/null || ! kernel_root "$only" >/dev/null; then
		echo "build-kmod-all: kernel $only is not installed with headers or not supported" >&2
		exit 1
	fi
	found=$only
else
	# shellcheck disable=SC2086
	found=$(kernels_installed $flavours)
fi
if [ -z "$found" ]; then
	echo "build-kmod-all: no supported kernel (6.1.x or 6.12.x) of the flavours '$flavours' with headers installed" >&2
	case " $flavours " in
	*" cloud "*) echo "build-kmod-all: scripts/install-deps.sh installs the cloud ones" >&2 ;;
	esac
	case " $flavours " in
	" debug ") echo "build-kmod-all: scripts/build-debug-kernel.sh builds the debug ones" >&2 ;;
	*" debug "*) echo "build-kmod-all: scripts/build-debug-kernel.sh builds the debug ones," \
		"scripts/install-kernels.sh $flavours unpacks the others" >&2 ;;
	*) echo "build-kmod-all: scripts/install-kernels.sh $flavours unpacks the others" >&2 ;;
	esac
	exit 1
fi
if [ $list = 1 ]; then
	echo "$found"
	exit 0
fi

# build_one KVER: build in build/kmod-KVER/; caller holds that kernel's lock.
build_one() {
	kver=$1
	out=$top/build/kmod-$kver
	rm -rf "$out"
	mkdir -p "$out"
	cp "$top/Kbuild" "$out/"
	cp -r "$top/kmod" "$top/include" "$out/"
	# Never carry objects built elsewhere into this tree.
	find "$out" \( -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd' \
		-o -name 'Module.symvers' -o -name 'modules.order' \) -delete
	rm -rf "$out/kmod/compat/generated"
	log=$out/build.log
	kdir=$(kernel_build_dir "$kver")
	if ! make -C "$kdir" M="$out" modules >"$log" 2>&1; then
		cat "$log" >&2
		echo "build-kmod-all: FAILED for $kver (log: $log)" >&2
		return 1
	fi
	# (fixed-string match on the path: KVER may hold regex characters, "+")
	warn=$(grep -F "$out/" "$log" | grep -i 'warning:'
		grep -E '^WARNING: modpost: .*(kmod|blktrack)' "$log") || :
	if [ -n "$warn" ]; then
		echo "$warn" >&2
		echo "build-kmod-all: warnings from our files for $kver (log: $log)" >&2
		return 1
	fi
	ko=$(find "$out" -name blktrack.ko | head -n 1)
	if [ -z "$ko" ]; then
		echo "build-kmod-all: no blktrack.ko produced for $kver" >&2
		return 1
	fi
	build_test_modules "$kver" "$out/testkmod" || return 1
	echo "build-kmod-all: $kver -> ${ko#$top/}"
}

# build_test_modules KVER DIR: tests/vm/kmod/ (test-only modules) in DIR.
build_test_modules() {
	tdir=$2
	mkdir -p "$tdir"
	cp "$top"/tests/vm/kmod/Kbuild "$top"/tests/vm/kmod/*.c "$tdir/"
	tlog=$tdir/build.log
	if ! make -C "$(kernel_build_dir "$1")" M="$tdir" modules >"$tlog" 2>&1; then
		cat "$tlog" >&2
		echo "build-kmod-all: test modules FAILED for $1 (log: $tlog)" >&2
		return 1
	fi
	warn=$(grep -F "$tdir/" "$tlog" | grep -i 'warning:'
		grep -E '^WARNING: modpost: .*testkmod' "$tlog") || :
	if [ -n "$warn" ]; then
		echo "$warn" >&2
		echo "build-kmod-all: warnings from the test modules for $1 (log: $tlog)" >&2
		return 1
	fi
}

rc=0
mkdir -p "$top/build"
for kver in $found; do
	# Several builds may run at once in one tree: one at a time per kernel.
	(
		flock 9
		build_one "$kver"
	) 9>"$top/build/.kmod-$kver.lock" || rc=1
done
exit $rc

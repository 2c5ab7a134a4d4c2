#!/bin/sh
# Build the debug kernel of the VM tests (issue 12, point 5): Debian's
# kernel source of a series (linux-source-6.12, linux-source-6.1) with
# Debian's cloud config, trimmed to the modules the VM tests load, and
# lockdep, KASAN, kmemleak, DEBUG_OBJECTS, DEBUG_ATOMIC_SLEEP turned on.
#
#   scripts/build-debug-kernel.sh [SERIES...]	(default: 6.12)
#
# The result is a root in the layout scripts/kernels.sh expects, under
# DEBUG_KERNELS_DIR (build/debug-kernel/):
#	KVER/boot/vmlinuz-KVER, KVER/lib/modules/KVER/{kernel,modules.dep,build}
# with KVER = the source's version and "-debug" (6.12.118-debug); build
# points at the source tree, built in place (linux-source-SERIES/), for the
# external module. A kernel is built once: it is kept while the stamp of its
# inputs (the source tarball, the base config, DEBUG_MODULES and
# scripts/debug-kernel.config) matches.
# The log of the build is DEBUG_KERNELS_DIR/build-SERIES.log, its time in
# DEBUG_KERNELS_DIR/KVER/build-time.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
KERNELS_TOP=$top
. "$top/scripts/kernels.sh"
jobs=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}

# The modules the VM tests load (tests/vm/lib/host.sh: VM_BOOT_MODULES,
# VM_EXTRA_MODULES) and what they pull in: localmodconfig keeps these and
# drops every other module, so the build takes a fraction of Debian's.
DEBUG_MODULES="virtio_blk virtio_net loop dm_mod dm_era dm_delay dm_bufio
dm_persistent_data null_blk brd xfs libcrc32c overlay configfs nvme_fabrics
nvme_keyring nvmet nvme_loop nvmet_tcp nvme_tcp crc32c_intel
raid0 md_mod vfat fat nls_cp437 nls_ascii nls_utf8 zram lzo_rle bcache
dm_multipath dm_round_robin nd_e820 nd_pmem nd_btt libnvdimm"

# The debug options: scripts/debug-kernel.config, comments dropped.
debug_config() {
	# shellcheck disable=SC2046
	eval ./scripts/config --file "$1" $(sed 's/#.*//' "$top/scripts/debug-kernel.config")
}

# Options that must have survived olddefconfig, or the lane checks nothing.
DEBUG_REQUIRED="PROVE_LOCKING PROVE_RCU DEBUG_ATOMIC_SLEEP KASAN KASAN_INLINE
DEBUG_KMEMLEAK DEBUG_OBJECTS DEBUG_LIST FUNCTION_TRACER DYNAMIC_FTRACE_WITH_ARGS
KPROBES TRACEPOINTS BLK_DEV_IO_TRACE"

# base_config SERIES: Debian's cloud config of the series (linux-config-SERIES).
base_config() {
	_c=/usr/src/linux-config-$1/config.amd64_none_cloud-amd64.xz
	if [ ! -f "$_c" ]; then
		echo "build-debug-kernel: no $_c (apt-get install linux-config-$1)" >&2
		return 1
	fi
	echo "$_c"
}

build_one() {
	series=$1
	tarball=/usr/src/linux-source-$series.tar.xz
	[ -f "$tarball" ] || {
		echo "build-debug-kernel: no $tarball (apt-get install linux-source-$series)" >&2
		return 1
	}
	cfg=$(base_config "$series")
	mkdir -p "$DEBUG_KERNELS_DIR"
	src=$DEBUG_KERNELS_DIR/linux-source-$series
	log=$DEBUG_KERNELS_DIR/build-$series.log
	stamp=$( { ls -l --time-style=+%s "$tarball" "$cfg"; echo "$DEBUG_MODULES";
		cat "$top/scripts/debug-kernel.config"; } | sha256sum | cut -d' ' -f1)
	if [ -f "$src/.blktrack-stamp" ] && [ "$(cat "$src/.blktrack-stamp")" = "$stamp" ] &&
		kver=$(cat "$src/include/config/kernel.release" 2>/dev/null) &&
		kernel_root "$kver" >/dev/null 2>&1; then
		echo "build-debug-kernel: $kver is built ($DEBUG_KERNELS_DIR/$kver)"
		return 0
	fi
	start=$(date +%s)
	if [ ! -f "$src/Makefile" ]; then
		echo "build-debug-kernel: unpacking $tarball"
		(cd "$DEBUG_KERNELS_DIR" && tar xf "$tarball")
	fi
	rm -f "$src/.blktrack-stamp"
	cd "$src"
	xz -dc "$cfg" >.config
	debug_config .config
	make olddefconfig >"$log" 2>&1
	lsmod=$DEBUG_KERNELS_DIR/lsmod-$series
	{ echo "Module Size Used by"; for m in $DEBUG_MODULES; do echo "$m 0 0"; done; } >"$lsmod"
	yes '' | make LSMOD="$lsmod" localmodconfig >>"$log" 2>&1
	# localmodconfig leaves the debug options alone; set them again all
	# the same, in case one was a module's dependency it dropped.
	debug_config .config
	make olddefconfig >>"$log" 2>&1
	for o in $DEBUG_REQUIRED; do
		grep -q "^CONFIG_$o=y" .config || {
			echo "build-debug-kernel: CONFIG_$o is not set after olddefconfig" >&2
			return 1
		}
	done
	kver=$(make -s kernelrelease)
	echo "build-debug-kernel: building $kver in $src (log: $log)"
	make -j"$jobs" bzImage modules >>"$log" 2>&1 || {
		tail -n 30 "$log" >&2
		return 1
	}
	root=$DEBUG_KERNELS_DIR/$kver
	rm -rf "$root"
	mkdir -p "$root/boot"
	cp arch/x86/boot/bzImage "$root/boot/vmlinuz-$kver"
	cp .config "$root/boot/config-$kver"
	cp System.map "$root/boot/System.map-$kver"
	make INSTALL_MOD_PATH="$root" DEPMOD=/sbin/depmod modules_install >>"$log" 2>&1
	# The external module's KDIR (modules_install may already make it).
	ln -sfn "$src" "$root/lib/modules/$kver/build"
	end=$(date +%s)
	echo "$((end - start))" >"$root/build-time"
	echo "$stamp" >.blktrack-stamp
	echo "build-debug-kernel: $kver built in $(((end - start) / 60)) min $(((end - start) % 60)) s"
}

[ $# -gt 0 ] || set -- 6.12
for s in "$@"; do
	case $s in
	6.1|6.12) ;;
	*) echo "usage: $0 [6.1|6.12]..." >&2; exit 2 ;;
	esac
	(build_one "$s")
done

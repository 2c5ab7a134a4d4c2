# Where the test kernels are and which ones to use. Sourced (not run) by
# scripts/build-kmod-all.sh, scripts/install-kernels.sh and tests/vm/lib/host.sh.
#
# Typical use:
#	. scripts/kernels.sh
#	for kver in $(kernels_installed $VM_FLAVOURS); do
#		make -C "$(kernel_build_dir "$kver")" M=... modules
#		kernel_modprobe "$kver" --show-depends virtio_blk
#		qemu-system-x86_64 -kernel "$(kernel_image "$kver")" ...
#	done
#
# A kernel is a Debian kernel release (KVER: 6.1.0-57-rt-amd64,
# 6.12.118+deb12-amd64) of a supported series (6.1.x, 6.12.x: the LTS lines
# we test) and of one flavour, named by the release's suffix:
#	cloud	-cloud-amd64	what `make check` runs (the default of VM_FLAVOURS)
#	rt	-rt-amd64	PREEMPT_RT
#	generic	-amd64		Debian's linux-image-amd64 and linux-image-6.12-amd64
#	debug	-debug		Debian's linux-source with lockdep, KASAN, kmemleak...
#				(scripts/build-debug-kernel.sh; `make check-debug`)
# It is installed with its headers either on this host (/boot/vmlinuz-KVER and
# /lib/modules/KVER/build: apt-get, scripts/install-deps.sh for cloud) or
# in a root of its own under KERNELS_DIR (KERNELS_DIR/KVER/boot/...,
# lib/modules/KVER/..., usr/src/linux-headers-KVER: scripts/install-kernels.sh
# unpacks the packages there, never into the host's /boot). The host wins when
# both have it. A debug kernel is built from source into a root of the same
# layout under DEBUG_KERNELS_DIR.

KERNELS_DIR=${BLKTRACK_KERNELS_DIR:-/var/cache/blktrack/kernels}
# The debug kernels are built from source, not unpacked
# (scripts/build-debug-kernel.sh), into this tree's build/: the sourcing
# script sets KERNELS_TOP, the top of the tree.
DEBUG_KERNELS_DIR=${BLKTRACK_DEBUG_KERNELS_DIR:-${KERNELS_TOP:-.}/build/debug-kernel}
# "all" is Debian's packaged flavours; debug, hours long, is only asked by
# name.
KERNEL_FLAVOURS_ALL="cloud rt generic"

# kernel_flavour KVER: cloud, rt, generic or debug; nothing (status 1) for a
# kernel that is none of them or of a series we do not test.
kernel_flavour() {
	case $1 in
	6.1.*|6.12.*) ;;
	*) return 1 ;;
	esac
	case $1 in
	*-debug) echo debug ;;
	*-cloud-amd64) echo cloud ;;
	*-rt-amd64) echo rt ;;
	*-amd64) echo generic ;;
	*) return 1 ;;
	esac
}

# kernel_series KVER: 6.1 or 6.12.
kernel_series() {
	echo "$1" | cut -d. -f1,2
}

# kernel_root KVER: the root directory the kernel is installed under: empty
# for this host's, KERNELS_DIR/KVER for an unpacked one, DEBUG_KERNELS_DIR/KVER
# for a built one; status 1 when it is installed nowhere with its headers.
kernel_root() {
	if [ -e "/boot/vmlinuz-$1" ] && [ -d "/lib/modules/$1/build" ]; then
		echo
	elif [ -e "$KERNELS_DIR/$1/boot/vmlinuz-$1" ] && [ -d "$KERNELS_DIR/$1/lib/modules/$1/build" ]; then
		echo "$KERNELS_DIR/$1"
	elif [ -e "$DEBUG_KERNELS_DIR/$1/boot/vmlinuz-$1" ] &&
		[ -d "$DEBUG_KERNELS_DIR/$1/lib/modules/$1/build" ]; then
		echo "$DEBUG_KERNELS_DIR/$1"
	else
		return 1
	fi
}

kernel_image() {
	_kr=$(kernel_root "$1") || return 1
	echo "$_kr/boot/vmlinuz-$1"
}

# kernel_build_dir KVER: the KDIR to build an external module against.
kernel_build_dir() {
	_kr=$(kernel_root "$1") || return 1
	echo "$_kr/lib/modules/$1/build"
}

# kernel_modprobe KVER ARGS...: modprobe -S KVER over the kernel's own
# modules.dep and modules.builtin; the paths it prints start with the root.
kernel_modprobe() {
	_kr=$(kernel_root "$1") || return 1
	_kv=$1
	shift
	# -C /dev/null: the host's /etc/modprobe.d (ndctl's "install libnvdimm"
	# rule) must not replace the module graph with commands.
	modprobe -C /dev/null -d "${_kr:-/}" -S "$_kv" "$@"
}

# kernel_flavours_check FLAVOUR...: fail, naming it, on an unknown flavour.
# "all" stands for every flavour.
kernel_flavours_check() {
	for _f in "$@"; do
		case " $KERNEL_FLAVOURS_ALL debug all " in
		*" $_f "*) ;;
		*)
			echo "unknown kernel flavour '$_f' (known: $KERNEL_FLAVOURS_ALL debug, all)" >&2
			return 1 ;;
		esac
	done
}

# kernels_installed [FLAVOUR...]: the supported kernels installed with their
# headers (on the host, under KERNELS_DIR or DEBUG_KERNELS_DIR) of these
# flavours (default: all), oldest first.
kernels_installed() {
	_want=" ${*:-all} "
	case $_want in
	*" all "*) _want=" $KERNEL_FLAVOURS_ALL " ;;
	esac
	for _img in /boot/vmlinuz-* "$KERNELS_DIR"/*/boot/vmlinuz-* \
		"$DEBUG_KERNELS_DIR"/*/boot/vmlinuz-*; do
		[ -e "$_img" ] || continue
		_kv=${_img##*/vmlinuz-}
		_fl=$(kernel_flavour "$_kv") || continue
		case $_want in
		*" $_fl "*) ;;
		*) continue ;;
		esac
		kernel_root "$_kv" >/dev/null || continue
		echo "$_kv"
	done | sort -u | sort -V
}

# Host side of the VM harness, sourced by tests/vm/run.sh and tests/vm/demo.sh.
#
# Typical use:
#	. tests/vm/lib/host.sh
#	for kver in $(vm_kernels); do
#		initrd=$(vm_initramfs "$kver")
#		vm_boot "$kver" "$initrd" "blktrack.mode=test" build/vm/$kver.log
#	done
#
# The initramfs holds busybox, the tools the tests call (each with the
# libraries ldd lists), the kernel modules they need, our build outputs laid
# out as in the repository (/blktrack/build/..., /blktrack/kmod/blktrack.ko,
# the test-only modules as /blktrack/tests/vm/kmod/NAME.ko) and tests/vm
# itself. It is cached under build/vm/ and rebuilt only when the
# content of one of its inputs changes.
#
# The kernels: vm_kernels, those of the flavours in VM_FLAVOURS (cloud by
# default; rt, generic, all; debug), wherever they are installed
# (scripts/kernels.sh).

VM_TOP=$(cd "$(dirname "$0")/../.." && pwd)
KERNELS_TOP=$VM_TOP
. "$VM_TOP/scripts/kernels.sh"
VM_DIR=$VM_TOP/build/vm
VM_MEM=${VM_MEM:-1024}
VM_DISK_MIB=${VM_DISK_MIB:-256}
# VM_DISK2_MIB: a second fresh sparse virtio disk (/dev/vdb) of this many
# MiB; unset or 0: none (run.sh --bench sets it). VM_DISK2_OPTS: more
# -drive options for it (throttling.bps-read=N...). VM_APPEND: more kernel
# command line (blktrack.rounds=N... for a benchmark).
# VM_EVIDENCE_MIB: the size of the evidence disk, a fresh sparse virtio disk
# in the last PCI slot (serial btevidence; the guest finds it by its serial,
# and /dev/vda and /dev/vdb keep their names). A failed bit-exact comparison
# keeps its evidence there (testlib.sh: keep_evidence); after the boot the
# host copies it out into build/vm/evidence/KVER-YYYYmmdd-HHMMSS/ (see
# vm_evidence_extract).
VM_EVIDENCE_MIB=${VM_EVIDENCE_MIB:-4096}
# VM_EXTRA_DISKS="FILE=SERIAL ...": disk images kept across boots (like
# VM_DISK), attached as virtio disks with these serials in this order after
# the others (PCI slots 0x10, 0x11...: the guest names them vdb, vdc... or
# after /dev/vdb with VM_DISK2_MIB). Listing the same images in another
# order at the next boot swaps their names, not their serials
# (tests/vm/reboot.sh: BLKTRACK-SWAP-DISKS).
# What in a serial log means the kernel went wrong (fails the test). The
# debug kernel's reports are among them: lockdep's ("WARNING: possible
# circular locking dependency detected", "WARNING: suspicious RCU usage"...),
# "BUG: KASAN: ...", "BUG: sleeping function called from invalid context",
# DEBUG_OBJECTS' "ODEBUG: ..." (then a WARNING), and init.sh's kmemleak
# report of a blktrack object ("kmemleak: blktrack ... leaked").
VM_CRASH_RE='Oops|BUG:|WARNING:|Call Trace|soft lockup|hung task|blocked for more than|detected stall|general protection|Kernel panic|blktrack: leaked|ODEBUG:|kmemleak: blktrack'

# Tools copied into the guest at their host paths. Busybox provides the rest;
# the tests call these by absolute path (busybox's shell prefers its applets).
VM_TOOLS="fio dmsetup losetup blkdiscard fallocate sfdisk blockdev dd sha256sum
mkfs.ext4 mkfs.xfs fsfreeze setpriv filefrag blkzone fstrim mdadm make-bcache
cp e4defrag xfs_fsr xfs_io qemu-img qemu-system-x86_64 socat"
# Kernel modules the guest loads at boot, by name: the drivers of the disks
# vm_boot attaches (virtio, NVMe), ext4 (the tests' filesystem and the
# evidence disk's), loop and device-mapper. Each kernel's modules.dep and
# modules.builtin decide what that takes: nothing for a built-in one (the
# cloud kernels build in ext4 and NVMe, 6.12's virtio_pci), else the .ko
# files with their dependencies (the generic and rt kernels). A kernel that
# has one of them neither way gets no initramfs.
VM_BOOT_MODULES="virtio_pci virtio_blk nvme ext4 loop dm-mod"
# Modules the tests load on demand (load_kmod, testlib.sh), where the
# kernel has them: a test looks for what it needs (0440: nvme-loop, which
# 6.1's cloud kernel lacks). zram's compressor on 6.1 (lzo-rle) is a module
# of its own, which the guest's kernel cannot load by itself (no modprobe).
VM_EXTRA_MODULES="null_blk xfs brd dm-era dm-delay nvmet nvme-loop nvmet-tcp nvme-tcp overlay
zram lzo-rle nd_e820 nd_pmem nd_btt bcache dm-multipath dm-round-robin
vfat nls_cp437 nls_ascii nls_utf8 raid0"

# Take this tree's VM lock (one run.sh or demo.sh at a time: they share
# build/vm/); waits for a run in progress.
vm_lock() {
	mkdir -p "$VM_DIR"
	exec 8>"$VM_DIR/.run.lock"
	if ! flock -n 8; then
		echo "vm: another VM run is using $VM_DIR; waiting for it" >&2
		flock 8
	fi
}

# Trap helper: stop the QEMUs this shell started (listed in VM_PIDFILE).
VM_PIDFILE=$VM_DIR/.qemu-pids.$$
vm_kill_boots() {
	[ -f "$VM_PIDFILE" ] || return 0
	for p in $(cat "$VM_PIDFILE"); do
		kill "$p" 2>/dev/null
	done
	rm -f "$VM_PIDFILE"
}

vm_die() {
	echo "vm: $*" >&2
	exit 1
}

# The selected kernels (VM_FLAVOURS) installed with headers, oldest first.
vm_kernels() {
	"$VM_TOP/scripts/build-kmod-all.sh" --list
}

vm_newest_kernel() {
	vm_kernels | tail -n 1
}

# vm_select DIR PATTERN[,PATTERN...]: the names of the tests DIR/NNNN-*.sh,
# in order, that one of the patterns matches: a glob, or a plain name as a
# prefix ("0400" is 0400-discard); a directory and a .sh are ignored.
vm_select() {
	_vs_pats=$(echo "$2" | tr ',' '\n' | sed 's|.*/||; s|\.sh$||; /[][*?]/!s|$|*|')
	for _vs_t in "$1"/[0-9][0-9][0-9][0-9]-*.sh; do
		[ -e "$_vs_t" ] || continue
		_vs_n=${_vs_t##*/}
		_vs_n=${_vs_n%.sh}
		set -f
		for _vs_p in $_vs_pats; do
			case $_vs_n in
			$_vs_p) echo "$_vs_n"; break ;;
			esac
		done
		set +f
	done
}

# vm_each_kernel CMD KVER...: run CMD KVER for each kernel in the background,
# at most VM_JOBS at a time (default: the host's CPUs: TCG runs a 1-vCPU
# guest on one host CPU, and guests starved of CPU see RCU stalls and hung
# tasks that are not theirs); return when all are done.
vm_each_kernel() {
	_ek_cmd=$1
	shift
	_ek_jobs=${VM_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
	_ek_pids=
	_ek_n=0
	for _ek_k in "$@"; do
		if [ "$_ek_n" -ge "$_ek_jobs" ]; then
			# The oldest first: the kernels take about as long.
			wait "${_ek_pids%% *}"
			case $_ek_pids in
			*" "*) _ek_pids=${_ek_pids#* } ;;
			*) _ek_pids= ;;
			esac
			_ek_n=$((_ek_n - 1))
		fi
		"$_ek_cmd" "$_ek_k" &
		_ek_pids="${_ek_pids:+$_ek_pids }$!"
		_ek_n=$((_ek_n + 1))
	done
	for _ek_p in $_ek_pids; do
		wait "$_ek_p"
	done
}

# Print "DST SRC" lines: what goes into the initramfs of kernel $1.
_vm_manifest() {
	kver=$1
	echo "bin/busybox $(command -v busybox)"
	for t in $VM_TOOLS; do
		p=$(command -v "$t") || vm_die "tool $t not found (run scripts/install-deps.sh)"
		echo "${p#/} $p"
		_vm_libs "$p"
	done
	for f in "$VM_TOP"/build/blktrack "$VM_TOP"/build/blktrack-dump \
		"$VM_TOP"/build/libblktrack.so.1 "$VM_TOP"/build/vmprogs/*; do
		[ -f "$f" ] || continue
		echo "blktrack/${f#$VM_TOP/} $f"
		_vm_libs "$f"
	done
	ko=$VM_TOP/build/kmod-$kver/kmod/blktrack.ko
	[ -f "$ko" ] && echo "blktrack/kmod/blktrack.ko $ko"
	# Test-only modules (tests/vm/kmod/): /blktrack/tests/vm/kmod/NAME.ko.
	for f in "$VM_TOP"/build/kmod-$kver/testkmod/*.ko; do
		[ -f "$f" ] && echo "blktrack/tests/vm/kmod/${f##*/} $f"
	done
	for f in "$VM_TOP"/tests/vm/*.sh "$VM_TOP"/tests/vm/bench/*.sh \
		"$VM_TOP"/tests/vm/reboot/*.sh "$VM_TOP"/tests/vm/lib/* \
		"$VM_TOP"/examples/writers/*; do
		[ -f "$f" ] || continue
		echo "blktrack/${f#$VM_TOP/} $f"
	done
	# The firmware QEMU loads to boot a guest in the guest (0962).
	for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin \
		/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so; do
		echo "${f#/} $(readlink -f "$f")"
	done
	echo "init $VM_TOP/tests/vm/lib/init.sh"
	# Kernel modules, deduplicated.
	for m in $VM_BOOT_MODULES $VM_EXTRA_MODULES; do
		_vm_kmod_chain "$kver" "$m"
	done | awk '!seen[$0]++'
}

# _vm_kmod_chain KVER MODULE: the .ko files MODULE takes on kernel KVER,
# dependencies first, as "GUEST-PATH HOST-PATH" lines (the guest path
# relative to /, still .ko.xz where the kernel compresses them); nothing
# for a built-in module. Status 1 when the kernel has no such module.
_vm_kmod_chain() {
	_kc_root=$(kernel_root "$1") || return 1
	_kc_deps=$(kernel_modprobe "$1" --show-depends "$2" 2>/dev/null) || return 1
	# (modprobe -d / prints //lib/modules/...)
	echo "$_kc_deps" | awk -v root="$_kc_root" '$1 == "insmod" {
		p = $2
		sub(/^\/+/, "/", p)
		g = substr(p, length(root) + 1)
		sub(/^\/+/, "", g)
		print g, p
	}'
}

# _vm_kmod_load_list KVER MODULE: the chain as the guest loads it: absolute
# guest paths of the decompressed files, on one line.
_vm_kmod_load_list() {
	_vm_kmod_chain "$1" "$2" | awk '{ sub(/\.xz$/, "", $1); printf "/%s ", $1 }'
}

# The libraries $1 needs, and the dynamic loader.
_vm_libs() {
	ldd "$1" 2>/dev/null | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' | while read -r l; do
		case $l in
		"$VM_TOP"/*) echo "usr/lib/x86_64-linux-gnu/${l##*/} $l" ;;
		/lib/*) echo "usr$l $l" ;;
		/lib64/*) echo "usr$l $l" ;;
		*) echo "${l#/} $l" ;;
		esac
	done
}

# Build (or reuse) the initramfs of kernel $1 and print its path.
vm_initramfs() {
	kver=$1
	mkdir -p "$VM_DIR"
	out=$VM_DIR/initramfs-$kver.cpio
	man=$VM_DIR/initramfs-$kver.manifest
	kernel_root "$kver" >/dev/null || vm_die "kernel $kver is not installed with its headers"
	for m in $VM_BOOT_MODULES; do
		_vm_kmod_chain "$kver" "$m" >/dev/null ||
			vm_die "kernel $kver has no module $m, neither built in nor in its modules.dep"
	done
	_vm_manifest "$kver" | sort -u -k1,1 >"$man.new" || return 1
	key=$( { cat "$man.new"; awk '{ print $2 }' "$man.new" | xargs sha256sum; } |
		sha256sum | cut -d' ' -f1)
	if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
		rm -f "$man.new"
		echo "$out"
		return 0
	fi
	mv "$man.new" "$man"
	stage=$(mktemp -d "$VM_DIR/stage-$kver.XXXXXX")
	chmod 0755 "$stage"	# the guest's root directory
	(
		cd "$stage" || exit 1
		mkdir -p bin sbin usr/bin usr/sbin usr/lib/x86_64-linux-gnu usr/lib64 \
			proc sys dev tmp run mnt etc root
		ln -s usr/lib lib
		ln -s usr/lib64 lib64
		while read -r dst src; do
			mkdir -p "$(dirname "$dst")"
			case $src in
			*.ko.xz)
				dst=${dst%.xz}
				xz -dc "$src" >"$dst" || exit 1
				;;
			*)
				cp -L "$src" "$dst" || exit 1
				;;
			esac
		done <"$man"
		ln -sf busybox bin/sh
		chmod 0755 init
		# Module load order, paths as in the guest; "dep" marks one loaded
		# only as another's dependency (init.sh).
		for m in $VM_BOOT_MODULES; do
			_vm_kmod_load_list "$kver" "$m"
			echo
		done | awk '{
			for (i = 1; i <= NF; i++) {
				if (!($i in seen))
					order[n++] = $i
				seen[$i] = 1
			}
			if (NF)
				named[$NF] = 1
		}
		END {
			for (i = 0; i < n; i++)
				print order[i] ((order[i] in named) ? "" : " dep")
		}' >etc/blktrack-boot-modules
		echo "$kver" >etc/blktrack-kver
		# Each on-demand module's chain, one line each (load_kmod).
		for m in $VM_EXTRA_MODULES; do
			_vm_kmod_load_list "$kver" "$m"
			echo
		done >etc/blktrack-extra-modules
		find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$out.tmp"
	) || { rm -rf "$out.tmp" "$stage"; return 1; }
	mv "$out.tmp" "$out"
	echo "$key" >"$out.key"
	rm -rf "$stage"
	echo "$out"
}

# vm_evidence_extract IMAGE KVER: if the guest made a filesystem on the
# evidence disk IMAGE (an ext4 superblock: magic 0xEF53 at byte 1080), copy
# its files, without mounting it, into build/vm/evidence/KVER-DATE-TIME/.
vm_evidence_extract() {
	[ "$(od -An -tx1 -j1080 -N2 "$1" 2>/dev/null | tr -d ' \n')" = 53ef ] || return 0
	dest=$VM_DIR/evidence/$2-$(date +%Y%m%d-%H%M%S)
	while [ -e "$dest" ]; do
		dest=$dest.1
	done
	mkdir -p "$dest" || return 1
	if ! command -v debugfs >/dev/null; then
		echo "vm: evidence on the evidence disk, but no debugfs (e2fsprogs) to extract it" >&2
		return 1
	fi
	debugfs -R "rdump / $dest" "$1" >"$dest.debugfs.out" 2>&1
	# rdump of the root directory lands in DEST/ itself (no name of its own).
	rm -rf "$dest/lost+found"
	if [ -z "$(ls -A "$dest")" ]; then
		echo "vm: evidence disk written, but nothing extracted:" >&2
		cat "$dest.debugfs.out" >&2
		rm -f "$dest.debugfs.out"
		return 1
	fi
	rm -f "$dest.debugfs.out"
	echo "vm: evidence kept in ${dest#$VM_TOP/}" >&2
}

# Boot kernel $1 with initramfs $2, extra command line $3; serial log to $4;
# $5 vCPUs (default $VM_SMP, else 1).
# Each boot gets a fresh raw disk image (two with VM_DISK2_MIB), or boots
# the image $VM_DISK (kept); and always a fresh evidence disk, copied out
# after the boot if the guest used it (vm_evidence_extract). With
# VM_KILL_ON=MARKER, QEMU is killed (SIGKILL: a power cut) as soon as the
# guest prints MARKER on the console. Returns
# QEMU's exit status (124 on timeout, 137 when killed). VM_TIMEOUT (seconds)
# bounds the run.
vm_boot() {
	kver=$1 initrd=$2 extra=$3 log=$4 smp=${5:-${VM_SMP:-1}}
	# A debug kernel (scripts/build-debug-kernel.sh: lockdep, KASAN,
	# kmemleak) runs several times slower and needs KASAN's shadow memory:
	# its time limits (the boot's here, a test's and the hung-task report's
	# in init.sh: blktrack.slow) are VM_DEBUG_SLOW times longer, its memory
	# VM_DEBUG_MEM. VM_ACCEL=kvm where KVM works (here, nested, it fails
	# to emulate the kernel's decompressor: "KVM internal error").
	slow=1 mem=$VM_MEM accel=${VM_ACCEL:-tcg}
	if [ "$(kernel_flavour "$kver")" = debug ]; then
		slow=${VM_DEBUG_SLOW:-4} mem=${VM_DEBUG_MEM:-2048}
		extra="$extra blktrack.slow=$slow"
	fi
	if [ -n "${VM_DISK:-}" ]; then
		disk=$VM_DISK
	else
		disk=$(mktemp "$VM_DIR/disk-$kver.XXXXXX") || return 1
		truncate -s "${VM_DISK_MIB}M" "$disk"
	fi
	disk2= drive2=
	if [ "${VM_DISK2_MIB:-0}" -gt 0 ]; then
		disk2=$(mktemp "$VM_DIR/disk2-$kver.XXXXXX") || return 1
		truncate -s "${VM_DISK2_MIB}M" "$disk2"
		drive2="-drive file=$disk2,format=raw,if=virtio,cache=unsafe,discard=unmap${VM_DISK2_OPTS:+,$VM_DISK2_OPTS}"
	fi
	xdisks= slot=16 n=0
	for d in ${VM_EXTRA_DISKS:-}; do
		n=$((n + 1))
		xdisks="$xdisks -drive file=${d%%=*},format=raw,if=none,id=btx$n,cache=unsafe,discard=unmap"
		xdisks="$xdisks -device virtio-blk-pci,drive=btx$n,serial=${d#*=},addr=$(printf '0x%x' $slot)"
		slot=$((slot + 1))
	done
	# A small NVMe namespace (/dev/nvme0n1): a request-based disk that takes
	# multi-range discards (tests/vm/0420-multi-discard.sh).
	nvme=$(mktemp "$VM_DIR/nvme-$kver.XXXXXX") || return 1
	truncate -s 64M "$nvme"
	evdisk=$(mktemp "$VM_DIR/evidence-$kver.XXXXXX") || return 1
	truncate -s "${VM_EVIDENCE_MIB}M" "$evdisk"
	# Log to a file of our own, renamed at the end: a QEMU left over from an
	# interrupted run must not write into this run's log.
	tmplog=$(mktemp "$log.XXXXXX") || return 1
	# no_timer_check: on a loaded host, TCG's timer can look dead at boot
	# ("IO-APIC + timer doesn't work" panics): skip that probe.
	timeout -k 10 "$((${VM_TIMEOUT:-3600} * slow))" qemu-system-x86_64 -accel "$accel" -smp "$smp" -m "$mem" \
		-kernel "$(kernel_image "$kver")" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 oops=panic loglevel=4 no_timer_check $extra ${VM_APPEND:-}" \
		-drive "file=$disk,format=raw,if=virtio,cache=unsafe,discard=unmap" $drive2 $xdisks \
		-drive "file=$nvme,format=raw,if=none,id=btnvme,cache=unsafe,discard=unmap" \
		-device nvme,serial=btnvme0,drive=btnvme \
		-drive "file=$evdisk,format=raw,if=none,id=btevidence,cache=unsafe" \
		-device virtio-blk-pci,drive=btevidence,serial=btevidence,addr=0x1f \
		-nographic -no-reboot -nic none ${VM_QEMU_ARGS:-} </dev/null >"$tmplog" 2>&1 8>&- &
	qpid=$!
	# Stopped with its caller: see vm_kill_boots.
	[ -n "${VM_PIDFILE:-}" ] && echo $qpid >>"$VM_PIDFILE"
	if [ -n "${VM_KILL_ON:-}" ]; then
		# timeout(1) runs QEMU as its child: kill that, not timeout.
		while kill -0 $qpid 2>/dev/null; do
			if grep -q "$VM_KILL_ON" "$tmplog" 2>/dev/null; then
				pkill -KILL -P $qpid
				break
			fi
			sleep 0.2
		done
	fi
	wait $qpid 2>/dev/null	# no "Killed" from a power cut
	rc=$?
	mv -f "$tmplog" "$log"
	[ -n "${VM_DISK:-}" ] || rm -f "$disk"
	rm -f $disk2 "$nvme"
	vm_evidence_extract "$evdisk" "$kver"
	rm -f "$evdisk"
	return $rc
}

#!/bin/sh
# `make demo`: boot the newest supported kernel in QEMU and run the narrated
# demo (tests/vm/lib/demo-guest.sh) on a virtio disk. Exit 0 on success.
#
#   tests/vm/demo.sh [--kernel KVER]
set -u

. "$(dirname "$0")/lib/host.sh"

kver=
case ${1:-} in
--kernel) kver=${2:?usage: $0 [--kernel KVER]} ;;
"") ;;
*) echo "usage: $0 [--kernel KVER]" >&2; exit 2 ;;
esac
cd "$VM_TOP" || exit 1
vm_lock
trap 'vm_kill_boots; exit 130' INT TERM
trap 'rm -f "$VM_PIDFILE"' EXIT
[ -n "$kver" ] || kver=$(vm_newest_kernel) || exit 1
[ -n "$kver" ] || vm_die "no supported kernel installed"

echo "demo: building blktrack, blktrack.ko for $kver and the initramfs"
make -s all >/dev/null || vm_die "make all failed"
scripts/build-kmod-all.sh --kernel "$kver" >/dev/null || vm_die "module build failed for $kver"
initrd=$(vm_initramfs "$kver") || vm_die "initramfs failed"
log=$VM_DIR/demo-$kver.log
echo "demo: booting Linux $kver in QEMU (TCG, about 10 s; full log: build/vm/demo-$kver.log)"
VM_TIMEOUT=300 vm_boot "$kver" "$initrd" "blktrack.mode=demo" "$log"
qrc=$?
tr -d '\r' <"$log" | sed -n '/^=== blktrack demo/,/^BLKTRACK-DEMO-END/p' | grep -v '^BLKTRACK-DEMO-END'
rc=$(tr -d '\r' <"$log" | sed -n 's/^BLKTRACK-DEMO-END //p')
if [ "$rc" = 0 ]; then
	echo
	echo "demo: OK"
	exit 0
fi
echo
echo "demo: FAILED (QEMU exit $qrc, demo exit ${rc:-none}); last lines of the log:" >&2
tr -d '\r' <"$log" | tail -n 30 >&2
exit 1

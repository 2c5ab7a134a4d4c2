#!/bin/sh
# Install the Debian packages blktrack needs to build, test and demo.
# Idempotent: does nothing when everything is already there.
set -eu

PKGS="build-essential pkg-config
libblkid-dev liburcu-dev libkmod-dev libcriterion-dev
libzstd-dev libxxhash-dev libjson-c-dev libroaring-dev libinih-dev libsodium-dev
qemu-system-x86 qemu-utils socat busybox-static kmod cpio xz-utils
linux-image-cloud-amd64 linux-headers-cloud-amd64
linux-image-6.12-cloud-amd64 linux-headers-6.12-cloud-amd64
fio e2fsprogs xfsprogs util-linux dmsetup fdisk mdadm bcache-tools"
# --system: what the system test adds (tests/system/: mmdebstrap, make deb).
if [ "${1:-}" = --system ]; then
	PKGS="mmdebstrap dpkg-dev debhelper dh-dkms lintian dkms"
fi
# --ceph: the throwaway test cluster (tests/ceph/cluster.sh) and librados/librbd.
if [ "${1:-}" = --ceph ]; then
	PKGS="ceph-mon ceph-mgr ceph-osd ceph-common librados-dev librbd-dev"
fi

missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# The system test's Debian bookworm: a root filesystem made by mmdebstrap
# from Debian's archive (the host's apt sources), with systemd, the 6.1
# cloud kernel and its headers, DKMS and the blktrack packages of `make deb`
# installed with apt (so dpkg runs their maintainer scripts: DKMS builds
# the module, the initramfs gets the hook; the guest's own initramfs builds
# later take MODULES=dep, minutes less under TCG), the 6.12 kernel's packages
# downloaded for the guest to install itself, and tests/system/guest.sh as
# a service. Then a whole disk image: GPT, root (ext4) on partition 1, the
# raw data volume on partition 2; the repository on a disk of its own.
#
#	tests/system/build-image.sh OUTDIR
#
# OUTDIR gets disk.img, repo.img, vmlinuz-KVER and initrd.img-KVER. The
# downloaded packages are cached in build/system/apt (a rebuild needs no
# network for them).
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
out=$1
cache=$top/build/system/apt
mkdir -p "$out" "$cache"
# An interrupted mmdebstrap can leave /dev, /proc or /sys mounted in the
# tree: never rm -rf through them.
remove_root() {
	if grep -q " $(realpath "$out")/root/" /proc/mounts; then
		echo "build-image: mounts left under $out/root (umount them first):" >&2
		grep " $(realpath "$out")/root/" /proc/mounts >&2
		exit 1
	fi
	rm -rf "$out/root"
}
remove_root

K1=${SYSTEST_KERNEL1:-6.1.0-57-cloud-amd64}
K2=${SYSTEST_KERNEL2:-6.12.118+deb12-cloud-amd64}
ROOT_UUID=5e7b1c1e-0001-4b1a-9c1e-b17c0ffee001
REPO_UUID=5e7b1c1e-0002-4b1a-9c1e-b17c0ffee002
DATA_PARTUUID=5e7b1c1e-0003-4b1a-9c1e-b17c0ffee003

debs=$(ls build/deb/blktrack_*.deb build/deb/blktrack-dkms_*.deb build/deb/libblktrack1_*.deb)
[ "$(echo "$debs" | wc -l)" = 3 ] || { echo "build-image: run make deb first" >&2; exit 1; }

cat >"$out/blktrack.conf" <<EOF
# The system test's configuration (tests/system/build-image.sh).
[defaults]
repository = /srv/backup/repo
type = incremental
full-every = 4w

[volume root]
device = UUID=$ROOT_UUID
repository = /srv/backup/root

[volume data]
device = PARTUUID=$DATA_PARTUUID
EOF

cat >"$out/fstab" <<EOF
UUID=$ROOT_UUID / ext4 defaults,errors=remount-ro 0 1
UUID=$REPO_UUID /srv/backup ext4 defaults,nofail 0 2
EOF

cat >"$out/systest.service" <<'EOF'
[Unit]
Description=blktrack system test (tests/system/guest.sh)
After=multi-user.target
# A nofail mount is ordered before nothing: wait for the repositories' disk.
RequiresMountsFor=/srv/backup
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/systest
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF

# The packages (and what they pull in) from the host's sources; the
# downloads go to and come from the cache.
mmdebstrap --mode=root --variant=apt --skip=download/empty \
	--include="systemd-sysv,udev,kmod,initramfs-tools,zstd,dmsetup,dkms,gcc,make,libc6-dev,e2fsprogs,util-linux,procps,linux-image-$K1,linux-headers-$K1" \
	--aptopt='APT::Install-Recommends "false"' \
	--setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives/" \
	--setup-hook="sync-in '$cache' /var/cache/apt/archives/" \
	--customize-hook="upload '$out/fstab' /etc/fstab" \
	--customize-hook='echo systest >"$1/etc/hostname"; chroot "$1" passwd -d root' \
	--customize-hook="mkdir -p \"\$1/srv/backup\" \"\$1/root/debs/partial\" \"\$1/root/blktrack\"" \
	--customize-hook="chroot \"\$1\" apt-get -y -o Dir::Cache::Archives=/root/debs --download-only install linux-image-$K2 linux-headers-$K2" \
	--customize-hook="sync-out /root/debs '$cache'" \
	--customize-hook="sync-out /var/cache/apt/archives '$cache'" \
	--customize-hook="rm -f \"\$1\"/root/debs/lock; rm -rf \"\$1\"/root/debs/partial" \
	--customize-hook="copy-in $(echo $debs) /root/blktrack" \
	--customize-hook='chroot "$1" sh -c "apt-get -y install /root/blktrack/*.deb"' \
	--customize-hook="upload '$out/blktrack.conf' /etc/blktrack/blktrack.conf" \
	--customize-hook='chroot "$1" update-initramfs -u -k all' \
	--customize-hook='echo MODULES=dep >"$1/etc/initramfs-tools/conf.d/systest"' \
	--customize-hook="upload tests/system/guest.sh /usr/local/sbin/systest" \
	--customize-hook='chmod 755 "$1/usr/local/sbin/systest"' \
	--customize-hook="upload '$out/systest.service' /etc/systemd/system/systest.service" \
	--customize-hook='chroot "$1" systemctl enable systest.service' \
	--customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb' \
	bookworm "$out/root" /etc/apt/sources.list.d/debian.sources

ls "$out/root/lib/modules/$K1/updates/dkms/blktrack.ko"* >/dev/null ||
	{ echo "build-image: DKMS did not build blktrack for $K1" >&2; exit 1; }
cp "$out/root/boot/vmlinuz-$K1" "$out/root/boot/initrd.img-$K1" "$out/"

# The disk: GPT, root 2 GiB at 1 MiB, data 64 MiB after it.
rm -f "$out/root.ext4" "$out/disk.img" "$out/repo.img"
mkfs.ext4 -q -F -d "$out/root" -U $ROOT_UUID -L root "$out/root.ext4" 2G
truncate -s $(( (1 + 2048 + 64 + 1) ))M "$out/disk.img"
printf 'label: gpt\nstart=2048, size=%d, name=root\nstart=%d, size=%d, uuid=%s, name=data\n' \
	$((2048 * 2048)) $((2049 * 2048)) $((64 * 2048)) $DATA_PARTUUID | sfdisk -q "$out/disk.img"
dd if="$out/root.ext4" of="$out/disk.img" bs=1M seek=1 conv=sparse,notrunc status=none
rm -f "$out/root.ext4"
mkfs.ext4 -q -F -U $REPO_UUID -L repo "$out/repo.img" 4G
remove_root
echo "build-image: $out: disk.img, repo.img, vmlinuz-$K1, initrd.img-$K1"

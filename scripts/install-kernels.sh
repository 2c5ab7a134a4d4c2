#!/bin/sh
# Unpack Debian's kernels of the extra flavours, with their headers, for the
# VM tests: scripts/install-kernels.sh [FLAVOUR...]  (default: rt generic)
#
#	rt	linux-image-rt-amd64, linux-image-6.12-rt-amd64 (PREEMPT_RT)
#	generic	linux-image-amd64, linux-image-6.12-amd64
#	cloud	nothing here: scripts/install-deps.sh installs them on the host
#	all	all of them
#
# Each kernel (the release the meta-package depends on today) is unpacked
# with dpkg-deb into a root of its own, KERNELS_DIR/KVER (default
# /var/cache/blktrack/kernels; BLKTRACK_KERNELS_DIR): the image, its modules
# (with depmod's files), its headers, their common headers and kbuild. Nothing
# is installed on the host: a kernel in its /boot would be the next one
# its boot loader starts, and every tree's harness would find it. About 500
# MiB and 10 s per kernel. Idempotent: a kernel already unpacked from the
# same package versions is kept; a release that Debian replaced (an ABI
# bump) is removed once its successor is in. Needs root only for
# apt-get update (when apt does not know a package) and to write KERNELS_DIR.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
KERNELS_TOP=$top
. "$top/scripts/kernels.sh"

[ $# -gt 0 ] || set -- rt generic
kernel_flavours_check "$@" || exit 2
metas=
for f in "$@"; do
	case $f in
	all) metas="$metas linux-image-rt-amd64 linux-image-6.12-rt-amd64 linux-image-amd64 linux-image-6.12-amd64" ;;
	rt) metas="$metas linux-image-rt-amd64 linux-image-6.12-rt-amd64" ;;
	generic) metas="$metas linux-image-amd64 linux-image-6.12-amd64" ;;
	cloud) ;;
	debug) ;;	# built, not unpacked: scripts/build-debug-kernel.sh
	esac
done
[ -n "$metas" ] || exit 0

say() {
	echo "install-kernels: $*" >&2
}

# depends PKG: the packages PKG depends on (not the alternatives after "|").
depends() {
	apt-cache depends "$1" 2>/dev/null | sed -n 's/^  Depends: \([^<][^ ]*\)$/\1/p'
}

# versions PKG...: "PKG=VERSION" lines, the candidates apt would install.
versions() {
	apt-cache policy "$@" 2>/dev/null | awk '
		/^[^ ]/ { sub(/:$/, ""); p = $0 }
		/^ *Candidate: / && $2 != "(none)" { print p "=" $2 }'
}

# release META: the kernel release the meta-package stands for today.
release() {
	depends "$1" | sed -n 's/^linux-image-\(.*\)$/\1/p' | grep -v -- '-unsigned$' | head -n 1
}

updated=0
apt_update() {
	[ $updated = 0 ] || return 1
	updated=1
	if [ "$(id -u)" != 0 ]; then
		say "apt does not know $1; run apt-get update as root"
		return 1
	fi
	say "apt-get update"
	apt-get update -qq
}

mkdir -p "$KERNELS_DIR"
exec 9>"$KERNELS_DIR/.lock"
flock 9
# What an interrupted run left half unpacked.
rm -rf "$KERNELS_DIR"/.new-*

# fill ROOT KVER PKG=VERSION...: download the packages and unpack them in ROOT.
# (Called in an || list, where set -e does not hold: every step is checked.)
fill() {
	r=$1 kver=$2 hdr=linux-headers-$2
	shift 2
	(cd "$r/.." && apt-get download -qq -o APT::Sandbox::User=root "$@") || return 1
	for deb in "$r"/../*.deb; do
		dpkg-deb -x "$deb" "$r" || return 1
	done
	# The packages' absolute links and include point into the host's
	# /usr/src: make them relative to the root, wherever it lies.
	common=$(sed -n 's|^include /usr/src/\([^/]*\)/Makefile$|\1|p' "$r/usr/src/$hdr/Makefile")
	if [ -z "$common" ] || [ ! -d "$r/usr/src/$common" ]; then
		say "$kver: unexpected $hdr/Makefile: $(cat "$r/usr/src/$hdr/Makefile")"
		return 1
	fi
	# shellcheck disable=SC2016
	sed -i 's|^include /usr/src/\([^/]*\)/Makefile$|include $(dir $(lastword $(MAKEFILE_LIST)))../\1/Makefile|' \
		"$r/usr/src/$hdr/Makefile" &&
		ln -sfn "../../../usr/src/$hdr" "$r/lib/modules/$kver/build" &&
		ln -sfn "../../../usr/src/$common" "$r/lib/modules/$kver/source" &&
		depmod -b "$r" -F "$r/boot/System.map-$kver" "$kver"
}

# unpack KVER: KVER's packages into KERNELS_DIR/KVER, unless they are there.
unpack() {
	kver=$1
	hdr=linux-headers-$kver
	# The headers' own packages: common headers, kbuild (the compiler
	# they name is the host's, from build-essential).
	pkgs="linux-image-$kver $hdr $(depends "$hdr" |
		grep -E '^linux-(headers-.*-common(-rt)?|kbuild-.*)$' | paste -s -d' ' -)"
	# shellcheck disable=SC2086
	want=$(versions $pkgs)
	if [ "$(echo "$want" | wc -w)" != "$(echo "$pkgs" | wc -w)" ]; then
		say "$kver: apt has no version of some of $pkgs"
		return 1
	fi
	dest=$KERNELS_DIR/$kver
	if [ "$(cat "$dest/.packages" 2>/dev/null)" = "$want" ]; then
		say "$kver: unpacked already ($dest)"
		return 0
	fi
	say "$kver: downloading $pkgs"
	tmp=$(mktemp -d "$KERNELS_DIR/.new-$kver.XXXXXX") || return 1
	mkdir "$tmp/root" || return 1
	# shellcheck disable=SC2046
	if ! fill "$tmp/root" "$kver" $(echo "$want" | paste -s -d' ' -) ||
		! echo "$want" >"$tmp/root/.packages"; then
		rm -rf "$tmp"
		return 1
	fi
	rm -rf "$dest"
	mv "$tmp/root" "$dest" || return 1
	rm -rf "$tmp"
	say "$kver: unpacked in $dest ($(du -sh "$dest" | cut -f1))"
}

rc=0
current=
for m in $metas; do
	kver=$(release "$m")
	if [ -z "$kver" ]; then
		apt_update "$m" && kver=$(release "$m")
	fi
	if [ -z "$kver" ]; then
		say "apt knows no $m"
		rc=1
		continue
	fi
	current="$current $kver"
	if kernel_root "$kver" >/dev/null && [ -z "$(kernel_root "$kver")" ]; then
		say "$kver: installed on this host already"
		continue
	fi
	# A failed download may be stale package lists: update once, retry.
	unpack "$kver" || { apt_update "$m" && unpack "$kver"; } || {
		say "$kver: FAILED"
		rc=1
	}
done

# Releases Debian replaced: another kernel of the same flavour and series
# as one unpacked now.
for d in "$KERNELS_DIR"/*/; do
	old=$(basename "$d")
	[ -f "$d/.packages" ] || continue
	case " $current " in *" $old "*) continue ;; esac
	for k in $current; do
		if [ "$(kernel_flavour "$old")" = "$(kernel_flavour "$k")" ] &&
			[ "$(kernel_series "$old")" = "$(kernel_series "$k")" ]; then
			say "$old: replaced by $k, removed"
			rm -rf "$d"
			break
		fi
	done
done
exit $rc

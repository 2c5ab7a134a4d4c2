#!/bin/sh
# `make install` into a scratch DESTDIR: the files land where the man pages
# and pkg-config say, and the installed library carries no test hook (the
# BLKTRACK_TEST_* variables are read only by the test build in build/,
# issue 13 point 7), while the test build does.
set -eu
cd "$(dirname "$0")/../.."
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make -s install DESTDIR="$dest" PREFIX=/usr >/dev/null
for f in sbin/blktrack sbin/blktrack-dump lib/libblktrack.so.1 include/libblktrack.h \
	include/linux/blktrack.h lib/pkgconfig/libblktrack.pc share/man/man8/blktrack.8; do
	[ -e "$dest/usr/$f" ] || { echo "not ok - /usr/$f not installed"; exit 1; }
done
if grep -a -q BLKTRACK_TEST_ "$dest/usr/lib/libblktrack.so.1"; then
	echo "not ok - the installed libblktrack reads test hooks"
	exit 1
fi
grep -a -q BLKTRACK_TEST_CRASH_AT build/libblktrack.so.1 ||
	{ echo "not ok - the test build has no test hooks: the VM tests would test nothing"; exit 1; }
# The installed tools say their version: the Makefile's, and the ABI of the header.
ver=$(sed -n 's/^VERSION *?= *//p' Makefile)
abi=$(sed -n 's/^#define BLKTRACK_ABI_VERSION[[:space:]]*//p' include/uapi/linux/blktrack.h)
for t in blktrack blktrack-dump; do
	for opt in --version -V; do
		got=$(LD_LIBRARY_PATH="$dest/usr/lib" "$dest/usr/sbin/$t" $opt)
		[ "$got" = "$t $ver (ABI $abi)" ] ||
			{ echo "not ok - $t $opt printed '$got', not '$t $ver (ABI $abi)'"; exit 1; }
	done
done
echo "ok - make install: every file in place, no test hook in the installed library, versions"

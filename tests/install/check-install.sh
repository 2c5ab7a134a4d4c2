#!/bin/sh
# `make install` into a scratch DESTDIR, then `make uninstall`:
# - exactly the files README.md ("Installing") lists land there, each where
#   the man pages, pkg-config and DKMS look, links and modes right;
# - the installed library carries no test hook (the BLKTRACK_TEST_*
#   variables are read only by the test build in build/, issue 13 point 7),
#   while the test build does; the installed tools have no RPATH;
# - a program builds against the installed headers and .pc and runs with
#   the installed library; the tools say their version;
# - the DKMS tree holds every source kmod/Kbuild compiles;
# - the man pages render without a warning, the bash completion completes
#   every command of blktrack(8), the example writers parse;
# - other directories (PREFIX, LIBDIR, SYSCONFDIR...) are honoured;
# - uninstall leaves no file behind.
# Needs no root and no module (about 10 s once built).
set -eu
cd "$(dirname "$0")/../.."
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "not ok - $*"; exit 1; }

ver=$(sed -n 's/^VERSION *?= *//p' Makefile)
abi=$(sed -n 's/^#define BLKTRACK_ABI_VERSION[[:space:]]*//p' include/uapi/linux/blktrack.h)
make -s install DESTDIR="$dest" PREFIX=/usr >/dev/null

# ---- the list of files, computed from the tree -----------------------------
{
	for f in sbin/blktrack sbin/blktrack-dump lib/libblktrack.so.1.0.0 lib/libblktrack.so.1 \
		lib/libblktrack.so lib/pkgconfig/libblktrack.pc include/libblktrack.h \
		include/linux/blktrack.h share/bash-completion/completions/blktrack \
		share/bash-completion/completions/blktrack-dump; do
		echo "/usr/$f"
	done
	for m in doc/*.[1-9]; do
		echo "/usr/share/man/man${m##*.}/${m#doc/}"
	done
	for w in examples/writers/*; do
		echo "/usr/share/doc/blktrack/examples/writers/${w#examples/writers/}"
	done
	echo /etc/blktrack/blktrack.conf
	echo /usr/src/blktrack-$ver/dkms.conf
	echo /usr/src/blktrack-$ver/Kbuild
	echo /usr/src/blktrack-$ver/include/uapi/linux/blktrack.h
	git ls-files kmod | grep -v '^kmod/dkms.conf.in$' | sed "s|^|/usr/src/blktrack-$ver/|"
	for f in systemd/*.service systemd/*.timer; do
		echo "/usr/lib/systemd/system/${f#systemd/}"
	done
	for f in systemd/system-shutdown/* systemd/system-generators/*; do
		echo "/usr/lib/systemd/${f#systemd/}"
	done
	for f in udev/*.rules; do
		[ -e "$f" ] && echo "/usr/lib/udev/rules.d/${f#udev/}"
	done
	[ -d initramfs-tools ] && find initramfs-tools -type f | sed 's|^|/usr/share/|'
} | sort >"$dest.want"
(cd "$dest" && find . ! -type d | sed 's|^\.||' | sort) >"$dest.got"
diff -u "$dest.want" "$dest.got" >"$dest.diff" ||
	{ cat "$dest.diff"; rm -f "$dest".*; fail "make install: not the expected files (- missing, + extra)"; }
rm -f "$dest".*
[ -d "$dest/etc/blktrack/writers.d" ] || fail "no /etc/blktrack/writers.d"
[ "$(stat -c %a "$dest/etc/blktrack/writers.d")" = 755 ] ||
	fail "/etc/blktrack/writers.d is not mode 755 (blktrack refuses a group- or world-writable one)"

# ---- the library and the tools ---------------------------------------------
lib=$dest/usr/lib
[ "$(readlink "$lib/libblktrack.so.1")" = libblktrack.so.1.0.0 ] &&
	[ "$(readlink "$lib/libblktrack.so")" = libblktrack.so.1 ] ||
	fail "libblktrack.so.1 -> libblktrack.so.1.0.0, libblktrack.so -> libblktrack.so.1 expected"
# bash-completion loads a command's completion from the file of its name.
[ "$(readlink "$dest/usr/share/bash-completion/completions/blktrack-dump")" = blktrack ] ||
	fail "completions/blktrack-dump is not a link to completions/blktrack"
readelf -d "$lib/libblktrack.so.1.0.0" | grep -q 'SONAME.*\[libblktrack\.so\.1\]' ||
	fail "the installed library's SONAME is not libblktrack.so.1"
for t in blktrack blktrack-dump; do
	[ -x "$dest/usr/sbin/$t" ] || fail "/usr/sbin/$t not executable"
	! readelf -d "$dest/usr/sbin/$t" | grep -Eq 'RPATH|RUNPATH' ||
		fail "/usr/sbin/$t has an RPATH"
done
if grep -a -q BLKTRACK_TEST_ "$lib/libblktrack.so.1.0.0"; then
	fail "the installed libblktrack reads test hooks"
fi
grep -a -q BLKTRACK_TEST_CRASH_AT build/libblktrack.so.1 ||
	fail "the test build has no test hooks: the VM tests would test nothing"
# The installed tools say their version: the Makefile's, and the ABI of the header.
for t in blktrack blktrack-dump; do
	for opt in --version -V; do
		got=$(LD_LIBRARY_PATH="$lib" "$dest/usr/sbin/$t" $opt)
		[ "$got" = "$t $ver (ABI $abi)" ] ||
			fail "$t $opt printed '$got', not '$t $ver (ABI $abi)'"
	done
done

# A program of the library's users: pkg-config, headers, link, run.
pc="env PKG_CONFIG_LIBDIR=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest pkg-config"
[ "$($pc --modversion libblktrack)" = "$ver" ] || fail "libblktrack.pc: not version $ver"
cat >"$dest/t.c" <<'EOF'
#include <stdio.h>
#include <libblktrack.h>
int main(void)
{
	uint64_t b;

	if (blktrack_parse_size("16M", &b) || b != 16 << 20)
		return 1;
	printf("%u\n", (unsigned)BLKTRACK_ABI_VERSION);
	return 0;
}
EOF
# shellcheck disable=SC2046
${CC:-cc} -std=c99 -Wall -Werror -o "$dest/t" "$dest/t.c" $($pc --cflags --libs libblktrack) ||
	fail "a program does not build with the installed headers and libblktrack.pc"
[ "$(LD_LIBRARY_PATH="$lib" "$dest/t")" = "$abi" ] ||
	fail "a program linked to the installed library does not run"
rm -f "$dest/t" "$dest/t.c"

# ---- DKMS: the tree builds what kmod/Kbuild names ------------------------------
src=$dest/usr/src/blktrack-$ver
grep -qx "PACKAGE_VERSION=\"$ver\"" "$src/dkms.conf" || fail "dkms.conf: not PACKAGE_VERSION=\"$ver\""
grep -qx 'BUILT_MODULE_LOCATION\[0\]="kmod/"' "$src/dkms.conf" || fail "dkms.conf: not kmod/"
for o in $(sed -n 's/^blktrack-y := //p' kmod/Kbuild); do
	[ -e "$src/kmod/${o%.o}.c" ] || fail "DKMS tree: no kmod/${o%.o}.c"
done
for h in $(cat kmod/*.c kmod/*.h | sed -n 's/^#include "\(.*\)"/\1/p' | sort -u); do
	[ -e "$src/kmod/$h" ] || fail "DKMS tree: no kmod/$h"
done

# ---- man pages, completion, writers --------------------------------------------
if command -v man >/dev/null; then
	for m in "$dest"/usr/share/man/man*/*; do
		w=$(man --warnings -l "$m" 2>&1 >/dev/null) || fail "man -l $m failed"
		[ -z "$w" ] || { echo "$w"; fail "man --warnings -l ${m#"$dest"}: warnings"; }
	done
fi
# Every command blktrack(8) lists in its synopsis is completed.
want=$(sed -n 's/^\.B blktrack \([a-z][a-z]*\).*/\1/p' doc/blktrack.8 | sort -u)
[ -n "$want" ] || fail "no command found in blktrack(8)'s synopsis"
got=$(PATH="$dest/usr/sbin:$PATH" LD_LIBRARY_PATH="$lib" bash -c '
	. "$1"
	COMP_WORDS=(blktrack ""); COMP_CWORD=1; COMP_LINE="blktrack "; COMP_POINT=9
	_blktrack; printf "%s\n" "${COMPREPLY[@]}"' sh \
	"$dest/usr/share/bash-completion/completions/blktrack" | grep -v '^-' | sort -u)
[ "$got" = "$want" ] || fail "bash completion: commands '$(echo $got)', not '$(echo $want)'"
# Every option a command's --help gives is in its man page (as \-\-name).
for c in $want; do
	for o in $(LD_LIBRARY_PATH="$lib" "$dest/usr/sbin/blktrack" "$c" --help |
		grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" doc/blktrack.8 ||
			fail "blktrack $c --help gives $o: not in blktrack(8)"
	done
done
for o in $(LD_LIBRARY_PATH="$lib" "$dest/usr/sbin/blktrack-dump" --help |
	grep -oE -- '--[a-z][a-z-]*' | sort -u); do
	grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" doc/blktrack-dump.8 ||
		fail "blktrack-dump --help gives $o: not in blktrack-dump(8)"
done
for w in "$dest"/usr/share/doc/blktrack/examples/writers/*; do
	[ -x "$w" ] && sh -n "$w" || fail "example writer ${w#"$dest"}: not executable or not sh"
done

# The example configuration is a valid one that tracks nothing.
out=$(LD_LIBRARY_PATH="$lib" "$dest/usr/sbin/blktrack" config --json \
	--config "$dest/etc/blktrack/blktrack.conf") || fail "the example blktrack.conf is refused"
case $out in *'"volumes":[]'*) ;; *) fail "the example blktrack.conf configures volumes: $out" ;; esac

# ---- boot integration: paths filled in, scripts parse, units verify -----------
for f in $(cd "$dest" && find usr/lib/systemd usr/lib/udev usr/share/initramfs-tools -type f); do
	! grep -q '@[A-Z]*@' "$dest/$f" || fail "/$f: a @VARIABLE@ left in it"
	case $f in
	*.service | *.timer | *.rules) ;;
	*) [ -x "$dest/$f" ] && sh -n "$dest/$f" || fail "/$f: not an executable sh script" ;;
	esac
done
grep -q 'RUN+="/usr/sbin/blktrack attach -q --configured --restore-state $devnode"' \
	"$dest/usr/lib/udev/rules.d/90-blktrack.rules" || fail "the udev rule does not run /usr/sbin/blktrack"
if command -v systemd-analyze >/dev/null; then
	# The units as installed, their commands pointed at the installed tool.
	units=$dest/units
	mkdir "$units"
	for u in "$dest"/usr/lib/systemd/system/*; do
		sed "s|/usr/sbin/|$dest/usr/sbin/|" "$u" >"$units/$(basename "$u")"
	done
	cp "$units/blktrack-backup@.service" "$units/blktrack-backup@data.service"
	cp "$units/blktrack-backup@.timer" "$units/blktrack-backup@data.timer"
	w=$(cd "$units" && systemd-analyze verify --man=no ./blktrack-attach.service \
		./blktrack-backup@data.service ./blktrack-backup@data.timer 2>&1) ||
		{ echo "$w"; fail "systemd-analyze verify failed"; }
	[ -z "$w" ] || { echo "$w"; fail "systemd-analyze verify: warnings"; }
	rm -rf "$units"
fi

# ---- uninstall -------------------------------------------------------------------
make -s uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null
left=$(cd "$dest" && find . ! -type d -o -name '*blktrack*')
[ -z "$left" ] || { echo "$left"; fail "make uninstall left these"; }

# ---- other directories -----------------------------------------------------------
make -s install DESTDIR="$dest" PREFIX=/opt/bt LIBDIR=/opt/bt/lib64 MANDIR=/opt/man >/dev/null
for f in opt/bt/sbin/blktrack opt/bt/lib64/libblktrack.so.1 opt/bt/lib64/pkgconfig/libblktrack.pc \
	opt/man/man8/blktrack.8 opt/bt/etc/blktrack/writers.d usr/src/blktrack-$ver/dkms.conf; do
	[ -e "$dest/$f" ] || fail "PREFIX=/opt/bt LIBDIR=/opt/bt/lib64 MANDIR=/opt/man: no /$f"
done
grep -qx 'libdir=/opt/bt/lib64' "$dest/opt/bt/lib64/pkgconfig/libblktrack.pc" ||
	fail "libblktrack.pc: libdir is not LIBDIR"
make -s uninstall DESTDIR="$dest" PREFIX=/opt/bt LIBDIR=/opt/bt/lib64 MANDIR=/opt/man >/dev/null
left=$(cd "$dest" && find . ! -type d -o -name '*blktrack*')
[ -z "$left" ] || { echo "$left"; fail "make uninstall (PREFIX=/opt/bt...) left these"; }
echo "ok - make install: every file in place, no test hook in the installed library, versions," \
	"headers and pkg-config usable, DKMS tree, man pages, completion; make uninstall"

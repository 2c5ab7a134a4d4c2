#!/bin/sh
# The include rule between lib/'s layers (doc/ARCHITECTURE.md):
#
#   core/       core/
#   format/     core/, format/
#   repo/       core/, format/, repo/
#   kernel/     core/, kernel/
#   requester/  every layer
#   tools/      core/, format/, repo/ (and the public API)
#   userspace/  the public API only (libblktrack.h)
#
# Every lib/ header is named by its layer ("format/bfile.h"); the public
# libblktrack.h may be included from anywhere. A source file directly in
# lib/, or an include this rule does not allow, fails with its file:line.
# Usage: scripts/check-layers.sh [TOP]   (TOP: the tree to check, default .)
set -u
top=${1:-.}
cd "$top" || exit 2

allowed() {
	case $1 in
	core) echo "core" ;;
	format) echo "core format" ;;
	repo) echo "core format repo" ;;
	kernel) echo "core kernel" ;;
	requester) echo "core format repo kernel requester" ;;
	tools) echo "core format repo" ;;
	userspace) echo "" ;;
	esac
}

bad=0
for f in lib/*.c lib/*.h; do
	[ -e "$f" ] || continue
	case $f in lib/libblktrack.h) continue ;; esac
	echo "$f: lib/ sources belong in a layer's folder"
	bad=1
done
for f in lib/*/*.[ch] tools/*.c userspace/*.[ch]; do
	[ -e "$f" ] || continue
	case $f in
	lib/*) layer=${f#lib/}; layer=${layer%%/*} ;;
	*) layer=${f%%/*} ;;
	esac
	ok=$(allowed "$layer")
	if [ "$layer" != userspace ] && [ -z "$ok" ]; then
		echo "$f: $layer is not a layer of doc/ARCHITECTURE.md"
		bad=1
		continue
	fi
	# "#include "X"" lines with their numbers.
	grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | {
	fail=0
	while IFS= read -r line; do
		n=${line%%:*}
		inc=$(printf '%s\n' "$line" | sed 's/.*include[[:space:]]*"\([^"]*\)".*/\1/')
		case $inc in
		libblktrack.h) continue ;;
		*/*) dep=${inc%%/*} ;;
		*)
			# A file of its own folder outside lib/ (the CLI's blktrack.h).
			[ "$layer" = userspace ] || [ "$layer" = tools ] && [ -e "${f%/*}/$inc" ] && continue
			echo "$f:$n: \"$inc\": name lib/ headers by their layer"
			fail=1
			;;
		esac
		case " $ok " in
		*" $dep "*) ;;
		*)
			echo "$f:$n: $layer/ may not include \"$inc\" (allowed: ${ok:-the public API only})"
			fail=1
			;;
		esac
	done
	[ $fail = 0 ]
	} || bad=1
done
if [ $bad = 0 ]; then
	echo "check-layers: ok"
	exit 0
fi
echo "check-layers: the include rule of doc/ARCHITECTURE.md is broken (above)"
exit 1

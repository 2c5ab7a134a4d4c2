#!/bin/sh
# The longest functions of C files, in lines from the signature's first line
# to the closing brace (the kernel style: both braces of a function body in
# column 0). doc/ARCHITECTURE.md asks for none in lib/ over 120 lines, no
# backup phase over 60 and blktrack_backup() under 80.
# Usage: scripts/function-lengths.sh [-n N] [FILE...]   (default: lib/*/*.c, 15 rows)
n=15
if [ "$1" = -n ]; then
	n=$2
	shift 2
fi
[ $# -gt 0 ] || set -- lib/*/*.c
awk '
FNR == 1 { sig = 0 }
# A signature starts at a column-0 line that is not a comment, a preprocessor
# line, a brace, a declaration ending in ";" or a label; it ends at "{".
/^[A-Za-z_]/ && !/;[[:space:]]*$/ && !/^[A-Za-z_][A-Za-z0-9_]*:/ {
	if (!sig) { sig = FNR; text = $0 } else { text = text " " $0 }
	next
}
/^[[:space:]]/ && sig && !inbody { text = text " " $0; next }
/^\{/ && sig { inbody = 1; next }
/^\}/ && inbody {
	name = text
	sub(/[[:space:]]*\(.*/, "", name)
	sub(/.*[[:space:]*]/, "", name)
	printf "%d %s:%d %s\n", FNR - sig + 1, FILENAME, sig, name
	inbody = 0; sig = 0
	next
}
!inbody { sig = 0 }
' "$@" | sort -rn | head -n "$n"

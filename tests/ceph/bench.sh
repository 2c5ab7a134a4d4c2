#!/bin/sh
# The copy to RADOS against the cluster's own limit (doc/BENCHMARKS.md,
# "Copy to RADOS"): a repository made by the library (ceph-mkchain: a full
# of MIB of random data and four smaller backups) copied into rados://, its
# bytes per second against `rados bench` writing 4 MiB objects to the same
# pool of the same cluster, one at a time (as the copy writes them) and 16
# at a time (the cluster's limit here); and the cost of encryption, the same
# copies into encrypted repositories. Usage: tests/ceph/bench.sh [MIB]
# (1024). Not a test: it prints the figures.
set -eu
cd "$(dirname "$0")/../.."
MIB=${1:-1024}
B=${B:-build}
base=$(mktemp -d /tmp/btcbench.XXXXXX)
trap 'tests/ceph/cluster.sh stop "$base/c" >/dev/null 2>&1; rm -rf "$base"' EXIT
tests/ceph/cluster.sh start "$base/c" >/dev/null
eval "$(tests/ceph/cluster.sh env "$base/c")"
export CEPH_CONF
mkdir -p "$base/w"
"$B/ceph-mkchain" "$base/w" "$MIB"
bytes=$(du -cb "$base/w/repo/backups" | tail -n 1 | cut -f1)
head -c 32 /dev/urandom >"$base/key"
# copy_to WHAT DST [init options]: a copy of the repository into DST, timed.
copy_to() {
	"$B/blktrack" init --repo "$2" $3 >/dev/null
	"$B/blktrack" copy --from "$base/w/repo" --to "$2" --json >"$base/copy.json"
	secs=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$base/copy.json")
	echo "blktrack copy, $1: $bytes bytes of backup files in $secs s:" \
		"$(awk "BEGIN { printf \"%.1f\", $bytes / $secs / 1048576 }") MiB/s"
}
export BLKTRACK_KEY_FILE="$base/key"
copy_to "to a directory" "$base/plain" ""
copy_to "to a directory, encrypted" "$base/enc" --encrypt
copy_to "to rados://" rados://blktrack/bench ""
copy_to "to rados://, encrypted" rados://blktrack/benchenc --encrypt
for t in 1 16; do
	rados bench -p blktrack 20 write -b 4194304 -t $t --no-cleanup 2>/dev/null |
		sed -n "s/^Bandwidth (MB\/sec): */rados bench, 4 MiB objects, $t at a time: /p" |
		sed 's/$/ MB\/s/'
	rados -p blktrack cleanup >/dev/null 2>&1
done

#!/bin/sh
# The Ceph tests (make check-ceph): one single-node cluster on 127.0.0.1
# (cluster.sh) for every tests/ceph/[0-9]*.sh, torn down at the end whatever
# they gave. Each test gets CEPH_CONF, CEPH_POOL, BT (the blktrack binary),
# MKCHAIN (build/ceph-mkchain), CLUSTER (for cluster.sh stop-osd...) and a
# scratch WORK directory of its own.
# Usage: tests/ceph/run.sh [PREFIX,...]   (e.g. 0100)
set -u
cd "$(dirname "$0")/../.."
top=$(pwd)
B=${B:-build}
base=$(mktemp -d /tmp/btceph.XXXXXX) || exit 1
cluster=$base/c
trap 'tests/ceph/cluster.sh stop "$cluster" >/dev/null 2>&1; rm -rf "$base"' EXIT
trap 'exit 130' INT TERM
tests/ceph/cluster.sh start "$cluster" || exit 1
eval "$(tests/ceph/cluster.sh env "$cluster")"
export CEPH_CONF CEPH_POOL
export BT="$top/$B/blktrack" MKCHAIN="$top/$B/ceph-mkchain" CLUSTER="$cluster"
pass=0 failed=
for t in tests/ceph/[0-9]*.sh; do
	name=$(basename "$t" .sh)
	if [ $# -gt 0 ]; then
		case ",$1," in *",${name%%-*},"*) ;; *) continue ;; esac
	fi
	WORK=$base/$name
	mkdir -p "$WORK"
	export WORK
	start=$(date +%s)
	if sh "$t" >"$base/$name.log" 2>&1; then
		pass=$((pass + 1))
		echo "PASS $name ($(($(date +%s) - start)) s)"
	else
		failed="$failed $name"
		echo "FAIL $name ($(($(date +%s) - start)) s):"
		sed 's/^/    /' "$base/$name.log"
	fi
done
echo "ceph tests: $pass passed${failed:+, failed:$failed}"
[ -z "$failed" ]

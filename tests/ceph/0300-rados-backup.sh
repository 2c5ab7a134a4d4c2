#!/bin/sh
# Backups taken straight into a RADOS repository (ceph-mkchain: the real
# library over the fake kernel, its writer, verify writer and hash files
# going through rados://): every point restores equal to the volume then,
# check and verify find nothing. The cluster stopped in the middle of a
# backup, the backup killed: the repository is consistent afterwards
# (check) and the next backups into it finish, their points restoring.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
sha() { sha256sum | cut -d' ' -f1; }
P=$CEPH_POOL

R=rados://$P/t300
mkdir -p "$WORK/a"
"$MKCHAIN" "$WORK/a" 16 "$R"
for id in 1 2 3 4 5; do
	rm -f "$WORK/r.img"
	"$BT" restore --repo "$R" --backup $id "$WORK/r.img" >/dev/null || fail "restore $id"
	[ "$(sha <"$WORK/r.img")" = "$(sha <"$WORK/a/point.$id.img")" ] || fail "point $id differs"
done
"$BT" check --repo "$R" >/dev/null || fail "check"
"$BT" verify --repo "$R" >/dev/null || fail "verify"
echo "backups into rados:// restore every point"

# Stopped in the middle of a backup (the OSD down, the backup killed).
R=rados://$P/t301
mkdir -p "$WORK/b" "$WORK/c"
"$MKCHAIN" "$WORK/b" 256 "$R" >/dev/null 2>&1 &
pid=$!
sleep 1.5
tests/ceph/cluster.sh stop-osd "$CLUSTER"
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
tests/ceph/cluster.sh start-osd "$CLUSTER"
"$MKCHAIN" "$WORK/c" 16 "$R" || fail "the backups after the kill"
"$BT" check --repo "$R" >/dev/null || { "$BT" check --repo "$R"; fail "check after the kill"; }
n=0
for img in "$WORK"/b/point.*.img "$WORK"/c/point.*.img; do
	[ -e "$img" ] || continue
	id=${img##*/point.}
	id=${id%.img}
	rm -f "$WORK/r.img"
	"$BT" restore --repo "$R" --backup "$id" "$WORK/r.img" >/dev/null || fail "restore $id"
	[ "$(sha <"$WORK/r.img")" = "$(sha <"$img")" ] || fail "point $id differs"
	n=$((n + 1))
done
[ $n -ge 5 ] || fail "only $n points"
echo "a backup killed with the OSD down: consistent, and the next backups finish ($n points)"

#!/bin/sh
# blktrack export --format rbd-diff against a real Ceph (doc/FILES.md,
# "rbd-diff"): a chain made by the library (ceph-mkchain: 1 full, 2 and 3
# incrementals, 4 a differential on 1, 5 an incremental on 3) applied point
# after point with `rbd import-diff` onto an RBD image: after each, `rbd
# export` of the image's snapshot equals the volume as mkchain wrote it at
# that point, and blktrack's own restore of the point too. The differential
# applies on the full's snapshot; a point out of turn is refused by rbd
# with the image unchanged; a stream through a file is the same as a pipe.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
sha() { sha256sum | cut -d' ' -f1; }
R=$WORK/repo
P=$CEPH_POOL

"$MKCHAIN" "$WORK"
size=$(stat -c %s "$WORK/volume.img")
rbd create --size "${size}B" "$P/vol"
for id in 1 2 3 5; do
	"$BT" export --repo "$R" --backup "$id" --format rbd-diff - | rbd import-diff --no-progress - "$P/vol" ||
		fail "import-diff of point $id"
	want=$(sha <"$WORK/point.$id.img")
	got=$(rbd export --no-progress "$P/vol@blktrack-$id" - | sha)
	[ "$got" = "$want" ] || fail "the image at blktrack-$id is not point $id"
	rm -f "$WORK/restored.img"
	"$BT" restore --repo "$R" --backup "$id" "$WORK/restored.img" >/dev/null
	[ "$(sha <"$WORK/restored.img")" = "$want" ] || fail "blktrack's restore of $id differs"
	echo "point $id: the RBD image equals the volume"
done
[ "$(rbd snap ls "$P/vol" | grep -c blktrack-)" = 4 ] || fail "one snapshot per point"

# The differential onto the full's snapshot, through a file.
rbd create --size "${size}B" "$P/diff"
"$BT" export --repo "$R" --backup 1 --format rbd-diff "$WORK/1.rbdiff" >/dev/null
"$BT" export --repo "$R" --backup 4 --format rbd-diff "$WORK/4.rbdiff" >/dev/null
rbd import-diff --no-progress "$WORK/1.rbdiff" "$P/diff"
before=$(rbd export --no-progress "$P/diff" - | sha)
# Out of turn: point 5 (on 3) onto an image that has only blktrack-1.
if "$BT" export --repo "$R" --backup 5 --format rbd-diff - |
	rbd import-diff --no-progress - "$P/diff" 2>"$WORK/err"; then
	fail "rbd applied point 5 onto an image without blktrack-3"
fi
grep -q "blktrack-3" "$WORK/err" || { cat "$WORK/err"; fail "rbd's refusal names another snapshot"; }
[ "$(rbd export --no-progress "$P/diff" - | sha)" = "$before" ] || fail "a refused import changed the image"
rbd import-diff --no-progress "$WORK/4.rbdiff" "$P/diff"
[ "$(rbd export --no-progress "$P/diff@blktrack-4" - | sha)" = "$(sha <"$WORK/point.4.img")" ] ||
	fail "the differential's image is not point 4"
echo "the differential applies onto the full; out of turn refused"

#!/bin/sh
# A repository on RADOS (rados://POOL/NAME; doc/REPOSITORY.md, "Repositories
# on Ceph") against a real cluster: a chain made by the library
# (ceph-mkchain) copied in, listed, checked, verified, restored point after
# point equal to the volume at that point, copied back out, pruned; a second
# writer refused while the lock is held, and let in once the holder's lock
# expires (a holder that died); a flipped byte in a stored chunk detected
# (exit 4); a copy killed while the OSD is stopped finished by the next one.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
sha() { sha256sum | cut -d' ' -f1; }
P=$CEPH_POOL
R=rados://$P/t200
L=$WORK/w/repo

mkdir -p "$WORK/w"
"$MKCHAIN" "$WORK/w"
"$BT" init --repo "$R" >/dev/null
# restores ID: point ID restored from the RADOS repository is the volume then.
restores() {
	rm -f "$WORK/r.img"
	"$BT" restore --repo "${2:-$R}" --backup "$1" "$WORK/r.img" >/dev/null ||
		fail "restore $1 from ${2:-$R}"
	[ "$(sha <"$WORK/r.img")" = "$(sha <"$WORK/w/point.$1.img")" ] ||
		fail "point $1 restored from ${2:-$R} differs"
}

"$BT" copy --from "$L" --to "$R" --json >"$WORK/copy.json"
grep -q '"copied":5' "$WORK/copy.json" || { cat "$WORK/copy.json"; fail "5 copied"; }
[ "$("$BT" list --repo "$R" --json | grep -o '"id": [0-9]*' | wc -l)" = 5 ] || fail "list: 5"
"$BT" check --repo "$R" >/dev/null || fail "check of the RADOS repository"
"$BT" verify --repo "$R" --backup 5 >/dev/null || fail "verify 5"
for id in 1 2 3 4 5; do
	restores $id
done
echo "copied in; list, check, verify; every point restores"

# And back out, into a new directory.
"$BT" init --repo "$WORK/back" >/dev/null
"$BT" copy --from "$R" --to "$WORK/back" >/dev/null
restores 5 "$WORK/back"
"$BT" check --repo "$WORK/back" >/dev/null || fail "check of the copy back"
echo "copied back out: the same points"

# A second writer: refused while the lock is held; the lock of a holder
# that died goes by expiry.
rados -p "$P" -N t200 lock get lock blktrack --lock-cookie other --lock-duration 8 \
	--lock-type exclusive
if "$BT" prune --repo "$R" --keep-last 2 2>"$WORK/err"; then
	fail "a second writer got in"
fi
grep -q "in use by another blktrack" "$WORK/err" || { cat "$WORK/err"; fail "the refusal's words"; }
"$BT" prune --repo "$R" --keep-last 2 --wait=30 >/dev/null || fail "prune once the lock expired"
restores 5
restores 4
"$BT" check --repo "$R" >/dev/null || fail "check after the prune"
echo "a second writer refused; the lock expires; prune on RADOS"

# A flipped byte in a stored chunk of backup 5 (merged by the prune: 5.N.bkt):
# detected, exit 4.
chunk=$(rados -p "$P" -N t200 ls | grep '^backups/5\..*bkt@' | head -n 1)
[ -n "$chunk" ] || fail "no chunk of backups/5.bkt"
rados -p "$P" -N t200 get "$chunk" "$WORK/chunk"
printf '\377' | dd of="$WORK/chunk" bs=1 seek=100 conv=notrunc status=none
rados -p "$P" -N t200 put "$chunk" "$WORK/chunk"
rc=0
"$BT" restore --repo "$R" --backup 5 "$WORK/bad.img" >/dev/null 2>"$WORK/err" || rc=$?
[ $rc = 4 ] || { cat "$WORK/err"; fail "restore of a damaged chunk: exit $rc, wanted 4"; }
rc=0
"$BT" check --repo "$R" >/dev/null 2>&1 || rc=$?
[ $rc = 4 ] || fail "check of a damaged chunk: exit $rc, wanted 4"
echo "a flipped byte of the cluster's copy is detected"

# A copy killed while the OSD is stopped: the next finishes it.
R2=rados://$P/t201
"$BT" init --repo "$R2" >/dev/null
"$BT" copy --from "$L" --to "$R2" >/dev/null 2>&1 &
pid=$!
sleep 0.3
tests/ceph/cluster.sh stop-osd "$CLUSTER"
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
tests/ceph/cluster.sh start-osd "$CLUSTER"
"$BT" copy --from "$L" --to "$R2" --wait=40 >/dev/null || fail "the copy after the kill"
for id in 1 2 3 4 5; do
	restores $id "$R2"
done
"$BT" check --repo "$R2" >/dev/null || fail "check after the killed copy"
[ -z "$(rados -p "$P" -N t201 ls | grep -v '^lock$' | grep -v '@' | grep '\.tmp$')" ] ||
	fail "tmp objects left"
echo "a copy killed with the OSD down is finished by the next"

# Encrypted, on the way off the machine: a copy into an encrypted RADOS
# repository; the cluster holds neither the volume's id nor its data in the
# clear; another key is refused.
head -c 32 /dev/urandom >"$WORK/key"
head -c 32 /dev/urandom >"$WORK/other"
R3=rados://$P/t202
BLKTRACK_KEY_FILE=$WORK/key "$BT" init --repo "$R3" --encrypt >/dev/null
BLKTRACK_KEY_FILE=$WORK/key "$BT" copy --from "$L" --to "$R3" >/dev/null || fail "encrypted copy"
for id in 1 5; do
	BLKTRACK_KEY_FILE=$WORK/key restores $id "$R3"
done
vol=$(sed -n 's/.*"volume_id": *"\([^"]*\)".*/\1/p' "$L/catalog" | head -n 1)
[ -n "$vol" ] || fail "no volume id in the plain catalog"
for o in $(rados -p "$P" -N t202 ls); do
	rados -p "$P" -N t202 get "$o" "$WORK/obj"
	! grep -qF "$vol" "$WORK/obj" || fail "$o holds the volume id in the clear"
done
if BLKTRACK_KEY_FILE=$WORK/other "$BT" list --repo "$R3" >/dev/null 2>"$WORK/err"; then
	fail "another key was let in"
fi
grep -q "not this repository's key" "$WORK/err" || { cat "$WORK/err"; fail "the wrong key's words"; }
echo "an encrypted RADOS repository: restores, nothing in the clear, another key refused"

# A store that drops the keycheck must not turn the repository plain.
rados -p "$P" -N t202 rm keycheck
if BLKTRACK_KEY_FILE=$WORK/key "$BT" list --repo "$R3" >/dev/null 2>"$WORK/err"; then
	fail "a repository without its keycheck opened as plain while a key was given"
fi
grep -q "not encrypted, but a key was given" "$WORK/err" || { cat "$WORK/err"; fail "the words"; }
echo "a dropped keycheck is refused"

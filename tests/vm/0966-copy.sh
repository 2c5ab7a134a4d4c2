#!/bin/sh
# blktrack copy (doc/REPOSITORY.md, "Copies") on a real tracked volume: a
# chain copied into a second repository restores there to the volume's
# sha256 at each point; an incremental taken into the copy continues the
# chain (only what was written since); copied back, the first repository
# continues from it too; backups taken into both make them diverge: the
# copy is refused (exit 9) with nothing changed; a damaged backup file is
# refused (exit 4) and the copy holds nothing of it. (A copy killed at any
# step: tests/unit/lib/test_copy.c.)
. /blktrack/tests/vm/lib/testlib.sh
R=$BT_TMP/repo
C=$BT_TMP/copy
trap cleanup_all EXIT

A=$(make_loop 8)
bt attach "$A"
bt init --repo "$R" >/dev/null
bt init --repo "$C" >/dev/null
dev_sha() {
	dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}
# vpoint NAME REPO [OPTIONS...]: random writes to A, its sha256, its backup into REPO.
vpoint() {
	local name=$1 repo=$2
	shift 2
	dd if=/dev/urandom of="$A" bs=4096 count=$(( $(rnd 64) + 1 )) seek=$(rnd 1900) \
		oflag=direct conv=notrunc status=none || fail "write $A"
	dev_sha "$A" >"$BT_TMP/sha.$name"
	blktrack backup "$A" --repo "$repo" --json "$@" >"$BT_TMP/out.$name" || fail "backup $name"
	jfield "$BT_TMP/out.$name" backup >"$BT_TMP/id.$name"
}
# restores NAME REPO: backup NAME restored from REPO is the volume at NAME.
restores() {
	rm -f "$BT_TMP/r.img"
	bt restore --repo "$2" --backup "$(cat "$BT_TMP/id.$1")" "$BT_TMP/r.img" >/dev/null
	assert_eq "$1 restored from $2" "$(sha256sum <"$BT_TMP/r.img" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha.$1")"
}

vpoint full "$R" --type full
vpoint inc1 "$R"
vpoint inc2 "$R"
bt copy --from "$R" --to "$C" --json >"$BT_TMP/copy.json"
assert_eq "copied" "$(jfield "$BT_TMP/copy.json" copied)" 3
for p in full inc1 inc2; do
	restores $p "$C"
done
bt check --repo "$C" >/dev/null
bt copy --from "$R" --to "$C" --json >"$BT_TMP/copy.json"
assert_eq "copied again" "$(jfield "$BT_TMP/copy.json" copied)" 0
assert_eq "already there" "$(jfield "$BT_TMP/copy.json" present)" 3

# An incremental into the copy: on inc2, only what was written since.
vpoint inc3 "$C"
assert_eq "inc3's type" "$(jfield "$BT_TMP/out.inc3" type)" incremental
assert_eq "inc3's parent" "$(jfield "$BT_TMP/out.inc3" parent)" "$(cat "$BT_TMP/id.inc2")"
restores inc3 "$C"
# Copied back: the first repository continues from it.
bt copy --from "$C" --to "$R" >/dev/null
vpoint inc4 "$R"
assert_eq "inc4's type" "$(jfield "$BT_TMP/out.inc4" type)" incremental
assert_eq "inc4's parent" "$(jfield "$BT_TMP/out.inc4" parent)" "$(cat "$BT_TMP/id.inc3")"
restores inc4 "$R"

# Backups into both: diverged, refused, nothing changed.
vpoint div "$C" --on-invalid resync
cp "$C/catalog" "$BT_TMP/catalog.before"
bt_fails 9 copy --from "$R" --to "$C"
cmp -s "$C/catalog" "$BT_TMP/catalog.before" || fail "a refused copy changed the catalog"

# A damaged backup file of the source: exit 4, nothing of it in the copy.
D=$BT_TMP/d
bt init --repo "$D" >/dev/null
inc1=$(cat "$BT_TMP/id.inc1")
printf 'X' | dd of="$R/backups/$inc1.bkt" bs=1 seek=600 conv=notrunc status=none
bt_fails 4 copy --from "$R" --to "$D"
[ ! -e "$D/backups/$inc1.bkt" ] || fail "the damaged backup was copied"
restores full "$D"
bt check --repo "$D" >/dev/null
ok "copy: chains restore from the copy and continue in it; divergence and damage refused"

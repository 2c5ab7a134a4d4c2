#!/bin/sh
# The CLI and blktrack-dump: output formats, paging through many extents,
# extents across map regions, multi-volume checkpoints, error messages and
# exit codes, loading the module through libblktrack.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

load_module
setup_disk
loop=$(make_loop 256)
bt attach "$loop"
bt attach /dev/vda1

echo "# ---- 1500 extents: more than one READ_EXTENTS page (1024)"
i=0
while [ $i -lt 1500 ]; do
	dd if=/dev/zero of="$loop" bs=4096 count=1 seek=$((i * 2)) conv=notrunc status=none ||
		fail "dd block $((i * 2))"
	i=$((i + 1))
done
# and one run across the 128 MiB map region boundary: a single extent
write_direct "$loop" $(((128 << 20) - 32768)) 65536
sync
blktrack changes "$loop" --active >"$BT_TMP/active" || fail "changes --active"
blktrack checkpoint "$loop" >"$BT_TMP/ckpt" || fail "checkpoint"
cat "$BT_TMP/ckpt"
read -r dev gen epoch dirty <"$BT_TMP/ckpt"
assert_eq "checkpoint line device" "$dev" "$loop"
assert_eq "checkpoint line epoch" "$epoch" 0
assert_eq "checkpoint line dirty blocks" "$dirty" $((1500 + 16))
assert_eq "checkpoint generation = status generation" "$gen" "$(status_get "$loop" generation)"
blktrack changes "$loop" >"$BT_TMP/pending" || fail "changes"
awk 'BEGIN { for (i = 0; i < 1500; i++) print i * 8192, 4096;
	     print 134184960, 65536 }' >"$BT_TMP/want"
if ! cmp -s "$BT_TMP/pending" "$BT_TMP/want"; then
	diff "$BT_TMP/want" "$BT_TMP/pending" | head -20
	fail "changes of 1501 extents differ"
fi
ok "changes: 1501 extents, paged and merged across pages and regions"
cmp -s "$BT_TMP/active" "$BT_TMP/want" || fail "changes --active before the checkpoint differ"
ok "changes --active before the checkpoint listed the same extents"

blktrack changes "$loop" --json >"$BT_TMP/json" || fail "changes --json"
head -c 120 "$BT_TMP/json"; echo
grep -q "^{\"device\":\"$loop\",\"map\":\"pending\",\"block_size\":4096,\"extents\":\[\[0,4096\],\[8192,4096\]," "$BT_TMP/json" ||
	fail "changes --json: unexpected start"
assert_eq "changes --json extents" "$(grep -o '\[[0-9]*,[0-9]*\]' "$BT_TMP/json" | wc -l)" 1501
grep -q '\[134184960,65536\]\]}$' "$BT_TMP/json" || fail "changes --json: unexpected end"

echo "# ---- status"
blktrack status "$loop" --json >"$BT_TMP/sj" || fail "status --json"
cat "$BT_TMP/sj"
for k in device size block_size state reason generation epoch pending active_dirty \
	pending_dirty map_bytes mem_limit; do
	grep -q "\"$k\":" "$BT_TMP/sj" || fail "status --json lacks $k"
done
grep -q '"pending": true' "$BT_TMP/sj" || fail "status --json: pending is not true"
grep -q '"pending_dirty": 1516' "$BT_TMP/sj" || fail "status --json: pending_dirty"
grep -q '"mem_limit": 67108864' "$BT_TMP/sj" || fail "status --json: default mem_limit"
ok "status --json has every key"
assert_status "$loop" pending yes
assert_status "$loop" pending_dirty 1516
blktrack status >"$BT_TMP/all" || fail "status"
assert_eq "blank-line separated blocks in 'status'" "$(grep -c '^$' "$BT_TMP/all")" 1
blktrack status --json >"$BT_TMP/allj" || fail "status --json"
grep -q '"volumes": \[' "$BT_TMP/allj" || fail "status --json without DEV lacks volumes"
assert_eq "volumes in status --json" "$(grep -c '"device":' "$BT_TMP/allj")" 2

echo "# ---- blktrack-dump"
blktrack-dump >"$BT_TMP/dump" || fail "blktrack-dump exited $?"
cat "$BT_TMP/dump"
grep -q "^|.*|$" "$BT_TMP/dump" || fail "no density picture"
grep -q "^volume_id: _tmp_loop\.[A-Za-z0-9]* (loop-file)$" "$BT_TMP/dump" || fail "loop volume id"
grep -q "^volume_id: [0-9a-f]*-01 (partuuid)$" "$BT_TMP/dump" || fail "vda1 volume id"
grep -q "^fstype: none$" "$BT_TMP/dump" || fail "fstype"
blktrack-dump --pending "$loop" >"$BT_TMP/dumpp" || fail "blktrack-dump --pending"
cat "$BT_TMP/dumpp"
# 64 cells of 4 MiB: blocks 0, 2, ... 2998 make cells 0-1 half dirty ('*': not
# < 50%) and cell 2 476/1024 (':'); the 64 KiB run puts 32 KiB in cells 31 and 32.
pic=$(sed -n 's/^|\(.*\)|$/\1/p' "$BT_TMP/dumpp")
assert_eq "density picture" "$pic" "**:$(printf '%28s' '')..$(printf '%31s' '')"
blktrack-dump --json >"$BT_TMP/dumpj" || fail "blktrack-dump --json"
grep -q '"density":' "$BT_TMP/dumpj" || fail "blktrack-dump --json: no density"
# 8 cells of 32 MiB: cell 0 has 1500 of 8192 blocks, cells 3 and 4 32 KiB each
blktrack-dump --columns 8 --pending --json "$loop" | grep -q '"density": ".  ..   "' ||
	fail "blktrack-dump --columns 8 picture"
ok "blktrack-dump"

echo "# ---- multi-volume checkpoint"
bt_fails 1 checkpoint /dev/vda1 "$loop"
blktrack checkpoint /dev/vda1 "$loop" 2>&1 | grep -q "blktrack: $loop: a checkpoint is already pending" ||
	fail "checkpoint does not name the pending volume"
assert_status /dev/vda1 pending no
bt abort "$loop"
assert_status "$loop" pending no
assert_status "$loop" active_dirty 1516
write_at /dev/vda1 0 4096 conv=fsync
blktrack checkpoint /dev/vda1 "$loop" >"$BT_TMP/ck2" || fail "checkpoint"
cat "$BT_TMP/ck2"
assert_eq "checkpoint lines" "$(wc -l <"$BT_TMP/ck2")" 2
assert_eq "vda1 dirty" "$(awk '$1 == "/dev/vda1" { print $4 }' "$BT_TMP/ck2")" 1
bt commit /dev/vda1
bt commit "$loop"
assert_status "$loop" epoch 4294967297	# after an ABORT (2^32) and a COMMIT
assert_status /dev/vda1 epoch 1
bt_fails 1 checkpoint "$loop" "$loop"
bt_fails 1 checkpoint "$loop" /dev/vda2

echo "# ---- errors and exit codes"
blktrack changes "$loop" 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "changes without pending: exit" $rc 1
grep -q "^blktrack: $loop: no checkpoint is pending$" "$BT_TMP/err" || fail "message"
blktrack commit "$loop" 2>"$BT_TMP/err"; rc=$?
assert_eq "commit without pending: exit" $rc 1
blktrack status /dev/null 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "status /dev/null: exit" $rc 1
grep -q "^blktrack: /dev/null: not a block device$" "$BT_TMP/err" || fail "message"
blktrack status /dev/vda2 2>"$BT_TMP/err"; rc=$?
assert_eq "status of an unattached device: exit" $rc 1
grep -q "^blktrack: /dev/vda2: not attached$" "$BT_TMP/err" || fail "message"
bt_fails 2 frobnicate
bt_fails 2 attach
bt_fails 2 attach /dev/vda2 --block-size
bt_fails 2 attach /dev/vda2 --block-size 4Q
bt_fails 2 changes "$loop" --bogus
bt_fails 2 detach "$loop" /dev/vda1
bt_fails 0 --help
bt_fails 0 status --help
LIBBLKTRACK_DEBUG=1 blktrack status "$loop" 2>&1 >/dev/null | grep -q "^libblktrack: " ||
	fail "LIBBLKTRACK_DEBUG=1 prints nothing"
ok "LIBBLKTRACK_DEBUG=1 prints debug messages"
for c in attach detach status checkpoint changes commit abort save init backup restore \
	 verify list; do
	for o in -q --quiet -v --verbose; do
		blktrack $c $o --help >/dev/null || fail "blktrack $c $o --help exited $?"
	done
done
ok "every command takes -q, --quiet, -v, --verbose"
blktrack status -v "$loop" 2>&1 >/dev/null | grep -q "^libblktrack: " ||
	fail "status -v prints no debug line"
[ -z "$(blktrack status "$loop" 2>&1 >/dev/null)" ] || fail "status prints on stderr"
blktrack changes -q "$loop" 2>"$BT_TMP/err"; rc=$?
assert_eq "changes -q without pending: exit" $rc 1
grep -q "^blktrack: $loop: no checkpoint is pending$" "$BT_TMP/err" || fail "-q hides an error"
ok "-v prints the library's debug lines, -q still the errors"

echo "# ---- loading the module"
detach_all
run rmmod blktrack
BLKTRACK_MODULE=none blktrack status 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "BLKTRACK_MODULE=none: exit" $rc 1
BLKTRACK_MODULE=/nonexistent.ko blktrack status 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "missing module file: exit" $rc 1
grep -q "nonexistent.ko" "$BT_TMP/err" || fail "message does not name the module file"
blktrack status 2>"$BT_TMP/err"; rc=$?
cat "$BT_TMP/err"
assert_eq "module not installed: exit" $rc 1
grep -q "not installed" "$BT_TMP/err" || fail "message"
BLKTRACK_MODULE=$BT_KO blktrack status || fail "loading through BLKTRACK_MODULE failed"
module_loaded || fail "the module is not loaded"
ok "libblktrack loaded $BT_KO"
check_no_leak

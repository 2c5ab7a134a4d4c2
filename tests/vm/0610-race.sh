#!/bin/sh
# Checkpoints, commits and aborts racing with writes lose nothing: while fio
# writes 2000 known blocks, take checkpoint after checkpoint (committing most,
# aborting some); the union of the committed deltas and the last one is
# exactly the set of blocks fio wrote.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

N=2000
loop=$(make_loop 32)
sync
bt attach "$loop"

# Blocks 0, 3, 6, ...: a 4 KiB write, then an 8 KiB hole, N times.
expect_clear
i=0
while [ $i -lt $N ]; do
	expect_write $((i * 12288)) 4096
	i=$((i + 1))
done

echo "+ fio: $N O_DIRECT 4 KiB writes, one every 12 KiB, 400 per second (background)"
fio --name=race --filename="$loop" --rw=write:8k --bs=4k --direct=1 --ioengine=psync \
	--size=32M --number_ios=$N --rate_iops=400 >"$BT_TMP/fio.out" 2>&1 &
fio_pid=$!

: >"$BT_TMP/union"
rounds=0 aborts=0
while kill -0 $fio_pid 2>/dev/null; do
	blktrack checkpoint "$loop" >/dev/null || fail "checkpoint failed in round $rounds"
	rounds=$((rounds + 1))
	if [ $((rounds % 3)) = 0 ]; then
		blktrack abort "$loop" || fail "abort failed in round $rounds"
		aborts=$((aborts + 1))
	else
		blktrack changes "$loop" --pending >>"$BT_TMP/union" || fail "changes failed"
		blktrack commit "$loop" || fail "commit failed in round $rounds"
	fi
done
wait $fio_pid || { cat "$BT_TMP/fio.out"; fail "fio failed"; }
ok "fio done: $(grep -o 'IOPS=[^,]*' "$BT_TMP/fio.out" | head -n 1); $rounds checkpoints, $aborts aborted"
[ $rounds -ge 5 ] || fail "only $rounds checkpoints raced with fio"
run sync
bt checkpoint "$loop"
blktrack changes "$loop" --pending >>"$BT_TMP/union" || fail "changes failed"
bt commit "$loop"

# Compare the union of the deltas with what fio wrote.
echo "+ comparing the union of $((rounds - aborts + 1)) deltas with the $N blocks written"
_to_blocks 4096 <"$BT_TMP/union" | awk '{ printf "%d %d\n", $1 * 4096, ($2 - $1 + 1) * 4096 }' \
	>"$BT_TMP/union.merged"
# check_changes reads `blktrack changes`; feed it the merged union instead.
blktrack() {
	if [ "$1" = changes ]; then cat "$BT_TMP/union.merged"; else command blktrack "$@"; fi
}
check_changes "$loop" 4096 --pending
unset -f blktrack
assert_status "$loop" epoch $((aborts * 4294967296 + rounds - aborts + 1))
bt detach "$loop"
check_no_leak

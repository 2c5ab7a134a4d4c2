#!/bin/sh
# bcache: cached_dev_submit_bio() moves the bio queued on /dev/bcacheN in
# place to the backing device (bio_set_dev(), the sector shifted by the
# data offset) without tracing block_bio_remap, and ends it there: no
# completion of the bcache disk is ever traced, and no alias can map it
# back. A write held in flight across CHECKPOINT and COMMIT (dm-delay under
# the backing device, cache mode writethrough) must then either be in the
# next map, or the volume must say "completions: partial" (STATUS, --json)
# and an unfrozen backup must be refused.
. /blktrack/tests/vm/lib/testlib.sh
cleanup_bcache() {
	detach_all
	for b in /sys/block/bcache*/bcache; do
		[ -e "$b/stop" ] && echo 1 >"$b/stop"
	done
	for c in /sys/fs/bcache/*-*-*; do
		[ -e "$c/unregister" ] && echo 1 >"$c/unregister"
	done
	sleep 0.5
	dmsetup remove btdelay 2>/dev/null
	cleanup_all
}
trap cleanup_bcache EXIT

load_kmod dm-delay
load_kmod bcache
backing=$(make_loop 64)
cache=$(make_loop 64)
sects=$((64 << 11))
delay_table() {
	echo "0 $sects delay $backing 0 0 $backing 0 $1"
}
run dmsetup create btdelay --table "$(delay_table 0)"
# A cache needs more than 512 buckets: 64 MiB of 64 KiB.
run /usr/sbin/make-bcache -b 64k -C "$cache" -B /dev/mapper/btdelay
for d in "$cache" /dev/mapper/btdelay; do
	echo "+ echo $d > /sys/fs/bcache/register"
	echo "$d" >/sys/fs/bcache/register || fail "cannot register $d"
done
i=0
while [ ! -b /dev/bcache0 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -b /dev/bcache0 ] || fail "no /dev/bcache0"
B=/sys/block/bcache0/bcache
i=0
while [ "$(cat $B/state)" = "no cache" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
echo "# bcache0: state $(cat $B/state), mode $(cat $B/cache_mode)"
[ "$(cat $B/state)" != "no cache" ] || fail "bcache0 has no cache"
echo writethrough >$B/cache_mode || fail "cannot set writethrough"
# Every write goes to the cache and the backing device: no sequential bypass.
echo 0 >$B/sequential_cutoff
dev=/dev/bcache0

bt attach $dev
write_direct $dev $((100 * 4096)) 4096
bt checkpoint $dev
bt commit $dev

echo "# ---- a write held in flight by dm-delay across CHECKPOINT and COMMIT"
run dmsetup suspend btdelay
run dmsetup reload btdelay --table "$(delay_table 3000)"
run dmsetup resume btdelay
held_write $dev $((200 * 4096)) 4096
run dmsetup suspend btdelay
run dmsetup reload btdelay --table "$(delay_table 0)"
run dmsetup resume btdelay

comp=$(status_get $dev completions)
echo "# completions: $comp"
if [ "$comp" = partial ]; then
	blktrack status $dev --json | grep -q '"completions": *"partial"' ||
		fail "status --json does not say completions partial"
	R=$BT_TMP/repo
	bt init --repo "$R"
	echo "+ blktrack backup $dev --repo $R (no filesystem to freeze)"
	blktrack backup $dev --repo "$R" >"$BT_TMP/out" 2>&1 &&
		{ cat "$BT_TMP/out"; fail "backup succeeded"; }
	cat "$BT_TMP/out"
	grep -q "completions: partial" "$BT_TMP/out" || fail "no reason given"
	assert_eq "backups" "$(blktrack list --repo "$R" --json | grep -c '"id"')" 0
	ok "a checkpoint that cannot be exact is refused"
	# With its filesystem frozen around the checkpoint, the backup is exact.
	run mkfs_ext4 -q -F $dev
	mkdir -p "$BT_TMP/mnt"
	run mount $dev "$BT_TMP/mnt"
	run dd if=/dev/urandom of="$BT_TMP/mnt/f" bs=1M count=2 status=none
	bt backup $dev --repo "$R" --snapshot freeze
	run umount "$BT_TMP/mnt"
else
	# Covered: its completion marked the active map again.
	check_changes $dev 4096 --active
fi
bt detach $dev
check_no_leak

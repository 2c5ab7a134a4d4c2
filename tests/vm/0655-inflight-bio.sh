#!/bin/sh
# A write queued on a tracked bio-based device (dm) before a CHECKPOINT that
# lands after the backup committed: its queue mark is in the map the backup
# consumed, so only its completion (block_bio_complete) can put it in the
# next one. A suspended dm device holds the writes: `dmsetup suspend
# --noflush` queues them, `dmsetup resume` sends them down after the COMMIT.
# One write straddles the boundary of two linear targets: dm splits it and
# ends the original bio with only its second part left in bi_iter.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

loop=$(make_loop 64)
HALF=$((16 << 20))		# the second target starts here
printf '0 %d linear %s 0\n%d %d linear %s %d\n' \
	$((HALF / 512)) "$loop" $((HALF / 512)) $((HALF / 512)) "$loop" $((HALF / 512)) |
	dmsetup create bt-susp || fail "dmsetup create failed"
dm=/dev/mapper/bt-susp
[ -b $dm ] || fail "$dm did not appear"
bt attach $dm
expect_clear first
expect_clear second

# Completed before the checkpoint: the first map only.
write_direct $dm 0 4096
expect_write 0 4096 first

# wait_active RANGES: until the active map holds exactly these byte ranges
# (the queue marks of what was submitted): a loaded host is slow to submit.
wait_active() {
	local i=0
	while [ "$(blktrack changes $dm --active)" != "$1" ]; do
		if [ $i -ge 150 ]; then
			blktrack changes $dm --active | sed 's/^/# active: /'
			fail "not queued in 30 s: $(echo $1)"
		fi
		sleep 0.2
		i=$((i + 1))
	done
}

run dmsetup suspend --noflush bt-susp
write_direct $dm 1048576 4096 &
p1=$!
write_direct $dm $((HALF - 4096)) 8192 &	# split by dm at HALF
p2=$!
wait_active "$(printf '0 4096\n1048576 4096\n%d 8192' $((HALF - 4096)))"
sleep 0.5
alive $p1 && alive $p2 || fail "a write completed on the suspended device"
ok "two writes are queued and held by the suspended device"

bt checkpoint $dm
expect_write 1048576 4096 first
expect_write $((HALF - 4096)) 8192 first
check_changes $dm 4096 --pending first
bt commit $dm			# the backup has read and committed

run dmsetup resume bt-susp
wait $p1 || fail "the held write at 1 MiB failed"
wait $p2 || fail "the held write across the targets failed"
ok "the held writes landed after the commit"

# They landed after the backup: the next checkpoint must return them.
bt checkpoint $dm
expect_write 1048576 4096 second
expect_write $((HALF - 4096)) 8192 second
check_changes $dm 4096 --pending second
bt commit $dm
bt detach $dm
check_no_leak

#!/bin/sh
# An NVMe multipath head (CONFIG_NVME_MULTIPATH=y: every fabrics or shared
# namespace) is bio-based and moves each bio in place to a path disk, where
# it completes as a request: no completion of the head is ever traced. The
# tracker learns the path from block_bio_remap (an alias of the head) and
# marks the head when a path completes, so a write in flight across
# CHECKPOINT and COMMIT is in the next map. The namespace is served by
# nvmet from a dm-delay device (loop transport on 6.12, TCP on 127.0.0.1
# on 6.1, which has no nvme-loop), whose write delay holds the write.
. /blktrack/tests/vm/lib/testlib.sh
CFG=/sys/kernel/config/nvmet
NQN=blktrack-test
cleanup_nvme() {
	detach_all
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = $NQN ] && echo 1 >"$c/delete_controller"
	done
	rm -f $CFG/ports/1/subsystems/$NQN 2>/dev/null
	rmdir $CFG/ports/1 2>/dev/null
	echo 0 >$CFG/subsystems/$NQN/namespaces/1/enable 2>/dev/null
	rmdir $CFG/subsystems/$NQN/namespaces/1 $CFG/subsystems/$NQN 2>/dev/null
	cleanup_all
}
trap cleanup_nvme EXIT

load_kmod dm-delay
load_kmod nvmet
if grep -q "/nvme-loop.ko " /etc/blktrack-extra-modules; then
	load_kmod nvme-loop
	transport=loop
else
	load_kmod nvmet-tcp
	load_kmod nvme-tcp
	run ip link set lo up
	transport=tcp
fi
grep -q ' /sys/kernel/config ' /proc/mounts || run mount -t configfs none /sys/kernel/config

# The namespace: a dm-delay device over a loop device, no delay yet.
lower=$(make_loop 32)
sects=$((32 << 11))
delay_table() {
	echo "0 $sects delay $lower 0 0 $lower 0 $1"
}
run dmsetup create btdelay --table "$(delay_table 0)"

run mkdir $CFG/subsystems/$NQN
echo 1 >$CFG/subsystems/$NQN/attr_allow_any_host
run mkdir $CFG/subsystems/$NQN/namespaces/1
echo -n /dev/mapper/btdelay >$CFG/subsystems/$NQN/namespaces/1/device_path
echo 1 >$CFG/subsystems/$NQN/namespaces/1/enable || fail "cannot enable the namespace"
run mkdir $CFG/ports/1
echo $transport >$CFG/ports/1/addr_trtype
if [ $transport = tcp ]; then
	echo ipv4 >$CFG/ports/1/addr_adrfam
	echo 127.0.0.1 >$CFG/ports/1/addr_traddr
	echo 4420 >$CFG/ports/1/addr_trsvcid
	opts="transport=tcp,traddr=127.0.0.1,trsvcid=4420,nqn=$NQN"
else
	opts="transport=loop,nqn=$NQN"
fi
run ln -s $CFG/subsystems/$NQN $CFG/ports/1/subsystems/$NQN
echo "+ echo $opts > /dev/nvme-fabrics"
echo "$opts" >/dev/nvme-fabrics || fail "cannot connect to $NQN"

# The head: the namespace disk of the subsystem, without a blk-mq queue.
head=
for i in $(seq 1 50); do
	for s in /sys/class/nvme-subsystem/*; do
		[ "$(cat "$s/subsysnqn" 2>/dev/null)" = $NQN ] || continue
		for d in "$s"/nvme*n1; do
			[ -e "$d" ] && head=${d##*/}
		done
	done
	[ -n "$head" ] && [ -b /dev/$head ] && break
	sleep 0.1
done
[ -n "$head" ] && [ -b /dev/$head ] || fail "no namespace head for $NQN"
[ -d /sys/block/$head/mq ] && fail "/dev/$head is request-based: not a multipath head"
ok "/dev/$head is a bio-based multipath head over $transport"
dev=/dev/$head

bt attach "$dev"
write_direct "$dev" $((100 * 4096)) 4096
bt checkpoint "$dev"
bt commit "$dev"
assert_status "$dev" completions seen

echo "# ---- a write held in flight by dm-delay across CHECKPOINT and COMMIT"
run dmsetup suspend btdelay
# 3 s, or longer on a slow debug kernel (BT_SLOW: init.sh).
run dmsetup reload btdelay --table "$(delay_table $((3000 * ${BT_SLOW:-1})))"
run dmsetup resume btdelay
held_write "$dev" $((200 * 4096)) 4096
# Its completion, on the path disk, marks the head's active map again.
check_changes "$dev" 4096 --active
assert_status "$dev" completions seen
run dmsetup suspend btdelay
run dmsetup reload btdelay --table "$(delay_table 0)"
run dmsetup resume btdelay

echo "# ---- more paths than the tracker keeps: completions partial, no fuzzy backup"
for i in $(seq 1 8); do
	echo "$opts,duplicate_connect" >/dev/nvme-fabrics || fail "connection $i failed"
done
subsys=
for s in /sys/class/nvme-subsystem/*; do
	[ "$(cat "$s/subsysnqn" 2>/dev/null)" = $NQN ] && subsys=$s
done
echo round-robin >"$subsys/iopolicy" || fail "cannot set round-robin"
paths=$(ls -d "$subsys"/nvme*/ 2>/dev/null | grep -c 'nvme[0-9]*/$')
[ "$paths" -ge 9 ] || fail "$paths controllers, wanted 9"
for i in $(seq 0 63); do
	write_direct "$dev" $(((300 + i) * 4096)) 4096
done
assert_status "$dev" completions partial
blktrack status "$dev" --json | grep -q '"completions": *"partial"' ||
	fail "status --json does not say completions partial"
R=$BT_TMP/repo
bt init --repo "$R"
echo "+ blktrack backup $dev --repo $R (no filesystem to freeze)"
blktrack backup "$dev" --repo "$R" >"$BT_TMP/out" 2>&1 && { cat "$BT_TMP/out"; fail "backup succeeded"; }
cat "$BT_TMP/out"
grep -q "completions: partial" "$BT_TMP/out" || fail "no reason given"
assert_status "$dev" pending no
assert_eq "backups" "$(blktrack list --repo "$R" --json | grep -c '"id"')" 0
ok "a checkpoint that cannot be exact is refused"
# With its filesystem frozen around the checkpoint, the backup is exact.
run mkfs_ext4 -q -F "$dev"
mnt=$BT_TMP/mnt
mkdir -p "$mnt"
run mount "$dev" "$mnt"
run dd if=/dev/urandom of="$mnt/f" bs=1M count=2 status=none
run sync
bt backup "$dev" --repo "$R" --snapshot freeze
ok "a backup with the filesystem frozen is taken"
run umount "$mnt"
bt detach "$dev"
check_no_leak

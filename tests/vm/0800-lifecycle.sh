#!/bin/sh
# Lifecycle: detach while fio writes; rmmod while fio writes on a tracked
# device; losetup -d of a tracked loop device; rmmod with volumes attached
# (one with a pending checkpoint). No oops, no leak: the allocation counter
# is back to 0 after every detach and the module never reports a leak.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

setup_disk
sync

# fio_bg DEV SECONDS: 4k random O_DIRECT writes in the background.
fio_bg() {
	echo "+ fio randwrite on $1 for ${2}s (background)"
	fio --name=lifecycle --filename="$1" --rw=randwrite --bs=4k --direct=1 \
		--ioengine=psync --size=32M --time_based --runtime="$2" \
		>"$BT_TMP/fio.out" 2>&1 &
	FIO_PID=$!
}

# wait_dirty DEV: wait until fio's writes show in the active map (fio starts
# slowly under TCG).
wait_dirty() {
	local i=0 n
	while [ $i -lt 60 ]; do
		n=$(status_get "$1" active_dirty)
		if [ "$n" -gt 0 ]; then
			ok "fio's writes tracked: $n dirty blocks"
			return 0
		fi
		kill -0 $FIO_PID 2>/dev/null || { cat "$BT_TMP/fio.out"; fail "fio ended early"; }
		sleep 0.5
		i=$((i + 1))
	done
	fail "fio's writes were not tracked on $1 within 30 s"
}

fio_wait() {
	wait $FIO_PID
	rc=$?
	[ $rc = 0 ] || { cat "$BT_TMP/fio.out"; fail "fio exited $rc"; }
	ok "fio finished: $(grep -o 'IOPS=[^,]*' "$BT_TMP/fio.out" | head -n 1)"
}

echo "# ---- detach while fio writes"
bt attach /dev/vda1
fio_bg /dev/vda1 8
wait_dirty /dev/vda1
bt status /dev/vda1
bt detach /dev/vda1
fio_wait
check_no_leak

echo "# ---- checkpoint, then detach with a pending map, while fio writes"
bt attach /dev/vda1
fio_bg /dev/vda1 8
wait_dirty /dev/vda1
bt checkpoint /dev/vda1
sleep 1
assert_status /dev/vda1 pending yes
bt detach /dev/vda1
fio_wait
check_no_leak

echo "# ---- rmmod while fio writes on a tracked device"
bt attach /dev/vda1
fio_bg /dev/vda1 8
wait_dirty /dev/vda1
echo "+ rmmod blktrack"
if rmmod blktrack; then
	ok "rmmod with an attached volume under writes succeeded"
	module_loaded && fail "blktrack still in /proc/modules after rmmod"
else
	ok "rmmod refused cleanly"
	module_loaded || fail "rmmod failed but the module is gone"
fi
fio_wait
if module_loaded; then
	bt detach /dev/vda1
	run rmmod blktrack
fi
dmesg | grep -q leaked && { dmesg | grep leaked; fail "module exit reported a leak"; }
load_module
assert_eq "volumes attached after reload" "$(attached | wc -l)" 0
check_no_leak

echo "# ---- losetup -d of a tracked loop device"
loop=$(make_loop 16)
bt attach "$loop"
write_direct "$loop" 0 4096
run losetup -d "$loop"
sleep 0.5
echo "+ blktrack status $loop (after losetup -d)"
blktrack status "$loop"
echo "# exit $?"
write_at "$loop" 8192 4096 conv=fsync 2>/dev/null && echo "# loop still writable"
echo "+ blktrack detach $loop"
blktrack detach "$loop"
rc=$?
echo "# detach exit $rc"
[ $rc = 0 ] || [ $rc = 1 ] || fail "detach after losetup -d exited $rc"
[ -z "$(attached | grep -F "$loop")" ] || fail "$loop is still attached"
ok "$loop is no longer attached"
sleep 0.5
[ -e "/sys/block/${loop##*/}/loop/backing_file" ] &&
	fail "$loop still has a backing file after detach"
ok "$loop was released"
check_no_leak

echo "# ---- rmmod with volumes attached, one with a pending checkpoint"
loop=$(make_loop 16)
bt attach /dev/vda1
bt attach /dev/vda2 --block-size 1048576
bt attach "$loop"
write_direct /dev/vda1 0 65536
write_direct "$loop" 4096 4096
bt checkpoint /dev/vda1
write_direct /dev/vda1 65536 4096
run rmmod blktrack
module_loaded && fail "blktrack still loaded"
dmesg | grep -q leaked && { dmesg | grep leaked; fail "module exit reported a leak"; }
ok "module unloaded with 3 volumes attached, no leak reported"
load_module
assert_eq "volumes attached after reload" "$(attached | wc -l)" 0
bt attach /dev/vda1
assert_status /dev/vda1 epoch 0
check_empty /dev/vda1 --active
bt detach /dev/vda1
check_no_leak

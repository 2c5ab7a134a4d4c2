#!/bin/sh
# Writes that never become a bio: on 6.1, swap-out to a brd (and zram, pmem)
# goes through bdev_write_page() and the driver's ->rw_page, which no block
# tracepoint sees; the tracker's kretprobe on bdev_write_page() marks them.
# (6.12 has no ->rw_page: swap-out is bios.) A memory cgroup too small for
# a tmpfs file of random data pushes its pages out to a tracked brd swap
# device; the map must hold exactly the device's non-zero blocks (the swap
# header, written by mkswap before the attach, excepted). Twice, on a fresh
# brd each time: the kretprobe goes with the last volume detached, and the
# next attach must hook it again.
. /blktrack/tests/vm/lib/testlib.sh
cleanup_swap() {
	swap_cleanup /dev/ram0
	cleanup_all
	rmmod brd 2>/dev/null
}
trap cleanup_swap EXIT

round() {
	load_kmod brd rd_nr=1 rd_size=65536
	dev=/dev/ram0
	[ -b $dev ] || fail "no $dev"
	run mkswap $dev
	bt attach $dev
	swap_out_check $dev
	assert_status $dev state tracking
	bt detach $dev
}

round
run rmdir $SWAP_CG
run rmmod brd
round
check_no_leak

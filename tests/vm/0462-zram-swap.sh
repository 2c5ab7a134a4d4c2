#!/bin/sh
# Swap on a tracked zram device: on 6.1 swap-out reaches zram through
# bdev_write_page() and ->rw_page (no bio: the kretprobe marks it, as for
# brd in 0460); on 6.12 as bios, which zram ends itself (block_bio_complete).
# A memory cgroup too small for a tmpfs file of random data pushes its pages
# out; the map must hold exactly the device's non-zero blocks (zram reads
# back zeros where nothing was written; the swap header, written before the
# attach, excepted).
. /blktrack/tests/vm/lib/testlib.sh
cleanup_zram() {
	swap_cleanup /dev/zram0
	cleanup_all
	rmmod zram 2>/dev/null
}
trap cleanup_zram EXIT

# 6.1's default compressor is a module the kernel cannot load here.
grep -q "/lzo-rle.ko " /etc/blktrack-extra-modules && load_kmod lzo-rle
load_kmod zram num_devices=1
dev=/dev/zram0
[ -b $dev ] || fail "no $dev"
echo 128M >/sys/block/zram0/disksize || fail "cannot size $dev"
run mkswap $dev
bt attach $dev
swap_out_check $dev
assert_status $dev state tracking
bt detach $dev
check_no_leak

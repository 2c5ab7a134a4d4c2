#!/bin/sh
# dd writes at offsets and sizes of all kinds; `changes --pending` after a
# checkpoint is exactly the set of blocks written; commit; a second round;
# then the same at a 64 KiB block size.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

setup_disk
dev=/dev/vda1
last=$((P1_SIZE - 1))

# One round of writes of every kind; argument: a base offset.
writes() {
	b=$1
	write_at $dev $((b + 5000)) 100		# sub-block, unaligned
	expect_write $((b + 5000)) 100
	write_at $dev $((b + 8190)) 10		# spans a block boundary
	expect_write $((b + 8190)) 10
	write_at $dev $((b + 40960)) 4096	# one aligned block
	expect_write $((b + 40960)) 4096
	write_direct $dev $((b + 1048576)) 8192	# O_DIRECT, two blocks
	expect_write $((b + 1048576)) 8192
	write_direct $dev $((b + 2097152 + 512)) 512	# O_DIRECT, one sector
	expect_write $((b + 2097152 + 512)) 512
	write_at $dev $((b + 3145727)) 2		# 1 + 1 byte on two blocks
	expect_write $((b + 3145727)) 2
	write_at $dev $((b + 4194404)) 200000 conv=fsync	# buffered + fsync, many blocks
	expect_write $((b + 4194404)) 200000
	write_direct $dev $((b + 8388608)) 65536 oflag=dsync	# O_DIRECT|O_DSYNC
	expect_write $((b + 8388608)) 65536
}

sync
bt attach $dev
expect_clear
writes 0
write_at $dev $((last - 95)) 96		# the partition's last bytes
expect_write $((last - 95)) 96
run sync
check_changes $dev 4096 --active
bt checkpoint $dev
assert_status $dev pending yes
assert_status $dev epoch 0
check_changes $dev 4096 --pending
check_empty $dev --active
npend=$(_to_blocks 4096 <"$(expect_file)" | awk '{ n += $2 - $1 + 1 } END { print n }')
assert_status $dev pending_dirty "$npend"
assert_status $dev active_dirty 0
bt commit $dev
assert_status $dev epoch 1
assert_status $dev pending no
assert_status $dev pending_dirty 0

# Second round, on the new map: other offsets, overlapping the first.
expect_clear
writes 12288
write_at $dev 0 1
expect_write 0 1
run sync
bt checkpoint $dev
check_changes $dev 4096 --pending
bt commit $dev
assert_status $dev epoch 2
bt detach $dev

# 64 KiB blocks: the same writes, rounded out to 64 KiB.
bt attach $dev --block-size 65536
assert_status $dev block_size 65536
expect_clear
writes 300032
run sync
bt checkpoint $dev
check_changes $dev 65536 --pending
bt commit $dev
assert_status $dev epoch 1
bt detach $dev
check_no_leak

#!/bin/sh
# The `make demo` script, run by the guest init: the main job of blktrack on
# a virtio disk, narrated.
. /blktrack/tests/vm/lib/testlib.sh

say() {
	echo
	echo "=== $*"
}

show() {
	echo "\$ $*"
	"$@" || fail "$* exited $?"
}

say "blktrack demo on Linux $(uname -r): a fresh 256 MiB virtio disk, /dev/vda"
echo "blktrack.ko is loaded: $(grep '^blktrack ' /proc/modules | cut -d' ' -f1-2)"

say "Start tracking the whole disk (4 KiB blocks)"
show blktrack attach /dev/vda
show blktrack status /dev/vda

say "Write a few things: 100 bytes at 5000, 1 MiB at 64 MiB (O_DIRECT), 1 byte at 200 MiB"
show dd if=/dev/urandom of=/dev/vda bs=100 count=1 seek=5000 oflag=seek_bytes conv=notrunc status=none
show dd if=/dev/urandom of=/dev/vda bs=1M count=1 seek=64 oflag=direct status=none
show dd if=/dev/urandom of=/dev/vda bs=1 count=1 seek=$((200 << 20)) conv=notrunc,fsync status=none
show sync
echo "The active map now holds the changed blocks:"
show blktrack changes /dev/vda --active

say "Backup point: checkpoint swaps in a fresh map; the old one is pending"
show blktrack checkpoint /dev/vda
show blktrack status /dev/vda

say "What a backup of this checkpoint must copy (offset length, bytes):"
show blktrack changes /dev/vda --pending
show blktrack changes /dev/vda --pending --json

say "Meanwhile new writes go to the new active map"
show dd if=/dev/urandom of=/dev/vda bs=4096 count=3 seek=1000 oflag=direct status=none
show blktrack changes /dev/vda --active

say "The admin's view: blktrack-dump"
show blktrack-dump

say "The backup succeeded: commit drops the pending map, the epoch moves on"
show blktrack commit /dev/vda
show blktrack status /dev/vda

say "Stop tracking"
show blktrack detach /dev/vda
echo "live allocations in the module: $(allocations)"
say "Backups: ext4 on a 32 MiB loop device, a repository in /tmp/repo"
loop=$(make_loop 32)
show mkfs_ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$loop"
mkdir -p /mnt/demo
show mount -t ext4 "$loop" /mnt/demo
show blktrack attach "$loop"
echo "A repository is created once, in an empty directory"
show blktrack init --repo /tmp/repo
show dd if=/dev/urandom of=/mnt/demo/file1 bs=64K count=16 status=none
echo "Freeze the filesystem around each backup: a consistent image"
show fsfreeze -f /mnt/demo
show blktrack backup "$loop" --repo /tmp/repo
show fsfreeze -u /mnt/demo
show dd if=/dev/urandom of=/mnt/demo/file2 bs=4K count=10 status=none
show fsfreeze -f /mnt/demo
want=$(dd if="$loop" bs=1M iflag=direct status=none | /usr/bin/sha256sum | cut -d" " -f1)
show blktrack backup "$loop" --repo /tmp/repo
show fsfreeze -u /mnt/demo
show blktrack list --repo /tmp/repo
show blktrack restore --repo /tmp/repo /tmp/restored.img
got=$(/usr/bin/sha256sum </tmp/restored.img | cut -d' ' -f1)
echo "sha256 of the volume at the incremental: $want"
echo "sha256 of the restored image:            $got"
[ "$want" = "$got" ] || fail "the restored image differs"
echo "The full + incremental chain restores the volume bit-exactly."
show blktrack verify --repo /tmp/repo
show blktrack-dump repo /tmp/repo
show umount /mnt/demo
show blktrack detach "$loop"
losetup -d "$loop"

say "demo done"

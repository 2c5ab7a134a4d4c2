#!/bin/sh
# Host side, between two boots: change the label of the XFS on /dev/vda2
# (from 65 MiB into the disk image $1) with xfs_db, without mounting it.
set -e
part=$1.vda2
dd if="$1" of="$part" bs=1M skip=65 status=none
xfs_db -x -c "sb 0" -c 'write fname "fromhost"' "$part"
dd if="$part" of="$1" bs=1M seek=65 conv=notrunc,sparse status=none
rm -f "$part"

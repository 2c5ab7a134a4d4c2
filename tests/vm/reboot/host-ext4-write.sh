#!/bin/sh
# Host side, between two boots: write a file into the ext4 of /dev/vda1 (1 MiB
# into the disk image $1) with debugfs, without mounting it.
set -e
echo "written from the host" >"$1.hostfile"
debugfs -w -R "write $1.hostfile from-the-host" "$1?offset=1048576"
rm -f "$1.hostfile"

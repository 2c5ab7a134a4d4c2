# Helpers for the VM tests (guest side, busybox sh). Source it first:
#
#	. /blktrack/tests/vm/lib/testlib.sh
#	setup_disk                          # /dev/vda1 (64 MiB at 1 MiB), /dev/vda2
#	bt attach /dev/vda1
#	write_at /dev/vda1 5000 100         # dd 100 bytes at byte 5000 ...
#	expect_write 5000 100               # ... and record them in the expected set
#	sync; bt checkpoint /dev/vda1
#	check_changes /dev/vda1 4096        # `changes --pending` == expected blocks
#	detach_all; check_no_leak
#
# A failed check prints "not ok - ..." and exits 1; `ok` prints progress.
# The expected set is what the test itself wrote, rounded out to blocks.

set -u
export PATH=/blktrack/build:/usr/sbin:/usr/bin:/sbin:/bin
BT_TOP=${BT_TOP:-/blktrack}
BT_KO=$BT_TOP/kmod/blktrack.ko
BT_TMP=${BT_TMP:-/tmp/bt.$$}
mkdir -p "$BT_TMP"
EXPECT_SET=main
ALLOC_FILE=/sys/kernel/debug/blktrack/allocations

# Host tools by absolute path: busybox's shell would run its own applets.
losetup() { /usr/sbin/losetup "$@"; }
blkdiscard() { /usr/sbin/blkdiscard "$@"; }
fallocate() { /usr/bin/fallocate "$@"; }
sfdisk() { /usr/sbin/sfdisk "$@"; }
blockdev() { /usr/sbin/blockdev "$@"; }
dd() { /usr/bin/dd "$@"; }
fsfreeze() { /usr/sbin/fsfreeze "$@"; }
mkfs_ext4() { /usr/sbin/mkfs.ext4 "$@"; }
mkfs_xfs() { /usr/sbin/mkfs.xfs "$@"; }
dmsetup() { DM_DISABLE_UDEV=1 /usr/sbin/dmsetup --noudevsync "$@"; }
fio() { /usr/bin/fio "$@"; }
setpriv() { /usr/bin/setpriv "$@"; }

fail() {
	echo "not ok - $*"
	exit 1
}

ok() {
	echo "ok - $*"
}

skip() {
	echo "skip - $*"
	exit 0
}

# Run a command, echo it, fail the test if it fails.
run() {
	echo "+ $*"
	"$@" || fail "command failed (rc $?): $*"
}

# blktrack CLI; fails the test on a nonzero exit.
bt() {
	echo "+ blktrack $*"
	blktrack "$@" || fail "blktrack $* exited $?"
}

# blktrack CLI that must fail with exit code $1.
bt_fails() {
	local want=$1 got
	shift
	echo "+ blktrack $* (must fail with $want)"
	blktrack "$@"
	got=$?
	[ "$got" = "$want" ] || fail "blktrack $*: exit $got, wanted $want"
}

# Value of KEY in `blktrack status DEV`.
status_get() {
	blktrack status "$1" >"$BT_TMP/status" || fail "blktrack status $1 failed"
	sed -n "s/^$2: *//p" "$BT_TMP/status" | head -n 1
}

# assert_eq WHAT GOT WANT
assert_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', wanted '$3'"
	ok "$1 = $3"
}

assert_status() {
	assert_eq "status $1 $2" "$(status_get "$1" "$2")" "$3"
}

# ---- the disk --------------------------------------------------------------

P1_START=$((1 << 20))		# bytes, on /dev/vda
P1_SIZE=$((64 << 20))
P2_START=$((P1_START + P1_SIZE))

# Partition /dev/vda (p1 at 1 MiB, 64 MiB; p2 after it) unless already done.
setup_disk() {
	[ -b /dev/vda ] || fail "no /dev/vda"
	if [ ! -b /dev/vda1 ] || [ ! -b /dev/vda2 ]; then
		printf 'label: dos\nstart=%d, size=%d, type=83\nstart=%d, type=83\n' \
			$((P1_START / 512)) $((P1_SIZE / 512)) $((P2_START / 512)) |
			sfdisk --quiet --no-reread /dev/vda >/dev/null 2>&1 ||
			fail "sfdisk /dev/vda failed"
		blockdev --rereadpt /dev/vda || fail "rereadpt /dev/vda failed"
		local i=0
		while [ ! -b /dev/vda2 ] && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	fi
	[ -b /dev/vda1 ] && [ -b /dev/vda2 ] || fail "partitions did not appear"
}

# Create a loop device over a file in tmpfs of $1 MiB; prints its path.
make_loop() {
	local f
	f=$(mktemp /tmp/loop.XXXXXX)
	truncate -s "${1}M" "$f"
	losetup --show -f "$f" || fail "losetup $f failed"
}

# ---- writes and the expected set -------------------------------------------

# write_at DEV OFFSET LEN [DD-FLAGS...]: write LEN random bytes at OFFSET.
write_at() {
	local dev=$1 off=$2 len=$3
	shift 3
	dd if=/dev/urandom of="$dev" bs="$len" count=1 seek="$off" \
		iflag=fullblock oflag=seek_bytes conv=notrunc "$@" status=none ||
		fail "dd of=$dev seek=$off len=$len $* failed"
}

# write_direct DEV OFFSET LEN [DD-FLAGS...]: O_DIRECT write (OFFSET, LEN
# multiples of 512).
write_direct() {
	local dev=$1 off=$2 len=$3
	shift 3
	write_at "$dev" "$off" "$len" oflag=direct "$@"
}

expect_file() {
	echo "$BT_TMP/expect.${1:-$EXPECT_SET}"
}

# expect_clear [SET]: empty the expected set.
expect_clear() {
	: >"$(expect_file "${1:-}")"
}

# expect_write OFFSET LEN [SET]: the test wrote LEN bytes at OFFSET.
expect_write() {
	[ "$2" -gt 0 ] || fail "expect_write with length $2"
	echo "$1 $2" >>"$(expect_file "${3:-}")"
}

# Byte extents (OFFSET LENGTH lines) on stdin -> merged block ranges
# (FIRST LAST lines) for block size $1.
_to_blocks() {
	awk -v bs="$1" 'NF == 2 { f = int($1 / bs); l = int(($1 + $2 - 1) / bs); printf "%d %d\n", f, l }' |
		sort -n -k1,1 -k2,2 |
		awk 'NR == 1 { f = $1; l = $2; next }
		     $1 <= l + 1 { if ($2 > l) l = $2; next }
		     { printf "%d %d\n", f, l; f = $1; l = $2 }
		     END { if (NR) printf "%d %d\n", f, l }'
}

# Block-level difference of two range files: what $1 has that $2 lacks.
_range_minus() {
	awk -v other="$2" '
		BEGIN { while ((getline line < other) > 0) { split(line, a, " ");
			for (b = a[1]; b <= a[2]; b++) o[b] = 1 } }
		{ for (b = $1; b <= $2; b++) if (!(b in o)) {
			if (s != "" && b == e + 1) e = b
			else { if (s != "") print s "-" e; s = b; e = b } } }
		END { if (s != "") print s "-" e }' "$1"
}

# check_changes DEV BLOCKSIZE [--pending|--active] [SET]
# `blktrack changes DEV MODE` must list exactly the blocks of SET, as extents
# that are sorted, merged and not empty.
check_changes() {
	local dev=$1 bs=$2 mode=${3:---pending} set=${4:-$EXPECT_SET}
	local exp
	exp=$(expect_file "$set")
	[ -f "$exp" ] || : >"$exp"
	blktrack changes "$dev" "$mode" >"$BT_TMP/changes.raw" ||
		fail "blktrack changes $dev $mode exited $?"
	awk 'NF != 2 || $1 !~ /^[0-9]+$/ || $2 !~ /^[1-9][0-9]*$/ {
		print "bad line: " $0; bad = 1; next }
	     NR > 1 && $1 <= end { print "not sorted and merged: " $0 " after end " end; bad = 1 }
	     { end = $1 + $2 }
	     END { exit bad }' "$BT_TMP/changes.raw" || {
		cat "$BT_TMP/changes.raw"
		fail "changes $dev $mode: malformed output"
	}
	_to_blocks "$bs" <"$exp" >"$BT_TMP/exp.blocks"
	_to_blocks "$bs" <"$BT_TMP/changes.raw" >"$BT_TMP/got.blocks"
	if ! cmp -s "$BT_TMP/exp.blocks" "$BT_TMP/got.blocks"; then
		echo "# changes $dev $mode (block size $bs), raw output:"
		sed 's/^/#   /' "$BT_TMP/changes.raw"
		echo "# expected block ranges:"
		sed 's/^/#   /' "$BT_TMP/exp.blocks"
		echo "# missing blocks (written, not reported):"
		_range_minus "$BT_TMP/exp.blocks" "$BT_TMP/got.blocks" | sed 's/^/#   /'
		echo "# extra blocks (reported, not written):"
		_range_minus "$BT_TMP/got.blocks" "$BT_TMP/exp.blocks" | sed 's/^/#   /'
		fail "changes $dev $mode differ from the blocks written"
	fi
	ok "changes $dev $mode = $(wc -l <"$BT_TMP/exp.blocks") range(s) written, block size $bs"
}

# check_empty DEV [--active|--pending]
check_empty() {
	local dev=$1 mode=${2:---active}
	blktrack changes "$dev" "$mode" >"$BT_TMP/changes.raw" ||
		fail "blktrack changes $dev $mode exited $?"
	if [ -s "$BT_TMP/changes.raw" ]; then
		sed 's/^/#   /' "$BT_TMP/changes.raw"
		fail "changes $dev $mode is not empty"
	fi
	ok "changes $dev $mode is empty"
}

# ---- module, leaks, cleanup ------------------------------------------------

allocations() {
	cat "$ALLOC_FILE" 2>/dev/null || echo "unreadable"
}

# No volume attached: the allocation counter must be back to 0.
check_no_leak() {
	assert_eq "live allocations ($ALLOC_FILE)" "$(allocations)" 0
	if dmesg | grep -q 'leaked'; then
		dmesg | grep 'leaked'
		fail "the kernel log reports leaked allocations"
	fi
}

# Devices attached now, one per line.
attached() {
	blktrack status 2>/dev/null | sed -n 's/^device: *//p'
}

detach_all() {
	local d
	for d in $(attached); do
		blktrack detach "$d" || echo "# detach $d failed"
	done
}

module_loaded() {
	grep -q '^blktrack ' /proc/modules
}

load_module() {
	module_loaded || run insmod "$BT_KO" "$@"
	[ -c /dev/blktrack-ctl ] || fail "/dev/blktrack-ctl missing after insmod"
}

# Load an on-demand kernel module (null_blk...) with its dependencies.
load_kmod() {
	local name=$1 line ko m
	shift
	line=$(grep "/$name.ko " /etc/blktrack-extra-modules) || fail "no module $name"
	for ko in $line; do
		m=${ko##*/}
		m=${m%.ko}
		grep -q "^$(echo "$m" | tr - _) " /proc/modules && continue
		if [ "${ko##*/}" = "$name.ko" ]; then
			run insmod "$ko" "$@"
		else
			# A CPU-specific variant (crc32c-intel) may find no such CPU
			# under TCG: the generic code serves then.
			insmod "$ko" 2>/dev/null || echo "# $m: not loaded (no such device?)"
		fi
	done
}

# Best-effort cleanup at exit: detach everything, remove dm and loop devices,
# drop the reference images of ref_image_sha (/tmp is a 256 MiB tmpfs that
# the tests of one boot share).
cleanup_all() {
	local n
	rm -f "$BT_TMP"/ref.*
	detach_all
	for n in $(dmsetup ls 2>/dev/null | awk '$1 != "No" { print $1 }'); do
		dmsetup remove "$n" >/dev/null 2>&1
	done
	losetup -D 2>/dev/null
}

# ---- processes, the kernel log ----------------------------------------------

# alive PID: the process runs (a zombie the shell has not reaped does not).
alive() {
	[ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null
}

# wait_exit PID SECS WHAT: wait for a child of this shell, at most SECS
# seconds (a hang fails the test); returns its exit status.
wait_exit() {
	local i=0
	while alive "$1"; do
		[ $i -lt $(($2 * 10)) ] || fail "$3 still runs after $2 s: hung?"
		sleep 0.1
		i=$((i + 1))
	done
	wait "$1"
}

# The kernel log (since the test began) must be free of oopses, warnings,
# lockups, RCU stalls and hung tasks.
check_kernel_log() {
	if dmesg | grep -E 'Oops|BUG:|WARNING:|Call Trace|soft lockup|hung task|blocked for more than|detected stall|general protection'; then
		fail "the kernel logged a problem"
	fi
	ok "the kernel log is clean"
}

# ---- swap-out to a tracked device (0460, 0462, 0464) ------------------------

SWAP_CG=/sys/fs/cgroup/bttest

# swap_out_check DEV: DEV (mkswap'd before the attach, attached) becomes
# swap; 40 MiB of random data written into tmpfs from a memory cgroup of
# 16 MiB push pages out to it. After a checkpoint the pending map must be
# exactly DEV's non-zero blocks (the swap header excepted: it was written
# before the attach). Commits, then swapoff.
swap_out_check() {
	local dev=$1 out0 out
	run swapon "$dev"
	grep -q " /sys/fs/cgroup cgroup2 " /proc/mounts || run mount -t cgroup2 none /sys/fs/cgroup
	echo +memory >/sys/fs/cgroup/cgroup.subtree_control || fail "no memory controller"
	[ -d $SWAP_CG ] || run mkdir $SWAP_CG
	echo 16M >$SWAP_CG/memory.max
	out0=$(awk '$1 == "pswpout" { print $2 }' /proc/vmstat)
	mkdir -p "$BT_TMP/fill"
	echo "+ 40 MiB of random data into tmpfs, in a cgroup of 16 MiB"
	sh -c "echo \$\$ >$SWAP_CG/cgroup.procs &&
		exec dd if=/dev/urandom of=$BT_TMP/fill/data bs=1M count=40 status=none" ||
		fail "the fill failed"
	out=$(($(awk '$1 == "pswpout" { print $2 }' /proc/vmstat) - out0))
	[ "$out" -gt 256 ] || fail "only $out pages swapped out: the test proves nothing"
	ok "$out pages swapped out to $dev"
	bt checkpoint "$dev"
	expect_clear
	"$BT_TOP/build/vmprogs/nonzero" "$dev" 4096 4096 >"$(expect_file)" || fail "nonzero failed"
	check_changes "$dev" 4096 --pending
	bt commit "$dev"
	rm -rf "$BT_TMP/fill"
	run swapoff "$dev"
}

# swap_cleanup DEV: for an EXIT trap after swap_out_check.
swap_cleanup() {
	rm -rf "$BT_TMP/fill"
	swapoff "$1" 2>/dev/null
	rmdir $SWAP_CG 2>/dev/null
}

# ---- a write held in flight across CHECKPOINT and COMMIT (0440-0468) -----

# held_write DEV OFFSET LEN [RELEASE...]: with something below DEV holding
# writes (dm-delay, failed paths), write LEN bytes at OFFSET with O_DIRECT;
# once it is queued (in the active map), CHECKPOINT, check the pending map
# is exactly it, COMMIT while it is still held, run RELEASE (if given) and
# wait for the write to land. Its completion must then have marked the new
# active map: the caller checks `changes --active` (or what it expects).
held_write() {
	local dev=$1 off=$2 len=$3 pid i=0
	shift 3
	# One write of LEN bytes (one bio, split below as the device wants).
	dd if=/dev/urandom of="$dev" bs="$len" count=1 seek="$off" oflag=direct,seek_bytes \
		conv=notrunc status=none &
	pid=$!
	while [ "$(status_get "$dev" active_dirty)" = 0 ]; do
		[ $i -lt 100 ] || fail "the write never reached $dev"
		sleep 0.05
		i=$((i + 1))
	done
	sleep 0.5
	alive $pid || fail "the write completed before the checkpoint: nothing held it"
	bt checkpoint "$dev"
	expect_clear
	expect_write "$off" "$len"
	check_changes "$dev" 4096 --pending
	bt commit "$dev"
	alive $pid || fail "the write completed before COMMIT: the test proves nothing"
	[ $# = 0 ] || "$@"
	wait_exit $pid $((30 * ${BT_SLOW:-1})) "the held write" || fail "the held write failed"
}

# ---- snapshots (tests/vm/progs/snapread) ------------------------------------

SNAPREAD=$BT_TOP/build/vmprogs/snapread

# snap_status_get DEV KEY: a SNAP_STATUS counter of DEV.
snap_status_get() {
	"$SNAPREAD" status "$1" >"$BT_TMP/snapst" || fail "snapread status $1 failed"
	sed -n "s/^$2 //p" "$BT_TMP/snapst"
}

# snap_errno ERRNO SNAPREAD-ARGS...: snapread must fail with that errno.
snap_errno() {
	local want=$1
	shift
	"$SNAPREAD" "$@" >/dev/null 2>"$BT_TMP/snaperr" && fail "snapread $* succeeded"
	grep -q "^errno $want\$" "$BT_TMP/snaperr" ||
		{ cat "$BT_TMP/snaperr"; fail "snapread $*: wanted $want"; }
	ok "snapread $* -> $want"
}

# ---- backups of a filesystem (0950, 0960, 0970, reboot/) -------------------
# The helpers below use the test's $mnt (mount point of $BT_VOL, default
# /dev/vda1), $R (the repository) and $IMG (a scratch file for restores).

sha256sum() { /usr/bin/sha256sum "$@"; }
BT_VOL=${BT_VOL:-/dev/vda1}

vol_sha() {
	dd if=$BT_VOL bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}
# jfield FILE KEY: a number or string field of one-line JSON.
jfield() {
	sed -n "s/.*\"$2\": *\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"
}

POINTS=
# point NAME [BACKUP-OPTIONS...]: freeze, capture the volume's sha256 (and
# run $POINT_HOOK), back up, thaw. Records the backup id and sha under NAME.
point() {
	local name=$1 rc
	shift
	run fsfreeze -f $mnt
	vol_sha >"$BT_TMP/sha.$name"
	[ -z "${POINT_HOOK:-}" ] || $POINT_HOOK
	echo "+ blktrack backup $BT_VOL --repo $R --json $*"
	blktrack backup $BT_VOL --repo "$R" --json "$@" >"$BT_TMP/out.$name" \
		2>"$BT_TMP/err.$name"
	rc=$?
	fsfreeze -u $mnt
	cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
	[ $rc = 0 ] || fail "backup $name exited $rc"
	jfield "$BT_TMP/out.$name" backup >"$BT_TMP/id.$name"
	POINTS="$POINTS $name"
	ok "point $name: backup $(cat "$BT_TMP/id.$name"), $(jfield "$BT_TMP/out.$name" type)"
}

assert_field() {
	assert_eq "$1: $2" "$(jfield "$BT_TMP/out.$1" "$2")" "$3"
}

# rnd N: a random number in 0..N-1.
rnd() {
	echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1 ))
}

# write_files TAG: new files, a rewrite in place, a removal.
write_files() {
	dd if=/dev/urandom of=$mnt/new.$1 bs=4096 count=$(( $(rnd 64) + 1 )) status=none ||
		fail "write new.$1"
	dd if=/dev/urandom of=$mnt/big bs=4096 count=8 seek=$(rnd 256) \
		conv=notrunc status=none || fail "rewrite big"
	[ -f $mnt/small ] && rm $mnt/small
	echo "$1" >$mnt/small
	sync
}

# restore_point NAME: restore its backup to a fresh file, compare the sha256.
restore_point() {
	restore_compare "$R" "$(cat "$BT_TMP/id.$1")" "$1" "$IMG"
}

restore_all() {
	local p
	for p in $POINTS; do
		restore_point "$p"
	done
}


# setup_ext4 MNT: ext4 on /dev/vda1, mounted at MNT, holding a 2 MiB file "big".
setup_ext4() {
	setup_disk
	run mkfs_ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 /dev/vda1
	mkdir -p "$1"
	run mount -t ext4 /dev/vda1 "$1"
	dd if=/dev/urandom of="$1/big" bs=1M count=2 status=none || fail "write big"
	run sync
}

# restore_compare REPO ID NAME IMG: restore backup ID of REPO into the fresh
# file IMG; its sha256 must be the one the test captured in $BT_TMP/sha.NAME.
# On a mismatch the evidence is kept (the restored image against $BT_VOL as
# it is now), then the test fails. $RESTORE_HOOK, if set, runs
# with IMG after the restore (0995 corrupts it).
restore_compare() {
	local got want
	rm -f "$4"
	# Its output in a file: a failed restore says why (0990 and 0989 run
	# this with stderr to /dev/null).
	blktrack restore --repo "$1" --backup "$2" "$4" >"$BT_TMP/restore.out" 2>&1 || {
		got=$?
		cat "$BT_TMP/restore.out"
		df -k "$(dirname "$4")"
		fail "blktrack restore --repo $1 --backup $2 $4 exited $got"
	}
	[ -z "${RESTORE_HOOK:-}" ] || $RESTORE_HOOK "$4"
	got=$(sha256sum "$4" | cut -d' ' -f1)
	want=$(cat "$BT_TMP/sha.$3")
	[ "$got" = "$want" ] ||
		keep_evidence "backup $2 ($3) restored: sha256 $got, wanted $want" \
			"$4" "$BT_VOL" "$1" "$2"
	assert_eq "sha256 of backup $2 ($3) restored" "$got" "$want"
	rm -f "$4"
}

# attach_restore [ARGS...]: attach $BT_VOL --restore-state ARGS; the output
# in $BT_TMP/attach.
attach_restore() {
	echo "+ blktrack attach $BT_VOL --restore-state $*"
	blktrack attach $BT_VOL --restore-state "$@" >"$BT_TMP/attach" ||
		fail "attach --restore-state exited $?"
	cat "$BT_TMP/attach"
}

# ---- evidence of a failed comparison ---------------------------------------
# A bit-exact comparison that fails keeps what explains it on the evidence
# disk (a virtio disk with serial "btevidence", host.sh), mounted at
# /evidence on first use; the host copies it out after the boot into
# build/vm/evidence/KVER-DATE-TIME/. Without that disk: /tmp/evidence (lost
# with the VM, but the report still reaches the console).

EVIDENCE=/evidence
EVIDENCE_PROG=$BT_TOP/build/vmprogs/evidence

# evidence_mount: $EVIDENCE mounted (mkfs.ext4 of the disk the first time in
# a boot: no journal, so what a sync wrote is in place even after a power cut).
evidence_mount() {
	local s dev=''
	grep -q " $EVIDENCE " /proc/mounts && return 0
	for s in /sys/block/vd*/serial; do
		[ "$(cat "$s" 2>/dev/null)" = btevidence ] || continue
		dev=${s%/serial}
		dev=/dev/${dev##*/}
	done
	mkdir -p "$EVIDENCE"
	if [ -z "$dev" ]; then
		echo "# keep_evidence: no evidence disk; keeping it in /tmp (lost with the VM)"
	elif ! mkfs_ext4 -q -F -O ^has_journal "$dev" >/dev/null 2>&1 ||
	     ! mount -t ext4 "$dev" "$EVIDENCE"; then
		echo "# keep_evidence: $dev unusable; keeping it in /tmp (lost with the VM)"
		dev=
	fi
	[ -n "$dev" ] || { EVIDENCE=/tmp/evidence; mkdir -p "$EVIDENCE"; }
}

# keep_evidence WHAT RESTORED REFERENCE [REPO BACKUP_ID]: a comparison of
# RESTORED (an image file) with REFERENCE (a device or an image) failed.
# Keeps in $EVIDENCE/TEST-N/: info.txt (WHAT, the arguments, sha256s),
# restored.img, reference.img (a device read with O_DIRECT), repo/ (cp -a
# of REPO), dmesg.txt, status.json (blktrack status --json),
# dump-kernel.txt (blktrack-dump kernel), dump-repo.txt (blktrack-dump repo)
# and report.txt (progs/evidence: the first 16 differing blocks, both
# contents, which backup of BACKUP_ID's chain last wrote each, the count),
# also printed on the console; and a copy of each file $EVIDENCE_FILES
# lists (the test's logs). Never fails the test itself: the caller does.
keep_evidence() {
	local what=$1 img=$2 ref=$3 repo=${4:-} id=${5:-} name n=1 d bs='' f
	name=${0##*/}
	name=${name%.sh}
	evidence_mount
	while [ -e "$EVIDENCE/$name-$n" ]; do
		n=$((n + 1))
	done
	d=$EVIDENCE/$name-$n
	mkdir -p "$d"
	echo "# keep_evidence: $what"
	echo "# keep_evidence: kept in $d (host: build/vm/evidence/$(uname -r)-DATE-TIME/$name-$n)"
	if [ -b "$ref" ]; then
		dd if="$ref" of="$d/reference.img" bs=1M iflag=direct status=none ||
			echo "# keep_evidence: reading $ref failed"
		bs=$(blktrack status "$ref" 2>/dev/null | sed -n 's/^block_size: *//p')
	else
		cp "$ref" "$d/reference.img" || echo "# keep_evidence: copying $ref failed"
	fi
	cp "$img" "$d/restored.img" || echo "# keep_evidence: copying $img failed"
	{
		echo "what: $what"
		echo "test: $name"
		echo "kernel: $(uname -r)"
		echo "time: $(date -u '+%Y-%m-%d %H:%M:%S') UTC, uptime $(cut -d' ' -f1 /proc/uptime) s"
		echo "restored: $img sha256 $(sha256sum <"$d/restored.img" | cut -d' ' -f1)"
		echo "reference: $ref sha256 $(sha256sum <"$d/reference.img" | cut -d' ' -f1)"
		echo "repository: ${repo:-none} backup ${id:-none}"
	} >"$d/info.txt"
	for f in ${EVIDENCE_FILES:-}; do
		[ -f "$f" ] && cp "$f" "$d/"
	done
	dmesg >"$d/dmesg.txt"
	blktrack status --json >"$d/status.json" 2>&1
	blktrack-dump kernel >"$d/dump-kernel.txt" 2>&1
	if [ -n "$repo" ]; then
		cp -a "$repo" "$d/repo" || echo "# keep_evidence: copying $repo failed"
		blktrack-dump repo "$repo" >"$d/dump-repo.txt" 2>&1
		"$EVIDENCE_PROG" ${bs:+--block-size "$bs"} "$d/restored.img" "$d/reference.img" \
			"$repo" "$id" >"$d/report.txt" 2>&1
	else
		"$EVIDENCE_PROG" ${bs:+--block-size "$bs"} "$d/restored.img" "$d/reference.img" \
			>"$d/report.txt" 2>&1
	fi
	sed 's/^/# evidence: /' "$d/info.txt" "$d/report.txt"
	sync
}

# ref_image_sha FILE-OR-DEV [OFFSET LENGTH]: the sha256 of the byte range (in MiB
# multiples; default: all), read with O_DIRECT from a device; the bytes are
# kept as $BT_TMP/ref.SHA, the reference of a later compare_sha.
ref_image_sha() {
	local mib=1048576 sum
	if [ $# -ge 3 ]; then
		dd if="$1" bs=$mib skip=$(($2 / mib)) count=$(($3 / mib)) iflag=direct \
			status=none >"$BT_TMP/ref.new"
	elif [ -b "$1" ]; then
		dd if="$1" bs=$mib iflag=direct status=none >"$BT_TMP/ref.new"
	else
		cp "$1" "$BT_TMP/ref.new"
	fi || fail "reading $1 failed"
	sum=$(sha256sum <"$BT_TMP/ref.new" | cut -d' ' -f1)
	mv "$BT_TMP/ref.new" "$BT_TMP/ref.$sum"
	echo "$sum"
}

# compare_sha WHAT IMG SHA [REPO BACKUP_ID]: assert_eq WHAT, IMG's sha256,
# SHA; on a mismatch, first keep the evidence: IMG against the bytes ref_image_sha
# kept for SHA (or against nothing, if it kept none).
compare_sha() {
	local got
	got=$(sha256sum <"$2" | cut -d' ' -f1)
	if [ "$got" != "$3" ]; then
		[ -f "$BT_TMP/ref.$3" ] || : >"$BT_TMP/ref.$3"
		keep_evidence "$1: sha256 $got, wanted $3" "$2" "$BT_TMP/ref.$3" "${4:-}" "${5:-}"
	fi
	assert_eq "$1" "$got" "$3"
}

# ---- multi-boot tests (tests/vm/reboot/) -----------------------------------
# The test's files (ids and sha256 of the points: $BT_TMP) and $POINTS live
# on an ext4 "state volume" mounted at $smnt, across the boots.

# state_volume_mount DEV: mount it at $smnt; BT_TMP and POINTS from there.
state_volume_mount() {
	run mount -t ext4 "$1" $smnt
	BT_TMP=$smnt/t
	mkdir -p $BT_TMP
	POINTS=$(cat $BT_TMP/points 2>/dev/null || true)
}

# reboot_clean: keep POINTS, unmount the state volume, ask for another boot.
reboot_clean() {
	echo "$POINTS" >$BT_TMP/points
	run umount $smnt
	echo BLKTRACK-REBOOT
	exit 0
}

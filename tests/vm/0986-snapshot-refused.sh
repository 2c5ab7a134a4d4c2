#!/bin/sh
# The snapshot's interception refused (issue 6, item 4): another ftrace user
# holds IPMODIFY on submit_bio_noacct, as a livepatch of it would. The
# test-only module tests/vm/kmod/ipmodify_hog.ko registers an ftrace_ops
# with SAVE_REGS | IPMODIFY on it (a no-op callback). While it is loaded:
# CHECKPOINT_SNAP fails with exactly EOPNOTSUPP and changes nothing
# (progs/ioctl-errno --snap-refused); `blktrack backup --snapshot=cow` fails
# with a clear message and leaves no pending checkpoint; --snapshot=auto
# holds the freeze through the read instead, says so, and its backup
# restores to the volume's sha256. Once the hog is unloaded, cow works
# again. The reverse: while blktrack holds a snapshot the hog cannot load
# (EBUSY from ftrace), and the snapshot is unharmed; once it is released it
# still cannot (the interception stays while a volume is attached); once the
# last volume is detached the hog loads (blktrack let go of the function).
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0986
R=$BT_TMP/repo
IMG=$BT_TMP/restore.img
HOG=$BT_TOP/tests/vm/kmod/ipmodify_hog.ko
errno_prog=$BT_TOP/build/vmprogs/ioctl-errno
snap=$BT_TOP/build/vmprogs/snapread
MIB=1048576

hog_loaded() {
	grep -q '^ipmodify_hog ' /proc/modules
}
cleanup_fs() {
	fsfreeze -u $mnt 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
	hog_loaded && rmmod ipmodify_hog
}
trap cleanup_fs EXIT

[ -f "$HOG" ] || fail "$HOG is missing (scripts/build-kmod-all.sh builds it)"
[ -x "$errno_prog" ] && [ -x "$snap" ] || fail "vmprogs missing (make vmprogs)"
load_module
grep -qw submit_bio_noacct /sys/kernel/tracing/available_filter_functions 2>/dev/null ||
	grep -qw submit_bio_noacct /sys/kernel/debug/tracing/available_filter_functions 2>/dev/null ||
	echo "# (available_filter_functions not readable here; the hog's insmod tells)"

echo "# ---- the hog holds IPMODIFY on submit_bio_noacct"
run insmod "$HOG"
hog_loaded || fail "ipmodify_hog not in /proc/modules"
dmesg | grep 'ipmodify_hog: holding' | tail -n 1

echo "# ---- CHECKPOINT_SNAP: exactly EOPNOTSUPP, nothing changes"
loop=$(make_loop 16)
sync
echo "+ $errno_prog --snap-refused $loop"
"$errno_prog" --snap-refused "$loop" || fail "ioctl-errno --snap-refused $loop exited $?"
ok "ioctl-errno --snap-refused"
dmesg | grep 'blktrack: cannot redirect submit_bio_noacct' | tail -n 1 | grep . ||
	fail "no kernel log line for the refused interception"
run losetup -d "$loop"

setup_ext4 $mnt
dd if=/dev/urandom of=$mnt/data bs=1M count=8 status=none || fail "write data"
run sync
bt init --repo "$R" >/dev/null
bt attach /dev/vda1 >/dev/null
bt backup /dev/vda1 --repo "$R" --type full >/dev/null
dd if=/dev/urandom of=$mnt/data bs=4096 count=64 seek=100 conv=notrunc status=none ||
	fail "rewrite data"
run sync

echo "# ---- --snapshot=cow: refused, clearly, no pending checkpoint, not frozen"
echo "+ blktrack backup /dev/vda1 --repo $R --snapshot cow --json (must fail)"
blktrack backup /dev/vda1 --repo "$R" --snapshot cow --json >"$BT_TMP/out.cow" 2>"$BT_TMP/err.cow"
rc=$?
cat "$BT_TMP/err.cow" "$BT_TMP/out.cow"
[ $rc != 0 ] || fail "backup --snapshot=cow succeeded with the interception refused"
ok "backup --snapshot=cow exited $rc"
grep -q 'cannot intercept writes' "$BT_TMP/err.cow" ||
	fail "no clear message for the refused snapshot"
assert_status /dev/vda1 pending no
# Not left frozen: thawing a filesystem that is not frozen fails (EINVAL).
fsfreeze -u $mnt 2>/dev/null && fail "backup --snapshot=cow left $mnt frozen"
ok "$mnt is not frozen"

echo "# ---- --snapshot=auto: holds the freeze instead, says so, restores exactly"
# The test's own freeze (blktrack leaves an external one alone) gives the
# volume's sha256 at the checkpoint; nothing writes until it is thawed.
run fsfreeze -f $mnt
vol_sha >"$BT_TMP/sha.auto"
echo "+ blktrack backup /dev/vda1 --repo $R --snapshot auto --json"
blktrack backup /dev/vda1 --repo "$R" --snapshot auto --json >"$BT_TMP/out.auto" 2>"$BT_TMP/err.auto"
rc=$?
fsfreeze -u $mnt
cat "$BT_TMP/err.auto" "$BT_TMP/out.auto"
[ $rc = 0 ] || fail "backup --snapshot=auto exited $rc"
assert_eq "auto: snapshot" "$(jfield "$BT_TMP/out.auto" snapshot)" freeze
assert_eq "auto: type" "$(jfield "$BT_TMP/out.auto" type)" incremental
grep -q 'fell back to holding the freeze through the read' "$BT_TMP/err.auto" ||
	fail "--snapshot=auto did not say it holds the freeze instead"
ok "auto said so on stderr"
assert_status /dev/vda1 pending no
restore_compare "$R" "$(jfield "$BT_TMP/out.auto" backup)" auto "$IMG"
# blktrack's own freeze: held through the read (not thawed early).
dd if=/dev/urandom of=$mnt/data bs=4096 count=16 seek=300 conv=notrunc status=none ||
	fail "rewrite data"
bt backup /dev/vda1 --repo "$R" --snapshot auto --json >"$BT_TMP/out.auto2" 2>"$BT_TMP/err.auto2"
cat "$BT_TMP/err.auto2" "$BT_TMP/out.auto2"
assert_eq "auto (own freeze): snapshot" "$(jfield "$BT_TMP/out.auto2" snapshot)" freeze
assert_eq "auto (own freeze): freeze" "$(jfield "$BT_TMP/out.auto2" freeze)" held

echo "# ---- the hog unloaded: cow works again"
run rmmod ipmodify_hog
dd if=/dev/urandom of=$mnt/data bs=4096 count=64 seek=500 conv=notrunc status=none ||
	fail "rewrite data"
run fsfreeze -f $mnt
vol_sha >"$BT_TMP/sha.cow2"
echo "+ blktrack backup /dev/vda1 --repo $R --snapshot cow --json"
blktrack backup /dev/vda1 --repo "$R" --snapshot cow --json >"$BT_TMP/out.cow2" 2>"$BT_TMP/err.cow2"
rc=$?
fsfreeze -u $mnt
cat "$BT_TMP/err.cow2" "$BT_TMP/out.cow2"
[ $rc = 0 ] || fail "backup --snapshot=cow after rmmod ipmodify_hog exited $rc"
assert_eq "cow after the hog: snapshot" "$(jfield "$BT_TMP/out.cow2" snapshot)" cow
restore_compare "$R" "$(jfield "$BT_TMP/out.cow2" backup)" cow2 "$IMG"
run umount $mnt
bt detach /dev/vda1 >/dev/null

echo "# ---- the reverse: a snapshot held, the hog cannot load"
V=/dev/vda2
bt attach $V >/dev/null
run dd if=/dev/urandom of=$V bs=$MIB count=4 oflag=direct status=none
run sync
want=$(ref_image_sha $V 0 $((4 * MIB)))
run "$snap" take $V 0 all
echo "+ insmod $HOG (must fail)"
insmod "$HOG" 2>"$BT_TMP/err.insmod"
rc=$?
cat "$BT_TMP/err.insmod"
[ $rc != 0 ] || fail "ipmodify_hog loaded while blktrack holds a snapshot"
hog_loaded && fail "ipmodify_hog is in /proc/modules"
dmesg | grep 'ipmodify_hog: cannot hold IPMODIFY' | tail -n 1 | grep . ||
	fail "no kernel log line for the hog's refusal"
ok "insmod ipmodify_hog refused (exit $rc) while a snapshot is held"
# The snapshot still copies before writes and reads exactly.
write_direct $V 0 $MIB
run sync
"$snap" status $V | grep -E '^(copied|store_bytes) '
"$snap" read $V 0 $((4 * MIB)) >"$BT_TMP/snap.img" || fail "snapread read failed"
compare_sha "snapshot after the refused hog" "$BT_TMP/snap.img" "$want"
bt commit $V >/dev/null
# The snapshot ended; the interception stays while a volume is attached.
insmod "$HOG" 2>/dev/null && fail "ipmodify_hog loaded while a volume is attached"
ok "insmod ipmodify_hog still refused after the snapshot, the volume attached"
# The last volume detached: blktrack let go of submit_bio_noacct.
bt detach $V >/dev/null
run insmod "$HOG"
run rmmod ipmodify_hog
check_no_leak

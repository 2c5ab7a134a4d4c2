#!/bin/sh
# blktrack.conf (doc/blktrack.conf.5) driving the commands an unattended
# system runs: a bad file attaches nothing and says FILE:LINE; attach --all
# takes each volume's settings, skips the attached and warns of the absent;
# --configured picks only what the file lists; --defer-restore + a later
# --restore-state (the initramfs, then the boot) loads the saved history
# once, keeping what was written in between (and a record an earlier attach
# left is never used); backup --volume follows the
# type policy (first a full, then incrementals, a full once full-every has
# passed); prune --volume applies the keep rules; config --systemd writes
# the timers.
. /blktrack/tests/vm/lib/testlib.sh
trap cleanup_all EXIT

load_module
setup_disk
mkdir -p /var/lib/blktrack	# the default state directory
run mkfs_ext4 -q -F -L btcfgdata -b 4096 /dev/vda1
R=/tmp/repo
bt init --repo $R
C=$BT_TMP/blktrack.conf
cat >$C <<EOF
# a test configuration
[volume data]
device = LABEL=btcfgdata
keep-last = 1

[volume raw]
device = /dev/vda2
block-size = 64K
mem-limit = 16M

[volume gone]
device = UUID=00000000-0000-4000-8000-000000000000

[defaults]
repository = $R
type = incremental
full-every = 1h
EOF
export BLKTRACK_CONFIG=$C
bt config

echo "# ---- a bad file: FILE:LINE and nothing attached"
printf '[volume data]\ndevice = LABEL=btcfgdata\n\n[volume raw]\ndevice = /dev/vda2\nblock-size = 48K\n' \
	>$BT_TMP/bad.conf
blktrack attach --all --config $BT_TMP/bad.conf 2>$BT_TMP/err
assert_eq "attach --all of a bad file: exit" $? 1
assert_eq "its message" "$(cat $BT_TMP/err)" \
	"blktrack: $BT_TMP/bad.conf:6: block-size '48K': not a power of two from 4K to 16M"
assert_eq "volumes attached after it" "$(attached | wc -l)" 0
printf '[volume data]\ndevice = LABEL=btcfgdata\nrepo = /tmp\n' >$BT_TMP/bad.conf
bt_fails 1 config --config $BT_TMP/bad.conf
blktrack backup --volume data --config $BT_TMP/bad.conf 2>$BT_TMP/err
assert_eq "backup --volume of a bad file: exit" $? 1
assert_eq "its message" "$(cat $BT_TMP/err)" \
	"blktrack: $BT_TMP/bad.conf:3: unknown key 'repo' in [volume data]"

echo "# ---- attach --all: each volume's settings, the absent one warned of"
blktrack attach --all >$BT_TMP/out 2>$BT_TMP/err || fail "attach --all exited $?"
cat $BT_TMP/out $BT_TMP/err
grep -q "gone: device UUID=00000000-0000-4000-8000-000000000000 not present" $BT_TMP/err ||
	fail "attach --all did not warn of the absent volume"
assert_eq "volumes attached" "$(attached | sort | tr '\n' ' ')" "/dev/vda1 /dev/vda2 "
assert_status /dev/vda1 block_size 4096
assert_status /dev/vda2 block_size 65536
assert_status /dev/vda2 mem_limit 16777216
gen1=$(status_get /dev/vda1 generation)
blktrack attach --all >$BT_TMP/out 2>&1 || fail "a second attach --all exited $?"
grep -q "^/dev/vda1: already attached" $BT_TMP/out || fail "no 'already attached' for /dev/vda1"
assert_eq "generation after a second attach --all" "$(status_get /dev/vda1 generation)" "$gen1"

echo "# ---- attach --configured: only what the file lists"
bt detach /dev/vda2
bt attach --configured /dev/vda
assert_eq "volumes attached after --configured /dev/vda (not listed)" \
	"$(attached | tr '\n' ' ')" "/dev/vda1 "
bt attach --configured /dev/vda2
assert_status /dev/vda2 block_size 65536

echo "# ---- --defer-restore, then --restore-state: the history, once"
A=$((8 << 20)) B=$((9 << 20))
write_direct /dev/vda1 $A 8192
bt detach /dev/vda1 --save
bt detach /dev/vda2 --save
blktrack attach --all --defer-restore >$BT_TMP/out 2>&1 || fail "attach --defer-restore exited $?"
cat $BT_TMP/out
[ -e /run/blktrack/restore-pending/254:1 ] || fail "no marker for /dev/vda1 (254:1)"
write_direct /dev/vda1 $B 4096
blktrack attach --all --restore-state >$BT_TMP/out 2>&1 || fail "attach --restore-state exited $?"
cat $BT_TMP/out
grep -q "^/dev/vda1: saved history loaded from .*: 2 dirty block(s)" $BT_TMP/out ||
	fail "the deferred restore of /dev/vda1 did not load its 2 saved blocks"
grep -q "^/dev/vda2: saved history loaded" $BT_TMP/out || fail "no deferred restore of /dev/vda2"
[ ! -e /run/blktrack/restore-pending/254:1 ] || fail "the marker outlived the restore"
blktrack attach --all --restore-state >$BT_TMP/out 2>&1 || fail "a third attach exited $?"
grep -q "^/dev/vda1: already attached" $BT_TMP/out || fail "a second restore was attempted"
assert_status /dev/vda1 state tracking
bt checkpoint /dev/vda1
expect_clear
expect_write $A 8192
expect_write $B 4096
check_changes /dev/vda1 4096
bt abort /dev/vda1

echo "# ---- backup --volume: the type policy"
sha() { dd if=/dev/vda1 bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }
backup_type() {
	blktrack backup --volume data --json >$BT_TMP/b.json 2>$BT_TMP/b.err ||
		{ cat $BT_TMP/b.err; fail "backup --volume data exited $?"; }
	cat $BT_TMP/b.json >&2
	jfield $BT_TMP/b.json type
}
assert_eq "first backup --volume data" "$(backup_type)" full
write_direct /dev/vda1 $((10 << 20)) 4096
assert_eq "next, full-every 1h" "$(backup_type)" incremental
write_direct /dev/vda1 $((11 << 20)) 4096
sed -i 's/^full-every = 1h/full-every = 1s/' $C
sleep 2
assert_eq "next, the full older than full-every 1s" "$(backup_type)" full
want=$(sha)
write_direct /dev/vda1 $((12 << 20)) 4096
sed -i 's/^full-every = 1s/full-every = 1h/' $C
assert_eq "next, full-every 1h again" "$(backup_type)" incremental
want2=$(sha)

echo "# ---- prune --volume: the keep rules of the file"
bt prune --volume data
blktrack list --repo $R --json >$BT_TMP/list || fail "list"
assert_eq "backups left with keep-last = 1" "$(grep -o '"id":' $BT_TMP/list | wc -l)" 1
echo "$want2" >$BT_TMP/sha.last
restore_compare $R "$(jfield $BT_TMP/b.json backup)" last /tmp/restored.img
blktrack prune --volume raw >$BT_TMP/out || fail "prune --volume raw exited $?"
grep -q "no keep rule configured: nothing pruned" $BT_TMP/out || fail "prune of a volume without rules"

echo "# ---- config --systemd: a timer per schedule"
sed -i 's/^keep-last = 1/keep-last = 1\nschedule = Mon *-*-* 03:00/' $C
mkdir $BT_TMP/gen
bt config --systemd $BT_TMP/gen
assert_eq "the timer's drop-in" "$(grep OnCalendar $BT_TMP/gen/blktrack-backup@data.timer.d/schedule.conf | tr '\n' ' ')" \
	"OnCalendar= OnCalendar=Mon *-*-* 03:00 "
[ -L $BT_TMP/gen/timers.target.wants/blktrack-backup@data.timer ] || fail "the timer is not wanted"
assert_eq "the service's drop-in" "$(grep RequiresMountsFor $BT_TMP/gen/blktrack-backup@data.service.d/repository.conf)" \
	"RequiresMountsFor=$R"
assert_eq "timers written" "$(ls $BT_TMP/gen/timers.target.wants)" "blktrack-backup@data.timer"
echo "# ---- a deferred record of an earlier attach is never used"
bt detach /dev/vda1 --save
blktrack attach --all --defer-restore >$BT_TMP/out 2>&1 || fail "attach --defer-restore exited $?"
bt detach /dev/vda1
[ -e /run/blktrack/restore-pending/254:1 ] || fail "no record left behind by the detach"
# Untracked now: a change of the superblock (s_last_mounted), as a mount elsewhere would make.
printf X | dd of=/dev/vda1 bs=1 seek=$((1024 + 136)) conv=notrunc status=none || fail "dd"
sync
blktrack attach --all --restore-state >$BT_TMP/out 2>&1 || fail "attach --restore-state exited $?"
cat $BT_TMP/out
grep -q "^/dev/vda1: tracking INVALID (offline-change)" $BT_TMP/out ||
	fail "the state was trusted on the fingerprint of an earlier attach"
[ ! -e /run/blktrack/restore-pending/254:1 ] || fail "the stale record was not removed"
ok "blktrack.conf drives attach, restore, backup and prune"

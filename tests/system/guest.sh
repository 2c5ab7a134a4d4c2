#!/bin/sh
# The system test inside the booted Debian system (tests/system/run.sh): one
# phase per boot, named by systest.phase= on the kernel command line. Each
# check prints "SYSTEST ok - ..." or "SYSTEST not ok - ..." on the console;
# a phase ends with "SYSTEST PHASE-DONE N" and powers off (phase 2 waits for
# the power cut instead).
set -u
R=/srv/backup/repo	# the data volume's repository
RR=/srv/backup/root	# the root's
S=/srv/backup/systest
DATA=/dev/vda2
ROOTDEV=/dev/vda1
K=37		# blocks written before each checked incremental
phase=$(sed -n 's/.*systest\.phase=\([0-9a-z]*\).*/\1/p' /proc/cmdline)

say() { echo "SYSTEST $*" >/dev/console; echo "SYSTEST $*"; }
ok() { say "ok - $*"; }
fail() {
	say "not ok - $*"
	journalctl -b --no-pager -u blktrack-attach.service -u 'blktrack-backup@*' | tail -40 >/dev/console
	blktrack status >/dev/console 2>&1
	say "PHASE-DONE $phase"
	systemctl poweroff
	exit 1
}
assert_eq() { [ "$2" = "$3" ] && ok "$1 = $3" || fail "$1: got '$2', wanted '$3'"; }
status_get() { blktrack status "$1" | sed -n "s/^$2: *//p"; }
# `blktrack list --json` of repository $1 (default $R) on one line, without blanks.
list_compact() { blktrack list --repo ${1:-$R} --json | tr -d ' \n'; }
# The newest backup's FIELD in repository $2 (default $R).
newest() {
	list_compact ${2:-} | tr '{' '\n' | grep '"id":' | tail -1 |
		sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}
count_backups() { list_compact | grep -o '"id":' | wc -l; }
# write_blocks N TAG: N distinct 4 KiB blocks of the data volume, O_DIRECT,
# at offsets of this phase's own (recorded in $S/written.TAG).
write_blocks() {
	i=0
	: >$S/written.$2
	while [ $i -lt $1 ]; do
		b=$(( ($(od -An -N4 -tu4 /dev/urandom) % 4000) * 4 + ${#2} ))
		grep -qx $b $S/written.$2 && continue
		echo $b >>$S/written.$2
		dd if=/dev/urandom of=$DATA bs=4096 seek=$b count=1 oflag=direct conv=notrunc \
			status=none || fail "dd block $b"
		i=$((i + 1))
	done
}
vol_sha() { dd if=$DATA bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }
backup_now() {	# backup_now [VOLUME]: what its timer would run (default data)
	systemctl start blktrack-backup@${1:-data}.service ||
		fail "blktrack-backup@${1:-data}.service failed: $(journalctl -b -u blktrack-backup@${1:-data} --no-pager | tail -5)"
}
restore_check() {	# restore_check ID SHA
	rm -f /srv/backup/restored.img
	blktrack restore --repo $R --backup "$1" /srv/backup/restored.img >/dev/null ||
		fail "restore of backup $1"
	assert_eq "sha256 of backup $1 restored" "$(sha256sum </srv/backup/restored.img | cut -d' ' -f1)" "$2"
	rm -f /srv/backup/restored.img
}
# Both volumes attached before their read-write mount, with the state the boot found.
attached_as() {	# attached_as STATE REASON
	systemctl is-active -q blktrack-attach.service || fail "blktrack-attach.service is not active"
	for d in $ROOTDEV $DATA; do
		assert_eq "$d state" "$(status_get $d state)" "$1"
		[ -z "$2" ] || assert_eq "$d reason" "$(status_get $d reason)" "$2"
	done
	# The root was attached in the initramfs: before the kernel's first mount of it.
	t=$(dmesg | grep -n 'blktrack: tracking 254:1' | head -1 | cut -d: -f1)
	m=$(dmesg | grep -n 'EXT4-fs (vda1): mounted' | head -1 | cut -d: -f1)
	[ -n "$t" ] && [ -n "$m" ] && [ "$t" -lt "$m" ] ||
		fail "the root volume was not attached before its first mount (lines $t, $m of dmesg)"
	ok "the root volume was attached (initramfs) before its first mount"
}

mkdir -p $S
say "phase $phase on $(uname -r)"
case $phase in
1)	# The first boot after the install: tracking, nothing saved yet.
	attached_as invalid no-state
	blktrack init --repo $R && blktrack init --repo $RR || fail "blktrack init"
	# A volume stays INVALID (its saves unclean) until a backup: the root too.
	backup_now root
	assert_eq "the root's first backup" "$(newest type $RR)" full
	backup_now
	assert_eq "first scheduled-service backup" "$(newest type)" full
	write_blocks $K 1
	ok "wrote $K blocks"
	say "PHASE-DONE 1"
	systemctl reboot ;;
2)	# After a clean reboot: the histories restored.
	attached_as tracking ""
	journalctl -b -u blktrack-attach.service --no-pager | grep -q "$DATA: saved history loaded" ||
		fail "no 'saved history loaded' for $DATA in the journal"
	backup_now
	assert_eq "backup after a clean reboot" "$(newest type)" incremental
	assert_eq "its changed bytes (the $K blocks written)" "$(newest changed_bytes)" $((K * 4096))
	write_blocks 11 2
	sync
	say "POWERCUT-READY"
	sleep 3600 ;;
3)	# After a power cut: unclean, a resync, a bit-exact restore; then the other kernel.
	attached_as invalid unclean
	want=$(vol_sha)
	backup_now
	assert_eq "backup after a power cut" "$(newest type)" resync
	restore_check "$(newest id)" "$want"
	backup_now root
	assert_eq "the root's backup after a power cut" "$(newest type $RR)" resync
	dpkg -i /root/debs/*.deb >/dev/console 2>&1 || fail "dpkg -i of the other kernel"
	k2=$(ls /root/debs/linux-image-*.deb | sed 's|.*/linux-image-\([^_]*\)_.*|\1|')
	[ -e /lib/modules/$k2/updates/dkms/blktrack.ko ] || [ -e /lib/modules/$k2/updates/dkms/blktrack.ko.xz ] ||
		fail "DKMS did not build blktrack for $k2"
	ok "DKMS built blktrack for $k2"
	mkdir -p /srv/backup/boot
	cp /boot/vmlinuz-$k2 /boot/initrd.img-$k2 /srv/backup/boot/ || fail "copy of $k2's boot files"
	say "PHASE-DONE 3"
	systemctl poweroff ;;
4)	# The other kernel: the module from DKMS, tracking goes on; scheduled backups and prune.
	case $(modinfo -n blktrack) in
	*/updates/dkms/*) ok "blktrack.ko of $(uname -r) is DKMS's" ;;
	*) fail "blktrack.ko is $(modinfo -n blktrack), not DKMS's" ;;
	esac
	attached_as tracking ""
	# A volume that appears later (as LVM activates one): the udev rule
	# attaches it, before udev announces it.
	truncate -s 64M /srv/backup/late.img
	loop=$(losetup --show -f /srv/backup/late.img) || fail "losetup"
	printf '\n[volume late]\ndevice = /dev/mapper/btlate\n' >>/etc/blktrack/blktrack.conf
	dmsetup create btlate --table "0 131072 linear $loop 0" || fail "dmsetup create btlate"
	udevadm settle
	assert_eq "/dev/mapper/btlate, attached by the udev rule" \
		"$(blktrack status /dev/mapper/btlate 2>&1 | sed -n 's/^reason: *//p')" no-state
	blktrack detach /dev/mapper/btlate && dmsetup remove btlate && losetup -d $loop ||
		fail "removing btlate"
	write_blocks $K 4
	backup_now
	assert_eq "backup on the other kernel" "$(newest type)" incremental
	assert_eq "its changed bytes" "$(newest changed_bytes)" $((K * 4096))
	# A schedule and keep rules: the generator's timer runs backup + prune.
	sed -i 's/^device = PARTUUID=.*/&\nschedule = *:*:0\/10\nkeep-last = 2/' /etc/blktrack/blktrack.conf
	mkdir -p /etc/systemd/system/blktrack-backup@data.timer.d
	printf '[Timer]\nAccuracySec=1s\nRandomizedDelaySec=0\n' \
		>/etc/systemd/system/blktrack-backup@data.timer.d/zz-test.conf
	systemctl daemon-reload
	systemctl show -p TimersCalendar blktrack-backup@data.timer | grep -q '0/10' ||
		fail "the timer has not the configured schedule: $(systemctl show -p TimersCalendar blktrack-backup@data.timer)"
	systemctl start blktrack-backup@data.timer || fail "start the timer"
	ok "blktrack-backup@data.timer scheduled by the generator"
	# Three points; the timer is stopped while a point is written, so every
	# backup it takes in a window holds that window's content.
	: >$S/windows
	for n in 1 2 3; do
		systemctl stop blktrack-backup@data.timer
		while systemctl is-active -q blktrack-backup@data.service; do sleep 1; done
		hi=$(newest id)
		write_blocks 5 4$n
		echo "$hi $(vol_sha)" >>$S/windows
		systemctl start blktrack-backup@data.timer || fail "start the timer"
		i=0
		while [ "$(newest id)" = "$hi" ] || systemctl is-active -q blktrack-backup@data.service; do
			i=$((i + 1))
			[ $i -lt 300 ] || fail "the timer did not run a backup in 300 s"
			sleep 1
		done
		ok "point $n: the timer took backup $(newest id)"
	done
	systemctl stop blktrack-backup@data.timer
	while systemctl is-active -q blktrack-backup@data.service; do sleep 1; done
	assert_eq "backups kept by keep-last = 2" "$(count_backups)" 2
	top=$(newest id)
	for id in $(list_compact | grep -o '"id":[0-9]*' | cut -d: -f2); do
		# Its window: the last one that started before it.
		sha=$(awk -v id=$id '$1 < id { s = $2 } END { print s }' $S/windows)
		restore_check $id "$sha"
	done
	list_compact | grep -q "\"id\":$top[,}]" || fail "the newest backup $top was not kept"
	say "PASS"
	say "PHASE-DONE 4"
	systemctl poweroff ;;
*)	fail "no systest.phase on the command line" ;;
esac

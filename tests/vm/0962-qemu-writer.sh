#!/bin/sh
# The hypervisor writer (examples/writers/40-qemu, doc/WRITERS.md): a real
# QEMU in the test VM boots a guest (a boot sector that writes a counter
# into its disk without a pause, tests/vm/progs/bootsector-guest.S) from a
# qcow2 image on the tracked ext4. Its guest agent socket is there but no
# agent answers: at freeze the writer says so and pauses the guest (QMP
# stop), checks the image (qemu-img check), and resumes it at thaw. Each
# backup of the image (--file: a full and two incrementals, the guest
# writing in between) restores to the sha256 the image had while the guest
# was paused; the writer's post-restore check passes on each restored qcow2;
# the guest runs again after each backup and keeps writing. A backup of the
# whole volume pauses the guest too (its image lies on it); a backup of a
# file the guest does not use leaves it running.
. /blktrack/tests/vm/lib/testlib.sh
mnt=/mnt/bt0962
R=$BT_TMP/repo
W=$BT_TMP/writers.d
QEMU_PID=
cleanup_qemu() {
	[ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_qemu EXIT
qemu_img() { /usr/bin/qemu-img "$@"; }

setup_ext4 $mnt
bt attach /dev/vda1 --block-size 4096
bt init --repo "$R" >/dev/null
img=$mnt/guest.qcow2
dd if=/dev/zero of="$BT_TMP/guest.raw" bs=1M count=1 status=none
dd if=$BT_TOP/build/vmprogs/bootsector-guest.bin of="$BT_TMP/guest.raw" conv=notrunc \
	status=none || fail "boot sector"
qemu_img convert -f raw -O qcow2 "$BT_TMP/guest.raw" "$img" || fail "qemu-img convert"
rm "$BT_TMP/guest.raw"
qmp=$BT_TMP/guest.qmp
/usr/bin/qemu-system-x86_64 -accel tcg,tb-size=16 -m 16 -nodefaults -display none \
	-drive file="$img",format=qcow2,if=ide \
	-chardev socket,path="$BT_TMP/guest.qga",server=on,wait=off,id=qga0 \
	-device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
	-qmp unix:"$qmp",server=on,wait=off >"$BT_TMP/qemu.log" 2>&1 &
QEMU_PID=$!
i=0
while [ ! -S "$qmp" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -S "$qmp" ] || { cat "$BT_TMP/qemu.log"; fail "QEMU did not start"; }

# status: the guest's run state, from QMP.
status() {
	printf '{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n' |
		socat -t 2 - UNIX-CONNECT:"$qmp" | sed -n 's/.*"status": *"\([a-z-]*\)".*/\1/p'
}
# image_sha: the image as the host reads it (the guest's writes in the page cache).
image_sha() {
	sha256sum "$img" | cut -d' ' -f1
}
i=0
first=$(image_sha)
while [ "$(image_sha)" = "$first" ] && [ $i -lt 600 ]; do
	sleep 0.5
	i=$((i + 1))
done
[ "$(image_sha)" != "$first" ] || { cat "$BT_TMP/qemu.log"; status; fail "the guest writes nothing"; }
echo "the guest wrote after $((i / 2)) s"
assert_eq "the guest runs" "$(status)" running
ok "QEMU runs the guest, which writes into $img"

# The writers: the hypervisor writer, then one that captures what it holds.
mkdir -p "$W"
cp "$BT_TOP/examples/writers/40-qemu" "$W/40-qemu" || fail "the example writer"
cat >"$W/90-capture" <<EOF
#!/bin/sh
[ "\$1" = freeze ] || exit 0
printf '{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n' |
	socat -t 2 - UNIX-CONNECT:$qmp | grep -q '"status": *"paused"' || exit 0
sha256sum $img | cut -d' ' -f1 >$BT_TMP/held
EOF
chmod 700 "$W/40-qemu" "$W/90-capture"
printf 'guest1 %s %s %s\n' "$qmp" "$BT_TMP/guest.qga" "$img" >"$BT_TMP/qemu-vms"
export QEMU_VMS=$BT_TMP/qemu-vms QEMU_WRITER_STATE=$BT_TMP/qemu-state QEMU_AGENT_WAIT=2

# fpoint NAME [OPTIONS...]: a backup of the image with the writers; the sha it held.
fpoint() {
	local name=$1 before
	shift
	rm -f "$BT_TMP/held"
	echo "+ blktrack backup --file $img --repo $R --writers-dir $W --json $*"
	blktrack backup --file "$img" --repo "$R" --writers-dir "$W" --json "$@" \
		>"$BT_TMP/out.$name" 2>"$BT_TMP/err.$name" || {
		cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
		fail "backup $name failed"
	}
	cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
	[ -s "$BT_TMP/held" ] || fail "$name: the guest was not paused at freeze"
	mv "$BT_TMP/held" "$BT_TMP/sha.$name"
	grep -q "guest guest1: no guest agent answered: paused instead (QMP stop)" \
		"$BT_TMP/err.$name" || fail "$name: the writer did not say it paused the guest"
	grep -q "qemu-img check: no errors" "$BT_TMP/err.$name" ||
		fail "$name: the writer did not check the image"
	assert_eq "$name: the guest runs again" "$(status)" running
	before=$(image_sha)
	i=0
	while [ "$(image_sha)" = "$before" ] && [ $i -lt 300 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	[ "$(image_sha)" != "$before" ] || fail "$name: the guest stopped writing"
	ok "$name: backup $(jfield "$BT_TMP/out.$name" backup), the guest paused, resumed, writing"
}
fpoint full --type full
fpoint inc1
fpoint inc2
for p in full inc1 inc2; do
	rm -f "$BT_TMP/restored.qcow2"
	blktrack restore --repo "$R" --backup "$(jfield "$BT_TMP/out.$p" backup)" \
		--writers-dir "$W" "$BT_TMP/restored.qcow2" >"$BT_TMP/restore.out" 2>&1 || {
		cat "$BT_TMP/restore.out"
		fail "restore of $p failed"
	}
	grep -q "restored.qcow2: qemu-img check: no errors" "$BT_TMP/restore.out" ||
		{ cat "$BT_TMP/restore.out"; fail "$p: no post-restore check"; }
	assert_eq "$p restored" "$(sha256sum "$BT_TMP/restored.qcow2" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha.$p")"
done
rm -f "$BT_TMP/restored.qcow2"

# The whole volume holds the image: the guest is paused for it too.
bt init --repo "$BT_TMP/vrepo" >/dev/null
blktrack backup /dev/vda1 --repo "$BT_TMP/vrepo" --writers-dir "$W" >/dev/null \
	2>"$BT_TMP/err.vol" || { cat "$BT_TMP/err.vol"; fail "volume backup failed"; }
grep -q "guest guest1: no guest agent answered: paused instead" "$BT_TMP/err.vol" ||
	fail "a backup of the volume under the image did not pause the guest"
[ -s "$BT_TMP/held" ] || fail "volume: the guest was not paused at freeze"
assert_eq "after the volume's backup, the guest" "$(status)" running
# Another file of the volume: the guest is none of its business.
rm -f "$BT_TMP/held"
dd if=/dev/urandom of=$mnt/other bs=64k count=1 status=none
blktrack backup --file $mnt/other --repo "$R" --writers-dir "$W" >/dev/null \
	2>"$BT_TMP/err.other" || { cat "$BT_TMP/err.other"; fail "backup of another file"; }
! grep -q "guest guest1" "$BT_TMP/err.other" || fail "the guest was paused for another file"
assert_eq "after another file's backup, the guest" "$(status)" running
kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null
QEMU_PID=
umount $mnt
ok "the hypervisor writer pauses, checks and resumes a real QEMU guest"

#!/bin/sh
# Backup sets (blktrack backup DEV DEV... / --file PATH..., restore --set,
# doc/REPOSITORY.md "Backup sets"). An application with its data on two
# volumes (seqpair: each sequence number written to one, then the other,
# O_DIRECT, without a pause) runs through three sets of both volumes; its
# writer holds it between two pairs from freeze to thaw. Each set, restored
# with restore --set, holds on both volumes exactly the last sequence number
# the application had written when it was held, and no torn block: one
# instant for both. A writer rejecting a set at backup-complete: exit 8,
# nothing in the catalog, and the next set still covers every change. Then
# two VM images of one ext4 volume backed up together, again and again:
# each incremental holds exactly the blocks written into each (one
# checkpoint for both files; backed up one at a time, each backup would be a
# resync of its file), and each set restores to the sha256 of both images.
# Last, a writer excludes its temporary file from a backup of the volume
# (BLKTRACK_RANGES_FILE): the backup and the restore say which MiB is not
# the point's, and the restore differs from the volume in those 256 blocks
# only; the next point without the exclusion restores bit-exactly.
. /blktrack/tests/vm/lib/testlib.sh
SEQPAIR=$BT_TOP/build/vmprogs/seqpair
R=$BT_TMP/repo
W=$BT_TMP/writers.d
CTL=$BT_TMP/ctl
mnt=/mnt/bt0961
APP=
cleanup_set() {
	[ -z "$APP" ] || kill -TERM "$APP" 2>/dev/null
	[ -z "$APP" ] || kill -USR2 "$APP" 2>/dev/null
	umount $mnt 2>/dev/null
	cleanup_all
}
trap cleanup_set EXIT

# member N FILE KEY: KEY of the Nth member of a set's one-line JSON.
member() {
	sed 's/}, *{/}\n{/g' "$2" | sed -n "${1}p" |
		sed -n "s/.*\"$3\": *\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# The application's writer: hold it at freeze (until it says where), let it go at thaw.
mkdir -p "$W" "$CTL"
cat >"$W/10-app" <<EOF
#!/bin/sh
case \$1 in
freeze)
	kill -USR1 \$(cat $CTL/pid)
	i=0
	while [ ! -e $CTL/frozen ]; do
		i=\$((i + 1))
		[ \$i -lt 200 ] || exit 1
		sleep 0.05
	done
	cp $CTL/frozen $CTL/held
	echo "held at \$(cat $CTL/held)" ;;
thaw|abort)
	kill -USR2 \$(cat $CTL/pid) ;;
backup-complete)
	[ ! -e $CTL/reject ] || exit 1 ;;
esac
exit 0
EOF
chmod 700 "$W/10-app"

A=$(make_loop 16)
B=$(make_loop 24)
bt attach "$A"
bt attach "$B"
bt init --repo "$R" >/dev/null
"$SEQPAIR" "$A" "$B" "$CTL" >"$BT_TMP/app.out" &
APP=$!
echo $APP >"$CTL/pid"
sleep 1

# set NAME [OPTIONS...]: a set of both volumes, held by the writer.
set_of_two() {
	local name=$1 rc
	shift
	echo "+ blktrack backup $A $B --repo $R --writers-dir $W --json $*"
	blktrack backup "$A" "$B" --repo "$R" --writers-dir "$W" --json "$@" \
		>"$BT_TMP/out.$name" 2>"$BT_TMP/err.$name"
	rc=$?
	cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
	return $rc
}

# check_set NAME: restore --set onto two images: both hold the held seq, none torn.
check_set() {
	local name=$1 set held ga gb
	set=$(jfield "$BT_TMP/out.$name" set)
	held=$(cat "$CTL/held")
	rm -f "$BT_TMP/a.img" "$BT_TMP/b.img"
	bt restore --repo "$R" --set "$set" "$BT_TMP/a.img" "$BT_TMP/b.img" >/dev/null
	ga=$("$SEQPAIR" --scan "$BT_TMP/a.img") || fail "$name: torn blocks in A"
	gb=$("$SEQPAIR" --scan "$BT_TMP/b.img") || fail "$name: torn blocks in B"
	assert_eq "$name: the last sequence number in A" "$ga" "$held"
	assert_eq "$name: the last sequence number in B" "$gb" "$held"
	rm -f "$BT_TMP/a.img" "$BT_TMP/b.img"
}

set_of_two s1 || fail "set s1 failed"
assert_eq "s1: set id" "$(jfield "$BT_TMP/out.s1" set)" "$(member 1 "$BT_TMP/out.s1" backup)"
assert_eq "s1: member 2" "$(member 2 "$BT_TMP/out.s1" backup)" \
	"$(( $(member 1 "$BT_TMP/out.s1" backup) + 1 ))"
check_set s1
sleep 1
set_of_two s2 --snapshot cow || fail "set s2 failed"
assert_eq "s2: member 1 type" "$(member 1 "$BT_TMP/out.s2" type)" incremental
assert_eq "s2: member 2 type" "$(member 2 "$BT_TMP/out.s2" type)" incremental
assert_eq "s2: member 2 snapshot" "$(member 2 "$BT_TMP/out.s2" snapshot)" cow
check_set s2

# A writer rejects the set: nothing kept, the changes stay tracked for the next.
touch "$CTL/reject"
entries=$(blktrack list --repo "$R" --json | grep -o '"id":' | wc -l)
sleep 1
set_of_two rejected
assert_eq "rejected: exit status" $? 8
assert_eq "rejected: catalog entries" \
	"$(blktrack list --repo "$R" --json | grep -o '"id":' | wc -l)" "$entries"
rm "$CTL/reject"
sleep 1
set_of_two s3 --snapshot freeze || fail "set s3 failed"
check_set s3
blktrack list --repo "$R" >"$BT_TMP/list"
cat "$BT_TMP/list"
assert_eq "list: members of set s3" "$(grep -c "  set $(jfield "$BT_TMP/out.s3" set)\$" \
	"$BT_TMP/list")" 2
kill -TERM $APP
kill -USR2 $APP 2>/dev/null
wait $APP
APP=
ok "the application wrote $(cat "$BT_TMP/app.out") pairs"

# Refused: a target short, no such set, a volume twice; nothing written.
bt_fails 1 restore --repo "$R" --set "$(jfield "$BT_TMP/out.s3" set)" "$BT_TMP/a.img"
[ ! -e "$BT_TMP/a.img" ] || fail "a refused restore --set wrote a target"
bt_fails 3 restore --repo "$R" --set 999 "$BT_TMP/a.img" "$BT_TMP/b.img"
bt_fails 1 backup "$A" "$A" --repo "$R"
detach_all
backing="$(cat /sys/block/${A#/dev/}/loop/backing_file /sys/block/${B#/dev/}/loop/backing_file)"
losetup -D
rm -f $backing "$BT_TMP/app.out"
rm -rf "$R"

# Two images of one ext4 volume, one set: exact incrementals of each.
setup_ext4 $mnt
bt attach /dev/vda1 --block-size 4096
R2=$BT_TMP/repo2
bt init --repo "$R2" >/dev/null
dd if=/dev/urandom of=$mnt/one.img bs=1M count=8 status=none || fail "one.img"
dd if=/dev/urandom of=$mnt/two.img bs=1M count=6 status=none || fail "two.img"
run sync
# fset NAME: the images' sha256, then a set of both files.
fset() {
	local name=$1
	shift
	sha256sum $mnt/one.img | cut -d' ' -f1 >"$BT_TMP/sha1.$name"
	sha256sum $mnt/two.img | cut -d' ' -f1 >"$BT_TMP/sha2.$name"
	echo "+ blktrack backup --file one.img --file two.img --repo $R2 --json $*"
	blktrack backup --file $mnt/one.img --file $mnt/two.img --repo "$R2" --json "$@" \
		>"$BT_TMP/out.$name" 2>"$BT_TMP/err.$name" || {
		cat "$BT_TMP/out.$name" "$BT_TMP/err.$name"
		fail "file set $name failed"
	}
	cat "$BT_TMP/out.$name"
}
# fcheck NAME BYTES1 BYTES2: each member covers exactly so much; both restored.
fcheck() {
	local set
	assert_eq "$1: one.img covered" "$(member 1 "$BT_TMP/out.$1" covered_bytes)" "$2"
	assert_eq "$1: two.img covered" "$(member 2 "$BT_TMP/out.$1" covered_bytes)" "$3"
	set=$(jfield "$BT_TMP/out.$1" set)
	rm -f "$BT_TMP/one" "$BT_TMP/two"
	bt restore --repo "$R2" --set "$set" "$BT_TMP/one" "$BT_TMP/two" >/dev/null
	assert_eq "$1: one.img restored" "$(sha256sum "$BT_TMP/one" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha1.$1")"
	assert_eq "$1: two.img restored" "$(sha256sum "$BT_TMP/two" | cut -d' ' -f1)" \
		"$(cat "$BT_TMP/sha2.$1")"
	rm -f "$BT_TMP/one" "$BT_TMP/two"
}
fset f1
fcheck f1 $((8 << 20)) $((6 << 20))
for i in 2 3 4; do
	dd if=/dev/urandom of=$mnt/one.img bs=4096 count=$i seek=$((i * 100)) conv=notrunc \
		oflag=direct status=none || fail "write one.img"
	dd if=/dev/urandom of=$mnt/two.img bs=4096 count=1 seek=$((i * 7)) conv=notrunc \
		status=none || fail "write two.img"
	fset f$i
	assert_eq "f$i: one.img type" "$(member 1 "$BT_TMP/out.f$i" type)" incremental
	assert_eq "f$i: two.img type" "$(member 2 "$BT_TMP/out.f$i" type)" incremental
	fcheck f$i $((i * 4096)) 4096
done

# A writer excluding its temporary file from a backup of the volume: the
# file's rewritten MiB is not stored, the restore says so, and differs from
# the volume in exactly those blocks; the next point holds them again.
W2=$BT_TMP/writers2.d
R3=$BT_TMP/repo3
mkdir -p "$W2"
printf '#!/bin/sh\n[ "$1" = post-snapshot ] && [ -e %s/exclude ] &&\n\techo "exclude %s/temp.db" >"$BLKTRACK_RANGES_FILE"\nexit 0\n' \
	"$CTL" "$mnt" >"$W2/db"
chmod 700 "$W2/db"
bt init --repo "$R3" >/dev/null
dd if=/dev/urandom of=$mnt/temp.db bs=1M count=1 status=none || fail "temp.db"
run sync
bt backup /dev/vda1 --repo "$R3" --writers-dir "$W2" --type full >/dev/null
touch "$CTL/exclude"
dd if=/dev/urandom of=$mnt/temp.db bs=1M count=1 conv=notrunc oflag=direct status=none ||
	fail "rewrite temp.db"
dd if=/dev/urandom of=$mnt/one.img bs=4096 count=2 conv=notrunc oflag=direct status=none ||
	fail "write one.img"
# vbackup NAME: the frozen volume's image, and its backup (the freeze held around both).
vbackup() {
	run fsfreeze -f $mnt
	dd if=/dev/vda1 of="$BT_TMP/vol.img" bs=1M iflag=direct status=none || fail "image vda1"
	blktrack backup /dev/vda1 --repo "$R3" --writers-dir "$W2" --json >"$BT_TMP/out.$1"
	rc=$?
	fsfreeze -u $mnt
	cat "$BT_TMP/out.$1"
	[ $rc = 0 ] || fail "backup $1 exited $rc"
}
vbackup x1
assert_eq "x1: excluded_bytes" "$(jfield "$BT_TMP/out.x1" excluded_bytes)" 1048576
grep -q '"writer_ranges":{"db":{"added":0,"excluded":1048576}}' "$BT_TMP/out.x1" ||
	fail "x1: writer_ranges do not name db's MiB"
rm -f "$BT_TMP/r.img"
blktrack restore --repo "$R3" --json "$BT_TMP/r.img" >"$BT_TMP/out.r1" 2>"$BT_TMP/err.r1" ||
	fail "restore x1 failed"
cat "$BT_TMP/out.r1" "$BT_TMP/err.r1"
assert_eq "x1 restored: excluded_bytes" "$(jfield "$BT_TMP/out.r1" excluded_bytes)" 1048576
grep -q "not the point's" "$BT_TMP/err.r1" || fail "x1: no warning of excluded bytes"
assert_eq "x1 restored: blocks not the volume's" \
	"$("$BT_TOP/build/vmprogs/blockdiff" "$BT_TMP/r.img" "$BT_TMP/vol.img" 4096)" 256
rm "$CTL/exclude"
dd if=/dev/urandom of=$mnt/temp.db bs=1M count=1 conv=notrunc oflag=direct status=none ||
	fail "rewrite temp.db"
vbackup x2
rm -f "$BT_TMP/r.img"
blktrack restore --repo "$R3" --json "$BT_TMP/r.img" >"$BT_TMP/out.r2" || fail "restore x2"
assert_eq "x2 restored: excluded_bytes" "$(jfield "$BT_TMP/out.r2" excluded_bytes)" 0
assert_eq "x2 restored" "$(sha256sum <"$BT_TMP/r.img")" "$(sha256sum <"$BT_TMP/vol.img")"
rm -f "$BT_TMP/r.img" "$BT_TMP/vol.img"
umount $mnt
ok "sets of volumes and of files; ranges the writers excluded"

#!/bin/bash
# A throwaway single-node Ceph cluster for tests: one mon, one mgr, one OSD
# (BlueStore on a sparse file, so objects survive an OSD kill), everything
# under DIR and bound to 127.0.0.1 only.  Needs Debian's ceph-mon, ceph-mgr,
# ceph-osd and ceph-common (scripts/install-deps.sh --ceph); run as root.
#
#   cluster.sh start DIR        new cluster in DIR (created if absent), pool "blktrack"
#   cluster.sh stop DIR         stop every daemon (keeps DIR; rm -rf it afterwards)
#   cluster.sh env DIR          "export CEPH_CONF=..." for eval
#   cluster.sh status DIR       which daemons run (exit 0 when all do)
#   cluster.sh stop-osd DIR | start-osd DIR | restart-osd DIR
#   cluster.sh stop-all DIR | start-all DIR   (all daemons; the data stays)
#
# Environment: CEPH_PORT_BASE (13300): mon msgr2 port = base, msgr1 = base+1,
# mgr/OSD ports in base+10..base+99 (below the kernel's ephemeral range, away
# from Ceph's 3300/6789/6800-7300).  CEPH_OSD_SIZE (10G, sparse),
# CEPH_OSD_MEMORY (1G osd_memory_target), CEPH_WAIT (60 s for the cluster to
# serve I/O), CEPH_STOP_TIMEOUT (10 s before SIGKILL), CEPH_MGR=0 (start: no
# mgr, saves ~300 MB and a python start; `ceph -s` then lacks PG statistics).
set -eu

POOL=blktrack
PORT_BASE=${CEPH_PORT_BASE:-13300}
OSD_SIZE=${CEPH_OSD_SIZE:-10G}
OSD_MEMORY=${CEPH_OSD_MEMORY:-1G}
WAIT=${CEPH_WAIT:-60}
STOP_TIMEOUT=${CEPH_STOP_TIMEOUT:-10}

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*" >&2; }
# CEPH_VERBOSE=1: time the steps (to see where a slow start spends it).
T0=$(date +%s%N)
step() {
	[ "${CEPH_VERBOSE:-0}" = 1 ] || return 0
	local t=$(($(date +%s%N) - T0))
	printf 'cluster.sh: %d.%02ds %s\n' $((t / 1000000000)) $((t / 10000000 % 100)) "$*" >&2
}

usage() {
	sed -n '7,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

need_tools() {
	local t
	for t in ceph-mon ceph-mgr ceph-osd ceph ceph-authtool monmaptool rados rbd; do
		command -v "$t" >/dev/null ||
			die "$t not found: run scripts/install-deps.sh --ceph"
	done
	[ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root, no systemd)"
}

# The daemons of the cluster in DIR, in start order (the mgr is optional).
daemons() {
	local d
	for d in mon.a mgr.x osd.0; do
		[ -d "$DIR/$d" ] && echo "$d"
	done
	return 0
}

# The pid of daemon $1 when it runs (its pid file names a live process
# started with our ceph.conf, so a reused pid is never taken for it).
daemon_pid() {
	local f="$DIR/run/$1.pid" pid
	[ -s "$f" ] || return 1
	pid=$(cat "$f")
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/ceph.conf" || return 1
	echo "$pid"
}

# Show the end of a daemon's log, for error messages.
log_tail() {
	[ -f "$DIR/log/$1.log" ] || return 0
	echo "--- last lines of $DIR/log/$1.log:" >&2
	tail -n 15 "$DIR/log/$1.log" >&2
}

start_daemon() {
	local name=$1 type=${1%%.*} id=${1#*.}
	if daemon_pid "$name" >/dev/null; then
		say "$name already runs"
		return 0
	fi
	rm -f "$DIR/run/$name.pid"
	# Without -f the daemon forks; the parent returns once the child has
	# initialised (the OSD after mounting its store) and writes the pid file.
	if ! "ceph-$type" -c "$DIR/ceph.conf" -i "$id" 2>>"$DIR/log/$name.stderr"; then
		cat "$DIR/log/$name.stderr" >&2
		log_tail "$name"
		die "$name failed to start"
	fi
	local i=0
	while ! daemon_pid "$name" >/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			log_tail "$name"
			die "$name did not stay up (no live pid in $DIR/run/$name.pid)"
		fi
		sleep 0.1
	done
}

# Stop daemons $@ together: SIGTERM, then SIGKILL after STOP_TIMEOUT.
stop_daemons() {
	local d pid pids='' i=0
	for d in "$@"; do
		pid=$(daemon_pid "$d") || continue
		kill -TERM "$pid" 2>/dev/null || true
		pids="$pids $pid"
	done
	for pid in $pids; do
		while [ -d "/proc/$pid" ]; do
			i=$((i + 1))
			if [ $i -gt $((STOP_TIMEOUT * 10)) ]; then
				say "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
				while [ -d "/proc/$pid" ]; do sleep 0.1; done
				break
			fi
			sleep 0.1
		done
	done
	# A fast shutdown (the OSD's default) leaves these behind.
	for d in "$@"; do rm -f "$DIR/run/$d.pid" "$DIR/run/$d.asok"; done
}

any_running() {
	local d
	for d in $(daemons); do
		daemon_pid "$d" >/dev/null && return 0
	done
	return 1
}

# A client command bounded in time: librados waits for ever (or 300 s for
# the mon) by default, and a dead daemon must give an error, not a hang.
ctl() {
	timeout "$WAIT" "$@" --conf "$DIR/ceph.conf"
}

# Wait until the pool serves writes and reads: the test that matters (the
# cluster health may still warn).  The probe object lives in its own
# namespace and is removed, so the test pool looks empty to `rados ls`.
wait_io() {
	local deadline=$(($(date +%s) + WAIT)) d
	while :; do
		if timeout 10 rados --conf "$DIR/ceph.conf" -p "$POOL" -N cluster-sh \
			put probe "$DIR/ceph.conf" 2>/dev/null &&
			timeout 10 rados --conf "$DIR/ceph.conf" -p "$POOL" -N cluster-sh \
				get probe - 2>/dev/null | cmp -s - "$DIR/ceph.conf" &&
			timeout 10 rados --conf "$DIR/ceph.conf" -p "$POOL" -N cluster-sh \
				rm probe 2>/dev/null; then
			return 0
		fi
		# Only these serve I/O (the mgr may still be starting).
		for d in mon.a osd.0; do
			daemon_pid "$d" >/dev/null || { log_tail "$d"; die "$d is not running"; }
		done
		[ "$(date +%s)" -lt "$deadline" ] ||
			die "pool $POOL did not serve I/O within ${WAIT}s (see $DIR/log)"
		sleep 0.2
	done
}

write_conf() {
	local fsid=$1 lo=$((PORT_BASE + 10)) hi=$((PORT_BASE + 99))
	cat >"$DIR/ceph.conf" <<EOF
# Written by tests/ceph/cluster.sh: a single-node test cluster, all in $DIR.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$PORT_BASE,v1:127.0.0.1:$((PORT_BASE + 1))]
mon initial members = a
# Loopback only: explicit addresses (pick_addresses may skip "lo"), no IPv6,
# and a port range of our own for the mgr and the OSD.
public network = 127.0.0.1/32
cluster network = 127.0.0.1/32
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind port min = $lo
ms bind port max = $hi
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
# Nothing outside DIR: these default to /var/run/ceph, /var/log/ceph, /var/lib/ceph.
run dir = $DIR/run
crash dir = $DIR/crash
mon cluster log file = $DIR/log/cluster.log
# One OSD: single replicas, few PGs, no autoscaler, no "no redundancy" warning.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon pg warn min per osd = 0
mon warn on insecure global id reclaim allowed = false
auth allow insecure global id reclaim = false
# Commit map changes sooner than the 1 s default: a faster start and OSD restart.
paxos propose interval = 0.1
# Read by the mon at mkfs: no mgr module that could listen on a port
# (the default enables restful; dashboard and prometheus are not enabled).
mgr initial modules = iostat
# Never mark the only OSD "out" while a test has it stopped.
mon osd down out interval = 0
mon warn on osd down out interval zero = false

[client]
keyring = $DIR/ceph.client.admin.keyring

[mon]
mon data = $DIR/\$name
keyring = $DIR/\$name/keyring
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
# The disk of DIR may be fuller than a production mon would accept.
mon data avail warn = 1
mon data avail crit = 0

[mgr]
mgr data = $DIR/\$name
keyring = $DIR/\$name/keyring
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok

[osd]
osd data = $DIR/\$name
keyring = $DIR/\$name/keyring
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
# BlueStore on a sparse file: mkfs in seconds and, unlike memstore, the
# objects survive a killed or restarted OSD.
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $OSD_SIZE
bluestore block db create = false
bluestore block wal create = false
osd memory target = $OSD_MEMORY
# One op shard instead of 5: each opens and closes the block file at start
# (0.3 s each, the aio thread polls every bdev_aio_poll_ms).
osd op num shards = 1
osd op num threads per shard = 2
bdev aio poll ms = 50
EOF
}

cmd_start() {
	local fsid osd_uuid osd_key mkfs_pid
	if [ -f "$DIR/ceph.conf" ]; then
		any_running && die "a cluster already runs in $DIR (stop it first)"
		die "$DIR already holds a (stopped) cluster: use start-all $DIR, or remove $DIR"
	fi
	# Unix socket paths are limited to 107 bytes.
	[ ${#DIR} -le 80 ] || die "DIR path too long for admin sockets (max 80): $DIR"
	# ceph.conf would expand "$" and trim spaces.
	case $DIR in *[!A-Za-z0-9._/+-]*) die "DIR may only hold [A-Za-z0-9._/+-]: $DIR" ;; esac
	local p
	for p in $PORT_BASE $((PORT_BASE + 1)); do
		# The mgr and OSD skip busy ports of their range; the mon cannot.
		if command -v ss >/dev/null && ss -Htln "sport = :$p" | grep -q .; then
			die "port $p is in use: set CEPH_PORT_BASE to a free range"
		fi
	done
	mkdir -p "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/mon.a" "$DIR/osd.0"
	[ "${CEPH_MGR:-1}" = 0 ] || mkdir -p "$DIR/mgr.x"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	write_conf "$fsid"

	# If anything below fails, stop what was started (DIR stays for the logs).
	trap 'say "start failed: stopping the daemons; logs in $DIR/log"
		kill $(jobs -p) 2>/dev/null || true; cmd_stop' EXIT

	# Keys: every daemon's key goes into the mon store at mkfs, so no
	# "auth add" round trip is needed later (except the OSD's: "osd new").
	local kr="$DIR/mkfs.keyring"  # not in mon.a/: its mkfs wants an empty dir
	ceph-authtool "$kr" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool "$DIR/ceph.client.admin.keyring" --create-keyring --gen-key \
		-n client.admin --cap mon 'allow *' --cap osd 'allow *' \
		--cap mgr 'allow *' --cap mds 'allow *' >/dev/null
	ceph-authtool "$DIR/osd.0/keyring" --create-keyring --gen-key -n osd.0 >/dev/null
	ceph-authtool "$kr" --import-keyring "$DIR/ceph.client.admin.keyring" >/dev/null
	if [ -d "$DIR/mgr.x" ]; then
		ceph-authtool "$DIR/mgr.x/keyring" --create-keyring --gen-key -n mgr.x \
			--cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
		ceph-authtool "$kr" --import-keyring "$DIR/mgr.x/keyring" >/dev/null
	fi

	# The OSD's mkfs needs no monitor (--no-mon-config): run it meanwhile.
	ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" --no-mon-config \
		>"$DIR/log/osd.0.mkfs" 2>&1 &
	mkfs_pid=$!

	monmaptool --create --fsid "$fsid" \
		--addv a "[v2:127.0.0.1:$PORT_BASE,v1:127.0.0.1:$((PORT_BASE + 1))]" \
		"$DIR/monmap" >/dev/null
	ceph-mon -c "$DIR/ceph.conf" -i a --mkfs --monmap "$DIR/monmap" --keyring "$kr" \
		>"$DIR/log/mon.a.mkfs" 2>&1 || { cat "$DIR/log/mon.a.mkfs" >&2; die "mon mkfs failed"; }
	rm -f "$kr"
	step "mon mkfs done"
	start_daemon mon.a
	step "mon started"
	# Create the pool and register the OSD while its mkfs may still run:
	# neither needs a running OSD, and the ceph CLI is slow to start.
	ctl ceph osd pool create "$POOL" 8 8 >"$DIR/log/pool-create" 2>&1 &
	local pool_pid=$!
	osd_key=$(ceph-authtool -p -n osd.0 "$DIR/osd.0/keyring")
	printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$DIR/osd.0/new.json"
	ctl ceph osd new "$osd_uuid" 0 -i "$DIR/osd.0/new.json" >/dev/null ||
		die "ceph osd new failed (is the mon up? see $DIR/log/mon.a.log)"
	rm -f "$DIR/osd.0/new.json"
	step "osd.0 registered"
	wait "$mkfs_pid" || { cat "$DIR/log/osd.0.mkfs" >&2; die "OSD mkfs failed"; }
	step "osd.0 mkfs done"
	start_daemon osd.0
	step "osd.0 started"
	# Client I/O does not need the mgr: its slow (python) start is last
	# and overlaps the PG creation (with 2 CPUs it would slow the rest).
	local mgr_pid=
	if [ -d "$DIR/mgr.x" ]; then
		start_daemon mgr.x &
		mgr_pid=$!
	fi
	wait "$pool_pid" || { cat "$DIR/log/pool-create" >&2; die "pool create failed"; }
	step "pool created"

	# rbd pool init tags the pool "rbd" and writes rbd_info: it waits for
	# the PGs, so it also tells when the OSD serves.
	ctl rbd pool init "$POOL" || die "rbd pool init $POOL failed"
	step "rbd pool init done"
	wait_io
	step "pool serves I/O"
	[ -z "$mgr_pid" ] || wait "$mgr_pid" || die "mgr.x failed to start"
	step "mgr started"
	trap - EXIT
	say "cluster up in $DIR (mon 127.0.0.1:$PORT_BASE, pool $POOL)"
}

# The OSD first (it tells the mon it goes down, and would wait for a
# stopped mon), with the mgr; each takes ~2 s to exit after SIGTERM.
cmd_stop() {
	[ -d "$DIR" ] || return 0
	stop_daemons osd.0 mgr.x
	stop_daemons mon.a
}

cmd_start_all() {
	[ -f "$DIR/ceph.conf" ] || die "no cluster in $DIR (run start first)"
	local d
	for d in $(daemons); do start_daemon "$d"; done
	wait_io
}

cmd_status() {
	local d pid rc=0
	for d in $(daemons); do
		if pid=$(daemon_pid "$d"); then
			echo "$d running (pid $pid)"
		else
			echo "$d stopped"
			rc=1
		fi
	done
	return $rc
}

[ $# -eq 2 ] || usage
CMD=$1
[ -n "$2" ] || usage
# Absolute, so ceph.conf works from any directory.
case $2 in
/*) DIR=$2 ;;
*) DIR=$PWD/$2 ;;
esac
DIR=${DIR%/}

case $CMD in
start)
	need_tools
	cmd_start
	;;
stop | stop-all) cmd_stop ;;
start-all)
	need_tools
	cmd_start_all
	;;
env)
	[ -f "$DIR/ceph.conf" ] || die "no cluster in $DIR"
	printf "export CEPH_CONF='%s'\n" "$DIR/ceph.conf"
	printf "export CEPH_POOL='%s'\n" "$POOL"
	;;
status)
	[ -f "$DIR/ceph.conf" ] || die "no cluster in $DIR"
	cmd_status
	;;
stop-osd) stop_daemons osd.0 ;;
start-osd)
	need_tools
	start_daemon osd.0
	wait_io
	;;
restart-osd)
	need_tools
	stop_daemons osd.0
	start_daemon osd.0
	wait_io
	;;
*) usage ;;
esac

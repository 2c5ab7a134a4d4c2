// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl-errno - every input check of /dev/blktrack-ctl against its errno.
 *
 *	ioctl-errno DEV                   as root; DEV is a block device that is
 *	                                  not attached (a loop device): the test
 *	                                  attaches, writes to and detaches it
 *	ioctl-errno --unprivileged [DEV]  as root: drops to uid/gid 65534 and
 *	                                  checks EACCES on open and EPERM on the
 *	                                  ioctls of an fd opened before the drop
 *	ioctl-errno --snap-refused DEV    as root, DEV not attached, while another
 *	                                  ftrace user holds IPMODIFY on
 *	                                  submit_bio_noacct (tests/vm/kmod/
 *	                                  ipmodify_hog.ko): CHECKPOINT_SNAP is
 *	                                  refused and changes nothing
 *	ioctl-errno --attach-refused DEV  as root: ATTACH of DEV (a DAX-capable
 *	                                  disk, tests/vm/0464) fails EOPNOTSUPP
 *	                                  and changes nothing
 *
 * The contract is the comments of <linux/blktrack.h> (and doc/ABI.md).
 * Every call that must fail is given one thing wrong, otherwise valid
 * arguments, and the state of the volume (STATUS and the LIST count) must
 * be the same after the failure as before. Output is TAP-like:
 * "ok N - what" or "not ok N - what (got E, want W)"; the exit status is
 * the number of failures (capped at 100), 0 when all pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/blktrack.h>

#define CTL_PATH "/dev/" BLKTRACK_CTL_NAME
#define BOGUS_PTR ((void *)8)		/* never mapped: page 0 */
#define BOGUS_U64 ((__u64)8)

static int ctl = -1;
static unsigned int ntest, nfail;
static struct blktrack_devno dev;	/* the volume under test */
static const struct blktrack_devno nodev = { 4095, 1048575 };	/* no such device */

/* ---- reporting ---------------------------------------------------------- */

static const char *ename(int e)
{
	const char *n;

	if (!e)
		return "0";
	n = strerrorname_np(e);
	return n ? n : "?";
}

static void report(bool pass, const char *extra, const char *fmt, va_list ap)
{
	ntest++;
	printf("%sok %u - ", pass ? "" : "not ", ntest);
	vprintf(fmt, ap);
	if (!pass) {
		nfail++;
		if (extra)
			printf(" (%s)", extra);
	}
	putchar('\n');
	fflush(stdout);
}

static bool check(bool pass, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool check(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(pass, NULL, fmt, ap);
	va_end(ap);
	return pass;
}

static void bail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (%s)\n", strerror(errno));
	exit(100);
}

/* 0 or the errno of the ioctl. */
static int xioctl(unsigned long cmd, void *arg)
{
	return ioctl(ctl, cmd, arg) < 0 ? errno : 0;
}

/* ---- state snapshots ---------------------------------------------------- */

struct snap {
	int status_err;
	struct blktrack_status st;
	int list_err;
	__u32 list_count;
};

static void take_snap(struct snap *s)
{
	struct blktrack_list l = { .size = sizeof(l) };

	memset(s, 0, sizeof(*s));
	s->st.size = sizeof(s->st);
	s->st.dev = dev;
	s->status_err = xioctl(BLKTRACK_IOC_STATUS, &s->st);
	s->list_err = xioctl(BLKTRACK_IOC_LIST, &l);
	s->list_count = l.count;
}

static const char *snap_diff(const struct snap *a, const struct snap *b)
{
	if (a->status_err != b->status_err)
		return "attached state changed";
	if (a->list_err != b->list_err || a->list_count != b->list_count)
		return "LIST count changed";
	if (a->st.flags != b->st.flags)
		return "status flags (pending) changed";
	if (memcmp(&a->st.stamp, &b->st.stamp, sizeof(a->st.stamp)))
		return "stamp changed";
	if (a->st.active_dirty != b->st.active_dirty ||
	    a->st.pending_dirty != b->st.pending_dirty)
		return "dirty counts changed";
	if (memcmp(&a->st, &b->st, sizeof(a->st)))
		return "status changed";
	return NULL;
}

/*
 * A call that had to fail succeeded: put the volume back as it was (as far
 * as possible), so that one kernel bug does not fail every later check.
 */
static void repair(unsigned long cmd, void *arg, const struct snap *before)
{
	struct blktrack_dev_arg d = { .size = sizeof(d), .dev = dev };
	struct blktrack_attach at = { .size = sizeof(at), .dev = dev };
	struct blktrack_stamp_arg sa = { .size = sizeof(sa), .dev = dev };
	struct blktrack_checkpoint c = { .size = sizeof(c), .count = 1 };
	struct blktrack_checkpoint_vol v = { .dev = dev };
	struct snap now;

	printf("# unexpected success: repairing the state\n");
	if (cmd == BLKTRACK_IOC_ATTACH && arg) {
		d.dev = ((struct blktrack_attach *)arg)->dev;
		xioctl(BLKTRACK_IOC_DETACH, &d);
		d.dev = dev;
	}
	take_snap(&now);
	if (before->status_err && !now.status_err)
		xioctl(BLKTRACK_IOC_DETACH, &d);
	if (!before->status_err && now.status_err) {
		at.block_size = before->st.block_size;
		xioctl(BLKTRACK_IOC_ATTACH, &at);
	}
	take_snap(&now);
	if (now.status_err)
		return;
	if (!(before->st.flags & BLKTRACK_STATUS_PENDING) &&
	    (now.st.flags & BLKTRACK_STATUS_PENDING)) {
		sa.stamp = now.st.stamp;
		xioctl(BLKTRACK_IOC_ABORT, &sa);
	}
	if ((before->st.flags & BLKTRACK_STATUS_PENDING) &&
	    !(now.st.flags & BLKTRACK_STATUS_PENDING)) {
		c.vols_ptr = (uintptr_t)&v;
		xioctl(BLKTRACK_IOC_CHECKPOINT, &c);
	}
}

/*
 * expect(want, cmd, arg, what...): the ioctl must fail with errno @want
 * (or succeed if 0) and, when it fails, change nothing.
 */
static int expect(int want, unsigned long cmd, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int expect(int want, unsigned long cmd, void *arg, const char *fmt, ...)
{
	struct snap before, after;
	const char *changed = NULL;
	char extra[160];
	va_list ap;
	int got;

	take_snap(&before);
	got = xioctl(cmd, arg);
	if (got) {
		take_snap(&after);
		changed = snap_diff(&before, &after);
	} else if (want) {
		repair(cmd, arg, &before);
	}
	if (got != want)
		snprintf(extra, sizeof(extra), "got %s, want %s", ename(got), ename(want));
	else if (changed)
		snprintf(extra, sizeof(extra), "right errno %s, but %s", ename(got), changed);
	va_start(ap, fmt);
	report(got == want && !changed, extra, fmt, ap);
	va_end(ap);
	return got;
}

static struct blktrack_status status(void)
{
	struct blktrack_status st = { .size = sizeof(st), .dev = dev };

	if (xioctl(BLKTRACK_IOC_STATUS, &st))
		memset(&st, 0, sizeof(st));
	return st;
}

/* ---- one valid argument per ioctl, for the current state --------------- */

struct arg {
	union {
		__u64 size;
		struct blktrack_version version;
		struct blktrack_attach attach;
		struct blktrack_dev_arg dev_arg;
		struct blktrack_list list;
		struct blktrack_status status;
		struct blktrack_checkpoint ckpt;
		struct blktrack_read_extents rd;
		struct blktrack_stamp_arg stamp;
		struct blktrack_restore restore;
		struct blktrack_checkpoint_snap csnap;
		struct blktrack_snap_read srd;
		struct blktrack_snap_status sst;
		unsigned char bytes[256];
	} u;
};

static struct blktrack_devno list_buf[16];
static struct blktrack_checkpoint_vol ckpt_vols[BLKTRACK_CHECKPOINT_MAX + 1];
static struct blktrack_extent ext_buf[64];
static struct blktrack_extent restore_ext[2];
static char snap_buf[65536];
static const __u8 saved_generation[16] = {
	0x5a, 0x5a, 0x5a, 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

enum { FILL_PENDING = 0, FILL_ACTIVE = 1 };

static void fill(unsigned long cmd, struct arg *a, int mode)
{
	struct blktrack_status st = status();

	memset(a, 0, sizeof(*a));
	switch (cmd) {
	case BLKTRACK_IOC_VERSION:
		a->u.version.size = sizeof(a->u.version);
		break;
	case BLKTRACK_IOC_ATTACH:
		a->u.attach.size = sizeof(a->u.attach);
		a->u.attach.dev = dev;
		a->u.attach.block_size = 4096;
		break;
	case BLKTRACK_IOC_DETACH:
		a->u.dev_arg.size = sizeof(a->u.dev_arg);
		a->u.dev_arg.dev = dev;
		break;
	case BLKTRACK_IOC_LIST:
		a->u.list.size = sizeof(a->u.list);
		a->u.list.devs_ptr = (uintptr_t)list_buf;
		a->u.list.capacity = 16;
		break;
	case BLKTRACK_IOC_STATUS:
		a->u.status.size = sizeof(a->u.status);
		a->u.status.dev = dev;
		break;
	case BLKTRACK_IOC_CHECKPOINT:
		memset(ckpt_vols, 0, sizeof(ckpt_vols));
		ckpt_vols[0].dev = dev;
		a->u.ckpt.size = sizeof(a->u.ckpt);
		a->u.ckpt.vols_ptr = (uintptr_t)ckpt_vols;
		a->u.ckpt.count = 1;
		break;
	case BLKTRACK_IOC_READ_EXTENTS:
		a->u.rd.size = sizeof(a->u.rd);
		a->u.rd.dev = dev;
		a->u.rd.flags = mode == FILL_ACTIVE ? BLKTRACK_READ_ACTIVE : 0;
		a->u.rd.stamp = st.stamp;
		a->u.rd.extents_ptr = (uintptr_t)ext_buf;
		a->u.rd.capacity = 64;
		break;
	case BLKTRACK_IOC_CHECKPOINT_SNAP:
		memset(ckpt_vols, 0, sizeof(ckpt_vols));
		ckpt_vols[0].dev = dev;
		a->u.csnap.size = sizeof(a->u.csnap);
		a->u.csnap.vols_ptr = (uintptr_t)ckpt_vols;
		a->u.csnap.count = 1;
		break;
	case BLKTRACK_IOC_SNAP_READ:
		a->u.srd.size = sizeof(a->u.srd);
		a->u.srd.dev = dev;
		a->u.srd.flags = BLKTRACK_SNAP_READ_KEEP;
		a->u.srd.stamp = st.stamp;
		/* Blocks 5-7: in the pending map (write_blocks()). */
		a->u.srd.offset = 5 * 4096;
		a->u.srd.length = 3 * 4096;
		a->u.srd.buf_ptr = (uintptr_t)snap_buf;
		break;
	case BLKTRACK_IOC_SNAP_STATUS:
		a->u.sst.size = sizeof(a->u.sst);
		a->u.sst.dev = dev;
		break;
	case BLKTRACK_IOC_COMMIT:
	case BLKTRACK_IOC_ABORT:
		a->u.stamp.size = sizeof(a->u.stamp);
		a->u.stamp.dev = dev;
		a->u.stamp.stamp = st.stamp;
		break;
	case BLKTRACK_IOC_RESTORE:
		/* Blocks 1 and 3 to 4 of a saved history at epoch 7. */
		restore_ext[0].offset = st.block_size;
		restore_ext[0].length = st.block_size;
		restore_ext[1].offset = 3ULL * st.block_size;
		restore_ext[1].length = 2ULL * st.block_size;
		a->u.restore.size = sizeof(a->u.restore);
		a->u.restore.dev = dev;
		memcpy(a->u.restore.stamp.generation, saved_generation, 16);
		a->u.restore.stamp.epoch = 7;
		a->u.restore.dev_size = st.dev_size;
		a->u.restore.block_size = st.block_size;
		a->u.restore.count = 2;
		a->u.restore.extents_ptr = (uintptr_t)restore_ext;
		break;
	}
}

/* A field that must be zero on input: its offset and width. */
struct zfield {
	const char *name;
	size_t off, width;
	bool is_flags;		/* unknown bits -> EINVAL */
	__u64 known;		/* flag bits the kernel knows */
};

#define Z(type, f)		{ #f, offsetof(struct type, f), sizeof(((struct type *)0)->f), false, 0 }
#define ZR(type, f, i)		{ #f "[" #i "]", offsetof(struct type, f[i]), 8, false, 0 }
#define ZF(type, f, k)		{ #f, offsetof(struct type, f), 4, true, (k) }

struct ioc {
	const char *name;
	unsigned long cmd;
	size_t size;
	struct zfield z[8];
};

static const struct ioc iocs[] = {
	{ "VERSION", BLKTRACK_IOC_VERSION, sizeof(struct blktrack_version), {
		Z(blktrack_version, reserved0),
		ZR(blktrack_version, reserved, 0), ZR(blktrack_version, reserved, 1),
		ZR(blktrack_version, reserved, 2), ZR(blktrack_version, reserved, 3) } },
	{ "ATTACH", BLKTRACK_IOC_ATTACH, sizeof(struct blktrack_attach), {
		ZF(blktrack_attach, flags, 0),
		ZR(blktrack_attach, reserved, 0), ZR(blktrack_attach, reserved, 1),
		ZR(blktrack_attach, reserved, 2), ZR(blktrack_attach, reserved, 3) } },
	{ "DETACH", BLKTRACK_IOC_DETACH, sizeof(struct blktrack_dev_arg), {
		ZF(blktrack_dev_arg, flags, 0), Z(blktrack_dev_arg, reserved0),
		ZR(blktrack_dev_arg, reserved, 0), ZR(blktrack_dev_arg, reserved, 1) } },
	{ "LIST", BLKTRACK_IOC_LIST, sizeof(struct blktrack_list), {
		ZF(blktrack_list, flags, 0), Z(blktrack_list, reserved0),
		ZR(blktrack_list, reserved, 0), ZR(blktrack_list, reserved, 1) } },
	{ "STATUS", BLKTRACK_IOC_STATUS, sizeof(struct blktrack_status), {
		ZF(blktrack_status, flags, 0),
		ZR(blktrack_status, reserved, 0), ZR(blktrack_status, reserved, 1),
		ZR(blktrack_status, reserved, 2) } },
	{ "CHECKPOINT", BLKTRACK_IOC_CHECKPOINT, sizeof(struct blktrack_checkpoint), {
		ZF(blktrack_checkpoint, flags, 0),
		ZR(blktrack_checkpoint, reserved, 0), ZR(blktrack_checkpoint, reserved, 1) } },
	{ "READ_EXTENTS", BLKTRACK_IOC_READ_EXTENTS, sizeof(struct blktrack_read_extents), {
		ZF(blktrack_read_extents, flags, BLKTRACK_READ_ACTIVE),
		Z(blktrack_read_extents, reserved0),
		ZR(blktrack_read_extents, reserved, 0), ZR(blktrack_read_extents, reserved, 1) } },
	{ "COMMIT", BLKTRACK_IOC_COMMIT, sizeof(struct blktrack_stamp_arg), {
		ZF(blktrack_stamp_arg, flags, 0), Z(blktrack_stamp_arg, reserved0),
		ZR(blktrack_stamp_arg, reserved, 0), ZR(blktrack_stamp_arg, reserved, 1) } },
	{ "ABORT", BLKTRACK_IOC_ABORT, sizeof(struct blktrack_stamp_arg), {
		ZF(blktrack_stamp_arg, flags, 0), Z(blktrack_stamp_arg, reserved0),
		ZR(blktrack_stamp_arg, reserved, 0), ZR(blktrack_stamp_arg, reserved, 1) } },
	{ "RESTORE", BLKTRACK_IOC_RESTORE, sizeof(struct blktrack_restore), {
		ZF(blktrack_restore, flags, BLKTRACK_RESTORE_INVALID),
		Z(blktrack_restore, reason),
		ZR(blktrack_restore, reserved, 0), ZR(blktrack_restore, reserved, 1) } },
	{ "CHECKPOINT_SNAP", BLKTRACK_IOC_CHECKPOINT_SNAP,
	  sizeof(struct blktrack_checkpoint_snap), {
		ZF(blktrack_checkpoint_snap, flags, BLKTRACK_SNAP_ALL | BLKTRACK_SNAP_STORE_FD),
		Z(blktrack_checkpoint_snap, store_fd),
		Z(blktrack_checkpoint_snap, reserved0),
		Z(blktrack_checkpoint_snap, reserved) } },
	{ "SNAP_READ", BLKTRACK_IOC_SNAP_READ, sizeof(struct blktrack_snap_read), {
		ZF(blktrack_snap_read, flags,
		   BLKTRACK_SNAP_READ_KEEP | BLKTRACK_SNAP_READ_RELEASE),
		Z(blktrack_snap_read, reserved0),
		ZR(blktrack_snap_read, reserved, 0), ZR(blktrack_snap_read, reserved, 1) } },
	{ "SNAP_STATUS", BLKTRACK_IOC_SNAP_STATUS, sizeof(struct blktrack_snap_status), {
		ZF(blktrack_snap_status, flags, 0), Z(blktrack_snap_status, error),
		ZR(blktrack_snap_status, reserved, 0), ZR(blktrack_snap_status, reserved, 1),
		ZR(blktrack_snap_status, reserved, 2), ZR(blktrack_snap_status, reserved, 3) } },
};

static const struct ioc *find_ioc(unsigned long cmd)
{
	size_t i;

	for (i = 0; i < sizeof(iocs) / sizeof(iocs[0]); i++)
		if (iocs[i].cmd == cmd)
			return &iocs[i];
	bail("no ioctl %#lx in the table", cmd);
}

static void set_field(struct arg *a, const struct zfield *z, __u64 v)
{
	if (z->width == 4) {
		__u32 v32 = v;

		memcpy(a->u.bytes + z->off, &v32, 4);
	} else {
		memcpy(a->u.bytes + z->off, &v, 8);
	}
}

/*
 * The checks every ioctl shares, in a state where the filled argument is
 * valid: wrong sizes, unknown flags, nonzero reserved fields, bad pointer.
 */
static void generic_checks(unsigned long cmd, int mode, const char *state)
{
	const struct ioc *c = find_ioc(cmd);
	static const __s64 deltas[] = { -8, 8, -1, 1 };
	const struct zfield *z;
	struct arg a;
	__u64 bit;
	size_t i;

	for (i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		fill(cmd, &a, mode);
		a.u.size = c->size + deltas[i];
		expect(EMSGSIZE, cmd, &a, "%s (%s): size %llu (struct is %zu) -> EMSGSIZE",
		       c->name, state, (unsigned long long)a.u.size, c->size);
	}
	fill(cmd, &a, mode);
	a.u.size = 0;
	expect(EMSGSIZE, cmd, &a, "%s (%s): size 0 -> EMSGSIZE", c->name, state);
	fill(cmd, &a, mode);
	a.u.size = ~0ULL;
	expect(EMSGSIZE, cmd, &a, "%s (%s): size 2^64-1 -> EMSGSIZE", c->name, state);

	for (z = c->z; z < c->z + 8 && z->name; z++) {
		if (z->is_flags) {
			/* the lowest unknown bit and the highest */
			for (bit = 1; bit & z->known; bit <<= 1)
				;
			fill(cmd, &a, mode);
			set_field(&a, z, bit | (a.u.bytes[z->off] & z->known));
			expect(EINVAL, cmd, &a, "%s (%s): unknown flag %#llx -> EINVAL",
			       c->name, state, (unsigned long long)bit);
			fill(cmd, &a, mode);
			set_field(&a, z, (1U << 31) | (a.u.bytes[z->off] & z->known));
			expect(EINVAL, cmd, &a, "%s (%s): unknown flag 0x80000000 -> EINVAL",
			       c->name, state);
			continue;
		}
		fill(cmd, &a, mode);
		set_field(&a, z, 1);
		expect(EINVAL, cmd, &a, "%s (%s): %s = 1 -> EINVAL", c->name, state, z->name);
		fill(cmd, &a, mode);
		set_field(&a, z, z->width == 4 ? 1ULL << 31 : 1ULL << 63);
		expect(EINVAL, cmd, &a, "%s (%s): %s top bit set -> EINVAL", c->name,
		       state, z->name);
	}

	expect(EFAULT, cmd, NULL, "%s (%s): NULL argument -> EFAULT", c->name, state);
	expect(EFAULT, cmd, BOGUS_PTR, "%s (%s): unmapped argument -> EFAULT",
	       c->name, state);
}

/* ---- the checks ---------------------------------------------------------- */

static struct blktrack_devno devno_of(dev_t d)
{
	struct blktrack_devno n = { major(d), minor(d) };

	return n;
}

static void attach_ok(__u32 block_size)
{
	struct arg a;

	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	a.u.attach.block_size = block_size;
	if (expect(0, BLKTRACK_IOC_ATTACH, &a, "ATTACH block size %u -> ok", block_size))
		bail("cannot attach the test device");
}

static void detach_ok(void)
{
	struct arg a;

	fill(BLKTRACK_IOC_DETACH, &a, 0);
	if (expect(0, BLKTRACK_IOC_DETACH, &a, "DETACH -> ok"))
		bail("cannot detach the test device");
}

static void checks_version(void)
{
	struct arg a;

	fill(BLKTRACK_IOC_VERSION, &a, 0);
	if (!expect(0, BLKTRACK_IOC_VERSION, &a, "VERSION -> ok"))
		check(a.u.version.abi_version == BLKTRACK_ABI_VERSION,
		      "VERSION: abi_version %u == %u", a.u.version.abi_version,
		      BLKTRACK_ABI_VERSION);
	generic_checks(BLKTRACK_IOC_VERSION, 0, "any");
}

static void checks_not_attached(void)
{
	struct blktrack_status st = { .size = sizeof(st), .dev = dev };
	struct arg a;

	expect(ENOENT, BLKTRACK_IOC_STATUS, &st, "STATUS of a volume not attached -> ENOENT");
	fill(BLKTRACK_IOC_DETACH, &a, 0);
	expect(ENOENT, BLKTRACK_IOC_DETACH, &a, "DETACH not attached -> ENOENT");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	expect(ENOENT, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT not attached -> ENOENT");
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_PENDING);
	expect(ENOENT, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (pending) not attached -> ENOENT");
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_ACTIVE);
	expect(ENOENT, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (active) not attached -> ENOENT");
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	expect(ENOENT, BLKTRACK_IOC_COMMIT, &a, "COMMIT not attached -> ENOENT");
	fill(BLKTRACK_IOC_ABORT, &a, 0);
	expect(ENOENT, BLKTRACK_IOC_ABORT, &a, "ABORT not attached -> ENOENT");
}

static void checks_attach(void)
{
	static const __u32 bad_bs[] = {
		1, 512, 2048, 4095, 4097, 6000, 12288, 65535,
		BLKTRACK_BLOCK_SIZE_MAX * 2, 32U << 20, 1U << 31, 0xffffffffU,
	};
	struct blktrack_status st;
	struct arg a;
	size_t i;

	generic_checks(BLKTRACK_IOC_ATTACH, 0, "not attached");

	for (i = 0; i < sizeof(bad_bs) / sizeof(bad_bs[0]); i++) {
		fill(BLKTRACK_IOC_ATTACH, &a, 0);
		a.u.attach.block_size = bad_bs[i];
		expect(EINVAL, BLKTRACK_IOC_ATTACH, &a, "ATTACH block size %u -> EINVAL",
		       bad_bs[i]);
	}

	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	a.u.attach.dev = nodev;
	expect(ENODEV, BLKTRACK_IOC_ATTACH, &a, "ATTACH %u:%u (no such device) -> ENODEV",
	       nodev.major, nodev.minor);
	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	a.u.attach.dev.major = dev.major + 4096;
	expect(ENODEV, BLKTRACK_IOC_ATTACH, &a,
	       "ATTACH major %u (beyond 12 bits, must not alias %u) -> ENODEV",
	       a.u.attach.dev.major, dev.major);
	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	a.u.attach.dev.minor = dev.minor + (1U << 20);
	expect(ENODEV, BLKTRACK_IOC_ATTACH, &a,
	       "ATTACH minor %u (beyond 20 bits) -> ENODEV", a.u.attach.dev.minor);
	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	a.u.attach.dev.major = 0;
	a.u.attach.dev.minor = 0;
	expect(ENODEV, BLKTRACK_IOC_ATTACH, &a, "ATTACH 0:0 -> ENODEV");

	/* the valid block sizes: 0 is the default, and both ends of the range */
	attach_ok(0);
	st = status();
	check(st.block_size == BLKTRACK_BLOCK_SIZE_DEFAULT,
	      "block size 0 gives the default %u (got %u)", BLKTRACK_BLOCK_SIZE_DEFAULT,
	      st.block_size);
	check(st.state == BLKTRACK_STATE_TRACKING && st.stamp.epoch == 0 &&
	      !(st.flags & BLKTRACK_STATUS_PENDING),
	      "a new attach is tracking, epoch 0, nothing pending");
	detach_ok();
	attach_ok(BLKTRACK_BLOCK_SIZE_MAX);
	st = status();
	check(st.block_size == BLKTRACK_BLOCK_SIZE_MAX, "block size %u kept (got %u)",
	      BLKTRACK_BLOCK_SIZE_MAX, st.block_size);
	detach_ok();
	attach_ok(8192);
	detach_ok();
	attach_ok(BLKTRACK_BLOCK_SIZE_MIN);

	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	expect(EEXIST, BLKTRACK_IOC_ATTACH, &a, "ATTACH twice -> EEXIST");
	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	a.u.attach.block_size = 65536;
	expect(EEXIST, BLKTRACK_IOC_ATTACH, &a,
	       "ATTACH twice with another block size -> EEXIST");
}

static void checks_attached(void)
{
	struct arg a;

	generic_checks(BLKTRACK_IOC_DETACH, 0, "attached");
	generic_checks(BLKTRACK_IOC_STATUS, 0, "attached");
	generic_checks(BLKTRACK_IOC_LIST, 0, "attached");

	fill(BLKTRACK_IOC_DETACH, &a, 0);
	a.u.dev_arg.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_DETACH, &a, "DETACH of another device -> ENOENT");
	fill(BLKTRACK_IOC_STATUS, &a, 0);
	a.u.status.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_STATUS, &a, "STATUS of another device -> ENOENT");

	fill(BLKTRACK_IOC_LIST, &a, 0);
	a.u.list.capacity = 0;
	a.u.list.devs_ptr = 0;
	if (!expect(0, BLKTRACK_IOC_LIST, &a, "LIST capacity 0 (count only) -> ok"))
		check(a.u.list.count >= 1, "LIST counts the attached volume (count %u)",
		      a.u.list.count);
	fill(BLKTRACK_IOC_LIST, &a, 0);
	if (!expect(0, BLKTRACK_IOC_LIST, &a, "LIST -> ok")) {
		bool found = false;
		__u32 i;

		for (i = 0; i < a.u.list.count && i < 16; i++)
			found |= list_buf[i].major == dev.major && list_buf[i].minor == dev.minor;
		check(found, "LIST names the attached volume");
	}
	fill(BLKTRACK_IOC_LIST, &a, 0);
	a.u.list.devs_ptr = BOGUS_U64;
	expect(EFAULT, BLKTRACK_IOC_LIST, &a, "LIST devs_ptr unmapped -> EFAULT");

	fill(BLKTRACK_IOC_STATUS, &a, 0);
	a.u.status.state = 77;		/* OUT fields are ignored on input */
	a.u.status.dev_size = 77;
	a.u.status.diskseq = 77;
	expect(0, BLKTRACK_IOC_STATUS, &a, "STATUS ignores OUT fields on input -> ok");
}

/* Dirty some blocks so that the maps have extents. */
static void write_blocks(const char *path)
{
	static char buf[3 * 4096];
	int fd;

	memset(buf, 0xa5, sizeof(buf));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		bail("open %s", path);
	if (pwrite(fd, buf, sizeof(buf), 5 * 4096) != (ssize_t)sizeof(buf) ||
	    pwrite(fd, buf, 100, 1 << 20) != 100 || fsync(fd) < 0)
		bail("write %s", path);
	close(fd);
}

static void checks_read(int mode, const char *state)
{
	struct blktrack_status st = status();
	__u64 end = (st.dev_size + st.block_size - 1) / st.block_size * st.block_size;
	struct arg a;

	generic_checks(BLKTRACK_IOC_READ_EXTENTS, mode, state);

	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	if (!expect(0, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS (%s) -> ok", state))
		check(a.u.rd.count >= 1 && ext_buf[0].length > 0,
		      "READ_EXTENTS (%s) returns the written blocks (count %u)", state,
		      a.u.rd.count);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.capacity = 0;
	expect(EINVAL, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS (%s): capacity 0 -> EINVAL",
	       state);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.cursor = 1;
	expect(EINVAL, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS (%s): cursor 1 -> EINVAL",
	       state);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.cursor = st.block_size - 512;
	expect(EINVAL, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (%s): cursor %llu (not block aligned) -> EINVAL", state,
	       (unsigned long long)a.u.rd.cursor);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.cursor = end + st.block_size;
	expect(EINVAL, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (%s): cursor %llu beyond the end (%llu) -> EINVAL", state,
	       (unsigned long long)a.u.rd.cursor, (unsigned long long)st.dev_size);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.cursor = ~0ULL << 12;
	expect(EINVAL, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (%s): cursor near 2^64 -> EINVAL", state);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.extents_ptr = BOGUS_U64;
	expect(EFAULT, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (%s): extents_ptr unmapped -> EFAULT", state);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, mode);
	a.u.rd.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS (%s) of another device -> ENOENT", state);
}

static void checks_no_pending(void)
{
	struct arg a;

	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_PENDING);
	expect(ENODATA, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS pending with none pending -> ENODATA");
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_COMMIT, &a, "COMMIT with none pending -> ENODATA");
	fill(BLKTRACK_IOC_ABORT, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_ABORT, &a, "ABORT with none pending -> ENODATA");
}

static void checks_checkpoint(void)
{
	struct arg a;
	__u32 i;

	generic_checks(BLKTRACK_IOC_CHECKPOINT, 0, "attached");

	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	a.u.ckpt.count = 0;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT count 0 -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	for (i = 1; i <= BLKTRACK_CHECKPOINT_MAX; i++) {
		ckpt_vols[i].dev.major = 4095;
		ckpt_vols[i].dev.minor = i;
	}
	a.u.ckpt.count = BLKTRACK_CHECKPOINT_MAX + 1;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT count %u (> max %u) -> EINVAL",
	       BLKTRACK_CHECKPOINT_MAX + 1, BLKTRACK_CHECKPOINT_MAX);
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	a.u.ckpt.count = 0xffffffffU;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT count 2^32-1 -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	ckpt_vols[1].dev = dev;
	a.u.ckpt.count = 2;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT of one volume twice -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	ckpt_vols[0].reserved0 = 1;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT vol.reserved0 = 1 -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	ckpt_vols[1].dev = nodev;
	a.u.ckpt.count = 2;
	expect(ENOENT, BLKTRACK_IOC_CHECKPOINT, &a,
	       "CHECKPOINT of an attached and an unattached volume -> ENOENT, nothing cut");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	ckpt_vols[0].dev = nodev;
	ckpt_vols[1].dev = dev;
	a.u.ckpt.count = 2;
	expect(ENOENT, BLKTRACK_IOC_CHECKPOINT, &a,
	       "CHECKPOINT of an unattached and an attached volume -> ENOENT, nothing cut");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	a.u.ckpt.vols_ptr = BOGUS_U64;
	expect(EFAULT, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT vols_ptr unmapped -> EFAULT");
}

/* CHECKPOINT for real: returns the pending stamp. */
static struct blktrack_stamp checkpoint_ok(void)
{
	struct blktrack_status before = status(), after;
	struct arg a;

	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	if (expect(0, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT -> ok"))
		bail("cannot checkpoint");
	after = status();
	check(!memcmp(&ckpt_vols[0].stamp, &before.stamp, sizeof(before.stamp)),
	      "CHECKPOINT stamp is the active map's stamp from STATUS");
	check(ckpt_vols[0].dirty == before.active_dirty,
	      "CHECKPOINT dirty %llu == active_dirty before %llu",
	      (unsigned long long)ckpt_vols[0].dirty,
	      (unsigned long long)before.active_dirty);
	check((after.flags & BLKTRACK_STATUS_PENDING) &&
	      after.pending_dirty == ckpt_vols[0].dirty && after.active_dirty == 0,
	      "after CHECKPOINT: pending, pending_dirty %llu, active_dirty %llu",
	      (unsigned long long)after.pending_dirty,
	      (unsigned long long)after.active_dirty);
	check(!memcmp(&after.stamp, &ckpt_vols[0].stamp, sizeof(after.stamp)),
	      "after CHECKPOINT: STATUS stamp is the pending stamp");
	return ckpt_vols[0].stamp;
}

static void checks_pending(struct blktrack_stamp stamp)
{
	static const unsigned long cmds[] = { BLKTRACK_IOC_COMMIT, BLKTRACK_IOC_ABORT };
	struct arg a;
	size_t i;

	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	expect(EBUSY, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT while pending -> EBUSY");

	checks_read(FILL_PENDING, "pending");

	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_PENDING);
	a.u.rd.stamp.generation[0] ^= 0x01;
	expect(ESTALE, BLKTRACK_IOC_READ_EXTENTS, &a,
	       "READ_EXTENTS pending, wrong generation -> ESTALE");
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_PENDING);
	a.u.rd.stamp.epoch++;
	expect(ESTALE, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS pending, epoch+1 -> ESTALE");
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_PENDING);
	a.u.rd.stamp.epoch--;
	expect(ESTALE, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS pending, epoch-1 -> ESTALE");
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_ACTIVE);
	a.u.rd.stamp.generation[3] ^= 0xff;
	expect(0, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS active ignores the stamp -> ok");

	for (i = 0; i < 2; i++) {
		const struct ioc *c = find_ioc(cmds[i]);

		generic_checks(cmds[i], 0, "pending");
		fill(cmds[i], &a, 0);
		a.u.stamp.stamp.generation[15] ^= 0x80;
		expect(ESTALE, cmds[i], &a, "%s wrong generation -> ESTALE", c->name);
		fill(cmds[i], &a, 0);
		memset(a.u.stamp.stamp.generation, 0, 16);
		expect(ESTALE, cmds[i], &a, "%s zero generation -> ESTALE", c->name);
		fill(cmds[i], &a, 0);
		a.u.stamp.stamp.epoch++;
		expect(ESTALE, cmds[i], &a, "%s epoch+1 -> ESTALE", c->name);
		fill(cmds[i], &a, 0);
		a.u.stamp.stamp.epoch--;
		expect(ESTALE, cmds[i], &a, "%s epoch-1 -> ESTALE", c->name);
		fill(cmds[i], &a, 0);
		a.u.stamp.dev = nodev;
		expect(ENOENT, cmds[i], &a, "%s of another device -> ENOENT", c->name);
	}
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	check(!memcmp(&a.u.stamp.stamp, &stamp, sizeof(stamp)),
	      "the pending stamp survived every refused call");
}

static void checks_protocol(struct blktrack_stamp stamp)
{
	struct blktrack_status before, st;
	struct blktrack_stamp s2;
	struct arg a;
	int i;

	/*
	 * ABORT merges back: the same blocks are dirty again; the epoch moves
	 * by BLKTRACK_EPOCH_ABORT, so the aborted stamp never names another
	 * checkpoint (issue 13, point 3).
	 */
	before = status();
	fill(BLKTRACK_IOC_ABORT, &a, 0);
	expect(0, BLKTRACK_IOC_ABORT, &a, "ABORT -> ok");
	st = status();
	check(!(st.flags & BLKTRACK_STATUS_PENDING) &&
	      st.stamp.epoch == stamp.epoch + BLKTRACK_EPOCH_ABORT &&
	      st.active_dirty == before.pending_dirty + before.active_dirty,
	      "after ABORT: nothing pending, epoch %llu + 2^32 = %llu, active_dirty %llu",
	      (unsigned long long)stamp.epoch, (unsigned long long)st.stamp.epoch,
	      (unsigned long long)st.active_dirty);
	s2 = checkpoint_ok();
	check(!memcmp(s2.generation, stamp.generation, 16) &&
	      s2.epoch == stamp.epoch + BLKTRACK_EPOCH_ABORT,
	      "a checkpoint after ABORT has a new stamp (epoch %llu)",
	      (unsigned long long)s2.epoch);
	for (i = 0; i < 2; i++) {
		unsigned long cmd = i ? BLKTRACK_IOC_ABORT : BLKTRACK_IOC_COMMIT;

		fill(cmd, &a, 0);
		a.u.stamp.stamp = stamp;
		expect(ESTALE, cmd, &a, "%s with the aborted stamp -> ESTALE",
		       i ? "ABORT" : "COMMIT");
	}
	stamp = s2;

	/* COMMIT advances the epoch. */
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	expect(0, BLKTRACK_IOC_COMMIT, &a, "COMMIT -> ok");
	st = status();
	check(!(st.flags & BLKTRACK_STATUS_PENDING) && st.stamp.epoch == stamp.epoch + 1 &&
	      !memcmp(st.stamp.generation, stamp.generation, 16) && st.pending_dirty == 0,
	      "after COMMIT: nothing pending, epoch %llu -> %llu, same generation",
	      (unsigned long long)stamp.epoch, (unsigned long long)st.stamp.epoch);
	/* with the current stamp, so that only "nothing pending" is wrong */
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_COMMIT, &a, "COMMIT again -> ENODATA");
	fill(BLKTRACK_IOC_ABORT, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_ABORT, &a, "ABORT after COMMIT -> ENODATA");
}

/* SNAP_READ with BLKTRACK_SNAP_READ_RELEASE: no buffer. */
static void fill_release(struct arg *a, __u64 offset, __u64 length)
{
	fill(BLKTRACK_IOC_SNAP_READ, a, 0);
	a->u.srd.flags = BLKTRACK_SNAP_READ_RELEASE;
	a->u.srd.buf_ptr = 0;
	a->u.srd.offset = offset;
	a->u.srd.length = length;
}

/*
 * Snapshots: refusals without one, CHECKPOINT_SNAP's own checks, then
 * every SNAP_READ refusal on a live snapshot (reading and releasing);
 * ABORT ends it. Then a BLKTRACK_SNAP_ALL snapshot.
 */
/* CHECKPOINT_SNAP with @fd as its store (BLKTRACK_SNAP_STORE_FD). */
static void expect_store(int want, int fd, const char *what)
{
	struct arg a;

	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	a.u.csnap.flags |= BLKTRACK_SNAP_STORE_FD;
	a.u.csnap.store_fd = fd;
	expect(want, BLKTRACK_IOC_CHECKPOINT_SNAP, &a, "CHECKPOINT_SNAP store %s -> %s", what,
	       ename(want));
}

/* Every refusal of a store in a file or on a device; @path is the volume. */
static void checks_snap_store(const char *path)
{
	char tmpl[] = "/tmp/bt-store.XXXXXX";
	int file = mkstemp(tmpl), fd;

	if (file < 0)
		bail("mkstemp");
	expect_store(EBADF, -1, "fd -1");
	expect_store(EBADF, 1000, "fd not open");
	fd = open(tmpl, O_RDONLY);
	expect_store(EBADF, fd, "read-only file");
	close(fd);
	fd = open(tmpl, O_WRONLY);
	expect_store(EBADF, fd, "write-only file");
	close(fd);
	fd = open(tmpl, O_RDWR | O_APPEND);
	expect_store(EINVAL, fd, "O_APPEND file");
	close(fd);
	fd = open(tmpl, O_RDWR | O_DIRECT);
	if (fd >= 0) {	/* not on every file system */
		expect_store(EINVAL, fd, "O_DIRECT file");
		close(fd);
	}
	fd = open("/dev/null", O_RDWR);
	expect_store(EINVAL, fd, "character device");
	close(fd);
	fd = open(path, O_RDWR);
	expect_store(EDEADLK, fd, "the volume itself");
	close(fd);
	close(file);
	unlink(tmpl);
}

static void checks_snapshot(const char *path)
{
	struct blktrack_version v;
	struct blktrack_status st;
	struct arg a;

	memset(&v, 0, sizeof(v));
	v.size = sizeof(v);
	if (xioctl(BLKTRACK_IOC_VERSION, &v) || !(v.features & BLKTRACK_FEATURE_SNAPSHOT)) {
		fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
		expect(EOPNOTSUPP, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
		       "CHECKPOINT_SNAP without FEATURE_SNAPSHOT -> EOPNOTSUPP");
		return;
	}
	write_blocks(path);
	generic_checks(BLKTRACK_IOC_CHECKPOINT_SNAP, 0, "attached");
	generic_checks(BLKTRACK_IOC_SNAP_STATUS, 0, "no snapshot");
	generic_checks(BLKTRACK_IOC_SNAP_READ, 0, "no snapshot");
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS without a snapshot -> ENODATA");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ without a snapshot -> ENODATA");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	a.u.csnap.count = 0;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT_SNAP, &a, "CHECKPOINT_SNAP count 0 -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	a.u.csnap.count = BLKTRACK_CHECKPOINT_MAX + 1;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT_SNAP, &a, "CHECKPOINT_SNAP count max+1 -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	ckpt_vols[0].reserved0 = 1;
	expect(EINVAL, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
	       "CHECKPOINT_SNAP vol.reserved0 = 1 -> EINVAL");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	ckpt_vols[0].dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
	       "CHECKPOINT_SNAP of an unattached volume -> ENOENT");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	a.u.csnap.vols_ptr = BOGUS_U64;
	expect(EFAULT, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
	       "CHECKPOINT_SNAP vols_ptr unmapped -> EFAULT");

	checks_snap_store(path);

	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	if (expect(0, BLKTRACK_IOC_CHECKPOINT_SNAP, &a, "CHECKPOINT_SNAP -> ok"))
		return;
	st = status();
	check((st.flags & (BLKTRACK_STATUS_PENDING | BLKTRACK_STATUS_SNAPSHOT |
			   BLKTRACK_STATUS_SNAP_OVERFLOW)) ==
	      (BLKTRACK_STATUS_PENDING | BLKTRACK_STATUS_SNAPSHOT),
	      "after CHECKPOINT_SNAP: STATUS says pending and snapshot (flags %#x)", st.flags);
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	expect(EBUSY, BLKTRACK_IOC_CHECKPOINT_SNAP, &a, "CHECKPOINT_SNAP while pending -> EBUSY");
	fill(BLKTRACK_IOC_CHECKPOINT, &a, 0);
	expect(EBUSY, BLKTRACK_IOC_CHECKPOINT, &a, "CHECKPOINT while a snapshot is held -> EBUSY");
	generic_checks(BLKTRACK_IOC_SNAP_READ, 0, "snapshot");
	generic_checks(BLKTRACK_IOC_SNAP_STATUS, 0, "snapshot");
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	if (!expect(0, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS -> ok"))
		check(a.u.sst.protected_blocks == st.pending_dirty && !a.u.sst.flags,
		      "SNAP_STATUS protects the pending map's %llu blocks (%llu)",
		      (unsigned long long)st.pending_dirty,
		      (unsigned long long)a.u.sst.protected_blocks);
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	a.u.sst.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS of another device -> ENOENT");

	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.length = 0;
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ length 0 -> EINVAL");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.offset = 512;
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ offset not block aligned -> EINVAL");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.length = 4096 + 512;
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ length not block aligned -> EINVAL");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.length = BLKTRACK_SNAP_READ_MAX + 4096ULL;
	expect(E2BIG, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ length > MAX -> E2BIG");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.offset = st.dev_size;
	a.u.srd.length = 4096;
	expect(ERANGE, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ at the volume's end -> ERANGE");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.offset = st.dev_size - 4096;
	a.u.srd.length = 8192;
	expect(ERANGE, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ across the volume's end -> ERANGE");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.stamp.epoch++;
	expect(ESTALE, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ epoch+1 -> ESTALE");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.stamp.generation[0] ^= 1;
	expect(ESTALE, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ wrong generation -> ESTALE");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ of another device -> ENOENT");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.flags = 0;
	a.u.srd.buf_ptr = BOGUS_U64;
	expect(EFAULT, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ buf_ptr unmapped -> EFAULT");

	fill_release(&a, 0, 4096);
	a.u.srd.flags |= BLKTRACK_SNAP_READ_KEEP;
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ KEEP|RELEASE -> EINVAL");
	fill_release(&a, 0, 4096);
	a.u.srd.buf_ptr = (uintptr_t)snap_buf;
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE with a buf_ptr -> EINVAL");
	fill_release(&a, 0, 0);
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE length 0 -> EINVAL");
	fill_release(&a, 512, 4096);
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a,
	       "SNAP_READ RELEASE offset not block aligned -> EINVAL");
	fill_release(&a, 0, 4096 + 512);
	expect(EINVAL, BLKTRACK_IOC_SNAP_READ, &a,
	       "SNAP_READ RELEASE length not block aligned -> EINVAL");
	fill_release(&a, st.dev_size, 4096);
	expect(ERANGE, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE at the volume's end -> ERANGE");
	/* Longer than SNAP_READ_MAX is no E2BIG for a release: ERANGE for the end. */
	fill_release(&a, 0, BLKTRACK_SNAP_READ_MAX + 4096ULL);
	expect(st.dev_size >= BLKTRACK_SNAP_READ_MAX + 4096ULL ? 0 : ERANGE,
	       BLKTRACK_IOC_SNAP_READ, &a,
	       "SNAP_READ RELEASE length > MAX (volume %llu bytes) -> no E2BIG",
	       (unsigned long long)st.dev_size);
	fill_release(&a, 0, 4096);
	a.u.srd.stamp.epoch++;
	expect(ESTALE, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE epoch+1 -> ESTALE");
	fill_release(&a, 0, 4096);
	a.u.srd.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE of another device -> ENOENT");
	/* Block 4 is outside the pending map (blocks 5-7, 256): not protected. */
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.offset = 4 * 4096;
	a.u.srd.length = 4096;
	expect(ENXIO, BLKTRACK_IOC_SNAP_READ, &a,
	       "SNAP_READ of a block outside the snapshot's set -> ENXIO");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.flags = 0;
	a.u.srd.offset = 4 * 4096;
	a.u.srd.length = 4 * 4096;
	expect(ENXIO, BLKTRACK_IOC_SNAP_READ, &a,
	       "SNAP_READ (releasing) of blocks 4-7, block 4 outside the set -> ENXIO");
	/* The failed reads released nothing: a releasing read succeeds, then EIDRM. */
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.flags = 0;
	expect(0, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ (releasing) -> ok");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	expect(EIDRM, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ of released blocks -> EIDRM");
	/* The whole volume, twice: blocks released before are no error. */
	fill_release(&a, 0, st.dev_size);
	expect(0, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE of the whole volume -> ok");
	fill_release(&a, 0, st.dev_size);
	expect(0, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE of released blocks -> ok");
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	if (!expect(0, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS after RELEASE -> ok"))
		check(a.u.sst.released_blocks == a.u.sst.protected_blocks &&
		      !a.u.sst.uncopied_blocks && !a.u.sst.store_bytes,
		      "after RELEASE: all %llu released (%llu), none uncopied (%llu)",
		      (unsigned long long)a.u.sst.protected_blocks,
		      (unsigned long long)a.u.sst.released_blocks,
		      (unsigned long long)a.u.sst.uncopied_blocks);
	fill(BLKTRACK_IOC_ABORT, &a, 0);
	expect(0, BLKTRACK_IOC_ABORT, &a, "ABORT ends the snapshot -> ok");
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS after ABORT -> ENODATA");
	st = status();
	check(!(st.flags & (BLKTRACK_STATUS_SNAPSHOT | BLKTRACK_STATUS_PENDING)),
	      "after ABORT: STATUS has no snapshot (flags %#x)", st.flags);

	/* SNAP_ALL: every block is protected, the pending map's or not. */
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	a.u.csnap.flags = BLKTRACK_SNAP_ALL;
	if (expect(0, BLKTRACK_IOC_CHECKPOINT_SNAP, &a, "CHECKPOINT_SNAP SNAP_ALL -> ok"))
		return;
	st = status();
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	if (!expect(0, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS (SNAP_ALL) -> ok"))
		check(a.u.sst.protected_blocks ==
		      (st.dev_size + st.block_size - 1) / st.block_size &&
		      a.u.sst.uncopied_blocks == a.u.sst.protected_blocks,
		      "SNAP_ALL protects all %llu blocks (%llu, %llu uncopied)",
		      (unsigned long long)((st.dev_size + st.block_size - 1) / st.block_size),
		      (unsigned long long)a.u.sst.protected_blocks,
		      (unsigned long long)a.u.sst.uncopied_blocks);
	/* Block 2 was not written: outside the pending map, yet protected. */
	fill_release(&a, 2 * 4096, 4096);
	expect(0, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ RELEASE (SNAP_ALL) of block 2 -> ok");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.offset = 2 * 4096;
	a.u.srd.length = 4096;
	expect(EIDRM, BLKTRACK_IOC_SNAP_READ, &a,
	       "SNAP_READ (SNAP_ALL) of a released block outside the pending map -> EIDRM");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	a.u.srd.offset = 3 * 4096;
	a.u.srd.length = 4096;
	expect(0, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ (SNAP_ALL) of block 3 -> ok");
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	if (!expect(0, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS (SNAP_ALL) -> ok"))
		check(a.u.sst.released_blocks == 1 &&
		      a.u.sst.uncopied_blocks == a.u.sst.protected_blocks - 1,
		      "SNAP_ALL: 1 released (%llu), the rest uncopied (%llu of %llu)",
		      (unsigned long long)a.u.sst.released_blocks,
		      (unsigned long long)a.u.sst.uncopied_blocks,
		      (unsigned long long)a.u.sst.protected_blocks);
	fill(BLKTRACK_IOC_ABORT, &a, 0);
	expect(0, BLKTRACK_IOC_ABORT, &a, "ABORT ends the SNAP_ALL snapshot -> ok");
}

static void checks_unknown(void)
{
	struct arg a;

	fill(BLKTRACK_IOC_VERSION, &a, 0);
	expect(ENOTTY, _IOWR(BLKTRACK_IOC_MAGIC, 0x7f, struct blktrack_version), &a,
	       "unknown ioctl number 0x7f -> ENOTTY");
	expect(ENOTTY, _IOWR(BLKTRACK_IOC_MAGIC, 0x0d, struct blktrack_version), &a,
	       "unknown ioctl number 0x0d -> ENOTTY");
	expect(ENOTTY, _IOWR(BLKTRACK_IOC_MAGIC, 0x0a, struct blktrack_version), &a,
	       "CHECKPOINT_SNAP number with another encoded size -> ENOTTY");
	expect(ENOTTY, _IOWR('X', 0x00, struct blktrack_version), &a,
	       "another ioctl magic -> ENOTTY");
	expect(ENOTTY, _IO(BLKTRACK_IOC_MAGIC, 0x00), &a,
	       "VERSION number without its size -> ENOTTY");
	fill(BLKTRACK_IOC_STATUS, &a, 0);
	expect(ENOTTY, _IOWR(BLKTRACK_IOC_MAGIC, 0x04, struct blktrack_version), &a,
	       "STATUS number with another encoded size -> ENOTTY");
	expect(ENOTTY, _IOR(BLKTRACK_IOC_MAGIC, 0x04, struct blktrack_status), &a,
	       "STATUS number with another direction -> ENOTTY");
}

/* RESTORE on a fresh attach: every refusal, then a saved history loaded. */
static void checks_restore(void)
{
	static const struct { __u64 off, len; const char *what; } bad[] = {
		{ 1, 4096, "misaligned offset" },
		{ 0, 0, "empty" },
		{ 0, 100, "a partial block not at the end" },
		{ ~0ULL - 4095, 4096, "offset near 2^64" },
		{ 4096, ~0ULL, "length 2^64-1" },
	};
	struct blktrack_status before = status(), st;
	struct arg a;
	size_t i;

	generic_checks(BLKTRACK_IOC_RESTORE, 0, "fresh attach");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.dev = nodev;
	expect(ENOENT, BLKTRACK_IOC_RESTORE, &a, "RESTORE of another device -> ENOENT");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.count = BLKTRACK_RESTORE_MAX + 1;
	expect(E2BIG, BLKTRACK_IOC_RESTORE, &a, "RESTORE count MAX+1 -> E2BIG");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.block_size = 0;
	expect(EINVAL, BLKTRACK_IOC_RESTORE, &a, "RESTORE block size 0 -> EINVAL");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.block_size = 6000;
	expect(EINVAL, BLKTRACK_IOC_RESTORE, &a, "RESTORE block size 6000 -> EINVAL");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.block_size = 2 * before.block_size;
	expect(EINVAL, BLKTRACK_IOC_RESTORE, &a, "RESTORE another valid block size -> EINVAL");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	memset(a.u.restore.stamp.generation, 0, 16);
	expect(EINVAL, BLKTRACK_IOC_RESTORE, &a, "RESTORE zero generation -> EINVAL");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.dev_size += before.block_size;
	expect(ERANGE, BLKTRACK_IOC_RESTORE, &a, "RESTORE dev_size + 1 block -> ERANGE");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.dev_size -= before.block_size;
	expect(ERANGE, BLKTRACK_IOC_RESTORE, &a, "RESTORE dev_size - 1 block -> ERANGE");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fill(BLKTRACK_IOC_RESTORE, &a, 0);
		restore_ext[1].offset = bad[i].off;
		restore_ext[1].length = bad[i].len;
		expect(ERANGE, BLKTRACK_IOC_RESTORE, &a,
		       "RESTORE second extent %s -> ERANGE, the first not loaded", bad[i].what);
	}
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	restore_ext[1].offset = before.dev_size;
	expect(ERANGE, BLKTRACK_IOC_RESTORE, &a, "RESTORE extent at the volume's end -> ERANGE");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	restore_ext[1].offset = before.dev_size - before.block_size;
	restore_ext[1].length = 2ULL * before.block_size;
	expect(ERANGE, BLKTRACK_IOC_RESTORE, &a, "RESTORE extent past the end -> ERANGE");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.extents_ptr = BOGUS_U64;
	expect(EFAULT, BLKTRACK_IOC_RESTORE, &a, "RESTORE extents_ptr unmapped -> EFAULT");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.flags = BLKTRACK_RESTORE_INVALID;
	a.u.restore.reason = BLKTRACK_REASON_UNCLEAN;
	expect(EINVAL, BLKTRACK_IOC_RESTORE, &a, "RESTORE INVALID with extents -> EINVAL");
	for (i = 0; i < 3; i++) {
		static const __u32 reasons[] = { BLKTRACK_REASON_NONE,
			BLKTRACK_REASON_DEVICE_REMOVED, 99 };

		fill(BLKTRACK_IOC_RESTORE, &a, 0);
		a.u.restore.flags = BLKTRACK_RESTORE_INVALID;
		a.u.restore.count = 0;
		a.u.restore.reason = reasons[i];
		expect(EINVAL, BLKTRACK_IOC_RESTORE, &a, "RESTORE INVALID reason %u -> EINVAL",
		       reasons[i]);
	}

	/* The saved history: its stamp, its blocks on top of the active map's. */
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	expect(0, BLKTRACK_IOC_RESTORE, &a, "RESTORE -> ok");
	st = status();
	check(!memcmp(st.stamp.generation, saved_generation, 16) && st.stamp.epoch == 7,
	      "after RESTORE: the saved stamp (epoch %llu)", (unsigned long long)st.stamp.epoch);
	check(st.state == BLKTRACK_STATE_TRACKING && st.active_dirty == before.active_dirty + 3,
	      "after RESTORE: tracking, active_dirty %llu == %llu + 3",
	      (unsigned long long)st.active_dirty, (unsigned long long)before.active_dirty);
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	restore_ext[0].offset = before.dev_size - before.block_size;
	a.u.restore.count = 1;
	expect(0, BLKTRACK_IOC_RESTORE, &a, "RESTORE again, the last block -> ok");
	check(status().active_dirty == before.active_dirty + 4, "the last block added");
}

/* Once checkpointed, a volume's history is its own. */
static void checks_restore_refused(void)
{
	struct arg a;

	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	expect(EBUSY, BLKTRACK_IOC_RESTORE, &a, "RESTORE after a checkpoint -> EBUSY");
	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.flags = BLKTRACK_RESTORE_INVALID;
	a.u.restore.reason = BLKTRACK_REASON_UNCLEAN;
	a.u.restore.count = 0;
	expect(EBUSY, BLKTRACK_IOC_RESTORE, &a, "RESTORE INVALID after a checkpoint -> EBUSY");
}

/* A history that cannot be trusted: INVALID with its reason until a COMMIT. */
static void checks_restore_invalid(void)
{
	struct blktrack_status before = status(), st;
	struct arg a;

	fill(BLKTRACK_IOC_RESTORE, &a, 0);
	a.u.restore.flags = BLKTRACK_RESTORE_INVALID;
	a.u.restore.reason = BLKTRACK_REASON_OFFLINE_CHANGE;
	a.u.restore.count = 0;
	expect(0, BLKTRACK_IOC_RESTORE, &a, "RESTORE INVALID offline change -> ok");
	st = status();
	check(st.state == BLKTRACK_STATE_INVALID && st.reason == BLKTRACK_REASON_OFFLINE_CHANGE &&
	      !memcmp(&st.stamp, &before.stamp, sizeof(st.stamp)),
	      "after RESTORE INVALID: state %u reason %u, the attach's own stamp", st.state,
	      st.reason);
	checkpoint_ok();
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	expect(0, BLKTRACK_IOC_COMMIT, &a, "COMMIT -> ok");
	st = status();
	check(st.state == BLKTRACK_STATE_TRACKING && st.reason == BLKTRACK_REASON_NONE,
	      "after COMMIT: tracking again (state %u reason %u)", st.state, st.reason);
}

static int run_root(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		bail("stat %s", path);
	if (!S_ISBLK(sb.st_mode)) {
		errno = ENOTBLK;
		bail("%s", path);
	}
	dev = devno_of(sb.st_rdev);
	printf("# device %s = %u:%u\n", path, dev.major, dev.minor);

	checks_version();
	checks_not_attached();
	checks_attach();
	checks_attached();
	checks_restore();
	checks_unknown();
	write_blocks(path);
	checks_no_pending();
	checks_read(FILL_ACTIVE, "active");
	checks_checkpoint();
	checks_pending(checkpoint_ok());
	checks_protocol(status().stamp);
	checks_snapshot(path);
	checks_restore_refused();
	detach_ok();
	attach_ok(4096);
	checks_restore_invalid();
	detach_ok();
	checks_not_attached();
	return 0;
}

/* ---- snapshot interception refused ---------------------------------------- */

/*
 * Another ftrace user holds IPMODIFY on submit_bio_noacct (a livepatch, or
 * tests/vm/kmod/ipmodify_hog.ko): the module has snapshots (FEATURE_SNAPSHOT)
 * but cannot intercept. CHECKPOINT_SNAP, with and without SNAP_ALL and twice
 * in a row, fails with exactly EOPNOTSUPP and changes nothing: STATUS as
 * before (no pending checkpoint, no snapshot, same counts and stamp), the
 * active map's extents as before, no snapshot to read. Tracking goes on and
 * a plain CHECKPOINT works.
 */
static int run_snap_refused(const char *path)
{
	static struct blktrack_extent before[64];
	struct blktrack_version v;
	struct blktrack_status st;
	static char buf[4096];
	struct stat sb;
	struct arg a;
	__u64 dirty;
	__u32 n = 0;
	int fd;

	if (stat(path, &sb) < 0 || !S_ISBLK(sb.st_mode))
		bail("%s is not a block device", path);
	dev = devno_of(sb.st_rdev);
	printf("# device %s = %u:%u\n", path, dev.major, dev.minor);
	memset(&v, 0, sizeof(v));
	v.size = sizeof(v);
	n = xioctl(BLKTRACK_IOC_VERSION, &v);
	check(!n && (v.features & BLKTRACK_FEATURE_SNAPSHOT),
	      "VERSION has FEATURE_SNAPSHOT (features %#llx): only the interception is refused",
	      (unsigned long long)v.features);
	n = 0;

	attach_ok(4096);
	write_blocks(path);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_ACTIVE);
	if (!expect(0, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS (active) -> ok")) {
		n = a.u.rd.count;
		memcpy(before, ext_buf, sizeof(before));
	}
	check(n >= 1, "the active map holds the written blocks (%u extents)", n);

	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	expect(EOPNOTSUPP, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
	       "CHECKPOINT_SNAP, IPMODIFY held by another -> EOPNOTSUPP");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	a.u.csnap.flags = BLKTRACK_SNAP_ALL;
	a.u.csnap.store_limit = 1 << 20;
	expect(EOPNOTSUPP, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
	       "CHECKPOINT_SNAP SNAP_ALL, IPMODIFY held by another -> EOPNOTSUPP");
	fill(BLKTRACK_IOC_CHECKPOINT_SNAP, &a, 0);
	expect(EOPNOTSUPP, BLKTRACK_IOC_CHECKPOINT_SNAP, &a,
	       "CHECKPOINT_SNAP again -> EOPNOTSUPP");

	st = status();
	check(!(st.flags & (BLKTRACK_STATUS_PENDING | BLKTRACK_STATUS_SNAPSHOT |
			    BLKTRACK_STATUS_SNAP_OVERFLOW)) && !st.pending_dirty,
	      "after the refusals: STATUS has no pending checkpoint, no snapshot (flags %#x)",
	      st.flags);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_ACTIVE);
	if (!expect(0, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS (active) after -> ok"))
		check(a.u.rd.count == n && !memcmp(before, ext_buf, n * sizeof(before[0])),
		      "the active map's %u extents are unchanged (%u now)", n, a.u.rd.count);
	fill(BLKTRACK_IOC_READ_EXTENTS, &a, FILL_PENDING);
	expect(ENODATA, BLKTRACK_IOC_READ_EXTENTS, &a, "READ_EXTENTS pending -> ENODATA");
	fill(BLKTRACK_IOC_SNAP_STATUS, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_SNAP_STATUS, &a, "SNAP_STATUS -> ENODATA");
	fill(BLKTRACK_IOC_SNAP_READ, &a, 0);
	expect(ENODATA, BLKTRACK_IOC_SNAP_READ, &a, "SNAP_READ -> ENODATA");

	/* Tracking goes on: a new block (at 2 MiB) is marked. */
	dirty = st.active_dirty;
	memset(buf, 0x5a, sizeof(buf));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 2 << 20) != (ssize_t)sizeof(buf) ||
	    fsync(fd) < 0)
		bail("write %s", path);
	close(fd);
	st = status();
	check(st.active_dirty == dirty + 1, "a write after the refusals is tracked "
	      "(active_dirty %llu -> %llu)", (unsigned long long)dirty,
	      (unsigned long long)st.active_dirty);
	checkpoint_ok();
	fill(BLKTRACK_IOC_COMMIT, &a, 0);
	expect(0, BLKTRACK_IOC_COMMIT, &a, "COMMIT -> ok");
	detach_ok();
	return 0;
}

/* ---- unprivileged --------------------------------------------------------- */

static int run_unprivileged(const char *path)
{
	static const unsigned long cmds[] = {
		BLKTRACK_IOC_VERSION, BLKTRACK_IOC_ATTACH, BLKTRACK_IOC_DETACH,
		BLKTRACK_IOC_LIST, BLKTRACK_IOC_STATUS, BLKTRACK_IOC_CHECKPOINT,
		BLKTRACK_IOC_READ_EXTENTS, BLKTRACK_IOC_COMMIT, BLKTRACK_IOC_ABORT,
		BLKTRACK_IOC_RESTORE, BLKTRACK_IOC_CHECKPOINT_SNAP, BLKTRACK_IOC_SNAP_READ,
		BLKTRACK_IOC_SNAP_STATUS,
	};
	struct stat sb;
	struct arg a;
	size_t i;
	int fd;

	dev = nodev;
	if (path) {
		if (stat(path, &sb) < 0 || !S_ISBLK(sb.st_mode))
			bail("%s is not a block device", path);
		dev = devno_of(sb.st_rdev);
	}
	if (stat(CTL_PATH, &sb) < 0)
		bail("stat %s", CTL_PATH);
	check(S_ISCHR(sb.st_mode) && (sb.st_mode & 07777) == 0600 && sb.st_uid == 0,
	      "%s is a character device, root's, mode 0600 (mode %04o uid %u)", CTL_PATH,
	      (unsigned int)(sb.st_mode & 07777), (unsigned int)sb.st_uid);

	ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		bail("open %s as root", CTL_PATH);
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		bail("dropping to uid/gid 65534");
	check(geteuid() == 65534 && getegid() == 65534 && setuid(0) < 0,
	      "running as uid/gid 65534, no way back to root");

	fd = open(CTL_PATH, O_RDWR);
	check(fd < 0 && errno == EACCES, "open O_RDWR unprivileged -> EACCES (got %s)",
	      fd < 0 ? ename(errno) : "success");
	if (fd >= 0)
		close(fd);
	fd = open(CTL_PATH, O_RDONLY);
	check(fd < 0 && errno == EACCES, "open O_RDONLY unprivileged -> EACCES (got %s)",
	      fd < 0 ? ename(errno) : "success");
	if (fd >= 0)
		close(fd);

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		fill(cmds[i], &a, FILL_PENDING);
		expect(EPERM, cmds[i], &a, "%s on a root-opened fd, without CAP_SYS_ADMIN -> EPERM",
		       find_ioc(cmds[i])->name);
	}
	return 0;
}

/* ---- a device the module refuses to track ------------------------------ */

static int run_attach_refused(const char *path)
{
	struct stat sb;
	struct arg a;

	if (stat(path, &sb) < 0 || !S_ISBLK(sb.st_mode))
		bail("%s is not a block device", path);
	dev = devno_of(sb.st_rdev);
	fill(BLKTRACK_IOC_ATTACH, &a, 0);
	expect(EOPNOTSUPP, BLKTRACK_IOC_ATTACH, &a, "ATTACH of %s (DAX-capable) -> EOPNOTSUPP",
	       path);
	return 0;
}

int main(int argc, char *argv[])
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "--unprivileged")) {
		run_unprivileged(argc >= 3 ? argv[2] : NULL);
	} else if (argc == 3 && !strcmp(argv[1], "--snap-refused")) {
		ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
		if (ctl < 0)
			bail("open %s", CTL_PATH);
		run_snap_refused(argv[2]);
	} else if (argc == 3 && !strcmp(argv[1], "--attach-refused")) {
		ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
		if (ctl < 0)
			bail("open %s", CTL_PATH);
		run_attach_refused(argv[2]);
	} else if (argc == 2 && argv[1][0] != '-') {
		ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
		if (ctl < 0)
			bail("open %s", CTL_PATH);
		run_root(argv[1]);
	} else {
		fprintf(stderr, "usage: %s DEV | --unprivileged [DEV] | --snap-refused DEV |\n"
			"       --attach-refused DEV\n",
			argv[0]);
		return 2;
	}
	printf("1..%u\n# %u passed, %u failed\n", ntest, ntest - nfail, nfail);
	return nfail > 100 ? 100 : (int)nfail;
}

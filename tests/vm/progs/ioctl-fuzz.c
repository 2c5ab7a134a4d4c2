// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl-fuzz - random ioctls on /dev/blktrack-ctl: only errnos, no oops.
 *
 *	ioctl-fuzz [--seed N] [--count N] DEV          as root: attaches DEV (a
 *	                                               loop device) and fuzzes
 *	ioctl-fuzz --unprivileged [--seed N] [--count N] [DEV]
 *	                                               open as root, drop to
 *	                                               uid/gid 65534, fuzz: every
 *	                                               call fails, EPERM/ENOTTY
 *
 * Each call is one of: a blktrack ioctl with a plausible argument (right
 * size, DEV, the last stamp seen) with a few bytes changed; the same with
 * random bytes; magic 0xBC with a random number, direction and size; a
 * blktrack number with another size; any other number. The argument
 * pointer is NULL, unmapped, a kernel address, a struct that runs into an
 * unmapped page, or valid; so are the pointers inside (devs_ptr,
 * vols_ptr, extents_ptr). Numbers the VFS serves itself before the driver
 * (FIONBIO, FIFREEZE, FS_IOC_SETFLAGS... types 0, 'T', 'X', 'f', 0x15,
 * 0x94) are left out: they are not the driver's, and some would freeze or
 * flag the test's own filesystem. Root's calls may do anything (the
 * volume may end detached, or DEV re-attached); the kernel must only not
 * crash or warn (tests/vm/run.sh watches the log). A call must return 0
 * or -1 with an errno in 1..133, and a number the driver does not know
 * must fail. The seed is printed; the same seed replays the same calls.
 * Exit status: 0, or 1 with "not ok" lines.
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
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/blktrack.h>

#define CTL_PATH "/dev/" BLKTRACK_CTL_NAME
#define PAGE 4096UL
#define ARENA_PAGES 64UL		/* valid memory; a PROT_NONE page follows */

static uint64_t rng;
static unsigned char *arena;		/* ARENA_PAGES valid pages, then a guard */
static void *unmapped;			/* a page that was unmapped */
static struct blktrack_devno dev;	/* DEV, or zeros */
static struct blktrack_stamp last_stamp;
static unsigned int nfail;
static unsigned long counts[134], successes;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

static void fill_random(void *p, size_t n)
{
	unsigned char *c = p;

	while (n >= 8) {
		uint64_t v = rnd();

		memcpy(c, &v, 8);
		c += 8;
		n -= 8;
	}
	while (n--)
		*c++ = rnd();
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	nfail++;
	printf("not ok - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ---- commands and pointers -------------------------------------------------- */

struct ioc {
	unsigned long cmd;
	size_t size;
	size_t dev_off;		/* offset of a struct blktrack_devno, or 0 */
	size_t stamp_off;	/* offset of a struct blktrack_stamp, or 0 */
	size_t ptr_off;		/* offset of a user pointer, or 0 */
	size_t count_off;	/* offset of its __u32 count/capacity */
	size_t elem;		/* bytes per element behind the pointer */
};

static const struct ioc iocs[] = {
	{ BLKTRACK_IOC_VERSION, sizeof(struct blktrack_version), 0, 0, 0, 0, 0 },
	{ BLKTRACK_IOC_ATTACH, sizeof(struct blktrack_attach),
	  offsetof(struct blktrack_attach, dev), 0, 0, 0, 0 },
	{ BLKTRACK_IOC_DETACH, sizeof(struct blktrack_dev_arg),
	  offsetof(struct blktrack_dev_arg, dev), 0, 0, 0, 0 },
	{ BLKTRACK_IOC_LIST, sizeof(struct blktrack_list), 0, 0,
	  offsetof(struct blktrack_list, devs_ptr), offsetof(struct blktrack_list, capacity),
	  sizeof(struct blktrack_devno) },
	{ BLKTRACK_IOC_STATUS, sizeof(struct blktrack_status),
	  offsetof(struct blktrack_status, dev), 0, 0, 0, 0 },
	{ BLKTRACK_IOC_CHECKPOINT, sizeof(struct blktrack_checkpoint), 0, 0,
	  offsetof(struct blktrack_checkpoint, vols_ptr),
	  offsetof(struct blktrack_checkpoint, count), sizeof(struct blktrack_checkpoint_vol) },
	{ BLKTRACK_IOC_READ_EXTENTS, sizeof(struct blktrack_read_extents),
	  offsetof(struct blktrack_read_extents, dev),
	  offsetof(struct blktrack_read_extents, stamp),
	  offsetof(struct blktrack_read_extents, extents_ptr),
	  offsetof(struct blktrack_read_extents, capacity), sizeof(struct blktrack_extent) },
	{ BLKTRACK_IOC_COMMIT, sizeof(struct blktrack_stamp_arg),
	  offsetof(struct blktrack_stamp_arg, dev), offsetof(struct blktrack_stamp_arg, stamp),
	  0, 0, 0 },
	{ BLKTRACK_IOC_ABORT, sizeof(struct blktrack_stamp_arg),
	  offsetof(struct blktrack_stamp_arg, dev), offsetof(struct blktrack_stamp_arg, stamp),
	  0, 0, 0 },
	{ BLKTRACK_IOC_RESTORE, sizeof(struct blktrack_restore),
	  offsetof(struct blktrack_restore, dev), offsetof(struct blktrack_restore, stamp),
	  offsetof(struct blktrack_restore, extents_ptr),
	  offsetof(struct blktrack_restore, count), sizeof(struct blktrack_extent) },
};
#define NR_IOCS (sizeof(iocs) / sizeof(iocs[0]))

static const struct ioc *find_ioc(unsigned long cmd)
{
	size_t i;

	for (i = 0; i < NR_IOCS; i++)
		if (iocs[i].cmd == cmd)
			return &iocs[i];
	return NULL;
}

/* Types the VFS answers before the driver (do_vfs_ioctl). */
static bool vfs_type(unsigned long cmd)
{
	switch (_IOC_TYPE(cmd)) {
	case 0: case 'T': case 'X': case 'f': case 0x15: case 0x94:
		return true;
	}
	return false;
}

static unsigned long pick_cmd(void)
{
	unsigned long cmd;
	unsigned int r = below(100);

	if (r < 70)
		return iocs[below(NR_IOCS)].cmd;
	if (r < 85)		/* ours with another size */
		return (iocs[below(NR_IOCS)].cmd & ~((unsigned long)_IOC_SIZEMASK << _IOC_SIZESHIFT)) |
		       (below(_IOC_SIZEMASK + 1) << _IOC_SIZESHIFT);
	if (r < 95)		/* magic 0xBC, any number, direction, size */
		return _IOC(below(4), BLKTRACK_IOC_MAGIC, below(256), below(_IOC_SIZEMASK + 1));
	do
		cmd = (uint32_t)rnd();
	while (vfs_type(cmd));
	return cmd;
}

/* A pointer for the kernel to use: mostly valid, @len bytes of it. */
static void *pick_ptr(size_t len)
{
	switch (below(16)) {
	case 0:
		return NULL;
	case 1:
		return unmapped;
	case 2:
		return (void *)0xffff888000000000UL;	/* the direct map */
	case 3:
		return (void *)(uintptr_t)(rnd() & ~7ULL);
	case 4:			/* runs into the guard page */
		return arena + ARENA_PAGES * PAGE - (len > 8 ? below(len - 1) + 1 : 1);
	default:
		if (len > ARENA_PAGES * PAGE / 2)
			return arena;
		return arena + ARENA_PAGES * PAGE / 2 + 8 * below((ARENA_PAGES * PAGE / 2 - len) / 8 + 1);
	}
}

/* ---- one call ----------------------------------------------------------------- */

/* The argument of @cmd in @buf (1 page): plausible, then changed a little or a lot. */
static void build_arg(unsigned long cmd, unsigned char *buf)
{
	const struct ioc *io = find_ioc(cmd);
	unsigned int r = below(10), i, n;
	struct blktrack_checkpoint_vol *v;
	uint64_t p;
	uint32_t count;

	memset(buf, 0, PAGE);
	if (!io || r == 0) {
		fill_random(buf, PAGE);
		return;
	}
	p = io->size;
	if (!below(8))		/* a wrong size field: near the right one or any */
		p = below(2) ? io->size + below(17) - 8 : rnd() >> below(64);
	memcpy(buf, &p, 8);
	if (io->dev_off)
		memcpy(buf + io->dev_off, &dev, sizeof(dev));
	/* A detach (and the attach after it) costs a grace period and two
	 * console lines: most DETACHes name a device that is not attached. */
	if (cmd == BLKTRACK_IOC_DETACH && below(16))
		((struct blktrack_dev_arg *)buf)->dev = (struct blktrack_devno){ 7, 250 };
	if (io->stamp_off)
		memcpy(buf + io->stamp_off, &last_stamp, sizeof(last_stamp));
	if (cmd == BLKTRACK_IOC_ATTACH) {
		static const uint32_t bs[] = { 0, 4096, 8192, 65536, 1U << 24, 512, 12288 };

		((struct blktrack_attach *)buf)->block_size = bs[below(7)];
		((struct blktrack_attach *)buf)->mem_limit = below(2) ? 0 : rnd() >> below(64);
	}
	if (cmd == BLKTRACK_IOC_READ_EXTENTS && below(2))
		((struct blktrack_read_extents *)buf)->flags = BLKTRACK_READ_ACTIVE;
	if (io->ptr_off) {
		count = below(4) ? below(70) : (uint32_t)rnd() >> below(32);
		memcpy(buf + io->count_off, &count, 4);
		p = (uintptr_t)pick_ptr((size_t)count * io->elem);
		memcpy(buf + io->ptr_off, &p, 8);
		if (p >= (uintptr_t)arena && p < (uintptr_t)arena + ARENA_PAGES * PAGE) {
			n = (uintptr_t)arena + ARENA_PAGES * PAGE - p < (size_t)count * io->elem ?
			    0 : count;
			if (cmd == BLKTRACK_IOC_CHECKPOINT) {
				v = (void *)(uintptr_t)p;
				for (i = 0; i < n; i++) {
					memset(&v[i], 0, sizeof(v[i]));
					v[i].dev = below(8) ? dev : (struct blktrack_devno){ 7, below(8) };
				}
			} else if (cmd == BLKTRACK_IOC_RESTORE) {
				fill_random((void *)(uintptr_t)p, (size_t)n * io->elem);
				if (below(2))
					for (i = 0; i < n; i++)
						((struct blktrack_extent *)(uintptr_t)p)[i] =
							(struct blktrack_extent){ 4096ULL * i * 3, 4096 };
			}
		}
	}
	if (r < 5) {		/* a few bytes changed */
		n = below(4);
		for (i = 0; i < n; i++)
			buf[below(io->size)] = rnd();
	} else if (r < 7) {	/* a few fields random */
		n = below(3) + 1;
		for (i = 0; i < n; i++) {
			p = below(2) ? rnd() : rnd() >> 56;
			memcpy(buf + 8 * below(io->size / 8), &p, 8);
		}
	}
}

static void remember(unsigned long cmd, const void *arg)
{
	if (cmd == BLKTRACK_IOC_STATUS)
		last_stamp = ((const struct blktrack_status *)arg)->stamp;
	else if (cmd == BLKTRACK_IOC_READ_EXTENTS)
		last_stamp = ((const struct blktrack_read_extents *)arg)->stamp;
}

static void one_call(int ctl, bool root)
{
	static unsigned char buf[PAGE];
	unsigned long cmd = pick_cmd();
	size_t len = _IOC_SIZE(cmd) ? _IOC_SIZE(cmd) : 8;
	unsigned char *arg;
	long rc;
	int e;

	build_arg(cmd, buf);
	arg = pick_ptr(len > PAGE ? PAGE : len);
	if ((uintptr_t)arg >= (uintptr_t)arena && (uintptr_t)arg < (uintptr_t)arena + ARENA_PAGES * PAGE)
		memcpy(arg, buf, (uintptr_t)arena + ARENA_PAGES * PAGE - (uintptr_t)arg < PAGE ?
		       (uintptr_t)arena + ARENA_PAGES * PAGE - (uintptr_t)arg : PAGE);
	errno = 0;
	rc = ioctl(ctl, cmd, arg);
	e = errno;
	if (rc == 0) {
		successes++;
		if (!root)
			fail("unprivileged ioctl %#lx succeeded (rc %ld, errno %d)", cmd, rc, e);
		else if (!find_ioc(cmd))
			fail("ioctl %#lx is not blktrack's but succeeded (rc %ld, errno %d)",
			     cmd, rc, e);
		else if ((uintptr_t)arg >= (uintptr_t)arena &&
			 (uintptr_t)arg + _IOC_SIZE(cmd) <= (uintptr_t)arena + ARENA_PAGES * PAGE)
			remember(cmd, arg);
		return;
	}
	if (rc != -1 || e <= 0 || e > 133) {
		fail("ioctl %#lx returned %ld, errno %d", cmd, rc, e);
		return;
	}
	counts[e]++;
	if (!root && e != EPERM && e != ENOTTY)
		fail("unprivileged ioctl %#lx: rc %ld, errno %d (want EPERM or ENOTTY)",
		     cmd, rc, e);
}

/* Some writes to DEV now and then, so that the maps have something in them. */
static void write_some(int fd)
{
	static char *blk;
	off_t size;

	if (fd < 0)
		return;
	if (!blk && posix_memalign((void **)&blk, PAGE, PAGE))
		exit(2);
	fill_random(blk, PAGE);
	size = lseek(fd, 0, SEEK_END);
	if (size >= (off_t)PAGE && pwrite(fd, blk, PAGE, PAGE * below(size / PAGE)) < 0)
		perror("write DEV");
}

int main(int argc, char *argv[])
{
	unsigned long i, count = 100000;
	bool root = true;
	const char *path = NULL;
	struct timespec t0, t1;
	struct blktrack_attach at;
	struct stat sb;
	int ctl, fd = -1, a, e;

	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_REALTIME, &t0);
	rng = (uint64_t)t0.tv_nsec ^ ((uint64_t)t0.tv_sec << 20) ^ getpid();
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--unprivileged"))
			root = false;
		else if (!strcmp(argv[a], "--seed") && a + 1 < argc)
			rng = strtoull(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--count") && a + 1 < argc)
			count = strtoul(argv[++a], NULL, 0);
		else if (argv[a][0] != '-' && !path)
			path = argv[a];
		else {
			fprintf(stderr, "usage: %s [--unprivileged] [--seed N] [--count N] [DEV]\n",
				argv[0]);
			return 2;
		}
	}
	if (!rng)
		rng = 1;
	printf("# ioctl-fuzz seed %#llx, %lu calls, %s\n", (unsigned long long)rng, count,
	       root ? "root" : "uid 65534");

	arena = mmap(NULL, (ARENA_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unmapped = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || unmapped == MAP_FAILED ||
	    mprotect(arena + ARENA_PAGES * PAGE, PAGE, PROT_NONE) || munmap(unmapped, PAGE)) {
		perror("mmap");
		return 2;
	}
	if (path) {
		if (stat(path, &sb) || !S_ISBLK(sb.st_mode)) {
			fprintf(stderr, "%s: not a block device\n", path);
			return 2;
		}
		dev.major = major(sb.st_rdev);
		dev.minor = minor(sb.st_rdev);
		if (root)
			fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	}
	ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		perror("open " CTL_PATH);
		return 2;
	}
	if (root && path) {
		memset(&at, 0, sizeof(at));
		at.size = sizeof(at);
		at.dev = dev;
		if (ioctl(ctl, BLKTRACK_IOC_ATTACH, &at) && errno != EEXIST) {
			perror("ATTACH DEV");
			return 2;
		}
	}
	if (!root) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
			perror("dropping to uid/gid 65534");
			return 2;
		}
		e = open(CTL_PATH, O_RDWR) < 0 ? errno : 0;
		if (e != EACCES)
			fail("unprivileged open: errno %d (want EACCES)", e);
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++) {
		if (root && !(i % 512))
			write_some(fd);
		one_call(ctl, root);
		if (nfail > 20)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	printf("# %lu calls in %.1f s: %lu succeeded;", i,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, successes);
	for (e = 1; e < 134; e++)
		if (counts[e])
			printf(" %s %lu", strerrorname_np(e), counts[e]);
	printf("\n");
	if (root) {	/* the device still answers */
		struct blktrack_version v = { .size = sizeof(v) };

		if (ioctl(ctl, BLKTRACK_IOC_VERSION, &v) || v.abi_version != BLKTRACK_ABI_VERSION)
			fail("VERSION after the run: errno %d", errno);
	}
	printf("%s - ioctl-fuzz %s, seed printed above\n", nfail ? "not ok" : "ok",
	       root ? "as root" : "unprivileged");
	return nfail ? 1 : 0;
}

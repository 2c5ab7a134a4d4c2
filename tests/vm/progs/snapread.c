// SPDX-License-Identifier: GPL-2.0
/*
 * snapread - drive a volume's snapshot through the raw ioctls (tests).
 *
 *	snapread take DEV [STORE_LIMIT [all|pending [STORE]]]
 *	                                    CHECKPOINT_SNAP of DEV (all:
 *	                                    BLKTRACK_SNAP_ALL; limit 0: default;
 *	                                    STORE: a file or block device for
 *	                                    the copies, else memory)
 *	snapread read DEV OFFSET LENGTH [keep]
 *	                                    the snapshot of the range to stdout,
 *	                                    in SNAP_READ calls of at most 1 MiB
 *	snapread release DEV OFFSET LENGTH  one SNAP_READ_RELEASE of the range
 *	snapread status DEV                 SNAP_STATUS as "key value" lines
 *
 * Exits 0 on success; on an ioctl failure prints "errno NAME" to stderr
 * and exits 2, so a test can assert the errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/blktrack.h>

#define CHUNK (1U << 20)

static int ctl;
static struct blktrack_devno dev;

static int fail(const char *what)
{
	int e = errno;

	fprintf(stderr, "snapread: %s: %s\nerrno %s\n", what, strerror(e),
		strerrorname_np(e) ? strerrorname_np(e) : "?");
	return 2;
}

static int stamp_of(struct blktrack_stamp *stamp)
{
	struct blktrack_status st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.dev = dev;
	if (ioctl(ctl, BLKTRACK_IOC_STATUS, &st))
		return -1;
	*stamp = st.stamp;
	return 0;
}

/* @store: NULL for memory, else a file or block device for the copies. */
static int take(__u64 limit, __u32 flags, const char *store)
{
	struct blktrack_checkpoint_vol v;
	struct blktrack_checkpoint_snap c;
	int fd = -1;

	if (store) {
		fd = open(store, O_RDWR);
		if (fd < 0)
			return fail(store);
		flags |= BLKTRACK_SNAP_STORE_FD;
	}
	memset(&v, 0, sizeof(v));
	v.dev = dev;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.vols_ptr = (__u64)(unsigned long)&v;
	c.count = 1;
	c.store_limit = limit;
	c.flags = flags;
	c.store_fd = store ? fd : 0;
	if (ioctl(ctl, BLKTRACK_IOC_CHECKPOINT_SNAP, &c))
		return fail("CHECKPOINT_SNAP");
	/* The module keeps its own reference to the store. */
	if (fd >= 0)
		close(fd);
	printf("epoch %llu dirty %llu\n", (unsigned long long)v.stamp.epoch,
	       (unsigned long long)v.dirty);
	return 0;
}

static int readsnap(__u64 off, __u64 len, int keep)
{
	struct blktrack_snap_read rd;
	char *buf = malloc(CHUNK);

	if (!buf)
		return fail("malloc");
	memset(&rd, 0, sizeof(rd));
	rd.size = sizeof(rd);
	rd.dev = dev;
	rd.flags = keep ? BLKTRACK_SNAP_READ_KEEP : 0;
	if (stamp_of(&rd.stamp))
		return fail("STATUS");
	rd.buf_ptr = (__u64)(unsigned long)buf;
	while (len) {
		rd.offset = off;
		rd.length = len < CHUNK ? len : CHUNK;
		if (ioctl(ctl, BLKTRACK_IOC_SNAP_READ, &rd))
			return fail("SNAP_READ");
		if (fwrite(buf, 1, rd.length, stdout) != rd.length)
			return fail("write");
		off += rd.length;
		len -= rd.length;
	}
	free(buf);
	return fflush(stdout) ? fail("write") : 0;
}

static int release(__u64 off, __u64 len)
{
	struct blktrack_snap_read rd;

	memset(&rd, 0, sizeof(rd));
	rd.size = sizeof(rd);
	rd.dev = dev;
	rd.flags = BLKTRACK_SNAP_READ_RELEASE;
	if (stamp_of(&rd.stamp))
		return fail("STATUS");
	rd.offset = off;
	rd.length = len;
	if (ioctl(ctl, BLKTRACK_IOC_SNAP_READ, &rd))
		return fail("SNAP_READ_RELEASE");
	return 0;
}

static int status(void)
{
	struct blktrack_snap_status st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.dev = dev;
	if (ioctl(ctl, BLKTRACK_IOC_SNAP_STATUS, &st))
		return fail("SNAP_STATUS");
	printf("overflow %u\nerror %u\nprotected %llu\nuncopied %llu\ncopied %llu\n"
	       "released %llu\nheld %llu\nstore_bytes %llu\nstore_limit %llu\n",
	       !!(st.flags & BLKTRACK_STATUS_SNAP_OVERFLOW), st.error,
	       (unsigned long long)st.protected_blocks,
	       (unsigned long long)st.uncopied_blocks,
	       (unsigned long long)st.copied_blocks,
	       (unsigned long long)st.released_blocks,
	       (unsigned long long)st.held_writes,
	       (unsigned long long)st.store_bytes,
	       (unsigned long long)st.store_limit);
	return 0;
}

int main(int argc, char **argv)
{
	struct stat sb;

	if (argc < 3) {
		fprintf(stderr, "usage: snapread take|read|release|status DEV ...\n");
		return 1;
	}
	if (stat(argv[2], &sb) || !S_ISBLK(sb.st_mode))
		return fail(argv[2]);
	dev.major = major(sb.st_rdev);
	dev.minor = minor(sb.st_rdev);
	ctl = open("/dev/" BLKTRACK_CTL_NAME, O_RDWR);
	if (ctl < 0)
		return fail("open");
	if (!strcmp(argv[1], "take"))
		return take(argc > 3 ? strtoull(argv[3], NULL, 0) : 0,
			    argc > 4 && !strcmp(argv[4], "all") ? BLKTRACK_SNAP_ALL : 0,
			    argc > 5 ? argv[5] : NULL);
	if (!strcmp(argv[1], "read") && argc >= 5)
		return readsnap(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
				argc > 5 && !strcmp(argv[5], "keep"));
	if (!strcmp(argv[1], "release") && argc >= 5)
		return release(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (!strcmp(argv[1], "status"))
		return status();
	fprintf(stderr, "usage: snapread take|read|release|status DEV ...\n");
	return 1;
}

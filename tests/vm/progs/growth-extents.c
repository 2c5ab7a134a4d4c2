// SPDX-License-Identifier: GPL-2.0
/*
 * growth-extents: the READ_EXTENTS side of the growth benchmark
 * (tests/vm/bench/0700-growth.sh).
 *
 *   growth-extents write DEV FIRST N BS
 *                                   write block 2i (BS bytes) for FIRST <= i
 *                                   < N with O_DIRECT, 256 in flight (Linux
 *                                   AIO): separated extents; prints "ns T"
 *   growth-extents read DEV CAP     page through DEV's pending map with
 *                                   READ_EXTENTS, CAP extents per call (the
 *                                   library uses 1024); prints
 *                                   "extents N calls C ns T"
 *
 * Times are CLOCK_MONOTONIC, guest instructions under icount. The read
 * checks its own result against what write produced: N extents of BS bytes,
 * at 2i * BS, in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <linux/blktrack.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#define DEPTH	256

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "growth-extents: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int do_write(const char *dev, uint64_t first, uint64_t n, size_t bs)
{
	static struct iocb cbs[DEPTH];
	struct iocb *ptrs[DEPTH], *free_cb[DEPTH];
	long nfree = DEPTH;
	struct io_event ev[DEPTH];
	aio_context_t ctx = 0;
	uint64_t next = first, done = first, t0;
	long inflight = 0, got, i;
	void *buf;
	int fd;

	fd = open(dev, O_WRONLY | O_DIRECT);
	if (fd < 0)
		die(dev);
	if (posix_memalign(&buf, 4096, bs))
		die("posix_memalign");
	memset(buf, 0x5a, bs);
	if (syscall(SYS_io_setup, DEPTH, &ctx))
		die("io_setup");
	for (i = 0; i < DEPTH; i++)
		free_cb[i] = &cbs[i];
	t0 = now_ns();
	while (done < n) {
		long batch = 0;

		/* Refill every free slot, then reap at least one. */
		while (next < n && nfree) {
			struct iocb *cb = free_cb[--nfree];

			memset(cb, 0, sizeof(*cb));
			cb->aio_fildes = fd;
			cb->aio_lio_opcode = IOCB_CMD_PWRITE;
			cb->aio_buf = (uintptr_t)buf;
			cb->aio_nbytes = bs;
			cb->aio_offset = 2 * next * bs;
			ptrs[batch++] = cb;
			next++;
		}
		if (batch && syscall(SYS_io_submit, ctx, batch, ptrs) != batch)
			die("io_submit");
		inflight += batch;
		got = syscall(SYS_io_getevents, ctx, 1, DEPTH, ev, NULL);
		if (got < 0)
			die("io_getevents");
		for (i = 0; i < got; i++) {
			if (ev[i].res != (int64_t)bs) {
				errno = ev[i].res < 0 ? -ev[i].res : EIO;
				die("write");
			}
			free_cb[nfree++] = (struct iocb *)(uintptr_t)ev[i].obj;
		}
		inflight -= got;
		done += got;
	}
	printf("ns %llu\n", (unsigned long long)(now_ns() - t0));
	syscall(SYS_io_destroy, ctx);
	close(fd);
	return 0;
}

static int do_read(const char *dev, uint32_t cap)
{
	struct blktrack_status st = { .size = sizeof(st) };
	struct blktrack_read_extents rd = { .size = sizeof(rd) };
	struct blktrack_extent *ext;
	uint64_t n = 0, calls = 0, t0, t;
	struct stat sb;
	uint32_t i;
	int ctl;

	if (stat(dev, &sb))
		die(dev);
	ctl = open("/dev/" BLKTRACK_CTL_NAME, O_RDWR);
	if (ctl < 0)
		die("/dev/" BLKTRACK_CTL_NAME);
	st.dev.major = major(sb.st_rdev);
	st.dev.minor = minor(sb.st_rdev);
	if (ioctl(ctl, BLKTRACK_IOC_STATUS, &st))
		die("STATUS");
	ext = calloc(cap, sizeof(*ext));
	if (!ext)
		die("calloc");
	rd.dev = st.dev;
	rd.stamp = st.stamp;
	rd.extents_ptr = (uintptr_t)ext;
	t = 0;
	while (rd.cursor < st.dev_size) {
		rd.capacity = cap;
		t0 = now_ns();
		if (ioctl(ctl, BLKTRACK_IOC_READ_EXTENTS, &rd))
			die("READ_EXTENTS");
		t += now_ns() - t0;
		calls++;
		/* The check is outside the timed part. */
		for (i = 0; i < rd.count; i++, n++)
			if (ext[i].offset != 2 * n * st.block_size ||
			    ext[i].length != st.block_size) {
				fprintf(stderr, "growth-extents: extent %llu is %llu+%llu\n",
					(unsigned long long)n,
					(unsigned long long)ext[i].offset,
					(unsigned long long)ext[i].length);
				return 1;
			}
	}
	printf("extents %llu calls %llu ns %llu\n", (unsigned long long)n,
	       (unsigned long long)calls, (unsigned long long)t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "write"))
		return do_write(argv[2], strtoull(argv[3], NULL, 0),
				strtoull(argv[4], NULL, 0), strtoul(argv[5], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "read"))
		return do_read(argv[2], strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: growth-extents write DEV FIRST N BS | read DEV CAP\n");
	return 2;
}

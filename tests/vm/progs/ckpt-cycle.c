// SPDX-License-Identifier: GPL-2.0
/*
 * ckpt-cycle - CHECKPOINT and COMMIT of one volume every PERIOD ms, timed.
 *
 *	ckpt-cycle [-c CPU] [-p PERIOD_MS] [-r] [-g] DEV SECS
 *
 * For SECS seconds, at every multiple of PERIOD_MS (default 100) from the
 * start: CHECKPOINT DEV, then (with -r) READ_EXTENTS of the whole pending
 * map as a backup would, then COMMIT; with -g then one
 * membarrier(MEMBARRIER_CMD_GLOBAL), which is one synchronize_rcu() in the
 * kernel: what CHECKPOINT's own grace period costs on this machine. Each
 * call is timed with clock_gettime(CLOCK_MONOTONIC). -c CPU pins the
 * program to that CPU.
 * DEV must be attached with no checkpoint pending.
 *
 * Prints one "key value" line per figure (nanoseconds, blocks, extents):
 *	cycles N
 *	checkpoint_ns_median N / checkpoint_ns_max N
 *	read_ns_median N / read_ns_max N / extents N   (with -r)
 *	commit_ns_median N / commit_ns_max N
 *	gp_ns_median N / gp_ns_max N                   (with -g)
 *	dirty_per_cycle_median N
 * Exit status 0, or 1 on any error (printed).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/membarrier.h>
#include <linux/blktrack.h>

#define CTL_PATH "/dev/" BLKTRACK_CTL_NAME
#define NEXT 4096		/* extents per READ_EXTENTS call */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Print the median and maximum of @v[0..@n) (sorts @v). */
static void report(const char *key, uint64_t *v, size_t n)
{
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%s_median %llu\n", key, (unsigned long long)v[(n - 1) / 2]);
	printf("%s_max %llu\n", key, (unsigned long long)v[n - 1]);
}

static int usage(void)
{
	fprintf(stderr, "usage: ckpt-cycle [-c CPU] [-p PERIOD_MS] [-r] [-g] DEV SECS\n");
	return 1;
}

/* READ_EXTENTS of the whole pending map; adds the extents to *@total. */
static int read_all(int ctl, const struct blktrack_devno *dev,
		    const struct blktrack_stamp *stamp, uint64_t size,
		    struct blktrack_extent *ext, uint64_t *total)
{
	struct blktrack_read_extents rd;
	uint64_t cursor = 0;

	while (cursor < size) {
		memset(&rd, 0, sizeof(rd));
		rd.size = sizeof(rd);
		rd.dev = *dev;
		rd.stamp = *stamp;
		rd.cursor = cursor;
		rd.extents_ptr = (uintptr_t)ext;
		rd.capacity = NEXT;
		if (ioctl(ctl, BLKTRACK_IOC_READ_EXTENTS, &rd) < 0) {
			perror("READ_EXTENTS");
			return -1;
		}
		*total += rd.count;
		cursor = rd.cursor;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct blktrack_extent *ext = NULL;
	struct blktrack_checkpoint_vol vol;
	struct blktrack_checkpoint ck;
	struct blktrack_stamp_arg st;
	struct blktrack_devno dev;
	uint64_t *t_ck, *t_rd, *t_cm, *t_gp, *dirty;
	uint64_t period = 100, secs, size, start, next, extents = 0;
	size_t n = 0, max;
	bool rd = false, gp = false;
	struct stat sb;
	int c, ctl, fd, cpu = -1;

	while ((c = getopt(argc, argv, "c:p:rg")) != -1) {
		switch (c) {
		case 'c': cpu = atoi(optarg); break;
		case 'p': period = strtoull(optarg, NULL, 10); break;
		case 'r': rd = true; break;
		case 'g': gp = true; break;
		default: return usage();
		}
	}
	if (argc - optind != 2 || !period)
		return usage();
	secs = strtoull(argv[optind + 1], NULL, 10);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			perror("sched_setaffinity");
			return 1;
		}
	}
	fd = open(argv[optind], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		perror(argv[optind]);
		return 1;
	}
	close(fd);
	dev.major = major(sb.st_rdev);
	dev.minor = minor(sb.st_rdev);
	ctl = open(CTL_PATH, O_RDWR);
	if (ctl < 0) {
		perror(CTL_PATH);
		return 1;
	}
	max = secs * 1000 / period + 1;
	t_ck = calloc(max, sizeof(*t_ck));
	t_rd = calloc(max, sizeof(*t_rd));
	t_cm = calloc(max, sizeof(*t_cm));
	t_gp = calloc(max, sizeof(*t_gp));
	dirty = calloc(max, sizeof(*dirty));
	if (rd)
		ext = calloc(NEXT, sizeof(*ext));
	if (!t_ck || !t_rd || !t_cm || !t_gp || !dirty || (rd && !ext)) {
		perror("calloc");
		return 1;
	}

	start = now_ns();
	for (next = start + period * 1000000; n < max; next += period * 1000000) {
		struct timespec ts = { next / 1000000000, next % 1000000000 };
		uint64_t t0, t1, t2, t3;

		if (next - start > secs * 1000000000)
			break;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		memset(&vol, 0, sizeof(vol));
		vol.dev = dev;
		memset(&ck, 0, sizeof(ck));
		ck.size = sizeof(ck);
		ck.vols_ptr = (uintptr_t)&vol;
		ck.count = 1;
		t0 = now_ns();
		if (ioctl(ctl, BLKTRACK_IOC_CHECKPOINT, &ck) < 0) {
			perror("CHECKPOINT");
			return 1;
		}
		t1 = now_ns();
		if (rd && read_all(ctl, &dev, &vol.stamp, size, ext, &extents) < 0)
			return 1;
		memset(&st, 0, sizeof(st));
		st.size = sizeof(st);
		st.dev = dev;
		st.stamp = vol.stamp;
		t2 = now_ns();
		if (ioctl(ctl, BLKTRACK_IOC_COMMIT, &st) < 0) {
			perror("COMMIT");
			return 1;
		}
		t3 = now_ns();
		if (gp) {
			if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) < 0) {
				perror("membarrier");
				return 1;
			}
			t_gp[n] = now_ns() - t3;
		}
		t_ck[n] = t1 - t0;
		t_rd[n] = t2 - t1;
		t_cm[n] = t3 - t2;
		dirty[n] = vol.dirty;
		n++;
	}
	printf("cycles %zu\n", n);
	report("checkpoint_ns", t_ck, n);
	if (rd) {
		report("read_ns", t_rd, n);
		printf("extents %llu\n", (unsigned long long)extents);
	}
	report("commit_ns", t_cm, n);
	if (gp)
		report("gp_ns", t_gp, n);
	if (n) {
		qsort(dirty, n, sizeof(*dirty), cmp_u64);
		printf("dirty_per_cycle_median %llu\n", (unsigned long long)dirty[(n - 1) / 2]);
	}
	return 0;
}

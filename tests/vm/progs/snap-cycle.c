// SPDX-License-Identifier: GPL-2.0
/*
 * snap-cycle - snapshot checkpoints of one volume every PERIOD ms (tests).
 *
 *	snap-cycle [-p PERIOD_MS] [-w OFFSET:LENGTH] [-v EVERY]
 *	           [-s SUSPEND-CMD -r RESUME-CMD] DEV SECS OUT
 *
 * For SECS seconds, every PERIOD_MS (default 100; a cycle that takes longer
 * delays the next), a cycle: CHECKPOINT_SNAP of DEV (BLKTRACK_SNAP_ALL every
 * fourth cycle), SNAP_STATUS (not lost; protected = the checkpoint's dirty
 * blocks, or the whole volume), READ_EXTENTS of the pending map, a
 * SNAP_READ of up to 256 KiB of one of its extents (KEEP every other time),
 * a SNAP_READ_RELEASE of another every fifth cycle, then COMMIT (even cycles)
 * or ABORT (odd), after which SNAP_STATUS must fail with ENODATA. The
 * extents of every committed pending map are appended to OUT as "OFFSET
 * LENGTH" lines (bytes): with the pending map of a last checkpoint they
 * must cover every block written meanwhile.
 *
 * Verifying cycles (with -s/-r: cycle 3, then every EVERY cycles, default
 * 40): run SUSPEND-CMD (the caller quiesces every writer of DEV, e.g. by
 * suspending a dm device they write through, which drains it; a tracked
 * dm device itself needs a drain such as FIFREEZE), read the window
 * OFFSET:LENGTH of DEV (default: the first 16 MiB) with O_DIRECT as the
 * image, CHECKPOINT_SNAP with BLKTRACK_SNAP_ALL, run RESUME-CMD, then read
 * the window through SNAP_READ while the writers go on: it must equal the
 * image byte for byte.
 *
 * Prints "key value" lines (cycles, commits, aborts, verified, copied,
 * held; checkpoint_ns_mean/max: CHECKPOINT_SNAP, end_ns_mean/max: COMMIT or
 * ABORT) and exits 0, or prints the failure and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/blktrack.h>

#define CTL_PATH "/dev/" BLKTRACK_CTL_NAME
#define NEXT 4096			/* extents per READ_EXTENTS call */
#define CHUNK (1U << 20)		/* bytes per SNAP_READ */
#define PART (256U << 10)		/* a plain cycle reads at most this */

static int ctl;
static struct blktrack_devno dev;
static uint64_t size;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int die(unsigned int cycle, const char *what)
{
	int e = errno;

	printf("cycle %u: %s: %s\n", cycle, what, e ? strerror(e) : "failed");
	fflush(stdout);
	exit(1);
}

static int usage(void)
{
	fprintf(stderr, "usage: snap-cycle [-p PERIOD_MS] [-w OFFSET:LENGTH] [-v EVERY] "
		"[-s SUSPEND-CMD -r RESUME-CMD] DEV SECS OUT\n");
	return 1;
}

static void snap_status(unsigned int cycle, struct blktrack_snap_status *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->dev = dev;
	if (ioctl(ctl, BLKTRACK_IOC_SNAP_STATUS, st))
		die(cycle, "SNAP_STATUS");
}

/* The whole pending map into *@ext (grown as needed); returns the count. */
static size_t pending_extents(unsigned int cycle, const struct blktrack_stamp *stamp,
			      struct blktrack_extent **ext, size_t *cap)
{
	struct blktrack_read_extents rd;
	uint64_t cursor = 0;
	size_t n = 0;

	while (cursor < size) {
		if (*cap - n < NEXT) {
			*cap = *cap * 2 + NEXT;
			*ext = realloc(*ext, *cap * sizeof(**ext));
			if (!*ext)
				die(cycle, "realloc");
		}
		memset(&rd, 0, sizeof(rd));
		rd.size = sizeof(rd);
		rd.dev = dev;
		rd.stamp = *stamp;
		rd.cursor = cursor;
		rd.extents_ptr = (uintptr_t)(*ext + n);
		rd.capacity = NEXT;
		if (ioctl(ctl, BLKTRACK_IOC_READ_EXTENTS, &rd))
			die(cycle, "READ_EXTENTS");
		n += rd.count;
		cursor = rd.cursor;
	}
	return n;
}

static void snap_read(unsigned int cycle, const struct blktrack_stamp *stamp, uint64_t off,
		      uint64_t len, void *buf, uint32_t flags)
{
	struct blktrack_snap_read rd;

	while (len) {
		memset(&rd, 0, sizeof(rd));
		rd.size = sizeof(rd);
		rd.dev = dev;
		rd.flags = flags;
		rd.stamp = *stamp;
		rd.offset = off;
		rd.length = len < CHUNK ? len : CHUNK;
		rd.buf_ptr = (uintptr_t)buf;
		if (ioctl(ctl, BLKTRACK_IOC_SNAP_READ, &rd))
			die(cycle, flags & BLKTRACK_SNAP_READ_RELEASE ? "SNAP_READ_RELEASE" :
				   "SNAP_READ");
		if (buf)
			buf = (char *)buf + rd.length;
		off += rd.length;
		len -= rd.length;
		if (flags & BLKTRACK_SNAP_READ_RELEASE)
			break;	/* one call, any length */
	}
}

static void run_cmd(unsigned int cycle, const char *cmd)
{
	int rc = system(cmd);

	if (rc) {
		errno = 0;
		printf("cycle %u: \"%s\" exited %d\n", cycle, cmd, rc);
		die(cycle, "command");
	}
}

int main(int argc, char *argv[])
{
	const char *suspend = NULL, *resume = NULL;
	struct blktrack_extent *ext = NULL;
	uint64_t period = 100, secs, start, next, ck_max = 0, copied = 0, held = 0;
	uint64_t ck_sum = 0, end_sum = 0, end_max = 0;
	uint64_t woff = 0, wlen = 16 << 20;
	unsigned int every = 40, n = 0, commits = 0, aborts = 0, verified = 0;
	char *image = NULL, *snap = NULL, *part = NULL;
	size_t cap = 0;
	struct stat sb;
	FILE *out;
	int c, fd, dfd;

	while ((c = getopt(argc, argv, "p:w:v:s:r:")) != -1) {
		switch (c) {
		case 'p': period = strtoull(optarg, NULL, 10); break;
		case 'w':
			if (sscanf(optarg, "%lu:%lu", &woff, &wlen) != 2)
				return usage();
			break;
		case 'v': every = strtoul(optarg, NULL, 10); break;
		case 's': suspend = optarg; break;
		case 'r': resume = optarg; break;
		default: return usage();
		}
	}
	if (argc - optind != 3 || !period || !every || !suspend != !resume)
		return usage();
	secs = strtoull(argv[optind + 1], NULL, 10);
	fd = open(argv[optind], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		perror(argv[optind]);
		return 1;
	}
	close(fd);
	dev.major = major(sb.st_rdev);
	dev.minor = minor(sb.st_rdev);
	dfd = open(argv[optind], O_RDONLY | O_DIRECT);
	out = fopen(argv[optind + 2], "a");
	ctl = open(CTL_PATH, O_RDWR);
	if (dfd < 0 || !out || ctl < 0) {
		perror("open");
		return 1;
	}
	if (woff % 4096 || wlen % 4096 || !wlen || woff + wlen > size) {
		fprintf(stderr, "snap-cycle: bad window %lu:%lu\n", woff, wlen);
		return 1;
	}
	if (posix_memalign((void **)&image, 4096, wlen) ||
	    posix_memalign((void **)&snap, 4096, wlen) ||
	    posix_memalign((void **)&part, 4096, PART)) {
		perror("posix_memalign");
		return 1;
	}

	start = now_ns();
	for (next = start + period * 1000000; ; next += period * 1000000, n++) {
		struct timespec ts;
		uint64_t t = now_ns();
		bool verify = suspend && (n == 3 || (n > 3 && n % every == 3));
		bool all = verify || n % 4 == 2;
		struct blktrack_checkpoint_snap ck;
		struct blktrack_checkpoint_vol vol;
		struct blktrack_snap_status st;
		struct blktrack_stamp_arg sa;
		uint64_t t0, want;
		size_t nx, i;

		/* Wall time bounds the run: a slow cycle delays the next one. */
		if (t - start >= secs * 1000000000)
			break;
		if (next < t)
			next = t;
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		if (verify) {
			run_cmd(n, suspend);
			if (pread(dfd, image, wlen, woff) != (ssize_t)wlen)
				die(n, "read the image");
		}
		memset(&vol, 0, sizeof(vol));
		vol.dev = dev;
		memset(&ck, 0, sizeof(ck));
		ck.size = sizeof(ck);
		ck.vols_ptr = (uintptr_t)&vol;
		ck.count = 1;
		ck.flags = all ? BLKTRACK_SNAP_ALL : 0;
		t0 = now_ns();
		if (ioctl(ctl, BLKTRACK_IOC_CHECKPOINT_SNAP, &ck))
			die(n, "CHECKPOINT_SNAP");
		t0 = now_ns() - t0;
		ck_sum += t0;
		if (t0 > ck_max)
			ck_max = t0;
		if (verify)
			run_cmd(n, resume);

		snap_status(n, &st);
		/* DEV is attached with 4 KiB blocks. */
		want = all ? (size + 4095) / 4096 : vol.dirty;
		if (st.protected_blocks != want) {
			errno = 0;
			printf("cycle %u: %llu blocks protected, wanted %llu\n", n,
			       (unsigned long long)st.protected_blocks, (unsigned long long)want);
			die(n, "SNAP_STATUS");
		}
		nx = pending_extents(n, &vol.stamp, &ext, &cap);
		if (verify) {
			snap_read(n, &vol.stamp, woff, wlen, snap, 0);
			if (memcmp(snap, image, wlen)) {
				for (i = 0; i < wlen && snap[i] == image[i]; i++)
					;
				errno = 0;
				printf("cycle %u: the snapshot differs from the image at byte %llu "
				       "of the window at %lu\n", n, (unsigned long long)i, woff);
				die(n, "verify");
			}
			verified++;
		} else if (nx) {
			const struct blktrack_extent *e = &ext[n % nx];

			snap_read(n, &vol.stamp, e->offset, e->length < PART ? e->length : PART,
				  part, n % 2 ? BLKTRACK_SNAP_READ_KEEP : 0);
			if (n % 5 == 0 && nx > 1) {
				e = &ext[(n / 5) % nx];
				snap_read(n, &vol.stamp, e->offset, e->length, NULL,
					  BLKTRACK_SNAP_READ_RELEASE);
			}
		}
		snap_status(n, &st);
		if (st.flags & BLKTRACK_STATUS_SNAP_OVERFLOW) {
			errno = st.error;
			die(n, "the snapshot was lost");
		}
		copied += st.copied_blocks;
		held += st.held_writes;

		memset(&sa, 0, sizeof(sa));
		sa.size = sizeof(sa);
		sa.dev = dev;
		sa.stamp = vol.stamp;
		t0 = now_ns();
		if (n % 2 == 0) {
			if (ioctl(ctl, BLKTRACK_IOC_COMMIT, &sa))
				die(n, "COMMIT");
			t0 = now_ns() - t0;
			for (i = 0; i < nx; i++)
				fprintf(out, "%llu %llu\n", (unsigned long long)ext[i].offset,
					(unsigned long long)ext[i].length);
			commits++;
		} else {
			if (ioctl(ctl, BLKTRACK_IOC_ABORT, &sa))
				die(n, "ABORT");
			t0 = now_ns() - t0;
			aborts++;
		}
		end_sum += t0;
		if (t0 > end_max)
			end_max = t0;
		memset(&st, 0, sizeof(st));
		st.size = sizeof(st);
		st.dev = dev;
		if (!ioctl(ctl, BLKTRACK_IOC_SNAP_STATUS, &st) || errno != ENODATA) {
			if (!errno)
				errno = EEXIST;
			die(n, "SNAP_STATUS after the end of the checkpoint (wanted ENODATA)");
		}
	}
	if (fclose(out)) {
		perror("OUT");
		return 1;
	}
	printf("cycles %u\ncommits %u\naborts %u\nverified %u\ncopied %llu\nheld %llu\n"
	       "checkpoint_ns_mean %llu\ncheckpoint_ns_max %llu\nend_ns_mean %llu\n"
	       "end_ns_max %llu\n", n, commits, aborts, verified,
	       (unsigned long long)copied, (unsigned long long)held,
	       (unsigned long long)(n ? ck_sum / n : 0), (unsigned long long)ck_max,
	       (unsigned long long)(n ? end_sum / n : 0), (unsigned long long)end_max);
	return 0;
}

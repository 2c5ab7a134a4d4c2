// SPDX-License-Identifier: GPL-2.0
/*
 * snapchurn - the snapshot's store against the bytes rewritten during a
 * read (tests/vm/bench/0800-snapshot.sh).
 *
 *	snapchurn DEV BLOCKS CHUNK_MIB before|during [STORE_LIMIT]
 *
 * DEV is attached (4 KiB blocks) with no pending checkpoint. snapchurn
 * hashes DEV, takes CHECKPOINT_SNAP with BLKTRACK_SNAP_ALL (as `blktrack
 * backup --snapshot=cow` does), then rewrites BLOCKS distinct blocks (a
 * fixed pseudo-random choice over the volume, 4 KiB O_DIRECT pwrites, each
 * block once) and reads the whole snapshot in order with SNAP_READ, CHUNK_MIB
 * at a time (each read releases its range, as the requester's does):
 *   before: every rewrite first, then the read;
 *   during: the rewrites spread evenly over the read: before chunk c is
 *           read, the c-th slice of the rewrites is written.
 * After each step it takes SNAP_STATUS; the snapshot read must hash as DEV
 * did. The snapshot is left in place (COMMIT or ABORT it). Prints
 * "key value" lines: rewritten_blocks, rewritten_bytes, copied_blocks
 * (SNAP_STATUS, at the end), expected_copied (rewrites of blocks the read
 * had not reached: each must have been copied, and no other), peak_store_bytes
 * (largest store_bytes seen between steps), end_store_bytes, held_writes.
 * Exits 0 on success, 1 if the snapshot read differs or the counts are off,
 * 2 on an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/blktrack.h>
#include <linux/fs.h>

#define BS 4096ULL

static int ctl, fd;
static struct blktrack_devno dev;
static struct blktrack_stamp stamp;
static __u64 peak_store;

static void die(const char *what)
{
	fprintf(stderr, "snapchurn: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* 64-bit FNV-1a over 8-byte words: enough to tell two images apart. */
static uint64_t hash_words(uint64_t h, const void *buf, size_t len)
{
	const uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		h ^= w[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct blktrack_snap_status snap_status(void)
{
	struct blktrack_snap_status st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.dev = dev;
	if (ioctl(ctl, BLKTRACK_IOC_SNAP_STATUS, &st))
		die("SNAP_STATUS");
	if (st.flags & BLKTRACK_STATUS_SNAP_OVERFLOW) {
		fprintf(stderr, "snapchurn: the snapshot was lost (error %u)\n", st.error);
		exit(2);
	}
	if (st.store_bytes > peak_store)
		peak_store = st.store_bytes;
	return st;
}

static void rewrite(__u64 block, void *buf)
{
	memset(buf, (int)(block * 7 + 1), BS);
	memcpy(buf, &block, sizeof(block));
	if (pwrite(fd, buf, BS, block * BS) != (ssize_t)BS)
		die("pwrite");
}

int main(int argc, char **argv)
{
	struct blktrack_checkpoint_vol v;
	struct blktrack_checkpoint_snap c;
	struct blktrack_snap_read rd;
	struct blktrack_snap_status st;
	__u64 size, nblocks, nrw, chunk, nchunks, i, j, expected = 0, limit = 0, seed;
	uint64_t want = 0xcbf29ce484222325ULL, got = 0xcbf29ce484222325ULL;
	__u64 *perm;
	struct stat sb;
	int during;
	void *buf, *wbuf;

	if (argc < 5 || (strcmp(argv[4], "before") && strcmp(argv[4], "during"))) {
		fprintf(stderr, "usage: snapchurn DEV BLOCKS CHUNK_MIB before|during [STORE_LIMIT]\n");
		return 2;
	}
	during = !strcmp(argv[4], "during");
	if (argc > 5)
		limit = strtoull(argv[5], NULL, 0);
	if (stat(argv[1], &sb) || !S_ISBLK(sb.st_mode))
		die(argv[1]);
	dev.major = major(sb.st_rdev);
	dev.minor = minor(sb.st_rdev);
	ctl = open("/dev/" BLKTRACK_CTL_NAME, O_RDWR);
	fd = open(argv[1], O_RDWR | O_DIRECT);
	if (ctl < 0 || fd < 0)
		die("open");
	if (ioctl(fd, BLKGETSIZE64, &size))
		die("BLKGETSIZE64");
	nblocks = size / BS;
	nrw = strtoull(argv[2], NULL, 0);
	chunk = strtoull(argv[3], NULL, 0) << 20;
	if (!nrw || nrw > nblocks || !chunk || size % chunk) {
		fprintf(stderr, "snapchurn: BLOCKS 1..%llu, CHUNK_MIB dividing the volume\n",
			(unsigned long long)nblocks);
		return 2;
	}
	nchunks = size / chunk;
	if (posix_memalign(&buf, BS, chunk) || posix_memalign(&wbuf, BS, BS))
		die("posix_memalign");

	/* The rewrites: the first nrw of a fixed permutation of the blocks. */
	perm = malloc(nblocks * sizeof(*perm));
	if (!perm)
		die("malloc");
	for (i = 0; i < nblocks; i++)
		perm[i] = i;
	seed = 0x800;
	for (i = 0; i < nrw; i++) {
		__u64 t;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		j = i + (seed >> 33) % (nblocks - i);
		t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}

	for (i = 0; i < nchunks; i++) {
		if (pread(fd, buf, chunk, i * chunk) != (ssize_t)chunk)
			die("pread");
		want = hash_words(want, buf, chunk);
	}

	memset(&v, 0, sizeof(v));
	v.dev = dev;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.vols_ptr = (__u64)(unsigned long)&v;
	c.count = 1;
	c.flags = BLKTRACK_SNAP_ALL;
	c.store_limit = limit;
	if (ioctl(ctl, BLKTRACK_IOC_CHECKPOINT_SNAP, &c))
		die("CHECKPOINT_SNAP");
	stamp = v.stamp;

	memset(&rd, 0, sizeof(rd));
	rd.size = sizeof(rd);
	rd.dev = dev;
	rd.stamp = stamp;
	rd.buf_ptr = (__u64)(unsigned long)buf;
	rd.length = chunk;
	j = 0;
	for (i = 0; i < nchunks; i++) {
		/* Rewrites before the read of chunk i. */
		__u64 upto = during ? nrw * (i + 1) / nchunks : (i ? j : nrw);

		for (; j < upto; j++) {
			if (perm[j] >= i * chunk / BS)
				expected++;	/* the read has not reached it */
			rewrite(perm[j], wbuf);
		}
		snap_status();
		rd.offset = i * chunk;
		if (ioctl(ctl, BLKTRACK_IOC_SNAP_READ, &rd))
			die("SNAP_READ");
		got = hash_words(got, buf, chunk);
	}
	st = snap_status();

	printf("rewritten_blocks %llu\nrewritten_bytes %llu\ncopied_blocks %llu\n"
	       "expected_copied %llu\npeak_store_bytes %llu\nend_store_bytes %llu\n"
	       "held_writes %llu\n",
	       (unsigned long long)nrw, (unsigned long long)(nrw * BS),
	       (unsigned long long)st.copied_blocks, (unsigned long long)expected,
	       (unsigned long long)peak_store, (unsigned long long)st.store_bytes,
	       (unsigned long long)st.held_writes);
	if (got != want) {
		fprintf(stderr, "snapchurn: the snapshot read differs from the volume at the checkpoint\n");
		return 1;
	}
	if (st.copied_blocks != expected || st.store_bytes) {
		fprintf(stderr, "snapchurn: %llu copied, %llu expected, %llu bytes left in the store\n",
			(unsigned long long)st.copied_blocks, (unsigned long long)expected,
			(unsigned long long)st.store_bytes);
		return 1;
	}
	return 0;
}

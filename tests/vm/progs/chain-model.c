// SPDX-License-Identifier: GPL-2.0
/*
 * chain-model - the I/O half of the model-based chain test (0980).
 *
 *	chain-model plan SEED STEPS SIZE      the steps, one per line (below)
 *	chain-model write DEV REF OFF LEN direct|buffered DATA-SEED
 *	chain-model discard DEV REF OFF LEN   BLKDISCARD
 *	chain-model zero DEV REF OFF LEN zeroout|zero-range|punch
 *	chain-model cmp A B                   exit 1 (and the first differing
 *	                                      offset) when A and B differ
 *	chain-model hash FILE                 a 64-bit hash of FILE's bytes
 *
 * The test keeps REF, a regular file, as its own image of the volume DEV:
 * every change is made to DEV through the block layer and to REF by plain
 * writes of the bytes the test expects DEV to hold (the data written,
 * zeros for a zero-range and for a discard of a loop device over tmpfs,
 * which punches a hole). A discard or zero-range is checked by reading DEV
 * back: it must hold zeros there.
 *
 * The hash compares a restored image with REF as it was at the backup. It
 * is not cryptographic (the test is not up against an adversary), only
 * much faster than sha256sum under TCG: four lanes of multiply-rotate
 * rounds over 64-bit words, then the length and a final avalanche.
 *
 * The plan is a pure function of SEED, STEPS and SIZE (splitmix64): a seed
 * replays the same steps and the same data. Its lines:
 *	write OFF LEN direct|buffered DATA-SEED
 *	discard OFF LEN
 *	zero OFF LEN zeroout|zero-range|punch
 *	backup TYPE                  full|incremental|differential|copy|resync|auto
 *	fail TYPE HOW                reject|after-checkpoint|during-write|after-catalog
 *	reload HOW OFF LEN DATA-SEED plain|reattach|unclean, then a write of LEN
 *	                             bytes (0: none) while not tracked
 *	reboot                       a clean save, module reload, restore-state
 *	restore PICK                 restore the backup number PICK % points
 *	verify                       blktrack verify (and --against the device)
 * each preceded by the step number.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#define SECTOR 512ULL
#define IO_CHUNK (1U << 20)

static uint64_t rng;

/* splitmix64: tiny, and the same sequence on every machine. */
static uint64_t next64(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, n). */
static uint64_t below(uint64_t n)
{
	return n ? next64() % n : 0;
}

static void die(const char *what)
{
	fprintf(stderr, "chain-model: %s: %s\n", what, strerror(errno));
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "chain-model: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

/* ---- the plan ------------------------------------------------------------ */

/* A length: mostly small, some medium, a few large. */
static uint64_t some_len(uint64_t size)
{
	uint64_t r = below(100), len;

	if (r < 50)
		len = 1 + below(8192);
	else if (r < 85)
		len = 1 + below(128 << 10);
	else
		len = 1 + below(1 << 20);
	return len < size ? len : size;
}

/* An extent [off, off + len) in the volume; 1 in 10 ends at the last byte. */
static void some_extent(uint64_t size, uint64_t align, uint64_t *off, uint64_t *len)
{
	uint64_t l = some_len(size);

	if (align > 1)
		l = (l + align - 1) / align * align;
	if (below(10) == 0)
		*off = size - l;
	else
		*off = below(size - l + 1) / align * align;
	*len = l;
}

static const char *pick(const char *const *v, const unsigned int *weight)
{
	unsigned int total = 0, i;
	uint64_t r;

	for (i = 0; v[i]; i++)
		total += weight[i];
	r = below(total);
	for (i = 0; r >= weight[i]; i++)
		r -= weight[i];
	return v[i];
}

static const char *const types[] = { "incremental", "differential", "full", "copy",
				     "resync", "auto", NULL };
static const unsigned int type_w[] = { 45, 20, 10, 8, 5, 12 };

static int plan(uint64_t seed, uint64_t steps, uint64_t size)
{
	static const char *const ops[] = { "write", "discard", "zero", "backup", "fail",
					   "reload", "reboot", "restore", "verify", NULL };
	static const unsigned int op_w[] = { 54, 6, 7, 19, 5, 2, 2, 3, 2 };
	static const char *const fails[] = { "reject", "after-checkpoint", "during-write",
					     "after-catalog", NULL };
	static const unsigned int fail_w[] = { 1, 1, 1, 1 };
	static const char *const reloads[] = { "plain", "reattach", "unclean", NULL };
	static const unsigned int reload_w[] = { 1, 1, 1 };
	static const char *const zeros[] = { "zeroout", "zero-range", "punch", NULL };
	static const unsigned int zero_w[] = { 1, 1, 1 };
	uint64_t i, off, len;

	if (size < (1 << 20) || size % 4096) {
		fprintf(stderr, "chain-model: SIZE must be a multiple of 4096, at least 1 MiB\n");
		return 2;
	}
	rng = seed;
	for (i = 1; i <= steps; i++) {
		const char *op = i == 1 ? "backup" : pick(ops, op_w);

		printf("%" PRIu64 " %s", i, op);
		if (!strcmp(op, "write")) {
			int direct = below(2);

			some_extent(size, direct ? SECTOR : 1, &off, &len);
			printf(" %" PRIu64 " %" PRIu64 " %s %" PRIu64, off, len,
			       direct ? "direct" : "buffered", next64());
		} else if (!strcmp(op, "discard") || !strcmp(op, "zero")) {
			some_extent(size, SECTOR, &off, &len);
			printf(" %" PRIu64 " %" PRIu64, off, len);
			if (!strcmp(op, "zero"))
				printf(" %s", pick(zeros, zero_w));
		} else if (!strcmp(op, "backup")) {
			printf(" %s", pick(types, type_w));
		} else if (!strcmp(op, "fail")) {
			const char *t = pick(types, type_w);

			printf(" %s %s", t, pick(fails, fail_w));
		} else if (!strcmp(op, "reload")) {
			const char *how = pick(reloads, reload_w);

			off = len = 0;
			if (below(2))
				some_extent(size, SECTOR, &off, &len);
			printf(" %s %" PRIu64 " %" PRIu64 " %" PRIu64, how, off, len, next64());
		} else if (!strcmp(op, "restore")) {
			printf(" %" PRIu64, below(1U << 30));
		}
		printf("\n");
	}
	return 0;
}

/* ---- changes to the device and the reference ---------------------------- */

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd < 0)
		die(path);
	return fd;
}

static void pwrite_all(int fd, const char *buf, size_t len, uint64_t off, const char *what)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n <= 0)
			die(what);
		buf += n;
		len -= n;
		off += n;
	}
}

static void pread_all(int fd, char *buf, size_t len, uint64_t off, const char *what)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0)
			die(what);
		if (n == 0) {
			fprintf(stderr, "chain-model: %s: short read at %" PRIu64 "\n", what, off);
			exit(2);
		}
		buf += n;
		len -= n;
		off += n;
	}
}

static void *buffer(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len ? len : 1))
		die("posix_memalign");
	return p;
}

static int do_write(const char *dev, const char *ref, uint64_t off, uint64_t len,
		    const char *mode, uint64_t seed)
{
	int direct = !strcmp(mode, "direct");
	char *buf = buffer(len + 8);
	int fd, rfd;
	uint64_t i;

	if (!direct && strcmp(mode, "buffered")) {
		fprintf(stderr, "chain-model: mode %s\n", mode);
		return 2;
	}
	rng = seed;
	for (i = 0; i < len; i += 8) {
		uint64_t v = next64();

		memcpy(buf + i, &v, 8);
	}
	fd = open_or_die(dev, O_WRONLY | (direct ? O_DIRECT : 0));
	pwrite_all(fd, buf, len, off, dev);
	if (fsync(fd))
		die(dev);
	close(fd);
	rfd = open_or_die(ref, O_WRONLY);
	pwrite_all(rfd, buf, len, off, ref);
	close(rfd);
	free(buf);
	return 0;
}

/* Zeros into REF at [off, off + len); then DEV must read back zeros there. */
static int zeros_and_check(const char *dev, const char *ref, uint64_t off, uint64_t len,
			   const char *what)
{
	char *z = buffer(IO_CHUNK), *b = buffer(IO_CHUNK);
	uint64_t done;
	int fd, rfd;

	memset(z, 0, IO_CHUNK);
	rfd = open_or_die(ref, O_WRONLY);
	fd = open_or_die(dev, O_RDONLY | O_DIRECT);
	for (done = 0; done < len;) {
		size_t n = len - done < IO_CHUNK ? len - done : IO_CHUNK;
		size_t k;

		pwrite_all(rfd, z, n, off + done, ref);
		pread_all(fd, b, n, off + done, dev);
		for (k = 0; k < n; k++) {
			if (b[k]) {
				fprintf(stderr, "chain-model: %s %s [%" PRIu64 ", +%" PRIu64
					"): byte %" PRIu64 " reads back %#x, not 0\n", what, dev,
					off, len, off + done + k, (unsigned char)b[k]);
				return 1;
			}
		}
		done += n;
	}
	close(fd);
	close(rfd);
	free(z);
	free(b);
	return 0;
}

static int do_discard(const char *dev, const char *ref, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	int fd = open_or_die(dev, O_WRONLY);

	if (ioctl(fd, BLKDISCARD, range))
		die("BLKDISCARD");
	close(fd);
	return zeros_and_check(dev, ref, off, len, "discard");
}

static int do_zero(const char *dev, const char *ref, uint64_t off, uint64_t len,
		   const char *how)
{
	uint64_t range[2] = { off, len };
	int fd = open_or_die(dev, O_WRONLY), err;

	if (!strcmp(how, "zeroout"))
		err = ioctl(fd, BLKZEROOUT, range);
	else if (!strcmp(how, "zero-range"))
		err = fallocate(fd, FALLOC_FL_ZERO_RANGE, off, len);
	else if (!strcmp(how, "punch"))
		err = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	else {
		fprintf(stderr, "chain-model: zero %s\n", how);
		return 2;
	}
	if (err && errno == EOPNOTSUPP) {
		/*
		 * Nothing was written: the device must still equal the
		 * reference. But 6.12 refuses a PUNCH_HOLE (once a loop device
		 * has turned write-zeroes off) after truncating the range from
		 * the page cache, which zeroes the cached partial pages at its
		 * ends: drop them, or buffered I/O would write those zeros back.
		 */
		printf("%s: not supported by %s\n", how, dev);
		if (ioctl(fd, BLKFLSBUF, 0))
			die("BLKFLSBUF");
		close(fd);
		return 0;
	}
	if (err)
		die(how);
	close(fd);
	return zeros_and_check(dev, ref, off, len, how);
}

/* A device is read with O_DIRECT: what is on it, as a backup reads it. */
static int open_read(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		die(path);
	return open_or_die(path, O_RDONLY | (S_ISBLK(st.st_mode) ? O_DIRECT : 0));
}

static int do_cmp(const char *a, const char *b)
{
	char *x = buffer(IO_CHUNK), *y = buffer(IO_CHUNK);
	int fa = open_read(a), fb = open_read(b);
	uint64_t off = 0;

	for (;;) {
		ssize_t n = read(fa, x, IO_CHUNK), m = read(fb, y, IO_CHUNK), k;

		if (n < 0 || m < 0)
			die("read");
		for (k = 0; k < n && k < m; k++) {
			if (x[k] != y[k]) {
				printf("%s and %s differ at byte %" PRIu64 "\n", a, b, off + k);
				return 1;
			}
		}
		if (n != m) {
			printf("%s and %s differ in size at byte %" PRIu64 "\n", a, b,
			       off + (n < m ? n : m));
			return 1;
		}
		if (!n)
			return 0;
		off += n;
	}
}

static uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int do_hash(const char *path)
{
	static const uint64_t k1 = 0x9e3779b185ebca87ULL, k2 = 0xc2b2ae3d27d4eb4fULL;
	uint64_t lane[4] = { 1, 2, 3, 4 }, total = 0, h;
	char *buf = buffer(IO_CHUNK);
	int fd = open_or_die(path, O_RDONLY), i;

	for (;;) {
		ssize_t n = 0, k;

		/* Whole chunks: the padding below must only ever come at the end. */
		while (n < IO_CHUNK) {
			k = read(fd, buf + n, IO_CHUNK - n);
			if (k < 0)
				die(path);
			if (!k)
				break;
			n += k;
		}
		if (!n)
			break;
		total += n;
		/* A short tail is hashed padded with zeros; the length counts. */
		while (n % 32)
			buf[n++] = 0;
		for (k = 0; k < n; k += 32) {
			for (i = 0; i < 4; i++) {
				uint64_t w;

				memcpy(&w, buf + k + 8 * i, 8);
				lane[i] = rotl(lane[i] + w * k2, 31) * k1;
			}
		}
		if (n < IO_CHUNK)
			break;
	}
	h = total;
	for (i = 0; i < 4; i++)
		h = mix(h ^ mix(lane[i]));
	printf("%016" PRIx64 "\n", h);
	close(fd);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "plan") && argc == 5)
		return plan(num(argv[2]), num(argv[3]), num(argv[4]));
	if (!strcmp(cmd, "write") && argc == 8)
		return do_write(argv[2], argv[3], num(argv[4]), num(argv[5]), argv[6],
				num(argv[7]));
	if (!strcmp(cmd, "discard") && argc == 6)
		return do_discard(argv[2], argv[3], num(argv[4]), num(argv[5]));
	if (!strcmp(cmd, "zero") && argc == 7)
		return do_zero(argv[2], argv[3], num(argv[4]), num(argv[5]), argv[6]);
	if (!strcmp(cmd, "cmp") && argc == 4)
		return do_cmp(argv[2], argv[3]);
	if (!strcmp(cmd, "hash") && argc == 3)
		return do_hash(argv[2]);
	fprintf(stderr, "usage: chain-model plan SEED STEPS SIZE | write DEV REF OFF LEN MODE SEED |\n"
		"       discard DEV REF OFF LEN | zero DEV REF OFF LEN HOW | cmp A B | hash FILE\n");
	return 2;
}

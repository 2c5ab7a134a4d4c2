// SPDX-License-Identifier: GPL-2.0
/*
 * seqpair A B CTLDIR: an application with its data on two volumes (a
 * database's data and log): for seq = 1, 2, ... it writes a 4 KiB block
 * holding seq to A (block seq % blocks of A), then one to B, O_DIRECT. Its
 * writer (tests/vm/0961-set.sh) freezes it with SIGUSR1: it finishes the
 * pair, writes the last seq to CTLDIR/frozen and waits for SIGUSR2. SIGTERM
 * ends it after a pair; it prints the last seq.
 *
 * seqpair --scan IMAGE: the highest seq of the image's blocks ("0" for
 * none); exit 1 when a block is torn (not one seq throughout).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define BLOCK	4096
#define WORDS	(BLOCK / 8)

static volatile sig_atomic_t freeze, resume, stop;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		freeze = 1;
	else if (sig == SIGUSR2)
		resume = 1;
	else
		stop = 1;
}

static int scan(const char *path)
{
	uint64_t buf[WORDS], max = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY), i, torn = 0;

	if (fd < 0) {
		perror(path);
		return 2;
	}
	while ((n = read(fd, buf, BLOCK)) == BLOCK) {
		for (i = 1; i < WORDS && buf[i] == buf[0]; i++)
			;
		if (i < WORDS)
			torn++;
		else if (buf[0] > max)
			max = buf[0];
	}
	close(fd);
	printf("%" PRIu64 "\n", max);
	if (torn)
		fprintf(stderr, "seqpair: %s: %d torn blocks\n", path, torn);
	return torn ? 1 : 0;
}

static int put(int fd, uint64_t blocks, uint64_t seq, uint64_t *buf)
{
	int i;

	for (i = 0; i < WORDS; i++)
		buf[i] = seq;
	return pwrite(fd, buf, BLOCK, (off_t)(seq % blocks) * BLOCK) == BLOCK ? 0 : -1;
}

/* Tell the writer we hold still at @seq, then wait for SIGUSR2. */
static int hold(const char *ctl, uint64_t seq, const sigset_t *wait_mask)
{
	char path[4096], tmp[4096];
	FILE *f;

	resume = 0;
	snprintf(path, sizeof(path), "%s/frozen", ctl);
	snprintf(tmp, sizeof(tmp), "%s/frozen.tmp", ctl);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%" PRIu64 "\n", seq) < 0 || fclose(f) || rename(tmp, path))
		return -1;
	while (!resume && !stop)
		sigsuspend(wait_mask);
	freeze = 0;
	unlink(path);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, wait_mask;
	uint64_t *buf, seq = 0, na, nb;
	struct stat st;
	int a, b;

	if (argc == 3 && !strcmp(argv[1], "--scan"))
		return scan(argv[2]);
	if (argc != 4) {
		fprintf(stderr, "usage: seqpair A B CTLDIR | seqpair --scan IMAGE\n");
		return 2;
	}
	a = open(argv[1], O_WRONLY | O_DIRECT);
	b = open(argv[2], O_WRONLY | O_DIRECT);
	if (a < 0 || b < 0 || posix_memalign((void **)&buf, BLOCK, BLOCK)) {
		perror("seqpair");
		return 1;
	}
	na = lseek(a, 0, SEEK_END) / BLOCK;
	nb = lseek(b, 0, SEEK_END) / BLOCK;
	if (!na || !nb || fstat(a, &st)) {
		fprintf(stderr, "seqpair: empty devices\n");
		return 1;
	}
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Signals arrive between pairs only: a pair is never half written when we hold. */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	while (!stop) {
		seq++;
		if (put(a, na, seq, buf) || put(b, nb, seq, buf)) {
			perror("seqpair: pwrite");
			return 1;
		}
		sigprocmask(SIG_SETMASK, &wait_mask, NULL);	/* deliver what waits */
		sigprocmask(SIG_BLOCK, &block, NULL);
		if (freeze && hold(argv[3], seq, &wait_mask)) {
			perror("seqpair: frozen");
			return 1;
		}
	}
	printf("%" PRIu64 "\n", seq);
	return 0;
}

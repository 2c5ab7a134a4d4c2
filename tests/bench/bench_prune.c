// SPDX-License-Identifier: GPL-2.0
/*
 * The cost of a merge (issue 15, point 5; doc/BENCHMARKS.md, "Retention"):
 * a volume file of -m MiB over the fake kernel (tests/unit/fake_kernel.c),
 * a full backup, then -n incrementals each after -p percent of the blocks
 * rewritten at random; then `prune --keep-last 2`: the full and the
 * incrementals up to the older kept one folded into a synthetic full.
 * Prints the bytes the merge read and wrote against the bytes of the files
 * it replaced, the time, and a bit-exact restore check of the merged point.
 *
 *	build/bench-prune [-m MiB] [-n incrementals] [-p percent] [-k]
 *
 * -k: stop before the prune and leave the repository (its path is printed),
 * to try blktrack prune and delete on it by hand.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "fake_kernel.h"
#include "libblktrack.h"

#define BS	4096U

static void die(const char *what, struct blktrack_ctx *ctx)
{
	fprintf(stderr, "bench-prune: %s: %s\n", what, ctx ? blktrack_get_error(ctx) : "");
	exit(1);
}

int main(int argc, char *argv[])
{
	unsigned int mib = 256, n = 8, pct = 2, i;
	char top[] = "/tmp/bt-bench-prune.XXXXXX", vol[96], repo[96], wdir[96], locks[96],
	     target[96], cmd[160];
	struct blktrack_backup_result bres;
	struct blktrack_prune_result pres;
	struct blktrack_restore_result rres;
	struct blktrack_ctx *ctx;
	struct fake_kernel *fk;
	uint8_t *model, *got;
	uint64_t nb, b, k, mid_id = 0;
	dev_t dev;
	bool keep = false;
	int c, fd;

	while ((c = getopt(argc, argv, "m:n:p:k")) != -1) {
		if (c == 'k')
			keep = true;
		else if (c == 'm')
			mib = atoi(optarg);
		else if (c == 'n')
			n = atoi(optarg);
		else if (c == 'p')
			pct = atoi(optarg);
		else
			return 2;
	}
	nb = (uint64_t)mib << 20 >> 12;
	if (!mkdtemp(top))
		die("mkdtemp", NULL);
	snprintf(vol, sizeof(vol), "%s/vol.img", top);
	snprintf(repo, sizeof(repo), "%s/repo", top);
	snprintf(wdir, sizeof(wdir), "%s/writers", top);
	snprintf(locks, sizeof(locks), "%s/locks", top);
	snprintf(target, sizeof(target), "%s/restored.img", top);
	mkdir(wdir, 0700);
	model = malloc(nb * BS);
	got = malloc(nb * BS);
	srandom(1);
	for (k = 0; k < nb * BS / sizeof(long); k++)
		((long *)model)[k] = random();
	fd = open(vol, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || pwrite(fd, model, nb * BS, 0) != (ssize_t)(nb * BS))
		die("volume", NULL);
	close(fd);
	ctx = blktrack_new();
	if (blktrack_repo_init(ctx, repo))
		die("init", ctx);
	blktrack_unref(ctx);
	fk = fake_kernel_new(0);
	if (!fk || fake_kernel_add_volume(fk, vol, &dev))
		die("fake kernel", NULL);
	ctx = fake_kernel_context(fk);
	if (blktrack_attach(ctx, dev, 0, 0))
		die("attach", ctx);
	for (i = 0; i <= n; i++) {
		struct blktrack_backup_opts o = {
			.device = vol, .repo = repo, .writers_dir = wdir, .lock_dir = locks,
			.type = i ? BLKTRACK_BACKUP_INCREMENTAL : BLKTRACK_BACKUP_FULL,
		};

		for (k = 0; i && k < nb * pct / 100; k++) {
			b = random() % nb;
			memset(model + b * BS, (int)(random() & 0xff) | 1, BS);
			if (fake_kernel_write(fk, dev, b * BS, BS, model + b * BS))
				die("write", NULL);
		}
		if (blktrack_backup(ctx, &o, &bres))
			die("backup", ctx);
		if (i == n - 1)
			mid_id = bres.id;
	}
	if (keep) {
		printf("%s\n", repo);
		return 0;
	}
	/* The volume at the older kept point: a copy made before the last writes. */
	{
		struct blktrack_restore_opts ro = { .repo = repo, .target = target,
						    .backup_id = mid_id, .force = true };

		if (blktrack_restore(ctx, &ro, &rres))
			die("restore before", ctx);
		fd = open(target, O_RDONLY);
		if (fd < 0 || pread(fd, model, nb * BS, 0) != (ssize_t)(nb * BS))
			die("read restored", NULL);
		close(fd);
		unlink(target);
	}
	{
		struct blktrack_prune_opts po = { .repo = repo, .keep_last = 2 };
		struct blktrack_restore_opts ro = { .repo = repo, .target = target,
						    .backup_id = mid_id, .force = true };

		if (blktrack_repo_prune(ctx, &po, &pres))
			die("prune", ctx);
		if (blktrack_restore(ctx, &ro, &rres))
			die("restore after", ctx);
		fd = open(target, O_RDONLY);
		if (fd < 0 || pread(fd, got, nb * BS, 0) != (ssize_t)(nb * BS))
			die("read restored", NULL);
		close(fd);
	}
	printf("volume %u MiB, full + %u incrementals of %u%% random 4 KiB blocks\n", mib, n, pct);
	printf("merge: %u member(s) folded into a full at backup %llu\n", pres.merged ?
	       (unsigned int)pres.items[pres.n - 2].nfolded + 1 : 0,
	       (unsigned long long)mid_id);
	printf("BENCH merge_read_bytes %llu\n", (unsigned long long)pres.read_bytes);
	printf("BENCH merge_written_bytes %llu\n", (unsigned long long)pres.written_bytes);
	printf("BENCH merge_replaced_bytes %llu\n", (unsigned long long)pres.replaced_bytes);
	printf("BENCH merge_read_over_replaced %.3f\n",
	       (double)pres.read_bytes / pres.replaced_bytes);
	printf("BENCH merge_written_over_replaced %.3f\n",
	       (double)pres.written_bytes / pres.replaced_bytes);
	printf("BENCH merge_seconds %.3f\n", pres.seconds);
	printf("BENCH merge_mib_per_s_read %.1f\n", pres.read_bytes / 1048576.0 / pres.seconds);
	printf("restore of the merged point: %s\n",
	       memcmp(got, model, nb * BS) ? "DIFFERS" : "bit-exact");
	blktrack_prune_result_free(&pres);
	blktrack_unref(ctx);
	fake_kernel_free(fk);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack checkpoint DEV...
 *
 * One CHECKPOINT ioctl for all the volumes: they are cut at one instant.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blktrack.h"

/* The kernel refuses the whole set: name the volume(s) to blame. */
static int explain(struct blktrack_ctx *ctx, char *paths[], const dev_t *devs,
		   size_t n, int err)
{
	struct blktrack_status st;
	size_t i, j;
	bool named = false;

	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (devs[j] == devs[i]) {
				cli_err(paths[i], "listed twice (same device as %s)", paths[j]);
				return EXIT_ERROR;
			}
	}
	for (i = 0; i < n; i++) {
		int e = blktrack_status(ctx, devs[i], &st);

		if (e == -ENOENT && err == -ENOENT) {
			cli_err(paths[i], "not attached");
			named = true;
		} else if (!e && err == -EBUSY && (st.flags & BLKTRACK_STATUS_PENDING)) {
			cli_err(paths[i], "a checkpoint is already pending "
				"(commit or abort it first)");
			named = true;
		}
	}
	if (named)
		return EXIT_ERROR;
	return cli_fail(ctx, n == 1 ? paths[0] : NULL, err);
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	char gen[BLKTRACK_UUID_STR_LEN];
	struct blktrack_ckpt *out;
	dev_t *devs;
	size_t n, i;
	int c, err, ret = EXIT_ERROR;

	while ((c = cli_getopt(&cmd_checkpoint, argc, argv, NULL, NULL)) != -1)
		return EXIT_USAGE;
	if (optind == argc)
		return cli_usage(&cmd_checkpoint);
	n = argc - optind;
	if (n > BLKTRACK_CHECKPOINT_MAX) {
		cli_err(NULL, "at most %u volumes per checkpoint", BLKTRACK_CHECKPOINT_MAX);
		return EXIT_USAGE;
	}
	devs = calloc(n, sizeof(*devs));
	out = calloc(n, sizeof(*out));
	if (!devs || !out) {
		cli_err(NULL, "%s", strerror(ENOMEM));
		goto out;
	}
	for (i = 0; i < n; i++)
		if (cli_dev(argv[optind + i], &devs[i]))
			goto out;
	if (cli_open(ctx))
		goto out;

	err = blktrack_checkpoint(ctx, devs, n, out);
	if (err < 0) {
		ret = explain(ctx, argv + optind, devs, n, err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		blktrack_uuid_unparse(out[i].stamp.generation, gen);
		printf("%s %s %" PRIu64 " %" PRIu64 "\n", argv[optind + i], gen,
		       (uint64_t)out[i].stamp.epoch, out[i].dirty);
	}
	ret = EXIT_OK;
out:
	free(devs);
	free(out);
	return ret;
}

const struct cmd cmd_checkpoint = {
	.name = "checkpoint",
	.args = "DEV...",
	.help = "Cut a backup point on every DEV at one instant: each active map becomes\n"
		"the pending map and a fresh one records what follows. Prints one line\n"
		"per volume: DEV GENERATION EPOCH DIRTY-BLOCKS. Then read the changes\n"
		"with 'changes', and end with 'commit' (backup stored) or 'abort'.",
	.run = run,
};

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack detach DEV [--save [--state-dir DIR]]
 */
#include <stdlib.h>

#include "blktrack.h"

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "save", no_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ 0 }
	};
	struct blktrack_save_result sr;
	const char *path, *dir = NULL;
	bool save = false;
	dev_t dev;
	int c, err;

	while ((c = cli_getopt(&cmd_detach, argc, argv, "sd:", opts)) != -1) {
		switch (c) {
		case 's':
			save = true;
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_detach);
	path = argv[optind];
	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	if (save) {
		/* Not detached when the save fails: the map stays in the kernel. */
		err = blktrack_save_state(ctx, path, dir, &sr);
		if (err < 0)
			return cli_fail(ctx, path, err);
		if (!sr.clean)
			printf("%s: saved %s NOT clean (%s)\n", path, sr.path,
			       cli_unclean_why(ctx, path));
	}
	err = blktrack_detach(ctx, dev);
	if (err < 0)
		return cli_fail(ctx, path, err);
	return EXIT_OK;
}

const struct cmd cmd_detach = {
	.name = "detach",
	.args = "DEV [--save [--state-dir DIR]]",
	.help = "Stop tracking DEV. Its maps, and a pending checkpoint, are dropped.\n"
		"  -s, --save            save the state first (blktrack save), for the next\n"
		"                        attach --restore-state\n"
		"  -d, --state-dir DIR   default " BLKTRACK_STATE_DIR_DEFAULT,
	.run = run,
};

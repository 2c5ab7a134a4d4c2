// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack - control the blktrack changed-block tracker.
 *
 * One file per command (cmd_*.c); this file dispatches and holds the
 * helpers they share.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blktrack.h"

const char *progname = "blktrack";

static const struct cmd *const commands[] = {
	&cmd_attach,
	&cmd_detach,
	&cmd_status,
	&cmd_checkpoint,
	&cmd_changes,
	&cmd_commit,
	&cmd_abort,
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

void cli_err(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (what)
		fprintf(stderr, "%s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage(const struct cmd *cmd)
{
	fprintf(stderr, "usage: %s %s %s\n", progname, cmd->name, cmd->args);
	fprintf(stderr, "Try '%s %s --help'.\n", progname, cmd->name);
	return EXIT_USAGE;
}

int cli_help(const struct cmd *cmd)
{
	printf("usage: %s %s %s\n\n%s\n", progname, cmd->name, cmd->args, cmd->help);
	return EXIT_OK;
}

int cli_open(struct blktrack_ctx *ctx)
{
	int err;

	err = blktrack_open(ctx);
	if (err < 0) {
		cli_err(NULL, "%s", blktrack_get_error(ctx));
		return EXIT_ERROR;
	}
	return 0;
}

int cli_dev(const char *path, dev_t *dev)
{
	int err;

	err = blktrack_dev_from_path(path, dev);
	if (err == -ENOTBLK) {
		cli_err(path, "not a block device");
		return EXIT_ERROR;
	}
	if (err < 0) {
		cli_err(path, "%s", strerror(-err));
		return EXIT_ERROR;
	}
	return 0;
}

int cli_fail(struct blktrack_ctx *ctx, const char *what, int err)
{
	const char *msg = blktrack_get_error(ctx);

	cli_err(what, "%s", msg && *msg ? msg : strerror(-err));
	return EXIT_ERROR;
}

int cli_run_on_dev(const struct cmd *cmd, struct blktrack_ctx *ctx, int argc,
		   char *argv[], int (*op)(struct blktrack_ctx *ctx, dev_t dev))
{
	const char *path;
	dev_t dev;
	int err;

	if (cli_getopt(cmd, argc, argv, NULL, NULL) != -1)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cli_usage(cmd);
	path = argv[optind];

	if (cli_dev(path, &dev) || cli_open(ctx))
		return EXIT_ERROR;
	err = op(ctx, dev);
	if (err < 0)
		return cli_fail(ctx, path, err);
	return EXIT_OK;
}

int cli_getopt(const struct cmd *cmd, int argc, char *argv[],
	       const char *shortopts, const struct option *opts)
{
	static struct option all[16];
	static const struct option help = { "help", no_argument, NULL, 'h' };
	char sopts[32];
	int n = 0, c;

	while (opts && opts[n].name && n < 14) {
		all[n] = opts[n];
		n++;
	}
	all[n++] = help;
	memset(&all[n], 0, sizeof(all[n]));
	/*
	 * GNU getopt permutes: options may follow the device, as in
	 * "attach DEV --block-size 4K"; the operands end up at argv[optind].
	 */
	snprintf(sopts, sizeof(sopts), "h%s", shortopts ? shortopts : "");

	c = getopt_long(argc, argv, sopts, all, NULL);
	if (c == 'h') {
		cli_help(cmd);
		exit(EXIT_OK);
	}
	if (c == '?' || c == ':') {
		cli_usage(cmd);
		return '?';
	}
	return c;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s COMMAND [ARGS]\n\nCommands:\n", progname);
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-11s %s\n", commands[i]->name, commands[i]->args);
	fprintf(f, "\n'%s COMMAND --help' describes a command. "
		"Exit status: 0 ok, 1 error, 2 usage.\n", progname);
}

int main(int argc, char *argv[])
{
	struct blktrack_ctx *ctx;
	size_t i;
	int ret;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[1], commands[i]->name))
			break;
	if (i == N_COMMANDS) {
		cli_err(NULL, "unknown command '%s'", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}

	ctx = blktrack_new();
	if (!ctx) {
		cli_err(NULL, "%s", strerror(ENOMEM));
		return EXIT_ERROR;
	}
	optind = 0;
	ret = commands[i]->run(ctx, argc - 1, argv + 1);
	blktrack_unref(ctx);
	if (fflush(stdout) || ferror(stdout)) {
		cli_err(NULL, "write error on standard output");
		return EXIT_ERROR;
	}
	return ret;
}

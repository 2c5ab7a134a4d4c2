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
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

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
	&cmd_save,
	&cmd_init,
	&cmd_backup,
	&cmd_restore,
	&cmd_verify,
	&cmd_check,
	&cmd_list,
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

int cli_failure_code(enum blktrack_failure f)
{
	switch (f) {
	case BLKTRACK_FAIL_NONE:
		return EXIT_OK;
	case BLKTRACK_FAIL_CHAIN:
		return EXIT_CHAIN;
	case BLKTRACK_FAIL_CORRUPT:
		return EXIT_CORRUPT;
	case BLKTRACK_FAIL_MISMATCH:
		return EXIT_MISMATCH;
	case BLKTRACK_FAIL_INVALID:
		return EXIT_INVALID;
	case BLKTRACK_FAIL_FUZZY:
		return EXIT_FUZZY;
	case BLKTRACK_FAIL_WRITER:
		return EXIT_WRITER;
	default:
		return EXIT_ERROR;
	}
}

int cli_print_json(FILE *f, struct json_object *o, bool built, const char *what)
{
	if (built)
		blktrack_json_print(f, o, false);
	else
		cli_err(what, "%s", strerror(ENOMEM));
	json_object_put(o);
	return built ? EXIT_OK : EXIT_ERROR;
}

const char *cli_unclean_why(struct blktrack_ctx *ctx, const char *path)
{
	struct blktrack_status st;
	dev_t dev;

	if (!blktrack_dev_from_path(path, &dev) && !blktrack_status(ctx, dev, &st) &&
	    st.state != BLKTRACK_STATE_TRACKING)
		return "tracking invalid: the map is incomplete";
	return "mounted read-write: writes may follow";
}

void cli_human(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = bytes;
	unsigned int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.1f %s", v, units[u]);
	else
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool progress_shown;

void cli_progress(void *data, const char *what, uint64_t done, uint64_t total)
{
	static double start, last;
	static int tty = -1;
	char d[32], t[32];
	double el, rate;

	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty)
		return;
	if (!start)
		start = mono();
	el = mono() - start;
	if (el - last < 0.1 && done < total)
		return;
	last = el;
	rate = el > 0 ? done / el : 0;
	cli_human(done, d, sizeof(d));
	cli_human(total, t, sizeof(t));
	fprintf(stderr, "\r%s: %s of %s, %.1f MiB/s", what, d, t, rate / (1 << 20));
	if (rate > 0 && total > done)
		fprintf(stderr, ", %.0f s left   ", (total - done) / rate);
	else
		fprintf(stderr, "               ");
	progress_shown = true;
}

void cli_progress_end(void)
{
	if (progress_shown)
		fprintf(stderr, "\r\033[K");
	progress_shown = false;
}

int cli_getopt(const struct cmd *cmd, int argc, char *argv[],
	       const char *shortopts, const struct option *opts)
{
	static struct option all[32];
	static const struct option help = { "help", no_argument, NULL, 'h' };
	char sopts[32];
	int n = 0, c;

	while (opts && opts[n].name) {
		/* A command's options past the array would vanish: fail loudly. */
		if (n == (int)(sizeof(all) / sizeof(all[0])) - 2) {
			cli_err(NULL, "%s: too many options for cli_getopt()", cmd->name);
			exit(EXIT_FAILURE);
		}
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
		"Exit status: 0 ok, 1 error, 2 usage, 3 broken chain,\n"
		"4 corrupt backup, 5 verify mismatch, 6 tracking invalid (see blktrack(8)).\n", progname);
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

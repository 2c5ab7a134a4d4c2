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
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "blktrack.h"

const char *progname = "blktrack";
int cli_verbosity;
static struct blktrack_ctx *cli_ctx;

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
	&cmd_copy,
	&cmd_list,
	&cmd_prune,
	&cmd_delete,
	&cmd_config,
	&cmd_export,
	&cmd_mount,
	&cmd_umount,
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

void cli_warn(const char *what, const char *fmt, ...)
{
	va_list ap;

	if (cli_verbosity < 0)
		return;
	fprintf(stderr, "%s: warning: ", progname);
	if (what)
		fprintf(stderr, "%s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * The library's messages: its notices (a fuzzy read, a fall-back, an
 * ignored writer failure) at warning, a filesystem left frozen at crit.
 * The context's priority decides what arrives (-q: errors, -v: debug).
 */
static void cli_log(void *data, int priority, const char *file, int line,
		    const char *fn, const char *format, va_list args)
{
	char buf[8192];
	size_t n;

	vsnprintf(buf, sizeof(buf), format, args);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (priority <= LOG_CRIT)
		fprintf(stderr, "%s: CRITICAL: %s\n", progname, buf);
	else if (priority <= LOG_ERR)
		fprintf(stderr, "%s: error: %s\n", progname, buf);
	else if (priority <= LOG_WARNING)
		fprintf(stderr, "%s: warning: %s\n", progname, buf);
	else if (priority >= LOG_DEBUG)
		fprintf(stderr, "libblktrack: %s: %s\n", fn, buf);	/* as LIBBLKTRACK_DEBUG */
	else
		fprintf(stderr, "%s: %s\n", progname, buf);
}

static void set_verbosity(int v)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_DEBUG };

	cli_verbosity = v;
	if (cli_ctx)
		blktrack_set_log_priority(cli_ctx, prio[v + 1]);
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
	printf("Every command: -q, --quiet (errors only), -v, --verbose (debug lines too).\n");
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
	if (!tty || cli_verbosity < 0)
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
	static const struct option common[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
	};
	char sopts[32];
	int n = 0, c;
	size_t i;

	while (opts && opts[n].name) {
		/* A command's options past the array would vanish: fail loudly. */
		if (n == (int)(sizeof(all) / sizeof(all[0])) - 4) {
			cli_err(NULL, "%s: too many options for cli_getopt()", cmd->name);
			exit(EXIT_FAILURE);
		}
		all[n] = opts[n];
		n++;
	}
	for (i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		all[n++] = common[i];
	memset(&all[n], 0, sizeof(all[n]));
	/*
	 * GNU getopt permutes: options may follow the device, as in
	 * "attach DEV --block-size 4K"; the operands end up at argv[optind].
	 */
	snprintf(sopts, sizeof(sopts), "hqv%s", shortopts ? shortopts : "");

	/* -q, -v: every command's, handled here. */
	while ((c = getopt_long(argc, argv, sopts, all, NULL)) == 'q' || c == 'v')
		set_verbosity(c == 'q' ? -1 : 1);
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
		"4 corrupt backup, 5 verify mismatch, 6 tracking invalid (see blktrack(8)).\n"
		"Every command takes -q, --quiet (errors only) and -v, --verbose (debug);\n"
		"'%s --version' (-V) prints the version and the module ABI it speaks.\n",
		progname, progname);
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
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("%s %s (ABI %u)\n", progname, BLKTRACK_VERSION, BLKTRACK_ABI_VERSION);
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
	/* LIBBLKTRACK_DEBUG set in the environment stays; else warnings. */
	cli_ctx = ctx;
	blktrack_set_log_fn(ctx, cli_log, NULL);
	if (blktrack_get_log_priority(ctx) < LOG_DEBUG)
		set_verbosity(0);
	optind = 0;
	ret = commands[i]->run(ctx, argc - 1, argv + 1);
	blktrack_unref(ctx);
	if (fflush(stdout) || ferror(stdout)) {
		cli_err(NULL, "write error on standard output");
		return EXIT_ERROR;
	}
	return ret;
}

/* --writer-timeout SECONDS: 1 to 86400. */
int cli_parse_seconds(const char *s, unsigned int *secs)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || !v || v > 86400 || *s == '-') {
		cli_err(NULL, "--writer-timeout: seconds, 1 to 86400, not '%s'", s);
		return -EINVAL;
	}
	*secs = (unsigned int)v;
	return 0;
}

void cli_warn_excluded(const char *what, uint64_t bytes)
{
	if (bytes)	/* never reported as the point's */
		cli_warn(what, "%" PRIu64 " bytes the writers excluded from the backup are not "
			 "the point's (they hold older contents or zeros)", bytes);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blktrack CLI: the command table and helpers every command shares.
 */
#ifndef BLKTRACK_CLI_H
#define BLKTRACK_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <sys/types.h>
#include "libblktrack.h"

/* Exit codes (doc/blktrack.8). */
#define EXIT_OK		0
#define EXIT_ERROR	1
#define EXIT_USAGE	2

struct cmd {
	const char *name;
	const char *args;	/* synopsis after the name */
	const char *help;	/* one line */
	int (*run)(struct blktrack_ctx *ctx, int argc, char *argv[]);
};

extern const struct cmd cmd_attach;
extern const struct cmd cmd_detach;
extern const struct cmd cmd_status;
extern const struct cmd cmd_checkpoint;
extern const struct cmd cmd_changes;
extern const struct cmd cmd_commit;
extern const struct cmd cmd_abort;

extern const char *progname;

/* "blktrack: [WHAT: ]message\n" on stderr. */
void cli_err(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print "usage: blktrack CMD ARGS" to stderr, return EXIT_USAGE. */
int cli_usage(const struct cmd *cmd);
/* Print the command's help to stdout, return EXIT_OK. */
int cli_help(const struct cmd *cmd);
/* Open the control device; on failure print why. 0 or EXIT_ERROR. */
int cli_open(struct blktrack_ctx *ctx);
/* Resolve a DEV argument to a device number; on failure print why. */
int cli_dev(const char *path, dev_t *dev);
/* Print the library's message for the last failure of a call on @what. */
int cli_fail(struct blktrack_ctx *ctx, const char *what, int err);

/*
 * getopt_long() for a command: the common --help, plus @opts. Returns the
 * option character, -1 at the end, or '?' after printing the usage.
 */
int cli_getopt(const struct cmd *cmd, int argc, char *argv[],
	       const char *shortopts, const struct option *opts);

/*
 * The whole of a command that takes one DEV and no option: parse, open the
 * control device, run @op on DEV, report its failure. Returns the exit code.
 */
int cli_run_on_dev(const struct cmd *cmd, struct blktrack_ctx *ctx, int argc,
		   char *argv[], int (*op)(struct blktrack_ctx *ctx, dev_t dev));

#endif /* BLKTRACK_CLI_H */

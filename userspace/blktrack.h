/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blktrack CLI: the command table and helpers every command shares.
 */
#ifndef BLKTRACK_CLI_H
#define BLKTRACK_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include "libblktrack.h"
#include "config.h"

/* Exit codes (doc/blktrack.8). */
#define EXIT_OK		0
#define EXIT_ERROR	1
#define EXIT_USAGE	2
#define EXIT_CHAIN	3	/* a backup chain is broken */
#define EXIT_CORRUPT	4	/* a backup file is corrupt, truncated or foreign */
#define EXIT_MISMATCH	5	/* verify --against: the device differs */
#define EXIT_INVALID	6	/* tracking invalid and --on-invalid=fail */
#define EXIT_FUZZY	7	/* backup --strict: blocks rewritten during the read */
#define EXIT_WRITER	8	/* backup: a writer vetoed or rejected it */
#define EXIT_REFUSED	9	/* delete: the next backup is made from it */

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
extern const struct cmd cmd_init;
extern const struct cmd cmd_check;
extern const struct cmd cmd_copy;
extern const struct cmd cmd_backup;
extern const struct cmd cmd_restore;
extern const struct cmd cmd_verify;
extern const struct cmd cmd_list;
extern const struct cmd cmd_save;
extern const struct cmd cmd_prune;
extern const struct cmd cmd_delete;
extern const struct cmd cmd_config;
extern const struct cmd cmd_export;
extern const struct cmd cmd_mount;
extern const struct cmd cmd_umount;

extern const char *progname;

/* "blktrack: [WHAT: ]message\n" on stderr. */
void cli_err(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* -1 with -q (errors only), 0 by default (warnings too), 1 with -v (debug). */
extern int cli_verbosity;
/* "blktrack: warning: [WHAT: ]message\n" on stderr, unless -q. */
void cli_warn(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A point some of whose bytes the writers excluded (doc/WRITERS.md, "Ranges"): say so. */
void cli_warn_excluded(const char *what, uint64_t bytes);
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
 * getopt_long() for a command: the common --help, -q/--quiet and
 * -v/--verbose (handled inside: they set cli_verbosity and the library's
 * log priority), plus @opts. Returns the
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

/* The exit code of a requester failure (EXIT_CHAIN...). */
int cli_failure_code(enum blktrack_failure f);
/* "1.5 MiB" */
void cli_human(uint64_t bytes, char *buf, size_t len);
/* Why a save of DEV was not clean: tracking invalid, or mounted read-write. */
const char *cli_unclean_why(struct blktrack_ctx *ctx, const char *path);
/*
 * A blktrack_progress_fn: one "\r" line on stderr (bytes, rate, time left),
 * at most 10 a second, only when stderr is a terminal. cli_progress_end()
 * clears the line.
 */
void cli_progress(void *data, const char *what, uint64_t done, uint64_t total);
void cli_progress_end(void);
/* --backup ID: a positive number; prints why not. 0 or -EINVAL. */
int cli_parse_id(const char *s, uint64_t *id);
int cli_parse_seconds(const char *s, unsigned int *secs);
/* The JSON summary of restore and verify (@what: "restore" or "verify"). */
int cli_restore_json(const char *what, const struct blktrack_restore_opts *o,
		     const struct blktrack_restore_result *r);
/* blktrack prune or delete (@cmd): parse, run, print the plan; the exit code. */
int cli_prune_main(const struct cmd *cmd, struct blktrack_ctx *ctx, int argc, char *argv[]);
/* The table of `list` from blktrack_repo_json(). */
struct json_object;
void cli_print_backups(struct json_object *top);
/*
 * Print the JSON object @o to @f and drop it; @built false (building it
 * ran out of memory) prints that instead. Returns the exit code.
 */
int cli_print_json(FILE *f, struct json_object *o, bool built, const char *what);

/* blktrack.conf: @path, else $BLKTRACK_CONFIG, else the default; prints why not. */
int cli_config_load(const char *path, struct config *cfg);
/* Volume @name of @cfg and its device path now; prints why not. */
int cli_config_volume(const struct config *cfg, const char *name,
		      const struct config_volume **v, char *dev, size_t len);
/*
 * The type of @v's next scheduled backup of @dev: its type, a full when
 * the newest full in its repository is older than full-every, "auto" for
 * the first. 0, or the exit code after printing why.
 */
int cli_config_backup_type(struct blktrack_ctx *ctx, const struct config_volume *v,
			   const char *dev, enum blktrack_backup_type *type);

#endif /* BLKTRACK_CLI_H */

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack - control library for the blktrack changed-block tracker.
 *
 * Typical use:
 *
 *	ctx = blktrack_new();
 *	err = blktrack_open(ctx);                  loads the module if needed
 *	if (err < 0)
 *		fprintf(stderr, "%s\n", blktrack_get_error(ctx));
 *	blktrack_dev_from_path("/dev/vdb1", &dev);
 *	blktrack_attach(ctx, dev, 0, 0);
 *	... writes happen ...
 *	blktrack_checkpoint(ctx, &dev, 1, &vol);   vol.stamp names the pending map
 *	blktrack_extent_iter_new(ctx, dev, 0, &vol.stamp, &it);
 *	while (!(err = blktrack_extent_iter_next(it, &ext)) && ext.length)
 *		copy [ext.offset, ext.offset + ext.length)
 *	blktrack_extent_iter_free(it);
 *	blktrack_commit(ctx, dev, &vol.stamp);     or blktrack_abort()
 *	blktrack_unref(ctx);
 *
 * Every function that can fail returns 0 or a negative errno; the kernel's
 * errnos (see doc/ABI.md) are passed through unchanged. Nothing is printed
 * unless the environment sets LIBBLKTRACK_DEBUG=1 or a log function is set.
 */
#ifndef LIBBLKTRACK_H
#define LIBBLKTRACK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/blktrack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BLKTRACK_EXPORT __attribute__((visibility("default")))

struct blktrack_ctx;
struct json_object;

/* ---- context ------------------------------------------------------------ */

BLKTRACK_EXPORT struct blktrack_ctx *blktrack_new(void);
BLKTRACK_EXPORT struct blktrack_ctx *blktrack_ref(struct blktrack_ctx *ctx);
BLKTRACK_EXPORT struct blktrack_ctx *blktrack_unref(struct blktrack_ctx *ctx);

/*
 * Log messages go to @fn (default: stderr) when their syslog priority is
 * at most the context's (default LOG_ERR - 1, i.e. silent; LOG_DEBUG when
 * LIBBLKTRACK_DEBUG=1). The library never logs at LOG_ERR: errors are
 * returned, with a text in blktrack_get_error().
 */
typedef void (*blktrack_log_fn)(void *data, int priority, const char *file,
				int line, const char *fn, const char *format,
				va_list args);
BLKTRACK_EXPORT void blktrack_set_log_fn(struct blktrack_ctx *ctx,
					 blktrack_log_fn fn, void *data);
BLKTRACK_EXPORT int blktrack_get_log_priority(const struct blktrack_ctx *ctx);
BLKTRACK_EXPORT void blktrack_set_log_priority(struct blktrack_ctx *ctx,
					       int priority);

/*
 * Open /dev/blktrack-ctl. When it is missing, load the module: from the
 * .ko file named by the environment variable BLKTRACK_MODULE if set, else
 * module "blktrack" of the running kernel through libkmod. Then check the
 * module's ABI version: -EPROTO when it is not BLKTRACK_ABI_VERSION.
 * Opening an open context does nothing. On failure, blktrack_get_error()
 * says what went wrong in a sentence.
 */
BLKTRACK_EXPORT int blktrack_open(struct blktrack_ctx *ctx);
BLKTRACK_EXPORT int blktrack_get_fd(const struct blktrack_ctx *ctx);

/* The message of the last failure, or the strerror() text of @err. */
BLKTRACK_EXPORT const char *blktrack_get_error(const struct blktrack_ctx *ctx);

/* ---- the ioctls ------------------------------------------------------- */

BLKTRACK_EXPORT int blktrack_version(struct blktrack_ctx *ctx,
				     uint32_t *abi_version, uint64_t *features);
/* @block_size 0: default (4 KiB); @mem_limit 0: the module parameter. */
BLKTRACK_EXPORT int blktrack_attach(struct blktrack_ctx *ctx, dev_t dev,
				    uint32_t block_size, uint64_t mem_limit);
BLKTRACK_EXPORT int blktrack_detach(struct blktrack_ctx *ctx, dev_t dev);
/* *@devs is malloc()ed (NULL when @count is 0); free() it. */
BLKTRACK_EXPORT int blktrack_list(struct blktrack_ctx *ctx, dev_t **devs,
				  size_t *count);
BLKTRACK_EXPORT int blktrack_status(struct blktrack_ctx *ctx, dev_t dev,
				    struct blktrack_status *st);

/* One volume of a checkpoint: what the kernel returned for it. */
struct blktrack_ckpt {
	dev_t dev;
	struct blktrack_stamp stamp;	/* the pending map's starting point */
	uint64_t dirty;			/* blocks in the pending map */
};

/* Checkpoint @n (1..BLKTRACK_CHECKPOINT_MAX) volumes at one instant. */
BLKTRACK_EXPORT int blktrack_checkpoint(struct blktrack_ctx *ctx,
					const dev_t *devs, size_t n,
					struct blktrack_ckpt *out);
BLKTRACK_EXPORT int blktrack_commit(struct blktrack_ctx *ctx, dev_t dev,
				    const struct blktrack_stamp *stamp);
BLKTRACK_EXPORT int blktrack_abort(struct blktrack_ctx *ctx, dev_t dev,
				   const struct blktrack_stamp *stamp);

/*
 * A checkpoint of one volume that also starts a copy-before-write snapshot
 * of it (BLKTRACK_FEATURE_SNAPSHOT; doc/ABI.md, "Snapshots"): @flags 0 or
 * BLKTRACK_SNAP_ALL, @store_limit bytes (0: the module's default for
 * memory, the store's size for a file), @store_fd a regular file or block
 * device open O_RDWR for the copies, or -1 for memory (the module takes its
 * own reference: the caller may close it at once).
 * -EOPNOTSUPP: writes cannot be intercepted on this kernel; -EDEADLK: the
 * store lies on the volume.
 */
BLKTRACK_EXPORT int blktrack_checkpoint_snap(struct blktrack_ctx *ctx, dev_t dev,
					     uint32_t flags, uint64_t store_limit,
					     int store_fd, struct blktrack_ckpt *out);
/*
 * Read @len bytes at @off of the snapshot into @buf (@flags 0: and release
 * them; BLKTRACK_SNAP_READ_KEEP; or BLKTRACK_SNAP_READ_RELEASE with @buf
 * NULL). Safe from several threads at once: it sets no error message
 * (-EOVERFLOW: the snapshot was lost).
 */
BLKTRACK_EXPORT int blktrack_snap_read(struct blktrack_ctx *ctx, dev_t dev,
				       const struct blktrack_stamp *stamp, uint64_t off,
				       uint64_t len, void *buf, uint32_t flags);
BLKTRACK_EXPORT int blktrack_snap_status(struct blktrack_ctx *ctx, dev_t dev,
					 struct blktrack_snap_status *st);

/* ---- extents ---------------------------------------------------------- */

/*
 * Iterate over the extents of a map, paging through the kernel with the
 * cursor and merging extents that touch across pages. @flags is 0 (the
 * pending map) or BLKTRACK_READ_ACTIVE. @stamp names the pending map; NULL
 * takes the stamp STATUS reports now (fine for inspection; a backup passes
 * the stamp its CHECKPOINT returned).
 *
 * blktrack_extent_iter_next() returns 0 and fills @ext; at the end it
 * returns 0 with ext->length == 0 (the kernel never reports an empty
 * extent).
 */
struct blktrack_extent_iter;
BLKTRACK_EXPORT int blktrack_extent_iter_new(struct blktrack_ctx *ctx, dev_t dev,
					     uint32_t flags,
					     const struct blktrack_stamp *stamp,
					     struct blktrack_extent_iter **iter);
BLKTRACK_EXPORT int blktrack_extent_iter_next(struct blktrack_extent_iter *iter,
					      struct blktrack_extent *ext);
BLKTRACK_EXPORT void blktrack_extent_iter_free(struct blktrack_extent_iter *iter);
/* The block size and volume size the iterator reads with. */
BLKTRACK_EXPORT uint32_t blktrack_extent_iter_block_size(const struct blktrack_extent_iter *iter);
BLKTRACK_EXPORT uint64_t blktrack_extent_iter_dev_size(const struct blktrack_extent_iter *iter);

/* All extents at once: *@ext is malloc()ed (NULL when *@n is 0). */
BLKTRACK_EXPORT int blktrack_read_extents(struct blktrack_ctx *ctx, dev_t dev,
					  uint32_t flags,
					  const struct blktrack_stamp *stamp,
					  struct blktrack_extent **ext, size_t *n);

/* ---- devices and volume identity ------------------------------------- */

/* stat() @path: -ENOTBLK when it is not a block device. */
BLKTRACK_EXPORT int blktrack_dev_from_path(const char *path, dev_t *dev);
/* "/dev/NAME" from sysfs, or "MAJ:MIN" when sysfs does not know it. */
BLKTRACK_EXPORT int blktrack_dev_name(dev_t dev, char *buf, size_t len);

#define BLKTRACK_VOLUME_ID_MAX	128
struct blktrack_volume_id {
	char id[BLKTRACK_VOLUME_ID_MAX];	/* UUID, PARTUUID, WWN... or "dev:MAJ:MIN" */
	char id_type[16];			/* "uuid", "partuuid", "dm-uuid", "dm-name",
						   "md-uuid", "wwid", "serial" or "devno" */
	char fstype[32];			/* "" when no filesystem is found */
};
/*
 * Probe @path with libblkid (needs read access to the device): the
 * filesystem UUID, else the partition UUID, else what sysfs says follows
 * the device (the dm or md UUID, the dm/LVM name, the WWN, the serial; a
 * partition of such a disk adds its number and first sector), else the
 * device number ("devno"), which a reboot may give to another disk.
 */
BLKTRACK_EXPORT int blktrack_volume_identify(const char *path,
					     struct blktrack_volume_id *vid);
/* False for a "devno" identity: nothing that outlives this boot may use it. */
BLKTRACK_EXPORT bool blktrack_volume_id_stable(const struct blktrack_volume_id *vid);

/* ---- text and JSON, shared by the CLI and blktrack-dump --------------- */

#define BLKTRACK_UUID_STR_LEN	37
BLKTRACK_EXPORT void blktrack_uuid_unparse(const uint8_t uuid[16],
					   char out[BLKTRACK_UUID_STR_LEN]);
BLKTRACK_EXPORT const char *blktrack_state_name(uint32_t state);
BLKTRACK_EXPORT const char *blktrack_reason_name(uint32_t reason);
BLKTRACK_EXPORT bool blktrack_stamp_equal(const struct blktrack_stamp *a,
					  const struct blktrack_stamp *b);

/* "key: value" lines, one per status field, "device" first. */
BLKTRACK_EXPORT int blktrack_status_print(FILE *f, const char *device,
					  const struct blktrack_status *st);
/* The same keys as a JSON object (a new reference). */
BLKTRACK_EXPORT int blktrack_status_json(const char *device,
					 const struct blktrack_status *st,
					 struct json_object **obj);
/* [[offset, length], ...] (a new reference). */
BLKTRACK_EXPORT int blktrack_extents_json(const struct blktrack_extent *ext,
					  size_t n, struct json_object **obj);
/* Print @obj and a newline, pretty when @pretty. */
BLKTRACK_EXPORT int blktrack_json_print(FILE *f, struct json_object *obj,
					bool pretty);

/*
 * A density picture of a map: @columns cells, cell i covers bytes
 * [i * size / columns, (i + 1) * size / columns) of the volume, and shows
 * the dirty fraction of that slice: ' ' none, '.' < 25%, ':' < 50%,
 * '*' < 100%, '#' all. @out gets @columns characters and a NUL.
 */
BLKTRACK_EXPORT int blktrack_density(const struct blktrack_extent *ext, size_t n,
				     uint64_t dev_size, unsigned int columns,
				     char *out);
/* The fraction behind one cell, as above. */
BLKTRACK_EXPORT char blktrack_density_char(uint64_t dirty, uint64_t total);

/* Parse "4096", "4K", "16M", "1G", "2T" (binary units) into bytes. */
BLKTRACK_EXPORT int blktrack_parse_size(const char *s, uint64_t *bytes);

/* ---- tracking state across reboots (lib/requester/state.c) --------------------- */

/*
 * Typical use, at shutdown (after the filesystem went read-only) and at
 * boot (right after ATTACH, before a read-write mount):
 *
 *	blktrack_save_state(ctx, "/dev/vda1", NULL, &saved);
 *	...
 *	blktrack_attach(ctx, dev, 0, 0);
 *	blktrack_load_state(ctx, "/dev/vda1", NULL, &loaded);
 *
 * doc/RELIABILITY.md says when a saved state is clean and what is checked.
 */
#define BLKTRACK_STATE_DIR_DEFAULT	"/var/lib/blktrack"

struct blktrack_save_result {
	char path[4096];		/* the state file */
	bool clean;			/* not mounted read-write: the map is final */
	bool raw;			/* written in place through the block device */
	uint64_t dirty_blocks;		/* in the saved map */
	char fingerprint[16];		/* "ext4", "xfs" or "none" */
};

/* Save the active map of attached @device into @state_dir (NULL: default). */
BLKTRACK_EXPORT int blktrack_save_state(struct blktrack_ctx *ctx, const char *device,
					const char *state_dir,
					struct blktrack_save_result *res);

struct blktrack_load_result {
	char path[4096];
	bool loaded;			/* the saved history goes on */
	uint32_t reason;		/* else BLKTRACK_REASON_*: why not */
	char detail[512];
	uint64_t dirty_blocks;		/* loaded */
};

/*
 * Load the saved state of @device, attached and not checkpointed yet; when
 * it cannot be trusted, mark the volume INVALID with res->reason instead
 * (success too: the next backup resyncs). Negative errno only on errors.
 */
BLKTRACK_EXPORT int blktrack_load_state(struct blktrack_ctx *ctx, const char *device,
					const char *state_dir,
					struct blktrack_load_result *res);

/*
 * A volume attached before its state directory can be read (the initramfs,
 * before the root is mounted): keep the volume's filesystem fingerprint as
 * it is now, in /run/blktrack/restore-pending, for the blktrack_load_state()
 * of the real system, which compares the saved fingerprint with this one
 * (what the kernel writes after the attach, such as a read-only mount's
 * superblock, is tracked) and drops the record.
 */
BLKTRACK_EXPORT int blktrack_defer_state(struct blktrack_ctx *ctx, const char *device);
/* A blktrack_defer_state() record of @dev's present attach waits for its load. */
BLKTRACK_EXPORT bool blktrack_state_deferred(struct blktrack_ctx *ctx, dev_t dev);

/* ---- the requester: backup, restore, verify (lib/requester/) ------------------- */

/*
 * Typical use:
 *
 *	struct blktrack_backup_opts o = { .device = "/dev/vda1", .repo = dir };
 *	struct blktrack_backup_result res;
 *	err = blktrack_backup(ctx, &o, &res);
 *	if (err < 0)
 *		... blktrack_get_error(ctx), res.failure says which kind ...
 *
 * The repository layout, the two-phase protocol and crash recovery are in
 * doc/REPOSITORY.md; the backup file format in doc/FORMAT.md.
 */

enum blktrack_backup_type {
	BLKTRACK_BACKUP_AUTO = 0,	/* incremental if the repo has a base, else full */
	BLKTRACK_BACKUP_FULL,
	BLKTRACK_BACKUP_INCREMENTAL,
	BLKTRACK_BACKUP_DIFFERENTIAL,
	BLKTRACK_BACKUP_COPY,
	BLKTRACK_BACKUP_RESYNC,		/* read all, store what differs from the base's hashes */
};

/* What a backup does when tracking cannot be trusted (stamp mismatch). */
enum blktrack_on_invalid {
	BLKTRACK_ON_INVALID_DEFAULT = 0,	/* resync */
	BLKTRACK_ON_INVALID_FULL,
	BLKTRACK_ON_INVALID_FAIL,
	BLKTRACK_ON_INVALID_RESYNC,		/* full when the base has no hashes */
};

/* How the read sees the volume as it was at the checkpoint. */
enum blktrack_snapshot_mode {
	BLKTRACK_SNAPSHOT_FREEZE = 0,	/* hold the writers' freeze through the read */
	BLKTRACK_SNAPSHOT_AUTO,		/* cow where the module can, else freeze */
	BLKTRACK_SNAPSHOT_COW,		/* copy-before-write snapshot, thaw at once */
	BLKTRACK_SNAPSHOT_NONE,		/* thaw at once, read the live volume */
};

/* The kind of a failure, for exit codes (doc/blktrack.8). */
enum blktrack_failure {
	BLKTRACK_FAIL_NONE = 0,
	BLKTRACK_FAIL_ERROR,		/* anything else */
	BLKTRACK_FAIL_CHAIN,		/* a chain member missing, uncommitted, misplaced */
	BLKTRACK_FAIL_CORRUPT,		/* a backup file corrupt, truncated or foreign */
	BLKTRACK_FAIL_MISMATCH,		/* verify --against: the device differs */
	BLKTRACK_FAIL_INVALID,		/* tracking invalid and --on-invalid=fail */
	BLKTRACK_FAIL_FUZZY,		/* strict: blocks were rewritten during the read */
	BLKTRACK_FAIL_WRITER,		/* a writer vetoed or rejected the backup */
};

/* Progress: @done of @total bytes of the current phase named @what. */
typedef void (*blktrack_progress_fn)(void *data, const char *what,
				     uint64_t done, uint64_t total);

struct blktrack_backup_opts {
	const char *device;		/* the tracked block device */
	const char *repo;		/* repository directory; may be NULL with output_fd */
	enum blktrack_backup_type type;
	enum blktrack_on_invalid on_invalid;
	int output_fd;			/* > 0: stream the backup there instead */
	blktrack_progress_fn progress;
	void *progress_data;
	/* Writers (doc/WRITERS.md). */
	const char *writers_dir;	/* NULL: /etc/blktrack/writers.d, may be missing */
	unsigned int writer_timeout;	/* seconds per event and writer; 0: 60 */
	bool no_fs_freeze;		/* no built-in filesystem writer */
	bool no_verify;			/* no built-in verify writer */
	bool verify_source;		/* it reads the volume again, not just the file */
	bool thaw_early;		/* thaw right after the checkpoint */
	bool strict;			/* reject a backup read while blocks changed */
	bool no_compress;		/* records stored without zstd */
	enum blktrack_snapshot_mode snapshot;
	uint64_t snapshot_store;	/* cow: bytes of copies at most; 0: the module's */
	/*
	 * cow: the copies go to a file or device instead of memory: a
	 * directory (an unnamed file in it, gone with the snapshot), a block
	 * device (opened exclusively, overwritten) or a regular file.
	 */
	const char *snapshot_store_path;
	/* Use a snapshot_store_path that holds a filesystem or partition table. */
	bool force;
	/*
	 * --wait: how long to wait for the volume's requester lock (held from
	 * recovery to COMMIT or ABORT, doc/REPOSITORY.md) and for the
	 * repository's lock while another blktrack holds them: 0 fail at once
	 * (-EBUSY, the message names the holder's pid), > 0 wait up to that
	 * many seconds (then -ETIMEDOUT), < 0 wait as long as it takes.
	 * Readers (restore, verify, list) take no lock. lock_dir: where the
	 * volumes' locks are, NULL is /run/blktrack.
	 */
	const char *lock_dir;
	int lock_wait;
	/*
	 * A per-file backup (doc/FILES.md): this regular file on a tracked
	 * volume (its device is found, @device is ignored), a chain of its own
	 * in the repository. NULL: the volume @device.
	 */
	const char *file;
};

#define BLKTRACK_WRITER_STAMPS_MAX	2048

struct blktrack_backup_result {
	enum blktrack_failure failure;
	enum blktrack_backup_type type;	/* what was taken */
	bool fell_back;			/* tracking was invalid: a resync or full was taken */
	const char *recovery;		/* "none", "abort" or "commit": repaired first */
	uint64_t id;			/* catalog id; 0 for a stream */
	uint64_t parent;		/* 0: none */
	uint64_t volume_size;
	uint64_t changed_bytes;		/* bytes of the checkpoint's pending map */
	uint64_t covered_bytes;		/* volume bytes the backup holds */
	uint64_t data_bytes;		/* of which non-zero */
	uint64_t stored_bytes;		/* bytes of the backup file */
	double seconds;
	char volume_id[BLKTRACK_VOLUME_ID_MAX];
	char file[4096];		/* the backup file */
	/* Writers and consistency. */
	unsigned int writers;		/* external writers run */
	const char *freeze;		/* "held", "thaw-early", "external", "none" */
	char mount_point[4096];		/* the volume's filesystem, or "" */
	bool verified;			/* the verify writer compared the file */
	const char *snapshot;		/* "cow", "freeze" or "none" */
	uint64_t snapshot_copied;	/* cow: blocks copied aside during the read */
	uint64_t snapshot_held;		/* cow: writes held for a copy */
	const char *snapshot_store;	/* cow: "memory" or snapshot_store_path */
	double freeze_seconds;		/* how long the filesystem writer froze */
	uint64_t rewritten_bytes;	/* read while thawed: blocks rewritten meanwhile */
	bool hashes;			/* block hashes kept for a later resync */
	char fell_back_why[1024];	/* with fell_back: why ("" otherwise) */
	/* A per-file backup that holds the whole file: why (its extents untrusted). */
	char whole_file_why[256];
	/*
	 * The writers' backup stamps kept with it (doc/WRITERS.md, "Backup
	 * stamps"): "NAME\tSTAMP\n" lines, "" for none.
	 */
	char writer_stamps[BLKTRACK_WRITER_STAMPS_MAX];
	uint64_t set;			/* a backup set's id (its first member's), else 0 */
	/*
	 * Ranges the writers named at post-snapshot (doc/WRITERS.md, "Ranges"):
	 * bytes this backup holds because a writer added them (unchanged ones),
	 * bytes of changed blocks it does not hold because one excluded them;
	 * and "NAME\tADDED\tEXCLUDED\n" lines, the bytes each writer named.
	 */
	uint64_t added_bytes, excluded_bytes;
	char writer_ranges[1024];
};

BLKTRACK_EXPORT int blktrack_backup(struct blktrack_ctx *ctx,
				    const struct blktrack_backup_opts *opts,
				    struct blktrack_backup_result *res);

/*
 * A backup set (doc/REPOSITORY.md, "Backup sets"): the @n members opts[i]
 * (each a device or a file, n <= BLKTRACK_SET_MAX) under one checkpoint:
 * the writers told once, every filesystem frozen at once, one CHECKPOINT of
 * all the volumes, each member read as at that instant, and all committed
 * by one catalog write, or none (a failure of one aborts every member's
 * checkpoint: nothing lost). What a set shares (the repository, writers,
 * freeze, snapshot and lock options) is opts[0]'s; opts[i].output_fd must be
 * 0. res[i] is member i's; res[i].set the set's id, shown by
 * blktrack_repo_json() as each member's "set".
 */
#define BLKTRACK_SET_MAX	64
BLKTRACK_EXPORT int blktrack_backup_set(struct blktrack_ctx *ctx,
					const struct blktrack_backup_opts *opts, size_t n,
					struct blktrack_backup_result *res);

struct blktrack_restore_opts {
	const char *repo;
	uint64_t backup_id;		/* 0: the newest backup of the repository's one
					 * volume (-EINVAL when it holds several) */
	const char *target;		/* restore: a file or a block device */
	const char *against;		/* verify: compare with this device */
	blktrack_progress_fn progress;
	void *progress_data;
	bool force;			/* restore: a device in use (mounted, held) too */
	/*
	 * A per-file backup's file (doc/FILES.md): with no backup_id, its
	 * newest backup; with one, it must be of this file (-EINVAL).
	 */
	const char *file;
	/*
	 * restore: the writers told pre-restore (a veto: nothing written) and
	 * post-restore (doc/WRITERS.md, "Restores"); NULL: the default
	 * directory, may be missing. @more_restores: more restores of this
	 * chain follow (BLKTRACK_MORE_RESTORES=1: recover only after the last).
	 */
	const char *writers_dir;
	unsigned int writer_timeout;	/* seconds per event and writer; 0: 60 */
	bool more_restores;
	bool no_writers;		/* a copy to look at (export, mount): none told */
	/*
	 * restore --onto: @target, a file or block device that holds the point
	 * backup_id's last member applies onto (its parent, as the
	 * user.blktrack.point attribute every file restore leaves says, or a
	 * device's record in /run/blktrack/points), gets that member only, in place.
	 * Another point there: -ESTALE, BLKTRACK_FAIL_CHAIN, nothing written.
	 */
	bool onto;
};

struct blktrack_restore_result {
	enum blktrack_failure failure;
	uint64_t backup_id;
	size_t members;			/* backups in the chain */
	uint64_t volume_size;
	uint64_t bytes;			/* restore: written; verify: read/compared */
	uint64_t differ_bytes;		/* verify --against: bytes that differ */
	uint64_t first_diff;		/* ... and the offset of the first */
	bool partial;			/* restore: the target was partly written */
	unsigned int writers;		/* restore: external writers run */
	double seconds;
	char file[4096];		/* the failing backup file, or "" */
	/*
	 * Bytes the writers excluded from the chain's backups that no later
	 * member holds (doc/WRITERS.md, "Ranges"): the target has older
	 * contents there, never the point's. 0: every byte is the point's.
	 */
	uint64_t excluded_bytes;
};

/*
 * Restore the chain of backup @opts->backup_id onto @opts->target. Every
 * member is read and checked in full before the target is opened: a broken
 * chain or a bad file leaves the target untouched (res->partial false).
 * A file target is written under a temporary name beside it and renamed
 * at the end, with exactly the volume's size: until then it is untouched.
 * A block device is opened O_EXCL (-EBUSY when mounted or held) unless
 * @opts->force, refused (-ENOSPC) when smaller than the volume; its first
 * MiB is zeroed first and written last (res->partial: written in part).
 */
BLKTRACK_EXPORT int blktrack_restore(struct blktrack_ctx *ctx,
				     const struct blktrack_restore_opts *opts,
				     struct blktrack_restore_result *res);
/*
 * Restore every member of backup set @set (blktrack_backup_set()) onto
 * targets[i], in the set's order (its members' ids, as blktrack_repo_json()
 * lists them): -EINVAL unless @n is their number. Every member's chain is
 * read and checked before the first target is written; res[i] is member
 * i's (the first whose failure is not BLKTRACK_FAIL_NONE failed). The
 * writers hear more_restores until the last member.
 */
BLKTRACK_EXPORT int blktrack_restore_set(struct blktrack_ctx *ctx,
					 const struct blktrack_restore_opts *opts,
					 uint64_t set, const char *const *targets, size_t n,
					 struct blktrack_restore_result *res);
/* Check the chain and read every member; with @against compare the volume. */
BLKTRACK_EXPORT int blktrack_verify(struct blktrack_ctx *ctx,
				    const struct blktrack_restore_opts *opts,
				    struct blktrack_restore_result *res);

/*
 * A point in a format QEMU reads (blktrack export): backup @opts->backup_id
 * (chosen as blktrack_restore() chooses it) as a raw image @opts->output
 * (a restore), or as qcow2: one image per member of its chain, each an
 * overlay on the one before, the last @opts->output, the others beside it
 * as NAME.ID.qcow2 (doc/FILES.md, "Exports"). Every member is read and
 * checked first; an image is written under NAME.tmp and renamed.
 * rbd-diff: the point's own backup only, as the diff `rbd import-diff`
 * applies onto its parent's snapshot ("blktrack-ID" names), to
 * @opts->output or, for "-", to standard output (nothing written there when
 * the check fails).
 */
enum blktrack_export_format {
	BLKTRACK_EXPORT_RAW,
	BLKTRACK_EXPORT_QCOW2,
	BLKTRACK_EXPORT_RBD_DIFF,
};

struct blktrack_export_opts {
	const char *repo;
	uint64_t backup_id;
	const char *file;
	enum blktrack_export_format format;
	const char *output;
	blktrack_progress_fn progress;
	void *progress_data;
};

struct blktrack_export_result {
	enum blktrack_failure failure;
	uint64_t backup_id;
	size_t members;			/* backups in the chain */
	uint64_t volume_size;
	size_t images;			/* files written */
	double seconds;
	uint64_t excluded_bytes;	/* not the point's: the writers excluded them */
	uint64_t parent_id;		/* rbd-diff: the from-snap's backup; 0: none */
};

BLKTRACK_EXPORT int blktrack_export(struct blktrack_ctx *ctx,
				    const struct blktrack_export_opts *opts,
				    struct blktrack_export_result *res);

/*
 * Browse a point (blktrack mount): backup @opts->backup_id of @opts->repo
 * (0: as blktrack_restore() picks it; @opts->file: a per-file backup's) is
 * restored into a sparse image in a new directory under @opts->tmp_dir
 * (/var/tmp), a loop device set over it (cleared at the unmount) and the
 * filesystem libblkid finds in it mounted read-only on the directory
 * @opts->mount_point. A record in @opts->mounts_dir (/run/blktrack/mounts)
 * says what blktrack_umount() undoes and blktrack_mounts_json() lists.
 * -EMEDIUMTYPE: no filesystem in the point (a partitioned or qcow2 image);
 * -EBUSY: a point is mounted there already. On a failure nothing stays.
 */
struct blktrack_mount_opts {
	const char *repo;
	uint64_t backup_id;
	const char *file;
	const char *mount_point;
	const char *tmp_dir;		/* NULL: /var/tmp */
	const char *mounts_dir;		/* NULL: /run/blktrack/mounts */
	blktrack_progress_fn progress;
	void *progress_data;
};

struct blktrack_mount_result {
	enum blktrack_failure failure;	/* the restore's (a broken chain, a bad file) */
	uint64_t backup_id;
	char mount_point[4096];		/* resolved */
	char loop[64];			/* /dev/loopN */
	char fstype[32];
	char image_dir[4096];		/* holds the image until the unmount */
	uint64_t excluded_bytes;	/* not the point's: the writers excluded them */
};

BLKTRACK_EXPORT int blktrack_mount(struct blktrack_ctx *ctx,
				   const struct blktrack_mount_opts *opts,
				   struct blktrack_mount_result *res);
/* Unmount a point blktrack_mount() mounted and remove its image; -EBUSY: in use, all stays. */
BLKTRACK_EXPORT int blktrack_umount(struct blktrack_ctx *ctx, const char *mount_point,
				    const char *mounts_dir);
/* The points mounted, as a JSON array of their records (a new reference). */
BLKTRACK_EXPORT int blktrack_mounts_json(struct blktrack_ctx *ctx, const char *mounts_dir,
					 struct json_object **out);

/*
 * Create a repository in @dir, a missing or empty directory (blktrack init).
 * -EEXIST: already a repository; -ENOTEMPTY: something else is there;
 * -EUCLEAN: backup files without a catalog. Everything else that opens a
 * repository refuses a directory that is not one (-ENOENT).
 */
BLKTRACK_EXPORT int blktrack_repo_init(struct blktrack_ctx *ctx, const char *dir);
/*
 * The same, @flags BLKTRACK_REPO_ENCRYPTED: every file encrypted and
 * authenticated (doc/REPOSITORY.md, "Encryption") with the key of the file
 * $BLKTRACK_KEY_FILE names (32 bytes, or 64 hex digits) or derived from
 * the passphrase of $BLKTRACK_PASSPHRASE_FILE; every later open of the
 * repository needs the same (-ENOKEY without one, -EKEYREJECTED with
 * another). @dir may be rados://POOL/NAME.
 */
#define BLKTRACK_REPO_ENCRYPTED	0x1
BLKTRACK_EXPORT int blktrack_repo_create(struct blktrack_ctx *ctx, const char *dir,
					 unsigned int flags);

/*
 * The repository as JSON (a new reference): {"path", "backups": [...]},
 * each backup with its catalog fields, "chain": [ids] or "chain_error".
 * With @detail, each backup file is read: "file_ok", "file_error",
 * "records", "covers": [[offset, length]...] (what it stores).
 */
BLKTRACK_EXPORT int blktrack_repo_json(struct blktrack_ctx *ctx, const char *dir,
				       bool detail, struct json_object **out);

/*
 * blktrack check: read the whole repository @dir (the catalog, every
 * backup file in full, every delta map and hash file, every chain) and
 * call @report with one sentence per problem. With @rebuild, reconstruct
 * a missing or damaged catalog from the intact backup files (the old one
 * is kept as catalog.damaged-TIMESTAMP; damaged files are reported and left
 * out): -EALREADY when the catalog is sound and nothing needs fixing.
 * 0 or -errno (the check itself failed); @res is filled in either case.
 */
typedef void (*blktrack_report_fn)(void *data, const char *problem);
struct blktrack_check_result {
	unsigned int problems;		/* lines reported */
	unsigned int entries;		/* backups in the (rebuilt) catalog */
	unsigned int left_out;		/* rebuild: damaged backup files not entered */
	bool rebuilt;			/* a new catalog was written */
	char aside[96];			/* the old catalog's new name, or "" */
};
BLKTRACK_EXPORT int blktrack_repo_check(struct blktrack_ctx *ctx, const char *dir,
					bool rebuild, blktrack_report_fn report,
					void *data, struct blktrack_check_result *res);

/*
 * blktrack prune and delete (doc/REPOSITORY.md, "Retention"): the backups
 * the keep rules keep (or, for delete, every backup but @delete_id) stay;
 * a backup not kept that a kept one needs to restore is merged into it
 * (the kept one becomes a full, or an incremental on the nearest kept
 * member of its chain); the rest are deleted. The newest full, incremental
 * or resync of each volume and every backup after it are always kept: the
 * next backup continues from them. All in one commit (crash-safe);
 * @dry_run only plans. Errors: -EBUSY (delete: a backup the next backup
 * needs; or the lock), -ENOENT (no such backup), -EINVAL (no rule given),
 * a chain to merge that is broken: its error, nothing changed.
 */
struct blktrack_prune_opts {
	const char *repo;
	unsigned int keep_last, keep_daily, keep_weekly, keep_monthly;
	uint64_t delete_id;		/* blktrack delete: keep all but this one */
	bool dry_run;
	unsigned int lock_wait;		/* seconds; UINT_MAX: no limit */
};

enum blktrack_prune_action {
	BLKTRACK_PRUNE_KEEP,
	BLKTRACK_PRUNE_MERGE,		/* kept, rewritten with the members folded in */
	BLKTRACK_PRUNE_DELETE,
};

/* Why a backup is kept (bits of blktrack_prune_item.why). */
#define BLKTRACK_KEEP_LAST	0x1
#define BLKTRACK_KEEP_DAILY	0x2
#define BLKTRACK_KEEP_WEEKLY	0x4
#define BLKTRACK_KEEP_MONTHLY	0x8
#define BLKTRACK_KEEP_NEWEST	0x10	/* the newest base of its volume, or after it */
#define BLKTRACK_KEEP_ASKED	0x20	/* delete: every backup but the one named */

struct blktrack_prune_item {
	uint64_t id;
	char volume_id[128];
	int64_t time;
	char type[16];			/* as in the catalog before */
	enum blktrack_prune_action action;
	unsigned int why;		/* BLKTRACK_KEEP_* */
	/* MERGE: the new type and parent, and the backups folded in, oldest first. */
	char new_type[16];
	uint64_t new_parent;
	uint64_t *folded;
	size_t nfolded;
};

struct blktrack_prune_result {
	struct blktrack_prune_item *items;	/* every committed backup, in id order */
	size_t n;
	unsigned int kept, merged, deleted;
	uint64_t read_bytes;		/* backup file bytes the merges read */
	uint64_t written_bytes;		/* bytes of the files the merges wrote */
	uint64_t replaced_bytes;	/* bytes of the files the merges replaced */
	uint64_t freed_bytes;		/* bytes of the files deleted or replaced */
	double seconds;
	bool refused;			/* delete: -EBUSY for a backup the next one needs */
};
BLKTRACK_EXPORT int blktrack_repo_prune(struct blktrack_ctx *ctx,
					const struct blktrack_prune_opts *o,
					struct blktrack_prune_result *res);
BLKTRACK_EXPORT void blktrack_prune_result_free(struct blktrack_prune_result *res);

/*
 * blktrack copy (doc/REPOSITORY.md, "Copies"): the committed backups of
 * @from that @to lacks, with their ids, delta maps and hash files: backup
 * @backup_id's chain (and the sets its members belong to), or with 0 every
 * backup. Every file is checked on the way (records, digests, the source
 * catalog's checksums); each backup (a set: all its members) is committed
 * by one catalog write, so an interrupted copy leaves @to as before it
 * (the next copy drops what it left and goes on). @to must be a repository
 * (blktrack init) and is locked; @from is read without a lock. Errors:
 * -EEXIST (an id of @to is another point: the two have diverged; nothing
 * copied), -ENOENT (no such backup), a damaged source file: its error, the
 * backups before it stay copied.
 */
struct blktrack_copy_opts {
	const char *from;
	const char *to;
	uint64_t backup_id;		/* 0: every committed backup */
	unsigned int lock_wait;		/* seconds for @to's lock; UINT_MAX: no limit */
	blktrack_progress_fn progress;
	void *progress_data;
};

struct blktrack_copy_result {
	enum blktrack_failure failure;	/* CHAIN, CORRUPT: the source's */
	size_t copied;			/* backups copied */
	size_t present;			/* asked for, and already in @to */
	uint64_t copied_bytes;		/* bytes of the backup files copied */
	double seconds;
};

BLKTRACK_EXPORT int blktrack_copy(struct blktrack_ctx *ctx, const struct blktrack_copy_opts *o,
				  struct blktrack_copy_result *res);

#ifdef __cplusplus
}
#endif

#endif /* LIBBLKTRACK_H */

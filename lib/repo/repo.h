/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The backup repository: a directory with a catalog of backups, the backup
 * files and the delta map of each kernel checkpoint. Internal to
 * libblktrack; doc/REPOSITORY.md describes the layout, the catalog format,
 * the two-phase protocol and the recovery table.
 *
 * Typical use (one backup; each step durable before the next):
 *
 *	repo_open(dir, 0, &r);                            takes the lock
 *	repo_recover(r, &kernel_state, &rec);             then act on rec.action
 *	blktrack_checkpoint(...)                          stamp S, delta D
 *	repo_compose(r, type, &S, D, &want, &base);       what to store
 *	repo_begin(r, &entry, D, &id);                    (a) pending + delta
 *	repo_backup_create(r, id, &f); write; repo_backup_install(r, id, f);  (b)
 *	repo_commit(r, id, stored_bytes);                 (c) committed
 *	blktrack_commit(..., &S)                          (d) kernel
 *	repo_close(r);
 *
 * Any failure before (c): repo_abandon(r, id), then blktrack_abort().
 *
 * Every function that can fail returns 0 or a negative errno; repo_error()
 * then says what went wrong in a sentence (naming the file or backup).
 */
#ifndef REPO_H
#define REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/blktrack.h>

struct blockset;
struct repo;

#define REPO_CATALOG_VERSION	2
#define REPO_VOLUME_ID_MAX	128
#define REPO_NAME_MAX		96
#define REPO_PATH_MAX		1024
#define REPO_WRITER_STAMPS_MAX	2048

enum repo_type {
	REPO_FULL,
	REPO_INCREMENTAL,
	REPO_DIFFERENTIAL,
	REPO_COPY,
	REPO_RESYNC,
};

enum repo_state {
	REPO_PENDING,
	REPO_COMMITTED,
};

/*
 * A point in a volume's history. A backup taken from the checkpoint whose
 * kernel stamp is {G, E} has to = {G, E + 1}: the stamp the kernel reports
 * once that checkpoint is committed, and the one the next checkpoint
 * returns.
 */
struct repo_stamp {
	char volume_id[REPO_VOLUME_ID_MAX];
	uint8_t generation[16];
	uint64_t epoch;
	uint64_t size;		/* volume bytes */
	uint32_t block_size;
};

struct repo_entry {
	uint64_t id;			/* from 1, never reused */
	enum repo_type type;
	enum repo_state state;
	char file[REPO_NAME_MAX];	/* "backups/ID.bkt", relative to the repo */
	char delta[REPO_NAME_MAX];	/* "deltas/ID.set" (before: GENERATION-EPOCH.set) */
	bool has_from;			/* false for full and copy */
	struct repo_stamp from;		/* the parent's to */
	struct repo_stamp to;
	uint64_t parent;		/* 0: none */
	int64_t time;			/* seconds since the epoch */
	uint64_t changed_bytes;		/* bytes of the delta map */
	uint64_t stored_bytes;		/* bytes of the backup file */
	/*
	 * The XXH3-64 trailers of its delta map and block hash file (their
	 * digests of everything before): the catalog binds each file to its
	 * entry, so a valid file of another backup or volume is refused.
	 * Absent in entries written before (issue 13, point 2).
	 */
	bool has_delta_sum, has_hashes_sum;
	uint64_t delta_sum, hashes_sum;
	/*
	 * A per-file backup (doc/FILES.md): the file's absolute path; its
	 * chain's volume_id is "file:" and a hash of the volume's id and the
	 * path. "" for a volume's backup.
	 */
	char path[REPO_PATH_MAX];
	/*
	 * The writers' own stamps handed over at backup-complete (doc/WRITERS.md,
	 * "Backup stamps"): "NAME\tSTAMP\n" lines in writer order, "" for none.
	 */
	char writer_stamps[REPO_WRITER_STAMPS_MAX];
	/*
	 * A backup set's (blktrack backup DEV DEV...): the id of its first
	 * member, the same in every member; 0 for a backup of its own.
	 */
	uint64_t set;
};

/* ---- opening, the lock, the catalog ------------------------------------- */

#define REPO_CREATE	0x1	/* blktrack init: a new repository, never over one */
#define REPO_ENCRYPT	0x4	/* with REPO_CREATE: encrypted (store_crypt.c), its key from the environment */
#define REPO_RDONLY	0x2	/* no lock, no update allowed */
#define REPO_WAIT_FOREVER	UINT_MAX

/*
 * Open the repository at @path and take its lock (flock on DIR/lock,
 * exclusive). REPO_RDONLY takes no lock: the catalog is replaced
 * atomically and a committed backup's files never change, so a reader runs
 * beside a writer. -EBUSY when another process holds the lock (after
 * @wait seconds with repo_open_wait(), REPO_WAIT_FOREVER: no limit);
 * -EPERM when the directory is not owned by the effective uid or is
 * writable by group or others; -ELOOP when the catalog, the lock or a
 * subdirectory is a symbolic link (files are opened with O_NOFOLLOW relative
 * to the directory, never by path); -ENOENT when @path is not a repository
 * (nothing is created there);
 * -EUCLEAN when it holds backup files but no catalog; -EBADMSG for a
 * damaged catalog (checksum, syntax, two entries naming one file);
 * -EPROTONOSUPPORT for a newer version. With REPO_CREATE, create a
 * repository in a missing or empty directory: -EEXIST over a repository,
 * -ENOTEMPTY over anything else.
 * On failure *@out is still set (to a repo that only carries the error
 * message, or NULL on -ENOMEM) so that repo_error() can tell why; free it
 * with repo_close().
 */
int repo_open(const char *path, unsigned int flags, struct repo **out);
int repo_open_wait(const char *path, unsigned int flags, unsigned int wait,
		   struct repo **out);
void repo_close(struct repo *r);
const char *repo_error(const struct repo *r);
const char *repo_path(const struct repo *r);

/*
 * Tests and fuzzing only: recompute in place the checksum line that ends
 * the catalog text @text of @len bytes (version 2); nothing if it has none.
 */
void repo_catalog_seal(char *text, size_t len);

/*
 * Tests only: called before each step ("open", "write", "fsync", "rename",
 * "fsync-dir") of every file the repository writes by rename (the catalog,
 * deltas); a negative errno fails that step. Not exported by libblktrack.
 */
extern int (*repo_fault_hook)(const char *step, const char *name);

/* The catalog in memory, in backup order; valid until the next update. */
size_t repo_count(const struct repo *r);
const struct repo_entry *repo_entry_at(const struct repo *r, size_t i);
const struct repo_entry *repo_find(const struct repo *r, uint64_t id);

const char *repo_type_name(enum repo_type type);
int repo_type_parse(const char *name, enum repo_type *type);
const char *repo_state_name(enum repo_state state);

/* {generation, epoch} equal, same volume id, size and block size. */
bool repo_stamp_equal(const struct repo_stamp *a, const struct repo_stamp *b);
/* "deltas/ID.set": backup @id's delta map (older ones: GENERATION-EPOCH.set). */
void repo_delta_name(uint64_t id, char out[REPO_NAME_MAX]);

/* ---- composition -------------------------------------------------------- */

/*
 * The blocks a new backup of @type must store, from the catalog and the
 * delta @delta of the new checkpoint @ckpt (the kernel's stamp {G, E}, with
 * the volume id, size and block size).
 *
 *   full, copy:   every block of the volume; *@base = 0
 *   incremental:  @delta | the deltas of every committed checkpoint after the
 *                 last committed full, incremental or resync of the volume
 *   differential: @delta | the deltas after the last committed full
 *   resync:       -EINVAL (its set comes from comparing block hashes);
 *                 repo_base() gives its parent
 *
 * *@base is the parent of the new backup. -ENOENT: no base (take a full);
 * -ESTALE: the checkpoints since the base do not follow each other or
 * @ckpt does not follow the last one (tracking lost: resync or full);
 * -EBADMSG: a delta file is corrupt.
 */
int repo_compose(struct repo *r, enum repo_type type,
		 const struct repo_stamp *ckpt, const struct blockset *delta,
		 struct blockset **out, uint64_t *base);

/* The last committed backup of @volume_id a new @type would be based on. */
int repo_base(struct repo *r, enum repo_type type, const char *volume_id,
	      uint64_t *base);

/*
 * The backups to restore, in order, to get the volume as backup @id saw it:
 * full (or copy) alone; full + incrementals/resyncs up to @id; full +
 * differential. *@ids is malloc()ed. -ENOENT: a member (entry or file) is
 * missing; -ENOLINK: a parent of the wrong type or volume; -ESTALE: a
 * member's from stamp is not its parent's to stamp; -EINPROGRESS: a member
 * is not committed.
 */
int repo_chain(struct repo *r, uint64_t id, uint64_t **ids, size_t *n);

/* ---- the two-phase protocol --------------------------------------------- */

/*
 * (a) Save @delta as deltas/KEY.set (the kernel stamp of the checkpoint is
 * @e->to with epoch - 1) and append @e as a pending entry; both durable.
 * The id and file names are assigned; *@id gets the id.
 */
int repo_begin(struct repo *r, const struct repo_entry *e,
	       const struct blockset *delta, uint64_t *id);
/*
 * A file of the repository, open to read, or being written (as NAME.tmp)
 * until it is installed. The requester reads and writes the repository
 * through these, never by path or descriptor, whatever the store
 * (doc/REPOSITORY.md, "The store interface").
 *
 * repo_file_read(): a bfile_read_fn (bytes, 0 at the end, -errno);
 * repo_file_write(): a bfile_write_fn (all of @len, or -errno);
 * repo_file_pread(): the bytes at @off as written so far (pread(2)'s
 * result, -errno); repo_file_follow(): a second handle on a file being
 * written, to read it back while it grows (the verify writer), valid after
 * the install.
 */
struct repo_file;
ssize_t repo_file_read(void *f, void *buf, size_t len);
int repo_file_write(void *f, const void *buf, size_t len);
ssize_t repo_file_pread(struct repo_file *f, void *buf, size_t len, uint64_t off);
int repo_file_follow(struct repo_file *f, struct repo_file **reader);
void repo_file_close(struct repo_file *f);

/* (b) Create backups/ID.bkt.tmp (0600) for writing; then install it: fsync,
 * rename to backups/ID.bkt, fsync the directory; the handle is gone either way. */
int repo_backup_create(struct repo *r, uint64_t id, struct repo_file **f);
int repo_backup_install(struct repo *r, uint64_t id, struct repo_file *f);
/*
 * The block hashes of pending @id (hashes/ID.bh, lib/format/blockhash.h), written
 * like its backup file, before (c). Committing a full, incremental or
 * resync removes the hashes of the volume's older backups: a resync only
 * compares with the newest base. repo_hashes_open: read-only, -ENOENT when
 * the backup has none.
 */
void repo_hashes_name(uint64_t id, char out[REPO_NAME_MAX]);
int repo_hashes_create(struct repo *r, uint64_t id, struct repo_file **f);
int repo_hashes_install(struct repo *r, uint64_t id, struct repo_file *f);
int repo_hashes_open(struct repo *r, uint64_t id, struct repo_file **f);
/* Open the repository file @name (e.g. an entry's file) to read: -ELOOP for a link. */
int repo_file_open(struct repo *r, const char *name, struct repo_file **f);
/* Replace the delta of pending @id (a resync knows its set after the read). */
int repo_set_delta(struct repo *r, uint64_t id, const struct blockset *delta);
/*
 * The writer stamps of pending @id ("NAME\tSTAMP\n" lines, checked by the
 * caller), saved with it by repo_commit().
 */
int repo_set_writer_stamps(struct repo *r, uint64_t id, const char *stamps);
/* A writer's name and stamp as a catalog keeps them: printable, one line. */
#define WRITER_NAME_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
#define REPO_WRITER_STAMP_LEN	255
bool repo_stamp_ok(const char *name, size_t nlen, const char *stamp, size_t slen);
/* The stamp lines as a JSON object {NAME: STAMP} (a new reference). */
struct json_object;
struct json_object *repo_stamps_json(const char *stamps);
/* (c) Mark @id committed (its backup file must be installed); durable. */
int repo_commit(struct repo *r, uint64_t id, uint64_t stored_bytes);
/*
 * (c) for a backup set: pending @ids[0..n) committed by one catalog write,
 * all or none, each marked as of set @ids[0] (n > 1).
 */
int repo_commit_set(struct repo *r, const uint64_t *ids, const uint64_t *stored_bytes,
		    size_t n);
/* The committed members of set @set, by id (a new array; -ENOENT: none). */
int repo_set_members(struct repo *r, uint64_t set, uint64_t **ids, size_t *n);
/*
 * blktrack copy (lib/requester/copy.c): @e, a committed backup of another
 * repository, entered as pending under its own id, with the delta map
 * @delta: ids stay what they were, so that parents, sets and the base of
 * the next incremental mean the same in both repositories. Its files get
 * this repository's names (backups/ID.bkt...); the caller then writes them
 * with repo_backup_create/install and repo_hashes_create/install and
 * commits with repo_commit_set() (which keeps @e->set). -EEXIST: the id is
 * in the catalog.
 */
int repo_import_begin(struct repo *r, const struct repo_entry *e,
		      const struct blockset *delta);
/* Drop pending @id and its files; the caller then ABORTs the checkpoint. */
int repo_abandon(struct repo *r, uint64_t id);

/* Whether a sound backup file's header is the one @e describes. */
struct bfile_header;
bool repo_header_matches(const struct repo_entry *e, const struct bfile_header *h);

/* Load the delta map of a committed or pending backup. */
int repo_load_delta(struct repo *r, uint64_t id, struct blockset **out);

/* ---- merge and removal (prune, delete: doc/REPOSITORY.md, "Retention") -- */

/*
 * Backups are merged and removed under the same rule as a backup is
 * committed: one catalog write is the commit point, and the catalog's
 * trash list names every file that is not (or no longer) part of the
 * repository, so that a crash at any point leaves recovery a list to
 * delete:
 *
 *	repo_merge_begin(r, ids, n, files);     (m1) new names, in the trash
 *	repo_merge_create(r, files[i], &f);      (m2) files[i].tmp: write it,
 *	repo_merge_install(r, files[i], f);           fsync, rename, fsync dir
 *	repo_replace(r, ne, n, drop, ndrop);     (m3) the commit: entries ne[]
 *	                                         name files[], drop[] are gone,
 *	                                         every old file in the trash
 *	repo_empty_trash(r, NULL);               (m4) delete, catalog without list
 *
 * A failure before (m3): repo_empty_trash() deletes the new files; the old
 * chains stand. Recovery (repo_recover) empties the trash either way.
 */
int repo_merge_begin(struct repo *r, const uint64_t *ids, size_t n,
		     char (*files)[REPO_NAME_MAX]);
int repo_merge_create(struct repo *r, const char *file, struct repo_file **f);
int repo_merge_install(struct repo *r, const char *file, struct repo_file *f);
/*
 * (m3) Each ne[i] replaces the committed entry of its id (its old file goes
 * to the trash, its new one leaves it); each of @drop leaves the catalog,
 * its backup, delta and hash files to the trash. Durable; -ENOENT for an
 * unknown id or a missing new file. Then repo_empty_trash().
 */
int repo_replace(struct repo *r, const struct repo_entry *ne, size_t nne,
		 const uint64_t *drop, size_t ndrop);
/* (m4) Delete the trash files, then write the catalog without the list. */
int repo_empty_trash(struct repo *r, unsigned int *removed);
size_t repo_trash_count(const struct repo *r);

/* ---- crash recovery ----------------------------------------------------- */

/* What the kernel says about the volume (STATUS), without the kernel. */
struct repo_kernel_state {
	char volume_id[REPO_VOLUME_ID_MAX];
	bool attached;
	bool pending;			/* a checkpoint waits for commit/abort */
	struct blktrack_stamp stamp;	/* STATUS: the pending map's start */
};

enum repo_action {
	REPO_ACTION_NONE,
	REPO_ACTION_ABORT,	/* blktrack_abort(dev, &stamp) */
	REPO_ACTION_COMMIT,	/* blktrack_commit(dev, &stamp) */
};

struct repo_recovery {
	enum repo_action action;
	struct blktrack_stamp stamp;	/* for the action */
	uint64_t commit_id;		/* COMMIT: the committed backup */
	unsigned int dropped;		/* pending entries removed */
	unsigned int removed;		/* tmp files and dropped entries' files removed */
};

/*
 * Repair the repository after a crash and tell the caller what to do with
 * the kernel's pending checkpoint (doc/REPOSITORY.md, recovery table):
 * every pending entry is dropped, its files deleted before the catalog is
 * rewritten (a full filesystem needs their room); tmp files are removed; a
 * file no entry names is kept (only a damaged catalog forgets one). A
 * pending kernel checkpoint is committed when a committed entry of the
 * volume was taken from it, else aborted. @ks may be NULL (repository only).
 */
int repo_recover(struct repo *r, const struct repo_kernel_state *ks,
		 struct repo_recovery *out);

#endif /* REPO_H */

/* ---- check and rebuild (blktrack check) ---------------------------------- */

/* One problem, a sentence naming the file (no newline). */
typedef void (*repo_report_fn)(void *data, const char *problem);

struct repo_check_result {
	unsigned int problems;		/* lines reported */
	unsigned int entries;		/* check: catalog entries; rebuild: entries written */
	unsigned int left_out;		/* rebuild: damaged or incomplete backup files */
	bool catalog_sound;		/* the catalog opened (checksum, syntax) */
	bool rebuilt;			/* rebuild: a new catalog was written */
	char aside[REPO_NAME_MAX];	/* rebuild: the old catalog's new name, or "" */
	char error[512];		/* why, when -errno is returned */
};

/*
 * Read the whole repository at @path under a shared lock: the catalog, every
 * backup file in full (records, END digest, header against its entry), every
 * delta map and hash file against the catalog's checksums, every chain, and
 * the backup files the catalog does not name. Each problem goes to @fn.
 * 0 (then out->problems tells whether it is sound) or -errno when the
 * directory cannot be read at all.
 */
int repo_check(const char *path, repo_report_fn fn, void *data,
	       struct repo_check_result *out);

/*
 * Reconstruct the catalog of @path from its backup files under the
 * exclusive lock (doc/REPOSITORY.md, "Damage and rebuild"): each intact,
 * complete backups/ID.bkt gives a committed entry; damaged ones are
 * reported and left in place. The old catalog is kept as
 * catalog.damaged-TIMESTAMP. -EALREADY (nothing changed) when the catalog
 * is sound and check finds nothing to fix; -ENOENT when @path is not a
 * repository (no backups/ directory).
 */
int repo_rebuild(const char *path, repo_report_fn fn, void *data,
		 struct repo_check_result *out);

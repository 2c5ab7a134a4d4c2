/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack, the requester's internals: the state of one backup and of a
 * chain being read, and what the requester's files share. Only requester/
 * includes it (doc/ARCHITECTURE.md).
 *
 * The requester: backup (backup.c and the files it calls), restore
 * (chain.c, restore.c), the `verify` command (verify.c), on top of the
 * kernel's checkpoints (kernel/), the repository (repo/) and the backup
 * stream format (format/). The three checks that go by "verify": the
 * follower (follow.c) re-reads the new file as it is written,
 * --verify-source (source_check.c) re-reads the volume, the `verify`
 * command (verify.c) re-reads a repository.
 *
 * One backup (doc/REPOSITORY.md, "The two-phase protocol"):
 *
 *	repo_open, repo_recover          repair a crash, finish or abort the
 *	                                 kernel's pending checkpoint
 *	CHECKPOINT                       stamp S, pending map = delta D
 *	repo_compose                     the blocks to store (-ESTALE: tracking
 *	                                 lost -> --on-invalid)
 *	repo_begin                       (a) pending entry + delta
 *	read the volume, bfile writer    (b) backups/ID.bkt.tmp, installed
 *	repo_commit                      (c) the backup is committed
 *	COMMIT S                         (d)
 *
 * Any failure before (c): repo_abandon, then ABORT S: the kernel merges the
 * pending map back, nothing is lost. A crash anywhere: the next run's
 * repo_recover decides.
 *
 * Test hooks: BLKTRACK_TEST_CRASH_AT=after-checkpoint|during-write|
 * after-catalog makes the process kill itself with SIGKILL at that point
 * (a requester killed by kill -9); tests/vm/0950-backup.sh uses it.
 * BLKTRACK_TEST_VERIFY_MISMATCH makes the verify writer see a file that
 * does not hold what was read (tests/vm/0960-writers.sh).
 */
#ifndef BLKTRACK_REQUESTER_H
#define BLKTRACK_REQUESTER_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kernel/kernel.h"
#include "format/bfile.h"
#include "format/blockhash.h"
#include "format/blockset.h"
#include "format/filemap.h"
#include "core/fdio.h"
#include "core/readq.h"
#include "repo/repo.h"
#include "requester/store.h"
#include "requester/target.h"
#include "requester/vollock.h"
#include "requester/fs.h"
#include "requester/writers.h"

#define CHUNK_BYTES	(1U << 20)	/* volume bytes per read */
#define ALIGN		4096U
#define READ_DEPTH	8		/* reads in flight: readq.h */

/*
 * The verify writer: read the new file back and check that its records
 * hold exactly the bytes the backup read (a hash per piece, taken as it was
 * read), in order. The volume is not read a second time (--verify-source
 * does that instead: verify_against_source()), and the file is read while
 * it is written, by a thread of its own (struct follow): the check costs
 * the backup no time while the volume's reads are the bottleneck.
 */
struct follow {
	struct backup *b;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t more;
	uint64_t gen;			/* bumped by the writer after each piece */
	bool end;			/* the writer is done (or gave up) */
	struct repo_file *file;		/* the backup file, its own handle */
	uint64_t pos;
	int err;
	char msg[512];
};

/* How far blktrack_backup() got (backup.c): what its unwind must undo. */
enum backup_phase {
	BACKUP_NEW,		/* options checked; nothing held */
	BACKUP_OPEN,		/* identified, locked; the repository open and recovered */
	BACKUP_PREPARED,	/* writers had an event: a failure sends them abort */
	BACKUP_FROZEN,		/* freeze sent (FIFREEZE held): a thaw is owed */
	BACKUP_CHECKPOINTED,	/* the kernel holds checkpoint ck: ABORT it */
	BACKUP_COMPOSED,	/* the type, the blocks to read and the header known */
	BACKUP_BEGUN,		/* the repository's pending backup id: abandon it */
	BACKUP_WRITTEN,		/* the file written, installed in the repository */
	BACKUP_CHECKED,		/* verified, thawed, writers told backup-complete */
	BACKUP_COMMITTED,	/* in the catalog (a stream: complete): nothing to undo */
	BACKUP_DONE,		/* the kernel committed too */
};

struct bset;

struct backup {
	struct blktrack_ctx *ctx;
	/*
	 * Its set (backupset.c): one backup is a set of one. The lead
	 * (set->m[0]) holds the repository, the writers and the snapshot's
	 * store for all; @vol, the first member on this one's volume, its
	 * lock and its kernel checkpoint.
	 */
	struct bset *set;
	bool lead;
	struct backup *vol;
	const struct blktrack_backup_opts *o;
	struct blktrack_backup_result *res;
	enum backup_phase phase;
	enum blktrack_backup_type type;	/* as decided so far (auto resolved) */
	bool streaming;			/* to o->output_fd, in no repository */
	double t0;
	int lock_fd;			/* the per-volume lock (vollock.h) */
	struct repo *r;
	struct blktrack_status st;	/* the volume, as last asked */
	struct blktrack_ckpt ck;	/* the checkpoint this backup took */
	struct repo_stamp rs;		/* its stamp, as the repository keeps it */
	struct blockset *delta;		/* the checkpoint's pending map */
	struct blockset *want;		/* the blocks to read */
	uint64_t base;			/* the parent backup, 0: none */
	uint64_t id;			/* the repository's pending backup, 0: none */
	struct repo_file *out;		/* the backup file in the repository */
	int out_fd;			/* or the stream (--output) */
	struct bfile_header h;
	struct bfile_stats stats;
	struct follow follower;		/* the verify writer */
	int vol_fd;
	uint64_t size;
	uint32_t block_size;
	void *buf;
	size_t buf_len;
	struct bfile_writer *w;
	struct readq *rq;		/* reads in flight (read_volume()) */
	uint64_t done, total;
	char msg[8192];
	/* writers (doc/WRITERS.md) */
	struct writers *wr;
	struct writers_env env;
	bool events;			/* writers saw an event: abort goes to all */
	bool freeze_sent;		/* writers got freeze and no thaw yet */
	int fs_fd;			/* FIFREEZE by us; -1: nothing to thaw */
	double frozen_at;		/* when fs_fd froze */
	/* cow: the read goes through the kernel's snapshot */
	int store_fd;			/* --snapshot-store PATH until the checkpoint */
	bool cow;
	dev_t dev;
	struct blktrack_stamp stamp;
	uint64_t released;		/* snap_release_rest()'s walk: released below */
	char prev_stamp[64], new_stamp[64];
	/* Block hashes (lib/format/blockhash.h): the parent's, and this backup's. */
	struct blockhash_reader *hp;
	struct blockhash_writer *hw;
	struct repo_file *hp_file, *hw_file;
	uint64_t hnext;			/* the next block hw wants */
	struct blockset *stored;	/* resync: the blocks that differ */
	/* What was read, a hash per piece given to the writer: for verify. */
	pthread_mutex_t rh_lock;
	struct read_hash *rh;
	size_t nrh, caprh;
	struct follow *follow;		/* &follower while it reads along */
	char volume_id[BLKTRACK_VOLUME_ID_MAX];	/* the volume's (res->volume_id: the chain's) */
	/* --file: a per-file backup (filebackup.c, doc/FILES.md) */
	const char *file;		/* the caller's o->file, or NULL */
	struct blktrack_backup_opts fo;	/* *o, with the file's volume as device */
	int file_fd;
	char file_path[PATH_MAX];	/* realpath() */
	char dev_path[64];		/* the volume under it */
	struct filemap fmap;		/* its extents at the checkpoint */
	bool has_fmap;
	struct blockset *vol_delta;	/* the volume's pending map (delta: the file's) */
	struct blockset *vol_want;	/* the volume blocks under want's written bytes */
	/* Ranges the writers named (ranges.c): added, excluded, and what this file records. */
	struct blockset *radd, *rexcl, *excluded;
	/* Writer backup stamps: the base's, and where this backup's are left. */
	char prev_writer_stamps[REPO_WRITER_STAMPS_MAX];
	char stamp_dir[PATH_MAX];
};

/* A backup set: members under one checkpoint (doc/REPOSITORY.md, "Backup sets"). */
struct bset {
	struct blktrack_ctx *ctx;
	struct backup *m;		/* m[0] leads */
	size_t n;
	char *members;			/* BLKTRACK_SET_MEMBERS: a device or file a line */
};

struct read_hash {
	uint64_t off, len, hash;
};

struct member {
	const struct repo_entry *e;
	char path[4096];
	struct bfile_header h;
	uint64_t file_size;
};

struct chain {
	struct blktrack_ctx *ctx;
	const struct blktrack_restore_opts *o;
	struct blktrack_restore_result *res;
	struct repo *r;
	struct member *m;
	size_t n;
	uint64_t total, before;		/* stream bytes: all members, done ones */
	struct blockset *excluded;	/* blocks excluded by a member, held by none after */
};

/* Called for each verified record of a member; non-zero stops the read. */
typedef int (*record_fn)(struct chain *c, struct member *m, const struct bfile_record *rec,
			 void *data);

/* merge.c: members[0..n) of one chain folded into one file for the last. */
struct fold {
	struct blktrack_ctx *ctx;
	struct repo *r;
	const struct repo_entry *target;	/* members[n - 1] */
	const struct repo_entry **members;	/* oldest first */
	size_t n;
	enum repo_type type;		/* REPO_FULL when members[0] is a full */
	uint64_t read, written;		/* stream bytes */
};
int fold_write(struct fold *f, struct repo_file *out);

/* backup.c: the phases of one member, in the order backupset.c runs them */
int backup_check_options(struct backup *b);
int backup_identify(struct backup *b);
int backup_lock(struct backup *b);
int backup_open(struct backup *b);
int backup_prepare(struct backup *b);
int backup_freeze(struct backup *b);
int backup_fs_freeze(struct backup *b);
int backup_checkpointed(struct backup *b);
bool backup_thaw_early(struct backup *b);
int backup_compose(struct backup *b);
int backup_begin(struct backup *b);
int backup_write(struct backup *b);
int backup_verify(struct backup *b);
int backup_checked(struct backup *b);
int backup_commit_kernel(struct backup *b);
void backup_unwind(struct backup *b);
void backup_release(struct backup *b);

/* common.c */
double now(void);
void crash_at(const char *point);
void progress(blktrack_progress_fn fn, void *data, const char *what,
	      uint64_t done, uint64_t total);
int open_volume(const char *path);
int fd_size(int fd, uint64_t *size);
enum repo_type repo_type_of(enum blktrack_backup_type t);
void to_bstamp(const struct repo_stamp *s, struct bfile_stamp *b);
bool bstamp_matches(const struct bfile_stamp *b, const struct repo_stamp *s);
int read_header(struct repo *r, const char *name, struct bfile_header *h, char *msg,
		size_t len);

/* checkpoint.c */
int checkpoint(struct bset *s);
int same_media(struct backup *b, dev_t dev, uint64_t diskseq,
	       struct blktrack_backup_result *res);
int flush_device(struct backup *b);
int exact_checkpoint(struct backup *b, const struct blktrack_status *st,
		     struct blktrack_backup_result *res);

/* freeze.c */
extern const char *const type_env[];
void stamp_str(const uint8_t gen[16], uint64_t epoch, char *out, size_t len);
int wevent(struct backup *b, struct blktrack_backup_result *res, const char *event,
	   bool stop);
int thaw(struct backup *b, struct blktrack_backup_result *res);
void writer_stamps_prev(struct backup *b);
int writer_dir(struct backup *b);
int backup_complete(struct backup *b, struct blktrack_backup_result *res);
void writer_stamps_clean(struct backup *b);

/* snapshot.c */
void snap_lost(struct backup *b);
int snap_release_rest(struct backup *b, const struct blockset *want);
int snap_read(void *rdata, void *buf, size_t len, uint64_t off);
void snap_figures(struct backup *b, struct blktrack_backup_result *res);

/* hashes.c */
void hash_read(struct backup *b, uint64_t off, const char *buf, size_t len);
int hash_finish(struct backup *b, struct repo *r, uint64_t id, bool *kept);
int hash_open_parent(struct backup *b, struct repo *r, uint64_t base, bool check);
int hash_start(struct backup *b, struct repo *r, enum blktrack_backup_type type,
	       uint64_t base, uint64_t id);
int resync_piece(void *data, uint64_t off, const void *piece, size_t len);

/* readvol.c */
int write_piece(struct backup *b, uint64_t off, const void *data, size_t len);
void piece_done(struct backup *b, const char *what, size_t len);
int read_volume(struct backup *b, const struct blockset *want, bool resync);
int active_set(struct backup *b, dev_t dev, struct blockset **out);
int rewritten_during_read(struct backup *b, dev_t dev, const struct blockset *want,
			  uint64_t *bytes);

/* filebackup.c: the steps of a per-file backup, in the order they run */
int file_open(struct backup *b);
int file_chain(struct backup *b);
int file_sync(struct backup *b);
int file_map(struct backup *b);
int file_delta(struct backup *b);
int file_want(struct backup *b);
int file_write_map(struct backup *b);
int file_read(void *rdata, void *buf, size_t len, uint64_t off);
int file_moved_during_read(struct backup *b, uint64_t *bytes);

/* ranges.c: what the writers add to and exclude from a set's members */
int post_snapshot(struct bset *s);
int ranges_apply(struct backup *b);
int ranges_write(struct backup *b);
int excl_record(struct chain *c, const struct member *m, const struct bfile_record *rec,
		struct blockset **into);

/* follow.c */
void follow_wake(struct follow *f, bool end);
int follow_start(struct follow *f, struct backup *b, struct repo_file *file);
int follow_stop(struct follow *f);

/* source_check.c */
int verify_against_source(struct backup *b, dev_t dev, const char *path);

/* chain.c */
int chain_fail(struct chain *c, enum blktrack_failure f, const char *file,
	       int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int chain_open(struct chain *c);
void chain_close(struct chain *c);
const char *member_foreign(const struct bfile_header *h, const struct repo_entry *e,
			   const struct bfile_header *prev);
int member_read(struct chain *c, size_t k, record_fn fn, void *data);
int chain_check(struct chain *c);

#endif /* BLKTRACK_REQUESTER_H */

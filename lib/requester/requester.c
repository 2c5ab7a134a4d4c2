// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the requester. backup, restore and verify on top of the
 * kernel's checkpoints (ioctl.c), the repository (repo.c, blockset.c) and
 * the backup stream format (bfile.c).
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
 *
 * Section banners: common helpers / backup / reading a chain / restore /
 * verify / the repository as JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include <xxhash.h>

#include "kernel/kernel.h"
#include "format/bfile.h"
#include "format/blockhash.h"
#include "format/blockset.h"
#include "core/fdio.h"
#include "core/readq.h"
#include "repo/repo.h"
#include "requester/target.h"
#include "requester/vollock.h"
#include "requester/writers.h"

#define CHUNK_BYTES	(1U << 20)	/* volume bytes per read */
#define ALIGN		4096U
#define READ_DEPTH	8		/* reads in flight: readq.h */

/* ---- common helpers ----------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void crash_at(const char *point)
{
	const char *want = test_hook("BLKTRACK_TEST_CRASH_AT");

	if (want && !strcmp(want, point)) {
		fprintf(stderr, "libblktrack: BLKTRACK_TEST_CRASH_AT=%s: killing myself\n", point);
		kill(getpid(), SIGKILL);
		_exit(137);
	}
}

static void progress(blktrack_progress_fn fn, void *data, const char *what,
		     uint64_t done, uint64_t total)
{
	if (fn)
		fn(data, what, done, total);
}

/* Open a volume for reading: O_DIRECT, so that no stale page of the block
 * device's cache hides what a filesystem wrote; buffered if refused. */
static int open_volume(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd;
}

static int fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	*size = st.st_size;
	return 0;
}

static enum repo_type repo_type_of(enum blktrack_backup_type t)
{
	return (enum repo_type)(t - 1);
}

static void to_bstamp(const struct repo_stamp *s, struct bfile_stamp *b)
{
	memcpy(b->generation, s->generation, 16);
	b->epoch = s->epoch;
	b->size = s->size;
	b->block_size = s->block_size;
}

static bool bstamp_matches(const struct bfile_stamp *b, const struct repo_stamp *s)
{
	return !memcmp(b->generation, s->generation, 16) && b->epoch == s->epoch &&
	       b->size == s->size && b->block_size == s->block_size;
}

/* Read the header of a repository backup file (the parent's id). */
static int read_header(const char *path, struct bfile_header *h, char *msg, size_t len)
{
	struct bfile_reader *rd;
	int fd, err;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(-err));
		return err;
	}
	err = bfile_reader_open(fd, h, &rd);
	if (err < 0)
		snprintf(msg, len, "%s: %s", path, rd ? bfile_reader_error(rd) : strerror(-err));
	bfile_reader_free(rd);
	close(fd);
	return err;
}

/* ---- backup ------------------------------------------------------------- */

struct backup {
	struct blktrack_ctx *ctx;
	const struct blktrack_backup_opts *o;
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
	int hp_fd, hw_fd;
	uint64_t hnext;			/* the next block hw wants */
	struct blockset *stored;	/* resync: the blocks that differ */
	/* What was read, a hash per piece given to the writer: for verify. */
	pthread_mutex_t rh_lock;
	struct read_hash *rh;
	size_t nrh, caprh;
	struct follow *follow;		/* the verify writer, reading along */
};

struct read_hash {
	uint64_t off, len, hash;
};

static void follow_wake(struct follow *f, bool end);

/* Remember the hash of @len bytes read at @off, in the order written. */
static int note_read(struct backup *b, uint64_t off, const void *data, size_t len)
{
	struct read_hash h = { off, len, XXH3_64bits(data, len) };
	int err = 0;

	/* Test hook (tests/vm/0960): what was read and what is written disagree. */
	if (!b->nrh && test_hook("BLKTRACK_TEST_VERIFY_MISMATCH"))
		h.hash ^= 1;
	pthread_mutex_lock(&b->rh_lock);	/* the verify thread reads rh */
	if (b->nrh == b->caprh) {
		size_t cap = b->caprh ? 2 * b->caprh : 256;
		struct read_hash *n = realloc(b->rh, cap * sizeof(*n));

		if (n) {
			b->rh = n;
			b->caprh = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (!err)
		b->rh[b->nrh++] = h;
	pthread_mutex_unlock(&b->rh_lock);
	return err;
}

/* ---- the snapshot (--snapshot, doc/WRITERS.md) --------------------------- */

/*
 * The checkpoint, with a copy-before-write snapshot of the whole volume when
 * the mode asks for one and the module can (BLKTRACK_FEATURE_SNAPSHOT).
 */
static int checkpoint(struct backup *b, struct blktrack_backup_result *res, dev_t dev,
		      struct blktrack_ckpt *ck)
{
	enum blktrack_snapshot_mode mode = b->o->snapshot;
	uint64_t features = 0;
	int err;

	b->dev = dev;
	res->snapshot = mode == BLKTRACK_SNAPSHOT_NONE ? "none" : "freeze";
	if (mode == BLKTRACK_SNAPSHOT_AUTO || mode == BLKTRACK_SNAPSHOT_COW) {
		err = blktrack_version(b->ctx, NULL, &features);
		if (err < 0)
			return err;
		if (!(features & BLKTRACK_FEATURE_SNAPSHOT) && mode == BLKTRACK_SNAPSHOT_COW)
			return blktrack_set_error(b->ctx, -EOPNOTSUPP, "--snapshot=cow: the "
						  "module has no snapshots (an older blktrack.ko)");
	}
	if (features & BLKTRACK_FEATURE_SNAPSHOT) {
		/* The whole volume; what the backup will not read is released. */
		err = blktrack_checkpoint_snap(b->ctx, dev, BLKTRACK_SNAP_ALL,
					       b->o->snapshot_store, b->store_fd, ck);
		if (b->store_fd >= 0) {
			close(b->store_fd);	/* the module has its own reference */
			b->store_fd = -1;
		}
		if (!err) {
			b->cow = true;
			b->stamp = ck->stamp;
			res->snapshot = "cow";
			res->snapshot_store = b->o->snapshot_store_path ?: "memory";
			return 0;
		}
		if (err == -EOPNOTSUPP && mode == BLKTRACK_SNAPSHOT_COW) {
			char why[512];	/* the context's message, overwritten below */

			snprintf(why, sizeof(why), "%s", blktrack_get_error(b->ctx));
			return blktrack_set_error(b->ctx, err, "--snapshot=cow: %s; --snapshot=auto "
						  "would hold the freeze through the read instead",
						  why);
		}
		if (err != -EOPNOTSUPP)
			return err;
		info(b->ctx, "%s: holding the freeze through the read instead",
		     blktrack_get_error(b->ctx));
	}
	return blktrack_checkpoint(b->ctx, &dev, 1, ck);
}

/* The message for a snapshot the kernel lost (-EOVERFLOW from SNAP_READ). */
static void snap_lost(struct backup *b)
{
	snprintf(b->msg, sizeof(b->msg), "%s: the snapshot was lost (its store filled up, or "
		 "a copy failed: the kernel log says which); give a bigger --snapshot-store "
		 "or use --snapshot=freeze", b->o->device);
}

/* Release the snapshot's blocks from b->released up to byte @end. */
static int snap_release_to(struct backup *b, uint64_t end)
{
	uint64_t at = b->released;
	int err = 0;

	if (end > b->size)
		end = b->size;
	if (end > at)
		err = blktrack_snap_read(b->ctx, b->dev, &b->stamp, at, end - at, NULL,
					 BLKTRACK_SNAP_READ_RELEASE);
	return err;
}

/* blockset_extent_fn: release the gap before an extent the backup reads. */
static int snap_release_gap(void *data, uint64_t first, uint64_t count)
{
	struct backup *b = data;
	int err = snap_release_to(b, first * b->block_size);

	b->released = (first + count) * b->block_size;
	return err;
}

/* cow: release the blocks the backup will not read (all but @want). */
static int snap_release_rest(struct backup *b, const struct blockset *want)
{
	int err;

	b->released = 0;
	err = blockset_for_each_extent(want, snap_release_gap, b);
	if (!err)
		err = snap_release_to(b, b->size);
	if (err == -EOVERFLOW)
		snap_lost(b);
	else if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: releasing the snapshot's unread blocks: "
			 "%s", b->o->device, strerror(-err));
	return err;
}

/* readq_read_fn: a piece of the volume as it was at the checkpoint. */
static int snap_read(void *rdata, void *buf, size_t len, uint64_t off)
{
	struct backup *b = rdata;

	return blktrack_snap_read(b->ctx, b->dev, &b->stamp, off, len, buf, 0);
}

/* cow: what the snapshot cost, for the summary. */
static void snap_figures(struct backup *b, struct blktrack_backup_result *res)
{
	struct blktrack_snap_status st;

	if (b->cow && !blktrack_snap_status(b->ctx, b->dev, &st)) {
		res->snapshot_copied = st.copied_blocks;
		res->snapshot_held = st.held_writes;
	}
}

/* ---- block hashes, for a later resync (doc/REPOSITORY.md) ---------------- */

/*
 * The parent's hash of the next block *@have is false past the parent's
 * end (a grown volume).
 */
static int hash_next(struct backup *b, uint64_t *old, bool *have)
{
	int err = b->hp ? blockhash_get(b->hp, old) : -ENODATA;

	*have = !err;
	return err == -ENODATA ? 0 : err;
}

/* Carry the parent's hashes of the blocks before @blk, which were not read. */
static int hash_carry(struct backup *b, uint64_t blk)
{
	uint64_t h;
	bool have;
	int err;

	for (; b->hnext < blk; b->hnext++) {
		err = hash_next(b, &h, &have);
		if (!err && !have)
			err = -EBADMSG;		/* unread and unknown: no hashes */
		if (!err)
			err = blockhash_put(b->hw, h);
		if (err)
			return err;
	}
	return 0;
}

/* Stop keeping hashes for this backup: a later resync takes a full. */
static void hash_drop(struct backup *b, const char *why, int err)
{
	warning(b->ctx, "no block hashes for this backup (%s: %s): a resync based on it "
		"will be a full backup", why, strerror(-err));
	blockhash_writer_abort(b->hw);
	b->hw = NULL;
	if (b->hw_fd >= 0)
		close(b->hw_fd);
	b->hw_fd = -1;
}

/* Record the hashes of the blocks read at @off (block-aligned), @len bytes. */
static void hash_read(struct backup *b, uint64_t off, const char *buf, size_t len)
{
	uint64_t blk = off / b->block_size, h;
	size_t p;
	bool have;
	int err;

	if (!b->hw)
		return;
	err = hash_carry(b, blk);
	for (p = 0; !err && p < len; p += b->block_size, blk++, b->hnext++) {
		size_t n = len - p < b->block_size ? len - p : b->block_size;

		err = hash_next(b, &h, &have);
		if (!err)
			err = blockhash_put(b->hw, blockhash_block(buf + p, n));
	}
	if (err)
		hash_drop(b, "hashing", err);
}

/*
 * Complete and install this backup's hashes (*@kept) after checking the
 * parent's digest, which a resync cannot do without: it acted on them.
 */
static int hash_finish(struct backup *b, struct repo *r, uint64_t id, bool *kept)
{
	int err;

	*kept = false;
	if (!b->hw)
		return 0;
	err = hash_carry(b, (b->size + b->block_size - 1) / b->block_size);
	if (!err && b->hp) {
		err = blockhash_reader_finish(b->hp);
		b->hp = NULL;
	}
	if (err && b->stored) {
		snprintf(b->msg, sizeof(b->msg), "the block hashes of the resync's parent "
			 "changed during the read (%s): rejected", strerror(-err));
		return err;
	}
	if (err) {
		hash_drop(b, "the parent's hashes", err);
		return 0;
	}
	err = blockhash_writer_finish(b->hw);
	b->hw = NULL;
	if (!err)
		err = repo_hashes_install(r, id, b->hw_fd);
	else
		close(b->hw_fd);
	b->hw_fd = -1;
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s", repo_error(r));
	*kept = !err;
	return err;
}

/*
 * Open the hashes of @base (the parent) for reading, checked whole first
 * when a resync is going to act on them. -ENOENT: it has none; -EBADMSG:
 * corrupt; -ESTALE: another block size.
 */
static int hash_open_parent(struct backup *b, struct repo *r, uint64_t base, bool check)
{
	uint64_t size;
	uint32_t bs;
	int err;

	err = repo_hashes_open(r, base, &b->hp_fd);
	if (!err && check)
		err = blockhash_check(b->hp_fd, &size, &bs);
	if (!err)
		err = blockhash_reader_open(b->hp_fd, &b->hp);
	/* Another size is fine: a grown tail is read, a shrunk one skipped. */
	if (!err && blockhash_reader_block_size(b->hp) != b->block_size) {
		blockhash_reader_free(b->hp);
		b->hp = NULL;
		err = -ESTALE;
	}
	return err;
}

/*
 * Start this backup's hashes when it can be a resync's base: a full reads
 * every block; an incremental carries its parent's hashes over the blocks
 * it does not read (none if the parent has none); a resync's parent hashes
 * are open already.
 */
static int hash_start(struct backup *b, struct repo *r, enum blktrack_backup_type type,
		      uint64_t base, uint64_t id)
{
	int err;

	if (type != BLKTRACK_BACKUP_FULL && type != BLKTRACK_BACKUP_INCREMENTAL &&
	    type != BLKTRACK_BACKUP_RESYNC)
		return 0;
	if (type == BLKTRACK_BACKUP_INCREMENTAL && hash_open_parent(b, r, base, false))
		return 0;
	err = repo_hashes_create(r, id, &b->hw_fd);
	if (!err)
		err = blockhash_writer_open(b->hw_fd, b->size, b->block_size, &b->hw);
	if (err && type != BLKTRACK_BACKUP_RESYNC) {
		hash_drop(b, "creating the hash file", err);
		return 0;
	}
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s", repo_error(r));
	return err;
}

/*
 * Write @len bytes read at @off to the stream, with the hash the verify
 * writer checks them against, and tell the verify writer there is more.
 */
static int write_piece(struct backup *b, uint64_t off, const void *data, size_t len)
{
	int err = note_read(b, off, data, len);

	if (!err)
		err = bfile_write_data(b->w, off, data, len);
	if (b->follow)
		follow_wake(b->follow, false);
	if (err)
		snprintf(b->msg, sizeof(b->msg), "writing the backup: %s",
			 bfile_writer_error(b->w));
	return err;
}

/* A piece of @len volume bytes is read and handled: progress. */
static void piece_done(struct backup *b, const char *what, size_t len)
{
	b->done += len;
	progress(b->o->progress, b->o->progress_data, what, b->done, b->total);
	crash_at("during-write");
}

/* Store the run of differing blocks at @off, @len bytes, from @data. */
static int resync_store(struct backup *b, uint64_t off, const char *data, size_t len)
{
	int err;

	if (!len)
		return 0;
	err = write_piece(b, off, data, len);
	if (err)
		return err;
	return blockset_add_range(b->stored, off / b->block_size,
				  (len + b->block_size - 1) / b->block_size);
}

/*
 * A resync's piece: store the blocks whose hash differs from the parent's
 * (the parent's hashes were checked whole), keep every hash.
 */
static int resync_piece(void *data, uint64_t off, const void *piece, size_t len)
{
	struct backup *b = data;
	const char *buf = piece;
	size_t p, n, run = 0, run_len = 0;
	uint64_t old;
	bool have;
	int err;

	for (p = 0; p < len; p += n, b->hnext++) {
		uint64_t h;

		n = len - p < b->block_size ? len - p : b->block_size;
		h = blockhash_block(buf + p, n);
		err = hash_next(b, &old, &have);
		if (!err)
			err = blockhash_put(b->hw, h);
		if (err) {
			snprintf(b->msg, sizeof(b->msg), "block hashes: %s", strerror(-err));
			return err;
		}
		if (!have || old != h) {
			if (!run_len)
				run = p;
			run_len += n;
			continue;
		}
		err = resync_store(b, off + run, buf + run, run_len);
		if (err)
			return err;
		run_len = 0;
	}
	err = resync_store(b, off + run, buf + run, run_len);
	if (err)
		return err;
	piece_done(b, "resync", len);
	return 0;
}

/* A backup's piece, read at @off: its hashes, then the stream. */
static int store_piece(void *data, uint64_t off, const void *buf, size_t len)
{
	struct backup *b = data;
	int err;

	hash_read(b, off, buf, len);
	err = write_piece(b, off, buf, len);
	if (err)
		return err;
	piece_done(b, "backup", len);
	return 0;
}

/* Queue the reads of blocks [@first, @first + @count), in pieces of buf_len. */
static int queue_extent(void *data, uint64_t first, uint64_t count)
{
	struct backup *b = data;
	uint64_t off = first * b->block_size;
	uint64_t end = (first + count) * b->block_size;
	int err = 0;

	if (end > b->size)
		end = b->size;
	for (; !err && off < end; off += b->buf_len)
		err = readq_add(b->rq, off, end - off < b->buf_len ? end - off : b->buf_len);
	return err;
}

/*
 * Read the blocks of @want (a resync: the whole volume) with READ_DEPTH
 * reads in flight, and store them in order.
 */
static int read_volume(struct backup *b, const struct blockset *want, bool resync)
{
	uint64_t at;
	int err;

	if (b->cow)
		err = readq_open_fn(snap_read, b, b->buf_len, READ_DEPTH,
				    resync ? resync_piece : store_piece, b, &b->rq);
	else
		err = readq_open(b->vol_fd, b->buf_len, READ_DEPTH,
				 resync ? resync_piece : store_piece, b, &b->rq);
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "starting the reads: %s", strerror(-err));
		return err;
	}
	if (resync)
		err = queue_extent(b, 0, (b->size + b->block_size - 1) / b->block_size);
	else
		err = blockset_for_each_extent(want, queue_extent, b);
	if (!err)
		err = readq_finish(b->rq);
	at = readq_failed_at(b->rq);
	if (at != UINT64_MAX && b->cow && err == -EOVERFLOW)
		snap_lost(b);
	else if (at != UINT64_MAX)
		snprintf(b->msg, sizeof(b->msg), "%s: read at %" PRIu64 ": %s",
			 b->o->device, at, strerror(-err));
	readq_free(b->rq);
	b->rq = NULL;
	return err;
}

static const char *const type_env[] = {
	[BLKTRACK_BACKUP_FULL] = "full",
	[BLKTRACK_BACKUP_INCREMENTAL] = "incremental",
	[BLKTRACK_BACKUP_DIFFERENTIAL] = "differential",
	[BLKTRACK_BACKUP_COPY] = "copy",
	[BLKTRACK_BACKUP_RESYNC] = "resync",
};

static void stamp_str(const uint8_t gen[16], uint64_t epoch, char *out, size_t len)
{
	char g[BLKTRACK_UUID_STR_LEN];

	blktrack_uuid_unparse(gen, g);
	snprintf(out, len, "%s:%" PRIu64, g, epoch);
}

/* Deliver @event to the external writers; a failure is the writers'. */
static int wevent(struct backup *b, struct blktrack_backup_result *res, const char *event,
		  bool stop)
{
	int err;

	b->events = true;
	err = writers_event(b->wr, event, &b->env, stop, b->msg, sizeof(b->msg));
	if (err)
		res->failure = BLKTRACK_FAIL_WRITER;
	return err;
}

/* Thaw what is frozen: the filesystem first, then the external writers. */
/*
 * The disk must still hold the media the checkpoint saw (STATUS's diskseq):
 * new media under the read (a loop device given another file, a changed
 * disc) means the backup read other content than its map describes.
 */
static int same_media(struct backup *b, dev_t dev, uint64_t diskseq,
		      struct blktrack_backup_result *res)
{
	struct blktrack_status st;
	int err = blktrack_status(b->ctx, dev, &st);

	if (err < 0)
		return err;
	if (st.diskseq == diskseq)
		return 0;
	res->failure = BLKTRACK_FAIL_INVALID;
	snprintf(b->msg, sizeof(b->msg), "%s: the disk's media changed during the backup "
		 "(%s): nothing is kept; the next backup resyncs", b->o->device,
		 blktrack_reason_name(st.reason));
	return -ESTALE;
}

/*
 * Buffered writes to the device itself (an application writing a raw volume,
 * no filesystem to freeze) wait in the device's page cache, where no probe
 * sees them until writeback: write them out before the checkpoint, as
 * FIFREEZE does for a filesystem, or the backup misses what was written
 * before it (tests/vm/0957-buffered.sh; the 0990 wrong restore).
 */
static int flush_device(struct backup *b)
{
	int fd = open(b->o->device, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0 || fsync(fd))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		snprintf(b->msg, sizeof(b->msg), "%s: cannot write out its page cache: %s",
			 b->o->device, strerror(-err));
	return err;
}

/*
 * A volume some of whose writes complete where the module cannot see them
 * (STATUS UNCOVERED) has an exact checkpoint only with its writes quiesced:
 * a frozen filesystem. Otherwise a write in flight at the checkpoint could
 * be in no map: refuse rather than read fuzzily.
 */
static int exact_checkpoint(struct backup *b, const struct blktrack_status *st,
			    struct blktrack_backup_result *res)
{
	if (!(st->flags & BLKTRACK_STATUS_UNCOVERED) || b->fs_fd >= 0 ||
	    !strcmp(res->freeze, "external"))
		return 0;
	snprintf(b->msg, sizeof(b->msg), "%s: some writes complete on disks below that the "
		 "module cannot map back (completions: partial) and no freeze is held: a write "
		 "in flight at the checkpoint could be missed; back it up with its filesystem "
		 "mounted (frozen), or freeze it before (fsfreeze)", b->o->device);
	return -EXDEV;
}

/* Tests: BLKTRACK_TEST_FITHAW_FAIL=1 fails FITHAW (and leaves the filesystem frozen). */
static int fs_thaw_or_test(int fd)
{
	if (test_hook("BLKTRACK_TEST_FITHAW_FAIL")) {
		close(fd);
		return -EIO;
	}
	return fs_thaw(fd);
}

/*
 * A filesystem left frozen stops every writer on it: the message says so
 * and how to thaw it, at LOG_CRIT (shown even with -q), and the call fails.
 */
static int thaw(struct backup *b, struct blktrack_backup_result *res)
{
	int err = 0;

	if (b->fs_fd >= 0) {
		err = fs_thaw_or_test(b->fs_fd);
		b->fs_fd = -1;
		res->freeze_seconds = now() - b->frozen_at;
		if (err) {
			snprintf(b->msg, sizeof(b->msg),
				 "writer filesystem: FITHAW %s: %s: the filesystem may be "
				 "left FROZEN (thaw it with fsfreeze -u)",
				 res->mount_point, strerror(-err));
			res->failure = BLKTRACK_FAIL_WRITER;
			crit(b->ctx, "%s", b->msg);
		}
	}
	if (b->freeze_sent) {
		b->freeze_sent = false;
		if (err) {
			char scratch[256];

			writers_event(b->wr, "thaw", &b->env, false, scratch, sizeof(scratch));
		} else {
			err = wevent(b, res, "thaw", false);
		}
	}
	return err;
}

/* The active map as a block set: what was written since the checkpoint. */
static int active_set(struct backup *b, dev_t dev, struct blockset **out)
{
	struct blktrack_extent *ext = NULL;
	size_t n = 0;
	int err;

	err = blktrack_read_extents(b->ctx, dev, BLKTRACK_READ_ACTIVE, NULL, &ext, &n);
	if (err < 0) {
		snprintf(b->msg, sizeof(b->msg), "reading the active map: %s",
			 blktrack_get_error(b->ctx));
		return err;
	}
	err = blockset_from_extents(ext, n, b->block_size, out);
	free(ext);
	return err;
}

/* Bytes of @want the active map shows rewritten (read after the read). */
static int rewritten_during_read(struct backup *b, dev_t dev, const struct blockset *want,
				 uint64_t *bytes)
{
	struct blockset *act = NULL, *outside = NULL, *both = NULL;
	int err;

	err = active_set(b, dev, &act);
	if (!err)
		err = blockset_copy(want, &outside);
	if (!err)
		err = blockset_andnot(outside, act);
	if (!err)
		err = blockset_copy(want, &both);
	if (!err)
		err = blockset_andnot(both, outside);
	if (!err) {
		*bytes = blockset_cardinality(both) * b->block_size;
		if (*bytes > b->size)
			*bytes = b->size;
	}
	blockset_free(act);
	blockset_free(outside);
	blockset_free(both);
	return err;
}

static bool all_zero(const char *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

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
	int fd;				/* the backup file, its own */
	uint64_t pos;
	int err;
	char msg[512];
};

/* The writer: more of the file is written (@end: all of it). */
static void follow_wake(struct follow *f, bool end)
{
	if (!f->started)
		return;
	pthread_mutex_lock(&f->lock);
	f->gen++;
	f->end |= end;
	pthread_cond_signal(&f->more);
	pthread_mutex_unlock(&f->lock);
}

/* bfile_read_fn: read(2) on the file being written, waiting at its end. */
static ssize_t follow_read(void *data, void *buf, size_t len)
{
	struct follow *f = data;

	for (;;) {
		uint64_t gen;
		bool end;
		ssize_t n;

		pthread_mutex_lock(&f->lock);
		gen = f->gen;
		end = f->end;
		pthread_mutex_unlock(&f->lock);
		n = pread(f->fd, buf, len, f->pos);
		if (n < 0)
			return -errno;
		if (n > 0 || end) {
			f->pos += n;
			return n;
		}
		pthread_mutex_lock(&f->lock);
		while (f->gen == gen && !f->end)
			pthread_cond_wait(&f->more, &f->lock);
		pthread_mutex_unlock(&f->lock);
	}
}

/* The hash of piece @k as the backup read it; false past the last one. */
static bool read_hash_get(struct backup *b, size_t k, struct read_hash *out)
{
	bool have;

	pthread_mutex_lock(&b->rh_lock);
	have = k < b->nrh;
	if (have)
		*out = b->rh[k];
	pthread_mutex_unlock(&b->rh_lock);
	return have;
}

/* Check the records of @rd against b->rh; -EBADE: they differ. */
static int follow_check(struct follow *f, struct bfile_reader *rd)
{
	static const char zeros[4096];
	struct backup *b = f->b;
	struct bfile_record rec;
	struct read_hash p = { 0 };
	XXH3_state_t *xx = XXH3_createState();
	uint64_t fill = 0;		/* bytes of piece k hashed so far */
	size_t k = 0;
	bool have = false;
	int err = xx ? 0 : -ENOMEM;

	if (!err)
		XXH3_64bits_reset(xx);
	while (!err && (err = bfile_read_record(rd, &rec)) > 0) {
		uint64_t done = 0;

		err = 0;
		while (!err && done < rec.length) {
			uint64_t n = rec.length - done;

			if (!fill)
				have = read_hash_get(b, k, &p);
			/* Each record lies inside the pieces written, in order. */
			if (!have || rec.offset + done != p.off + fill) {
				err = -EBADE;
				break;
			}
			if (n > p.len - fill)
				n = p.len - fill;
			if (rec.data) {
				XXH3_64bits_update(xx, (const char *)rec.data + done, n);
			} else {
				uint64_t z;

				for (z = 0; z < n; z += sizeof(zeros))
					XXH3_64bits_update(xx, zeros, n - z < sizeof(zeros) ?
							   n - z : sizeof(zeros));
			}
			done += n;
			fill += n;
			if (fill == p.len) {
				if (XXH3_64bits_digest(xx) != p.hash)
					err = -EBADE;
				XXH3_64bits_reset(xx);
				fill = 0;
				k++;
			}
		}
	}
	/* At END the writer has finished: every piece is noted. */
	if (!err && (read_hash_get(b, k, &p) || fill))
		err = -EBADE;
	if (err == -EBADE)
		snprintf(f->msg, sizeof(f->msg), "does not hold what was read from %s at "
			 "offset %" PRIu64, b->o->device, have ? p.off : b->size);
	else if (err)
		snprintf(f->msg, sizeof(f->msg), "%s",
			 err != -ENOMEM ? bfile_reader_error(rd) : strerror(-err));
	XXH3_freeState(xx);
	return err;
}

static void *follow_main(void *data)
{
	struct follow *f = data;
	struct bfile_reader *rd = NULL;
	struct bfile_header h;

	f->err = bfile_reader_open_fn(follow_read, f, &h, &rd);
	if (f->err)
		snprintf(f->msg, sizeof(f->msg), "%s",
			 rd ? bfile_reader_error(rd) : strerror(-f->err));
	else
		f->err = follow_check(f, rd);
	bfile_reader_free(rd);
	return NULL;
}

/* Start verifying the backup file @fd (being written) in a thread. */
static int follow_start(struct follow *f, struct backup *b, int fd)
{
	int err;

	f->b = b;
	f->fd = dup(fd);
	if (f->fd < 0)
		return -errno;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->more, NULL);
	err = pthread_create(&f->thread, NULL, follow_main, f);
	if (err) {
		close(f->fd);
		return -err;
	}
	f->started = true;
	b->follow = f;
	return 0;
}

/* Wait for the verify (the file is complete, or being given up): its result. */
static int follow_stop(struct follow *f)
{
	if (!f->started)
		return 0;
	follow_wake(f, true);
	pthread_join(f->thread, NULL);
	f->started = false;
	f->b->follow = NULL;
	close(f->fd);
	pthread_cond_destroy(&f->more);
	pthread_mutex_destroy(&f->lock);
	return f->err;
}

static int verify_against_source(struct backup *b, dev_t dev, const char *path)
{
	struct blockset *bad = NULL, *act = NULL;
	struct bfile_reader *rd = NULL;
	struct bfile_header h;
	struct bfile_record rec;
	uint64_t first_bad = 0, nbad;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		snprintf(b->msg, sizeof(b->msg), "writer verify: %s: %s", path, strerror(-err));
		return err;
	}
	err = blockset_new(&bad);
	if (!err)
		err = bfile_reader_open(fd, &h, &rd);
	while (!err && (err = bfile_read_record(rd, &rec)) > 0) {
		uint64_t off = 0;

		err = 0;
		while (!err && off < rec.length) {
			size_t len = rec.length - off < b->buf_len ? rec.length - off : b->buf_len;
			const char *want = rec.data ? (const char *)rec.data + off : NULL;
			size_t i;

			err = fd_pread_all(b->vol_fd, b->buf, len, rec.offset + off);
			for (i = 0; !err && i < len; i += b->block_size) {
				size_t l = len - i < b->block_size ? len - i : b->block_size;
				const char *got = (const char *)b->buf + i;

				if (want ? !memcmp(got, want + i, l) : all_zero(got, l))
					continue;
				if (!blockset_cardinality(bad))
					first_bad = rec.offset + off + i;
				err = blockset_add_range(bad, (rec.offset + off + i) /
							 b->block_size, 1);
			}
			off += len;
		}
	}
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "writer verify: %s: %s", path,
			 rd && err != -ENOMEM ? bfile_reader_error(rd) : strerror(-err));
		goto out;
	}
	if (blockset_cardinality(bad)) {
		err = active_set(b, dev, &act);
		if (!err)
			err = blockset_andnot(bad, act);
		if (err)
			goto out;
	}
	nbad = blockset_cardinality(bad);
	if (nbad) {
		err = -EBADE;
		snprintf(b->msg, sizeof(b->msg), "writer verify: %s differs from %s in %" PRIu64
			 " block(s) not rewritten since the checkpoint (the first at or after "
			 "offset %" PRIu64 "): rejected", path, b->o->device, nbad, first_bad);
	}
out:
	bfile_reader_free(rd);
	blockset_free(bad);
	blockset_free(act);
	close(fd);
	return err;
}

static int whole_volume(uint64_t size, uint32_t bs, struct blockset **out)
{
	int err = blockset_new(out);

	if (!err)
		err = blockset_add_range(*out, 0, size / bs + !!(size % bs));
	return err;
}

/*
 * The volume id a repository keeps: "TYPE:ID". A device number is valid for
 * this boot only (two equal disks may swap numbers at the next): it carries
 * the boot id, so that after a reboot the volume is a new one, never the
 * continuation of whichever disk had its number before.
 */
static int persistent_volume_id(const struct blktrack_volume_id *vid, char *out,
				size_t len)
{
	char boot[64] = "", *p, *q;
	FILE *f;
	int n;

	if (blktrack_volume_id_stable(vid)) {
		n = snprintf(out, len, "%s:%s", vid->id_type, vid->id);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return -errno;
	if (!fgets(boot, sizeof(boot), f))
		boot[0] = 0;
	fclose(f);
	for (p = q = boot; *p; p++)	/* the hex digits, without dashes */
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
			*q++ = *p;
	*q = 0;
	if (q - boot < 12)
		return -EIO;
	n = snprintf(out, len, "%s:%s@boot-%.12s", vid->id_type, vid->id, boot);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

BLKTRACK_EXPORT int blktrack_backup(struct blktrack_ctx *ctx,
				    const struct blktrack_backup_opts *o,
				    struct blktrack_backup_result *res)
{
	struct backup b = { .ctx = ctx, .o = o, .vol_fd = -1, .fs_fd = -1, .store_fd = -1,
			    .hp_fd = -1, .hw_fd = -1, .rh_lock = PTHREAD_MUTEX_INITIALIZER };
	struct follow verify = { 0 };
	struct blockset *delta = NULL, *want = NULL;
	struct blktrack_extent *ext = NULL;
	const struct repo_entry *parent = NULL;
	struct repo *r = NULL;
	struct blktrack_volume_id vid;
	struct blktrack_status st;
	struct blktrack_ckpt ck;
	struct repo_stamp rs;
	struct repo_entry ent;
	struct bfile_header h;
	struct bfile_stats stats;
	enum blktrack_backup_type type = o->type;
	bool streaming = o->output_fd > 0, checkpointed = false, committed = false;
	uint64_t id = 0, base = 0;
	double t0 = now();
	size_t n = 0;
	dev_t dev;
	int fd = -1, lock_fd = -1, err;

	memset(res, 0, sizeof(*res));
	res->failure = BLKTRACK_FAIL_ERROR;
	res->recovery = "none";
	res->freeze = "none";
	res->snapshot = "none";
	if (!o->device || (!o->repo && !streaming) || type > BLKTRACK_BACKUP_RESYNC ||
	    o->on_invalid > BLKTRACK_ON_INVALID_RESYNC || o->snapshot > BLKTRACK_SNAPSHOT_NONE)
		return blktrack_set_error(ctx, -EINVAL, "backup: invalid options");
	if (!o->repo && type == BLKTRACK_BACKUP_AUTO)
		type = BLKTRACK_BACKUP_COPY;
	if (!o->repo && type != BLKTRACK_BACKUP_FULL && type != BLKTRACK_BACKUP_COPY)
		return blktrack_set_error(ctx, -EINVAL, "an incremental, differential or "
					  "resync needs the repository that holds its base (--repo)");

	err = blktrack_dev_from_path(o->device, &dev);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: %s", o->device, err == -ENOTBLK ?
					  "not a block device" : strerror(-err));
	err = blktrack_volume_identify(o->device, &vid);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: cannot identify the volume: %s",
					  o->device, strerror(-err));
	if (strlen(vid.id_type) + 1 + strlen(vid.id) >= BFILE_VOLUME_ID_LEN)
		return blktrack_set_error(ctx, -ENAMETOOLONG, "%s: volume id %s:%s is too long",
					  o->device, vid.id_type, vid.id);
	err = persistent_volume_id(&vid, res->volume_id, BFILE_VOLUME_ID_LEN);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: volume id %s:%s: %s", o->device,
					  vid.id_type, vid.id, strerror(-err));
	if (!blktrack_volume_id_stable(&vid))
		blktrack_log_cond(ctx, LOG_NOTICE, "%s: no stable identity (no filesystem or "
				  "partition UUID, no WWN or serial, no dm or md UUID): "
				  "the repository knows it as %s for this boot only; "
				  "after a reboot it is a new volume (a full backup)\n",
				  o->device, res->volume_id);
	err = blktrack_open(ctx);
	if (err < 0)
		return err;
	err = blktrack_status(ctx, dev, &st);
	if (err == -ENOENT)
		return blktrack_set_error(ctx, err, "%s is not attached (blktrack attach %s)",
					  o->device, o->device);
	if (err < 0)
		return err;

	/*
	 * One owner per kernel checkpoint (issue 13, point 3): from recovery
	 * to COMMIT or ABORT, no other requester of this volume (another
	 * repository, another cron job) checkpoints, recovers or commits.
	 */
	err = vollock_acquire(o->lock_dir ? o->lock_dir : VOLLOCK_DIR, res->volume_id,
			      o->lock_wait, &lock_fd, b.msg, sizeof(b.msg));
	if (err) {
		blktrack_set_error(ctx, err, "%s", b.msg);
		b.msg[0] = 0;
		return err;
	}
	/* What recovery sees must be what holds now, not before the wait. */
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		goto out_close;

	if (o->repo) {
		struct repo_kernel_state ks = { .attached = true };
		struct repo_recovery rec;

		/* Never REPO_CREATE: a repository is made by blktrack init only. */
		err = repo_open_wait(o->repo, 0, o->lock_wait < 0 ? REPO_WAIT_FOREVER :
				     (unsigned int)o->lock_wait, &r);
		if (err) {
			blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
			goto out_close;
		}
		snprintf(ks.volume_id, sizeof(ks.volume_id), "%s", res->volume_id);
		ks.pending = st.flags & BLKTRACK_STATUS_PENDING;
		ks.stamp = st.stamp;
		err = repo_recover(r, &ks, &rec);
		if (err) {
			blktrack_set_error(ctx, err, "%s", repo_error(r));
			goto out_close;
		}
		if (rec.action == REPO_ACTION_ABORT) {
			err = blktrack_abort(ctx, dev, &rec.stamp);
			res->recovery = "abort";
		} else if (rec.action == REPO_ACTION_COMMIT) {
			err = blktrack_commit(ctx, dev, &rec.stamp);
			res->recovery = "commit";
		}
		if (err < 0)
			goto out_close;
		if (rec.action != REPO_ACTION_NONE) {
			warning(ctx, "recovery: %s of the pending checkpoint, %u entries "
				"dropped", res->recovery, rec.dropped);
			err = blktrack_status(ctx, dev, &st);
			if (err < 0)
				goto out_close;
		}
		if (type == BLKTRACK_BACKUP_AUTO)
			type = repo_base(r, REPO_INCREMENTAL, res->volume_id, &base) ?
			       BLKTRACK_BACKUP_FULL : BLKTRACK_BACKUP_INCREMENTAL;
	}

	/* Before the freeze: a store in a directory of a frozen file system would wait. */
	if (o->snapshot_store_path &&
	    (o->snapshot == BLKTRACK_SNAPSHOT_AUTO || o->snapshot == BLKTRACK_SNAPSHOT_COW)) {
		err = store_open(o->snapshot_store_path, dev, o->force, &b.store_fd, b.msg, sizeof(b.msg));
		if (err) {
			blktrack_set_error(ctx, err, "%s", b.msg);
			goto out_close;
		}
	}

	/* Writers: identify, prepare-backup, freeze (doc/WRITERS.md). */
	err = writers_load(o->writers_dir ? o->writers_dir : WRITERS_DEFAULT_DIR,
			   o->writers_dir != NULL, o->writer_timeout, &b.wr, b.msg, sizeof(b.msg));
	if (err) {
		blktrack_set_error(ctx, err, "%s", b.msg[0] ? b.msg : strerror(-err));
		goto out_close;
	}
	res->writers = writers_count(b.wr);
	stamp_str(st.stamp.generation, st.stamp.epoch, b.prev_stamp, sizeof(b.prev_stamp));
	b.env.device = o->device;
	b.env.volume_id = res->volume_id;
	b.env.backup_type = type_env[type == BLKTRACK_BACKUP_AUTO ? BLKTRACK_BACKUP_FULL : type];
	b.env.prev_stamp = b.prev_stamp;
	b.env.repo = o->repo;
	if (fs_mount_point(dev, res->mount_point, sizeof(res->mount_point)))
		res->mount_point[0] = 0;
	if (wevent(&b, res, "identify", false)) {
		warning(ctx, "%s (identify failed: ignored)", b.msg);
		res->failure = BLKTRACK_FAIL_ERROR;
		b.msg[0] = 0;
	}
	err = wevent(&b, res, "prepare-backup", true);
	if (err)
		goto out_abort;
	b.freeze_sent = true;
	err = wevent(&b, res, "freeze", true);
	if (err)
		goto out_abort;
	if (!o->no_fs_freeze && res->mount_point[0]) {
		/* Tests: BLKTRACK_TEST_FIFREEZE_UNSUPPORTED=1, a filesystem without freeze. */
		if (test_hook("BLKTRACK_TEST_FIFREEZE_UNSUPPORTED"))
			err = -EOPNOTSUPP;
		else
			err = fs_freeze(res->mount_point, &b.fs_fd);
		b.frozen_at = now();
		if (!err) {
			res->freeze = "held";
		} else if (err == -EBUSY) {
			res->freeze = "external";
			info(ctx, "%s is frozen already: it stays so", res->mount_point);
		} else if (err == -EOPNOTSUPP) {
			warning(ctx, "%s cannot freeze: the read is fuzzy", res->mount_point);
		} else {
			snprintf(b.msg, sizeof(b.msg), "writer filesystem: FIFREEZE %s: %s",
				 res->mount_point, strerror(-err));
			res->failure = BLKTRACK_FAIL_WRITER;
			goto out_abort;
		}
	}

	err = flush_device(&b);
	if (err)
		goto out_abort;
	err = exact_checkpoint(&b, &st, res);
	if (err)
		goto out_abort;
	err = checkpoint(&b, res, dev, &ck);
	if (err < 0)
		goto out_abort;
	checkpointed = true;
	/* The checkpoint took the volume's size now: a resize shows here. */
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		goto out_abort;
	crash_at("after-checkpoint");
	stamp_str(ck.stamp.generation, ck.stamp.epoch + 1, b.new_stamp, sizeof(b.new_stamp));
	b.env.new_stamp = b.new_stamp;

	/* Thaw now when asked to, or when holding the freeze through the read
	 * would block our own writes (the output on the frozen filesystem). */
	if (b.fs_fd >= 0 && !o->thaw_early) {
		struct stat sb;

		if ((o->repo && !stat(o->repo, &sb) && sb.st_dev == dev) ||
		    (streaming && !fstat(o->output_fd, &sb) && sb.st_dev == dev)) {
			info(ctx, "the output is on %s: thawing right after the checkpoint",
			     res->mount_point);
			res->freeze = "thaw-early";
		}
	}
	if (o->thaw_early || b.cow || o->snapshot == BLKTRACK_SNAPSHOT_NONE ||
	    !strcmp(res->freeze, "thaw-early")) {
		if (b.fs_fd >= 0)
			res->freeze = "thaw-early";
		err = thaw(&b, res);
		if (err)
			goto out_abort;
	}
	err = wevent(&b, res, "post-snapshot", true);
	if (err)
		goto out_abort;

	b.size = st.dev_size;
	b.block_size = st.block_size;
	err = blktrack_read_extents(ctx, dev, 0, &ck.stamp, &ext, &n);
	if (err < 0) {
		snprintf(b.msg, sizeof(b.msg), "%s", blktrack_get_error(ctx));
		goto out_abort;
	}
	err = blockset_from_extents(ext, n, st.block_size, &delta);
	if (err)
		goto out_errno;

	memset(&rs, 0, sizeof(rs));
	snprintf(rs.volume_id, sizeof(rs.volume_id), "%s", res->volume_id);
	memcpy(rs.generation, ck.stamp.generation, 16);
	rs.epoch = ck.stamp.epoch;
	rs.size = st.dev_size;
	rs.block_size = st.block_size;

	if (st.state != BLKTRACK_STATE_TRACKING &&
	    (type == BLKTRACK_BACKUP_INCREMENTAL || type == BLKTRACK_BACKUP_DIFFERENTIAL)) {
		err = -ESTALE;
		snprintf(b.msg, sizeof(b.msg), "%s: tracking is invalid (%s)", o->device,
			 blktrack_reason_name(st.reason));
	} else if (type == BLKTRACK_BACKUP_RESYNC) {
		err = 0;		/* its set comes from the hashes */
	} else if (r) {
		err = repo_compose(r, repo_type_of(type), &rs, delta, &want, &base);
		if (err)
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
		if (err == -EBADMSG)
			err = -ESTALE;	/* an unusable delta: as a gap (doc/REPOSITORY.md) */
	} else {
		err = whole_volume(st.dev_size, st.block_size, &want);
		if (err)
			snprintf(b.msg, sizeof(b.msg), "%s", strerror(-err));
	}
	if (err == -ESTALE) {
		if (o->on_invalid == BLKTRACK_ON_INVALID_FAIL) {
			res->failure = BLKTRACK_FAIL_INVALID;
			goto out_abort;
		}
		res->fell_back = true;
		snprintf(res->fell_back_why, sizeof(res->fell_back_why), "%s", b.msg);
		type = o->on_invalid == BLKTRACK_ON_INVALID_FULL ? BLKTRACK_BACKUP_FULL :
		       BLKTRACK_BACKUP_RESYNC;
		warning(ctx, "%s; taking a %s backup", b.msg, type_env[type]);
		b.msg[0] = 0;
		err = 0;
	}
	if (type == BLKTRACK_BACKUP_RESYNC) {
		/* The newest base, whose hashes must be there and intact. */
		err = repo_base(r, REPO_RESYNC, res->volume_id, &base);
		if (!err) {
			err = hash_open_parent(&b, r, base, true);
			if (err)
				warning(ctx, "backup %" PRIu64 " has no usable block hashes (%s): "
					"taking a full backup", base, err == -ESTALE ?
					"another volume size or block size" : strerror(-err));
		}
		if (!err)
			err = whole_volume(st.dev_size, st.block_size, &want);
		if (!err)
			err = blockset_new(&b.stored);
		if (err == -ENOMEM)
			goto out_errno;
		if (err) {
			type = BLKTRACK_BACKUP_FULL;
			base = 0;
		}
		err = 0;
	}
	if (type == BLKTRACK_BACKUP_FULL && !want) {
		err = repo_compose(r, REPO_FULL, &rs, delta, &want, &base);
		if (err)
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
	}
	if (err == -ENOENT && r) {
		snprintf(b.msg, sizeof(b.msg), "%s (take a full backup: --type full)",
			 repo_error(r));
		goto out_abort;
	}
	if (err)
		goto out_abort;
	res->type = type;
	res->parent = base;
	b.env.backup_type = type_env[type];

	bfile_header_init(&h, repo_type_of(type) + 1);
	if (o->no_compress)
		h.compression = BFILE_COMP_NONE;
	/* Ids fit (lib/kernel/volid.h: VOLID_MAX); a longer one would fail every restore's check. */
	snprintf(h.volume_id, sizeof(h.volume_id), "%.*s", (int)sizeof(h.volume_id) - 1,
		 res->volume_id);
	h.volume_size = st.dev_size;
	h.block_size = st.block_size;
	rs.epoch++;
	to_bstamp(&rs, &h.to);
	rs.epoch--;
	if (base) {
		char path[4096];
		struct bfile_header ph;

		parent = repo_find(r, base);
		to_bstamp(&parent->to, &h.from);
		snprintf(path, sizeof(path), "%s/%s", repo_path(r), parent->file);
		err = read_header(path, &ph, b.msg, sizeof(b.msg));
		if (err) {
			res->failure = BLKTRACK_FAIL_CORRUPT;
			goto out_abort;
		}
		memcpy(h.parent_id, ph.id, BFILE_ID_LEN);
	}

	if (streaming) {
		fd = o->output_fd;
		snprintf(res->file, sizeof(res->file), "-");
	} else {
		memset(&ent, 0, sizeof(ent));
		ent.type = repo_type_of(type);
		ent.has_from = parent;
		if (parent)
			ent.from = parent->to;
		ent.parent = base;
		ent.to = rs;
		ent.to.epoch++;
		err = repo_begin(r, &ent, delta, &id);
		if (!err)
			err = repo_backup_create(r, id, &fd);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
		snprintf(res->file, sizeof(res->file), "%s/%s", repo_path(r),
			 repo_find(r, id)->file);
		b.env.backup_id = id;
		err = hash_start(&b, r, type, base, id);
		if (err)
			goto out_abort;
	}
	b.env.backup_file = res->file;

	b.vol_fd = open_volume(o->device);
	if (b.vol_fd < 0) {
		err = -errno;
		snprintf(b.msg, sizeof(b.msg), "%s: %s", o->device, strerror(-err));
		goto out_abort;
	}
	b.buf_len = st.block_size > CHUNK_BYTES ? st.block_size : CHUNK_BYTES;
	if (posix_memalign(&b.buf, ALIGN, b.buf_len)) {
		err = -ENOMEM;
		goto out_errno;
	}
	b.total = blockset_cardinality(want) * st.block_size;
	if (b.total > st.dev_size)
		b.total = st.dev_size;
	err = bfile_writer_open(fd, &h, &b.w);
	if (err) {
		snprintf(b.msg, sizeof(b.msg), "%s: %s", res->file,
			 b.w ? bfile_writer_error(b.w) : strerror(-err));
		goto out_abort;
	}
	if (!streaming && !o->no_verify && !o->verify_source) {
		err = follow_start(&verify, &b, fd);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "writer verify: %s", strerror(-err));
			goto out_abort;
		}
	}
	if (b.cow && type != BLKTRACK_BACKUP_RESYNC) {
		err = snap_release_rest(&b, want);
		if (err)
			goto out_abort;
	}
	err = read_volume(&b, want, type == BLKTRACK_BACKUP_RESYNC);
	if (err)
		goto out_abort;
	snap_figures(&b, res);
	crash_at("during-write");	/* nothing to store: before the file is finished */
	err = bfile_writer_finish(b.w, &stats);
	b.w = NULL;
	if (err) {
		snprintf(b.msg, sizeof(b.msg), "%s: %s", res->file, strerror(-err));
		goto out_abort;
	}
	if (type == BLKTRACK_BACKUP_RESYNC) {
		/* What the resync found changed is its delta (doc/REPOSITORY.md). */
		err = repo_set_delta(r, id, b.stored);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
	}
	if (!streaming) {
		err = hash_finish(&b, r, id, &res->hashes);
		if (err)
			goto out_abort;
	}
	res->volume_size = st.dev_size;
	res->changed_bytes = blockset_cardinality(b.stored ? b.stored : delta) * st.block_size;
	if (res->changed_bytes > st.dev_size)
		res->changed_bytes = st.dev_size;
	res->covered_bytes = stats.data_bytes + stats.zero_bytes;
	res->data_bytes = stats.data_bytes;
	res->stored_bytes = stats.stream_bytes;

	/*
	 * Blocks rewritten while we read them (a thawed or unfrozen volume);
	 * a snapshot that held gave every block as it was at the checkpoint.
	 */
	if (!b.cow) {
		err = rewritten_during_read(&b, dev, want, &res->rewritten_bytes);
		if (err)
			goto out_abort;
	}
	if (!streaming) {
		err = repo_backup_install(r, id, fd);
		fd = -1;
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
		if (!o->no_verify) {
			if (o->verify_source) {
				err = verify_against_source(&b, dev, res->file);
			} else {
				err = follow_stop(&verify);
				if (err)
					snprintf(b.msg, sizeof(b.msg), "writer verify: %s%s%s%s",
						 res->file, err == -EBADE ? " " : ": ",
						 verify.msg, err == -EBADE ? ": rejected" : "");
			}
			if (err) {
				res->failure = BLKTRACK_FAIL_WRITER;
				goto out_abort;
			}
			res->verified = true;
		}
	}
	err = thaw(&b, res);
	if (err)
		goto out_abort;
	if (o->strict && res->rewritten_bytes) {
		err = -EBADE;
		res->failure = BLKTRACK_FAIL_FUZZY;
		snprintf(b.msg, sizeof(b.msg), "%" PRIu64 " bytes of the backup were rewritten "
			 "during the read (--strict): rejected", res->rewritten_bytes);
		goto out_abort;
	}
	err = same_media(&b, dev, st.diskseq, res);
	if (err)
		goto out_abort;
	err = wevent(&b, res, "backup-complete", false);
	if (err)
		goto out_abort;

	if (streaming) {
		/* A stream is in no catalog: it moves no base. */
		err = blktrack_abort(ctx, dev, &ck.stamp);
		if (err < 0)
			goto out_close;
		checkpointed = false;
	} else {
		err = repo_commit(r, id, stats.stream_bytes);
		if (err) {
			snprintf(b.msg, sizeof(b.msg), "%s", repo_error(r));
			goto out_abort;
		}
		committed = true;
		res->id = id;
		crash_at("after-catalog");
		/* Tests: BLKTRACK_TEST_COMMIT_FAIL=1, a COMMIT that fails (and is not sent). */
		if (test_hook("BLKTRACK_TEST_COMMIT_FAIL"))
			err = blktrack_set_error(ctx, -EIO, "BLKTRACK_TEST_COMMIT_FAIL");
		else
			err = blktrack_commit(ctx, dev, &ck.stamp);
		if (err < 0) {
			/* The context's message is the buffer set_error writes. */
			snprintf(b.msg, sizeof(b.msg), "%s", blktrack_get_error(ctx));
			if (err == -ESTALE || err == -ENODATA)
				/* Someone else aborted (or committed) our checkpoint. */
				blktrack_set_error(ctx, err, "backup %" PRIu64 " is committed in "
						   "the repository, but the kernel COMMIT failed: "
						   "the checkpoint is no longer this backup's (%s: "
						   "another program aborted or committed it, 'blktrack "
						   "abort'?). Nothing is lost: the next backup aborts "
						   "any other pending checkpoint and resyncs", id,
						   strerror(-err));
			else
				blktrack_set_error(ctx, err, "backup %" PRIu64 " is committed in "
						   "the repository, but the kernel COMMIT failed "
						   "(%s); the next backup finishes it", id, b.msg);
			goto out_close;
		}
		checkpointed = false;
	}
	res->failure = BLKTRACK_FAIL_NONE;
	res->seconds = now() - t0;
	err = 0;
	goto out_close;

out_errno:
	snprintf(b.msg, sizeof(b.msg), "%s", strerror(-err));
out_abort:
	follow_stop(&verify);
	if (!b.msg[0])
		snprintf(b.msg, sizeof(b.msg), "%s", blktrack_get_error(ctx));
	if (b.w)
		bfile_writer_abort(b.w);
	b.w = NULL;
	if (id && !committed) {
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (repo_abandon(r, id) < 0)
			snprintf(b.msg + strlen(b.msg), sizeof(b.msg) - strlen(b.msg),
				 " (and the repository keeps pending backup %" PRIu64
				 " until the next backup removes it: %s)", id, repo_error(r));
	}
	if (checkpointed && !committed && blktrack_abort(ctx, dev, &ck.stamp) < 0)
		strncat(b.msg, " (and the kernel ABORT failed: the next backup repairs it)",
			sizeof(b.msg) - strlen(b.msg) - 1);
	if (b.fs_fd >= 0 || b.freeze_sent) {
		enum blktrack_failure f = res->failure;
		char keep[8192];

		memcpy(keep, b.msg, sizeof(keep));
		/* The first failure stays the cause; a failed thaw is added to it. */
		if (thaw(&b, res)) {
			snprintf(keep + strlen(keep), sizeof(keep) - strlen(keep),
				 " (and then %s)", b.msg);
			if (!b.msg[0] || strncmp(b.msg, "writer filesystem:", 18))
				crit(ctx, "thaw after a failure: %s", b.msg);
		}
		memcpy(b.msg, keep, sizeof(keep));
		res->failure = f;
	}
	blktrack_set_error(ctx, err, "%s", b.msg);
	if (b.events) {
		char scratch[256];

		writers_event(b.wr, "abort", &b.env, false, scratch, sizeof(scratch));
	}
out_close:
	follow_stop(&verify);
	if (fd >= 0 && !streaming)
		close(fd);
	if (b.vol_fd >= 0)
		close(b.vol_fd);
	if (b.store_fd >= 0)
		close(b.store_fd);
	free(b.buf);
	free(ext);
	blockset_free(delta);
	blockset_free(want);
	blockset_free(b.stored);
	free(b.rh);
	blockhash_reader_free(b.hp);
	blockhash_writer_abort(b.hw);
	if (b.hp_fd >= 0)
		close(b.hp_fd);
	if (b.hw_fd >= 0)
		close(b.hw_fd);
	repo_close(r);
	writers_free(b.wr);
	vollock_release(lock_fd);
	return err;
}

/* ---- reading a chain ---------------------------------------------------- */

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
};

static int chain_fail(struct chain *c, enum blktrack_failure f, const char *file,
		      int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int chain_fail(struct chain *c, enum blktrack_failure f, const char *file,
		      int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->res->failure = f;
	if (file)
		snprintf(c->res->file, sizeof(c->res->file), "%s", file);
	return blktrack_set_error(c->ctx, err, "%s", msg);
}

/*
 * No backup id: the newest committed backup, when every committed backup is
 * of one volume. With several volumes, which one is meant is not guessed.
 */
static int newest_of_one_volume(struct chain *c, uint64_t *id)
{
	const struct repo_entry *e, *newest = NULL;
	char list[768] = "";
	size_t i, j, used = 0;
	bool several = false;

	for (i = repo_count(c->r); i-- > 0;) {
		e = repo_entry_at(c->r, i);
		if (e->state != REPO_COMMITTED)
			continue;
		if (!newest)
			newest = e;
		several |= strcmp(e->to.volume_id, newest->to.volume_id) != 0;
		/* One line per volume, at its newest backup (the first seen). */
		for (j = repo_count(c->r); j-- > i + 1;)
			if (repo_entry_at(c->r, j)->state == REPO_COMMITTED &&
			    !strcmp(repo_entry_at(c->r, j)->to.volume_id, e->to.volume_id))
				break;
		if (j == i && used < sizeof(list))
			used += snprintf(list + used, sizeof(list) - used, "%s%s (newest backup %"
					 PRIu64 ")", used ? ", " : "", e->to.volume_id, e->id);
	}
	if (!newest)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -ENOENT,
				  "%s: no committed backup", c->o->repo);
	if (several)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, -EINVAL,
				  "%s holds backups of several volumes: %s; say which with "
				  "--backup ID (blktrack list)", c->o->repo, list);
	*id = newest->id;
	return 0;
}

static int chain_open(struct chain *c)
{
	const struct blktrack_restore_opts *o = c->o;
	uint64_t *ids = NULL, id = o->backup_id;
	size_t i;
	int err;

	err = repo_open(o->repo, REPO_RDONLY, &c->r);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s",
				  c->r ? repo_error(c->r) : strerror(-err));
	if (!id) {
		err = newest_of_one_volume(c, &id);
		if (err)
			return err;
	}
	c->res->backup_id = id;
	err = repo_chain(c->r, id, &ids, &c->n);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CHAIN, NULL, err, "chain of backup %" PRIu64
				  " is broken: %s", id, repo_error(c->r));
	c->m = calloc(c->n, sizeof(*c->m));
	if (!c->m) {
		free(ids);
		return -ENOMEM;
	}
	for (i = 0; i < c->n; i++) {
		struct stat sb;

		c->m[i].e = repo_find(c->r, ids[i]);
		snprintf(c->m[i].path, sizeof(c->m[i].path), "%s/%s", repo_path(c->r),
			 c->m[i].e->file);
		if (!stat(c->m[i].path, &sb))
			c->m[i].file_size = sb.st_size;
		c->total += c->m[i].file_size;
	}
	free(ids);
	c->res->members = c->n;
	c->res->volume_size = c->m[c->n - 1].e->to.size;
	return 0;
}

static void chain_close(struct chain *c)
{
	free(c->m);
	repo_close(c->r);
}

/* Called for each verified record of a member; non-zero stops the read. */
typedef int (*record_fn)(struct chain *c, struct member *m, const struct bfile_record *rec,
			 void *data);

/*
 * Read member @k in full, checking its header against the catalog and the
 * chain (the parent's id), and every record; @fn sees each record.
 */
static int member_read(struct chain *c, size_t k, record_fn fn, void *data)
{
	struct member *m = &c->m[k];
	const struct repo_entry *e = m->e;
	struct bfile_reader *rd = NULL;
	struct bfile_record rec;
	const char *why = NULL;
	int fd, err;

	err = repo_file_open(c->r, e->file, &fd);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CHAIN, m->path, err, "%s (backup %" PRIu64
				  ")", repo_error(c->r), e->id);
	/* Read whole, in order: a bigger readahead keeps the disk busy. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	err = bfile_reader_open(fd, &m->h, &rd);
	if (err) {
		chain_fail(c, err == -ENOMEM ? BLKTRACK_FAIL_ERROR : BLKTRACK_FAIL_CORRUPT,
			   m->path, err, "%s (backup %" PRIu64 "): %s", m->path, e->id,
			   rd ? bfile_reader_error(rd) : strerror(-err));
		goto out;
	}
	if (strcmp(m->h.volume_id, e->to.volume_id))
		why = "its volume id is not the catalog's";
	else if (m->h.type != (uint32_t)e->type + 1)
		why = "its type is not the catalog's";
	else if (!bstamp_matches(&m->h.to, &e->to) || m->h.volume_size != e->to.size ||
		 m->h.block_size != e->to.block_size)
		why = "its stamp is not the catalog's";
	else if (e->has_from && !bstamp_matches(&m->h.from, &e->from))
		why = "its from-stamp is not the catalog's";
	else if (k && memcmp(m->h.parent_id, c->m[k - 1].h.id, BFILE_ID_LEN))
		why = "its parent is not the previous backup of the chain";
	if (why) {
		err = chain_fail(c, BLKTRACK_FAIL_CORRUPT, m->path, -EBADMSG,
				 "%s (backup %" PRIu64 "): a foreign file: %s", m->path,
				 e->id, why);
		goto out;
	}
	while ((err = bfile_read_record(rd, &rec)) > 0) {
		if (fn) {
			err = fn(c, m, &rec, data);
			if (err)
				goto out;
		}
		c->res->bytes += fn ? 0 : rec.length;
		progress(c->o->progress, c->o->progress_data, "read",
			 c->before + rec.file_offset, c->total);
	}
	if (err)
		chain_fail(c, err == -ENOMEM || err == -EIO ? BLKTRACK_FAIL_ERROR :
			   BLKTRACK_FAIL_CORRUPT, m->path, err, "%s (backup %" PRIu64 "): %s",
			   m->path, e->id, bfile_reader_error(rd));
out:
	c->before += m->file_size;
	bfile_reader_free(rd);
	close(fd);
	return err;
}

/* Read and check every member, oldest first. */
static int chain_check(struct chain *c)
{
	size_t k;
	int err;

	c->before = 0;
	c->res->bytes = 0;
	for (k = 0; k < c->n; k++) {
		err = member_read(c, k, NULL, NULL);
		if (err)
			return err;
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------ */

static int apply_record(struct chain *c, struct member *m, const struct bfile_record *rec,
			void *data)
{
	struct target *t = data;
	uint64_t off = rec->offset, left = rec->length, end = c->res->volume_size;
	int err;

	/* An older member of a volume that shrank since: what is past the end goes. */
	if (off >= end)
		return 0;
	if (left > end - off)
		left = end - off;
	err = target_write(t, off, rec->tag == BFILE_TAG_DATA ? rec->data : NULL, left);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: write at %" PRIu64
				  ": %s", t->path, rec->offset, strerror(-err));
	c->res->bytes += rec->length;
	return 0;
}

/*
 * Check the whole chain, then write it onto the target (lib/requester/target.h): a
 * file is replaced only once complete, a device gets its first MiB last.
 */
/*
 * A block device target that is a tracked volume, or its disk or a
 * partition of it, would be overwritten under the tracker, and O_EXCL does
 * not see the module's shared hold: refused (-EBUSY) unless --force.
 * Without the control device nothing is attached (and no module is loaded
 * to ask).
 */
static int target_untracked(struct blktrack_ctx *ctx, const char *path, char *msg,
			    size_t len)
{
	struct stat st;
	dev_t *devs;
	size_t n, i;
	int err = 0;

	if (stat(path, &st) || !S_ISBLK(st.st_mode) || access("/dev/" BLKTRACK_CTL_NAME, F_OK))
		return 0;
	if (blktrack_list(ctx, &devs, &n) < 0)
		return 0;
	for (i = 0; i < n && !err; i++) {
		if (devs_overlap(devs[i], st.st_rdev)) {
			snprintf(msg, len, "%s is (or holds) the tracked volume %u:%u: refused, "
				 "nothing written (detach it first, or --force)", path,
				 major(devs[i]), minor(devs[i]));
			err = -EBUSY;
		}
	}
	free(devs);
	return err;
}

BLKTRACK_EXPORT int blktrack_restore(struct blktrack_ctx *ctx,
				     const struct blktrack_restore_opts *o,
				     struct blktrack_restore_result *res)
{
	struct chain c = { .ctx = ctx, .o = o, .res = res };
	struct target t = { .fd = -1 };
	double t0 = now();
	char msg[1024];
	size_t k;
	int err;

	memset(res, 0, sizeof(*res));
	res->failure = BLKTRACK_FAIL_ERROR;
	if (!o->repo || !o->target)
		return blktrack_set_error(ctx, -EINVAL, "restore: invalid options");
	err = chain_open(&c);
	if (!err)
		err = chain_check(&c);
	if (err)
		goto out;

	err = o->force ? 0 : target_untracked(ctx, o->target, msg, sizeof(msg));
	if (!err)
		err = target_open(&t, o->target, res->volume_size, o->force, msg, sizeof(msg));
	if (err) {
		chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, err, "%s", msg);
		goto out;
	}
	c.before = 0;
	res->bytes = 0;
	res->partial = !t.is_file;	/* a file target stays as it was until the end */
	for (k = 0; k < c.n; k++) {
		err = member_read(&c, k, apply_record, &t);
		if (err)
			goto out;
	}
	err = target_finish(&t, msg, sizeof(msg));
	if (err) {
		chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, err, "%s", msg);
		goto out;
	}
	res->partial = false;
	res->failure = BLKTRACK_FAIL_NONE;
	res->seconds = now() - t0;
out:
	target_close(&t);
	chain_close(&c);
	return err;
}

/* ---- verify ------------------------------------------------------------- */

/*
 * Compare with a device without restoring: walk the chain newest first; a
 * block is compared against the newest member that holds it, and marked
 * covered so that older members skip it.
 */
struct compare {
	int fd;
	const char *path;
	struct blockset *covered;
	void *buf;
	void *zeros;
};

static int compare_run(struct chain *c, struct compare *cmp, const struct bfile_record *rec,
		       uint64_t bs, uint64_t first, uint64_t count)
{
	uint64_t off = first * bs, end = (first + count) * bs, rec_end = rec->offset + rec->length;
	int err;

	if (end > rec_end)
		end = rec_end;
	while (off < end) {
		size_t len = end - off < CHUNK_BYTES ? end - off : CHUNK_BYTES, i;
		const char *want = rec->data ? (const char *)rec->data + (off - rec->offset) :
				   cmp->zeros;

		err = fd_pread_all(cmp->fd, cmp->buf, len, off);
		if (err)
			return chain_fail(c, BLKTRACK_FAIL_ERROR, NULL, err, "%s: read at %" PRIu64
					  ": %s", cmp->path, off, strerror(-err));
		if (memcmp(cmp->buf, want, len)) {
			for (i = 0; i < len; i += bs) {
				size_t l = len - i < bs ? len - i : bs;

				if (memcmp((char *)cmp->buf + i, want + i, l)) {
					if (!c->res->differ_bytes)
						c->res->first_diff = off + i;
					c->res->differ_bytes += l;
				}
			}
		}
		c->res->bytes += len;
		off += len;
	}
	return 0;
}

static int compare_record(struct chain *c, struct member *m, const struct bfile_record *rec,
			  void *data)
{
	struct compare *cmp = data;
	uint64_t bs = m->h.block_size, b, first = rec->offset / bs;
	uint64_t last = (rec->offset + rec->length + bs - 1) / bs, run = 0;
	int err;

	for (b = first; b <= last; b++) {
		if (b < last && !blockset_contains(cmp->covered, b)) {
			run++;
			continue;
		}
		if (run) {
			err = compare_run(c, cmp, rec, bs, b - run, run);
			if (err)
				return err;
			run = 0;
		}
	}
	return blockset_add_range(cmp->covered, first, last - first);
}

/*
 * The delta maps and block hash files later backups use, whole (issue 13,
 * point 2): the deltas of the committed backups since each volume's newest
 * full (a composition reads no other), and every hash file there is (only
 * the newest base keeps one). They shape later backups, not restores, but
 * damage there is damage in the repository: exit 4, naming the file. A
 * hash file must be sound, its entry's, of its volume's size and block size.
 */
static int check_side_entry(struct chain *c, const struct repo_entry *e, bool old)
{
	char path[4096], name[REPO_NAME_MAX];
	struct blockset *d;
	uint64_t size;
	uint32_t bs;
	int fd, err;

	if (!old) {
		err = repo_load_delta(c->r, e->id, &d);
		if (err) {
			snprintf(path, sizeof(path), "%s/%s", repo_path(c->r), e->delta);
			return chain_fail(c, BLKTRACK_FAIL_CORRUPT, path, err == -ENOMEM ? err :
					  -EBADMSG, "%s (the next backups of volume %s resync "
					  "until a full backup)", repo_error(c->r),
					  e->to.volume_id);
		}
		blockset_free(d);
	}
	err = repo_hashes_open(c->r, e->id, &fd);
	if (err == -ENOENT)
		return 0;
	repo_hashes_name(e->id, name);
	snprintf(path, sizeof(path), "%s/%s", repo_path(c->r), name);
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CORRUPT, path, -EBADMSG, "%s",
				  repo_error(c->r));
	err = blockhash_check(fd, &size, &bs);
	close(fd);
	if (!err && (size != e->to.size || bs != e->to.block_size))
		err = -ESTALE;
	if (err)
		return chain_fail(c, BLKTRACK_FAIL_CORRUPT, path, -EBADMSG,
				  "%s (block hashes of backup %" PRIu64 "): %s", path,
				  e->id, err == -ESTALE ? "of another volume size or block "
				  "size" : err == -EBADMSG ? "corrupt" : strerror(-err));
	return 0;
}

/* @vol is among the @nf volumes whose newest full was seen. */
static bool full_seen(const char **fulls, size_t nf, const char *vol)
{
	size_t k;

	for (k = 0; k < nf; k++)
		if (!strcmp(fulls[k], vol))
			return true;
	return false;
}

static int check_side_files(struct chain *c)
{
	size_t i = repo_count(c->r), nf = 0;
	const char **fulls = calloc(i + 1, sizeof(*fulls));
	int err = 0;

	if (!fulls)
		return -ENOMEM;
	while (i-- > 0 && !err) {
		const struct repo_entry *e = repo_entry_at(c->r, i);
		bool seen;

		if (e->state != REPO_COMMITTED)
			continue;
		seen = full_seen(fulls, nf, e->to.volume_id);
		err = check_side_entry(c, e, seen);
		if (e->type == REPO_FULL && !seen)
			fulls[nf++] = e->to.volume_id;
	}
	free(fulls);
	return err;
}

BLKTRACK_EXPORT int blktrack_verify(struct blktrack_ctx *ctx,
				    const struct blktrack_restore_opts *o,
				    struct blktrack_restore_result *res)
{
	struct chain c = { .ctx = ctx, .o = o, .res = res };
	struct compare cmp = { .fd = -1, .path = o->against };
	double t0 = now();
	uint64_t size;
	size_t k;
	int err;

	memset(res, 0, sizeof(*res));
	res->failure = BLKTRACK_FAIL_ERROR;
	if (!o->repo)
		return blktrack_set_error(ctx, -EINVAL, "verify: invalid options");
	err = chain_open(&c);
	if (!err)
		err = chain_check(&c);
	if (!err)
		err = check_side_files(&c);
	if (err || !o->against)
		goto done;

	cmp.fd = open_volume(o->against);
	if (cmp.fd < 0 || (err = fd_size(cmp.fd, &size)) < 0) {
		err = chain_fail(&c, BLKTRACK_FAIL_ERROR, NULL, cmp.fd < 0 ? -errno : err,
				 "%s: %s", o->against, strerror(cmp.fd < 0 ? errno : -err));
		goto done;
	}
	if (size != res->volume_size) {
		err = chain_fail(&c, BLKTRACK_FAIL_MISMATCH, NULL, -EBADE, "%s has %" PRIu64
				 " bytes, the backup %" PRIu64, o->against, size,
				 res->volume_size);
		goto done;
	}
	err = blockset_new(&cmp.covered);
	if (!err && (posix_memalign(&cmp.buf, ALIGN, CHUNK_BYTES) ||
		     !(cmp.zeros = calloc(1, CHUNK_BYTES))))
		err = -ENOMEM;
	if (err)
		goto done;
	res->bytes = 0;
	c.before = 0;
	for (k = c.n; k-- > 0;) {
		err = member_read(&c, k, compare_record, &cmp);
		if (err)
			goto done;
	}
	if (res->differ_bytes) {
		err = chain_fail(&c, BLKTRACK_FAIL_MISMATCH, NULL, -EBADE,
				 "%s differs from backup %" PRIu64 ": %" PRIu64
				 " bytes, the first in the block at offset %" PRIu64, o->against,
				 res->backup_id, res->differ_bytes, res->first_diff);
		goto done;
	}
	if (res->bytes < res->volume_size) {
		err = chain_fail(&c, BLKTRACK_FAIL_CORRUPT, c.m[0].path, -EBADMSG,
				 "the chain of backup %" PRIu64 " covers %" PRIu64 " of %"
				 PRIu64 " bytes", res->backup_id, res->bytes, res->volume_size);
		goto done;
	}
done:
	if (!err) {
		res->failure = BLKTRACK_FAIL_NONE;
		res->seconds = now() - t0;
	}
	if (cmp.fd >= 0)
		close(cmp.fd);
	blockset_free(cmp.covered);
	free(cmp.buf);
	free(cmp.zeros);
	chain_close(&c);
	return err;
}

/* ---- the repository as JSON --------------------------------------------- */

static void jadd(struct json_object *o, const char *key, struct json_object *v, int *fails)
{
	if (!v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		(*fails)++;
	}
}

static struct json_object *jstamp(const struct repo_stamp *s, int *fails)
{
	struct json_object *o = json_object_new_object();
	char g[BLKTRACK_UUID_STR_LEN];

	if (!o) {
		(*fails)++;
		return NULL;
	}
	blktrack_uuid_unparse(s->generation, g);
	jadd(o, "volume_id", json_object_new_string(s->volume_id), fails);
	jadd(o, "generation", json_object_new_string(g), fails);
	jadd(o, "epoch", json_object_new_uint64(s->epoch), fails);
	jadd(o, "size", json_object_new_uint64(s->size), fails);
	jadd(o, "block_size", json_object_new_uint64(s->block_size), fails);
	return o;
}

/* The byte ranges a backup file's records cover, merged. */
static void jfile_detail(struct json_object *o, const char *path, int *fails)
{
	struct json_object *cov = json_object_new_array();
	struct bfile_reader *rd = NULL;
	struct bfile_header h;
	struct bfile_record rec;
	struct bfile_stats st;
	uint64_t start = 0, end = 0;
	bool have = false;
	int fd, err;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	err = fd < 0 ? -errno : bfile_reader_open(fd, &h, &rd);
	while (!err && (err = bfile_read_record(rd, &rec)) > 0) {
		err = 0;
		if (have && rec.offset == end) {
			end += rec.length;
			continue;
		}
		if (have) {
			struct json_object *p = json_object_new_array();

			json_object_array_add(p, json_object_new_uint64(start));
			json_object_array_add(p, json_object_new_uint64(end - start));
			json_object_array_add(cov, p);
		}
		start = rec.offset;
		end = rec.offset + rec.length;
		have = true;
	}
	if (have) {
		struct json_object *p = json_object_new_array();

		json_object_array_add(p, json_object_new_uint64(start));
		json_object_array_add(p, json_object_new_uint64(end - start));
		json_object_array_add(cov, p);
	}
	jadd(o, "file_ok", json_object_new_boolean(!err), fails);
	if (err)
		jadd(o, "file_error", json_object_new_string(rd ? bfile_reader_error(rd) :
							     strerror(-err)), fails);
	if (rd) {
		bfile_reader_stats(rd, &st);
		jadd(o, "records", json_object_new_uint64(st.records), fails);
		jadd(o, "data_bytes", json_object_new_uint64(st.data_bytes), fails);
		jadd(o, "zero_bytes", json_object_new_uint64(st.zero_bytes), fails);
	}
	jadd(o, "covers", cov, fails);
	bfile_reader_free(rd);
	if (fd >= 0)
		close(fd);
}

BLKTRACK_EXPORT int blktrack_repo_init(struct blktrack_ctx *ctx, const char *dir)
{
	struct repo *r;
	int err = repo_open(dir, REPO_CREATE, &r);

	if (err)
		blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
	repo_close(r);
	return err;
}

BLKTRACK_EXPORT int blktrack_repo_check(struct blktrack_ctx *ctx, const char *dir,
					bool rebuild, blktrack_report_fn report,
					void *data, struct blktrack_check_result *res)
{
	struct repo_check_result rr;
	int err;

	err = rebuild ? repo_rebuild(dir, report, data, &rr) :
			repo_check(dir, report, data, &rr);
	if (err)
		blktrack_set_error(ctx, err, "%s", rr.error);
	memset(res, 0, sizeof(*res));
	res->problems = rr.problems;
	res->entries = rr.entries;
	res->left_out = rr.left_out;
	res->rebuilt = rr.rebuilt;
	snprintf(res->aside, sizeof(res->aside), "%s", rr.aside);
	return err;
}

BLKTRACK_EXPORT int blktrack_repo_json(struct blktrack_ctx *ctx, const char *dir,
				       bool detail, struct json_object **out)
{
	struct json_object *top, *arr;
	struct repo *r;
	size_t i, k, n;
	int err, fails = 0;

	err = repo_open(dir, REPO_RDONLY, &r);
	if (err) {
		blktrack_set_error(ctx, err, "%s", r ? repo_error(r) : strerror(-err));
		repo_close(r);
		return err;
	}
	top = json_object_new_object();
	arr = json_object_new_array();
	jadd(top, "path", json_object_new_string(repo_path(r)), &fails);
	for (i = 0; top && arr && i < repo_count(r); i++) {
		const struct repo_entry *e = repo_entry_at(r, i);
		struct json_object *o = json_object_new_object(), *ch;
		char path[4096];
		uint64_t *ids;
		int hfd;

		if (!o) {
			fails++;
			break;
		}
		jadd(o, "id", json_object_new_uint64(e->id), &fails);
		jadd(o, "type", json_object_new_string(repo_type_name(e->type)), &fails);
		jadd(o, "state", json_object_new_string(repo_state_name(e->state)), &fails);
		jadd(o, "volume_id", json_object_new_string(e->to.volume_id), &fails);
		jadd(o, "file", json_object_new_string(e->file), &fails);
		jadd(o, "parent", json_object_new_uint64(e->parent), &fails);
		jadd(o, "time", json_object_new_int64(e->time), &fails);
		jadd(o, "changed_bytes", json_object_new_uint64(e->changed_bytes), &fails);
		jadd(o, "stored_bytes", json_object_new_uint64(e->stored_bytes), &fails);
		if (e->has_from)
			jadd(o, "from", jstamp(&e->from, &fails), &fails);
		else
			json_object_object_add(o, "from", NULL);
		jadd(o, "to", jstamp(&e->to, &fails), &fails);
		/* Block hashes for a resync: only the newest base of a volume has them. */
		if (!repo_hashes_open(r, e->id, &hfd)) {
			close(hfd);
			repo_hashes_name(e->id, path);
			jadd(o, "hashes", json_object_new_string(path), &fails);
		} else {
			json_object_object_add(o, "hashes", NULL);
		}
		if (!repo_chain(r, e->id, &ids, &n)) {
			ch = json_object_new_array();
			for (k = 0; ch && k < n; k++)
				json_object_array_add(ch, json_object_new_uint64(ids[k]));
			jadd(o, "chain", ch, &fails);
			free(ids);
		} else {
			jadd(o, "chain_error", json_object_new_string(repo_error(r)), &fails);
		}
		if (detail) {
			snprintf(path, sizeof(path), "%s/%s", repo_path(r), e->file);
			jfile_detail(o, path, &fails);
		}
		json_object_array_add(arr, o);
	}
	jadd(top, "backups", arr, &fails);
	repo_close(r);
	if (!top || fails) {
		json_object_put(top);
		return blktrack_set_error(ctx, -ENOMEM, "%s", strerror(ENOMEM));
	}
	*out = top;
	return 0;
}

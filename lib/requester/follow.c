// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: the follower (the built-in verify writer): a
 * thread that reads the new backup file back while it is written and checks
 * each record against the hash of what was read.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "requester/requester.h"

/* The writer: more of the file is written (@end: all of it). */
void follow_wake(struct follow *f, bool end)
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
		n = repo_file_pread(f->file, buf, len, f->pos);
		if (n < 0)
			return n;
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

/* Start verifying the backup file @file (being written) in a thread. */
int follow_start(struct follow *f, struct backup *b, struct repo_file *file)
{
	int err;

	f->b = b;
	err = repo_file_follow(file, &f->file);
	if (err)
		return err;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->more, NULL);
	err = pthread_create(&f->thread, NULL, follow_main, f);
	if (err) {
		repo_file_close(f->file);
		return -err;
	}
	f->started = true;
	b->follow = f;
	return 0;
}

/* Wait for the verify (the file is complete, or being given up): its result. */
int follow_stop(struct follow *f)
{
	if (!f->started)
		return 0;
	follow_wake(f, true);
	pthread_join(f->thread, NULL);
	f->started = false;
	f->b->follow = NULL;
	repo_file_close(f->file);
	pthread_cond_destroy(&f->more);
	pthread_mutex_destroy(&f->lock);
	return f->err;
}

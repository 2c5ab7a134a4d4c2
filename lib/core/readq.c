// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * readq: reads in flight ahead of their consumer (readq.h).
 *
 * A ring of @depth slots, consumed in order at head and filled at tail;
 * @depth threads take the queued slots in order and pread() them. One mutex
 * guards the ring: it is taken a few times per piece, against a read of up
 * to a MiB.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/fdio.h"
#include "core/readq.h"

#define READQ_ALIGN	4096U

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_READING, SLOT_DONE };

struct slot {
	uint64_t off;
	size_t len;
	void *buf;
	enum slot_state state;
	int err;
};

struct readq {
	readq_read_fn read;
	void *rdata;
	int fd;				/* fd_read()'s */
	readq_fn fn;
	void *data;
	unsigned int depth, nthreads;
	struct slot *slots;
	pthread_t *threads;
	pthread_mutex_t lock;
	pthread_cond_t queued;		/* a slot was queued, or stop */
	pthread_cond_t done;		/* a read finished */
	uint64_t head, next, tail;	/* consume, read, add: head <= next <= tail */
	bool stop;
	int err;			/* the first error: the queue is dead */
	uint64_t failed_at;
};

static void *reader(void *arg)
{
	struct readq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct slot *s;
		int err;

		while (!q->stop && q->next == q->tail)
			pthread_cond_wait(&q->queued, &q->lock);
		if (q->stop)
			break;
		s = &q->slots[q->next++ % q->depth];
		s->state = SLOT_READING;
		pthread_mutex_unlock(&q->lock);
		err = q->read(q->rdata, s->buf, s->len, s->off);
		pthread_mutex_lock(&q->lock);
		s->err = err;
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&q->done);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static int fd_read(void *rdata, void *buf, size_t len, uint64_t off)
{
	return fd_pread_all(*(int *)rdata, buf, len, off);
}

int readq_open(int fd, size_t piece_max, unsigned int depth, readq_fn fn, void *data,
	       struct readq **out)
{
	int err = readq_open_fn(fd_read, NULL, piece_max, depth, fn, data, out);

	/* Before any readq_add(), whose lock orders it before every read. */
	if (!err)
		(*out)->fd = fd;
	return err;
}

int readq_open_fn(readq_read_fn read, void *rdata, size_t piece_max, unsigned int depth,
		  readq_fn fn, void *data, struct readq **out)
{
	struct readq *q = calloc(1, sizeof(*q));
	unsigned int i;

	*out = NULL;
	if (!q || !depth)
		goto fail;
	q->read = read;
	q->rdata = rdata ? rdata : &q->fd;
	q->fn = fn;
	q->data = data;
	q->depth = depth;
	q->failed_at = UINT64_MAX;
	q->slots = calloc(depth, sizeof(*q->slots));
	q->threads = calloc(depth, sizeof(*q->threads));
	if (!q->slots || !q->threads)
		goto fail;
	for (i = 0; i < depth; i++)
		if (posix_memalign(&q->slots[i].buf, READQ_ALIGN, piece_max))
			goto fail;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->queued, NULL);
	pthread_cond_init(&q->done, NULL);
	for (i = 0; i < depth; i++) {
		if (pthread_create(&q->threads[i], NULL, reader, q))
			break;
		q->nthreads++;
	}
	if (!q->nthreads) {
		readq_free(q);
		return -EAGAIN;
	}
	*out = q;
	return 0;
fail:
	if (q && q->slots)
		for (i = 0; i < depth; i++)
			free(q->slots[i].buf);
	if (q) {
		free(q->slots);
		free(q->threads);
	}
	free(q);
	return depth ? -ENOMEM : -EINVAL;
}

/* Wait for the oldest read and give it to fn. Called with the lock held. */
static int consume_one(struct readq *q)
{
	struct slot *s = &q->slots[q->head % q->depth];
	int err;

	while (s->state != SLOT_DONE)
		pthread_cond_wait(&q->done, &q->lock);
	err = s->err;
	if (err) {
		q->failed_at = s->off;
		return err;
	}
	pthread_mutex_unlock(&q->lock);
	err = q->fn(q->data, s->off, s->buf, s->len);
	pthread_mutex_lock(&q->lock);
	s->state = SLOT_FREE;
	q->head++;
	return err;
}

int readq_add(struct readq *q, uint64_t off, size_t len)
{
	struct slot *s;
	int err = 0;

	pthread_mutex_lock(&q->lock);
	if (q->err)
		err = q->err;
	else if (q->tail - q->head == q->depth)
		err = q->err = consume_one(q);
	if (!err) {
		s = &q->slots[q->tail++ % q->depth];
		s->off = off;
		s->len = len;
		s->state = SLOT_QUEUED;
		pthread_cond_signal(&q->queued);
	}
	pthread_mutex_unlock(&q->lock);
	return err;
}

int readq_finish(struct readq *q)
{
	int err;

	pthread_mutex_lock(&q->lock);
	err = q->err;
	while (!err && q->head != q->tail)
		err = q->err = consume_one(q);
	pthread_mutex_unlock(&q->lock);
	return err;
}

uint64_t readq_failed_at(const struct readq *q)
{
	return q->failed_at;
}

void readq_free(struct readq *q)
{
	unsigned int i;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->queued);
	pthread_mutex_unlock(&q->lock);
	/* A reader in pread() finishes it, then sees stop. */
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	for (i = 0; i < q->depth; i++)
		free(q->slots[i].buf);
	pthread_cond_destroy(&q->done);
	pthread_cond_destroy(&q->queued);
	pthread_mutex_destroy(&q->lock);
	free(q->slots);
	free(q->threads);
	free(q);
}

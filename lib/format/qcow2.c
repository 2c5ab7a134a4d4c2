// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the qcow2 image writer (qcow2.h). The layout it writes:
 *
 *	cluster 0           header (104 bytes), the backing format extension,
 *	                    the end of the extensions, the backing file name
 *	data clusters       in the order they were given
 *	L2 tables           one per L1 entry that maps any cluster
 *	L1 table            contiguous
 *	refcount blocks     every cluster of the file has refcount 1
 *	refcount table      contiguous
 *
 * All numbers big-endian, as the specification has them.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fdio.h"
#include "format/qcow2.h"

#define QCOW2_MAGIC		0x514649fbU	/* "QFI\xfb" */
#define HEADER_LEN		104
#define EXT_BACKING_FORMAT	0xe2792acaU
#define L2_ENTRIES		(QCOW2_CLUSTER_SIZE / 8)
#define REFCOUNT_ORDER		4		/* 16-bit refcounts */
#define RC_ENTRIES		(QCOW2_CLUSTER_SIZE * 8 / 16)
#define OFLAG_COPIED		(UINT64_C(1) << 63)	/* refcount exactly 1 */
#define ZERO_FLAG		UINT64_C(1)	/* standard descriptor bit 0: reads as zeros */

struct qcow2_writer {
	int fd;
	uint64_t bytes;			/* as asked: past them, zeros */
	uint64_t size;			/* guest bytes: @bytes in whole sectors */
	uint64_t l1_size;		/* L1 entries */
	uint64_t **l2;			/* [l1_size], each L2_ENTRIES or NULL */
	uint64_t next;			/* the next free host cluster */
	char backing[QCOW2_BACKING_MAX + 1];
	int err;
};

int qcow2_writer_open(int fd, uint64_t size, const char *backing,
		      struct qcow2_writer **out)
{
	struct qcow2_writer *w;
	uint64_t clusters = (size + QCOW2_CLUSTER_SIZE - 1) / QCOW2_CLUSTER_SIZE;

	*out = NULL;
	if (backing && (!*backing || strlen(backing) > QCOW2_BACKING_MAX))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->bytes = size;
	w->size = (size + 511) & ~UINT64_C(511);	/* QEMU counts 512-byte sectors */
	w->l1_size = (clusters + L2_ENTRIES - 1) / L2_ENTRIES;
	w->l2 = calloc(w->l1_size ? w->l1_size : 1, sizeof(*w->l2));
	w->next = 1;			/* cluster 0: the header */
	if (backing)
		strcpy(w->backing, backing);
	if (!w->l2) {
		free(w);
		return -ENOMEM;
	}
	*out = w;
	return 0;
}

int qcow2_write_cluster(struct qcow2_writer *w, uint64_t index, const void *data)
{
	uint64_t l1 = index / L2_ENTRIES, *e;
	int err;

	if (w->err)
		return w->err;
	if (l1 >= w->l1_size)
		return w->err = -ERANGE;
	if (!w->l2[l1]) {
		w->l2[l1] = calloc(L2_ENTRIES, sizeof(uint64_t));
		if (!w->l2[l1])
			return w->err = -ENOMEM;
	}
	e = &w->l2[l1][index % L2_ENTRIES];
	if (*e)
		return -EEXIST;		/* a caller's mistake: refused, nothing changed */
	if (!data) {
		*e = htobe64(ZERO_FLAG);
		return 0;
	}
	if (index * QCOW2_CLUSTER_SIZE >= w->bytes) {
		return w->err = -ERANGE;	/* in the last sector's padding only */
	} else if ((index + 1) * QCOW2_CLUSTER_SIZE > w->bytes) {
		/* The last cluster: what lies past the size reads as zeros. */
		uint8_t *last = calloc(1, QCOW2_CLUSTER_SIZE);

		if (!last)
			return w->err = -ENOMEM;
		memcpy(last, data, w->bytes - index * QCOW2_CLUSTER_SIZE);
		err = fd_pwrite_all(w->fd, last, QCOW2_CLUSTER_SIZE,
				    w->next * QCOW2_CLUSTER_SIZE);
		free(last);
	} else {
		err = fd_pwrite_all(w->fd, data, QCOW2_CLUSTER_SIZE,
				    w->next * QCOW2_CLUSTER_SIZE);
	}
	if (err)
		return w->err = err;
	*e = htobe64(w->next * QCOW2_CLUSTER_SIZE | OFLAG_COPIED);
	w->next++;
	return 0;
}

/* @n big-endian u64 entries as whole clusters at the next free one: its host offset. */
static int put_table(struct qcow2_writer *w, const uint64_t *t, uint64_t n, uint64_t *off)
{
	uint64_t clusters = (n * 8 + QCOW2_CLUSTER_SIZE - 1) / QCOW2_CLUSTER_SIZE;
	uint64_t bytes = clusters * QCOW2_CLUSTER_SIZE;
	uint8_t *buf = calloc(1, bytes ? bytes : 1);
	int err;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, t, n * 8);
	*off = w->next * QCOW2_CLUSTER_SIZE;
	err = bytes ? fd_pwrite_all(w->fd, buf, bytes, *off) : 0;
	w->next += clusters;
	free(buf);
	return err;
}

/* The L2 tables, then the L1 table that points at them. */
static int put_mapping(struct qcow2_writer *w, uint64_t *l1_off)
{
	uint64_t *l1 = calloc(w->l1_size ? w->l1_size : 1, 8), off;
	int err = l1 ? 0 : -ENOMEM;

	for (uint64_t i = 0; !err && i < w->l1_size; i++) {
		if (!w->l2[i])
			continue;
		err = put_table(w, w->l2[i], L2_ENTRIES, &off);
		l1[i] = htobe64(off | OFLAG_COPIED);
	}
	if (!err)
		err = put_table(w, l1, w->l1_size, l1_off);
	free(l1);
	return err;
}

/*
 * Refcount 1 for every cluster of the file, the refcount blocks and table
 * included: their number depends on itself, so it is iterated to a fixpoint.
 */
static int put_refcounts(struct qcow2_writer *w, uint64_t *rt_off, uint64_t *rt_clusters)
{
	uint64_t used = w->next, blocks = 0, table = 0, prev, total;
	uint64_t *rt = NULL;
	uint16_t *rb;
	int err = 0;

	do {
		prev = blocks + table;
		total = used + blocks + table;
		blocks = (total + RC_ENTRIES - 1) / RC_ENTRIES;
		table = (blocks * 8 + QCOW2_CLUSTER_SIZE - 1) / QCOW2_CLUSTER_SIZE;
	} while (blocks + table != prev);
	total = used + blocks + table;
	rt = calloc(table * L2_ENTRIES, 8);
	rb = malloc(QCOW2_CLUSTER_SIZE);
	if (!rt || !rb)
		err = -ENOMEM;
	for (uint64_t b = 0; !err && b < blocks; b++) {
		for (uint64_t i = 0; i < RC_ENTRIES; i++)
			rb[i] = htobe16(b * RC_ENTRIES + i < total ? 1 : 0);
		rt[b] = htobe64(w->next * QCOW2_CLUSTER_SIZE);
		err = fd_pwrite_all(w->fd, rb, QCOW2_CLUSTER_SIZE, w->next * QCOW2_CLUSTER_SIZE);
		w->next++;
	}
	if (!err)
		err = put_table(w, rt, table * L2_ENTRIES, rt_off);
	*rt_clusters = table;
	free(rt);
	free(rb);
	return err;
}

static void be32_at(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void be64_at(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

/* Cluster 0: the header, the backing format extension, the end, the backing name. */
static int put_header(struct qcow2_writer *w, uint64_t l1_off, uint64_t rt_off,
		      uint64_t rt_clusters)
{
	uint8_t *h = calloc(1, QCOW2_CLUSTER_SIZE);
	size_t k = HEADER_LEN, blen = strlen(w->backing);
	int err;

	if (!h)
		return -ENOMEM;
	be32_at(h, QCOW2_MAGIC);
	be32_at(h + 4, 3);
	be32_at(h + 20, QCOW2_CLUSTER_BITS);
	be64_at(h + 24, w->size);
	be32_at(h + 36, (uint32_t)w->l1_size);
	be64_at(h + 40, l1_off);
	be64_at(h + 48, rt_off);
	be32_at(h + 56, (uint32_t)rt_clusters);
	be32_at(h + 96, REFCOUNT_ORDER);
	be32_at(h + 100, HEADER_LEN);
	if (blen) {
		be32_at(h + k, EXT_BACKING_FORMAT);
		be32_at(h + k + 4, 5);
		memcpy(h + k + 8, "qcow2", 5);
		k += 8 + 8;		/* 5 bytes, padded to 8 */
	}
	k += 8;				/* the end of the extensions: type 0, length 0 */
	if (blen) {
		be64_at(h + 8, k);
		be32_at(h + 16, (uint32_t)blen);
		memcpy(h + k, w->backing, blen);
	}
	err = fd_pwrite_all(w->fd, h, QCOW2_CLUSTER_SIZE, 0);
	free(h);
	return err;
}

int qcow2_writer_finish(struct qcow2_writer *w)
{
	uint64_t l1_off = 0, rt_off = 0, rt_clusters = 0;
	int err = w->err;

	if (!err)
		err = put_mapping(w, &l1_off);
	if (!err)
		err = put_refcounts(w, &rt_off, &rt_clusters);
	if (!err)
		err = put_header(w, l1_off, rt_off, rt_clusters);
	qcow2_writer_abort(w);
	return err;
}

void qcow2_writer_abort(struct qcow2_writer *w)
{
	if (!w)
		return;
	for (uint64_t i = 0; i < w->l1_size; i++)
		free(w->l2[i]);
	free(w->l2);
	free(w);
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * blockhash: per-block hash files (see blockhash.h; layout in
 * doc/REPOSITORY.md). Integers are little-endian.
 *
 *	 0  4  magic "BTBH"
 *	 4  2  version (1)
 *	 6  2  flags (0)
 *	 8  4  block size
 *	12  4  reserved (0)
 *	16  8  blocks N = ceil(volume size / block size)
 *	24  8  volume size in bytes
 *	32  8  XXH3-64 of bytes [0, 32)
 *	40  8N XXH3-64 of each block, in order
 *	..  8  XXH3-64 of every byte before it
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/fdio.h"
#include "format/blockhash.h"

#define BH_MAGIC	"BTBH"
#define BH_HDR		40
#define BH_BUF		(64U << 10)

struct bh_header {
	char magic[4];
	uint16_t version;
	uint16_t flags;
	uint32_t block_size;
	uint32_t reserved;
	uint64_t nr_blocks;
	uint64_t volume_size;
	uint64_t checksum;
} __attribute__((packed));

_Static_assert(sizeof(struct bh_header) == BH_HDR, "hash file header layout");

struct blockhash_writer {
	blockhash_write_fn write;	/* fd_write() on an fd, or the caller's */
	void *data;
	int fd;
	XXH3_state_t *xx;
	uint64_t nr, put;
	size_t used;
	unsigned char buf[BH_BUF];
};

struct blockhash_reader {
	blockhash_read_fn read;		/* fd_read() on an fd, or the caller's */
	void *data;
	int fd;
	XXH3_state_t *xx;
	uint64_t nr, got, size;
	uint32_t block_size;
	size_t pos, len;
	unsigned char buf[BH_BUF];
};

uint64_t blockhash_block(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

static uint64_t nr_blocks(uint64_t size, uint32_t bs)
{
	return size / bs + !!(size % bs);
}

/* ---- writing ------------------------------------------------------------- */

static int fd_write(void *data, const void *buf, size_t len)
{
	return fd_write_all(*(int *)data, buf, len);
}

static ssize_t fd_read(void *data, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(*(int *)data, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int w_flush(struct blockhash_writer *w)
{
	int err = w->used ? w->write(w->data, w->buf, w->used) : 0;

	XXH3_64bits_update(w->xx, w->buf, w->used);
	w->used = 0;
	return err;
}

static int w_add(struct blockhash_writer *w, const void *p, size_t len)
{
	int err = 0;

	if (w->used + len > sizeof(w->buf))
		err = w_flush(w);
	memcpy(w->buf + w->used, p, len);
	w->used += len;
	return err;
}

/* @fn and @data, or with @fn NULL the fd @fd. */
static int writer_open(blockhash_write_fn fn, void *data, int fd, uint64_t volume_size,
		       uint32_t block_size, struct blockhash_writer **out)
{
	struct blockhash_writer *w;
	struct bh_header h;

	*out = NULL;
	if (!block_size || (block_size & (block_size - 1)))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->xx = XXH3_createState();
	if (!w->xx) {
		free(w);
		return -ENOMEM;
	}
	XXH3_64bits_reset(w->xx);
	w->fd = fd;
	w->write = fn ? fn : fd_write;
	w->data = fn ? data : &w->fd;
	w->nr = nr_blocks(volume_size, block_size);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, BH_MAGIC, 4);
	h.version = htole16(BLOCKHASH_VERSION);
	h.block_size = htole32(block_size);
	h.nr_blocks = htole64(w->nr);
	h.volume_size = htole64(volume_size);
	h.checksum = htole64(XXH3_64bits(&h, offsetof(struct bh_header, checksum)));
	w_add(w, &h, sizeof(h));
	*out = w;
	return 0;
}

int blockhash_writer_open(int fd, uint64_t volume_size, uint32_t block_size,
			  struct blockhash_writer **out)
{
	return writer_open(NULL, NULL, fd, volume_size, block_size, out);
}

int blockhash_writer_open_fn(blockhash_write_fn fn, void *data, uint64_t volume_size,
			     uint32_t block_size, struct blockhash_writer **out)
{
	return writer_open(fn, data, -1, volume_size, block_size, out);
}

int blockhash_put(struct blockhash_writer *w, uint64_t hash)
{
	uint64_t le = htole64(hash);

	if (w->put == w->nr)
		return -ERANGE;
	w->put++;
	return w_add(w, &le, sizeof(le));
}

int blockhash_writer_finish(struct blockhash_writer *w)
{
	uint64_t digest;
	int err = w->put == w->nr ? w_flush(w) : -ERANGE;

	if (!err) {
		digest = htole64(XXH3_64bits_digest(w->xx));
		err = w->write(w->data, &digest, sizeof(digest));
	}
	blockhash_writer_abort(w);
	return err;
}

void blockhash_writer_abort(struct blockhash_writer *w)
{
	if (!w)
		return;
	XXH3_freeState(w->xx);
	free(w);
}

/* ---- reading ------------------------------------------------------------- */

/* Fill the buffer with what is left of the file, up to its size. */
static int r_fill(struct blockhash_reader *r)
{
	memmove(r->buf, r->buf + r->pos, r->len - r->pos);
	r->len -= r->pos;
	r->pos = 0;
	while (r->len < sizeof(r->buf)) {
		ssize_t n = r->read(r->data, r->buf + r->len, sizeof(r->buf) - r->len);

		if (n < 0)
			return (int)n;
		if (!n)
			break;
		r->len += n;
	}
	return 0;
}

/* Take @len bytes of the file; -EBADMSG if it ends first. */
static int r_take(struct blockhash_reader *r, void *out, size_t len, bool digest)
{
	int err;

	if (r->len - r->pos < len) {
		err = r_fill(r);
		if (err)
			return err;
		if (r->len - r->pos < len)
			return -EBADMSG;
	}
	memcpy(out, r->buf + r->pos, len);
	if (digest)
		XXH3_64bits_update(r->xx, r->buf + r->pos, len);
	r->pos += len;
	return 0;
}

/* @fn and @data, or with @fn NULL the fd @fd. */
static int reader_open(blockhash_read_fn fn, void *data, int fd, struct blockhash_reader **out)
{
	struct blockhash_reader *r;
	struct bh_header h;
	int err;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->xx = XXH3_createState();
	if (!r->xx) {
		free(r);
		return -ENOMEM;
	}
	XXH3_64bits_reset(r->xx);
	r->fd = fd;
	r->read = fn ? fn : fd_read;
	r->data = fn ? data : &r->fd;
	err = r_take(r, &h, sizeof(h), true);
	if (!err && (memcmp(h.magic, BH_MAGIC, 4) ||
		     le64toh(h.checksum) != XXH3_64bits(&h, offsetof(struct bh_header, checksum))))
		err = -EBADMSG;
	if (!err && (le16toh(h.version) != BLOCKHASH_VERSION || h.flags || h.reserved))
		err = -EPROTONOSUPPORT;
	if (!err) {
		r->block_size = le32toh(h.block_size);
		r->size = le64toh(h.volume_size);
		r->nr = le64toh(h.nr_blocks);
		if (!r->block_size || (r->block_size & (r->block_size - 1)) ||
		    r->nr != nr_blocks(r->size, r->block_size))
			err = -EBADMSG;
	}
	if (err) {
		blockhash_reader_free(r);
		return err;
	}
	*out = r;
	return 0;
}

int blockhash_reader_open(int fd, struct blockhash_reader **out)
{
	return reader_open(NULL, NULL, fd, out);
}

int blockhash_reader_open_fn(blockhash_read_fn fn, void *data, struct blockhash_reader **out)
{
	return reader_open(fn, data, -1, out);
}

uint64_t blockhash_reader_volume_size(const struct blockhash_reader *r)
{
	return r->size;
}

uint32_t blockhash_reader_block_size(const struct blockhash_reader *r)
{
	return r->block_size;
}

uint64_t blockhash_reader_blocks(const struct blockhash_reader *r)
{
	return r->nr;
}

int blockhash_get(struct blockhash_reader *r, uint64_t *hash)
{
	uint64_t le;
	int err;

	if (r->got == r->nr)
		return -ENODATA;
	err = r_take(r, &le, sizeof(le), true);
	if (err)
		return err;
	r->got++;
	*hash = le64toh(le);
	return 0;
}

int blockhash_reader_finish(struct blockhash_reader *r)
{
	uint64_t h, digest;
	int err = 0;

	while (!err && r->got < r->nr)
		err = blockhash_get(r, &h);
	if (!err) {
		digest = XXH3_64bits_digest(r->xx);
		err = r_take(r, &h, sizeof(h), false);
		if (!err && le64toh(h) != digest)
			err = -EBADMSG;
	}
	/* Nothing may follow the trailer. */
	if (!err)
		err = r_fill(r);
	if (!err && r->len != r->pos)
		err = -EBADMSG;
	blockhash_reader_free(r);
	return err;
}

void blockhash_reader_free(struct blockhash_reader *r)
{
	if (!r)
		return;
	XXH3_freeState(r->xx);
	free(r);
}

/* The whole file through @r, then freed: its size and block size. */
static int check(struct blockhash_reader *r, uint64_t *size, uint32_t *block_size)
{
	uint64_t s = r->size;
	uint32_t bs = r->block_size;
	int err = blockhash_reader_finish(r);

	if (!err) {
		*size = s;
		*block_size = bs;
	}
	return err;
}

int blockhash_check(int fd, uint64_t *size, uint32_t *block_size)
{
	struct blockhash_reader *r;
	int err;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	err = blockhash_reader_open(fd, &r);
	if (!err)
		err = check(r, size, block_size);
	if (!err && lseek(fd, 0, SEEK_SET) < 0)
		err = -errno;
	return err;
}

int blockhash_check_fn(blockhash_read_fn fn, void *data, uint64_t *size, uint32_t *block_size)
{
	struct blockhash_reader *r;
	int err = blockhash_reader_open_fn(fn, data, &r);

	return err ? err : check(r, size, block_size);
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bfile: the backup stream format, version 1 (doc/FORMAT.md).
 *
 * Sections: On-disk layout (the packed little-endian structs and their
 * pack/unpack helpers, the only code that touches them), Header checks,
 * Writer, Reader.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <linux/types.h>
#include <xxhash.h>
#include <zstd.h>

#include "core/fdio.h"
#include "format/bfile.h"

#define __packed	__attribute__((packed))

#define BFILE_ZSTD_LEVEL	1	/* fast: a backup is bound by the disk */
#define BFILE_IOBUF_SIZE	(256U << 10)
#define BFILE_HEADER_LEN_MAX	4096U

static const uint8_t bfile_magic[8] = { 'B', 'L', 'K', 'T', 'R', 'K', 'B', '\0' };

/* ---- On-disk layout ---------------------------------------------------- */

struct bfile_stamp_disk {
	__u8 generation[16];		/*  0 */
	__le64 epoch;			/* 16 */
	__le64 size;			/* 24 */
	__le32 block_size;		/* 32 */
	__le32 reserved;		/* 36: zero */
} __packed;				/* 40 */

struct bfile_header_disk {
	__u8 magic[8];			/*   0: "BLKTRKB\0" */
	__le32 version;			/*   8 */
	__le32 header_len;		/*  12: 256 in v1, checksum in the last 8 */
	__le32 flags;			/*  16: bits 0-7 compression, rest zero */
	__le32 type;			/*  20 */
	char volume_id[64];		/*  24: NUL-terminated, NUL-padded */
	__le64 volume_size;		/*  88 */
	__le32 block_size;		/*  96 */
	__le32 record_max;		/* 100 */
	struct bfile_stamp_disk from;	/* 104 */
	struct bfile_stamp_disk to;	/* 144 */
	__le64 ctime_ns;		/* 184 */
	__u8 id[16];			/* 192 */
	__u8 parent_id[16];		/* 208 */
	__u8 reserved[24];		/* 224: zero */
	__le64 checksum;		/* 248: xxh3-64 of bytes 0..247 */
} __packed;				/* 256 */

#define BFILE_HDR_FLAGS_COMP_MASK	0xffU

struct bfile_rec_disk {
	__le32 tag;			/*  0 */
	__le32 flags;			/*  4 */
	__le32 payload_len;		/*  8: payload bytes once decoded */
	__le32 stored_len;		/* 12: payload bytes that follow */
	__le64 offset;			/* 16: volume byte offset */
	__le64 length;			/* 24: volume bytes covered */
	__le64 checksum;		/* 32: xxh3-64 of bytes 0..31 + stored payload */
} __packed;				/* 40 */

#define BFILE_REC_CSUM_SPAN	offsetof(struct bfile_rec_disk, checksum)

struct bfile_end_disk {
	__le64 records;			/*  0: records before END */
	__le64 data_bytes;		/*  8 */
	__le64 zero_bytes;		/* 16 */
	__u8 digest[16];		/* 24: XXH3-128 canonical, stream before END */
} __packed;				/* 40 */

_Static_assert(sizeof(struct bfile_stamp_disk) == 40, "stamp layout");
_Static_assert(sizeof(struct bfile_header_disk) == 256, "header layout");
_Static_assert(offsetof(struct bfile_header_disk, checksum) == 248, "header layout");
_Static_assert(sizeof(struct bfile_rec_disk) == 40, "record layout");
_Static_assert(sizeof(struct bfile_end_disk) == 40, "END layout");

/* The part of a longer (later v1) header that this code knows. */
#define BFILE_HEADER_V1_LEN	sizeof(struct bfile_header_disk)

struct bfile_rec {
	uint32_t tag;
	uint32_t flags;
	uint32_t payload_len;
	uint32_t stored_len;
	uint64_t offset;
	uint64_t length;
	uint64_t checksum;
};

static void pack_stamp(struct bfile_stamp_disk *d, const struct bfile_stamp *s)
{
	memcpy(d->generation, s->generation, sizeof(d->generation));
	d->epoch = htole64(s->epoch);
	d->size = htole64(s->size);
	d->block_size = htole32(s->block_size);
	d->reserved = 0;
}

static void unpack_stamp(struct bfile_stamp *s, const struct bfile_stamp_disk *d)
{
	memcpy(s->generation, d->generation, sizeof(s->generation));
	s->epoch = le64toh(d->epoch);
	s->size = le64toh(d->size);
	s->block_size = le32toh(d->block_size);
}

/* @h checked; the checksum is computed here too. */
static void pack_header(struct bfile_header_disk *d, const struct bfile_header *h)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->magic, bfile_magic, sizeof(d->magic));
	d->version = htole32(BFILE_VERSION);
	d->header_len = htole32(sizeof(*d));
	d->flags = htole32(h->compression & BFILE_HDR_FLAGS_COMP_MASK);
	d->type = htole32(h->type);
	strncpy(d->volume_id, h->volume_id, sizeof(d->volume_id));
	d->volume_size = htole64(h->volume_size);
	d->block_size = htole32(h->block_size);
	d->record_max = htole32(h->record_max);
	pack_stamp(&d->from, &h->from);
	pack_stamp(&d->to, &h->to);
	d->ctime_ns = htole64(h->ctime_ns);
	memcpy(d->id, h->id, sizeof(d->id));
	memcpy(d->parent_id, h->parent_id, sizeof(d->parent_id));
	d->checksum = htole64(XXH3_64bits(d, offsetof(struct bfile_header_disk, checksum)));
}

/* Fields only; magic, version, length and checksum are the caller's. */
static void unpack_header(struct bfile_header *h, const struct bfile_header_disk *d,
			  uint32_t *hflags)
{
	memset(h, 0, sizeof(*h));
	h->version = le32toh(d->version);
	*hflags = le32toh(d->flags);
	h->compression = *hflags & BFILE_HDR_FLAGS_COMP_MASK;
	h->type = le32toh(d->type);
	memcpy(h->volume_id, d->volume_id, sizeof(h->volume_id));
	h->volume_size = le64toh(d->volume_size);
	h->block_size = le32toh(d->block_size);
	h->record_max = le32toh(d->record_max);
	unpack_stamp(&h->from, &d->from);
	unpack_stamp(&h->to, &d->to);
	h->ctime_ns = le64toh(d->ctime_ns);
	memcpy(h->id, d->id, sizeof(h->id));
	memcpy(h->parent_id, d->parent_id, sizeof(h->parent_id));
}

/* Without the checksum, which covers the packed bytes and the payload. */
static void pack_rec(struct bfile_rec_disk *d, const struct bfile_rec *r)
{
	d->tag = htole32(r->tag);
	d->flags = htole32(r->flags);
	d->payload_len = htole32(r->payload_len);
	d->stored_len = htole32(r->stored_len);
	d->offset = htole64(r->offset);
	d->length = htole64(r->length);
	d->checksum = htole64(r->checksum);
}

static void unpack_rec(struct bfile_rec *r, const struct bfile_rec_disk *d)
{
	r->tag = le32toh(d->tag);
	r->flags = le32toh(d->flags);
	r->payload_len = le32toh(d->payload_len);
	r->stored_len = le32toh(d->stored_len);
	r->offset = le64toh(d->offset);
	r->length = le64toh(d->length);
	r->checksum = le64toh(d->checksum);
}

static void pack_end(struct bfile_end_disk *d, const struct bfile_stats *st)
{
	d->records = htole64(st->records);
	d->data_bytes = htole64(st->data_bytes);
	d->zero_bytes = htole64(st->zero_bytes);
	memcpy(d->digest, st->digest, sizeof(d->digest));
}

static void unpack_end(struct bfile_stats *st, const struct bfile_end_disk *d)
{
	st->records = le64toh(d->records);
	st->data_bytes = le64toh(d->data_bytes);
	st->zero_bytes = le64toh(d->zero_bytes);
	memcpy(st->digest, d->digest, sizeof(st->digest));
}

static uint64_t rec_checksum(XXH3_state_t *s, const struct bfile_rec_disk *d,
			     const void *payload, size_t len)
{
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, d, BFILE_REC_CSUM_SPAN);
	if (len)
		XXH3_64bits_update(s, payload, len);
	return XXH3_64bits_digest(s);
}

static void digest_canonical(XXH3_state_t *s, uint8_t out[BFILE_DIGEST_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s));
	memcpy(out, c.digest, BFILE_DIGEST_LEN);
}

/* ---- Names and header checks -------------------------------------------- */

static const char *const type_names[] = {
	[BFILE_TYPE_FULL] = "full",
	[BFILE_TYPE_INCREMENTAL] = "incremental",
	[BFILE_TYPE_DIFFERENTIAL] = "differential",
	[BFILE_TYPE_COPY] = "copy",
	[BFILE_TYPE_RESYNC] = "resync",
};

const char *bfile_type_name(uint32_t type)
{
	if (type >= sizeof(type_names) / sizeof(type_names[0]))
		return NULL;
	return type_names[type];
}

int bfile_type_parse(const char *name, uint32_t *type)
{
	uint32_t t;

	for (t = 1; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
		if (!strcmp(name, type_names[t])) {
			*type = t;
			return 0;
		}
	}
	return -EINVAL;
}

const char *bfile_compression_name(uint32_t comp)
{
	switch (comp) {
	case BFILE_COMP_NONE:
		return "none";
	case BFILE_COMP_ZSTD:
		return "zstd";
	default:
		return NULL;
	}
}

const char *bfile_tag_name(uint32_t tag)
{
	switch (tag) {
	case BFILE_TAG_DATA:
		return "DATA";
	case BFILE_TAG_ZERO:
		return "ZERO";
	case BFILE_TAG_END:
		return "END";
	default:
		return NULL;
	}
}

bool bfile_id_is_zero(const uint8_t id[BFILE_ID_LEN])
{
	static const uint8_t zero[BFILE_ID_LEN];

	return !memcmp(id, zero, BFILE_ID_LEN);
}

static bool stamp_is_zero(const struct bfile_stamp *s)
{
	static const uint8_t zero[16];

	return !s->epoch && !s->size && !s->block_size &&
	       !memcmp(s->generation, zero, sizeof(zero));
}

int bfile_new_id(uint8_t id[BFILE_ID_LEN])
{
	size_t got = 0;
	ssize_t n;

	while (got < BFILE_ID_LEN) {
		n = getrandom(id + got, BFILE_ID_LEN - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += n;
	}
	return 0;
}

int bfile_header_init(struct bfile_header *h, uint32_t type)
{
	struct timespec ts;

	memset(h, 0, sizeof(*h));
	h->version = BFILE_VERSION;
	h->compression = BFILE_COMP_ZSTD;
	h->type = type;
	h->record_max = BFILE_RECORD_MAX_DEFAULT;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -errno;
	h->ctime_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return bfile_new_id(h->id);
}

static uint32_t record_max_of(const struct bfile_header *h)
{
	if (h->record_max)
		return h->record_max;
	return h->block_size > BFILE_RECORD_MAX_DEFAULT ? h->block_size :
	       BFILE_RECORD_MAX_DEFAULT;
}

/*
 * The checks that the writer and the reader share. -EPROTO for what a
 * later version may define (compression, type), -EINVAL for the rest; the
 * reader turns -EINVAL into -EBADMSG.
 */
static int header_check(const struct bfile_header *h, uint32_t record_max,
			char *msg, size_t msglen)
{
	if (!bfile_compression_name(h->compression)) {
		snprintf(msg, msglen, "unknown compression %u", h->compression);
		return -EPROTO;
	}
	if (!bfile_type_name(h->type)) {
		snprintf(msg, msglen, "unknown backup type %u", h->type);
		return -EPROTO;
	}
	if (strnlen(h->volume_id, sizeof(h->volume_id)) >= sizeof(h->volume_id)) {
		snprintf(msg, msglen, "volume id longer than %d bytes",
			 BFILE_VOLUME_ID_LEN - 1);
		return -EINVAL;
	}
	if (h->block_size < BFILE_BLOCK_SIZE_MIN || h->block_size > BFILE_BLOCK_SIZE_MAX ||
	    (h->block_size & (h->block_size - 1))) {
		snprintf(msg, msglen, "block size %u is not a power of two in %u..%u",
			 h->block_size, BFILE_BLOCK_SIZE_MIN, BFILE_BLOCK_SIZE_MAX);
		return -EINVAL;
	}
	if (record_max < h->block_size || record_max > BFILE_RECORD_MAX_LIMIT ||
	    record_max % h->block_size) {
		snprintf(msg, msglen, "record size %u is not a multiple of the block "
			 "size %u up to %u", record_max, h->block_size,
			 BFILE_RECORD_MAX_LIMIT);
		return -EINVAL;
	}
	if ((h->type == BFILE_TYPE_FULL || h->type == BFILE_TYPE_COPY) &&
	    !stamp_is_zero(&h->from)) {
		snprintf(msg, msglen, "a %s backup has a non-zero from-stamp",
			 bfile_type_name(h->type));
		return -EINVAL;
	}
	if (bfile_id_is_zero(h->id)) {
		snprintf(msg, msglen, "the backup id is all zero");
		return -EINVAL;
	}
	return 0;
}

/* Offset and length of a DATA or ZERO record against the stream so far. */
static int range_check(uint64_t next, uint64_t volume_size, uint32_t block_size,
		       uint64_t offset, uint64_t length, char *msg, size_t msglen)
{
	if (offset < next) {
		snprintf(msg, msglen, "volume offset %" PRIu64 " is before the end of "
			 "the previous record (%" PRIu64 "): out of order or overlapping",
			 offset, next);
		return -ERANGE;
	}
	if (length > volume_size || offset > volume_size - length) {
		snprintf(msg, msglen, "range %" PRIu64 "+%" PRIu64 " is past the volume "
			 "size %" PRIu64, offset, length, volume_size);
		return -ERANGE;
	}
	if (offset % block_size ||
	    (length % block_size && offset + length != volume_size)) {
		snprintf(msg, msglen, "range %" PRIu64 "+%" PRIu64 " is not aligned to "
			 "the block size %u", offset, length, block_size);
		return -ERANGE;
	}
	return 0;
}

/* ---- Writer ------------------------------------------------------------ */

enum pend_kind { PEND_NONE, PEND_DATA, PEND_ZERO };

struct bfile_writer {
	bfile_write_fn write;		/* fd_write() on an fd, or the caller's */
	void *write_data;
	int fd;
	int err;			/* sticky */
	struct bfile_header h;
	uint64_t next;			/* volume offset after the last accepted byte */
	enum pend_kind pend;		/* the record being gathered */
	uint64_t pend_off;
	uint64_t pend_len;
	uint8_t *data;			/* pending DATA, record_max bytes */
	uint8_t *cbuf;			/* compressed, ZSTD_compressBound(record_max) */
	size_t cbuf_size;
	ZSTD_CCtx *cctx;
	uint8_t *out;			/* output buffer */
	size_t out_len;
	XXH3_state_t *digest;		/* XXH3-128 of the stream before END */
	XXH3_state_t *csum;		/* per-record xxh3-64 */
	struct bfile_stats st;
	char msg[256];
};

__attribute__((format(printf, 3, 4)))
static int werr(struct bfile_writer *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
	/* A bad argument leaves the stream intact; a failed write does not. */
	if (err != -EINVAL && err != -ERANGE)
		w->err = err;
	return err;
}

/* bfile_write_fn of bfile_writer_open(): the writer's fd. */
static int fd_write(void *data, const void *buf, size_t len)
{
	return fd_write_all(*(int *)data, buf, len);
}

static int out_flush(struct bfile_writer *w)
{
	int err = w->out_len ? w->write(w->write_data, w->out, w->out_len) : 0;

	if (err)
		return werr(w, err, "writing at byte %" PRIu64 ": %s",
			    w->st.stream_bytes - w->out_len, strerror(-err));
	w->out_len = 0;
	return 0;
}

static int out_put(struct bfile_writer *w, const void *p, size_t len)
{
	size_t n;
	int err;

	while (len) {
		if (w->out_len == BFILE_IOBUF_SIZE) {
			err = out_flush(w);
			if (err < 0)
				return err;
		}
		n = BFILE_IOBUF_SIZE - w->out_len;
		if (n > len)
			n = len;
		memcpy(w->out + w->out_len, p, n);
		w->out_len += n;
		w->st.stream_bytes += n;
		p = (const uint8_t *)p + n;
		len -= n;
	}
	return 0;
}

/* One record, no checks: the callers make it valid (tests make it not). */
static int emit_record(struct bfile_writer *w, uint32_t tag, uint32_t flags,
		       uint32_t payload_len, uint64_t offset, uint64_t length,
		       const void *payload, uint32_t stored_len)
{
	struct bfile_rec r = {
		.tag = tag, .flags = flags, .payload_len = payload_len,
		.stored_len = stored_len, .offset = offset, .length = length,
	};
	struct bfile_rec_disk d;
	int err;

	if (w->err)
		return w->err;
	pack_rec(&d, &r);
	d.checksum = htole64(rec_checksum(w->csum, &d, payload, stored_len));
	if (tag != BFILE_TAG_END) {
		XXH3_128bits_update(w->digest, &d, sizeof(d));
		if (stored_len)
			XXH3_128bits_update(w->digest, payload, stored_len);
		w->st.records++;
	}
	err = out_put(w, &d, sizeof(d));
	if (!err && stored_len)
		err = out_put(w, payload, stored_len);
	return err;
}

static int flush_pending(struct bfile_writer *w)
{
	const void *payload = w->data;
	uint32_t flags = 0, stored;
	size_t c;
	int err;

	switch (w->pend) {
	case PEND_NONE:
		return 0;
	case PEND_ZERO:
		err = emit_record(w, BFILE_TAG_ZERO, 0, 0, w->pend_off, w->pend_len, NULL, 0);
		if (err < 0)
			return err;
		w->st.zero_records++;
		w->st.zero_bytes += w->pend_len;
		break;
	case PEND_DATA:
		stored = w->pend_len;
		if (w->h.compression == BFILE_COMP_ZSTD) {
			c = ZSTD_compressCCtx(w->cctx, w->cbuf, w->cbuf_size, w->data,
					      w->pend_len, BFILE_ZSTD_LEVEL);
			if (!ZSTD_isError(c) && c < w->pend_len) {
				payload = w->cbuf;
				stored = c;
				flags |= BFILE_REC_COMPRESSED;
			}
		}
		err = emit_record(w, BFILE_TAG_DATA, flags, w->pend_len, w->pend_off,
				  w->pend_len, payload, stored);
		if (err < 0)
			return err;
		w->st.data_records++;
		w->st.data_bytes += w->pend_len;
		w->st.stored_bytes += stored;
		break;
	}
	w->pend = PEND_NONE;
	return 0;
}

/* @fn and @data, or with @fn NULL the fd @fd. */
static int writer_open(bfile_write_fn fn, void *data, int fd, const struct bfile_header *h,
		       struct bfile_writer **wp)
{
	struct bfile_header_disk d;
	struct bfile_writer *w;
	int err;

	*wp = w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->write = fn ? fn : fd_write;
	w->write_data = fn ? data : &w->fd;
	w->h = *h;
	w->h.version = BFILE_VERSION;
	w->h.record_max = record_max_of(h);
	err = header_check(&w->h, w->h.record_max, w->msg, sizeof(w->msg));
	if (err < 0) {
		w->err = err == -EPROTO ? -EINVAL : err;
		return w->err;
	}
	w->cbuf_size = ZSTD_compressBound(w->h.record_max);
	w->data = malloc(w->h.record_max);
	w->out = malloc(BFILE_IOBUF_SIZE);
	w->digest = XXH3_createState();
	w->csum = XXH3_createState();
	if (w->h.compression == BFILE_COMP_ZSTD) {
		w->cbuf = malloc(w->cbuf_size);
		w->cctx = ZSTD_createCCtx();
	}
	if (!w->data || !w->out || !w->digest || !w->csum ||
	    (w->h.compression == BFILE_COMP_ZSTD && (!w->cbuf || !w->cctx)))
		return werr(w, -ENOMEM, "%s", strerror(ENOMEM));
	XXH3_128bits_reset(w->digest);
	pack_header(&d, &w->h);
	XXH3_128bits_update(w->digest, &d, sizeof(d));
	return out_put(w, &d, sizeof(d));
}

int bfile_writer_open(int fd, const struct bfile_header *h, struct bfile_writer **wp)
{
	return writer_open(NULL, NULL, fd, h, wp);
}

int bfile_writer_open_fn(bfile_write_fn fn, void *data, const struct bfile_header *h,
			 struct bfile_writer **wp)
{
	return writer_open(fn, data, -1, h, wp);
}

static int write_check(struct bfile_writer *w, uint64_t offset, uint64_t len)
{
	char msg[192];
	int err;

	if (w->err)
		return w->err;
	err = range_check(w->next, w->h.volume_size, w->h.block_size, offset, len,
			  msg, sizeof(msg));
	if (err < 0)
		return werr(w, err, "%s", msg);
	if (offset != w->next)
		return flush_pending(w);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

/* Add a run to the pending record, flushing it when it cannot grow. */
static int add_run(struct bfile_writer *w, enum pend_kind kind, uint64_t offset,
		   const uint8_t *buf, uint64_t len)
{
	uint64_t n;
	int err;

	while (len) {
		if (w->pend != kind || w->pend_off + w->pend_len != offset ||
		    (kind == PEND_DATA && w->pend_len == w->h.record_max)) {
			err = flush_pending(w);
			if (err < 0)
				return err;
			w->pend = kind;
			w->pend_off = offset;
			w->pend_len = 0;
		}
		n = len;
		if (kind == PEND_DATA) {
			if (n > w->h.record_max - w->pend_len)
				n = w->h.record_max - w->pend_len;
			memcpy(w->data + w->pend_len, buf, n);
			buf += n;
		}
		w->pend_len += n;
		offset += n;
		len -= n;
	}
	return 0;
}

int bfile_write_data(struct bfile_writer *w, uint64_t offset, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t run_off = offset;
	size_t i = 0, run = 0, n;
	bool zero, run_zero = false;
	int err;

	if (!len)
		return w->err;
	err = write_check(w, offset, len);
	if (err < 0)
		return err;
	/* Split into runs of zero and non-zero blocks. */
	while (i < len) {
		n = len - i < w->h.block_size ? len - i : w->h.block_size;
		zero = all_zero(p + i, n);
		if (run && zero != run_zero) {
			err = add_run(w, run_zero ? PEND_ZERO : PEND_DATA, run_off,
				      p + (run_off - offset), run);
			if (err < 0)
				return err;
			run_off += run;
			run = 0;
		}
		run_zero = zero;
		run += n;
		i += n;
	}
	err = add_run(w, run_zero ? PEND_ZERO : PEND_DATA, run_off, p + (run_off - offset), run);
	if (err < 0)
		return err;
	w->next = offset + len;
	return 0;
}

int bfile_write_zero(struct bfile_writer *w, uint64_t offset, uint64_t len)
{
	int err;

	if (!len)
		return w->err;
	err = write_check(w, offset, len);
	if (!err)
		err = add_run(w, PEND_ZERO, offset, NULL, len);
	if (err < 0)
		return err;
	w->next = offset + len;
	return 0;
}

int bfile_write_extension(struct bfile_writer *w, uint32_t tag, uint32_t flags,
			  uint64_t offset, const void *payload, size_t len)
{
	int err;

	if (w->err)
		return w->err;
	if (bfile_tag_name(tag) || (flags & BFILE_REC_COMPRESSED) ||
	    len > BFILE_EXT_PAYLOAD_MAX)
		return werr(w, -EINVAL, "extension record: tag 0x%08x is a v1 tag, or "
			    "flags 0x%x or length %zu are invalid", tag, flags, len);
	err = flush_pending(w);
	if (!err)
		err = emit_record(w, tag, flags, len, offset, 0, payload, len);
	return err;
}

void bfile_writer_stats(const struct bfile_writer *w, struct bfile_stats *st)
{
	*st = w->st;
}

const char *bfile_writer_error(const struct bfile_writer *w)
{
	if (!w)
		return strerror(ENOMEM);
	return w->msg[0] ? w->msg : "no error";
}

void bfile_writer_abort(struct bfile_writer *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->cctx);
	XXH3_freeState(w->digest);
	XXH3_freeState(w->csum);
	free(w->cbuf);
	free(w->data);
	free(w->out);
	free(w);
}

int bfile_writer_finish(struct bfile_writer *w, struct bfile_stats *st)
{
	struct bfile_end_disk end;
	int err;

	err = flush_pending(w);
	if (!err) {
		digest_canonical(w->digest, w->st.digest);
		pack_end(&end, &w->st);
		err = emit_record(w, BFILE_TAG_END, 0, sizeof(end), 0, 0, &end, sizeof(end));
	}
	if (!err)
		err = out_flush(w);
	if (st)
		*st = w->st;
	bfile_writer_abort(w);
	return err;
}

/* ---- Reader ------------------------------------------------------------ */

struct bfile_reader {
	bfile_read_fn read;		/* the source */
	void *read_data;
	int fd;				/* fd_read()'s */
	int err;			/* sticky; 0 until END */
	bool done;			/* END verified */
	struct bfile_header h;
	uint64_t pos;			/* stream bytes consumed */
	uint64_t next;			/* volume offset after the last record */
	uint8_t *in;			/* input buffer */
	size_t in_pos, in_len;
	uint8_t *stored;		/* a record's stored payload */
	size_t stored_cap;
	uint8_t *data;			/* decompressed DATA, record_max bytes */
	ZSTD_DCtx *dctx;
	XXH3_state_t *digest;
	XXH3_state_t *csum;
	struct bfile_stats st;
	uint32_t deliver;		/* an extension tag handed to the caller, or 0 */
	char msg[320];
};

__attribute__((format(printf, 3, 4)))
static int rerr(struct bfile_reader *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->err = err;
	return err;
}

/* Refill: > 0 bytes available, 0 at end of file, or -errno. */
static ssize_t in_fill(struct bfile_reader *r)
{
	ssize_t n;

	if (r->in_pos < r->in_len)
		return r->in_len - r->in_pos;
	r->in_pos = r->in_len = 0;
	for (;;) {
		n = r->read(r->read_data, r->in, BFILE_IOBUF_SIZE);
		if (n >= 0)
			break;
		if (n != -EINTR)
			return rerr(r, n, "reading at byte %" PRIu64 ": %s",
				    r->pos, strerror(-n));
	}
	r->in_len = n;
	return n;
}

/*
 * Up to @len bytes into @dst (or hashed into @hash and dropped when @dst is
 * NULL). Returns the bytes read, short only at end of file, or -errno.
 */
static ssize_t in_read(struct bfile_reader *r, void *dst, size_t len, XXH3_state_t *hash)
{
	size_t got = 0, n;
	ssize_t avail;

	while (got < len) {
		avail = in_fill(r);
		if (avail < 0)
			return avail;
		if (!avail)
			break;
		n = len - got < (size_t)avail ? len - got : (size_t)avail;
		if (dst)
			memcpy((uint8_t *)dst + got, r->in + r->in_pos, n);
		else {
			XXH3_64bits_update(hash, r->in + r->in_pos, n);
			XXH3_128bits_update(r->digest, r->in + r->in_pos, n);
		}
		r->in_pos += n;
		r->pos += n;
		got += n;
	}
	return got;
}


/* Most reader messages start with the record and where it starts. */
__attribute__((format(printf, 5, 6)))
static int rec_err(struct bfile_reader *r, int err, uint64_t index, uint64_t at,
		   const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return rerr(r, err, "record %" PRIu64 " at byte %" PRIu64 ": %s", index, at, why);
}

static void reader_free_bufs(struct bfile_reader *r)
{
	ZSTD_freeDCtx(r->dctx);
	XXH3_freeState(r->digest);
	XXH3_freeState(r->csum);
	free(r->in);
	free(r->stored);
	free(r->data);
}

void bfile_reader_free(struct bfile_reader *r)
{
	if (!r)
		return;
	reader_free_bufs(r);
	free(r);
}

static int header_read(struct bfile_reader *r, struct bfile_header *h)
{
	uint8_t buf[BFILE_HEADER_LEN_MAX];
	const struct bfile_header_disk *d = (const void *)buf;
	const size_t fixed = offsetof(struct bfile_header_disk, flags);
	uint32_t version, hlen, hflags;
	uint64_t stored, computed;
	char msg[192];
	ssize_t n;
	int err;

	n = in_read(r, buf, fixed, NULL);
	if (n < 0)
		return n;
	if (memcmp(buf, bfile_magic, n < (ssize_t)sizeof(bfile_magic) ? n :
		   (ssize_t)sizeof(bfile_magic)))
		return rerr(r, -EPROTO, "header: bad magic: not a blktrack backup");
	if (n < (ssize_t)fixed)
		return rerr(r, -ENODATA, "truncated: the stream ends at byte %zd, "
			    "inside the header", n);
	version = le32toh(d->version);
	hlen = le32toh(d->header_len);
	if (version < BFILE_VERSION_MIN || version > BFILE_VERSION_MAX)
		return rerr(r, -EPROTO, "header: format version %u; this reader "
			    "reads versions %u to %u", version, BFILE_VERSION_MIN,
			    BFILE_VERSION_MAX);
	if (hlen < BFILE_HEADER_V1_LEN || hlen > BFILE_HEADER_LEN_MAX || hlen % 8)
		return rerr(r, -EBADMSG, "header: header length %u is invalid "
			    "(%zu..%u, a multiple of 8)", hlen, BFILE_HEADER_V1_LEN,
			    BFILE_HEADER_LEN_MAX);
	n = in_read(r, buf + fixed, hlen - fixed, NULL);
	if (n < 0)
		return n;
	if (n < (ssize_t)(hlen - fixed))
		return rerr(r, -ENODATA, "truncated: the stream ends at byte %" PRIu64
			    ", inside the %u-byte header", r->pos, hlen);
	memcpy(&stored, buf + hlen - 8, 8);
	stored = le64toh(stored);
	computed = XXH3_64bits(buf, hlen - 8);
	if (stored != computed)
		return rerr(r, -EBADMSG, "header: checksum mismatch (stored %016" PRIx64
			    ", computed %016" PRIx64 ")", stored, computed);
	unpack_header(h, d, &hflags);
	if (hflags & ~BFILE_HDR_FLAGS_COMP_MASK)
		return rerr(r, -EPROTO, "header: unknown flags 0x%x (a newer format?)",
			    hflags & ~BFILE_HDR_FLAGS_COMP_MASK);
	err = header_check(h, h->record_max, msg, sizeof(msg));
	if (err < 0)
		return rerr(r, err == -EPROTO ? err : -EBADMSG, "header: %s", msg);
	XXH3_128bits_update(r->digest, buf, hlen);
	return 0;
}

/* The rest of opening @r, whose source is set: header, buffers, contexts. */
static int reader_start(struct bfile_reader *r, struct bfile_header *h)
{
	size_t bound;
	int err;

	r->in = malloc(BFILE_IOBUF_SIZE);
	r->digest = XXH3_createState();
	r->csum = XXH3_createState();
	if (!r->in || !r->digest || !r->csum)
		goto nomem;
	XXH3_128bits_reset(r->digest);
	err = header_read(r, &r->h);
	if (err < 0)
		return err;
	bound = r->h.compression == BFILE_COMP_ZSTD ?
		ZSTD_compressBound(r->h.record_max) : r->h.record_max;
	r->stored_cap = bound > sizeof(struct bfile_end_disk) ?
			bound : sizeof(struct bfile_end_disk);
	r->stored = malloc(r->stored_cap);
	r->data = malloc(r->h.record_max);
	if (!r->stored || !r->data)
		goto nomem;
	if (r->h.compression == BFILE_COMP_ZSTD) {
		r->dctx = ZSTD_createDCtx();
		if (!r->dctx)
			goto nomem;
	}
	*h = r->h;
	return 0;
nomem:
	return rerr(r, -ENOMEM, "%s", strerror(ENOMEM));
}

static ssize_t fd_read(void *data, void *buf, size_t len)
{
	ssize_t n = read(*(int *)data, buf, len);

	return n < 0 ? -errno : n;
}

int bfile_reader_open(int fd, struct bfile_header *h, struct bfile_reader **rp)
{
	memset(h, 0, sizeof(*h));
	*rp = calloc(1, sizeof(**rp));
	if (!*rp)
		return -ENOMEM;
	(*rp)->fd = fd;
	(*rp)->read = fd_read;
	(*rp)->read_data = &(*rp)->fd;
	return reader_start(*rp, h);
}

int bfile_reader_open_fn(bfile_read_fn fn, void *data, struct bfile_header *h,
			 struct bfile_reader **rp)
{
	memset(h, 0, sizeof(*h));
	*rp = calloc(1, sizeof(**rp));
	if (!*rp)
		return -ENOMEM;
	(*rp)->read = fn;
	(*rp)->read_data = data;
	return reader_start(*rp, h);
}

static int read_data(struct bfile_reader *r, const struct bfile_rec *rec,
		     uint64_t index, uint64_t at, const void **data)
{
	size_t n;

	if (rec->flags & ~(BFILE_REC_SKIPPABLE | BFILE_REC_COMPRESSED))
		return rec_err(r, -EPROTO, index, at, "DATA record with unknown flags 0x%x",
			       rec->flags);
	if (!rec->length || rec->length > r->h.record_max || rec->payload_len != rec->length)
		return rec_err(r, -EBADMSG, index, at, "DATA record covers %" PRIu64
			       " bytes with a %u-byte payload (records hold 1 to %u bytes)",
			       rec->length, rec->payload_len, r->h.record_max);
	if (!(rec->flags & BFILE_REC_COMPRESSED)) {
		if (rec->stored_len != rec->payload_len)
			return rec_err(r, -EBADMSG, index, at, "uncompressed DATA record "
				       "stores %u bytes for %u", rec->stored_len,
				       rec->payload_len);
		*data = r->stored;
		return 0;
	}
	if (r->h.compression != BFILE_COMP_ZSTD)
		return rec_err(r, -EBADMSG, index, at, "compressed DATA record in a "
			       "stream without compression");
	n = ZSTD_decompressDCtx(r->dctx, r->data, r->h.record_max, r->stored,
				rec->stored_len);
	if (ZSTD_isError(n))
		return rec_err(r, -EBADMSG, index, at, "zstd: %s", ZSTD_getErrorName(n));
	if (n != rec->length)
		return rec_err(r, -EBADMSG, index, at, "zstd payload decodes to %zu "
			       "bytes, not %" PRIu64, n, rec->length);
	*data = r->data;
	return 0;
}

static int read_end(struct bfile_reader *r, const struct bfile_rec *rec, uint64_t index,
		    uint64_t at, const uint8_t digest[BFILE_DIGEST_LEN])
{
	struct bfile_stats e = { 0 };
	char want[2 * BFILE_DIGEST_LEN + 1], got[2 * BFILE_DIGEST_LEN + 1];
	uint8_t c;
	ssize_t n;
	int i;

	if (rec->flags & ~BFILE_REC_SKIPPABLE)
		return rec_err(r, -EPROTO, index, at, "END record with unknown flags 0x%x",
			       rec->flags);
	if (rec->payload_len != sizeof(struct bfile_end_disk) ||
	    rec->stored_len != sizeof(struct bfile_end_disk) || rec->offset || rec->length)
		return rec_err(r, -EBADMSG, index, at, "END record with a %u-byte payload, "
			       "offset %" PRIu64 ", length %" PRIu64, rec->stored_len,
			       rec->offset, rec->length);
	unpack_end(&e, (const struct bfile_end_disk *)r->stored);
	if (e.records != r->st.records || e.data_bytes != r->st.data_bytes ||
	    e.zero_bytes != r->st.zero_bytes)
		return rec_err(r, -EILSEQ, index, at, "END counts %" PRIu64 " records, %"
			       PRIu64 " data and %" PRIu64 " zero bytes; the stream has %"
			       PRIu64 ", %" PRIu64 " and %" PRIu64 ": records lost or added",
			       e.records, e.data_bytes, e.zero_bytes, r->st.records,
			       r->st.data_bytes, r->st.zero_bytes);
	if (memcmp(e.digest, digest, BFILE_DIGEST_LEN)) {
		for (i = 0; i < BFILE_DIGEST_LEN; i++) {
			sprintf(want + 2 * i, "%02x", e.digest[i]);
			sprintf(got + 2 * i, "%02x", digest[i]);
		}
		return rec_err(r, -EILSEQ, index, at, "stream digest mismatch (END has %s, "
			       "the stream before it hashes to %s)", want, got);
	}
	n = in_read(r, &c, 1, NULL);
	if (n < 0)
		return n;
	if (n)
		return rerr(r, -EBADMSG, "data after the END record, at byte %" PRIu64,
			    r->pos - 1);
	memcpy(r->st.digest, digest, BFILE_DIGEST_LEN);
	r->st.stream_bytes = r->pos;
	r->done = true;
	return 0;
}

/* An extension record the caller asked for: its payload as it is stored. */
static int deliver(struct bfile_reader *r, const struct bfile_rec *rec, uint64_t index,
		   uint64_t at, struct bfile_record *out)
{
	if (rec->stored_len > r->stored_cap)
		return rec_err(r, -EBADMSG, index, at, "%u-byte extension record: longer "
			       "than a record of this stream", rec->stored_len);
	*out = (struct bfile_record){
		.tag = rec->tag, .flags = rec->flags, .offset = rec->offset,
		.length = rec->length, .stored_len = rec->stored_len,
		.checksum = rec->checksum, .index = index, .file_offset = at,
		.data = r->stored,
	};
	return 1;
}

void bfile_reader_deliver(struct bfile_reader *r, uint32_t tag)
{
	r->deliver = tag;
}

int bfile_read_record(struct bfile_reader *r, struct bfile_record *out)
{
	uint8_t digest[BFILE_DIGEST_LEN];
	struct bfile_rec_disk d;
	struct bfile_rec rec;
	const void *data = NULL;
	uint64_t index, at, csum;
	char msg[192];
	bool is_end;
	ssize_t n;
	int err;

	for (;;) {
		if (r->err)
			return r->err;
		if (r->done)
			return 0;
		index = r->st.records;
		at = r->pos;
		n = in_read(r, &d, sizeof(d), NULL);
		if (n < 0)
			return n;
		if (!n)
			return rerr(r, -ENODATA, "truncated: the stream ends at byte %" PRIu64
				    " after %" PRIu64 " records, without an END record",
				    at, index);
		if (n < (ssize_t)sizeof(d))
			return rerr(r, -ENODATA, "truncated: the stream ends at byte %" PRIu64
				    ", inside the header of record %" PRIu64 " (at byte %"
				    PRIu64 ")", r->pos, index, at);
		unpack_rec(&rec, &d);
		is_end = rec.tag == BFILE_TAG_END;
		if (is_end)
			digest_canonical(r->digest, digest);
		else
			XXH3_128bits_update(r->digest, &d, sizeof(d));

		/* The payload, then the checksum, then what the fields say. */
		if (rec.stored_len <= r->stored_cap) {
			n = in_read(r, r->stored, rec.stored_len, NULL);
			if (n < 0)
				return n;
			csum = rec_checksum(r->csum, &d, r->stored, n);
			if (!is_end && n)
				XXH3_128bits_update(r->digest, r->stored, n);
		} else if (rec.stored_len <= BFILE_EXT_PAYLOAD_MAX) {
			XXH3_64bits_reset(r->csum);
			XXH3_64bits_update(r->csum, &d, BFILE_REC_CSUM_SPAN);
			n = in_read(r, NULL, rec.stored_len, r->csum);
			if (n < 0)
				return n;
			csum = XXH3_64bits_digest(r->csum);
		} else {
			return rec_err(r, -EBADMSG, index, at, "stored length %u is larger "
				       "than any record of this stream (a corrupt length?)",
				       rec.stored_len);
		}
		if (n < rec.stored_len)
			return rerr(r, -ENODATA, "truncated: the stream ends at byte %" PRIu64
				    ", inside the %u-byte payload of record %" PRIu64
				    " (at byte %" PRIu64 ")", r->pos, rec.stored_len,
				    index, at);
		if (csum != rec.checksum)
			return rec_err(r, -EBADMSG, index, at, "checksum mismatch (stored %016"
				       PRIx64 ", computed %016" PRIx64 ")", rec.checksum, csum);

		switch (rec.tag) {
		case BFILE_TAG_END:
			return read_end(r, &rec, index, at, digest);
		case BFILE_TAG_DATA:
			err = read_data(r, &rec, index, at, &data);
			if (err < 0)
				return err;
			break;
		case BFILE_TAG_ZERO:
			if (rec.flags & ~BFILE_REC_SKIPPABLE)
				return rec_err(r, -EPROTO, index, at, "ZERO record with "
					       "unknown flags 0x%x", rec.flags);
			if (rec.payload_len || rec.stored_len || !rec.length)
				return rec_err(r, -EBADMSG, index, at, "ZERO record with a "
					       "payload or no length");
			break;
		default:
			if (!(rec.flags & BFILE_REC_SKIPPABLE))
				return rec_err(r, -EPROTO, index, at, "unknown record tag "
					       "0x%08x without the skippable flag (written "
					       "by a newer version?)", rec.tag);
			r->st.records++;
			if (rec.tag == r->deliver && r->deliver)
				return deliver(r, &rec, index, at, out);
			r->st.skipped++;
			continue;
		}
		err = range_check(r->next, r->h.volume_size, r->h.block_size,
				  rec.offset, rec.length, msg, sizeof(msg));
		if (err < 0)
			return rec_err(r, err, index, at, "%s %s", bfile_tag_name(rec.tag), msg);
		r->next = rec.offset + rec.length;
		r->st.records++;
		if (rec.tag == BFILE_TAG_DATA) {
			r->st.data_records++;
			r->st.data_bytes += rec.length;
			r->st.stored_bytes += rec.stored_len;
		} else {
			r->st.zero_records++;
			r->st.zero_bytes += rec.length;
		}
		*out = (struct bfile_record){
			.tag = rec.tag, .flags = rec.flags, .offset = rec.offset,
			.length = rec.length, .stored_len = rec.stored_len,
			.checksum = rec.checksum, .index = index, .file_offset = at,
			.data = data,
		};
		return 1;
	}
}

void bfile_reader_stats(const struct bfile_reader *r, struct bfile_stats *st)
{
	*st = r->st;
	if (!r->done)
		st->stream_bytes = r->pos;
}

const char *bfile_reader_error(const struct bfile_reader *r)
{
	if (!r)
		return strerror(ENOMEM);
	return r->msg[0] ? r->msg : "no error";
}

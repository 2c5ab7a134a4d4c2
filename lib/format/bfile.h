/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bfile: the backup stream format (version 1), writer and reader.
 *
 * A backup file is a header and a sequence of tagged records (DATA, ZERO,
 * extensions) closed by an END record that carries a digest of the whole
 * stream. The writer only ever write()s its fd in sequence and the reader
 * only read()s it, so both work on pipes. The byte layout is in
 * doc/FORMAT.md; this header is the in-memory side of it.
 *
 * Typical use, writing:
 *
 *	struct bfile_header h;
 *	struct bfile_writer *w;
 *
 *	bfile_header_init(&h, BFILE_TYPE_FULL);	// random id, time now, zstd
 *	... fill volume_id, volume_size, block_size, to (and from, parent_id) ...
 *	err = bfile_writer_open(fd, &h, &w);	// w set even on failure
 *	if (err < 0)
 *		... bfile_writer_error(w), bfile_writer_abort(w) ...
 *	for each changed extent:
 *		err = bfile_write_data(w, offset, buf, len);	// zero blocks -> ZERO
 *	err = bfile_writer_finish(w, &stats);	// END + flush; frees w
 *	... then the caller fsync()s and rename()s ...
 *
 * Reading:
 *
 *	err = bfile_reader_open(fd, &h, &r);	// r set even on failure
 *	while ((err = bfile_read_record(r, &rec)) > 0)
 *		... rec.tag DATA (rec.data, rec.length bytes) or ZERO ...
 *	// err == 0: END verified; < 0: bfile_reader_error(r) says why
 *	bfile_reader_free(r);
 *
 * Records are returned only once their own checksum is verified, but the
 * digest of the whole stream is checked at END: a consumer (restore) must
 * not call its output good before bfile_read_record() returned 0.
 *
 * Errors (negative errno), the same from the writer's checks and the reader:
 *	-EPROTO		not a backup file (magic), unsupported version, unknown
 *			compression or flags, unknown tag without SKIPPABLE
 *	-EBADMSG	a header or record checksum mismatch, or a field that
 *			contradicts the format (lengths, trailing data after END)
 *	-EILSEQ		the END record does not match the stream (digest,
 *			record count, byte counts): records lost or reordered
 *	-ENODATA	end of file before the END record (truncated stream)
 *	-ERANGE		a record out of order, overlapping, misaligned or past
 *			the volume size
 *	-EINVAL		(writer) an invalid header or argument
 *	others		read()/write() errors, -ENOMEM
 * Errors are sticky: once a writer or reader failed, every call returns
 * the same error. The message (bfile_*_error) names the record and the
 * byte offset in the stream; the caller adds the file name.
 *
 * Not thread-safe per object; distinct objects are independent.
 * tests/unit/test_bfile.c compiles lib/format/bfile.c into build/unit-tests:
 * other unit tests must not #include it again.
 */
#ifndef BLKTRACK_BFILE_H
#define BLKTRACK_BFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BFILE_VERSION		1U	/* written */
#define BFILE_VERSION_MIN	1U	/* read */
#define BFILE_VERSION_MAX	1U

#define BFILE_VOLUME_ID_LEN	64	/* NUL-terminated: up to 63 characters */
#define BFILE_ID_LEN		16
#define BFILE_DIGEST_LEN	16	/* XXH3-128, canonical (big-endian) form */

#define BFILE_BLOCK_SIZE_MIN	512U
#define BFILE_BLOCK_SIZE_MAX	(16U << 20)
#define BFILE_RECORD_MAX_DEFAULT (1U << 20)	/* bytes of volume per DATA record */
#define BFILE_RECORD_MAX_LIMIT	(64U << 20)
#define BFILE_EXT_PAYLOAD_MAX	(16U << 20)	/* extension record payload bound */

enum bfile_compression {
	BFILE_COMP_NONE = 0,
	BFILE_COMP_ZSTD = 1,
};

enum bfile_type {
	BFILE_TYPE_FULL = 1,
	BFILE_TYPE_INCREMENTAL = 2,
	BFILE_TYPE_DIFFERENTIAL = 3,
	BFILE_TYPE_COPY = 4,
	BFILE_TYPE_RESYNC = 5,
};

/* Record tags: the four bytes read as ASCII in a hex dump. */
#define BFILE_TAG_DATA		0x41544144U	/* "DATA" */
#define BFILE_TAG_ZERO		0x4f52455aU	/* "ZERO" */
#define BFILE_TAG_END		0x00444e45U	/* "END\0" */
#define BFILE_TAG_FMAP		0x50414d46U	/* "FMAP": a per-file backup's extent map */
#define BFILE_TAG_EXCL		0x4c435845U	/* "EXCL": blocks the writers excluded */

/* Record flags. */
#define BFILE_REC_SKIPPABLE	(1U << 0)	/* a reader that does not know the tag skips it */
#define BFILE_REC_COMPRESSED	(1U << 1)	/* DATA payload is one zstd frame */

/* A tracking stamp, as the kernel gives it, with the volume geometry. */
struct bfile_stamp {
	uint8_t generation[16];
	uint64_t epoch;
	uint64_t size;
	uint32_t block_size;
};

struct bfile_header {
	uint32_t version;		/* reader: as stored; writer: ignored */
	uint32_t compression;		/* enum bfile_compression */
	uint32_t type;			/* enum bfile_type */
	char volume_id[BFILE_VOLUME_ID_LEN];
	uint64_t volume_size;		/* bytes */
	uint32_t block_size;		/* record alignment: a power of two */
	uint32_t record_max;		/* max bytes per DATA record; 0: default */
	struct bfile_stamp from;	/* all zero for full and copy */
	struct bfile_stamp to;
	uint64_t ctime_ns;		/* creation time, ns since the epoch (UTC) */
	uint8_t id[BFILE_ID_LEN];	/* this backup: must not be all zero */
	uint8_t parent_id[BFILE_ID_LEN];/* the backup this one applies to; 0: none */
};

/* One DATA or ZERO record as bfile_read_record() returns it. */
struct bfile_record {
	uint32_t tag;			/* BFILE_TAG_DATA or BFILE_TAG_ZERO */
	uint32_t flags;			/* as stored (BFILE_REC_COMPRESSED...) */
	uint64_t offset;		/* volume byte offset */
	uint64_t length;		/* volume bytes covered */
	uint32_t stored_len;		/* payload bytes in the stream */
	uint64_t checksum;		/* the record's xxh3-64, verified */
	uint64_t index;			/* record number in the stream, from 0 */
	uint64_t file_offset;		/* byte offset of the record in the stream */
	const void *data;		/* DATA: @length bytes, valid until the
					 * next call; ZERO: NULL */
};

struct bfile_stats {
	uint64_t records;		/* before END, skipped extensions included */
	uint64_t data_records;
	uint64_t zero_records;
	uint64_t skipped;		/* extension records skipped (reader) */
	uint64_t data_bytes;		/* volume bytes in DATA records */
	uint64_t zero_bytes;		/* volume bytes in ZERO records */
	uint64_t stored_bytes;		/* DATA payload bytes in the stream */
	uint64_t stream_bytes;		/* the whole stream, END included */
	uint8_t digest[BFILE_DIGEST_LEN];/* of the stream before END */
};

struct bfile_writer;
struct bfile_reader;

/*
 * A header for a new backup of @type: a random id (getrandom), the current
 * time, zstd compression, the default record size; the rest zero.
 */
int bfile_header_init(struct bfile_header *h, uint32_t type);
/* 16 random bytes for a backup id. */
int bfile_new_id(uint8_t id[BFILE_ID_LEN]);

const char *bfile_type_name(uint32_t type);	/* "full"... or NULL */
int bfile_type_parse(const char *name, uint32_t *type);
const char *bfile_compression_name(uint32_t comp);	/* "none", "zstd" or NULL */
const char *bfile_tag_name(uint32_t tag);	/* "DATA", "ZERO", "END" or NULL */
bool bfile_id_is_zero(const uint8_t id[BFILE_ID_LEN]);

/* ---- writer ------------------------------------------------------------ */

/*
 * Check @h and write the header to @fd. *@wp is set to a writer in every
 * case but -ENOMEM (then NULL): on failure, read bfile_writer_error() and
 * bfile_writer_abort() it. The fd stays the caller's.
 */
int bfile_writer_open(int fd, const struct bfile_header *h, struct bfile_writer **wp);
/*
 * The same onto a sink other than an fd (a repository's file on any
 * store): @fn writes all of @len bytes, or returns -errno.
 */
typedef int (*bfile_write_fn)(void *data, const void *buf, size_t len);
int bfile_writer_open_fn(bfile_write_fn fn, void *data, const struct bfile_header *h,
			 struct bfile_writer **wp);

/*
 * @len bytes of the volume at @offset. Calls go in ascending volume order,
 * without overlap; @offset is block-aligned and @len a multiple of the
 * block size unless the range ends at the volume size. All-zero blocks go
 * out as ZERO records; contiguous calls are merged into records of up to
 * record_max bytes (so the stream is written in pieces, not per call).
 */
int bfile_write_data(struct bfile_writer *w, uint64_t offset, const void *buf, size_t len);
/* @len bytes of zeros at @offset, with the same rules. */
int bfile_write_zero(struct bfile_writer *w, uint64_t offset, uint64_t len);
/*
 * An extension record: @tag must not be a v1 tag; readers that do not know
 * it skip it when @flags has BFILE_REC_SKIPPABLE, and refuse the stream
 * otherwise. @len <= BFILE_EXT_PAYLOAD_MAX; @offset means what the
 * extension says (its length field is 0).
 */
int bfile_write_extension(struct bfile_writer *w, uint32_t tag, uint32_t flags,
			  uint64_t offset, const void *payload, size_t len);
/* What was written so far (digest and stream_bytes: after finish). */
void bfile_writer_stats(const struct bfile_writer *w, struct bfile_stats *st);
const char *bfile_writer_error(const struct bfile_writer *w);
/*
 * Write the pending records and END, flush, fill @st (may be NULL) and free
 * @w. 0 or -errno; @w is freed either way. The caller fsyncs and renames.
 */
int bfile_writer_finish(struct bfile_writer *w, struct bfile_stats *st);
/* Free @w without END: what was written reads as a truncated stream. */
void bfile_writer_abort(struct bfile_writer *w);

/* ---- reader ------------------------------------------------------------ */

/*
 * Read and verify the header from @fd into @h. *@rp is set to a reader in
 * every case but -ENOMEM (then NULL): on failure, bfile_reader_error() says
 * why; bfile_reader_free() it either way.
 */
int bfile_reader_open(int fd, struct bfile_header *h, struct bfile_reader **rp);
/*
 * The same on a source other than an fd: @fn works like read(2) but returns
 * -errno (-EINTR: called again). The verify writer reads a backup file as
 * it is written through one (lib/requester/follow.c).
 */
typedef ssize_t (*bfile_read_fn)(void *data, void *buf, size_t len);
int bfile_reader_open_fn(bfile_read_fn fn, void *data, struct bfile_header *h,
			 struct bfile_reader **rp);
/*
 * The next DATA or ZERO record, decompressed and verified: 1. At a verified
 * END (digest, counts, and nothing after it): 0. Else -errno, see above.
 * Unknown skippable records are checked and skipped.
 */
int bfile_read_record(struct bfile_reader *r, struct bfile_record *rec);
/*
 * Hand the skippable extension records of @tag to the caller too:
 * bfile_read_record() returns them with rec->tag = @tag, rec->data their
 * payload (rec->stored_len bytes; -EBADMSG when longer than a record of the
 * stream may be), in stream order. The FMAP records of a per-file backup
 * (doc/FORMAT.md) are read this way.
 */
void bfile_reader_deliver(struct bfile_reader *r, uint32_t tag);
/* Counts so far; after END, the END's figures and digest. */
void bfile_reader_stats(const struct bfile_reader *r, struct bfile_stats *st);
const char *bfile_reader_error(const struct bfile_reader *r);
void bfile_reader_free(struct bfile_reader *r);

#endif /* BLKTRACK_BFILE_H */

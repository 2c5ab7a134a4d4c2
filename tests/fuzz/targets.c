// SPDX-License-Identifier: GPL-2.0
/*
 * The parsers' fuzz entry points (see targets.h). The check-sum fix-ups
 * below are a second, small encoder of the layouts in doc/FORMAT.md,
 * doc/REPOSITORY.md and lib/requester/state.c: a fixed-up valid file is the file
 * itself (tests/unit/test_fuzz.c checks it on the ok.* seeds).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <roaring/roaring.h>
#include <xxhash.h>

#include "format/bfile.h"
#include "format/blockhash.h"
#include "format/blockset.h"
#include "format/filemap.h"
#include "repo/repo.h"
#include "format/statefile.h"
#include "targets.h"

/* ---- helpers ------------------------------------------------------------ */

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* Read every byte (ASan checks each one); the sum keeps the loop. */
static unsigned int touch(const void *data, size_t len)
{
	const volatile uint8_t *p = data;
	unsigned int sum = 0;
	size_t i;

	for (i = 0; i < len; i++)
		sum += p[i];
	return sum;
}

/* @data in a memory file, at offset 0; -1 if memfd fails. */
static int load(const uint8_t *data, size_t len)
{
	static int fd = -1;
	size_t off = 0;

	if (fd < 0)
		fd = memfd_create("blktrack-fuzz", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0))
		abort();
	while (off < len) {
		ssize_t n = pwrite(fd, data + off, len - off, off);

		if (n <= 0)
			abort();
		off += n;
	}
	if (lseek(fd, 0, SEEK_SET))
		abort();
	return fd;
}

/* Run @run on @data, then on a fixed-up copy if @fix changes it. */
static int twice(const uint8_t *data, size_t len, int (*run)(const uint8_t *, size_t),
		 void (*fix)(uint8_t *, size_t))
{
	int rc = run(data, len);
	uint8_t *copy;

	if (!len)
		return rc;
	copy = malloc(len);
	if (!copy)
		abort();
	memcpy(copy, data, len);
	fix(copy, len);
	if (memcmp(copy, data, len))
		run(copy, len);
	free(copy);
	return rc;
}

/* ---- backup stream: bfile_reader_* ---------------------------------------- */

static int bfile_run(const uint8_t *data, size_t len)
{
	struct bfile_header h;
	struct bfile_reader *r;
	struct bfile_record rec;
	struct bfile_stats st;
	struct filemap map;
	uint64_t end = 0;
	int rc, again;

	rc = bfile_reader_open(load(data, len), &h, &r);
	if (!r)
		return rc;
	/* A per-file backup's extent map (lib/format/filemap.h) is parsed too. */
	bfile_reader_deliver(r, BFILE_TAG_FMAP);
	filemap_init(&map);
	while (!rc && (rc = bfile_read_record(r, &rec)) > 0) {
		if (rec.tag == BFILE_TAG_FMAP) {
			if (filemap_decode(&map, rec.offset, rec.data, rec.stored_len) == 0)
				touch(map.ext, map.n * sizeof(*map.ext));
			rc = 0;
			continue;
		}
		/* The reader promises records in order, inside the volume. */
		if (rec.offset < end || rec.length > h.volume_size ||
		    rec.offset > h.volume_size - rec.length || !rec.length)
			abort();
		if (rec.tag == BFILE_TAG_DATA)
			touch(rec.data, rec.length);
		else if (rec.tag != BFILE_TAG_ZERO || rec.data)
			abort();
		end = rec.offset + rec.length;
		rc = 0;
	}
	filemap_free(&map);
	bfile_reader_stats(r, &st);
	touch(bfile_reader_error(r), strlen(bfile_reader_error(r)));
	/* Errors are sticky. */
	if (rc < 0) {
		again = bfile_read_record(r, &rec);
		if (again != rc)
			abort();
	}
	bfile_reader_free(r);
	return rc;
}

void fuzz_fix_bfile(uint8_t *p, size_t len)
{
	uint64_t records = 0, data_bytes = 0, zero_bytes = 0;
	XXH3_state_t *rec = XXH3_createState(), *all = XXH3_createState();
	XXH128_canonical_t c;
	uint32_t hlen;
	size_t pos;

	if (!rec || !all)
		abort();
	if (len < 256)
		goto out;
	hlen = get32(p + 12);
	if (hlen < 256 || hlen > 4096 || hlen % 8 || hlen > len)
		put32(p + 12, hlen = 256);
	put64(p + hlen - 8, XXH3_64bits(p, hlen - 8));
	XXH3_128bits_reset(all);
	XXH3_128bits_update(all, p, hlen);
	for (pos = hlen; len - pos >= 40; ) {
		uint32_t tag = get32(p + pos), stored = get32(p + pos + 12);

		if (stored > len - pos - 40)
			break;
		if (tag == 0x00444e45U && stored == 40) {	/* END */
			put64(p + pos + 40, records);
			put64(p + pos + 48, data_bytes);
			put64(p + pos + 56, zero_bytes);
			XXH128_canonicalFromHash(&c, XXH3_128bits_digest(all));
			memcpy(p + pos + 64, c.digest, 16);
		}
		XXH3_64bits_reset(rec);
		XXH3_64bits_update(rec, p + pos, 32);
		XXH3_64bits_update(rec, p + pos + 40, stored);
		put64(p + pos + 32, XXH3_64bits_digest(rec));
		if (tag == 0x00444e45U)
			break;
		XXH3_128bits_update(all, p + pos, 40 + stored);
		records++;
		if (tag == BFILE_TAG_DATA)
			data_bytes += get64(p + pos + 24);
		else if (tag == BFILE_TAG_ZERO)
			zero_bytes += get64(p + pos + 24);
		pos += 40 + stored;
	}
out:
	XXH3_freeState(rec);
	XXH3_freeState(all);
}

int fuzz_bfile(const uint8_t *data, size_t len)
{
	return twice(data, len, bfile_run, fuzz_fix_bfile);
}

/* ---- block sets: blockset_deserialize ------------------------------------ */

static int count_extent(void *data, uint64_t first, uint64_t count)
{
	uint64_t *sum = data;

	if (!count)
		abort();
	*sum += count;
	return 0;
}

/* A set the parser accepted: walk it, and it must survive a round trip. */
static void blockset_walk(const struct blockset *s)
{
	struct blockset *back;
	uint64_t sum = 0;
	size_t n;
	void *buf;

	if (blockset_for_each_extent(s, count_extent, &sum) ||
	    sum != blockset_cardinality(s))
		abort();
	if (blockset_serialize(s, &buf, &n))
		abort();
	if (blockset_deserialize(buf, n, &back) || !blockset_equal(s, back))
		abort();
	blockset_free(back);
	free(buf);
}

static int blockset_run(const uint8_t *data, size_t len)
{
	struct blockset *s;
	int rc = blockset_deserialize(data, len, &s);

	if (!rc) {
		blockset_walk(s);
		blockset_free(s);
	}
	return rc;
}

void fuzz_fix_blockset(uint8_t *p, size_t len)
{
	uint64_t payload;
	roaring_bitmap_t *rb;

	if (len < BLOCKSET_HEADER_SIZE + BLOCKSET_TRAILER_SIZE)
		return;
	payload = len - BLOCKSET_HEADER_SIZE - BLOCKSET_TRAILER_SIZE;
	put64(p + 8, payload);
	rb = roaring_bitmap_portable_deserialize_safe((const char *)p + BLOCKSET_HEADER_SIZE,
						      payload);
	if (rb) {
		put64(p + 16, roaring_bitmap_get_cardinality(rb));
		roaring_bitmap_free(rb);
	}
	put64(p + len - 8, XXH3_64bits(p, len - 8));
}

int fuzz_blockset(const uint8_t *data, size_t len)
{
	return twice(data, len, blockset_run, fuzz_fix_blockset);
}

/* ---- block hash files: blockhash_reader_* ------------------------------------ */

static int blockhash_run(const uint8_t *data, size_t len)
{
	struct blockhash_reader *r;
	uint64_t hash, got = 0, size;
	uint32_t bs;
	int fd = load(data, len), rc, check;

	rc = blockhash_reader_open(fd, &r);
	if (!rc) {
		bs = blockhash_reader_block_size(r);
		size = blockhash_reader_volume_size(r);
		if (!bs || (bs & (bs - 1)) ||
		    blockhash_reader_blocks(r) != size / bs + !!(size % bs))
			abort();
		while (!(rc = blockhash_get(r, &hash)))
			got++;
		if (rc == -ENODATA && got == blockhash_reader_blocks(r))
			rc = blockhash_reader_finish(r);
		else
			blockhash_reader_free(r);
	}
	/* Reading every hash and skipping them agree. */
	check = blockhash_check(fd, &size, &bs);
	if (!rc != !check)
		abort();
	return rc;
}

void fuzz_fix_blockhash(uint8_t *p, size_t len)
{
	uint64_t nr, size;
	uint32_t bs;

	if (len < 48)
		return;
	nr = (len - 48) / 8;
	put64(p + 16, nr);
	bs = get32(p + 8);
	size = get64(p + 24);
	if (bs && !(bs & (bs - 1)) && size / bs + !!(size % bs) != nr &&
	    nr <= UINT64_MAX / bs)
		put64(p + 24, nr * bs);
	put64(p + 32, XXH3_64bits(p, 32));
	put64(p + len - 8, XXH3_64bits(p, len - 8));
}

int fuzz_blockhash(const uint8_t *data, size_t len)
{
	return twice(data, len, blockhash_run, fuzz_fix_blockhash);
}

/* ---- state files: statefile_parse -------------------------------------------- */

static int state_run(const uint8_t *data, size_t len)
{
	struct blockset *set;
	struct statefile_hdr h;
	int rc = statefile_parse((const char *)data, len, &h, &set);

	if (!rc) {
		touch(h.volume_id, strlen(h.volume_id));
		touch(h.fp_kind, strlen(h.fp_kind));
		if (set)
			blockset_walk(set);
	} else if (set) {
		abort();
	}
	blockset_free(set);
	return rc;
}

void fuzz_fix_state(uint8_t *p, size_t len)
{
	uint64_t payload;

	if (len < STATEFILE_HDR + 8)
		return;
	payload = len - STATEFILE_HDR - 8;
	put64(p + 152, payload);
	fuzz_fix_blockset(p + STATEFILE_HDR, payload);
	put64(p + 160, XXH3_64bits(p, 160));
	put64(p + len - 8, XXH3_64bits(p, len - 8));
}

int fuzz_state(const uint8_t *data, size_t len)
{
	return twice(data, len, state_run, fuzz_fix_state);
}

/* ---- repository catalog: repo_open ---------------------------------------- */

static char catalog_dir[4096 + 32];

static void catalog_cleanup(void)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/catalog", catalog_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock", catalog_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/backups", catalog_dir);
	rmdir(path);
	rmdir(catalog_dir);
}

/* Create or remove the backup file @name ("backups/X") of an entry. */
static void catalog_touch(const char *name, bool create)
{
	char path[4400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", catalog_dir, name);
	if (!create) {
		unlink(path);
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

static int catalog_run(const uint8_t *data, size_t len)
{
	static const enum repo_type types[] = {
		REPO_FULL, REPO_INCREMENTAL, REPO_DIFFERENTIAL, REPO_COPY, REPO_RESYNC,
	};
	const struct repo_entry *e, *prev = NULL;
	char path[4200];
	struct repo *r;
	uint64_t *ids, base;
	size_t i, j, n;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/catalog", catalog_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);

	rc = repo_open(catalog_dir, REPO_RDONLY, &r);
	if (!r)
		return rc;
	touch(repo_error(r), strlen(repo_error(r)));
	if (rc) {
		repo_close(r);
		return rc;
	}
	/* What the commands do with an opened catalog: chains (each entry's
	 * file exists), bases. */
	for (i = 0; i < repo_count(r); i++)
		catalog_touch(repo_entry_at(r, i)->file, true);
	for (i = 0; i < repo_count(r); i++) {
		e = repo_entry_at(r, i);
		if ((prev && e->id <= prev->id) || repo_find(r, e->id) != e)
			abort();
		touch(e->to.volume_id, strlen(e->to.volume_id));
		if (!repo_chain(r, e->id, &ids, &n)) {
			if (!n || ids[n - 1] != e->id)
				abort();
			for (j = 1; j < n; j++)
				if (ids[j] <= ids[j - 1])
					abort();
			free(ids);
		}
		for (j = 0; j < sizeof(types) / sizeof(types[0]); j++)
			if (!repo_base(r, types[j], e->to.volume_id, &base) && base &&
			    !repo_find(r, base))
				abort();
		prev = e;
	}
	for (i = 0; i < repo_count(r); i++)
		catalog_touch(repo_entry_at(r, i)->file, false);
	repo_close(r);
	return 0;
}

void fuzz_fix_catalog(uint8_t *data, size_t len)
{
	repo_catalog_seal((char *)data, len);
}

/* A fresh directory per input (nothing left behind, whatever the runner). */
int fuzz_catalog(const uint8_t *data, size_t len)
{
	char path[4200];
	int fd, rc;

	snprintf(catalog_dir, sizeof(catalog_dir), "%s/blktrack-fuzz.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(catalog_dir))
		abort();
	snprintf(path, sizeof(path), "%s/lock", catalog_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	close(fd);
	snprintf(path, sizeof(path), "%s/backups", catalog_dir);
	if (mkdir(path, 0700))
		abort();
	rc = twice(data, len, catalog_run, fuzz_fix_catalog);
	catalog_cleanup();
	return rc;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Block sets over CRoaring; see blockset.h.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <roaring/roaring.h>
#include <xxhash.h>
#include <linux/blktrack.h>

#include "format/blockset.h"

struct blockset {
	roaring_bitmap_t *rb;
};

int blockset_new(struct blockset **out)
{
	struct blockset *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->rb = roaring_bitmap_create();
	if (!s->rb) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void blockset_free(struct blockset *s)
{
	if (!s)
		return;
	roaring_bitmap_free(s->rb);
	free(s);
}

static int blockset_wrap(roaring_bitmap_t *rb, struct blockset **out)
{
	struct blockset *s;

	if (!rb)
		return -ENOMEM;
	s = malloc(sizeof(*s));
	if (!s) {
		roaring_bitmap_free(rb);
		return -ENOMEM;
	}
	s->rb = rb;
	*out = s;
	return 0;
}

int blockset_copy(const struct blockset *s, struct blockset **out)
{
	return blockset_wrap(roaring_bitmap_copy(s->rb), out);
}

int blockset_add_range(struct blockset *s, uint64_t first, uint64_t count)
{
	if (!count)
		return 0;
	if (first >= BLOCKSET_MAX_BLOCKS || count > BLOCKSET_MAX_BLOCKS - first)
		return -EFBIG;
	roaring_bitmap_add_range_closed(s->rb, (uint32_t)first,
					(uint32_t)(first + count - 1));
	return 0;
}

void blockset_remove_range(struct blockset *s, uint64_t first, uint64_t count)
{
	if (first >= BLOCKSET_MAX_BLOCKS || !count)
		return;
	if (count > BLOCKSET_MAX_BLOCKS - first)
		count = BLOCKSET_MAX_BLOCKS - first;
	roaring_bitmap_remove_range_closed(s->rb, (uint32_t)first, (uint32_t)(first + count - 1));
}

int blockset_or(struct blockset *dst, const struct blockset *src)
{
	roaring_bitmap_or_inplace(dst->rb, src->rb);
	return 0;
}

int blockset_andnot(struct blockset *dst, const struct blockset *src)
{
	roaring_bitmap_andnot_inplace(dst->rb, src->rb);
	return 0;
}

uint64_t blockset_cardinality(const struct blockset *s)
{
	return roaring_bitmap_get_cardinality(s->rb);
}

bool blockset_contains(const struct blockset *s, uint64_t block)
{
	return block < BLOCKSET_MAX_BLOCKS &&
	       roaring_bitmap_contains(s->rb, (uint32_t)block);
}

bool blockset_equal(const struct blockset *a, const struct blockset *b)
{
	return roaring_bitmap_equals(a->rb, b->rb);
}

/* ---- extents ------------------------------------------------------------ */

int blockset_for_each_extent(const struct blockset *s, blockset_extent_fn fn,
			     void *data)
{
	roaring_uint32_iterator_t it;
	uint32_t buf[256];
	uint64_t first = 0, count = 0;
	uint32_t n, i;
	int ret;

	roaring_init_iterator(s->rb, &it);
	while ((n = roaring_read_uint32_iterator(&it, buf, 256))) {
		for (i = 0; i < n; i++) {
			if (count && buf[i] == first + count) {
				count++;
				continue;
			}
			if (count) {
				ret = fn(data, first, count);
				if (ret)
					return ret;
			}
			first = buf[i];
			count = 1;
		}
	}
	return count ? fn(data, first, count) : 0;
}

struct extent_array {
	uint64_t *first, *count;
	size_t n, cap;
};

static int extent_array_add(void *data, uint64_t first, uint64_t count)
{
	struct extent_array *a = data;

	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 16;
		uint64_t *f = realloc(a->first, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		a->first = f;
		f = realloc(a->count, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		a->count = f;
		a->cap = cap;
	}
	a->first[a->n] = first;
	a->count[a->n++] = count;
	return 0;
}

int blockset_extents(const struct blockset *s, uint64_t **first,
		     uint64_t **count, size_t *n)
{
	struct extent_array a = { 0 };
	int ret = blockset_for_each_extent(s, extent_array_add, &a);

	if (ret) {
		free(a.first);
		free(a.count);
		return ret;
	}
	*first = a.first;
	*count = a.count;
	*n = a.n;
	return 0;
}

int blockset_from_extents(const struct blktrack_extent *ext, size_t n,
			  uint32_t block_size, struct blockset **out)
{
	struct blockset *s;
	size_t i;
	int ret;

	if (!block_size)
		return -EINVAL;
	ret = blockset_new(&s);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		uint64_t first, last;

		if (!ext[i].length)
			continue;
		if (ext[i].offset + ext[i].length < ext[i].offset) {
			ret = -EINVAL;
			goto out_free;
		}
		first = ext[i].offset / block_size;
		last = (ext[i].offset + ext[i].length - 1) / block_size;
		ret = blockset_add_range(s, first, last - first + 1);
		if (ret)
			goto out_free;
	}
	*out = s;
	return 0;

out_free:
	blockset_free(s);
	return ret;
}

/* ---- serialization ------------------------------------------------------ */

static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

int blockset_serialize(const struct blockset *s, void **buf, size_t *len)
{
	roaring_bitmap_t *rb;
	size_t payload, total;
	uint8_t *p;

	/* Run containers make ranges small; work on a copy, @s is const. */
	rb = roaring_bitmap_copy(s->rb);
	if (!rb)
		return -ENOMEM;
	roaring_bitmap_run_optimize(rb);
	payload = roaring_bitmap_portable_size_in_bytes(rb);
	total = BLOCKSET_HEADER_SIZE + payload + BLOCKSET_TRAILER_SIZE;
	p = malloc(total);
	if (!p) {
		roaring_bitmap_free(rb);
		return -ENOMEM;
	}
	memcpy(p, BLOCKSET_MAGIC, 4);
	put_le16(p + 4, BLOCKSET_VERSION);
	put_le16(p + 6, 0);
	put_le64(p + 8, payload);
	put_le64(p + 16, roaring_bitmap_get_cardinality(rb));
	roaring_bitmap_portable_serialize(rb, (char *)p + BLOCKSET_HEADER_SIZE);
	roaring_bitmap_free(rb);
	put_le64(p + BLOCKSET_HEADER_SIZE + payload,
		 XXH3_64bits(p, BLOCKSET_HEADER_SIZE + payload));
	*buf = p;
	*len = total;
	return 0;
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/*
 * The CRoaring portable format, as far as a reader must trust it: CRoaring
 * 0.2.66's "safe" deserialization checks only that the containers fit in
 * the buffer, and takes an array out of order, runs that overlap or a
 * bitmap whose count is wrong as they are: the set then contradicts itself
 * (its extents do not add up to its cardinality) and later operations
 * misbehave. Checked here: the cookie, keys in increasing order, array
 * values strictly increasing, runs in order, apart and inside the
 * container, each container's count as its header says, nothing after the
 * last container. The offset table is not used by the reader and not
 * checked.
 */
#define RB_COOKIE_NO_RUNS	12346
#define RB_COOKIE		12347
#define RB_NO_OFFSET_MAX	4	/* fewer containers: no offset table */
#define RB_ARRAY_MAX		4096	/* more values: a bitmap container */
#define RB_BITMAP_BYTES		8192

static bool roaring_payload_ok(const uint8_t *p, size_t len)
{
	const uint8_t *runs = NULL, *hdr, *c, *end = p + len;
	uint32_t cookie, n, i, j, key, card, nr, start, rl;
	int64_t prev = -1, prev_end;
	uint64_t total;

	if (len < 4)
		return false;
	cookie = get_le32(p);
	if ((cookie & 0xffff) == RB_COOKIE) {
		n = (cookie >> 16) + 1;
		runs = p + 4;
		if ((size_t)(end - runs) < (n + 7) / 8)
			return false;
		hdr = runs + (n + 7) / 8;
	} else if (cookie == RB_COOKIE_NO_RUNS && len >= 8) {
		n = get_le32(p + 4);
		if (n > 65536)
			return false;
		hdr = p + 8;
	} else {
		return false;
	}
	/* keys and counts, then offsets */
	if ((size_t)(end - hdr) / 4 < ((!runs || n >= RB_NO_OFFSET_MAX) ? 2 * n : n))
		return false;
	c = hdr + 4 * n;
	if (!runs || n >= RB_NO_OFFSET_MAX)
		c += 4 * n;
	for (i = 0; i < n; i++) {
		key = get_le16(hdr + 4 * i);
		card = get_le16(hdr + 4 * i + 2) + 1U;
		if ((int64_t)key <= prev)
			return false;
		prev = key;
		if (runs && (runs[i / 8] & (1U << (i % 8)))) {
			if (end - c < 2)
				return false;
			nr = get_le16(c);
			c += 2;
			if (!nr || (size_t)(end - c) / 4 < nr)
				return false;
			total = 0;
			prev_end = -2;
			for (j = 0; j < nr; j++, c += 4) {
				start = get_le16(c);
				rl = get_le16(c + 2);
				if (start + rl > 0xffff || (int64_t)start <= prev_end + 1)
					return false;
				prev_end = start + rl;
				total += rl + 1;
			}
			if (total != card)
				return false;
		} else if (card <= RB_ARRAY_MAX) {
			if ((size_t)(end - c) / 2 < card)
				return false;
			for (j = 1; j < card; j++)
				if (get_le16(c + 2 * j) <= get_le16(c + 2 * j - 2))
					return false;
			c += 2 * card;
		} else {
			if (end - c < RB_BITMAP_BYTES)
				return false;
			total = 0;
			for (j = 0; j < RB_BITMAP_BYTES; j += 8)
				total += __builtin_popcountll(get_le64(c + j));
			if (total != card)
				return false;
			c += RB_BITMAP_BYTES;
		}
	}
	return c == end;
}

int blockset_deserialize(const void *buf, size_t len, struct blockset **out)
{
	const uint8_t *p = buf;
	roaring_bitmap_t *rb;
	uint64_t payload;

	if (len < BLOCKSET_HEADER_SIZE + BLOCKSET_TRAILER_SIZE ||
	    memcmp(p, BLOCKSET_MAGIC, 4))
		return -EBADMSG;
	payload = get_le64(p + 8);
	if (payload != len - BLOCKSET_HEADER_SIZE - BLOCKSET_TRAILER_SIZE)
		return -EBADMSG;
	/* The checksum covers the header: a flipped version bit is corruption. */
	if (XXH3_64bits(p, BLOCKSET_HEADER_SIZE + payload) !=
	    get_le64(p + BLOCKSET_HEADER_SIZE + payload))
		return -EBADMSG;
	if (get_le16(p + 4) != BLOCKSET_VERSION || get_le16(p + 6))
		return -EPROTONOSUPPORT;
	if (!roaring_payload_ok(p + BLOCKSET_HEADER_SIZE, payload) ||
	    roaring_bitmap_portable_deserialize_size((const char *)p +
						     BLOCKSET_HEADER_SIZE,
						     payload) != payload)
		return -EBADMSG;
	rb = roaring_bitmap_portable_deserialize_safe((const char *)p +
						      BLOCKSET_HEADER_SIZE,
						      payload);
	if (!rb)
		return -EBADMSG;
	if (roaring_bitmap_get_cardinality(rb) != get_le64(p + 16)) {
		roaring_bitmap_free(rb);
		return -EBADMSG;
	}
	return blockset_wrap(rb, out);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * libblktrack's pure parts, without a kernel: the density picture, size
 * parsing, UUID text, JSON shapes, and the extent iterator against a fake
 * READ_EXTENTS that pages and splits extents at random.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "core/core.h"

/* ---- density and formats ---------------------------------------------- */

Test(lib, density_char_thresholds)
{
	cr_expect_eq(blktrack_density_char(0, 100), ' ');
	cr_expect_eq(blktrack_density_char(1, 100), '.');
	cr_expect_eq(blktrack_density_char(24, 100), '.');
	cr_expect_eq(blktrack_density_char(25, 100), ':');
	cr_expect_eq(blktrack_density_char(49, 100), ':');
	cr_expect_eq(blktrack_density_char(50, 100), '*');
	cr_expect_eq(blktrack_density_char(99, 100), '*');
	cr_expect_eq(blktrack_density_char(100, 100), '#');
	cr_expect_eq(blktrack_density_char(UINT64_MAX - 1, UINT64_MAX), '*');
	cr_expect_eq(blktrack_density_char(UINT64_MAX / 4 + 1, UINT64_MAX), ':');
}

Test(lib, density_picture)
{
	/* 64 KiB volume, 4 cells of 16 KiB */
	struct blktrack_extent e[] = {
		{ 0, 16384 },		/* cell 0 full */
		{ 16384, 4096 },	/* cell 1: 25% */
		{ 36864, 4096 },	/* cell 2: 25%, from 32768 + 4096 */
		{ 45056, 4095 },	/* cell 2: + just under 25% -> 8191/16384 */
		{ 65535, 1 },		/* cell 3: 1 byte */
	};
	char out[5];

	cr_assert_eq(blktrack_density(e, 5, 65536, 4, out), 0);
	cr_expect_str_eq(out, "#::.");
	cr_assert_eq(blktrack_density(NULL, 0, 65536, 4, out), 0);
	cr_expect_str_eq(out, "    ");
	/* one extent over several cells, volume size not a multiple of cells */
	struct blktrack_extent big = { 10, 80 };
	char o2[11];

	cr_assert_eq(blktrack_density(&big, 1, 100, 10, o2), 0);
	cr_expect_str_eq(o2, " ######## ");
	cr_expect_eq(blktrack_density(&big, 1, 100, 0, o2), -EINVAL);
}

Test(lib, parse_size)
{
	uint64_t v;

	cr_expect_eq(blktrack_parse_size("4096", &v), 0);
	cr_expect_eq(v, 4096);
	cr_expect_eq(blktrack_parse_size("4K", &v), 0);
	cr_expect_eq(v, 4096);
	cr_expect_eq(blktrack_parse_size("16MiB", &v), 0);
	cr_expect_eq(v, 16 << 20);
	cr_expect_eq(blktrack_parse_size("1g", &v), 0);
	cr_expect_eq(v, 1ULL << 30);
	cr_expect_eq(blktrack_parse_size("2TB", &v), 0);
	cr_expect_eq(v, 2ULL << 40);
	cr_expect_eq(blktrack_parse_size("0", &v), 0);
	cr_expect_eq(v, 0);
	cr_expect_eq(blktrack_parse_size("", &v), -EINVAL);
	cr_expect_eq(blktrack_parse_size("-1", &v), -EINVAL);
	cr_expect_eq(blktrack_parse_size("4Q", &v), -EINVAL);
	cr_expect_eq(blktrack_parse_size("4Kx", &v), -EINVAL);
	cr_expect_eq(blktrack_parse_size("16777216T", &v), -ERANGE);
	cr_expect_eq(blktrack_parse_size("99999999999999999999", &v), -ERANGE);
}

Test(lib, uuid_and_names)
{
	uint8_t u[16];
	char s[BLKTRACK_UUID_STR_LEN];
	int i;

	for (i = 0; i < 16; i++)
		u[i] = i * 17;
	blktrack_uuid_unparse(u, s);
	cr_expect_str_eq(s, "00112233-4455-6677-8899-aabbccddeeff");
	cr_expect_str_eq(blktrack_state_name(BLKTRACK_STATE_INVALID), "invalid");
	cr_expect_str_eq(blktrack_reason_name(BLKTRACK_REASON_DEVICE_REMOVED),
			 "device-removed");
	cr_expect_str_eq(blktrack_reason_name(BLKTRACK_REASON_RESIZED), "resized");
}

Test(lib, status_json_keys)
{
	struct blktrack_status st = {
		.size = sizeof(st), .flags = BLKTRACK_STATUS_PENDING,
		.state = BLKTRACK_STATE_TRACKING, .block_size = 4096,
		.dev_size = 1ULL << 40, .active_dirty = 3, .pending_dirty = 4,
		.map_bytes = 5, .mem_limit = 6,
	};
	static const char *const keys[] = {
		"device", "size", "block_size", "state", "reason", "generation", "epoch",
		"pending", "snapshot", "active_dirty", "pending_dirty", "map_bytes", "mem_limit",
		"completions",
	};
	struct json_object *o, *v;
	size_t i;

	st.stamp.epoch = 7;
	cr_assert_eq(blktrack_status_json("/dev/x", &st, &o), 0);
	cr_expect_eq(json_object_object_length(o), 14);
	for (i = 0; i < 14; i++)
		cr_expect(json_object_object_get_ex(o, keys[i], &v), "missing %s", keys[i]);
	json_object_object_get_ex(o, "pending", &v);
	cr_expect(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
	json_object_object_get_ex(o, "size", &v);
	cr_expect_eq(json_object_get_uint64(v), 1ULL << 40);
	json_object_object_get_ex(o, "epoch", &v);
	cr_expect_eq(json_object_get_uint64(v), 7);
	json_object_object_get_ex(o, "state", &v);
	cr_expect_str_eq(json_object_get_string(v), "tracking");
	json_object_object_get_ex(o, "snapshot", &v);
	cr_expect_str_eq(json_object_get_string(v), "none");
	json_object_object_get_ex(o, "completions", &v);
	cr_expect_str_eq(json_object_get_string(v), "seen");
	json_object_put(o);

	st.flags |= BLKTRACK_STATUS_UNCOVERED;
	cr_assert_eq(blktrack_status_json("/dev/x", &st, &o), 0);
	json_object_object_get_ex(o, "completions", &v);
	cr_expect_str_eq(json_object_get_string(v), "partial");
	json_object_put(o);
	st.flags &= ~BLKTRACK_STATUS_UNCOVERED;

	/* A snapshot held, then one whose store filled up. */
	st.flags |= BLKTRACK_STATUS_SNAPSHOT;
	cr_assert_eq(blktrack_status_json("/dev/x", &st, &o), 0);
	json_object_object_get_ex(o, "snapshot", &v);
	cr_expect_str_eq(json_object_get_string(v), "held");
	json_object_put(o);
	st.flags |= BLKTRACK_STATUS_SNAP_OVERFLOW;
	cr_assert_eq(blktrack_status_json("/dev/x", &st, &o), 0);
	json_object_object_get_ex(o, "snapshot", &v);
	cr_expect_str_eq(json_object_get_string(v), "lost");
	json_object_put(o);
}

/* ---- the extent iterator against a fake kernel ----------------------- */

#define NBLOCKS	5000U
#define BS	4096U

static struct fake {
	uint64_t size;
	bool dirty[NBLOCKS];
	unsigned int calls;
	int fail_at;		/* call number that fails, 0: none */
} fk;

static int fake_status(struct blktrack_status *st)
{
	st->block_size = BS;
	st->dev_size = fk.size;
	st->flags = BLKTRACK_STATUS_PENDING;
	return 0;
}

/*
 * READ_EXTENTS as the ABI allows it: at most capacity entries (here fewer,
 * at random), each a run of dirty blocks at or after the cursor, sorted;
 * a run may be cut anywhere and continue in the next entry or call.
 */
static int fake_ioctl(struct blktrack_ctx *ctx, unsigned long cmd, void *arg)
{
	struct blktrack_read_extents *rd = arg;
	struct blktrack_extent *out = (void *)(uintptr_t)rd->extents_ptr;
	uint64_t nb = (fk.size + BS - 1) / BS;
	uint64_t b = rd->cursor / BS, s;
	uint32_t max = 1 + rand() % 4;

	if (cmd == BLKTRACK_IOC_STATUS)
		return fake_status(arg);
	cr_assert_eq(cmd, BLKTRACK_IOC_READ_EXTENTS);
	cr_assert(rd->capacity >= 1);
	cr_assert(rd->cursor % BS == 0 || rd->cursor == fk.size);
	if (++fk.calls == (unsigned int)fk.fail_at)
		return -EIO;
	if (max > rd->capacity)
		max = rd->capacity;
	rd->count = 0;
	while (rd->count < max) {
		while (b < nb && !fk.dirty[b])
			b++;
		if (b >= nb)
			break;
		s = b;
		while (b < nb && fk.dirty[b] && (rand() % 16 || b == s))
			b++;
		out[rd->count].offset = s * BS;
		out[rd->count].length = (b * BS > fk.size ? fk.size : b * BS) - s * BS;
		rd->count++;
	}
	while (b < nb && !fk.dirty[b])
		b++;
	rd->cursor = b >= nb ? fk.size : b * BS;
	return 0;
}

static const struct blktrack_kernel_ops fake_kernel = { .ioctl = fake_ioctl };
static struct blktrack_ctx fake_ctx = { .refcount = 1, .fd = -1, .kernel = &fake_kernel };

Test(lib, extent_iter_merges_pages_and_splits)
{
	struct blktrack_extent_iter *it;
	struct blktrack_extent e;
	unsigned int round, i;

	for (round = 0; round < 200; round++) {
		uint64_t b = 0, nb;
		size_t got = 0;

		srand(round);
		memset(&fk, 0, sizeof(fk));
		fk.size = (uint64_t)(1 + rand() % NBLOCKS) * BS - (round % 3 ? 0 : 1000);
		nb = (fk.size + BS - 1) / BS;
		for (i = 0; i < nb; i++)
			fk.dirty[i] = rand() % (2 + round % 7) == 0;

		cr_assert_eq(blktrack_extent_iter_new(&fake_ctx, 0, 0, NULL, &it), 0);
		for (;;) {
			uint64_t s;

			cr_assert_eq(blktrack_extent_iter_next(it, &e), 0);
			/* the reference: the next maximal run of dirty blocks */
			while (b < nb && !fk.dirty[b])
				b++;
			if (b >= nb) {
				cr_assert_eq(e.length, 0, "round %u: extra extent %llu+%llu",
					     round, (unsigned long long)e.offset,
					     (unsigned long long)e.length);
				break;
			}
			s = b;
			while (b < nb && fk.dirty[b])
				b++;
			cr_assert_eq(e.offset, s * BS, "round %u extent %zu offset", round, got);
			cr_assert_eq(e.length, (b * BS > fk.size ? fk.size : b * BS) - s * BS,
				     "round %u extent %zu length", round, got);
			got++;
		}
		blktrack_extent_iter_free(it);
	}
}

Test(lib, extent_iter_error_and_empty)
{
	struct blktrack_extent_iter *it;
	struct blktrack_extent e;
	unsigned int i;
	int err;

	memset(&fk, 0, sizeof(fk));
	fk.size = NBLOCKS * BS;
	for (i = 0; i < NBLOCKS; i += 2)
		fk.dirty[i] = true;
	fk.fail_at = 3;
	cr_assert_eq(blktrack_extent_iter_new(&fake_ctx, 0, 0, NULL, &it), 0);
	while (!(err = blktrack_extent_iter_next(it, &e)) && e.length)
		;
	cr_expect_eq(err, -EIO);
	blktrack_extent_iter_free(it);

	memset(&fk, 0, sizeof(fk));
	fk.size = 12345;
	cr_assert_eq(blktrack_extent_iter_new(&fake_ctx, 0, 0, NULL, &it), 0);
	cr_expect_eq(blktrack_extent_iter_next(it, &e), 0);
	cr_expect_eq(e.length, 0);
	cr_expect_eq(blktrack_extent_iter_next(it, &e), 0);
	cr_expect_eq(e.length, 0);
	blktrack_extent_iter_free(it);
}

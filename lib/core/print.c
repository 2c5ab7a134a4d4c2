// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: text and JSON for the CLI and blktrack-dump, kept in one
 * place so that both print the same keys the same way.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "core/core.h"

BLKTRACK_EXPORT void blktrack_uuid_unparse(const uint8_t u[16],
					   char out[BLKTRACK_UUID_STR_LEN])
{
	snprintf(out, BLKTRACK_UUID_STR_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

BLKTRACK_EXPORT const char *blktrack_state_name(uint32_t state)
{
	switch (state) {
	case BLKTRACK_STATE_TRACKING:
		return "tracking";
	case BLKTRACK_STATE_INVALID:
		return "invalid";
	default:
		return "unknown";
	}
}

BLKTRACK_EXPORT const char *blktrack_reason_name(uint32_t reason)
{
	switch (reason) {
	case BLKTRACK_REASON_NONE:
		return "none";
	case BLKTRACK_REASON_DEVICE_REMOVED:
		return "device-removed";
	case BLKTRACK_REASON_RESIZED:
		return "resized";
	case BLKTRACK_REASON_UNCLEAN:
		return "unclean";
	case BLKTRACK_REASON_NO_STATE:
		return "no-state";
	case BLKTRACK_REASON_OFFLINE_CHANGE:
		return "offline-change";
	case BLKTRACK_REASON_MEDIA_CHANGED:
		return "media-changed";
	case BLKTRACK_REASON_UNTRACKED_WRITE:
		return "untracked-write";
	default:
		return "unknown";
	}
}

BLKTRACK_EXPORT bool blktrack_stamp_equal(const struct blktrack_stamp *a,
					  const struct blktrack_stamp *b)
{
	return a->epoch == b->epoch &&
	       !memcmp(a->generation, b->generation, sizeof(a->generation));
}

/* The pending checkpoint's snapshot: "none", "held" or "lost" (its store filled). */
static const char *snapshot_name(uint32_t flags)
{
	if (!(flags & BLKTRACK_STATUS_SNAPSHOT))
		return "none";
	return flags & BLKTRACK_STATUS_SNAP_OVERFLOW ? "lost" : "held";
}

/* "seen": every write's completion marks the map; "partial": see BLKTRACK_STATUS_UNCOVERED. */
static const char *completions_name(uint32_t flags)
{
	return flags & BLKTRACK_STATUS_UNCOVERED ? "partial" : "seen";
}

BLKTRACK_EXPORT int blktrack_status_print(FILE *f, const char *device,
					  const struct blktrack_status *st)
{
	char gen[BLKTRACK_UUID_STR_LEN];

	blktrack_uuid_unparse(st->stamp.generation, gen);
	fprintf(f, "device: %s\n", device);
	fprintf(f, "size: %" PRIu64 "\n", (uint64_t)st->dev_size);
	fprintf(f, "block_size: %" PRIu32 "\n", (uint32_t)st->block_size);
	fprintf(f, "state: %s\n", blktrack_state_name(st->state));
	fprintf(f, "reason: %s\n", blktrack_reason_name(st->reason));
	fprintf(f, "generation: %s\n", gen);
	fprintf(f, "epoch: %" PRIu64 "\n", (uint64_t)st->stamp.epoch);
	fprintf(f, "pending: %s\n", st->flags & BLKTRACK_STATUS_PENDING ? "yes" : "no");
	fprintf(f, "snapshot: %s\n", snapshot_name(st->flags));
	fprintf(f, "completions: %s\n", completions_name(st->flags));
	fprintf(f, "active_dirty: %" PRIu64 "\n", (uint64_t)st->active_dirty);
	fprintf(f, "pending_dirty: %" PRIu64 "\n", (uint64_t)st->pending_dirty);
	fprintf(f, "map_bytes: %" PRIu64 "\n", (uint64_t)st->map_bytes);
	fprintf(f, "mem_limit: %" PRIu64 "\n", (uint64_t)st->mem_limit);
	return ferror(f) ? -EIO : 0;
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

BLKTRACK_EXPORT int blktrack_status_json(const char *device,
					 const struct blktrack_status *st,
					 struct json_object **objp)
{
	char gen[BLKTRACK_UUID_STR_LEN];
	struct json_object *o;
	int err = 0;

	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	blktrack_uuid_unparse(st->stamp.generation, gen);
	err |= add(o, "device", json_object_new_string(device));
	err |= add(o, "size", json_object_new_uint64(st->dev_size));
	err |= add(o, "block_size", json_object_new_uint64(st->block_size));
	err |= add(o, "state", json_object_new_string(blktrack_state_name(st->state)));
	err |= add(o, "reason", json_object_new_string(blktrack_reason_name(st->reason)));
	err |= add(o, "generation", json_object_new_string(gen));
	err |= add(o, "epoch", json_object_new_uint64(st->stamp.epoch));
	err |= add(o, "pending", json_object_new_boolean(!!(st->flags & BLKTRACK_STATUS_PENDING)));
	err |= add(o, "completions", json_object_new_string(completions_name(st->flags)));
	err |= add(o, "snapshot", json_object_new_string(snapshot_name(st->flags)));
	err |= add(o, "active_dirty", json_object_new_uint64(st->active_dirty));
	err |= add(o, "pending_dirty", json_object_new_uint64(st->pending_dirty));
	err |= add(o, "map_bytes", json_object_new_uint64(st->map_bytes));
	err |= add(o, "mem_limit", json_object_new_uint64(st->mem_limit));
	if (err) {
		json_object_put(o);
		return -ENOMEM;
	}
	*objp = o;
	return 0;
}

BLKTRACK_EXPORT int blktrack_extents_json(const struct blktrack_extent *ext,
					  size_t n, struct json_object **objp)
{
	struct json_object *a, *pair;
	size_t i;

	a = json_object_new_array_ext(n);
	if (!a)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		pair = json_object_new_array_ext(2);
		if (!pair ||
		    json_object_array_add(pair, json_object_new_uint64(ext[i].offset)) ||
		    json_object_array_add(pair, json_object_new_uint64(ext[i].length)) ||
		    json_object_array_add(a, pair)) {
			json_object_put(pair);
			json_object_put(a);
			return -ENOMEM;
		}
	}
	*objp = a;
	return 0;
}

BLKTRACK_EXPORT int blktrack_json_print(FILE *f, struct json_object *obj,
					bool pretty)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE;

	flags |= pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			: JSON_C_TO_STRING_PLAIN;
	fprintf(f, "%s\n", json_object_to_json_string_ext(obj, flags));
	return ferror(f) ? -EIO : 0;
}

/* ---- density picture ---------------------------------------------------- */

BLKTRACK_EXPORT char blktrack_density_char(uint64_t dirty, uint64_t total)
{
	if (!dirty || !total)
		return ' ';
	if (dirty >= total)
		return '#';
	/* 128-bit products: no overflow even for the largest volumes */
	if ((unsigned __int128)dirty * 4 < total)
		return '.';
	if ((unsigned __int128)dirty * 2 < total)
		return ':';
	return '*';
}

/* Byte offset where cell @i of @columns starts. */
static uint64_t cell_start(uint64_t size, unsigned int columns, unsigned int i)
{
	return (uint64_t)((unsigned __int128)size * i / columns);
}

BLKTRACK_EXPORT int blktrack_density(const struct blktrack_extent *ext, size_t n,
				     uint64_t dev_size, unsigned int columns,
				     char *out)
{
	uint64_t lo, hi, s, e, dirty;
	unsigned int i;
	size_t j = 0;

	if (!columns)
		return -EINVAL;
	for (i = 0; i < columns; i++) {
		lo = cell_start(dev_size, columns, i);
		hi = cell_start(dev_size, columns, i + 1);
		dirty = 0;
		/* extents are sorted: skip those that end before this cell */
		while (j < n && ext[j].offset + ext[j].length <= lo)
			j++;
		for (size_t k = j; k < n && ext[k].offset < hi; k++) {
			s = ext[k].offset > lo ? ext[k].offset : lo;
			e = ext[k].offset + ext[k].length;
			if (e > hi)
				e = hi;
			if (e > s)
				dirty += e - s;
		}
		out[i] = blktrack_density_char(dirty, hi - lo);
	}
	out[columns] = '\0';
	return 0;
}

/* ---- parsing ------------------------------------------------------------- */

BLKTRACK_EXPORT int blktrack_parse_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -errno;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
		if (v > (UINT64_MAX >> shift))
			return -ERANGE;
		v <<= shift;
	}
	*bytes = v;
	return 0;
}

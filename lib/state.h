/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state file format (lib/state.c has the layout table): build a file
 * from a header and a block set, and parse one. Internal to libblktrack;
 * kept apart from lib/state.c (which needs the kernel) so that the unit
 * tests and the fuzz target (tests/fuzz/fuzz_state.c) link the parser.
 *
 * Typical use:
 *
 *	state_build(&h, set, &buf, &len);     header fields little-endian
 *	state_parse(buf, len, &h, &set);      -EBADMSG, -EPROTONOSUPPORT
 */
#ifndef BLKTRACK_STATE_H
#define BLKTRACK_STATE_H

#include <stddef.h>
#include <stdint.h>

struct blockset;

#define STATE_MAGIC	"BTSTATE1"
#define STATE_VERSION	1U
#define STATE_CLEAN	1U
#define STATE_HDR	168U

struct state_hdr {
	char magic[8];
	uint32_t version;
	uint32_t flags;
	uint32_t block_size;
	uint32_t reserved;
	uint64_t volume_size;
	uint8_t generation[16];
	uint64_t epoch;
	int64_t time;
	uint64_t fingerprint;
	char fp_kind[16];
	char volume_id[64];
	uint64_t payload;
	uint64_t checksum;
} __attribute__((packed));

_Static_assert(sizeof(struct state_hdr) == STATE_HDR, "state file header layout");

/* Header + payload + trailer, in a malloc()ed buffer; @set may be NULL. */
int state_build(const struct state_hdr *h0, const struct blockset *set,
		void **out, size_t *len);
/*
 * Parse @buf (a whole state file); *@set may be NULL on success (no
 * payload). volume_id and fp_kind come back NUL-terminated.
 */
int state_parse(const char *buf, size_t len, struct state_hdr *h,
		struct blockset **set);

#endif /* BLKTRACK_STATE_H */

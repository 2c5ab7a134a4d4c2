/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state file format (lib/requester/state.c has the layout table): build a file
 * from a header and a block set, and parse one. Internal to libblktrack;
 * kept apart from lib/requester/state.c (which needs the kernel) so that the unit
 * tests and the fuzz target (tests/fuzz/fuzz_state.c) link the parser.
 *
 * Typical use:
 *
 *	statefile_build(&h, set, &buf, &len);     header fields little-endian
 *	statefile_parse(buf, len, &h, &set);      -EBADMSG, -EPROTONOSUPPORT
 */
#ifndef BLKTRACK_STATEFILE_H
#define BLKTRACK_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

struct blockset;

#define STATEFILE_MAGIC	"BTSTATE1"
#define STATEFILE_VERSION	1U
#define STATEFILE_CLEAN	1U
#define STATEFILE_HDR	168U

struct statefile_hdr {
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

_Static_assert(sizeof(struct statefile_hdr) == STATEFILE_HDR, "state file header layout");

/* Header + payload + trailer, in a malloc()ed buffer; @set may be NULL. */
int statefile_build(const struct statefile_hdr *h0, const struct blockset *set,
		void **out, size_t *len);
/*
 * Parse @buf (a whole state file); *@set may be NULL on success (no
 * payload). volume_id and fp_kind come back NUL-terminated.
 */
int statefile_parse(const char *buf, size_t len, struct statefile_hdr *h,
		struct blockset **set);

#endif /* BLKTRACK_STATEFILE_H */

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The state file format: build and parse (see state.h; the layout is in
 * state.c). No kernel, no filesystem: a buffer in, a buffer out.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "format/blockset.h"
#include "format/statefile.h"

/* Header + payload + trailer, in a malloc()ed buffer. */
int statefile_build(const struct statefile_hdr *h0, const struct blockset *set,
		void **out, size_t *len)
{
	struct statefile_hdr h = *h0;
	void *payload = NULL;
	size_t plen = 0;
	uint64_t digest;
	char *buf;
	int err;

	if (set) {
		err = blockset_serialize(set, &payload, &plen);
		if (err)
			return err;
	}
	memcpy(h.magic, STATEFILE_MAGIC, 8);
	h.version = htole32(STATEFILE_VERSION);
	h.payload = htole64(plen);
	h.checksum = htole64(XXH3_64bits(&h, offsetof(struct statefile_hdr, checksum)));
	*len = STATEFILE_HDR + plen + 8;
	buf = malloc(*len);
	if (!buf) {
		free(payload);
		return -ENOMEM;
	}
	memcpy(buf, &h, STATEFILE_HDR);
	if (plen)
		memcpy(buf + STATEFILE_HDR, payload, plen);
	free(payload);
	digest = htole64(XXH3_64bits(buf, STATEFILE_HDR + plen));
	memcpy(buf + STATEFILE_HDR + plen, &digest, 8);
	*out = buf;
	return 0;
}

/* Parse @buf (a whole state file); *@set may be NULL on success (no payload). */
int statefile_parse(const char *buf, size_t len, struct statefile_hdr *h,
		struct blockset **set)
{
	uint64_t plen, digest;

	*set = NULL;
	if (len < STATEFILE_HDR + 8)
		return -EBADMSG;
	memcpy(h, buf, STATEFILE_HDR);
	if (memcmp(h->magic, STATEFILE_MAGIC, 8) ||
	    le64toh(h->checksum) != XXH3_64bits(h, offsetof(struct statefile_hdr, checksum)))
		return -EBADMSG;
	if (le32toh(h->version) != STATEFILE_VERSION || h->reserved ||
	    (le32toh(h->flags) & ~STATEFILE_CLEAN))
		return -EPROTONOSUPPORT;
	plen = le64toh(h->payload);
	if (plen > len - STATEFILE_HDR - 8)
		return -EBADMSG;
	memcpy(&digest, buf + STATEFILE_HDR + plen, 8);
	if (le64toh(digest) != XXH3_64bits(buf, STATEFILE_HDR + plen))
		return -EBADMSG;
	h->volume_id[sizeof(h->volume_id) - 1] = 0;
	h->fp_kind[sizeof(h->fp_kind) - 1] = 0;
	return plen ? blockset_deserialize(buf + STATEFILE_HDR, plen, set) : 0;
}

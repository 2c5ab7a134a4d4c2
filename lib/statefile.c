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

#include "blockset.h"
#include "state.h"

/* Header + payload + trailer, in a malloc()ed buffer. */
int state_build(const struct state_hdr *h0, const struct blockset *set,
		void **out, size_t *len)
{
	struct state_hdr h = *h0;
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
	memcpy(h.magic, STATE_MAGIC, 8);
	h.version = htole32(STATE_VERSION);
	h.payload = htole64(plen);
	h.checksum = htole64(XXH3_64bits(&h, offsetof(struct state_hdr, checksum)));
	*len = STATE_HDR + plen + 8;
	buf = malloc(*len);
	if (!buf) {
		free(payload);
		return -ENOMEM;
	}
	memcpy(buf, &h, STATE_HDR);
	if (plen)
		memcpy(buf + STATE_HDR, payload, plen);
	free(payload);
	digest = htole64(XXH3_64bits(buf, STATE_HDR + plen));
	memcpy(buf + STATE_HDR + plen, &digest, 8);
	*out = buf;
	return 0;
}

/* Parse @buf (a whole state file); *@set may be NULL on success (no payload). */
int state_parse(const char *buf, size_t len, struct state_hdr *h,
		struct blockset **set)
{
	uint64_t plen, digest;

	*set = NULL;
	if (len < STATE_HDR + 8)
		return -EBADMSG;
	memcpy(h, buf, STATE_HDR);
	if (memcmp(h->magic, STATE_MAGIC, 8) ||
	    le64toh(h->checksum) != XXH3_64bits(h, offsetof(struct state_hdr, checksum)))
		return -EBADMSG;
	if (le32toh(h->version) != STATE_VERSION || h->reserved ||
	    (le32toh(h->flags) & ~STATE_CLEAN))
		return -EPROTONOSUPPORT;
	plen = le64toh(h->payload);
	if (plen > len - STATE_HDR - 8)
		return -EBADMSG;
	memcpy(&digest, buf + STATE_HDR + plen, 8);
	if (le64toh(digest) != XXH3_64bits(buf, STATE_HDR + plen))
		return -EBADMSG;
	h->volume_id[sizeof(h->volume_id) - 1] = 0;
	h->fp_kind[sizeof(h->fp_kind) - 1] = 0;
	return plen ? blockset_deserialize(buf + STATE_HDR, plen, set) : 0;
}

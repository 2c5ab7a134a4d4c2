// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: the RBD diff stream writer (rbddiff.h). What goes out, all
 * numbers little-endian:
 *
 *	banner          "rbd diff v1\n" or "rbd diff v2\n" (12 bytes)
 *	'f', 't'        [v2: le64 4 + N] le32 N, the N bytes of the name
 *	's'             [v2: le64 8] le64 image size
 *	'w'             [v2: le64 16 + L] le64 offset, le64 L, L bytes
 *	'z'             [v2: le64 16] le64 offset, le64 L
 *	'e'             the tag alone, in both versions
 *
 * Ceph writes 'e' without a length in v2 too (src/tools/rbd/action/Export.cc,
 * do_export_diff_fd(): `encode(tag, bl)` only) and its reader reads no
 * length after the end tag (Import.cc, read_tag(): `read_tag != end_tag`).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fdio.h"
#include "format/rbddiff.h"

#define BANNER_V1	"rbd diff v1\n"
#define BANNER_V2	"rbd diff v2\n"
#define BANNER_LEN	(sizeof(BANNER_V1) - 1)

struct rbddiff_writer {
	int fd;
	unsigned int version;
	uint64_t size;
	uint64_t next;			/* the end of the last data record */
	int err;			/* a write failed: the stream is cut */
};

static void le64_at(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/*
 * Record @tag with @len bytes of fields at @body; @more: the bytes the
 * caller writes right after (a 'w' record's data), counted in v2's length.
 */
static int record(struct rbddiff_writer *w, uint8_t tag, const void *body, size_t len,
		  uint64_t more)
{
	uint8_t head[1 + 8 + 4 + RBDDIFF_NAME_MAX];
	size_t n = 0;

	head[n++] = tag;
	if (w->version == RBDDIFF_V2 && tag != 'e') {
		le64_at(head + n, len + more);
		n += 8;
	}
	if (len)
		memcpy(head + n, body, len);
	return w->err = fd_write_all(w->fd, head, n + len);
}

static int name_record(struct rbddiff_writer *w, uint8_t tag, const char *name)
{
	uint8_t body[4 + RBDDIFF_NAME_MAX];
	uint32_t len = (uint32_t)strlen(name), le = htole32(len);

	memcpy(body, &le, 4);
	memcpy(body + 4, name, len);
	return record(w, tag, body, 4 + len, 0);
}

/* A snapshot name, or none (NULL). */
static int check_name(const char *name)
{
	if (!name)
		return 0;
	if (!*name)
		return -EINVAL;
	return strlen(name) > RBDDIFF_NAME_MAX ? -ENAMETOOLONG : 0;
}

int rbddiff_begin(int fd, unsigned int version, const char *from, const char *to,
		  uint64_t size, struct rbddiff_writer **out)
{
	struct rbddiff_writer *w;
	uint8_t le[8];
	int err;

	*out = NULL;
	if (version != RBDDIFF_V1 && version != RBDDIFF_V2)
		return -EINVAL;
	err = check_name(from);
	if (!err)
		err = check_name(to);
	if (err)
		return err;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->version = version;
	w->size = size;
	err = fd_write_all(fd, version == RBDDIFF_V1 ? BANNER_V1 : BANNER_V2, BANNER_LEN);
	/* 'f' before 't', as rbd export-diff has them: import-diff checks 'f' first. */
	if (!err && from)
		err = name_record(w, 'f', from);
	if (!err && to)
		err = name_record(w, 't', to);
	le64_at(le, size);
	if (!err)
		err = record(w, 's', le, sizeof(le), 0);
	if (err) {
		free(w);
		return err;
	}
	*out = w;
	return 0;
}

/* A data record's range: after the last one, within the size, not empty. */
static int check_range(const struct rbddiff_writer *w, uint64_t offset, uint64_t len)
{
	if (w->err)
		return w->err;
	if (!len)
		return -EINVAL;
	if (offset < w->next || offset > w->size || len > w->size - offset)
		return -ERANGE;
	return 0;
}

/* The fields of a 'w' or 'z' record; a 'w' record's data follows. */
static int extent(struct rbddiff_writer *w, uint8_t tag, uint64_t offset, uint64_t len)
{
	uint8_t body[16];

	le64_at(body, offset);
	le64_at(body + 8, len);
	w->next = offset + len;
	return record(w, tag, body, sizeof(body), tag == 'w' ? len : 0);
}

int rbddiff_write(struct rbddiff_writer *w, uint64_t offset, uint64_t len, const void *data)
{
	int err = check_range(w, offset, len);

	if (!err)
		err = extent(w, 'w', offset, len);
	if (!err)
		err = w->err = fd_write_all(w->fd, data, (size_t)len);
	return err;
}

int rbddiff_zero(struct rbddiff_writer *w, uint64_t offset, uint64_t len)
{
	int err = check_range(w, offset, len);

	return err ? err : extent(w, 'z', offset, len);
}

int rbddiff_end(struct rbddiff_writer *w)
{
	int err = w->err ? w->err : record(w, 'e', NULL, 0, 0);

	free(w);
	return err;
}

void rbddiff_abort(struct rbddiff_writer *w)
{
	free(w);
}

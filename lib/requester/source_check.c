// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: --verify-source: after the backup, the live
 * volume read a second time and compared with what the new file restores;
 * a block that differs but was rewritten since the checkpoint (the active
 * map has it) is not a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "requester/requester.h"

static bool all_zero(const char *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

int verify_against_source(struct backup *b, dev_t dev, const char *path)
{
	struct blockset *bad = NULL, *act = NULL;
	struct bfile_reader *rd = NULL;
	struct bfile_header h;
	struct bfile_record rec;
	uint64_t first_bad = 0, nbad;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		snprintf(b->msg, sizeof(b->msg), "writer verify: %s: %s", path, strerror(-err));
		return err;
	}
	err = blockset_new(&bad);
	if (!err)
		err = bfile_reader_open(fd, &h, &rd);
	while (!err && (err = bfile_read_record(rd, &rec)) > 0) {
		uint64_t off = 0;

		err = 0;
		while (!err && off < rec.length) {
			size_t len = rec.length - off < b->buf_len ? rec.length - off : b->buf_len;
			const char *want = rec.data ? (const char *)rec.data + off : NULL;
			size_t i;

			err = fd_pread_all(b->vol_fd, b->buf, len, rec.offset + off);
			for (i = 0; !err && i < len; i += b->block_size) {
				size_t l = len - i < b->block_size ? len - i : b->block_size;
				const char *got = (const char *)b->buf + i;

				if (want ? !memcmp(got, want + i, l) : all_zero(got, l))
					continue;
				if (!blockset_cardinality(bad))
					first_bad = rec.offset + off + i;
				err = blockset_add_range(bad, (rec.offset + off + i) /
							 b->block_size, 1);
			}
			off += len;
		}
	}
	if (err) {
		snprintf(b->msg, sizeof(b->msg), "writer verify: %s: %s", path,
			 rd && err != -ENOMEM ? bfile_reader_error(rd) : strerror(-err));
		goto out;
	}
	if (blockset_cardinality(bad)) {
		err = active_set(b, dev, &act);
		if (!err)
			err = blockset_andnot(bad, act);
		if (err)
			goto out;
	}
	nbad = blockset_cardinality(bad);
	if (nbad) {
		err = -EBADE;
		snprintf(b->msg, sizeof(b->msg), "writer verify: %s differs from %s in %" PRIu64
			 " block(s) not rewritten since the checkpoint (the first at or after "
			 "offset %" PRIu64 "): rejected", path, b->o->device, nbad, first_bad);
	}
out:
	bfile_reader_free(rd);
	blockset_free(bad);
	blockset_free(act);
	close(fd);
	return err;
}

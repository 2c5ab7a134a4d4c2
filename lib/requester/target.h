/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libblktrack internal: a restore's target (lib/requester/target.c).
 *
 * Typical use:
 *
 *	target_open(&t, path, volume_size, force, msg, len);   restore
 *	target_write(&t, off, buf, n);  ...                     NULL buf: zeros
 *	target_finish(&t, msg, len);                            whole, durable
 *	target_close(&t);                                       always
 *
 * A restore never leaves a target that looks whole when it is not: a file
 * is written under a temporary name beside it and renamed at the end; on
 * any target the first TARGET_HEAD bytes, where partition tables and
 * filesystems keep their signatures and superblocks, are written last (a
 * device's are zeroed first, so that the old filesystem does not show).
 *
 * Every function returns 0 or a negative errno, with a sentence in @msg
 * that names the path.
 */
#ifndef BLKTRACK_TARGET_H
#define BLKTRACK_TARGET_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* MBR, GPT, ext* (1 KiB), XFS (0), btrfs (64 KiB), LVM, md 1.1/1.2, swap. */
#define TARGET_HEAD	(1U << 20)

struct target {
	int fd;
	bool is_file;
	char path[PATH_MAX];	/* the file or device restored onto */
	char tmp[PATH_MAX];	/* a file: written here, renamed to path; "" after */
	uint64_t size;		/* the volume's: a file gets exactly this size */
	bool in_place;		/* restore --onto: the file itself, written in place */
	dev_t dev;		/* --onto a block device: its number (its point's record) */
	uint8_t *head;		/* its first head_len bytes, written last */
	size_t head_len;
	void *zeros;
};

/*
 * Open @path to restore a volume of @size bytes onto: a block device, with
 * O_EXCL unless @force (-EBUSY: mounted or held), -ENOSPC when it is
 * smaller than the volume, and its first TARGET_HEAD bytes zeroed; or a
 * file (created, or replaced at the end keeping its permissions), written
 * as a temporary file of exactly @size bytes beside it.
 */
int target_open(struct target *t, const char *path, uint64_t size, bool force,
		char *msg, size_t len);
/*
 * Open the regular file or block device @path, which holds an earlier
 * point, to write what a later point changed in place (restore --onto): no
 * temporary file, no head held back; the finish gives a file exactly @size
 * bytes. A device as target_open() opens one (O_EXCL unless @force, big
 * enough). -EINVAL for anything else.
 */
int target_open_onto(struct target *t, const char *path, uint64_t size, bool force,
		     char *msg, size_t len);
/* Write @n bytes of @buf at @off (below t->size), or zeros when @buf is NULL. */
int target_write(struct target *t, uint64_t off, const void *buf, size_t n);
/* Everything else durable, then the head, durable; a file renamed into place. */
int target_finish(struct target *t, char *msg, size_t len);
/* Close; a file not finished is removed (the target stays as it was). */
void target_close(struct target *t);

#endif /* BLKTRACK_TARGET_H */

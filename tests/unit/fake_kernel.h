/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fake /dev/blktrack-ctl for unit tests: the module's ioctls served in
 * process, over the module's own map (kmod/btmap.c, built with
 * -DBTMAP_USERSPACE), with plain files as volumes. Installed in a context
 * as its struct blktrack_kernel_ops (lib/core/core.h), it is what the
 * library reaches instead of the kernel: the ioctls, and what a path names
 * (a volume file has a device number and a stable identity).
 *
 * Typical use:
 *
 *	fk = fake_kernel_new(0);
 *	fake_kernel_add_volume(fk, "/tmp/t/vol.img", &dev);  the file is a disk
 *	ctx = fake_kernel_context(fk);        blktrack_new() + fake_kernel_install()
 *	blktrack_attach(ctx, dev, 0, 0);
 *	fake_kernel_write(fk, dev, off, len, data);   written and marked, as
 *	                                              the module's probe does
 *	fake_kernel_fail(fk, BLKTRACK_IOC_COMMIT, 1, EIO);   the next COMMIT fails
 *	blktrack_backup(ctx, &opts, &res);
 *	fake_kernel_map(fk, dev, FAKE_ACTIVE, blocks, n);     what the maps hold
 *	blktrack_unref(ctx);
 *	fake_kernel_free(fk);
 *
 * What the module does, as doc/ABI.md and kmod/main.c, volume.c and
 * snapshot.c say: every argument check in the module's order and errno
 * (EMSGSIZE, EINVAL, ENODEV/ENOENT, then the state's: EEXIST, EBUSY,
 * ENODATA, ESTALE); a call that fails changes nothing; CHECKPOINT turns the
 * active map into the pending one at one instant (all or nothing, the new
 * size taken: a grown tail is dirty whole); READ_EXTENTS pages with the
 * cursor; COMMIT drops the pending map and adds 1 to the epoch, ABORT
 * merges it back and adds BLKTRACK_EPOCH_ABORT; the disk's sequence number
 * (fake_kernel_media_change()) loses the history until a COMMIT after it;
 * and the copy-before-write snapshot (CHECKPOINT_SNAP, SNAP_READ,
 * SNAP_STATUS): a write through fake_kernel_write() first copies what it
 * overwrites of the protected blocks, a store over its limit loses the
 * snapshot, a block read is released. The copies stay in memory even with
 * BLKTRACK_SNAP_STORE_FD (the descriptor is checked as the module checks
 * it; its limit is then the one given, or none). With FAKE_NO_SNAPSHOT the
 * module is one built without the write interception: no
 * BLKTRACK_FEATURE_SNAPSHOT, CHECKPOINT_SNAP fails with EOPNOTSUPP. Not
 * served: RESTORE (no BLKTRACK_FEATURE_RESTORE: ENOTTY), EPERM, EFAULT
 * (pointers are trusted), a volume that goes away.
 *
 * Volumes are numbered FAKE_MAJOR:N, a major the kernel leaves to local
 * use (Documentation/admin-guide/devices.txt) and a minor no block device
 * of this machine has: nothing is mounted from them, so the requester's
 * filesystem writer finds nothing to freeze. A volume's size is its file's,
 * in whole sectors, seen at ATTACH and at each CHECKPOINT.
 *
 * The thread that calls fake_kernel_new() and any other may call it (the
 * requester's reader threads read snapshots); every call takes one lock.
 */
#ifndef BLKTRACK_FAKE_KERNEL_H
#define BLKTRACK_FAKE_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct blktrack_ctx;
struct fake_kernel;

#define FAKE_MAJOR		60U
#define FAKE_VOLUMES		8U

/* fake_kernel_new() flags */
#define FAKE_NO_SNAPSHOT	(1U << 0)	/* a module without snapshots */

struct fake_kernel *fake_kernel_new(unsigned int flags);
void fake_kernel_free(struct fake_kernel *fk);

/* Make the file @path a block device of the fake (not attached): 0 or -errno. */
int fake_kernel_add_volume(struct fake_kernel *fk, const char *path, dev_t *dev);

/* @ctx reaches @fk instead of the kernel (until the context is freed). */
void fake_kernel_install(struct fake_kernel *fk, struct blktrack_ctx *ctx);
/* A new context with @fk installed (blktrack_unref() it); NULL: no memory. */
struct blktrack_ctx *fake_kernel_context(struct fake_kernel *fk);

/*
 * Write @len bytes of @data at @off of volume @dev's file, as a write to
 * the disk: what a snapshot protects is copied first, then the active map
 * marks the blocks when the volume is attached. 0 or -errno.
 */
int fake_kernel_write(struct fake_kernel *fk, dev_t dev, uint64_t off, size_t len,
		      const void *data);

/* New media in @dev's disk (its sequence number moves): the history is lost. */
void fake_kernel_media_change(struct fake_kernel *fk, dev_t dev);

/*
 * The @nth call of ioctl @cmd from now on (1: the next) fails with -@err
 * and changes nothing. Several may be armed at once.
 */
void fake_kernel_fail(struct fake_kernel *fk, unsigned long cmd, unsigned int nth, int err);

/* READ_EXTENTS returns at most @extents per call (0: as many as fit). */
void fake_kernel_set_page(struct fake_kernel *fk, unsigned int extents);

/* Calls of ioctl @cmd so far, failed ones included. */
unsigned int fake_kernel_calls(struct fake_kernel *fk, unsigned long cmd);

/*
 * Every call so far, in order: "STATUS CHECKPOINT READ_EXTENTS ...", a
 * failed one as "COMMIT:-5". fake_kernel_log_clear() starts it afresh.
 */
const char *fake_kernel_log(struct fake_kernel *fk);
void fake_kernel_log_clear(struct fake_kernel *fk);

/* Which map fake_kernel_map() reads. */
enum fake_map { FAKE_ACTIVE, FAKE_PENDING };

/*
 * Blocks [0, @n) of volume @dev's map @which into @blocks (past the map's
 * end: false). -ENOENT: not attached; -ENODATA: no pending map.
 */
int fake_kernel_map(struct fake_kernel *fk, dev_t dev, enum fake_map which, bool *blocks,
		    uint64_t n);

/*
 * Run @fn(@arg) in a child process whose kernel is @fk: the child's ioctls
 * and fake_kernel_write() come back over a socket and are served here until
 * it exits or dies, as the module outlives a requester killed by SIGKILL.
 * The child ends with _exit(0) after @fn. Returns its wait status, or
 * -errno when it could not be started.
 */
int fake_kernel_run_child(struct fake_kernel *fk, void (*fn)(void *arg), void *arg);

#endif /* BLKTRACK_FAKE_KERNEL_H */

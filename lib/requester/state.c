// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack: tracking state saved across a reboot (doc/RELIABILITY.md).
 *
 * blktrack_save_state() writes a volume's active map, stamp, size, block
 * size and a filesystem fingerprint to STATE_DIR/VOLUME_ID.state, with the
 * clean flag only when the map is final: the volume is not mounted
 * read-write, so nothing but a raw writer can change it any more.
 * blktrack_load_state() (a boot, right after ATTACH) checks the file and
 * either loads it with BLKTRACK_IOC_RESTORE, so that the history goes on,
 * or marks the volume INVALID with the reason; before loading, it clears
 * the clean flag on disk, so that a crash later in this boot is not
 * mistaken for a clean shutdown.
 *
 * A state directory on the tracked volume itself: the file is written
 * normally while the filesystem is read-write (not clean: writes follow),
 * which allocates it with room to spare; once the filesystem is read-only
 * (the end of a shutdown) the final, clean state is written through the
 * block device into the file's own blocks (FIEMAP), which the saved map
 * then includes: the state's own writes are tracked too. A state directory
 * on another filesystem that is read-only (the root's, early at boot and
 * late at shutdown) is written in place the same way; save that volume
 * last, so that its map holds these writes too (blktrack save does).
 *
 * File layout (little-endian), then zeros up to the allocated size:
 *	  0   8  magic "BTSTATE1"
 *	  8   4  version (1)
 *	 12   4  flags: 1 = clean
 *	 16   4  block size
 *	 20   4  reserved (0)
 *	 24   8  volume size in bytes
 *	 32  16  generation
 *	 48   8  epoch
 *	 56   8  time saved (seconds since the epoch)
 *	 64   8  fingerprint (XXH3-64; 0 for kind "none")
 *	 72  16  fingerprint kind, NUL-padded: "ext4", "xfs" or "none"
 *	 88  64  volume id, NUL-padded
 *	152   8  payload bytes P: the active map as a block set file
 *	160   8  XXH3-64 of bytes [0, 160)
 *	168   P  the block set (doc/REPOSITORY.md, "Block set files")
 *	168+P 8  XXH3-64 of bytes [0, 168 + P)
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <xxhash.h>

#include "core/fdio.h"
#include "kernel/kernel.h"
#include "format/blockset.h"
#include "format/statefile.h"
#include "requester/fs.h"
#include "requester/writers.h"

#define STATE_ROOM	(1U << 20)	/* allocate at least this, and twice the need */
#define XFS_MAGIC	0x58465342

struct fingerprint {
	uint64_t hash;
	char kind[16];
};

/* ---- the filesystem fingerprint ------------------------------------------ */

static int hash_range(int fd, uint64_t off, uint64_t len, XXH3_state_t *xx)
{
	char *buf = malloc(1U << 20);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (!err && len) {
		size_t n = len < (1U << 20) ? len : (1U << 20);
		ssize_t got = pread(fd, buf, n, off);

		if (got < 0)
			err = -errno;
		else if ((size_t)got != n)
			err = -EIO;
		else
			XXH3_64bits_update(xx, buf, n);
		off += n;
		len -= n;
	}
	free(buf);
	return err;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/*
 * What a mount would change. ext2/3/4: the superblock (mount time and
 * count, write time, kbytes written). XFS: the superblock and the internal
 * log, whose head every read-write mount moves. Anything else: "none".
 */
static int fingerprint(struct blktrack_ctx *ctx, const char *path,
		       struct fingerprint *fp)
{
	struct blktrack_volume_id vid;
	unsigned char sb[512];
	XXH3_state_t *xx;
	int fd, err;

	memset(fp, 0, sizeof(*fp));
	strcpy(fp->kind, "none");
	err = kernel_volume_identify(ctx, path, &vid);
	if (err < 0)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	xx = XXH3_createState();
	if (!xx) {
		close(fd);
		return -ENOMEM;
	}
	XXH3_64bits_reset(xx);
	if (!strcmp(vid.fstype, "ext2") || !strcmp(vid.fstype, "ext3") ||
	    !strcmp(vid.fstype, "ext4")) {
		err = hash_range(fd, 1024, 1024, xx);
		strcpy(fp->kind, "ext4");
	} else if (!strcmp(vid.fstype, "xfs")) {
		err = pread(fd, sb, sizeof(sb), 0) == (ssize_t)sizeof(sb) ? 0 : -EIO;
		if (!err && be32(sb) != XFS_MAGIC)
			err = -EILSEQ;
		if (!err) {
			uint64_t bsize = be32(sb + 4), logstart = be64(sb + 48);
			uint64_t agblocks = be32(sb + 84), logblocks = be32(sb + 96);
			unsigned int agblklog = sb[124];

			XXH3_64bits_update(xx, sb, sizeof(sb));
			if (logstart && agblklog < 64) {
				uint64_t agno = logstart >> agblklog;
				uint64_t agbno = logstart & ((1ULL << agblklog) - 1);

				err = hash_range(fd, (agno * agblocks + agbno) * bsize,
						 logblocks * bsize, xx);
			}
		}
		strcpy(fp->kind, "xfs");
	}
	if (!err && strcmp(fp->kind, "none"))
		fp->hash = XXH3_64bits_digest(xx);
	XXH3_freeState(xx);
	close(fd);
	return err;
}

/* ---- a restore deferred from the attach (the initramfs) ------------------- */

/*
 * The initramfs attaches the root before mounting it, but the states are
 * on the root: their load waits for the real system. Between the two, the
 * kernel mounts the root (read-only) and may write its superblock, which
 * tracking sees. So what the saved fingerprint must equal is the volume as
 * it was at the attach: blktrack_defer_state() keeps it in /run (which
 * outlives the switch to the real root), blktrack_load_state() uses it.
 */
#define DEFERRED_DIR	"/run/blktrack/restore-pending"

static void deferred_path(dev_t dev, char *out, size_t len)
{
	snprintf(out, len, DEFERRED_DIR "/%u:%u", major(dev), minor(dev));
}

/* The attach's generation as 32 hex digits. */
static void gen_hex(const uint8_t gen[16], char out[33])
{
	int i;

	for (i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", gen[i]);
}

BLKTRACK_EXPORT int blktrack_defer_state(struct blktrack_ctx *ctx, const char *device)
{
	char path[128], tmp[160], text[96], gen[33];
	struct blktrack_status st;
	struct fingerprint fp;
	dev_t dev;
	int fd, err;

	err = blktrack_dev_from_path(device, &dev);
	if (!err)
		err = blktrack_status(ctx, dev, &st);
	if (!err)
		err = fingerprint(ctx, device, &fp);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: %s", device, strerror(-err));
	deferred_path(dev, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* Bound to this attach: a detach and a new attach make it stale. */
	gen_hex(st.stamp.generation, gen);
	snprintf(text, sizeof(text), "%s %016" PRIx64 " %s\n", fp.kind, fp.hash, gen);
	if ((mkdir("/run/blktrack", 0755) && errno != EEXIST) ||
	    (mkdir(DEFERRED_DIR, 0755) && errno != EEXIST))
		return blktrack_set_error(ctx, -errno, DEFERRED_DIR ": %s", strerror(errno));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	err = fd < 0 ? -errno : fd_write_all(fd, text, strlen(text));
	if (fd >= 0 && close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		return blktrack_set_error(ctx, err, "%s: %s", path, strerror(-err));
	return 0;
}

/*
 * The fingerprint kept at @dev's attach: 0; -ENOENT when none was; -ESTALE
 * (the record removed) when it is of an earlier attach of the device number.
 */
static int deferred_fingerprint(struct blktrack_ctx *ctx, dev_t dev, struct fingerprint *fp)
{
	char path[128], kind[16], gen[33], now[33];
	struct blktrack_status st;
	uint64_t hash;
	FILE *f;
	int n, err;

	deferred_path(dev, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fscanf(f, "%15s %" SCNx64 " %32s", kind, &hash, gen);
	fclose(f);
	err = blktrack_status(ctx, dev, &st);
	if (err < 0)
		return err;
	gen_hex(st.stamp.generation, now);
	if (n != 3 || strcmp(gen, now)) {
		unlink(path);
		return -ESTALE;
	}
	memset(fp, 0, sizeof(*fp));
	memcpy(fp->kind, kind, sizeof(fp->kind));
	fp->hash = hash;
	return 0;
}

BLKTRACK_EXPORT bool blktrack_state_deferred(struct blktrack_ctx *ctx, dev_t dev)
{
	struct fingerprint fp;

	return !deferred_fingerprint(ctx, dev, &fp);
}

/* ---- where the state file lives ------------------------------------------ */

/* @dev as (whole disk, first sector, sectors), from sysfs. */
static int dev_span(dev_t dev, dev_t *disk, uint64_t *start, uint64_t *len)
{
	char p[128], buf[64];
	unsigned int maj, min;
	FILE *f;
	int ok;

	*disk = dev;
	*start = 0;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/size", major(dev), minor(dev));
	f = fopen(p, "re");
	if (!f)
		return -errno;
	ok = fscanf(f, "%" SCNu64, len) == 1;
	fclose(f);
	if (!ok)
		return -EIO;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/start", major(dev), minor(dev));
	f = fopen(p, "re");
	if (!f)
		return 0;		/* a whole disk */
	ok = fscanf(f, "%" SCNu64, start) == 1;
	fclose(f);
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../dev", major(dev), minor(dev));
	f = fopen(p, "re");
	if (!f || !ok)
		return f ? (fclose(f), -EIO) : -errno;
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &maj, &min) == 2;
	fclose(f);
	if (!ok)
		return -EIO;
	*disk = makedev(maj, min);
	return 0;
}

/* Do @a and @b share sectors (a partition and its disk, or the same)? */
static bool overlaps(dev_t a, dev_t b)
{
	uint64_t sa, la, sb, lb;
	dev_t da, db;

	if (a == b)
		return true;
	if (dev_span(a, &da, &sa, &la) || dev_span(b, &db, &sb, &lb))
		return false;
	return da == db && sa < sb + lb && sb < sa + la;
}

/* The device of @dir, or of its nearest existing parent (save creates it). */
static int dir_dev(const char *dir, struct stat *st)
{
	char p[4096], *slash;

	snprintf(p, sizeof(p), "%s", dir);
	while (stat(p, st)) {
		if (errno != ENOENT)
			return -errno;
		slash = strrchr(p, '/');
		if (!slash)
			return stat(".", st) ? -errno : 0;
		if (slash == p)
			slash[1] = 0;
		else
			*slash = 0;
	}
	return 0;
}

/*
 * Whether a state in @dir is written in place, through the block device of
 * its filesystem (*@sd), rather than through the filesystem: when that is
 * read-only. On the volume itself (*@on_volume): the volume is not mounted
 * read-write (@vol_rw false). On another volume: its filesystem is mounted
 * read-only everywhere, as the root filesystem is early at boot and late
 * at shutdown, when the other volumes' states are loaded and saved.
 */
static bool state_in_place(const char *dir, dev_t vol, bool vol_rw, struct stat *sd,
			   bool *on_volume)
{
	struct statvfs sv;
	char mnt[4096];
	bool rw = true;

	*on_volume = false;
	if (dir_dev(dir, sd))
		return false;
	*on_volume = overlaps(sd->st_dev, vol);
	if (*on_volume)
		return !vol_rw;
	if (statvfs(dir, &sv) || !(sv.f_flag & ST_RDONLY))
		return false;
	fs_mount_state(sd->st_dev, mnt, sizeof(mnt), &rw);
	return !rw;
}

/* A state to write in place that cannot be: no file yet, or not on ext4/XFS. */
static void in_place_error(struct blktrack_ctx *ctx, const char *device, const char *dir,
			   int err)
{
	blktrack_set_error(ctx, err, "%s: the state directory %s is read-only now and %s: "
			   "save once while it is writable (that allocates the file)", device,
			   dir, err == -ENOENT ? "has no state file" :
			   "the state file cannot be written in place");
}

/* ---- the file ------------------------------------------------------------ */

static void state_path(const char *dir, const char *volume_id, char *out, size_t len)
{
	char *p;

	snprintf(out, len, "%s/%s.state", dir, volume_id);
	for (p = out + strlen(dir) + 1; *p; p++)
		if (*p == '/')
			*p = '_';
}

/*
 * Write @buf as @path through the filesystem: PATH.tmp, zero-filled to
 * twice its size (at least STATE_ROOM, so a later raw write fits), fsync,
 * rename, fsync the directory.
 */
static int write_normal(const char *dir, const char *path, const void *buf, size_t len)
{
	size_t room = 2 * len > STATE_ROOM ? 2 * len : STATE_ROOM, done;
	char tmp[4200], zeros[4096] = { 0 };
	int fd, dfd, err;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = fd_write_all(fd, buf, len);
	for (done = len; !err && done < room; done += sizeof(zeros))
		err = fd_write_all(fd, zeros, room - done < sizeof(zeros) ? room - done : sizeof(zeros));
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	err = fsync(dfd) ? -errno : 0;
	close(dfd);
	return err;
}

/*
 * The byte extents (on its filesystem's device) holding [0, @len) of the
 * file @fd; refused (-EOPNOTSUPP) unless each is plain allocated, written,
 * unshared data that a raw write may replace.
 */
static int file_extents(int fd, uint64_t len, struct blktrack_extent **out, size_t *n)
{
	const uint32_t bad = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
			     FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED |
			     FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE |
			     FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_UNWRITTEN |
			     FIEMAP_EXTENT_SHARED;
	const unsigned int max = 256;
	struct blktrack_extent *v;
	struct fiemap *fm;
	uint64_t covered = 0;
	unsigned int i;
	int err = 0;

	fm = calloc(1, sizeof(*fm) + max * sizeof(struct fiemap_extent));
	v = calloc(max, sizeof(*v));
	if (!fm || !v) {
		free(fm);
		free(v);
		return -ENOMEM;
	}
	fm->fm_start = 0;
	fm->fm_length = len;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = max;
	if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0)
		err = -errno;
	for (i = 0; !err && i < fm->fm_mapped_extents; i++) {
		const struct fiemap_extent *e = &fm->fm_extents[i];

		if ((e->fe_flags & bad) || e->fe_logical != covered)
			err = -EOPNOTSUPP;
		v[i].offset = e->fe_physical;
		v[i].length = e->fe_length;
		covered += e->fe_length;
	}
	if (!err && covered < len)
		err = -EOPNOTSUPP;	/* a hole, or more extents than we asked */
	free(fm);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*n = i;
	return 0;
}

/* Overwrite the start of the file @path through its block device @bdev. */
static int write_raw(const char *path, dev_t bdev, const void *buf, size_t len)
{
	struct blktrack_extent *ext = NULL;
	char devpath[4096];
	const char *p = buf;
	struct statfs sfs;
	struct stat st;
	size_t n = 0, i;
	int fd, bfd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = fstat(fd, &st) || fstatfs(fd, &sfs) ? -errno : 0;
	/* Only filesystems without data checksums a raw write would break. */
	if (!err && sfs.f_type != EXT4_SUPER_MAGIC && sfs.f_type != XFS_MAGIC)
		err = -EOPNOTSUPP;
	if (!err && (uint64_t)st.st_size < len)
		err = -ENOSPC;
	if (!err)
		err = file_extents(fd, len, &ext, &n);
	if (!err)
		err = blktrack_dev_name(bdev, devpath, sizeof(devpath));
	bfd = err ? -1 : open(devpath, O_WRONLY | O_CLOEXEC);
	if (!err && bfd < 0)
		err = -errno;
	for (i = 0; !err && i < n && len; i++) {
		size_t k = len < ext[i].length ? len : ext[i].length;

		if (pwrite(bfd, p, k, ext[i].offset) != (ssize_t)k)
			err = errno ? -errno : -EIO;
		p += k;
		len -= k;
	}
	if (!err && fsync(bfd))
		err = -errno;
	if (bfd >= 0)
		close(bfd);
	/* The file's cached pages are stale now: drop them. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	free(ext);
	return err;
}

/* The state's own blocks on @dev, in blocks of @bs: a raw write changes them. */
static int add_own_blocks(const char *path, dev_t dev, dev_t fsdev, uint32_t bs,
			  struct blockset *set)
{
	struct blktrack_extent *ext = NULL;
	uint64_t dstart, dlen, fstart, flen;
	struct stat st;
	dev_t disk;
	size_t n = 0, i;
	int fd, err;

	/* Physical offsets are on @fsdev; @dev may be its disk or the same. */
	err = dev_span(dev, &disk, &dstart, &dlen);
	if (!err)
		err = dev_span(fsdev, &disk, &fstart, &flen);
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = fstat(fd, &st) ? -errno : file_extents(fd, st.st_size, &ext, &n);
	close(fd);
	for (i = 0; !err && i < n; i++) {
		uint64_t off = ext[i].offset + (fstart - dstart) * 512;

		err = blockset_add_range(set, off / bs,
					 (off + ext[i].length + bs - 1) / bs - off / bs);
	}
	free(ext);
	return err;
}

static int read_file(const char *path, char **buf, size_t *len)
{
	struct stat st;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size > (64LL << 30)) {
		close(fd);
		return -EFBIG;
	}
	*buf = malloc(st.st_size ? st.st_size : 1);
	if (!*buf) {
		close(fd);
		return -ENOMEM;
	}
	got = pread(fd, *buf, st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		free(*buf);
		return -EIO;
	}
	*len = st.st_size;
	return 0;
}

/* ---- save ---------------------------------------------------------------- */

struct volume {
	dev_t dev;
	bool stable;		/* the id follows the device across a reboot */
	char id[BLKTRACK_VOLUME_ID_MAX + 32];
	struct blktrack_status st;
};

static int volume_open(struct blktrack_ctx *ctx, const char *device, struct volume *v)
{
	struct blktrack_volume_id vid;
	int err = kernel_dev_from_path(ctx, device, &v->dev);

	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: %s", device, err == -ENOTBLK ?
					  "not a block device" : strerror(-err));
	err = kernel_volume_identify(ctx, device, &vid);
	if (err < 0)
		return blktrack_set_error(ctx, err, "%s: cannot identify the volume: %s",
					  device, strerror(-err));
	snprintf(v->id, sizeof(v->id), "%s:%s", vid.id_type, vid.id);
	v->stable = blktrack_volume_id_stable(&vid);
	err = blktrack_open(ctx);
	if (err < 0)
		return err;
	err = blktrack_status(ctx, v->dev, &v->st);
	if (err == -ENOENT)
		return blktrack_set_error(ctx, err, "%s is not attached", device);
	return err;
}

BLKTRACK_EXPORT int blktrack_save_state(struct blktrack_ctx *ctx, const char *device,
					const char *state_dir,
					struct blktrack_save_result *res)
{
	struct blktrack_extent *ext = NULL;
	struct blockset *set = NULL;
	struct statefile_hdr h;
	struct fingerprint fp;
	struct volume v;
	struct stat sd;
	char mnt[4096];
	void *buf = NULL;
	size_t n = 0, len;
	bool rw, on_volume;
	int err;

	memset(res, 0, sizeof(*res));
	if (!state_dir)
		state_dir = BLKTRACK_STATE_DIR_DEFAULT;
	err = volume_open(ctx, device, &v);
	if (err < 0)
		return err;
	/*
	 * A device number may name another disk after the reboot (two equal
	 * disks swap names): a state saved under it could be loaded as that
	 * disk's history. Refused, not marked: nothing could ever load it.
	 */
	if (!v.stable)
		return blktrack_set_error(ctx, -EOPNOTSUPP, "%s: no stable identity (no "
					  "filesystem or partition UUID, no WWN or serial, "
					  "no dm or md UUID): after a reboot its device "
					  "number may name another disk, so no state is saved "
					  "for it (detach without --save; after a reboot, "
					  "attach --restore-state gives INVALID no-state)",
					  device);
	if (v.st.flags & BLKTRACK_STATUS_PENDING)
		return blktrack_set_error(ctx, -EBUSY, "%s: a checkpoint is pending (a backup "
					  "is running?): save after it", device);
	state_path(state_dir, v.id, res->path, sizeof(res->path));

	/* Read-write means writes may follow the save: the map is not final. */
	fs_mount_state(v.dev, mnt, sizeof(mnt), &rw);
	res->clean = !rw && v.st.state == BLKTRACK_STATE_TRACKING;
	res->raw = state_in_place(state_dir, v.dev, rw, &sd, &on_volume);

	err = blktrack_read_extents(ctx, v.dev, BLKTRACK_READ_ACTIVE, NULL, &ext, &n);
	if (err < 0)
		goto out;
	err = blockset_from_extents(ext, n, v.st.block_size, &set);
	if (!err && res->raw && on_volume)
		err = add_own_blocks(res->path, v.dev, sd.st_dev, v.st.block_size, set);
	if (res->raw && (err == -ENOENT || err == -EOPNOTSUPP)) {
		in_place_error(ctx, device, state_dir, err);
		goto out;
	}
	if (err) {
		blktrack_set_error(ctx, err, "%s: %s", device, strerror(-err));
		goto out;
	}
	res->dirty_blocks = blockset_cardinality(set);

	memset(&fp, 0, sizeof(fp));
	strcpy(fp.kind, "none");
	if (res->clean && fingerprint(ctx, device, &fp) < 0) {
		memset(&fp, 0, sizeof(fp));
		strcpy(fp.kind, "none");
	}
	snprintf(res->fingerprint, sizeof(res->fingerprint), "%s", fp.kind);
	memset(&h, 0, sizeof(h));
	h.flags = htole32(res->clean ? STATEFILE_CLEAN : 0);
	h.block_size = htole32(v.st.block_size);
	h.volume_size = htole64(v.st.dev_size);
	memcpy(h.generation, v.st.stamp.generation, 16);
	h.epoch = htole64(v.st.stamp.epoch);
	h.time = htole64((int64_t)time(NULL));
	h.fingerprint = htole64(fp.hash);
	memcpy(h.fp_kind, fp.kind, sizeof(h.fp_kind));
	snprintf(h.volume_id, sizeof(h.volume_id), "%.63s", v.id);
	err = statefile_build(&h, set, &buf, &len);
	if (err)
		goto out;
	if (res->raw)
		err = write_raw(res->path, sd.st_dev, buf, len);
	else
		err = write_normal(state_dir, res->path, buf, len);
	if (res->raw && (err == -ENOENT || err == -EOPNOTSUPP)) {
		in_place_error(ctx, device, state_dir, err);
		goto out;
	}
	if (err == -ENOSPC && res->raw) {
		/* The map outgrew the file: say so in place, never leave it clean. */
		free(buf);
		h.flags = 0;
		err = statefile_build(&h, NULL, &buf, &len);
		if (!err)
			err = write_raw(res->path, sd.st_dev, buf, len);
		if (!err)
			err = -ENOSPC;
	}
	if (err)
		blktrack_set_error(ctx, err, "%s: %s", res->path, strerror(-err));
out:
	free(buf);
	free(ext);
	blockset_free(set);
	return err;
}

/* ---- load ---------------------------------------------------------------- */

/* RESTORE @set (the saved history since @h's stamp), in pages. */
static int restore_set(struct blktrack_ctx *ctx, dev_t dev, const struct statefile_hdr *h,
		       const struct blockset *set)
{
	struct blktrack_restore r = { .size = sizeof(r) };
	uint64_t *first = NULL, *count = NULL, size = le64toh(h->volume_size);
	uint32_t bs = le32toh(h->block_size);
	struct blktrack_extent *ext = NULL;
	size_t n = 0, i, k;
	int err = 0;

	if (set)
		err = blockset_extents(set, &first, &count, &n);
	if (!err && n) {
		ext = calloc(n < BLKTRACK_RESTORE_MAX ? n : BLKTRACK_RESTORE_MAX, sizeof(*ext));
		if (!ext)
			err = -ENOMEM;
	}
	r.dev = blktrack_devno_of(dev);
	memcpy(r.stamp.generation, h->generation, 16);
	r.stamp.epoch = le64toh(h->epoch);
	r.dev_size = size;
	r.block_size = bs;
	r.extents_ptr = (uintptr_t)ext;
	for (i = 0; !err && (i < n || !i);) {
		for (k = 0; i < n && k < BLKTRACK_RESTORE_MAX; i++) {
			uint64_t off = first[i] * bs, end = (first[i] + count[i]) * bs;

			if (off >= size)
				continue;
			ext[k].offset = off;
			ext[k++].length = (end < size ? end : size) - off;
		}
		r.count = k;
		err = blktrack_ioctl(ctx, BLKTRACK_IOC_RESTORE, &r, "RESTORE");
		if (!n)
			break;
	}
	free(ext);
	free(first);
	free(count);
	return err;
}

static int restore_invalid(struct blktrack_ctx *ctx, dev_t dev, uint32_t reason)
{
	struct blktrack_restore r = { .size = sizeof(r), .flags = BLKTRACK_RESTORE_INVALID,
				      .reason = reason };

	r.dev = blktrack_devno_of(dev);
	return blktrack_ioctl(ctx, BLKTRACK_IOC_RESTORE, &r, "RESTORE");
}

/*
 * Why the saved state @h of volume @v cannot be trusted (a BLKTRACK_REASON_*,
 * with @detail), or 0. The fingerprint it must equal is the volume's now,
 * or at the attach for a deferred restore (the initramfs's).
 */
static uint32_t untrusted(struct blktrack_ctx *ctx, const char *device,
			  const struct volume *v, const struct statefile_hdr *h, bool deferred,
			  char *detail, size_t len)
{
	struct fingerprint fp;
	int err;

	if (!(le32toh(h->flags) & STATEFILE_CLEAN)) {
		snprintf(detail, len, "saved without the clean flag (a crash, or saved while "
			 "mounted read-write)");
		return BLKTRACK_REASON_UNCLEAN;
	}
	if (strncmp(h->volume_id, v->id, sizeof(h->volume_id) - 1)) {
		snprintf(detail, len, "the state is of volume %s", h->volume_id);
		return BLKTRACK_REASON_UNCLEAN;
	}
	if (le64toh(h->volume_size) != v->st.dev_size ||
	    le32toh(h->block_size) != v->st.block_size) {
		snprintf(detail, len, "saved %" PRIu64 " bytes in %u-byte blocks, now %" PRIu64
			 " in %u", (uint64_t)le64toh(h->volume_size), le32toh(h->block_size),
			 (uint64_t)v->st.dev_size, v->st.block_size);
		return BLKTRACK_REASON_RESIZED;
	}
	err = deferred ? deferred_fingerprint(ctx, v->dev, &fp) : fingerprint(ctx, device, &fp);
	if (err < 0 || strcmp(fp.kind, h->fp_kind) || fp.hash != le64toh(h->fingerprint)) {
		snprintf(detail, len, "the %s fingerprint changed since the save: written "
			 "while not tracked", h->fp_kind);
		return BLKTRACK_REASON_OFFLINE_CHANGE;
	}
	return 0;
}

/* Rewrite the state @path of @v without its clean flag (in place if read-only). */
static int clear_clean(const char *dir, const char *path, const struct volume *v,
		       struct statefile_hdr *h)
{
	void *cleared = NULL;
	char mnt[4096];
	bool rw = false, on_volume;
	struct stat sd;
	size_t len;
	int err;

	fs_mount_state(v->dev, mnt, sizeof(mnt), &rw);
	h->flags = 0;
	err = statefile_build(h, NULL, &cleared, &len);
	if (!err)
		err = state_in_place(dir, v->dev, rw, &sd, &on_volume) ?
		      write_raw(path, sd.st_dev, cleared, len) :
		      write_normal(dir, path, cleared, len);
	free(cleared);
	return err;
}

BLKTRACK_EXPORT int blktrack_load_state(struct blktrack_ctx *ctx, const char *device,
					const char *state_dir,
					struct blktrack_load_result *res)
{
	struct blockset *set = NULL;
	struct statefile_hdr h;
	struct volume v;
	char *file = NULL, dpath[128];
	size_t len = 0;
	bool deferred;
	int err;

	memset(res, 0, sizeof(*res));
	if (!state_dir)
		state_dir = BLKTRACK_STATE_DIR_DEFAULT;
	err = volume_open(ctx, device, &v);
	if (err < 0)
		return err;
	state_path(state_dir, v.id, res->path, sizeof(res->path));
	/* Attached in the initramfs: compared with the volume as it was then. */
	deferred = blktrack_state_deferred(ctx, v.dev);

	res->reason = BLKTRACK_REASON_NO_STATE;
	/* Never by device number: a state saved so may be another disk's. */
	if (!v.stable) {
		snprintf(res->detail, sizeof(res->detail), "no stable identity (%s): a "
			 "state is never loaded by device number", v.id);
		goto invalid;
	}
	err = read_file(res->path, &file, &len);
	if (err) {
		snprintf(res->detail, sizeof(res->detail), "%s", strerror(-err));
		goto invalid;
	}
	err = statefile_parse(file, len, &h, &set);
	if (err) {
		snprintf(res->detail, sizeof(res->detail), "%s",
			 err == -EBADMSG ? "corrupt" : strerror(-err));
		goto invalid;
	}
	res->reason = untrusted(ctx, device, &v, &h, deferred, res->detail, sizeof(res->detail));
	if (res->reason)
		goto invalid;
	/* Not clean any more on disk before the kernel trusts it (a crash later). */
	err = clear_clean(state_dir, res->path, &v, &h);
	if (err) {
		res->reason = BLKTRACK_REASON_UNCLEAN;
		snprintf(res->detail, sizeof(res->detail), "cannot clear the clean flag "
			 "(%s): not trusted", strerror(-err));
		goto invalid;
	}
	err = restore_set(ctx, v.dev, &h, set);
	if (err < 0) {
		blktrack_set_error(ctx, err, "%s: RESTORE: %s", device,
				   blktrack_ioctl_strerror(err));
		goto out;
	}
	res->loaded = true;
	res->reason = BLKTRACK_REASON_NONE;
	res->dirty_blocks = set ? blockset_cardinality(set) : 0;
	err = 0;
	goto out;

invalid:
	err = restore_invalid(ctx, v.dev, res->reason);
	if (err < 0)
		blktrack_set_error(ctx, err, "%s: RESTORE: %s", device,
				   blktrack_ioctl_strerror(err));
out:
	/* Loaded or not trusted: done either way (a RESTORE that failed: again). */
	if (deferred && err >= 0) {
		deferred_path(v.dev, dpath, sizeof(dpath));
		unlink(dpath);
	}
	free(file);
	blockset_free(set);
	return err;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libblktrack, the requester: browsing a point (blktrack mount, umount;
 * doc/blktrack.8). The cheapest way that is correct: the point restored
 * into a sparse image of our own (blktrack_restore(), so every member is
 * checked first), a loop device over it that clears itself when the
 * filesystem is unmounted, the filesystem mounted read-only. The loop
 * device is writable so that the filesystem can replay its journal into
 * our copy (a backup of a mounted volume has one to replay); the mount is
 * not. A record in MOUNTS_DIR tells umount what to clean up and list what
 * is mounted.
 */
#include <blkid/blkid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "requester/requester.h"

#define MOUNTS_DIR	VOLLOCK_DIR "/mounts"

/* The record of @mp: MOUNTS_DIR/ and @mp with '/' as "%2f" (and '%' as "%25"). */
static int record_path(const char *dir, const char *mp, char *out, size_t len)
{
	size_t k = (size_t)snprintf(out, len, "%s/", dir);

	for (; *mp && k + 4 < len; mp++)
		k += *mp == '/' || *mp == '%' ?
		     (size_t)snprintf(out + k, len - k, "%%%02x", (unsigned char)*mp) :
		     (size_t)snprintf(out + k, len - k, "%c", *mp);
	return *mp ? -ENAMETOOLONG : 0;
}

/* MOUNTS_DIR, made 0700 (its parent too) and checked to be ours alone. */
static int mounts_dir(struct blktrack_ctx *ctx, const char *dir)
{
	struct stat sb;

	if (!strcmp(dir, MOUNTS_DIR) && mkdir(VOLLOCK_DIR, 0700) && errno != EEXIST)
		return blktrack_set_error(ctx, -errno, "%s: %s", VOLLOCK_DIR, strerror(errno));
	if (mkdir(dir, 0700) && errno != EEXIST)
		return blktrack_set_error(ctx, -errno, "%s: %s", dir, strerror(errno));
	if (lstat(dir, &sb) || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 022))
		return blktrack_set_error(ctx, -EPERM, "%s: not a directory only uid %u can "
					  "write: refused", dir, (unsigned int)geteuid());
	return 0;
}

/* The filesystem in @image, from libblkid: its type into @type. */
static int probe_type(const char *image, char *type, size_t len)
{
	blkid_probe pr = blkid_new_probe_from_filename(image);
	const char *t = NULL;
	int err = -EMEDIUMTYPE;

	if (!pr)
		return -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
	if (!blkid_do_safeprobe(pr) && !blkid_probe_lookup_value(pr, "TYPE", &t, NULL) &&
	    t && strlen(t) < len && strcmp(t, "swap")) {
		strcpy(type, t);
		err = 0;
	}
	blkid_free_probe(pr);
	return err;
}

/* A free loop device over @image, cleared when its last user goes: its path. */
static int loop_attach(const char *image, char *dev, size_t len)
{
	struct loop_config cfg = { .info.lo_flags = LO_FLAGS_AUTOCLEAR };
	int ifd, ctl, lfd = -1, n, err = 0, tries;

	ifd = open(image, O_RDWR | O_CLOEXEC);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ifd < 0 || ctl < 0)
		err = -errno;
	cfg.fd = ifd;
	/* Another program may take the free device first: ask again. */
	for (tries = 0; !err && tries < 8; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			err = -errno;
			break;
		}
		snprintf(dev, len, "/dev/loop%d", n);
		lfd = open(dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0) {
			err = -errno;
			break;
		}
		if (!ioctl(lfd, LOOP_CONFIGURE, &cfg))
			break;
		err = errno == EBUSY ? 0 : -errno;
		close(lfd);
		lfd = -1;
	}
	if (!err && lfd < 0)
		err = -EBUSY;
	if (ifd >= 0)
		close(ifd);
	if (ctl >= 0)
		close(ctl);
	/* Our fd goes now: the mount holds the device, AUTOCLEAR frees it after. */
	return err ? err : lfd;
}

static void remove_image(const char *dir)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/image", dir);
	unlink(path);
	rmdir(dir);
}

static int write_record(const char *path, const struct blktrack_mount_result *res,
			const char *repo)
{
	struct json_object *o = json_object_new_object();
	const char *text;
	int fd, err;

	json_object_object_add(o, "mount_point", json_object_new_string(res->mount_point));
	json_object_object_add(o, "repo", json_object_new_string(repo));
	json_object_object_add(o, "backup", json_object_new_uint64(res->backup_id));
	json_object_object_add(o, "loop", json_object_new_string(res->loop));
	json_object_object_add(o, "fstype", json_object_new_string(res->fstype));
	json_object_object_add(o, "image_dir", json_object_new_string(res->image_dir));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	err = fd < 0 ? -errno : fd_write_all(fd, text, strlen(text));
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	return err;
}

/* Restore, attach, probe and mount: undone by the caller on a failure (res says how far). */
static int mount_point(struct blktrack_ctx *ctx, const struct blktrack_mount_opts *o,
		       struct blktrack_mount_result *res, int *lfd)
{
	struct blktrack_restore_opts ro = {
		.repo = o->repo, .backup_id = o->backup_id, .file = o->file,
		.progress = o->progress, .progress_data = o->progress_data,
		.no_writers = true,
	};
	struct blktrack_restore_result rr;
	char image[PATH_MAX + 16];
	int err;

	snprintf(image, sizeof(image), "%s/image", res->image_dir);
	ro.target = image;
	err = blktrack_restore(ctx, &ro, &rr);
	res->backup_id = rr.backup_id;
	res->excluded_bytes = rr.excluded_bytes;
	res->failure = err ? rr.failure : BLKTRACK_FAIL_NONE;
	if (err)
		return err;
	err = probe_type(image, res->fstype, sizeof(res->fstype));
	if (err)
		return blktrack_set_error(ctx, err, "backup %" PRIu64 " holds no filesystem "
					  "that libblkid knows (a partitioned disk or a qcow2 "
					  "image: restore it and use its own tools)",
					  res->backup_id);
	*lfd = loop_attach(image, res->loop, sizeof(res->loop));
	if (*lfd < 0)
		return blktrack_set_error(ctx, *lfd, "a loop device over %s: %s", image,
					  strerror(-*lfd));
	/* XFS refuses a second filesystem of one UUID (the live one): nouuid. */
	if (mount(res->loop, res->mount_point, res->fstype, MS_RDONLY | MS_NOSUID | MS_NODEV,
		  strcmp(res->fstype, "xfs") ? NULL : "nouuid"))
		return blktrack_set_error(ctx, -errno, "mount %s (%s, backup %" PRIu64 ") on "
					  "%s: %s", res->loop, res->fstype, res->backup_id,
					  res->mount_point, strerror(errno));
	return 0;
}

BLKTRACK_EXPORT int blktrack_mount(struct blktrack_ctx *ctx,
				   const struct blktrack_mount_opts *o,
				   struct blktrack_mount_result *res)
{
	const char *dir = o->mounts_dir ? o->mounts_dir : MOUNTS_DIR;
	char record[PATH_MAX * 3 + 64];
	struct stat sb;
	int err, lfd = -1;

	memset(res, 0, sizeof(*res));
	if (!o->repo || !o->mount_point)
		return blktrack_set_error(ctx, -EINVAL, "mount: invalid options");
	if (!realpath(o->mount_point, res->mount_point) || stat(res->mount_point, &sb))
		return blktrack_set_error(ctx, -errno, "%s: %s", o->mount_point, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return blktrack_set_error(ctx, -ENOTDIR, "%s: not a directory", o->mount_point);
	err = mounts_dir(ctx, dir);
	if (!err && record_path(dir, res->mount_point, record, sizeof(record)))
		err = blktrack_set_error(ctx, -ENAMETOOLONG, "%s: too long", res->mount_point);
	if (err)
		return err;
	if (!access(record, F_OK))
		return blktrack_set_error(ctx, -EBUSY, "%s: a point is mounted there already "
					  "(blktrack umount %s)", res->mount_point,
					  res->mount_point);
	snprintf(res->image_dir, sizeof(res->image_dir), "%s/blktrack-mount.XXXXXX",
		 o->tmp_dir ? o->tmp_dir : "/var/tmp");
	if (!mkdtemp(res->image_dir))
		return blktrack_set_error(ctx, -errno, "%s: %s", res->image_dir, strerror(errno));
	err = mount_point(ctx, o, res, &lfd);
	if (!err) {
		err = write_record(record, res, o->repo);
		if (err && umount2(res->mount_point, 0)) {
			/* Mounted, and it cannot be undone now: say so, keep its image. */
			close(lfd);
			return blktrack_set_error(ctx, err, "%s: %s; backup %" PRIu64 " stays "
						  "mounted on %s (%s, image in %s): umount it "
						  "by hand", record, strerror(-err),
						  res->backup_id, res->mount_point, res->loop,
						  res->image_dir);
		}
		if (err)
			blktrack_set_error(ctx, err, "%s: %s; unmounted again", record,
					   strerror(-err));
	}
	if (lfd >= 0) {
		if (err)
			ioctl(lfd, LOOP_CLR_FD);
		close(lfd);
	}
	if (err)
		remove_image(res->image_dir);
	return err;
}

/* The record at @path, as JSON (a new reference), or NULL. */
static struct json_object *read_record(const char *path)
{
	struct json_object *o = json_object_from_file(path);

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

BLKTRACK_EXPORT int blktrack_umount(struct blktrack_ctx *ctx, const char *mount_point,
				    const char *mounts_dir_path)
{
	const char *dir = mounts_dir_path ? mounts_dir_path : MOUNTS_DIR;
	char mp[PATH_MAX], record[PATH_MAX * 3 + 64], idir[PATH_MAX];
	struct json_object *o;

	if (!realpath(mount_point, mp))
		snprintf(mp, sizeof(mp), "%s", mount_point);
	if (record_path(dir, mp, record, sizeof(record)))
		return blktrack_set_error(ctx, -ENAMETOOLONG, "%s: too long", mp);
	o = read_record(record);
	if (!o)
		return blktrack_set_error(ctx, -ENOENT, "%s: no point mounted there by "
					  "blktrack mount (blktrack list --mounts)", mp);
	snprintf(idir, sizeof(idir), "%s", jstr(o, "image_dir"));
	json_object_put(o);
	/* Busy: everything stays, the user closes what holds it. */
	if (umount2(mp, 0) && errno != EINVAL)
		return blktrack_set_error(ctx, -errno, "umount %s: %s", mp, strerror(errno));
	/* The loop device cleared itself (AUTOCLEAR) with the last unmount. */
	if (strstr(idir, "/blktrack-mount."))
		remove_image(idir);
	unlink(record);
	return 0;
}

BLKTRACK_EXPORT int blktrack_mounts_json(struct blktrack_ctx *ctx, const char *mounts_dir_path,
					 struct json_object **out)
{
	const char *dir = mounts_dir_path ? mounts_dir_path : MOUNTS_DIR;
	struct json_object *arr = json_object_new_array(), *o;
	char path[PATH_MAX * 3 + 64];
	struct dirent **names;
	int n, i;

	if (!arr)
		return blktrack_set_error(ctx, -ENOMEM, "%s", strerror(ENOMEM));
	n = scandir(dir, &names, NULL, alphasort);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			o = read_record(path);
			if (o)
				json_object_array_add(arr, o);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	*out = arr;
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * ceph-mkchain DIR [MIB [REPO]]: a repository with a chain made on the host, without the
 * module: DIR/volume.img tracked by the fake kernel (tests/unit/fake_kernel.c)
 * and backed up by the real library into DIR/repo: 1 full, 2 and 3
 * incrementals, 4 a differential (on 1), 5 an incremental (on 3). The
 * volume as the program wrote it at backup N is kept as DIR/point.N.img:
 * what every restore or import of point N must equal. Random data
 * (seeded by the pid), overlapping writes, a zeroed range. MIB: the
 * volume's size (16 MiB; the benchmark's copy takes a bigger one). REPO:
 * the repository to back up into instead of DIR/repo (rados://POOL/NAME:
 * the backups, their verify writer and hash files go through RADOS), made
 * when missing; in one that holds backups already, the ids follow them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "fake_kernel.h"
#include "libblktrack.h"

#define BS	4096U
static uint64_t NB = 4096;		/* blocks: 16 MiB */

static char vol[4200], repo[4200], locks[4200], writers[4200];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static uint8_t *model;
static dev_t dev;
static uint64_t first_id = 1;		/* REPO's next id */

static void die(const char *what, int err)
{
	fprintf(stderr, "ceph-mkchain: %s: %s\n", what, ctx && blktrack_get_error(ctx) ?
		blktrack_get_error(ctx) : strerror(err < 0 ? -err : err));
	exit(1);
}

/* Blocks [@first, +@n): random, or zeros. */
static void vwrite(uint64_t first, uint64_t n, int zero)
{
	for (uint64_t i = first * BS; i < (first + n) * BS; i++)
		model[i] = zero ? 0 : (uint8_t)random();
	if (fake_kernel_write(fk, dev, first * BS, n * BS, model + first * BS))
		die("write", EIO);
}

static void backup(const char *dir, enum blktrack_backup_type type, uint64_t want)
{
	struct blktrack_backup_opts o = {
		.device = vol, .repo = repo, .type = type, .lock_dir = locks,
		.writers_dir = writers, .lock_wait = 60,	/* a killed holder's lock expires */
	};
	struct blktrack_backup_result res;
	char path[4300];
	FILE *f;

	if (blktrack_backup(ctx, &o, &res))
		die("backup", EIO);
	if (res.id != want + first_id - 1)
		die("backup: an unexpected id", EPROTO);
	snprintf(path, sizeof(path), "%s/point.%llu.img", dir, (unsigned long long)res.id);
	f = fopen(path, "w");
	if (!f || fwrite(model, BS, NB, f) != NB || fclose(f))
		die(path, errno);
}

/* The id REPO gives its next backup: above every id it lists. */
static int next_id(struct blktrack_ctx *c)
{
	struct json_object *top, *arr;
	int err = blktrack_repo_json(c, repo, false, &top);

	if (err)
		return err;
	if (json_object_object_get_ex(top, "backups", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *id;

			if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "id", &id) &&
			    (uint64_t)json_object_get_int64(id) >= first_id)
				first_id = (uint64_t)json_object_get_int64(id) + 1;
		}
	json_object_put(top);
	return 0;
}

int main(int argc, char *argv[])
{
	struct blktrack_ctx *plain;
	FILE *f;

	if (argc < 2 || argc > 4 || strlen(argv[1]) > 4000 ||
	    (argc >= 3 && (atoi(argv[2]) < 16 || atoi(argv[2]) > 65536)) ||
	    (argc == 4 && strlen(argv[3]) >= sizeof(repo))) {
		fprintf(stderr, "usage: ceph-mkchain DIR [MIB: 16 to 65536 [REPO]]\n");
		return 2;
	}
	if (argc >= 3)
		NB = (uint64_t)atoi(argv[2]) * 256;
	srandom((unsigned int)getpid());
	snprintf(vol, sizeof(vol), "%s/volume.img", argv[1]);
	if (argc == 4)
		snprintf(repo, sizeof(repo), "%s", argv[3]);
	else
		snprintf(repo, sizeof(repo), "%s/repo", argv[1]);
	snprintf(locks, sizeof(locks), "%s/locks", argv[1]);
	snprintf(writers, sizeof(writers), "%s/writers", argv[1]);
	if (mkdir(writers, 0700))
		die(writers, errno);
	model = malloc((size_t)NB * BS);
	if (!model)
		die("memory", ENOMEM);
	for (size_t i = 0; i < (size_t)NB * BS; i++)
		model[i] = (i / BS) % 3 ? (uint8_t)random() : 0;
	f = fopen(vol, "w");
	if (!f || fwrite(model, BS, NB, f) != NB || fclose(f))
		die(vol, errno);
	plain = blktrack_new();
	if (!plain || (blktrack_repo_init(plain, repo) && argc < 4))
		die(repo, EIO);
	if (argc == 4 && next_id(plain))
		die(repo, EIO);
	blktrack_unref(plain);
	fk = fake_kernel_new(0);
	if (!fk || fake_kernel_add_volume(fk, vol, &dev))
		die("fake kernel", EIO);
	ctx = fake_kernel_context(fk);
	if (!ctx || blktrack_attach(ctx, dev, 0, 0))
		die("attach", EIO);
	backup(argv[1], BLKTRACK_BACKUP_FULL, 1);
	vwrite(10, 300, 0);
	vwrite(NB - 1, 1, 0);
	backup(argv[1], BLKTRACK_BACKUP_INCREMENTAL, 2);
	vwrite(200, 200, 0);
	vwrite(1000, 64, 1);			/* zeros over data */
	backup(argv[1], BLKTRACK_BACKUP_INCREMENTAL, 3);
	vwrite(3000, 17, 0);
	backup(argv[1], BLKTRACK_BACKUP_DIFFERENTIAL, 4);
	vwrite(0, 5, 0);
	vwrite(2047, 2, 1);
	backup(argv[1], BLKTRACK_BACKUP_INCREMENTAL, 5);
	blktrack_unref(ctx);
	fake_kernel_free(fk);
	free(model);
	return 0;
}

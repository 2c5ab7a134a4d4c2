// SPDX-License-Identifier: GPL-2.0
/*
 * The fake control device (fake_kernel.c) against doc/ABI.md, through the
 * library's ioctl wrappers: the backup tests (tests/unit/lib/) trust it to
 * be the module, so it is held to the module's contract here. Every map
 * is compared with the set of blocks the test itself wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "core/core.h"
#include "fake_kernel.h"

#define BS	4096U
#define NB	300U			/* blocks of the volume */
#define SIZE	((uint64_t)NB * BS)

static char top[64], vol_path[96];
static struct fake_kernel *fk;
static struct blktrack_ctx *ctx;
static dev_t dev;

static void make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
}

static void start(unsigned int flags)
{
	snprintf(top, sizeof(top), "/tmp/bt-fake.XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(vol_path, sizeof(vol_path), "%s/vol.img", top);
	make_file(vol_path, SIZE);
	fk = fake_kernel_new(flags);
	cr_assert(fk);
	cr_assert_eq(fake_kernel_add_volume(fk, vol_path, &dev), 0);
	ctx = fake_kernel_context(fk);
	cr_assert(ctx);
}

static void setup(void)
{
	start(0);
}

static void teardown(void)
{
	char cmd[128];

	blktrack_unref(ctx);
	fake_kernel_free(fk);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(fake, .init = setup, .fini = teardown, .timeout = 30);

/* Write blocks [@first, +@n) with @byte, through the fake; note them in @ref. */
static void wr(uint64_t first, uint64_t n, int byte, bool *ref)
{
	uint8_t *buf = malloc(n * BS);
	uint64_t i;

	cr_assert(buf);
	memset(buf, byte, n * BS);
	cr_assert_eq(fake_kernel_write(fk, dev, first * BS, n * BS, buf), 0);
	for (i = 0; ref && i < n; i++)
		ref[first + i] = true;
	free(buf);
}

/* The map read through the library (READ_EXTENTS, paged) equals @ref. */
static void expect_extents(uint32_t flags, const struct blktrack_stamp *stamp,
			   const bool *ref)
{
	struct blktrack_extent *ext;
	bool got[NB] = { 0 };
	size_t n, i;
	uint64_t b;

	cr_assert_eq(blktrack_read_extents(ctx, dev, flags, stamp, &ext, &n), 0, "%s",
		     blktrack_get_error(ctx));
	for (i = 0; i < n; i++) {
		cr_assert_eq(ext[i].offset % BS, 0);
		for (b = ext[i].offset / BS; b * BS < ext[i].offset + ext[i].length; b++)
			got[b] = true;
	}
	free(ext);
	for (b = 0; b < NB; b++)
		cr_assert_eq(got[b], ref[b], "block %llu: map %d, written %d",
			     (unsigned long long)b, got[b], ref[b]);
}

static uint64_t count(const bool *ref)
{
	uint64_t b, n = 0;

	for (b = 0; b < NB; b++)
		n += ref[b];
	return n;
}

Test(fake, the_volume_file_is_a_device_with_an_identity)
{
	struct blktrack_volume_id vid;
	char other[128];
	dev_t d;

	cr_assert_eq(ctx->kernel->dev_from_path(ctx, vol_path, &d), 0);
	cr_expect_eq(d, dev);
	cr_expect_eq(major(dev), FAKE_MAJOR);
	cr_assert_eq(ctx->kernel->volume_identify(ctx, vol_path, &vid), 0);
	cr_expect_str_eq(vid.id_type, "uuid");
	cr_expect(blktrack_volume_id_stable(&vid));
	snprintf(other, sizeof(other), "%s/other", top);
	make_file(other, BS);
	cr_expect_eq(ctx->kernel->dev_from_path(ctx, other, &d), -ENOTBLK);
	cr_expect_eq(ctx->kernel->dev_from_path(ctx, "/nonexistent/x", &d), -ENOENT);
	/* The context opens nothing: its kernel is the fake. */
	cr_expect_eq(blktrack_open(ctx), 0);
	cr_expect_eq(blktrack_get_fd(ctx), -1);
}

Test(fake, argument_checks_give_the_modules_errno)
{
	struct blktrack_status st = { .size = sizeof(st) - 8 };
	uint64_t features;
	uint32_t abi;

	cr_assert_eq(blktrack_version(ctx, &abi, &features), 0);
	cr_expect_eq(abi, BLKTRACK_ABI_VERSION);
	cr_expect_eq(features, BLKTRACK_FEATURE_ABORT_EPOCH | BLKTRACK_FEATURE_SNAPSHOT);
	cr_expect_eq(blktrack_status(ctx, dev, &st), -ENOENT);
	cr_expect_eq(blktrack_attach(ctx, makedev(FAKE_MAJOR, 999), 0, 0), -ENODEV);
	cr_expect_eq(blktrack_attach(ctx, makedev(4096, 1), 0, 0), -ENODEV);
	cr_expect_eq(blktrack_attach(ctx, dev, 3000, 0), -EINVAL);
	cr_expect_eq(blktrack_attach(ctx, dev, 2048, 0), -EINVAL);
	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	cr_expect_eq(blktrack_attach(ctx, dev, 0, 0), -EEXIST);
	/* A struct of another size; a number the module does not know. */
	st.size = sizeof(st) - 8;
	cr_expect_eq(ctx->kernel->ioctl(ctx, BLKTRACK_IOC_STATUS, &st), -EMSGSIZE);
	cr_expect_eq(ctx->kernel->ioctl(ctx, _IOW(0xBC, 0x40, struct blktrack_status), &st),
		     -ENOTTY);
	cr_expect_eq(ctx->kernel->ioctl(ctx, BLKTRACK_IOC_RESTORE, &st), -ENOTTY);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.dev_size, SIZE);
	cr_expect_eq(st.block_size, BS);
	cr_expect_eq(st.state, BLKTRACK_STATE_TRACKING);
	cr_expect_eq(st.flags, 0);
	cr_expect_eq(st.stamp.epoch, 0);
	cr_expect_eq(blktrack_detach(ctx, dev), 0);
	cr_expect_eq(blktrack_detach(ctx, dev), -ENOENT);
}

Test(fake, checkpoint_commit_abort_and_the_epochs)
{
	bool a[NB] = { 0 }, b[NB] = { 0 }, both[NB];
	struct blktrack_stamp old;
	struct blktrack_status st;
	struct blktrack_ckpt ck, ck2;
	uint64_t i;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	wr(3, 5, 1, a);
	wr(100, 1, 1, a);
	wr(NB - 1, 1, 1, a);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	cr_expect_eq(ck.dirty, count(a));
	cr_expect_eq(ck.stamp.epoch, 0);
	expect_extents(0, &ck.stamp, a);
	cr_expect_eq(blktrack_checkpoint(ctx, &dev, 1, &ck2), -EBUSY);
	wr(50, 2, 2, b);
	expect_extents(BLKTRACK_READ_ACTIVE, NULL, b);

	/* Another epoch is not the pending map's. */
	old = ck.stamp;
	old.epoch = 1;
	cr_expect_eq(blktrack_commit(ctx, dev, &old), -ESTALE);
	cr_expect_eq(blktrack_read_extents(ctx, dev, 0, &old, &(struct blktrack_extent *){ 0 },
					   &(size_t){ 0 }), -ESTALE);
	cr_assert_eq(blktrack_commit(ctx, dev, &ck.stamp), 0);
	cr_expect_eq(blktrack_commit(ctx, dev, &ck.stamp), -ENODATA);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.stamp.epoch, 1);
	cr_expect_eq(st.flags & BLKTRACK_STATUS_PENDING, 0);
	cr_expect_eq(st.active_dirty, count(b));

	/* ABORT merges back and moves the epoch by 2^32: the old stamp is dead. */
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	cr_expect_eq(ck.stamp.epoch, 1);
	memset(a, 0, sizeof(a));
	wr(7, 3, 3, a);
	cr_assert_eq(blktrack_abort(ctx, dev, &ck.stamp), 0);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.stamp.epoch, 1 + BLKTRACK_EPOCH_ABORT);
	for (i = 0; i < NB; i++)
		both[i] = a[i] || b[i];
	expect_extents(BLKTRACK_READ_ACTIVE, NULL, both);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck2), 0);
	cr_expect_eq(ck2.stamp.epoch, 1 + BLKTRACK_EPOCH_ABORT);
	cr_expect_eq(blktrack_commit(ctx, dev, &ck.stamp), -ESTALE);
	expect_extents(0, &ck2.stamp, both);
	cr_assert_eq(blktrack_commit(ctx, dev, &ck2.stamp), 0);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.stamp.epoch, 2 + BLKTRACK_EPOCH_ABORT);
	cr_expect_eq(st.active_dirty, 0);
}

Test(fake, read_extents_pages_with_the_cursor)
{
	bool ref[NB] = { 0 };
	struct blktrack_read_extents rd = { .size = sizeof(rd) };
	struct blktrack_extent e[4];
	struct blktrack_ckpt ck;
	unsigned int page;
	uint64_t i;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	srand(7);
	for (i = 0; i < 120; i++)
		wr(rand() % (NB - 3), 1 + rand() % 3, 9, ref);
	wr(NB - 2, 2, 9, ref);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	for (page = 0; page < 4; page++) {
		fake_kernel_set_page(fk, page);
		expect_extents(0, &ck.stamp, ref);
	}
	/* The cursor: block aligned or the size; past it, EINVAL. */
	rd.dev = (struct blktrack_devno){ major(dev), minor(dev) };
	rd.stamp = ck.stamp;
	rd.extents_ptr = (uintptr_t)e;
	rd.capacity = 4;
	rd.cursor = 100;
	cr_expect_eq(ctx->kernel->ioctl(ctx, BLKTRACK_IOC_READ_EXTENTS, &rd), -EINVAL);
	rd.cursor = SIZE + BS;
	cr_expect_eq(ctx->kernel->ioctl(ctx, BLKTRACK_IOC_READ_EXTENTS, &rd), -EINVAL);
	rd.cursor = SIZE;
	cr_expect_eq(ctx->kernel->ioctl(ctx, BLKTRACK_IOC_READ_EXTENTS, &rd), 0);
	cr_expect_eq(rd.count, 0);
	cr_expect_eq(rd.cursor, SIZE);
	rd.capacity = 0;
	rd.cursor = 0;
	cr_expect_eq(ctx->kernel->ioctl(ctx, BLKTRACK_IOC_READ_EXTENTS, &rd), -EINVAL);
}

Test(fake, an_injected_failure_changes_nothing)
{
	bool ref[NB] = { 0 };
	struct blktrack_status st;
	struct blktrack_ckpt ck;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	wr(10, 4, 1, ref);
	fake_kernel_fail(fk, BLKTRACK_IOC_CHECKPOINT, 2, ENOMEM);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	cr_assert_eq(blktrack_abort(ctx, dev, &ck.stamp), 0);
	cr_expect_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), -ENOMEM);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.flags & BLKTRACK_STATUS_PENDING, 0);
	cr_expect_eq(st.stamp.epoch, BLKTRACK_EPOCH_ABORT);
	expect_extents(BLKTRACK_READ_ACTIVE, NULL, ref);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	expect_extents(0, &ck.stamp, ref);
	cr_expect_eq(fake_kernel_calls(fk, BLKTRACK_IOC_CHECKPOINT), 3);
	cr_expect(strstr(fake_kernel_log(fk), "ABORT CHECKPOINT:-12 STATUS"), "%s",
		  fake_kernel_log(fk));
}

/* What the snapshot returns for block @b: @byte in every byte. */
static void expect_snap_block(const struct blktrack_stamp *s, uint64_t b, int byte,
			      uint32_t flags, int err)
{
	uint8_t buf[BS], want[BS];

	memset(want, byte, BS);
	cr_assert_eq(blktrack_snap_read(ctx, dev, s, b * BS, BS, buf, flags), err,
		     "block %llu", (unsigned long long)b);
	if (!err)
		cr_expect_eq(memcmp(buf, want, BS), 0, "block %llu", (unsigned long long)b);
}

Test(fake, the_snapshot_keeps_what_the_checkpoint_saw)
{
	struct blktrack_snap_status ss;
	struct blktrack_status st;
	struct blktrack_ckpt ck;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	wr(0, 20, 1, NULL);
	cr_assert_eq(blktrack_checkpoint_snap(ctx, dev, 0, 0, -1, &ck), 0);
	cr_expect_eq(ck.dirty, 20);
	/* Protected blocks are copied once before their first write. */
	wr(5, 2, 2, NULL);
	wr(5, 1, 3, NULL);
	wr(30, 1, 4, NULL);		/* not in the pending map: not copied */
	cr_assert_eq(blktrack_snap_status(ctx, dev, &ss), 0);
	cr_expect_eq(ss.protected_blocks, 20);
	cr_expect_eq(ss.copied_blocks, 2);
	cr_expect_eq(ss.held_writes, 1);
	cr_expect_eq(ss.store_bytes, 2 * BS);
	expect_snap_block(&ck.stamp, 5, 1, BLKTRACK_SNAP_READ_KEEP, 0);
	expect_snap_block(&ck.stamp, 5, 1, 0, 0);
	expect_snap_block(&ck.stamp, 5, 1, 0, -EIDRM);	/* read once */
	expect_snap_block(&ck.stamp, 6, 1, 0, 0);
	expect_snap_block(&ck.stamp, 7, 1, 0, 0);
	cr_assert_eq(blktrack_snap_read(ctx, dev, &ck.stamp, 0, SIZE, NULL,
					BLKTRACK_SNAP_READ_RELEASE), 0);
	cr_assert_eq(blktrack_snap_status(ctx, dev, &ss), 0);
	cr_expect_eq(ss.uncopied_blocks, 0);
	cr_expect_eq(ss.store_bytes, 0);
	cr_expect_eq(ss.released_blocks, 20);
	cr_expect_eq(blktrack_snap_read(ctx, dev, &ck.stamp, 3, BS, NULL, 0), -EINVAL);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.flags, BLKTRACK_STATUS_PENDING | BLKTRACK_STATUS_SNAPSHOT);
	cr_assert_eq(blktrack_commit(ctx, dev, &ck.stamp), 0);
	cr_expect_eq(blktrack_snap_status(ctx, dev, &ss), -ENODATA);

	/* A store too small for the copies: the snapshot is lost, never a write. */
	cr_assert_eq(blktrack_checkpoint_snap(ctx, dev, BLKTRACK_SNAP_ALL, 2 * BS, -1, &ck), 0);
	wr(100, 3, 5, NULL);
	cr_assert_eq(blktrack_snap_status(ctx, dev, &ss), 0);
	cr_expect_eq(ss.flags, BLKTRACK_STATUS_SNAP_OVERFLOW);
	cr_expect_eq(ss.error, EOVERFLOW);
	cr_expect_eq(ss.protected_blocks, NB);
	expect_snap_block(&ck.stamp, 0, 1, 0, -EOVERFLOW);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect(st.flags & BLKTRACK_STATUS_SNAP_OVERFLOW);
	cr_assert_eq(blktrack_abort(ctx, dev, &ck.stamp), 0);
}

Test(fake, a_store_file_is_checked_as_the_module_checks_it)
{
	char path[128];
	struct blktrack_ckpt ck;
	int fd;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	snprintf(path, sizeof(path), "%s/store", top);
	fd = open(path, O_RDONLY | O_CREAT, 0600);
	cr_assert(fd >= 0);
	cr_expect_eq(blktrack_checkpoint_snap(ctx, dev, 0, 0, fd, &ck), -EBADF);
	close(fd);
	fd = open(path, O_RDWR | O_APPEND);
	cr_expect_eq(blktrack_checkpoint_snap(ctx, dev, 0, 0, fd, &ck), -EINVAL);
	close(fd);
	fd = open(vol_path, O_RDWR);
	cr_expect_eq(blktrack_checkpoint_snap(ctx, dev, 0, 0, fd, &ck), -EDEADLK);
	close(fd);
	fd = open(path, O_RDWR);
	cr_expect_eq(blktrack_checkpoint_snap(ctx, dev, 0, 0, fd, &ck), 0);
	close(fd);
}

Test(fake, a_module_without_snapshots)
{
	struct blktrack_status st;
	struct blktrack_ckpt ck;
	uint64_t features;

	teardown();
	start(FAKE_NO_SNAPSHOT);
	cr_assert_eq(blktrack_version(ctx, NULL, &features), 0);
	cr_expect_eq(features & BLKTRACK_FEATURE_SNAPSHOT, 0);
	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	cr_expect_eq(blktrack_checkpoint_snap(ctx, dev, BLKTRACK_SNAP_ALL, 0, -1, &ck),
		     -EOPNOTSUPP);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.flags, 0);
}

Test(fake, new_media_loses_the_history_until_a_commit_after_it)
{
	struct blktrack_status st;
	struct blktrack_ckpt ck;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	fake_kernel_media_change(fk, dev);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.state, BLKTRACK_STATE_INVALID);
	cr_expect_eq(st.reason, BLKTRACK_REASON_MEDIA_CHANGED);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	fake_kernel_media_change(fk, dev);	/* again, after the checkpoint */
	cr_assert_eq(blktrack_commit(ctx, dev, &ck.stamp), 0);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.state, BLKTRACK_STATE_INVALID);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	cr_assert_eq(blktrack_commit(ctx, dev, &ck.stamp), 0);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.state, BLKTRACK_STATE_TRACKING);
	cr_expect_eq(st.reason, BLKTRACK_REASON_NONE);
}

Test(fake, a_checkpoint_takes_the_new_size)
{
	bool ref[NB + 8] = { 0 };
	struct blktrack_extent *ext;
	struct blktrack_status st;
	struct blktrack_ckpt ck;
	size_t n;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	wr(1, 1, 1, ref);
	cr_assert_eq(truncate(vol_path, SIZE + 5 * BS + 512), 0);
	cr_assert_eq(blktrack_checkpoint(ctx, &dev, 1, &ck), 0);
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect_eq(st.dev_size, SIZE + 5 * BS + 512);
	/* The grown tail is dirty whole, the last block clipped at the end. */
	cr_assert_eq(blktrack_read_extents(ctx, dev, 0, &ck.stamp, &ext, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(ext[0].offset, BS);
	cr_expect_eq(ext[0].length, BS);
	cr_expect_eq(ext[1].offset, SIZE);
	cr_expect_eq(ext[1].length, 5 * BS + 512);
	free(ext);
}

/* In the child: a checkpoint and a write, then killed as by kill -9. */
static void checkpoint_and_die(void *arg)
{
	struct blktrack_ckpt ck;
	uint8_t buf[BS];

	memset(buf, 7, BS);
	if (blktrack_checkpoint(ctx, &dev, 1, &ck) || fake_kernel_write(fk, dev, 9 * BS, BS, buf))
		_exit(1);
	kill(getpid(), SIGKILL);
}

Test(fake, the_kernel_outlives_a_killed_child)
{
	bool pending[NB] = { 0 }, active[NB] = { 0 }, got[NB];
	struct blktrack_status st;
	uint8_t buf[BS];
	int status, fd;

	cr_assert_eq(blktrack_attach(ctx, dev, 0, 0), 0);
	wr(2, 1, 1, pending);
	status = fake_kernel_run_child(fk, checkpoint_and_die, NULL);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	active[9] = true;
	cr_assert_eq(blktrack_status(ctx, dev, &st), 0);
	cr_expect(st.flags & BLKTRACK_STATUS_PENDING);
	cr_assert_eq(fake_kernel_map(fk, dev, FAKE_PENDING, got, NB), 0);
	cr_expect_arr_eq(got, pending, NB);
	cr_assert_eq(fake_kernel_map(fk, dev, FAKE_ACTIVE, got, NB), 0);
	cr_expect_arr_eq(got, active, NB);
	fd = open(vol_path, O_RDONLY);
	cr_assert_eq(pread(fd, buf, BS, 9 * BS), BS);
	close(fd);
	cr_expect_eq(buf[0], 7);
	cr_expect(strstr(fake_kernel_log(fk), "CHECKPOINT"), "%s", fake_kernel_log(fk));
}

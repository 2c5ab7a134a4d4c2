// SPDX-License-Identifier: GPL-2.0
/*
 * lib/format/qcow2.c, read by QEMU's own qemu-img (Debian's qemu-utils):
 * a base image of a few clusters, zero clusters and holes, and an overlay
 * on it that rewrites, zeroes and leaves clusters, with a size that is not
 * a multiple of the cluster size. `qemu-img check` finds no error or leak,
 * `qemu-img compare` finds each image equal to the raw file the test wrote
 * alongside, and `qemu-img info --backing-chain` shows the chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "format/qcow2.h"

#define CS	QCOW2_CLUSTER_SIZE
#define SIZE	((UINT64_C(1) << 30) + 12345)	/* 16385 clusters, the last partial */

static char dir[] = "/tmp/bt-qcow2.XXXXXX";

/* A shell command, "%s" being the test's directory: its exit status. */
static int sh(const char *fmt)
{
	char cmd[1024], *p;
	size_t k = 0;

	for (p = (char *)fmt; *p && k < sizeof(cmd) - 64; p++) {
		if (p[0] == '%' && p[1] == 's') {
			k += (size_t)snprintf(cmd + k, sizeof(cmd) - k, "%s", dir);
			p++;
		} else {
			cmd[k++] = *p;
		}
	}
	cmd[k] = 0;
	k = (size_t)system(cmd);
	return WIFEXITED((int)k) ? WEXITSTATUS((int)k) : -1;
}

/* Cluster @i of the raw twin and the image: @fill (0: zeros); -1: not written. */
static void put(struct qcow2_writer *w, int raw, uint64_t i, int fill)
{
	static uint8_t buf[CS];

	if (fill < 0)
		return;
	memset(buf, fill, CS);
	for (int k = 0; fill && k < 64; k++)
		buf[k * 1000] = (uint8_t)(i + k);
	cr_assert_eq(pwrite(raw, buf, CS, (off_t)(i * CS)), (ssize_t)CS);
	cr_assert_eq(qcow2_write_cluster(w, i, fill ? buf : NULL), 0);
}

static void image(const char *name, const char *backing, const int *fills,
		  const uint64_t *at, int n, const char *raw_name, bool keep_raw)
{
	char path[256];
	struct qcow2_writer *w;
	int fd, raw;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	snprintf(path, sizeof(path), "%s/%s", dir, raw_name);
	raw = open(path, O_RDWR | O_CREAT | (keep_raw ? 0 : O_TRUNC), 0600);
	cr_assert(fd >= 0 && raw >= 0);
	cr_assert_eq(qcow2_writer_open(fd, SIZE, backing, &w), 0);
	for (int k = 0; k < n; k++)
		put(w, raw, at[k], fills[k]);
	cr_assert_eq(ftruncate(raw, SIZE), 0);	/* the last cluster is partial */
	cr_assert_eq(qcow2_write_cluster(w, at[0], NULL), -EEXIST);
	cr_assert_eq(qcow2_writer_finish(w), 0);
	close(fd);
	close(raw);
}

Test(qcow2, qemu_img_reads_a_base_and_an_overlay, .timeout = 60)
{
	static const uint64_t at_base[] = { 0, 1, 2, 5, 8191, 8192, 16384 };
	static const int fill_base[] = { 0xaa, 0, 0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint64_t at_top[] = { 1, 2, 3, 8192, 9000, 16384 };
	static const int fill_top[] = { 0x66, 0, 0x77, 0x88, 0, 0x99 };

	if (system("command -v qemu-img >/dev/null"))
		cr_skip_test("no qemu-img (apt-get install qemu-utils)");
	cr_assert(mkdtemp(dir));
	image("base.qcow2", NULL, fill_base, at_base, 7, "point.raw", false);
	cr_assert_eq(sh("qemu-img check -q %s/base.qcow2"), 0, "qemu-img check of the base");
	cr_assert_eq(sh("qemu-img compare -q -f qcow2 -F raw %s/base.qcow2 %s/point.raw"), 0,
		     "the base differs from its raw twin");
	/* The overlay: the raw twin goes on from the base's. */
	image("top.qcow2", "base.qcow2", fill_top, at_top, 6, "point.raw", true);
	cr_assert_eq(sh("qemu-img check -q %s/top.qcow2"), 0, "qemu-img check of the overlay");
	cr_assert_eq(sh("qemu-img compare -q -f qcow2 -F raw %s/top.qcow2 %s/point.raw"), 0,
		     "the overlay differs from its raw twin");
	cr_assert_eq(sh("qemu-img info --backing-chain %s/top.qcow2 | grep -c '^image:' | "
			"grep -qx 2"), 0, "no chain of two images");
	/* The base is unchanged under it: the overlay's zeros and data are its own. */
	cr_assert_eq(sh("qemu-img compare -q %s/base.qcow2 %s/top.qcow2"), 1,
		     "the overlay reads as its base");
	cr_assert_eq(sh("rm -rf %s"), 0);
}

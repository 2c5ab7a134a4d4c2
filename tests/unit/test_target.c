// SPDX-License-Identifier: GPL-2.0
/*
 * lib/requester/target.c: a snapshot store that holds a filesystem (libblkid) is
 * refused unless forced; an empty one is taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "requester/store.h"
#include "requester/target.h"

static char dir[128], img[160];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/bt-target.XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/store.img", dir);
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(target, store_with_a_filesystem_is_refused, .init = setup, .fini = teardown,
     .timeout = 30)
{
	char cmd[300], msg[512] = "";
	int fd = -1;

	snprintf(cmd, sizeof(cmd), "truncate -s 8M '%s'", img);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(store_open(img, NULL, 0, false, &fd, msg, sizeof(msg)), 0, "%s", msg);
	close(fd);

	snprintf(cmd, sizeof(cmd), "PATH=$PATH:/usr/sbin:/sbin mkfs.ext4 -q -F '%s' >/dev/null 2>&1",
		 img);
	cr_assert_eq(system(cmd), 0, "mkfs.ext4");
	fd = -1;
	cr_assert_eq(store_open(img, NULL, 0, false, &fd, msg, sizeof(msg)), -EEXIST);
	cr_assert_eq(fd, -1);
	cr_assert(strstr(msg, img) && strstr(msg, "ext4") && strstr(msg, "--force"), "%s", msg);
	/* --force: taken. */
	cr_assert_eq(store_open(img, NULL, 0, true, &fd, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_geq(fd, 0);
	close(fd);
}

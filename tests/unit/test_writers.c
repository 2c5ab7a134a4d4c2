// SPDX-License-Identifier: GPL-2.0
/*
 * lib/writers.c: writers run in name order with their BLKTRACK_* variables,
 * dot files and files without an execute bit skipped, a failure stops the
 * event or not, the time limit kills the writer's process group, a missing
 * directory; the mount point of a device number.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <criterion/criterion.h>

#include "writers.h"

static char dir[128], log_path[160];

static void script(const char *name, mode_t mode, const char *body)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	return buf;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/bt-writers.XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(log_path, sizeof(log_path), "%s.log", dir);
	unlink(log_path);
	setenv("TEST_LOG", log_path, 1);
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, log_path);
	cr_assert_eq(system(cmd), 0);
}

#define RECORD "echo \"$BLKTRACK_WRITER $1 $BLKTRACK_EVENT dev=$BLKTRACK_DEVICE " \
	"id=${BLKTRACK_BACKUP_ID-unset} new=${BLKTRACK_NEW_STAMP-unset}\" >>\"$TEST_LOG\""

Test(writers, name_order_env_and_skipped_files, .init = setup, .fini = teardown,
     .timeout = 20)
{
	struct writers_env env = { .device = "/dev/x1", .backup_id = 7 };
	struct writers *w;
	char msg[256] = "";

	script("20-b", 0755, RECORD);
	script("10-a", 0755, RECORD);
	script(".hidden", 0755, "exit 1");
	script("30-not-executable", 0644, "exit 1");
	cr_assert_eq(writers_load(dir, true, 5, &w, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(writers_count(w), 2);
	cr_assert_eq(writers_event(w, "freeze", &env, true, msg, sizeof(msg)), 0, "%s", msg);
	env.new_stamp = "g:1";
	cr_assert_eq(writers_event(w, "thaw", &env, true, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_str_eq(slurp(log_path),
			 "10-a freeze freeze dev=/dev/x1 id=7 new=unset\n"
			 "20-b freeze freeze dev=/dev/x1 id=7 new=unset\n"
			 "10-a thaw thaw dev=/dev/x1 id=7 new=g:1\n"
			 "20-b thaw thaw dev=/dev/x1 id=7 new=g:1\n");
	writers_free(w);
}

Test(writers, failure_stops_or_not, .init = setup, .fini = teardown, .timeout = 20)
{
	struct writers_env env = { .device = "/dev/x1" };
	struct writers *w;
	char msg[256] = "";

	script("10-veto", 0755, RECORD "; exit 3");
	script("20-after", 0755, RECORD);
	cr_assert_eq(writers_load(dir, true, 5, &w, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(writers_event(w, "freeze", &env, true, msg, sizeof(msg)), -ECANCELED);
	cr_assert_str_eq(msg, "writer 10-veto freeze: exit 3");
	cr_assert_str_eq(slurp(log_path), "10-veto freeze freeze dev=/dev/x1 id=unset new=unset\n");
	msg[0] = 0;
	cr_assert_eq(writers_event(w, "abort", &env, false, msg, sizeof(msg)), -ECANCELED);
	cr_assert_str_eq(msg, "writer 10-veto abort: exit 3");
	cr_assert_str_eq(slurp(log_path), "10-veto freeze freeze dev=/dev/x1 id=unset new=unset\n"
			 "10-veto abort abort dev=/dev/x1 id=unset new=unset\n"
			 "20-after abort abort dev=/dev/x1 id=unset new=unset\n");
	writers_free(w);
}

Test(writers, time_limit_kills_the_process_group, .init = setup, .fini = teardown,
     .timeout = 30)
{
	struct writers_env env = { .device = "/dev/x1" };
	struct timespec a, b;
	struct writers *w;
	char msg[256] = "", stat_path[64], *s;
	long pid;

	script("10-hang", 0755, "sleep 60 & echo $! >\"$TEST_LOG\"; wait");
	cr_assert_eq(writers_load(dir, true, 1, &w, msg, sizeof(msg)), 0, "%s", msg);
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(writers_event(w, "freeze", &env, true, msg, sizeof(msg)), -ETIME);
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_assert_lt(b.tv_sec - a.tv_sec, 10);
	cr_assert_str_eq(msg, "writer 10-hang freeze: no answer in 1 s, killed");
	pid = strtol(slurp(log_path), NULL, 10);
	cr_assert_gt(pid, 1);
	usleep(200000);
	/* Gone, or a zombie nobody reaped yet: not running. */
	snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", pid);
	s = slurp(stat_path);
	s = strrchr(s, ')');
	cr_assert(!s || s[2] == 'Z', "the writer's child %ld survived: %s", pid, s);
	writers_free(w);
}

Test(writers, missing_directory, .timeout = 10)
{
	struct writers *w = NULL;
	char msg[256] = "";

	cr_assert_eq(writers_load("/nonexistent/writers.d", false, 0, &w, msg, sizeof(msg)), 0);
	cr_assert_eq(writers_count(w), 0);
	cr_assert_eq(writers_event(w, "identify", &(struct writers_env){ 0 }, true, msg,
				   sizeof(msg)), 0);
	writers_free(w);
	cr_assert_eq(writers_load("/nonexistent/writers.d", true, 0, &w, msg, sizeof(msg)),
		     -ENOENT);
	cr_assert(strstr(msg, "/nonexistent/writers.d"));
}

Test(writers, mount_point_of_a_device_number, .timeout = 10)
{
	char mnt[4096];
	struct stat root, got;

	cr_assert_eq(stat("/", &root), 0);
	cr_assert_eq(fs_mount_point(root.st_dev, mnt, sizeof(mnt)), 0);
	cr_assert_eq(stat(mnt, &got), 0);
	cr_assert_eq(got.st_dev, root.st_dev, "%s is not on the device of /", mnt);
	cr_assert_eq(fs_mount_point(makedev(4095, 1048575), mnt, sizeof(mnt)), -ENOENT);
}

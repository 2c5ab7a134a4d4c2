// SPDX-License-Identifier: GPL-2.0
/*
 * lib/requester/writers.c: writers run in name order with their BLKTRACK_* variables,
 * dot files and files without an execute bit skipped, a failure stops the
 * event or not, the time limit kills the writer's process group, a missing
 * directory; what may run as root (names, owners, modes, symlinks, the
 * directory), each skipped file named, a clean environment, SIGTERM then
 * SIGKILL at the time limit; the mount point of a device number.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <criterion/criterion.h>
#include "unit.h"

#include "requester/fs.h"
#include "requester/writers.h"


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
	cr_assert_str_eq(unit_read_text(log_path),
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
	cr_assert_str_eq(unit_read_text(log_path), "10-veto freeze freeze dev=/dev/x1 id=unset new=unset\n");
	msg[0] = 0;
	cr_assert_eq(writers_event(w, "abort", &env, false, msg, sizeof(msg)), -ECANCELED);
	cr_assert_str_eq(msg, "writer 10-veto abort: exit 3");
	cr_assert_str_eq(unit_read_text(log_path), "10-veto freeze freeze dev=/dev/x1 id=unset new=unset\n"
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
	pid = strtol(unit_read_text(log_path), NULL, 10);
	cr_assert_gt(pid, 1);
	usleep(200000);
	/* Gone, or a zombie nobody reaped yet: not running. */
	snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", pid);
	s = unit_read_text(stat_path);
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
	cr_assert_str_eq(msg, "", "no writer is no error: %s", msg);
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

/* ---- which files run, and how (issue 13, point 7) -------------------------- */

/* Run @fn with stderr going to DIR.err (removed after); return what it wrote. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[200], *out;
	int fd, saved;

	snprintf(path, sizeof(path), "%s.err", dir);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	out = unit_read_text(path);
	unlink(path);
	return out;
}

struct load_args {
	struct writers *w;
	int err;
	char msg[256];
};

static void load(void *data)
{
	struct load_args *a = data;

	a->err = writers_load(dir, true, 5, &a->w, a->msg, sizeof(a->msg));
}

Test(writers, only_safe_names_owners_and_modes_run, .init = setup, .fini = teardown,
     .timeout = 20)
{
	struct writers_env env = { .device = "/dev/x1" };
	struct load_args a = { 0 };
	char path[256], *err;

	script("10-ok_A", 0755, RECORD);
	script("20-old.dpkg-old", 0755, RECORD);
	script("30-edit~", 0755, RECORD);
	script(".hidden", 0755, RECORD);
	script("40-group-writable", 0775, RECORD);
	script("50-world-writable", 0757, RECORD);
	script("60-not-executable", 0644, RECORD);
	/* A symlink to a writer of the directory, and one out of it. */
	snprintf(path, sizeof(path), "%s/70-link-in", dir);
	cr_assert_eq(symlink("10-ok_A", path), 0);
	snprintf(path, sizeof(path), "%s/80-link-out", dir);
	cr_assert_eq(symlink("/bin/true", path), 0);
	if (!geteuid()) {
		script("90-not-ours", 0755, RECORD);
		snprintf(path, sizeof(path), "%s/90-not-ours", dir);
		cr_assert_eq(chown(path, 65534, 65534), 0);
	}
	err = capture_stderr(load, &a);
	cr_assert_eq(a.err, 0, "%s", a.msg);
	cr_assert_eq(writers_count(a.w), 1, "%s", err);
	/* Every skipped file is named, with why. */
	cr_assert(strstr(err, "20-old.dpkg-old: skipped: its name is not"), "%s", err);
	cr_assert(strstr(err, "30-edit~: skipped: its name is not"), "%s", err);
	cr_assert(strstr(err, ".hidden: skipped: its name is not"), "%s", err);
	cr_assert(strstr(err, "40-group-writable: skipped: writable by group or others"),
		  "%s", err);
	cr_assert(strstr(err, "50-world-writable: skipped: writable by group or others"),
		  "%s", err);
	cr_assert(strstr(err, "60-not-executable: skipped: not executable"), "%s", err);
	cr_assert(strstr(err, "70-link-in: skipped: a symbolic link"), "%s", err);
	cr_assert(strstr(err, "80-link-out: skipped: a symbolic link"), "%s", err);
	if (!geteuid())
		cr_assert(strstr(err, "90-not-ours: skipped: owned by uid 65534"), "%s", err);
	cr_assert_eq(writers_event(a.w, "freeze", &env, true, a.msg, sizeof(a.msg)), 0, "%s",
		     a.msg);
	cr_assert_str_eq(unit_read_text(log_path), "10-ok_A freeze freeze dev=/dev/x1 id=unset new=unset\n");
	writers_free(a.w);
}

Test(writers, unsafe_directory_is_refused, .init = setup, .fini = teardown, .timeout = 20)
{
	struct writers *w = NULL;
	char msg[256] = "";

	script("10-ok", 0755, RECORD);
	cr_assert_eq(chmod(dir, 0777), 0);
	cr_assert_eq(writers_load(dir, true, 5, &w, msg, sizeof(msg)), -EPERM);
	cr_assert(strstr(msg, dir) && strstr(msg, "writable by group or others"), "%s", msg);
	cr_assert_eq(chmod(dir, 0700), 0);
	cr_assert_eq(writers_load(dir, true, 5, &w, msg, sizeof(msg)), 0, "%s", msg);
	writers_free(w);
}

Test(writers, clean_environment, .init = setup, .fini = teardown, .timeout = 20)
{
	struct writers_env env = { .device = "/dev/x1" };
	struct writers *w;
	char msg[256] = "";

	setenv("LD_LIBRARY_PATH", "/nonexistent", 1);
	setenv("BLKTRACK_TEST_CRASH_AT", "after-checkpoint", 1);
	setenv("BLKTRACK_BACKUP_ID", "99", 1);	/* a stale context variable */
	setenv("KEEP_ME", "kept", 1);
	script("10-env", 0755, "env | grep -E '^(LD_|BLKTRACK_TEST|KEEP_ME)' | sort >>\"$TEST_LOG\";"
	       "echo id=${BLKTRACK_BACKUP_ID-unset} >>\"$TEST_LOG\"");
	cr_assert_eq(writers_load(dir, true, 5, &w, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(writers_event(w, "identify", &env, true, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_str_eq(unit_read_text(log_path), "KEEP_ME=kept\nid=unset\n");
	writers_free(w);
}

Test(writers, time_limit_sends_term_then_kill, .init = setup, .fini = teardown,
     .timeout = 40)
{
	struct writers_env env = { .device = "/dev/x1" };
	struct timespec a, b;
	struct writers *w;
	char msg[256] = "";

	/* Leaves on SIGTERM, and says so. */
	script("10-polite", 0755, "trap 'echo TERM >>\"$TEST_LOG\"; exit 0' TERM;"
	       "while :; do sleep 0.1; done");
	cr_assert_eq(writers_load(dir, true, 1, &w, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(writers_event(w, "freeze", &env, true, msg, sizeof(msg)), -ETIME);
	cr_assert_str_eq(unit_read_text(log_path), "TERM\n");
	writers_free(w);

	/* Ignores SIGTERM: SIGKILL after the grace period. */
	unlink(log_path);
	script("10-polite", 0755, "trap '' TERM; while :; do sleep 0.1; done");
	cr_assert_eq(writers_load(dir, true, 1, &w, msg, sizeof(msg)), 0, "%s", msg);
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(writers_event(w, "freeze", &env, true, msg, sizeof(msg)), -ETIME);
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_assert_geq(b.tv_sec - a.tv_sec, 1 + WRITERS_KILL_GRACE - 1);
	cr_assert_lt(b.tv_sec - a.tv_sec, 1 + WRITERS_KILL_GRACE + 5);
	cr_assert_str_eq(msg, "writer 10-polite freeze: no answer in 1 s, killed");
	writers_free(w);
}

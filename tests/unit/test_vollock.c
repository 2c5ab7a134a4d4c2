// SPDX-License-Identifier: GPL-2.0-only
/*
 * The per-volume requester lock (lib/requester/vollock.c, issue 13 point 3): a second
 * requester of one volume fails at once naming the holder's pid, or waits;
 * other volumes are independent; an unsafe lock directory is refused.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "requester/vollock.h"

static char top[128], dir[160];

static void setup(void)
{
	snprintf(top, sizeof(top), "/dev/shm/blktrack-vollock-XXXXXX");
	cr_assert(mkdtemp(top));
	snprintf(dir, sizeof(dir), "%s/run", top);	/* missing: created */
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_expect_eq(system(cmd), 0);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(vollock, a_second_requester_fails_naming_the_holder, .init = setup,
     .fini = teardown, .timeout = 20)
{
	char msg[512], want[32];
	struct stat sb;
	int a, b, c;

	cr_assert_eq(vollock_acquire(dir, "uuid:1234", 0, &a, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(stat(dir, &sb), 0);
	cr_expect_eq(sb.st_mode & 07777, 0700);
	cr_expect_eq(access(strcat(strcpy((char[256]){ 0 }, dir), "/uuid%3a1234.lock"), F_OK), 0);
	/* Another open file description conflicts like another process. */
	cr_expect_eq(vollock_acquire(dir, "uuid:1234", 0, &b, msg, sizeof(msg)), -EBUSY);
	cr_expect_eq(b, -1);
	snprintf(want, sizeof(want), "pid %ld,", (long)getpid());
	cr_expect(strstr(msg, want) && strstr(msg, "uuid:1234") && strstr(msg, "--wait"),
		  "%s", msg);
	/* Other volumes, even with names that would clash unescaped. */
	cr_expect_eq(vollock_acquire(dir, "uuid_1234", 0, &c, msg, sizeof(msg)), 0, "%s", msg);
	vollock_release(c);
	/* Waiting for one that stays held: ETIMEDOUT after about the wait. */
	{
		double t0 = mono();

		cr_expect_eq(vollock_acquire(dir, "uuid:1234", 1, &b, msg, sizeof(msg)),
			     -ETIMEDOUT);
		cr_expect(mono() - t0 >= 0.9 && mono() - t0 < 5, "%f", mono() - t0);
	}
	vollock_release(a);
	cr_expect_eq(vollock_acquire(dir, "uuid:1234", 0, &b, msg, sizeof(msg)), 0, "%s", msg);
	vollock_release(b);
}

Test(vollock, a_waiter_gets_the_lock_when_the_holder_exits, .init = setup,
     .fini = teardown, .timeout = 20)
{
	char msg[512];
	int pfd[2], fd, status;
	pid_t pid;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		if (vollock_acquire(dir, "dev:8:16", 0, &fd, msg, sizeof(msg)))
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(2);
		usleep(500 * 1000);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], msg, 1), 1);
	cr_expect_eq(vollock_acquire(dir, "dev:8:16", 0, &fd, msg, sizeof(msg)), -EBUSY);
	{
		char want[32];

		snprintf(want, sizeof(want), "pid %ld,", (long)pid);
		cr_expect(strstr(msg, want), "%s", msg);
	}
	cr_expect_eq(vollock_acquire(dir, "dev:8:16", 10, &fd, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && !WEXITSTATUS(status));
	vollock_release(fd);
	/* Wait for ever (-1) when it is free: at once. */
	cr_expect_eq(vollock_acquire(dir, "dev:8:16", -1, &fd, msg, sizeof(msg)), 0, "%s", msg);
	vollock_release(fd);
	close(pfd[0]);
}

Test(vollock, an_unsafe_directory_is_refused, .init = setup, .fini = teardown)
{
	char msg[512], link[200];
	int fd;

	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	cr_expect_eq(vollock_acquire(dir, "uuid:1", 0, &fd, msg, sizeof(msg)), -EPERM);
	cr_expect(strstr(msg, "refused"), "%s", msg);
	cr_assert_eq(chmod(dir, 0700), 0);
	snprintf(link, sizeof(link), "%s/link", top);
	cr_assert_eq(symlink(dir, link), 0);
	cr_expect_lt(vollock_acquire(link, "uuid:1", 0, &fd, msg, sizeof(msg)), 0,
		     "a symlink to the directory");
	cr_expect_eq(vollock_acquire(dir, "", 0, &fd, msg, sizeof(msg)), -EINVAL);
	cr_expect_eq(vollock_acquire(dir, "..", 0, &fd, msg, sizeof(msg)), -EINVAL);
	cr_expect_eq(vollock_acquire(dir, "a/b", 0, &fd, msg, sizeof(msg)), 0, "%s", msg);
	vollock_release(fd);
}

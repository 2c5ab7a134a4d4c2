// SPDX-License-Identifier: GPL-2.0
/*
 * lockhold FILE SECONDS READY: take an exclusive flock() on FILE (as a
 * backup holds a repository's lock file), create READY once it is held,
 * hold it SECONDS, exit. The guest has no flock(1).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/file.h>

int main(int argc, char *argv[])
{
	int fd, rfd;

	if (argc != 4) {
		fprintf(stderr, "usage: lockhold FILE SECONDS READY\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		perror(argv[1]);
		return 1;
	}
	rfd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (rfd < 0) {
		perror(argv[3]);
		return 1;
	}
	close(rfd);
	sleep(atoi(argv[2]));
	return 0;
}

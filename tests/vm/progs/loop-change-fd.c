// SPDX-License-Identifier: GPL-2.0
/*
 * loop-change-fd - give a read-only loop device another backing file
 * (LOOP_CHANGE_FD, which util-linux's losetup does not offer): its content
 * changes with no write, and the disk's sequence number moves.
 *
 *	loop-change-fd /dev/loopN FILE
 *
 * Exits 0 on success, 1 with a message otherwise.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/loop.h>

int main(int argc, char **argv)
{
	int loop, file;

	if (argc != 3) {
		fprintf(stderr, "usage: loop-change-fd /dev/loopN FILE\n");
		return 1;
	}
	loop = open(argv[1], O_RDONLY);
	file = open(argv[2], O_RDONLY);
	if (loop < 0 || file < 0) {
		fprintf(stderr, "loop-change-fd: %s: %s\n", loop < 0 ? argv[1] : argv[2],
			strerror(errno));
		return 1;
	}
	if (ioctl(loop, LOOP_CHANGE_FD, file)) {
		fprintf(stderr, "loop-change-fd: LOOP_CHANGE_FD: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * zap DEV discard|zeroout OFFSET LENGTH: BLKDISCARD or BLKZEROOUT on DEV,
 * opened shared. blkdiscard(8) opens it exclusively and first probes it for
 * a signature (a read): neither works on a suspended dm device that holds
 * other writers' bios (tests/vm/0655-inflight-bio.sh).
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

int main(int argc, char **argv)
{
	uint64_t range[2];
	unsigned long req;
	int fd;

	if (argc != 5 || (strcmp(argv[2], "discard") && strcmp(argv[2], "zeroout"))) {
		fprintf(stderr, "usage: zap DEV discard|zeroout OFFSET LENGTH\n");
		return 2;
	}
	req = strcmp(argv[2], "discard") ? BLKZEROOUT : BLKDISCARD;
	range[0] = strtoull(argv[3], NULL, 0);
	range[1] = strtoull(argv[4], NULL, 0);
	fd = open(argv[1], O_WRONLY);
	if (fd < 0 || ioctl(fd, req, range) < 0) {
		perror("zap");
		return 1;
	}
	return 0;
}

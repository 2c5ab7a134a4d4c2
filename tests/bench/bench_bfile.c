// SPDX-License-Identifier: GPL-2.0
/*
 * bench_bfile - CPU cost of the backup stream format (lib/format/bfile.c) alone, in
 * userspace on the host: what a backup spends besides reading the volume.
 *
 *	make bench-bfile
 *
 * The data is 256 MiB of incompressible bytes in memory (no disk read); the
 * stream goes to a file in /tmp (page cache, then read back). Cases:
 *	full      1 MiB writes, contiguous, as the requester's full backup
 *	4k        one 4 KiB block out of every 10, as an incremental of 4k
 *	          random writes (one record per block)
 *	read      bfile_read_record() over the full stream (the file side of
 *	          the verify writer and of restore)
 * each with zstd (level 1, the default) and without compression. Prints host
 * MiB/s of volume data per core; the best of 3 runs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format/bfile.h"

#define DATA_BYTES	(256ULL << 20)
#define CHUNK		(1U << 20)
#define BS		4096U
#define RUNS		3

static uint64_t rnd_state = 0x6a09e667f3bcc908ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench-bfile: %s: %s\n", what, why);
	exit(1);
}

/* Write the stream of one case to @fd; returns the volume bytes written. */
static uint64_t write_stream(int fd, const uint8_t *data, uint32_t comp, bool sparse,
			     struct bfile_stats *st)
{
	struct bfile_header h;
	struct bfile_writer *w;
	uint64_t off, bytes = 0;

	if (bfile_header_init(&h, BFILE_TYPE_COPY))
		die("header", "init");
	h.compression = comp;
	snprintf(h.volume_id, sizeof(h.volume_id), "bench");
	h.volume_size = DATA_BYTES;
	h.block_size = BS;
	if (bfile_writer_open(fd, &h, &w))
		die("writer", bfile_writer_error(w));
	if (!sparse) {
		for (off = 0; off < DATA_BYTES; off += CHUNK)
			if (bfile_write_data(w, off, data + off, CHUNK))
				die("write", bfile_writer_error(w));
		bytes = DATA_BYTES;
	} else {
		for (off = 0; off < DATA_BYTES; off += 10 * BS) {
			if (bfile_write_data(w, off, data + off, BS))
				die("write", bfile_writer_error(w));
			bytes += BS;
		}
	}
	if (bfile_writer_finish(w, st))
		die("finish", "failed");
	return bytes;
}

static double read_stream(int fd)
{
	struct bfile_reader *r;
	struct bfile_header h;
	struct bfile_record rec;
	double t0 = now();
	int err;

	lseek(fd, 0, SEEK_SET);
	if (bfile_reader_open(fd, &h, &r))
		die("reader", bfile_reader_error(r));
	while ((err = bfile_read_record(r, &rec)) > 0)
		;
	if (err < 0)
		die("read", bfile_reader_error(r));
	bfile_reader_free(r);
	return now() - t0;
}

int main(void)
{
	static const struct { const char *name; uint32_t comp; } comps[] = {
		{ "zstd", BFILE_COMP_ZSTD }, { "none", BFILE_COMP_NONE },
	};
	char path[] = "/tmp/bench-bfile.XXXXXX";
	struct bfile_stats st;
	uint64_t *p, i, bytes = 0;
	uint8_t *data;
	double t0, best, bestr, t;
	unsigned c, run, sparse;
	int fd;

	data = malloc(DATA_BYTES);
	if (!data)
		die("malloc", "out of memory");
	for (p = (uint64_t *)data, i = 0; i < DATA_BYTES / 8; i++)
		p[i] = rnd();
	fd = mkstemp(path);
	if (fd < 0)
		die(path, "mkstemp");
	unlink(path);
	printf("%-6s %-5s %12s %14s %12s %10s\n", "case", "comp", "MiB/s write",
	       "us per record", "MiB/s read", "stored/in");
	for (sparse = 0; sparse < 2; sparse++) {
		for (c = 0; c < 2; c++) {
			best = bestr = 1e9;
			for (run = 0; run < RUNS; run++) {
				if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))
					die(path, "truncate");
				t0 = now();
				bytes = write_stream(fd, data, comps[c].comp, sparse, &st);
				t = now() - t0;
				if (t < best)
					best = t;
				t = read_stream(fd);
				if (t < bestr)
					bestr = t;
			}
			printf("%-6s %-5s %12.0f %14.2f %12.0f %10.4f\n", sparse ? "4k" : "full",
			       comps[c].name, bytes / 1048576.0 / best,
			       best * 1e6 / st.data_records, bytes / 1048576.0 / bestr,
			       (double)st.stream_bytes / bytes);
		}
	}
	close(fd);
	free(data);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The fuzz corpora (tests/fuzz/corpus/NAME/) replayed through the fuzz
 * entry points (tests/fuzz/targets.c) that `make fuzz` runs: no file may
 * crash the parser (ASan in `make unit-asan`), and each file named
 * RESULT.what must give RESULT: "ok" (0) or an errno name (EBADMSG...);
 * "any.what" (a crasher kept after its fix) must only not crash.
 *
 * FUZZ_WRITE_CORPUS=DIR build/unit-tests --filter 'fuzz/generate_seeds' writes the
 * generated seeds of the block set, hash file, state and catalog corpora
 * into DIR/NAME/ (the version 2 catalog seeds are made from the
 * hand-written version 1 ones; the bfile seeds come from
 * tests/unit/test_bfile.c).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "format/blockhash.h"
#include "format/blockset.h"
#include "repo/repo.h"
#include "format/statefile.h"
#include "targets.h"

static const char *corpus_top(void)
{
	const char *d = getenv("FUZZ_CORPUS");

	return d ? d : "tests/fuzz/corpus";
}

static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	FILE *f = fopen(path, "rb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fileno(f), &st), 0);
	p = malloc(st.st_size ? st.st_size : 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = st.st_size;
	return p;
}

/* "ok" -> 0, "EBADMSG" -> -EBADMSG; 1 for "any"; 2 for an unknown name. */
static int expected(const char *name)
{
	char word[32];
	size_t n = strcspn(name, ".");
	int e;

	if (n >= sizeof(word))
		return 2;
	memcpy(word, name, n);
	word[n] = '\0';
	if (!strcmp(word, "ok"))
		return 0;
	if (!strcmp(word, "any"))
		return 1;
	for (e = 1; e < 134; e++)
		if (strerrorname_np(e) && !strcmp(strerrorname_np(e), word))
			return -e;
	return 2;
}

static void replay(const char *name, fuzz_target_fn fn, fuzz_fix_fn fix,
		   unsigned int min_files)
{
	char dir[512], path[1024];
	unsigned int seen = 0, ok = 0;
	struct dirent *de;
	uint8_t *data;
	size_t len;
	int want, rc;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", corpus_top(), name);
	d = opendir(dir);
	cr_assert_not_null(d, "%s: %s (run from the top directory)", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		want = expected(de->d_name);
		cr_assert_neq(want, 2, "%s/%s: the name does not start with ok, any or "
			      "an errno name", dir, de->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		data = read_all(path, &len);
		rc = fn(data, len);
		if (!rc && fix) {
			uint8_t *copy = malloc(len);

			cr_assert_not_null(copy);
			memcpy(copy, data, len);
			fix(copy, len);
			cr_expect_eq(memcmp(copy, data, len), 0,
				     "%s: the fuzz fix-up changes a valid file", path);
			free(copy);
		}
		free(data);
		if (want != 1)
			cr_expect_eq(rc, want, "%s: %d (%s), wanted %d", path, rc,
				     strerrorname_np(-rc) ? strerrorname_np(-rc) : "0", want);
		seen++;
		ok += !rc;
	}
	closedir(d);
	cr_expect_geq(seen, min_files, "%s: %u files", dir, seen);
	cr_expect_geq(ok, 1, "%s: no valid seed", dir);
}

/* ---- seeds ---------------------------------------------------------------- */

static void seed_write(const char *top, const char *sub, const char *name,
		       const void *p, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", top, sub, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(p, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static struct blockset *some_set(unsigned int kind)
{
	struct blockset *s;
	uint64_t b;

	cr_assert_eq(blockset_new(&s), 0);
	switch (kind) {
	case 1:		/* runs */
		cr_assert_eq(blockset_add_range(s, 3, 5), 0);
		cr_assert_eq(blockset_add_range(s, 70000, 3000), 0);
		break;
	case 2:		/* an array and a bitmap container, two high keys */
		for (b = 0; b < 9000; b += 3)
			cr_assert_eq(blockset_add_range(s, b, 1), 0);
		for (b = 1 << 20; b < (1 << 20) + 200; b += 7)
			cr_assert_eq(blockset_add_range(s, b, 1), 0);
		break;
	case 3:		/* the last block a set can hold */
		cr_assert_eq(blockset_add_range(s, BLOCKSET_MAX_BLOCKS - 2, 2), 0);
		break;
	case 4:		/* a bitmap container: every other block of 10000 */
		for (b = 0; b < 10000; b += 2)
			cr_assert_eq(blockset_add_range(s, b, 1), 0);
		break;
	}
	return s;
}

static void seeds_blockset(const char *top)
{
	static const char *const names[] = {
		"ok.empty.set", "ok.runs.set", "ok.mixed.set", "ok.top.set", "ok.bitmap.set",
	};
	struct blockset *s;
	unsigned int k;
	uint8_t *buf;
	size_t len;

	for (k = 0; k < 5; k++) {
		s = some_set(k);
		cr_assert_eq(blockset_serialize(s, (void **)&buf, &len), 0);
		seed_write(top, "blockset", names[k], buf, len);
		if (k == 1) {
			buf[len - 1] ^= 1;
			seed_write(top, "blockset", "EBADMSG.checksum.set", buf, len);
			seed_write(top, "blockset", "EBADMSG.truncated.set", buf, len - 3);
		}
		free(buf);
		blockset_free(s);
	}
}

static void seeds_blockhash(const char *top)
{
	struct blockhash_writer *w;
	uint8_t *buf;
	size_t len;
	struct stat st;
	int fd, i;

	fd = memfd_create("seed", 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(blockhash_writer_open(fd, 10 * 4096 + 100, 4096, &w), 0);
	for (i = 0; i < 11; i++)
		cr_assert_eq(blockhash_put(w, 0x1234567890abcdefULL * (i + 1)), 0);
	cr_assert_eq(blockhash_writer_finish(w), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	len = st.st_size;
	buf = malloc(len + 8);
	cr_assert_eq(pread(fd, buf, len, 0), (ssize_t)len);
	close(fd);
	seed_write(top, "blockhash", "ok.eleven.bh", buf, len);
	seed_write(top, "blockhash", "EBADMSG.truncated.bh", buf, len - 8);
	memset(buf + len, 0, 8);
	seed_write(top, "blockhash", "EBADMSG.trailing.bh", buf, len + 8);
	buf[60] ^= 0x10;
	seed_write(top, "blockhash", "EBADMSG.digest.bh", buf, len);
	free(buf);

	fd = memfd_create("seed", 0);
	cr_assert_eq(blockhash_writer_open(fd, 0, 512, &w), 0);
	cr_assert_eq(blockhash_writer_finish(w), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	len = st.st_size;
	buf = malloc(len);
	cr_assert_eq(pread(fd, buf, len, 0), (ssize_t)len);
	close(fd);
	seed_write(top, "blockhash", "ok.empty.bh", buf, len);
	free(buf);
}

static void seeds_state(const char *top)
{
	struct statefile_hdr h;
	struct blockset *s;
	uint8_t *buf;
	size_t len;

	memset(&h, 0, sizeof(h));
	h.flags = htole32(STATEFILE_CLEAN);
	h.block_size = htole32(4096);
	h.volume_size = htole64(64ULL << 20);
	memset(h.generation, 0xab, sizeof(h.generation));
	h.epoch = htole64(7);
	h.time = htole64(1764100000);
	h.fingerprint = htole64(0x0123456789abcdefULL);
	strcpy(h.fp_kind, "ext4");
	strcpy(h.volume_id, "uuid:1234-abcd");
	s = some_set(2);
	cr_assert_eq(statefile_build(&h, s, (void **)&buf, &len), 0);
	blockset_free(s);
	seed_write(top, "state", "ok.clean.state", buf, len);
	buf[len - 1] ^= 1;
	seed_write(top, "state", "EBADMSG.digest.state", buf, len);
	free(buf);

	h.flags = 0;
	cr_assert_eq(statefile_build(&h, NULL, (void **)&buf, &len), 0);
	seed_write(top, "state", "ok.unclean-empty.state", buf, len);
	free(buf);
	h.reserved = htole32(1);
	cr_assert_eq(statefile_build(&h, NULL, (void **)&buf, &len), 0);
	seed_write(top, "state", "EPROTONOSUPPORT.reserved.state", buf, len);
	free(buf);
}

/* A hand-written version 1 catalog as version 2: checksum line, sealed. */
static char *catalog_v2(const char *v1_name, size_t *len)
{
	static const char sum[] = "  \"xxh3\": \"0000000000000000\"\n}\n";
	char path[1024], *v1, *v, *end;
	size_t n;

	snprintf(path, sizeof(path), "%s/catalog/%s", corpus_top(), v1_name);
	v1 = (char *)read_all(path, &n);
	v = calloc(1, n + sizeof(sum) + 1);
	cr_assert_not_null(v);
	memcpy(v, v1, n);
	free(v1);
	end = strrchr(v, ']');
	cr_assert_not_null(end, "%s", path);
	strcpy(end + 1, ",\n");
	strcat(v, sum);
	v = strstr(v, "\"version\": 1") ? v : NULL;
	cr_assert_not_null(v, "%s: not version 1", path);
	strstr(v, "\"version\": 1")[11] = '2';
	*len = strlen(v);
	repo_catalog_seal(v, *len);
	return v;
}

static void seeds_catalog(const char *top)
{
	size_t len;
	char *v, *p;

	v = catalog_v2("ok.chain.json", &len);
	seed_write(top, "catalog", "ok.v2-chain.json", v, len);
	v[len - 8] ^= 1;			/* a checksum digit */
	seed_write(top, "catalog", "EBADMSG.v2-checksum.json", v, len);
	v[len - 8] ^= 1;
	v[100] ^= 4;				/* a byte it covers */
	seed_write(top, "catalog", "EBADMSG.v2-flipped.json", v, len);
	v[100] ^= 4;
	p = strstr(v, "\"backups/2.bkt\"");	/* two entries, one file */
	p[9] = '1';
	repo_catalog_seal(v, len);
	seed_write(top, "catalog", "EBADMSG.v2-same-file.json", v, len);
	p = strrchr(v, ']');			/* version 2 without its checksum */
	strcpy(p + 1, "\n}\n");
	seed_write(top, "catalog", "EBADMSG.v2-no-checksum.json", v, strlen(v));
	free(v);
	v = catalog_v2("ok.empty.json", &len);
	seed_write(top, "catalog", "ok.v2-empty.json", v, len);
	free(v);
}

/* ---- the replay ------------------------------------------------------------ */

Test(fuzz, generate_seeds)
{
	const char *top = getenv("FUZZ_WRITE_CORPUS");

	if (!top)
		return;
	seeds_blockset(top);
	seeds_blockhash(top);
	seeds_state(top);
	seeds_catalog(top);
}

Test(fuzz, bfile_corpus, .timeout = 60)
{
	replay("bfile", fuzz_bfile, fuzz_fix_bfile, 10);
}

Test(fuzz, catalog_corpus, .timeout = 60)
{
	replay("catalog", fuzz_catalog, fuzz_fix_catalog, 5);
}

Test(fuzz, blockset_corpus, .timeout = 60)
{
	replay("blockset", fuzz_blockset, fuzz_fix_blockset, 5);
}

Test(fuzz, blockhash_corpus, .timeout = 60)
{
	replay("blockhash", fuzz_blockhash, fuzz_fix_blockhash, 5);
}

Test(fuzz, state_corpus, .timeout = 60)
{
	replay("state", fuzz_state, fuzz_fix_state, 3);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The parsers' fuzz entry points, shared by the libFuzzer drivers
 * (tests/fuzz/fuzz_NAME.c, `make fuzz`) and the corpus replay of the unit
 * tests (tests/unit/test_fuzz.c), so that every corpus file goes through
 * exactly the code the fuzzer ran.
 *
 * Each entry point parses @data as the file it stands for and returns what
 * the parser returned for it as is (0 or a negative errno). When the input
 * has checksums, it then parses a copy whose checksums (and length fields
 * that only repeat the file size) are recomputed, so that a fuzzer gets
 * past them to the fields behind; that second result is not returned.
 * Anything the parser accepts is also walked (records, blocks, chains), and
 * a result that contradicts itself abort()s.
 */
#ifndef BLKTRACK_FUZZ_TARGETS_H
#define BLKTRACK_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_target_fn)(const uint8_t *data, size_t len);
typedef void (*fuzz_fix_fn)(uint8_t *data, size_t len);

int fuzz_bfile(const uint8_t *data, size_t len);	/* bfile_reader_* */
int fuzz_catalog(const uint8_t *data, size_t len);	/* repo_open: DIR/catalog */
int fuzz_blockset(const uint8_t *data, size_t len);	/* blockset_deserialize */
int fuzz_blockhash(const uint8_t *data, size_t len);	/* blockhash_reader_* */
int fuzz_state(const uint8_t *data, size_t len);	/* statefile_parse */

/* The fix-ups: recompute the checksums of @data in place. */
void fuzz_fix_bfile(uint8_t *data, size_t len);
void fuzz_fix_blockset(uint8_t *data, size_t len);
void fuzz_fix_blockhash(uint8_t *data, size_t len);
void fuzz_fix_state(uint8_t *data, size_t len);
void fuzz_fix_catalog(uint8_t *data, size_t len);

#endif /* BLKTRACK_FUZZ_TARGETS_H */

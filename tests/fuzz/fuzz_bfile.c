// SPDX-License-Identifier: GPL-2.0
/* libFuzzer driver for fuzz_bfile() (tests/fuzz/targets.h); `make fuzz`. */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	fuzz_bfile(data, len);
	return 0;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/* Keep rules: see retention.h and doc/blktrack.8 (prune). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "repo/retention.h"

/* Newest first; of equal times the later backup first. */
static int newer_first(const void *a, const void *b, void *times)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	const int64_t *t = times;

	if (t[x] != t[y])
		return t[x] > t[y] ? -1 : 1;
	return x > y ? -1 : 1;
}

/* The day, ISO week or month @t falls in, as one number (local time). */
static long bucket(int64_t t, unsigned int rule)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char w[16];

	localtime_r(&tt, &tm);
	if (rule == RETAIN_DAILY)
		return (tm.tm_year + 1900L) * 1000 + tm.tm_yday;
	if (rule == RETAIN_MONTHLY)
		return (tm.tm_year + 1900L) * 100 + tm.tm_mon;
	strftime(w, sizeof(w), "%G%V", &tm);	/* ISO year and week */
	return atol(w);
}

int retention_select(const int64_t *times, size_t n, const struct retention_rules *k,
		     unsigned int *why)
{
	static const unsigned int rules[] = { RETAIN_DAILY, RETAIN_WEEKLY, RETAIN_MONTHLY };
	const unsigned int want[] = { k->daily, k->weekly, k->monthly };
	size_t *order, i, r;

	order = malloc((n + 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		order[i] = i;
		why[i] = 0;
	}
	qsort_r(order, n, sizeof(*order), newer_first, (void *)times);
	for (i = 0; i < n && i < k->last; i++)
		why[order[i]] |= RETAIN_LAST;
	for (r = 0; r < 3; r++) {
		unsigned int kept = 0;
		long last = 0;

		for (i = 0; i < n && kept < want[r]; i++) {
			long b = bucket(times[order[i]], rules[r]);

			if (kept && b == last)
				continue;
			why[order[i]] |= rules[r];
			last = b;
			kept++;
		}
	}
	free(order);
	return 0;
}

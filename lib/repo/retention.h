/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keep rules (blktrack prune): which backups of one volume a rule keeps,
 * from their times alone. A pure function, so that the rules are tested
 * with dates and nothing else; the keep rules of the configuration file
 * come in through the same struct.
 *
 * Typical use:
 *
 *	struct retention_rules k = { .last = 3, .daily = 7 };
 *	retention_select(times, n, &k, why);    why[i]: RETAIN_* bits, 0: not kept
 */
#ifndef REPO_RETENTION_H
#define REPO_RETENTION_H

#include <stddef.h>
#include <stdint.h>

struct retention_rules {
	unsigned int last, daily, weekly, monthly;	/* 0: the rule is off */
};

#define RETAIN_LAST	0x1
#define RETAIN_DAILY	0x2
#define RETAIN_WEEKLY	0x4
#define RETAIN_MONTHLY	0x8

/*
 * @times[i] (seconds since the epoch; any order, ties broken by the higher
 * index as the newer) of @n backups of one volume; @why[i] gets the rules
 * that keep backup i. As restic and borg do, in local time (TZ): --keep-last
 * N, the N newest; --keep-daily N, the newest backup of each of the N
 * newest days that have a backup; weekly by ISO 8601 week, monthly by
 * calendar month, the same way.
 */
int retention_select(const int64_t *times, size_t n, const struct retention_rules *k,
		     unsigned int *why);

#endif /* REPO_RETENTION_H */

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /etc/blktrack/blktrack.conf (doc/blktrack.conf.5): the volumes a system
 * tracks and backs up on its own, parsed with inih. A bad file is refused
 * whole, "FILE:LINE: what is wrong", so that nothing acts on half of it.
 */
#ifndef BLKTRACK_CONFIG_H
#define BLKTRACK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "libblktrack.h"

#define CONFIG_FILE_DEFAULT	"/etc/blktrack/blktrack.conf"
#define CONFIG_NAME_MAX		64

/* One [volume NAME] section, with [defaults] filled in. */
struct config_volume {
	char name[CONFIG_NAME_MAX];	/* [A-Za-z0-9_.-]: a systemd instance name as is */
	char *device;			/* UUID=, PARTUUID=, LABEL=, PARTLABEL=, LVM=VG/LV or a path */
	char *repository;		/* NULL: none (tracked, not backed up) */
	char *schedule;			/* systemd OnCalendar=; NULL: no timer */
	uint64_t block_size;		/* 0: the module's default */
	uint64_t mem_limit;		/* 0: the module's default */
	enum blktrack_backup_type type;	/* what a scheduled backup takes */
	uint64_t full_every;		/* seconds; 0: never forced */
	enum blktrack_snapshot_mode snapshot;
	/* Retention (blktrack prune): all zero, none. */
	unsigned int keep_last, keep_daily, keep_weekly, keep_monthly;
	unsigned int line;		/* of its section header */
};

struct config {
	char *path;
	struct config_volume *volumes;
	size_t n_volumes;
};

/*
 * Parse @path into @cfg. 0, or -errno with "PATH:LINE: what is wrong" (or
 * "PATH: why", for a file that cannot be read) in @msg; @cfg is then empty.
 */
int config_load(const char *path, struct config *cfg, char *msg, size_t len);
void config_free(struct config *cfg);
/* The volume named @name, or NULL. */
const struct config_volume *config_find(const struct config *cfg, const char *name);
/*
 * The block device @v->device names now: 0 with its path in @buf, -ENOENT
 * when it is not there (not plugged in, not activated yet), -errno else.
 */
int config_resolve(const struct config_volume *v, char *buf, size_t len);
/* The names of the backup types and snapshot modes, NULL-terminated, by value. */
extern const char *const config_type_names[];
extern const char *const config_snapshot_names[];
/* The index of @s in @names (NULL-terminated), or -1. */
int config_pick(const char *const *names, const char *s);
/* The seconds of "30s", "12h", "7d", "2w" (a bare number is seconds). */
int config_parse_duration(const char *s, uint64_t *secs);

#endif /* BLKTRACK_CONFIG_H */

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the commands that act on blktrack.conf share: finding and loading
 * it, a volume's device, and the type a scheduled backup takes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "blktrack.h"

int cli_config_load(const char *path, struct config *cfg)
{
	char msg[1024];

	if (!path)
		path = getenv("BLKTRACK_CONFIG");
	if (!path || !*path)
		path = CONFIG_FILE_DEFAULT;
	if (config_load(path, cfg, msg, sizeof(msg))) {
		cli_err(NULL, "%s", msg);
		return EXIT_ERROR;
	}
	return 0;
}

int cli_config_volume(const struct config *cfg, const char *name,
		      const struct config_volume **v, char *dev, size_t len)
{
	int err;

	*v = config_find(cfg, name);
	if (!*v) {
		cli_err(name, "no [volume %s] in %s", name, cfg->path);
		return EXIT_ERROR;
	}
	err = config_resolve(*v, dev, len);
	if (err) {
		cli_err(name, "device %s: %s", (*v)->device,
			err == -ENOENT ? "not present" : strerror(-err));
		return EXIT_ERROR;
	}
	return 0;
}

/* The time of the newest committed full backup of @volume_id in @top, or 0. */
static int64_t newest_full(struct json_object *top, const char *volume_id)
{
	struct json_object *arr, *b, *x;
	int64_t newest = 0, t;
	size_t i;

	if (!json_object_object_get_ex(top, "backups", &arr))
		return 0;
	for (i = 0; i < json_object_array_length(arr); i++) {
		b = json_object_array_get_idx(arr, i);
		if (!json_object_object_get_ex(b, "type", &x) ||
		    strcmp(json_object_get_string(x), "full") ||
		    !json_object_object_get_ex(b, "state", &x) ||
		    strcmp(json_object_get_string(x), "committed") ||
		    !json_object_object_get_ex(b, "volume_id", &x) ||
		    strcmp(json_object_get_string(x), volume_id) ||
		    !json_object_object_get_ex(b, "time", &x))
			continue;
		t = json_object_get_int64(x);
		if (t > newest)
			newest = t;
	}
	return newest;
}

int cli_config_backup_type(struct blktrack_ctx *ctx, const struct config_volume *v,
			   const char *dev, enum blktrack_backup_type *type)
{
	struct blktrack_volume_id vid;
	char id[sizeof(vid.id) + sizeof(vid.id_type) + 1];
	struct json_object *top;
	int64_t full;
	int err;

	*type = v->type;
	if (v->type != BLKTRACK_BACKUP_INCREMENTAL && v->type != BLKTRACK_BACKUP_DIFFERENTIAL)
		return 0;
	err = blktrack_volume_identify(dev, &vid);
	if (!err)
		err = blktrack_repo_json(ctx, v->repository, false, &top);
	if (err)
		return cli_fail(ctx, dev, err);
	/* As the repository names it (a device number's id never matches: "auto"). */
	snprintf(id, sizeof(id), "%s:%s", vid.id_type, vid.id);
	full = newest_full(top, id);
	json_object_put(top);
	if (!full)	/* the volume's first backup: "auto" makes it a full */
		*type = BLKTRACK_BACKUP_AUTO;
	else if (v->full_every && (uint64_t)(time(NULL) - full) >= v->full_every)
		*type = BLKTRACK_BACKUP_FULL;
	return 0;
}

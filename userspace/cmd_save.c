// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack save [--state-dir DIR] [--json] [DEV...]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "blktrack.h"

static struct json_object *save_json(const char *dev, const struct blktrack_save_result *r)
{
	struct json_object *o = json_object_new_object();

	if (!o ||
	    json_object_object_add(o, "device", json_object_new_string(dev)) ||
	    json_object_object_add(o, "file", json_object_new_string(r->path)) ||
	    json_object_object_add(o, "clean", json_object_new_boolean(r->clean)) ||
	    json_object_object_add(o, "raw", json_object_new_boolean(r->raw)) ||
	    json_object_object_add(o, "dirty_blocks", json_object_new_uint64(r->dirty_blocks)) ||
	    json_object_object_add(o, "fingerprint", json_object_new_string(r->fingerprint))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/*
 * The volume that holds the state directory goes last: a state written in
 * place on it (read-only at shutdown) is a write its own saved map must hold.
 */
static void holder_last(dev_t *devs, size_t n, const char *dir)
{
	struct stat st;
	size_t i;
	dev_t d;

	if (stat(dir, &st))
		return;
	for (i = 0; i + 1 < n; i++)
		if (devs[i] == st.st_dev) {
			d = devs[i];
			memmove(devs + i, devs + i + 1, (n - i - 1) * sizeof(*devs));
			devs[n - 1] = d;
			return;
		}
}

static int run(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	const char *dir = NULL;
	struct json_object *arr = NULL;
	char **paths = NULL, name[4096];
	dev_t *devs = NULL;
	size_t n = 0, i;
	bool json = false, built = true;
	int c, err, ret = EXIT_OK;

	while ((c = cli_getopt(&cmd_save, argc, argv, "d:j", opts)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_open(ctx))
		return EXIT_ERROR;
	if (optind == argc) {
		/* Every attached volume. */
		err = blktrack_list(ctx, &devs, &n);
		if (err < 0)
			return cli_fail(ctx, NULL, err);
		holder_last(devs, n, dir ? dir : BLKTRACK_STATE_DIR_DEFAULT);
		paths = calloc(n ? n : 1, sizeof(*paths));
		for (i = 0; paths && i < n; i++)
			if (!blktrack_dev_name(devs[i], name, sizeof(name)))
				paths[i] = strdup(name);
		free(devs);
	} else {
		n = argc - optind;
		paths = calloc(n, sizeof(*paths));
		for (i = 0; paths && i < n; i++)
			paths[i] = strdup(argv[optind + i]);
	}
	if (!paths) {
		cli_err(NULL, "%s", strerror(ENOMEM));
		return EXIT_ERROR;
	}
	if (json)
		arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct blktrack_save_result r;

		if (!paths[i]) {
			cli_err(NULL, "%s", strerror(ENOMEM));
			ret = EXIT_ERROR;
			continue;
		}
		err = blktrack_save_state(ctx, paths[i], dir, &r);
		if (err < 0) {
			cli_fail(ctx, paths[i], err);
			ret = EXIT_ERROR;
		} else if (json) {
			struct json_object *o = save_json(paths[i], &r);

			built = built && arr && o && !json_object_array_add(arr, o);
		} else {
			printf("%s: saved %s: %s%s%s, %" PRIu64 " dirty block(s), fingerprint %s%s\n",
			       paths[i], r.path, r.clean ? "clean" : "NOT clean (",
			       r.clean ? "" : cli_unclean_why(ctx, paths[i]), r.clean ? "" : ")",
			       r.dirty_blocks, r.fingerprint, r.raw ? ", written in place" : "");
		}
		free(paths[i]);
	}
	free(paths);
	if (json && cli_print_json(stdout, arr, built, "save"))
		ret = EXIT_ERROR;
	return ret;
}

const struct cmd cmd_save = {
	.name = "save",
	.args = "[--state-dir DIR] [--json] [DEV...]",
	.help = "Save the active map of each attached volume (default: all of them) for\n"
		"the next boot's attach --restore-state. The state is clean only when the\n"
		"volume is not mounted read-write: run it at the end of a shutdown. A state\n"
		"directory that is read-only (on the volume itself, or the root filesystem\n"
		"at the end of a shutdown) is written in place through its block device\n"
		"(save once while it is writable first: that allocates the file); the\n"
		"volume holding it is saved last.\n"
		"  -d, --state-dir DIR   default " BLKTRACK_STATE_DIR_DEFAULT "\n"
		"  -j, --json            one JSON array",
	.run = run,
};

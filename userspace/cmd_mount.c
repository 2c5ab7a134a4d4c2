// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack mount --repo DIR [--backup ID] [--file PATH] [--tmp-dir DIR] [--json] MOUNTPOINT
 * blktrack umount MOUNTPOINT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "blktrack.h"

static int run_mount(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "backup", required_argument, NULL, 'b' },
		{ "file", required_argument, NULL, 'I' },
		{ "tmp-dir", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 }
	};
	struct blktrack_mount_opts o = { .progress = cli_progress };
	struct blktrack_mount_result res;
	struct json_object *j;
	bool json = false;
	int c, err;

	while ((c = cli_getopt(&cmd_mount, argc, argv, "r:b:j", opts)) != -1) {
		switch (c) {
		case 'r':
			o.repo = optarg;
			break;
		case 'b':
			if (cli_parse_id(optarg, &o.backup_id))
				return cli_usage(&cmd_mount);
			break;
		case 'I':
			o.file = optarg;
			break;
		case 'T':
			o.tmp_dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !o.repo)
		return cli_usage(&cmd_mount);
	o.mount_point = argv[optind];
	err = blktrack_mount(ctx, &o, &res);
	cli_progress_end();
	if (err < 0) {
		cli_fail(ctx, NULL, err);
		return res.failure ? cli_failure_code(res.failure) : EXIT_ERROR;
	}
	cli_warn_excluded(res.mount_point, res.excluded_bytes);
	if (!json) {
		printf("mounted backup %" PRIu64 " (%s) read-only on %s (%s)\n", res.backup_id,
		       res.fstype, res.mount_point, res.loop);
		return EXIT_OK;
	}
	j = json_object_new_object();
	json_object_object_add(j, "backup", json_object_new_uint64(res.backup_id));
	json_object_object_add(j, "mount_point", json_object_new_string(res.mount_point));
	json_object_object_add(j, "fstype", json_object_new_string(res.fstype));
	json_object_object_add(j, "loop", json_object_new_string(res.loop));
	json_object_object_add(j, "excluded_bytes", json_object_new_uint64(res.excluded_bytes));
	json_object_object_add(j, "image_dir", json_object_new_string(res.image_dir));
	return cli_print_json(stdout, j, true, NULL);
}

static int run_umount(struct blktrack_ctx *ctx, int argc, char *argv[])
{
	static const struct option opts[] = { { 0 } };
	int c, err;

	while ((c = cli_getopt(&cmd_umount, argc, argv, "", opts)) != -1)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cli_usage(&cmd_umount);
	err = blktrack_umount(ctx, argv[optind], NULL);
	return err < 0 ? cli_fail(ctx, NULL, err) : EXIT_OK;
}

const struct cmd cmd_mount = {
	.name = "mount",
	.args = "--repo DIR [--backup ID] [--file PATH] [--tmp-dir DIR] [--json] MOUNTPOINT",
	.help = "Browse a point: restore backup ID (as restore picks it) into a sparse image\n"
		"in a new directory under the temporary directory, and mount the filesystem\n"
		"in it read-only on MOUNTPOINT, through a loop device (its journal replayed\n"
		"into the image). blktrack umount MOUNTPOINT removes it all; list --mounts\n"
		"shows what is mounted.\n"
		"  -r, --repo DIR    the repository\n"
		"  -b, --backup ID   the point; default: the newest, as restore\n"
		"      --file PATH   a per-file backup of PATH holding a filesystem\n"
		"      --tmp-dir DIR where the image goes (/var/tmp): room for the used\n"
		"                    part of the volume\n"
		"  -j, --json        {\"backup\", \"mount_point\", \"fstype\", \"loop\", \"image_dir\"}\n"
		"Exit 1 when the point holds no filesystem (a partitioned or qcow2 image),\n"
		"when a point is mounted there already, or the mount fails (nothing stays);\n"
		"3 and 4 as restore.",
	.run = run_mount,
};

const struct cmd cmd_umount = {
	.name = "umount",
	.args = "MOUNTPOINT",
	.help = "Unmount a point blktrack mount mounted and remove its image. A busy\n"
		"filesystem stays mounted (exit 1).",
	.run = run_umount,
};

// SPDX-License-Identifier: GPL-2.0
/*
 * blktrack.conf (userspace/config.c): every key parsed, [defaults] filled in
 * wherever it stands, and each kind of bad file refused whole with the exact
 * "FILE:LINE: what is wrong" an admin reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "../../userspace/config.h"

static char path[] = "/tmp/blktrack-conf-XXXXXX";
static char msg[1024];
static struct config cfg;

static void write_conf(const char *text)
{
	int fd = mkstemp(path);
	FILE *f;

	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
}

static void done(void)
{
	config_free(&cfg);
	unlink(path);
	strcpy(path, "/tmp/blktrack-conf-XXXXXX");
}

/* @text is refused with "PATH:@line: @why". */
static void refused(const char *text, unsigned int line, const char *why)
{
	char want[1024];

	write_conf(text);
	msg[0] = 0;
	cr_assert_eq(config_load(path, &cfg, msg, sizeof(msg)), -EINVAL, "accepted:\n%s", text);
	snprintf(want, sizeof(want), "%s:%u: %s", path, line, why);
	cr_assert_str_eq(msg, want);
	cr_assert_eq(cfg.n_volumes, 0);
	cr_assert_null(cfg.volumes);
	done();
}

Test(config, every_key_and_defaults_anywhere)
{
	const struct config_volume *v;

	write_conf("# volumes\n"
		   "[volume data]\n"
		   "device = UUID=2f1c0a8e-1111-4222-8333-444455556666\n"
		   "block-size = 64K\n"
		   "mem-limit = 128M\n"
		   "schedule = *-*-* 02:00\n"
		   "keep-last = 3\n"
		   "\n"
		   "[volume vm-images.2]\n"
		   "  device = LVM=vg0/images   ; an inline comment\n"
		   "type = differential\n"
		   "snapshot = cow\n"
		   "repository = /srv/images\n"
		   "[defaults]\n"
		   "repository = /srv/backup\n"
		   "type = incremental\n"
		   "full-every = 2w\n"
		   "keep-daily = 30\n"
		   "keep-weekly = 8\n"
		   "keep-monthly = 12\n"
		   "block-size = 4096\n");
	cr_assert_eq(config_load(path, &cfg, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(cfg.n_volumes, 2);
	cr_assert_null(config_find(&cfg, "nope"));

	v = config_find(&cfg, "data");
	cr_assert_not_null(v);
	cr_assert_str_eq(v->device, "UUID=2f1c0a8e-1111-4222-8333-444455556666");
	cr_assert_eq(v->line, 2);
	cr_assert_eq(v->block_size, 65536);	/* its own, not the default's */
	cr_assert_eq(v->mem_limit, 128 << 20);
	cr_assert_str_eq(v->schedule, "*-*-* 02:00");
	cr_assert_str_eq(v->repository, "/srv/backup");
	cr_assert_eq(v->type, BLKTRACK_BACKUP_INCREMENTAL);
	cr_assert_eq(v->full_every, 14 * 86400);
	cr_assert_eq(v->snapshot, BLKTRACK_SNAPSHOT_AUTO);
	cr_assert_eq(v->keep_last, 3);
	cr_assert_eq(v->keep_daily, 30);
	cr_assert_eq(v->keep_weekly, 8);
	cr_assert_eq(v->keep_monthly, 12);

	v = config_find(&cfg, "vm-images.2");
	cr_assert_not_null(v);
	cr_assert_str_eq(v->device, "LVM=vg0/images");
	cr_assert_eq(v->line, 9);
	cr_assert_eq(v->block_size, 4096);
	cr_assert_eq(v->mem_limit, 0);
	cr_assert_null(v->schedule);
	cr_assert_str_eq(v->repository, "/srv/images");
	cr_assert_eq(v->type, BLKTRACK_BACKUP_DIFFERENTIAL);
	cr_assert_eq(v->snapshot, BLKTRACK_SNAPSHOT_COW);
	cr_assert_eq(v->keep_last, 0);
	done();
}

Test(config, an_empty_file_is_no_volume)
{
	write_conf("# nothing tracked yet\n\n[defaults]\nrepository = /srv/b\n");
	cr_assert_eq(config_load(path, &cfg, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(cfg.n_volumes, 0);
	done();
}

Test(config, bad_structure)
{
	refused("device = /dev/sda\n", 1,
		"'device' outside a section: put it under [defaults] or [volume NAME]");
	refused("[volume a]\ndevice = /dev/a\n[disk b]\ndevice = /dev/b\n", 3,
		"[disk b]: a section is [defaults] or [volume NAME], NAME of letters, "
		"digits, '_', '.' and '-'");
	refused("[volume a b]\ndevice = /dev/a\n", 1,
		"[volume a b]: a section is [defaults] or [volume NAME], NAME of letters, "
		"digits, '_', '.' and '-'");
	refused("[volume -a]\ndevice = /dev/a\n", 1,
		"[volume -a]: a section is [defaults] or [volume NAME], NAME of letters, "
		"digits, '_', '.' and '-'");
	refused("[volume a]\ndevice = /dev/a\n\n[volume a]\ndevice = /dev/b\n", 4,
		"[volume a]: already at line 1");
	refused("[volume a]\ndevice = /dev/a\nfoo = 1\n", 3, "unknown key 'foo' in [volume a]");
	refused("[defaults]\nblocksize = 4K\n", 2, "unknown key 'blocksize' in [defaults]");
	refused("[volume a]\ndevice = /dev/a\ndevice = /dev/b\n", 3,
		"device given twice in [volume a]");
	refused("[defaults]\ndevice = /dev/a\n", 2,
		"device in [defaults]: each volume names its own");
	refused("[volume a]\ndevice = /dev/a\njust words\n", 3,
		"not a [section] or a key = value line");
	refused("[volume a]\ndevice =\n", 2, "device: empty value");
}

Test(config, sections_without_keys_are_checked_too)
{
	refused("[volume a]\ndevice = /dev/a\n[volume b]\n# all commented out\n", 3,
		"[volume b] has no device");
	refused("[volume a]\ndevice = /dev/a\n[bogus]\n", 3,
		"[bogus]: a section is [defaults] or [volume NAME], NAME of letters, "
		"digits, '_', '.' and '-'");
	/* The first error is the one reported, not a later one. */
	refused("[volume a\ndevice = /dev/a\n[volume c]\n[volume c]\nfoo = 1\n", 1,
		"not a [section] or a key = value line");
}

Test(config, bad_values)
{
	refused("[volume a]\ndevice = sda\n", 2, "device 'sda': not UUID=, PARTUUID=, "
		"LABEL=, PARTLABEL=, LVM=VG/LV or an absolute path");
	refused("[volume a]\ndevice = LVM=vg0\n", 2, "device 'LVM=vg0': not UUID=, PARTUUID=, "
		"LABEL=, PARTLABEL=, LVM=VG/LV or an absolute path");
	refused("[volume a]\ndevice = UUID=\n", 2, "device 'UUID=': not UUID=, PARTUUID=, "
		"LABEL=, PARTLABEL=, LVM=VG/LV or an absolute path");
	refused("[defaults]\nblock-size = 3K\n", 2,
		"block-size '3K': not a power of two from 4K to 16M");
	refused("[defaults]\nblock-size = 32M\n", 2,
		"block-size '32M': not a power of two from 4K to 16M");
	refused("[defaults]\nblock-size = 2K\n", 2,
		"block-size '2K': not a power of two from 4K to 16M");
	refused("[defaults]\nmem-limit = 0\n", 2, "mem-limit '0': not a size (such as 64M)");
	refused("[defaults]\nmem-limit = lots\n", 2, "mem-limit 'lots': not a size (such as 64M)");
	refused("[defaults]\ntype = copy\n", 2,
		"type 'copy': not auto, full, incremental, differential or resync");
	refused("[defaults]\nfull-every = 0d\n", 2,
		"full-every '0d': not a duration (such as 7d, 2w, 12h)");
	refused("[defaults]\nfull-every = 7y\n", 2,
		"full-every '7y': not a duration (such as 7d, 2w, 12h)");
	refused("[defaults]\nsnapshot = lvm\n", 2, "snapshot 'lvm': not auto, cow, freeze or none");
	refused("[defaults]\nkeep-last = -1\n", 2, "keep-last '-1': not a count");
	refused("[defaults]\nkeep-monthly = 4294967296\n", 2,
		"keep-monthly '4294967296': not a count");
	refused("[defaults]\nrepository = backups\n", 2,
		"repository 'backups': not an absolute path");
}

Test(config, volumes_checked_whole)
{
	refused("[volume a]\nblock-size = 4K\n", 1, "[volume a] has no device");
	refused("[volume a]\ndevice = /dev/a\nschedule = daily\n", 1,
		"[volume a] has a schedule but no repository");
	refused("[volume a]\ndevice = /dev/a\n[volume b]\ndevice = /dev/b\nkeep-last = 2\n", 3,
		"[volume b] has a keep rule but no repository");
	/* A repository in [defaults] is theirs too. */
	write_conf("[volume b]\ndevice = /dev/b\nkeep-last = 2\n[defaults]\nrepository = /r\n");
	cr_assert_eq(config_load(path, &cfg, msg, sizeof(msg)), 0, "%s", msg);
	done();
}

Test(config, a_line_too_long_is_refused_not_split)
{
	char text[6000];

	snprintf(text, sizeof(text), "[volume a]\ndevice = /dev/a\nrepository = /%04900d\n", 0);
	refused(text, 3, "line longer than 4096 bytes");
	/* 4000 bytes is fine. */
	snprintf(text, sizeof(text), "[volume a]\ndevice = /dev/a\nrepository = /%04000d\n", 0);
	write_conf(text);
	cr_assert_eq(config_load(path, &cfg, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(strlen(cfg.volumes[0].repository), 4001);
	done();
}

Test(config, a_missing_file)
{
	cr_assert_eq(config_load("/nonexistent/blktrack.conf", &cfg, msg, sizeof(msg)), -ENOENT);
	cr_assert_str_eq(msg, "/nonexistent/blktrack.conf: No such file or directory");
}

Test(config, durations)
{
	uint64_t s;

	cr_assert_eq(config_parse_duration("90", &s), 0);
	cr_assert_eq(s, 90);
	cr_assert_eq(config_parse_duration("12h", &s), 0);
	cr_assert_eq(s, 12 * 3600);
	cr_assert_eq(config_parse_duration("7d", &s), 0);
	cr_assert_eq(s, 7 * 86400);
	cr_assert_eq(config_parse_duration("3w", &s), 0);
	cr_assert_eq(s, 21 * 86400);
	cr_assert_eq(config_parse_duration("5m", &s), 0);
	cr_assert_eq(s, 300);
	cr_assert_eq(config_parse_duration("d", &s), -EINVAL);
	cr_assert_eq(config_parse_duration("7dd", &s), -EINVAL);
	cr_assert_eq(config_parse_duration("-7d", &s), -EINVAL);
	cr_assert_eq(config_parse_duration("0", &s), -EINVAL);
	cr_assert_eq(config_parse_duration("99999999999999999w", &s), -EINVAL);
}

Test(config, resolve)
{
	struct config_volume v = { 0 };
	char buf[256];

	v.device = "LVM=vg-0/lv-a";
	cr_assert_eq(config_resolve(&v, buf, sizeof(buf)), -ENOENT);
	cr_assert_str_eq(buf, "/dev/mapper/vg--0-lv--a");	/* as device-mapper names it */
	v.device = "/dev/null";
	cr_assert_eq(config_resolve(&v, buf, sizeof(buf)), -ENOTBLK);
	v.device = "/nonexistent";
	cr_assert_eq(config_resolve(&v, buf, sizeof(buf)), -ENOENT);
	v.device = "UUID=00000000-dead-beef-0000-000000000000";
	cr_assert_eq(config_resolve(&v, buf, sizeof(buf)), -ENOENT);
}

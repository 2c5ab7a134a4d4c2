// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blktrack.conf: an INI file read with inih. inih calls us once per key; a
 * reader of our own counts the lines (so every error names its line) and
 * refuses a line longer than the buffer (inih would read its tail as a
 * line of its own). [defaults] is applied after the whole file is read, so
 * that it may come anywhere.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <blkid/blkid.h>

#include "config.h"

#define LINE_MAX_BYTES	4096

enum key {
	KEY_DEVICE, KEY_REPOSITORY, KEY_SCHEDULE, KEY_BLOCK_SIZE, KEY_MEM_LIMIT,
	KEY_TYPE, KEY_FULL_EVERY, KEY_SNAPSHOT, KEY_KEEP_LAST, KEY_KEEP_DAILY,
	KEY_KEEP_WEEKLY, KEY_KEEP_MONTHLY, KEY_COUNT
};

/* A volume being read: what its section set, to fill the rest from [defaults]. */
struct section {
	struct config_volume v;
	unsigned int set;	/* 1 << KEY_* */
};

struct header {
	char name[CONFIG_NAME_MAX + 16];
	unsigned int line;
};

struct parser {
	FILE *f;
	struct header headers[256];	/* every [section] line, in order */
	size_t n_headers;
	const char *path;
	unsigned int line;		/* of the line inih has just been given */
	unsigned int header_line;	/* of the last [section] header */
	unsigned int section_line;	/* the header the open section came from */
	bool too_long;
	struct section defaults;
	struct section *sections;
	size_t n;
	struct section *cur;		/* NULL: the open section is [defaults] */
	char msg[512];			/* the first error, "PATH:LINE: ..." */
};

static int fail(struct parser *p, unsigned int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, unsigned int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->msg[0])
		return 0;
	n = snprintf(p->msg, sizeof(p->msg), "%s:%u: ", p->path, line);
	if (n < 0 || (size_t)n >= sizeof(p->msg))	/* a path that long: the path alone */
		return 0;
	va_start(ap, fmt);
	vsnprintf(p->msg + n, sizeof(p->msg) - n, fmt, ap);
	va_end(ap);
	return 0;
}

/*
 * A section header, noted for a check once the file is read: inih calls
 * us only for keys, so a header with no key under it would go unseen.
 */
static void note_header(struct parser *p, const char *name)
{
	const char *end = strchr(name, ']');
	struct header *h;

	if (!end || p->n_headers == sizeof(p->headers) / sizeof(p->headers[0]))
		return;	/* inih reports the first; the second: too many to check */
	h = &p->headers[p->n_headers++];
	snprintf(h->name, sizeof(h->name), "%.*s", (int)(end - name), name);
	h->line = p->line;
}

/* inih's reader: fgets that counts lines, notes headers, flags long lines. */
static char *reader(char *buf, int size, void *data)
{
	struct parser *p = data;
	const char *s;
	size_t len;

	if (!fgets(buf, size, p->f))
		return NULL;
	p->line++;
	len = strlen(buf);
	if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !feof(p->f) && !p->too_long) {
		p->too_long = true;
		fail(p, p->line, "line longer than %d bytes", LINE_MAX_BYTES);
	}
	for (s = buf; isspace((unsigned char)*s); s++)
		;
	if (*s == '[') {
		p->header_line = p->line;
		note_header(p, s + 1);
	}
	return buf;
}

int config_parse_duration(const char *s, uint64_t *secs)
{
	static const struct { char unit; uint64_t secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	unsigned long long v;
	uint64_t mult = 1;
	char *end;
	size_t i;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -errno;
	if (*end) {
		for (i = 0; i < sizeof(units) / sizeof(units[0]) && units[i].unit != *end; i++)
			;
		if (i == sizeof(units) / sizeof(units[0]) || end[1])
			return -EINVAL;
		mult = units[i].secs;
	}
	if (!v || v > UINT64_MAX / mult)
		return -EINVAL;
	*secs = v * mult;
	return 0;
}

int config_pick(const char *const *names, const char *s)
{
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

const char *const config_type_names[] = {
	[BLKTRACK_BACKUP_AUTO] = "auto",
	[BLKTRACK_BACKUP_FULL] = "full",
	[BLKTRACK_BACKUP_INCREMENTAL] = "incremental",
	[BLKTRACK_BACKUP_DIFFERENTIAL] = "differential",
	[BLKTRACK_BACKUP_COPY] = "copy",
	[BLKTRACK_BACKUP_RESYNC] = "resync",
	NULL
};

const char *const config_snapshot_names[] = {
	[BLKTRACK_SNAPSHOT_FREEZE] = "freeze",
	[BLKTRACK_SNAPSHOT_AUTO] = "auto",
	[BLKTRACK_SNAPSHOT_COW] = "cow",
	[BLKTRACK_SNAPSHOT_NONE] = "none",
	NULL
};

static bool device_ok(const char *s)
{
	static const char *const tags[] = { "UUID=", "PARTUUID=", "LABEL=", "PARTLABEL=",
					    "LVM=", NULL };
	int i;

	if (s[0] == '/')
		return true;
	for (i = 0; tags[i]; i++)
		if (!strncmp(s, tags[i], strlen(tags[i])) && s[strlen(tags[i])])
			return i < 4 || (strchr(s, '/') && s[strlen(s) - 1] != '/');
	return false;
}

static bool count_ok(const char *s, unsigned int *n)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT_MAX)
		return false;
	*n = v;
	return true;
}

static const char *const key_names[KEY_COUNT + 1] = {
	[KEY_DEVICE] = "device", [KEY_REPOSITORY] = "repository",
	[KEY_SCHEDULE] = "schedule", [KEY_BLOCK_SIZE] = "block-size",
	[KEY_MEM_LIMIT] = "mem-limit", [KEY_TYPE] = "type",
	[KEY_FULL_EVERY] = "full-every", [KEY_SNAPSHOT] = "snapshot",
	[KEY_KEEP_LAST] = "keep-last", [KEY_KEEP_DAILY] = "keep-daily",
	[KEY_KEEP_WEEKLY] = "keep-weekly", [KEY_KEEP_MONTHLY] = "keep-monthly",
};

static bool set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = strdup(value);
	return *dst;
}

/* Parse @value of key @k into @v: 1 done, 0 bad value (p->msg says why). */
static int set_key(struct parser *p, struct config_volume *v, enum key k, const char *value)
{
	uint64_t u;
	int i;

	switch (k) {
	case KEY_DEVICE:
		if (!device_ok(value))
			return fail(p, p->line, "device '%s': not UUID=, PARTUUID=, LABEL=, "
				    "PARTLABEL=, LVM=VG/LV or an absolute path", value);
		return set_string(&v->device, value) ? 1 : fail(p, p->line, "out of memory");
	case KEY_REPOSITORY:
		if (value[0] != '/')
			return fail(p, p->line, "repository '%s': not an absolute path", value);
		return set_string(&v->repository, value) ? 1 : fail(p, p->line, "out of memory");
	case KEY_SCHEDULE:
		return set_string(&v->schedule, value) ? 1 : fail(p, p->line, "out of memory");
	case KEY_BLOCK_SIZE:
		if (blktrack_parse_size(value, &u) || u < 4096 || u > (16u << 20) || (u & (u - 1)))
			return fail(p, p->line, "block-size '%s': not a power of two from 4K "
				    "to 16M", value);
		v->block_size = u;
		return 1;
	case KEY_MEM_LIMIT:
		if (blktrack_parse_size(value, &u) || !u)
			return fail(p, p->line, "mem-limit '%s': not a size (such as 64M)", value);
		v->mem_limit = u;
		return 1;
	case KEY_TYPE:
		i = config_pick(config_type_names, value);
		/* A copy moves no base: not something to schedule. */
		if (i < 0 || i == BLKTRACK_BACKUP_COPY)
			return fail(p, p->line, "type '%s': not auto, full, incremental, "
				    "differential or resync", value);
		v->type = i;
		return 1;
	case KEY_FULL_EVERY:
		if (config_parse_duration(value, &v->full_every))
			return fail(p, p->line, "full-every '%s': not a duration (such as 7d, "
				    "2w, 12h)", value);
		return 1;
	case KEY_SNAPSHOT:
		i = config_pick(config_snapshot_names, value);
		if (i < 0)
			return fail(p, p->line, "snapshot '%s': not auto, cow, freeze or none",
				    value);
		v->snapshot = i;
		return 1;
	case KEY_KEEP_LAST:
	case KEY_KEEP_DAILY:
	case KEY_KEEP_WEEKLY:
	case KEY_KEEP_MONTHLY: {
		unsigned int *n = k == KEY_KEEP_LAST ? &v->keep_last :
				  k == KEY_KEEP_DAILY ? &v->keep_daily :
				  k == KEY_KEEP_WEEKLY ? &v->keep_weekly : &v->keep_monthly;

		if (!count_ok(value, n))
			return fail(p, p->line, "%s '%s': not a count", key_names[k], value);
		return 1;
	}
	default:
		return 0;
	}
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n >= CONFIG_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* A key of a section whose header is new: open the section. 1, or 0 failed. */
static int open_section(struct parser *p, const char *section)
{
	struct section *s;
	size_t i;

	p->section_line = p->header_line;
	if (!strcmp(section, "defaults")) {
		p->cur = NULL;
		return 1;
	}
	if (strncmp(section, "volume ", 7) || !name_ok(section + 7))
		return fail(p, p->header_line, "[%s]: a section is [defaults] or [volume NAME], "
			    "NAME of letters, digits, '_', '.' and '-'", section);
	for (i = 0; i < p->n; i++)
		if (!strcmp(p->sections[i].v.name, section + 7))
			return fail(p, p->header_line, "[%s]: already at line %u", section,
				    p->sections[i].v.line);
	s = realloc(p->sections, (p->n + 1) * sizeof(*s));
	if (!s)
		return fail(p, p->line, "out of memory");
	p->sections = s;
	p->cur = memset(&s[p->n++], 0, sizeof(*s));
	snprintf(p->cur->v.name, sizeof(p->cur->v.name), "%s", section + 7);
	p->cur->v.line = p->header_line;
	p->cur->v.snapshot = BLKTRACK_SNAPSHOT_AUTO;	/* as blktrack backup */
	return 1;
}

static int handler(void *data, const char *section, const char *name, const char *value)
{
	struct parser *p = data;
	struct section *s;
	int k;

	if (p->too_long)
		return 0;
	if (p->header_line != p->section_line || !p->header_line) {
		if (!p->header_line)
			return fail(p, p->line, "'%s' outside a section: put it under "
				    "[defaults] or [volume NAME]", name);
		if (!open_section(p, section))
			return 0;
	}
	s = p->cur ? p->cur : &p->defaults;
	k = config_pick(key_names, name);
	if (k < 0)
		return fail(p, p->line, "unknown key '%s' in [%s]", name, section);
	if (k == KEY_DEVICE && !p->cur)
		return fail(p, p->line, "device in [defaults]: each volume names its own");
	if (s->set & (1u << k))
		return fail(p, p->line, "%s given twice in [%s]", name, section);
	if (!*value)
		return fail(p, p->line, "%s: empty value", name);
	if (!set_key(p, &s->v, k, value))
		return 0;
	s->set |= 1u << k;
	return 1;
}

/* The keys @s did not set, from [defaults]. false: out of memory. */
static bool inherit(struct section *s, const struct section *d)
{
	const struct config_volume *dv = &d->v;
	struct config_volume *v = &s->v;

#define TAKE(key, field) \
	if (!(s->set & (1u << (key))) && (d->set & (1u << (key)))) \
		v->field = dv->field
	TAKE(KEY_BLOCK_SIZE, block_size);
	TAKE(KEY_MEM_LIMIT, mem_limit);
	TAKE(KEY_TYPE, type);
	TAKE(KEY_FULL_EVERY, full_every);
	TAKE(KEY_SNAPSHOT, snapshot);
	TAKE(KEY_KEEP_LAST, keep_last);
	TAKE(KEY_KEEP_DAILY, keep_daily);
	TAKE(KEY_KEEP_WEEKLY, keep_weekly);
	TAKE(KEY_KEEP_MONTHLY, keep_monthly);
#undef TAKE
	if (!v->repository && dv->repository && !(v->repository = strdup(dv->repository)))
		return false;
	if (!v->schedule && dv->schedule && !(v->schedule = strdup(dv->schedule)))
		return false;
	return true;
}

/* What a section's keys must say together, once [defaults] is in. */
static int check_volume(struct parser *p, const struct config_volume *v)
{
	bool keeps = v->keep_last || v->keep_daily || v->keep_weekly || v->keep_monthly;

	if (!v->device)
		return fail(p, v->line, "[volume %s] has no device", v->name);
	if (!v->repository && (v->schedule || keeps))
		return fail(p, v->line, "[volume %s] has a %s but no repository", v->name,
			    v->schedule ? "schedule" : "keep rule");
	return 1;
}

static void volume_free(struct config_volume *v)
{
	free(v->device);
	free(v->repository);
	free(v->schedule);
}

/* Every header is a known section, and every [volume NAME] has keys. */
static int check_headers(struct parser *p)
{
	const struct header *h;
	size_t i, k;

	if (p->n_headers == sizeof(p->headers) / sizeof(p->headers[0]))
		return fail(p, p->headers[p->n_headers - 1].line, "more than %zu sections",
			    p->n_headers - 1);
	for (i = 0; i < p->n_headers; i++) {
		h = &p->headers[i];
		if (!strcmp(h->name, "defaults"))
			continue;
		if (strncmp(h->name, "volume ", 7) || !name_ok(h->name + 7))
			return fail(p, h->line, "[%s]: a section is [defaults] or [volume NAME], "
				    "NAME of letters, digits, '_', '.' and '-'", h->name);
		for (k = 0; k < p->n && strcmp(p->sections[k].v.name, h->name + 7); k++)
			;
		if (k == p->n)
			return fail(p, h->line, "[%s] has no device", h->name);
	}
	return 1;
}

/* Parse, then fill and check every volume; 1 done, 0 failed (p->msg). */
static int parse(struct parser *p)
{
	int line;
	size_t i;

	ini_allow_multiline = false;	/* an indented line is a line of its own */
	ini_stop_on_first_error = true;	/* the first error is the one to report */
	ini_use_stack = false;
	ini_max_line = LINE_MAX_BYTES + 3;
	ini_initial_alloc = ini_max_line;	/* the heap buffer, never grown */
	line = ini_parse_stream(reader, p, handler, p);
	if (line < 0)
		return fail(p, p->line, "out of memory");
	if (line > 0)
		return fail(p, line, "not a [section] or a key = value line");
	if (!check_headers(p))
		return 0;
	for (i = 0; i < p->n; i++) {
		if (!inherit(&p->sections[i], &p->defaults))
			return fail(p, p->sections[i].v.line, "out of memory");
		if (!check_volume(p, &p->sections[i].v))
			return 0;
	}
	return 1;
}

int config_load(const char *path, struct config *cfg, char *msg, size_t len)
{
	struct parser p = { .path = path };
	int err = 0;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	p.f = fopen(path, "re");
	if (!p.f) {
		err = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(errno));
		return err;
	}
	if (!parse(&p)) {
		snprintf(msg, len, "%s", p.msg);
		err = -EINVAL;
	}
	fclose(p.f);
	volume_free(&p.defaults.v);
	if (!err) {
		cfg->path = strdup(path);
		cfg->volumes = calloc(p.n ? p.n : 1, sizeof(*cfg->volumes));
		if (!cfg->path || !cfg->volumes) {
			snprintf(msg, len, "%s: out of memory", path);
			err = -ENOMEM;
		}
	}
	for (i = 0; i < p.n; i++) {
		if (!err)
			cfg->volumes[cfg->n_volumes++] = p.sections[i].v;
		else
			volume_free(&p.sections[i].v);
	}
	free(p.sections);
	if (err)
		config_free(cfg);
	return err;
}

void config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_volumes; i++)
		volume_free(&cfg->volumes[i]);
	free(cfg->volumes);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

const struct config_volume *config_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_volumes; i++)
		if (!strcmp(cfg->volumes[i].name, name))
			return &cfg->volumes[i];
	return NULL;
}

/* LVM=VG/LV: /dev/mapper/VG-LV, each '-' of a name doubled as device-mapper does. */
static int lvm_path(const char *vglv, char *buf, size_t len)
{
	size_t n = snprintf(buf, len, "/dev/mapper/");
	const char *s;

	for (s = vglv; *s && n + 3 < len; s++) {
		if (*s == '/') {
			buf[n++] = '-';
			continue;
		}
		if (*s == '-')
			buf[n++] = '-';
		buf[n++] = *s;
	}
	buf[n] = 0;
	return *s ? -ENAMETOOLONG : 0;
}

int config_resolve(const struct config_volume *v, char *buf, size_t len)
{
	struct stat st;
	char *path;
	int err;

	if (!strncmp(v->device, "LVM=", 4)) {
		err = lvm_path(v->device + 4, buf, len);
		if (err)
			return err;
	} else if (v->device[0] == '/') {
		if ((size_t)snprintf(buf, len, "%s", v->device) >= len)
			return -ENAMETOOLONG;
	} else {
		/* The udev symlinks, else a probe of every block device. */
		path = blkid_evaluate_tag(v->device, NULL, NULL);
		if (!path)
			return -ENOENT;
		err = (size_t)snprintf(buf, len, "%s", path) >= len ? -ENAMETOOLONG : 0;
		free(path);
		if (err)
			return err;
	}
	if (stat(buf, &st))
		return -errno;
	return S_ISBLK(st.st_mode) ? 0 : -ENOTBLK;
}

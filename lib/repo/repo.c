// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The backup repository: catalog, lock, delta maps, composition, the
 * two-phase protocol and crash recovery. See repo.h and doc/REPOSITORY.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include <xxhash.h>

#include "core/fdio.h"
#include "format/bfile.h"
#include "format/blockhash.h"
#include "format/blockset.h"
#include "repo/repo.h"
#include "repo/store.h"

#define CATALOG		"catalog"
#define CATALOG_TMP	"catalog.tmp"
#define LOCK_FILE	"lock"
#define BACKUPS_DIR	"backups"
#define DELTAS_DIR	"deltas"
#define HASHES_DIR	"hashes"
#define TMP_SUFFIX	".tmp"
#define CATALOG_FORMAT	"blktrack-catalog"
#define DELTA_MAX_BYTES	(UINT64_C(1) << 32)
#define CATALOG_MAX_BYTES	(64U << 20)	/* ~120,000 backups of ~530 bytes */
/*
 * Version 2 ends with this line and "}\n": the XXH3-64 of every byte
 * before the line, as 16 lowercase hex digits. The file stays JSON.
 */
#define SUM_KEY		"  \"xxh3\": \""
#define SUM_TAIL	"\"\n}\n"
#define SUM_LEN		(sizeof(SUM_KEY) - 1 + 16 + sizeof(SUM_TAIL) - 1)

struct repo {
	char *path;
	const struct store_ops *ops;	/* where its files are: store.h */
	struct store *s;
	bool rdonly;
	unsigned int wait;	/* seconds to wait for the lock */
	struct repo_entry *e;
	size_t n, cap;
	uint64_t next_id;
	bool replaced;		/* the last write_atomic() renamed its file in place */
	/*
	 * Files to delete: those a merge or removal took out of the catalog,
	 * or a merge's new file before its commit. The catalog lists them, so
	 * a crash at any point leaves recovery a list to finish.
	 */
	char (*trash)[REPO_NAME_MAX];
	size_t ntrash;
	char err[512];
};

/* repo.h; hidden visibility: only a program built with repo.c can set it. */
int (*repo_fault_hook)(const char *step, const char *name);

__attribute__((format(printf, 3, 4)))
static int repo_set_error(struct repo *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return err;
}

const char *repo_error(const struct repo *r)
{
	if (!r)
		return strerror(ENOMEM);
	return r->err;
}

const char *repo_path(const struct repo *r)
{
	return r->path;
}

/* ---- names -------------------------------------------------------------- */

static const char *const type_names[] = {
	[REPO_FULL] = "full",
	[REPO_INCREMENTAL] = "incremental",
	[REPO_DIFFERENTIAL] = "differential",
	[REPO_COPY] = "copy",
	[REPO_RESYNC] = "resync",
};

const char *repo_type_name(enum repo_type type)
{
	if ((unsigned int)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "unknown";
	return type_names[type];
}

int repo_type_parse(const char *name, enum repo_type *type)
{
	unsigned int i;

	for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (!strcmp(name, type_names[i])) {
			*type = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *repo_state_name(enum repo_state state)
{
	return state == REPO_COMMITTED ? "committed" : "pending";
}

static void uuid_text(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int uuid_parse(const char *s, uint8_t u[16])
{
	int i, hi, lo;

	if (strlen(s) != 36)
		return -EINVAL;
	for (i = 0; i < 16; i++) {
		if (*s == '-' && (i == 4 || i == 6 || i == 8 || i == 10))
			s++;
		hi = hexval(s[0]);
		lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return -EINVAL;
		u[i] = hi << 4 | lo;
		s += 2;
	}
	return *s ? -EINVAL : 0;
}

/*
 * Named by the backup id, never by the kernel stamp: a stamp may come back
 * (a kernel COMMIT lost after the catalog commit, then an older module's
 * ABORT, or a saved state), and a name taken by a committed backup would
 * then block every later one. Older repositories keep their GEN-EPOCH.set
 * names: the catalog names each file.
 */
void repo_delta_name(uint64_t id, char out[REPO_NAME_MAX])
{
	snprintf(out, REPO_NAME_MAX, DELTAS_DIR "/%" PRIu64 ".set", id);
}

static void backup_name(uint64_t id, char out[REPO_NAME_MAX])
{
	snprintf(out, REPO_NAME_MAX, BACKUPS_DIR "/%" PRIu64 ".bkt", id);
}

/* A backup's block hashes have no catalog field: the name follows the id. */
#define HASHES_NAME_MAX	32	/* "hashes/" + 20 digits + ".bh" + NUL */

static void hashes_name(uint64_t id, char out[HASHES_NAME_MAX])
{
	snprintf(out, HASHES_NAME_MAX, HASHES_DIR "/%" PRIu64 ".bh", id);
}

void repo_hashes_name(uint64_t id, char out[REPO_NAME_MAX])
{
	hashes_name(id, out);
}

/*
 * Checkpoint @b follows point @a of the same history: no COMMIT between them
 * (the epoch's low 32 bits are equal), only ABORTs, each of which adds
 * BLKTRACK_EPOCH_ABORT and merges its map back (include/uapi/linux/blktrack.h).
 * The size may differ (a resize).
 */
static bool stamp_follows(const struct repo_stamp *a, const struct repo_stamp *b)
{
	return !strcmp(a->volume_id, b->volume_id) &&
	       !memcmp(a->generation, b->generation, 16) &&
	       (uint32_t)a->epoch == (uint32_t)b->epoch && b->epoch >= a->epoch &&
	       a->block_size == b->block_size;
}

bool repo_stamp_equal(const struct repo_stamp *a, const struct repo_stamp *b)
{
	return !strcmp(a->volume_id, b->volume_id) &&
	       !memcmp(a->generation, b->generation, 16) &&
	       a->epoch == b->epoch && a->size == b->size &&
	       a->block_size == b->block_size;
}

/* ---- durable files ------------------------------------------------------ */

/*
 * Every file of the repository goes through its store (store.h): the
 * directory opens each relative to its descriptor with O_NOFOLLOW, so that
 * a symbolic link planted in the repository never makes us read, truncate
 * or write a file outside it (-ELOOP).
 */
static int repo_open_error(struct repo *r, const char *name, int err)
{
	if (err == -ELOOP)
		return repo_set_error(r, -ELOOP, "%s/%s is a symbolic link: refused "
				      "(repository files are never followed out of it)",
				      r->path, name);
	return repo_set_error(r, err, "%s/%s: %s", r->path, name, strerror(-err));
}

/* The store would not open: say what to do. */
static int store_open_error(struct repo *r, int err)
{
	if (err == -ENOPKG)
		return repo_set_error(r, err, "%s: a RADOS repository needs Ceph's librados "
				      "(apt install librados2)", r->path);
	if (err == -EINVAL && r->ops == &store_rados_ops)
		return repo_set_error(r, err, "%s: not rados://POOL/NAME", r->path);
	return repo_set_error(r, err, "%s: %s", r->path, strerror(-err));
}

static int fsync_dir(struct repo *r, const char *sub)
{
	return r->ops->sync(r->s, sub);
}

/*
 * @name relative to the repo, in @dir ("." or a subdirectory). r->replaced
 * tells a failure after the rename (the new file is what every reader now
 * sees, but may not survive a power cut) from one before it (nothing
 * changed).
 */
static int write_atomic(struct repo *r, const char *dir, const char *name,
			const void *buf, size_t len)
{
	int ret = r->ops->replace(r->s, dir, name, buf, len, &r->replaced);

	/* Before the rename, the file that failed is the new one, NAME.tmp. */
	if (ret)
		return repo_set_error(r, ret, "%s/%s%s: %s", r->path, name,
				      r->replaced ? "" : TMP_SUFFIX, strerror(-ret));
	return 0;
}

static int read_file(struct repo *r, const char *name, uint64_t max,
		     char **buf, size_t *len)
{
	int ret = r->ops->read(r->s, name, max, buf, len);

	if (ret == -EFBIG)
		return repo_set_error(r, ret, "%s/%s: too large", r->path, name);
	if (ret == -ELOOP || ret == -ENOENT)
		return repo_open_error(r, name, ret);
	if (ret)
		return repo_set_error(r, ret, "%s/%s: %s", r->path, name, strerror(-ret));
	return 0;
}

static bool file_exists(struct repo *r, const char *name)
{
	return r->ops->exists(r->s, name) > 0;
}

static int remove_file(struct repo *r, const char *name)
{
	return r->ops->remove(r->s, name);
}

struct names {
	char (*v)[NAME_MAX + 1];
	size_t n;
};

static int names_add(void *data, const char *name)
{
	struct names *l = data;
	char (*nv)[NAME_MAX + 1];

	if (strlen(name) > NAME_MAX)
		return 0;
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	strcpy(l->v[l->n++], name);
	return 0;
}

/* The names in @dir, in the store's order: 0 or -errno (none then). */
static int list_names(struct repo *r, const char *dir, struct names *l)
{
	int ret;

	memset(l, 0, sizeof(*l));
	ret = r->ops->list(r->s, dir, names_add, l);
	if (ret) {
		free(l->v);
		memset(l, 0, sizeof(*l));
	}
	return ret;
}

/* ---- the catalog: JSON -------------------------------------------------- */

static struct json_object *stamp_json(const struct repo_stamp *s)
{
	struct json_object *o = json_object_new_object();
	char g[37];

	uuid_text(s->generation, g);
	json_object_object_add(o, "volume_id", json_object_new_string(s->volume_id));
	json_object_object_add(o, "generation", json_object_new_string(g));
	json_object_object_add(o, "epoch", json_object_new_uint64(s->epoch));
	json_object_object_add(o, "size", json_object_new_uint64(s->size));
	json_object_object_add(o, "block_size", json_object_new_uint64(s->block_size));
	return o;
}

static struct json_object *sum_json(uint64_t sum)
{
	char h[17];

	snprintf(h, sizeof(h), "%016" PRIx64, sum);
	return json_object_new_string(h);
}

struct json_object *repo_stamps_json(const char *stamps)
{
	struct json_object *o = json_object_new_object();
	const char *p = stamps, *tab, *nl;

	while (o && *p && (tab = strchr(p, '\t')) && (nl = strchr(tab, '\n'))) {
		char name[256];

		snprintf(name, sizeof(name), "%.*s", (int)(tab - p), p);
		json_object_object_add(o, name, json_object_new_string_len(tab + 1,
									   (int)(nl - tab - 1)));
		p = nl + 1;
	}
	return o;
}

bool repo_stamp_ok(const char *name, size_t nlen, const char *stamp, size_t slen)
{
	size_t i;

	if (!nlen || nlen > 255 || strspn(name, WRITER_NAME_CHARS) < nlen || !slen ||
	    slen > REPO_WRITER_STAMP_LEN)
		return false;
	for (i = 0; i < slen; i++)
		if (stamp[i] < 0x20 || stamp[i] > 0x7e)
			return false;
	return true;
}

/* "writer_stamps": {NAME: STAMP, ...} back into lines; -EBADMSG when malformed. */
static int stamps_parse(struct json_object *o, char *out, size_t len)
{
	size_t used = 0;
	int n;

	out[0] = 0;
	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	json_object_object_foreach(o, key, val) {
		const char *v = json_object_is_type(val, json_type_string) ?
				json_object_get_string(val) : NULL;

		if (!v || !repo_stamp_ok(key, strlen(key), v, strlen(v)))
			return -EBADMSG;
		n = snprintf(out + used, len - used, "%s\t%s\n", key, v);
		if (n < 0 || (size_t)n >= len - used)
			return -EBADMSG;
		used += n;
	}
	return 0;
}

static struct json_object *entry_json(const struct repo_entry *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_uint64(e->id));
	json_object_object_add(o, "type", json_object_new_string(repo_type_name(e->type)));
	json_object_object_add(o, "state", json_object_new_string(repo_state_name(e->state)));
	json_object_object_add(o, "file", json_object_new_string(e->file));
	json_object_object_add(o, "delta", json_object_new_string(e->delta));
	if (e->has_delta_sum)
		json_object_object_add(o, "delta_xxh3", sum_json(e->delta_sum));
	if (e->has_hashes_sum)
		json_object_object_add(o, "hashes_xxh3", sum_json(e->hashes_sum));
	json_object_object_add(o, "parent", json_object_new_uint64(e->parent));
	json_object_object_add(o, "from", e->has_from ? stamp_json(&e->from) : NULL);
	json_object_object_add(o, "to", stamp_json(&e->to));
	json_object_object_add(o, "time", json_object_new_int64(e->time));
	json_object_object_add(o, "changed_bytes", json_object_new_uint64(e->changed_bytes));
	json_object_object_add(o, "stored_bytes", json_object_new_uint64(e->stored_bytes));
	if (e->path[0])
		json_object_object_add(o, "source_file", json_object_new_string(e->path));
	if (e->writer_stamps[0])
		json_object_object_add(o, "writer_stamps", repo_stamps_json(e->writer_stamps));
	if (e->set)
		json_object_object_add(o, "set", json_object_new_uint64(e->set));
	return o;
}

/*
 * One backup a line (grep and diff read it well; catalog_load() reads any
 * JSON layout): json-c serializes each entry on its own, freed at once.
 * Rewritten twice per backup: ~9 us an entry for both, ~90 ms at 10^4
 * backups (doc/BENCHMARKS.md, "Growth").
 */
static int catalog_save(struct repo *r)
{
	char *text = NULL, *p;
	size_t len = 0, i;
	bool nomem = false;
	FILE *f;
	int ret;

	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"next_id\": %" PRIu64
		",\n  \"backups\": [", CATALOG_FORMAT, REPO_CATALOG_VERSION, r->next_id);
	for (i = 0; i < r->n && !nomem; i++) {
		struct json_object *o = entry_json(&r->e[i]);
		const char *line = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED |
									 JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;

		if (line)
			fprintf(f, "%s\n    %s", i ? "," : "", line);
		nomem = !line;
		json_object_put(o);
	}
	fprintf(f, "\n  ],\n");
	for (i = 0; i < r->ntrash && !nomem; i++) {
		struct json_object *o = json_object_new_string(r->trash[i]);
		const char *q = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE) :
			       NULL;

		if (q)
			fprintf(f, "%s%s", i ? ", " : "  \"trash\": [", q);
		nomem = !q;
		json_object_put(o);
	}
	if (r->ntrash)
		fprintf(f, "],\n");
	if (fclose(f) || nomem) {
		ret = -ENOMEM;
		goto out_free;
	}
	p = realloc(text, len + SUM_LEN + 1);
	if (!p) {
		ret = -ENOMEM;
		goto out_free;
	}
	text = p;
	len += snprintf(text + len, SUM_LEN + 1, SUM_KEY "%016llx" SUM_TAIL,
			(unsigned long long)XXH3_64bits(text, len));
	if (len > CATALOG_MAX_BYTES)
		ret = repo_set_error(r, -EFBIG,
				     "%s/" CATALOG ": %zu backups would take %zu bytes, more than"
				     " the %u MiB a catalog may have", r->path, r->n, len,
				     CATALOG_MAX_BYTES >> 20);
	else
		ret = write_atomic(r, ".", CATALOG, text, len);
out_free:
	free(text);
	return ret;
}

static int get_u64(struct json_object *o, const char *key, uint64_t *v)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_int))
		return -EBADMSG;
	errno = 0;
	*v = json_object_get_uint64(x);
	if (errno || (json_object_get_int64(x) < 0 && *v < INT64_MAX))
		return -EBADMSG;
	return 0;
}

static int get_str(struct json_object *o, const char *key, char *out, size_t len)
{
	struct json_object *x;
	const char *s;

	if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(x);
	if (strlen(s) >= len)
		return -EBADMSG;
	strcpy(out, s);
	return 0;
}

static int stamp_parse(struct json_object *o, struct repo_stamp *s)
{
	char g[40];
	uint64_t bs;

	if (!json_object_is_type(o, json_type_object) ||
	    get_str(o, "volume_id", s->volume_id, sizeof(s->volume_id)) ||
	    get_str(o, "generation", g, sizeof(g)) || uuid_parse(g, s->generation) ||
	    get_u64(o, "epoch", &s->epoch) || get_u64(o, "size", &s->size) ||
	    get_u64(o, "block_size", &bs) || !bs || bs > UINT32_MAX)
		return -EBADMSG;
	s->block_size = bs;
	return 0;
}

/* A file name the catalog may hold: "DIR/NAME", no "..", no other slash. */
static bool name_ok(const char *name, const char *dir)
{
	size_t l = strlen(dir);

	return !strncmp(name, dir, l) && name[l] == '/' && name[l + 1] &&
	       name[l + 1] != '.' && !strchr(name + l + 1, '/');
}

/* An optional "KEY": "16 lowercase hex digits". */
static int sum_parse(struct json_object *o, const char *key, bool *has, uint64_t *sum)
{
	char h[17], *end;

	*has = json_object_object_get_ex(o, key, NULL);
	if (!*has)
		return 0;
	if (get_str(o, key, h, sizeof(h)) || strlen(h) != 16 || strspn(h, "0123456789abcdef") != 16)
		return -EBADMSG;
	*sum = strtoull(h, &end, 16);
	return 0;
}

static int entry_parse(struct json_object *o, struct repo_entry *e)
{
	struct json_object *x;
	char s[32];
	int64_t t;

	memset(e, 0, sizeof(*e));
	if (!json_object_is_type(o, json_type_object) ||
	    get_u64(o, "id", &e->id) || !e->id ||
	    get_str(o, "type", s, sizeof(s)) || repo_type_parse(s, &e->type) ||
	    get_str(o, "state", s, sizeof(s)) ||
	    get_str(o, "file", e->file, sizeof(e->file)) || !name_ok(e->file, BACKUPS_DIR) ||
	    get_str(o, "delta", e->delta, sizeof(e->delta)) || !name_ok(e->delta, DELTAS_DIR) ||
	    get_u64(o, "parent", &e->parent) ||
	    !json_object_object_get_ex(o, "to", &x) || stamp_parse(x, &e->to) ||
	    get_u64(o, "changed_bytes", &e->changed_bytes) ||
	    get_u64(o, "stored_bytes", &e->stored_bytes) ||
	    !json_object_object_get_ex(o, "time", &x) || !json_object_is_type(x, json_type_int))
		return -EBADMSG;
	t = json_object_get_int64(x);
	e->time = t;
	if (!strcmp(s, "pending"))
		e->state = REPO_PENDING;
	else if (!strcmp(s, "committed"))
		e->state = REPO_COMMITTED;
	else
		return -EBADMSG;
	if (!json_object_object_get_ex(o, "from", &x))
		return -EBADMSG;
	e->has_from = x != NULL;
	if (x && stamp_parse(x, &e->from))
		return -EBADMSG;
	if (sum_parse(o, "delta_xxh3", &e->has_delta_sum, &e->delta_sum) ||
	    sum_parse(o, "hashes_xxh3", &e->has_hashes_sum, &e->hashes_sum))
		return -EBADMSG;
	/* A per-file backup's file (doc/FILES.md): absolute, never empty. */
	if (json_object_object_get_ex(o, "source_file", NULL) &&
	    (get_str(o, "source_file", e->path, sizeof(e->path)) || e->path[0] != '/'))
		return -EBADMSG;
	if (json_object_object_get_ex(o, "writer_stamps", &x) &&
	    stamps_parse(x, e->writer_stamps, sizeof(e->writer_stamps)))
		return -EBADMSG;
	/* A set's first member has the lowest id: never a later one's. */
	if (json_object_object_get_ex(o, "set", NULL) &&
	    (get_u64(o, "set", &e->set) || !e->set || e->set > e->id))
		return -EBADMSG;
	return 0;
}

/*
 * The names the catalog holds (backup files, deltas, block hashes), sorted:
 * two entries that name one file would delete each other's (the load
 * refuses them in O(n log n)).
 */
struct name_table {
	const char **v;
	size_t n;
	char (*hashes)[HASHES_NAME_MAX];
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int name_table_build(const struct repo *r, struct name_table *t)
{
	size_t i;

	t->n = 0;
	t->v = malloc((3 * r->n + 1) * sizeof(*t->v));
	t->hashes = malloc((r->n + 1) * sizeof(*t->hashes));
	if (!t->v || !t->hashes) {
		free(t->v);
		free(t->hashes);
		return -ENOMEM;
	}
	for (i = 0; i < r->n; i++) {
		hashes_name(r->e[i].id, t->hashes[i]);
		t->v[t->n++] = r->e[i].file;
		t->v[t->n++] = r->e[i].delta;
		t->v[t->n++] = t->hashes[i];
	}
	qsort(t->v, t->n, sizeof(*t->v), cmp_name);
	return 0;
}

static void name_table_free(struct name_table *t)
{
	free(t->v);
	free(t->hashes);
}

void repo_catalog_seal(char *text, size_t len)
{
	char hex[17];

	if (len < SUM_LEN || strncmp(text + len - SUM_LEN, SUM_KEY, sizeof(SUM_KEY) - 1))
		return;
	snprintf(hex, sizeof(hex), "%016llx",
		 (unsigned long long)XXH3_64bits(text, len - SUM_LEN));
	memcpy(text + len - SUM_LEN + sizeof(SUM_KEY) - 1, hex, 16);
}

/* Two entries naming one file: -EBADMSG. */
static int catalog_check_names(struct repo *r)
{
	struct name_table t;
	size_t i;
	int ret = name_table_build(r, &t);

	if (ret)
		return ret;
	for (i = 1; i < t.n && strcmp(t.v[i - 1], t.v[i]); i++)
		;
	if (i < t.n)
		ret = repo_set_error(r, -EBADMSG, "%s/" CATALOG ": two backups name %s",
				     r->path, t.v[i]);
	name_table_free(&t);
	return ret;
}

/*
 * Version 2's checksum, before anything is parsed: *@has tells whether the
 * text ends with a checksum line; -EBADMSG when it does and the sum differs.
 */
static int catalog_check_sum(struct repo *r, const char *text, size_t len, bool *has)
{
	const char *line, *hex;
	uint64_t want = 0;
	int i, v = 0;

	*has = false;
	if (len < SUM_LEN)
		return 0;
	line = text + len - SUM_LEN;
	hex = line + sizeof(SUM_KEY) - 1;
	*has = !strncmp(line, SUM_KEY, sizeof(SUM_KEY) - 1) &&
	       !strcmp(hex + 16, SUM_TAIL);
	if (!*has)
		return 0;
	for (i = 0; i < 16 && v >= 0; i++) {
		v = hex[i] >= 'A' && hex[i] <= 'F' ? -1 : hexval(hex[i]);
		want = want << 4 | (v & 15);
	}
	if (v >= 0 && want == XXH3_64bits(text, line - text))
		return 0;
	return repo_set_error(r, -EBADMSG, "%s/" CATALOG ": checksum mismatch: the "
			      "catalog is damaged; nothing was changed (put back a copy, "
			      "or rebuild it: 'blktrack check --repo %s --rebuild')",
			      r->path, r->path);
}

static int trash_add(struct repo *r, const char *name)
{
	void *nv = realloc(r->trash, (r->ntrash + 1) * sizeof(*r->trash));

	if (!nv)
		return -ENOMEM;
	r->trash = nv;
	snprintf(r->trash[r->ntrash++], REPO_NAME_MAX, "%s", name);
	return 0;
}

/* The optional "trash" list: names inside the repository's three directories. */
static int trash_parse(struct repo *r, struct json_object *root)
{
	struct json_object *arr, *x;
	size_t i;

	if (!json_object_object_get_ex(root, "trash", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		goto bad;
	for (i = 0; i < json_object_array_length(arr); i++) {
		const char *name;

		x = json_object_array_get_idx(arr, i);
		name = json_object_is_type(x, json_type_string) ? json_object_get_string(x) : NULL;
		if (!name || strlen(name) >= REPO_NAME_MAX ||
		    !(name_ok(name, BACKUPS_DIR) || name_ok(name, DELTAS_DIR) ||
		      name_ok(name, HASHES_DIR)))
			goto bad;
		if (trash_add(r, name))
			return -ENOMEM;
	}
	return 0;
bad:
	return repo_set_error(r, -EBADMSG, "%s/" CATALOG ": malformed trash list", r->path);
}

static int catalog_load(struct repo *r)
{
	struct json_object *root, *arr, *x;
	size_t len, i, n;
	uint64_t version;
	bool has_sum;
	char fmt[32];
	char *text;
	int ret;

	ret = read_file(r, CATALOG, CATALOG_MAX_BYTES, &text, &len);
	if (ret)
		return ret;
	ret = catalog_check_sum(r, text, len, &has_sum);
	root = ret ? NULL : json_tokener_parse(text);
	free(text);
	if (ret)
		return ret;
	if (!root || !json_object_is_type(root, json_type_object) ||
	    get_str(root, "format", fmt, sizeof(fmt)) || strcmp(fmt, CATALOG_FORMAT) ||
	    get_u64(root, "version", &version)) {
		ret = repo_set_error(r, -EBADMSG, "%s/" CATALOG ": not a blktrack catalog",
				     r->path);
		goto out_put;
	}
	/* Version 1 has no checksum: read, and written as 2 at the next update. */
	if (version != REPO_CATALOG_VERSION && version != 1) {
		ret = repo_set_error(r, -EPROTONOSUPPORT,
				     "%s/" CATALOG ": version %" PRIu64 ", this blktrack reads 1 and %d",
				     r->path, version, REPO_CATALOG_VERSION);
		goto out_put;
	}
	if (version == REPO_CATALOG_VERSION && !has_sum) {
		ret = repo_set_error(r, -EBADMSG, "%s/" CATALOG ": its checksum line is missing "
				     "or damaged; nothing was changed (put back a copy, or "
				     "rebuild it: 'blktrack check --repo %s --rebuild')",
				     r->path, r->path);
		goto out_put;
	}
	if (get_u64(root, "next_id", &r->next_id) ||
	    !json_object_object_get_ex(root, "backups", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		ret = repo_set_error(r, -EBADMSG, "%s/" CATALOG ": malformed", r->path);
		goto out_put;
	}
	n = json_object_array_length(arr);
	r->e = calloc(n ? n : 1, sizeof(*r->e));
	if (!r->e) {
		ret = -ENOMEM;
		goto out_put;
	}
	r->cap = n ? n : 1;
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(arr, i);
		if (entry_parse(x, &r->e[i]) ||
		    (i && r->e[i].id <= r->e[i - 1].id) || r->e[i].id >= r->next_id) {
			ret = repo_set_error(r, -EBADMSG,
					     "%s/" CATALOG ": backup #%zu is malformed",
					     r->path, i + 1);
			goto out_put;
		}
		r->n++;
	}
	ret = catalog_check_names(r);
	if (!ret)
		ret = trash_parse(r, root);
out_put:
	json_object_put(root);
	return ret;
}

/* ---- open and close ----------------------------------------------------- */

/*
 * Whether directory @sub holds a name not in @allowed (NULL-terminated):
 * 1 or 0, -1 when it cannot be listed.
 */
static int dir_used(struct repo *r, const char *sub, const char *const *allowed)
{
	struct names l;
	int used = 0;
	size_t i, k;

	if (list_names(r, sub, &l))
		return -1;
	for (k = 0; !used && k < l.n; k++) {
		for (i = 0; allowed[i] && strcmp(l.v[k], allowed[i]); i++)
			;
		used = !allowed[i];
	}
	free(l.v);
	return used;
}

static const char *const dots[] = { ".", "..", NULL };

/* Backup files, deltas or hashes: what a repository that lost its catalog holds. */
static bool holds_backups(struct repo *r)
{
	return dir_used(r, BACKUPS_DIR, dots) > 0 || dir_used(r, DELTAS_DIR, dots) > 0 ||
	       dir_used(r, HASHES_DIR, dots) > 0;
}

/*
 * There is no catalog. Creating one here and recovering would delete every
 * backup file it does not name: refuse, and say what to do.
 */
static int no_catalog(struct repo *r)
{
	if (holds_backups(r))
		return repo_set_error(r, -EUCLEAN,
				      "%s holds backup files but no catalog (deleted, or moved "
				      "to lost+found by fsck?); nothing was changed. Rebuild the "
				      "catalog from them with 'blktrack check --repo %s --rebuild' "
				      "(or put it back from a copy); to start a new repository, "
				      "move these files away and run 'blktrack init --repo %s'",
				      r->path, r->path, r->path);
	return repo_set_error(r, -ENOENT, "%s is not a blktrack repository (is a "
			      "filesystem missing there? create one with 'blktrack init "
			      "--repo %s')", r->path, r->path);
}

/* An encrypted repository's layer over its store (store_crypt.c), or none. */
static int crypt_attach(struct repo *r, bool create)
{
	int ret = store_crypt_attach(&r->ops, &r->s, create);

	if (ret == -ENOKEY)
		return repo_set_error(r, ret, "%s %s: give its key in BLKTRACK_KEY_FILE (32 "
				      "bytes, or 64 hex digits) or BLKTRACK_PASSPHRASE_FILE",
				      r->path, create ? "is to be encrypted" : "is encrypted");
	if (ret == -EKEYREVOKED)
		return repo_set_error(r, ret, "%s is not encrypted, but a key was given: refused "
				      "(a store that lost its keycheck reads so); without "
				      "BLKTRACK_KEY_FILE and BLKTRACK_PASSPHRASE_FILE it opens as "
				      "it is", r->path);
	if (ret == -EKEYREJECTED)
		return repo_set_error(r, ret, "%s: not this repository's key (its keycheck "
				      "does not open with it); nothing was read or written",
				      r->path);
	if (ret)
		return repo_set_error(r, ret, "%s/keycheck: %s", r->path, strerror(-ret));
	return 0;
}

/* The writer's lock; r->wait seconds at most for another to let go. */
static int repo_lock(struct repo *r, bool create)
{
	int ret = r->ops->lock(r->s, create, r->wait == REPO_WAIT_FOREVER ? UINT_MAX : r->wait);

	if (ret == -ENOENT)
		return no_catalog(r);
	if (ret == -ELOOP)
		return repo_open_error(r, LOCK_FILE, ret);
	if (ret == -EBUSY)
		return repo_set_error(r, -EBUSY, "%s: in use by another blktrack%s", r->path,
				      r->wait ? " (waited in vain)" : " (--wait waits for it)");
	if (ret)
		return repo_set_error(r, ret, "%s/" LOCK_FILE ": %s", r->path, strerror(-ret));
	return 0;
}

/*
 * The repository directory must be ours and closed to others: whoever can
 * write into it can plant or replace any file we read or write. Its
 * subdirectories must be directories, not links out of it.
 */
static int repo_check_dir(struct repo *r)
{
	char why[200];
	int ret = r->ops->check(r->s, why, sizeof(why));

	if (ret == -EPERM && strstr(why, "writable"))
		return repo_set_error(r, ret, "%s %s (chmod go-w %s)", r->path, why, r->path);
	if (ret == -EPERM)
		return repo_set_error(r, ret, "%s %s", r->path, why);
	if (ret == -ELOOP)
		return repo_set_error(r, ret, "%s/%s is not a directory (a symbolic link?): "
				      "refused", r->path, why);
	if (ret)
		return repo_set_error(r, ret, "%s: %s", r->path, strerror(-ret));
	return 0;
}

/*
 * blktrack init: a new repository in an empty directory, or one that only
 * holds what an interrupted init left (the lock, empty subdirectories) or
 * the lost+found of a new filesystem. The catalog comes last: it makes the
 * directory a repository.
 */
static int repo_init(struct repo *r, bool encrypt)
{
	static const char *const layout[] = {
		".", "..", LOCK_FILE, CATALOG_TMP, BACKUPS_DIR, DELTAS_DIR, HASHES_DIR,
		"lost+found", "keycheck", NULL,
	};
	static const char *const dirs[] = { BACKUPS_DIR, DELTAS_DIR, HASHES_DIR };
	unsigned int i;
	int ret;

	if (file_exists(r, CATALOG))
		return repo_set_error(r, -EEXIST, "%s is already a blktrack repository",
				      r->path);
	if (holds_backups(r))
		return no_catalog(r);
	if (dir_used(r, ".", layout) || dir_used(r, "lost+found", dots) > 0)
		return repo_set_error(r, -ENOTEMPTY, "%s is not empty: a repository is "
				      "created in a missing or empty directory", r->path);
	ret = repo_lock(r, true);
	if (ret)
		return ret;
	if (file_exists(r, CATALOG))	/* another init won the race */
		return repo_set_error(r, -EEXIST, "%s is already a blktrack repository",
				      r->path);
	for (i = 0; i < 3; i++) {
		ret = r->ops->mkdir(r->s, dirs[i]);
		if (ret)
			return repo_set_error(r, ret, "%s/%s: %s", r->path, dirs[i],
					      strerror(-ret));
	}
	ret = crypt_attach(r, encrypt);
	if (ret)
		return ret;
	r->next_id = 1;
	return catalog_save(r);
}

int repo_open(const char *path, unsigned int flags, struct repo **out)
{
	return repo_open_wait(path, flags, 0, out);
}

int repo_open_wait(const char *path, unsigned int flags, unsigned int wait,
		   struct repo **out)
{
	struct repo *r = calloc(1, sizeof(*r));
	int ret;

	*out = r;
	if (!r)
		return -ENOMEM;
	r->ops = store_of(path);
	r->rdonly = flags & REPO_RDONLY;
	r->wait = wait;
	r->path = strdup(path);
	if (!r->path)
		return -ENOMEM;
	if ((flags & REPO_CREATE) && r->rdonly)
		return repo_set_error(r, -EINVAL, "a read-only repository cannot be created");
	ret = r->ops->open(path, flags & REPO_CREATE, &r->s);
	if (ret == -ENOENT && !(flags & REPO_CREATE))
		return no_catalog(r);
	if (ret)
		return store_open_error(r, ret);
	ret = repo_check_dir(r);
	if (!ret && !(flags & REPO_CREATE))
		ret = crypt_attach(r, false);
	if (ret)
		return ret;
	if (flags & REPO_CREATE)
		ret = repo_init(r, flags & REPO_ENCRYPT);
	else if (!file_exists(r, CATALOG))
		ret = no_catalog(r);	/* before the lock: create nothing here */
	else if (!r->rdonly)
		ret = repo_lock(r, true);
	else
		ret = 0;		/* readers: the catalog is replaced atomically */
	if (ret)
		return ret;
	r->err[0] = '\0';
	ret = catalog_load(r);
	if (ret)
		return ret;
	r->err[0] = '\0';
	return 0;
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	if (r->ops)
		r->ops->close(r->s);	/* releases the lock */
	free(r->e);
	free(r->trash);
	free(r->path);
	free(r);
}

/* ---- lookups ------------------------------------------------------------ */

size_t repo_count(const struct repo *r)
{
	return r->n;
}

const struct repo_entry *repo_entry_at(const struct repo *r, size_t i)
{
	return i < r->n ? &r->e[i] : NULL;
}

/*
 * The entries are in increasing id order: catalog_load() refuses any other,
 * repo_begin() appends next_id (above every id), and removals keep the
 * order. So a lookup is a binary search, and a chain of k members in a
 * catalog of n costs O(k log n), not O(k n).
 */
static ssize_t find_index(const struct repo *r, uint64_t id)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->e[mid].id == id)
			return mid;
		if (r->e[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const struct repo_entry *repo_find(const struct repo *r, uint64_t id)
{
	ssize_t i = find_index(r, id);

	return i < 0 ? NULL : &r->e[i];
}

/* The kernel stamp of the checkpoint a backup was taken from. */
static struct repo_stamp ckpt_of(const struct repo_entry *e)
{
	struct repo_stamp s = e->to;

	s.epoch--;
	return s;
}

static bool is_base(enum repo_type want, enum repo_type t)
{
	if (want == REPO_DIFFERENTIAL)
		return t == REPO_FULL;
	return t == REPO_FULL || t == REPO_INCREMENTAL || t == REPO_RESYNC;
}

static ssize_t base_index(const struct repo *r, enum repo_type type,
			  const char *volume_id)
{
	size_t i;

	for (i = r->n; i-- > 0;) {
		const struct repo_entry *e = &r->e[i];

		if (e->state == REPO_COMMITTED && !strcmp(e->to.volume_id, volume_id) &&
		    is_base(type, e->type))
			return i;
	}
	return -1;
}

int repo_base(struct repo *r, enum repo_type type, const char *volume_id,
	      uint64_t *base)
{
	ssize_t i;

	*base = 0;
	if (type == REPO_FULL || type == REPO_COPY)
		return 0;
	i = base_index(r, type, volume_id);
	if (i < 0)
		return repo_set_error(r, -ENOENT,
				      "%s: no committed %s of volume %s to base a %s on",
				      r->path, type == REPO_DIFFERENTIAL ? "full backup" :
				      "full or incremental backup", volume_id,
				      repo_type_name(type));
	*base = r->e[i].id;
	return 0;
}

/* ---- delta maps --------------------------------------------------------- */

/* The last 8 bytes of a delta or hash file: its XXH3-64 of all before. */
static uint64_t trailer_of(const void *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf + len - 8;
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Checked whole (doc/REPOSITORY.md): -EBADMSG when damaged, -ESTALE when a
 * sound file that is not this entry's (the catalog's delta_xxh3 differs).
 */
static int load_delta(struct repo *r, const struct repo_entry *e, struct blockset **out)
{
	size_t len;
	char *buf;
	int ret;

	ret = read_file(r, e->delta, DELTA_MAX_BYTES, &buf, &len);
	if (ret)
		return repo_set_error(r, ret, "%s/%s (delta map of backup %" PRIu64 "): %s",
				      r->path, e->delta, e->id, strerror(-ret));
	ret = blockset_deserialize(buf, len, out);
	if (!ret && e->has_delta_sum && trailer_of(buf, len) != e->delta_sum) {
		blockset_free(*out);
		*out = NULL;
		ret = -ESTALE;
	}
	free(buf);
	if (ret)
		return repo_set_error(r, ret, "%s/%s (delta map of backup %" PRIu64 "): %s",
				      r->path, e->delta, e->id,
				      ret == -EBADMSG ? "corrupt" : ret == -ESTALE ?
				      "not this backup's (the catalog records another "
				      "checksum)" : strerror(-ret));
	return 0;
}

int repo_load_delta(struct repo *r, uint64_t id, struct blockset **out)
{
	const struct repo_entry *e = repo_find(r, id);

	if (!e)
		return repo_set_error(r, -ENOENT, "backup %" PRIu64 " is not in the catalog", id);
	return load_delta(r, e, out);
}

/* ---- composition -------------------------------------------------------- */

/*
 * A delta that cannot be used (corrupt, missing, of another backup) is
 * -EBADMSG, whatever the cause: the requester then resyncs (the hash files
 * do not depend on the deltas) instead of failing every later backup.
 */
static int or_delta(struct repo *r, struct blockset *acc, const struct repo_entry *e)
{
	struct blockset *d;
	int ret = load_delta(r, e, &d);

	if (ret)
		return ret == -ENOMEM ? ret : -EBADMSG;
	blockset_or(acc, d);
	blockset_free(d);
	return 0;
}

static int stale(struct repo *r, const char *what, const struct repo_stamp *want,
		 const struct repo_stamp *got)
{
	char a[37], b[37];

	uuid_text(want->generation, a);
	uuid_text(got->generation, b);
	return repo_set_error(r, -ESTALE,
			      "%s: %s: expected stamp %s:%" PRIu64 " (size %" PRIu64
			      ", block %u), found %s:%" PRIu64 " (size %" PRIu64
			      ", block %u); changes are not tracked across that gap",
			      r->path, what, a, want->epoch, want->size,
			      want->block_size, b, got->epoch, got->size, got->block_size);
}

int repo_compose(struct repo *r, enum repo_type type,
		 const struct repo_stamp *ckpt, const struct blockset *delta,
		 struct blockset **out, uint64_t *base)
{
	const struct repo_entry *gap = NULL;
	struct repo_stamp gap_want, gap_got;
	const struct repo_stamp *prev;
	struct blockset *acc;
	ssize_t bi;
	size_t i;
	int ret;

	*base = 0;
	if (!ckpt->block_size)
		return repo_set_error(r, -EINVAL, "block size 0");
	if (type == REPO_RESYNC)
		return repo_set_error(r, -EINVAL, "a resync's blocks come from hashes, not deltas");
	ret = blockset_new(&acc);
	if (ret)
		return ret;
	if (type == REPO_FULL || type == REPO_COPY) {
		uint64_t nb = ckpt->size / ckpt->block_size +
			      !!(ckpt->size % ckpt->block_size);

		ret = blockset_add_range(acc, 0, nb);
		if (ret) {
			repo_set_error(r, ret, "%" PRIu64 " blocks: more than a block set holds", nb);
			goto out_free;
		}
		*out = acc;
		return 0;
	}
	bi = base_index(r, type, ckpt->volume_id);
	if (bi < 0) {
		ret = repo_base(r, type, ckpt->volume_id, base);
		goto out_free;
	}
	/*
	 * Every committed checkpoint after the base, each following the last;
	 * a resync bridges a gap before it: its set covers everything since
	 * its parent, which is the base or after it.
	 */
	prev = &r->e[bi].to;
	for (i = bi + 1; i < r->n; i++) {
		const struct repo_entry *e = &r->e[i];
		struct repo_stamp c;

		if (e->state != REPO_COMMITTED || strcmp(e->to.volume_id, ckpt->volume_id))
			continue;
		c = ckpt_of(e);
		if (e->type == REPO_RESYNC) {
			gap = NULL;
		} else if (!gap && !stamp_follows(prev, &c)) {
			gap = e;
			gap_want = *prev;
			gap_got = c;
		}
		ret = or_delta(r, acc, e);
		if (ret)
			goto out_free;
		prev = &e->to;
	}
	if (gap) {
		char what[64];

		snprintf(what, sizeof(what), "backup %" PRIu64, gap->id);
		ret = stale(r, what, &gap_want, &gap_got);
		goto out_free;
	}
	if (!stamp_follows(prev, ckpt)) {
		ret = stale(r, "the new checkpoint", prev, ckpt);
		goto out_free;
	}
	blockset_or(acc, delta);
	*base = r->e[bi].id;
	*out = acc;
	return 0;

out_free:
	blockset_free(acc);
	return ret;
}

/* ---- restore chains ----------------------------------------------------- */

int repo_chain(struct repo *r, uint64_t id, uint64_t **ids, size_t *n)
{
	const struct repo_entry *e = repo_find(r, id), *p;
	uint64_t *v = NULL, t;
	size_t k = 0, i;
	int ret;

	if (!e)
		return repo_set_error(r, -ENOENT, "backup %" PRIu64 " is not in the catalog", id);
	for (;;) {
		uint64_t *nv = realloc(v, (k + 1) * sizeof(*v));

		if (!nv) {
			ret = -ENOMEM;
			goto out_free;
		}
		v = nv;
		if (e->state != REPO_COMMITTED) {
			ret = repo_set_error(r, -EINPROGRESS,
					     "backup %" PRIu64 " (%s/%s) was never committed",
					     e->id, r->path, e->file);
			goto out_free;
		}
		if (!file_exists(r, e->file)) {
			ret = repo_set_error(r, -ENOENT, "backup %" PRIu64 ": %s/%s is missing",
					     e->id, r->path, e->file);
			goto out_free;
		}
		v[k++] = e->id;
		if (e->type == REPO_FULL || e->type == REPO_COPY)
			break;
		p = repo_find(r, e->parent);
		if (!p) {
			ret = repo_set_error(r, -ENOENT,
					     "backup %" PRIu64 ": its parent %" PRIu64
					     " is not in the catalog", e->id, e->parent);
			goto out_free;
		}
		if (p->id >= e->id || strcmp(p->to.volume_id, e->to.volume_id) ||
		    (e->type == REPO_DIFFERENTIAL ? p->type != REPO_FULL :
		     !is_base(REPO_INCREMENTAL, p->type))) {
			ret = repo_set_error(r, -ENOLINK,
					     "backup %" PRIu64 " (%s): parent %" PRIu64
					     " (%s of volume %s) cannot be its base",
					     e->id, repo_type_name(e->type), p->id,
					     repo_type_name(p->type), p->to.volume_id);
			goto out_free;
		}
		if (!e->has_from || !repo_stamp_equal(&e->from, &p->to)) {
			char what[64];

			snprintf(what, sizeof(what), "backup %" PRIu64 " after %" PRIu64,
				 e->id, p->id);
			ret = e->has_from ? stale(r, what, &p->to, &e->from) :
			      repo_set_error(r, -ESTALE, "backup %" PRIu64 " has no from stamp",
					     e->id);
			goto out_free;
		}
		e = p;
	}
	for (i = 0; i < k / 2; i++) {
		t = v[i];
		v[i] = v[k - 1 - i];
		v[k - 1 - i] = t;
	}
	*ids = v;
	*n = k;
	return 0;

out_free:
	free(v);
	return ret;
}

/* ---- the two-phase protocol --------------------------------------------- */

static int need_rw(struct repo *r)
{
	if (r->rdonly)
		return repo_set_error(r, -EROFS, "%s: opened read-only", r->path);
	return 0;
}

static int pending_index(struct repo *r, uint64_t id, ssize_t *idx)
{
	ssize_t i = find_index(r, id);

	if (i < 0)
		return repo_set_error(r, -ENOENT, "backup %" PRIu64 " is not in the catalog", id);
	if (r->e[i].state != REPO_PENDING)
		return repo_set_error(r, -EINVAL, "backup %" PRIu64 " is not pending", id);
	*idx = i;
	return 0;
}

/* need_rw() and pending_index(): the pending backup @id of a writable repository. */
static int writable_pending(struct repo *r, uint64_t id, ssize_t *i)
{
	int ret = need_rw(r);

	return ret ? ret : pending_index(r, id, i);
}

/* Room for one more entry. */
static int entries_grow(struct repo *r)
{
	size_t cap = r->cap ? 2 * r->cap : 8;
	struct repo_entry *ng;

	if (r->n < r->cap)
		return 0;
	ng = realloc(r->e, cap * sizeof(*ng));
	if (!ng)
		return -ENOMEM;
	r->e = ng;
	r->cap = cap;
	return 0;
}

/*
 * (a) of repo_begin() and repo_import_begin(): @ne (id and names set) as a
 * pending entry at index @at, after its delta file; both durable.
 */
static int pending_enter(struct repo *r, struct repo_entry *ne, const struct blockset *delta,
			 size_t at)
{
	void *buf;
	size_t len, i;
	int ret;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->e[i].delta, ne->delta))
			return repo_set_error(r, -EUCLEAN,
					      "%s/%s: already the delta map of backup %" PRIu64
					      ": is the catalog damaged? Nothing was changed",
					      r->path, ne->delta, r->e[i].id);
	if (file_exists(r, ne->file) || file_exists(r, ne->delta))
		return repo_set_error(r, -EUCLEAN, "%s/%s exists, but the catalog has no backup "
				      "%" PRIu64 ": is the catalog an older copy? Nothing "
				      "was changed", r->path, file_exists(r, ne->file) ?
				      ne->file : ne->delta, ne->id);
	ret = entries_grow(r);
	if (ret)
		return ret;
	ne->state = REPO_PENDING;
	ret = blockset_serialize(delta, &buf, &len);
	if (ret)
		return ret;
	ne->has_delta_sum = true;
	ne->delta_sum = trailer_of(buf, len);
	ret = write_atomic(r, DELTAS_DIR, ne->delta, buf, len);
	free(buf);
	if (ret)
		return ret;
	memmove(&r->e[at + 1], &r->e[at], (r->n - at) * sizeof(*r->e));
	r->e[at] = *ne;
	r->n++;
	ret = catalog_save(r);
	if (ret) {
		memmove(&r->e[at], &r->e[at + 1], (--r->n - at) * sizeof(*r->e));
		remove_file(r, ne->delta);
	}
	return ret;
}

int repo_begin(struct repo *r, const struct repo_entry *e,
	       const struct blockset *delta, uint64_t *id)
{
	struct repo_entry ne = *e;
	size_t i;
	int ret;

	ret = need_rw(r);
	if (ret)
		return ret;
	if (!e->to.epoch || !e->to.block_size || (unsigned int)e->type > REPO_RESYNC)
		return repo_set_error(r, -EINVAL, "invalid backup entry");
	for (i = 0; i < r->n; i++)
		if (r->e[i].state == REPO_PENDING &&
		    !strcmp(r->e[i].to.volume_id, e->to.volume_id))
			return repo_set_error(r, -EBUSY,
					      "backup %" PRIu64 " of volume %s is still pending",
					      r->e[i].id, e->to.volume_id);
	ne.id = r->next_id;
	ne.set = 0;
	backup_name(ne.id, ne.file);
	repo_delta_name(ne.id, ne.delta);
	if (!ne.time)
		ne.time = time(NULL);
	if (!ne.changed_bytes)
		ne.changed_bytes = blockset_cardinality(delta) * ne.to.block_size;
	ne.has_hashes_sum = false;
	r->next_id++;
	ret = pending_enter(r, &ne, delta, r->n);
	if (ret) {
		r->next_id--;
		return ret;
	}
	*id = ne.id;
	return 0;
}

int repo_import_begin(struct repo *r, const struct repo_entry *e,
		      const struct blockset *delta)
{
	struct repo_entry ne = *e;
	uint64_t next = r->next_id;
	size_t at;
	int ret = need_rw(r);

	if (ret)
		return ret;
	if (!e->id || e->state != REPO_COMMITTED || !e->to.epoch || !e->to.block_size ||
	    (unsigned int)e->type > REPO_RESYNC)
		return repo_set_error(r, -EINVAL, "invalid backup entry to copy");
	if (repo_find(r, e->id))
		return repo_set_error(r, -EEXIST, "%s: backup %" PRIu64 " is in the catalog "
				      "already", r->path, e->id);
	for (at = r->n; at > 0 && r->e[at - 1].id > e->id; at--)
		;
	backup_name(ne.id, ne.file);
	repo_delta_name(ne.id, ne.delta);
	if (r->next_id <= ne.id)
		r->next_id = ne.id + 1;	/* the catalog's ids are below it */
	ret = pending_enter(r, &ne, delta, at);
	if (ret)
		r->next_id = next;
	return ret;
}

/* ---- files: read, or written as NAME.tmp until installed ---------------- */

ssize_t repo_file_read(void *file, void *buf, size_t len)
{
	struct repo_file *f = file;

	return f->ops->file_read(f, buf, len);
}

int repo_file_write(void *file, const void *buf, size_t len)
{
	struct repo_file *f = file;

	return f->ops->file_write(f, buf, len);
}

ssize_t repo_file_pread(struct repo_file *f, void *buf, size_t len, uint64_t off)
{
	return f->ops->file_pread(f, buf, len, off);
}

int repo_file_follow(struct repo_file *f, struct repo_file **reader)
{
	return f->ops->file_follow(f, reader);
}

void repo_file_close(struct repo_file *f)
{
	if (f)
		f->ops->file_close(f);
}

/* @name, created as @name.tmp. */
static int tmp_create(struct repo *r, const char *name, struct repo_file **f)
{
	char tmp[REPO_NAME_MAX + 8];
	int ret = r->ops->create_file(r->s, name, f);

	if (ret) {
		snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, name);
		return repo_open_error(r, tmp, ret);
	}
	return 0;
}

/* @name.tmp durable and renamed to @name in @dir; @f is gone either way. */
static int tmp_install(struct repo *r, const char *dir, const char *name, struct repo_file *f)
{
	int ret = r->ops->install_file(r->s, dir, name, f);

	if (ret)
		return repo_set_error(r, ret, "%s/%s: %s", r->path, name, strerror(-ret));
	return 0;
}

/* The file @name of the pending backup @id, created as @name.tmp. */
static int create_file(struct repo *r, uint64_t id, const char *name, struct repo_file **f)
{
	ssize_t i;
	int ret = writable_pending(r, id, &i);

	*f = NULL;
	return ret ? ret : tmp_create(r, name, f);
}

/* Durable, renamed from @name.tmp to @name in @dir; @f is gone either way. */
static int install_file(struct repo *r, uint64_t id, const char *dir, const char *name,
			struct repo_file *f)
{
	ssize_t i;
	int ret = pending_index(r, id, &i);

	if (ret) {
		repo_file_close(f);
		return ret;
	}
	return tmp_install(r, dir, name, f);
}

int repo_backup_create(struct repo *r, uint64_t id, struct repo_file **f)
{
	const struct repo_entry *e = repo_find(r, id);

	return create_file(r, id, e ? e->file : "", f);
}

int repo_backup_install(struct repo *r, uint64_t id, struct repo_file *f)
{
	const struct repo_entry *e = repo_find(r, id);

	return install_file(r, id, BACKUPS_DIR, e ? e->file : "", f);
}

int repo_hashes_create(struct repo *r, uint64_t id, struct repo_file **f)
{
	char name[REPO_NAME_MAX];

	repo_hashes_name(id, name);
	return create_file(r, id, name, f);
}

int repo_hashes_install(struct repo *r, uint64_t id, struct repo_file *f)
{
	char name[REPO_NAME_MAX];
	ssize_t i = find_index(r, id);
	uint64_t sum = 0;
	bool has;
	int ret;

	repo_hashes_name(id, name);
	has = !r->ops->trailer(f, &sum);
	ret = install_file(r, id, HASHES_DIR, name, f);	/* pending: i is valid */
	if (ret)
		return ret;
	/* Saved with the entry at its commit. */
	r->e[i].has_hashes_sum = has;
	r->e[i].hashes_sum = sum;
	return 0;
}

int repo_hashes_open(struct repo *r, uint64_t id, struct repo_file **f)
{
	const struct repo_entry *e = repo_find(r, id);
	char name[REPO_NAME_MAX];
	uint64_t sum;
	int ret;

	repo_hashes_name(id, name);
	ret = r->ops->open_file(r->s, name, f);
	if (ret)
		return repo_open_error(r, name, ret);
	ret = e && e->has_hashes_sum ? r->ops->trailer(*f, &sum) : 0;
	if (!ret && e && e->has_hashes_sum && sum != e->hashes_sum)
		ret = -ESTALE;
	if (ret) {
		repo_file_close(*f);
		*f = NULL;
		return repo_set_error(r, ret == -ESTALE ? ret : -EBADMSG,
				      "%s/%s (block hashes of backup %" PRIu64 "): %s", r->path,
				      name, id, ret == -ESTALE ? "not this backup's (the catalog "
				      "records another checksum)" : "corrupt");
	}
	return 0;
}

int repo_file_open(struct repo *r, const char *name, struct repo_file **f)
{
	int ret = r->ops->open_file(r->s, name, f);

	return ret ? repo_open_error(r, name, ret) : 0;
}

int repo_set_delta(struct repo *r, uint64_t id, const struct blockset *delta)
{
	void *buf;
	size_t len;
	ssize_t i;
	int ret = writable_pending(r, id, &i);

	if (ret)
		return ret;
	ret = blockset_serialize(delta, &buf, &len);
	if (ret)
		return ret;
	ret = write_atomic(r, DELTAS_DIR, r->e[i].delta, buf, len);
	if (!ret) {
		/* Saved with the entry at its commit (its state is pending now). */
		r->e[i].has_delta_sum = true;
		r->e[i].delta_sum = trailer_of(buf, len);
		r->e[i].changed_bytes = blockset_cardinality(delta) * r->e[i].to.block_size;
	}
	free(buf);
	return ret;
}

/*
 * Remove the block hashes of the entries before @i of its volume. hashes/
 * holds one file per volume (two while a base commits, more after a crash
 * between a commit and this), so it is listed rather than every older
 * entry's name tried: one unlinkat() per backup in the catalog made each
 * commit O(n) system calls.
 */
static void drop_older_hashes(struct repo *r, size_t i)
{
	const char *vol = r->e[i].to.volume_id;
	char name[HASHES_NAME_MAX];
	struct names l;
	size_t k;

	if (list_names(r, HASHES_DIR, &l)) {
		for (k = 0; k < i; k++) {
			if (strcmp(r->e[k].to.volume_id, vol))
				continue;
			hashes_name(r->e[k].id, name);
			remove_file(r, name);
		}
		return;
	}
	for (k = 0; k < l.n; k++) {
		const char *d = l.v[k];
		char *end;
		uint64_t id;
		ssize_t e;

		if (d[0] < '1' || d[0] > '9')
			continue;
		errno = 0;
		id = strtoull(d, &end, 10);
		if (errno || strcmp(end, ".bh"))
			continue;
		e = find_index(r, id);
		if (e >= 0 && (size_t)e < i && !strcmp(r->e[e].to.volume_id, vol)) {
			hashes_name(id, name);
			remove_file(r, name);
		}
	}
	free(l.v);
}

int repo_set_writer_stamps(struct repo *r, uint64_t id, const char *stamps)
{
	ssize_t i;
	int ret = writable_pending(r, id, &i);

	if (ret)
		return ret;
	if (strlen(stamps) >= sizeof(r->e[i].writer_stamps))
		return repo_set_error(r, -E2BIG, "backup %" PRIu64 ": the writers' stamps "
				      "take %zu bytes, more than %d", id, strlen(stamps),
				      REPO_WRITER_STAMPS_MAX - 1);
	strcpy(r->e[i].writer_stamps, stamps);
	return 0;
}

int repo_commit(struct repo *r, uint64_t id, uint64_t stored_bytes)
{
	return repo_commit_set(r, &id, &stored_bytes, 1);
}

int repo_commit_set(struct repo *r, const uint64_t *ids, const uint64_t *stored_bytes,
		    size_t n)
{
	struct repo_entry *old;
	ssize_t *at;
	size_t k, changed = 0;
	int ret = 0;

	if (!n)
		return -EINVAL;
	r->replaced = false;	/* only this write's rename says "maybe not durable" */
	old = calloc(n, sizeof(*old));
	at = calloc(n, sizeof(*at));
	if (!old || !at)
		ret = -ENOMEM;
	for (k = 0; k < n && !ret; k++) {
		ret = writable_pending(r, ids[k], &at[k]);
		if (!ret && !file_exists(r, r->e[at[k]].file))
			ret = repo_set_error(r, -ENOENT, "backup %" PRIu64 ": %s/%s is missing",
					     ids[k], r->path, r->e[at[k]].file);
	}
	for (k = 0; k < n && !ret; k++, changed++) {
		old[k] = r->e[at[k]];
		r->e[at[k]].state = REPO_COMMITTED;
		r->e[at[k]].stored_bytes = stored_bytes[k];
		if (n > 1 && !r->e[at[k]].set)	/* a copy keeps its own (repo_import_begin) */
			r->e[at[k]].set = ids[0];
	}
	if (!ret)
		ret = catalog_save(r);
	if (ret && r->replaced) {
		/*
		 * Renamed, not durable: readers see it committed. So does this
		 * repo, so that repo_abandon() leaves its files alone; the
		 * caller ABORTs the kernel and the next backup resyncs.
		 */
		ret = repo_set_error(r, ret, "backup %" PRIu64 " is in the catalog as "
				     "committed, but the catalog is maybe not durable (%s)",
				     ids[0], strerror(-ret));
	} else if (ret) {
		for (k = 0; k < changed; k++)
			r->e[at[k]] = old[k];
	} else if (!ret) {
		/* A resync compares with the newest base only: older hashes are dead weight. */
		for (k = 0; k < n; k++)
			if (is_base(REPO_INCREMENTAL, old[k].type))
				drop_older_hashes(r, at[k]);
	}
	free(old);
	free(at);
	return ret;
}

int repo_set_members(struct repo *r, uint64_t set, uint64_t **ids, size_t *n)
{
	size_t i;

	*n = 0;
	*ids = calloc(r->n ? r->n : 1, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	for (i = 0; i < r->n; i++)
		if (r->e[i].state == REPO_COMMITTED && r->e[i].set == set && set)
			(*ids)[(*n)++] = r->e[i].id;
	if (*n)
		return 0;
	free(*ids);
	*ids = NULL;
	return repo_set_error(r, -ENOENT, "%s: no backup set %" PRIu64, r->path, set);
}

static void unlink_entry_files(struct repo *r, const struct repo_entry *e,
			       unsigned int *removed)
{
	char tmp[REPO_NAME_MAX + 8], hashes[REPO_NAME_MAX], htmp[REPO_NAME_MAX + 8];
	const char *names[5] = { e->file, tmp, e->delta, hashes, htmp };
	unsigned int k;

	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, e->file);
	repo_hashes_name(e->id, hashes);
	snprintf(htmp, sizeof(htmp), "%s" TMP_SUFFIX, hashes);
	for (k = 0; k < 5; k++)
		if (!remove_file(r, names[k]) && removed)
			(*removed)++;
}

int repo_abandon(struct repo *r, uint64_t id)
{
	struct repo_entry old;
	ssize_t i;
	int ret = writable_pending(r, id, &i);

	if (ret)
		return ret;
	/*
	 * The files first: when the filesystem is full (the usual reason to
	 * abandon) they hold the room the new catalog needs. A crash in
	 * between leaves a pending entry without files: recovery drops it.
	 */
	unlink_entry_files(r, &r->e[i], NULL);
	old = r->e[i];
	memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(*r->e));
	r->n--;
	ret = catalog_save(r);
	if (ret) {
		memmove(&r->e[i + 1], &r->e[i], (r->n - i) * sizeof(*r->e));
		r->e[i] = old;
		r->n++;
	}
	return ret;
}

/* ---- merge and removal (prune, delete) ---------------------------------- */

static bool entry_names(const struct repo *r, const char *name)
{
	char hashes[REPO_NAME_MAX];
	size_t i;

	for (i = 0; i < r->n; i++) {
		repo_hashes_name(r->e[i].id, hashes);
		if (!strcmp(r->e[i].file, name) || !strcmp(r->e[i].delta, name) ||
		    !strcmp(hashes, name))
			return true;
	}
	return false;
}

/*
 * Delete every file of the trash list, then write the catalog without it.
 * Idempotent: a file already gone is fine, and a crash before the catalog
 * write leaves the list for the next run.
 */
int repo_empty_trash(struct repo *r, unsigned int *removed)
{
	static const char *const dirs[] = { BACKUPS_DIR, DELTAS_DIR, HASHES_DIR };
	char tmp[REPO_NAME_MAX + 8];
	size_t i;
	int ret = need_rw(r);

	if (ret || !r->ntrash)
		return ret;
	for (i = 0; i < r->ntrash; i++) {
		/* Never a file an entry names: only a damaged list could hold one. */
		if (entry_names(r, r->trash[i]))
			continue;
		snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, r->trash[i]);
		remove_file(r, tmp);
		ret = remove_file(r, r->trash[i]);
		if (!ret && removed)
			(*removed)++;
		else if (ret && ret != -ENOENT)
			return repo_set_error(r, ret, "%s/%s: %s", r->path, r->trash[i],
					      strerror(-ret));
	}
	/* The deletes durable before the list that names them goes. */
	for (i = 0; i < 3; i++)
		fsync_dir(r, dirs[i]);
	i = r->ntrash;
	r->ntrash = 0;
	ret = catalog_save(r);
	if (ret && !r->replaced)
		r->ntrash = i;
	return ret;
}

size_t repo_trash_count(const struct repo *r)
{
	return r->ntrash;
}

/* "backups/ID.N.bkt": N a number never used, so no name ever comes back. */
int repo_merge_begin(struct repo *r, const uint64_t *ids, size_t n,
		     char (*files)[REPO_NAME_MAX])
{
	size_t i, ntrash = r->ntrash;
	uint64_t next = r->next_id;
	int ret = need_rw(r);

	for (i = 0; i < n && !ret; i++) {
		const struct repo_entry *e = repo_find(r, ids[i]);

		if (!e || e->state != REPO_COMMITTED)
			ret = repo_set_error(r, -ENOENT, "backup %" PRIu64 " is not a committed "
					     "backup of the catalog", ids[i]);
		else if (e->type == REPO_FULL || e->type == REPO_COPY)
			ret = repo_set_error(r, -EINVAL, "backup %" PRIu64 " is a %s: it needs "
					     "no merge", ids[i], repo_type_name(e->type));
		if (ret)
			break;
		snprintf(files[i], REPO_NAME_MAX, BACKUPS_DIR "/%" PRIu64 ".%" PRIu64 ".bkt",
			 ids[i], r->next_id++);
		if (file_exists(r, files[i]))
			ret = repo_set_error(r, -EUCLEAN, "%s/%s exists: is the catalog an "
					     "older copy? Nothing was changed", r->path, files[i]);
		if (!ret)
			ret = trash_add(r, files[i]);
	}
	if (!ret)
		ret = catalog_save(r);
	if (ret && !r->replaced) {
		r->ntrash = ntrash;
		r->next_id = next;
	}
	return ret;
}

int repo_merge_create(struct repo *r, const char *file, struct repo_file **f)
{
	int ret = need_rw(r);

	*f = NULL;
	return ret ? ret : tmp_create(r, file, f);
}

int repo_merge_install(struct repo *r, const char *file, struct repo_file *f)
{
	return tmp_install(r, BACKUPS_DIR, file, f);
}

static void trash_forget(struct repo *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->ntrash; i++)
		if (!strcmp(r->trash[i], name)) {
			memmove(&r->trash[i], &r->trash[i + 1],
				(--r->ntrash - i) * sizeof(*r->trash));
			return;
		}
}

/* Entry @i out of the catalog, its files into the trash. */
static int drop_entry(struct repo *r, size_t i)
{
	char hashes[REPO_NAME_MAX];
	int ret;

	repo_hashes_name(r->e[i].id, hashes);
	ret = trash_add(r, r->e[i].file);
	if (!ret)
		ret = trash_add(r, r->e[i].delta);
	if (!ret && file_exists(r, hashes))
		ret = trash_add(r, hashes);
	if (ret)
		return ret;
	memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(*r->e));
	r->n--;
	return 0;
}

static int replace_entries(struct repo *r, const struct repo_entry *ne, size_t nne,
			   const uint64_t *drop, size_t ndrop)
{
	ssize_t k;
	size_t i;
	int ret;

	for (i = 0; i < nne; i++) {
		k = find_index(r, ne[i].id);
		if (k < 0 || r->e[k].state != REPO_COMMITTED || !file_exists(r, ne[i].file))
			return repo_set_error(r, -ENOENT, "backup %" PRIu64 ": not committed, "
					      "or its new file %s is missing", ne[i].id, ne[i].file);
		ret = trash_add(r, r->e[k].file);
		if (ret)
			return ret;
		trash_forget(r, ne[i].file);
		r->e[k] = ne[i];
		r->e[k].state = REPO_COMMITTED;
	}
	for (i = 0; i < ndrop; i++) {
		k = find_index(r, drop[i]);
		if (k < 0 || r->e[k].state != REPO_COMMITTED)
			return repo_set_error(r, -ENOENT, "backup %" PRIu64 " is not a committed "
					      "backup of the catalog", drop[i]);
		ret = drop_entry(r, k);
		if (ret)
			return ret;
	}
	return 0;
}

int repo_replace(struct repo *r, const struct repo_entry *ne, size_t nne,
		 const uint64_t *drop, size_t ndrop)
{
	struct repo_entry *e;
	char (*trash)[REPO_NAME_MAX];
	size_t n = r->n, ntrash = r->ntrash;
	int ret = need_rw(r);

	if (ret)
		return ret;
	/* The state before, to put back when the catalog write fails before its rename. */
	e = malloc((n + 1) * sizeof(*e));
	trash = malloc((ntrash + 1) * sizeof(*trash));
	if (!e || !trash) {
		ret = -ENOMEM;
		goto out_free;
	}
	memcpy(e, r->e, n * sizeof(*e));
	if (ntrash)
		memcpy(trash, r->trash, ntrash * sizeof(*trash));
	ret = replace_entries(r, ne, nne, drop, ndrop);
	if (!ret)
		ret = catalog_save(r);
	if (ret && !r->replaced) {
		memcpy(r->e, e, n * sizeof(*e));
		r->n = n;
		if (ntrash)
			memcpy(r->trash, trash, ntrash * sizeof(*trash));
		r->ntrash = ntrash;
	}
out_free:
	free(e);
	free(trash);
	return ret;
}

/* ---- crash recovery ----------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/*
 * Remove the tmp files in @dir: every file is written as NAME.tmp and
 * renamed, so a tmp file is always a crash's leftover. Any other file is
 * kept, even one the catalog does not name: only a catalog that lost it
 * (an older copy, a damaged one) could leave such a backup file.
 */
static int sweep_dir(struct repo *r, const char *dir, unsigned int *removed)
{
	char name[REPO_NAME_MAX + NAME_MAX + 2];
	struct names l;
	int ret = list_names(r, dir, &l);

	if (ret)
		return repo_set_error(r, ret, "%s/%s: %s", r->path, dir, strerror(-ret));
	for (size_t k = 0; k < l.n; k++) {
		snprintf(name, sizeof(name), "%s/%s", dir, l.v[k]);
		if (ends_with(l.v[k], TMP_SUFFIX) && !remove_file(r, name))
			(*removed)++;
	}
	free(l.v);
	return fsync_dir(r, dir);
}

/*
 * A delta map "N.set" no entry names, with no backup file of N beside it
 * (backups/N.bkt or a merge's N.G.bkt), is what a begin left when it died
 * between the delta's rename and the catalog's: never part of the
 * repository, and in the way of the next begin of id N. Beside a backup
 * file it may be a real backup an older catalog forgot: kept, for check
 * --rebuild.
 */
static uint64_t id_of(const char *name, const char *suffix, uint64_t *gen);

static int sweep_orphan_deltas(struct repo *r, unsigned int *removed)
{
	char name[sizeof(DELTAS_DIR) + NAME_MAX + 2];
	unsigned int before = *removed;
	struct names backups, deltas;
	size_t i, k;
	const char *failed = BACKUPS_DIR;
	int ret = list_names(r, BACKUPS_DIR, &backups);

	if (!ret && (ret = list_names(r, DELTAS_DIR, &deltas)))
		failed = DELTAS_DIR;
	if (ret) {
		free(backups.v);
		return repo_set_error(r, ret, "%s/%s: %s", r->path, failed, strerror(-ret));
	}
	for (i = 0; i < deltas.n; i++) {
		uint64_t gen, id = id_of(deltas.v[i], ".set", &gen);

		snprintf(name, sizeof(name), DELTAS_DIR "/%s", deltas.v[i]);
		if (!id || entry_names(r, name))
			continue;
		for (k = 0; k < backups.n && id_of(backups.v[k], ".bkt", &gen) != id; k++)
			;
		if (k == backups.n && !remove_file(r, name))
			(*removed)++;
	}
	free(backups.v);
	free(deltas.v);
	if (*removed != before)
		ret = fsync_dir(r, DELTAS_DIR);
	return ret;
}

/*
 * Drop the pending entries (never validated: backup-complete precedes
 * (c)), their files first: on a full filesystem they hold the room the
 * new catalog needs, and a crash in between leaves entries to drop again.
 */
static int drop_pending(struct repo *r, struct repo_recovery *out)
{
	struct repo_entry *keep;
	size_t i, k, n = r->n;
	int ret;

	for (i = 0; i < n; i++)
		out->dropped += r->e[i].state == REPO_PENDING;
	if (!out->dropped)
		return 0;
	keep = malloc(n * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	memcpy(keep, r->e, n * sizeof(*keep));
	for (i = k = 0; i < n; i++) {
		if (r->e[i].state == REPO_PENDING)
			unlink_entry_files(r, &r->e[i], &out->removed);
		else
			r->e[k++] = r->e[i];
	}
	r->n = k;
	ret = catalog_save(r);
	if (ret) {
		/* Their files are gone; the next recovery drops them again. */
		memcpy(r->e, keep, n * sizeof(*keep));
		r->n = n;
		out->dropped = 0;
	}
	free(keep);
	return ret;
}

int repo_recover(struct repo *r, const struct repo_kernel_state *ks,
		 struct repo_recovery *out)
{
	static const char *const dirs[] = { BACKUPS_DIR, DELTAS_DIR, HASHES_DIR };
	size_t i;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = need_rw(r);
	if (ret)
		return ret;
	if (!remove_file(r, CATALOG_TMP))
		out->removed++;
	ret = drop_pending(r, out);
	if (!ret)
		ret = repo_empty_trash(r, &out->removed);
	if (ret)
		return ret;
	ret = r->ops->mkdir(r->s, HASHES_DIR);
	if (ret)
		return repo_set_error(r, ret, "%s/" HASHES_DIR ": %s", r->path, strerror(-ret));
	for (i = 0; i < 3 && !ret; i++)
		ret = sweep_dir(r, dirs[i], &out->removed);
	if (!ret)
		ret = sweep_orphan_deltas(r, &out->removed);
	if (ret)
		return ret;

	if (!ks || !ks->attached || !ks->pending)
		return 0;
	out->stamp = ks->stamp;
	out->action = REPO_ACTION_ABORT;
	/*
	 * Any chain's: the checkpoint is the volume's, and the chains of its
	 * files (doc/FILES.md) have ids of their own. The generation (a UUID
	 * per attach) names the volume's tracking alone.
	 */
	for (i = r->n; i-- > 0;) {
		const struct repo_entry *e = &r->e[i];

		if (!memcmp(e->to.generation, ks->stamp.generation, 16) &&
		    e->to.epoch == ks->stamp.epoch + 1) {
			out->action = REPO_ACTION_COMMIT;
			out->commit_id = e->id;
			break;
		}
	}
	return 0;
}

/* ---- check and rebuild -------------------------------------------------- */

struct reporter {
	repo_report_fn fn;
	void *data;
	struct repo_check_result *out;
};

__attribute__((format(printf, 2, 3)))
static void report(struct reporter *rp, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	rp->out->problems++;
	if (rp->fn)
		rp->fn(rp->data, line);
}

/* A backup file on disk, read in full. */
struct found {
	uint64_t id;
	uint64_t gen;			/* N of a merged backup's ID.N.bkt; 0 for ID.bkt */
	char name[REPO_NAME_MAX];	/* backups/... */
	int err;			/* 0: header, every record and the END digest verified */
	char why[400];
	struct bfile_header h;
	struct bfile_stats st;
};

static int read_backup(struct repo *r, const char *name, struct found *f)
{
	struct bfile_reader *rd = NULL;
	struct repo_file *file;
	struct bfile_record rec;
	int err = r->ops->open_file(r->s, name, &file);

	if (err) {
		f->err = err;
		snprintf(f->why, sizeof(f->why), "%s", strerror(-err));
		return f->err;
	}
	err = bfile_reader_open_fn(repo_file_read, file, &f->h, &rd);
	if (!err)
		while ((err = bfile_read_record(rd, &rec)) > 0)
			;
	if (err < 0)
		snprintf(f->why, sizeof(f->why), "%s", rd ? bfile_reader_error(rd) :
			 strerror(-err));
	if (rd)
		bfile_reader_stats(rd, &f->st);
	bfile_reader_free(rd);
	repo_file_close(file);
	f->err = err < 0 ? err : 0;
	return f->err;
}

/*
 * "N.bkt" (or N + @suffix): N, or 0 for anything else (.tmp included). A
 * merged backup's file is "N.G.bkt" (repo_merge_begin): N, and G in *@gen.
 */
static uint64_t id_of(const char *name, const char *suffix, uint64_t *gen)
{
	char *end;
	uint64_t id;

	*gen = 0;
	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	id = strtoull(name, &end, 10);
	if (!errno && end[0] == '.' && end[1] >= '1' && end[1] <= '9' &&
	    !strcmp(suffix, ".bkt"))
		*gen = strtoull(end + 1, &end, 10);
	return errno || strcmp(end, suffix) ? 0 : id;
}

static int cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/*
 * Every backups/ID.bkt, read in full, in id order; *@max_id: the highest
 * id of any numbered file in backups/, deltas/ or hashes/.
 */
static int scan_backups(struct repo *r, struct found **out, size_t *n, uint64_t *max_id)
{
	static const char *const subs[] = { BACKUPS_DIR, DELTAS_DIR, HASHES_DIR };
	static const char *const sufs[] = { ".bkt", ".set", ".bh" };
	struct found *v = NULL;
	size_t k = 0, cap = 0, s, j;
	struct names l;
	int ret;

	*max_id = 0;
	for (s = 0; s < 3; s++) {
		ret = list_names(r, subs[s], &l);
		if (ret && s == 0) {
			free(v);
			return repo_set_error(r, ret, "%s/" BACKUPS_DIR ": %s", r->path,
					      strerror(-ret));
		}
		for (j = 0; j < l.n; j++) {
			uint64_t gen, id = id_of(l.v[j], sufs[s], &gen);

			if (!id)
				continue;
			if (id > *max_id)
				*max_id = id;
			if (gen > *max_id)
				*max_id = gen;
			if (s)
				continue;
			if (k == cap) {
				struct found *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

				if (!nv) {
					free(l.v);
					free(v);
					return -ENOMEM;
				}
				v = nv;
			}
			memset(&v[k], 0, sizeof(v[k]));
			v[k].gen = gen;
			snprintf(v[k].name, sizeof(v[k].name), BACKUPS_DIR "/%.64s", l.v[j]);
			v[k++].id = id;
		}
		free(l.v);
	}
	qsort(v, k, sizeof(*v), cmp_found);
	for (s = 0; s < k; s++)
		read_backup(r, v[s].name, &v[s]);
	*out = v;
	*n = k;
	return 0;
}

static void stamp_from_bfile(const struct bfile_header *h, const struct bfile_stamp *b,
			     struct repo_stamp *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->volume_id, sizeof(s->volume_id), "%s", h->volume_id);
	memcpy(s->generation, b->generation, 16);
	s->epoch = b->epoch;
	s->size = b->size;
	s->block_size = b->block_size;
}

bool repo_header_matches(const struct repo_entry *e, const struct bfile_header *h)
{
	return h->type == (uint32_t)e->type + 1 &&
	       !strncmp(h->volume_id, e->to.volume_id, BFILE_VOLUME_ID_LEN - 1) &&
	       !memcmp(h->to.generation, e->to.generation, 16) &&
	       h->to.epoch == e->to.epoch && h->volume_size == e->to.size &&
	       h->block_size == e->to.block_size;
}

/* The hash file of @e, when there is one: 0, or a problem reported. */
static void check_hashes(struct repo *r, struct reporter *rp, const struct repo_entry *e)
{
	char name[REPO_NAME_MAX];
	uint64_t size, sum;
	struct repo_file *f;
	uint32_t bs;
	int err;

	repo_hashes_name(e->id, name);
	if (r->ops->open_file(r->s, name, &f))
		return;		/* dropped when a newer base committed */
	err = blockhash_check_fn(repo_file_read, f, &size, &bs);
	if (!err && e->has_hashes_sum && (r->ops->trailer(f, &sum) || sum != e->hashes_sum))
		err = -ESTALE;
	repo_file_close(f);
	if (err)
		report(rp, "%s/%s (block hashes of backup %" PRIu64 "): %s", r->path, name,
		       e->id, err == -ESTALE ? "not this backup's (the catalog records "
		       "another checksum)" : "corrupt or truncated");
}

static struct repo *repo_bare(const char *path)
{
	struct repo *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ops = store_of(path);
	r->path = strdup(path);
	if (!r->path) {
		free(r);
		return NULL;
	}
	return r;
}

/* The directory alone, for check and rebuild: 0, or -errno with r->err set. */
static int open_bare(const char *path, struct repo **rp)
{
	struct repo *r = repo_bare(path);
	int ret;

	*rp = r;
	if (!r)
		return -ENOMEM;
	ret = r->ops->open(path, false, &r->s);
	if (ret)
		return store_open_error(r, ret);
	return crypt_attach(r, false);
}

/* Close what check or rebuild opened, with its error in @out. */
static int close_bare(struct repo *r, int ret, struct repo_check_result *out)
{
	if (ret)
		snprintf(out->error, sizeof(out->error), "%s",
			 r && r->err[0] ? r->err : strerror(-ret));
	repo_close(r);
	return ret;
}

/* Whether an entry names backup file @name, or the trash list does. */
static bool named(const struct repo *r, const char *name)
{
	size_t i;

	if (entry_names(r, name))
		return true;
	for (i = 0; i < r->ntrash; i++)
		if (!strcmp(r->trash[i], name))
			return true;
	return false;
}

/* What check reads once the catalog is loaded (or not: @r->n == 0). */
static void check_all(struct repo *r, struct reporter *rp, bool catalog,
		      struct found *f, size_t nf)
{
	struct blockset *bs;
	size_t i, k;

	for (i = 0; catalog && i < r->n; i++) {
		const struct repo_entry *e = &r->e[i];
		struct found *ff = NULL;
		uint64_t *ids, id = e->id;
		size_t nids;

		for (k = 0; k < nf; k++)
			if (!strcmp(f[k].name, e->file))
				ff = &f[k];
		if (e->state == REPO_PENDING) {
			report(rp, "backup %" PRIu64 ": pending (an interrupted backup: the "
			       "next backup's recovery drops it)", e->id);
			continue;
		}
		if (!ff)
			report(rp, "backup %" PRIu64 ": %s/%s is missing", e->id, r->path, e->file);
		else if (ff->err)
			report(rp, "backup %" PRIu64 ": %s/%s: %s", e->id, r->path, e->file,
			       ff->why);
		else if (!repo_header_matches(e, &ff->h))
			report(rp, "backup %" PRIu64 ": %s/%s: its header is not the catalog's "
			       "entry (type, volume or stamp differ)", e->id, r->path, e->file);
		if (load_delta(r, e, &bs))
			report(rp, "%s", r->err);
		else
			blockset_free(bs);
		check_hashes(r, rp, e);
		if (ff && !ff->err && repo_chain(r, id, &ids, &nids))
			report(rp, "backup %" PRIu64 ": chain: %s", e->id, r->err);
		else if (ff && !ff->err)
			free(ids);
	}
	for (k = 0; k < nf; k++) {
		if (catalog && named(r, f[k].name))
			continue;
		if (f[k].err)
			report(rp, "%s/%s: damaged or incomplete: %s", r->path, f[k].name, f[k].why);
		else if (catalog)
			report(rp, "%s/%s: a sound backup file the catalog does not name",
			       r->path, f[k].name);
	}
	if (catalog && r->ntrash)
		report(rp, "%s/" CATALOG ": an interrupted merge, prune or delete left %zu "
		       "files to delete (%s...): the next prune, delete or backup finishes it",
		       r->path, r->ntrash, r->trash[0]);
}

/* Load the catalog into @r; a problem is reported. */
static bool check_catalog(struct repo *r, struct reporter *rp)
{
	if (!file_exists(r, CATALOG)) {
		report(rp, "%s/" CATALOG ": missing", r->path);
		return false;
	}
	r->err[0] = '\0';
	if (catalog_load(r)) {
		report(rp, "%s", r->err);
		free(r->e);
		r->e = NULL;
		r->n = r->cap = 0;
		return false;
	}
	return true;
}

int repo_check(const char *path, repo_report_fn fn, void *data,
	       struct repo_check_result *out)
{
	struct reporter rp = { fn, data, out };
	struct found *f = NULL;
	uint64_t max_id;
	struct repo *r;
	size_t nf;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = open_bare(path, &r);
	if (ret)
		return close_bare(r, ret, out);
	r->rdonly = true;
	if (file_exists(r, LOCK_FILE)) {
		ret = repo_lock(r, false);
		if (ret)
			return close_bare(r, ret, out);
	}
	out->catalog_sound = check_catalog(r, &rp);
	out->entries = r->n;
	ret = scan_backups(r, &f, &nf, &max_id);
	if (!ret)
		check_all(r, &rp, out->catalog_sound, f, nf);
	free(f);
	return close_bare(r, ret, out);
}

/* The entry a sound backup file gives; its parent is set by the caller. */
static void entry_from(struct repo *r, struct reporter *rp, const struct found *f,
		       struct repo_entry *e)
{
	char name[REPO_NAME_MAX];
	struct blockset *bs;
	uint64_t size;
	uint32_t bsz;
	struct repo_file *hf;
	size_t len;
	char *buf;

	memset(e, 0, sizeof(*e));
	e->id = f->id;
	e->type = (enum repo_type)(f->h.type - 1);
	e->state = REPO_COMMITTED;
	snprintf(e->file, sizeof(e->file), "%s", f->name);
	repo_delta_name(f->id, e->delta);
	e->has_from = e->type != REPO_FULL && e->type != REPO_COPY;
	if (e->has_from)
		stamp_from_bfile(&f->h, &f->h.from, &e->from);
	stamp_from_bfile(&f->h, &f->h.to, &e->to);
	e->time = (int64_t)(f->h.ctime_ns / 1000000000u);
	e->stored_bytes = f->st.stream_bytes;
	e->changed_bytes = f->st.data_bytes + f->st.zero_bytes;
	if (!read_file(r, e->delta, DELTA_MAX_BYTES, &buf, &len)) {
		if (!blockset_deserialize(buf, len, &bs)) {
			e->has_delta_sum = true;
			e->delta_sum = trailer_of(buf, len);
			e->changed_bytes = blockset_cardinality(bs) * e->to.block_size;
			blockset_free(bs);
		} else {
			report(rp, "%s/%s (delta map of backup %" PRIu64 "): corrupt; left "
			       "in place, the entry has none", r->path, e->delta, e->id);
		}
		free(buf);
	} else {
		report(rp, "%s/%s (delta map of backup %" PRIu64 "): missing", r->path,
		       e->delta, e->id);
	}
	r->err[0] = '\0';
	repo_hashes_name(f->id, name);
	if (!r->ops->open_file(r->s, name, &hf)) {
		if (!blockhash_check_fn(repo_file_read, hf, &size, &bsz) &&
		    !r->ops->trailer(hf, &e->hashes_sum))
			e->has_hashes_sum = true;
		else
			report(rp, "%s/%s (block hashes of backup %" PRIu64 "): corrupt; "
			       "left in place, not entered", r->path, name, e->id);
		repo_file_close(hf);
	}
}

static int cmp_entry_id(const void *a, const void *b)
{
	const struct repo_entry *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * A pending entry's file was never validated (backup-complete comes before
 * the commit): it stays pending, as it was, for recovery to drop with its
 * files; never entered as committed. The sound catalog's entries go.
 */
static int keep_pending(struct repo *r, struct repo_entry **pending, size_t *npending)
{
	size_t i;

	*pending = calloc(r->n + 1, sizeof(**pending));
	if (!*pending)
		return -ENOMEM;
	for (i = 0; i < r->n; i++)
		if (r->e[i].state == REPO_PENDING)
			(*pending)[(*npending)++] = r->e[i];
	free(r->e);
	r->e = NULL;
	r->n = r->cap = 0;
	return 0;
}

/* Enter each sound backup file found (not a pending one) with its parent. */
static void enter_found(struct repo *r, struct reporter *rp, const struct found *f, size_t nf,
			const struct repo_entry *pending, size_t npending)
{
	size_t i, k;

	for (i = 0; i < nf; i++) {
		/* A merge's new file and its old one (a lost trash list): the merged one. */
		if (i + 1 < nf && f[i + 1].id == f[i].id && !f[i + 1].err)
			continue;
		for (k = 0; k < npending && pending[k].id != f[i].id; k++)
			;
		if (k < npending) {
			report(rp, "%s/" BACKUPS_DIR "/%" PRIu64 ".bkt: pending in the catalog "
			       "(never committed): kept pending for recovery to drop", r->path,
			       f[i].id);
			continue;
		}
		if (f[i].err || f[i].h.type < BFILE_TYPE_FULL || f[i].h.type > BFILE_TYPE_RESYNC) {
			rp->out->left_out++;
			report(rp, "%s/" BACKUPS_DIR "/%" PRIu64 ".bkt: damaged or incomplete "
			       "(%s); left in place, not entered", r->path, f[i].id,
			       f[i].err ? f[i].why : "unknown type");
			continue;
		}
		entry_from(r, rp, &f[i], &r->e[r->n]);
		/* The parent: the backup whose file id the header names. */
		for (k = 0; k < i && r->e[r->n].has_from; k++)
			if (!f[k].err && !memcmp(f[k].h.id, f[i].h.parent_id, BFILE_ID_LEN))
				r->e[r->n].parent = f[k].id;
		r->n++;
	}
}

/* Keep the old catalog beside the new as catalog.damaged-TIMESTAMP[.N]. */
static int set_catalog_aside(struct repo *r, struct repo_check_result *out)
{
	time_t now = time(NULL);
	unsigned int k = 1;
	char stamp[32];
	struct tm tm;
	int lerr;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	snprintf(out->aside, sizeof(out->aside), CATALOG ".damaged-%s", stamp);
	/* Two rebuilds in one second: catalog.damaged-TIMESTAMP.2... */
	while ((lerr = r->ops->link(r->s, CATALOG, out->aside)) == -EEXIST && ++k < 1000)
		snprintf(out->aside, sizeof(out->aside), CATALOG ".damaged-%s.%u", stamp, k);
	if (!lerr)
		return 0;
	lerr = repo_set_error(r, lerr, "%s/%s: %s; nothing was changed", r->path,
			      out->aside, strerror(-lerr));
	out->aside[0] = '\0';
	return lerr;
}

/* Every entry's chain, as a restore would walk it: a broken one is reported. */
static void report_chains(struct repo *r, struct reporter *rp)
{
	uint64_t *ids;
	size_t i, nids;

	for (i = 0; i < r->n; i++) {
		if (repo_chain(r, r->e[i].id, &ids, &nids))
			report(rp, "backup %" PRIu64 ": chain: %s", r->e[i].id, r->err);
		else
			free(ids);
	}
	r->err[0] = '\0';
}

/* A sound catalog with nothing to fix is left as it is (EALREADY). */
static int rebuild_from(struct repo *r, struct reporter *rp, bool had_catalog)
{
	struct repo_check_result *out = rp->out;
	struct repo_entry *pending = NULL;	/* a sound catalog's pending entries */
	size_t npending = 0, nf = 0, k;
	struct found *f = NULL;
	uint64_t max_id;
	int ret;

	out->catalog_sound = check_catalog(r, rp);
	ret = scan_backups(r, &f, &nf, &max_id);
	if (!ret && out->catalog_sound) {
		check_all(r, rp, true, f, nf);
		if (!out->problems)
			ret = repo_set_error(r, -EALREADY, "%s: the catalog is sound and "
					     "nothing needs fixing; it was left as it is", r->path);
		else if (r->next_id > max_id + 1)
			max_id = r->next_id - 1;
		if (!ret)
			ret = keep_pending(r, &pending, &npending);
	}
	if (!ret) {
		r->cap = nf + npending + 1;
		r->e = calloc(r->cap, sizeof(*r->e));
		ret = r->e ? 0 : -ENOMEM;
	}
	if (!ret) {
		enter_found(r, rp, f, nf, pending, npending);
		if (had_catalog)
			ret = set_catalog_aside(r, out);
	}
	if (!ret) {
		for (k = 0; k < npending; k++)
			r->e[r->n++] = pending[k];
		qsort(r->e, r->n, sizeof(*r->e), cmp_entry_id);
		r->next_id = max_id + 1;
		ret = catalog_save(r);
	}
	free(pending);
	free(f);
	return ret;
}

int repo_rebuild(const char *path, repo_report_fn fn, void *data,
		 struct repo_check_result *out)
{
	struct reporter rp = { fn, data, out };
	struct repo *r;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = open_bare(path, &r);
	if (ret)
		return close_bare(r, ret, out);
	if (dir_used(r, BACKUPS_DIR, dots) < 0)
		return close_bare(r, repo_set_error(r, -ENOENT, "%s is not a blktrack "
				  "repository (no " BACKUPS_DIR "/): nothing to rebuild", path), out);
	ret = repo_lock(r, true);
	if (!ret)
		ret = rebuild_from(r, &rp, file_exists(r, CATALOG));
	if (!ret) {
		out->rebuilt = true;
		out->entries = r->n;
		report_chains(r, &rp);
	}
	return close_bare(r, ret, out);
}

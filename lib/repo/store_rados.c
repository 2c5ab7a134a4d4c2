// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The RADOS store (lib/repo/store.h; doc/REPOSITORY.md, "Repositories on
 * Ceph"): a repository rados://POOL/NAME is the RADOS namespace NAME of
 * pool POOL, through librados, loaded when such a repository is opened (so
 * that libblktrack does not depend on Ceph's libraries).
 *
 * A file NAME of S bytes is chunk objects "NAME@TAG.N" of up to 4 MiB, each
 * with the XXH3-64 of its bytes in the xattr "bt.xxh3", and a head object
 * NAME written last whose xattrs say "bt.tag" and "bt.size": writing a file
 * is writing its chunks under a new TAG, then the head in one operation, so
 * a reader sees the old file or the new, never a mix, and a crash before
 * the head leaves chunks no head names, which list() shows as "NAME.tmp"
 * (the repository's recovery removes those). Every chunk read is checked.
 * The lock is RADOS's exclusive lock "blktrack" on the object "lock", held
 * for LOCK_SECONDS and renewed by the writes: a holder that dies loses it
 * by expiry. Operations that time out or find the cluster busy are retried
 * with a growing pause, for at most RETRY_SECONDS.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/time.h>
#include <xxhash.h>

#include "repo/repo.h"
#include "repo/store.h"

#define CHUNK		(4U << 20)
#define LOCK_OBJECT	"lock"
#define LOCK_NAME	"blktrack"
#define LOCK_SECONDS	30
#define RENEW_SECONDS	10
#define RETRY_SECONDS	60
#define OP_TIMEOUT	"30"	/* rados_osd_op_timeout: a stopped cluster is an error */
#define NAME_LEN	512

/* librados, by the functions used (its C API is stable across releases). */
typedef void *rados_t;
typedef void *rados_ioctx_t;
typedef void *rados_list_ctx_t;

static struct {
	int (*create)(rados_t *, const char *);
	int (*conf_read_file)(rados_t, const char *);
	int (*conf_set)(rados_t, const char *, const char *);
	int (*connect)(rados_t);
	void (*shutdown)(rados_t);
	int (*ioctx_create)(rados_t, const char *, rados_ioctx_t *);
	void (*ioctx_destroy)(rados_ioctx_t);
	void (*ioctx_set_namespace)(rados_ioctx_t, const char *);
	int (*write_full)(rados_ioctx_t, const char *, const char *, size_t);
	int (*read)(rados_ioctx_t, const char *, char *, size_t, uint64_t);
	int (*remove)(rados_ioctx_t, const char *);
	int (*stat)(rados_ioctx_t, const char *, uint64_t *, time_t *);
	int (*getxattr)(rados_ioctx_t, const char *, const char *, char *, size_t);
	int (*setxattr)(rados_ioctx_t, const char *, const char *, const char *, size_t);
	int (*lock_exclusive)(rados_ioctx_t, const char *, const char *, const char *,
			      const char *, struct timeval *, uint8_t);
	int (*unlock)(rados_ioctx_t, const char *, const char *, const char *);
	int (*list_open)(rados_ioctx_t, rados_list_ctx_t *);
	int (*list_next)(rados_list_ctx_t, const char **, const char **, const char **);
	void (*list_close)(rados_list_ctx_t);
	void *(*create_write_op)(void);
	void (*release_write_op)(void *);
	void (*write_op_write_full)(void *, const char *, size_t);
	void (*write_op_setxattr)(void *, const char *, const char *, size_t);
	int (*write_op_operate)(void *, rados_ioctx_t, const char *, time_t *, int);
} rl;

#define LOCK_FLAG_MUST_RENEW	2	/* fails unless the lock is still ours */

static pthread_once_t rl_once = PTHREAD_ONCE_INIT;
static int rl_err;

static void rl_load(void)
{
	void *h = dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL);
	struct { void **fn; const char *name; } t[] = {
		{ (void **)&rl.create, "rados_create" },
		{ (void **)&rl.conf_read_file, "rados_conf_read_file" },
		{ (void **)&rl.conf_set, "rados_conf_set" },
		{ (void **)&rl.connect, "rados_connect" },
		{ (void **)&rl.shutdown, "rados_shutdown" },
		{ (void **)&rl.ioctx_create, "rados_ioctx_create" },
		{ (void **)&rl.ioctx_destroy, "rados_ioctx_destroy" },
		{ (void **)&rl.ioctx_set_namespace, "rados_ioctx_set_namespace" },
		{ (void **)&rl.write_full, "rados_write_full" },
		{ (void **)&rl.read, "rados_read" },
		{ (void **)&rl.remove, "rados_remove" },
		{ (void **)&rl.stat, "rados_stat" },
		{ (void **)&rl.getxattr, "rados_getxattr" },
		{ (void **)&rl.setxattr, "rados_setxattr" },
		{ (void **)&rl.lock_exclusive, "rados_lock_exclusive" },
		{ (void **)&rl.unlock, "rados_unlock" },
		{ (void **)&rl.list_open, "rados_nobjects_list_open" },
		{ (void **)&rl.list_next, "rados_nobjects_list_next" },
		{ (void **)&rl.list_close, "rados_nobjects_list_close" },
		{ (void **)&rl.create_write_op, "rados_create_write_op" },
		{ (void **)&rl.release_write_op, "rados_release_write_op" },
		{ (void **)&rl.write_op_write_full, "rados_write_op_write_full" },
		{ (void **)&rl.write_op_setxattr, "rados_write_op_setxattr" },
		{ (void **)&rl.write_op_operate, "rados_write_op_operate" },
	};

	if (!h) {
		rl_err = -ENOPKG;
		return;
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!(*t[i].fn = dlsym(h, t[i].name)))
			rl_err = -ENOPKG;
}

struct store {
	rados_t cluster;
	rados_ioctx_t io;
	char cookie[32];
	bool locked;
	double renewed;			/* monotonic seconds */
};

/* A file being read, or written (then shared with its follower). */
struct rados_file {
	struct repo_file f;		/* first: a repo_file * is a rados_file * */
	struct store *s;
	struct rados_file *writer;	/* a follower: the file it reads back */
	pthread_mutex_t lock;		/* a writer's: its follower reads beside it */
	unsigned int refs;
	char name[NAME_LEN], tag[17];
	uint64_t size;			/* written so far, or the head's */
	uint64_t pos;			/* read: the next byte */
	uint8_t *buf;			/* one chunk */
	uint64_t buf_chunk;		/* read: the chunk in buf; UINT64_MAX none */
	size_t used;			/* write: bytes in buf */
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool transient(int err)
{
	return err == -ETIMEDOUT || err == -EAGAIN || err == -ECONNRESET || err == -ENOTCONN ||
	       err == -ESHUTDOWN;
}

/* @op (an expression setting err) again after transient errors, with backoff. */
#define RETRY(err, op) do {						\
	unsigned int pause_ms = 100;					\
	double until = mono() + RETRY_SECONDS;				\
	for (;;) {							\
		op;							\
		if (!transient(err) || mono() >= until)			\
			break;						\
		usleep(pause_ms * 1000);				\
		pause_ms = pause_ms * 2 < 5000 ? pause_ms * 2 : 5000;	\
	}								\
} while (0)

static void chunk_name(const char *name, const char *tag, uint64_t n, char *out)
{
	snprintf(out, NAME_LEN, "%s@%s.%" PRIu64, name, tag, n);
}

/*
 * Keep the lock: renewed by a write once RENEW_SECONDS passed, and only if
 * it is still ours (MUST_RENEW). Past LOCK_SECONDS without a renewal it may
 * have expired, been taken and let go by another writer, which recovered
 * this one's pending work away: lost, whatever the cluster says now.
 */
static int renew(struct store *s)
{
	struct timeval tv = { LOCK_SECONDS, 0 };
	double t = mono();
	int err;

	if (!s->locked || t - s->renewed < RENEW_SECONDS)
		return 0;
	if (t - s->renewed >= LOCK_SECONDS - 2)
		return -ENOLCK;
	RETRY(err, err = rl.lock_exclusive(s->io, LOCK_OBJECT, LOCK_NAME, s->cookie,
					   "blktrack repository", &tv, LOCK_FLAG_MUST_RENEW));
	if (!err)
		s->renewed = t;
	return err ? -ENOLCK : 0;
}

static int rd_open(const char *where, bool create, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	char pool[256], *ns;
	uint64_t r;
	int err;

	(void)create;
	*out = s;
	if (!s)
		return -ENOMEM;
	pthread_once(&rl_once, rl_load);
	if (rl_err)
		return rl_err;
	if (strncmp(where, "rados://", 8) || strlen(where + 8) >= sizeof(pool))
		return -EINVAL;
	strcpy(pool, where + 8);
	ns = strchr(pool, '/');
	if (!ns || ns == pool || !ns[1] || strchr(ns + 1, '/'))
		return -EINVAL;
	*ns++ = '\0';
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	snprintf(s->cookie, sizeof(s->cookie), "%016" PRIx64, r);
	err = rl.create(&s->cluster, getenv("CEPH_ID"));
	if (!err)
		err = rl.conf_read_file(s->cluster, NULL);	/* $CEPH_CONF, /etc/ceph */
	if (!err)
		err = rl.conf_set(s->cluster, "rados_osd_op_timeout", OP_TIMEOUT);
	if (!err)
		err = rl.conf_set(s->cluster, "client_mount_timeout", OP_TIMEOUT);
	if (!err)
		err = rl.connect(s->cluster);
	if (!err)
		err = rl.ioctx_create(s->cluster, pool, &s->io);
	if (!err)
		rl.ioctx_set_namespace(s->io, ns);
	return err;
}

static void rd_close(struct store *s)
{
	if (!s)
		return;
	if (s->locked)
		rl.unlock(s->io, LOCK_OBJECT, LOCK_NAME, s->cookie);
	if (s->io)
		rl.ioctx_destroy(s->io);
	if (s->cluster)
		rl.shutdown(s->cluster);
	free(s);
}

static int rd_check(struct store *s, char *why, size_t len)
{
	return 0;	/* the cluster's own access rules (cephx) */
}

static int rd_lock(struct store *s, bool create, unsigned int wait)
{
	struct timeval tv = { LOCK_SECONDS, 0 };
	unsigned int tenths = 0;
	int err;

	(void)create;
	for (;;) {
		double t = mono();

		RETRY(err, err = rl.lock_exclusive(s->io, LOCK_OBJECT, LOCK_NAME, s->cookie,
						   "blktrack repository", &tv, 0));
		if (err == -EEXIST)	/* ours: a retry after a reply that was lost */
			err = 0;
		if (!err)
			s->renewed = t;
		if (err != -EBUSY)
			break;
		if (wait != UINT_MAX && tenths >= 10ULL * wait)
			return -EBUSY;
		usleep(100000);
		tenths++;
	}
	s->locked = !err;
	return err;
}

static int rd_mkdir(struct store *s, const char *dir)
{
	return 0;	/* names carry their directory */
}

static int rd_sync(struct store *s, const char *dir)
{
	return 0;	/* a write is durable when it returns */
}

/* The head of @name: its tag and size; -ENOENT when it has none. */
static int head_get(struct store *s, const char *name, char tag[17], uint64_t *size)
{
	char v[64], *end;
	int n;

	tag[0] = '\0';
	RETRY(n, n = rl.getxattr(s->io, name, "bt.head", v, sizeof(v) - 1));
	if (n == -ENODATA)
		return -ENOENT;
	if (n < 0)
		return n;
	v[n] = '\0';
	if (n < 18 || v[16] != ' ')
		return -EBADMSG;
	*size = strtoull(v + 17, &end, 10);
	if (*end)
		return -EBADMSG;
	memcpy(tag, v, 16);
	tag[16] = '\0';
	return 0;
}

static uint64_t chunks_of(uint64_t size)
{
	return (size + CHUNK - 1) / CHUNK;
}

/* Chunk @n of @name@@tag, @len bytes, into @buf: checked against its XXH3. */
static int chunk_read(struct store *s, const char *name, const char *tag, uint64_t n,
		      uint8_t *buf, size_t len)
{
	char oid[NAME_LEN], x[17];
	int got, err;

	chunk_name(name, tag, n, oid);
	RETRY(got, got = rl.read(s->io, oid, (char *)buf, len, 0));
	if (got < 0)
		return got;	/* -ENOENT: replaced since its head was read, or lost */
	RETRY(err, err = rl.getxattr(s->io, oid, "bt.xxh3", x, 16));
	if (err != 16 || (size_t)got != len)
		return -EBADMSG;
	x[16] = '\0';
	if (strtoull(x, NULL, 16) != XXH3_64bits(buf, len))
		return -EBADMSG;	/* a byte of the cluster's copy changed */
	return 0;
}

static int chunk_write(struct store *s, const char *name, const char *tag, uint64_t n,
		       const uint8_t *buf, size_t len)
{
	char oid[NAME_LEN], x[17];
	int err = renew(s);

	if (err)
		return err;
	chunk_name(name, tag, n, oid);
	snprintf(x, sizeof(x), "%016" PRIx64, (uint64_t)XXH3_64bits(buf, len));
	RETRY(err, err = rl.write_full(s->io, oid, (const char *)buf, len));
	if (!err)
		RETRY(err, err = rl.setxattr(s->io, oid, "bt.xxh3", x, 16));
	return err;
}

/* The head of @name, pointing at @tag's @size bytes: the file's commit point. */
static int head_put(struct store *s, const char *name, const char *tag, uint64_t size)
{
	char v[64];
	int err = renew(s);

	if (err)
		return err;
	/* One operation: the object and its one xattr, the old file or the new. */
	snprintf(v, sizeof(v), "%s %" PRIu64, tag, size);
	RETRY(err, {
		void *op = rl.create_write_op();

		if (!op) {
			err = -ENOMEM;
		} else {
			rl.write_op_write_full(op, "", 0);
			rl.write_op_setxattr(op, "bt.head", v, strlen(v));
			err = rl.write_op_operate(op, s->io, name, NULL, 0);
			rl.release_write_op(op);
		}
	});
	return err;
}

static void chunks_remove(struct store *s, const char *name, const char *tag, uint64_t from,
			  uint64_t to)
{
	char oid[NAME_LEN];

	for (uint64_t n = from; n < to; n++) {
		chunk_name(name, tag, n, oid);
		rl.remove(s->io, oid);
	}
}

static void new_tag(char tag[17])
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	snprintf(tag, 17, "%016" PRIx64, r);
}

/* @name whole, read under one head (again if a writer replaced it meanwhile). */
static int read_once(struct store *s, const char *name, uint64_t max, char *tag, char **out,
		     uint64_t *size)
{
	uint64_t n;
	char *p;
	int err = head_get(s, name, tag, size);

	if (err)
		return err;
	if (*size > max)
		return -EFBIG;
	p = malloc(*size + 1);
	if (!p)
		return -ENOMEM;
	for (n = 0; !err && n < chunks_of(*size); n++)
		err = chunk_read(s, name, tag, n, (uint8_t *)p + n * CHUNK,
				 n + 1 < chunks_of(*size) ? CHUNK : *size - n * CHUNK);
	if (err)
		free(p);
	else
		*out = p;
	return err;
}

static int rd_read(struct store *s, const char *name, uint64_t max, char **buf, size_t *len)
{
	char tag[17], now[17];
	uint64_t size, now_size;
	char *p = NULL;
	int err, tries = 0;

	do
		err = read_once(s, name, max, tag, &p, &size);
	while (err == -ENOENT && ++tries < 5 && !head_get(s, name, now, &now_size) &&
	       strcmp(now, tag));
	if (err == -ENOENT && tag[0])
		err = -EBADMSG;		/* its head names a chunk that is not there */
	if (err)
		return err;
	p[size] = '\0';
	*buf = p;
	*len = size;
	return 0;
}

/* The old file's chunks go once the new head stands. */
static int put_file(struct store *s, const char *name, const char *tag, uint64_t size,
		    bool *replaced)
{
	char old[17];
	uint64_t old_size;
	bool had = !head_get(s, name, old, &old_size);
	int err = store_fault("rename", name);

	if (!err)
		err = head_put(s, name, tag, size);
	if (replaced)
		*replaced = !err;
	if (err)
		return err;
	if (had && strcmp(old, tag))
		chunks_remove(s, name, old, 0, chunks_of(old_size));
	return store_fault("fsync-dir", name);
}

/* Whether the head of @name names @tag (a write that failed may have landed). */
static bool names_tag(struct store *s, const char *name, const char *tag)
{
	char now[17];
	uint64_t size;

	return !head_get(s, name, now, &size) && !strcmp(now, tag);
}

static int rd_replace(struct store *s, const char *dir, const char *name, const void *buf,
		      size_t len, bool *replaced)
{
	char tag[17];
	uint64_t n;
	int err;

	*replaced = false;
	new_tag(tag);
	err = store_fault("open", name);
	if (!err)
		err = store_fault("write", name);
	for (n = 0; !err && n < chunks_of(len); n++)
		err = chunk_write(s, name, tag, n, (const uint8_t *)buf + n * CHUNK,
				  n + 1 < chunks_of(len) ? CHUNK : len - n * CHUNK);
	if (!err)
		err = store_fault("fsync", name);
	if (!err)
		err = put_file(s, name, tag, len, replaced);
	if (err && !*replaced && !names_tag(s, name, tag))
		chunks_remove(s, name, tag, 0, n);
	return err;
}

static int rd_exists(struct store *s, const char *name)
{
	uint64_t size;
	time_t t;
	int err;

	RETRY(err, err = rl.stat(s->io, name, &size, &t));
	return !err;
}

/* "NAME.tmp": the chunks of NAME that its head does not name. */
static int remove_orphans(struct store *s, const char *name);

static int rd_remove(struct store *s, const char *name)
{
	char tag[17];
	uint64_t size;
	size_t len = strlen(name);
	int err;

	if (len > 4 && !strcmp(name + len - 4, ".tmp"))
		return remove_orphans(s, name);
	err = head_get(s, name, tag, &size);
	if (err && err != -EBADMSG)
		return err;
	RETRY(err, err = rl.remove(s->io, name));
	if (!err && tag[0])
		chunks_remove(s, name, tag, 0, chunks_of(size));
	return err;
}

static int rd_link(struct store *s, const char *from, const char *to)
{
	bool replaced;
	size_t len;
	char *buf;
	int err;

	if (rd_exists(s, to))
		return -EEXIST;
	err = rd_read(s, from, 64U << 20, &buf, &len);
	if (err)
		return err;
	err = rd_replace(s, ".", to, buf, len, &replaced);
	free(buf);
	return err;
}

/* ---- listing -------------------------------------------------------------- */

struct listing {
	char (*v)[NAME_LEN];
	size_t n;
};

static int listing_append(struct listing *l, const char *name)
{
	char (*nv)[NAME_LEN];

	if ((l->n & (l->n - 1)) == 0) {	/* grown at powers of two */
		nv = realloc(l->v, (l->n ? 2 * l->n : 16) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
	}
	snprintf(l->v[l->n++], NAME_LEN, "%s", name);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Every object of the namespace. */
static int objects(struct store *s, struct listing *l)
{
	rados_list_ctx_t ctx;
	const char *entry, *key, *ns;
	int err;

	memset(l, 0, sizeof(*l));
	RETRY(err, err = rl.list_open(s->io, &ctx));
	if (err)
		return err;
	while (!err && !(err = rl.list_next(ctx, &entry, &key, &ns)))
		err = strlen(entry) < NAME_LEN ? listing_append(l, entry) : 0;
	rl.list_close(ctx);
	return err == -ENOENT ? 0 : err;
}

/* Whether chunk object @oid belongs to a file no head names (a crash's). */
static bool orphan_chunk(struct store *s, const char *oid, char *base)
{
	const char *at = strrchr(oid, '@');
	char tag[17];
	uint64_t size;

	if (!at || at - oid >= NAME_LEN)
		return false;
	memcpy(base, oid, at - oid);
	base[at - oid] = '\0';
	switch (head_get(s, base, tag, &size)) {
	case 0:
		return strncmp(at + 1, tag, 16) != 0;
	case -ENOENT:
		return true;
	default:
		return false;	/* a head we cannot read: never a reason to delete */
	}
}

static int remove_orphans(struct store *s, const char *tmpname)
{
	char base[NAME_LEN];
	struct listing l;
	size_t len = strlen(tmpname) - 4;
	int err = objects(s, &l);

	for (size_t i = 0; !err && i < l.n; i++)
		if (!strncmp(l.v[i], tmpname, len) && l.v[i][len] == '@' &&
		    orphan_chunk(s, l.v[i], base))
			rl.remove(s->io, l.v[i]);
	free(l.v);
	return err;
}

static int rd_list(struct store *s, const char *dir, int (*fn)(void *data, const char *name),
		   void *data)
{
	char base[NAME_LEN], name[NAME_LEN + 8];
	struct listing l, out = { 0 };
	size_t dl = strcmp(dir, ".") ? strlen(dir) : 0;
	int err = objects(s, &l);

	/* Sorted, a file's chunks follow each other: one head read per chunk set. */
	qsort(l.v, l.n, sizeof(*l.v), cmp_name);
	for (size_t i = 0; !err && i < l.n; i++) {
		const char *o = l.v[i], *at = strrchr(o, '@'), *rest;

		if (dl && (strncmp(o, dir, dl) || o[dl] != '/'))
			continue;
		rest = dl ? o + dl + 1 : o;
		if (!dl && strchr(o, '/'))
			continue;
		if (!at) {
			err = listing_append(&out, rest);
		} else if (i && !strncmp(l.v[i - 1], o, at - o + 18) &&
			   strrchr(l.v[i - 1], '@') - l.v[i - 1] == at - o) {
			continue;	/* the same chunk set as the one before */
		} else if (orphan_chunk(s, o, base)) {
			snprintf(name, sizeof(name), "%s.tmp", dl ? base + dl + 1 : base);
			if (!out.n || strcmp(out.v[out.n - 1], name))
				err = listing_append(&out, name);
		}
	}
	for (size_t i = 0; !err && i < out.n; i++)
		err = fn(data, out.v[i]);
	free(l.v);
	free(out.v);
	return err;
}

/* ---- files ----------------------------------------------------------------- */

static const struct store_ops *const self = &store_rados_ops;

static int file_new(struct store *s, const char *name, struct rados_file **out)
{
	struct rados_file *f = calloc(1, sizeof(*f));

	*out = f;
	if (!f || !(f->buf = malloc(CHUNK))) {
		free(f);
		*out = NULL;
		return -ENOMEM;
	}
	f->f.ops = self;
	f->s = s;
	f->refs = 1;
	f->buf_chunk = UINT64_MAX;
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 0;
}

static void file_put(struct rados_file *f)
{
	bool last;

	pthread_mutex_lock(&f->lock);
	last = !--f->refs;
	pthread_mutex_unlock(&f->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f->buf);
	free(f);
}

static int rd_open_file(struct store *s, const char *name, struct repo_file **out)
{
	struct rados_file *f;
	int err = file_new(s, name, &f);

	*out = NULL;
	if (!err)
		err = head_get(s, name, f->tag, &f->size);
	if (err) {
		if (f)
			file_put(f);
		return err;
	}
	*out = &f->f;
	return 0;
}

static int rd_create_file(struct store *s, const char *name, struct repo_file **out)
{
	struct rados_file *f;
	int err = file_new(s, name, &f);

	*out = NULL;
	if (err)
		return err;
	new_tag(f->tag);
	*out = &f->f;
	return 0;
}

/* A writer's full chunk out; called under its lock. */
static int flush(struct rados_file *f)
{
	int err;

	if (!f->used)
		return 0;
	err = chunk_write(f->s, f->name, f->tag, f->size / CHUNK, f->buf, f->used);
	if (!err) {
		f->size += f->used;
		f->used = 0;
	}
	return err;
}

static int rd_install_file(struct store *s, const char *dir, const char *name,
			   struct repo_file *file)
{
	struct rados_file *f = (struct rados_file *)file;
	int err;

	pthread_mutex_lock(&f->lock);
	err = flush(f);
	pthread_mutex_unlock(&f->lock);
	if (!err)
		err = put_file(s, name, f->tag, f->size, NULL);
	if (err && !names_tag(s, name, f->tag))
		chunks_remove(s, name, f->tag, 0, chunks_of(f->size));
	file_put(f);
	return err;
}

static int rd_trailer(struct repo_file *file, uint64_t *sum)
{
	struct rados_file *f = (struct rados_file *)file;
	uint64_t size = f->size + f->used, n;
	uint8_t t[8];
	int err = 0;

	if (size < 8)
		return -ENODATA;
	/* A file being written (a hash file before its install): its tail. */
	if (f->used >= 8) {
		memcpy(t, f->buf + f->used - 8, 8);
	} else {
		for (n = 0; n < 8 && !err; n++) {
			ssize_t got = f->f.ops->file_pread(file, t + n, 1, size - 8 + n);

			err = got == 1 ? 0 : got < 0 ? (int)got : -EIO;
		}
	}
	for (*sum = 0, n = 8; !err && n-- > 0;)
		*sum = *sum << 8 | t[n];
	return err;
}

static int rd_file_size(struct repo_file *file, uint64_t *size)
{
	struct rados_file *f = (struct rados_file *)file;
	struct rados_file *w = f->writer ? f->writer : f;

	pthread_mutex_lock(&w->lock);
	*size = w->size + w->used;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* The bytes at @off of a file read (its head's) or being written (so far). */
static ssize_t pread_locked(struct rados_file *f, void *buf, size_t len, uint64_t off)
{
	struct rados_file *w = f->writer ? f->writer : f;
	uint64_t end = w->size + w->used, n = off / CHUNK;
	size_t in, take;
	int err;

	if (off >= end)
		return 0;
	if (off >= w->size && w->used) {		/* the writer's buffer */
		in = off - w->size;
		take = len < w->used - in ? len : w->used - in;
		memcpy(buf, w->buf + in, take);
		return take;
	}
	if (f->buf_chunk != n) {
		size_t clen = end - n * CHUNK < CHUNK ? end - n * CHUNK : CHUNK;

		err = chunk_read(f->s, w->name, w->tag, n, f->buf, clen);
		if (err)
			return err == -ENOENT ? -EBADMSG : err;
		f->buf_chunk = n;
	}
	in = off - n * CHUNK;
	take = CHUNK - in;
	if (take > end - off)
		take = end - off;
	if (take > len)
		take = len;
	memcpy(buf, f->buf + in, take);
	return take;
}

static ssize_t rd_file_pread(struct repo_file *file, void *buf, size_t len, uint64_t off)
{
	struct rados_file *f = (struct rados_file *)file;
	struct rados_file *w = f->writer ? f->writer : f;
	ssize_t n;

	pthread_mutex_lock(&w->lock);
	n = pread_locked(f, buf, len, off);
	pthread_mutex_unlock(&w->lock);
	return n;
}

static ssize_t rd_file_read(struct repo_file *file, void *buf, size_t len)
{
	struct rados_file *f = (struct rados_file *)file;
	ssize_t n = rd_file_pread(file, buf, len, f->pos);

	if (n > 0)
		f->pos += n;
	return n;
}

static int rd_file_write(struct repo_file *file, const void *buf, size_t len)
{
	struct rados_file *f = (struct rados_file *)file;
	const uint8_t *p = buf;
	int err = 0;

	pthread_mutex_lock(&f->lock);
	while (!err && len) {
		size_t take = CHUNK - f->used < len ? CHUNK - f->used : len;

		memcpy(f->buf + f->used, p, take);
		f->used += take;
		p += take;
		len -= take;
		if (f->used == CHUNK)
			err = flush(f);
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

static int rd_file_follow(struct repo_file *file, struct repo_file **reader)
{
	struct rados_file *w = (struct rados_file *)file, *f;
	int err = file_new(w->s, w->name, &f);

	*reader = NULL;
	if (err)
		return err;
	pthread_mutex_lock(&w->lock);
	w->refs++;
	pthread_mutex_unlock(&w->lock);
	f->writer = w;
	*reader = &f->f;
	return 0;
}

static void rd_file_close(struct repo_file *file)
{
	struct rados_file *f = (struct rados_file *)file;

	if (f->writer)
		file_put(f->writer);
	file_put(f);
}

const struct store_ops store_rados_ops = {
	.open = rd_open,
	.close = rd_close,
	.check = rd_check,
	.lock = rd_lock,
	.mkdir = rd_mkdir,
	.read = rd_read,
	.replace = rd_replace,
	.exists = rd_exists,
	.remove = rd_remove,
	.link = rd_link,
	.list = rd_list,
	.sync = rd_sync,
	.open_file = rd_open_file,
	.create_file = rd_create_file,
	.install_file = rd_install_file,
	.trailer = rd_trailer,
	.file_size = rd_file_size,
	.file_read = rd_file_read,
	.file_write = rd_file_write,
	.file_pread = rd_file_pread,
	.file_follow = rd_file_follow,
	.file_close = rd_file_close,
};

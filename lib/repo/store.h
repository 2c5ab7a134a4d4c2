/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a repository's files are (doc/REPOSITORY.md, "The store
 * interface"): everything the repository layer does to its files, as one
 * table of operations. Names are relative to the repository ("catalog",
 * "backups/7.bkt"); every call returns 0 (or a count) or -errno, and the
 * caller words the message (repo.c names the file). The directory is
 * store_dir.c; an object store is a second table of the same operations.
 */
#ifndef REPO_STORE_H
#define REPO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct repo_file;

struct store_ops {
	/* The store at @where; with @create, made when missing (init). */
	int (*open)(const char *where, bool create, struct store **s);
	void (*close)(struct store *s);
	/*
	 * Whether the store may be trusted: the directory must be the
	 * caller's, closed to others, its subdirectories not links (-EPERM,
	 * -ELOOP, with a sentence in @why).
	 */
	int (*check)(struct store *s, char *why, size_t len);
	/*
	 * The writer's lock, held until close: -EBUSY when another holds it
	 * after @wait seconds (UINT_MAX: no limit); -ENOENT when it does not
	 * exist and !@create.
	 */
	int (*lock)(struct store *s, bool create, unsigned int wait);
	int (*mkdir)(struct store *s, const char *dir);
	/* A small file whole (at most @max bytes, -EFBIG), NUL-terminated. */
	int (*read)(struct store *s, const char *name, uint64_t max, char **buf, size_t *len);
	/*
	 * Replace @name (in @dir) by @buf, durably, or leave it as it was;
	 * *@replaced: the new content is what every reader sees, even when a
	 * later step (its durability) failed.
	 */
	int (*replace)(struct store *s, const char *dir, const char *name, const void *buf,
		       size_t len, bool *replaced);
	/* 1 when @name is a file (or a link, which every open then refuses), else 0. */
	int (*exists)(struct store *s, const char *name);
	int (*remove)(struct store *s, const char *name);
	/* @to becomes a second name (or copy) of @from: -EEXIST when @to is there. */
	int (*link)(struct store *s, const char *from, const char *to);
	/* @fn on each name in @dir (not "." or ".."), until it returns non-zero. */
	int (*list)(struct store *s, const char *dir, int (*fn)(void *data, const char *name),
		    void *data);
	int (*sync)(struct store *s, const char *dir);
	/* @name to read (-ELOOP: a link). */
	int (*open_file)(struct store *s, const char *name, struct repo_file **f);
	/* @name.tmp to write; install: durable, renamed to @name in @dir, @f gone. */
	int (*create_file)(struct store *s, const char *name, struct repo_file **f);
	int (*install_file)(struct store *s, const char *dir, const char *name,
			    struct repo_file *f);
	/* The last 8 bytes of a file, little-endian (delta and hash files' XXH3). */
	int (*trailer)(struct repo_file *f, uint64_t *sum);
	/* The bytes of a file read, or written so far. */
	int (*file_size)(struct repo_file *f, uint64_t *size);
	/* repo.h's repo_file_read(), _write(), _pread(), _follow(), _close(). */
	ssize_t (*file_read)(struct repo_file *f, void *buf, size_t len);
	int (*file_write)(struct repo_file *f, const void *buf, size_t len);
	ssize_t (*file_pread)(struct repo_file *f, void *buf, size_t len, uint64_t off);
	int (*file_follow)(struct repo_file *f, struct repo_file **reader);
	void (*file_close)(struct repo_file *f);
};

/* Every store's handles begin so: repo.c dispatches on it. */
struct repo_file {
	const struct store_ops *ops;
};

extern const struct store_ops store_dir_ops;
extern const struct store_ops store_rados_ops;
extern const struct store_ops store_crypt_ops;

/*
 * An encrypted repository (store_crypt.c): when the store holds "keycheck"
 * (or @create: write one), *@ops and *@s become the encrypting layer over
 * them, with the key of $BLKTRACK_KEY_FILE or $BLKTRACK_PASSPHRASE_FILE.
 * 0 (also for a store that is not encrypted), -ENOKEY (no key given),
 * -EKEYREJECTED (another key), -EKEYREVOKED (a RADOS store without a
 * keycheck while a key is given: what a store that dropped it would look
 * like), -EBADMSG (a damaged keycheck).
 */
int store_crypt_attach(const struct store_ops **ops, struct store **s, bool create);

/* repo_fault_hook() at a step of a store's replace (tests only): its error, or 0. */
int store_fault(const char *step, const char *name);

/* The store of @where: rados://POOL/NAME, else a directory. */
const struct store_ops *store_of(const char *where);

#endif /* REPO_STORE_H */

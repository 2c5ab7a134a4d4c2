// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * An encrypted repository (doc/REPOSITORY.md, "Encryption"): a store over
 * another store (a directory or RADOS) that encrypts every file with the
 * repository's key, by libsodium: what the inner store holds is
 *
 *	"BTCRYPT1", a 16-byte random prefix,
 *	then pieces of PIECE bytes of plaintext (the last may be shorter, or
 *	empty), each XChaCha20-Poly1305 with the nonce prefix || le64(index)
 *	and the associated data name || le64(index) || final (0 or 1)
 *
 * so that a piece is read wherever it stands (a follower, a trailer), any
 * changed byte fails its tag, a piece moved or a file swapped under another
 * name fails too, and a file cut after a piece fails for lack of a final
 * one. The key: 32 bytes of a key file, or Argon2id of a passphrase, checked
 * against the object "keycheck" (plaintext: its salt and limits, and a known
 * text sealed with the key) before anything else is read or written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "repo/repo.h"
#include "repo/store.h"

#define MAGIC		"BTCRYPT1"
#define HDR		24
#define PIECE		65536U
#define TAG		crypto_aead_xchacha20poly1305_ietf_ABYTES
#define CPIECE		(PIECE + TAG)
#define NAME_LEN	512

struct store {
	const struct store_ops *in;
	struct store *s;
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

struct crypt_file {
	struct repo_file f;		/* first: a repo_file * is a crypt_file * */
	struct store *s;
	struct repo_file *in;		/* the inner store's file */
	bool writing;
	bool following;			/* a writer's follower: a piece not out yet is not an error */
	bool have_final;		/* read: the piece in plain was the last one */
	char name[NAME_LEN];
	unsigned char prefix[16];
	uint64_t pos;			/* read: the next plaintext byte */
	/* write: the piece being filled; read: the piece decrypted last */
	unsigned char *plain, *cipher;
	size_t used;
	uint64_t pushed;		/* write: pieces out */
	uint64_t have;			/* read: the piece in plain (UINT64_MAX: none) */
	size_t have_len;
	unsigned char tail[8];		/* write: the last 8 bytes written */
	uint64_t written;
};

static void nonce_of(const struct crypt_file *f, uint64_t i, unsigned char *n)
{
	memcpy(n, f->prefix, 16);
	for (int k = 0; k < 8; k++)
		n[16 + k] = (unsigned char)(i >> (8 * k));
}

static size_t ad_of(const struct crypt_file *f, uint64_t i, bool final, unsigned char *ad)
{
	size_t len = strlen(f->name);

	memcpy(ad, f->name, len);
	for (int k = 0; k < 8; k++)
		ad[len + k] = (unsigned char)(i >> (8 * k));
	ad[len + 8] = final;
	return len + 9;
}

static int seal(const struct crypt_file *f, uint64_t i, bool final, const unsigned char *p,
		size_t len, unsigned char *c)
{
	unsigned char n[24], ad[NAME_LEN + 9];
	unsigned long long clen;

	nonce_of(f, i, n);
	crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, p, len, ad, ad_of(f, i, final, ad),
						   NULL, n, f->s->key);
	return 0;
}

static int open_piece(const struct crypt_file *f, uint64_t i, bool final, const unsigned char *c,
		      size_t clen, unsigned char *p)
{
	unsigned char n[24], ad[NAME_LEN + 9];
	unsigned long long plen;

	nonce_of(f, i, n);
	if (clen < TAG || crypto_aead_xchacha20poly1305_ietf_decrypt(p, &plen, NULL, c, clen, ad,
			ad_of(f, i, final, ad), n, f->s->key))
		return -EBADMSG;
	return 0;
}

/* ---- whole files: the catalog, delta maps ------------------------------- */

/* @p of @len bytes, as an encrypted file named @name, in *@out. */
static int encrypt_all(struct store *s, const char *name, const void *p, size_t len,
		       unsigned char **out, size_t *olen)
{
	struct crypt_file f = { .s = s };
	size_t n = len / PIECE + 1, i;	/* the last is final, maybe empty */
	unsigned char *c = malloc(HDR + n * CPIECE);

	if (!c)
		return -ENOMEM;
	snprintf(f.name, sizeof(f.name), "%s", name);
	randombytes_buf(f.prefix, 16);
	memcpy(c, MAGIC, 8);
	memcpy(c + 8, f.prefix, 16);
	for (i = 0; i < n; i++) {
		size_t take = i + 1 < n ? PIECE : len - i * PIECE;

		seal(&f, i, i + 1 == n, (const unsigned char *)p + i * PIECE, take,
		     c + HDR + i * CPIECE);
	}
	*out = c;
	*olen = HDR + (n - 1) * CPIECE + (len - (n - 1) * PIECE) + TAG;
	return 0;
}

static int decrypt_all(struct store *s, const char *name, const unsigned char *c, size_t clen,
		       char **out, size_t *olen)
{
	struct crypt_file f = { .s = s };
	size_t i, n, len;
	char *p;

	if (clen < HDR + TAG || memcmp(c, MAGIC, 8))
		return -EBADMSG;
	snprintf(f.name, sizeof(f.name), "%s", name);
	memcpy(f.prefix, c + 8, 16);
	n = (clen - HDR + CPIECE - 1) / CPIECE;
	len = clen - HDR - n * TAG;
	p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		size_t cl = i + 1 < n ? CPIECE : clen - HDR - i * CPIECE;

		if (open_piece(&f, i, i + 1 == n, c + HDR + i * CPIECE, cl,
			       (unsigned char *)p + i * PIECE)) {
			free(p);
			return -EBADMSG;
		}
	}
	p[len] = '\0';
	*out = p;
	*olen = len;
	return 0;
}

static int cr_read(struct store *s, const char *name, uint64_t max, char **buf, size_t *len)
{
	size_t clen;
	char *c;
	int err = s->in->read(s->s, name, max + (max / PIECE + 1) * TAG + HDR, &c, &clen);

	if (err)
		return err;
	err = decrypt_all(s, name, (unsigned char *)c, clen, buf, len);
	free(c);
	if (!err && *len > max) {
		free(*buf);
		*buf = NULL;
		err = -EFBIG;
	}
	return err;
}

static int cr_replace(struct store *s, const char *dir, const char *name, const void *buf,
		      size_t len, bool *replaced)
{
	unsigned char *c;
	size_t clen;
	int err = encrypt_all(s, name, buf, len, &c, &clen);

	if (err) {
		*replaced = false;
		return err;
	}
	err = s->in->replace(s->s, dir, name, c, clen, replaced);
	free(c);
	return err;
}

/* ---- the store's other operations: the inner store's ---------------------- */

static int cr_open(const char *where, bool create, struct store **s)
{
	return -EINVAL;		/* made by store_crypt_wrap() */
}

static void cr_close(struct store *s)
{
	if (!s)
		return;
	s->in->close(s->s);
	sodium_memzero(s->key, sizeof(s->key));
	free(s);
}

static int cr_check(struct store *s, char *why, size_t len)
{
	return s->in->check(s->s, why, len);
}

static int cr_lock(struct store *s, bool create, unsigned int wait)
{
	return s->in->lock(s->s, create, wait);
}

static int cr_mkdir(struct store *s, const char *dir)
{
	return s->in->mkdir(s->s, dir);
}

static int cr_exists(struct store *s, const char *name)
{
	return s->in->exists(s->s, name);
}

static int cr_remove(struct store *s, const char *name)
{
	return s->in->remove(s->s, name);
}

/*
 * The bytes as they are, under a second name (check --rebuild keeps a
 * damaged catalog aside so): its pieces stay bound to the first name, so
 * the copy is evidence, not a file this layer reads.
 */
static int cr_link(struct store *s, const char *from, const char *to)
{
	return s->in->link(s->s, from, to);
}

static int cr_list(struct store *s, const char *dir, int (*fn)(void *data, const char *name),
		   void *data)
{
	return s->in->list(s->s, dir, fn, data);
}

static int cr_sync(struct store *s, const char *dir)
{
	return s->in->sync(s->s, dir);
}

/* ---- files ----------------------------------------------------------------- */

static const struct store_ops *const self = &store_crypt_ops;

static int file_new(struct store *s, const char *name, struct crypt_file **out)
{
	struct crypt_file *f = calloc(1, sizeof(*f));

	*out = f;
	if (!f || !(f->plain = malloc(PIECE)) || !(f->cipher = malloc(CPIECE + 1))) {
		if (f)
			free(f->plain);
		free(f);
		*out = NULL;
		return -ENOMEM;
	}
	f->f.ops = self;
	f->s = s;
	f->have = UINT64_MAX;
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 0;
}

static void file_free(struct crypt_file *f)
{
	sodium_memzero(f->plain, PIECE);
	free(f->plain);
	free(f->cipher);
	free(f);
}

static int cr_open_file(struct store *s, const char *name, struct repo_file **out)
{
	struct crypt_file *f;
	unsigned char h[HDR];
	ssize_t n;
	int err = file_new(s, name, &f);

	*out = NULL;
	if (err)
		return err;
	err = s->in->open_file(s->s, name, &f->in);
	if (!err) {
		n = s->in->file_pread(f->in, h, HDR, 0);
		err = n < 0 ? (int)n : n != HDR || memcmp(h, MAGIC, 8) ? -EBADMSG : 0;
	}
	if (err) {
		if (f->in)
			s->in->file_close(f->in);
		file_free(f);
		return err;
	}
	memcpy(f->prefix, h + 8, 16);
	*out = &f->f;
	return 0;
}

static int cr_create_file(struct store *s, const char *name, struct repo_file **out)
{
	unsigned char h[HDR];
	struct crypt_file *f;
	int err = file_new(s, name, &f);

	*out = NULL;
	if (err)
		return err;
	f->writing = true;
	randombytes_buf(f->prefix, 16);
	memcpy(h, MAGIC, 8);
	memcpy(h + 8, f->prefix, 16);
	err = s->in->create_file(s->s, name, &f->in);
	if (!err)
		err = s->in->file_write(f->in, h, HDR);
	if (err) {
		if (f->in)
			s->in->file_close(f->in);
		file_free(f);
		return err;
	}
	*out = &f->f;
	return 0;
}

/* The last 8 bytes written, after @n more at @p. */
static void tail_add(unsigned char tail[8], const unsigned char *p, size_t n)
{
	if (n >= 8) {
		memcpy(tail, p + n - 8, 8);
		return;
	}
	memmove(tail, tail + n, 8 - n);
	memcpy(tail + 8 - n, p, n);
}

static int cr_file_write(struct repo_file *file, const void *buf, size_t len)
{
	struct crypt_file *f = (struct crypt_file *)file;
	const unsigned char *p = buf;
	int err = 0;

	while (!err && len) {
		size_t take;

		if (f->used == PIECE) {	/* full, and more comes: not the final one */
			seal(f, f->pushed, false, f->plain, PIECE, f->cipher);
			f->pushed++;
			f->used = 0;
			err = f->s->in->file_write(f->in, f->cipher, CPIECE);
			continue;
		}
		take = PIECE - f->used < len ? PIECE - f->used : len;
		memcpy(f->plain + f->used, p, take);
		tail_add(f->tail, p, take);
		f->used += take;
		f->written += take;
		p += take;
		len -= take;
	}
	return err;
}

static int cr_install_file(struct store *s, const char *dir, const char *name,
			   struct repo_file *file)
{
	struct crypt_file *f = (struct crypt_file *)file;
	size_t n = f->used;
	int err;

	/* The final piece: what is left, maybe nothing. */
	seal(f, f->pushed, true, f->plain, n, f->cipher);
	err = s->in->file_write(f->in, f->cipher, n + TAG);
	if (err) {
		s->in->file_close(f->in);
		file_free(f);
		return err;
	}
	err = s->in->install_file(s->s, dir, name, f->in);
	file_free(f);
	return err;
}

/*
 * Piece @i of a file read, or of one being written as far as it is out:
 * 0 with *@len plaintext bytes in f->plain; -ENODATA past the end.
 */
static int piece(struct crypt_file *f, uint64_t i)
{
	ssize_t n = 0, got;
	int err;

	f->have = UINT64_MAX;	/* a failed open zeroes f->plain */
	/* A store may answer in parts (RADOS: up to a chunk's end). */
	do {
		got = f->s->in->file_pread(f->in, f->cipher + n, CPIECE + 1 - n,
					   HDR + i * CPIECE + n);
		n += got > 0 ? got : 0;
	} while (got > 0 && n < CPIECE + 1);
	if (got < 0)
		return (int)got;
	if (n < (ssize_t)TAG)
		return n && !f->following ? -EBADMSG : -ENODATA;
	f->have_final = n != CPIECE + 1;
	err = open_piece(f, i, f->have_final, f->cipher, f->have_final ? (size_t)n : CPIECE,
			 f->plain);
	if (err && n == CPIECE && f->following) {
		/* a full piece the writer has not followed with a byte yet */
		f->have_final = false;
		err = open_piece(f, i, false, f->cipher, CPIECE, f->plain);
	}
	if (err && f->following)
		return -ENODATA;	/* written in part so far */
	if (err)
		return err;
	f->have = i;
	f->have_len = (n == CPIECE + 1 ? CPIECE : (size_t)n) - TAG;
	return 0;
}

static ssize_t cr_file_pread(struct repo_file *file, void *buf, size_t len, uint64_t off)
{
	struct crypt_file *f = (struct crypt_file *)file;
	uint64_t i = off / PIECE;
	size_t in = off % PIECE, take;
	int err;

	if (f->have != i) {
		err = piece(f, i);
		/* The end: right after a final piece only, else the file was cut. */
		if (err == -ENODATA && !f->following && (!i || piece(f, i - 1) || !f->have_final))
			return -EBADMSG;
		if (err == -ENODATA)
			return 0;
		if (err)
			return err;
	}
	if (in >= f->have_len)
		return 0;
	take = f->have_len - in < len ? f->have_len - in : len;
	memcpy(buf, f->plain + in, take);
	return (ssize_t)take;
}

static ssize_t cr_file_read(struct repo_file *file, void *buf, size_t len)
{
	struct crypt_file *f = (struct crypt_file *)file;
	ssize_t n = cr_file_pread(file, buf, len, f->pos);

	if (n > 0)
		f->pos += (uint64_t)n;
	return n;
}

static int cr_file_size(struct repo_file *file, uint64_t *size)
{
	struct crypt_file *f = (struct crypt_file *)file;
	uint64_t c, n;
	int err;

	if (f->writing) {
		*size = f->written;
		return 0;
	}
	err = f->s->in->file_size(f->in, &c);
	if (err)
		return err;
	if (c < HDR + TAG)
		return -EBADMSG;
	n = (c - HDR + CPIECE - 1) / CPIECE;
	*size = c - HDR - n * TAG;
	return 0;
}

static int cr_trailer(struct repo_file *file, uint64_t *sum)
{
	struct crypt_file *f = (struct crypt_file *)file;
	unsigned char t[8];
	uint64_t size;
	size_t got = 0;
	int err = cr_file_size(file, &size);

	if (err)
		return err;
	if (size < 8)
		return -ENODATA;
	if (f->writing) {
		memcpy(t, f->tail, 8);
	} else {
		while (got < 8) {
			ssize_t n = cr_file_pread(file, t + got, 8 - got, size - 8 + got);

			if (n <= 0)
				return n ? (int)n : -EBADMSG;
			got += (size_t)n;
		}
	}
	*sum = 0;
	for (int k = 7; k >= 0; k--)
		*sum = *sum << 8 | t[k];
	return 0;
}

/* A reader of the pieces written so far (the verify writer's). */
static int cr_file_follow(struct repo_file *file, struct repo_file **reader)
{
	struct crypt_file *w = (struct crypt_file *)file, *f;
	int err = file_new(w->s, w->name, &f);

	*reader = NULL;
	if (err)
		return err;
	err = w->s->in->file_follow(w->in, &f->in);
	if (err) {
		file_free(f);
		return err;
	}
	memcpy(f->prefix, w->prefix, 16);
	f->following = true;
	*reader = &f->f;
	return 0;
}

static void cr_file_close(struct repo_file *file)
{
	struct crypt_file *f = (struct crypt_file *)file;

	f->s->in->file_close(f->in);
	file_free(f);
}

const struct store_ops store_crypt_ops = {
	.open = cr_open,
	.close = cr_close,
	.check = cr_check,
	.lock = cr_lock,
	.mkdir = cr_mkdir,
	.read = cr_read,
	.replace = cr_replace,
	.exists = cr_exists,
	.remove = cr_remove,
	.link = cr_link,
	.list = cr_list,
	.sync = cr_sync,
	.open_file = cr_open_file,
	.create_file = cr_create_file,
	.install_file = cr_install_file,
	.trailer = cr_trailer,
	.file_size = cr_file_size,
	.file_read = cr_file_read,
	.file_write = cr_file_write,
	.file_pread = cr_file_pread,
	.file_follow = cr_file_follow,
	.file_close = cr_file_close,
};

/* ---- the key ------------------------------------------------------------------ */

#define KEYCHECK	"keycheck"
#define KC_MAGIC	"BTKEYCK1"
#define KC_TEXT		"blktrack repository key"
#define KC_LEN		(8 + 1 + 16 + 8 + 8 + 24 + sizeof(KC_TEXT) - 1 + TAG)

static uint64_t le64_get(const unsigned char *p)
{
	uint64_t v = 0;

	for (int k = 7; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

static void le64_put(unsigned char *p, uint64_t v)
{
	for (int k = 0; k < 8; k++)
		p[k] = (unsigned char)(v >> (8 * k));
}

/* BLKTRACK_KEY_FILE (32 bytes, or 64 hex digits) or BLKTRACK_PASSPHRASE_FILE. */
static int key_get(unsigned char key[32], bool *pass, char *line, size_t len)
{
	const char *kf = getenv("BLKTRACK_KEY_FILE"), *pf = getenv("BLKTRACK_PASSPHRASE_FILE");
	const char *path = kf && *kf ? kf : pf;
	size_t n, hexlen;
	FILE *f;

	if (!path || !*path)
		return -ENOKEY;
	*pass = path == pf;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(line, 1, len - 1, f);
	fclose(f);
	line[n] = '\0';
	if (*pass) {
		line[strcspn(line, "\n")] = '\0';
		return *line ? 0 : -ENOKEY;
	}
	if (n == 32) {
		memcpy(key, line, 32);
		return 0;
	}
	if (sodium_hex2bin(key, 32, line, n, " \n", &hexlen, NULL) || hexlen != 32)
		return -EINVAL;
	return 0;
}

static int key_derive(unsigned char key[32], const char *pass, const unsigned char *salt,
		      uint64_t ops, uint64_t mem)
{
	return crypto_pwhash(key, 32, pass, strlen(pass), salt, ops, (size_t)mem,
			     crypto_pwhash_ALG_ARGON2ID13) ? -ENOMEM : 0;
}

int store_crypt_attach(const struct store_ops **ops, struct store **s, bool create)
{
	const struct store_ops *in = *ops;
	struct store *c;
	unsigned char kc[KC_LEN], salt[16] = { 0 }, *sealed;
	char line[1024];
	uint64_t ops_limit = 0, mem_limit = 0;
	unsigned long long plen;
	bool pass = false, replaced;
	size_t len;
	char *buf = NULL;
	int err;

	if (!create && !in->exists(*s, KEYCHECK)) {
		/*
		 * Not encrypted. Off the machine, with a key given, that is what a
		 * store that dropped its keycheck would look like: refused.
		 */
		const char *kf = getenv("BLKTRACK_KEY_FILE"), *pf = getenv("BLKTRACK_PASSPHRASE_FILE");

		if (in == &store_rados_ops && ((kf && *kf) || (pf && *pf)))
			return -EKEYREVOKED;
		return 0;
	}
	if (sodium_init() < 0)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	err = key_get(c->key, &pass, line, sizeof(line));
	if (!err && create) {
		randombytes_buf(salt, sizeof(salt));
		ops_limit = crypto_pwhash_OPSLIMIT_MODERATE;
		mem_limit = crypto_pwhash_MEMLIMIT_MODERATE;
	} else if (!err) {
		err = in->read(*s, KEYCHECK, KC_LEN, &buf, &len);
		if (!err && (len != KC_LEN || memcmp(buf, KC_MAGIC, 8)))
			err = -EBADMSG;
		if (!err && (buf[8] != pass))
			err = -EKEYREJECTED;	/* a key file for a passphrase's, or the reverse */
		if (!err) {
			memcpy(kc, buf, KC_LEN);
			memcpy(salt, kc + 9, 16);
			ops_limit = le64_get(kc + 25);
			mem_limit = le64_get(kc + 33);
		}
		free(buf);
	}
	if (!err && pass)
		err = key_derive(c->key, line, salt, ops_limit, mem_limit);
	sodium_memzero(line, sizeof(line));
	sealed = kc + 8 + 1 + 16 + 8 + 8 + 24;
	if (!err && create) {
		memcpy(kc, KC_MAGIC, 8);
		kc[8] = pass;
		memcpy(kc + 9, salt, 16);
		le64_put(kc + 25, ops_limit);
		le64_put(kc + 33, mem_limit);
		randombytes_buf(kc + 41, 24);
		crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, &plen,
			(const unsigned char *)KC_TEXT, sizeof(KC_TEXT) - 1,
			(const unsigned char *)KEYCHECK, sizeof(KEYCHECK) - 1, NULL, kc + 41, c->key);
		err = in->replace(*s, ".", KEYCHECK, kc, KC_LEN, &replaced);
	} else if (!err) {
		unsigned char text[sizeof(KC_TEXT)];

		if (crypto_aead_xchacha20poly1305_ietf_decrypt(text, &plen, NULL, sealed,
				sizeof(KC_TEXT) - 1 + TAG, (const unsigned char *)KEYCHECK,
				sizeof(KEYCHECK) - 1, kc + 41, c->key))
			err = -EKEYREJECTED;
	}
	if (err) {
		sodium_memzero(c->key, sizeof(c->key));
		free(c);
		return err;
	}
	c->in = in;
	c->s = *s;
	*ops = &store_crypt_ops;
	*s = c;
	return 0;
}

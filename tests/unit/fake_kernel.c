// SPDX-License-Identifier: GPL-2.0
/*
 * A fake /dev/blktrack-ctl for unit tests (fake_kernel.h): the module's
 * ioctls over kmod/btmap.c in this process, plain files as volumes.
 *
 * Each ioctl follows its kmod/ counterpart (main.c's checks, then
 * volume.c's or snapshot.c's work), in the same order, so that a test sees
 * the errno the module would give. Sections: volumes and their state / the
 * snapshot / the ioctls / the table a context uses / a child's calls served
 * here / the test's API.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "btmap.h"
#include "core/core.h"
#include "fake_kernel.h"

#define SECTOR_SHIFT	9
#define PAGE_BYTES	4096ULL
#define MEM_LIMIT_MIB	64ULL		/* the module's mem_limit_mib */
#define SNAP_LIMIT_MIB	256ULL		/* the module's snap_limit_mib */
#define NR_IOCTLS	(_IOC_NR(BLKTRACK_IOC_SNAP_STATUS) + 1)
#define NR_RULES	16
#define LOG_BYTES	16384

struct fake_snap {
	bool all;			/* BLKTRACK_SNAP_ALL */
	bool lost;
	int error;			/* why it was lost: a negative errno */
	uint64_t nr_blocks;
	uint8_t *member;		/* protected at the checkpoint */
	uint8_t *need;			/* protected, neither copied nor released */
	void **copy;			/* a copied block's old contents until released */
	uint64_t protected_blocks, uncopied, copied, released, held_writes;
	uint64_t store_bytes, store_limit;
};

/* A disk of the fake (a file), and its tracking as struct bt_volume has it. */
struct fake_vol {
	dev_t dev;
	char path[PATH_MAX];
	dev_t file_dev;			/* the file, to know it by any path */
	ino_t file_ino;
	int fd;
	uint64_t disk_seq;		/* the disk's sequence number */
	bool attached;
	uint8_t generation[16];
	uint64_t epoch;
	unsigned int block_shift;
	uint64_t nr_sects;		/* at ATTACH or the last CHECKPOINT */
	uint64_t mem_limit;		/* UINT64_MAX: no limit */
	struct btmap *active, *pending;
	bool checkpointed;
	uint64_t diskseq;		/* the sequence number the volume last saw */
	uint32_t reason;
	bool history_lost;
	uint64_t losses, ckpt_losses;
	struct fake_snap *snap;
};

struct fake_rule {
	unsigned long cmd;
	unsigned int at;		/* fails the call that makes calls[nr] this */
	int err;
};

struct fake_kernel {
	struct blktrack_kernel_ops ops;	/* first: what a context points to */
	pthread_mutex_t lock;
	unsigned int flags;
	struct fake_vol vol[FAKE_VOLUMES];
	unsigned int nvol;
	struct fake_rule rule[NR_RULES];
	unsigned int calls[NR_IOCTLS];
	unsigned int page;
	char log[LOG_BYTES];
	size_t log_len;
	int remote;			/* in a child: the socket to the fake; -1 */
	pthread_mutex_t remote_lock;
};

static const struct {
	unsigned long cmd;
	const char *name;
} ioctls[NR_IOCTLS] = {
	{ BLKTRACK_IOC_VERSION, "VERSION" },
	{ BLKTRACK_IOC_ATTACH, "ATTACH" },
	{ BLKTRACK_IOC_DETACH, "DETACH" },
	{ BLKTRACK_IOC_LIST, "LIST" },
	{ BLKTRACK_IOC_STATUS, "STATUS" },
	{ BLKTRACK_IOC_CHECKPOINT, "CHECKPOINT" },
	{ BLKTRACK_IOC_READ_EXTENTS, "READ_EXTENTS" },
	{ BLKTRACK_IOC_COMMIT, "COMMIT" },
	{ BLKTRACK_IOC_ABORT, "ABORT" },
	{ BLKTRACK_IOC_RESTORE, "RESTORE" },
	{ BLKTRACK_IOC_CHECKPOINT_SNAP, "CHECKPOINT_SNAP" },
	{ BLKTRACK_IOC_SNAP_READ, "SNAP_READ" },
	{ BLKTRACK_IOC_SNAP_STATUS, "SNAP_STATUS" },
};

/* The ioctls' table slot, or -1: not a blktrack ioctl of this size and direction. */
static int ioctl_index(unsigned long cmd)
{
	unsigned int nr = _IOC_NR(cmd);

	return nr < NR_IOCTLS && ioctls[nr].cmd == cmd ? (int)nr : -1;
}

/*
 * The map's RCU (liburcu, memb flavour) wants each thread that reads or
 * marks registered: the first call on a thread registers it, its exit
 * unregisters it.
 */
static pthread_key_t rcu_key;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;

static void rcu_thread_gone(void *unused)
{
	rcu_unregister_thread();
}

static void rcu_key_make(void)
{
	pthread_key_create(&rcu_key, rcu_thread_gone);
}

static void rcu_thread(void)
{
	pthread_once(&rcu_once, rcu_key_make);
	if (pthread_getspecific(rcu_key))
		return;
	rcu_register_thread();
	pthread_setspecific(rcu_key, (void *)1);
}

/* ==== Volumes and their state ============================================ */

static bool zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (; len; len--)
		if (*b++)
			return false;
	return true;
}

/* A device number the kernel can represent (main.c's bt_devno()). */
static bool devno_ok(const struct blktrack_devno *d, dev_t *dev)
{
	if (d->major > 0xfffU || d->minor > 0xfffffU)
		return false;
	*dev = makedev(d->major, d->minor);
	return true;
}

static bool block_size_ok(uint32_t bs)
{
	return bs == 0 || (!(bs & (bs - 1)) && bs >= BLKTRACK_BLOCK_SIZE_MIN &&
			   bs <= BLKTRACK_BLOCK_SIZE_MAX);
}

/* The disk @dev of the fake, attached or not. */
static struct fake_vol *disk_of(struct fake_kernel *fk, dev_t dev)
{
	unsigned int i;

	for (i = 0; i < fk->nvol; i++)
		if (fk->vol[i].dev == dev)
			return &fk->vol[i];
	return NULL;
}

/* The attached volume @dev (volume.c's bt_find()). */
static struct fake_vol *find(struct fake_kernel *fk, dev_t dev)
{
	struct fake_vol *vol = disk_of(fk, dev);

	return vol && vol->attached ? vol : NULL;
}

/* The disk's size now, in sectors (bdev_nr_sectors()). */
static uint64_t disk_sects(const struct fake_vol *vol)
{
	struct stat st;

	return fstat(vol->fd, &st) ? 0 : (uint64_t)st.st_size >> SECTOR_SHIFT;
}

static uint64_t dev_bytes(const struct fake_vol *vol)
{
	return vol->nr_sects << SECTOR_SHIFT;
}

static uint64_t blocks_of(const struct fake_vol *vol, uint64_t sects)
{
	uint64_t bs = 1ULL << vol->block_shift;

	return ((sects << SECTOR_SHIFT) + bs - 1) / bs;
}

/* Mark [@first, +@n) in @vol's active map; coarsen when it asks (bt_coarsen_work()). */
static void mark_active(struct fake_vol *vol, uint64_t first, uint64_t n)
{
	if (btmap_mark(vol->active, first, n))
		btmap_coarsen(vol->active, vol->mem_limit / 4 * 3);
}

static void lose_history(struct fake_vol *vol, uint32_t reason)
{
	if (vol->reason == BLKTRACK_REASON_NONE || vol->history_lost) {
		vol->reason = reason;
		vol->history_lost = true;
	}
	vol->losses++;
}

/* volume.c's bt_check_state(): new media loses the history. */
static void check_state(struct fake_vol *vol)
{
	if (vol->disk_seq != vol->diskseq) {
		vol->diskseq = vol->disk_seq;
		lose_history(vol, BLKTRACK_REASON_MEDIA_CHANGED);
	}
}

static bool stamp_matches(const struct fake_vol *vol, const struct blktrack_stamp *s)
{
	return !memcmp(s->generation, vol->generation, 16) && s->epoch == vol->epoch;
}

/* ==== The snapshot ======================================================= */

static uint64_t block_bytes(const struct fake_vol *vol, uint64_t b)
{
	uint64_t bs = 1ULL << vol->block_shift, size = dev_bytes(vol);

	return size - b * bs < bs ? size - b * bs : bs;
}

static uint64_t store_cost(uint64_t bytes)
{
	return (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
}

static void snap_drop(struct fake_vol *vol, uint64_t b)
{
	struct fake_snap *s = vol->snap;

	if (!s->copy[b])
		return;
	free(s->copy[b]);
	s->copy[b] = NULL;
	s->store_bytes -= store_cost(block_bytes(vol, b));
}

static void snap_lose(struct fake_vol *vol, int error)
{
	struct fake_snap *s = vol->snap;
	uint64_t b;

	if (s->lost)
		return;
	s->lost = true;
	s->error = error;
	for (b = 0; b < s->nr_blocks; b++)
		snap_drop(vol, b);
}

static void snap_end(struct fake_vol *vol)
{
	struct fake_snap *s = vol->snap;
	uint64_t b;

	if (!s)
		return;
	for (b = 0; b < s->nr_blocks; b++)
		free(s->copy[b]);
	free(s->member);
	free(s->need);
	free(s->copy);
	free(s);
	vol->snap = NULL;
}

static struct fake_snap *snap_create(uint64_t store_limit, uint32_t flags)
{
	struct fake_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->all = flags & BLKTRACK_SNAP_ALL;
	if (store_limit)
		s->store_limit = store_limit;
	else	/* a file's limit is its own size */
		s->store_limit = flags & BLKTRACK_SNAP_STORE_FD ? UINT64_MAX :
				 SNAP_LIMIT_MIB << 20;
	return s;
}

/* Protect the pending map's blocks, or all (snapshot.c's bt_snap_fill()). */
static int snap_fill(struct fake_vol *vol)
{
	struct fake_snap *s = vol->snap;
	uint64_t pos = 0, start, len;

	s->nr_blocks = btmap_nr_blocks(vol->pending);
	s->member = calloc(s->nr_blocks, 1);
	s->need = calloc(s->nr_blocks, 1);
	s->copy = calloc(s->nr_blocks, sizeof(*s->copy));
	if (!s->member || !s->need || !s->copy)
		return -ENOMEM;
	if (s->all) {
		memset(s->member, 1, s->nr_blocks);
		memset(s->need, 1, s->nr_blocks);
		s->protected_blocks = s->nr_blocks;
	}
	while (!s->all && btmap_next_extent(vol->pending, &pos, &start, &len)) {
		memset(s->member + start, 1, len);
		memset(s->need + start, 1, len);
		s->protected_blocks += len;
	}
	s->uncopied = s->protected_blocks;
	return 0;
}

/*
 * Before a write of blocks [@first, @last] reaches the disk: the old
 * contents of those still needed go to the store. A store over its limit
 * (or no memory) loses the snapshot; the write goes on.
 */
static void snap_cow(struct fake_vol *vol, uint64_t first, uint64_t last)
{
	struct fake_snap *s = vol->snap;
	bool held = false;
	uint64_t b;

	for (b = first; b <= last && b < s->nr_blocks && !s->lost; b++) {
		uint64_t bytes = block_bytes(vol, b);

		if (!s->need[b])
			continue;
		held = true;
		if (s->store_bytes + store_cost(bytes) > s->store_limit) {
			snap_lose(vol, -EOVERFLOW);
			break;
		}
		s->copy[b] = malloc(bytes);
		if (!s->copy[b] || pread(vol->fd, s->copy[b], bytes,
					 b << vol->block_shift) != (ssize_t)bytes) {
			snap_lose(vol, s->copy[b] ? -EIO : -ENOMEM);
			break;
		}
		s->store_bytes += store_cost(bytes);
		s->need[b] = 0;
		s->uncopied--;
		s->copied++;
	}
	if (held)
		s->held_writes++;
}

/* Release blocks [@first, @last]: no longer protected, copies freed. */
static void snap_release(struct fake_vol *vol, uint64_t first, uint64_t last)
{
	struct fake_snap *s = vol->snap;
	uint64_t b;

	for (b = first; b <= last && b < s->nr_blocks; b++) {
		if (s->need[b]) {
			s->need[b] = 0;
			s->uncopied--;
			s->released++;
		}
		if (s->copy[b]) {
			snap_drop(vol, b);
			s->released++;
		}
	}
}

/* snapshot.c's bt_snap_read(), past main.c's checks. */
static int snap_read(struct fake_vol *vol, const struct blktrack_snap_read *rd)
{
	struct fake_snap *s = vol->snap;
	uint64_t size = dev_bytes(vol), bs = 1ULL << vol->block_shift, b, end;
	uint8_t *buf = (uint8_t *)(uintptr_t)rd->buf_ptr;
	unsigned int shift = vol->block_shift;

	if (rd->offset & (bs - 1) ||
	    ((rd->length & (bs - 1)) && rd->offset + rd->length != size))
		return -EINVAL;
	if (rd->offset >= size || rd->length > size - rd->offset)
		return -ERANGE;
	if (s->lost)
		return -EOVERFLOW;
	end = rd->offset + rd->length;
	if (rd->flags & BLKTRACK_SNAP_READ_RELEASE) {
		snap_release(vol, rd->offset >> shift, (end - 1) >> shift);
		return 0;
	}
	if (pread(vol->fd, buf, rd->length, rd->offset) != (ssize_t)rd->length)
		return -EIO;
	for (b = rd->offset >> vol->block_shift; b << vol->block_shift < end; b++) {
		uint64_t at = b << vol->block_shift;

		if (!s->member[b] || s->need[b])
			continue;	/* the disk's data is right */
		if (!s->copy[b])
			return -EIDRM;	/* released */
		memcpy(buf + (at - rd->offset), s->copy[b], block_bytes(vol, b));
	}
	if (!(rd->flags & BLKTRACK_SNAP_READ_KEEP))
		snap_release(vol, rd->offset >> shift, (end - 1) >> shift);
	return 0;
}

/*
 * A store descriptor as the module's bt_store_file_open() takes it: open
 * for reading and writing, not O_APPEND nor O_DIRECT, a regular file or a
 * block device, and not one of the call's volumes.
 */
static int store_fd_ok(int fd, struct fake_vol **vols, uint32_t n)
{
	struct stat st;
	uint32_t i;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR)
		return -EBADF;
	if (fl & (O_APPEND | O_DIRECT) || fstat(fd, &st) ||
	    (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (st.st_dev == vols[i]->file_dev && st.st_ino == vols[i]->file_ino)
			return -EDEADLK;
	return 0;
}

/* ==== The ioctls ========================================================= */

static int ioc_version(struct fake_kernel *fk, struct blktrack_version *v)
{
	if (v->reserved0 || !zero(v->reserved, sizeof(v->reserved)))
		return -EINVAL;
	v->abi_version = BLKTRACK_ABI_VERSION;
	v->features = BLKTRACK_FEATURE_ABORT_EPOCH |
		      (fk->flags & FAKE_NO_SNAPSHOT ? 0 : BLKTRACK_FEATURE_SNAPSHOT);
	return 0;
}

static int ioc_attach(struct fake_kernel *fk, const struct blktrack_attach *a)
{
	uint32_t bs = a->block_size ? a->block_size : BLKTRACK_BLOCK_SIZE_DEFAULT;
	struct fake_vol *vol;
	dev_t dev;

	if (a->flags || !zero(a->reserved, sizeof(a->reserved)) ||
	    !block_size_ok(a->block_size))
		return -EINVAL;
	if (!devno_ok(&a->dev, &dev))
		return -ENODEV;
	if (find(fk, dev))
		return -EEXIST;
	vol = disk_of(fk, dev);
	if (!vol || !disk_sects(vol))
		return -ENODEV;		/* no such disk, or no media */
	vol->block_shift = __builtin_ctz(bs);
	vol->nr_sects = disk_sects(vol);
	vol->mem_limit = a->mem_limit ? a->mem_limit : MEM_LIMIT_MIB << 20;
	vol->active = btmap_create(blocks_of(vol, vol->nr_sects), vol->mem_limit);
	if (!vol->active)
		return -ENOMEM;
	if (getrandom(vol->generation, 16, 0) != 16)
		return -EIO;
	vol->epoch = 0;
	vol->diskseq = vol->disk_seq;
	vol->reason = BLKTRACK_REASON_NONE;
	vol->history_lost = false;
	vol->losses = vol->ckpt_losses = 0;
	vol->checkpointed = false;
	vol->attached = true;
	return 0;
}

static void volume_free(struct fake_vol *vol)
{
	snap_end(vol);
	if (vol->pending)
		btmap_destroy(vol->pending);
	btmap_destroy(vol->active);
	vol->pending = vol->active = NULL;
	vol->attached = false;
}

static int ioc_detach(struct fake_kernel *fk, const struct blktrack_dev_arg *d)
{
	struct fake_vol *vol;
	dev_t dev;

	if (d->flags || d->reserved0 || !zero(d->reserved, sizeof(d->reserved)))
		return -EINVAL;
	if (!devno_ok(&d->dev, &dev) || !(vol = find(fk, dev)))
		return -ENOENT;
	volume_free(vol);
	return 0;
}

static int ioc_list(struct fake_kernel *fk, struct blktrack_list *l)
{
	struct blktrack_devno *out = (void *)(uintptr_t)l->devs_ptr;
	uint32_t n = 0;
	unsigned int i;

	if (l->flags || l->reserved0 || !zero(l->reserved, sizeof(l->reserved)))
		return -EINVAL;
	for (i = 0; i < fk->nvol; i++) {
		if (!fk->vol[i].attached)
			continue;
		if (n < l->capacity) {
			out[n].major = major(fk->vol[i].dev);
			out[n].minor = minor(fk->vol[i].dev);
		}
		n++;
	}
	l->count = n;
	return 0;
}

static int ioc_status(struct fake_kernel *fk, struct blktrack_status *st)
{
	struct fake_vol *vol;
	dev_t dev;

	if (st->flags || !zero(st->reserved, sizeof(st->reserved)))
		return -EINVAL;
	if (!devno_ok(&st->dev, &dev) || !(vol = find(fk, dev)))
		return -ENOENT;
	check_state(vol);
	st->flags = (vol->pending ? BLKTRACK_STATUS_PENDING : 0) |
		    (vol->snap ? BLKTRACK_STATUS_SNAPSHOT : 0) |
		    (vol->snap && vol->snap->lost ? BLKTRACK_STATUS_SNAP_OVERFLOW : 0);
	st->state = vol->reason == BLKTRACK_REASON_NONE ? BLKTRACK_STATE_TRACKING :
		    BLKTRACK_STATE_INVALID;
	st->reason = vol->reason;
	st->block_size = 1U << vol->block_shift;
	st->dev_size = dev_bytes(vol);
	memcpy(st->stamp.generation, vol->generation, 16);
	st->stamp.epoch = vol->epoch;
	st->active_dirty = btmap_dirty(vol->active);
	st->pending_dirty = vol->pending ? btmap_dirty(vol->pending) : 0;
	st->map_bytes = btmap_bytes(vol->active) +
			(vol->pending ? btmap_bytes(vol->pending) : 0);
	st->mem_limit = vol->mem_limit == UINT64_MAX ? 0 : vol->mem_limit;
	st->start_sect = 0;
	st->diskseq = vol->diskseq;
	return 0;
}

/* volume.c's bt_resize_pending(): the pending map at the disk's new size. */
static int resize_pending(struct fake_vol *vol, uint64_t sects)
{
	uint64_t old_bytes = dev_bytes(vol), pos = 0, start, len;
	uint64_t new_blocks = blocks_of(vol, sects), tail = old_bytes >> vol->block_shift;
	struct btmap *map = btmap_create(new_blocks, vol->mem_limit);

	if (!map)
		return -ENOMEM;
	while (btmap_next_extent(vol->pending, &pos, &start, &len))
		btmap_mark(map, start, len);
	if (tail < new_blocks)
		btmap_mark(map, tail, new_blocks - tail);
	btmap_destroy(vol->pending);
	vol->pending = map;
	vol->nr_sects = sects;
	return 0;
}

/*
 * volume.c's bt_checkpoint(): every volume checked before any changes, then
 * at one instant each active map becomes the pending one.
 */
static int checkpoint(struct fake_kernel *fk, struct blktrack_checkpoint_vol *cv,
		      const dev_t *devs, uint32_t n,
		      const struct blktrack_checkpoint_snap *snap)
{
	struct fake_vol *vols[BLKTRACK_CHECKPOINT_MAX];
	struct btmap *staged[BLKTRACK_CHECKPOINT_MAX] = { 0 };
	uint32_t i;
	int ret = 0;

	for (i = 0; i < n; i++)
		if (!(vols[i] = find(fk, devs[i])))
			return -ENOENT;
	for (i = 0; i < n; i++)
		if (vols[i]->pending)
			return -EBUSY;
	for (i = 0; i < n; i++) {
		check_state(vols[i]);
		vols[i]->ckpt_losses = vols[i]->losses;
	}
	if (snap) {
		if (fk->flags & FAKE_NO_SNAPSHOT)
			return -EOPNOTSUPP;	/* no write interception in this build */
		if (snap->flags & BLKTRACK_SNAP_STORE_FD) {
			ret = store_fd_ok(snap->store_fd, vols, n);
			if (ret)
				return ret;
		}
		for (i = 0; i < n && !ret; i++) {
			vols[i]->snap = snap_create(snap->store_limit, snap->flags);
			if (!vols[i]->snap)
				ret = -ENOMEM;
		}
	}
	for (i = 0; i < n && !ret; i++) {
		uint64_t now = disk_sects(vols[i]);

		staged[i] = btmap_create(blocks_of(vols[i], now ? now : vols[i]->nr_sects),
					 vols[i]->mem_limit);
		if (!staged[i])
			ret = -ENOMEM;
	}
	if (ret) {
		for (i = 0; i < n; i++) {
			snap_end(vols[i]);
			if (staged[i])
				btmap_destroy(staged[i]);
		}
		return ret;
	}

	/* The instant. */
	for (i = 0; i < n; i++) {
		struct fake_vol *vol = vols[i];
		uint64_t now = disk_sects(vol);

		vol->pending = vol->active;
		vol->active = staged[i];
		vol->checkpointed = true;
		if (now && now != vol->nr_sects)
			ret = resize_pending(vol, now);
		if (!ret && vol->snap)
			ret = snap_fill(vol);
		if (ret)
			return ret;	/* out of memory in a test: not undone */
		memcpy(cv[i].stamp.generation, vol->generation, 16);
		cv[i].stamp.epoch = vol->epoch;
		cv[i].dirty = btmap_dirty(vol->pending);
	}
	return 0;
}

/* main.c's bt_checkpoint_vols(): the volumes of CHECKPOINT and CHECKPOINT_SNAP. */
static int checkpoint_vols(struct fake_kernel *fk, uint64_t vols_ptr, uint32_t count,
			   const struct blktrack_checkpoint_snap *snap)
{
	struct blktrack_checkpoint_vol *cv = (void *)(uintptr_t)vols_ptr;
	dev_t devs[BLKTRACK_CHECKPOINT_MAX];
	uint32_t i, j;

	for (i = 0; i < count; i++) {
		if (cv[i].reserved0)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (cv[j].dev.major == cv[i].dev.major &&
			    cv[j].dev.minor == cv[i].dev.minor)
				return -EINVAL;	/* one volume, one instant */
	}
	for (i = 0; i < count; i++)
		if (!devno_ok(&cv[i].dev, &devs[i]))
			return -ENOENT;
	return checkpoint(fk, cv, devs, count, snap);
}

static int ioc_checkpoint(struct fake_kernel *fk, const struct blktrack_checkpoint *c)
{
	if (c->flags || !zero(c->reserved, sizeof(c->reserved)) || !c->count ||
	    c->count > BLKTRACK_CHECKPOINT_MAX)
		return -EINVAL;
	return checkpoint_vols(fk, c->vols_ptr, c->count, NULL);
}

static int ioc_checkpoint_snap(struct fake_kernel *fk,
			       const struct blktrack_checkpoint_snap *c)
{
	if ((c->flags & ~(BLKTRACK_SNAP_ALL | BLKTRACK_SNAP_STORE_FD)) || c->reserved0 ||
	    c->reserved || !c->count || c->count > BLKTRACK_CHECKPOINT_MAX)
		return -EINVAL;
	if (!(c->flags & BLKTRACK_SNAP_STORE_FD) && c->store_fd)
		return -EINVAL;
	return checkpoint_vols(fk, c->vols_ptr, c->count, c);
}

/* volume.c's bt_read_extents(), at most fk->page extents a call when set. */
static int ioc_read_extents(struct fake_kernel *fk, struct blktrack_read_extents *rd)
{
	struct blktrack_extent *out = (void *)(uintptr_t)rd->extents_ptr;
	bool active = rd->flags & BLKTRACK_READ_ACTIVE;
	uint32_t cap = fk->page && fk->page < rd->capacity ? fk->page : rd->capacity;
	uint64_t size, pos, start, len, end;
	struct fake_vol *vol;
	struct btmap *map;
	unsigned int shift;
	uint32_t n = 0;
	bool done;
	dev_t dev;

	if ((rd->flags & ~BLKTRACK_READ_ACTIVE) || rd->reserved0 ||
	    !zero(rd->reserved, sizeof(rd->reserved)) || !rd->capacity)
		return -EINVAL;
	if (!devno_ok(&rd->dev, &dev) || !(vol = find(fk, dev)))
		return -ENOENT;
	if (!active && !vol->pending)
		return -ENODATA;
	if (!active && !stamp_matches(vol, &rd->stamp))
		return -ESTALE;
	size = dev_bytes(vol);
	shift = vol->block_shift;
	if (rd->cursor > size || (rd->cursor != size && rd->cursor & ((1ULL << shift) - 1)))
		return -EINVAL;
	map = active ? vol->active : vol->pending;
	done = rd->cursor == size;
	pos = rd->cursor >> shift;
	while (!done && n < cap) {
		if (!btmap_next_extent(map, &pos, &start, &len)) {
			done = true;
			break;
		}
		end = (start + len) << shift;
		out[n].offset = start << shift;
		out[n].length = (end < size ? end : size) - out[n].offset;
		n++;
	}
	if (!done) {
		uint64_t peek = pos;

		/* Full array: say "done" now rather than on an empty call. */
		done = !btmap_next_extent(map, &peek, &start, &len);
	}
	rd->count = n;
	rd->cursor = done ? size : (pos << shift < size ? pos << shift : size);
	return 0;
}

static int find_pending(struct fake_kernel *fk, const struct blktrack_stamp_arg *a,
			struct fake_vol **out)
{
	dev_t dev;

	if (a->flags || a->reserved0 || !zero(a->reserved, sizeof(a->reserved)))
		return -EINVAL;
	if (!devno_ok(&a->dev, &dev) || !(*out = find(fk, dev)))
		return -ENOENT;
	if (!(*out)->pending)
		return -ENODATA;
	if (!stamp_matches(*out, &a->stamp))
		return -ESTALE;
	return 0;
}

static int ioc_commit(struct fake_kernel *fk, const struct blktrack_stamp_arg *a)
{
	struct fake_vol *vol;
	int ret = find_pending(fk, a, &vol);

	if (ret)
		return ret;
	snap_end(vol);
	btmap_destroy(vol->pending);
	vol->pending = NULL;
	vol->epoch++;
	/* A new history starts, unless the media changed after the checkpoint. */
	check_state(vol);
	if (vol->history_lost && vol->losses == vol->ckpt_losses) {
		vol->history_lost = false;
		vol->reason = BLKTRACK_REASON_NONE;
	}
	return 0;
}

static int ioc_abort(struct fake_kernel *fk, const struct blktrack_stamp_arg *a)
{
	struct fake_vol *vol;
	int ret = find_pending(fk, a, &vol);

	if (ret)
		return ret;
	snap_end(vol);
	btmap_merge(vol->active, vol->pending);
	btmap_destroy(vol->pending);
	vol->pending = NULL;
	vol->epoch += BLKTRACK_EPOCH_ABORT;
	return 0;
}

static int ioc_snap_read(struct fake_kernel *fk, const struct blktrack_snap_read *rd)
{
	struct fake_vol *vol;
	dev_t dev;

	if ((rd->flags & ~(BLKTRACK_SNAP_READ_KEEP | BLKTRACK_SNAP_READ_RELEASE)) ||
	    rd->reserved0 || !zero(rd->reserved, sizeof(rd->reserved)) || !rd->length)
		return -EINVAL;
	if (rd->flags & BLKTRACK_SNAP_READ_RELEASE) {
		if ((rd->flags & BLKTRACK_SNAP_READ_KEEP) || rd->buf_ptr)
			return -EINVAL;
	} else if (rd->length > BLKTRACK_SNAP_READ_MAX) {
		return -E2BIG;
	}
	if (!devno_ok(&rd->dev, &dev) || !(vol = find(fk, dev)))
		return -ENOENT;
	if (!vol->snap)
		return -ENODATA;
	if (!stamp_matches(vol, &rd->stamp))
		return -ESTALE;
	return snap_read(vol, rd);
}

static int ioc_snap_status(struct fake_kernel *fk, struct blktrack_snap_status *st)
{
	struct fake_vol *vol;
	struct fake_snap *s;
	dev_t dev;

	if (st->flags || st->error || !zero(st->reserved, sizeof(st->reserved)))
		return -EINVAL;
	if (!devno_ok(&st->dev, &dev) || !(vol = find(fk, dev)))
		return -ENOENT;
	s = vol->snap;
	if (!s)
		return -ENODATA;
	st->flags = s->lost ? BLKTRACK_STATUS_SNAP_OVERFLOW : 0;
	st->error = -s->error;
	st->protected_blocks = s->protected_blocks;
	st->uncopied_blocks = s->uncopied;
	st->copied_blocks = s->copied;
	st->released_blocks = s->released;
	st->held_writes = s->held_writes;
	st->store_bytes = s->store_bytes;
	st->store_limit = s->store_limit;
	return 0;
}

/* main.c's bt_ioctl() under the lock. */
static int dispatch(struct fake_kernel *fk, unsigned long cmd, void *arg)
{
	switch (cmd) {
	case BLKTRACK_IOC_VERSION:
		return ioc_version(fk, arg);
	case BLKTRACK_IOC_ATTACH:
		return ioc_attach(fk, arg);
	case BLKTRACK_IOC_DETACH:
		return ioc_detach(fk, arg);
	case BLKTRACK_IOC_LIST:
		return ioc_list(fk, arg);
	case BLKTRACK_IOC_STATUS:
		return ioc_status(fk, arg);
	case BLKTRACK_IOC_CHECKPOINT:
		return ioc_checkpoint(fk, arg);
	case BLKTRACK_IOC_READ_EXTENTS:
		return ioc_read_extents(fk, arg);
	case BLKTRACK_IOC_COMMIT:
		return ioc_commit(fk, arg);
	case BLKTRACK_IOC_ABORT:
		return ioc_abort(fk, arg);
	case BLKTRACK_IOC_CHECKPOINT_SNAP:
		return ioc_checkpoint_snap(fk, arg);
	case BLKTRACK_IOC_SNAP_READ:
		return ioc_snap_read(fk, arg);
	case BLKTRACK_IOC_SNAP_STATUS:
		return ioc_snap_status(fk, arg);
	default:
		return -ENOTTY;		/* RESTORE: not served */
	}
}

static void log_call(struct fake_kernel *fk, int idx, int err)
{
	int n;

	if (fk->log_len >= sizeof(fk->log) - 64)
		return;
	n = snprintf(fk->log + fk->log_len, sizeof(fk->log) - fk->log_len, "%s%s",
		     fk->log_len ? " " : "", idx < 0 ? "?" : ioctls[idx].name);
	fk->log_len += n;
	if (err)
		fk->log_len += snprintf(fk->log + fk->log_len, sizeof(fk->log) - fk->log_len,
					":%d", err);
}

/* One ioctl, counted, logged, failed when a rule says so. */
static int fake_ioctl_here(struct fake_kernel *fk, unsigned long cmd, void *arg)
{
	int idx = ioctl_index(cmd), err = 0;
	unsigned int i;

	rcu_thread();
	pthread_mutex_lock(&fk->lock);
	if (idx < 0) {
		err = -ENOTTY;
	} else {
		fk->calls[idx]++;
		if (cmd == BLKTRACK_IOC_RESTORE)
			err = -ENOTTY;	/* not served: as a module without it */
		for (i = 0; i < NR_RULES; i++) {
			if (!err && fk->rule[i].cmd == cmd &&
			    fk->rule[i].at == fk->calls[idx]) {
				err = fk->rule[i].err;
				fk->rule[i].cmd = 0;
			}
		}
	}
	if (!err && *(const uint64_t *)arg != _IOC_SIZE(cmd))
		err = -EMSGSIZE;
	if (!err)
		err = dispatch(fk, cmd, arg);
	log_call(fk, idx, err);
	pthread_mutex_unlock(&fk->lock);
	return err;
}

static int write_here(struct fake_kernel *fk, dev_t dev, uint64_t off, size_t len,
		      const void *data)
{
	struct fake_vol *vol;
	uint64_t first, last;
	int err = 0;

	rcu_thread();
	pthread_mutex_lock(&fk->lock);
	vol = disk_of(fk, dev);
	if (!vol) {
		err = -ENODEV;
		goto out;
	}
	first = off >> vol->block_shift;
	last = (off + len - 1) >> vol->block_shift;
	if (len && vol->attached && vol->snap)
		snap_cow(vol, first, last);
	if (pwrite(vol->fd, data, len, off) != (ssize_t)len) {
		err = -EIO;
		goto out;
	}
	if (len && vol->attached)
		mark_active(vol, first, last - first + 1);
out:
	pthread_mutex_unlock(&fk->lock);
	return err;
}

/* ==== The table a context uses =========================================== */

static int remote_ioctl(struct fake_kernel *fk, unsigned long cmd, void *arg);
static int remote_write(struct fake_kernel *fk, dev_t dev, uint64_t off, size_t len,
			const void *data);

static struct fake_kernel *fake_of(struct blktrack_ctx *ctx)
{
	return (struct fake_kernel *)ctx->kernel;	/* ops is the first member */
}

static int op_ioctl(struct blktrack_ctx *ctx, unsigned long cmd, void *arg)
{
	struct fake_kernel *fk = fake_of(ctx);

	return fk->remote >= 0 ? remote_ioctl(fk, cmd, arg) : fake_ioctl_here(fk, cmd, arg);
}

/*
 * The disk whose file @path is; -ENOTBLK for any other file, as stat() says,
 * and -ENODEV for a real block device: none is the fake's.
 */
static int op_dev_from_path(struct blktrack_ctx *ctx, const char *path, dev_t *dev)
{
	struct fake_kernel *fk = fake_of(ctx);
	struct stat st;
	unsigned int i;

	if (stat(path, &st))
		return -errno;
	for (i = 0; i < fk->nvol; i++) {
		if (fk->vol[i].file_dev == st.st_dev && fk->vol[i].file_ino == st.st_ino) {
			*dev = fk->vol[i].dev;
			return 0;
		}
	}
	return S_ISBLK(st.st_mode) ? -ENODEV : -ENOTBLK;
}

/* A stable identity, as a filesystem UUID would give: "uuid:fake-MAJ-MIN". */
static int op_volume_identify(struct blktrack_ctx *ctx, const char *path,
			      struct blktrack_volume_id *vid)
{
	dev_t dev;
	int err = op_dev_from_path(ctx, path, &dev);

	if (err)
		return err;
	memset(vid, 0, sizeof(*vid));
	snprintf(vid->id, sizeof(vid->id), "fake-%u-%u", major(dev), minor(dev));
	snprintf(vid->id_type, sizeof(vid->id_type), "uuid");
	return 0;
}

/* ==== A child's calls served here ======================================== */

enum { REQ_IOCTL = 1, REQ_WRITE };

struct req {
	uint32_t kind;
	uint32_t arg_len;	/* the ioctl's struct, sent first */
	uint64_t cmd;
	uint64_t dev, off;	/* a write */
	uint64_t in_len;	/* bytes sent after the struct: an array in, a write's data */
	uint64_t out_len;	/* bytes the call may fill: its array or buffer */
};

struct resp {
	int32_t err;
	uint32_t arg_len;	/* the struct back (0 on failure) */
	uint64_t out_len;	/* then these bytes of the array or buffer */
};

static int xfer(int fd, void *buf, size_t len, bool out)
{
	char *p = buf;

	while (len) {
		ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Where an ioctl's argument points (its pointer field in the struct), and
 * how many bytes go in and may come out there.
 */
static __u64 *arg_buffer(unsigned long cmd, void *arg, uint64_t *in, uint64_t *out)
{
	*in = *out = 0;
	switch (cmd) {
	case BLKTRACK_IOC_CHECKPOINT: {
		struct blktrack_checkpoint *c = arg;

		if (c->count <= BLKTRACK_CHECKPOINT_MAX)
			*in = *out = c->count * sizeof(struct blktrack_checkpoint_vol);
		return &c->vols_ptr;
	}
	case BLKTRACK_IOC_CHECKPOINT_SNAP: {
		struct blktrack_checkpoint_snap *c = arg;

		if (c->count <= BLKTRACK_CHECKPOINT_MAX)
			*in = *out = c->count * sizeof(struct blktrack_checkpoint_vol);
		return &c->vols_ptr;
	}
	case BLKTRACK_IOC_READ_EXTENTS: {
		struct blktrack_read_extents *rd = arg;

		*out = (uint64_t)(rd->capacity < 65536 ? rd->capacity : 65536) *
		       sizeof(struct blktrack_extent);
		return &rd->extents_ptr;
	}
	case BLKTRACK_IOC_LIST: {
		struct blktrack_list *l = arg;

		*out = (uint64_t)(l->capacity < 65536 ? l->capacity : 65536) *
		       sizeof(struct blktrack_devno);
		return &l->devs_ptr;
	}
	case BLKTRACK_IOC_SNAP_READ: {
		struct blktrack_snap_read *rd = arg;

		if (!(rd->flags & BLKTRACK_SNAP_READ_RELEASE) &&
		    rd->length <= BLKTRACK_SNAP_READ_MAX)
			*out = rd->length;
		return &rd->buf_ptr;
	}
	default:
		return NULL;
	}
}

/* What arg_buffer() made room for: no more entries than that. */
static void clamp_capacity(unsigned long cmd, void *arg)
{
	struct blktrack_read_extents *rd = arg;
	struct blktrack_list *l = arg;

	if (cmd == BLKTRACK_IOC_READ_EXTENTS && rd->capacity > 65536)
		rd->capacity = 65536;
	if (cmd == BLKTRACK_IOC_LIST && l->capacity > 65536)
		l->capacity = 65536;
}

/* Serve one request of the child; -EPIPE at its end. */
static int serve_one(struct fake_kernel *fk, int fd)
{
	uint8_t arg[256] __attribute__((aligned(8)));
	struct resp rs = { 0 };
	uint64_t in, out;
	struct req rq;
	__u64 *ptr;
	void *buf = NULL;
	int err = xfer(fd, &rq, sizeof(rq), false);

	if (err)
		return err;
	if (rq.arg_len > sizeof(arg) || rq.in_len > 1ULL << 30)
		return -EPROTO;
	err = xfer(fd, arg, rq.arg_len, false);
	if (!err) {
		buf = malloc((rq.in_len > rq.out_len ? rq.in_len : rq.out_len) + 1);
		err = buf ? xfer(fd, buf, rq.in_len, false) : -ENOMEM;
	}
	if (err)
		goto out;
	if (rq.kind == REQ_WRITE) {
		rs.err = write_here(fk, rq.dev, rq.off, rq.in_len, buf);
	} else {
		ptr = rq.arg_len ? arg_buffer(rq.cmd, arg, &in, &out) : NULL;
		if (ptr && (*ptr || out))
			*ptr = (uintptr_t)buf;
		clamp_capacity(rq.cmd, arg);
		rs.err = fake_ioctl_here(fk, rq.cmd, arg);
		if (!rs.err) {
			rs.arg_len = rq.arg_len;
			rs.out_len = rq.out_len;
		}
	}
	/* The child may be gone (killed): its reply goes nowhere. */
	if (!xfer(fd, &rs, sizeof(rs), true) && !xfer(fd, arg, rs.arg_len, true))
		xfer(fd, buf, rs.out_len, true);
out:
	free(buf);
	return err;
}

static int remote_call(struct fake_kernel *fk, struct req *rq, void *arg, const void *in,
		       void *out)
{
	uint64_t saved = 0, dummy;
	__u64 *ptr = NULL;
	struct resp rs;
	int err;

	if (rq->kind == REQ_IOCTL && (ptr = arg_buffer(rq->cmd, arg, &dummy, &dummy)))
		saved = *ptr;
	pthread_mutex_lock(&fk->remote_lock);
	err = xfer(fk->remote, rq, sizeof(*rq), true);
	if (!err)
		err = xfer(fk->remote, arg, rq->arg_len, true);
	if (!err)
		err = xfer(fk->remote, (void *)in, rq->in_len, true);
	if (!err)
		err = xfer(fk->remote, &rs, sizeof(rs), false);
	if (!err && rs.arg_len)
		err = xfer(fk->remote, arg, rs.arg_len, false);
	if (!err && rs.out_len)
		err = xfer(fk->remote, out, rs.out_len, false);
	pthread_mutex_unlock(&fk->remote_lock);
	if (ptr)
		*ptr = saved;	/* the caller's pointer, not the server's */
	return err ? err : rs.err;
}

static int remote_ioctl(struct fake_kernel *fk, unsigned long cmd, void *arg)
{
	struct req rq = { .kind = REQ_IOCTL, .cmd = cmd };
	__u64 *ptr;
	void *buf = NULL;

	if (ioctl_index(cmd) >= 0)
		rq.arg_len = _IOC_SIZE(cmd);
	ptr = rq.arg_len ? arg_buffer(cmd, arg, &rq.in_len, &rq.out_len) : NULL;
	if (ptr)
		buf = (void *)(uintptr_t)*ptr;
	return remote_call(fk, &rq, arg, buf, buf);
}

static int remote_write(struct fake_kernel *fk, dev_t dev, uint64_t off, size_t len,
			const void *data)
{
	struct req rq = { .kind = REQ_WRITE, .dev = dev, .off = off, .in_len = len };

	return remote_call(fk, &rq, NULL, data, NULL);
}

int fake_kernel_run_child(struct fake_kernel *fk, void (*fn)(void *arg), void *arg)
{
	int sv[2], status;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (!pid) {
		close(sv[0]);
		fk->remote = sv[1];
		fn(arg);
		_exit(0);
	}
	close(sv[1]);
	while (!serve_one(fk, sv[0]))
		;
	close(sv[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status;
}

/* ==== The test's API ===================================================== */

struct fake_kernel *fake_kernel_new(unsigned int flags)
{
	struct fake_kernel *fk = calloc(1, sizeof(*fk));

	if (!fk)
		return NULL;
	fk->ops.ioctl = op_ioctl;
	fk->ops.dev_from_path = op_dev_from_path;
	fk->ops.volume_identify = op_volume_identify;
	fk->flags = flags;
	fk->remote = -1;
	pthread_mutex_init(&fk->lock, NULL);
	pthread_mutex_init(&fk->remote_lock, NULL);
	rcu_thread();
	/* Belt and braces: nothing here may load a module into this host's kernel. */
	setenv("BLKTRACK_MODULE", "none", 1);
	return fk;
}

void fake_kernel_free(struct fake_kernel *fk)
{
	unsigned int i;

	if (!fk)
		return;
	rcu_thread();
	for (i = 0; i < fk->nvol; i++) {
		if (fk->vol[i].attached)
			volume_free(&fk->vol[i]);
		close(fk->vol[i].fd);
	}
	pthread_mutex_destroy(&fk->lock);
	pthread_mutex_destroy(&fk->remote_lock);
	free(fk);
}

int fake_kernel_add_volume(struct fake_kernel *fk, const char *path, dev_t *dev)
{
	struct fake_vol *vol;
	unsigned int minor = 0;
	char sys[64];
	struct stat st;

	if (fk->nvol == FAKE_VOLUMES)
		return -ENOSPC;
	vol = &fk->vol[fk->nvol];
	vol->fd = open(path, O_RDWR | O_CLOEXEC);
	if (vol->fd < 0 || fstat(vol->fd, &st))
		return -errno;
	/* A minor no disk of this machine has: nothing is mounted from it. */
	if (fk->nvol)
		minor = minor(fk->vol[fk->nvol - 1].dev);
	do {
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", FAKE_MAJOR, ++minor);
	} while (!access(sys, F_OK));
	vol->dev = makedev(FAKE_MAJOR, minor);
	snprintf(vol->path, sizeof(vol->path), "%s", path);
	vol->file_dev = st.st_dev;
	vol->file_ino = st.st_ino;
	vol->disk_seq = 1;
	fk->nvol++;
	*dev = vol->dev;
	return 0;
}

void fake_kernel_install(struct fake_kernel *fk, struct blktrack_ctx *ctx)
{
	ctx->kernel = &fk->ops;
}

struct blktrack_ctx *fake_kernel_context(struct fake_kernel *fk)
{
	struct blktrack_ctx *ctx = blktrack_new();

	if (ctx)
		fake_kernel_install(fk, ctx);
	return ctx;
}

int fake_kernel_write(struct fake_kernel *fk, dev_t dev, uint64_t off, size_t len,
		      const void *data)
{
	if (fk->remote >= 0)
		return remote_write(fk, dev, off, len, data);
	return write_here(fk, dev, off, len, data);
}

void fake_kernel_media_change(struct fake_kernel *fk, dev_t dev)
{
	struct fake_vol *vol;

	pthread_mutex_lock(&fk->lock);
	vol = disk_of(fk, dev);
	if (vol)
		vol->disk_seq++;
	pthread_mutex_unlock(&fk->lock);
}

void fake_kernel_fail(struct fake_kernel *fk, unsigned long cmd, unsigned int nth, int err)
{
	int idx = ioctl_index(cmd);
	unsigned int i;

	pthread_mutex_lock(&fk->lock);
	for (i = 0; idx >= 0 && nth && i < NR_RULES; i++) {
		if (fk->rule[i].cmd)
			continue;
		fk->rule[i].cmd = cmd;
		fk->rule[i].at = fk->calls[idx] + nth;
		fk->rule[i].err = -abs(err);
		break;
	}
	pthread_mutex_unlock(&fk->lock);
}

void fake_kernel_set_page(struct fake_kernel *fk, unsigned int extents)
{
	pthread_mutex_lock(&fk->lock);
	fk->page = extents;
	pthread_mutex_unlock(&fk->lock);
}

unsigned int fake_kernel_calls(struct fake_kernel *fk, unsigned long cmd)
{
	int idx = ioctl_index(cmd);
	unsigned int n;

	pthread_mutex_lock(&fk->lock);
	n = idx < 0 ? 0 : fk->calls[idx];
	pthread_mutex_unlock(&fk->lock);
	return n;
}

const char *fake_kernel_log(struct fake_kernel *fk)
{
	return fk->log;
}

void fake_kernel_log_clear(struct fake_kernel *fk)
{
	pthread_mutex_lock(&fk->lock);
	fk->log[0] = 0;
	fk->log_len = 0;
	pthread_mutex_unlock(&fk->lock);
}

int fake_kernel_map(struct fake_kernel *fk, dev_t dev, enum fake_map which, bool *blocks,
		    uint64_t n)
{
	uint64_t pos = 0, start, len, i;
	struct fake_vol *vol;
	struct btmap *map;
	int err = 0;

	rcu_thread();
	memset(blocks, 0, n * sizeof(*blocks));
	pthread_mutex_lock(&fk->lock);
	vol = find(fk, dev);
	map = !vol ? NULL : which == FAKE_PENDING ? vol->pending : vol->active;
	if (!map)
		err = vol ? -ENODATA : -ENOENT;
	while (map && btmap_next_extent(map, &pos, &start, &len))
		for (i = start; i < start + len && i < n; i++)
			blocks[i] = true;
	pthread_mutex_unlock(&fk->lock);
	return err;
}

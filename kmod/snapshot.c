// SPDX-License-Identifier: GPL-2.0
/*
 * snapshot.c - copy-before-write snapshots (doc/KERNEL.md, "Snapshot").
 *
 * A snapshot protects the blocks of a volume's pending map (or, with
 * BLKTRACK_SNAP_ALL, every block of the volume) from the instant of its
 * checkpoint: before a write reaches one of them, the
 * block's old contents are read into a store: memory, or a file or block
 * device the caller gave (struct bt_store_file). SNAP_READ returns
 * the volume as of the checkpoint: copies from the store, else the device
 * (a protected block that was not copied was not overwritten).
 *
 * Writes are intercepted at the entry of submit_bio_noacct() by an ftrace
 * callback that may change the return address (IPMODIFY). It runs in the
 * submitter's context with preemption off and never sleeps: a write that
 * needs a copy is queued and the call is redirected to bt_snap_held(), an
 * empty function, so submit_bio_noacct() does not run; a worker copies the
 * blocks and resubmits the bio. Everything else passes untouched. Tracking
 * (tracker.c) never depends on any of this.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/magic.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "snapshot.h"
#include "volume.h"

/* Blocks per leaf of a protection set: one page of bits. */
#define BT_SET_REGION_BLOCKS	(PAGE_SIZE * 8UL)
/* SNAP_READ reads the device in pieces of this size. */
#define BT_SNAP_READ_CHUNK	(1U << 20)

enum bt_snap_state {
	BT_SNAP_ARMED,		/* checkpoint under way: hold every write to the disk */
	BT_SNAP_ACTIVE,		/* copy protected blocks before writes reach them */
	BT_SNAP_LOST,		/* store full or a copy failed: writes pass */
	BT_SNAP_ENDING,		/* being freed: writes pass */
};

struct bt_snap_batch;

/* One block's old contents. */
struct bt_snap_copy {
	unsigned int nr_pages;
	struct page *pages[];
};

/*
 * A store in a file or on a block device (BLKTRACK_SNAP_STORE_FD), shared
 * by the snapshots of one CHECKPOINT_SNAP: slots of the largest block
 * size of its volumes, the lowest free one first, so released space is
 * used again. Page-cache writes: nothing waits for the store's disk unless
 * the page cache is short, and its contents never need to survive a crash.
 */
struct bt_store_file {
	struct kref ref;
	struct file *file;
	unsigned int slot_shift;
	int max_slot;
	struct ida slots;
};

struct bt_snap {
	struct list_head node;		/* bt_snaps, under bt_ctl_mutex */
	struct bt_volume *vol;
	struct block_device *bdev;	/* the volume's, pinned by the volume */
	struct gendisk *disk;
	sector_t start_sect;		/* first sector on the disk */
	sector_t nr_sects;		/* the pending map's size */
	unsigned int block_shift;
	unsigned int sect_shift;	/* block_shift - SECTOR_SHIFT */
	int state;			/* enum bt_snap_state: READ_ONCE/WRITE_ONCE */

	/*
	 * The protection set, a leaf of bits per region: "member" is the
	 * pending map at the checkpoint, "need" what is still to be copied or
	 * read. Built by bt_snap_fill() while writes are held, then only
	 * need bits are cleared, under store_mutex. NULL leaf: nothing there.
	 * With @all, every block is a member (no member leaves) and each need
	 * leaf starts as bt_set_full, shared and read-only: the first clear
	 * in a region gives it a leaf of its own (bt_need_own()), a release
	 * of the whole region makes it NULL.
	 */
	bool all;
	u64 nr_blocks;
	unsigned long nr_regions;
	unsigned long **member;
	unsigned long **need;

	/*
	 * Raw: the interceptor takes it with preemption off, where a
	 * spinlock_t would be a sleeping lock on PREEMPT_RT.
	 */
	raw_spinlock_t held_lock;
	struct bio_list held;		/* writes waiting for a copy */
	struct work_struct work;
	/* Writes on @held; past BT_SNAP_BACKLOG_MAX the worker loses the snapshot. */
	atomic_t backlog;
	bool overrun;

	struct mutex store_mutex;
	/*
	 * block -> its copy: a struct bt_snap_copy in memory, or with @file
	 * the slot of the file it was written to (xa_mk_value()).
	 */
	struct xarray store;
	struct bt_store_file *file;
	struct bt_snap_batch *batch;	/* the worker's copies in flight */
	u64 store_bytes;
	u64 store_limit;
	int error;			/* why the snapshot was lost (-errno) */

	u64 protected_blocks;
	atomic64_t uncopied;
	atomic64_t copied;
	atomic64_t released;
	atomic64_t held_writes;
};

/* What the interceptor reads: every live snapshot. */
struct bt_snap_table {
	unsigned int nr;
	struct bt_snap *s[];
};

static struct bt_snap_table __rcu *bt_snap_table;
static LIST_HEAD(bt_snaps);		/* under bt_ctl_mutex */
static unsigned int bt_nr_snaps;
static struct workqueue_struct *bt_snap_wq;
static struct bio_set bt_snap_bioset;
/*
 * The worker's allocations: writes wait for it, so it fails fast (the
 * snapshot is lost, the writes go) rather than loop in reclaim, which may
 * itself wait for those writes.
 */
#define BT_SNAP_GFP		(GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN)
/*
 * Most writes held and not yet taken by the worker: a worker this far
 * behind (a slow store, memory pressure) loses the snapshot and lets them
 * go, rather than hold ever more of the machine's writes.
 */
#define BT_SNAP_BACKLOG_MAX	4096
static bool bt_snap_hooked;		/* under bt_ctl_mutex */
static bool bt_snap_filtered;		/* bt_snap_ops has a filter to free */

static unsigned int bt_snap_limit_mib = 256;
module_param_named(snap_limit_mib, bt_snap_limit_mib, uint, 0444);
MODULE_PARM_DESC(snap_limit_mib,
		 "Default snapshot store limit per volume in MiB (default 256)");

/* ==== The protection set ================================================ */

/*
 * Every bit set: the need leaf of each region of a BLKTRACK_SNAP_ALL
 * snapshot until the region's first clear. Read-only after module init, so
 * a clear that missed bt_need_own() faults instead of corrupting it.
 */
static unsigned long bt_set_full[BITS_TO_LONGS(BT_SET_REGION_BLOCKS)] __ro_after_init;

/* Any context; a need leaf may be replaced under store_mutex meanwhile. */
static notrace bool bt_set_test(unsigned long **set, u64 block)
{
	unsigned long *leaf = READ_ONCE(set[block / BT_SET_REGION_BLOCKS]);

	return leaf && test_bit(block % BT_SET_REGION_BLOCKS, leaf);
}

static bool bt_snap_member(const struct bt_snap *s, u64 block)
{
	return s->all || bt_set_test(s->member, block);
}

/* The volume's blocks in region @r. */
static unsigned long bt_region_blocks(const struct bt_snap *s, unsigned long r)
{
	return min_t(u64, BT_SET_REGION_BLOCKS, s->nr_blocks - (u64)r * BT_SET_REGION_BLOCKS);
}

/*
 * Give region @r a need leaf of its own before a bit of it is cleared.
 * Under store_mutex. The copy is complete before it is published: the
 * interceptor may load either leaf, and both say the same until a clear.
 */
static int bt_need_own(struct bt_snap *s, unsigned long r, gfp_t gfp)
{
	unsigned long *leaf;

	lockdep_assert_held(&s->store_mutex);
	if (s->need[r] != bt_set_full)
		return 0;
	leaf = (unsigned long *)get_zeroed_page(gfp);
	if (!leaf)
		return -ENOMEM;
	atomic_long_inc(&blktrack_allocations);
	bitmap_set(leaf, 0, bt_region_blocks(s, r));
	smp_store_release(&s->need[r], leaf);
	return 0;
}

/* Is any block of [@first, @last] still to be copied? Any context. */
static notrace bool bt_set_any_need(const struct bt_snap *s, u64 first, u64 last)
{
	while (first <= last) {
		unsigned long r = first / BT_SET_REGION_BLOCKS;
		unsigned long off = first % BT_SET_REGION_BLOCKS;
		unsigned long end = min_t(u64, BT_SET_REGION_BLOCKS, off + (last - first) + 1);
		unsigned long *leaf = READ_ONCE(s->need[r]);

		if (leaf && find_next_bit(leaf, end, off) < end)
			return true;
		first += end - off;
	}
	return false;
}

static void bt_set_free(unsigned long **set, unsigned long nr)
{
	unsigned long r;

	if (!set)
		return;
	for (r = 0; r < nr; r++)
		if (set[r] && set[r] != bt_set_full) {
			free_page((unsigned long)set[r]);
			atomic_long_dec(&blktrack_allocations);
		}
	kvfree(set);
	atomic_long_dec(&blktrack_allocations);
}

static unsigned long **bt_set_alloc(unsigned long nr)
{
	/* Writes are held (bt_snap_fill()): fail fast rather than reclaim hard. */
	unsigned long **set = kvcalloc(nr, sizeof(*set), GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN);

	if (set)
		atomic_long_inc(&blktrack_allocations);
	return set;
}

static int bt_set_add(unsigned long **set, u64 first, u64 n)
{
	while (n) {
		unsigned long r = first / BT_SET_REGION_BLOCKS;
		unsigned long off = first % BT_SET_REGION_BLOCKS;
		unsigned long len = min_t(u64, n, BT_SET_REGION_BLOCKS - off);

		if (!set[r]) {
			set[r] = (unsigned long *)get_zeroed_page(GFP_NOIO | __GFP_NORETRY |
								  __GFP_NOWARN);
			if (!set[r])
				return -ENOMEM;
			atomic_long_inc(&blktrack_allocations);
		}
		bitmap_set(set[r], off, len);
		first += len;
		n -= len;
	}
	return 0;
}

/* ==== The store ========================================================= */

/* A block's bytes: the volume's last block may be short. */
static u64 bt_block_bytes(const struct bt_snap *s, u64 block)
{
	u64 start = block << s->block_shift, size = (u64)s->nr_sects << SECTOR_SHIFT;

	return min_t(u64, 1ULL << s->block_shift, size - start);
}


static void bt_copy_free(struct bt_snap_copy *c)
{
	unsigned int i;

	for (i = 0; i < c->nr_pages; i++)
		if (c->pages[i])
			__free_page(c->pages[i]);
	kfree(c);
	atomic_long_dec(&blktrack_allocations);
}

static struct bt_snap_copy *bt_copy_alloc(unsigned int nr_pages, gfp_t gfp)
{
	struct bt_snap_copy *c = kzalloc(struct_size(c, pages, nr_pages), gfp);
	unsigned int i;

	if (!c)
		return NULL;
	atomic_long_inc(&blktrack_allocations);
	c->nr_pages = nr_pages;
	for (i = 0; i < nr_pages; i++) {
		c->pages[i] = alloc_page(gfp);
		if (!c->pages[i]) {
			bt_copy_free(c);
			return NULL;
		}
	}
	return c;
}

/* ---- A file or block device as the store ------------------------------ */

static void bt_store_file_release(struct kref *ref)
{
	struct bt_store_file *sf = container_of(ref, struct bt_store_file, ref);

	ida_destroy(&sf->slots);
	fput(sf->file);
	kfree(sf);
	atomic_long_dec(&blktrack_allocations);
}

void bt_store_file_put(struct bt_store_file *sf)
{
	if (sf)
		kref_put(&sf->ref, bt_store_file_release);
}

/* Does @bdev share a sector with @vol? */
static bool bt_bdev_overlaps(struct block_device *bdev, const struct bt_volume *vol)
{
	sector_t start = bdev->bd_start_sect, end = start + bdev_nr_sectors(bdev);

	return bdev->bd_disk == vol->disk && start < vol->start_sect + vol->nr_sects &&
	       vol->start_sect < end;
}

/*
 * The caller's store for the snapshots of @vols (CHECKPOINT_SNAP's
 * @store_fd), with a reference of the module's own. A store on one of the
 * volumes would hold its own writes until they are copied: refused. (One
 * on a device stacked over them cannot be seen here: doc/KERNEL.md.)
 */
struct bt_store_file *bt_store_file_open(int fd, struct bt_volume **vols, u32 n)
{
	struct bt_store_file *sf;
	struct block_device *bdev;
	struct inode *inode;
	struct file *file;
	unsigned int shift = 0;
	loff_t size;
	u32 i;
	int ret;

	file = fget(fd);
	if (!file)
		return ERR_PTR(-EBADF);
	inode = file_inode(file);
	ret = -EBADF;
	if ((file->f_mode & (FMODE_READ | FMODE_WRITE)) != (FMODE_READ | FMODE_WRITE))
		goto out_put;
	ret = -EINVAL;
	if (file->f_flags & (O_APPEND | O_DIRECT))
		goto out_put;
	if (S_ISBLK(inode->i_mode)) {
		bdev = I_BDEV(file->f_mapping->host);
		size = bdev_nr_bytes(bdev);
	} else if (S_ISREG(inode->i_mode)) {
		bdev = inode->i_sb->s_bdev;	/* NULL on tmpfs: memory */
		size = inode->i_sb->s_maxbytes;
		/*
		 * Only a disk's filesystem or tmpfs: the writeback of any other
		 * (FUSE, a network or stacked filesystem) may wait on a daemon
		 * or a device we cannot see, perhaps behind our own held writes.
		 */
		if (!bdev && inode->i_sb->s_magic != TMPFS_MAGIC)
			goto out_put;
	} else {
		goto out_put;
	}
	ret = -EDEADLK;
	for (i = 0; i < n; i++) {
		if (bdev && bt_bdev_overlaps(bdev, vols[i]))
			goto out_put;
		shift = max(shift, vols[i]->block_shift);
	}
	ret = -ENOMEM;
	sf = kzalloc(sizeof(*sf), GFP_KERNEL);
	if (!sf)
		goto out_put;
	atomic_long_inc(&blktrack_allocations);
	kref_init(&sf->ref);
	sf->file = file;
	sf->slot_shift = max_t(unsigned int, shift, PAGE_SHIFT);
	sf->max_slot = min_t(u64, INT_MAX, size >> sf->slot_shift);
	ida_init(&sf->slots);
	return sf;

out_put:
	fput(file);
	return ERR_PTR(ret);
}

/* Write @bytes of @pages at @pos of the store file. */
static int bt_store_file_write(struct bt_store_file *sf, struct page **pages, u64 bytes,
			       loff_t pos)
{
	unsigned int i;

	for (i = 0; bytes; i++) {
		size_t len = min_t(u64, bytes, PAGE_SIZE);
		ssize_t n = kernel_write(sf->file, page_address(pages[i]), len, &pos);

		if (n != len)
			return n < 0 ? n : -ENOSPC;
		bytes -= len;
	}
	return 0;
}

/* ---- Either store: under store_mutex ---------------------------------- */

/* What a copy of @bytes counts against the store's limit. */
static u64 bt_store_cost(u64 bytes)
{
	return round_up(bytes, PAGE_SIZE);
}

/*
 * Keep @bytes of @c, the old contents of @block, in the store: @c itself
 * in memory, or a copy of it in a slot of the file.
 */
static int bt_store_put(struct bt_snap *s, u64 block, struct bt_snap_copy *c, u64 bytes)
{
	void *entry = c;
	int slot = -1, ret;

	lockdep_assert_held(&s->store_mutex);
	if (s->file) {
		if (!s->file->max_slot)
			return -EOVERFLOW;	/* smaller than a block */
		slot = ida_alloc_max(&s->file->slots, s->file->max_slot - 1,
				     BT_SNAP_GFP);
		if (slot < 0)
			return slot == -ENOSPC ? -EOVERFLOW : slot;
		ret = bt_store_file_write(s->file, c->pages, bytes,
					  (loff_t)slot << s->file->slot_shift);
		if (ret)
			goto out_free_slot;
		entry = xa_mk_value(slot);
	}
	ret = xa_err(xa_store(&s->store, block, entry, BT_SNAP_GFP));
	if (ret)
		goto out_free_slot;
	s->store_bytes += bt_store_cost(bytes);
	return 0;

out_free_slot:
	if (slot >= 0)
		ida_free(&s->file->slots, slot);
	/* A full file system or device is a full store. */
	return ret == -ENOSPC || ret == -EFBIG ? -EOVERFLOW : ret;
}

/* Copy @len bytes at @off of @block's copy to @dst. */
static int bt_store_get(struct bt_snap *s, u64 block, u64 off, void *dst, size_t len)
{
	void *entry = xa_load(&s->store, block);
	struct bt_snap_copy *c = entry;
	loff_t pos;

	lockdep_assert_held(&s->store_mutex);
	if (!entry)
		return -EIDRM;		/* released: it may be overwritten */
	if (!xa_is_value(entry)) {
		memcpy(dst, page_address(c->pages[off / PAGE_SIZE]) + off % PAGE_SIZE, len);
		return 0;
	}
	pos = ((loff_t)xa_to_value(entry) << s->file->slot_shift) + off;
	return kernel_read(s->file->file, dst, len, &pos) == len ? 0 : -EIO;
}

static void bt_store_free_entry(struct bt_snap *s, void *entry)
{
	if (xa_is_value(entry))
		ida_free(&s->file->slots, xa_to_value(entry));
	else
		bt_copy_free(entry);
}

static void bt_store_drop(struct bt_snap *s, u64 block)
{
	void *entry;

	lockdep_assert_held(&s->store_mutex);
	entry = xa_erase(&s->store, block);
	if (entry) {
		s->store_bytes -= bt_store_cost(bt_block_bytes(s, block));
		bt_store_free_entry(s, entry);
	}
}

/* Also from bt_snap_free(), without store_mutex: nobody else can reach @s. */
static void bt_store_free_all(struct bt_snap *s)
{
	unsigned long i;
	void *entry;

	xa_for_each(&s->store, i, entry)
		bt_store_free_entry(s, entry);
	xa_destroy(&s->store);
	s->store_bytes = 0;
}

/* Lose the snapshot: writes pass from now on. Under store_mutex. */
static void bt_snap_lose(struct bt_snap *s, int error)
{
	lockdep_assert_held(&s->store_mutex);
	if (READ_ONCE(s->state) != BT_SNAP_ACTIVE)
		return;
	s->error = error;
	WRITE_ONCE(s->state, BT_SNAP_LOST);
	bt_store_free_all(s);
	pr_warn("%pg: snapshot lost (%d): its backup must be aborted\n", s->bdev, error);
}

/*
 * A removed disk loses the snapshot: nothing of it can be read any more.
 * The worker notices before a copy; SNAP_READ and SNAP_STATUS notice too,
 * as no write need follow the removal. Under store_mutex.
 */
static void bt_snap_check_live(struct bt_snap *s)
{
	lockdep_assert_held(&s->store_mutex);
	if (!disk_live(s->disk))
		bt_snap_lose(s, -ENODEV);
}

/* ==== Reading the device ================================================ */

/* Reads in flight: the worker's batch of copies, or one SNAP_READ piece. */
struct bt_reads {
	atomic_t pending;
	struct completion done;
	blk_status_t status;
};

static void bt_reads_init(struct bt_reads *r)
{
	atomic_set(&r->pending, 1);	/* the submitter's own */
	init_completion(&r->done);
	r->status = BLK_STS_OK;
}

static void bt_reads_end_io(struct bio *bio)
{
	struct bt_reads *r = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(r->status, bio->bi_status);
	bio_put(bio);
	if (atomic_dec_and_test(&r->pending))
		complete(&r->done);
}

/*
 * Start reading @bytes (a multiple of 512) at volume sector @sector into
 * @pages. Our own bios: the interceptor lets reads pass.
 */
static void bt_reads_add(struct bt_reads *r, struct block_device *bdev, sector_t sector,
			 struct page **pages, u64 bytes)
{
	while (bytes) {
		unsigned int nr = min_t(u64, DIV_ROUND_UP_ULL(bytes, PAGE_SIZE), BIO_MAX_VECS);
		struct bio *bio = bio_alloc_bioset(bdev, nr, REQ_OP_READ | REQ_SYNC, GFP_NOIO,
						   &bt_snap_bioset);
		unsigned int i;

		bio->bi_iter.bi_sector = sector;
		for (i = 0; i < nr; i++) {
			unsigned int len = min_t(u64, bytes, PAGE_SIZE);

			__bio_add_page(bio, pages[i], len, 0);
			bytes -= len;
		}
		sector += bio_sectors(bio);
		pages += nr;
		bio->bi_private = r;
		bio->bi_end_io = bt_reads_end_io;
		atomic_inc(&r->pending);
		submit_bio(bio);
	}
}

/* Wait for every read added: 0 or -EIO. */
static int bt_reads_wait(struct bt_reads *r)
{
	if (!atomic_dec_and_test(&r->pending))
		wait_for_completion_io(&r->done);
	return READ_ONCE(r->status) ? -EIO : 0;
}

static int bt_read_pages(struct block_device *bdev, sector_t sector,
			 struct page **pages, u64 bytes)
{
	struct bt_reads r;

	bt_reads_init(&r);
	bt_reads_add(&r, bdev, sector, pages, bytes);
	return bt_reads_wait(&r);
}

/* ==== Copy before write (the worker) ==================================== */

/*
 * The worker copies the blocks its held writes need in batches whose reads
 * are all in flight at once, so first writes at queue depth N cost about
 * one read's latency, not N of them.
 */
#define BT_SNAP_BATCH		64
#define BT_SNAP_BATCH_BYTES	(4U << 20)	/* but always at least one block */

struct bt_snap_batch {
	unsigned int nr;
	u64 bytes;
	u64 blocks[BT_SNAP_BATCH];
	struct bt_snap_copy *copies[BT_SNAP_BATCH];
};

/* Drop the batch's copies that were not stored, and empty it. */
static void bt_batch_free(struct bt_snap_batch *b)
{
	unsigned int i;

	for (i = 0; i < b->nr; i++)
		if (b->copies[i])
			bt_copy_free(b->copies[i]);
	b->nr = 0;
	b->bytes = 0;
}

/* Is @block in the batch already? (Two held writes to one block.) */
static bool bt_batch_has(const struct bt_snap_batch *b, u64 block)
{
	unsigned int i;

	for (i = 0; i < b->nr; i++)
		if (b->blocks[i] == block)
			return true;
	return false;
}

/*
 * Copy the batch's blocks aside. Worker context, NOIO. The writes to them
 * are held, so what the reads return is the old data; store_mutex is not
 * held while they are in flight (SNAP_READ and releases go on), hence
 * "still needed?" is asked again before each copy is stored.
 */
static void bt_snap_copy_batch(struct bt_snap *s, struct bt_snap_batch *b)
{
	struct bt_reads r;
	unsigned int i;
	int ret = 0;

	if (!b->nr)
		return;
	mutex_lock(&s->store_mutex);
	if (READ_ONCE(s->state) != BT_SNAP_ACTIVE)
		goto out_unlock;
	/* Only the worker adds to the store: the room it sees stays. */
	if (s->store_bytes + b->bytes > s->store_limit)
		ret = -EOVERFLOW;
	else if (!disk_live(s->disk))
		ret = -ENODEV;
	for (i = 0; i < b->nr && !ret; i++)
		ret = bt_need_own(s, b->blocks[i] / BT_SET_REGION_BLOCKS, BT_SNAP_GFP);
	if (ret)
		goto out_unlock;
	mutex_unlock(&s->store_mutex);

	bt_reads_init(&r);
	for (i = 0; i < b->nr; i++) {
		u64 bytes = bt_block_bytes(s, b->blocks[i]);

		b->copies[i] = bt_copy_alloc(DIV_ROUND_UP_ULL(bytes, PAGE_SIZE), BT_SNAP_GFP);
		if (!b->copies[i]) {
			ret = -ENOMEM;
			break;
		}
		bt_reads_add(&r, s->bdev, b->blocks[i] << s->sect_shift, b->copies[i]->pages,
			     bytes);
	}
	/* Whatever was started is waited for, even on failure. */
	if (bt_reads_wait(&r) && !ret)
		ret = -EIO;

	mutex_lock(&s->store_mutex);
	for (i = 0; i < b->nr && !ret && READ_ONCE(s->state) == BT_SNAP_ACTIVE; i++) {
		u64 block = b->blocks[i];

		if (!bt_set_test(s->need, block))
			continue;	/* released meanwhile: nobody reads it */
		ret = bt_store_put(s, block, b->copies[i], bt_block_bytes(s, block));
		if (ret)
			break;
		if (!s->file)
			b->copies[i] = NULL;	/* the store has it */
		/* Stored first, then no longer needed: SNAP_READ relies on this order. */
		clear_bit(block % BT_SET_REGION_BLOCKS, s->need[block / BT_SET_REGION_BLOCKS]);
		atomic64_dec(&s->uncopied);
		atomic64_inc(&s->copied);
	}
out_unlock:
	if (ret)
		bt_snap_lose(s, ret == -ENOMEM || ret == -EOVERFLOW || ret == -ENODEV ?
				ret : -EIO);
	mutex_unlock(&s->store_mutex);
	bt_batch_free(b);
}

/* The disk sectors a bio covers, whatever device it was sent to. */
static notrace void bt_bio_disk_range(struct bio *bio, sector_t *start, sector_t *end)
{
	struct block_device *bdev = bio->bi_bdev;

	*start = bio->bi_iter.bi_sector;
	/* submit_bio_noacct() remaps a partition's bio once (BIO_REMAPPED). */
	if (bdev_is_partition(bdev) && !bio_flagged(bio, BIO_REMAPPED))
		*start += bdev->bd_start_sect;
	*end = *start + bio_sectors(bio);
}

/* Clip to the snapshot's volume: blocks [*first, *last]; false if outside. */
static notrace bool bt_snap_blocks(const struct bt_snap *s, sector_t start, sector_t end,
				   u64 *first, u64 *last)
{
	sector_t vend = s->start_sect + s->nr_sects;

	if (start < s->start_sect)
		start = s->start_sect;
	if (end > vend)
		end = vend;
	if (start >= end)
		return false;
	*first = (start - s->start_sect) >> s->sect_shift;
	*last = (end - 1 - s->start_sect) >> s->sect_shift;
	return true;
}

/* Send held bios on: the interceptor lets them pass now. */
static void bt_snap_submit(struct bio_list *done)
{
	struct bio *bio;

	while ((bio = bio_list_pop(done))) {
		submit_bio_noacct(bio);
		cond_resched();
	}
}

/*
 * Put the blocks @bio needs copied into the batch, copying the batch and
 * letting @done's bios go (all their blocks are in it) whenever it is full.
 */
static void bt_snap_cow(struct bt_snap *s, struct bt_snap_batch *b, struct bio *bio,
			struct bio_list *done)
{
	sector_t start, end;
	u64 first, last, blk;

	bt_bio_disk_range(bio, &start, &end);
	if (!bt_snap_blocks(s, start, end, &first, &last))
		return;
	for (blk = first; blk <= last && READ_ONCE(s->state) == BT_SNAP_ACTIVE; blk++) {
		u64 cost = bt_store_cost(bt_block_bytes(s, blk));

		if (!((blk - first + 1) % 1024))
			cond_resched();
		if (!bt_set_test(s->need, blk) || bt_batch_has(b, blk))
			continue;
		if (b->nr == BT_SNAP_BATCH || (b->nr && b->bytes + cost > BT_SNAP_BATCH_BYTES)) {
			bt_snap_copy_batch(s, b);
			bt_snap_submit(done);
		}
		b->blocks[b->nr] = blk;
		b->copies[b->nr++] = NULL;
		b->bytes += cost;
	}
}

static void bt_snap_work(struct work_struct *work)
{
	struct bt_snap *s = container_of(work, struct bt_snap, work);
	unsigned int noio = memalloc_noio_save();
	struct bio_list list, done;
	struct bio *bio;

	bio_list_init(&done);
	for (;;) {
		/* Armed: the checkpoint is not done; bt_snap_activate() requeues. */
		if (READ_ONCE(s->state) == BT_SNAP_ARMED)
			break;
		raw_spin_lock_irq(&s->held_lock);
		list = s->held;
		bio_list_init(&s->held);
		raw_spin_unlock_irq(&s->held_lock);
		if (bio_list_empty(&list))
			break;
		atomic_sub(bio_list_size(&list), &s->backlog);
		if (READ_ONCE(s->overrun)) {
			mutex_lock(&s->store_mutex);
			bt_snap_lose(s, -ENOBUFS);	/* its bios now pass uncopied */
			mutex_unlock(&s->store_mutex);
		}
		while ((bio = bio_list_pop(&list))) {
			bt_snap_cow(s, s->batch, bio, &done);
			bio_list_add(&done, bio);
		}
		/* Their blocks are copied (or the snapshot is lost): they may go. */
		bt_snap_copy_batch(s, s->batch);
		bt_snap_submit(&done);
	}
	memalloc_noio_restore(noio);
}

/* ==== Interception ====================================================== */

/*
 * Where a held bio's submit_bio_noacct() call goes instead: nowhere. The
 * bio is on a held list; the caller goes on as if it had been submitted.
 */
static noinline notrace void bt_snap_held(struct bio *bio)
{
	barrier();
}

/* Hold @bio on @s, if it must wait for a copy. Preemption off. */
static notrace bool bt_snap_hold(struct bt_snap *s, struct bio *bio, sector_t start,
				 sector_t end)
{
	int state = READ_ONCE(s->state);
	unsigned long flags;
	u64 first, last;

	if (state == BT_SNAP_ACTIVE) {
		/* Pairs with bt_snap_activate(): the set is built. */
		smp_rmb();
		if (!bt_snap_blocks(s, start, end, &first, &last) ||
		    !bt_set_any_need(s, first, last))
			return false;
	} else if (state != BT_SNAP_ARMED) {
		return false;
	}
	raw_spin_lock_irqsave(&s->held_lock, flags);
	bio_list_add(&s->held, bio);
	raw_spin_unlock_irqrestore(&s->held_lock, flags);
	atomic64_inc(&s->held_writes);
	if (atomic_inc_return(&s->backlog) > BT_SNAP_BACKLOG_MAX)
		WRITE_ONCE(s->overrun, true);
	/*
	 * Also when the submitter is a stacked driver (current->bio_list
	 * set): it never waits here, the worker submits the bio later.
	 */
	queue_work(bt_snap_wq, &s->work);
	return true;
}

static notrace bool bt_snap_intercept(struct bio *bio)
{
	const struct bt_snap_table *tbl;
	sector_t start, end;
	bool held = false;
	unsigned int i;

	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		break;
	default:
		return false;	/* reads, flushes; zone appends are not supported */
	}
	if (!bio_sectors(bio))
		return false;

	tbl = rcu_dereference_sched(bt_snap_table);
	if (!tbl)
		return false;
	bt_bio_disk_range(bio, &start, &end);
	for (i = 0; i < tbl->nr && !held; i++)
		if (tbl->s[i]->disk == bio->bi_bdev->bd_disk)
			held = bt_snap_hold(tbl->s[i], bio, start, end);
	/*
	 * A bio over two snapshots (a disk and its partition) is held by the
	 * first; its resubmission comes back here and the second holds it.
	 */
	return held;
}

static notrace void bt_snap_ftrace(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct bio *bio;

	/*
	 * No recursion guard is needed beyond the state: our own copy reads
	 * are reads, and a resubmitted write no longer overlaps a block this
	 * snapshot still needs (need bits are only ever cleared).
	 */
	preempt_disable_notrace();
	bio = (struct bio *)bt_ftrace_arg0(fregs);
	if (bt_snap_intercept(bio))
		bt_ftrace_redirect(fregs, (unsigned long)bt_snap_held);
	preempt_enable_notrace();
}

static struct ftrace_ops bt_snap_ops = {
	.func	= bt_snap_ftrace,
	.flags	= BT_FTRACE_REDIRECT_FLAGS,
};

bool bt_snap_supported(void)
{
	return BT_FTRACE_REDIRECT_FLAGS != 0;
}

/*
 * Register the interception with the first snapshot; it stays until no
 * volume is left (bt_snap_unhook). Each registration and removal rewrites
 * submit_bio_noacct()'s entry under live I/O (text_poke_bp's int3 dance);
 * a backup schedule that snapshots every cycle patches it once, not twice
 * per cycle. Unused, the callback costs one table look per write.
 */
int bt_snap_hook(void)
{
	static unsigned char name[] = "submit_bio_noacct";
	int ret;

	lockdep_assert_held(&bt_ctl_mutex);
	if (bt_snap_hooked)
		return 0;
	if (!bt_snap_supported()) {
		pr_warn("snapshots need an ftrace redirect this kernel lacks\n");
		return -EOPNOTSUPP;
	}
	/*
	 * Set once and kept until unload: ftrace_free_filter() leaves the ops'
	 * hash pointers dangling, so it is for an ops never registered again.
	 */
	if (!bt_snap_filtered) {
		/* Never register without it: an empty filter traces everything. */
		ret = ftrace_set_filter(&bt_snap_ops, name, sizeof(name) - 1, 1);
		bt_snap_filtered = !ret;
	}
	if (!bt_snap_filtered) {
		pr_warn("cannot trace %s: no snapshots\n", name);
		return -EOPNOTSUPP;
	}
	ret = register_ftrace_function(&bt_snap_ops);
	if (ret) {
		/* EBUSY: another IPMODIFY user (a livepatch?) has the function. */
		pr_warn("cannot redirect %s (%d): no snapshots\n", name, ret);
		return -EOPNOTSUPP;
	}
	bt_snap_hooked = true;
	return 0;
}

/* Under bt_ctl_mutex, or at unload (bt_snap_exit()) when nothing else runs. */
void bt_snap_unhook(void)
{
	if (!bt_snap_hooked)
		return;
	/* After this no callback runs; a task may still be in bt_snap_held(). */
	unregister_ftrace_function(&bt_snap_ops);
	bt_snap_hooked = false;
}

/* ==== Snapshot life ===================================================== */

static void bt_snap_publish(void)
{
	struct bt_snap_table *tbl = NULL, *old;
	struct bt_snap *s;
	unsigned int i = 0;

	lockdep_assert_held(&bt_ctl_mutex);
	if (bt_nr_snaps) {
		/* Small; a failure here would strand held writes: retry hard. */
		tbl = kzalloc(struct_size(tbl, s, bt_nr_snaps), GFP_KERNEL | __GFP_NOFAIL);
		atomic_long_inc(&blktrack_allocations);
		list_for_each_entry(s, &bt_snaps, node)
			tbl->s[i++] = s;
		tbl->nr = i;
	}
	old = rcu_dereference_protected(bt_snap_table, lockdep_is_held(&bt_ctl_mutex));
	rcu_assign_pointer(bt_snap_table, tbl);
	/* The interceptor runs with preemption off: this waits for it. */
	synchronize_rcu();
	if (old) {
		kfree(old);
		atomic_long_dec(&blktrack_allocations);
	}
}

static void bt_snap_free(struct bt_snap *s)
{
	bt_store_free_all(s);
	kfree(s->batch);
	bt_store_file_put(s->file);
	bt_set_free(s->member, s->nr_regions);
	bt_set_free(s->need, s->nr_regions);
	kfree(s);
	atomic_long_dec(&blktrack_allocations);
}

/* @store: NULL for memory, else the caller's file (the snapshot takes a reference). */
struct bt_snap *bt_snap_create(struct bt_volume *vol, u64 store_limit, u32 flags,
			       struct bt_store_file *store)
{
	struct bt_snap *s;

	lockdep_assert_held(&bt_ctl_mutex);
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return NULL;
	atomic_long_inc(&blktrack_allocations);
	s->batch = kzalloc(sizeof(*s->batch), GFP_KERNEL);
	if (!s->batch) {
		kfree(s);
		atomic_long_dec(&blktrack_allocations);
		return NULL;
	}
	if (store) {
		kref_get(&store->ref);
		s->file = store;
	}
	s->vol = vol;
	s->bdev = vol->bdev.bdev;
	s->disk = vol->disk;
	s->start_sect = vol->start_sect;
	s->block_shift = vol->block_shift;
	s->sect_shift = vol->block_shift - SECTOR_SHIFT;
	s->state = BT_SNAP_ARMED;
	s->all = flags & BLKTRACK_SNAP_ALL;
	if (store_limit)
		s->store_limit = store_limit;
	else	/* a file's limit is its own size */
		s->store_limit = store ? U64_MAX : (u64)bt_snap_limit_mib << 20;
	raw_spin_lock_init(&s->held_lock);
	bio_list_init(&s->held);
	INIT_WORK(&s->work, bt_snap_work);
	mutex_init(&s->store_mutex);
	xa_init(&s->store);
	atomic64_set(&s->uncopied, 0);
	atomic64_set(&s->copied, 0);
	atomic64_set(&s->released, 0);
	atomic64_set(&s->held_writes, 0);
	list_add_tail(&s->node, &bt_snaps);
	bt_nr_snaps++;
	return s;
}

/*
 * Publish every created snapshot: once this returns, every write to their
 * disks is held until bt_snap_activate(). Called before the checkpoint's
 * instant, so no write after it reaches a block unseen.
 */
void bt_snap_arm(void)
{
	bt_snap_publish();
}

/*
 * Protect the pending map's blocks, or all of them. The map is quiescent;
 * writes are held.
 */
int bt_snap_fill(struct bt_snap *s, struct bt_volume *vol)
{
	u64 pos = 0, start, len;
	unsigned long r;
	int ret;

	lockdep_assert_held(&bt_ctl_mutex);
	s->nr_sects = vol->nr_sects;
	s->nr_blocks = btmap_nr_blocks(vol->pending);
	s->nr_regions = DIV_ROUND_UP_ULL(s->nr_blocks, BT_SET_REGION_BLOCKS);
	s->need = bt_set_alloc(s->nr_regions);
	if (!s->need)
		return -ENOMEM;
	if (s->all) {
		/* No member leaves; need leaves only once a region changes. */
		for (r = 0; r < s->nr_regions; r++)
			s->need[r] = bt_set_full;
		s->protected_blocks = s->nr_blocks;
		atomic64_set(&s->uncopied, s->protected_blocks);
		return 0;
	}
	s->member = bt_set_alloc(s->nr_regions);
	if (!s->member)
		return -ENOMEM;
	while (btmap_next_extent(vol->pending, &pos, &start, &len)) {
		ret = bt_set_add(s->member, start, len);
		if (!ret)
			ret = bt_set_add(s->need, start, len);
		if (ret)
			return ret;
		s->protected_blocks += len;
		cond_resched();
	}
	atomic64_set(&s->uncopied, s->protected_blocks);
	return 0;
}

void bt_snap_activate(struct bt_snap *s)
{
	lockdep_assert_held(&bt_ctl_mutex);
	/* The set before the state: pairs with bt_snap_hold(). */
	smp_wmb();
	WRITE_ONCE(s->state, BT_SNAP_ACTIVE);
	queue_work(bt_snap_wq, &s->work);
}

/*
 * End @vol's snapshot: no write is held once this returns, and the store
 * is freed. The interception goes with the last snapshot.
 */
void bt_snap_end(struct bt_volume *vol)
{
	struct bt_snap *s = vol->snap;

	lockdep_assert_held(&bt_ctl_mutex);
	if (!s)
		return;
	WRITE_ONCE(s->state, BT_SNAP_ENDING);
	list_del(&s->node);
	bt_nr_snaps--;
	/* No interceptor can queue on s once the table without it is out. */
	bt_snap_publish();
	flush_work(&s->work);
	/* The worker saw ENDING: whatever it left is submitted as it is. */
	bt_snap_work(&s->work);
	pr_info("%pg: snapshot ended: %lld blocks copied, %lld released\n", s->bdev,
		atomic64_read(&s->copied), atomic64_read(&s->released));
	bt_snap_free(s);
	vol->snap = NULL;
}

/* ==== Reading the snapshot ============================================== */

/*
 * Release blocks [@first, @last]: no longer needed, their copies freed.
 * Blocks released before are skipped. Region by region, taking store_mutex
 * for each, so the worker (and the writes it holds) never waits long.
 * Fails (ENOMEM) only before anything changed.
 */
static int bt_snap_release(struct bt_snap *s, u64 first, u64 last)
{
	unsigned long r, r_first = first / BT_SET_REGION_BLOCKS;
	unsigned long r_last = last / BT_SET_REGION_BLOCKS;
	int ret = 0;

	/* Only the range's two end regions can be cut: own their leaves first. */
	mutex_lock(&s->store_mutex);
	if (first % BT_SET_REGION_BLOCKS ||
	    (r_first == r_last && last + 1 - first < bt_region_blocks(s, r_first)))
		ret = bt_need_own(s, r_first, GFP_KERNEL);
	if (!ret && r_last != r_first && last + 1 - (u64)r_last * BT_SET_REGION_BLOCKS <
					 bt_region_blocks(s, r_last))
		ret = bt_need_own(s, r_last, GFP_KERNEL);
	mutex_unlock(&s->store_mutex);
	if (ret)
		return ret;

	for (r = r_first; r <= r_last; r++) {
		u64 base = (u64)r * BT_SET_REGION_BLOCKS, released = 0;
		unsigned long off = max(first, base) - base;
		unsigned long end = min(last + 1 - base, (u64)BT_SET_REGION_BLOCKS);
		struct bt_snap_copy *c;
		unsigned long *leaf, i;

		mutex_lock(&s->store_mutex);
		leaf = s->need[r];
		if (leaf == bt_set_full) {
			/* The whole region: its cut ends were owned above. */
			WRITE_ONCE(s->need[r], NULL);
			released = bt_region_blocks(s, r);
		} else if (leaf) {
			for (i = find_next_bit(leaf, end, off); i < end;
			     i = find_next_bit(leaf, end, i + 1))
				released++;
			/* Word stores: the interceptor reads the leaf meanwhile. */
			bitmap_clear(leaf, off, end - off);
		}
		atomic64_sub(released, &s->uncopied);
		/* A copied block is no longer needed: disjoint from the above. */
		xa_for_each_range(&s->store, i, c, base + off, base + end - 1) {
			bt_store_drop(s, i);
			released++;
		}
		atomic64_add(released, &s->released);
		mutex_unlock(&s->store_mutex);
		cond_resched();
	}
	return 0;
}

int bt_snap_read(struct bt_snap *s, const struct blktrack_snap_read *rd)
{
	u64 size = (u64)s->nr_sects << SECTOR_SHIFT, bs = 1ULL << s->block_shift;
	char __user *ubuf = u64_to_user_ptr(rd->buf_ptr);
	unsigned int nr_pages = BT_SNAP_READ_CHUNK / PAGE_SIZE, i;
	u64 pos, end, b;
	struct page **pages;
	int ret = 0;

	/* bt_snap_end() frees @s under it. */
	lockdep_assert_held(&bt_ctl_mutex);
	if (rd->offset & (bs - 1) ||
	    ((rd->length & (bs - 1)) && rd->offset + rd->length != size))
		return -EINVAL;
	if (rd->offset >= size || rd->length > size - rd->offset)
		return -ERANGE;
	mutex_lock(&s->store_mutex);
	bt_snap_check_live(s);
	mutex_unlock(&s->store_mutex);
	if (READ_ONCE(s->state) != BT_SNAP_ACTIVE)
		return -EOVERFLOW;	/* lost: SNAP_STATUS says why */
	if (rd->flags & BLKTRACK_SNAP_READ_RELEASE)
		return bt_snap_release(s, rd->offset >> s->block_shift,
				       (rd->offset + rd->length - 1) >> s->block_shift);
	/*
	 * A block outside the set is not protected: what the device holds
	 * now is not the checkpoint's. Refuse rather than return it.
	 */
	for (b = rd->offset >> s->block_shift; b << s->block_shift < rd->offset + rd->length; b++)
		if (!bt_snap_member(s, b))
			return -ENXIO;

	pages = kcalloc(nr_pages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < nr_pages; i++) {
		pages[i] = alloc_page(GFP_KERNEL);
		if (!pages[i]) {
			ret = -ENOMEM;
			goto out_free;
		}
	}

	end = rd->offset + rd->length;
	for (pos = rd->offset; pos < end; pos += BT_SNAP_READ_CHUNK) {
		u64 n = min_t(u64, end - pos, BT_SNAP_READ_CHUNK);

		ret = bt_read_pages(s->bdev, pos >> SECTOR_SHIFT, pages, n);
		if (ret) {
			ret = -EIO;
			goto out_free;
		}
		/*
		 * The device was read before the look at each block: a block
		 * still needed then was not overwritten yet (its writes are
		 * held until its copy is stored).
		 */
		mutex_lock(&s->store_mutex);
		if (READ_ONCE(s->state) != BT_SNAP_ACTIVE) {
			ret = -EOVERFLOW;
			mutex_unlock(&s->store_mutex);
			goto out_free;
		}
		for (b = pos >> s->block_shift; b << s->block_shift < pos + n; b++) {
			u64 bstart = max(b << s->block_shift, pos);
			u64 bend = min((b + 1) << s->block_shift, pos + n);
			u64 at;

			if (bt_set_test(s->need, b))
				continue;	/* the device's data is right */
			for (at = bstart; at < bend && !ret; ) {
				u64 boff = at - (b << s->block_shift);
				u64 coff = at - pos;
				u64 len = min3(bend - at, PAGE_SIZE - boff % PAGE_SIZE,
					       PAGE_SIZE - coff % PAGE_SIZE);

				ret = bt_store_get(s, b, boff, page_address(pages[coff / PAGE_SIZE]) +
						   coff % PAGE_SIZE, len);
				at += len;
			}
			if (ret)
				break;
		}
		mutex_unlock(&s->store_mutex);
		if (ret)
			goto out_free;
		for (i = 0; i * PAGE_SIZE < n; i++) {
			u64 len = min_t(u64, n - i * PAGE_SIZE, PAGE_SIZE);

			if (copy_to_user(ubuf + (pos - rd->offset) + i * PAGE_SIZE,
					 page_address(pages[i]), len)) {
				ret = -EFAULT;
				goto out_free;
			}
		}
	}

	/* Every block of the range was read whole: release them. */
	if (!(rd->flags & BLKTRACK_SNAP_READ_KEEP))
		ret = bt_snap_release(s, rd->offset >> s->block_shift,
				      (end - 1) >> s->block_shift);
out_free:
	for (i = 0; i < nr_pages; i++)
		if (pages[i])
			__free_page(pages[i]);
	kfree(pages);
	return ret;
}

u32 bt_snap_flags(struct bt_snap *s)
{
	if (!s)
		return 0;
	return BLKTRACK_STATUS_SNAPSHOT |
	       (READ_ONCE(s->state) == BT_SNAP_LOST ? BLKTRACK_STATUS_SNAP_OVERFLOW : 0);
}

void bt_snap_status(struct bt_snap *s, struct blktrack_snap_status *st)
{
	lockdep_assert_held(&bt_ctl_mutex);	/* as for bt_snap_read() */
	mutex_lock(&s->store_mutex);
	bt_snap_check_live(s);
	st->flags = bt_snap_flags(s) & BLKTRACK_STATUS_SNAP_OVERFLOW;
	st->error = -s->error;
	st->protected_blocks = s->protected_blocks;
	st->uncopied_blocks = atomic64_read(&s->uncopied);
	st->copied_blocks = atomic64_read(&s->copied);
	st->released_blocks = atomic64_read(&s->released);
	st->held_writes = atomic64_read(&s->held_writes);
	st->store_bytes = s->store_bytes;
	st->store_limit = s->store_limit;
	mutex_unlock(&s->store_mutex);
}

/* ==== Module ============================================================ */

int bt_snap_init(void)
{
	int ret;

	bitmap_fill(bt_set_full, BT_SET_REGION_BLOCKS);
	/*
	 * The copies' reads come from a pool of their own: the shared one
	 * may be drained by the very writes the snapshot holds.
	 */
	ret = bioset_init(&bt_snap_bioset, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS);
	if (ret)
		return ret;
	/* In the write-out path: it must make progress under memory pressure. */
	bt_snap_wq = alloc_workqueue("blktrack_snap", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!bt_snap_wq) {
		bioset_exit(&bt_snap_bioset);
		return -ENOMEM;
	}
	return 0;
}

void bt_snap_exit(void)
{
	bt_snap_unhook();
	/*
	 * A task preempted in bt_snap_held() (an empty function it was sent
	 * to) is still in our text: RCU Tasks waits until every task has left
	 * it by a voluntary switch.
	 */
	synchronize_rcu_tasks();
	if (bt_snap_filtered)
		ftrace_free_filter(&bt_snap_ops);
	destroy_workqueue(bt_snap_wq);
	bioset_exit(&bt_snap_bioset);
}

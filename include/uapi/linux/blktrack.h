/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * blktrack - changed-block tracking for backups: the kernel/user ABI.
 *
 * This is the only copy of the ABI. The module, libblktrack and the tests
 * all include it. Plain uapi C: it must compile alone with -std=c90.
 *
 * Typical use (see doc/ABI.md for the whole contract):
 *
 *	fd = open("/dev/blktrack-ctl", O_RDWR);        needs CAP_SYS_ADMIN
 *	ioctl(fd, BLKTRACK_IOC_ATTACH, &attach);        start tracking a volume
 *	... writes happen, the active map records them ...
 *	ioctl(fd, BLKTRACK_IOC_CHECKPOINT, &ckpt);      active map -> pending
 *	ioctl(fd, BLKTRACK_IOC_READ_EXTENTS, &rd);      page through pending map
 *	ioctl(fd, BLKTRACK_IOC_COMMIT, &stamp);         backup is durable: drop it
 *	   or BLKTRACK_IOC_ABORT                        backup failed: merge back
 *
 * Rules every argument struct follows:
 *  - it starts with "__u64 size", which the caller sets to sizeof(struct);
 *    a different value is refused with EMSGSIZE;
 *  - flags the kernel does not know are refused with EINVAL;
 *  - reserved fields and padding must be zero, else EINVAL;
 *  - pointers travel as __u64.
 * New features are new ioctls or new flags, never a changed struct.
 */
#ifndef _UAPI_LINUX_BLKTRACK_H
#define _UAPI_LINUX_BLKTRACK_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define BLKTRACK_ABI_VERSION	1
#define BLKTRACK_CTL_NAME	"blktrack-ctl"	/* /dev/blktrack-ctl */

#define BLKTRACK_BLOCK_SIZE_MIN		4096U
#define BLKTRACK_BLOCK_SIZE_MAX		(16U << 20)
#define BLKTRACK_BLOCK_SIZE_DEFAULT	4096U

/* Most volumes one CHECKPOINT may take at one instant. */
#define BLKTRACK_CHECKPOINT_MAX		64U

/**
 * struct blktrack_devno - a block device number
 * @major: major number
 * @minor: minor number
 */
struct blktrack_devno {
	__u32 major;
	__u32 minor;
};

/**
 * struct blktrack_stamp - names one point in a volume's change history
 * @generation: random UUID given to each attach of a volume
 * @epoch: low 32 bits: checkpoints committed since that attach (COMMIT adds
 *	1); high 32 bits: checkpoints aborted since then (ABORT adds
 *	BLKTRACK_EPOCH_ABORT). Every COMMIT and ABORT moves it, so a stamp
 *	never names two checkpoints of one generation.
 *
 * A backup taken from a pending map covers the changes from stamp
 * {generation, epoch} to {generation, epoch + 1}. After an ABORT the
 * active map still holds every change since the last COMMIT: a checkpoint
 * {G, E'} follows a committed point {G, E} when the low 32 bits of E' and E
 * are equal and E' >= E.
 */
struct blktrack_stamp {
	__u8 generation[16];
	__u64 epoch;
};

/**
 * struct blktrack_version - BLKTRACK_IOC_VERSION
 * @size: IN sizeof(struct blktrack_version)
 * @abi_version: OUT BLKTRACK_ABI_VERSION of the running module
 * @features: OUT BLKTRACK_FEATURE_* the module has
 * @reserved: must be zero
 */
struct blktrack_version {
	__u64 size;
	__u32 abi_version;
	__u32 reserved0;
	__u64 features;
	__u64 reserved[4];
};

/**
 * struct blktrack_attach - BLKTRACK_IOC_ATTACH: start tracking a volume
 * @size: IN sizeof(struct blktrack_attach)
 * @dev: IN the block device: a whole disk, a partition, loop, dm...
 * @block_size: IN tracking granularity in bytes: a power of two in
 *	BLKTRACK_BLOCK_SIZE_MIN..BLKTRACK_BLOCK_SIZE_MAX, 0 for the default
 * @flags: IN none defined yet, must be zero
 * @mem_limit: IN bytes of map memory allowed before dense regions are
 *	coarsened to "whole region dirty"; 0 takes the module parameter
 * @reserved: must be zero
 *
 * Errors: ENODEV (no such block device), EEXIST (already attached),
 * EINVAL (bad block size, flag or reserved field), ENOMEM, EOPNOTSUPP
 * (writes the module cannot see: a DAX-capable disk, whose dax mounts
 * write without bios; on 6.1 a ->rw_page driver it cannot probe).
 */
struct blktrack_attach {
	__u64 size;
	struct blktrack_devno dev;
	__u32 block_size;
	__u32 flags;
	__u64 mem_limit;
	__u64 reserved[4];
};

/**
 * struct blktrack_dev_arg - BLKTRACK_IOC_DETACH
 * @size: IN sizeof(struct blktrack_dev_arg)
 * @dev: IN an attached volume
 * @flags: IN none defined yet, must be zero
 * @reserved0: must be zero
 * @reserved: must be zero
 *
 * Errors: ENOENT (not attached). A pending checkpoint is dropped with
 * the volume: the next attach starts a new generation.
 */
struct blktrack_dev_arg {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 reserved0;
	__u64 reserved[2];
};

/**
 * struct blktrack_list - BLKTRACK_IOC_LIST: the attached volumes
 * @size: IN sizeof(struct blktrack_list)
 * @devs_ptr: IN user pointer to an array of struct blktrack_devno
 * @capacity: IN entries the array holds (0: only count)
 * @count: OUT number of attached volumes (may exceed @capacity; the
 *	first min(count, capacity) entries are filled)
 * @flags: IN none defined yet, must be zero
 * @reserved0: must be zero
 * @reserved: must be zero
 */
struct blktrack_list {
	__u64 size;
	__u64 devs_ptr;
	__u32 capacity;
	__u32 count;
	__u32 flags;
	__u32 reserved0;
	__u64 reserved[2];
};

/* struct blktrack_status.state */
enum blktrack_state {
	BLKTRACK_STATE_TRACKING = 1,	/* every change is in the maps */
	BLKTRACK_STATE_INVALID = 2	/* changes may be missing: resync */
};

/* struct blktrack_status.reason: why the state is what it is */
enum blktrack_reason {
	BLKTRACK_REASON_NONE = 0,
	BLKTRACK_REASON_DEVICE_REMOVED = 1,	/* the disk went away */
	BLKTRACK_REASON_RESIZED = 2,		/* size changed while not tracked */
	/* Set by RESTORE with BLKTRACK_RESTORE_INVALID; cleared by the next COMMIT. */
	BLKTRACK_REASON_UNCLEAN = 3,		/* saved state without the clean flag */
	BLKTRACK_REASON_NO_STATE = 4,		/* no saved state for the volume */
	BLKTRACK_REASON_OFFLINE_CHANGE = 5,	/* written while not tracked */
	/* The disk's sequence number moved; cleared by a COMMIT after it. */
	BLKTRACK_REASON_MEDIA_CHANGED = 6,	/* new media, LOOP_CHANGE_FD */
	/* A write the module could not mark (6.1 ->rw_page, probe missed). */
	BLKTRACK_REASON_UNTRACKED_WRITE = 7
};

/* struct blktrack_status.flags */
#define BLKTRACK_STATUS_PENDING		(1U << 0)  /* a checkpoint is pending */
#define BLKTRACK_STATUS_SNAPSHOT	(1U << 1)  /* the pending checkpoint has a snapshot */
#define BLKTRACK_STATUS_SNAP_OVERFLOW	(1U << 2)  /* ... which is lost: SNAP_READ fails */
/*
 * Some writes complete on disks below that the module cannot map back (more
 * in-place remaps than it keeps, or a driver that moves its bios below
 * untraced: bcache): a write in flight at a CHECKPOINT may be in no map.
 * Only a checkpoint taken with writers quiesced is exact.
 */
#define BLKTRACK_STATUS_UNCOVERED	(1U << 3)

/**
 * struct blktrack_status - BLKTRACK_IOC_STATUS: one volume's state
 * @size: IN sizeof(struct blktrack_status)
 * @dev: IN an attached volume
 * @flags: OUT BLKTRACK_STATUS_*; IN must be zero
 * @state: OUT enum blktrack_state
 * @reason: OUT enum blktrack_reason
 * @block_size: OUT tracking granularity in bytes
 * @dev_size: OUT volume size in bytes, as seen at attach or at the last
 *	CHECKPOINT (which takes a resized volume's new size: its pending map
 *	then holds a grown tail whole, and nothing past a shrunk end)
 * @stamp: OUT generation and committed epoch; a pending map holds the
 *	changes from it to epoch + 1 and is named by it in COMMIT/ABORT
 *	(without a pending map, the active map holds the changes since it)
 * @active_dirty: OUT blocks marked in the active map
 * @pending_dirty: OUT blocks marked in the pending map (0 if none)
 * @map_bytes: OUT memory used by both maps
 * @mem_limit: OUT map memory limit in bytes
 * @start_sect: OUT first sector of the volume on its disk (partitions)
 * @diskseq: OUT the disk's sequence number (it moves with new media or
 *	LOOP_CHANGE_FD; then the state is INVALID, MEDIA_CHANGED): a requester
 *	compares it before and after its read
 * @reserved: must be zero
 */
struct blktrack_status {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 state;
	__u32 reason;
	__u32 block_size;
	__u64 dev_size;
	struct blktrack_stamp stamp;
	__u64 active_dirty;
	__u64 pending_dirty;
	__u64 map_bytes;
	__u64 mem_limit;
	__u64 start_sect;
	__u64 diskseq;
	__u64 reserved[3];
};

/**
 * struct blktrack_checkpoint_vol - one volume of a CHECKPOINT
 * @dev: IN an attached volume
 * @reserved0: must be zero
 * @stamp: OUT the pending map's starting point: it holds the changes
 *	from @stamp to {@stamp.generation, @stamp.epoch + 1}
 * @dirty: OUT blocks in the pending map
 */
struct blktrack_checkpoint_vol {
	struct blktrack_devno dev;
	__u64 reserved0;
	struct blktrack_stamp stamp;
	__u64 dirty;
};

/**
 * struct blktrack_checkpoint - BLKTRACK_IOC_CHECKPOINT
 * @size: IN sizeof(struct blktrack_checkpoint)
 * @vols_ptr: IN/OUT user pointer to @count struct blktrack_checkpoint_vol
 * @count: IN 1..BLKTRACK_CHECKPOINT_MAX, each volume at most once
 * @flags: IN none defined yet, must be zero
 * @reserved: must be zero
 *
 * Every listed volume's active map becomes its pending map at one
 * instant, and a fresh active map records what follows. Writes submitted
 * before are in the pending map; those still in flight are marked again
 * in the active map when they complete, so nothing they change is lost
 * if the backup read a block before the write landed. All or nothing:
 * EBUSY if any volume already has a pending checkpoint, ENOENT if any
 * is not attached, EINVAL for a volume listed twice.
 */
struct blktrack_checkpoint {
	__u64 size;
	__u64 vols_ptr;
	__u32 count;
	__u32 flags;
	__u64 reserved[2];
};

/**
 * struct blktrack_extent - a run of dirty bytes
 * @offset: byte offset in the volume, a multiple of the block size
 * @length: bytes; the last extent is clipped at the volume's end
 */
struct blktrack_extent {
	__u64 offset;
	__u64 length;
};

/* struct blktrack_read_extents.flags */
#define BLKTRACK_READ_ACTIVE	(1U << 0)  /* read the active map (inspection) */

/**
 * struct blktrack_read_extents - BLKTRACK_IOC_READ_EXTENTS
 * @size: IN sizeof(struct blktrack_read_extents)
 * @dev: IN an attached volume
 * @flags: IN 0 for the pending map, BLKTRACK_READ_ACTIVE for the active one
 * @reserved0: must be zero
 * @stamp: IN for the pending map: the stamp CHECKPOINT returned (ESTALE
 *	if it no longer names the pending map); ignored for the active map
 * @cursor: IN/OUT byte offset to resume from: 0 on the first call, then
 *	the value the previous call returned; OUT equals the volume size
 *	when the whole map has been read
 * @extents_ptr: IN user pointer to an array of struct blktrack_extent
 * @capacity: IN entries the array holds, at least 1
 * @count: OUT entries filled, merged and sorted; an extent never spans
 *	two calls' results unless the array was full
 *
 * Errors: ENODATA (no pending map), ESTALE, EINVAL (capacity 0, cursor
 * beyond the volume or not block aligned).
 * The active map changes while it is read: its extents are a snapshot
 * good enough for inspection, never for a backup.
 */
struct blktrack_read_extents {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 reserved0;
	struct blktrack_stamp stamp;
	__u64 cursor;
	__u64 extents_ptr;
	__u32 capacity;
	__u32 count;
	__u64 reserved[2];
};

/**
 * struct blktrack_stamp_arg - BLKTRACK_IOC_COMMIT and BLKTRACK_IOC_ABORT
 * @size: IN sizeof(struct blktrack_stamp_arg)
 * @dev: IN an attached volume
 * @flags: IN none defined yet, must be zero
 * @reserved0: must be zero
 * @stamp: IN the stamp CHECKPOINT returned for the pending map
 * @reserved: must be zero
 *
 * COMMIT drops the pending map and advances the epoch: its changes are
 * safely in a backup. ABORT merges it back into the active map: nothing
 * is lost, the next checkpoint returns these changes again.
 * Errors: ENODATA (no pending map), ESTALE (stamp does not match).
 */
struct blktrack_stamp_arg {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 reserved0;
	struct blktrack_stamp stamp;
	__u64 reserved[2];
};

/* struct blktrack_restore.flags */
#define BLKTRACK_RESTORE_INVALID	(1U << 0)  /* the saved state is not to be trusted */

/* Most extents one RESTORE call takes (16 bytes each). */
#define BLKTRACK_RESTORE_MAX		65536U

/**
 * struct blktrack_restore - BLKTRACK_IOC_RESTORE: continue a saved history
 * @size: IN sizeof(struct blktrack_restore)
 * @dev: IN an attached volume on which no CHECKPOINT was taken yet
 * @flags: IN 0, or BLKTRACK_RESTORE_INVALID
 * @reason: IN with BLKTRACK_RESTORE_INVALID: why (RESIZED, UNCLEAN,
 *	NO_STATE or OFFLINE_CHANGE); else must be zero
 * @stamp: IN the saved stamp: the volume takes it as its own, so that
 *	the next checkpoint continues the saved history (ignored with
 *	BLKTRACK_RESTORE_INVALID; its generation must not be all zero)
 * @dev_size: IN the saved volume size in bytes: must be the volume's
 * @block_size: IN the saved block size: must be the volume's
 * @count: IN extents at @extents_ptr, at most BLKTRACK_RESTORE_MAX (0
 *	with BLKTRACK_RESTORE_INVALID)
 * @extents_ptr: IN user pointer to struct blktrack_extent: the changes
 *	since @stamp, block aligned (the last may end at the volume's end)
 * @reserved: must be zero
 *
 * A saved active map (blktrack save) is loaded back after a reboot: the
 * extents are added to the active map, which keeps what was written since
 * the attach, and the volume takes @stamp. Call it again with the same
 * stamp for more extents. With BLKTRACK_RESTORE_INVALID nothing is loaded:
 * the volume keeps its new generation, its state becomes INVALID with
 * @reason, and the next COMMIT (of a backup that read the whole volume:
 * the stamps make any other one resync) clears it.
 * Errors: ENOENT (not attached), EBUSY (a checkpoint was taken since the
 * attach), EINVAL (flags, reason, reserved, block size, zero generation,
 * count with INVALID), E2BIG (count), ERANGE (dev_size, or an extent
 * misaligned, empty or past the end), EFAULT. Nothing changes on error.
 */
struct blktrack_restore {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 reason;
	struct blktrack_stamp stamp;
	__u64 dev_size;
	__u32 block_size;
	__u32 count;
	__u64 extents_ptr;
	__u64 reserved[2];
};

/* struct blktrack_version.features */
#define BLKTRACK_FEATURE_RESTORE	(1ULL << 0)  /* BLKTRACK_IOC_RESTORE */
#define BLKTRACK_FEATURE_SNAPSHOT	(1ULL << 1)  /* CHECKPOINT_SNAP, SNAP_READ, SNAP_STATUS */
#define BLKTRACK_FEATURE_ABORT_EPOCH	(1ULL << 2)  /* ABORT adds BLKTRACK_EPOCH_ABORT */

/* What an ABORT adds to the epoch (struct blktrack_stamp); a COMMIT adds 1. */
#define BLKTRACK_EPOCH_ABORT		(1ULL << 32)

/*
 * Snapshots (copy-before-write). CHECKPOINT_SNAP checkpoints like CHECKPOINT
 * and, at the same instant, starts a snapshot of each volume that protects
 * exactly the blocks of its new pending map (every block: BLKTRACK_SNAP_ALL): before a write reaches one of
 * them, its old contents are copied into a difference store: memory, or a
 * file or block device the caller gives (BLKTRACK_SNAP_STORE_FD).
 * SNAP_READ then returns the volume as it was at the checkpoint while writes
 * go on, and releases what it read (each block is read once). COMMIT, ABORT,
 * DETACH and module unload end the snapshot and free its store. A store
 * that fills up (or a copy that fails) loses the snapshot, never a write:
 * the write proceeds, STATUS shows BLKTRACK_STATUS_SNAP_OVERFLOW and
 * SNAP_READ fails with EOVERFLOW; the checkpoint itself stays pending.
 */

/**
 * struct blktrack_checkpoint_snap - BLKTRACK_IOC_CHECKPOINT_SNAP
 * @size: IN sizeof(struct blktrack_checkpoint_snap)
 * @vols_ptr: IN/OUT user pointer to @count struct blktrack_checkpoint_vol,
 *	as for BLKTRACK_IOC_CHECKPOINT
 * @count: IN 1..BLKTRACK_CHECKPOINT_MAX, each volume at most once
 * @flags: IN 0 or BLKTRACK_SNAP_ALL: protect every block of each volume,
 *	not only its pending map's (a full backup reads them all; an
 *	incremental's composed set may hold blocks of earlier deltas). The
 *	requester releases what it will not read with SNAP_READ_RELEASE.
 *	With BLKTRACK_SNAP_STORE_FD, the copies go to @store_fd instead of
 *	memory.
 * @store_limit: IN most bytes of copied-aside data each volume's store may
 *	hold; 0 takes the module parameter snap_limit_mib for memory, and no
 *	limit but the store's own size (a block device's size, a file's free
 *	space) for @store_fd
 * @store_fd: IN with BLKTRACK_SNAP_STORE_FD: a regular file or a block
 *	device open for reading and writing (not O_APPEND, not O_DIRECT),
 *	outside every volume of the call; shared by their snapshots, written
 *	from offset 0 over whatever it held. The module keeps its own
 *	reference until the last of them ends; its contents are of no use
 *	after that.
 * @reserved0, @reserved: must be zero
 *
 * Errors: those of CHECKPOINT; EOPNOTSUPP when writes cannot be
 * intercepted on this kernel (the ftrace redirect of submit_bio_noacct is
 * not built or was refused: another IPMODIFY user such as a livepatch; the
 * kernel log says which); EBADF (@store_fd is not open, or not for both
 * reading and writing); EINVAL (@store_fd is not a regular file or block
 * device, or is O_APPEND or O_DIRECT); EDEADLK (@store_fd lies on a volume
 * of the call: its own writes would wait for its copies). Nothing changes
 * on error.
 */
struct blktrack_checkpoint_snap {
	__u64 size;
	__u64 vols_ptr;
	__u32 count;
	__u32 flags;
	__u64 store_limit;
	__s32 store_fd;
	__u32 reserved0;
	__u64 reserved;
};

/* struct blktrack_checkpoint_snap.flags */
#define BLKTRACK_SNAP_ALL		(1U << 0)  /* protect the whole volume */
#define BLKTRACK_SNAP_STORE_FD		(1U << 1)  /* the store is @store_fd */

/* struct blktrack_snap_read.flags */
#define BLKTRACK_SNAP_READ_KEEP		(1U << 0)  /* do not release what was read */
#define BLKTRACK_SNAP_READ_RELEASE	(1U << 1)  /* release without reading */

/* Most bytes one SNAP_READ returns. */
#define BLKTRACK_SNAP_READ_MAX		(16U << 20)

/**
 * struct blktrack_snap_read - BLKTRACK_IOC_SNAP_READ: read the snapshot
 * @size: IN sizeof(struct blktrack_snap_read)
 * @dev: IN an attached volume with a snapshot
 * @flags: IN 0, BLKTRACK_SNAP_READ_KEEP, or BLKTRACK_SNAP_READ_RELEASE:
 *	release the range without reading it (@buf_ptr must be 0, @length is
 *	not limited to BLKTRACK_SNAP_READ_MAX, and blocks released already
 *	are no error)
 * @reserved0: must be zero
 * @stamp: IN the stamp CHECKPOINT_SNAP returned
 * @offset: IN byte offset in the volume, a multiple of the block size
 * @length: IN bytes, 1..BLKTRACK_SNAP_READ_MAX, a multiple of the block
 *	size unless the range ends at the volume's end
 * @buf_ptr: IN user pointer to @length bytes, filled with the volume's
 *	contents at the checkpoint; every block of the range must be in the
 *	snapshot's set (the pending map, or every block with BLKTRACK_SNAP_ALL)
 * @reserved: must be zero
 *
 * Without BLKTRACK_SNAP_READ_KEEP the blocks read are released: they are
 * no longer protected and their copies are freed; reading one again fails
 * with EIDRM.
 * Errors: ENOENT (not attached), ENODATA (no snapshot), ESTALE (stamp),
 * EINVAL (flags, KEEP with RELEASE, a buf_ptr with RELEASE, reserved,
 * alignment, length 0), E2BIG (length, not with RELEASE), ERANGE (past the
 * end), ENXIO (a block outside the snapshot's set: it is not protected, the
 * device's contents are not the checkpoint's; not with RELEASE), EOVERFLOW (the snapshot is lost: store full, a copy failed, the
 * disk removed), EIDRM (a block was released; not with RELEASE), ENOMEM,
 * EIO, EFAULT.
 * Nothing is released on error.
 */
struct blktrack_snap_read {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 reserved0;
	struct blktrack_stamp stamp;
	__u64 offset;
	__u64 length;
	__u64 buf_ptr;
	__u64 reserved[2];
};

/**
 * struct blktrack_snap_status - BLKTRACK_IOC_SNAP_STATUS: a snapshot's counters
 * @size: IN sizeof(struct blktrack_snap_status)
 * @dev: IN an attached volume with a snapshot
 * @flags: OUT BLKTRACK_STATUS_SNAP_OVERFLOW or 0; IN must be zero
 * @error: OUT why the snapshot was lost (a positive errno: EOVERFLOW for a
 *	full store, ENOMEM, EIO, ENODEV, ENOBUFS for too many writes waiting
 *	for their copies), 0 while it holds
 * @protected_blocks: OUT blocks protected at the checkpoint (the pending map,
 *	or the whole volume with BLKTRACK_SNAP_ALL)
 * @uncopied_blocks: OUT protected blocks neither copied nor released yet
 * @copied_blocks: OUT blocks copied into the store since the checkpoint
 * @released_blocks: OUT blocks released by SNAP_READ (reading or RELEASE)
 * @held_writes: OUT write bios held for a copy since the checkpoint
 * @store_bytes: OUT bytes of copies in the store now
 * @store_limit: OUT the store's limit in bytes
 * @reserved: must be zero
 *
 * Errors: ENOENT (not attached), ENODATA (no snapshot).
 */
struct blktrack_snap_status {
	__u64 size;
	struct blktrack_devno dev;
	__u32 flags;
	__u32 error;
	__u64 protected_blocks;
	__u64 uncopied_blocks;
	__u64 copied_blocks;
	__u64 released_blocks;
	__u64 held_writes;
	__u64 store_bytes;
	__u64 store_limit;
	__u64 reserved[4];
};

#define BLKTRACK_IOC_MAGIC	0xBC

#define BLKTRACK_IOC_VERSION	_IOWR(BLKTRACK_IOC_MAGIC, 0x00, struct blktrack_version)
#define BLKTRACK_IOC_ATTACH	_IOW(BLKTRACK_IOC_MAGIC, 0x01, struct blktrack_attach)
#define BLKTRACK_IOC_DETACH	_IOW(BLKTRACK_IOC_MAGIC, 0x02, struct blktrack_dev_arg)
#define BLKTRACK_IOC_LIST	_IOWR(BLKTRACK_IOC_MAGIC, 0x03, struct blktrack_list)
#define BLKTRACK_IOC_STATUS	_IOWR(BLKTRACK_IOC_MAGIC, 0x04, struct blktrack_status)
#define BLKTRACK_IOC_CHECKPOINT	_IOWR(BLKTRACK_IOC_MAGIC, 0x05, struct blktrack_checkpoint)
#define BLKTRACK_IOC_READ_EXTENTS _IOWR(BLKTRACK_IOC_MAGIC, 0x06, struct blktrack_read_extents)
#define BLKTRACK_IOC_COMMIT	_IOW(BLKTRACK_IOC_MAGIC, 0x07, struct blktrack_stamp_arg)
#define BLKTRACK_IOC_ABORT	_IOW(BLKTRACK_IOC_MAGIC, 0x08, struct blktrack_stamp_arg)
#define BLKTRACK_IOC_RESTORE	_IOW(BLKTRACK_IOC_MAGIC, 0x09, struct blktrack_restore)
#define BLKTRACK_IOC_CHECKPOINT_SNAP _IOWR(BLKTRACK_IOC_MAGIC, 0x0A, struct blktrack_checkpoint_snap)
#define BLKTRACK_IOC_SNAP_READ	_IOW(BLKTRACK_IOC_MAGIC, 0x0B, struct blktrack_snap_read)
#define BLKTRACK_IOC_SNAP_STATUS _IOWR(BLKTRACK_IOC_MAGIC, 0x0C, struct blktrack_snap_status)

#endif /* _UAPI_LINUX_BLKTRACK_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * The ABI of <linux/blktrack.h> is frozen: these sizes and offsets are what
 * version 1 of the module and every program built against it agree on.
 * A change that breaks one of these asserts is an ABI break: add a new
 * ioctl instead (doc/ABI.md, "Versioning").
 */
#include <stddef.h>
#include <criterion/criterion.h>
#include <linux/blktrack.h>

/* Checked at compile time too: a broken ABI does not even build the tests. */
#define ABI_SIZE(type, bytes)							\
	_Static_assert(sizeof(struct type) == (bytes), #type " size");		\
	_Static_assert(sizeof(struct type) % 8 == 0, #type " size % 8")
#define ABI_OFF(type, field, off)						\
	_Static_assert(offsetof(struct type, field) == (off), #type "." #field)

ABI_SIZE(blktrack_devno, 8);
ABI_SIZE(blktrack_stamp, 24);
ABI_SIZE(blktrack_version, 56);
ABI_SIZE(blktrack_attach, 64);
ABI_SIZE(blktrack_dev_arg, 40);
ABI_SIZE(blktrack_list, 48);
ABI_SIZE(blktrack_status, 136);
ABI_SIZE(blktrack_checkpoint_vol, 48);
ABI_SIZE(blktrack_checkpoint, 40);
ABI_SIZE(blktrack_extent, 16);
ABI_SIZE(blktrack_read_extents, 88);
ABI_SIZE(blktrack_stamp_arg, 64);
ABI_SIZE(blktrack_restore, 88);

ABI_OFF(blktrack_version, size, 0);
ABI_OFF(blktrack_attach, size, 0);
ABI_OFF(blktrack_dev_arg, size, 0);
ABI_OFF(blktrack_list, size, 0);
ABI_OFF(blktrack_status, size, 0);
ABI_OFF(blktrack_checkpoint, size, 0);
ABI_OFF(blktrack_read_extents, size, 0);
ABI_OFF(blktrack_stamp_arg, size, 0);
ABI_OFF(blktrack_restore, size, 0);
ABI_SIZE(blktrack_checkpoint_snap, 48);
ABI_OFF(blktrack_checkpoint_snap, store_limit, 24);
ABI_OFF(blktrack_checkpoint_snap, store_fd, 32);
ABI_SIZE(blktrack_snap_read, 88);
ABI_OFF(blktrack_snap_read, stamp, 24);
ABI_OFF(blktrack_snap_read, offset, 48);
ABI_OFF(blktrack_snap_read, buf_ptr, 64);
ABI_SIZE(blktrack_snap_status, 112);
ABI_OFF(blktrack_snap_status, protected_blocks, 24);
ABI_OFF(blktrack_snap_status, store_limit, 72);

struct field {
	const char *name;
	size_t off, size, want_off, want_size;
};

#define F(type, field, o, s)							\
	{ #type "." #field, offsetof(struct type, field),			\
	  sizeof(((struct type *)0)->field), (o), (s) }

static const struct field fields[] = {
	F(blktrack_devno, major, 0, 4),
	F(blktrack_devno, minor, 4, 4),

	F(blktrack_stamp, generation, 0, 16),
	F(blktrack_stamp, epoch, 16, 8),

	F(blktrack_version, size, 0, 8),
	F(blktrack_version, abi_version, 8, 4),
	F(blktrack_version, reserved0, 12, 4),
	F(blktrack_version, features, 16, 8),
	F(blktrack_version, reserved, 24, 32),

	F(blktrack_attach, size, 0, 8),
	F(blktrack_attach, dev, 8, 8),
	F(blktrack_attach, block_size, 16, 4),
	F(blktrack_attach, flags, 20, 4),
	F(blktrack_attach, mem_limit, 24, 8),
	F(blktrack_attach, reserved, 32, 32),

	F(blktrack_dev_arg, size, 0, 8),
	F(blktrack_dev_arg, dev, 8, 8),
	F(blktrack_dev_arg, flags, 16, 4),
	F(blktrack_dev_arg, reserved0, 20, 4),
	F(blktrack_dev_arg, reserved, 24, 16),

	F(blktrack_list, size, 0, 8),
	F(blktrack_list, devs_ptr, 8, 8),
	F(blktrack_list, capacity, 16, 4),
	F(blktrack_list, count, 20, 4),
	F(blktrack_list, flags, 24, 4),
	F(blktrack_list, reserved0, 28, 4),
	F(blktrack_list, reserved, 32, 16),

	F(blktrack_status, size, 0, 8),
	F(blktrack_status, dev, 8, 8),
	F(blktrack_status, flags, 16, 4),
	F(blktrack_status, state, 20, 4),
	F(blktrack_status, reason, 24, 4),
	F(blktrack_status, block_size, 28, 4),
	F(blktrack_status, dev_size, 32, 8),
	F(blktrack_status, stamp, 40, 24),
	F(blktrack_status, active_dirty, 64, 8),
	F(blktrack_status, pending_dirty, 72, 8),
	F(blktrack_status, map_bytes, 80, 8),
	F(blktrack_status, mem_limit, 88, 8),
	F(blktrack_status, start_sect, 96, 8),
	F(blktrack_status, diskseq, 104, 8),
	F(blktrack_status, reserved, 112, 24),

	F(blktrack_checkpoint_vol, dev, 0, 8),
	F(blktrack_checkpoint_vol, reserved0, 8, 8),
	F(blktrack_checkpoint_vol, stamp, 16, 24),
	F(blktrack_checkpoint_vol, dirty, 40, 8),

	F(blktrack_checkpoint, size, 0, 8),
	F(blktrack_checkpoint, vols_ptr, 8, 8),
	F(blktrack_checkpoint, count, 16, 4),
	F(blktrack_checkpoint, flags, 20, 4),
	F(blktrack_checkpoint, reserved, 24, 16),

	F(blktrack_extent, offset, 0, 8),
	F(blktrack_extent, length, 8, 8),

	F(blktrack_read_extents, size, 0, 8),
	F(blktrack_read_extents, dev, 8, 8),
	F(blktrack_read_extents, flags, 16, 4),
	F(blktrack_read_extents, reserved0, 20, 4),
	F(blktrack_read_extents, stamp, 24, 24),
	F(blktrack_read_extents, cursor, 48, 8),
	F(blktrack_read_extents, extents_ptr, 56, 8),
	F(blktrack_read_extents, capacity, 64, 4),
	F(blktrack_read_extents, count, 68, 4),
	F(blktrack_read_extents, reserved, 72, 16),

	F(blktrack_stamp_arg, size, 0, 8),
	F(blktrack_stamp_arg, dev, 8, 8),
	F(blktrack_stamp_arg, flags, 16, 4),
	F(blktrack_stamp_arg, reserved0, 20, 4),
	F(blktrack_stamp_arg, stamp, 24, 24),
	F(blktrack_stamp_arg, reserved, 48, 16),

	F(blktrack_restore, size, 0, 8),
	F(blktrack_restore, dev, 8, 8),
	F(blktrack_restore, flags, 16, 4),
	F(blktrack_restore, reason, 20, 4),
	F(blktrack_restore, stamp, 24, 24),
	F(blktrack_restore, dev_size, 48, 8),
	F(blktrack_restore, block_size, 56, 4),
	F(blktrack_restore, count, 60, 4),
	F(blktrack_restore, extents_ptr, 64, 8),
	F(blktrack_restore, reserved, 72, 16),
};

Test(abi, field_offsets_and_sizes)
{
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		cr_expect_eq(fields[i].off, fields[i].want_off,
			     "%s at offset %zu, want %zu", fields[i].name,
			     fields[i].off, fields[i].want_off);
		cr_expect_eq(fields[i].size, fields[i].want_size,
			     "%s is %zu bytes, want %zu", fields[i].name,
			     fields[i].size, fields[i].want_size);
	}
}

/*
 * No hidden padding: each struct's fields, in order, tile it exactly. The
 * table above lists every field, so their sizes must add up to the struct.
 */
Test(abi, no_implicit_padding)
{
	static const struct { const char *prefix; size_t size; } structs[] = {
		{ "blktrack_devno.", sizeof(struct blktrack_devno) },
		{ "blktrack_stamp.", sizeof(struct blktrack_stamp) },
		{ "blktrack_version.", sizeof(struct blktrack_version) },
		{ "blktrack_attach.", sizeof(struct blktrack_attach) },
		{ "blktrack_dev_arg.", sizeof(struct blktrack_dev_arg) },
		{ "blktrack_list.", sizeof(struct blktrack_list) },
		{ "blktrack_status.", sizeof(struct blktrack_status) },
		{ "blktrack_checkpoint_vol.", sizeof(struct blktrack_checkpoint_vol) },
		{ "blktrack_checkpoint.", sizeof(struct blktrack_checkpoint) },
		{ "blktrack_extent.", sizeof(struct blktrack_extent) },
		{ "blktrack_read_extents.", sizeof(struct blktrack_read_extents) },
		{ "blktrack_stamp_arg.", sizeof(struct blktrack_stamp_arg) },
	};
	size_t i, j;

	for (i = 0; i < sizeof(structs) / sizeof(structs[0]); i++) {
		size_t len = strlen(structs[i].prefix), end = 0;

		for (j = 0; j < sizeof(fields) / sizeof(fields[0]); j++) {
			if (strncmp(fields[j].name, structs[i].prefix, len))
				continue;
			cr_expect_eq(fields[j].off, end, "%s: a hole before it",
				     fields[j].name);
			end = fields[j].off + fields[j].size;
		}
		cr_expect_eq(end, structs[i].size, "%s: %zu bytes of fields in %zu",
			     structs[i].prefix, end, structs[i].size);
		cr_expect_eq(structs[i].size % 8, 0, "%s size %zu not a multiple of 8",
			     structs[i].prefix, structs[i].size);
	}
}

struct ioc {
	const char *name;
	unsigned long cmd;
	unsigned int nr, dir;
	size_t size;
};

#define IOC(name, nr, dir, type)						\
	{ #name, name, (nr), (dir), sizeof(struct type) }

static const struct ioc iocs[] = {
	IOC(BLKTRACK_IOC_VERSION, 0x00, _IOC_READ | _IOC_WRITE, blktrack_version),
	IOC(BLKTRACK_IOC_ATTACH, 0x01, _IOC_WRITE, blktrack_attach),
	IOC(BLKTRACK_IOC_DETACH, 0x02, _IOC_WRITE, blktrack_dev_arg),
	IOC(BLKTRACK_IOC_LIST, 0x03, _IOC_READ | _IOC_WRITE, blktrack_list),
	IOC(BLKTRACK_IOC_STATUS, 0x04, _IOC_READ | _IOC_WRITE, blktrack_status),
	IOC(BLKTRACK_IOC_CHECKPOINT, 0x05, _IOC_READ | _IOC_WRITE, blktrack_checkpoint),
	IOC(BLKTRACK_IOC_READ_EXTENTS, 0x06, _IOC_READ | _IOC_WRITE, blktrack_read_extents),
	IOC(BLKTRACK_IOC_COMMIT, 0x07, _IOC_WRITE, blktrack_stamp_arg),
	IOC(BLKTRACK_IOC_ABORT, 0x08, _IOC_WRITE, blktrack_stamp_arg),
	IOC(BLKTRACK_IOC_RESTORE, 0x09, _IOC_WRITE, blktrack_restore),
	IOC(BLKTRACK_IOC_CHECKPOINT_SNAP, 0x0a, _IOC_READ | _IOC_WRITE, blktrack_checkpoint_snap),
	IOC(BLKTRACK_IOC_SNAP_READ, 0x0b, _IOC_WRITE, blktrack_snap_read),
	IOC(BLKTRACK_IOC_SNAP_STATUS, 0x0c, _IOC_READ | _IOC_WRITE, blktrack_snap_status),
};

Test(abi, ioctl_numbers)
{
	size_t i, j;

	for (i = 0; i < sizeof(iocs) / sizeof(iocs[0]); i++) {
		const struct ioc *c = &iocs[i];

		cr_expect_eq(_IOC_TYPE(c->cmd), BLKTRACK_IOC_MAGIC, "%s type", c->name);
		cr_expect_eq(_IOC_NR(c->cmd), c->nr, "%s nr %u", c->name, _IOC_NR(c->cmd));
		cr_expect_eq(_IOC_DIR(c->cmd), c->dir, "%s direction", c->name);
		cr_expect_eq(_IOC_SIZE(c->cmd), c->size, "%s encodes size %u, struct is %zu",
			     c->name, _IOC_SIZE(c->cmd), c->size);
		for (j = 0; j < i; j++)
			cr_expect_neq(iocs[j].cmd, c->cmd, "%s == %s", c->name, iocs[j].name);
	}
}

/* The exact 32-bit values a program built today sends. */
Test(abi, ioctl_values_frozen)
{
	cr_expect_eq(BLKTRACK_IOC_VERSION, 0xc038bc00UL);
	cr_expect_eq(BLKTRACK_IOC_ATTACH, 0x4040bc01UL);
	cr_expect_eq(BLKTRACK_IOC_DETACH, 0x4028bc02UL);
	cr_expect_eq(BLKTRACK_IOC_LIST, 0xc030bc03UL);
	cr_expect_eq(BLKTRACK_IOC_STATUS, 0xc088bc04UL);
	cr_expect_eq(BLKTRACK_IOC_CHECKPOINT, 0xc028bc05UL);
	cr_expect_eq(BLKTRACK_IOC_READ_EXTENTS, 0xc058bc06UL);
	cr_expect_eq(BLKTRACK_IOC_COMMIT, 0x4040bc07UL);
	cr_expect_eq(BLKTRACK_IOC_ABORT, 0x4040bc08UL);
	cr_expect_eq(BLKTRACK_IOC_RESTORE, 0x4058bc09UL);
	cr_expect_eq(BLKTRACK_IOC_CHECKPOINT_SNAP, 0xc030bc0aUL);
	cr_expect_eq(BLKTRACK_IOC_SNAP_READ, 0x4058bc0bUL);
	cr_expect_eq(BLKTRACK_IOC_SNAP_STATUS, 0xc070bc0cUL);
}

Test(abi, constants)
{
	cr_expect_eq(BLKTRACK_ABI_VERSION, 1);
	cr_expect_str_eq(BLKTRACK_CTL_NAME, "blktrack-ctl");
	cr_expect_eq(BLKTRACK_BLOCK_SIZE_MIN, 4096U);
	cr_expect_eq(BLKTRACK_BLOCK_SIZE_MAX, 16U << 20);
	cr_expect_eq(BLKTRACK_BLOCK_SIZE_DEFAULT, 4096U);
	cr_expect_eq(BLKTRACK_CHECKPOINT_MAX, 64U);
	cr_expect_eq(BLKTRACK_STATE_TRACKING, 1);
	cr_expect_eq(BLKTRACK_STATE_INVALID, 2);
	cr_expect_eq(BLKTRACK_REASON_NONE, 0);
	cr_expect_eq(BLKTRACK_REASON_DEVICE_REMOVED, 1);
	cr_expect_eq(BLKTRACK_REASON_RESIZED, 2);
	cr_expect_eq(BLKTRACK_STATUS_PENDING, 1U);
	cr_expect_eq(BLKTRACK_READ_ACTIVE, 1U);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A guest for the hypervisor writer's test: a boot sector that writes an
 * ever growing counter into sectors 1..2047 of its boot disk, one sector
 * after the other, through the BIOS (int 13h, extended write).
 */
	.code16
	.globl _start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	sti
	movb	%dl, drive
next:
	incl	counter
	movl	counter, %eax
	movw	$0x8000, %di
	movw	$128, %cx
	cld
	rep stosl
	xorl	%edx, %edx
	movl	counter, %eax
	movl	$2047, %ecx
	divl	%ecx
	incl	%edx
	movl	%edx, lba
	movw	$dap, %si
	movb	drive, %dl
	movb	$0x43, %ah
	xorb	%al, %al
	int	$0x13
	jmp	next

	.align	4
dap:	.byte	16, 0
	.word	1		/* sectors */
	.word	0x8000, 0	/* buffer offset, segment */
lba:	.long	0, 0
counter: .long	0
drive:	.byte	0x80
	.org	510
	.byte	0x55, 0xaa

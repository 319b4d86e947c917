/* greenring: context switch for aarch64 (AAPCS64).
 *
 * void *gr__ctx_switch(gr__ctx *save, gr__ctx to, void *arg);
 *                      x0             x1         x2        -> x0
 *
 * Frame pushed on the suspended context's stack (176 bytes, sp stays
 * 16-byte aligned); the saved context is its lowest address:
 *
 *   sp+0    x19, x20
 *   sp+16   x21, x22
 *   sp+32   x23, x24
 *   sp+48   x25, x26
 *   sp+64   x27, x28
 *   sp+80   x29 (fp), x30 (lr = resume point)
 *   sp+96   d8,  d9
 *   sp+112  d10, d11
 *   sp+128  d12, d13
 *   sp+144  d14, d15
 *   sp+160  FPCR (64 bits)
 *   sp+168  8 bytes unused
 *   sp+176  caller's frame (fresh context: see gr__ctx_make in context.c)
 *
 * FPCR holds only control bits (rounding, FZ, DN, trap enables, AHP); it is
 * per context and written only when it differs (msr fpcr is slow).  FPSR,
 * the cumulative exception flags, is thread state shared by all contexts
 * and is never touched.  Only the low 64 bits of v8-v15 are callee-saved.
 *
 * Nothing touches the suspended stack after *save is written.
 *
 * BTI: both functions start with `bti c` (hint #34, a NOP without
 * FEAT_BTI).  The trampoline is entered by `ret`, which BTI does not check.
 * No return address is signed here (x30 of a suspended context is stored
 * raw and restored raw), so only BTI is claimed in the property note.
 */

#if defined(__aarch64__)

	.text

/* void *gr__ctx_switch(gr__ctx *save, gr__ctx to, void *arg) */
	.globl	gr__ctx_switch
	.type	gr__ctx_switch, %function
	.p2align 4
gr__ctx_switch:
	.cfi_startproc
	hint	#34			/* bti c */
	sub	sp, sp, #176
	.cfi_def_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8,  d9,  [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	.cfi_offset x19, -176
	.cfi_offset x20, -168
	.cfi_offset x21, -160
	.cfi_offset x22, -152
	.cfi_offset x23, -144
	.cfi_offset x24, -136
	.cfi_offset x25, -128
	.cfi_offset x26, -120
	.cfi_offset x27, -112
	.cfi_offset x28, -104
	.cfi_offset x29, -96
	.cfi_offset x30, -88
	.cfi_offset d8,  -80
	.cfi_offset d9,  -72
	.cfi_offset d10, -64
	.cfi_offset d11, -56
	.cfi_offset d12, -48
	.cfi_offset d13, -40
	.cfi_offset d14, -32
	.cfi_offset d15, -24
	mrs	x9, fpcr
	str	x9, [sp, #160]

	/* Suspend: publish the stack pointer, then switch stacks.  The frame
	 * on the new stack has the same layout, so the CFI stays valid. */
	mov	x10, sp
	str	x10, [x0]
	mov	sp, x1

	ldr	x10, [sp, #160]
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x10
1:
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8,  d9,  [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	.cfi_def_cfa_offset 0
	.cfi_restore x19
	.cfi_restore x20
	.cfi_restore x21
	.cfi_restore x22
	.cfi_restore x23
	.cfi_restore x24
	.cfi_restore x25
	.cfi_restore x26
	.cfi_restore x27
	.cfi_restore x28
	.cfi_restore x29
	.cfi_restore x30
	.cfi_restore d8
	.cfi_restore d9
	.cfi_restore d10
	.cfi_restore d11
	.cfi_restore d12
	.cfi_restore d13
	.cfi_restore d14
	.cfi_restore d15

	/* Return value of the resumed gr__ctx_switch; for a fresh context it is
	 * already entry's argument register when the trampoline runs. */
	mov	x0, x2
	ret
	.cfi_endproc
	.size	gr__ctx_switch, .-gr__ctx_switch

/* First code run by a fresh context.  gr__ctx_switch "returns" (x30) to
 * gr__ctx_trampoline + 4, just past the landing pad (ret is not checked by
 * BTI), so that an unwinder looking up return address - 1 while a fresh
 * context is being switched to still lands inside this function and its
 * FDE; context.c uses the same offset and the .if below checks it.
 * On arrival sp = 16-byte aligned stack top, x19 = entry, x0 = arg.  Clears
 * fp and lr so frame-record walkers stop at entry's saved (0, trampoline)
 * record, and marks the return address undefined so CFI unwinders stop
 * here. */
	.globl	gr__ctx_trampoline
	.type	gr__ctx_trampoline, %function
	.p2align 4
gr__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	hint	#34			/* bti c */
.Lgr__ctx_trampoline_resume:
	mov	x29, #0
	mov	x30, #0
	blr	x19
	/* entry must never return. */
	brk	#0x3e8
	.cfi_endproc
	.size	gr__ctx_trampoline, .-gr__ctx_trampoline
	/* GR__CTX_TRAMPOLINE_RESUME in context.c */
	.if	.Lgr__ctx_trampoline_resume - gr__ctx_trampoline - 4
	.error	"gr__ctx_trampoline: resume point is not at offset 4"
	.endif

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
/* GNU_PROPERTY_AARCH64_FEATURE_1_AND: BTI. */
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4			/* n_namesz */
	.long	16			/* n_descsz */
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000		/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4			/* pr_datasz */
	.long	1			/* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
	.p2align 3
#endif

#endif /* __aarch64__ */

	.section .note.GNU-stack, "", %progbits

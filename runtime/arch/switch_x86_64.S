/* greenring: context switch for x86_64 (System V ABI).
 *
 * void *gr__ctx_switch(gr__ctx *save, gr__ctx to, void *arg);
 *                      %rdi           %rsi       %rdx      -> %rax
 *
 * Frame pushed on the suspended context's stack; the saved context is the
 * address of its lowest byte (16-byte aligned for a context suspended in
 * gr__ctx_switch, since the caller's call leaves %rsp = 8 mod 16):
 *
 *   sp+0   MXCSR (32 bits) as read by stmxcsr at suspend; only its control
 *          bits 6-15 are used on resume
 *   sp+4   x87 control word (16 bits), as read by fnstcw
 *   sp+6   2 bytes unused
 *   sp+8   r15
 *   sp+16  r14
 *   sp+24  r13
 *   sp+32  r12
 *   sp+40  rbx
 *   sp+48  rbp
 *   sp+56  return address (resume point)
 *   sp+64  caller's frame (fresh context: see gr__ctx_make in context.c)
 *
 * On resume the MXCSR loaded is (saved & 0xffc0) | (current & 0x003f): the
 * resumed context's control bits merged with the thread's *current* sticky
 * status flags, and ldmxcsr is skipped entirely when that equals the
 * current MXCSR.  The status flags are thread state shared by all contexts;
 * never reloading a different full MXCSR keeps the switch off the slow
 * MXCSR-write path.  fldcw is likewise skipped when the control word is
 * unchanged.  The x87 status word is never touched.
 *
 * Nothing touches the suspended stack after *save is written, so a context
 * can be handed to another thread as soon as its save slot is published.
 *
 * Shadow stacks (CET SHSTK) are incompatible with switching stacks under a
 * `ret`; only IBT is claimed in the GNU property note below.
 */

#if defined(__x86_64__)

	.text

/* void *gr__ctx_switch(gr__ctx *save, gr__ctx to, void *arg) */
	.globl	gr__ctx_switch
	.type	gr__ctx_switch, @function
	.p2align 4
gr__ctx_switch:
	.cfi_startproc
	endbr64
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	leaq	-8(%rsp), %rsp
	.cfi_adjust_cfa_offset 8

	/* FP control state of the context being suspended. */
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movl	(%rsp), %r8d		/* current MXCSR: status + control */
	movzwl	4(%rsp), %r9d		/* current x87 control word */

	/* Suspend: publish the stack pointer, then switch stacks.  The frame
	 * on the new stack has the same layout, so the CFI stays valid. */
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp

	/* MXCSR = resumed control bits | current status bits. */
	movl	(%rsp), %eax
	andl	$0xffc0, %eax
	movl	%r8d, %ecx
	andl	$0x003f, %ecx
	orl	%ecx, %eax
	cmpl	%r8d, %eax
	je	1f
	movl	%eax, (%rsp)
	ldmxcsr	(%rsp)
1:
	cmpw	4(%rsp), %r9w
	je	2f
	fldcw	4(%rsp)
2:
	leaq	8(%rsp), %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp

	/* Return value of the resumed gr__ctx_switch; for a fresh context the
	 * trampoline below takes it from here. */
	movq	%rdx, %rax
	ret
	.cfi_endproc
	.size	gr__ctx_switch, .-gr__ctx_switch

/* First code run by a fresh context.  gr__ctx_switch "returns" to
 * gr__ctx_trampoline + 4, just past the endbr64 (a ret is not an IBT
 * branch), so that an unwinder looking up return address - 1 while a fresh
 * context is being switched to still lands inside this function and its
 * FDE; context.c uses the same offset and the .if below checks it.
 * On arrival %rsp is 16-byte aligned, (%rsp) = 0 (fake return address),
 * %rbp = 0, %rbx = entry, %rax = arg.  Calls entry(arg) with %rsp 16-byte
 * aligned at the call, as the ABI requires.  The CFI marks the return
 * address undefined so unwinders (gdb, libgcc, libunwind) stop here;
 * frame-pointer walkers stop at the zero %rbp that entry's prologue saves. */
	.globl	gr__ctx_trampoline
	.type	gr__ctx_trampoline, @function
	.p2align 4
gr__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined %rip
	endbr64
.Lgr__ctx_trampoline_resume:
	movq	%rax, %rdi
	xorl	%ebp, %ebp
	call	*%rbx
	/* entry must never return. */
	ud2
	.cfi_endproc
	.size	gr__ctx_trampoline, .-gr__ctx_trampoline
	/* GR__CTX_TRAMPOLINE_RESUME in context.c */
	.if	.Lgr__ctx_trampoline_resume - gr__ctx_trampoline - 4
	.error	"gr__ctx_trampoline: resume point is not at offset 4"
	.endif

#if defined(__CET__) && (__CET__ & 1)
/* GNU_PROPERTY_X86_FEATURE_1_AND: IBT (every indirect target above starts
 * with endbr64).  SHSTK is deliberately not claimed. */
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4			/* n_namesz */
	.long	16			/* n_descsz */
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000002		/* GNU_PROPERTY_X86_FEATURE_1_AND */
	.long	4			/* pr_datasz */
	.long	1			/* GNU_PROPERTY_X86_FEATURE_1_IBT */
	.p2align 3
#endif

#endif /* __x86_64__ */

	.section .note.GNU-stack, "", @progbits

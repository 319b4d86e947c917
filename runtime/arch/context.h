/* greenring: machine context switch (x86_64 SysV, aarch64 AAPCS64).
 *
 * A suspended context is represented by nothing but its stack pointer
 * (Boost.Context fcontext style): gr__ctx_switch pushes the callee-saved
 * registers and the FP *control* state onto the running stack, stores the
 * resulting stack pointer in *save, loads `to` and pops the same frame from
 * there.  The frame layouts are documented in switch_x86_64.S and
 * switch_aarch64.S, and gr__ctx_make (context.c) builds the same layout for
 * a fresh context.
 *
 * FP state semantics (see DESIGN.md "Context switch"):
 *   - Control bits are per context: x86_64 MXCSR bits 6-15 (DAZ, exception
 *     masks, rounding control, FTZ) and the x87 control word; aarch64 FPCR.
 *     A fresh context starts with the control state of the thread that
 *     called gr__ctx_make, as it was at that call.
 *   - Status (sticky exception) flags are thread state shared by all
 *     contexts running on that thread: MXCSR bits 0-5, the x87 status word,
 *     aarch64 FPSR.  They are never saved or restored, so a switch never
 *     reloads a different full MXCSR (the slow path, ~85 ns vs ~5 ns).
 */
#ifndef GREENRING_RUNTIME_ARCH_CONTEXT_H
#define GREENRING_RUNTIME_ARCH_CONTEXT_H

/* Saved context = the stack pointer of a suspended context. */
typedef void *gr__ctx;

/* Save callee-saved registers and the FP control state of the running context on its own stack,
 * store the resulting stack pointer in *save, switch to `to`, and make the resumed context's
 * gr__ctx_switch call return `arg` (or, for a fresh context, pass `arg` to its entry). */
void *gr__ctx_switch(gr__ctx *save, gr__ctx to, void *arg);

/* Prepare a fresh context whose stack ends at `stack_top` (highest address, exclusive). The first
 * gr__ctx_switch to the returned context calls entry(arg) on that stack. entry must never return
 * (it ends by switching away for good). Returns the context to switch to. */
gr__ctx gr__ctx_make(void *stack_top, void (*entry)(void *arg));

#endif /* GREENRING_RUNTIME_ARCH_CONTEXT_H */

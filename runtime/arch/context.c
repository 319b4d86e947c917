/* greenring: initial frame of a fresh context (see arch/context.h).
 *
 * gr__ctx_make writes, just below the 16-byte-aligned stack top, the frame
 * that gr__ctx_switch pops when it resumes a context (layouts in
 * switch_x86_64.S / switch_aarch64.S), with the resume point set to the
 * assembly trampoline gr__ctx_trampoline and the entry function in a
 * callee-saved register slot.  The FP control slots hold the control state
 * of the calling thread at the time of the call, so a fresh context starts
 * with sane (inherited) rounding mode, masks, FTZ/DAZ and precision.
 */
#include "arch/context.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The first code a fresh context runs; defined in switch_<arch>.S.  The
 * initial frame resumes it at offset GR__CTX_TRAMPOLINE_RESUME, past its
 * endbr64 / bti c, so that "return address - 1" (what unwinders look up for
 * a caller frame) is inside the trampoline while gr__ctx_switch is entering
 * a fresh context.  The .S checks the offset at assembly time. */
void gr__ctx_trampoline(void);
#define GR__CTX_TRAMPOLINE_RESUME 4

static uint64_t trampoline_resume(void)
{
	return (uint64_t)(uintptr_t)gr__ctx_trampoline + GR__CTX_TRAMPOLINE_RESUME;
}

#if defined(__x86_64__)

/* Initial frame, lowest address first.  T = stack_top rounded down to 16.
 * The saved context is T - 80 (16-byte aligned, like a context suspended
 * inside gr__ctx_switch). */
struct gr__ctx_frame {
	uint32_t mxcsr;      /* T-80: control bits only (status is taken live) */
	uint16_t x87_cw;     /* T-76 */
	uint16_t unused;     /* T-74 */
	uint64_t r15;        /* T-72 */
	uint64_t r14;        /* T-64 */
	uint64_t r13;        /* T-56 */
	uint64_t r12;        /* T-48 */
	uint64_t rbx;        /* T-40: entry */
	uint64_t rbp;        /* T-32: 0, ends the frame-pointer chain */
	uint64_t ret;        /* T-24: gr__ctx_trampoline + 4 */
	uint64_t fake_ret;   /* T-16: 0, the trampoline's own "return address";
	                        %rsp here when the trampoline calls entry
	                        (16-byte aligned, so entry sees %rsp+8 aligned) */
	uint64_t pad;        /* T-8:  0 */
};
_Static_assert(sizeof(struct gr__ctx_frame) == 80, "x86_64 initial frame size");
_Static_assert(offsetof(struct gr__ctx_frame, x87_cw) == 4, "x87 cw slot");
_Static_assert(offsetof(struct gr__ctx_frame, r15) == 8, "r15 slot");
_Static_assert(offsetof(struct gr__ctx_frame, rbx) == 40, "rbx slot");
_Static_assert(offsetof(struct gr__ctx_frame, rbp) == 48, "rbp slot");
_Static_assert(offsetof(struct gr__ctx_frame, ret) == 56, "return slot");

gr__ctx gr__ctx_make(void *stack_top, void (*entry)(void *arg))
{
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
	struct gr__ctx_frame *f = (struct gr__ctx_frame *)(top - sizeof *f);
	uint32_t mxcsr;
	uint16_t cw;

	/* Read the control registers straight into the frame's slots and
	 * store every field in place: building the frame in a local and
	 * copying it stalled on store forwarding (measured: a fifth of a
	 * spawn). */
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	f->mxcsr = mxcsr & 0xffc0u;
	f->x87_cw = cw;
	f->unused = 0;
	f->r15 = f->r14 = f->r13 = f->r12 = 0;
	f->rbx = (uint64_t)(uintptr_t)entry;
	f->rbp = 0;
	f->ret = trampoline_resume();
	f->fake_ret = 0;
	f->pad = 0;
	return f;
}

#elif defined(__aarch64__)

/* Initial frame, lowest address first.  T = stack_top rounded down to 16.
 * The saved context is T - 176; the trampoline runs with sp = T. */
struct gr__ctx_frame {
	uint64_t x19_x28[10]; /* T-176: x19 = entry, the rest 0 */
	uint64_t x29;         /* T-96:  0 */
	uint64_t x30;         /* T-88:  gr__ctx_trampoline + 4 */
	uint64_t d8_d15[8];   /* T-80:  0 */
	uint64_t fpcr;        /* T-16 */
	uint64_t unused;      /* T-8 */
};
_Static_assert(sizeof(struct gr__ctx_frame) == 176, "aarch64 initial frame size");
_Static_assert(offsetof(struct gr__ctx_frame, x29) == 80, "x29 slot");
_Static_assert(offsetof(struct gr__ctx_frame, d8_d15) == 96, "d8 slot");
_Static_assert(offsetof(struct gr__ctx_frame, fpcr) == 160, "fpcr slot");

gr__ctx gr__ctx_make(void *stack_top, void (*entry)(void *arg))
{
	struct gr__ctx_frame f;
	uint64_t fpcr;
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
	void *base = (void *)(top - sizeof f);

	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));

	memset(&f, 0, sizeof f);
	f.x19_x28[0] = (uint64_t)(uintptr_t)entry;
	f.x30 = trampoline_resume();
	f.fpcr = fpcr;
	memcpy(base, &f, sizeof f);
	return base;
}

#else
#error "greenring: no context switch for this architecture (x86_64 and aarch64 only)"
#endif

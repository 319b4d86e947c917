/* greenring: standalone self-test of the assembly context switch.
 *
 * Build with context.c and the .S of the target architecture only (libc,
 * nothing else), e.g.
 *   gcc -O2 -Iruntime tests/arch/switch_selftest.c runtime/arch/context.c \
 *       runtime/arch/switch_x86_64.S -o st && ./st
 *   zig cc -target aarch64-linux-musl -static -O2 -Iruntime \
 *       tests/arch/switch_selftest.c runtime/arch/context.c \
 *       runtime/arch/switch_aarch64.S -o st && qemu-aarch64-static ./st
 *
 * Prints "ok N - ..." / "FAIL N - ..." per case and ends with
 * "P passed, F failed"; exits non-zero on any failure.
 *
 * The FP environment is read and written with inline asm rather than
 * <fenv.h>: glibc keeps fesetround & co. in libm, and this program must link
 * against libc alone.  The helpers mirror fesetround (which on x86_64 sets
 * the rounding mode of both the x87 unit and SSE).
 */
#define _DEFAULT_SOURCE 1

#include "arch/context.h"

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "switch_selftest: x86_64 or aarch64 only"
#endif

/* ------------------------------------------------------------------------ */
/* Reporting */

static int n_passed, n_failed;
static char why[512]; /* reason of the current case's first failure */

static void failf(const char *fmt, ...)
{
	va_list ap;
	if (why[0] != '\0')
		return; /* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (why[0] == '\0')
		why[0] = '?';
}

static void report(int n, const char *desc)
{
	if (why[0] == '\0') {
		printf("ok %d - %s\n", n, desc);
		n_passed++;
	} else {
		printf("FAIL %d - %s: %s\n", n, desc, why);
		n_failed++;
	}
	fflush(stdout);
	why[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Stacks: mmap'd, with a PROT_NONE guard page below. */

struct stack {
	void *map;
	size_t map_len;
	void *top;
};

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

static int stack_alloc(struct stack *s, size_t size)
{
	size_t pg = page_size();
	size = (size + pg - 1) / pg * pg;
	s->map_len = size + pg;
	s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return -1;
	}
	if (mprotect(s->map, pg, PROT_NONE) != 0) {
		munmap(s->map, s->map_len);
		s->map = NULL;
		return -1;
	}
	s->top = (char *)s->map + s->map_len;
	return 0;
}

static void stack_free(struct stack *s)
{
	if (s->map != NULL)
		munmap(s->map, s->map_len);
	s->map = NULL;
}

static void *u2p(uintptr_t v) { return (void *)v; }
static uintptr_t p2u(void *p) { return (uintptr_t)p; }

/* ------------------------------------------------------------------------ */
/* FP environment helpers (inline asm, see the header comment). */

enum rnd { RND_NEAREST = 0, RND_DOWN = 1, RND_UP = 2, RND_ZERO = 3, RND_MIXED = -1 };

static const char *rnd_name(int r)
{
	switch (r) {
	case RND_NEAREST: return "nearest";
	case RND_DOWN: return "downward";
	case RND_UP: return "upward";
	case RND_ZERO: return "toward-zero";
	default: return "mixed";
	}
}

#if defined(__x86_64__)

#define MXCSR_FLAGS 0x003fu
#define MXCSR_PE 0x0020u  /* inexact flag */
#define MXCSR_DAZ 0x0040u
#define MXCSR_RC_SHIFT 13
#define MXCSR_FTZ 0x8000u
#define X87_RC_SHIFT 10
#define X87_PC_MASK 0x0300u
#define X87_PC_DOUBLE 0x0200u
#define X87_PC_EXTENDED 0x0300u

static uint32_t get_mxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v) : : "memory");
	return v;
}
static void set_mxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" : : "m"(v) : "memory"); }
static uint16_t get_x87cw(void)
{
	uint16_t v;
	__asm__ volatile("fnstcw %0" : "=m"(v) : : "memory");
	return v;
}
static void set_x87cw(uint16_t v) { __asm__ volatile("fldcw %0" : : "m"(v) : "memory"); }

/* Like fesetround: both units. */
static void set_round(enum rnd r)
{
	set_mxcsr((get_mxcsr() & ~(3u << MXCSR_RC_SHIFT)) | ((unsigned)r << MXCSR_RC_SHIFT));
	set_x87cw((uint16_t)((get_x87cw() & ~(3u << X87_RC_SHIFT)) | ((unsigned)r << X87_RC_SHIFT)));
}
static int get_round(void)
{
	int sse = (int)((get_mxcsr() >> MXCSR_RC_SHIFT) & 3u);
	int x87 = (int)((get_x87cw() >> X87_RC_SHIFT) & 3u);
	return sse == x87 ? sse : RND_MIXED;
}
static void set_flush(int on)
{
	uint32_t m = get_mxcsr() & ~(MXCSR_FTZ | MXCSR_DAZ);
	set_mxcsr(on ? m | MXCSR_FTZ | MXCSR_DAZ : m);
}
static int get_flush(void) { return (get_mxcsr() & (MXCSR_FTZ | MXCSR_DAZ)) != 0; }
static int test_inexact(void) { return (get_mxcsr() & MXCSR_PE) != 0; }
static void clear_flags(void)
{
	set_mxcsr(get_mxcsr() & ~MXCSR_FLAGS);
	__asm__ volatile("fnclex" : : : "memory");
}

struct fpctl { uint32_t mxcsr; uint16_t cw; };
static struct fpctl fpctl_save(void) { struct fpctl c = { get_mxcsr(), get_x87cw() }; return c; }
static void fpctl_restore(struct fpctl c) { set_mxcsr(c.mxcsr & ~MXCSR_FLAGS); set_x87cw(c.cw); }

#else /* __aarch64__ */

#define FPCR_RMODE_SHIFT 22
#define FPCR_FZ (1u << 24)
#define FPSR_IXC 0x10u
#define FPSR_CUMULATIVE 0x9fu

static uint64_t get_fpcr(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, fpcr" : "=r"(v) : : "memory");
	return v;
}
static void set_fpcr(uint64_t v) { __asm__ volatile("msr fpcr, %0" : : "r"(v) : "memory"); }
static uint64_t get_fpsr(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, fpsr" : "=r"(v) : : "memory");
	return v;
}
static void set_fpsr(uint64_t v) { __asm__ volatile("msr fpsr, %0" : : "r"(v) : "memory"); }

/* Our enum order is x86's RC encoding; FPCR.RMode is RN, RP, RM, RZ. */
static const unsigned rnd_to_rmode[4] = { 0, 2, 1, 3 };
static const int rmode_to_rnd[4] = { RND_NEAREST, RND_UP, RND_DOWN, RND_ZERO };

static void set_round(enum rnd r)
{
	set_fpcr((get_fpcr() & ~(3ull << FPCR_RMODE_SHIFT)) |
	         ((uint64_t)rnd_to_rmode[r] << FPCR_RMODE_SHIFT));
}
static int get_round(void) { return rmode_to_rnd[(get_fpcr() >> FPCR_RMODE_SHIFT) & 3u]; }
static void set_flush(int on)
{
	uint64_t c = get_fpcr() & ~(uint64_t)FPCR_FZ;
	set_fpcr(on ? c | FPCR_FZ : c);
}
static int get_flush(void) { return (get_fpcr() & FPCR_FZ) != 0; }
static int test_inexact(void) { return (get_fpsr() & FPSR_IXC) != 0; }
static void clear_flags(void) { set_fpsr(get_fpsr() & ~(uint64_t)FPSR_CUMULATIVE); }

struct fpctl { uint64_t fpcr; };
static struct fpctl fpctl_save(void) { struct fpctl c = { get_fpcr() }; return c; }
static void fpctl_restore(struct fpctl c) { set_fpcr(c.fpcr); }

#endif

/* Operands the compiler cannot constant-fold.  Every expression below reads
 * its own volatile operands, so no two of them can be merged by rewrites that
 * only hold in round-to-nearest (like -a - b == -(a + b)). */
static volatile double v_one = 1.0, v_neg_one = -1.0, v_three = 3.0;
static volatile double v_quarter_ulp = 0x1p-54, v_3q_ulp = 0x1.8p-53;
static volatile double v_dbl_min = 0x1p-1022, v_half = 0.5, v_two52 = 0x1p52;
static volatile uint64_t v_denorm_bits = 1; /* smallest subnormal double */

/* Rounding mode as observed by actual double arithmetic (SSE / AdvSIMD). */
static NOINLINE int observed_round(void)
{
	int up = v_one + v_quarter_ulp > 1.0;       /* only upward rounds 1 + ulp/4 up */
	int down = v_neg_one - v_quarter_ulp < -1.0; /* only downward rounds -1 - ulp/4 down */
	int near = v_one + v_3q_ulp > 1.0;          /* upward and nearest round 1 + 3ulp/4 up */
	if (up && near && !down)
		return RND_UP;
	if (down && !up && !near)
		return RND_DOWN;
	if (near && !up && !down)
		return RND_NEAREST;
	if (!near && !up && !down)
		return RND_ZERO;
	return RND_MIXED;
}

/* 1 if a subnormal result is flushed to zero (FTZ / FPCR.FZ). */
static NOINLINE int observed_ftz(void) { return v_dbl_min * v_half == 0.0; }

/* 1 if a subnormal input is treated as zero (DAZ / FPCR.FZ). */
static NOINLINE int observed_daz(void)
{
	double d;
	uint64_t bits = v_denorm_bits;
	memcpy(&d, &bits, sizeof d);
	return d * v_two52 == 0.0;
}

/* Raises the inexact flag with a real operation. */
static NOINLINE void do_inexact(void)
{
	volatile double r = v_one / v_three;
	(void)r;
}

#if defined(__x86_64__)
static volatile long double v_ld_one = 1.0L, v_ld_tiny = 0x1p-65L, v_ld_2m60 = 0x1p-60L;
/* x87 rounding as observed: 1 + ulp/4 rounds up only upward (64-bit precision). */
static NOINLINE int observed_x87_up(void) { return v_ld_one + v_ld_tiny > v_ld_one; }
/* 1 if the x87 precision control is 64-bit: 1 + 2^-60 is exact there and
 * rounds back to 1 at 53-bit precision (in any mode but upward). */
static NOINLINE int observed_x87_ext(void) { return v_ld_one + v_ld_2m60 > v_ld_one; }
#endif

/* ------------------------------------------------------------------------ */
/* Case 1: ping-pong through arg, 1,000,000 round trips. */

#define C1_N 1000000u
static gr__ctx c1_main, c1_co;
static uintptr_t c1_co_count, c1_co_bad;

static void c1_entry(void *arg)
{
	uintptr_t v = p2u(arg);
	for (;;) {
		if (v != 2 * c1_co_count)
			c1_co_bad++;
		c1_co_count++;
		v = p2u(gr__ctx_switch(&c1_co, c1_main, u2p(v + 1)));
	}
}

static void case1(void)
{
	struct stack s;
	uintptr_t x = 0, bad = 0, i, last = 0;

	if (stack_alloc(&s, 64 * 1024) != 0) {
		failf("mmap");
		return;
	}
	c1_co = gr__ctx_make(s.top, c1_entry);
	for (i = 0; i < C1_N; i++) {
		uintptr_t r = p2u(gr__ctx_switch(&c1_main, c1_co, u2p(x)));
		if (r != x + 1)
			bad++;
		last = r;
		x = r + 1;
	}
	if (bad != 0 || c1_co_bad != 0)
		failf("%lu bad values seen by main, %lu by the context", (unsigned long)bad,
		      (unsigned long)c1_co_bad);
	else if (last != 2 * (uintptr_t)C1_N - 1 || x != 2 * (uintptr_t)C1_N || c1_co_count != C1_N)
		failf("final values: last=%lu x=%lu count=%lu", (unsigned long)last, (unsigned long)x,
		      (unsigned long)c1_co_count);
	stack_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Case 2: every callee-saved register survives a switch.
 *
 * regs_roundtrip loads in[] into all callee-saved registers, calls
 * gr__ctx_switch(save, to, arg) from inside the same asm block, and stores
 * the registers into out[] right after the call returns.  Both sides of the
 * switch run it with different patterns, so each side's registers are
 * overwritten by the other's before it resumes. */

#if defined(__x86_64__)
#define C2_NREGS 6 /* rbx rbp r12 r13 r14 r15 */
static const char *const c2_names[C2_NREGS] = { "rbx", "rbp", "r12", "r13", "r14", "r15" };

static NOINLINE void regs_roundtrip(gr__ctx *save, gr__ctx to, void *arg,
                                    const uint64_t *in, uint64_t *out)
{
	void *(*fn)(gr__ctx *, gr__ctx, void *) = gr__ctx_switch;
	register const uint64_t *in_r __asm__("r9") = in;
	register uint64_t *out_r __asm__("rcx") = out;

	/* rbp may be the frame pointer (-O0), so it is saved by hand instead of
	 * being named as a clobber.  Skip the red zone and align the stack for
	 * the call; the stack also keeps out[] across the call. */
	__asm__ volatile(
		"movq %%rsp, %%r8\n\t"
		"subq $128, %%rsp\n\t"
		"andq $-16, %%rsp\n\t"
		"pushq %%r8\n\t"
		"pushq %%rbp\n\t"
		"pushq %%rcx\n\t"
		"pushq %%rcx\n\t"
		"movq 0(%%r9), %%rbx\n\t"
		"movq 8(%%r9), %%rbp\n\t"
		"movq 16(%%r9), %%r12\n\t"
		"movq 24(%%r9), %%r13\n\t"
		"movq 32(%%r9), %%r14\n\t"
		"movq 40(%%r9), %%r15\n\t"
		"call *%%rax\n\t"
		"popq %%rcx\n\t"
		"popq %%rcx\n\t"
		"movq %%rbx, 0(%%rcx)\n\t"
		"movq %%rbp, 8(%%rcx)\n\t"
		"movq %%r12, 16(%%rcx)\n\t"
		"movq %%r13, 24(%%rcx)\n\t"
		"movq %%r14, 32(%%rcx)\n\t"
		"movq %%r15, 40(%%rcx)\n\t"
		"popq %%rbp\n\t"
		"popq %%rsp\n\t"
		: "+a"(fn), "+D"(save), "+S"(to), "+d"(arg), "+r"(out_r), "+r"(in_r)
		:
		: "r8", "r10", "r11", "rbx", "r12", "r13", "r14", "r15",
		  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
		  "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)",
		  "memory", "cc");
}
#else
#define C2_NREGS 19 /* x19-x28, x29, d8-d15 */
static const char *const c2_names[C2_NREGS] = {
	"x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
	"d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15",
};

static NOINLINE void regs_roundtrip(gr__ctx *save, gr__ctx to, void *arg,
                                    const uint64_t *in, uint64_t *out)
{
	register void *x0 __asm__("x0") = save;
	register void *x1 __asm__("x1") = to;
	register void *x2 __asm__("x2") = arg;
	register const uint64_t *in_r __asm__("x9") = in;
	register uint64_t *out_r __asm__("x10") = out;
	register void *(*fn)(gr__ctx *, gr__ctx, void *) __asm__("x11") = gr__ctx_switch;

	/* x29 may be the frame pointer, so it is saved by hand (with x30) rather
	 * than named as a clobber; the stack also keeps out[] across the call. */
	__asm__ volatile(
		"stp x29, x30, [sp, #-32]!\n\t"
		"str x10, [sp, #16]\n\t"
		"ldp x19, x20, [x9, #0]\n\t"
		"ldp x21, x22, [x9, #16]\n\t"
		"ldp x23, x24, [x9, #32]\n\t"
		"ldp x25, x26, [x9, #48]\n\t"
		"ldp x27, x28, [x9, #64]\n\t"
		"ldr x29, [x9, #80]\n\t"
		"ldp d8, d9, [x9, #88]\n\t"
		"ldp d10, d11, [x9, #104]\n\t"
		"ldp d12, d13, [x9, #120]\n\t"
		"ldp d14, d15, [x9, #136]\n\t"
		"blr x11\n\t"
		"ldr x10, [sp, #16]\n\t"
		"stp x19, x20, [x10, #0]\n\t"
		"stp x21, x22, [x10, #16]\n\t"
		"stp x23, x24, [x10, #32]\n\t"
		"stp x25, x26, [x10, #48]\n\t"
		"stp x27, x28, [x10, #64]\n\t"
		"str x29, [x10, #80]\n\t"
		"stp d8, d9, [x10, #88]\n\t"
		"stp d10, d11, [x10, #104]\n\t"
		"stp d12, d13, [x10, #120]\n\t"
		"stp d14, d15, [x10, #136]\n\t"
		"ldp x29, x30, [sp], #32\n\t"
		: "+r"(x0), "+r"(x1), "+r"(x2), "+r"(in_r), "+r"(out_r), "+r"(fn)
		:
		: "x3", "x4", "x5", "x6", "x7", "x8", "x12", "x13", "x14", "x15", "x16", "x17",
		  "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x30",
		  "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11",
		  "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22",
		  "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31",
		  "memory", "cc");
}
#endif

#define C2_ROUNDS 1000u
static gr__ctx c2_main, c2_co;
static unsigned long c2_co_bad;
static char c2_co_why[160];

static void c2_pattern(uint64_t *p, uint64_t side, uint64_t round)
{
	for (unsigned i = 0; i < C2_NREGS; i++)
		p[i] = (side << 56) ^ (0x9e3779b97f4a7c15ull * (round * C2_NREGS + i + 1)) ^
		       ((uint64_t)i << 48);
}

static int c2_compare(const uint64_t *in, const uint64_t *out, char *msg, size_t len)
{
	for (unsigned i = 0; i < C2_NREGS; i++) {
		if (in[i] != out[i]) {
			snprintf(msg, len, "%s: loaded %#llx, read back %#llx", c2_names[i],
			         (unsigned long long)in[i], (unsigned long long)out[i]);
			return 1;
		}
	}
	return 0;
}

static void c2_entry(void *arg)
{
	uint64_t in[C2_NREGS], out[C2_NREGS];
	uint64_t round = p2u(arg);
	for (;;) {
		c2_pattern(in, 0xb0, round);
		regs_roundtrip(&c2_co, c2_main, u2p(round + 1), in, out);
		if (c2_compare(in, out, c2_co_why[0] ? NULL : c2_co_why,
		               c2_co_why[0] ? 0 : sizeof c2_co_why))
			c2_co_bad++;
		round++;
	}
}

static void case2(void)
{
	struct stack s;
	uint64_t in[C2_NREGS], out[C2_NREGS];
	char msg[160];
	unsigned long bad = 0;

	if (stack_alloc(&s, 64 * 1024) != 0) {
		failf("mmap");
		return;
	}
	c2_co = gr__ctx_make(s.top, c2_entry);
	msg[0] = '\0';
	for (uint64_t round = 0; round < C2_ROUNDS; round++) {
		c2_pattern(in, 0xa0, round);
		/* Prefill out[] so a missing store cannot pass by accident. */
		memset(out, 0x5a, sizeof out);
		regs_roundtrip(&c2_main, c2_co, u2p(round), in, out);
		if (c2_compare(in, out, msg[0] ? NULL : msg, msg[0] ? 0 : sizeof msg))
			bad++;
	}
	/* One more resume so the context checks its last round too. */
	c2_pattern(in, 0xa0, C2_ROUNDS);
	regs_roundtrip(&c2_main, c2_co, u2p(C2_ROUNDS), in, out);
	if (bad != 0)
		failf("main: %lu bad rounds, first: %s", bad, msg);
	else if (c2_co_bad != 0)
		failf("context: %lu bad rounds, first: %s", c2_co_bad, c2_co_why);
	stack_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Case 3: FP control state is per context. */

static gr__ctx c3_main, c3_co;

static void c3_check_main(const char *when)
{
	if (get_round() != RND_UP)
		failf("%s: main's rounding mode is %s, expected upward", when, rnd_name(get_round()));
	else if (observed_round() != RND_UP)
		failf("%s: main's arithmetic rounds %s, expected upward", when,
		      rnd_name(observed_round()));
	else if (get_flush() || observed_ftz() || observed_daz())
		failf("%s: flush-to-zero leaked into main", when);
#if defined(__x86_64__)
	else if ((get_x87cw() & X87_PC_MASK) != X87_PC_EXTENDED || !observed_x87_ext())
		failf("%s: main's x87 precision control is %#x, expected extended", when,
		      (unsigned)(get_x87cw() & X87_PC_MASK));
	else if (!observed_x87_up())
		failf("%s: main's x87 arithmetic does not round upward", when);
#endif
}

static void c3_check_co(const char *when)
{
	if (get_round() != RND_ZERO)
		failf("%s: context's rounding mode is %s, expected toward-zero", when,
		      rnd_name(get_round()));
	else if (observed_round() != RND_ZERO)
		failf("%s: context's arithmetic rounds %s, expected toward-zero", when,
		      rnd_name(observed_round()));
	else if (!get_flush() || !observed_ftz() || !observed_daz())
		failf("%s: context lost its flush-to-zero/denormals-are-zero mode", when);
#if defined(__x86_64__)
	else if ((get_x87cw() & X87_PC_MASK) != X87_PC_DOUBLE || observed_x87_ext())
		failf("%s: context's x87 precision control is %#x, expected double", when,
		      (unsigned)(get_x87cw() & X87_PC_MASK));
#endif
}

static void c3_entry(void *arg)
{
	(void)arg;
	/* A fresh context inherits the control state its creator had at
	 * gr__ctx_make time (downward), not the one at its first resume. */
	if (get_round() != RND_DOWN || observed_round() != RND_DOWN)
		failf("fresh context starts with %s rounding, expected downward (its creator's at make time)",
		      rnd_name(get_round()));
	set_round(RND_ZERO);
	set_flush(1);
#if defined(__x86_64__)
	set_x87cw((uint16_t)((get_x87cw() & ~X87_PC_MASK) | X87_PC_DOUBLE));
#endif
	c3_check_co("context after setting its mode");
	gr__ctx_switch(&c3_co, c3_main, NULL);
	c3_check_co("context on its second resume");
	gr__ctx_switch(&c3_co, c3_main, NULL);
	c3_check_co("context on its third resume");
	for (;;)
		gr__ctx_switch(&c3_co, c3_main, NULL);
}

static void case3(void)
{
	struct stack s;
	struct fpctl saved = fpctl_save();

	if (stack_alloc(&s, 64 * 1024) != 0) {
		failf("mmap");
		return;
	}
	set_round(RND_DOWN);
	c3_co = gr__ctx_make(s.top, c3_entry);
	set_round(RND_UP);
	set_flush(0);
#if defined(__x86_64__)
	set_x87cw((uint16_t)((get_x87cw() & ~X87_PC_MASK) | X87_PC_EXTENDED));
#endif
	c3_check_main("main before any switch");
	gr__ctx_switch(&c3_main, c3_co, NULL);
	c3_check_main("main after the first switch back");
	gr__ctx_switch(&c3_main, c3_co, NULL);
	c3_check_main("main after the second switch back");
	gr__ctx_switch(&c3_main, c3_co, NULL);
	c3_check_main("main after the third switch back");
	fpctl_restore(saved);
	stack_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Case 4: sticky exception flags are thread state, not context state.
 *
 * Only the control bits are per context; the status flags (x86_64 MXCSR bits
 * 0-5, aarch64 FPSR) stay whatever they are on the thread across a switch:
 * an exception raised in one context is visible in the next, and flags
 * cleared in one context are clear in the next.  Run once with the same
 * control state on both sides and once with different rounding modes, so
 * that the x86_64 switch takes both its skip-ldmxcsr and its merge paths. */

static gr__ctx c4_main, c4_co;
static int c4_co_round; /* rounding mode the context runs with */

static void c4_entry(void *arg)
{
	(void)arg;
	set_round((enum rnd)c4_co_round);
	/* main cleared the flags just before switching here */
	if (test_inexact())
		failf("context: inexact set on first entry, main had cleared it");
	do_inexact();
	if (!test_inexact())
		failf("context: inexact not raised by 1.0/3.0");
	gr__ctx_switch(&c4_co, c4_main, NULL);
	/* main cleared the flags again before resuming us */
	if (test_inexact())
		failf("context: resumed with its own stale inexact flag instead of the current (clear) flags");
	if (get_round() != c4_co_round)
		failf("context: rounding mode %s on resume, expected %s", rnd_name(get_round()),
		      rnd_name(c4_co_round));
	do_inexact();
	gr__ctx_switch(&c4_co, c4_main, NULL);
	/* main raised inexact itself just before resuming us */
	if (!test_inexact())
		failf("context: inexact raised by main is not visible after the switch");
	clear_flags();
	for (;;)
		gr__ctx_switch(&c4_co, c4_main, NULL);
}

static void c4_run(int co_round)
{
	struct stack s;

	if (stack_alloc(&s, 64 * 1024) != 0) {
		failf("mmap");
		return;
	}
	c4_co_round = co_round;
	set_round(RND_NEAREST);
	c4_co = gr__ctx_make(s.top, c4_entry);
	clear_flags();
	gr__ctx_switch(&c4_main, c4_co, NULL);
	if (!test_inexact())
		failf("main (context rounding %s): inexact raised in the context is not visible after switching back",
		      rnd_name(co_round));
	if (get_round() != RND_NEAREST)
		failf("main: rounding mode %s after switch, expected nearest", rnd_name(get_round()));
	clear_flags();
	gr__ctx_switch(&c4_main, c4_co, NULL);
	if (!test_inexact())
		failf("main (context rounding %s): inexact raised in the context on its second run is not visible",
		      rnd_name(co_round));
	/* the other way round: main raises, the context sees it and clears it */
	clear_flags();
	do_inexact();
	gr__ctx_switch(&c4_main, c4_co, NULL);
	if (test_inexact())
		failf("main (context rounding %s): inexact still set after the context cleared the flags",
		      rnd_name(co_round));
	clear_flags();
	stack_free(&s);
}

static void case4(void)
{
	struct fpctl saved = fpctl_save();
	c4_run(RND_NEAREST);
	c4_run(RND_UP);
	fpctl_restore(saved);
}

/* ------------------------------------------------------------------------ */
/* Case 5: deep recursion (~200 KiB) on a 256 KiB stack, parked on the way.
 * Recursion goes on until 200 KiB of the stack are in use, whatever the
 * frame size the compiler picked (-O0 with stack protector and UBSan frames
 * are larger than -O2 ones); every 50th level parks in main. */

#define C5_STACK (256 * 1024)
#define C5_USE (200 * 1024)
#define C5_FRAME 1000
#define C5_PARK_EVERY 50
static gr__ctx c5_main, c5_co;
static uintptr_t c5_top, c5_lowest;
static int c5_maxdepth;
static unsigned long c5_co_bad;

static unsigned char c5_byte(int depth, int i) { return (unsigned char)(depth * 131 + i * 7 + 1); }

static NOINLINE unsigned long c5_recurse(int depth)
{
	volatile unsigned char buf[C5_FRAME];
	unsigned long sum = 0, bad = 0;

	for (int i = 0; i < C5_FRAME; i++)
		buf[i] = c5_byte(depth, i);
	if ((uintptr_t)buf < c5_lowest)
		c5_lowest = (uintptr_t)buf;
	if (depth > c5_maxdepth)
		c5_maxdepth = depth;
	if (depth % C5_PARK_EVERY == 0)
		/* park here; main checks it gets our depth and answers depth + 1 */
		if (p2u(gr__ctx_switch(&c5_co, c5_main, u2p((uintptr_t)depth))) != (uintptr_t)depth + 1)
			c5_co_bad++;
	if (c5_top - (uintptr_t)buf < C5_USE)
		sum = c5_recurse(depth + 1);
	for (int i = 0; i < C5_FRAME; i++) {
		if (buf[i] != c5_byte(depth, i))
			bad++;
		sum += buf[i];
	}
	c5_co_bad += bad;
	return sum;
}

#define C5_DONE ((uintptr_t)1 << 40)

static void c5_entry(void *arg)
{
	unsigned long sum;
	(void)arg;
	sum = c5_recurse(1);
	for (;;)
		gr__ctx_switch(&c5_co, c5_main, u2p((uintptr_t)sum | C5_DONE));
}

/* Uses some of main's own stack while the context is parked. */
static NOINLINE unsigned long c5_scribble(int seed)
{
	volatile unsigned char junk[8192];
	unsigned long s = 0;
	for (int i = 0; i < (int)sizeof junk; i++)
		junk[i] = (unsigned char)(seed + i);
	for (int i = 0; i < (int)sizeof junk; i++)
		s += junk[i];
	return s;
}

static void case5(void)
{
	struct stack s;
	unsigned long expect = 0, parks = 0;
	uintptr_t r;

	if (stack_alloc(&s, C5_STACK) != 0) {
		failf("mmap");
		return;
	}
	c5_top = c5_lowest = (uintptr_t)s.top;
	c5_maxdepth = 0;
	c5_co = gr__ctx_make(s.top, c5_entry);
	r = p2u(gr__ctx_switch(&c5_main, c5_co, NULL));
	while (!(r & C5_DONE)) {
		if (r != C5_PARK_EVERY * (parks + 1))
			failf("context parked at depth %lu, expected %lu", (unsigned long)r,
			      C5_PARK_EVERY * (parks + 1));
		parks++;
		(void)c5_scribble((int)r);
		r = p2u(gr__ctx_switch(&c5_main, c5_co, u2p(r + 1)));
	}
	r &= ~C5_DONE;
	for (int d = 1; d <= c5_maxdepth; d++)
		for (int i = 0; i < C5_FRAME; i++)
			expect += c5_byte(d, i);
	if (c5_co_bad != 0)
		failf("%lu stack bytes or resume values corrupted", c5_co_bad);
	else if (r != expect)
		failf("checksum %lu, expected %lu (depth %d)", (unsigned long)r, expect, c5_maxdepth);
	else if (parks != (unsigned long)(c5_maxdepth / C5_PARK_EVERY) || parks < 2)
		failf("parked %lu times at depth %d", parks, c5_maxdepth);
	else if (c5_top - c5_lowest < C5_USE)
		failf("recursion used only %lu bytes of stack", (unsigned long)(c5_top - c5_lowest));
	stack_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Case 6: the initial frame. */

extern void gr__ctx_trampoline(void); /* switch_<arch>.S */

static gr__ctx c6_main, c6_co;
static struct {
	int fp_aligned, sp_aligned, local_aligned, entry_saved_fp_zero, ret_in_trampoline;
	int hops; /* frame-pointer hops from c6_nested until a 0 link */
#if defined(__x86_64__)
	int fake_ret_zero;
#endif
} c6;

static uintptr_t c6_lo, c6_hi; /* the context's stack */

/* Walks the frame-pointer chain from here; returns the number of links
 * followed until a 0 link, or -1 if it leaves the context's stack first. */
static NOINLINE int c6_nested(void)
{
	void **fp = __builtin_frame_address(0);
	int hops = 0;
	while (fp != NULL && hops < 8) {
		if ((uintptr_t)fp < c6_lo || (uintptr_t)fp > c6_hi - sizeof(void *))
			return -1;
		fp = *fp;
		hops++;
	}
	return fp == NULL ? hops : -1;
}

static NOINLINE void c6_entry(void *arg)
{
	void **fp = __builtin_frame_address(0);
	uintptr_t ra = (uintptr_t)__builtin_return_address(0);
	uintptr_t tramp = (uintptr_t)gr__ctx_trampoline;
	_Alignas(16) volatile char local[16];
	uintptr_t sp;

	(void)arg;
#if defined(__x86_64__)
	__asm__ volatile("movq %%rsp, %0" : "=r"(sp));
	/* Frame pointer = entry %rsp - 8, and the ABI wants entry %rsp + 8
	 * 16-byte aligned: so fp itself is 16-byte aligned. */
	c6.fp_aligned = ((uintptr_t)fp & 15) == 0;
	/* Above the return address: the trampoline's fake return slot. */
	c6.fake_ret_zero = fp[2] == NULL;
#else
	__asm__ volatile("mov %0, sp" : "=r"(sp));
	c6.fp_aligned = ((uintptr_t)fp & 15) == 0;
#endif
	c6.sp_aligned = (sp & 15) == 0;
	local[0] = 1;
	c6.local_aligned = ((uintptr_t)local & 15) == 0;
	c6.entry_saved_fp_zero = fp[0] == NULL;
	c6.ret_in_trampoline = ra > tramp && ra < tramp + 64;
	c6.hops = c6_nested();
	for (;;)
		gr__ctx_switch(&c6_co, c6_main, NULL);
}

static void case6(void)
{
	struct stack s;
	static const size_t offs[] = { 0, 8, 5, 13 }; /* misaligned tops get aligned down */

	if (stack_alloc(&s, 64 * 1024) != 0) {
		failf("mmap");
		return;
	}
	c6_lo = (uintptr_t)s.map;
	c6_hi = (uintptr_t)s.top;
	for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
		memset(&c6, 0, sizeof c6);
		c6.hops = -2;
		c6_co = gr__ctx_make((char *)s.top - offs[k], c6_entry);
		gr__ctx_switch(&c6_main, c6_co, NULL);
		if (!c6.entry_saved_fp_zero)
			failf("top-%zu: entry's saved frame pointer is not 0", offs[k]);
		else if (c6.hops < 1 || c6.hops > 2)
			failf("top-%zu: frame-pointer chain from a callee of entry ends after %d hops, expected 2 at most",
			      offs[k], c6.hops);
		else if (!c6.ret_in_trampoline)
			failf("top-%zu: entry's return address is not in gr__ctx_trampoline", offs[k]);
		else if (!c6.fp_aligned || !c6.sp_aligned || !c6.local_aligned)
			failf("top-%zu: misaligned stack in entry (fp %d, sp %d, _Alignas(16) local %d)",
			      offs[k], c6.fp_aligned, c6.sp_aligned, c6.local_aligned);
#if defined(__x86_64__)
		else if (!c6.fake_ret_zero)
			failf("top-%zu: the trampoline's return address slot is not 0", offs[k]);
#endif
	}
	stack_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Case 7: 1,000 contexts, round-robin, 100 rounds.  Each context switches
 * directly to the next one (the last one to main), passing a token. */

#define C7_N 1000u
#define C7_ROUNDS 100u
#define C7_STACK (16 * 1024)
static gr__ctx c7_main, c7_ctx[C7_N];
static unsigned c7_count[C7_N];
static unsigned long c7_bad;

static void c7_entry(void *arg)
{
	uintptr_t tok = p2u(arg);
	const uintptr_t id = tok; /* round 0 */
	volatile uint64_t mine[4];

	for (unsigned i = 0; i < 4; i++)
		mine[i] = 0x0123456789abcdefull * (id + 1) + i;
	for (uintptr_t round = 0;; round++) {
		if (tok != round * C7_N + id)
			c7_bad++;
		for (unsigned i = 0; i < 4; i++)
			if (mine[i] != 0x0123456789abcdefull * (id + 1) + i)
				c7_bad++;
		c7_count[id]++;
		tok = p2u(gr__ctx_switch(&c7_ctx[id], id + 1 < C7_N ? c7_ctx[id + 1] : c7_main,
		                         u2p(tok + 1)));
	}
}

static void case7(void)
{
	char *mem;
	size_t len = (size_t)C7_N * C7_STACK;
	unsigned long bad = 0;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (mem == MAP_FAILED) {
		failf("mmap");
		return;
	}
	for (unsigned i = 0; i < C7_N; i++)
		c7_ctx[i] = gr__ctx_make(mem + (size_t)(i + 1) * C7_STACK, c7_entry);
	for (uintptr_t round = 0; round < C7_ROUNDS; round++) {
		uintptr_t r = p2u(gr__ctx_switch(&c7_main, c7_ctx[0], u2p(round * C7_N)));
		if (r != (round + 1) * C7_N)
			bad++;
	}
	for (unsigned i = 0; i < C7_N; i++)
		if (c7_count[i] != C7_ROUNDS)
			bad++;
	if (bad != 0 || c7_bad != 0)
		failf("%lu bad tokens/counts seen by main, %lu bad tokens/locals in contexts", bad, c7_bad);
	munmap(mem, len);
}

/* ------------------------------------------------------------------------ */

/* A broken switch tends to crash or hang rather than fail a check: report
 * that as a failure of the running case, with the closing line, too. */

static const struct {
	void (*run)(void);
	const char *desc;
} cases[] = {
	{ case1, "ping-pong 1,000,000 round trips passing a counter through arg" },
	{ case2, "callee-saved registers survive a switch in both directions" },
	{ case3, "FP control state (rounding, FTZ/DAZ, x87 precision) is per context" },
	{ case4, "sticky FP exception flags are thread state, not swapped by a switch" },
	{ case5, "deep recursion on a 256 KiB stack parked and resumed intact" },
	{ case6, "initial frame ends the frame chain and aligns the stack" },
	{ case7, "1,000 contexts round-robin 100 times with intact state" },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))
#define CASE_TIMEOUT 120 /* seconds, generous for qemu-user */

static volatile sig_atomic_t cur_case = -1;

static void put_str(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void put_num(long v)
{
	char buf[24];
	int i = (int)sizeof buf - 1;
	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && i > 0);
	put_str(&buf[i]);
}

static void on_fatal(int sig)
{
	int c = cur_case;
	put_str("FAIL ");
	put_num(c + 1);
	put_str(" - ");
	put_str(c >= 0 && c < N_CASES ? cases[c].desc : "?");
	put_str(sig == SIGALRM ? ": timed out\n" : ": killed by signal ");
	if (sig != SIGALRM) {
		put_num(sig);
		put_str("\n");
	}
	put_num(n_passed);
	put_str(" passed, ");
	put_num(n_failed + 1 + (N_CASES - c - 1));
	put_str(" failed\n");
	_exit(1);
}

static void install_fatal_handlers(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGALRM };
	static char altstack[64 * 1024];
	stack_t ss;
	struct sigaction sa;

	memset(&ss, 0, sizeof ss);
	ss.ss_sp = altstack;
	ss.ss_size = sizeof altstack;
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

int main(void)
{
	install_fatal_handlers();
	for (int i = 0; i < N_CASES; i++) {
		cur_case = i;
		alarm(CASE_TIMEOUT);
		cases[i].run();
		alarm(0);
		report(i + 1, cases[i].desc);
	}
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}

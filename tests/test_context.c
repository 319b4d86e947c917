/* greenring-test: tsan */
/* Context switches seen from inside the runtime: the FP control state
 * (rounding mode) is per task, and callee-saved registers and live locals
 * survive gr_yield, also when the task resumes on another worker. */
#include <errno.h>
#include <fenv.h>
#include <stdatomic.h>
#include <string.h>

#include "support/support.h"

#define NOINLINE __attribute__((noinline))

/* ---------------------------------------------------------------------
 * Rounding mode per task
 * --------------------------------------------------------------------- */

#define FP_ROUNDS 1000

static const int modes[4] = {FE_UPWARD, FE_TOWARDZERO, FE_DOWNWARD, FE_TONEAREST};

/* 1/3, -1/3 and 1/10 in the current rounding mode: the three tell all four
 * modes apart (to nearest, 1/3 rounds down and 1/10 up), and they come from
 * the SSE unit, while glibc's fegetround() reads the x87 control word. */
struct quotient {
    double third, minus_third, tenth;
};

static NOINLINE struct quotient divide(void)
{
    volatile double one = 1.0, three = 3.0, ten = 10.0;
    struct quotient q = {one / three, -one / three, one / ten};
    return q;
}

static int same_quotient(struct quotient a, struct quotient b)
{
    return a.third == b.third && a.minus_third == b.minus_third && a.tenth == b.tenth;
}

struct fp_ctx {
    struct quotient expect[4]; /* per mode, computed outside the runtime */
    atomic_int started;
    int n_tasks;
};

struct fp_arg {
    struct fp_ctx *c;
    int mode; /* index into modes[] */
    int rounds_ok;
};

static int fp_task(void *arg)
{
    struct fp_arg *a = arg;
    const int mode = modes[a->mode];
    const struct quotient want = a->c->expect[a->mode];
    ck_assert_int_eq(fesetround(mode), 0);
    /* everybody sets its own mode before anybody checks */
    atomic_fetch_add(&a->c->started, 1);
    while (atomic_load(&a->c->started) < a->c->n_tasks)
        ck_assert_int_eq(gr_yield(), 0);
    for (int r = 0; r < FP_ROUNDS; r++) {
        ck_assert_int_eq(r % 10 == 9 ? gr_sleep(0) : gr_yield(), 0);
        int got = fegetround();
        ck_assert_msg(got == mode, "round %d: task with rounding mode %#x sees %#x", r, mode,
                      got);
        struct quotient q = divide();
        ck_assert_msg(same_quotient(q, want),
                      "round %d: 1/3, -1/3, 1/10 computed in mode %#x are %a %a %a, expected "
                      "%a %a %a",
                      r, mode, q.third, q.minus_third, q.tenth, want.third, want.minus_third,
                      want.tenth);
        a->rounds_ok++;
    }
    return 0;
}

static int fp_main(void *arg)
{
    struct fp_ctx *c = arg;
    struct fp_arg args[4];
    gr_task *h[4];
    for (int i = 0; i < c->n_tasks; i++) {
        args[i] = (struct fp_arg){c, i, 0};
        ck_assert_int_eq(gr_spawn(&h[i], fp_task, &args[i], NULL), 0);
    }
    for (int i = 0; i < c->n_tasks; i++) {
        ck_assert_int_eq(gr_join(h[i]), 0);
        ck_assert_int_eq(args[i].rounds_ok, FP_ROUNDS);
    }
    /* main never changed its mode */
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    return 0;
}

static void fp_setup(struct fp_ctx *c, int n_tasks)
{
    memset(c, 0, sizeof(*c));
    c->n_tasks = n_tasks;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(fesetround(modes[i]), 0);
        c->expect[i] = divide();
    }
    ck_assert_int_eq(fesetround(FE_TONEAREST), 0);
    /* the test can tell the modes apart */
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            ck_assert(!same_quotient(c->expect[i], c->expect[j]));
}

/* Task A (FE_UPWARD) and task B (FE_TOWARDZERO) alternate on one worker. */
START_TEST(rounding_mode_per_task_one_worker)
{
    struct fp_ctx c;
    fp_setup(&c, 2);
    gr_test_run_ok(fp_main, &c, 1);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
}
END_TEST

/* Four modes, four tasks, two workers: tasks move between threads. */
START_TEST(rounding_mode_per_task_two_workers)
{
    struct fp_ctx c;
    fp_setup(&c, 4);
    gr_test_run_ok(fp_main, &c, 2);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
}
END_TEST

/* ---------------------------------------------------------------------
 * Callee-saved registers (x86_64: rbx, rbp, r12-r15)
 * --------------------------------------------------------------------- */

#if defined(__x86_64__)
/* long yield_keeps_registers(uint64_t seed)
 * Loads seed-derived patterns into every callee-saved register, calls
 * gr_yield, and returns the number of registers whose value changed (0
 * expected). Written in assembly because no C code can pin values in those
 * registers across a call. */
long yield_keeps_registers(uint64_t seed);
__asm__(".pushsection .text\n"
        ".globl yield_keeps_registers\n"
        ".hidden yield_keeps_registers\n"
        ".type yield_keeps_registers, @function\n"
        "yield_keeps_registers:\n"
        "  endbr64\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n" /* 16-byte alignment at the call */
        "  movq %rdi, (%rsp)\n"
        "  movabsq $0x1111111111111111, %rax\n"
        "  movq %rdi, %rbx\n"
        "  movq %rdi, %rbp\n"
        "  xorq %rax, %rbp\n"
        "  movq %rdi, %r12\n"
        "  rolq $8, %r12\n"
        "  movq %rdi, %r13\n"
        "  rolq $16, %r13\n"
        "  movq %rdi, %r14\n"
        "  rolq $24, %r14\n"
        "  movq %rdi, %r15\n"
        "  notq %r15\n"
        "  call gr_yield@PLT\n"
        "  movq (%rsp), %rdi\n"
        "  xorl %eax, %eax\n"
        "  cmpq %rdi, %rbx\n"
        "  setne %al\n"
        "  movabsq $0x1111111111111111, %rcx\n"
        "  xorq %rdi, %rcx\n"
        "  xorl %edx, %edx\n"
        "  cmpq %rcx, %rbp\n"
        "  setne %dl\n"
        "  addq %rdx, %rax\n"
        "  movq %rdi, %rcx\n"
        "  rolq $8, %rcx\n"
        "  cmpq %rcx, %r12\n"
        "  setne %dl\n"
        "  addq %rdx, %rax\n"
        "  movq %rdi, %rcx\n"
        "  rolq $16, %rcx\n"
        "  cmpq %rcx, %r13\n"
        "  setne %dl\n"
        "  addq %rdx, %rax\n"
        "  movq %rdi, %rcx\n"
        "  rolq $24, %rcx\n"
        "  cmpq %rcx, %r14\n"
        "  setne %dl\n"
        "  addq %rdx, %rax\n"
        "  movq %rdi, %rcx\n"
        "  notq %rcx\n"
        "  cmpq %rcx, %r15\n"
        "  setne %dl\n"
        "  addq %rdx, %rax\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size yield_keeps_registers, .-yield_keeps_registers\n"
        ".popsection\n");

#define REG_ROUNDS 2000

static int reg_task(void *arg)
{
    uint64_t seed = 0x0123456789abcdefull * ((uint64_t)(uintptr_t)arg + 1);
    for (int r = 0; r < REG_ROUNDS; r++) {
        long bad = yield_keeps_registers(seed + (uint64_t)r);
        ck_assert_msg(bad == 0, "round %d: %ld callee-saved registers changed across gr_yield",
                      r, bad);
    }
    return 0;
}

static int reg_main(void *arg)
{
    (void)arg;
    gr_task *h[6];
    for (intptr_t i = 0; i < 6; i++)
        ck_assert_int_eq(gr_spawn(&h[i], reg_task, (void *)i, NULL), 0);
    ck_assert_int_eq(reg_task((void *)(intptr_t)6), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(gr_join(h[i]), 0);
    return 0;
}

START_TEST(callee_saved_registers_survive_yield)
{
    gr_test_run_ok(reg_main, NULL, 1);
    gr_test_run_ok(reg_main, NULL, 2);
}
END_TEST
#endif

/* ---------------------------------------------------------------------
 * Live locals across blocking calls (any architecture)
 * --------------------------------------------------------------------- */

/* Many values computed from volatile inputs stay live across gr_yield and
 * gr_sleep(0), in registers or spilled, whichever the compiler picks. */
static NOINLINE int many_live_values(uint64_t seed_in, int rounds)
{
    volatile uint64_t seed = seed_in;
    uint64_t a = seed * 3, b = seed ^ 0x5555, c = seed + 77, d = seed << 3, e = ~seed,
             f = seed * seed, g = seed >> 7, h = seed * 0x9e3779b97f4a7c15ull;
    double x = (double)(seed & 0xffff) * 0.5, y = (double)(seed >> 48) + 0.25;
    for (int r = 0; r < rounds; r++) {
        int rc = (r & 1) ? gr_yield() : gr_sleep(0);
        if (rc != 0)
            return -1000 - r;
        uint64_t s = seed;
        if (a != s * 3 || b != (s ^ 0x5555) || c != s + 77 || d != s << 3 || e != ~s ||
            f != s * s || g != s >> 7 || h != s * 0x9e3779b97f4a7c15ull)
            return -1 - r;
        if (x != (double)(s & 0xffff) * 0.5 || y != (double)(s >> 48) + 0.25)
            return -2000 - r;
        /* change them all, and the expectation with them */
        seed = s + 1;
        a += 3, b = (s + 1) ^ 0x5555, c++, d += 8, e--, f = (s + 1) * (s + 1), g = (s + 1) >> 7;
        h += 0x9e3779b97f4a7c15ull;
        x = (double)((s + 1) & 0xffff) * 0.5, y = (double)((s + 1) >> 48) + 0.25;
    }
    return 0;
}

static int locals_task(void *arg)
{
    uint64_t seed = 0xabcdef0012345678ull + (uint64_t)(uintptr_t)arg * 0x1000;
    int rc = many_live_values(seed, 1000);
    ck_assert_msg(rc == 0, "live values changed across a switch (code %d)", rc);
    return 0;
}

static int locals_main(void *arg)
{
    (void)arg;
    gr_task *h[8];
    for (intptr_t i = 0; i < 8; i++)
        ck_assert_int_eq(gr_spawn(&h[i], locals_task, (void *)i, NULL), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(gr_join(h[i]), 0);
    return 0;
}

START_TEST(live_locals_survive_switches)
{
    gr_test_run_ok(locals_main, NULL, 1);
    gr_test_run_ok(locals_main, NULL, 2);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("fp");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rounding_mode_per_task_one_worker);
    tcase_add_test(tc, rounding_mode_per_task_two_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("registers");
    tcase_set_timeout(tc, 60);
#if defined(__x86_64__)
    tcase_add_test(tc, callee_saved_registers_survive_yield);
#endif
    tcase_add_test(tc, live_locals_survive_switches);
    suite_add_tcase(s, tc);
    return s;
}

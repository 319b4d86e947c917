/* Stackful generators: iteration, send, early close, errors, interrupts on
 * both sides. */
/* greenring-test: tsan */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "support/support.h"
#include "sync/generator.h"
#include "sync/spinlock.h"

#define WORKERS 2

/* Yield until the generator is in state st (checked under its lock). */
static void wait_state(gr_gen *g, enum gr__gen_state st)
{
    for (;;) {
        gr__sync_lock(&g->lock);
        int ok = g->state == st;
        gr__sync_unlock(&g->lock);
        if (ok)
            return;
        gr_yield();
    }
}

/* Yield until a consumer call waits on g. */
static void wait_consumer(gr_gen *g)
{
    for (;;) {
        gr__sync_lock(&g->lock);
        int ok = g->consumer != NULL;
        gr__sync_unlock(&g->lock);
        if (ok)
            return;
        gr_yield();
    }
}

static const gr_gen_opts INT_OPTS = {.elem_size = sizeof(int), .name = "producer"};

/* ---------------------------------------------------------------------
 * Iteration
 * --------------------------------------------------------------------- */

struct range {
    int n;
    int cleaned_up;
    int yields_failed;
    int started;
};

static int range_producer(gr_gen *g, void *arg)
{
    struct range *r = arg;
    r->started = 1;
    for (int i = 0; i < r->n; i++) {
        int rc = gr_gen_yield(g, &i, NULL);
        if (rc < 0) {
            r->yields_failed = rc;
            break;
        }
    }
    r->cleaned_up = 1; /* the cleanup of an early close runs */
    return 0;
}

static int basic_main(void *arg)
{
    (void)arg;
    struct range r = {.n = 100};
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, range_producer, &r, &INT_OPTS), 0);
    int v;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(gr_gen_next(g, &v), 1);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(gr_gen_next(g, &v), 0); /* the end */
    ck_assert_int_eq(gr_gen_next(g, &v), 0); /* and stays there */
    ck_assert_int_eq(r.cleaned_up, 1);
    ck_assert_int_eq(r.yields_failed, 0);
    ck_assert_int_eq(gr_gen_close(g), 0);
    return 0;
}

START_TEST(gen_iterates_to_the_end)
{
    gr_test_run_ok(basic_main, NULL, WORKERS);
}
END_TEST

static int shielded_producer(gr_gen *g, void *arg)
{
    int *cleaned = arg;
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    for (int i = 0;; i++) {
        if (gr_gen_yield(g, &i, NULL) < 0)
            break; /* close ends the yield even inside a shield */
    }
    gr_scope_leave(&shield);
    *cleaned = 1;
    return 0;
}

static int close_main(void *arg)
{
    (void)arg;
    struct range r = {.n = 1000000};
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, range_producer, &r, &INT_OPTS), 0);
    int v;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(gr_gen_next(g, &v), 1);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(gr_gen_close(g), 0);
    ck_assert_int_eq(r.yields_failed, -ECANCELED);
    ck_assert_int_eq(r.cleaned_up, 1);

    /* Closed before the first next: the body never runs. */
    struct range r2 = {.n = 5};
    ck_assert_int_eq(gr_gen_create(&g, range_producer, &r2, &INT_OPTS), 0);
    ck_assert_int_eq(gr_gen_close(g), 0);
    ck_assert_int_eq(r2.started, 0);

    /* A producer yielding inside a shield scope is closed too. */
    int cleaned = 0;
    ck_assert_int_eq(gr_gen_create(&g, shielded_producer, &cleaned, &INT_OPTS), 0);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(v, 1);
    wait_state(g, GR__GEN_PARKED_RESUME);
    ck_assert_int_eq(gr_gen_close(g), 0);
    ck_assert_int_eq(cleaned, 1);
    return 0;
}

START_TEST(gen_early_close_runs_cleanup)
{
    gr_test_run_ok(close_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Send
 * --------------------------------------------------------------------- */

static int doubler(gr_gen *g, void *arg)
{
    (void)arg;
    int v = 0;
    for (;;) {
        const void *sent;
        int rc = gr_gen_yield(g, &v, &sent);
        if (rc < 0)
            return rc;
        v = sent ? 2 * *(const int *)sent : -1;
    }
}

static int send_main(void *arg)
{
    (void)arg;
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, doubler, NULL, &INT_OPTS), 0);
    int in = 5, out = 0;
    ck_assert_int_eq(gr_gen_send(g, &in, &out), -EINVAL); /* just started */
    ck_assert_int_eq(gr_gen_next(g, &out), 1);
    ck_assert_int_eq(out, 0);
    for (int i = 1; i < 50; i++) {
        in = i;
        ck_assert_int_eq(gr_gen_send(g, &in, &out), 1);
        ck_assert_int_eq(out, 2 * i);
    }
    ck_assert_int_eq(gr_gen_next(g, &out), 1);
    ck_assert_int_eq(out, -1); /* next sends nothing */
    ck_assert_int_eq(gr_gen_send(g, NULL, &out), 1);
    ck_assert_int_eq(out, -1);
    ck_assert_int_eq(gr_gen_close(g), 0); /* -ECANCELED from the producer is not an error */
    return 0;
}

START_TEST(gen_send_values_in)
{
    gr_test_run_ok(send_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Errors
 * --------------------------------------------------------------------- */

static int failing(gr_gen *g, void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++)
        gr_gen_yield(g, &i, NULL);
    return -EIO;
}

static int yield_elsewhere(void *arg)
{
    int v = 1;
    return gr_gen_yield(arg, &v, NULL);
}

static int errors_main(void *arg)
{
    (void)arg;
    gr_gen *g;
    int v;
    ck_assert_int_eq(gr_gen_create(&g, failing, NULL, &INT_OPTS), 0);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(gr_gen_next(g, &v), -EIO); /* reported once */
    ck_assert_int_eq(gr_gen_next(g, &v), 0);
    ck_assert_int_eq(gr_gen_close(g), 0); /* already reported */

    ck_assert_int_eq(gr_gen_create(&g, failing, NULL, &INT_OPTS), 0);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    wait_state(g, GR__GEN_PARKED_RESUME);
    gr_task *t = gr_test_spawn(yield_elsewhere, g); /* not the producer */
    ck_assert_int_eq(gr_join(t), -EINVAL);
    ck_assert_int_eq(gr_gen_next(g, NULL), -EIO);
    ck_assert_int_eq(gr_gen_close(g), 0);

    ck_assert_int_eq(gr_gen_create(NULL, failing, NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_gen_create(&g, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(gr_gen_next(NULL, &v), -EINVAL);
    ck_assert_int_eq(gr_gen_close(NULL), -EINVAL);
    return 0;
}

START_TEST(gen_errors)
{
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, failing, NULL, NULL), -EPERM); /* no runtime */
    gr_test_run_ok(errors_main, NULL, WORKERS);
}
END_TEST

/* A producer that returns an error nobody saw: close reports it. */
static int fail_after_gate(gr_gen *g, void *arg)
{
    gr_event *gate = arg;
    int v = 1;
    if (gr_gen_yield(g, &v, NULL) < 0)
        return -EINVAL;
    gr_event_wait(gate); /* resumed by a call that gives up before this */
    return -ENOSPC;
}

static int unseen_main(void *arg)
{
    (void)arg;
    gr_event gate = GR_EVENT_INIT;
    gr_gen *g;
    int v;
    ck_assert_int_eq(gr_gen_create(&g, fail_after_gate, &gate, &INT_OPTS), 0);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_gen_next(g, &v), -ETIMEDOUT);
    gr_scope_leave(&sc);
    gr_event_set(&gate);
    wait_state(g, GR__GEN_FINISHED);
    ck_assert_int_eq(gr_gen_close(g), -ENOSPC);
    return 0;
}

START_TEST(gen_close_reports_unseen_error)
{
    gr_test_run_ok(unseen_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Interrupts
 * --------------------------------------------------------------------- */

struct gated {
    gr_event gate; /* the producer waits for it before each value */
    int values;
};

static int gated_producer(gr_gen *g, void *arg)
{
    struct gated *s = arg;
    for (int i = 0;; i++) {
        int rc = gr_event_wait(&s->gate);
        if (rc < 0)
            return rc;
        gr_event_clear(&s->gate);
        rc = gr_gen_yield(g, &i, NULL);
        if (rc < 0)
            return rc;
        s->values++;
    }
}

struct consumer_arg {
    gr_gen *g;
    int v;
};

static int consume_one(void *arg)
{
    struct consumer_arg *c = arg;
    return gr_gen_next(c->g, &c->v);
}

static int interrupt_main(void *arg)
{
    (void)arg;
    struct gated s = {.values = 0};
    gr_event_init(&s.gate);
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, gated_producer, &s, &INT_OPTS), 0);
    int v = -1;
    /* The consumer times out while the producer computes value 0 ... */
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_gen_next(g, &v), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_int_eq(v, -1);
    /* ... value 0 is not lost: the producer parks with it. */
    gr_event_set(&s.gate);
    wait_state(g, GR__GEN_PARKED_VALUE);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(v, 0);
    /* The next call resumes it as usual. */
    gr_event_set(&s.gate);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(v, 1);

    /* A second consumer while one waits: -EBUSY. A cancelled consumer
     * loses nothing either. */
    struct consumer_arg c = {g, -1};
    gr_task *t = gr_test_spawn(consume_one, &c);
    wait_consumer(g);
    ck_assert_int_eq(gr_gen_next(g, &v), -EBUSY);
    gr_cancel(t);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    gr_event_set(&s.gate);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(v, 2);

    /* Close while a consumer waits: it gets -EPIPE. */
    c.v = -1;
    t = gr_test_spawn(consume_one, &c);
    wait_consumer(g);
    ck_assert_int_eq(gr_gen_close(g), 0);
    ck_assert_int_eq(gr_join(t), -EPIPE);
    ck_assert_int_eq(c.v, -1);
    ck_assert_int_eq(s.values, 3);
    return 0;
}

START_TEST(gen_interrupted_consumer_loses_nothing)
{
    gr_test_run_ok(interrupt_main, NULL, WORKERS);
}
END_TEST

/* The producer itself times out waiting for a resume: its yield fails, it
 * yields again, and the consumer still sees every value once. */
static int impatient(gr_gen *g, void *arg)
{
    int *timeouts = arg;
    for (int i = 0; i < 3; i++) {
        for (;;) {
            gr_scope sc;
            gr_scope_enter_timeout(&sc, 1000000);
            int rc = gr_gen_yield(g, &i, NULL);
            gr_scope_leave(&sc);
            if (rc == 0)
                break;
            ck_assert_int_eq(rc, -ETIMEDOUT);
            (*timeouts)++;
            if (i == 2)
                return 0; /* value 2 was handed over before the timeout */
        }
    }
    return 0;
}

static int impatient_main(void *arg)
{
    (void)arg;
    int timeouts = 0, v;
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, impatient, &timeouts, &INT_OPTS), 0);
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(v, 0);
    /* Wait until its resume wait timed out at least once. */
    while (timeouts == 0)
        gr_yield();
    ck_assert_int_eq(gr_gen_next(g, &v), 1);
    /* It yielded 0 again after the timeout (handed over before), or 1. */
    ck_assert(v == 0 || v == 1);
    while (v != 2)
        ck_assert_int_eq(gr_gen_next(g, &v), 1);
    ck_assert_int_eq(gr_gen_next(g, &v), 0);
    ck_assert_int_eq(gr_gen_close(g), 0);
    return 0;
}

START_TEST(gen_producer_timeout)
{
    gr_test_run_ok(impatient_main, NULL, 1);
}
END_TEST

/* Many values across workers, with the consumer on another task. */
static int many_consumer(void *arg)
{
    gr_gen *g = arg;
    long sum = 0;
    int v, n = 0;
    while (gr_gen_next(g, &v) == 1) {
        ck_assert_int_eq(v, n++);
        sum += v;
        if (n % 100 == 0)
            gr_yield();
    }
    ck_assert_int_eq(n, 20000);
    ck_assert_int_eq(sum, 20000L * 19999 / 2);
    return 0;
}

static int many_main(void *arg)
{
    (void)arg;
    struct range r = {.n = 20000};
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, range_producer, &r, &INT_OPTS), 0);
    ck_assert_int_eq(gr_join(gr_test_spawn(many_consumer, g)), 0);
    ck_assert_int_eq(gr_gen_close(g), 0);
    return 0;
}

START_TEST(gen_many_values)
{
    gr_test_run_ok(many_main, NULL, WORKERS);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("generator");
    TCase *tc = tcase_create("generator");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gen_iterates_to_the_end);
    tcase_add_test(tc, gen_early_close_runs_cleanup);
    tcase_add_test(tc, gen_send_values_in);
    tcase_add_test(tc, gen_errors);
    tcase_add_test(tc, gen_close_reports_unseen_error);
    tcase_add_test(tc, gen_interrupted_consumer_loses_nothing);
    tcase_add_test(tc, gen_producer_timeout);
    tcase_add_test(tc, gen_many_values);
    suite_add_tcase(s, tc);
    return s;
}

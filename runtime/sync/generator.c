/* Stackful generators: a producer task and a consumer that hand over
 * values one at a time (a rendezvous), under the generator's spinlock.
 *
 * The producer is always in one of the states of sync/generator.h.
 * A consumer call resumes the producer if it waits for a resume (or leaves
 * a pending resume for it), then waits to be handed the next value; a
 * pending value is returned at once. Both sides' wait records are claimed
 * (sync/waiter.h) by whoever ends the wait, so interrupts on either side
 * leave the state consistent and no value is lost. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/attrs.h"
#include "core/task.h"
#include "sync/generator.h"
#include "sync/spinlock.h"

/* ---------------------------------------------------------------------
 * Producer side
 * --------------------------------------------------------------------- */

static void producer_interrupt(struct gr__wait *w, int reason)
{
    struct gr__swait *sw = GR_CONTAINER_OF(w, struct gr__swait, wait);
    struct gr__gen_producer *pw = GR_CONTAINER_OF(sw, struct gr__gen_producer, sw);
    if (!gr__swait_claim(sw))
        return; /* a consumer resumed us or took the value */
    gr_gen *g = pw->g;
    gr__sync_lock(&g->lock);
    g->pwait = NULL;
    /* back from yield with an error: it yields again or returns */
    g->state = GR__GEN_RUNNING;
    gr__sync_unlock(&g->lock);
    gr__swait_wake(sw, reason ? reason : -ETIMEDOUT);
}

/* Lock held; unlocks. Park as g->pwait in `state`. */
static int producer_park(gr_gen *g, struct gr__task *self, struct gr__gen_producer *pw,
                         enum gr__gen_state state, const char *reason)
{
    gr__swait_prepare(&pw->sw, self);
    pw->g = g;
    pw->sent = NULL;
    g->pwait = pw;
    g->state = state;
    gr__sync_unlock(&g->lock);
    return gr__swait_park(&pw->sw, reason, producer_interrupt, GR_NO_DEADLINE);
}

/* Wait for the next next/send. 0 with *sent, or an interrupt. */
static int wait_resume(gr_gen *g, struct gr__task *self, const void **sent)
{
    gr__sync_lock(&g->lock);
    if (g->resume_pending) {
        g->resume_pending = 0;
        *sent = g->pending_sent;
        g->state = GR__GEN_RUNNING;
        gr__sync_unlock(&g->lock);
        return 0;
    }
    if (g->closing) {
        g->state = GR__GEN_RUNNING;
        gr__sync_unlock(&g->lock);
        return -ECANCELED;
    }
    struct gr__gen_producer pw = {.value = NULL};
    int rc = producer_park(g, self, &pw, GR__GEN_PARKED_RESUME, "generator resume");
    *sent = pw.sent;
    return rc;
}

/* Hand the value to the waiting consumer, or park with it. 0 when it was
 * handed over. Lock held on entry; unlocked on return. */
static int hand_over(gr_gen *g, struct gr__task *self, const void *value)
{
    struct gr__gen_consumer *c = g->consumer;
    if (c && gr__swait_claim(&c->sw)) {
        if (c->out)
            memcpy(c->out, value, g->esize);
        g->consumer = NULL;
        g->state = GR__GEN_NEEDS_RESUME;
        gr__sync_unlock(&g->lock);
        gr__swait_wake(&c->sw, 1);
        return 0;
    }
    /* Nobody waits (or the waiting call is being interrupted): keep the
     * value for the next call. */
    struct gr__gen_producer pw = {.value = value};
    int rc = producer_park(g, self, &pw, GR__GEN_PARKED_VALUE, "generator yield");
    return rc == 1 ? 0 : rc; /* 1: a call took the value */
}

int gr_gen_yield(gr_gen *g, const void *value, const void **sent)
{
    if (sent)
        *sent = NULL;
    if (!g || !value)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc == -EPERM || (rc == 0 && self != g->producer_task))
        return -EINVAL;
    if (rc < 0)
        return rc;
    gr__sync_lock(&g->lock);
    if (g->closing) {
        gr__sync_unlock(&g->lock);
        return -ECANCELED; /* also inside a shield: nobody will resume us */
    }
    rc = hand_over(g, self, value);
    if (rc < 0)
        return rc;
    const void *got;
    rc = wait_resume(g, self, &got);
    if (rc == 0 && sent)
        *sent = got;
    return rc;
}

static int report(gr_gen *g)
{
    if (g->result >= 0 || g->reported)
        return 0;
    g->reported = 1;
    return g->result;
}

static void finish(gr_gen *g, int result)
{
    gr__sync_lock(&g->lock);
    g->state = GR__GEN_FINISHED;
    g->result = result;
    struct gr__gen_consumer *c = g->consumer;
    int rc = 0;
    if (c && gr__swait_claim(&c->sw)) {
        g->consumer = NULL;
        rc = report(g);
    } else {
        c = NULL; /* none, or it is being interrupted */
    }
    gr__sync_unlock(&g->lock);
    if (c)
        gr__swait_wake(&c->sw, rc);
}

static int producer_main(void *arg)
{
    gr_gen *g = arg;
    struct gr__task *self = gr__current_task();
    gr__sync_lock(&g->lock);
    g->producer_task = self;
    gr__sync_unlock(&g->lock);
    const void *sent;
    int rc = gr__blocking_check(&self);
    if (rc == 0)
        rc = wait_resume(g, self, &sent);
    if (rc == 0) /* else closed before the first next: the body never runs */
        rc = g->fn(g, g->arg);
    finish(g, rc);
    return rc;
}

/* ---------------------------------------------------------------------
 * Consumer side
 * --------------------------------------------------------------------- */

static void consumer_interrupt(struct gr__wait *w, int reason)
{
    struct gr__swait *sw = GR_CONTAINER_OF(w, struct gr__swait, wait);
    struct gr__gen_consumer *c = GR_CONTAINER_OF(sw, struct gr__gen_consumer, sw);
    if (!gr__swait_claim(sw))
        return; /* handed a value, or the end; g may be gone already */
    gr_gen *g = c->g;
    gr__sync_lock(&g->lock);
    g->consumer = NULL;
    gr__sync_unlock(&g->lock);
    gr__swait_wake(sw, reason ? reason : -ETIMEDOUT);
}

/* Lock held. Returns 1 to go on waiting, else the call's result. */
static int check_call(gr_gen *g, const void *in)
{
    if (g->consumer)
        return -EBUSY;
    if (g->closing)
        return -EPIPE;
    if (g->state == GR__GEN_FINISHED)
        return report(g);
    if (!g->started && in)
        return -EINVAL;
    return 1;
}

static const void *copy_in(gr_gen *g, const void *in)
{
    if (!in)
        return NULL;
    memcpy(g->sendbuf, in, g->send_size);
    return g->sendbuf;
}

static int resume(gr_gen *g, const void *in, void *out)
{
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 0);
    if (rc < 0)
        return rc;
    gr__sync_lock(&g->lock);
    if ((rc = check_call(g, in)) != 1) {
        gr__sync_unlock(&g->lock);
        return rc;
    }
    g->started = 1;
    struct gr__gen_producer *pw = g->pwait;
    struct gr__gen_producer *wake = NULL;
    int wake_rc = 0;
    if (g->state == GR__GEN_PARKED_VALUE && gr__swait_claim(&pw->sw)) {
        if (out)
            memcpy(out, pw->value, g->esize);
        g->pwait = NULL;
        g->state = GR__GEN_NEEDS_RESUME;
        gr__sync_unlock(&g->lock);
        gr__swait_wake(&pw->sw, 1);
        return 1;
    }
    if (g->state == GR__GEN_PARKED_RESUME && gr__swait_claim(&pw->sw)) {
        pw->sent = copy_in(g, in);
        g->pwait = NULL;
        g->state = GR__GEN_RUNNING;
        wake = pw;
    } else if (g->state == GR__GEN_NEEDS_RESUME) {
        g->pending_sent = copy_in(g, in);
        g->resume_pending = 1;
        g->state = GR__GEN_RUNNING;
    }
    /* RUNNING (or a producer being interrupted): it yields or returns next. */
    struct gr__gen_consumer c = {.g = g, .out = out};
    gr__swait_prepare(&c.sw, self);
    g->consumer = &c;
    gr__sync_unlock(&g->lock);
    if (wake)
        gr__swait_wake(&wake->sw, wake_rc);
    /* Nothing may touch g after this returns: close may have freed it. */
    return gr__swait_park(&c.sw, "generator next", consumer_interrupt, GR_NO_DEADLINE);
}

int gr_gen_next(gr_gen *g, void *out)
{
    if (!g)
        return -EINVAL;
    return resume(g, NULL, out);
}

int gr_gen_send(gr_gen *g, const void *in, void *out)
{
    if (!g)
        return -EINVAL;
    return resume(g, in, out);
}

/* ---------------------------------------------------------------------
 * Life cycle
 * --------------------------------------------------------------------- */

static void free_gen(gr_gen *g)
{
    free(g->sendbuf);
    free(g);
}

int gr_gen_create(gr_gen **out, gr_gen_fn fn, void *arg, const gr_gen_opts *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!fn)
        return -EINVAL;
    gr_gen *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->state = GR__GEN_NEEDS_RESUME;
    g->esize = opts && opts->elem_size ? opts->elem_size : sizeof(void *);
    g->send_size = opts && opts->send_size ? opts->send_size : g->esize;
    g->fn = fn;
    g->arg = arg;
    g->sendbuf = malloc(g->send_size);
    if (!g->sendbuf) {
        free_gen(g);
        return -ENOMEM;
    }
    gr_spawn_opts so = {.name = opts ? opts->name : NULL,
                        .stack_size = opts ? opts->stack_size : 0};
    int rc = gr_spawn(&g->producer, producer_main, g, &so);
    if (rc < 0) {
        free_gen(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* Lock held. 1 when no consumer call is inside any more. */
static int evict_consumer(gr_gen *g, struct gr__gen_consumer **wake)
{
    struct gr__gen_consumer *c = g->consumer;
    if (!c)
        return 1;
    if (!gr__swait_claim(&c->sw))
        return 0; /* being interrupted: its hook still needs g */
    g->consumer = NULL;
    *wake = c;
    return 1;
}

/* Lock held. A producer parked in gr_gen_yield is ended here rather than
 * by its cancellation, which a shield scope around the yield would hold
 * off: nobody would ever resume it. */
static struct gr__gen_producer *evict_producer(gr_gen *g)
{
    struct gr__gen_producer *pw = g->pwait;
    if (!pw || !gr__swait_claim(&pw->sw))
        return NULL; /* running, or its interrupt is ending the wait */
    g->pwait = NULL;
    g->state = GR__GEN_RUNNING;
    return pw;
}

int gr_gen_close(gr_gen *g)
{
    if (!g)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self)
        return -EPERM;
    struct gr__gen_consumer *c = NULL;
    struct gr__gen_producer *pw;
    for (;;) {
        gr__sync_lock(&g->lock);
        if (self == g->producer_task) {
            gr__sync_unlock(&g->lock);
            return -EDEADLK;
        }
        g->closing = 1;
        int out = evict_consumer(g, &c);
        gr__sync_unlock(&g->lock);
        if (out)
            break;
        gr_yield(); /* its hook runs on its worker soon */
    }
    if (c)
        gr__swait_wake(&c->sw, -EPIPE);
    gr__sync_lock(&g->lock);
    pw = evict_producer(g);
    gr__sync_unlock(&g->lock);
    if (pw)
        gr__swait_wake(&pw->sw, -ECANCELED);
    gr_cancel(g->producer); /* for its other blocking calls */
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    gr_join(g->producer);
    gr_scope_leave(&shield);
    int rc = g->result < 0 && g->result != -ECANCELED && !g->reported ? g->result : 0;
    free_gen(g);
    return rc;
}

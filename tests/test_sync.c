/* Mutex, rwlock, semaphore, event, condition and barrier.
 *
 * Multi-worker tests run with 2 workers (this machine class has 2 vCPUs);
 * tasks end up on both through stealing. "Waiter i is queued" is observed
 * in the object's waiter list (gr_test_wait_waiters), never with a sleep. */
/* greenring-test: tsan */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "support/support.h"
#include "support/waiters.h"

#define WORKERS 2

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

static void atomic_max(_Atomic int *max, int v)
{
    int cur = atomic_load(max);
    while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
        ;
}

/* ---------------------------------------------------------------------
 * Mutex
 * --------------------------------------------------------------------- */

#define COUNTER_TASKS 10
#define COUNTER_ROUNDS 100

struct counter {
    gr_mutex m;
    gr_barrier start; /* every task is alive, then all go at once */
    int use_mutex;
    _Atomic int value; /* read and written separately: a lost update is possible */
};

static int counter_task(void *arg)
{
    struct counter *c = arg;
    ck_assert_int_ge(gr_barrier_wait(&c->start), 0);
    for (int i = 0; i < COUNTER_ROUNDS; i++) {
        if (c->use_mutex)
            ck_assert_int_eq(gr_mutex_lock(&c->m), 0);
        int v = atomic_load_explicit(&c->value, memory_order_relaxed);
        gr_yield(); /* inside the critical section */
        atomic_store_explicit(&c->value, v + 1, memory_order_relaxed);
        if (c->use_mutex)
            ck_assert_int_eq(gr_mutex_unlock(&c->m), 0);
    }
    return 0;
}

static int counter_main(void *arg)
{
    struct counter *c = arg;
    gr_task *t[COUNTER_TASKS];
    for (int i = 0; i < COUNTER_TASKS; i++)
        t[i] = gr_test_spawn(counter_task, c);
    for (int i = 0; i < COUNTER_TASKS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(mutex_counter_exact)
{
    struct counter c = {.use_mutex = 1};
    gr_mutex_init(&c.m);
    gr_barrier_init(&c.start, COUNTER_TASKS);
    gr_test_run_ok(counter_main, &c, WORKERS);
    ck_assert_int_eq(atomic_load(&c.value), COUNTER_TASKS * COUNTER_ROUNDS);
    ck_assert_int_eq(gr_mutex_destroy(&c.m), 0);
}
END_TEST

START_TEST(mutex_race_is_real_without_it)
{
    struct counter c = {.use_mutex = 0};
    gr_barrier_init(&c.start, COUNTER_TASKS);
    gr_test_run_ok(counter_main, &c, WORKERS);
    ck_assert_int_lt(atomic_load(&c.value), COUNTER_TASKS * COUNTER_ROUNDS);
}
END_TEST

#define FIFO_WAITERS 5

struct fifo {
    gr_mutex m;
    gr_event hold; /* waiter 0 keeps the mutex until this is set */
    int order[FIFO_WAITERS];
    int n;
};

struct fifo_waiter {
    struct fifo *f;
    int id;
};

static int fifo_waiter(void *arg)
{
    struct fifo_waiter *w = arg;
    ck_assert_int_eq(gr_mutex_lock(&w->f->m), 0);
    w->f->order[w->f->n++] = w->id;
    ck_assert_int_eq(gr_event_wait(&w->f->hold), 0);
    ck_assert_int_eq(gr_mutex_unlock(&w->f->m), 0);
    return 0;
}

static int fifo_main(void *arg)
{
    struct fifo *f = arg;
    gr_task *t[FIFO_WAITERS];
    struct fifo_waiter w[FIFO_WAITERS];
    ck_assert_int_eq(gr_mutex_lock(&f->m), 0);
    for (int i = 0; i < FIFO_WAITERS; i++) {
        w[i] = (struct fifo_waiter){f, i};
        t[i] = gr_test_spawn(fifo_waiter, &w[i]);
        gr_test_wait_waiters(&f->m.lock_, &f->m.waiters_, i + 1); /* waiter i queued before i + 1 */
    }
    /* A late arrival cannot barge in: the mutex goes straight to waiter 0. */
    ck_assert_int_eq(gr_mutex_unlock(&f->m), 0);
    ck_assert_int_eq(gr_mutex_trylock(&f->m), -EAGAIN);
    ck_assert_int_eq(gr_mutex_is_locked(&f->m), 1);
    gr_event_set(&f->hold);
    for (int i = 0; i < FIFO_WAITERS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(mutex_fifo_handoff)
{
    struct fifo f = {.n = 0};
    gr_mutex_init(&f.m);
    gr_event_init(&f.hold);
    gr_test_run_ok(fifo_main, &f, WORKERS);
    ck_assert_int_eq(f.n, FIFO_WAITERS);
    for (int i = 0; i < FIFO_WAITERS; i++)
        ck_assert_int_eq(f.order[i], i);
}
END_TEST

static int unlock_other(void *arg)
{
    return gr_mutex_unlock(arg);
}

static int mutex_errors_main(void *arg)
{
    (void)arg;
    gr_mutex m = GR_MUTEX_INIT;
    ck_assert_int_eq(gr_mutex_unlock(&m), -EPERM); /* not locked */
    ck_assert_int_eq(gr_mutex_is_locked(&m), 0);
    ck_assert_int_eq(gr_mutex_lock(&m), 0);
    ck_assert_int_eq(gr_mutex_is_locked(&m), 1);
    ck_assert_int_eq(gr_mutex_lock(&m), -EDEADLK);
    ck_assert_int_eq(gr_mutex_trylock(&m), -EAGAIN);
    ck_assert_int_eq(gr_mutex_destroy(&m), -EBUSY);
    ck_assert_int_eq(gr_join(gr_test_spawn(unlock_other, &m)), -EPERM); /* not the owner */
    ck_assert_int_eq(gr_mutex_unlock(&m), 0);
    ck_assert_int_eq(gr_mutex_unlock(&m), -EPERM);
    ck_assert_int_eq(gr_mutex_trylock(&m), 0);
    ck_assert_int_eq(gr_mutex_unlock(&m), 0);
    ck_assert_int_eq(gr_mutex_lock(NULL), -EINVAL);
    ck_assert_int_eq(gr_mutex_unlock(NULL), -EINVAL);
    ck_assert_int_eq(gr_mutex_init(NULL), -EINVAL);
    ck_assert_int_eq(gr_mutex_destroy(&m), 0);
    return 0;
}

START_TEST(mutex_errors)
{
    gr_mutex m;
    ck_assert_int_eq(gr_mutex_init(&m), 0);
    ck_assert_int_eq(gr_mutex_lock(&m), -EPERM); /* outside a task */
    ck_assert_int_eq(gr_mutex_trylock(&m), -EPERM);
    gr_test_run_ok(mutex_errors_main, NULL, WORKERS);
}
END_TEST

struct interrupted {
    gr_mutex m;
    gr_event never;
    int timeout_fired;
    int got;
};

static int lock_and_record(void *arg)
{
    struct interrupted *s = arg;
    int rc = gr_mutex_lock(&s->m);
    if (rc == 0) {
        s->got++;
        gr_mutex_unlock(&s->m);
    }
    return rc;
}

static int lock_with_timeout(void *arg)
{
    struct interrupted *s = arg;
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000); /* 1 ms; the holder never lets go */
    int rc = gr_mutex_lock(&s->m);
    s->timeout_fired = gr_scope_leave(&sc);
    return rc;
}

static int cancelled_then_lock(void *arg)
{
    struct interrupted *s = arg;
    ck_assert_int_eq(gr_event_wait(&s->never), -ECANCELED);
    return gr_mutex_lock(&s->m);
}

static int mutex_interrupt_main(void *arg)
{
    struct interrupted *s = arg;
    ck_assert_int_eq(gr_mutex_lock(&s->m), 0);
    gr_task *head = gr_test_spawn(lock_and_record, s);
    gr_test_wait_waiters(&s->m.lock_, &s->m.waiters_, 1);
    gr_task *middle = gr_test_spawn(lock_and_record, s);
    gr_test_wait_waiters(&s->m.lock_, &s->m.waiters_, 2);
    gr_task *last = gr_test_spawn(lock_and_record, s);
    gr_test_wait_waiters(&s->m.lock_, &s->m.waiters_, 3);
    ck_assert_int_eq(gr_cancel(middle), 0);
    ck_assert_int_eq(gr_join(middle), -ECANCELED);
    ck_assert_int_eq(gr_cancel(head), 0);
    ck_assert_int_eq(gr_join(head), -ECANCELED);
    ck_assert_int_eq(gr_join(gr_test_spawn(lock_with_timeout, s)), -ETIMEDOUT);
    ck_assert_int_eq(s->timeout_fired, 1);
    ck_assert_int_eq(s->got, 0);
    /* The interrupted waiters left; the last one still gets the mutex. */
    ck_assert_int_eq(gr_mutex_unlock(&s->m), 0);
    ck_assert_int_eq(gr_join(last), 0);
    ck_assert_int_eq(s->got, 1);
    ck_assert_int_eq(gr_mutex_is_locked(&s->m), 0);
    /* Level-triggered: a cancelled task cannot lock even a free mutex. */
    gr_task *self_cancelled = gr_test_spawn(cancelled_then_lock, s);
    gr_test_wait_waiters(&s->never.lock_, &s->never.waiters_, 1);
    gr_cancel(self_cancelled);
    ck_assert_int_eq(gr_join(self_cancelled), -ECANCELED);
    ck_assert_int_eq(gr_mutex_is_locked(&s->m), 0);
    ck_assert_int_eq(gr_mutex_lock(&s->m), 0);
    ck_assert_int_eq(gr_mutex_unlock(&s->m), 0);
    return 0;
}

START_TEST(mutex_cancel_and_timeout)
{
    struct interrupted s = {.got = 0};
    gr_mutex_init(&s.m);
    gr_event_init(&s.never);
    gr_test_run_ok(mutex_interrupt_main, &s, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Reader/writer lock
 * --------------------------------------------------------------------- */

#define READERS 3

struct rw {
    gr_rwlock rw;
    gr_barrier inside;
    _Atomic int readers, writers, max_readers, violations;
    int data;
    gr_event go;
};

static int overlapping_reader(void *arg)
{
    struct rw *s = arg;
    ck_assert_int_eq(gr_rwlock_rdlock(&s->rw), 0);
    atomic_max(&s->max_readers, atomic_fetch_add(&s->readers, 1) + 1);
    /* Every reader must be inside at once for this barrier to open. */
    ck_assert_int_ge(gr_barrier_wait(&s->inside), 0);
    atomic_fetch_sub(&s->readers, 1);
    ck_assert_int_eq(gr_rwlock_rdunlock(&s->rw), 0);
    return 0;
}

static int readers_main(void *arg)
{
    struct rw *s = arg;
    gr_task *t[READERS];
    for (int i = 0; i < READERS; i++)
        t[i] = gr_test_spawn(overlapping_reader, s);
    for (int i = 0; i < READERS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(rwlock_readers_overlap)
{
    struct rw s = {.data = 0};
    gr_rwlock_init(&s.rw);
    gr_barrier_init(&s.inside, READERS);
    gr_test_run_ok(readers_main, &s, WORKERS);
    ck_assert_int_eq(atomic_load(&s.max_readers), READERS);
    ck_assert_int_eq(gr_rwlock_destroy(&s.rw), 0);
}
END_TEST

#define RW_TASKS 8
#define RW_ROUNDS 200

static int rw_worker(void *arg)
{
    struct rw *s = arg;
    gr_event_wait(&s->go);
    for (int i = 0; i < RW_ROUNDS; i++) {
        if (i % 3 == 0) {
            ck_assert_int_eq(gr_rwlock_wrlock(&s->rw), 0);
            if (atomic_fetch_add(&s->writers, 1) != 0 || atomic_load(&s->readers) != 0)
                atomic_fetch_add(&s->violations, 1);
            int v = s->data;
            gr_yield();
            s->data = v + 1;
            atomic_fetch_sub(&s->writers, 1);
            ck_assert_int_eq(gr_rwlock_wrunlock(&s->rw), 0);
        } else {
            ck_assert_int_eq(gr_rwlock_rdlock(&s->rw), 0);
            atomic_fetch_add(&s->readers, 1);
            if (atomic_load(&s->writers) != 0)
                atomic_fetch_add(&s->violations, 1);
            gr_yield();
            atomic_fetch_sub(&s->readers, 1);
            ck_assert_int_eq(gr_rwlock_rdunlock(&s->rw), 0);
        }
    }
    return 0;
}

static int rw_exclusive_main(void *arg)
{
    struct rw *s = arg;
    gr_task *t[RW_TASKS];
    for (int i = 0; i < RW_TASKS; i++)
        t[i] = gr_test_spawn(rw_worker, s);
    gr_event_set(&s->go);
    for (int i = 0; i < RW_TASKS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(rwlock_writers_exclusive)
{
    struct rw s = {.data = 0};
    gr_rwlock_init(&s.rw);
    gr_event_init(&s.go);
    gr_test_run_ok(rw_exclusive_main, &s, WORKERS);
    ck_assert_int_eq(atomic_load(&s.violations), 0);
    int writes_per_task = (RW_ROUNDS + 2) / 3;
    ck_assert_int_eq(s.data, RW_TASKS * writes_per_task);
}
END_TEST

static int writer_task(void *arg)
{
    struct rw *s = arg;
    int rc = gr_rwlock_wrlock(&s->rw);
    if (rc == 0) {
        s->data = 1;
        gr_rwlock_wrunlock(&s->rw);
    }
    return rc;
}

static int reader_task(void *arg)
{
    struct rw *s = arg;
    int rc = gr_rwlock_rdlock(&s->rw);
    if (rc == 0) {
        atomic_fetch_add(&s->readers, 1);
        gr_rwlock_rdunlock(&s->rw);
    }
    return rc;
}

static int rw_preference_main(void *arg)
{
    struct rw *s = arg;
    ck_assert_int_eq(gr_rwlock_rdlock(&s->rw), 0);
    gr_task *w = gr_test_spawn(writer_task, s);
    gr_test_wait_waiters(&s->rw.lock_, &s->rw.wq_, 1);
    /* A writer waits: new readers queue behind it. */
    ck_assert_int_eq(gr_rwlock_tryrdlock(&s->rw), -EAGAIN);
    gr_task *r = gr_test_spawn(reader_task, s);
    gr_test_wait_waiters(&s->rw.lock_, &s->rw.rq_, 1);
    ck_assert_int_eq(atomic_load(&s->readers), 0);
    ck_assert_int_eq(gr_rwlock_rdunlock(&s->rw), 0); /* hands over to the writer */
    ck_assert_int_eq(gr_join(w), 0);
    ck_assert_int_eq(s->data, 1);
    ck_assert_int_eq(gr_join(r), 0); /* admitted by the writer's unlock */
    ck_assert_int_eq(atomic_load(&s->readers), 1);

    /* A waiting writer that is cancelled lets the readers behind it in. */
    atomic_store(&s->readers, 0);
    ck_assert_int_eq(gr_rwlock_rdlock(&s->rw), 0);
    w = gr_test_spawn(writer_task, s);
    gr_test_wait_waiters(&s->rw.lock_, &s->rw.wq_, 1);
    r = gr_test_spawn(reader_task, s);
    gr_test_wait_waiters(&s->rw.lock_, &s->rw.rq_, 1);
    gr_cancel(w);
    ck_assert_int_eq(gr_join(w), -ECANCELED);
    ck_assert_int_eq(gr_join(r), 0);
    ck_assert_int_eq(atomic_load(&s->readers), 1);
    ck_assert_int_eq(gr_rwlock_rdunlock(&s->rw), 0);
    ck_assert_int_eq(gr_rwlock_destroy(&s->rw), 0);
    return 0;
}

START_TEST(rwlock_writer_preference)
{
    struct rw s = {.data = 0};
    gr_rwlock_init(&s.rw);
    gr_test_run_ok(rw_preference_main, &s, WORKERS);
}
END_TEST

static int wrunlock_other(void *arg)
{
    return gr_rwlock_wrunlock(arg);
}

static int rw_errors_main(void *arg)
{
    (void)arg;
    gr_rwlock rw = GR_RWLOCK_INIT;
    ck_assert_int_eq(gr_rwlock_rdunlock(&rw), -EPERM);
    ck_assert_int_eq(gr_rwlock_wrunlock(&rw), -EPERM);
    ck_assert_int_eq(gr_rwlock_wrlock(&rw), 0);
    ck_assert_int_eq(gr_rwlock_wrlock(&rw), -EDEADLK);
    ck_assert_int_eq(gr_rwlock_rdlock(&rw), -EDEADLK);
    ck_assert_int_eq(gr_rwlock_trywrlock(&rw), -EDEADLK);
    ck_assert_int_eq(gr_rwlock_destroy(&rw), -EBUSY);
    ck_assert_int_eq(gr_join(gr_test_spawn(wrunlock_other, &rw)), -EPERM);
    ck_assert_int_eq(gr_rwlock_wrunlock(&rw), 0);
    ck_assert_int_eq(gr_rwlock_tryrdlock(&rw), 0);
    ck_assert_int_eq(gr_rwlock_tryrdlock(&rw), 0);
    ck_assert_int_eq(gr_rwlock_trywrlock(&rw), -EAGAIN);
    ck_assert_int_eq(gr_rwlock_rdunlock(&rw), 0);
    ck_assert_int_eq(gr_rwlock_rdunlock(&rw), 0);
    ck_assert_int_eq(gr_rwlock_rdunlock(&rw), -EPERM);
    ck_assert_int_eq(gr_rwlock_rdlock(NULL), -EINVAL);
    ck_assert_int_eq(gr_rwlock_destroy(&rw), 0);
    return 0;
}

START_TEST(rwlock_errors)
{
    gr_test_run_ok(rw_errors_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Semaphore
 * --------------------------------------------------------------------- */

#define SEM_K 3
#define SEM_TASKS 20

struct semtest {
    gr_sem s;
    _Atomic int inside, max_inside, entries;
    gr_event go;
};

static int sem_user(void *arg)
{
    struct semtest *t = arg;
    gr_event_wait(&t->go);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(gr_sem_acquire(&t->s), 0);
        atomic_max(&t->max_inside, atomic_fetch_add(&t->inside, 1) + 1);
        atomic_fetch_add(&t->entries, 1);
        gr_yield();
        gr_yield();
        atomic_fetch_sub(&t->inside, 1);
        ck_assert_int_eq(gr_sem_release(&t->s), 0);
    }
    return 0;
}

static int sem_limit_main(void *arg)
{
    struct semtest *t = arg;
    gr_task *tasks[SEM_TASKS];
    for (int i = 0; i < SEM_TASKS; i++)
        tasks[i] = gr_test_spawn(sem_user, t);
    gr_event_set(&t->go);
    for (int i = 0; i < SEM_TASKS; i++)
        ck_assert_int_eq(gr_join(tasks[i]), 0);
    return 0;
}

START_TEST(sem_never_more_than_k)
{
    struct semtest t = {.inside = 0};
    ck_assert_int_eq(gr_sem_init(&t.s, SEM_K), 0);
    gr_event_init(&t.go);
    gr_test_run_ok(sem_limit_main, &t, WORKERS);
    ck_assert_int_le(atomic_load(&t.max_inside), SEM_K);
    ck_assert_int_ge(atomic_load(&t.max_inside), 1);
    ck_assert_int_eq(atomic_load(&t.entries), SEM_TASKS * 10);
    ck_assert_int_eq(gr_sem_value(&t.s), SEM_K);
}
END_TEST

static int sem_acquire_task(void *arg)
{
    return gr_sem_acquire(arg);
}

static int sem_misc_main(void *arg)
{
    (void)arg;
    gr_sem b;
    ck_assert_int_eq(gr_sem_init_bounded(&b, 2), 0);
    ck_assert_int_eq(gr_sem_release(&b), -EOVERFLOW);
    ck_assert_int_eq(gr_sem_acquire(&b), 0);
    ck_assert_int_eq(gr_sem_tryacquire(&b), 0);
    ck_assert_int_eq(gr_sem_tryacquire(&b), -EAGAIN);
    ck_assert_int_eq(gr_sem_value(&b), 0);
    ck_assert_int_eq(gr_sem_release(&b), 0);
    ck_assert_int_eq(gr_sem_release(&b), 0);
    ck_assert_int_eq(gr_sem_release(&b), -EOVERFLOW);
    ck_assert_int_eq(gr_sem_value(&b), 2);
    ck_assert_int_eq(gr_sem_init_bounded(&b, 0), -EINVAL);
    ck_assert_int_eq(gr_sem_init(&b, GR_SEM_MAX + 1u), -EINVAL);

    /* Interrupted waiters take no permit; the next waiter gets it. */
    gr_sem s;
    gr_sem_init(&s, 0);
    gr_task *c = gr_test_spawn(sem_acquire_task, &s);
    gr_test_wait_waiters(&s.lock_, &s.waiters_, 1);
    gr_task *last = gr_test_spawn(sem_acquire_task, &s);
    gr_test_wait_waiters(&s.lock_, &s.waiters_, 2);
    ck_assert_int_eq(gr_sem_destroy(&s), -EBUSY);
    gr_cancel(c);
    ck_assert_int_eq(gr_join(c), -ECANCELED);
    ck_assert_int_eq(gr_sem_value(&s), 0);
    ck_assert_int_eq(gr_sem_release(&s), 0);
    ck_assert_int_eq(gr_join(last), 0);
    ck_assert_int_eq(gr_sem_value(&s), 0);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_sem_acquire(&s), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_int_eq(gr_sem_release(&s), 0);
    ck_assert_int_eq(gr_sem_value(&s), 1);
    ck_assert_int_eq(gr_sem_destroy(&s), 0);
    return 0;
}

START_TEST(sem_bounded_and_interrupts)
{
    gr_sem s;
    gr_sem_init(&s, 1);
    ck_assert_int_eq(gr_sem_release(&s), 0); /* any thread */
    ck_assert_int_eq(gr_sem_value(&s), 2);
    ck_assert_int_eq(gr_sem_acquire(&s), -EPERM); /* no runtime running */
    gr_test_run_ok(sem_misc_main, NULL, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Event
 * --------------------------------------------------------------------- */

struct evtest {
    gr_event e;
    _Atomic int woken;
};

static int event_waiter(void *arg)
{
    struct evtest *t = arg;
    int rc = gr_event_wait(&t->e);
    if (rc == 0)
        atomic_fetch_add(&t->woken, 1);
    return rc;
}

static int event_main(void *arg)
{
    struct evtest *t = arg;
    gr_task *w[3];
    for (int i = 0; i < 3; i++)
        w[i] = gr_test_spawn(event_waiter, t);
    gr_test_wait_waiters(&t->e.lock_, &t->e.waiters_, 3);
    ck_assert_int_eq(atomic_load(&t->woken), 0);
    ck_assert_int_eq(gr_event_is_set(&t->e), 0);
    ck_assert_int_eq(gr_event_set(&t->e), 0);
    ck_assert_int_eq(gr_event_clear(&t->e), 0); /* the three are woken already */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_join(w[i]), 0);
    ck_assert_int_eq(atomic_load(&t->woken), 3);

    /* Set: waits return at once. Interrupted waits leave no trace. */
    gr_event_set(&t->e);
    ck_assert_int_eq(gr_event_is_set(&t->e), 1);
    ck_assert_int_eq(gr_event_wait(&t->e), 0);
    gr_event_clear(&t->e);
    gr_task *c = gr_test_spawn(event_waiter, t);
    gr_test_wait_waiters(&t->e.lock_, &t->e.waiters_, 1);
    gr_cancel(c);
    ck_assert_int_eq(gr_join(c), -ECANCELED);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_event_wait(&t->e), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_int_eq(gr_event_destroy(&t->e), 0);
    return 0;
}

START_TEST(event_wakes_every_waiter)
{
    struct evtest t = {.woken = 0};
    gr_event_init(&t.e);
    gr_test_run_ok(event_main, &t, WORKERS);
    ck_assert_int_eq(atomic_load(&t.woken), 3);
}
END_TEST

/* ---------------------------------------------------------------------
 * Condition
 * --------------------------------------------------------------------- */

#define COND_ITEMS 200

struct condtest {
    gr_mutex m;
    gr_cond c;
    int items, consumed, done;
};

static int has_items(void *arg)
{
    struct condtest *t = arg;
    return t->items > 0 || t->done;
}

static int cond_consumer(void *arg)
{
    struct condtest *t = arg;
    for (;;) {
        ck_assert_int_eq(gr_mutex_lock(&t->m), 0);
        ck_assert_int_eq(gr_cond_wait_for(&t->c, &t->m, has_items, t), 0);
        if (t->items == 0 && t->done) {
            gr_mutex_unlock(&t->m);
            return 0;
        }
        t->items--;
        t->consumed++;
        gr_mutex_unlock(&t->m);
    }
}

static int cond_main(void *arg)
{
    struct condtest *t = arg;
    gr_task *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = gr_test_spawn(cond_consumer, t);
    for (int i = 0; i < COND_ITEMS; i++) {
        gr_mutex_lock(&t->m);
        t->items++;
        gr_cond_signal(&t->c);
        gr_mutex_unlock(&t->m);
        if (i % 7 == 0)
            gr_yield();
    }
    gr_mutex_lock(&t->m);
    t->done = 1;
    gr_cond_broadcast(&t->c);
    gr_mutex_unlock(&t->m);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_join(c[i]), 0);
    return 0;
}

START_TEST(cond_producer_consumer)
{
    struct condtest t = {.items = 0};
    gr_mutex_init(&t.m);
    gr_cond_init(&t.c);
    gr_test_run_ok(cond_main, &t, WORKERS);
    ck_assert_int_eq(t.consumed, COND_ITEMS);
    ck_assert_int_eq(t.items, 0);
    ck_assert_int_eq(gr_cond_destroy(&t.c), 0);
}
END_TEST

static int cond_waiter(void *arg)
{
    struct condtest *t = arg;
    gr_mutex_lock(&t->m);
    int rc = gr_cond_wait(&t->c, &t->m);
    /* Held again on every return: unlock succeeds only for the owner. */
    ck_assert_int_eq(gr_mutex_unlock(&t->m), 0);
    if (rc == 0)
        t->consumed++;
    return rc;
}

static int cond_interrupt_main(void *arg)
{
    struct condtest *t = arg;
    ck_assert_int_eq(gr_cond_wait(&t->c, &t->m), -EPERM); /* m not held */
    gr_task *a = gr_test_spawn(cond_waiter, t);
    gr_test_wait_waiters(&t->c.lock_, &t->c.waiters_, 1);
    gr_task *b = gr_test_spawn(cond_waiter, t);
    gr_test_wait_waiters(&t->c.lock_, &t->c.waiters_, 2);
    /* Cancel a while the caller holds the mutex: a's relock must wait for
     * it, and still succeed. */
    gr_mutex_lock(&t->m);
    gr_cancel(a);
    gr_test_wait_waiters(&t->m.lock_, &t->m.waiters_, 1);
    ck_assert_int_eq(gr_cond_destroy(&t->c), -EBUSY);
    gr_mutex_unlock(&t->m);
    ck_assert_int_eq(gr_join(a), -ECANCELED);
    /* The signal goes to b, the waiter still waiting. */
    gr_cond_signal(&t->c);
    ck_assert_int_eq(gr_join(b), 0);
    ck_assert_int_eq(t->consumed, 1);
    /* A timeout inside wait: relocked, -ETIMEDOUT. */
    gr_mutex_lock(&t->m);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_cond_wait(&t->c, &t->m), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_int_eq(gr_mutex_unlock(&t->m), 0);
    return 0;
}

START_TEST(cond_cancel_relocks)
{
    struct condtest t = {.items = 0};
    gr_mutex_init(&t.m);
    gr_cond_init(&t.c);
    gr_test_run_ok(cond_interrupt_main, &t, WORKERS);
}
END_TEST

/* ---------------------------------------------------------------------
 * Barrier
 * --------------------------------------------------------------------- */

#define PARTIES 4
#define ROUNDS 20

struct bartest {
    gr_barrier b;
    _Atomic int arrived[ROUNDS];
    _Atomic unsigned indices[ROUNDS];
    _Atomic int early; /* left a round before everyone arrived */
};

static int party(void *arg)
{
    struct bartest *t = arg;
    for (int r = 0; r < ROUNDS; r++) {
        atomic_fetch_add(&t->arrived[r], 1);
        if (r % 2)
            gr_yield();
        int idx = gr_barrier_wait(&t->b);
        ck_assert_int_ge(idx, 0);
        ck_assert_int_lt(idx, PARTIES);
        atomic_fetch_or(&t->indices[r], 1u << idx);
        if (atomic_load(&t->arrived[r]) != PARTIES)
            atomic_fetch_add(&t->early, 1);
    }
    return 0;
}

static int barrier_main(void *arg)
{
    struct bartest *t = arg;
    gr_task *p[PARTIES];
    for (int i = 0; i < PARTIES; i++)
        p[i] = gr_test_spawn(party, t);
    for (int i = 0; i < PARTIES; i++)
        ck_assert_int_eq(gr_join(p[i]), 0);
    return 0;
}

START_TEST(barrier_rounds)
{
    static struct bartest t;
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(gr_barrier_init(&t.b, PARTIES), 0);
    gr_test_run_ok(barrier_main, &t, WORKERS);
    ck_assert_int_eq(atomic_load(&t.early), 0);
    for (int r = 0; r < ROUNDS; r++)
        ck_assert_uint_eq(atomic_load(&t.indices[r]), (1u << PARTIES) - 1);
    ck_assert_int_eq(gr_barrier_n_waiting(&t.b), 0);
}
END_TEST

static int barrier_waiter(void *arg)
{
    return gr_barrier_wait(arg);
}

static int barrier_broken_main(void *arg)
{
    gr_barrier *b = arg;
    gr_task *a = gr_test_spawn(barrier_waiter, b);
    gr_test_wait_waiters(&b->lock_, &b->waiters_, 1);
    gr_task *c = gr_test_spawn(barrier_waiter, b);
    gr_test_wait_waiters(&b->lock_, &b->waiters_, 2);
    ck_assert_int_eq(gr_barrier_n_waiting(b), 2);
    gr_cancel(c);
    ck_assert_int_eq(gr_join(c), -ECANCELED);
    ck_assert_int_eq(gr_join(a), -EPIPE); /* the round cannot complete */
    ck_assert_int_eq(gr_barrier_broken(b), 1);
    ck_assert_int_eq(gr_barrier_wait(b), -EPIPE);
    ck_assert_int_eq(gr_barrier_reset(b), 0);
    ck_assert_int_eq(gr_barrier_broken(b), 0);
    /* A full round after the reset. */
    a = gr_test_spawn(barrier_waiter, b);
    c = gr_test_spawn(barrier_waiter, b);
    gr_test_wait_waiters(&b->lock_, &b->waiters_, 2);
    ck_assert_int_eq(gr_barrier_wait(b), 2);
    int ia = gr_join(a), ic = gr_join(c);
    ck_assert_int_eq(ia + ic, 1); /* indices 0 and 1 */
    /* Abort wakes the waiters with -EPIPE; reset wakes them too. */
    a = gr_test_spawn(barrier_waiter, b);
    gr_test_wait_waiters(&b->lock_, &b->waiters_, 1);
    ck_assert_int_eq(gr_barrier_abort(b), 0);
    ck_assert_int_eq(gr_join(a), -EPIPE);
    ck_assert_int_eq(gr_barrier_reset(b), 0);
    a = gr_test_spawn(barrier_waiter, b);
    gr_test_wait_waiters(&b->lock_, &b->waiters_, 1);
    ck_assert_int_eq(gr_barrier_reset(b), 0);
    ck_assert_int_eq(gr_join(a), -EPIPE);
    ck_assert_int_eq(gr_barrier_broken(b), 0);
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 1000000);
    ck_assert_int_eq(gr_barrier_wait(b), -ETIMEDOUT);
    gr_scope_leave(&sc);
    ck_assert_int_eq(gr_barrier_broken(b), 1);
    ck_assert_int_eq(gr_barrier_destroy(b), 0);
    return 0;
}

START_TEST(barrier_breaks_on_cancel)
{
    gr_barrier b;
    ck_assert_int_eq(gr_barrier_init(&b, 3), 0);
    ck_assert_int_eq(gr_barrier_init(&b, 0), -EINVAL);
    ck_assert_int_eq(gr_barrier_init(&b, 3), 0);
    gr_test_run_ok(barrier_broken_main, &b, WORKERS);
}
END_TEST

static int single_party_main(void *arg)
{
    gr_barrier *b = arg;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_barrier_wait(b), 0);
    return 0;
}

START_TEST(barrier_single_party)
{
    gr_barrier b;
    ck_assert_int_eq(gr_barrier_init(&b, 1), 0);
    gr_test_run_ok(single_party_main, &b, 1);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("mutex");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mutex_counter_exact);
    tcase_add_test(tc, mutex_race_is_real_without_it);
    tcase_add_test(tc, mutex_fifo_handoff);
    tcase_add_test(tc, mutex_errors);
    tcase_add_test(tc, mutex_cancel_and_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("rwlock");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rwlock_readers_overlap);
    tcase_add_test(tc, rwlock_writers_exclusive);
    tcase_add_test(tc, rwlock_writer_preference);
    tcase_add_test(tc, rwlock_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("semaphore");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sem_never_more_than_k);
    tcase_add_test(tc, sem_bounded_and_interrupts);
    suite_add_tcase(s, tc);

    tc = tcase_create("event_cond_barrier");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, event_wakes_every_waiter);
    tcase_add_test(tc, cond_producer_consumer);
    tcase_add_test(tc, cond_cancel_relocks);
    tcase_add_test(tc, barrier_rounds);
    tcase_add_test(tc, barrier_breaks_on_cancel);
    tcase_add_test(tc, barrier_single_party);
    suite_add_tcase(s, tc);
    return s;
}

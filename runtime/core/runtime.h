/* The runtime: the workers of one gr_run and what they share. */
#ifndef GR_CORE_RUNTIME_H
#define GR_CORE_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/task.h"
#include "core/worker.h"
#include "greenring.h"

struct gr__wait;
struct gr__signals;

/* Most workers one runtime may have (gr_config.workers). */
#define GR_MAX_WORKERS 1024u

struct gr__runtime {
    gr_config cfg;
    unsigned nworkers;
    int cfg_have_msg_ring; /* IORING_OP_MSG_RING works: wake workers with it */
    uint16_t handle_epoch;  /* first handle generation of fresh stack slots */
    struct gr__worker *workers;
    /* Global run queue: overflow from local queues and tasks spawned by
     * foreign threads. */
    pthread_mutex_t global_lock;
    struct gr__task *global_head, *global_tail;
    _Atomic uint32_t global_len;
    /* Tasks created by threads that are not workers. */
    struct gr__task_list foreign_tasks;
    _Atomic uint32_t n_parked;    /* workers blocked in the ring wait */
    _Atomic uint32_t n_searching; /* workers looking for work to steal */
    _Atomic uint64_t live;        /* tasks created and not finished */
    _Atomic int stopping;
    _Atomic uint32_t foreign_posts; /* non-worker threads inside gr__worker_post */
    /* Teardown: main has returned and waits for the other tasks. */
    _Atomic int main_done;
    pthread_mutex_t teardown_lock;
    struct gr__wait *teardown_wait;
    struct gr__task *main_task;
    struct gr__signals *signals; /* signal/signal.c, NULL when none managed */
    /* Debug mode (task/debug.c). */
    int debug;
    pthread_t watchdog;
    int watchdog_running;
    pthread_mutex_t watchdog_lock;
    pthread_cond_t watchdog_cond;
    int watchdog_stop;
};

/* Visit every task on the registry lists, under their locks (fn must not
 * block). */
void gr__runtime_foreach_task(struct gr__runtime *rt, void (*fn)(struct gr__task *t, void *arg),
                              void *arg);

/* The runtime of the running gr_run, or NULL. */
extern struct gr__runtime *_Atomic gr__rt;

void gr__global_push(struct gr__runtime *rt, struct gr__task *first, struct gr__task *last,
                     uint32_t n);
struct gr__task *gr__global_pop(struct gr__runtime *rt);
/* A task finished (called once per task, any thread). */
void gr__runtime_task_done(struct gr__runtime *rt);
/* CLOCK_MONOTONIC_COARSE: cheap, for "parked since" bookkeeping. */
int64_t gr__now_coarse(void);

#endif

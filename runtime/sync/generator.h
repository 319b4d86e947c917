/* Stackful generators: the object (generator.c has the protocol). */
#ifndef GR_SYNC_GENERATOR_H
#define GR_SYNC_GENERATOR_H

#include "core/task.h"
#include "greenring.h"
#include "sync/waiter.h"

/* Where the producer is. */
enum gr__gen_state {
    /* running toward its next wait for a resume (not started yet, or it
     * just handed over a value it had to park with) */
    GR__GEN_NEEDS_RESUME,
    /* parked in gr_gen_yield after its value was taken, waiting for the
     * next next/send */
    GR__GEN_PARKED_RESUME,
    /* resumed: computing its next value */
    GR__GEN_RUNNING,
    /* parked in gr_gen_yield with a value nobody took yet (the consumer
     * call it was meant for was interrupted) */
    GR__GEN_PARKED_VALUE,
    /* returned */
    GR__GEN_FINISHED,
};

struct gr__gen_consumer {
    struct gr__swait sw;
    gr_gen *g;
    void *out;
};

struct gr__gen_producer {
    struct gr__swait sw;
    gr_gen *g;
    const void *value;  /* PARKED_VALUE: the value to hand over */
    const void *sent;   /* set by the resuming call */
};

struct gr_gen {
    gr_spin_ lock;
    enum gr__gen_state state;
    size_t esize, send_size;
    gr_gen_fn fn;
    void *arg;
    gr_task *producer;             /* handle, for close */
    struct gr__task *producer_task; /* set by the producer itself */
    struct gr__gen_consumer *consumer; /* a call waiting for a value */
    struct gr__gen_producer *pwait;    /* PARKED_*: the producer's record */
    int started;
    int resume_pending; /* resumed while NEEDS_RESUME, before it parked */
    const void *pending_sent;
    int closing;
    int result;
    int reported; /* the negative result was returned by next/send */
    char *sendbuf; /* the producer's copy of the value sent in */
};

#endif

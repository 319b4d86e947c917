/* The offload pool: blocking functions on a bounded set of OS threads
 * (asyncio.to_thread / run_in_executor), for whatever io_uring cannot do.
 *
 * A task queues a job and parks; a pool thread runs the function and wakes
 * the task through its worker's inbox (wait.h). Workers never block.
 *
 * Jobs come from a free list (no allocation per call in steady state) and
 * never live on the task's stack, because a caller that is interrupted may
 * leave while the function still runs (GR_OFFLOAD_ABANDON). Who owns a job
 * is decided by one CAS on its state word:
 *
 *   QUEUED --pool thread--> RUNNING --fn returned--> DONE (the task owns it)
 *      \                       \
 *       `--interrupt hook-------`--> ABANDONED (the pool thread owns it,
 *                                    calls release, recycles it)
 *
 * Threads start on demand up to the maximum and exit after 10 s idle. */
#ifndef GR_OFFLOAD_OFFLOAD_H
#define GR_OFFLOAD_OFFLOAD_H

#include "greenring.h"

enum gr__offload_mode {
    /* An interrupt wakes the caller at once with its reason; the function
     * runs to completion and release(arg, result) is called on the pool
     * thread (gr_offload). arg must not live on the caller's stack. */
    GR_OFFLOAD_ABANDON,
    /* An interrupt before the function started withdraws the job; once it
     * runs, the caller waits for it (gr__offload_interrupted() turns 1 so a
     * long function can stop early). For internal calls whose arguments are
     * on the caller's stack, like an io_uring operation that waits for its
     * own completion after a cancel. */
    GR_OFFLOAD_FINISH,
    /* Interrupts are ignored: cleanup that must happen (rmtree of a
     * temporary directory). */
    GR_OFFLOAD_NO_INTERRUPT,
};

/* Runs fn(arg) on the pool and parks the calling task until it returns.
 * 0 and *result (may be NULL) set, or -EPERM (not in a task), -ECANCELED /
 * -ETIMEDOUT (interrupted, see the modes), -EAGAIN (no thread could be
 * started), -ENOMEM. */
int gr__offload_run(gr_offload_fn fn, void *arg, gr_offload_release_fn release, void **result,
                    enum gr__offload_mode mode, const char *reason);

/* Runs fn(arg) in GR_OFFLOAD_FINISH (or NO_INTERRUPT) mode and returns what
 * it returned, or the error of gr__offload_run. For internal calls that
 * return a byte count or a negative errno. */
long gr__offload_call(long (*fn)(void *arg), void *arg, enum gr__offload_mode mode,
                      const char *reason);

/* On a pool thread, inside a GR_OFFLOAD_FINISH function: 1 once the caller
 * was interrupted. 0 elsewhere. */
int gr__offload_interrupted(void);

/* Maximum number of pool threads for the pool (0: the default,
 * min(32, online CPUs + 4)). gr_run calls it with gr_config.offload_threads. */
void gr__offload_configure(unsigned max_threads);

/* Stop the pool at the end of gr_run (no task waits on it any more): idle
 * threads exit and are waited for; a thread still running an abandoned
 * function finishes it, calls its release and exits on its own. The next
 * gr_offload starts a new pool. Harmless when no pool runs. */
void gr__offload_shutdown(void);

#endif

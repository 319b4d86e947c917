/* Helpers shared by the bench_*.c benchmark files (declared in bench.h,
 * "Helpers for benchmark files"). */
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "greenring.h"

int64_t gr_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

void gr_bench_error_rc(gr_bench_state *st, const char *what, long rc)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s (%ld)", what, strerror(rc < 0 ? (int)-rc : (int)rc), rc);
    gr_bench_error(st, msg);
}

int gr_bench_run_runtime(gr_bench_state *st, gr_task_fn fn, void *arg, unsigned workers)
{
    gr_config cfg = {.workers = workers};
    int rc = gr_run(fn, arg, &cfg);
    if (rc < 0)
        gr_bench_error_rc(st, "gr_run", rc);
    return rc;
}

/* The runtime's ring flags first (worker.c setup_ring), then plainer ones. */
int gr_bench_raw_ring_init(struct io_uring *ring)
{
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        struct io_uring_params p = {.flags = flag_sets[i] | IORING_SETUP_CQSIZE |
                                             IORING_SETUP_SUBMIT_ALL,
                                    .cq_entries = 1024};
        if ((rc = io_uring_queue_init_params(256, ring, &p)) == 0)
            return 0;
    }
    return rc;
}

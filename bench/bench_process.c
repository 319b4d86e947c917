/* spawn_wait: children per second running /bin/true through the runtime,
 * against posix_spawn + waitpid in a plain loop (the baseline, measured in
 * the same benchmark so the ratio comes from one run). */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

#include "bench.h"
#include "greenring.h"

extern char **environ;

static char *true_argv[] = {"true", NULL};

static int spawn_one(void)
{
    gr_process *p;
    int rc = gr_process_spawn(&p, "/bin/true", true_argv, NULL);
    if (rc < 0)
        return rc;
    gr_exit_status st;
    rc = gr_process_wait(p, &st);
    gr_process_destroy(p);
    return rc < 0 ? rc : st.code;
}

static int64_t plain_spawn_ns(int n)
{
    int64_t t0 = gr_now();
    for (int i = 0; i < n; i++) {
        pid_t pid;
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ) != 0)
            return -1;
        int status;
        waitpid(pid, &status, 0);
    }
    return (gr_now() - t0) / n;
}

struct spawn_bench {
    gr_bench_state *st;
    int rc;
};

static int spawn_wait_main(void *arg)
{
    struct spawn_bench *b = arg;
    int64_t iters = 0, t0 = gr_now();
    while (gr_bench_keep_running(b->st)) {
        int rc = spawn_one();
        if (rc != 0) {
            b->rc = rc < 0 ? rc : -ECHILD;
            gr_bench_error(b->st, "spawning /bin/true failed");
            break;
        }
        iters++;
    }
    double runtime_ns = iters ? (double)(gr_now() - t0) / (double)iters : 0;
    int64_t plain = plain_spawn_ns(200);
    gr_bench_set_items(b->st, iters);
    gr_bench_counter(b->st, "plain_spawn_us", (double)plain / 1000.0);
    if (plain > 0)
        gr_bench_counter(b->st, "vs_plain", runtime_ns / (double)plain);
    return 0;
}

static void bm_spawn_wait(gr_bench_state *st)
{
    struct spawn_bench b = {.st = st};
    gr_config cfg = {.workers = 1};
    int rc = gr_run(spawn_wait_main, &b, &cfg);
    if (rc < 0)
        gr_bench_error(st, "gr_run failed");
}

GR_BENCH_CONSTRUCTOR(register_process_benchmarks)
{
    gr_bench_register("spawn_wait", bm_spawn_wait, &(gr_bench_opts){.unit = GR_BENCH_US});
}

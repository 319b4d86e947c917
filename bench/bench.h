/* greenring benchmarks: a small C API over google-benchmark.
 *
 * Benchmarks are plain C functions taking a gr_bench_state; bench/shim.cc
 * (compiled and linked with the system g++, see build.zig "bench") wraps
 * benchmark::State behind it and provides main(). Each bench_*.c file
 * registers its benchmarks from a constructor:
 *
 *     static void bm_foo(gr_bench_state *st)
 *     {
 *         while (gr_bench_keep_running(st))
 *             foo();
 *     }
 *     GR_BENCH_CONSTRUCTOR(register_foo)
 *     {
 *         gr_bench_register("foo", bm_foo, &(gr_bench_opts){.unit = GR_BENCH_NS});
 *     }
 *
 * The state may be used from any thread (e.g. from inside a greenring task
 * on a worker thread), but from one thread at a time. Every benchmark is
 * timed in real (wall-clock) time; the CPU column is the CPU time of the
 * whole process (all workers) over the same window.
 *
 * Names: the table, --benchmark_list_tests and the after-all hooks use the
 * registered names; google-benchmark's own names (what --benchmark_filter
 * is matched against, and the JSON file of --benchmark_out) carry suffixes
 * such as "/min_time:0.300/process_time/real_time", so anchor filters with
 * care ("^nop_batch" works, "nop_batch$" does not).
 *
 * A benchmark call or hook that runs longer than GR_BENCH_TIMEOUT seconds
 * (environment; default 120, 0 = never) is named on stderr and the process
 * aborts: a runtime hang ends the suite instead of blocking it.
 */
#ifndef GR_BENCH_H
#define GR_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_bench_state gr_bench_state; /* a benchmark::State */
typedef void (*gr_bench_fn)(gr_bench_state *st);

enum gr_bench_unit { GR_BENCH_NS = 0, GR_BENCH_US, GR_BENCH_MS, GR_BENCH_S };

#define GR_BENCH_MAX_ARGS 8

typedef struct gr_bench_opts {
    enum gr_bench_unit unit; /* time unit of the report; 0: ns */
    double min_time;         /* seconds; 0: 0.3 s */
    int64_t iterations;      /* fixed iteration count (overrides min_time); 0: automatic */
    int manual_time;         /* time comes from gr_bench_set_iteration_time */
    int repetitions;         /* 0: the command line's --benchmark_repetitions */
    /* Argument lists: one benchmark instance per entry of args (nargs of
     * them); gr_bench_range(st, 0) returns it. */
    int nargs;
    int64_t args[GR_BENCH_MAX_ARGS];
} gr_bench_opts;

/* Register a benchmark. opts may be NULL. Call from a constructor
 * (GR_BENCH_CONSTRUCTOR) so it is known before main runs. */
void gr_bench_register(const char *name, gr_bench_fn fn, const gr_bench_opts *opts);

/* A function run once after all benchmarks (in registration order), e.g.
 * to print extra report lines. It is skipped when --benchmark_list_tests is
 * given, and run only when its name matches --benchmark_filter (or when the
 * filter is empty or "all"). */
typedef void (*gr_bench_after_fn)(void);
void gr_bench_after_all(const char *name, gr_bench_after_fn fn);

/* The benchmark loop: `while (gr_bench_keep_running(st)) { ... }`. The
 * first call starts the clock, the call that returns 0 stops it. Call it
 * until it returns 0, and not after that. */
int gr_bench_keep_running(gr_bench_state *st);
/* The same, counting n iterations per call (KeepRunningBatch): for loops
 * whose body is too short to pay a call per iteration. The last batch may
 * overshoot the planned count; the count done is what is reported. */
int gr_bench_keep_running_batch(gr_bench_state *st, int64_t n);
/* Iterations planned for this run (known before the loop starts). */
int64_t gr_bench_max_iterations(gr_bench_state *st);
/* Iterations done so far. */
int64_t gr_bench_iterations(gr_bench_state *st);
int64_t gr_bench_range(gr_bench_state *st, int i);

void gr_bench_pause(gr_bench_state *st);  /* PauseTiming */
void gr_bench_resume(gr_bench_state *st); /* ResumeTiming */

void gr_bench_set_items(gr_bench_state *st, int64_t items); /* SetItemsProcessed */
/* A user counter shown as is (e.g. a ratio). The last run's value is the
 * one reported. */
void gr_bench_counter(gr_bench_state *st, const char *name, double value);
/* Manual time for this iteration (opts.manual_time). */
void gr_bench_set_iteration_time(gr_bench_state *st, double seconds);
void gr_bench_label(gr_bench_state *st, const char *label);
/* Report the benchmark as failed with a reason (SkipWithError). The loop
 * may continue; its results are not reported. */
void gr_bench_error(gr_bench_state *st, const char *why);
/* Skip the benchmark (not a failure: the environment lacks something).
 * Shown as an error line by this google-benchmark version. */
void gr_bench_skip(gr_bench_state *st, const char *why);

/* ---- Helpers for benchmark files (bench/bench_support.c) ---- */

struct io_uring;

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t gr_bench_now_ns(void);
/* Report a (negative) errno as "what: strerror (rc)" through gr_bench_error. */
void gr_bench_error_rc(gr_bench_state *st, const char *what, long rc);
/* gr_run(fn, arg) with `workers` workers (0: all); a failure is reported on st. */
int gr_bench_run_runtime(gr_bench_state *st, int (*fn)(void *arg), void *arg, unsigned workers);
/* io_uring_queue_init_params with the runtime's ring flags, then plainer ones. */
int gr_bench_raw_ring_init(struct io_uring *ring);

#define GR_BENCH_CONSTRUCTOR(fn)                                                                   \
    static void fn(void) __attribute__((constructor));                                             \
    static void fn(void)

#ifdef __cplusplus
}
#endif
#endif /* GR_BENCH_H */

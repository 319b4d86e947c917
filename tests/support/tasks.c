/* Spawning tasks, trivial task functions and the end-of-test stack check. */
#include "support/support.h"

#include <stdatomic.h>
#include <stdint.h>

gr_task *gr_test_spawn(gr_task_fn fn, void *arg)
{
    gr_task *t = NULL;
    ck_assert_int_eq(gr_spawn(&t, fn, arg, NULL), 0);
    return t;
}

gr_task *gr_test_spawn_named(gr_task_fn fn, void *arg, const char *name)
{
    gr_task *t;
    gr_spawn_opts o = {.name = name};
    ck_assert_int_eq(gr_spawn(&t, fn, arg, &o), 0);
    return t;
}

int gr_test_sleep_forever(void *cleanup)
{
    _Atomic int *count = cleanup;
    int rc = gr_sleep(INT64_MAX);
    if (count)
        atomic_fetch_add(count, 1);
    return rc;
}

int gr_test_return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

/* A task that finished on another worker releases its stack just after
 * switching away, which may be a moment after its joiner resumed: that is
 * what the bounded yields are for. */
void gr_test_assert_only_main_stack(void)
{
    gr_runtime_stats st;
    for (int i = 0; i < 1000000; i++) {
        ck_assert_int_eq(gr_stats(&st), 0);
        if (st.stacks_in_use == 1)
            break;
        gr_yield();
    }
    ck_assert_uint_eq(st.stacks_in_use, 1);
    ck_assert_uint_eq(st.live_tasks, 1);
}

/* "Is / wait until a task is parked on X", observed through gr_tasks_foreach
 * (a task's wait_reason is set exactly while it is parked). */
#include "support/support.h"

#include <string.h>

struct parked_query {
    const char *name;
    const char *reason; /* NULL: any */
    int found;
};

static void parked_cb(const gr_task_info *info, void *arg)
{
    struct parked_query *q = arg;
    if (strcmp(info->name, q->name) != 0 || strcmp(info->state, "parked") != 0)
        return;
    if (q->reason && (!info->wait_reason || strcmp(info->wait_reason, q->reason) != 0))
        return;
    q->found++;
}

int gr_test_count_parked(const char *name, const char *reason)
{
    struct parked_query q = {.name = name, .reason = reason};
    ck_assert_int_ge(gr_tasks_foreach(parked_cb, &q), 1);
    return q.found;
}

int gr_test_is_parked(const char *name, const char *reason)
{
    return gr_test_count_parked(name, reason) > 0;
}

void gr_test_wait_parked_n(const char *name, const char *reason, int count)
{
    while (gr_test_count_parked(name, reason) < count)
        ck_assert_int_eq(gr_yield(), 0);
}

void gr_test_wait_parked(const char *name, const char *reason)
{
    gr_test_wait_parked_n(name, reason, 1);
}

/* gr_sleep and gr_yield: the simplest parks. */
#include <errno.h>

#include "core/task.h"
#include "core/wait.h"
#include "core/worker.h"
#include "greenring.h"

int gr_yield(void)
{
    struct gr__worker *w = gr__worker_self();
    if (!w || !w->current || w->current->no_block)
        return -EPERM;
    gr__worker_switch_out(w, GR_AFTER_YIELD);
    return 0;
}

int gr_sleep_until(int64_t deadline)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    if (deadline <= gr_now())
        return gr_yield(); /* like asyncio.sleep(0): a scheduling point */
    struct gr__wait w;
    gr__wait_prepare(&w, self);
    return gr__park(&w, "sleep", gr__interrupt_wake, deadline);
}

int gr_sleep(int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    int64_t now = gr_now();
    return gr_sleep_until(ns > GR_NO_DEADLINE - now ? GR_NO_DEADLINE : now + ns);
}

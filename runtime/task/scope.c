/* Timeout and shield scopes: a chain of records on the task's stack,
 * innermost first. Blocking calls consult it when they park
 * (core/wait.c). */
#include <errno.h>

#include "core/task.h"
#include "greenring.h"

static int enter(gr_scope *scope, int64_t deadline, unsigned char shield)
{
    if (!scope)
        return -EINVAL;
    struct gr__task *t = gr__current_task();
    if (!t)
        return -EPERM;
    scope->parent_ = t->scope;
    scope->task_ = t;
    scope->deadline_ = deadline;
    scope->shield_ = shield;
    scope->fired_ = 0;
    t->scope = scope;
    return 0;
}

int gr_scope_enter_deadline(gr_scope *scope, int64_t deadline)
{
    return enter(scope, deadline, 0);
}

int gr_scope_enter_timeout(gr_scope *scope, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    int64_t now = gr_now();
    return enter(scope, ns > GR_NO_DEADLINE - now ? GR_NO_DEADLINE : now + ns, 0);
}

int gr_scope_enter_shield(gr_scope *scope)
{
    return enter(scope, GR_NO_DEADLINE, 1);
}

static int owned_by_caller(gr_scope *scope)
{
    struct gr__task *t = gr__current_task();
    if (!t)
        return -EPERM;
    if (!scope || scope->task_ != t)
        return -EINVAL;
    return 0;
}

int gr_scope_reschedule(gr_scope *scope, int64_t deadline)
{
    int rc = owned_by_caller(scope);
    if (rc < 0)
        return rc;
    scope->deadline_ = deadline;
    scope->fired_ = 0;
    return 0;
}

int gr_scope_leave(gr_scope *scope)
{
    int rc = owned_by_caller(scope);
    if (rc < 0)
        return rc;
    struct gr__task *t = scope->task_;
    if (t->scope != scope)
        return -EINVAL;
    t->scope = scope->parent_;
    scope->task_ = NULL;
    return scope->fired_;
}

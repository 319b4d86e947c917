#include "support/waiters.h"

#include "greenring.h"

int gr_test_waiters(gr_spin_ *lock, gr__waitq *q)
{
    int n = 0;
    gr__sync_lock(lock);
    for (struct gr_wnode_ *w = q->head_; w; w = w->next)
        n++;
    gr__sync_unlock(lock);
    return n;
}

void gr_test_wait_waiters(gr_spin_ *lock, gr__waitq *q, int n)
{
    while (gr_test_waiters(lock, q) < n)
        gr_yield();
}

/* Waiters queued in a sync object's wait list, counted under the object's
 * lock (internal headers: a test looks at the queue a waiter joins before
 * it parks). For the suites of runtime/sync objects. */
#ifndef GR_TESTS_SUPPORT_WAITERS_H
#define GR_TESTS_SUPPORT_WAITERS_H

#include "sync/spinlock.h"
#include "sync/waitq.h"

/* Number of waiters linked in q, counted while holding lock. */
int gr_test_waiters(gr_spin_ *lock, gr__waitq *q);

/* Yields until at least n waiters are linked in q (counted under lock). */
void gr_test_wait_waiters(gr_spin_ *lock, gr__waitq *q, int n);

#endif

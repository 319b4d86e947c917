/* Provided-buffer rings, one per worker ring.
 *
 * A multishot recv picks a buffer from a ring of buffers registered with
 * the io_uring it runs on, so each worker needs its own. The ring is set
 * up lazily, on the worker's own thread, the first time a stream arms a
 * multishot recv there, and freed when the worker thread exits (a
 * thread-specific-data destructor: the worker's io_uring, which the kernel
 * side of the registration belongs to, is gone by then). Buffers are only
 * borrowed for the time it takes a completion to copy them into a stream's
 * buffer, so a few hundred serve any number of connections. */
#ifndef GR_NET_BUFRING_H
#define GR_NET_BUFRING_H

#include <stddef.h>

struct gr__worker;

/* The buffer group id used on every worker ring. */
#define GR__BUFRING_BGID 0x4752

struct gr__bufring;

/* The calling worker's ring (w must be the calling thread's worker),
 * created on first use. NULL if the kernel cannot do it (the caller falls
 * back to single-shot receives). */
struct gr__bufring *gr__bufring_get(struct gr__worker *w);
/* The calling worker's ring if it has one (completions of multishot
 * receives, which only exist once it has). */
struct gr__bufring *gr__bufring_self(void);
/* Buffer `bid` of the ring. */
const char *gr__bufring_data(struct gr__bufring *br, unsigned bid);
/* Give buffer `bid` back to the kernel (on the owning worker's thread). */
void gr__bufring_recycle(struct gr__bufring *br, unsigned bid);

#endif

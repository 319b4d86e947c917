/* A ring buffer of fixed-size elements, the storage of channels and
 * queues. Grows by doubling when asked to (unbounded channels and queues);
 * a bounded user allocates its capacity once. Not synchronised: the owning
 * object's lock protects it. */
#ifndef GR_SYNC_ERING_H
#define GR_SYNC_ERING_H

#include <stddef.h>

struct gr__ering {
    char *buf;
    size_t esize; /* bytes per element */
    size_t cap;   /* elements allocated */
    size_t head;  /* index of the first element */
    size_t len;   /* elements stored */
};

/* cap elements preallocated (0: none yet). -ENOMEM, -EINVAL (overflow). */
int gr__ering_init(struct gr__ering *r, size_t esize, size_t cap);
void gr__ering_destroy(struct gr__ering *r);
/* The i-th element from the head (i < len). */
void *gr__ering_at(const struct gr__ering *r, size_t i);
/* Append a copy of *elem, growing when full. 0 or -ENOMEM. */
int gr__ering_push_back(struct gr__ering *r, const void *elem);
/* Remove the first / last element into *out (NULL: drop). len > 0. */
void gr__ering_pop_front(struct gr__ering *r, void *out);
void gr__ering_pop_back(struct gr__ering *r, void *out);

#endif

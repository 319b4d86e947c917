/* Name resolution: getaddrinfo blocks, so it runs on the offload pool
 * (gr_offload) while the task is parked. The request lives on the heap: a
 * task that is interrupted leaves at once, and the pool frees the request
 * (lookup_release) once getaddrinfo returns. */
#include "net/resolve.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/task.h"
#include "core/wait.h"
#include "net/addr.h"

struct lookup {
    /* input */
    char *host;
    char service[8];
    int socktype, passive;
    /* output */
    int rc;
    size_t n;
    gr_addr addrs[GR__RESOLVE_MAX];
};

static int map_gai_error(int e, int saved_errno)
{
    switch (e) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_FAMILY:
    case EAI_ADDRFAMILY:
        return -EAFNOSUPPORT;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_SYSTEM:
        return saved_errno > 0 ? -saved_errno : -EIO;
    default:
        return -EIO;
    }
}

/* Runs on a pool thread: plain blocking code, errno is its own. */
static void *lookup_run(void *arg)
{
    struct lookup *lk = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = lk->socktype,
                             .ai_flags = AI_NUMERICSERV | (lk->passive ? AI_PASSIVE : 0)};
    struct addrinfo *res = NULL;
    int e = getaddrinfo(lk->host, lk->service, &hints, &res);
    if (e) {
        lk->rc = map_gai_error(e, errno);
        return lk;
    }
    for (struct addrinfo *ai = res; ai && lk->n < GR__RESOLVE_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(lk->addrs[0].u))
            continue;
        memset(&lk->addrs[lk->n], 0, sizeof(lk->addrs[0]));
        memcpy(&lk->addrs[lk->n].u, ai->ai_addr, ai->ai_addrlen);
        lk->addrs[lk->n].len = ai->ai_addrlen;
        lk->n++;
    }
    freeaddrinfo(res);
    lk->rc = lk->n ? 0 : -ENOENT;
    return lk;
}

static void lookup_free(struct lookup *lk)
{
    free(lk->host);
    free(lk);
}

/* The task stopped waiting: the pool hands the request back here. */
static void lookup_release(void *arg, void *result)
{
    (void)result;
    lookup_free(arg);
}

/* The one place that knows how blocking work leaves the workers. 0: done
 * (lk is the caller's again); < 0: not run, or interrupted (then the pool
 * owns lk and frees it: *abandoned = 1). The caller checked for interrupts
 * just before: gr_offload calls release only for a job it queued, so an
 * interrupt arriving between that check and gr_offload's own would leave
 * lk to nobody (a small leak, in a window of a few instructions). */
static int offload(struct lookup *lk, int *abandoned)
{
    int rc = gr_offload(lookup_run, lk, lookup_release, NULL);
    *abandoned = rc == -ECANCELED || rc == -ETIMEDOUT;
    return rc;
}

static int resolve_name(const char *host, uint16_t port, int socktype, int passive,
                        gr_addr *out, size_t n)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    struct lookup *lk = calloc(1, sizeof(*lk));
    if (!lk)
        return -ENOMEM;
    lk->host = host && host[0] ? strdup(host) : NULL;
    if (host && host[0] && !lk->host) {
        free(lk);
        return -ENOMEM;
    }
    snprintf(lk->service, sizeof(lk->service), "%u", (unsigned)port);
    lk->socktype = socktype;
    lk->passive = passive;
    int abandoned;
    rc = offload(lk, &abandoned);
    if (abandoned)
        return rc;
    if (rc == 0 && (rc = lk->rc) == 0) {
        rc = (int)(lk->n < n ? lk->n : n);
        memcpy(out, lk->addrs, (size_t)rc * sizeof(*out));
    }
    lookup_free(lk);
    return rc;
}

int gr__resolve(const char *host, uint16_t port, int socktype, int passive, gr_addr *out,
                size_t n)
{
    if (!out || n == 0 || (socktype != SOCK_STREAM && socktype != SOCK_DGRAM))
        return -EINVAL;
    int numeric = gr__addr_numeric(&out[0], host, port);
    if (numeric)
        return numeric < 0 ? numeric : 1;
    return resolve_name(host, port, socktype, passive, out, n);
}

int gr_resolve(const char *host, uint16_t port, int socktype, gr_addr *out, size_t n)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self); /* numeric hosts too: level-triggered */
    if (rc < 0)
        return rc;
    return gr__resolve(host, port, socktype, !host || !host[0], out, n);
}

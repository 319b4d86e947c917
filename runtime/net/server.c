/* Servers: asyncio.start_server over multishot accept.
 *
 * An acceptor task arms one multishot accept on the ring of the worker it
 * runs on. The accept's completions run on that worker and queue the new
 * fds in the server (under `lock`), waking the acceptor, which may have
 * migrated to another worker since (gr__wake delivers through the worker
 * it is parked on). The acceptor wraps each fd in a stream and spawns a
 * handler task for it into the server's task group.
 *
 * The multishot ends on an error (EMFILE...), when the queue grows past
 * QUEUE_HIGH (nobody takes connections: the rest stay in the kernel's
 * backlog), when the connection limit is reached, and at close; the
 * acceptor arms it again on whatever worker it then runs on. Stopping it
 * from another worker goes through a cancel request delivered to the
 * arming worker (net/remote.h), and the server is not freed before the
 * multishot's last CQE and that request have both been handled. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "core/attrs.h"
#include "core/io_op.h"
#include "core/spinlock.h"
#include "core/task.h"
#include "core/worker.h"
#include "greenring.h"
#include "net/remote.h"
#include "net/socket.h"
#include "net/stream.h"
#include "core/syscall.h"

/* Stop accepting while this many connections wait for the acceptor. */
#define QUEUE_HIGH 64u
/* After EMFILE and friends, accept again after a connection closes or
 * after this long (another part of the process may free fds). */
#define RESOURCE_RETRY_NS ((int64_t)100 * 1000 * 1000)

struct swaiter {
    struct gr__wait wait;
    struct swaiter *next;
    gr_server *srv;
};

struct gr_server {
    int fd;
    int tcp;
    gr_conn_fn fn;
    void *arg;
    gr_server_opts opts;
    gr_group *group;
    gr_task *acceptor;
    char *unix_path; /* unlinked at close (the server created it) */

    gr__spinlock lock;
    /* Accepted fds waiting for the acceptor: a ring of qcap entries. */
    int *queue;
    size_t qhead, qlen, qcap;
    int armed;          /* a multishot accept is in flight on accept_worker */
    int accept_err;     /* how the last multishot ended, if it failed */
    int cancel_pending; /* cancel_req has not run yet */
    struct gr__worker *accept_worker;
    struct gr__wait *acceptor_wait; /* the acceptor, parked */
    size_t conns;
    uint64_t accepted;
    uint64_t closes; /* handler exits, for the EMFILE back-off */
    int closing;
    unsigned waiting;              /* tasks inside gr_server_wait */
    struct swaiter *waiters;
    struct gr__wait *closer_wait;  /* close, waiting for `waiting` to reach 0 */
    struct gr__completion accept_done;
    struct gr__remote cancel_req;
};

/* Locked. The acceptor's wait record, if it must be woken (after unlock). */
static struct gr__wait *kick(gr_server *srv)
{
    struct gr__wait *w = srv->acceptor_wait;
    srv->acceptor_wait = NULL;
    return w;
}

static void wake(struct gr__wait *w)
{
    if (w)
        gr__wake(w, 0);
}

/* =====================================================================
 * Accept queue and the multishot accept
 * ===================================================================== */

static int queue_push(gr_server *srv, int fd)
{
    if (srv->qlen == srv->qcap) {
        size_t cap = srv->qcap ? srv->qcap * 2 : 16;
        int *q = malloc(cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        for (size_t i = 0; i < srv->qlen; i++)
            q[i] = srv->queue[(srv->qhead + i) % srv->qcap];
        free(srv->queue);
        srv->queue = q;
        srv->qcap = cap;
        srv->qhead = 0;
    }
    srv->queue[(srv->qhead + srv->qlen) % srv->qcap] = fd;
    srv->qlen++;
    return 0;
}

static int queue_pop(gr_server *srv)
{
    int fd = srv->queue[srv->qhead];
    srv->qhead = (srv->qhead + 1) % srv->qcap;
    srv->qlen--;
    return fd;
}

/* Runs on accept_worker for every CQE of the multishot. */
static void accept_complete(struct gr__worker *w, struct gr__completion *c, int32_t res,
                            uint32_t flags)
{
    gr_server *srv = GR_CONTAINER_OF(c, gr_server, accept_done);
    int more = !!(flags & IORING_CQE_F_MORE);
    gr__spin_lock(&srv->lock);
    if (res >= 0 && queue_push(srv, res) < 0)
        gr__sock_close_now(res); /* out of memory: refuse this one */
    else if (res >= 0)
        srv->accepted++;
    if (!more) {
        srv->armed = 0;
        srv->accept_err = res < 0 ? res : 0;
    }
    int stop = more && srv->qlen >= QUEUE_HIGH && !srv->cancel_pending;
    struct gr__wait *acceptor = kick(srv);
    gr__spin_unlock(&srv->lock);
    /* Still armed, so srv stays allocated until the final CQE. */
    if (stop)
        gr__remote_cancel_local(w, &srv->accept_done);
    wake(acceptor);
}

static void arm(gr_server *srv, struct gr__worker *w)
{
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    gr__spin_lock(&srv->lock);
    srv->armed = 1;
    srv->accept_err = 0;
    srv->accept_worker = w;
    gr__spin_unlock(&srv->lock);
    io_uring_prep_multishot_accept(sqe, srv->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, &srv->accept_done);
}

/* On accept_worker: cancel the multishot if it is still armed there. */
static void cancel_on_owner(struct gr__worker *w, struct gr__remote *r)
{
    gr_server *srv = GR_CONTAINER_OF(r, gr_server, cancel_req);
    struct io_uring_sqe *sqe = gr__worker_sqe(w); /* before the lock: may reap */
    gr__spin_lock(&srv->lock);
    int live = srv->armed && srv->accept_worker == w;
    srv->cancel_pending = 0;
    struct gr__wait *acceptor = kick(srv);
    gr__spin_unlock(&srv->lock);
    if (live)
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&srv->accept_done, 0);
    else
        io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    wake(acceptor);
}

/* Ask the arming worker to end the multishot (the acceptor then sees
 * armed == 0). */
static void disarm(gr_server *srv)
{
    gr__spin_lock(&srv->lock);
    int cancel = srv->armed && !srv->cancel_pending;
    srv->cancel_pending |= cancel;
    struct gr__worker *owner = srv->accept_worker;
    gr__spin_unlock(&srv->lock);
    if (cancel)
        gr__remote_run(&srv->cancel_req, owner, cancel_on_owner);
}

/* =====================================================================
 * The acceptor task
 * ===================================================================== */

static void acceptor_interrupt(struct gr__wait *w, int reason)
{
    gr_server *srv = GR_CONTAINER_OF(w, struct swaiter, wait)->srv;
    gr__spin_lock(&srv->lock);
    int mine = srv->acceptor_wait == w;
    if (mine)
        srv->acceptor_wait = NULL;
    gr__spin_unlock(&srv->lock);
    if (mine)
        gr__wake(w, reason);
}

static void ignore_interrupt(struct gr__wait *w, int reason)
{
    (void)w;
    (void)reason;
}

typedef int (*cond_fn)(gr_server *srv, const void *arg);

/* Park until cond holds (checked under the lock, again after every kick),
 * the deadline passes (returns 0) or, if interruptible, an interrupt. */
static int acceptor_wait(gr_server *srv, cond_fn cond, const void *arg, int64_t deadline,
                         int interruptible)
{
    struct gr__task *self = gr__current_task();
    for (;;) {
        struct swaiter sw = {.srv = srv};
        gr__wait_prepare(&sw.wait, self);
        gr__spin_lock(&srv->lock);
        int done = cond(srv, arg);
        if (!done)
            srv->acceptor_wait = &sw.wait;
        gr__spin_unlock(&srv->lock);
        if (done)
            return 0;
        int rc = gr__park(&sw.wait, "server accept",
                          interruptible ? acceptor_interrupt : ignore_interrupt, deadline);
        if (rc < 0 || gr_now() >= deadline)
            return rc;
    }
}

static int has_slot(gr_server *srv, const void *arg)
{
    (void)arg;
    return !srv->opts.max_connections || srv->conns < srv->opts.max_connections;
}

static int has_conn_or_ended(gr_server *srv, const void *arg)
{
    (void)arg;
    return srv->qlen > 0 || !srv->armed;
}

static int closed_since(gr_server *srv, const void *arg)
{
    return srv->closes != *(const uint64_t *)arg;
}

static int multishot_gone(gr_server *srv, const void *arg)
{
    (void)arg;
    return !srv->armed && !srv->cancel_pending;
}

/* The next accepted fd, arming the multishot when needed; or the error
 * that ended the multishot; or an interrupt. */
static int next_conn(gr_server *srv)
{
    for (;;) {
        gr__spin_lock(&srv->lock);
        int fd = srv->qlen ? queue_pop(srv) : -EAGAIN;
        int armed = srv->armed;
        int err = srv->accept_err;
        srv->accept_err = 0;
        gr__spin_unlock(&srv->lock);
        if (fd >= 0)
            return fd;
        if (err && err != -ECANCELED)
            return err;
        if (!armed)
            arm(srv, gr__worker_self());
        int rc = acceptor_wait(srv, has_conn_or_ended, NULL, GR_NO_DEADLINE, 1);
        if (rc < 0)
            return rc;
    }
}

static int resource_error(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

/* Errors of one connection (it was reset before being accepted...):
 * accept the next one. */
static int transient_error(int err)
{
    return err == -ECONNABORTED || err == -EPERM || err == -EPROTO || err == -EINTR ||
           err == -EAGAIN || err == -ENETDOWN || err == -ENOPROTOOPT || err == -EHOSTDOWN ||
           err == -ENONET || err == -EHOSTUNREACH || err == -EOPNOTSUPP || err == -ENETUNREACH;
}

/* Out of fds: the multishot has ended; accept again when one of our
 * connections closes, or after RESOURCE_RETRY_NS. */
static int back_off(gr_server *srv)
{
    gr__spin_lock(&srv->lock);
    uint64_t closes = srv->closes;
    gr__spin_unlock(&srv->lock);
    return acceptor_wait(srv, closed_since, &closes, gr_now() + RESOURCE_RETRY_NS, 1);
}

static int conn_main(void *arg);

static void spawn_handler(gr_server *srv, int fd)
{
    gr_stream *s;
    if (gr__stream_open_socket(&s, fd, srv->tcp, &srv->opts.stream) < 0)
        return; /* fd closed */
    gr__stream_set_owner(s, srv);
    gr__spin_lock(&srv->lock);
    srv->conns++;
    gr__spin_unlock(&srv->lock);
    gr_spawn_opts so = {.name = "conn", .stack_size = srv->opts.stack_size};
    if (gr_group_spawn(srv->group, conn_main, s, &so) == 0)
        return;
    gr__spin_lock(&srv->lock);
    srv->conns--;
    gr__spin_unlock(&srv->lock);
    gr_stream_abort(s);
}

/* Wait for a free connection slot; stop the multishot meanwhile, so that
 * connections beyond the limit stay in the kernel's backlog. */
static int wait_slot(gr_server *srv)
{
    gr__spin_lock(&srv->lock);
    int full = !has_slot(srv, NULL);
    gr__spin_unlock(&srv->lock);
    if (!full)
        return 0;
    disarm(srv);
    return acceptor_wait(srv, has_slot, NULL, GR_NO_DEADLINE, 1);
}

static int accept_loop(gr_server *srv)
{
    for (;;) {
        int rc = wait_slot(srv);
        if (rc < 0)
            return rc;
        int fd = next_conn(srv);
        if (fd >= 0) {
            spawn_handler(srv, fd);
            continue;
        }
        if (fd == -ECANCELED || fd == -ETIMEDOUT)
            return fd;
        if (resource_error(fd) && (rc = back_off(srv)) < 0)
            return rc;
        if (!resource_error(fd) && !transient_error(fd))
            return fd; /* the listening socket is broken: stop accepting */
    }
}

/* Cancelled (close): end the multishot, close what was accepted and not
 * served. Not interruptible: the server is freed after this. */
static void acceptor_cleanup(gr_server *srv)
{
    disarm(srv);
    acceptor_wait(srv, multishot_gone, NULL, GR_NO_DEADLINE, 0);
    gr__spin_lock(&srv->lock);
    while (srv->qlen)
        gr__sock_close_now(queue_pop(srv));
    gr__spin_unlock(&srv->lock);
}

static int acceptor_main(void *arg)
{
    gr_server *srv = arg;
    int rc = accept_loop(srv);
    acceptor_cleanup(srv);
    return rc == -ECANCELED ? 0 : rc;
}

/* =====================================================================
 * Connections
 * ===================================================================== */

static int conn_main(void *arg)
{
    gr_stream *s = arg;
    gr_server *srv = gr__stream_owner(s);
    int rc = srv->fn(s, srv->arg);
    if (rc >= 0)
        gr_stream_close(s);
    else
        gr_stream_abort(s);
    gr__spin_lock(&srv->lock);
    srv->conns--;
    srv->closes++;
    struct gr__wait *acceptor = kick(srv);
    gr__spin_unlock(&srv->lock);
    wake(acceptor);
    return 0; /* a handler's error ends its own connection only */
}

/* =====================================================================
 * Life cycle
 * ===================================================================== */

static int check_listener(int fd)
{
    int listening = 0;
    socklen_t len = sizeof(listening);
    int rc = (int)gr__sys(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (rc < 0)
        return rc;
    return listening ? 0 : -EINVAL;
}

static void server_free(gr_server *srv)
{
    if (srv->group)
        gr_group_destroy(srv->group);
    free(srv->queue);
    free(srv->unix_path);
    free(srv);
}

int gr_server_start(gr_server **out, int listen_fd, gr_conn_fn fn, void *arg,
                    const gr_server_opts *opts)
{
    if (listen_fd < 0)
        return -EBADF;
    int rc = check_listener(listen_fd);
    if (rc == 0 && (!out || !fn ||
                    (opts && (gr__stream_opts_check(&opts->stream) < 0 ||
                              (opts->stack_size && opts->stack_size < GR_MIN_STACK_SIZE)))))
        rc = -EINVAL;
    gr_server *srv = rc == 0 ? calloc(1, sizeof(*srv)) : NULL;
    if (rc == 0 && !srv)
        rc = -ENOMEM;
    if (rc < 0) {
        gr__sock_close_now(listen_fd);
        return rc;
    }
    srv->fd = listen_fd;
    srv->tcp = gr__sock_is_tcp(listen_fd);
    srv->fn = fn;
    srv->arg = arg;
    if (opts)
        srv->opts = *opts;
    srv->accept_done.fn = accept_complete;
    gr_spawn_opts so = {.name = "acceptor"};
    if ((rc = gr_group_create(&srv->group)) < 0 ||
        (rc = gr_spawn(&srv->acceptor, acceptor_main, srv, &so)) < 0) {
        gr__sock_close_now(listen_fd);
        server_free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

int gr_start_server(gr_server **out, const char *host, uint16_t port, gr_conn_fn fn, void *arg,
                    const gr_server_opts *opts)
{
    int fd = gr_listen_tcp(host, port, opts ? &opts->listen : NULL);
    return fd < 0 ? fd : gr_server_start(out, fd, fn, arg, opts);
}

int gr_start_unix_server(gr_server **out, const char *path, gr_conn_fn fn, void *arg,
                         const gr_server_opts *opts)
{
    int fd = gr_listen_unix(path, opts ? &opts->listen : NULL);
    if (fd < 0)
        return fd;
    char *copy = path[0] == '@' ? NULL : strdup(path);
    int rc = gr_server_start(out, fd, fn, arg, opts);
    if (rc == 0)
        (*out)->unix_path = copy;
    else
        free(copy);
    return rc;
}

int gr_server_addr(gr_server *srv, gr_addr *out)
{
    return srv ? gr_sock_name(srv->fd, out) : -EINVAL;
}

size_t gr_server_connections(gr_server *srv)
{
    if (!srv)
        return 0;
    gr__spin_lock(&srv->lock);
    size_t n = srv->conns;
    gr__spin_unlock(&srv->lock);
    return n;
}

uint64_t gr_server_accepted(gr_server *srv)
{
    if (!srv)
        return 0;
    gr__spin_lock(&srv->lock);
    uint64_t n = srv->accepted;
    gr__spin_unlock(&srv->lock);
    return n;
}

/* ---- gr_server_wait ------------------------------------------------- */

static void waiter_interrupt(struct gr__wait *w, int reason)
{
    struct swaiter *sw = GR_CONTAINER_OF(w, struct swaiter, wait);
    gr_server *srv = sw->srv;
    int found = 0;
    gr__spin_lock(&srv->lock);
    for (struct swaiter **pp = &srv->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == sw) {
            *pp = sw->next;
            found = 1;
            break;
        }
    }
    gr__spin_unlock(&srv->lock);
    if (found)
        gr__wake(w, reason);
}

int gr_server_wait(gr_server *srv)
{
    if (!srv)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    struct swaiter sw = {.srv = srv};
    gr__wait_prepare(&sw.wait, self);
    gr__spin_lock(&srv->lock);
    int closed = srv->closing;
    if (!closed) {
        sw.next = srv->waiters;
        srv->waiters = &sw;
        srv->waiting++;
    }
    gr__spin_unlock(&srv->lock);
    if (closed)
        return 0;
    rc = gr__park(&sw.wait, "server wait", waiter_interrupt, GR_NO_DEADLINE);
    gr__spin_lock(&srv->lock);
    struct gr__wait *closer = --srv->waiting == 0 ? srv->closer_wait : NULL;
    if (closer)
        srv->closer_wait = NULL;
    gr__spin_unlock(&srv->lock);
    wake(closer);
    return rc;
}

/* Wake every gr_server_wait and wait until they have all left. */
static void release_waiters(gr_server *srv, struct gr__task *self)
{
    struct gr__wait w;
    gr__wait_prepare(&w, self);
    gr__spin_lock(&srv->lock);
    srv->closing = 1;
    struct swaiter *list = srv->waiters;
    srv->waiters = NULL;
    int must = srv->waiting > 0;
    if (must)
        srv->closer_wait = &w;
    gr__spin_unlock(&srv->lock);
    while (list) {
        struct swaiter *next = list->next;
        gr__wake(&list->wait, 0);
        list = next;
    }
    if (must)
        gr__park(&w, "server close", ignore_interrupt, GR_NO_DEADLINE);
}

/* ---- gr_server_close ------------------------------------------------ */

static int wait_handlers(gr_server *srv, int64_t grace_ns)
{
    if (grace_ns == 0) {
        gr_group_cancel(srv->group);
        gr_group_wait(srv->group);
        return 0;
    }
    if (grace_ns == GR_NO_DEADLINE)
        return gr_group_wait(srv->group);
    gr_scope deadline;
    gr_scope_enter_timeout(&deadline, grace_ns);
    int rc = gr_group_wait(srv->group);
    gr_scope_leave(&deadline);
    return rc == -ETIMEDOUT ? rc : 0;
}

int gr_server_close(gr_server *srv, int64_t grace_ns)
{
    if (!srv || grace_ns < 0)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self)
        return -EPERM;
    if (self->group == srv->group)
        return -EDEADLK; /* a handler cannot wait for itself */
    /* Shielded: a cancelled caller (graceful shutdown cancels main) still
     * stops accepting, gives the handlers their grace period and frees
     * the server. */
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    release_waiters(srv, self);
    gr_cancel(srv->acceptor);
    gr_join(srv->acceptor);
    gr_close(srv->fd);
    if (srv->unix_path)
        gr__sys(SYS_unlinkat, AT_FDCWD, srv->unix_path, 0);
    int rc = wait_handlers(srv, grace_ns);
    gr_scope_leave(&shield);
    server_free(srv);
    return rc;
}

/* Sockets: creation, binding and options are direct system calls (they
 * never wait); accept, connect, send, recv and shutdown are io_uring
 * operations of the calling worker. */
#include "net/socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/stat.h>

#include "core/io_op.h"
#include "core/task.h"
#include "core/worker.h"
#include "net/addr.h"
#include "net/resolve.h"
#include "core/syscall.h"

/* io_uring takes 32-bit lengths; longer calls are short transfers. */
#define MAX_IO_LEN 0x7ffff000u

static unsigned clamp_len(size_t len)
{
    return len > MAX_IO_LEN ? MAX_IO_LEN : (unsigned)len;
}

/* ---------------------------------------------------------------------
 * Direct system calls
 * --------------------------------------------------------------------- */

int gr__sock_new(int family, int type)
{
    return (int)gr__sys(SYS_socket, family, type | SOCK_CLOEXEC, 0);
}

void gr__sock_close_now(int fd)
{
    gr__sys(SYS_close, fd);
}

static int set_int(int fd, int level, int name, int value)
{
    return (int)gr__sys(SYS_setsockopt, fd, level, name, &value, sizeof(value));
}

static int get_int(int fd, int level, int name, int *value)
{
    socklen_t len = sizeof(*value);
    return (int)gr__sys(SYS_getsockopt, fd, level, name, value, &len);
}

int gr__sock_is_socket(int fd)
{
    int type;
    int rc = get_int(fd, SOL_SOCKET, SO_TYPE, &type);
    if (rc == -ENOTSOCK)
        return 0;
    return rc < 0 ? rc : 1;
}

int gr__sock_type(int fd)
{
    int type;
    int rc = get_int(fd, SOL_SOCKET, SO_TYPE, &type);
    if (rc == -ENOTSOCK)
        return 0;
    return rc < 0 ? rc : type;
}

int gr__sock_is_tcp(int fd)
{
    int type, domain;
    if (get_int(fd, SOL_SOCKET, SO_TYPE, &type) < 0 ||
        get_int(fd, SOL_SOCKET, SO_DOMAIN, &domain) < 0)
        return 0;
    return type == SOCK_STREAM && (domain == AF_INET || domain == AF_INET6);
}

int gr_sock_nodelay(int fd, int on)
{
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, !!on);
}

int gr_sock_keepalive(int fd, int on, int idle_s, int interval_s, int count)
{
    if (idle_s < 0 || interval_s < 0 || count < 0)
        return -EINVAL;
    int rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, !!on);
    if (rc == 0 && on && idle_s)
        rc = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
    if (rc == 0 && on && interval_s)
        rc = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s);
    if (rc == 0 && on && count)
        rc = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
    return rc;
}

static int sock_addr(long nr, int fd, gr_addr *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->len = sizeof(out->u);
    return (int)gr__sys(nr, fd, &out->u.sa, &out->len);
}

int gr_sock_name(int fd, gr_addr *out)
{
    return sock_addr(SYS_getsockname, fd, out);
}

int gr_sock_peer(int fd, gr_addr *out)
{
    return sock_addr(SYS_getpeername, fd, out);
}

/* ---------------------------------------------------------------------
 * Binding and listening
 * --------------------------------------------------------------------- */

/* asyncio removes a stale socket file before binding a Unix server; any
 * other kind of file is left alone (bind then fails with EADDRINUSE). */
static void remove_stale_unix(const gr_addr *a)
{
    const char *path = a->u.un.sun_path;
    struct stat st;
    if (path[0] == '\0') /* abstract: no file */
        return;
    if (gr__sys(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0 && S_ISSOCK(st.st_mode))
        gr__sys(SYS_unlinkat, AT_FDCWD, path, 0);
}

static int apply_listen_opts(int fd, int family, const gr_listen_opts *o)
{
    int rc = 0;
    if (family != AF_UNIX && !o->no_reuseaddr)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && o->reuseport)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && family == AF_INET6)
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, !!o->v6only);
    return rc;
}

int gr_socket_bind(const gr_addr *a, int type, const gr_listen_opts *opts)
{
    static const gr_listen_opts defaults;
    const gr_listen_opts *o = opts ? opts : &defaults;
    if (!a || a->len == 0 || o->backlog < 0 || (type != SOCK_STREAM && type != SOCK_DGRAM))
        return -EINVAL;
    int family = a->u.sa.sa_family;
    int fd = gr__sock_new(family, type);
    if (fd < 0)
        return fd;
    int rc = apply_listen_opts(fd, family, o);
    if (rc == 0 && family == AF_UNIX)
        remove_stale_unix(a);
    if (rc == 0)
        rc = (int)gr__sys(SYS_bind, fd, &a->u.sa, a->len);
    if (rc == 0 && type == SOCK_STREAM)
        rc = (int)gr__sys(SYS_listen, fd, o->backlog ? o->backlog : SOMAXCONN);
    if (rc < 0) {
        gr__sock_close_now(fd);
        return rc;
    }
    return fd;
}

/* Bind the first address that works; the first error if none does. */
static int bind_first(const gr_addr *addrs, int n, int type, const gr_listen_opts *opts)
{
    int first = -EADDRNOTAVAIL;
    for (int i = 0; i < n; i++) {
        int fd = gr_socket_bind(&addrs[i], type, opts);
        if (fd >= 0)
            return fd;
        if (i == 0)
            first = fd;
    }
    return first;
}

/* All interfaces: "::" accepts IPv4 too (dual stack) unless v6only; hosts
 * without IPv6 fall back to 0.0.0.0. */
static int bind_any(uint16_t port, int type, const gr_listen_opts *opts)
{
    gr_addr a;
    gr_addr_ip(&a, "::", port);
    int fd = gr_socket_bind(&a, type, opts);
    if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)
        return fd;
    gr_addr_ip(&a, "0.0.0.0", port);
    return gr_socket_bind(&a, type, opts);
}

static int bind_host(const char *host, uint16_t port, int type, const gr_listen_opts *opts)
{
    if (!host || !host[0])
        return bind_any(port, type, opts);
    gr_addr addrs[GR__RESOLVE_MAX];
    int n = gr__resolve(host, port, type, 1, addrs, GR__RESOLVE_MAX);
    if (n < 0)
        return n;
    return bind_first(addrs, n, type, opts);
}

int gr_listen_tcp(const char *host, uint16_t port, const gr_listen_opts *opts)
{
    return bind_host(host, port, SOCK_STREAM, opts);
}

int gr_udp_bind(const char *host, uint16_t port, const gr_listen_opts *opts)
{
    return bind_host(host, port, SOCK_DGRAM, opts);
}

int gr_listen_unix(const char *path, const gr_listen_opts *opts)
{
    gr_addr a;
    int rc = gr_addr_unix(&a, path);
    return rc < 0 ? rc : gr_socket_bind(&a, SOCK_STREAM, opts);
}

/* ---------------------------------------------------------------------
 * io_uring operations
 * --------------------------------------------------------------------- */

int gr__net_wait(struct gr__io_op *io, struct io_uring_sqe *sqe, const char *reason)
{
    int rc = gr__io_wait(io, sqe, reason);
    if (rc == -EINTR && io->wait.interrupt)
        rc = io->wait.interrupt;
    return rc;
}

int gr_accept(int listen_fd, gr_addr *peer)
{
    if (listen_fd < 0)
        return -EBADF;
    gr_addr tmp;
    gr_addr *a = peer ? peer : &tmp;
    memset(a, 0, sizeof(*a));
    a->len = sizeof(a->u);
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_accept(sqe, listen_fd, &a->u.sa, &a->len, SOCK_CLOEXEC);
    return gr__net_wait(&io, sqe, "net accept");
}

int gr_connect(int fd, const gr_addr *a)
{
    if (fd < 0)
        return -EBADF;
    if (!a || a->len == 0)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_connect(sqe, fd, &a->u.sa, a->len);
    return gr__net_wait(&io, sqe, "net connect");
}

int gr_connect_addrs(const gr_addr *addrs, size_t n, int type, size_t *which)
{
    if (!addrs || n == 0 || (type != SOCK_STREAM && type != SOCK_DGRAM))
        return -EINVAL;
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        struct gr__task *self;
        int rc = gr__blocking_check(&self);
        if (rc < 0)
            return rc;
        int fd = gr__sock_new(addrs[i].u.sa.sa_family, type);
        rc = fd < 0 ? fd : gr_connect(fd, &addrs[i]);
        if (rc == 0) {
            if (which)
                *which = i;
            return fd;
        }
        if (fd >= 0)
            gr__sock_close_now(fd);
        if (!first)
            first = rc;
    }
    return first;
}

int gr_connect_tcp(const char *host, uint16_t port)
{
    if (!host || !host[0])
        return -EINVAL;
    gr_addr addrs[GR__RESOLVE_MAX];
    int n = gr__resolve(host, port, SOCK_STREAM, 0, addrs, GR__RESOLVE_MAX);
    if (n < 0)
        return n;
    return gr_connect_addrs(addrs, (size_t)n, SOCK_STREAM, NULL);
}

int gr_connect_unix(const char *path)
{
    gr_addr a;
    int rc = gr_addr_unix(&a, path);
    return rc < 0 ? rc : gr_connect_addrs(&a, 1, SOCK_STREAM, NULL);
}

ssize_t gr_send(int fd, const void *buf, size_t len, int flags)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && len)
        return -EFAULT;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_send(sqe, fd, buf, clamp_len(len), flags | MSG_NOSIGNAL);
    return gr__net_wait(&io, sqe, "net send");
}

ssize_t gr_recv(int fd, void *buf, size_t len, int flags)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && len)
        return -EFAULT;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_recv(sqe, fd, buf, clamp_len(len), flags);
    return gr__net_wait(&io, sqe, "net recv");
}

ssize_t gr_sendto(int fd, const void *buf, size_t len, int flags, const gr_addr *to)
{
    if (!to)
        return gr_send(fd, buf, len, flags);
    if (fd < 0)
        return -EBADF;
    if (!buf && len)
        return -EFAULT;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = clamp_len(len)};
    struct msghdr msg = {.msg_name = (void *)&to->u, .msg_namelen = to->len, .msg_iov = &iov,
                         .msg_iovlen = 1};
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_sendmsg(sqe, fd, &msg, (unsigned)(flags | MSG_NOSIGNAL));
    return gr__net_wait(&io, sqe, "net sendto");
}

ssize_t gr_recvfrom(int fd, void *buf, size_t len, int flags, gr_addr *from)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && len)
        return -EFAULT;
    gr_addr tmp;
    gr_addr *a = from ? from : &tmp;
    memset(a, 0, sizeof(*a));
    struct iovec iov = {.iov_base = buf, .iov_len = clamp_len(len)};
    struct msghdr msg = {.msg_name = &a->u, .msg_namelen = sizeof(a->u), .msg_iov = &iov,
                         .msg_iovlen = 1};
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_recvmsg(sqe, fd, &msg, (unsigned)flags);
    rc = gr__net_wait(&io, sqe, "net recvfrom");
    a->len = msg.msg_namelen;
    return rc;
}

int gr_shutdown(int fd, int how)
{
    if (fd < 0)
        return -EBADF;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    struct gr__io_op io;
    int rc;
    struct io_uring_sqe *sqe = gr__io_begin(&io, &rc);
    if (!sqe)
        return rc;
    io_uring_prep_shutdown(sqe, fd, how);
    return gr__net_wait(&io, sqe, "net shutdown");
}

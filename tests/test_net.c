/* greenring-test: tsan asan */
/* Sockets: addresses, TCP over IPv4 and IPv6, Unix stream and datagram
 * sockets, UDP, connect errors (refused, timeout), trying resolved
 * addresses in order, name resolution, cancellation of accept, socket
 * options, and 10,000 concurrent connections. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

#define MS ((int64_t)1000000)

static uint16_t port_of(int fd)
{
    gr_addr a;
    ck_assert_int_eq(gr_sock_name(fd, &a), 0);
    int port = gr_addr_port(&a);
    ck_assert_int_gt(port, 0);
    return (uint16_t)port;
}

/* A directory for Unix socket files, removed by the caller. */
static void temp_dir(char *buf, size_t size)
{
    snprintf(buf, size, "/tmp/greenring-net-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* ---------------------------------------------------------------------
 * Addresses
 * --------------------------------------------------------------------- */

START_TEST(addresses)
{
    gr_addr a;
    char buf[GR_ADDR_STRLEN];
    ck_assert_int_eq(gr_addr_ip(&a, "127.0.0.1", 80), 0);
    ck_assert_int_eq(gr_addr_format(&a, buf, sizeof(buf)), 12);
    ck_assert_str_eq(buf, "127.0.0.1:80");
    ck_assert_int_eq(gr_addr_port(&a), 80);
    ck_assert_int_eq(gr_addr_ip(&a, "::1", 443), 0);
    gr_addr_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[::1]:443");
    ck_assert_int_eq(gr_addr_ip(&a, "[fe80::1%lo]", 7), 0);
    gr_addr_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[fe80::1%lo]:7");
    ck_assert_int_eq(gr_addr_ip(&a, "localhost", 1), -EINVAL); /* not numeric */
    ck_assert_int_eq(gr_addr_ip(&a, "1.2.3.256", 1), -EINVAL);
    ck_assert_int_eq(gr_addr_ip(&a, "::1%nosuchif", 1), -EINVAL);
    ck_assert_int_eq(gr_addr_unix(&a, "/tmp/x.sock"), 0);
    gr_addr_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, "unix:/tmp/x.sock");
    ck_assert_int_eq(gr_addr_port(&a), -EAFNOSUPPORT);
    ck_assert_int_eq(gr_addr_unix(&a, "@abstract"), 0);
    gr_addr_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, "unix:@abstract");
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    ck_assert_int_eq(gr_addr_unix(&a, longpath), -ENAMETOOLONG);
    ck_assert_int_eq(gr_addr_unix(&a, ""), -EINVAL);
    ck_assert_int_eq(gr_addr_ip(&a, "10.0.0.1", 1), 0);
    ck_assert_int_eq(gr_addr_format(&a, buf, 5), -ENOSPC);
    ck_assert_str_eq(buf, "10.0");
}
END_TEST

/* ---------------------------------------------------------------------
 * TCP
 * --------------------------------------------------------------------- */

struct acceptor {
    int lfd;
    int fd;
    gr_addr peer;
};

static int accept_one(void *arg)
{
    struct acceptor *a = arg;
    a->fd = gr_accept(a->lfd, &a->peer);
    return a->fd < 0 ? a->fd : 0;
}

/* Client and server exchange a message over raw sockets; checks both
 * ends' addresses. */
static void exchange(const char *host, int family)
{
    int l = gr_listen_tcp(host, 0, NULL);
    ck_assert_int_ge(l, 0);
    struct acceptor acc = {.lfd = l};
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, accept_one, &acc, NULL), 0);
    int c = gr_connect_tcp(host, port_of(l));
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(gr_join(t), 0);
    gr_addr local, peer;
    ck_assert_int_eq(gr_sock_name(c, &local), 0);
    ck_assert_int_eq(gr_sock_peer(acc.fd, &peer), 0);
    ck_assert_int_eq(local.u.sa.sa_family, family);
    ck_assert_int_eq(gr_addr_port(&local), gr_addr_port(&peer));
    ck_assert_int_eq(gr_addr_port(&acc.peer), gr_addr_port(&local));
    ck_assert_int_eq(gr_send(c, "ping", 4, 0), 4);
    char buf[8];
    ck_assert_int_eq(gr_recv(acc.fd, buf, sizeof(buf), 0), 4);
    ck_assert(memcmp(buf, "ping", 4) == 0);
    ck_assert_int_eq(gr_shutdown(c, SHUT_WR), 0);
    ck_assert_int_eq(gr_recv(acc.fd, buf, sizeof(buf), 0), 0);
    ck_assert_int_eq(gr_send(acc.fd, "pong", 4, 0), 4);
    ck_assert_int_eq(gr_recv(c, buf, 4, MSG_WAITALL), 4);
    ck_assert(memcmp(buf, "pong", 4) == 0);
    ck_assert_int_eq(gr_close(acc.fd), 0);
    ck_assert_int_eq(gr_recv(c, buf, sizeof(buf), 0), 0);
    ck_assert_int_eq(gr_close(c), 0);
    ck_assert_int_eq(gr_close(l), 0);
}

static int tcp_v4_main(void *arg)
{
    (void)arg;
    exchange("127.0.0.1", AF_INET);
    return 0;
}

START_TEST(tcp_ipv4)
{
    gr_test_run_ok(tcp_v4_main, NULL, 2);
}
END_TEST

static int tcp_v6_main(void *arg)
{
    (void)arg;
    exchange("::1", AF_INET6);
    exchange("[::1]", AF_INET6);
    return 0;
}

START_TEST(tcp_ipv6)
{
    gr_test_run_ok(tcp_v6_main, NULL, 2);
}
END_TEST

/* IPv6 through streams, both ends: open_connection and an accepted fd. */
static int stream_v6_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("::1", 0, NULL);
    ck_assert_int_ge(l, 0);
    gr_stream *c, *s;
    ck_assert_int_eq(gr_open_connection(&c, "::1", port_of(l), NULL), 0);
    ck_assert_int_eq(gr_stream_open(&s, gr_accept(l, NULL), NULL), 0);
    ck_assert_int_eq(gr_stream_write(c, "over v6\n", 8), 0);
    char buf[16];
    ck_assert_int_eq(gr_stream_readline(s, buf, sizeof(buf)), 8);
    ck_assert_int_eq(gr_stream_close(c), 0);
    ck_assert_int_eq(gr_stream_read(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(gr_stream_close(s), 0);
    ck_assert_int_eq(gr_close(l), 0);
    return 0;
}

START_TEST(stream_over_ipv6)
{
    gr_test_run_ok(stream_v6_main, NULL, 2);
}
END_TEST

static int options_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("127.0.0.1", 0, &(gr_listen_opts){.backlog = 5, .reuseport = 1});
    ck_assert_int_ge(l, 0);
    int v = 0;
    socklen_t len = sizeof(v);
    getsockopt(l, SOL_SOCKET, SO_REUSEADDR, &v, &len);
    ck_assert_int_eq(v, 1);
    getsockopt(l, SOL_SOCKET, SO_REUSEPORT, &v, &len);
    ck_assert_int_eq(v, 1);
    /* A second listener on the same port: allowed with SO_REUSEPORT. */
    int l2 = gr_listen_tcp("127.0.0.1", port_of(l), &(gr_listen_opts){.reuseport = 1});
    ck_assert_int_ge(l2, 0);
    ck_assert_int_eq(gr_listen_tcp("127.0.0.1", port_of(l), NULL), -EADDRINUSE);
    int c = gr_connect_tcp("127.0.0.1", port_of(l));
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(gr_sock_nodelay(c, 1), 0);
    getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &len);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(gr_sock_keepalive(c, 1, 30, 5, 4), 0);
    getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, &len);
    ck_assert_int_eq(v, 1);
    getsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len);
    ck_assert_int_eq(v, 30);
    getsockopt(c, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len);
    ck_assert_int_eq(v, 5);
    getsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &v, &len);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(gr_sock_keepalive(c, 1, -1, 0, 0), -EINVAL);
    ck_assert_int_eq(gr_sock_nodelay(-1, 1), -EBADF);
    ck_assert_int_eq(gr_listen_tcp("127.0.0.1", 0, &(gr_listen_opts){.backlog = -1}), -EINVAL);
    ck_assert_int_eq(gr_close(c), 0);
    ck_assert_int_eq(gr_close(l2), 0);
    ck_assert_int_eq(gr_close(l), 0);
    return 0;
}

START_TEST(socket_options)
{
    gr_test_run_ok(options_main, NULL, 1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Connect failures and ordering
 * --------------------------------------------------------------------- */

/* A bound, non-listening socket: its port refuses connections, and
 * nobody else can take the port meanwhile. */
static int refusing_port(const char *ip, uint16_t *port)
{
    gr_addr a;
    ck_assert_int_eq(gr_addr_ip(&a, ip, 0), 0);
    int fd = gr_socket_bind(&a, SOCK_DGRAM, NULL); /* holds nothing for TCP */
    ck_assert_int_ge(fd, 0);
    gr_close(fd);
    int s = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(bind(s, &a.u.sa, a.len), 0);
    *port = port_of(s);
    return s;
}

static int refused_main(void *arg)
{
    (void)arg;
    uint16_t port;
    int hold = refusing_port("127.0.0.1", &port);
    ck_assert_int_eq(gr_connect_tcp("127.0.0.1", port), -ECONNREFUSED);
    gr_stream *st;
    ck_assert_int_eq(gr_open_connection(&st, "127.0.0.1", port, NULL), -ECONNREFUSED);
    ck_assert_int_eq(gr_close(hold), 0);
    return 0;
}

START_TEST(connect_refused)
{
    gr_test_run_ok(refused_main, NULL, 2);
}
END_TEST

/* A listener with backlog 0 takes one connection into its accept queue;
 * after that, connection attempts hang (SYNs are dropped) until a timeout
 * scope ends them. */
static int timeout_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("127.0.0.1", 0, &(gr_listen_opts){.backlog = 0});
    ck_assert_int_ge(l, 0);
    /* backlog 0 is SOMAXCONN in gr_listen_opts: set it by hand. */
    ck_assert_int_eq(listen(l, 0), 0);
    int first = gr_connect_tcp("127.0.0.1", port_of(l));
    ck_assert_int_ge(first, 0);
    int fds_before = gr_test_open_fds();
    gr_scope sc;
    ck_assert_int_eq(gr_scope_enter_timeout(&sc, 100 * MS), 0);
    ck_assert_int_eq(gr_connect_tcp("127.0.0.1", port_of(l)), -ETIMEDOUT);
    ck_assert_int_eq(gr_scope_leave(&sc), 1);
    ck_assert_int_eq(gr_test_open_fds(), fds_before); /* the attempt's socket is closed */
    ck_assert_int_eq(gr_close(first), 0);
    ck_assert_int_eq(gr_close(l), 0);
    return 0;
}

START_TEST(connect_timeout)
{
    gr_test_run_ok(timeout_main, NULL, 2);
}
END_TEST

/* The Unix flavour: a full backlog makes connect wait. */
static int unix_timeout_main(void *arg)
{
    (void)arg;
    char dir[64], path[128];
    temp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/full.sock", dir);
    int l = gr_listen_unix(path, NULL);
    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(listen(l, 0), 0);
    int held[4], n = 0;
    /* Fill the backlog: attempts that complete are queued connections. */
    for (;;) {
        gr_scope sc;
        gr_scope_enter_timeout(&sc, 50 * MS);
        int fd = gr_connect_unix(path);
        gr_scope_leave(&sc);
        if (fd == -ETIMEDOUT)
            break;
        ck_assert_int_ge(fd, 0);
        ck_assert_int_lt(n, 4);
        held[n++] = fd;
    }
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++)
        gr_close(held[i]);
    gr_close(l);
    unlink(path);
    rmdir(dir);
    return 0;
}

START_TEST(connect_timeout_unix)
{
    gr_test_run_ok(unix_timeout_main, NULL, 2);
}
END_TEST

static int order_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("127.0.0.1", 0, NULL);
    ck_assert_int_ge(l, 0);
    uint16_t refused6, refused4;
    int hold6 = refusing_port("::1", &refused6);
    int hold4 = refusing_port("127.0.0.1", &refused4);
    gr_addr addrs[3];
    gr_addr_ip(&addrs[0], "::1", refused6);
    gr_addr_ip(&addrs[1], "127.0.0.1", refused4);
    gr_addr_ip(&addrs[2], "127.0.0.1", port_of(l));
    size_t which = 99;
    int fd = gr_connect_addrs(addrs, 3, SOCK_STREAM, &which);
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(which, 2);
    gr_close(fd);
    /* All fail: the first attempt's error. */
    ck_assert_int_eq(gr_connect_addrs(addrs, 2, SOCK_STREAM, NULL), -ECONNREFUSED);
    ck_assert_int_eq(gr_connect_addrs(addrs, 0, SOCK_STREAM, NULL), -EINVAL);
    /* Name resolution (through /etc/hosts, off the workers). */
    gr_addr res[4];
    int n = gr_resolve("localhost", 80, SOCK_STREAM, res, 4);
    ck_assert_int_ge(n, 1);
    int found = 0;
    for (int i = 0; i < n; i++) {
        char txt[GR_ADDR_STRLEN];
        gr_addr_format(&res[i], txt, sizeof(txt));
        found |= strcmp(txt, "127.0.0.1:80") == 0 || strcmp(txt, "[::1]:80") == 0;
    }
    ck_assert(found);
    fd = gr_connect_tcp("localhost", port_of(l));
    ck_assert_int_ge(fd, 0);
    gr_close(fd);
    ck_assert_int_eq(gr_resolve("127.0.0.1", 9, SOCK_DGRAM, res, 4), 1);
    ck_assert_int_eq(gr_resolve("localhost", 9, SOCK_RAW, res, 4), -EINVAL);
    /* Wildcard resolution for binding. */
    ck_assert_int_ge(gr_resolve(NULL, 9, SOCK_STREAM, res, 4), 1);
    gr_close(hold6);
    gr_close(hold4);
    gr_close(l);
    return 0;
}

START_TEST(addresses_tried_in_order)
{
    gr_test_run_ok(order_main, NULL, 2);
}
END_TEST

static int resolve_cancel_main(void *arg)
{
    (void)arg;
    /* An expired scope: the resolution does not even start. */
    gr_scope sc;
    gr_scope_enter_timeout(&sc, 0);
    gr_addr res[2];
    ck_assert_int_eq(gr_resolve("localhost", 1, SOCK_STREAM, res, 2), -ETIMEDOUT);
    ck_assert_int_eq(gr_connect_tcp("localhost", 1), -ETIMEDOUT);
    gr_scope_leave(&sc);
    ck_assert_int_eq(gr_connect_tcp(NULL, 1), -EINVAL);
    return 0;
}

START_TEST(resolve_honours_scopes)
{
    gr_test_run_ok(resolve_cancel_main, NULL, 1);
}
END_TEST

static int cancel_accept_main(void *arg)
{
    (void)arg;
    int l = gr_listen_tcp("127.0.0.1", 0, NULL);
    ck_assert_int_ge(l, 0);
    struct acceptor acc = {.lfd = l};
    gr_task *t;
    ck_assert_int_eq(gr_spawn(&t, accept_one, &acc, NULL), 0);
    gr_yield();
    ck_assert_int_eq(gr_cancel(t), 0);
    ck_assert_int_eq(gr_join(t), -ECANCELED);
    /* The listener still works. */
    ck_assert_int_eq(gr_spawn(&t, accept_one, &acc, NULL), 0);
    int c = gr_connect_tcp("127.0.0.1", port_of(l));
    ck_assert_int_eq(gr_join(t), 0);
    gr_close(acc.fd);
    gr_close(c);
    gr_close(l);
    return 0;
}

START_TEST(cancelled_accept)
{
    gr_test_run_ok(cancel_accept_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * Unix sockets, UDP
 * --------------------------------------------------------------------- */

static int unix_main(void *arg)
{
    (void)arg;
    char dir[64], path[128];
    temp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    int l = gr_listen_unix(path, NULL);
    ck_assert_int_ge(l, 0);
    gr_stream *c, *s;
    ck_assert_int_eq(gr_open_unix_connection(&c, path, NULL), 0);
    ck_assert_int_eq(gr_stream_open(&s, gr_accept(l, NULL), NULL), 0);
    ck_assert_int_eq(gr_stream_write(c, "unix\n", 5), 0);
    char buf[16];
    ck_assert_int_eq(gr_stream_readline(s, buf, sizeof(buf)), 5);
    gr_stream_close(c);
    gr_stream_close(s);
    gr_close(l);
    /* The socket file is left behind; listening again replaces it. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    l = gr_listen_unix(path, NULL);
    ck_assert_int_ge(l, 0);
    gr_close(l);
    unlink(path);
    /* Any other file at the path is not touched. */
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(f);
    ck_assert_int_eq(gr_listen_unix(path, NULL), -EADDRINUSE);
    unlink(path);
    ck_assert_int_eq(gr_connect_unix(path), -ENOENT);
    /* The abstract namespace. */
    char name[64];
    snprintf(name, sizeof(name), "@greenring-test-%d", (int)getpid());
    l = gr_listen_unix(name, NULL);
    ck_assert_int_ge(l, 0);
    int fd = gr_connect_unix(name);
    ck_assert_int_ge(fd, 0);
    gr_addr a;
    gr_sock_name(l, &a);
    char txt[GR_ADDR_STRLEN];
    gr_addr_format(&a, txt, sizeof(txt));
    ck_assert_str_eq(txt + 5, name);
    gr_close(fd);
    gr_close(l);
    rmdir(dir);
    return 0;
}

START_TEST(unix_stream_sockets)
{
    gr_test_run_ok(unix_main, NULL, 2);
}
END_TEST

static void datagrams(const char *ip)
{
    int a = gr_udp_bind(ip, 0, NULL), b = gr_udp_bind(ip, 0, NULL);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    gr_addr to, from, b_addr;
    gr_sock_name(b, &b_addr);
    gr_addr_ip(&to, ip, port_of(b));
    for (int i = 0; i < 10; i++) {
        char msg[32], buf[64];
        int n = snprintf(msg, sizeof(msg), "datagram %d", i);
        ck_assert_int_eq(gr_sendto(a, msg, (size_t)n, 0, &to), n);
        ck_assert_int_eq(gr_recvfrom(b, buf, sizeof(buf), 0, &from), n);
        ck_assert(memcmp(buf, msg, (size_t)n) == 0);
        ck_assert_int_eq(gr_addr_port(&from), port_of(a));
        /* Reply to the sender's address. */
        ck_assert_int_eq(gr_sendto(b, buf, (size_t)n, 0, &from), n);
        ck_assert_int_eq(gr_recvfrom(a, buf, sizeof(buf), 0, NULL), n);
    }
    /* A connected UDP socket: sendto without an address, recv. */
    ck_assert_int_eq(gr_connect(a, &to), 0);
    ck_assert_int_eq(gr_sendto(a, "c", 1, 0, NULL), 1);
    char c;
    ck_assert_int_eq(gr_recv(b, &c, 1, 0), 1);
    gr_close(a);
    gr_close(b);
}

static int udp_main(void *arg)
{
    (void)arg;
    datagrams("127.0.0.1");
    datagrams("::1");
    return 0;
}

START_TEST(udp_ipv4_ipv6)
{
    gr_test_run_ok(udp_main, NULL, 2);
}
END_TEST

static int unix_dgram_main(void *arg)
{
    (void)arg;
    char dir[64], pa[128], pb[128];
    temp_dir(dir, sizeof(dir));
    snprintf(pa, sizeof(pa), "%s/a", dir);
    snprintf(pb, sizeof(pb), "%s/b", dir);
    gr_addr aa, ab, from;
    gr_addr_unix(&aa, pa);
    gr_addr_unix(&ab, pb);
    int a = gr_socket_bind(&aa, SOCK_DGRAM, NULL), b = gr_socket_bind(&ab, SOCK_DGRAM, NULL);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    ck_assert_int_eq(gr_sendto(a, "hello", 5, 0, &ab), 5);
    char buf[16];
    ck_assert_int_eq(gr_recvfrom(b, buf, sizeof(buf), 0, &from), 5);
    char txt[GR_ADDR_STRLEN], want[160];
    gr_addr_format(&from, txt, sizeof(txt));
    snprintf(want, sizeof(want), "unix:%s", pa);
    ck_assert_str_eq(txt, want);
    ck_assert_int_eq(gr_sendto(b, "back", 4, 0, &from), 4);
    ck_assert_int_eq(gr_recvfrom(a, buf, sizeof(buf), 0, NULL), 4);
    gr_close(a);
    gr_close(b);
    unlink(pa);
    unlink(pb);
    rmdir(dir);
    return 0;
}

START_TEST(unix_datagram_sockets)
{
    gr_test_run_ok(unix_dgram_main, NULL, 2);
}
END_TEST

/* ---------------------------------------------------------------------
 * 10,000 concurrent connections
 * --------------------------------------------------------------------- */

#define MANY 10000

/* The clients live in a child process: the hard RLIMIT_NOFILE may be as
 * low as 20,000 (raising it needs CAP_SYS_RESOURCE), and each side needs
 * 10,000 fds. The child reports on `ready` once every client has had its
 * echo, and its clients hold their connections until the parent writes to
 * `go`. */
struct many_clients {
    uint16_t port;
    int ready_fd, go_fd;
    gr_event release;
    _Atomic int connected;
    _Atomic int failures;
};

static int many_client(void *arg)
{
    struct many_clients *m = arg;
    gr_addr a;
    gr_addr_ip(&a, "127.0.0.1", m->port);
    int fd = gr_connect_addrs(&a, 1, SOCK_STREAM, NULL);
    char c = 'x';
    int ok = fd >= 0 && gr_send(fd, &c, 1, 0) == 1 && gr_recv(fd, &c, 1, 0) == 1 && c == 'x';
    if (!ok)
        atomic_fetch_add(&m->failures, 1);
    if (atomic_fetch_add(&m->connected, 1) + 1 == MANY) {
        char r = atomic_load(&m->failures) ? 'f' : 'r';
        gr_write(m->ready_fd, &r, 1);
    }
    int rc = gr_event_wait(&m->release);
    if (fd >= 0)
        gr_close(fd);
    return ok ? rc : -EIO;
}

static int clients_main(void *arg)
{
    struct many_clients *m = arg;
    gr_event_init(&m->release);
    gr_group *g;
    if (gr_group_create(&g) < 0)
        return 1;
    gr_spawn_opts so = {.stack_size = GR_MIN_STACK_SIZE};
    for (int i = 0; i < MANY; i++)
        if (gr_group_spawn(g, many_client, m, &so) < 0)
            return 1;
    char go;
    if (gr_read(m->go_fd, &go, 1) != 1)
        return 1;
    gr_event_set(&m->release);
    int rc = gr_group_wait(g);
    gr_group_destroy(g);
    return rc == 0 && atomic_load(&m->failures) == 0 ? 0 : 1;
}

struct many_server {
    int listen_fd, ready_fd, go_fd;
};

static int hold_conn(gr_stream *s, void *arg)
{
    (void)arg;
    char buf[512];
    ssize_t n = gr_stream_read(s, buf, sizeof(buf));
    if (n <= 0)
        return (int)n;
    int rc = gr_stream_write(s, buf, (size_t)n);
    /* Held open until the client closes. */
    while (rc == 0 && (n = gr_stream_read(s, buf, sizeof(buf))) > 0)
        ;
    return rc < 0 ? rc : (int)n;
}

static int many_server_main(void *arg)
{
    struct many_server *m = arg;
    gr_server *srv;
    gr_server_opts opts = {.stack_size = GR_MIN_STACK_SIZE};
    ck_assert_int_eq(gr_server_start(&srv, m->listen_fd, hold_conn, NULL, &opts), 0);
    char r;
    ck_assert_int_eq(gr_read(m->ready_fd, &r, 1), 1);
    ck_assert_msg(r == 'r', "some clients failed to connect or to get their echo");
    /* Every client has had its echo: all 10,000 handlers are running. */
    ck_assert_uint_eq(gr_server_connections(srv), MANY);
    ck_assert_uint_eq(gr_server_accepted(srv), MANY);
    ck_assert_int_eq(gr_write(m->go_fd, "g", 1), 1);
    gr_close(m->ready_fd);
    gr_close(m->go_fd);
    /* The handlers end as the clients close. */
    ck_assert_int_eq(gr_server_close(srv, GR_NO_DEADLINE), 0);
    return 0;
}

START_TEST(ten_thousand_connections)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_max >= MANY + 200, "RLIMIT_NOFILE hard limit %llu is below %d",
                  (unsigned long long)rl.rlim_max, MANY + 200);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(l, 4096), 0);
    int ready[2], go[2];
    gr_test_pipe(ready);
    gr_test_pipe(go);
    int fds_before = gr_test_open_fds();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct many_clients m = {.port = port_of(l), .ready_fd = ready[1], .go_fd = go[0]};
        close(l);
        close(ready[0]);
        close(go[1]);
        _exit(gr_test_run(clients_main, &m, 2) == 0 ? 0 : 1);
    }
    close(ready[1]);
    close(go[0]);
    struct many_server m = {.listen_fd = l, .ready_fd = ready[0], .go_fd = go[1]};
    ck_assert_int_eq(gr_test_run(many_server_main, &m, 2), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client process failed (%d)",
                  status);
    /* The listener and the two pipe ends were taken over and closed. */
    ck_assert_int_eq(gr_test_open_fds(), fds_before - 5);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("sockets");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, addresses);
    tcase_add_test(tc, tcp_ipv4);
    tcase_add_test(tc, tcp_ipv6);
    tcase_add_test(tc, stream_over_ipv6);
    tcase_add_test(tc, socket_options);
    tcase_add_test(tc, connect_refused);
    tcase_add_test(tc, connect_timeout);
    tcase_add_test(tc, connect_timeout_unix);
    tcase_add_test(tc, addresses_tried_in_order);
    tcase_add_test(tc, resolve_honours_scopes);
    tcase_add_test(tc, cancelled_accept);
    tcase_add_test(tc, unix_stream_sockets);
    tcase_add_test(tc, udp_ipv4_ipv6);
    tcase_add_test(tc, unix_datagram_sockets);
    suite_add_tcase(s, tc);
    tc = tcase_create("scale");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, ten_thousand_connections);
    suite_add_tcase(s, tc);
    return s;
}

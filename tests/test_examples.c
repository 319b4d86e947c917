/* greenring-test: tsan asan */
/* The example programs, run as programs against real clients: echo_server
 * with echo_client, http_server with curl (and a raw pipelining client),
 * chat_server with two line clients, fetcher against http_server, copytree
 * on a temporary tree, pipeline. Each example's source is compiled in here
 * with its main renamed, and runs in a forked child process, so the test
 * needs nothing built beforehand; servers are stopped with SIGTERM (their
 * graceful shutdown) and must exit 0. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

#define main echo_server_main
#include "../examples/echo_server.c"
#undef main
#define main echo_client_main
#include "../examples/echo_client.c"
#undef main
#define main http_server_main
#include "../examples/http_server.c"
#undef main
#define main chat_server_main
#include "../examples/chat_server.c"
#undef main
#define main fetcher_main
#include "../examples/fetcher.c"
#undef main
#define main copytree_main
#include "../examples/copytree.c"
#undef main
#define main pipeline_main
#include "../examples/pipeline.c"
#undef main

typedef int (*example_main)(int argc, char **argv);

struct child {
    pid_t pid;
    int out; /* the child's stdout */
};

static int argc_of(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

/* Run an example's main in a child process, stdout into a pipe. */
static struct child spawn_example(example_main fn, char **argv)
{
    int p[2];
    gr_test_pipe(p);
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        close(p[1]);
        optind = 1;
        int rc = fn(argc_of(argv), argv);
        fflush(stdout);
        _exit(rc);
    }
    close(p[1]);
    return (struct child){.pid = pid, .out = p[0]};
}

/* Read the child's stdout up to the end of the first line. */
static void read_line(struct child *c, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(c->out, buf + n, 1);
        if (r <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
}

/* A server example: its "listening on ADDR" line gives the port. */
static uint16_t server_port(struct child *c)
{
    char line[256];
    read_line(c, line, sizeof(line));
    char *colon = strrchr(line, ':');
    ck_assert_msg(strncmp(line, "listening on ", 13) == 0 && colon, "server said: '%s'", line);
    return (uint16_t)atoi(colon + 1);
}

/* Wait for the child; returns its exit status (-1 if it did not exit). */
static int wait_child(struct child *c)
{
    int status;
    ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
    close(c->out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* SIGTERM: the graceful shutdown must end with status 0. */
static void stop_server(struct child *c)
{
    kill(c->pid, SIGTERM);
    ck_assert_int_eq(wait_child(c), 0);
}

/* Run an example to completion; its stdout into out. Returns the status. */
static int run_example(example_main fn, char **argv, char *out, size_t size)
{
    struct child c = spawn_example(fn, argv);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(c.out, out + n, size - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    return wait_child(&c);
}

/* A blocking client socket with a 10 s receive timeout (bounds the test). */
static int connect_blocking(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const char *s)
{
    size_t len = strlen(s);
    ck_assert_int_eq(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* One line from a blocking socket (byte by byte: fine for a test). */
static void recv_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = recv(fd, buf + n, 1, 0);
        ck_assert_msg(r == 1, "recv: %zd (%s)", r, r < 0 ? strerror(errno) : "EOF");
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
}

static void need_curl(void)
{
    ck_assert_msg(system("command -v curl > /dev/null 2>&1") == 0,
                  "curl is not installed: apt-get install -y curl");
}

/* ---------------------------------------------------------------------
 * echo_server + echo_client
 * --------------------------------------------------------------------- */

START_TEST(echo_server_with_echo_client)
{
    char *sargv[] = {"echo_server", "-p", "0", NULL};
    struct child srv = spawn_example(echo_server_main, sargv);
    char port[16], out[1024];
    snprintf(port, sizeof(port), "%u", server_port(&srv));
    char *cargv[] = {"echo_client", "-p", port, "-c", "16", "-n", "20", "-s", "200000", NULL};
    ck_assert_int_eq(run_example(echo_client_main, cargv, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "16 connections x 20 messages") && strstr(out, " 0 failed"),
                  "echo_client said: %s", out);
    stop_server(&srv);
}
END_TEST

START_TEST(echo_server_on_a_unix_socket)
{
    char dir[] = "/tmp/greenring-ex-XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/echo.sock", dir);
    char *sargv[] = {"echo_server", "-u", path, NULL};
    struct child srv = spawn_example(echo_server_main, sargv);
    char line[256], out[1024];
    read_line(&srv, line, sizeof(line));
    ck_assert_msg(strstr(line, path), "server said: %s", line);
    char *cargv[] = {"echo_client", "-u", path, "-c", "4", "-n", "10", NULL};
    ck_assert_int_eq(run_example(echo_client_main, cargv, out, sizeof(out)), 0);
    stop_server(&srv);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), -1); /* the server removed its socket */
    rmdir(dir);
}
END_TEST

/* ---------------------------------------------------------------------
 * http_server
 * --------------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A directory with a small and a large (sendfile) file. */
static void make_site(char *dir, size_t big)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/small.txt", dir);
    write_file(path, "small file\n", 11);
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    snprintf(path, sizeof(path), "%s/big.bin", dir);
    write_file(path, data, big);
    free(data);
}

static void capture(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
}

START_TEST(http_server_with_curl)
{
    need_curl();
    char site[] = "/tmp/greenring-site-XXXXXX";
    make_site(site, 300000);
    char *sargv[] = {"http_server", "-p", "0", "-d", site, NULL};
    struct child srv = spawn_example(http_server_main, sargv);
    unsigned port = server_port(&srv);
    static char out[1 << 20];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "curl -s -i --max-time 10 http://127.0.0.1:%u/", port);
    capture(cmd, out, sizeof(out));
    ck_assert_msg(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(out, "\r\n\r\nHello, World!\n"),
                  "curl got: %s", out);
    /* Keep-alive: two requests, one connection. */
    snprintf(cmd, sizeof(cmd),
             "curl -s -v --max-time 10 http://127.0.0.1:%u/hello http://127.0.0.1:%u/static/small.txt 2>&1",
             port, port);
    capture(cmd, out, sizeof(out));
    ck_assert_msg(strstr(out, "Re-using existing connection") && strstr(out, "small file"),
                  "curl got: %s", out);
    /* A large static file (sent with splice), byte for byte. */
    snprintf(cmd, sizeof(cmd), "curl -s --max-time 10 http://127.0.0.1:%u/static/big.bin | cmp - %s/big.bin",
             port, site);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null -w '%%{http_code} ' --max-time 10 http://127.0.0.1:%u/nope; "
             "curl -s -o /dev/null -w '%%{http_code} ' --max-time 10 --path-as-is "
             "http://127.0.0.1:%u/static/../etc/passwd; "
             "curl -s -o /dev/null -w '%%{http_code}' --max-time 10 -X POST http://127.0.0.1:%u/",
             port, port, port);
    capture(cmd, out, sizeof(out));
    ck_assert_str_eq(out, "404 404 405");
    stop_server(&srv);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", site);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Pipelining: three requests in one packet, answered in order. */
START_TEST(http_server_pipelining)
{
    char *sargv[] = {"http_server", "-p", "0", NULL};
    struct child srv = spawn_example(http_server_main, sargv);
    uint16_t port = server_port(&srv);
    int fd = connect_blocking(port);
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                 "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    static char buf[8192];
    size_t n = 0;
    ssize_t r;
    while ((r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    ck_assert_msg(r == 0, "the server should close after Connection: close");
    char *first = strstr(buf, "HTTP/1.1 200 OK");
    char *second = first ? strstr(first + 1, "HTTP/1.1 404 Not Found") : NULL;
    char *third = second ? strstr(second + 1, "HTTP/1.1 200 OK") : NULL;
    ck_assert_msg(first == buf && second && third, "responses: %s", buf);
    ck_assert(strstr(third, "Connection: close"));
    ck_assert(strstr(third, "\r\n\r\n")[4] == '\0'); /* HEAD: no body */
    close(fd);
    /* A malformed request: 400, then the server closes. */
    fd = connect_blocking(port);
    send_all(fd, "NONSENSE\r\n\r\n");
    n = 0;
    while ((r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    ck_assert_msg(r == 0 && strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "got: %s", buf);
    close(fd);
    stop_server(&srv);
}
END_TEST

/* ---------------------------------------------------------------------
 * chat_server
 * --------------------------------------------------------------------- */

START_TEST(chat_server_broadcasts)
{
    char *sargv[] = {"chat_server", "-p", "0", NULL};
    struct child srv = spawn_example(chat_server_main, sargv);
    uint16_t port = server_port(&srv);
    char line[256];
    int a = connect_blocking(port);
    recv_line(a, line, sizeof(line));
    ck_assert_str_eq(line, "welcome, you are guest1\n");
    int b = connect_blocking(port);
    recv_line(b, line, sizeof(line));
    ck_assert_str_eq(line, "welcome, you are guest2\n");
    recv_line(a, line, sizeof(line));
    ck_assert_str_eq(line, "* guest2 joined\n");
    send_all(a, "/nick alice\n");
    recv_line(b, line, sizeof(line));
    ck_assert_str_eq(line, "guest1 is now alice\n");
    send_all(a, "hello everyone\n");
    recv_line(b, line, sizeof(line));
    ck_assert_str_eq(line, "alice: hello everyone\n");
    send_all(b, "hi alice\r\n");
    recv_line(a, line, sizeof(line));
    ck_assert_str_eq(line, "guest2: hi alice\n");
    int c = connect_blocking(port);
    recv_line(c, line, sizeof(line));
    recv_line(a, line, sizeof(line));
    ck_assert_str_eq(line, "* guest3 joined\n");
    recv_line(b, line, sizeof(line));
    ck_assert_str_eq(line, "* guest3 joined\n");
    close(c); /* leaving without /quit */
    recv_line(a, line, sizeof(line));
    ck_assert_str_eq(line, "* guest3 left\n");
    recv_line(b, line, sizeof(line));
    ck_assert_str_eq(line, "* guest3 left\n");
    send_all(b, "/quit\n");
    recv_line(a, line, sizeof(line));
    ck_assert_str_eq(line, "* guest2 left\n");
    ck_assert_int_eq(recv(b, line, 1, 0), 0); /* the server closed b */
    close(b);
    stop_server(&srv); /* a is still connected: the server closes it */
    ck_assert_int_eq(recv(a, line, 1, 0), 0);
    close(a);
}
END_TEST

/* ---------------------------------------------------------------------
 * fetcher, copytree, pipeline
 * --------------------------------------------------------------------- */

START_TEST(fetcher_against_http_server)
{
    char site[] = "/tmp/greenring-site-XXXXXX";
    make_site(site, 100000);
    char *sargv[] = {"http_server", "-p", "0", "-d", site, NULL};
    struct child srv = spawn_example(http_server_main, sargv);
    unsigned port = server_port(&srv);
    char outdir[] = "/tmp/greenring-fetched-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(outdir));
    char urls[6][128];
    char *fargv[12] = {"fetcher", "-c", "2", "-o", outdir};
    for (int i = 0; i < 6; i++) {
        snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%u/%s", port,
                 i % 3 == 0 ? "static/big.bin" : i % 3 == 1 ? "static/small.txt" : "hello");
        fargv[5 + i] = urls[i];
    }
    fargv[11] = NULL;
    static char out[8192];
    ck_assert_int_eq(run_example(fetcher_main, fargv, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "fetched 6 URLs (0 failed)") && strstr(out, "at most 2 at once"),
                  "fetcher said: %s", out);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cmp %s/big.bin %s/big.bin && cmp %s/small.txt %s/small.txt", site,
             outdir, site, outdir);
    ck_assert_int_eq(system(cmd), 0);
    /* A missing page counts as a failure. */
    snprintf(urls[0], sizeof(urls[0]), "http://127.0.0.1:%u/missing", port);
    char *f2[] = {"fetcher", urls[0], NULL};
    ck_assert_int_eq(run_example(fetcher_main, f2, out, sizeof(out)), 1);
    stop_server(&srv);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", site, outdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(copytree_copies_a_tree)
{
    char src[] = "/tmp/greenring-tree-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(src));
    char path[512];
    uint64_t seed = 42;
    for (int d = 0; d < 5; d++) {
        snprintf(path, sizeof(path), "%s/dir%d/sub", src, d);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "mkdir -p %s", path);
        ck_assert_int_eq(system(cmd), 0);
        for (int f = 0; f < 8; f++) {
            size_t len = gr_test_rand(&seed) % 200000;
            char *data = malloc(len + 1);
            for (size_t i = 0; i < len; i++)
                data[i] = (char)gr_test_rand(&seed);
            snprintf(path, sizeof(path), "%s/dir%d/%s%d", src, d, f % 2 ? "sub/f" : "f", f);
            write_file(path, data, len);
            free(data);
        }
    }
    snprintf(path, sizeof(path), "%s/dir0/link", src);
    ck_assert_int_eq(symlink("sub/f1", path), 0);
    snprintf(path, sizeof(path), "%s/dir1/f0", src);
    ck_assert_int_eq(chmod(path, 0750), 0);
    char dst[600];
    snprintf(dst, sizeof(dst), "%s.copy", src);
    char *argv[] = {"copytree", "-j", "3", src, dst, NULL};
    char out[512];
    ck_assert_int_eq(run_example(copytree_main, argv, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "copied 40 files") && strstr(out, "11 directories, 1 links"),
                  "copytree said: %s", out);
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "diff -r --no-dereference %s %s && test \"$(stat -c %%a %s/dir1/f0)\" = 750",
             src, dst, dst);
    ck_assert_int_eq(system(cmd), 0);
    /* The destination exists now: refused. */
    ck_assert_int_eq(run_example(copytree_main, argv, out, sizeof(out)), 1);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", src, dst);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(pipeline_totals)
{
    char *argv[] = {"pipeline", "-n", "20000", "-w", "5", "-q", "8", NULL};
    char out[256];
    ck_assert_int_eq(run_example(pipeline_main, argv, out, sizeof(out)), 0);
    /* sum of 1..20000, and the Collatz steps of 1..20000 */
    ck_assert_str_eq(out, "items 20000, sum 200010000, collatz steps 1834634\n");
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("examples");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_server_with_echo_client);
    tcase_add_test(tc, echo_server_on_a_unix_socket);
    tcase_add_test(tc, http_server_with_curl);
    tcase_add_test(tc, http_server_pipelining);
    tcase_add_test(tc, chat_server_broadcasts);
    tcase_add_test(tc, fetcher_against_http_server);
    tcase_add_test(tc, copytree_copies_a_tree);
    tcase_add_test(tc, pipeline_totals);
    suite_add_tcase(s, tc);
    return s;
}

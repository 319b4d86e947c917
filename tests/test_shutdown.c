/* Graceful shutdown of a real server: the echo_server example gets SIGTERM
 * while clients are connected and in the middle of their exchanges; every
 * client must get back every byte it sent, also the bytes sent after the
 * signal, and the server must exit 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

#define main echo_server_main
#include "../examples/echo_server.c"
#undef main

#define CLIENTS 16
#define HALF 20000 /* bytes each client sends before and after the signal */

static pid_t start_server(uint16_t *port)
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
        char *argv[] = {"echo_server", "-p", "0", "-w", "2", NULL};
        _exit(echo_server_main(5, argv));
    }
    close(p[1]);
    char line[128];
    size_t n = 0;
    while (n + 1 < sizeof(line) && read(p[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    close(p[0]);
    char *colon = strrchr(line, ':');
    ck_assert_msg(colon && strncmp(line, "listening on ", 13) == 0, "server said '%s'", line);
    *port = (uint16_t)atoi(colon + 1);
    return pid;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const unsigned char *buf, size_t n)
{
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        ck_assert_int_gt(w, 0);
        buf += w;
        n -= (size_t)w;
    }
}

static void recv_exact(int fd, unsigned char *buf, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, buf, n, 0);
        ck_assert_msg(r > 0, "the server closed a connection early (recv %zd)", r);
        buf += r;
        n -= (size_t)r;
    }
}

START_TEST(sigterm_with_active_connections)
{
    uint16_t port;
    pid_t server = start_server(&port);
    int fds[CLIENTS];
    static unsigned char sent[CLIENTS][2 * HALF], got[2 * HALF];
    uint64_t rng = 7;
    for (int c = 0; c < CLIENTS; c++) {
        for (size_t i = 0; i < sizeof(sent[c]); i++)
            sent[c][i] = (unsigned char)gr_test_rand(&rng);
        fds[c] = connect_to(port);
        /* the first half, echoed before the signal: the handler is running */
        send_all(fds[c], sent[c], HALF);
        recv_exact(fds[c], got, HALF);
        ck_assert_int_eq(memcmp(got, sent[c], HALF), 0);
    }
    ck_assert_int_eq(kill(server, SIGTERM), 0);
    /* the server has taken the signal once it stops accepting */
    int refused = 0;
    for (int attempt = 0; attempt < 1000000 && !refused; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        refused = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0;
        close(fd);
    }
    ck_assert_msg(refused, "the server kept accepting after SIGTERM");
    /* the second half goes out after that: the handlers still echo it */
    for (int c = 0; c < CLIENTS; c++) {
        send_all(fds[c], sent[c] + HALF, HALF);
        ck_assert_int_eq(shutdown(fds[c], SHUT_WR), 0);
    }
    for (int c = 0; c < CLIENTS; c++) {
        recv_exact(fds[c], got, HALF);
        ck_assert_msg(memcmp(got, sent[c] + HALF, HALF) == 0, "client %d: echo differs", c);
        char extra;
        ck_assert_int_eq(recv(fds[c], &extra, 1, 0), 0); /* then EOF */
        close(fds[c]);
    }
    int status;
    ck_assert_int_eq(waitpid(server, &status, 0), server);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server status 0x%x", status);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("shutdown");
    TCase *tc = tcase_create("graceful");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sigterm_with_active_connections);
    suite_add_tcase(s, tc);
    return s;
}

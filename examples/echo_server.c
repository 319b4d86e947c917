/* echo_server: a TCP (or Unix socket) echo server, one task per connection.
 *
 *   echo_server [-H HOST] [-p PORT] [-u PATH] [-w WORKERS] [-m MAXCONN]
 *
 * Listens on HOST:PORT (default 127.0.0.1:7000; port 0 picks a free one)
 * or on the Unix socket PATH, prints "listening on ADDRESS", and echoes
 * every byte back until the peer closes. SIGINT or SIGTERM: stop accepting,
 * give open connections 2 s to finish, then exit. */
#include <errno.h>
#include <greenring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct echo_args {
    const char *host;
    const char *unix_path;
    unsigned port;
    unsigned max_conns;
};

static int echo_conn(gr_stream *s, void *arg)
{
    (void)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = gr_stream_read(s, buf, sizeof(buf));
        if (n <= 0)
            return (int)n;
        int rc = gr_stream_write(s, buf, (size_t)n);
        if (rc == 0)
            rc = gr_stream_drain(s); /* back-pressure: a peer that does not read */
        if (rc < 0)
            return rc;
    }
}

static int echo_serve(void *arg)
{
    struct echo_args *a = arg;
    gr_server_opts opts = {.max_connections = a->max_conns};
    gr_server *srv;
    int rc = a->unix_path ? gr_start_unix_server(&srv, a->unix_path, echo_conn, NULL, &opts)
                          : gr_start_server(&srv, a->host, (uint16_t)a->port, echo_conn, NULL, &opts);
    if (rc < 0) {
        fprintf(stderr, "echo_server: cannot listen: %s\n", strerror(-rc));
        return 1;
    }
    gr_addr addr;
    char text[GR_ADDR_STRLEN];
    gr_server_addr(srv, &addr);
    gr_addr_format(&addr, text, sizeof(text));
    printf("listening on %s\n", text);
    fflush(stdout);
    gr_server_wait(srv); /* until SIGINT/SIGTERM cancels main */
    gr_server_close(srv, (int64_t)2 * 1000 * 1000 * 1000);
    return 0;
}

static void echo_usage(void)
{
    fprintf(stderr, "usage: echo_server [-H HOST] [-p PORT] [-u PATH] [-w WORKERS] [-m MAXCONN]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct echo_args a = {.host = "127.0.0.1", .port = 7000};
    gr_config cfg = {.graceful_shutdown = 1};
    int opt;
    while ((opt = getopt(argc, argv, "H:p:u:w:m:")) != -1) {
        switch (opt) {
        case 'H': a.host = optarg; break;
        case 'p': a.port = (unsigned)atoi(optarg); break;
        case 'u': a.unix_path = optarg; break;
        case 'w': cfg.workers = (unsigned)atoi(optarg); break;
        case 'm': a.max_conns = (unsigned)atoi(optarg); break;
        default: echo_usage();
        }
    }
    if (optind != argc || a.port > 65535)
        echo_usage();
    int rc = gr_run(echo_serve, &a, &cfg);
    if (rc < 0)
        fprintf(stderr, "echo_server: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}

/* echo_client: checks an echo server byte for byte.
 *
 *   echo_client [-H HOST] [-p PORT] [-u PATH] [-c CONNS] [-n MESSAGES] [-s SIZE]
 *
 * Opens CONNS connections at once (default 10), sends MESSAGES messages
 * (default 100) of up to SIZE random bytes (default 4096) on each, reads
 * every one back and compares. The writes go out in the background while
 * the reply is being read, so large messages cannot deadlock against the
 * server's back-pressure. Prints a summary; exits 0 when every byte came
 * back, 1 otherwise. */
#include <errno.h>
#include <greenring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct client_args {
    const char *host;
    const char *unix_path;
    unsigned port;
    unsigned conns, messages;
    size_t size;
};

struct client_conn {
    struct client_args *a;
    uint64_t seed;
    uint64_t bytes;
};

static uint64_t client_rand(uint64_t *s)
{
    *s ^= *s << 13; /* xorshift64 */
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int client_conn_main(void *arg)
{
    struct client_conn *c = arg;
    struct client_args *a = c->a;
    gr_stream *s;
    int rc = a->unix_path ? gr_open_unix_connection(&s, a->unix_path, NULL)
                          : gr_open_connection(&s, a->host, (uint16_t)a->port, NULL);
    if (rc < 0)
        return rc;
    char *out = malloc(a->size), *in = malloc(a->size);
    for (unsigned i = 0; i < a->messages && rc == 0; i++) {
        size_t len = 1 + client_rand(&c->seed) % a->size;
        for (size_t k = 0; k < len; k++)
            out[k] = (char)client_rand(&c->seed);
        rc = gr_stream_write(s, out, len);
        ssize_t n = rc ? rc : gr_stream_readexactly(s, in, len);
        if (n < 0)
            rc = (int)n;
        else if (memcmp(in, out, len) != 0)
            rc = -EILSEQ;
        else
            c->bytes += len;
    }
    free(out);
    free(in);
    int crc = gr_stream_close(s);
    return rc ? rc : crc;
}

static int client_main(void *arg)
{
    struct client_args *a = arg;
    struct client_conn *cs = calloc(a->conns, sizeof(*cs));
    gr_task **ts = calloc(a->conns, sizeof(*ts));
    for (unsigned i = 0; i < a->conns; i++) {
        cs[i] = (struct client_conn){.a = a, .seed = 0x9e3779b97f4a7c15u * (i + 1)};
        if (gr_spawn(&ts[i], client_conn_main, &cs[i], NULL) < 0)
            return 1;
    }
    int failed = 0;
    uint64_t bytes = 0;
    for (unsigned i = 0; i < a->conns; i++) {
        int rc = gr_join(ts[i]);
        if (rc < 0) {
            fprintf(stderr, "echo_client: connection %u: %s\n", i, strerror(-rc));
            failed++;
        }
        bytes += cs[i].bytes;
    }
    printf("%u connections x %u messages: %llu bytes echoed, %d failed\n", a->conns,
           a->messages, (unsigned long long)bytes, failed);
    free(cs);
    free(ts);
    return failed ? 1 : 0;
}

static void client_usage(void)
{
    fprintf(stderr, "usage: echo_client [-H HOST] [-p PORT] [-u PATH] [-c CONNS] [-n MESSAGES] "
                    "[-s SIZE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct client_args a = {.host = "127.0.0.1", .port = 7000, .conns = 10, .messages = 100,
                            .size = 4096};
    int opt;
    while ((opt = getopt(argc, argv, "H:p:u:c:n:s:")) != -1) {
        switch (opt) {
        case 'H': a.host = optarg; break;
        case 'p': a.port = (unsigned)atoi(optarg); break;
        case 'u': a.unix_path = optarg; break;
        case 'c': a.conns = (unsigned)atoi(optarg); break;
        case 'n': a.messages = (unsigned)atoi(optarg); break;
        case 's': a.size = (size_t)atol(optarg); break;
        default: client_usage();
        }
    }
    if (optind != argc || !a.conns || !a.size || a.port > 65535)
        client_usage();
    int rc = gr_run(client_main, &a, NULL);
    if (rc < 0)
        fprintf(stderr, "echo_client: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}

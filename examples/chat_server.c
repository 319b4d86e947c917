/* chat_server: a line-based chat room over TCP.
 *
 *   chat_server [-H HOST] [-p PORT] [-w WORKERS]
 *
 * Every line a client sends is broadcast to every other client as
 * "NAME: line". "/nick NAME" renames the client; "/quit" leaves. Joins and
 * leaves are announced as "* NAME joined" / "* NAME left". Try it with a
 * few `nc 127.0.0.1 7070` in different terminals. Listens on HOST:PORT
 * (default 127.0.0.1:7070; port 0 picks a free one) and prints
 * "listening on ADDRESS".
 *
 * Structure: one hub task owns the list of clients and receives events
 * (join, line, leave) on one channel; each client has an outbox channel
 * that the hub fills and a writer task that empties it into the socket.
 * So a client that reads slowly only fills its own bounded outbox: when
 * that is full its messages are dropped (and counted), and nobody else
 * waits for it. */
#include <errno.h>
#include <greenring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_OUTBOX 256 /* messages queued for one client */
#define CHAT_LINE 512

struct chat_args {
    const char *host;
    unsigned port;
};

struct chat_msg {
    char *text; /* malloc'd; one copy per recipient */
    size_t len;
};

struct chat_client {
    struct chat_client *next; /* the hub's list; only the hub touches it */
    gr_chan *outbox;          /* struct chat_msg */
    _Atomic unsigned long dropped;
};

enum chat_kind { CHAT_JOIN, CHAT_SAY, CHAT_LEAVE };

/* Texts are formatted by the client's own task (it owns the name), so the
 * hub only moves messages around. */
struct chat_event {
    enum chat_kind kind;
    struct chat_client *from;
    struct chat_msg msg;
    gr_event *done; /* CHAT_LEAVE: set once the hub has forgotten the client */
};

struct chat_room {
    gr_chan *events; /* struct chat_event */
    struct chat_client *clients;
    _Atomic unsigned next_id;
};

static struct chat_msg chat_format(const char *name, const char *what, const char *text,
                                   size_t len)
{
    size_t cap = strlen(name) + strlen(what) + len + 8;
    struct chat_msg m = {.text = malloc(cap)};
    if (m.text)
        m.len = (size_t)snprintf(m.text, cap, "%s%s%.*s\n", name, what, (int)len, text);
    return m;
}

/* A copy for every client but `except`; a full outbox drops it. */
static void chat_broadcast(struct chat_room *room, struct chat_client *except,
                           const struct chat_msg *m)
{
    for (struct chat_client *c = room->clients; c; c = c->next) {
        if (c == except)
            continue;
        struct chat_msg copy = {.text = malloc(m->len), .len = m->len};
        if (!copy.text)
            continue;
        memcpy(copy.text, m->text, m->len);
        if (gr_chan_try_send(c->outbox, &copy) < 0) {
            free(copy.text);
            atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed); /* a counter */
        }
    }
}

static void chat_unlink(struct chat_room *room, struct chat_client *gone)
{
    for (struct chat_client **pp = &room->clients; *pp; pp = &(*pp)->next) {
        if (*pp == gone) {
            *pp = gone->next;
            return;
        }
    }
}

/* The hub: runs until the events channel is closed. */
static int chat_hub(void *arg)
{
    struct chat_room *room = arg;
    struct chat_event ev;
    while (gr_chan_recv(room->events, &ev) == 0) {
        if (ev.kind == CHAT_JOIN) {
            ev.from->next = room->clients;
            room->clients = ev.from;
        } else if (ev.kind == CHAT_LEAVE) {
            chat_unlink(room, ev.from);
        }
        if (ev.msg.text)
            chat_broadcast(room, ev.from, &ev.msg);
        free(ev.msg.text);
        if (ev.done)
            gr_event_set(ev.done);
    }
    return 0;
}

struct chat_writer_args {
    gr_stream *s;
    struct chat_client *c;
};

/* Empties the client's outbox into its socket until the outbox is closed
 * and drained. */
static int chat_writer(void *arg)
{
    struct chat_writer_args *w = arg;
    struct chat_msg m;
    int rc = 0;
    while (gr_chan_recv(w->c->outbox, &m) == 0) {
        if (rc == 0)
            rc = gr_stream_write(w->s, m.text, m.len);
        if (rc == 0 && gr_chan_len(w->c->outbox) == 0)
            rc = gr_stream_drain(w->s); /* a slow reader holds only its own writer */
        free(m.text);
    }
    return rc;
}

static void chat_strip(char *line, ssize_t *n)
{
    while (*n > 0 && (line[*n - 1] == '\n' || line[*n - 1] == '\r'))
        line[--*n] = '\0';
}

/* Reads lines and hands them to the hub until EOF or "/quit". */
static int chat_read_loop(gr_stream *s, struct chat_room *room, struct chat_client *c,
                          char *name, size_t name_size)
{
    char line[CHAT_LINE];
    for (;;) {
        ssize_t n = gr_stream_readline(s, line, sizeof(line) - 1);
        if (n == -EMSGSIZE)
            continue; /* an over-long line is dropped */
        if (n <= 0)
            return (int)n;
        line[n] = '\0';
        chat_strip(line, &n);
        if (strcmp(line, "/quit") == 0)
            return 0;
        if (strncmp(line, "/nick ", 6) == 0 && line[6]) {
            char old[32];
            snprintf(old, sizeof(old), "%s", name);
            snprintf(name, name_size, "%.31s", line + 6);
            struct chat_event ev = {.kind = CHAT_SAY, .from = c,
                                    .msg = chat_format(old, " is now ", name, strlen(name))};
            if (gr_chan_send(room->events, &ev) < 0)
                free(ev.msg.text);
            continue;
        }
        struct chat_event ev = {.kind = CHAT_SAY, .from = c,
                                .msg = chat_format(name, ": ", line, (size_t)n)};
        int rc = gr_chan_send(room->events, &ev);
        if (rc < 0) {
            free(ev.msg.text);
            return rc;
        }
    }
}

/* Leave the room and stop the writer. Shielded: a cancelled handler
 * (server shutdown) must still take itself off the hub's list. */
static void chat_leave(struct chat_room *room, struct chat_client *c, const char *name,
                       gr_task *writer)
{
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    gr_event done;
    gr_event_init(&done);
    struct chat_event ev = {.kind = CHAT_LEAVE, .from = c, .done = &done,
                            .msg = chat_format("* ", name, " left", 5)};
    if (gr_chan_send(room->events, &ev) == 0)
        gr_event_wait(&done);
    else
        free(ev.msg.text);
    gr_chan_close(c->outbox);
    gr_join(writer);
    gr_scope_leave(&shield);
}

static int chat_conn(gr_stream *s, void *arg)
{
    struct chat_room *room = arg;
    struct chat_client *c = calloc(1, sizeof(*c));
    if (!c || gr_chan_create(&c->outbox, sizeof(struct chat_msg), CHAT_OUTBOX) < 0) {
        free(c);
        return -ENOMEM;
    }
    char name[32];
    snprintf(name, sizeof(name), "guest%u", atomic_fetch_add(&room->next_id, 1) + 1);
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "welcome, you are %s\n", name);
    int rc = gr_stream_write(s, hello, (size_t)n);
    struct chat_writer_args wa = {.s = s, .c = c};
    gr_task *writer;
    if (rc == 0 && (rc = gr_spawn(&writer, chat_writer, &wa, NULL)) == 0) {
        struct chat_event ev = {.kind = CHAT_JOIN, .from = c,
                                .msg = chat_format("* ", name, " joined", 7)};
        rc = gr_chan_send(room->events, &ev);
        if (rc == 0)
            rc = chat_read_loop(s, room, c, name, sizeof(name));
        else
            free(ev.msg.text);
        chat_leave(room, c, name, writer);
    }
    struct chat_msg m;
    while (gr_chan_try_recv(c->outbox, &m) == 0)
        free(m.text);
    gr_chan_destroy(c->outbox);
    free(c);
    return rc;
}

static int chat_serve(void *arg)
{
    struct chat_args *a = arg;
    struct chat_room room = {0};
    gr_task *hub;
    if (gr_chan_create(&room.events, sizeof(struct chat_event), 1024) < 0 ||
        gr_spawn(&hub, chat_hub, &room, NULL) < 0)
        return 1;
    gr_server *srv;
    int rc = gr_start_server(&srv, a->host, (uint16_t)a->port, chat_conn, &room, NULL);
    if (rc < 0) {
        fprintf(stderr, "chat_server: cannot listen: %s\n", strerror(-rc));
        gr_chan_close(room.events);
        gr_join(hub);
        return 1;
    }
    gr_addr addr;
    char text[GR_ADDR_STRLEN];
    gr_server_addr(srv, &addr);
    gr_addr_format(&addr, text, sizeof(text));
    printf("listening on %s\n", text);
    fflush(stdout);
    gr_server_wait(srv); /* until SIGINT/SIGTERM cancels main */
    gr_server_close(srv, (int64_t)1000 * 1000 * 1000);
    /* Every handler has left the room: stop the hub. */
    gr_chan_close(room.events);
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    gr_join(hub);
    gr_scope_leave(&shield);
    gr_chan_destroy(room.events);
    return 0;
}

static void chat_usage(void)
{
    fprintf(stderr, "usage: chat_server [-H HOST] [-p PORT] [-w WORKERS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct chat_args a = {.host = "127.0.0.1", .port = 7070};
    gr_config cfg = {.graceful_shutdown = 1};
    int opt;
    while ((opt = getopt(argc, argv, "H:p:w:")) != -1) {
        switch (opt) {
        case 'H': a.host = optarg; break;
        case 'p': a.port = (unsigned)atoi(optarg); break;
        case 'w': cfg.workers = (unsigned)atoi(optarg); break;
        default: chat_usage();
        }
    }
    if (optind != argc || a.port > 65535)
        chat_usage();
    int rc = gr_run(chat_serve, &a, &cfg);
    if (rc < 0)
        fprintf(stderr, "chat_server: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}

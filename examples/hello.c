/* hello: the smallest real greenring program, built the way a user builds
 * one (the test step compiles it with plain cc and pkg-config against the
 * installed library):
 *
 *   cc hello.c $(pkg-config --cflags --libs --static greenring) -o hello
 *
 * Ten tasks sleep for different times and send their number through a pipe;
 * main reads the numbers back in wake-up order and checks the sum. */
#include <greenring.h>
#include <stdio.h>
#include <unistd.h>

#define TASKS 10

struct ctx {
    int fd;
    int n;
};

static int sender(void *arg)
{
    struct ctx *c = arg;
    int rc = gr_sleep((int64_t)(TASKS - c->n) * 1000000);
    if (rc < 0)
        return rc;
    unsigned char byte = (unsigned char)c->n;
    return gr_write(c->fd, &byte, 1) == 1 ? c->n : -1;
}

static int hello_main(void *arg)
{
    (void)arg;
    int fds[2];
    if (pipe(fds) < 0)
        return 1;
    struct ctx ctx[TASKS];
    gr_task *tasks[TASKS];
    for (int i = 0; i < TASKS; i++) {
        ctx[i] = (struct ctx){.fd = fds[1], .n = i};
        if (gr_spawn(&tasks[i], sender, &ctx[i], NULL) < 0)
            return 1;
    }
    int sum = 0;
    printf("wake-up order:");
    for (int i = 0; i < TASKS; i++) {
        unsigned char byte;
        if (gr_read(fds[0], &byte, 1) != 1)
            return 1;
        printf(" %d", byte);
        sum += byte;
    }
    printf("\n");
    for (int i = 0; i < TASKS; i++)
        if (gr_join(tasks[i]) != i)
            return 1;
    gr_close(fds[0]);
    gr_close(fds[1]);
    printf("hello from %d workers, sum %d\n", gr_worker_count(), sum);
    return sum == TASKS * (TASKS - 1) / 2 ? 0 : 1;
}

int main(void)
{
    int rc = gr_run(hello_main, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "hello: gr_run failed: %d\n", rc);
    return rc == 0 ? 0 : 1;
}

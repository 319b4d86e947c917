/* copytree: copy a directory tree, with bounded concurrency.
 *
 *   copytree [-j JOBS] SRC DST
 *
 * Copies SRC to DST (which must not exist): directories (with their
 * permission bits), regular files (content and permission bits, through
 * gr_fs_copyfile: copy_file_range in the kernel) and symbolic links (as
 * links). Every directory is listed by its own task, every file is copied
 * by its own task, all in one task group, and a semaphore lets at most
 * JOBS (default 8) file copies run at once. The first error cancels the
 * rest. Prints what it copied. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <greenring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct copy_ctx {
    gr_group *group;
    gr_sem jobs;
    _Atomic long files, dirs, links;
    _Atomic long long bytes;
};

/* One unit of work: copy src to dst (both malloc'd, freed by the task). */
struct copy_item {
    struct copy_ctx *ctx;
    char *src, *dst;
};

static int copy_spawn(struct copy_ctx *ctx, const char *src, const char *dst,
                      gr_task_fn fn);

static int copy_file_task(void *arg)
{
    struct copy_item *it = arg;
    struct copy_ctx *ctx = it->ctx;
    int rc = gr_sem_acquire(&ctx->jobs);
    if (rc == 0) {
        off_t n = gr_fs_copyfile(it->src, it->dst);
        gr_sem_release(&ctx->jobs);
        rc = n < 0 ? (int)n : 0;
        if (n >= 0) {
            atomic_fetch_add(&ctx->files, 1);
            atomic_fetch_add(&ctx->bytes, (long long)n);
        }
    }
    if (rc < 0)
        fprintf(stderr, "copytree: %s: %s\n", it->src, strerror(-rc));
    free(it->src);
    free(it->dst);
    free(it);
    return rc;
}

static int copy_link(struct copy_ctx *ctx, const char *src, const char *dst)
{
    char target[4096];
    ssize_t n = gr_fs_readlink(src, target, sizeof(target));
    int rc = n < 0 ? (int)n : gr_fs_symlink(target, dst);
    if (rc == 0)
        atomic_fetch_add(&ctx->links, 1);
    return rc;
}

static char *copy_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Is this entry a directory, a file, a link? Asks statx when the file
 * system does not say (DT_UNKNOWN). */
static unsigned char copy_type(const char *path, unsigned char type)
{
    if (type != DT_UNKNOWN)
        return type;
    struct statx st;
    if (gr_fs_lstat(path, &st) < 0)
        return DT_UNKNOWN;
    return S_ISDIR(st.stx_mode) ? DT_DIR : S_ISLNK(st.stx_mode) ? DT_LNK
                                          : S_ISREG(st.stx_mode) ? DT_REG
                                                                 : DT_UNKNOWN;
}

static int copy_entry(struct copy_ctx *ctx, const char *src, const char *dst,
                      const gr_dirent *e);

static int copy_dir_task(void *arg)
{
    struct copy_item *it = arg;
    struct copy_ctx *ctx = it->ctx;
    struct statx st;
    gr_dirent *entries = NULL;
    int rc = gr_fs_stat(it->src, &st);
    if (rc == 0)
        rc = gr_fs_mkdir(it->dst, st.stx_mode & 07777);
    ssize_t n = rc == 0 ? gr_fs_scandir(it->src, &entries) : rc;
    if (n >= 0)
        atomic_fetch_add(&ctx->dirs, 1);
    for (ssize_t i = 0; i < n && rc == 0; i++)
        rc = copy_entry(ctx, it->src, it->dst, &entries[i]);
    if (n < 0)
        rc = (int)n;
    if (rc < 0 && rc != -ECANCELED)
        fprintf(stderr, "copytree: %s: %s\n", it->src, strerror(-rc));
    free(entries);
    free(it->src);
    free(it->dst);
    free(it);
    return rc;
}

static int copy_entry(struct copy_ctx *ctx, const char *src, const char *dst,
                      const gr_dirent *e)
{
    char *s = copy_join(src, e->name), *d = copy_join(dst, e->name);
    int rc = s && d ? 0 : -ENOMEM;
    unsigned char type = rc == 0 ? copy_type(s, e->type) : DT_UNKNOWN;
    if (rc == 0 && type == DT_DIR)
        rc = copy_spawn(ctx, s, d, copy_dir_task);
    else if (rc == 0 && type == DT_REG)
        rc = copy_spawn(ctx, s, d, copy_file_task);
    else if (rc == 0 && type == DT_LNK)
        rc = copy_link(ctx, s, d);
    /* sockets, fifos, devices: skipped */
    free(s);
    free(d);
    return rc;
}

static int copy_spawn(struct copy_ctx *ctx, const char *src, const char *dst, gr_task_fn fn)
{
    struct copy_item *it = malloc(sizeof(*it));
    if (!it)
        return -ENOMEM;
    *it = (struct copy_item){.ctx = ctx, .src = strdup(src), .dst = strdup(dst)};
    int rc = it->src && it->dst ? gr_group_spawn(ctx->group, fn, it, NULL) : -ENOMEM;
    if (rc < 0) {
        free(it->src);
        free(it->dst);
        free(it);
    }
    return rc;
}

struct copy_args {
    const char *src, *dst;
    unsigned jobs;
};

static int copy_main(void *arg)
{
    struct copy_args *a = arg;
    struct copy_ctx ctx = {0};
    if (gr_fs_exists(a->dst) != 0) {
        fprintf(stderr, "copytree: %s exists\n", a->dst);
        return 1;
    }
    if (gr_fs_is_dir(a->src) != 1) {
        fprintf(stderr, "copytree: %s is not a directory\n", a->src);
        return 1;
    }
    gr_sem_init(&ctx.jobs, a->jobs);
    if (gr_group_create(&ctx.group) < 0 || copy_spawn(&ctx, a->src, a->dst, copy_dir_task) < 0)
        return 1;
    int rc = gr_group_wait(ctx.group);
    gr_group_destroy(ctx.group);
    gr_sem_destroy(&ctx.jobs);
    printf("copied %ld files (%lld bytes), %ld directories, %ld links\n", atomic_load(&ctx.files),
           atomic_load(&ctx.bytes), atomic_load(&ctx.dirs), atomic_load(&ctx.links));
    return rc < 0 ? 1 : 0;
}

static void copy_usage(void)
{
    fprintf(stderr, "usage: copytree [-j JOBS] SRC DST\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct copy_args a = {.jobs = 8};
    int opt;
    while ((opt = getopt(argc, argv, "j:")) != -1) {
        if (opt == 'j')
            a.jobs = (unsigned)atoi(optarg);
        else
            copy_usage();
    }
    if (argc - optind != 2 || a.jobs == 0)
        copy_usage();
    a.src = argv[optind];
    a.dst = argv[optind + 1];
    int rc = gr_run(copy_main, &a, NULL);
    if (rc < 0)
        fprintf(stderr, "copytree: %s\n", strerror(-rc));
    return rc == 0 ? 0 : 1;
}

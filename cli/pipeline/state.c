/* The pipeline's memory in its work folder: state.json (each stage's cache key, status
 * and outputs; content hashes of files by path, size and mtime), written atomically. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/output.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"
#include "internal/sha256.h"

static char *state_path(const slm_pipe_t *p)
{
    size_t n = strlen(p->work) + 16;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/state.json", p->work);
    return s;
}

int slm_pipe_state_load(slm_pipe_t *p)
{
    char *path = state_path(p);
    json_error_t je;
    struct stat st;
    p->state = NULL;
    if (path && stat(path, &st) == 0) {
        p->state = json_load_file(path, 0, &je);
        if (!p->state || !json_is_object(p->state) ||
            json_integer_value(json_object_get(p->state, "version")) != 1) {
            fprintf(stderr, "slmops %s: %s: not a pipeline state file (%s); remove it to start "
                    "over\n", p->verb, path, p->state ? "wrong version" : je.text);
            free(path);
            return SLM_CLI_FAILED;
        }
    }
    free(path);
    if (!p->state)
        p->state = json_pack("{s:i, s:{}, s:{}}", "version", 1, "stages", "hashes");
    return p->state ? SLM_CLI_OK : SLM_CLI_FAILED;
}

int slm_pipe_write_text(slm_pipe_t *p, const char *path, const char *text, size_t len)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_output_params_t op;
    slm_output_params_init(&op);
    slm_output_t *o = NULL;
    if (slm_output_prepare(path, &op, &o, &err) != SLM_OK)
        return slm_cli_fail(p->verb, &err);
    FILE *f = fopen(slm_output_path(o), "wb");
    bool ok = f && fwrite(text, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "slmops %s: %s: %s\n", p->verb, path, strerror(errno));
        slm_output_abort(o);
        return SLM_CLI_FAILED;
    }
    return slm_output_commit(o, &err) == SLM_OK ? SLM_CLI_OK : slm_cli_fail(p->verb, &err);
}

int slm_pipe_state_save(slm_pipe_t *p)
{
    char *text = json_dumps(p->state, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *path = state_path(p);
    int rc = text && path ? slm_pipe_write_text(p, path, text, strlen(text)) : SLM_CLI_FAILED;
    free(text);
    free(path);
    return rc;
}

char *slm_pipe_dir(slm_pipe_t *p, const char *name)
{
    size_t n = strlen(p->work) + strlen(name) + 2;
    char *d = malloc(n);
    if (!d)
        return NULL;
    snprintf(d, n, "%s/%s", p->work, name);
    if (mkdir(d, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "slmops %s: %s: %s\n", p->verb, d, strerror(errno));
        free(d);
        return NULL;
    }
    return d;
}

void slm_pipe_remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        slm_pipe_remove(sub);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

static bool hash_file(const char *path, slm__sha256_t *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    static unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        slm__sha256_update(h, buf, (size_t)n);
    close(fd);
    return n == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder: each regular file's name and content, in sorted order, recursively. */
static bool hash_tree(const char *path, slm__sha256_t *h)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        ok = grown && (grown[n] = strdup(e->d_name));
        names = grown ? grown : names;
        n += ok;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char sub[4096];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        slm__sha256_update(h, names[i], strlen(names[i]) + 1);
        if (ok && stat(sub, &st) == 0)
            ok = S_ISDIR(st.st_mode) ? hash_tree(sub, h) : hash_file(sub, h);
        free(names[i]);
    }
    free(names);
    return ok;
}

const char *slm_pipe_hash(slm_pipe_t *p, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "slmops %s: %s: %s\n", p->verb, path, strerror(errno));
        return NULL;
    }
    char stamp[96];
    snprintf(stamp, sizeof stamp, "%lld:%lld.%09ld", (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    json_t *hashes = json_object_get(p->state, "hashes");
    json_t *known = json_object_get(hashes, path);
    if (!S_ISDIR(st.st_mode) &&
        strcmp(json_string_value(json_object_get(known, "stamp")) ?: "", stamp) == 0)
        return json_string_value(json_object_get(known, "sha256"));
    slm__sha256_t h;
    slm__sha256_init(&h);
    bool ok = S_ISDIR(st.st_mode) ? hash_tree(path, &h) : hash_file(path, &h);
    if (!ok) {
        fprintf(stderr, "slmops %s: %s: cannot read: %s\n", p->verb, path, strerror(errno));
        return NULL;
    }
    char hex[65];
    slm__sha256_final(&h, hex);
    json_object_set_new(hashes, path, json_pack("{s:s, s:s}", "stamp", stamp, "sha256", hex));
    return json_string_value(json_object_get(json_object_get(hashes, path), "sha256"));
}

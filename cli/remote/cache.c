/* The remote teacher's cache: a JSONL file appended one fsync'd line per answered
 * request, so a killed run loses at most the requests in flight and a re-run sends none. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/common.h"
#include "cli/remote/remote.h"

#define MAX_CACHE_BYTES (1ull << 30)

struct slm_cli_cache {
    const char *path;
    int fd;
    json_t *by_key;            /* key -> entry */
    size_t dropped;
};

static int fail(const char *path, const char *what)
{
    fprintf(stderr, "slmops distill: %s: %s\n", path, what);
    return SLM_CLI_FAILED;
}

/* Every complete line goes in; a last line without its newline is a write a kill cut
 * short: it is cut off the file, and its request asked again. */
static int load(slm_cli_cache_t *c, char *text, size_t len)
{
    size_t line = 0, good = 0;
    for (char *s = text, *end = text + len; s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        line++;
        if (!nl) {
            c->dropped++;
            break;
        }
        json_t *o = json_loadb(s, (size_t)(nl - s), JSON_REJECT_DUPLICATES, NULL);
        const char *key = json_string_value(json_object_get(o, "key"));
        if (!key) {
            json_decref(o);
            fprintf(stderr, "slmops distill: %s:%zu: not a cache entry (a JSON object with "
                    "\"key\"); remove the line or give another --teacher-cache\n", c->path, line);
            return SLM_CLI_FAILED;
        }
        json_object_set_new(c->by_key, key, o);
        s = nl + 1;
        good = (size_t)(s - text);
    }
    if (good < len && ftruncate(c->fd, (off_t)good) != 0)
        return fail(c->path, strerror(errno));
    return SLM_CLI_OK;
}

int slm_cli_cache_open(const char *path, slm_cli_cache_t **out)
{
    *out = NULL;
    slm_cli_cache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->by_key = json_object())) {
        free(c);
        return fail(path, "out of memory");
    }
    c->path = path;
    c->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    int rc = SLM_CLI_OK;
    if (c->fd < 0 || fstat(c->fd, &st) != 0)
        rc = fail(path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail(path, "not a regular file (the cache is a JSONL file)");
    else if ((unsigned long long)st.st_size > MAX_CACHE_BYTES)
        rc = fail(path, "over 1 GiB: not a cache this command wrote");
    char *text = rc == SLM_CLI_OK ? malloc((size_t)st.st_size + 1) : NULL;
    if (rc == SLM_CLI_OK && !text)
        rc = fail(path, "out of memory");
    if (rc == SLM_CLI_OK && pread(c->fd, text, (size_t)st.st_size, 0) != st.st_size)
        rc = fail(path, "cannot read it");
    if (rc == SLM_CLI_OK)
        rc = load(c, text, (size_t)st.st_size);
    free(text);
    if (rc != SLM_CLI_OK) {
        slm_cli_cache_close(c);
        return rc;
    }
    *out = c;
    return SLM_CLI_OK;
}

const json_t *slm_cli_cache_get(const slm_cli_cache_t *c, const char *key)
{
    return json_object_get(c->by_key, key);
}

int slm_cli_cache_put(slm_cli_cache_t *c, json_t *entry)
{
    char *text = json_dumps(entry, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t n = text ? strlen(text) : 0;
    char *line = text ? realloc(text, n + 2) : NULL;
    if (!line) {
        free(text);
        json_decref(entry);
        return fail(c->path, "out of memory");
    }
    line[n++] = '\n';
    /* One write with O_APPEND: the line lands whole or, cut by a kill, is torn at
     * the end, where the next open drops it. */
    ssize_t w = write(c->fd, line, n);
    free(line);
    if (w != (ssize_t)n || fsync(c->fd) != 0) {
        json_decref(entry);
        return fail(c->path, w < 0 ? strerror(errno) : "write failed (disk full?)");
    }
    json_object_set_new(c->by_key, json_string_value(json_object_get(entry, "key")), entry);
    return SLM_CLI_OK;
}

size_t slm_cli_cache_dropped(const slm_cli_cache_t *c)
{
    return c->dropped;
}

void slm_cli_cache_close(slm_cli_cache_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    json_decref(c->by_key);
    free(c);
}

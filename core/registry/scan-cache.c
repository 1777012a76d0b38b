/* The verdict cache of first loads ($XDG_CACHE_HOME/slmops/plugin-scan.json): read
 * once per registry and checked field by field, written atomically and merged. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal/registry.h"
#include "internal/util.h"

#define CACHE_VERSION 1
#define CACHE_NAME "plugin-scan.json"
#define CACHE_MAX_BYTES (4 << 20)
#define CACHE_MAX_ENTRIES 4096

#define REASON_MAX (sizeof ((slm__verdict_t *)0)->reason - 1)

struct slm__scan_cache {
    char *path;     /* the cache file; NULL keeps verdicts in this registry only */
    json_t *libs;   /* library path -> entry */
    bool dirty;     /* verdicts not written yet */
};

/* A verdict depends on the library and on what the host offers it. */
static const char *host_id(void)
{
    static char id[64];
    if (!id[0])
        snprintf(id, sizeof id, "slmops %s abi %u", PACKAGE_VERSION, SLM_PLUGIN_ABI_VERSION);
    return id;
}

/* ctime changes whenever the file is rewritten, renamed over or chmod'ed, which
 * mtime alone (kept by `cp -p` or `install -p`) does not tell. */
void slm__scan_stamp(const struct stat *st, char *buf, size_t size)
{
    snprintf(buf, size, "%ju:%ju:%jd:%jd.%09ld:%jd.%09ld", (uintmax_t)st->st_dev,
             (uintmax_t)st->st_ino, (intmax_t)st->st_size, (intmax_t)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec, (intmax_t)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

/* XDG: a relative XDG_CACHE_HOME is invalid and ignored. */
static char *cache_path(void)
{
    const char *base = slm__getenv("XDG_CACHE_HOME"), *sub = "/slmops/" CACHE_NAME;
    if (!base || base[0] != '/') {
        base = slm__getenv("HOME");
        sub = "/.cache/slmops/" CACHE_NAME;
    }
    if (!base || base[0] != '/')
        return NULL;
    size_t a = strlen(base), b = strlen(sub);
    char *p = a + b < PATH_MAX ? malloc(a + b + 1) : NULL;
    if (p) {
        memcpy(p, base, a);
        memcpy(p + a, sub, b + 1);
    }
    return p;
}

static bool stamp_chars(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == ':' || *s == '.' || *s == '-'))
            return false;
    return true;
}

static bool is_string(const json_t *v, size_t min, size_t max)
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    return n >= min && n <= max && strlen(json_string_value(v)) == n;
}

static bool is_int(const json_t *v, json_int_t lo, json_int_t hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static bool valid_answer(const json_t *a)
{
    return json_is_null(a) ||
           (json_is_object(a) && json_object_size(a) == 5 &&
            is_int(json_object_get(a, "abi_version"), 0, UINT32_MAX) &&
            is_int(json_object_get(a, "iface_version"), 0, UINT32_MAX) &&
            is_int(json_object_get(a, "kind"), INT32_MIN, INT32_MAX) &&
            is_string(json_object_get(a, "name"), 0, 63) &&
            is_string(json_object_get(a, "version"), 0, 63));
}

/* Every field present, of its type and range, and nothing else: a cache that a
 * crash cut short or a person edited is never half-trusted. */
static bool valid_entry(const char *lib, const json_t *e)
{
    if (lib[0] != '/' || strlen(lib) >= PATH_MAX || !json_is_object(e) || json_object_size(e) != 5)
        return false;
    if (!is_int(json_object_get(e, "retry_after"), 0, INT64_MAX))
        return false;
    const json_t *stamp = json_object_get(e, "stamp"), *safe = json_object_get(e, "safe");
    const json_t *reason = json_object_get(e, "reason");
    if (!is_string(stamp, 1, 127) || !stamp_chars(json_string_value(stamp)) ||
        !json_is_boolean(safe) || !valid_answer(json_object_get(e, "answer")))
        return false;
    /* A safe library has no reason; an unsafe one always has one. */
    return json_is_true(safe) ? is_string(reason, 0, 0)
                              : is_string(reason, 1, REASON_MAX);
}

/* The libraries object of the cache file, or NULL with why it cannot be used
 * (why stays "" when there is simply no cache yet). */
static json_t *cache_read(const char *path, char *why, size_t why_size)
{
    why[0] = '\0';
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno != ENOENT)
            snprintf(why, why_size, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    ssize_t got = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(why, why_size, "not a regular file");
    else if (st.st_size > CACHE_MAX_BYTES)
        snprintf(why, why_size, "larger than %d bytes", CACHE_MAX_BYTES);
    else if ((text = malloc((size_t)st.st_size + 1)))
        while ((got = read(fd, text, (size_t)st.st_size + 1)) < 0 && errno == EINTR)
            ;
    close(fd);
    if (!text || got != st.st_size) {
        if (!why[0])
            snprintf(why, why_size, "%s", text ? "changed while read" : "out of memory");
        free(text);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, (size_t)got, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    json_t *libs = json_object_get(root, "libraries");
    if (!root || !json_is_object(root) || json_object_size(root) != 3 ||
        !is_int(json_object_get(root, "version"), CACHE_VERSION, CACHE_VERSION) ||
        !is_string(json_object_get(root, "host"), 1, 63) || !json_is_object(libs) ||
        json_object_size(libs) > CACHE_MAX_ENTRIES) {
        snprintf(why, why_size, "%s", root ? "not a version 1 cache" : jerr.text);
        json_decref(root);
        return NULL;
    }
    if (strcmp(json_string_value(json_object_get(root, "host")), host_id()) != 0) {
        snprintf(why, why_size, "written by %s", json_string_value(json_object_get(root, "host")));
        json_decref(root);
        return NULL;
    }
    const char *lib;
    json_t *e;
    json_object_foreach(libs, lib, e) {
        if (!valid_entry(lib, e)) {
            snprintf(why, why_size, "entry %.200s is damaged", lib);
            json_decref(root);
            return NULL;
        }
    }
    json_incref(libs);
    json_decref(root);
    return libs;
}

static struct slm__scan_cache *cache_of(slm_registry_t *reg)
{
    if (reg->scan)
        return reg->scan;
    struct slm__scan_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->path = reg->use_env ? cache_path() : NULL;
    char why[300] = "";
    c->libs = c->path ? cache_read(c->path, why, sizeof why) : NULL;
    if (why[0])
        slm_log(SLM_LOG_INFO, "registry", "%s: not used (%s); it is rebuilt", c->path, why);
    if (!c->libs && !(c->libs = json_object())) {
        free(c->path);
        free(c);
        return NULL;
    }
    reg->scan = c;
    return c;
}

static void copy_string(char *dst, size_t size, const json_t *v)
{
    snprintf(dst, size, "%s", json_string_value(v) ? json_string_value(v) : "");
}

bool slm__verdict_lookup(slm_registry_t *reg, const char *path, const char *stamp,
                         slm__verdict_t *v)
{
    struct slm__scan_cache *c = cache_of(reg);
    json_t *e = c ? json_object_get(c->libs, path) : NULL;
    if (!e || strcmp(json_string_value(json_object_get(e, "stamp")), stamp) != 0)
        return false;
    json_int_t retry_after = json_integer_value(json_object_get(e, "retry_after"));
    if (retry_after && (json_int_t)time(NULL) >= retry_after)
        return false;   /* a hang verdict that has had its time: judge it again */
    memset(v, 0, sizeof *v);
    v->safe = json_is_true(json_object_get(e, "safe"));
    v->lasting = true;
    v->retry_after = retry_after;
    copy_string(v->reason, sizeof v->reason, json_object_get(e, "reason"));
    json_t *a = json_object_get(e, "answer");
    if (json_is_object(a)) {
        v->answered = true;
        v->abi_version = (uint32_t)json_integer_value(json_object_get(a, "abi_version"));
        v->iface_version = (uint32_t)json_integer_value(json_object_get(a, "iface_version"));
        v->kind = (int32_t)json_integer_value(json_object_get(a, "kind"));
        copy_string(v->name, sizeof v->name, json_object_get(a, "name"));
        copy_string(v->version, sizeof v->version, json_object_get(a, "version"));
    }
    return true;
}

/* Keeps only entries that still describe the file at their path, so the cache
 * stays as small as the set of installed libraries. */
static void prune(json_t *libs)
{
    const char *lib;
    json_t *e;
    void *tmp;
    json_object_foreach_safe(libs, tmp, lib, e) {
        struct stat st;
        char stamp[128];
        if (stat(lib, &st) == 0) {
            slm__scan_stamp(&st, stamp, sizeof stamp);
            if (strcmp(stamp, json_string_value(json_object_get(e, "stamp"))) == 0)
                continue;
        }
        json_object_del(libs, lib);
    }
}

/* Temporary files of writers that died before their rename: NAME.tmp.PID whose
 * process no longer runs. */
static void remove_dead_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    const char *prefix = CACHE_NAME ".tmp.";
    size_t plen = strlen(prefix);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    }
    closedir(d);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* XDG: create missing folders 0700; only the last two levels are ours to make. */
static bool make_folder(char *path)
{
    char *slash = strrchr(path, '/');
    *slash = '\0';
    char *parent = strrchr(path, '/');
    bool ok = true;
    if (parent && parent != path) {
        *parent = '\0';
        ok = mkdir(path, 0700) == 0 || errno == EEXIST;
        *parent = '/';
    }
    ok = ok && (mkdir(path, 0700) == 0 || errno == EEXIST);
    *slash = '/';
    return ok;
}

/* Serialises writers so that none loses what another merged; a holder that does
 * not let go within a second (a stopped process) is not waited for: without the
 * lock a verdict may be lost, never the file. Returns the lock's fd or -1. */
static int lock_cache(const char *path)
{
    char name[PATH_MAX + 8];
    snprintf(name, sizeof name, "%s.lock", path);
    int fd = open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    for (int i = 0; fd >= 0 && i < 100; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        poll(NULL, 0, 10);
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Other processes write the same file (make check runs tests in parallel): what
 * they added since it was read is merged in, and each writer renames a file of
 * its own into place, so a reader sees one whole version or another. */
static void cache_write(struct slm__scan_cache *c)
{
    char why[300];
    if (!make_folder(c->path)) {
        slm_log(SLM_LOG_DEBUG, "registry", "%s: cannot create its folder: %s", c->path,
                strerror(errno));
        return;
    }
    int lock = lock_cache(c->path);
    json_t *disk = cache_read(c->path, why, sizeof why);
    const char *lib;
    json_t *e;
    /* Pruned first, so that a current verdict from either side wins over a stale one. */
    prune(c->libs);
    if (disk)
        prune(disk);
    json_object_foreach(disk, lib, e)
        if (!json_object_get(c->libs, lib))
            json_object_set(c->libs, lib, e);
    json_decref(disk);
    json_t *root = json_pack("{s:i, s:s, s:O}", "version", CACHE_VERSION, "host", host_id(),
                             "libraries", c->libs);
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    char tmp[PATH_MAX + 32], dir[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", c->path, (long)getpid());
    snprintf(dir, sizeof dir, "%s", c->path);
    *strrchr(dir, '/') = '\0';
    int fd = -1;
    if (text) {
        remove_dead_temps(dir);
        unlink(tmp);   /* a dead process of the same PID left it */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    bool ok = fd >= 0 && write_all(fd, text, strlen(text)) && write_all(fd, "\n", 1) &&
              fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (ok && rename(tmp, c->path) == 0) {
        slm_log(SLM_LOG_DEBUG, "registry", "%s: %zu verdicts written", c->path,
                json_object_size(c->libs));
    } else {
        int saved = errno;
        if (fd >= 0)
            unlink(tmp);
        slm_log(SLM_LOG_DEBUG, "registry", "%s: cannot write the plugin scan cache: %s", c->path,
                text ? strerror(saved) : "out of memory");
    }
    if (lock >= 0)
        close(lock);
    free(text);
}

void slm__verdict_store(slm_registry_t *reg, const char *path, const char *stamp,
                        const slm__verdict_t *v)
{
    struct slm__scan_cache *c = cache_of(reg);
    if (!c)
        return;
    /* The names a library answered may be any bytes: json_pack refuses what is
     * not UTF-8, and the verdict is kept without them. */
    json_t *answer = v->answered ? json_pack("{s:I, s:I, s:I, s:s, s:s}", "abi_version",
                                             (json_int_t)v->abi_version, "iface_version",
                                             (json_int_t)v->iface_version, "kind",
                                             (json_int_t)v->kind, "name", v->name, "version",
                                             v->version)
                                 : NULL;
    json_t *e = json_pack("{s:s, s:b, s:s, s:o, s:I}", "stamp", stamp, "safe", v->safe, "reason",
                          v->safe ? "" : v->reason, "answer", answer ? answer : json_null(),
                          "retry_after", (json_int_t)v->retry_after);
    if (!e || !valid_entry(path, e)) {
        json_decref(e);
        slm_log(SLM_LOG_DEBUG, "registry", "%s: verdict not cached", path);
        return;
    }
    if (json_object_set_new(c->libs, path, e) != 0)
        return;   /* the path is not UTF-8: judged again next time */
    c->dirty = true;
    /* An unsafe verdict is written at once: losing one costs the next run another
     * crash or a wait; safe ones are written together when the registry is freed. */
    if (c->path && !v->safe) {
        cache_write(c);
        c->dirty = false;
    }
}

void slm__verdict_cache_free(slm_registry_t *reg)
{
    if (!reg->scan)
        return;
    if (reg->scan->path && reg->scan->dirty)
        cache_write(reg->scan);
    json_decref(reg->scan->libs);
    free(reg->scan->path);
    free(reg->scan);
    reg->scan = NULL;
}

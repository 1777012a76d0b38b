/* Training checkpoints: an atomic folder per step with a manifest of SHA-256 sums,
 * verified whole before anything is read, and pruned to the newest few. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/checkpoint.h>
#include <slmops/input.h>
#include <slmops/log.h>
#include <slmops/output.h>

#include "internal/output.h"
#include "internal/sha256.h"
#include "internal/util.h"

#define STEP_PREFIX "step-"
/* A checkpoint's files are read whole; larger ones are refused. */
#define MAX_FILE_BYTES (64ull << 30)
#define MAX_MANIFEST_BYTES (1u << 20)

struct slm_checkpoint_writer {
    slm_output_t *out;
    char *root;
    uint64_t step;
    char **old_names;          /* an earlier checkpoint of the same step: what it holds */
};

static char *step_path(const char *root, uint64_t step)
{
    char name[32];
    snprintf(name, sizeof name, STEP_PREFIX "%08" PRIu64, step);
    return slm__path_join(root, name);
}

/* "step-NNNNNNNN" exactly (a temporary or anything else is not a checkpoint). */
static bool step_of(const char *name, uint64_t *step)
{
    size_t n = strlen(STEP_PREFIX);
    if (strncmp(name, STEP_PREFIX, n) != 0 || !name[n])
        return false;
    uint64_t v = 0;
    for (const char *p = name + n; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *step = v;
    return true;
}

/* Temporaries of checkpoints whose writers died (killed while writing). */
static void remove_dead_temporaries(const char *root)
{
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *mark = strstr(e->d_name, SLM__OUTPUT_TMP_MARK);
        uint64_t step;
        if (!mark)
            continue;
        char *target_name = strndup(e->d_name, (size_t)(mark - e->d_name));
        char *target = target_name && step_of(target_name, &step)
                           ? slm__path_join(root, target_name) : NULL;
        if (target)
            slm__output_remove_dead(target);
        free(target);
        free(target_name);
    }
    if (d)
        closedir(d);
}

static int make_root(const char *root, slm_error_t *err)
{
    struct stat st;
    if (stat(root, &st) == 0)
        return S_ISDIR(st.st_mode) ? SLM_OK
                                   : slm__fail(err, SLM_E_INVALID, root, -1, "%s: is %s, not a "
                                               "folder for checkpoints", root,
                                               slm_input_kind(st.st_mode));
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        return slm__fail(err, SLM_E_IO, root, -1, "%s: cannot create the checkpoint folder: %s",
                         root, strerror(errno));
    return SLM_OK;
}

static void free_names(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

/* The names an earlier checkpoint at path holds (its manifest's and the manifest),
 * so that the output module may replace that folder and nothing else. */
static char **names_of(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    char *mpath = slm__path_join(path, SLM_CHECKPOINT_MANIFEST);
    json_t *m = mpath && slm_input_read_all(mpath, MAX_MANIFEST_BYTES, &text, &len, NULL) == SLM_OK
                    ? json_loadb(text, len, 0, NULL) : NULL;
    free(mpath);
    free(text);
    json_t *files = json_object_get(m, "files");
    char **names = calloc(json_object_size(files) + 2, sizeof *names);
    size_t n = 0;
    const char *key;
    json_t *v;
    if (names) {
        names[n++] = strdup(SLM_CHECKPOINT_MANIFEST);
        json_object_foreach(files, key, v)
            names[n++] = strdup(key);
    }
    json_decref(m);
    return names;
}

int slm_checkpoint_begin(const char *root, uint64_t step, slm_checkpoint_writer_t **out,
                         slm_error_t *err)
{
    if (!root || !out)
        return slm__fail(err, SLM_E_INVALID, root, -1, "checkpoint: no folder or result");
    *out = NULL;
    int rc = make_root(root, err);
    if (rc)
        return rc;
    remove_dead_temporaries(root);
    slm_checkpoint_writer_t *w = calloc(1, sizeof *w);
    char *target = step_path(root, step);
    if (!w || !target || !(w->root = strdup(root))) {
        free(target);
        slm_checkpoint_abort(w);
        return slm__fail(err, SLM_E_NOMEM, root, -1, "checkpoint: out of memory");
    }
    w->step = step;
    struct stat st;
    if (lstat(target, &st) == 0 && S_ISDIR(st.st_mode))
        w->old_names = names_of(target);
    slm_output_params_t p;
    slm_output_params_init(&p);
    p.layout = SLM_OUTPUT_FOLDER;
    p.folder_names = (const char *const *)w->old_names;
    rc = slm_output_prepare(target, &p, &w->out, err);
    free(target);
    if (rc) {
        slm_checkpoint_abort(w);
        return rc;
    }
    *out = w;
    return SLM_OK;
}

const char *slm_checkpoint_dir(const slm_checkpoint_writer_t *w)
{
    return w && w->out ? slm_output_path(w->out) : NULL;
}

static bool plain_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

int slm_checkpoint_put(slm_checkpoint_writer_t *w, const char *name, const void *data, size_t n,
                       slm_error_t *err)
{
    if (!w || !plain_name(name) || strcmp(name, SLM_CHECKPOINT_MANIFEST) == 0 || (n && !data))
        return slm__fail(err, SLM_E_INVALID, name, -1, "checkpoint: bad file name or data");
    char *path = slm__path_join(slm_checkpoint_dir(w), name);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    int rc = fd < 0 ? slm__fail(err, SLM_E_IO, path, -1, "%s: cannot create: %s", name,
                                strerror(errno))
                    : SLM_OK;
    for (size_t done = 0; rc == SLM_OK && done < n;) {
        ssize_t got = write(fd, (const char *)data + done, n - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = slm__fail(err, SLM_E_IO, path, (int64_t)done, "%s: cannot write: %s", name,
                           strerror(errno));
        else
            done += (size_t)got;
    }
    if (fd >= 0 && close(fd) != 0 && rc == SLM_OK)
        rc = slm__fail(err, SLM_E_IO, path, -1, "%s: cannot write: %s", name, strerror(errno));
    free(path);
    return rc;
}

/* Size and SHA-256 of a file, read in chunks. */
static int hash_file(const char *path, uint64_t *size, char hex[65], slm_error_t *err)
{
    int fd;
    int rc = slm_input_open(path, 0, &fd, err);
    if (rc)
        return rc;
    slm__sha256_t s;
    slm__sha256_init(&s);
    char buf[1 << 16];
    *size = 0;
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = slm__fail(err, SLM_E_IO, path, (int64_t)*size, "%s: cannot read: %s", path,
                           strerror(errno));
            break;
        }
        if (got == 0)
            break;
        slm__sha256_update(&s, buf, (size_t)got);
        *size += (uint64_t)got;
    }
    close(fd);
    if (rc == SLM_OK)
        slm__sha256_final(&s, hex);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The manifest of the files in dir, in name order (for stable bytes). */
static int build_manifest(const char *dir, uint64_t step, json_t **out, slm_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return slm__fail(err, SLM_E_IO, dir, -1, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = SLM_OK;
    while (rc == SLM_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) {
                rc = SLM_E_NOMEM;
                break;
            }
            names = v;
        }
        if (!(names[n] = strdup(e->d_name)))
            rc = SLM_E_NOMEM;
        else
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    json_t *files = json_object();
    for (size_t i = 0; rc == SLM_OK && i < n; i++) {
        char *path = slm__path_join(dir, names[i]), hex[65];
        uint64_t size = 0;
        rc = path ? hash_file(path, &size, hex, err) : SLM_E_NOMEM;
        if (rc == SLM_OK)
            json_object_set_new(files, names[i], json_pack("{s:I, s:s}", "size",
                                                           (json_int_t)size, "sha256", hex));
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == SLM_E_NOMEM)
        slm__fail(err, rc, dir, -1, "checkpoint: out of memory");
    if (rc) {
        json_decref(files);
        return rc;
    }
    *out = json_pack("{s:I, s:o}", "step", (json_int_t)step, "files", files);
    return *out ? SLM_OK : slm__fail(err, SLM_E_NOMEM, dir, -1, "checkpoint: out of memory");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Steps of the checkpoints under root, ascending; *n of them (free()). */
static uint64_t *list_steps(const char *root, size_t *n)
{
    DIR *d = opendir(root);
    uint64_t *v = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        uint64_t step;
        if (!step_of(e->d_name, &step))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
        }
        v[(*n)++] = step;
    }
    if (d)
        closedir(d);
    if (*n)
        qsort(v, *n, sizeof *v, cmp_u64);
    return v;
}

static void prune(const char *root, uint32_t keep)
{
    size_t n = 0;
    uint64_t *steps = list_steps(root, &n);
    for (size_t i = 0; keep && i + keep < n; i++) {
        char *path = step_path(root, steps[i]);
        if (path) {
            slm_log(SLM_LOG_INFO, "train", "%s: removed (keeping the newest %u checkpoints)",
                    path, keep);
            slm__output_remove(path, true);
        }
        free(path);
    }
    free(steps);
}

int slm_checkpoint_commit(slm_checkpoint_writer_t *w, uint32_t keep, char **path,
                          slm_error_t *err)
{
    if (path)
        *path = NULL;
    if (!w)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "checkpoint: no writer");
    json_t *m = NULL;
    int rc = build_manifest(slm_checkpoint_dir(w), w->step, &m, err);
    char *text = rc == SLM_OK ? json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    if (rc == SLM_OK && !text)
        rc = slm__fail(err, SLM_E_NOMEM, w->root, -1, "checkpoint: out of memory");
    /* The manifest is written last: a folder that has one is complete. */
    if (rc == SLM_OK) {
        char *mpath = slm__path_join(slm_checkpoint_dir(w), SLM_CHECKPOINT_MANIFEST);
        FILE *f = mpath ? fopen(mpath, "wbx") : NULL;
        if (!f || fputs(text, f) == EOF || fclose(f) != 0)
            rc = slm__fail(err, SLM_E_IO, mpath, -1, "%s: cannot write the manifest: %s",
                           w->root, strerror(errno));
        free(mpath);
    }
    free(text);
    char *target = rc == SLM_OK ? strdup(slm_output_target(w->out)) : NULL;
    if (rc == SLM_OK)
        rc = slm_output_commit(w->out, err);
    else
        slm_output_abort(w->out);
    w->out = NULL;
    if (rc == SLM_OK)
        prune(w->root, keep);
    if (rc == SLM_OK && path)
        *path = target;
    else
        free(target);
    slm_checkpoint_abort(w);
    return rc;
}

void slm_checkpoint_abort(slm_checkpoint_writer_t *w)
{
    if (!w)
        return;
    slm_output_abort(w->out);
    free_names(w->old_names);
    free(w->root);
    free(w);
}

/* ---- reading ---- */

static int read_manifest(const char *dir, json_t **out, slm_error_t *err)
{
    char *mpath = slm__path_join(dir, SLM_CHECKPOINT_MANIFEST), *text = NULL;
    size_t len = 0;
    if (!mpath)
        return slm__fail(err, SLM_E_NOMEM, dir, -1, "checkpoint: out of memory");
    int rc = slm_input_read_all(mpath, MAX_MANIFEST_BYTES, &text, &len, err);
    if (rc == SLM_E_NOT_FOUND)
        rc = slm__fail(err, SLM_E_FORMAT, mpath, -1, "%s: no %s: not a complete checkpoint",
                       dir, SLM_CHECKPOINT_MANIFEST);
    json_error_t je;
    json_t *m = rc == SLM_OK ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    free(text);
    if (rc == SLM_OK && (!m || !json_is_object(json_object_get(m, "files")) ||
                         !json_is_integer(json_object_get(m, "step"))))
        rc = slm__fail(err, SLM_E_FORMAT, mpath, -1, "%s: damaged (not the manifest of a "
                       "checkpoint)", mpath);
    free(mpath);
    if (rc) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return SLM_OK;
}

static int verify_file(const char *dir, const char *name, const json_t *want, slm_error_t *err)
{
    const json_t *size = json_object_get(want, "size"), *sum = json_object_get(want, "sha256");
    if (!plain_name(name) || !json_is_integer(size) || !json_is_string(sum))
        return slm__fail(err, SLM_E_FORMAT, dir, -1, "%s: the manifest's entry for '%s' is "
                         "damaged", dir, name);
    char *path = slm__path_join(dir, name), hex[65];
    uint64_t got = 0;
    slm_error_t e;
    slm_error_init(&e);
    int rc = path ? hash_file(path, &got, hex, &e) : SLM_E_NOMEM;
    if (rc == SLM_E_NOT_FOUND)
        rc = slm__fail(err, SLM_E_FORMAT, path, -1, "%s: missing from the checkpoint", path);
    else if (rc)
        rc = slm__fail(err, rc, path, -1, "%s", e.message);
    else if (got != (uint64_t)json_integer_value(size))
        rc = slm__fail(err, SLM_E_FORMAT, path, -1, "%s: %" PRIu64 " bytes, the manifest says "
                       "%" PRId64 " (truncated or damaged)", path, got,
                       (int64_t)json_integer_value(size));
    else if (strcmp(hex, json_string_value(sum)) != 0)
        rc = slm__fail(err, SLM_E_FORMAT, path, -1, "%s: its SHA-256 differs from the manifest's "
                       "(the file is damaged)", path);
    free(path);
    return rc;
}

int slm_checkpoint_verify(const char *dir, uint64_t *step, slm_error_t *err)
{
    json_t *m = NULL;
    int rc = read_manifest(dir, &m, err);
    const char *name;
    json_t *want;
    json_object_foreach(json_object_get(m, "files"), name, want) {
        if (rc)
            break;
        rc = verify_file(dir, name, want, err);
    }
    if (rc == SLM_OK && step)
        *step = (uint64_t)json_integer_value(json_object_get(m, "step"));
    json_decref(m);
    return rc;
}

int slm_checkpoint_find(const char *dir, char **path, slm_error_t *err)
{
    *path = NULL;
    char *mpath = slm__path_join(dir, SLM_CHECKPOINT_MANIFEST);
    struct stat st;
    bool is_one = mpath && stat(mpath, &st) == 0;
    free(mpath);
    if (is_one) {
        int rc = slm_checkpoint_verify(dir, NULL, err);
        if (rc == SLM_OK && !(*path = strdup(dir)))
            rc = slm__fail(err, SLM_E_NOMEM, dir, -1, "checkpoint: out of memory");
        return rc;
    }
    size_t n = 0;
    uint64_t *steps = list_steps(dir, &n);
    int rc = slm__fail(err, SLM_E_NOT_FOUND, dir, -1, "%s: holds no complete checkpoint", dir);
    for (size_t i = n; i-- > 0;) {
        char *p = step_path(dir, steps[i]);
        slm_error_t e;
        slm_error_init(&e);
        if (p && slm_checkpoint_verify(p, NULL, &e) == SLM_OK) {
            *path = p;
            rc = SLM_OK;
            if (err)
                slm_error_init(err);
            break;
        }
        if (p)
            slm_log(SLM_LOG_WARN, "train", "%s: skipped: %s", p, e.message);
        free(p);
    }
    free(steps);
    return rc;
}

int slm_checkpoint_read(const char *dir, const char *name, char **data, size_t *n,
                        slm_error_t *err)
{
    if (!plain_name(name))
        return slm__fail(err, SLM_E_INVALID, dir, -1, "checkpoint: bad file name");
    char *path = slm__path_join(dir, name);
    int rc = path ? slm_input_read_all(path, MAX_FILE_BYTES, data, n, err)
                  : slm__fail(err, SLM_E_NOMEM, dir, -1, "checkpoint: out of memory");
    free(path);
    return rc;
}

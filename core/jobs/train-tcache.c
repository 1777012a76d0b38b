/* The teacher's top-k logits cached on disk: one file per (teacher, data set, k),
 * entries keyed by a document's tokens, so that later epochs and runs skip the teacher. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/input.h>
#include <slmops/log.h>

#include "internal/util.h"
#include "jobs/train.h"

/* The file: magic, key, V, k, n entries; each entry: hash, n positions, tokens[n],
 * kth[n], count[n], then sum(count) ids and as many logits (those >= kth). */
static const char MAGIC[8] = "SLMTKC1";

typedef struct tc_entry {
    uint64_t h;
    uint32_t n, total;
    int32_t *tok;              /* the rest point into the same block */
    float *kth;
    uint32_t *cnt;
    int32_t *ids;
    float *vals;
} tc_entry_t;

struct slm__tcache {
    char *path;
    uint64_t key;
    int64_t V, k;
    tc_entry_t *e;
    size_t n, cap;
    size_t *slot;              /* open addressing: entry index + 1, 0 empty */
    size_t n_slot;
    bool dirty;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t seg_hash(const int32_t *tok, uint32_t n)
{
    return fnv(fnv(0xcbf29ce484222325ull, &n, sizeof n), tok, n * sizeof *tok);
}

static int rehash(slm__tcache_t *c)
{
    size_t n = c->n_slot ? c->n_slot * 2 : 1024;
    size_t *s = calloc(n, sizeof *s);
    if (!s)
        return SLM_E_NOMEM;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->e[i].h & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = i + 1;
    }
    free(c->slot);
    c->slot = s;
    c->n_slot = n;
    return SLM_OK;
}

static const tc_entry_t *find(const slm__tcache_t *c, const int32_t *tok, uint32_t n)
{
    if (!c->n_slot)
        return NULL;
    uint64_t h = seg_hash(tok, n);
    for (size_t j = h & (c->n_slot - 1); c->slot[j]; j = (j + 1) & (c->n_slot - 1)) {
        const tc_entry_t *e = &c->e[c->slot[j] - 1];
        if (e->h == h && e->n == n && memcmp(e->tok, tok, n * sizeof *tok) == 0)
            return e;
    }
    return NULL;
}

/* A new entry's block for n positions and total kept logits. */
static tc_entry_t *add(slm__tcache_t *c, uint32_t n, uint32_t total)
{
    if ((c->n + 1) * 2 > c->n_slot && rehash(c) != SLM_OK)
        return NULL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        tc_entry_t *e = realloc(c->e, cap * sizeof *e);
        if (!e)
            return NULL;
        c->e = e;
        c->cap = cap;
    }
    size_t bytes = (size_t)n * 12 + (size_t)total * 8;
    char *b = malloc(bytes ? bytes : 1);
    if (!b)
        return NULL;
    tc_entry_t *e = &c->e[c->n];
    *e = (tc_entry_t){.n = n, .total = total, .tok = (int32_t *)b};
    e->kth = (float *)(e->tok + n);
    e->cnt = (uint32_t *)(e->kth + n);
    e->ids = (int32_t *)(e->cnt + n);
    e->vals = (float *)(e->ids + total);
    return e;
}

static void commit(slm__tcache_t *c, tc_entry_t *e)
{
    e->h = seg_hash(e->tok, e->n);
    size_t j = e->h & (c->n_slot - 1);
    while (c->slot[j])
        j = (j + 1) & (c->n_slot - 1);
    c->slot[j] = ++c->n;
}

/* A bounded reader over the file's bytes: any overrun marks the file bad. */
typedef struct rd {
    const char *p, *end;
    bool bad;
} rd_t;

static void take(rd_t *r, void *out, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
}

static void load(slm__tcache_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    slm_error_t err;
    slm_error_init(&err);
    if (access(c->path, F_OK) != 0 ||
        slm_input_read_all(c->path, (size_t)1 << 34, &buf, &len, &err) != SLM_OK)
        return;
    rd_t r = {buf, buf + len, false};
    char magic[8];
    uint64_t key = 0, n = 0;
    int64_t V = 0, k = 0;
    take(&r, magic, 8);
    take(&r, &key, 8);
    take(&r, &V, 8);
    take(&r, &k, 8);
    take(&r, &n, 8);
    r.bad = r.bad || memcmp(magic, MAGIC, 8) || key != c->key || V != c->V || k != c->k;
    for (uint64_t i = 0; !r.bad && i < n; i++) {
        uint32_t np = 0, total = 0;
        take(&r, &np, 4);
        take(&r, &total, 4);
        if (r.bad || (size_t)np * 12 + (size_t)total * 8 > (size_t)(r.end - r.p)) {
            r.bad = true;
            break;
        }
        tc_entry_t *e = add(c, np, total);
        if (!e)
            break;
        take(&r, e->tok, (size_t)np * 12 + (size_t)total * 8);
        uint64_t sum = 0;
        for (uint32_t j = 0; j < np; j++)
            sum += e->cnt[j];
        for (uint32_t j = 0; j < total; j++)
            r.bad = r.bad || e->ids[j] < 0 || e->ids[j] >= V;
        if ((r.bad = r.bad || sum != total)) {
            free(e->tok);
            break;
        }
        commit(c, e);
    }
    if (r.bad)
        slm_log(SLM_LOG_WARN, "train", "%s: not a teacher logits cache of this teacher, data "
                "and k, or cut short: the entries after the first bad one are computed again",
                c->path);
    free(buf);
}

int slm__tcache_open(const char *dir, const char *teacher, const char *data, int64_t V,
                     int64_t k, slm__tcache_t **out, slm_error_t *err)
{
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return slm__fail(err, SLM_E_IO, dir, -1, "%s: cannot make the logits cache folder: %m",
                         dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return slm__fail(err, SLM_E_IO, dir, -1, "%s: the logits cache is not a folder", dir);
    /* The teacher by path, size and modification time, as a registry cache would (a
     * model is large and not rewritten); the data set by its bytes, since distill
     * writes it again, the same, on every run. */
    uint64_t key = 0xcbf29ce484222325ull;
    struct stat fs;
    char *real = realpath(teacher, NULL);
    if (!real || stat(real, &fs) != 0) {
        free(real);
        return slm__fail(err, SLM_E_IO, teacher, -1, "%s: %m", teacher);
    }
    int64_t id[3] = {(int64_t)fs.st_size, (int64_t)fs.st_mtim.tv_sec,
                     (int64_t)fs.st_mtim.tv_nsec};
    key = fnv(fnv(key, real, strlen(real) + 1), id, sizeof id);
    free(real);
    char *text = NULL;
    size_t len = 0;
    int rc = slm_input_read_all(data, (size_t)1 << 34, &text, &len, err);
    if (rc != SLM_OK)
        return rc;
    key = fnv(fnv(fnv(key, text, len), &V, sizeof V), &k, sizeof k);
    free(text);
    slm__tcache_t *c = calloc(1, sizeof *c);
    size_t n = strlen(dir) + 48;
    if (!c || !(c->path = malloc(n))) {
        free(c);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    }
    snprintf(c->path, n, "%s/%016llx.tkc", dir, (unsigned long long)key);
    c->key = key;
    c->V = V;
    c->k = k;
    load(c);
    *out = c;
    return SLM_OK;
}

/* Runs of one document in a row: [*s, *e) from i, or false at the row's end. */
static bool next_doc(const int32_t *doc, int64_t T, int64_t *i, int64_t *s, int64_t *e)
{
    while (*i < T && doc[*i] < 0)
        (*i)++;
    if (*i >= T)
        return false;
    *s = *i;
    while (*i < T && doc[*i] == doc[*s])
        (*i)++;
    *e = *i;
    return true;
}

bool slm__tcache_fill(const slm__tcache_t *c, const int32_t *tokens, const int32_t *doc,
                      int64_t rows, int64_t T, float *logits)
{
    /* All or nothing: a batch the cache does not cover runs the teacher whole. */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0, s, e; next_doc(doc + r * T, T, &i, &s, &e);)
            if (!find(c, tokens + r * T + s, (uint32_t)(e - s)))
                return false;
    memset(logits, 0, (size_t)(rows * T * c->V) * sizeof *logits);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0, s, e; next_doc(doc + r * T, T, &i, &s, &e);) {
            const tc_entry_t *en = find(c, tokens + r * T + s, (uint32_t)(e - s));
            const int32_t *id = en->ids;
            const float *v = en->vals;
            for (uint32_t j = 0; j < en->n; j++) {
                float *x = logits + (r * T + s + j) * c->V, floor = en->kth[j] - SLM__TEACHER_FLOOR;
                for (int64_t q = 0; q < c->V; q++)
                    x[q] = floor;
                for (uint32_t m = 0; m < en->cnt[j]; m++)
                    x[id[m]] = v[m];
                id += en->cnt[j];
                v += en->cnt[j];
            }
        }
    return true;
}

int slm__tcache_put(slm__tcache_t *c, const int32_t *tokens, const int32_t *doc, int64_t rows,
                    int64_t T, const float *logits, const float *kth)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0, s, e; next_doc(doc + r * T, T, &i, &s, &e);) {
            const int32_t *tok = tokens + r * T + s;
            uint32_t n = (uint32_t)(e - s), total = 0;
            if (find(c, tok, n))
                continue;
            for (int64_t j = s; j < e; j++)
                for (int64_t q = 0; q < c->V; q++)
                    total += logits[(r * T + j) * c->V + q] >= kth[r * T + j];
            tc_entry_t *en = add(c, n, total);
            if (!en)
                return SLM_E_NOMEM;
            memcpy(en->tok, tok, n * sizeof *tok);
            uint32_t at = 0;
            for (int64_t j = s; j < e; j++) {
                const float *x = logits + (r * T + j) * c->V;
                en->kth[j - s] = kth[r * T + j];
                en->cnt[j - s] = 0;
                for (int64_t q = 0; q < c->V; q++)
                    if (x[q] >= kth[r * T + j]) {
                        en->ids[at] = (int32_t)q;
                        en->vals[at++] = x[q];
                        en->cnt[j - s]++;
                    }
            }
            commit(c, en);
            c->dirty = true;
        }
    return SLM_OK;
}

int slm__tcache_save(slm__tcache_t *c, slm_error_t *err)
{
    if (!c || !c->dirty)
        return SLM_OK;
    size_t n = strlen(c->path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", c->path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    uint64_t count = c->n;
    bool ok = f && fwrite(MAGIC, 8, 1, f) == 1 && fwrite(&c->key, 8, 1, f) == 1 &&
              fwrite(&c->V, 8, 1, f) == 1 && fwrite(&c->k, 8, 1, f) == 1 &&
              fwrite(&count, 8, 1, f) == 1;
    for (size_t i = 0; ok && i < c->n; i++) {
        const tc_entry_t *e = &c->e[i];
        size_t bytes = (size_t)e->n * 12 + (size_t)e->total * 8;
        ok = fwrite(&e->n, 4, 1, f) == 1 && fwrite(&e->total, 4, 1, f) == 1 &&
             (!bytes || fwrite(e->tok, bytes, 1, f) == 1);
    }
    ok = f && ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, c->path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    free(tmp);
    if (!ok)
        return slm__fail(err, SLM_E_IO, c->path, -1, "%s: writing the logits cache failed: %m",
                         c->path);
    c->dirty = false;
    return SLM_OK;
}

void slm__tcache_free(slm__tcache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].tok);
    free(c->e);
    free(c->slot);
    free(c->path);
    free(c);
}

/* Data parallelism in the train job: the ranks of a launched job (slmops/comm.h), the
 * check that every rank was given the same files and settings, the step's sums. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal/sha256.h"
#include "internal/util.h"
#include "jobs/train.h"
#include "train/optim-internal.h"

/* Floats per allreduce: large enough to amortise each call's latency, small enough
 * that the host copy of a bucket stays cheap (4 MiB). */
#define BUCKET_FLOATS (1u << 20)
/* How long the other ranks wait while rank 0 alone writes a checkpoint or the outputs:
 * a rank 0 that dies meanwhile is the launcher's to report, and a large model's files
 * take longer than any collective's deadline. */
#define WRITE_WAIT_S (24 * 3600.0)
/* Bytes of a file's head and tail the launch check hashes with its size. */
#define SAMPLE_BYTES (1u << 20)

int slm__train_dp_open(slm__train_t *t)
{
    int rc = slm_comm_open(&t->comm, t->err);
    if (rc)
        return rc;
    t->rank = slm_comm_rank(t->comm);
    t->n_ranks = slm_comm_size(t->comm);
    if (t->n_ranks == 1)
        return SLM_OK;
    if (t->o->accum % t->n_ranks != 0)
        return slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: --grad-accum %d is not a "
                         "multiple of the %d ranks: each rank trains whole micro-batches of a "
                         "step; give --grad-accum %d (and --batch %d keeps the global batch)",
                         (int)t->o->accum, t->n_ranks, (int)t->o->accum * t->n_ranks,
                         t->o->batch > 1 ? (int)(t->o->batch / t->n_ranks) : 1);
    if (t->o->dump_grads)
        return slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: --dump-grads runs in one "
                         "process: run it without the launcher");
    return SLM_OK;
}

void slm__train_dp_close(slm__train_t *t, bool failed)
{
    slm_comm_close(t->comm, failed);
    t->comm = NULL;
}

/* ---- the launch check ---- */

static void hash_file(slm__sha256_t *h, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        slm__sha256_update(h, "missing", 7);
        return;
    }
    uint64_t size = (uint64_t)st.st_size;
    slm__sha256_update(h, &size, sizeof size);
    FILE *f = S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
    if (!f)
        return;
    char *buf = malloc(SAMPLE_BYTES);
    size_t n = buf ? fread(buf, 1, SAMPLE_BYTES, f) : 0;
    slm__sha256_update(h, buf, n);
    uint64_t tail = size > 2 * (uint64_t)SAMPLE_BYTES ? size - SAMPLE_BYTES : SAMPLE_BYTES;
    if (buf && size > SAMPLE_BYTES && fseeko(f, (off_t)tail, SEEK_SET) == 0) {
        n = fread(buf, 1, SAMPLE_BYTES, f);
        slm__sha256_update(h, buf, n);
    }
    free(buf);
    fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or a model folder (Hugging Face) entry by entry in name order. */
static void hash_input(slm__sha256_t *h, const char *path)
{
    struct stat st;
    DIR *d = path && stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? opendir(path) : NULL;
    if (!d) {
        if (path)
            hash_file(h, path);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **v = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *v);
            if (!v)
                break;
            names = v;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *p = NULL;
        slm__sha256_update(h, names[i], strlen(names[i]) + 1);
        if (asprintf(&p, "%s/%s", path, names[i]) >= 0)
            hash_file(h, p);
        free(p);
        free(names[i]);
    }
    free(names);
}

/* The settings that decide the trained result (not where outputs go). */
static void hash_settings(slm__sha256_t *h, const slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    char *s = NULL;
    int len = asprintf(&s, "%s|%s|%s|%s|%d|%d|%d|%lld|%lld|%lld|%g|%g|%g|%g|%g|%g|%g|%g|%d|%llu|"
                       "%g|%lld|%zu|%lld|%d|%lld", o->method ? o->method : "", o->method_json ?
                       o->method_json : "", o->format ? o->format : "", o->chat_template ?
                       o->chat_template : "", (int)o->ctx, (int)o->batch, (int)o->accum,
                       (long long)o->epochs, (long long)o->steps, (long long)o->warmup,
                       (double)o->lr, (double)o->beta1, (double)o->beta2, (double)o->eps,
                       (double)o->weight_decay, (double)o->clip, (double)o->min_lr_ratio,
                       (double)o->lm_weight, (int)o->schedule, (unsigned long long)o->seed,
                       o->val_split, (long long)o->teacher_top_k, o->n_adapters,
                       (long long)t->total_steps, (int)o->skip_bad_lines,
                       (long long)(o->resume ? t->step : -1));
    if (len > 0)
        slm__sha256_update(h, s, (size_t)len);
    free(s);
    for (size_t i = 0; i < o->n_adapters; i++)
        hash_input(h, o->adapters[i]);
}

enum { PART_MODEL, PART_DATA, PART_TEACHER, PART_SETTINGS, N_PARTS };
static const char *const part_what[N_PARTS] = {
    "a different model file (--model)", "different training data (--data, --val-data)",
    "a different teacher model (--teacher)",
    "different settings (method, batch, steps, learning rate, seed, adapters or resume step)",
};

/* Rank 0's digests go to every rank; each marks the parts where its own differ, and
 * the marks are summed so that every rank can name the ranks that differ. */
int slm__train_dp_check(slm__train_t *t)
{
    if (t->n_ranks == 1)
        return SLM_OK;
    char mine[N_PARTS][65], root[N_PARTS][65];
    for (int p = 0; p < N_PARTS; p++) {
        slm__sha256_t h;
        slm__sha256_init(&h);
        if (p == PART_MODEL)
            hash_input(&h, t->o->model);
        else if (p == PART_DATA) {
            hash_input(&h, t->o->data);
            hash_input(&h, t->o->val_data);
        } else if (p == PART_TEACHER)
            hash_input(&h, t->o->teacher);
        else
            hash_settings(&h, t);
        slm__sha256_final(&h, mine[p]);
    }
    memcpy(root, mine, sizeof root);
    int rc = slm_comm_broadcast(t->comm, root, sizeof root, 0, t->err);
    size_t n = (size_t)t->n_ranks * N_PARTS;
    float *marks = rc == SLM_OK ? calloc(n, sizeof *marks) : NULL;
    if (rc == SLM_OK && !marks)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    for (int p = 0; rc == SLM_OK && p < N_PARTS; p++)
        marks[(size_t)t->rank * N_PARTS + (size_t)p] = strcmp(mine[p], root[p]) != 0;
    if (rc == SLM_OK)
        rc = slm_comm_allreduce_f32(t->comm, marks, n, t->err);
    for (size_t i = 0; rc == SLM_OK && i < n; i++) {
        if (marks[i] == 0.0f)
            continue;
        int r = (int)(i / N_PARTS), p = (int)(i % N_PARTS);
        rc = slm__fail(t->err, SLM_E_INVALID, NULL, -1, "train: rank %d of %d was given %s than "
                       "rank 0 (%s): every rank must train the same model on the same data with "
                       "the same settings; fix the launch command (or copy the same files to "
                       "every machine)", r, t->n_ranks, part_what[p],
                       p == PART_MODEL ? t->o->model : p == PART_DATA ? t->o->data
                       : p == PART_TEACHER ? t->o->teacher : "options");
    }
    free(marks);
    return rc;
}

/* ---- the step's sums ---- */

/* vals[0..n) summed over the ranks in f32 pairs (the value and its rounding error),
 * which keeps about 48 bits of a double. */
int slm__train_dp_sum(slm__train_t *t, double *vals, size_t n)
{
    if (t->n_ranks == 1 || n == 0)
        return SLM_OK;
    float *buf = malloc(2 * n * sizeof *buf);
    if (!buf)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = (float)vals[i];
        buf[2 * i + 1] = (float)(vals[i] - (double)buf[2 * i]);
    }
    int rc = slm_comm_allreduce_f32(t->comm, buf, 2 * n, t->err);
    for (size_t i = 0; rc == SLM_OK && i < n; i++)
        vals[i] = (double)buf[2 * i] + (double)buf[2 * i + 1];
    free(buf);
    return rc;
}

typedef struct segment {
    slm_tensor_t *t;
    size_t off, n, at;         /* floats: from t's offset, how many, where in the bucket */
} segment_t;

typedef struct bucket {
    float *v;
    size_t fill;
    segment_t *seg;
    size_t n_seg, cap_seg;
} bucket_t;

static int flush(slm__train_t *t, bucket_t *b)
{
    int rc = slm_comm_allreduce_f32(t->comm, b->v, b->fill, t->err);
    for (size_t i = 0; rc == SLM_OK && i < b->n_seg; i++) {
        segment_t *s = &b->seg[i];
        if (slm_tensor_set_data(s->t, b->v + s->at, s->off * sizeof(float),
                                s->n * sizeof(float)) != SLM_OK)
            rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: writing the summed gradient "
                           "of %s failed", slm_tensor_name(s->t));
    }
    b->fill = b->n_seg = 0;
    return rc;
}

static int add_segment(slm__train_t *t, bucket_t *b, slm_tensor_t *g, size_t off, size_t n)
{
    if (b->n_seg == b->cap_seg) {
        size_t cap = b->cap_seg ? 2 * b->cap_seg : 64;
        segment_t *s = realloc(b->seg, cap * sizeof *s);
        if (!s)
            return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
        b->seg = s;
        b->cap_seg = cap;
    }
    if (slm_tensor_get_data(g, b->v + b->fill, off * sizeof(float), n * sizeof(float)) != SLM_OK)
        return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading the gradient of %s "
                         "failed", slm_tensor_name(g));
    b->seg[b->n_seg++] = (segment_t){g, off, n, b->fill};
    b->fill += n;
    return SLM_OK;
}

/* Every accumulated gradient summed over the ranks, in buckets of BUCKET_FLOATS in
 * the optimizer's parameter order. Each rank accumulated its micro-batches with their
 * share of the step's tokens as weights, so the sum is the step's mean gradient. The
 * graph runs forward and backward as one unit, so the sums follow it (no overlap). */
int slm__train_dp_grads(slm__train_t *t)
{
    if (t->n_ranks == 1)
        return SLM_OK;
    bucket_t b = {.v = malloc(BUCKET_FLOATS * sizeof(float))};
    int rc = b.v ? SLM_OK : slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    size_t np = slm_optim_n_params(t->tg.optim);
    for (size_t i = 0; rc == SLM_OK && i < np; i++) {
        slm_tensor_t *g = slm__optim_grad_of(t->tg.optim, slm_optim_param(t->tg.optim, i));
        size_t total = g ? slm_tensor_nbytes(g) / sizeof(float) : 0;
        for (size_t off = 0; rc == SLM_OK && off < total;) {
            size_t k = total - off < BUCKET_FLOATS - b.fill ? total - off : BUCKET_FLOATS - b.fill;
            rc = add_segment(t, &b, g, off, k);
            off += k;
            if (rc == SLM_OK && b.fill == BUCKET_FLOATS)
                rc = flush(t, &b);
        }
    }
    if (rc == SLM_OK && b.fill)
        rc = flush(t, &b);
    free(b.v);
    free(b.seg);
    return rc;
}

int slm__train_dp_wait_writes(slm__train_t *t)
{
    /* Only rank 0 writes, and the others are at this barrier long before it is done:
     * rank 0 itself waits the collective timeout, so that a rank stopped meanwhile
     * (SIGSTOP, a hung host) ends the job instead of holding rank 0 for a day. */
    return slm_comm_barrier(t->comm, t->rank == 0 ? 0 : WRITE_WAIT_S, t->err);
}

/* Any rank's cancel flag stops every rank at the same step. */
int slm__train_dp_any(slm__train_t *t, bool mine, bool *any)
{
    *any = mine;
    if (t->n_ranks == 1)
        return SLM_OK;
    float v = mine ? 1.0f : 0.0f;
    int rc = slm_comm_allreduce_f32(t->comm, &v, 1, t->err);
    *any = rc == SLM_OK && v > 0.0f;
    return rc;
}

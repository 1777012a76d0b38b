/* The teacher of a distillation run: its forward pass over each micro-batch (the
 * builder every job uses), kept to its top-k logits per position and fed to the
 * "teacher_logits" input that a method's add_loss asked for. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/sched.h>

#include "internal/util.h"
#include "jobs/train.h"


/* The same vocabulary: every token's text, so that ids mean the same to both. */
static int same_vocab(slm__train_t *t, const slm_tokenizer_t *tt)
{
    size_t n = slm_tokenizer_n_vocab(t->tok);
    if (n != slm_tokenizer_n_vocab(tt) ||
        (int32_t)n != slm_model_n_vocab(t->teacher))
        return slm__fail(t->err, SLM_E_INVALID, t->o->teacher, -1, "train: the teacher %s has "
                         "%zu tokens and the student %zu: logit distillation needs the same "
                         "vocabulary (make the student with init --vocab-from TEACHER)",
                         t->o->teacher, slm_tokenizer_n_vocab(tt), n);
    for (size_t i = 0; i < n; i++) {
        const char *a = slm_tokenizer_token_text(t->tok, (int32_t)i);
        const char *b = slm_tokenizer_token_text(tt, (int32_t)i);
        if (strcmp(a ? a : "", b ? b : "") != 0)
            return slm__fail(t->err, SLM_E_INVALID, t->o->teacher, -1, "train: token %zu is "
                             "'%s' for the teacher %s and '%s' for the student: logit "
                             "distillation needs the same vocabulary", i, b ? b : "",
                             t->o->teacher, a ? a : "");
    }
    return SLM_OK;
}

int slm__train_teacher_open(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    if (!o->teacher)
        return SLM_OK;
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = o->device;
    mp.n_threads = o->threads;
    slm_tokenizer_t *tt = NULL;
    int rc = slm_model_load(t->reg, o->teacher, &mp, &t->teacher, t->err);
    if (rc == SLM_OK)
        rc = slm_tokenizer_from_model_file(slm_model_container(t->teacher), &tt, t->err);
    if (rc == SLM_OK)
        rc = same_vocab(t, tt);
    slm_tokenizer_free(tt);
    int64_t V = slm_model_n_vocab(t->teacher ? t->teacher : NULL);
    if (rc == SLM_OK && o->teacher_cache && (o->teacher_top_k <= 0 || o->teacher_top_k >= V))
        rc = slm__fail(t->err, SLM_E_INVALID, o->teacher_cache, -1, "train: a teacher logits "
                       "cache keeps the top k logits: give teacher_top_k between 1 and %lld",
                       (long long)V - 1);
    if (rc == SLM_OK && o->teacher_cache)
        rc = slm__tcache_open(o->teacher_cache, o->teacher, o->data, V, o->teacher_top_k,
                              &t->tcache, t->err);
    return rc;
}

int slm__train_teacher_save(slm__train_t *t)
{
    return slm__tcache_save(t->tcache, t->err);
}

static int build(slm__train_t *t)
{
    const slm__train_opts_t *o = t->o;
    size_t cap = slm__forward_graph_size(t->teacher, NULL) + 64;
    if (!(t->teacher_g = slm_graph_new(cap)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    int rc = slm__forward_sequences(t->teacher, t->teacher_g, o->ctx, o->batch, NULL, 0,
                                    &t->teacher_seq, t->err);
    if (rc == SLM_OK)
        rc = slm_sched_alloc(slm_model_sched(t->teacher), t->teacher_g, t->err);
    return rc;
}

static int buffers(slm__train_t *t)
{
    size_t cols = (size_t)t->o->ctx * (size_t)t->o->batch;
    size_t n = (size_t)slm_model_n_vocab(t->teacher) * cols;
    if (!t->teacher_buf && !(t->teacher_buf = malloc(n * sizeof *t->teacher_buf)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    if (!t->teacher_kth && !(t->teacher_kth = malloc(cols * sizeof *t->teacher_kth)))
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    return SLM_OK;
}

slm_tensor_t *slm__train_teacher_input(slm__train_t *t, slm__tgraph_t *G)
{
    if (!t->teacher)
        return NULL;
    if (!G->teacher_in) {
        G->teacher_in = slm_tensor_new_2d(G->g, SLM_TYPE_F32, G->xent.V, G->xent.N);
        slm_tensor_set_name(G->teacher_in, "teacher.logits");
        slm_tensor_set_flags(G->teacher_in, SLM_TENSOR_INPUT);
    }
    return G->teacher_in;
}

/* The k-th largest of x[0..n) (k <= n), by partial selection on a copy. */
static float kth_largest(const float *x, int64_t n, int64_t k, float *scratch)
{
    memcpy(scratch, x, (size_t)n * sizeof *scratch);
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = scratch[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (scratch[i] > pivot)
                i++;
            while (scratch[j] < pivot)
                j--;
            if (i <= j) {
                float tmp = scratch[i];
                scratch[i++] = scratch[j];
                scratch[j--] = tmp;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            break;
    }
    return scratch[want];
}

/* Every column of V logits keeps its top-k values; the others become the k-th
 * minus TEACHER_FLOOR (ties at the k-th are all kept). */
static int top_k(slm__train_t *t, int64_t V, int64_t N)
{
    int64_t k = t->o->teacher_top_k;
    if (k <= 0 || k >= V)
        return SLM_OK;
    float *scratch = malloc((size_t)V * sizeof *scratch);
    if (!scratch)
        return slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    for (int64_t c = 0; c < N; c++) {
        float *x = t->teacher_buf + c * V;
        float kth = kth_largest(x, V, k, scratch), floor = kth - SLM__TEACHER_FLOOR;
        t->teacher_kth[c] = kth;
        for (int64_t v = 0; v < V; v++)
            if (x[v] < kth)
                x[v] = floor;
    }
    free(scratch);
    return SLM_OK;
}

int slm__train_teacher_feed(slm__train_t *t, slm__tgraph_t *G, const slm_dataset_batch_t *b)
{
    if (!G->teacher_in)
        return SLM_OK;
    int64_t V = G->xent.V, N = G->xent.N, T = t->o->ctx;
    size_t bytes = (size_t)V * (size_t)N * sizeof(float);
    int rc = buffers(t);
    if (rc == SLM_OK && t->tcache &&
        slm__tcache_fill(t->tcache, b->tokens, b->doc, N / T, T, t->teacher_buf)) {
        t->teacher_cached++;
        if (slm_tensor_set_data(G->teacher_in, t->teacher_buf, 0, bytes) != SLM_OK)
            return slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: setting the teacher's "
                             "logits failed");
        return SLM_OK;
    }
    if (rc == SLM_OK && !t->teacher_g)
        rc = build(t);
    if (rc == SLM_OK)
        rc = slm__forward_sequences_feed(&t->teacher_seq, b->tokens, b->doc, t->err);
    if (rc == SLM_OK)
        rc = slm_sched_compute(slm_model_sched(t->teacher), t->teacher_g, t->err);
    if (rc == SLM_OK && slm_tensor_get_data(t->teacher_seq.fwd.out, t->teacher_buf, 0,
                                            bytes) != SLM_OK)
        rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: reading the teacher's logits "
                       "failed");
    if (rc == SLM_OK)
        rc = top_k(t, V, N);
    if (rc == SLM_OK)
        t->teacher_runs++;
    if (rc == SLM_OK && t->tcache &&
        slm__tcache_put(t->tcache, b->tokens, b->doc, N / T, T, t->teacher_buf,
                        t->teacher_kth) != SLM_OK)
        rc = slm__fail(t->err, SLM_E_NOMEM, NULL, -1, "train: out of memory");
    if (rc == SLM_OK && slm_tensor_set_data(G->teacher_in, t->teacher_buf, 0, bytes) != SLM_OK)
        rc = slm__fail(t->err, SLM_E_DEVICE, NULL, -1, "train: setting the teacher's logits "
                       "failed");
    return rc;
}

void slm__train_teacher_free(slm__train_t *t)
{
    slm_graph_free(t->teacher_g);
    free(t->teacher_buf);
    free(t->teacher_kth);
    slm__tcache_free(t->tcache);
    t->tcache = NULL;
    t->teacher_kth = NULL;
    slm_model_free(t->teacher);
    t->teacher_g = NULL;
    t->teacher_buf = NULL;
    t->teacher = NULL;
}

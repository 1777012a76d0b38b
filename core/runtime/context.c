/* Decoding contexts: the KV cache (bound buffers the graphs append to), the cells
 * that say which sequence and position each cache row holds, and the graphs that
 * embed, attend over the cache and project to logits, kept and reused per shape. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/graph.h>
#include <slmops/types.h>

#include "internal/graph.h"
#include "internal/util.h"
#include "runtime/runtime.h"

/* Attention spans a multiple of this many cells (the rest masked out), so one graph
 * serves this many decode steps; llama.cpp pads the same way. */
#define KV_PAD 64u
/* Graphs kept per context: decode, prompt chunks, and the tail of a prompt. */
#define N_CACHED 4

typedef struct kv_cell {
    int32_t pos;
    int32_t seq;               /* -1: free */
} kv_cell_t;

/* An allocated graph and the handles a run needs: its shape is the key. */
typedef struct cached_graph {
    slm_graph_t *g;
    int32_t n, n_out;
    uint32_t n_kv;
    uint32_t head;             /* cells its cache writes currently target */
    uint64_t last_use;
    slm_tensor_t *tokens, *pos, *mask, *out_ids;
    slm_tensor_t *logits;      /* the last layer's output instead when n_out is 0 */
    slm_tensor_t **kv_writes;  /* per layer: K copy, K view, V copy, V view */
} cached_graph_t;

struct slm_context {
    slm_model_t *m;
    uint32_t n_ctx, n_batch, n_seq;
    slm_type_t type_kv;
    size_t es;                 /* bytes per cache element */
    uint64_t k_layer, v_layer; /* bytes of one layer's K (V) in its buffer */
    slm_buffer_t *k, *v;
    kv_cell_t *cells;
    int32_t *seq_next;         /* next position per sequence */
    /* Logits of the last decode: rows[i] is token i's row in logits, or -1. */
    float *logits;
    size_t logits_cap;         /* floats */
    int32_t *rows;
    size_t rows_cap;
    int32_t n_last;
    /* Per micro-batch host staging. */
    float *mask;
    size_t mask_cap;
    int32_t *out_ids;
    cached_graph_t graphs[N_CACHED];
    uint64_t n_runs;
};

void slm_context_params_default(slm_context_params_t *p)
{
    if (p)
        *p = (slm_context_params_t){.struct_size = sizeof *p, .type_kv = SLM_TYPE_F16};
}

uint32_t slm_context_n_ctx(const slm_context_t *ctx)
{
    return ctx ? ctx->n_ctx : 0;
}

#define GIB(b) ((double)(b) / (1024.0 * 1024.0 * 1024.0))

/* What a newcomer can act on: the cache, its size, and the context that would fit. */
static int kv_too_large(const slm_context_t *c, uint64_t bytes, uint64_t avail, slm_error_t *err)
{
    uint64_t per_token = bytes / c->n_ctx;
    /* Leave a tenth for the graphs' work buffers; round down to 256 tokens. */
    uint64_t fit = avail ? avail / 10 * 9 / per_token / 256 * 256 : 0;
    const slm_device_info_t *dev = slm_sched_device(c->m->sched);
    char hint[96] = "";
    if (fit >= 256)
        snprintf(hint, sizeof hint, "; a context (--ctx) of %llu tokens would fit",
                 (unsigned long long)fit);
    else if (avail)
        snprintf(hint, sizeof hint, "; not even 256 tokens would fit");
    return slm__fail(err, SLM_E_NOMEM, NULL, -1, "the KV cache for a context of %u tokens "
                     "needs %.2f GiB (%s, %.1f KiB a token) but %s has %.2f GiB free%s",
                     c->n_ctx, GIB(bytes), slm_type_name(c->type_kv),
                     (double)per_token / 1024.0, dev ? dev->id : "the device",
                     GIB(avail), hint);
}

static int alloc_cache(slm_context_t *c, slm_error_t *err)
{
    const slm__hparams_t *hp = &c->m->hp;
    uint64_t kv = (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim, layer, total;
    if (!slm__mul_overflow_u64(kv, c->n_ctx, &layer) ||
        !slm__mul_overflow_u64(layer, c->es, &layer) ||
        !slm__mul_overflow_u64(layer, (uint64_t)hp->n_layer, &total))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: a KV cache of %u cells is "
                         "too large", c->n_ctx);
    c->k_layer = c->v_layer = layer;
    const slm_device_info_t *dev = slm_sched_device(c->m->sched);
    uint64_t avail = dev ? dev->memory_free : 0;
    /* Refuse up front what cannot fit: an over-committed allocation would only fail
     * later, when the cache is first written, and take the process down. */
    if (avail && total > avail / 2)
        return kv_too_large(c, 2 * total, avail, err);
    c->k = slm_buffer_new(c->m->sched, total, err);
    c->v = c->k ? slm_buffer_new(c->m->sched, total, err) : NULL;
    if (!c->v && !avail)   /* free memory unknown: the backend's own message stands */
        return err && err->code ? err->code : SLM_E_NOMEM;
    if (!c->v)
        return kv_too_large(c, 2 * total, avail, err);
    /* Padded attention reads cells never written: slm_buffer_new's zeros are finite
     * (and a backend may keep them unbacked until used). */
    slm_log(SLM_LOG_DEBUG, "context", "KV cache: %u cells, %s, %llu bytes", c->n_ctx,
            slm_type_name(c->type_kv), (unsigned long long)(2 * total));
    return SLM_OK;
}

int slm_context_new(slm_model_t *m, const slm_context_params_t *p, slm_context_t **out,
                    slm_error_t *err)
{
    if (!m || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: NULL argument");
    *out = NULL;
    slm_context_params_t o;
    slm_context_params_default(&o);
    if (p)
        memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    if (o.type_kv != SLM_TYPE_F16 && o.type_kv != SLM_TYPE_F32)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: KV cache type %s is not "
                         "supported (f16, f32)", slm_type_name(o.type_kv));
    if (o.n_ctx == 0)
        o.n_ctx = m->hp.n_ctx_train < 4096 ? (uint32_t)m->hp.n_ctx_train : 4096;
    if (o.n_batch == 0)
        o.n_batch = 512;
    if (o.n_batch > o.n_ctx)
        o.n_batch = o.n_ctx;
    if (o.n_seq == 0)
        o.n_seq = 1;
    if (o.n_ctx > (1u << 24) || o.n_seq > o.n_ctx)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: n_ctx %u / n_seq %u out of "
                         "range", o.n_ctx, o.n_seq);
    slm_context_t *c = calloc(1, sizeof *c);
    if (!c)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "context: out of memory");
    c->m = m;
    c->n_ctx = o.n_ctx;
    c->n_batch = o.n_batch;
    c->n_seq = o.n_seq;
    c->type_kv = (slm_type_t)o.type_kv;
    c->es = o.type_kv == SLM_TYPE_F16 ? 2 : 4;
    c->cells = malloc(c->n_ctx * sizeof *c->cells);
    c->seq_next = calloc(c->n_seq, sizeof *c->seq_next);
    c->out_ids = malloc(c->n_batch * sizeof *c->out_ids);
    if (!c->cells || !c->seq_next || !c->out_ids) {
        slm_context_free(c);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "context: out of memory");
    }
    for (uint32_t i = 0; i < c->n_ctx; i++)
        c->cells[i] = (kv_cell_t){.pos = -1, .seq = -1};
    int rc = alloc_cache(c, err);
    if (rc) {
        slm_context_free(c);
        return rc;
    }
    *out = c;
    return SLM_OK;
}

static void drop_graph(cached_graph_t *cg)
{
    slm_graph_free(cg->g);
    free(cg->kv_writes);
    memset(cg, 0, sizeof *cg);
}

void slm_context_free(slm_context_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_CACHED; i++)
        drop_graph(&c->graphs[i]);
    slm_buffer_free(c->k);
    slm_buffer_free(c->v);
    free(c->cells);
    free(c->seq_next);
    free(c->logits);
    free(c->rows);
    free(c->mask);
    free(c->out_ids);
    free(c);
}

void slm_context_seq_clear(slm_context_t *c, int32_t seq)
{
    if (!c || seq < -1 || seq >= (int32_t)c->n_seq)
        return;
    for (uint32_t i = 0; i < c->n_ctx; i++)
        if (seq == -1 || c->cells[i].seq == seq)
            c->cells[i] = (kv_cell_t){.pos = -1, .seq = -1};
    for (uint32_t s = 0; s < c->n_seq; s++)
        if (seq == -1 || (int32_t)s == seq)
            c->seq_next[s] = 0;
}

void slm_context_seq_truncate(slm_context_t *c, int32_t seq, int32_t pos)
{
    if (!c || seq < 0 || seq >= (int32_t)c->n_seq || pos < 0 || pos >= c->seq_next[seq])
        return;
    for (uint32_t i = 0; i < c->n_ctx; i++)
        if (c->cells[i].seq == seq && c->cells[i].pos >= pos)
            c->cells[i] = (kv_cell_t){.pos = -1, .seq = -1};
    c->seq_next[seq] = pos;
}

int32_t slm_context_seq_pos(const slm_context_t *c, int32_t seq)
{
    if (!c || seq < 0 || seq >= (int32_t)c->n_seq)
        return -1;
    return c->seq_next[seq];
}

const float *slm_context_logits(const slm_context_t *c, int32_t i)
{
    if (!c || c->n_last == 0)
        return NULL;
    if (i == -1)
        i = c->n_last - 1;
    if (i < 0 || i >= c->n_last || c->rows[i] < 0)
        return NULL;
    return c->logits + (size_t)c->rows[i] * (size_t)c->m->hp.n_vocab;
}

/* ---- the graph of one micro-batch ---- */

typedef struct ubatch {
    int32_t n;                 /* tokens */
    const int32_t *token, *pos, *seq;
    uint32_t head;             /* first cache cell they occupy */
    uint32_t n_kv;             /* cells the attention spans: [0, n_kv) */
    int32_t n_out;             /* tokens whose logits are kept */
} ubatch_t;

typedef struct builder {
    slm_context_t *c;
    slm_graph_t *g;
    const ubatch_t *ub;
    slm_tensor_t *pos, *mask;
    slm_tensor_t **kv_writes;  /* 4 per layer, see cached_graph_t */
    slm_error_t *err;
    int rc;
} builder_t;

/* A leaf bound to a weight's buffer. */
static slm_tensor_t *leaf(builder_t *b, const slm__weight_t *w)
{
    if (!w || b->rc)
        return NULL;
    int n_dims = w->ne[1] > 1 ? 2 : 1;
    slm_tensor_t *t = slm_tensor_new(b->g, (slm_type_t)w->type, n_dims, w->ne);
    if (!t)
        return NULL;
    slm_tensor_set_name(t, w->name);
    int rc = slm_tensor_bind(t, w->buf, 0, b->err);
    if (rc)
        b->rc = rc;
    return rc ? NULL : t;
}

/* A view of the bound cache tensor of one layer. */
static slm_tensor_t *cache_view(builder_t *b, slm_tensor_t *cache, int n_dims, const int64_t *ne,
                                const int64_t *nb, size_t offset)
{
    return slm_view(b->g, cache, n_dims, ne, nb, offset);
}

static slm_tensor_t *norm(builder_t *b, slm_tensor_t *x, const slm__weight_t *w)
{
    return slm_mul(b->g, slm_rms_norm(b->g, x, b->c->m->hp.norm_eps), leaf(b, w));
}

static slm_tensor_t *linear(builder_t *b, const slm__weight_t *w, slm_tensor_t *x,
                            const slm__weight_t *bias)
{
    slm_tensor_t *y = slm_mul_mat(b->g, leaf(b, w), x);
    return bias ? slm_add(b->g, y, leaf(b, bias)) : y;
}

static slm_tensor_t *rope(builder_t *b, slm_tensor_t *x)
{
    const slm__hparams_t *hp = &b->c->m->hp;
    return slm_rope(b->g, x, b->pos, hp->n_rot, hp->rope_mode, hp->rope_base, hp->rope_scale);
}

/* Q as [hd, H, T], K as [hd, Hkv, T] and V as [KV, T] for one layer. */
static void qkv(builder_t *b, const slm__layer_t *l, slm_tensor_t *cur, slm_tensor_t **q,
                slm_tensor_t **k, slm_tensor_t **v)
{
    const slm__hparams_t *hp = &b->c->m->hp;
    int64_t T = b->ub->n, hd = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv;
    if (l->wqkv) {
        slm_tensor_t *f = linear(b, l->wqkv, cur, NULL);
        int64_t row = (H + 2 * Hkv) * hd * 4;
        const int64_t qne[3] = {hd, H, T}, kne[3] = {hd, Hkv, T}, vne[2] = {Hkv * hd, T};
        const int64_t nb3[3] = {4, hd * 4, row}, nb2[2] = {4, row};
        *q = slm_view(b->g, f, 3, qne, nb3, 0);
        *k = slm_view(b->g, f, 3, kne, nb3, (size_t)(H * hd * 4));
        *v = slm_view(b->g, f, 2, vne, nb2, (size_t)((H + Hkv) * hd * 4));
        return;
    }
    const int64_t qne[3] = {hd, H, T}, kne[3] = {hd, Hkv, T};
    *q = slm_reshape(b->g, linear(b, l->wq, cur, l->bq), 3, qne);
    *k = slm_reshape(b->g, linear(b, l->wk, cur, l->bk), 3, kne);
    *v = linear(b, l->wv, cur, l->bv);
}

/* Attention of one layer: append K and V to the cache, attend over cells [0, n_kv). */
static slm_tensor_t *attention(builder_t *b, int il, slm_tensor_t *cur)
{
    slm_context_t *c = b->c;
    const slm__hparams_t *hp = &c->m->hp;
    const slm__layer_t *l = &c->m->layers[il];
    slm_graph_t *g = b->g;
    int64_t T = b->ub->n, hd = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv;
    int64_t KV = Hkv * hd, es = (int64_t)c->es, n_ctx = c->n_ctx, n_kv = b->ub->n_kv;
    slm_tensor_t *q, *k, *v;
    qkv(b, l, cur, &q, &k, &v);
    q = rope(b, q);
    k = rope(b, k);

    /* Each layer's K is [KV, n_ctx] (a row per cell); V is stored transposed,
     * [n_ctx, KV], so that attention reads both without copying. */
    slm_tensor_t *kc = slm_tensor_new_1d(g, c->type_kv, KV * n_ctx);
    slm_tensor_t *vc = slm_tensor_new_1d(g, c->type_kv, KV * n_ctx);
    if (!kc || !vc || b->rc)
        return NULL;
    if ((b->rc = slm_tensor_bind(kc, c->k, (uint64_t)il * c->k_layer, b->err)) ||
        (b->rc = slm_tensor_bind(vc, c->v, (uint64_t)il * c->v_layer, b->err)))
        return NULL;
    uint64_t head = b->ub->head;
    const int64_t kdne[2] = {KV, T}, kdnb[2] = {es, KV * es};
    slm_tensor_t **w = b->kv_writes + 4 * il;
    w[1] = cache_view(b, kc, 2, kdne, kdnb, head * KV * es);
    w[0] = slm_cpy(g, slm_reshape(g, k, 2, kdne), w[1]);
    const int64_t vdne[2] = {T, KV}, vdnb[2] = {es, n_ctx * es};
    w[3] = cache_view(b, vc, 2, vdne, vdnb, head * es);
    w[2] = slm_cpy(g, slm_transpose(g, v), w[3]);

    /* Graphs run their nodes in creation order, so these reads follow the copies. */
    const int64_t kne[3] = {hd, n_kv, Hkv}, knb[3] = {es, KV * es, hd * es};
    const int64_t vne[3] = {n_kv, hd, Hkv}, vnb[3] = {es, n_ctx * es, n_ctx * hd * es};
    slm_tensor_t *K = cache_view(b, kc, 3, kne, knb, 0);
    slm_tensor_t *V = cache_view(b, vc, 3, vne, vnb, 0);
    slm_tensor_t *kq = slm_mul_mat(g, K, slm_permute(g, q, 0, 2, 1, 3));   /* [n_kv, T, H] */
    kq = slm_soft_max(g, kq, b->mask, 1.0f / sqrtf((float)hd), false, 0);
    slm_tensor_t *kqv = slm_mul_mat(g, V, kq);                               /* [hd, T, H] */
    const int64_t one[2] = {H * hd, T};
    slm_tensor_t *o = slm_reshape(g, slm_cont(g, slm_permute(g, kqv, 0, 2, 1, 3)), 2, one);
    return linear(b, l->wo, o, NULL);
}

static slm_tensor_t *ffn(builder_t *b, int il, slm_tensor_t *cur)
{
    const slm__layer_t *l = &b->c->m->layers[il];
    slm_graph_t *g = b->g;
    if (l->gate_up) {
        slm_tensor_t *gu = linear(b, l->gate_up, cur, NULL);
        int64_t F = b->c->m->hp.n_ff, T = b->ub->n;
        const int64_t ne[2] = {F, T}, nb[2] = {4, 2 * F * 4};
        slm_tensor_t *gate = slm_cont(g, slm_view(g, gu, 2, ne, nb, 0));
        slm_tensor_t *up = slm_cont(g, slm_view(g, gu, 2, ne, nb, (size_t)F * 4));
        return linear(b, l->down, slm_swiglu(g, gate, up), NULL);
    }
    return linear(b, l->down, slm_swiglu(g, linear(b, l->gate, cur, NULL),
                                         linear(b, l->up, cur, NULL)), NULL);
}

/* Inputs: tokens, positions, the mask and which rows to project to logits. */
static slm_tensor_t *build(builder_t *b, slm_tensor_t **tokens, slm_tensor_t **out_ids)
{
    slm_context_t *c = b->c;
    const slm_model_t *m = c->m;
    slm_graph_t *g = b->g;
    int64_t T = b->ub->n;
    *tokens = slm_tensor_new_1d(g, SLM_TYPE_I32, T);
    b->pos = slm_tensor_new_1d(g, SLM_TYPE_I32, T);
    b->mask = slm_tensor_new_2d(g, SLM_TYPE_F32, b->ub->n_kv, T);
    slm_tensor_set_flags(*tokens, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(b->pos, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(b->mask, SLM_TENSOR_INPUT);
    slm_tensor_t *x = slm_get_rows(g, leaf(b, m->tok_embd), *tokens);
    for (int il = 0; il < m->hp.n_layer && !b->rc; il++) {
        x = slm_add(g, x, attention(b, il, norm(b, x, m->layers[il].attn_norm)));
        x = slm_add(g, x, ffn(b, il, norm(b, x, m->layers[il].ffn_norm)));
    }
    *out_ids = NULL;
    if (b->ub->n_out == 0) {
        /* No logits wanted (a prompt chunk nobody scores): the graph only fills the
         * KV cache, and the last layer's output stands as its end. */
        slm_tensor_set_flags(x, SLM_TENSOR_OUTPUT);
        return x;
    }
    if (b->ub->n_out < T) {
        *out_ids = slm_tensor_new_1d(g, SLM_TYPE_I32, b->ub->n_out);
        slm_tensor_set_flags(*out_ids, SLM_TENSOR_INPUT);
        x = slm_get_rows(g, x, *out_ids);
    }
    slm_tensor_t *logits = slm_mul_mat(g, leaf(b, m->output), norm(b, x, m->out_norm));
    if (logits)
        slm_tensor_set_flags(logits, SLM_TENSOR_OUTPUT);
    return logits;
}

/* Additive mask [n_kv, T]: a token sees its own sequence's cells up to its position. */
static int fill_mask(slm_context_t *c, const ubatch_t *ub)
{
    size_t n = (size_t)ub->n_kv * (size_t)ub->n;
    if (n > c->mask_cap) {
        float *p = realloc(c->mask, n * sizeof *p);
        if (!p)
            return SLM_E_NOMEM;
        c->mask = p;
        c->mask_cap = n;
    }
    for (int32_t t = 0; t < ub->n; t++) {
        float *row = c->mask + (size_t)t * ub->n_kv;
        for (uint32_t i = 0; i < ub->n_kv; i++) {
            const kv_cell_t *cell = &c->cells[i];
            bool visible = cell->seq == ub->seq[t] && cell->pos <= ub->pos[t];
            row[i] = visible ? 0.0f : -INFINITY;
        }
    }
    return SLM_OK;
}

/* Build and allocate the graph of ub's shape into cg. */
static int build_graph(slm_context_t *c, const ubatch_t *ub, cached_graph_t *cg, slm_error_t *err)
{
    const slm_model_t *m = c->m;
    cg->g = slm_graph_new((size_t)m->hp.n_layer * 64 + 64);
    cg->kv_writes = calloc((size_t)m->hp.n_layer * 4, sizeof *cg->kv_writes);
    if (!cg->g || !cg->kv_writes)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
    builder_t b = {.c = c, .g = cg->g, .ub = ub, .kv_writes = cg->kv_writes, .err = err};
    cg->logits = build(&b, &cg->tokens, &cg->out_ids);
    cg->pos = b.pos;
    cg->mask = b.mask;
    int rc = b.rc;
    if (rc == SLM_OK && !cg->logits)
        rc = slm_graph_status(cg->g, err);
    if (rc == SLM_OK)
        rc = slm_sched_alloc(m->sched, cg->g, err);
    if (rc != SLM_OK)
        return rc;
    cg->n = ub->n;
    cg->n_out = ub->n_out;
    cg->n_kv = ub->n_kv;
    cg->head = ub->head;
    return SLM_OK;
}

/* The graph for ub's shape: a kept one (its cache writes moved to ub's cells), or
 * a new one replacing the least recently used. */
static cached_graph_t *graph_for(slm_context_t *c, const ubatch_t *ub, int *rc, slm_error_t *err)
{
    cached_graph_t *cg = NULL, *victim = &c->graphs[0];
    for (int i = 0; i < N_CACHED && !cg; i++) {
        cached_graph_t *x = &c->graphs[i];
        if (x->g && x->n == ub->n && x->n_out == ub->n_out && x->n_kv == ub->n_kv)
            cg = x;
        else if (!x->g || (victim->g && x->last_use < victim->last_use))
            victim = x;
    }
    if (!cg) {
        drop_graph(victim);
        if ((*rc = build_graph(c, ub, victim, err)) != SLM_OK) {
            drop_graph(victim);
            return NULL;
        }
        cg = victim;
    }
    cg->last_use = ++c->n_runs;
    if (cg->head == ub->head)
        return cg;
    size_t kv = (size_t)c->m->hp.n_head_kv * (size_t)c->m->hp.head_dim * c->es;
    for (int il = 0; il < c->m->hp.n_layer; il++) {
        slm_tensor_t **w = cg->kv_writes + 4 * il;
        size_t ko = ub->head * kv, vo = ub->head * c->es;
        if (slm__sched_move_view(w[0], ko) || slm__sched_move_view(w[1], ko) ||
            slm__sched_move_view(w[2], vo) || slm__sched_move_view(w[3], vo)) {
            *rc = slm__fail(err, SLM_E_STATE, NULL, -1, "decode: moving the cache writes of a "
                            "kept graph failed");
            drop_graph(cg);
            return NULL;
        }
    }
    cg->head = ub->head;
    return cg;
}

static int run_ubatch(slm_context_t *c, const ubatch_t *ub, const int8_t *want, int32_t row0,
                      slm_error_t *err)
{
    const slm_model_t *m = c->m;
    int rc = SLM_OK;
    cached_graph_t *cg = graph_for(c, ub, &rc, err);
    if (!cg)
        return rc;
    if ((rc = fill_mask(c, ub)) != SLM_OK)
        return slm__fail(err, rc, NULL, -1, "decode: out of memory");
    int32_t k = 0;
    for (int32_t t = 0; t < ub->n; t++)
        if (want[t])
            c->out_ids[k++] = t;
    if (slm_tensor_set_data(cg->tokens, ub->token, 0, (size_t)ub->n * 4) < 0 ||
        slm_tensor_set_data(cg->pos, ub->pos, 0, (size_t)ub->n * 4) < 0 ||
        slm_tensor_set_data(cg->mask, c->mask, 0, (size_t)ub->n * ub->n_kv * 4) < 0 ||
        (cg->out_ids &&
         slm_tensor_set_data(cg->out_ids, c->out_ids, 0, (size_t)ub->n_out * 4) < 0))
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "decode: setting the inputs failed");
    if ((rc = slm_sched_compute(m->sched, cg->g, err)) != SLM_OK)
        return rc;
    size_t V = (size_t)m->hp.n_vocab;
    if (ub->n_out > 0 &&
        slm_tensor_get_data(cg->logits, c->logits + (size_t)row0 * V, 0,
                            (size_t)ub->n_out * V * sizeof(float)) < 0)
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "decode: reading the logits failed");
    return SLM_OK;
}

/* ---- decode ---- */

/* First run of n free cells; n_ctx when there is none. */
static uint32_t find_slot(const slm_context_t *c, uint32_t n)
{
    uint32_t run = 0;
    for (uint32_t i = 0; i < c->n_ctx; i++) {
        run = c->cells[i].seq < 0 ? run + 1 : 0;
        if (run == n)
            return i + 1 - n;
    }
    return c->n_ctx;
}

static uint32_t used_extent(const slm_context_t *c)
{
    uint32_t n = c->n_ctx;
    while (n > 0 && c->cells[n - 1].seq < 0)
        n--;
    return n;
}

static uint32_t pad_kv(const slm_context_t *c, uint32_t n)
{
    uint32_t p = (n + KV_PAD - 1) / KV_PAD * KV_PAD;
    return p < c->n_ctx ? p : c->n_ctx;
}

static int check_batch(slm_context_t *c, const slm_batch_t *bt, slm_error_t *err)
{
    if (!c || !bt || bt->n_tokens <= 0 || !bt->token)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: empty batch");
    for (int32_t i = 0; i < bt->n_tokens; i++) {
        if (bt->token[i] < 0 || bt->token[i] >= c->m->hp.n_vocab)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: token %d (at %d) is outside "
                             "the vocabulary of %d", bt->token[i], i, c->m->hp.n_vocab);
        if (bt->seq_id && (bt->seq_id[i] < 0 || bt->seq_id[i] >= (int32_t)c->n_seq))
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: sequence %d (at %d) is "
                             "outside 0..%u", bt->seq_id[i], i, c->n_seq - 1);
        if (bt->pos && bt->pos[i] < 0)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: position %d (at %d) is "
                             "negative", bt->pos[i], i);
    }
    return SLM_OK;
}

/* Fill pos/seq arrays and the logits rows of the whole batch. */
static int prepare(slm_context_t *c, const slm_batch_t *bt, int32_t *pos, int32_t *seq,
                   int8_t *want, slm_error_t *err)
{
    int32_t n = bt->n_tokens, n_out = 0;
    for (int32_t i = 0; i < n; i++) {
        seq[i] = bt->seq_id ? bt->seq_id[i] : 0;
        pos[i] = bt->pos ? bt->pos[i] : c->seq_next[seq[i]];
        if (!bt->pos)
            c->seq_next[seq[i]]++;
        want[i] = bt->logits ? bt->logits[i] != 0 : i == n - 1;
        n_out += want[i];
    }
    if (!bt->pos)   /* undo: seq_next advances only once the tokens are in the cache */
        for (int32_t i = 0; i < n; i++)
            c->seq_next[seq[i]]--;
    size_t need = (size_t)n_out * (size_t)c->m->hp.n_vocab;
    if (need > c->logits_cap) {
        float *p = realloc(c->logits, need * sizeof *p);
        if (!p)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
        c->logits = p;
        c->logits_cap = need;
    }
    if ((size_t)n > c->rows_cap) {
        int32_t *r = realloc(c->rows, (size_t)n * sizeof *r);
        if (!r)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
        c->rows = r;
        c->rows_cap = (size_t)n;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        c->rows[i] = want[i] ? k++ : -1;
    return SLM_OK;
}

static uint32_t free_cells(const slm_context_t *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_ctx; i++)
        n += c->cells[i].seq < 0;
    return n;
}

/* Undo the micro-batches [0, n_done) of a failed decode: cells and positions. */
static void roll_back(slm_context_t *c, const uint32_t *heads, const int32_t *sizes,
                      int32_t n_done, const int32_t *seq_next)
{
    for (int32_t u = 0; u < n_done; u++)
        for (int32_t t = 0; t < sizes[u]; t++)
            c->cells[heads[u] + (uint32_t)t] = (kv_cell_t){.pos = -1, .seq = -1};
    memcpy(c->seq_next, seq_next, c->n_seq * sizeof *seq_next);
}

/* Micro-batches in order; returns how many ran, *rc set on the first failure. */
static int32_t run_all(slm_context_t *c, const slm_batch_t *bt, const int32_t *pos,
                       const int32_t *seq, const int8_t *want, uint32_t *heads, int32_t *sizes,
                       int *rc, slm_error_t *err)
{
    int32_t n = bt->n_tokens, row = 0, u = 0;
    for (int32_t i0 = 0; i0 < n; i0 += (int32_t)c->n_batch, u++) {
        int32_t i1 = n - i0 < (int32_t)c->n_batch ? n : i0 + (int32_t)c->n_batch;
        ubatch_t ub = {.n = i1 - i0, .token = bt->token + i0, .pos = pos + i0, .seq = seq + i0};
        ub.head = find_slot(c, (uint32_t)ub.n);
        if (ub.head == c->n_ctx) {
            *rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: the KV cache (%u cells) has "
                            "no room for %d more tokens in a row", c->n_ctx, ub.n);
            return u;
        }
        for (int32_t t = 0; t < ub.n; t++)
            c->cells[ub.head + (uint32_t)t] = (kv_cell_t){.pos = ub.pos[t], .seq = ub.seq[t]};
        heads[u] = ub.head;
        sizes[u] = ub.n;
        ub.n_kv = pad_kv(c, used_extent(c));
        for (int32_t t = 0; t < ub.n; t++)
            ub.n_out += want[i0 + t];
        *rc = run_ubatch(c, &ub, want + i0, row, err);
        if (*rc)
            return u + 1;
        row += ub.n_out;
        for (int32_t t = 0; t < ub.n; t++)
            if (ub.pos[t] + 1 > c->seq_next[ub.seq[t]])
                c->seq_next[ub.seq[t]] = ub.pos[t] + 1;
    }
    return u;
}

int slm_context_decode(slm_context_t *c, const slm_batch_t *bt, slm_error_t *err)
{
    int rc = check_batch(c, bt, err);
    if (rc)
        return rc;
    c->n_last = 0;
    int32_t n = bt->n_tokens;
    if ((uint32_t)n > free_cells(c))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: the KV cache has %u free cells "
                         "of %u, not the %d this batch needs", free_cells(c), c->n_ctx, n);
    size_t n_ub = (size_t)(n + (int32_t)c->n_batch - 1) / c->n_batch;
    int32_t *pos = malloc((size_t)n * sizeof *pos), *seq = malloc((size_t)n * sizeof *seq);
    int32_t *sizes = malloc(n_ub * sizeof *sizes);
    int32_t *saved = malloc(c->n_seq * sizeof *saved);
    uint32_t *heads = malloc(n_ub * sizeof *heads);
    int8_t *want = malloc((size_t)n);
    if (!pos || !seq || !want || !sizes || !heads || !saved)
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
    if (rc == SLM_OK)
        rc = prepare(c, bt, pos, seq, want, err);
    if (rc == SLM_OK) {
        memcpy(saved, c->seq_next, c->n_seq * sizeof *saved);
        int32_t done = run_all(c, bt, pos, seq, want, heads, sizes, &rc, err);
        if (rc)
            roll_back(c, heads, sizes, done, saved);
        else
            c->n_last = n;
    }
    free(pos);
    free(seq);
    free(sizes);
    free(saved);
    free(heads);
    free(want);
    return rc;
}

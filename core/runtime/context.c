/* Decoding contexts: micro-batches of a batch run through forward graphs kept per
 * shape, over the KV cache (kv-cache.c); the logits asked for are kept. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/graph.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/forward.h"
#include "runtime/generation.h"
#include "runtime/kv-cache.h"
#include "runtime/runtime.h"

/* Graphs kept per context: decode, prompt chunks, and the tail of a prompt. */
#define N_CACHED 4

/* An allocated graph and the handles a run needs: its shape is the key. */
typedef struct cached_graph {
    slm_graph_t *g;
    int32_t n, n_out;
    uint32_t n_kv;
    uint32_t head;             /* cells its cache writes currently target */
    uint64_t last_use;
    slm__fwd_graph_t fwd;      /* out: logits, or the last layer's output when n_out is 0 */
    slm_tensor_t **kv_writes;  /* per layer: K copy, K view, V copy, V view */
} cached_graph_t;

struct slm_context {
    slm_model_t *m;
    uint32_t n_batch;
    bool embeddings;           /* rows are hidden states [n_embd], not logits [n_vocab] */
    slm__kv_cache_t kv;
    /* The adapters its graphs apply: the model's (adapters_set false) or the set
     * slm__context_set_adapters gave; the kept graphs were built with `built`. */
    const slm__adapters_t *adapters, *built;
    bool adapters_set;
    uint64_t built_gen;
    /* Per-sequence adapters: each sequence's set (bit a: adapter id a), and the
     * graphs' row masks built from them. */
    bool row_adapters;
    uint64_t *seq_adapters;
    float *row_mask;
    size_t row_mask_cap;
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
    return ctx ? ctx->kv.n_ctx : 0;
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
    c->n_batch = o.n_batch;
    c->embeddings = (o.flags & SLM_CONTEXT_EMBEDDINGS) != 0;
    c->out_ids = malloc(c->n_batch * sizeof *c->out_ids);
    int rc = c->out_ids ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1, "context: out of "
                                             "memory");
    if (rc == SLM_OK)
        rc = slm__kv_init(&c->kv, m, o.n_ctx, o.n_seq, (slm_type_t)o.type_kv, err);
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

static void drop_graphs(slm_context_t *c)
{
    for (int i = 0; i < N_CACHED; i++)
        drop_graph(&c->graphs[i]);
}

void slm_context_free(slm_context_t *c)
{
    if (!c)
        return;
    drop_graphs(c);
    slm__kv_release(&c->kv);
    free(c->logits);
    free(c->rows);
    free(c->mask);
    free(c->out_ids);
    free(c->seq_adapters);
    free(c->row_mask);
    free(c);
}

int slm__context_row_adapters(slm_context_t *c, slm_error_t *err)
{
    if (c->row_adapters)
        return SLM_OK;
    c->seq_adapters = malloc(c->kv.n_seq * sizeof *c->seq_adapters);
    if (!c->seq_adapters)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "context: out of memory");
    for (uint32_t s = 0; s < c->kv.n_seq; s++)
        c->seq_adapters[s] = ~0ull;
    drop_graphs(c);
    c->row_adapters = true;
    return SLM_OK;
}

void slm__context_seq_adapters(slm_context_t *c, int32_t seq, uint64_t set)
{
    if (c && c->row_adapters && seq >= 0 && (uint32_t)seq < c->kv.n_seq)
        c->seq_adapters[seq] = set;
}

int slm_context_seq_adapters(slm_context_t *c, int32_t seq, const int32_t *ids, size_t n,
                             slm_error_t *err)
{
    if (!c || seq < 0 || (uint32_t)seq >= c->kv.n_seq || (n && !ids))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: bad sequence or adapters");
    size_t n_all = slm_model_n_adapters(c->m);
    uint64_t set = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= n_all || ids[i] >= SLM__MAX_ROW_ADAPTERS)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: adapter %d is not one "
                             "of the %zu attached", ids[i], n_all);
        set |= 1ull << ids[i];
    }
    int rc = slm__context_row_adapters(c, err);
    if (rc == SLM_OK)
        slm__context_seq_adapters(c, seq, set);
    return rc;
}

void slm__context_set_adapters(slm_context_t *c, const slm__adapters_t *ad)
{
    if (!c)
        return;
    drop_graphs(c);
    c->adapters = c->built = ad;
    c->adapters_set = true;
    c->built_gen = 0;
}

/* The set the next graph applies; kept graphs built with another are dropped (an
 * adapter attached to the model since, or a set given to the context). */
static const slm__adapters_t *current_adapters(slm_context_t *c)
{
    uint64_t gen = 0;
    const slm__adapters_t *ad = slm__model_adapters(c->m, &gen);
    if (c->adapters_set)
        ad = c->adapters, gen = 0;
    if (ad != c->built || gen != c->built_gen) {
        drop_graphs(c);
        c->built = ad;
        c->built_gen = gen;
    }
    return ad;
}

void slm_context_seq_clear(slm_context_t *c, int32_t seq)
{
    if (c)
        slm__kv_seq_clear(&c->kv, seq);
}

void slm_context_seq_truncate(slm_context_t *c, int32_t seq, int32_t pos)
{
    if (c)
        slm__kv_seq_truncate(&c->kv, seq, pos);
}

uint32_t slm__context_kv_used(const slm_context_t *c)
{
    return c->kv.n_ctx - slm__kv_free_cells(&c->kv);
}

int32_t slm_context_seq_pos(const slm_context_t *c, int32_t seq)
{
    return c ? slm__kv_seq_pos(&c->kv, seq) : -1;
}

/* Floats in one kept row: logits, or hidden states. */
static size_t row_width(const slm_context_t *c)
{
    return (size_t)(c->embeddings ? c->m->hp.n_embd : c->m->hp.n_vocab);
}

static const float *row_of(const slm_context_t *c, int32_t i)
{
    if (!c || c->n_last == 0)
        return NULL;
    if (i == -1)
        i = c->n_last - 1;
    if (i < 0 || i >= c->n_last || c->rows[i] < 0)
        return NULL;
    return c->logits + (size_t)c->rows[i] * row_width(c);
}

const float *slm_context_logits(const slm_context_t *c, int32_t i)
{
    return c && !c->embeddings ? row_of(c, i) : NULL;
}

const float *slm_context_embeddings(const slm_context_t *c, int32_t i)
{
    return c && c->embeddings ? row_of(c, i) : NULL;
}

/* ---- one micro-batch ---- */

typedef struct ubatch {
    int32_t n;                 /* tokens */
    const int32_t *token, *pos, *seq;
    uint32_t head;             /* first cache cell they occupy */
    uint32_t n_kv;             /* cells the attention spans: [0, n_kv) */
    int32_t n_out;             /* tokens whose logits are kept */
} ubatch_t;

/* Build and allocate the graph of ub's shape into cg. */
static int build_graph(slm_context_t *c, const ubatch_t *ub, cached_graph_t *cg, slm_error_t *err)
{
    const slm_model_t *m = c->m;
    const slm__adapters_t *ad = c->built;
    cg->g = slm_graph_new(slm__forward_graph_size(m, ad));
    cg->kv_writes = calloc((size_t)m->hp.n_layer * 4, sizeof *cg->kv_writes);
    if (!cg->g || !cg->kv_writes)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
    slm__kv_memory_t km;
    slm__kv_memory_init(&km, &c->kv, ub->head, ub->n_kv, cg->kv_writes);
    slm__fwd_params_t fp = {.n_tokens = ub->n, .n_rows = 1, .n_out = ub->n_out,
                            .hidden = c->embeddings, .adapters = ad, .mem = &km.mem,
                            .row_adapters = c->row_adapters};
    int rc = slm__forward_build(m, cg->g, &fp, &cg->fwd, err);
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
    current_adapters(c);
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
    if (slm__kv_move_writes(&c->kv, cg->kv_writes, ub->head) != SLM_OK) {
        *rc = slm__fail(err, SLM_E_STATE, NULL, -1, "decode: moving the cache writes of a "
                        "kept graph failed");
        drop_graph(cg);
        return NULL;
    }
    cg->head = ub->head;
    return cg;
}

/* Host staging for ub's mask. */
static int reserve_mask(slm_context_t *c, const ubatch_t *ub)
{
    size_t n = (size_t)ub->n_kv * (size_t)ub->n;
    if (n <= c->mask_cap)
        return SLM_OK;
    float *p = realloc(c->mask, n * sizeof *p);
    if (!p)
        return SLM_E_NOMEM;
    c->mask = p;
    c->mask_cap = n;
    return SLM_OK;
}

/* Each adapter's row mask: 1 for the tokens of sequences whose set holds it. */
static int feed_row_masks(slm_context_t *c, const ubatch_t *ub, const slm__fwd_graph_t *fg,
                          slm_error_t *err)
{
    if (!fg->n_row_masks)
        return SLM_OK;
    if ((size_t)ub->n > c->row_mask_cap) {
        float *p = realloc(c->row_mask, (size_t)ub->n * sizeof *p);
        if (!p)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
        c->row_mask = p;
        c->row_mask_cap = (size_t)ub->n;
    }
    for (uint32_t a = 0; a < fg->n_row_masks; a++) {
        for (int32_t t = 0; t < ub->n; t++)
            c->row_mask[t] = (float)(c->seq_adapters[ub->seq[t]] >> a & 1);
        if (slm_tensor_set_data(fg->row_masks[a], c->row_mask, 0, (size_t)ub->n * 4) < 0)
            return slm__fail(err, SLM_E_DEVICE, NULL, -1, "decode: setting the inputs failed");
    }
    return SLM_OK;
}

static int run_ubatch(slm_context_t *c, const ubatch_t *ub, const int8_t *want, int32_t row0,
                      slm_error_t *err)
{
    const slm_model_t *m = c->m;
    int rc = SLM_OK;
    cached_graph_t *cg = graph_for(c, ub, &rc, err);
    if (!cg)
        return rc;
    if ((rc = reserve_mask(c, ub)) != SLM_OK)
        return slm__fail(err, rc, NULL, -1, "decode: out of memory");
    slm__kv_fill_mask(&c->kv, ub->n_kv, ub->n, ub->pos, ub->seq, c->mask);
    int32_t k = 0;
    for (int32_t t = 0; t < ub->n; t++)
        if (want[t])
            c->out_ids[k++] = t;
    const slm__fwd_graph_t *fg = &cg->fwd;
    if ((rc = feed_row_masks(c, ub, fg, err)) != SLM_OK)
        return rc;
    if (slm_tensor_set_data(fg->tokens, ub->token, 0, (size_t)ub->n * 4) < 0 ||
        slm_tensor_set_data(fg->pos, ub->pos, 0, (size_t)ub->n * 4) < 0 ||
        slm_tensor_set_data(fg->mask, c->mask, 0, (size_t)ub->n * ub->n_kv * 4) < 0 ||
        (fg->out_ids &&
         slm_tensor_set_data(fg->out_ids, c->out_ids, 0, (size_t)ub->n_out * 4) < 0))
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "decode: setting the inputs failed");
    if ((rc = slm_sched_compute(m->sched, cg->g, err)) != SLM_OK)
        return rc;
    size_t V = row_width(c);
    if (ub->n_out > 0 &&
        slm_tensor_get_data(fg->out, c->logits + (size_t)row0 * V, 0,
                            (size_t)ub->n_out * V * sizeof(float)) < 0)
        return slm__fail(err, SLM_E_DEVICE, NULL, -1, "decode: reading the logits failed");
    return SLM_OK;
}

/* ---- decode ---- */

static int check_batch(slm_context_t *c, const slm_batch_t *bt, slm_error_t *err)
{
    if (!c || !bt || bt->n_tokens <= 0 || !bt->token)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: empty batch");
    int32_t n_seq = (int32_t)c->kv.n_seq;
    for (int32_t i = 0; i < bt->n_tokens; i++) {
        if (bt->token[i] < 0 || bt->token[i] >= c->m->hp.n_vocab)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: token %d (at %d) is outside "
                             "the vocabulary of %d", bt->token[i], i, c->m->hp.n_vocab);
        if (bt->seq_id && (bt->seq_id[i] < 0 || bt->seq_id[i] >= n_seq))
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "decode: sequence %d (at %d) is "
                             "outside 0..%d", bt->seq_id[i], i, n_seq - 1);
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
    int32_t n = bt->n_tokens, n_out = 0, *seq_next = c->kv.seq_next;
    for (int32_t i = 0; i < n; i++) {
        seq[i] = bt->seq_id ? bt->seq_id[i] : 0;
        pos[i] = bt->pos ? bt->pos[i] : seq_next[seq[i]];
        if (!bt->pos)
            seq_next[seq[i]]++;
        want[i] = bt->logits ? bt->logits[i] != 0 : i == n - 1;
        n_out += want[i];
    }
    if (!bt->pos)   /* undo: seq_next advances only once the tokens are in the cache */
        for (int32_t i = 0; i < n; i++)
            seq_next[seq[i]]--;
    size_t need = (size_t)n_out * row_width(c);
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

/* Undo the micro-batches [0, n_done) of a failed decode: cells and positions. */
static void roll_back(slm_context_t *c, const uint32_t *heads, const int32_t *sizes,
                      int32_t n_done, const int32_t *seq_next)
{
    for (int32_t u = 0; u < n_done; u++)
        slm__kv_vacate(&c->kv, heads[u], sizes[u]);
    memcpy(c->kv.seq_next, seq_next, c->kv.n_seq * sizeof *seq_next);
}

/* Micro-batches in order; returns how many ran, *rc set on the first failure. One
 * that finds no run of free cells long enough (sequences that came and went leave
 * holes) is cut to the longest run there is. */
static int32_t run_all(slm_context_t *c, const slm_batch_t *bt, const int32_t *pos,
                       const int32_t *seq, const int8_t *want, uint32_t *heads, int32_t *sizes,
                       int *rc, slm_error_t *err)
{
    slm__kv_cache_t *kv = &c->kv;
    int32_t n = bt->n_tokens, row = 0, u = 0;
    for (int32_t i0 = 0; i0 < n; i0 += sizes[u++]) {
        uint32_t want_n = (uint32_t)(n - i0 < (int32_t)c->n_batch ? n - i0 : (int32_t)c->n_batch);
        uint32_t head = slm__kv_find_run(kv, &want_n);
        ubatch_t ub = {.n = (int32_t)want_n, .token = bt->token + i0, .pos = pos + i0,
                       .seq = seq + i0, .head = head};
        if (ub.n == 0) {
            *rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: the KV cache (%u cells) has "
                            "no free cell", kv->n_ctx);
            return u;
        }
        slm__kv_occupy(kv, ub.head, ub.n, ub.pos, ub.seq);
        heads[u] = ub.head;
        sizes[u] = ub.n;
        ub.n_kv = slm__kv_span(kv);
        for (int32_t t = 0; t < ub.n; t++)
            ub.n_out += want[i0 + t];
        *rc = run_ubatch(c, &ub, want + i0, row, err);
        if (*rc)
            return u + 1;
        row += ub.n_out;
        for (int32_t t = 0; t < ub.n; t++)
            if (ub.pos[t] + 1 > kv->seq_next[ub.seq[t]])
                kv->seq_next[ub.seq[t]] = ub.pos[t] + 1;
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
    uint32_t n_free = slm__kv_free_cells(&c->kv), n_seq = c->kv.n_seq;
    if ((uint32_t)n > n_free)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: the KV cache has %u free cells "
                         "of %u, not the %d this batch needs", n_free, c->kv.n_ctx, n);
    size_t n_ub = (size_t)n;   /* at most: holes in the cache may cut micro-batches */
    int32_t *pos = malloc((size_t)n * sizeof *pos), *seq = malloc((size_t)n * sizeof *seq);
    int32_t *sizes = malloc(n_ub * sizeof *sizes);
    int32_t *saved = malloc(n_seq * sizeof *saved);
    uint32_t *heads = malloc(n_ub * sizeof *heads);
    int8_t *want = malloc((size_t)n);
    if (!pos || !seq || !want || !sizes || !heads || !saved)
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "decode: out of memory");
    if (rc == SLM_OK)
        rc = prepare(c, bt, pos, seq, want, err);
    if (rc == SLM_OK) {
        memcpy(saved, c->kv.seq_next, n_seq * sizeof *saved);
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

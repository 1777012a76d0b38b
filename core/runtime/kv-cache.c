/* The KV cache: bound buffers the decode graphs append to, the cells that say which
 * sequence and position each row holds, and the memory seam over both. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/graph.h"
#include "internal/util.h"
#include "runtime/kv-cache.h"

/* Attention spans a multiple of this many cells (the rest masked out), so one graph
 * serves this many decode steps; llama.cpp pads the same way. */
#define KV_PAD 64u

#define GIB(b) ((double)(b) / (1024.0 * 1024.0 * 1024.0))

/* What a newcomer can act on: the cache, its size, and the context that would fit. */
static int too_large(const slm__kv_cache_t *kv, uint64_t bytes, uint64_t avail, slm_error_t *err)
{
    uint64_t per_token = bytes / kv->n_ctx;
    /* Leave a tenth for the graphs' work buffers; round down to 256 tokens. */
    uint64_t fit = avail ? avail / 10 * 9 / per_token / 256 * 256 : 0;
    const slm_device_info_t *dev = slm_sched_device(kv->m->sched);
    char hint[96] = "";
    if (fit >= 256)
        snprintf(hint, sizeof hint, "; a context (--ctx) of %llu tokens would fit",
                 (unsigned long long)fit);
    else if (avail)
        snprintf(hint, sizeof hint, "; not even 256 tokens would fit");
    return slm__fail(err, SLM_E_NOMEM, NULL, -1, "the KV cache for a context of %u tokens "
                     "needs %.2f GiB (%s, %.1f KiB a token) but %s has %.2f GiB free%s",
                     kv->n_ctx, GIB(bytes), slm_type_name(kv->type),
                     (double)per_token / 1024.0, dev ? dev->id : "the device",
                     GIB(avail), hint);
}

static int alloc_buffers(slm__kv_cache_t *kv, slm_error_t *err)
{
    const slm__hparams_t *hp = &kv->m->hp;
    uint64_t row = (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim, layer, total;
    if (!slm__mul_overflow_u64(row, kv->n_ctx, &layer) ||
        !slm__mul_overflow_u64(layer, kv->es, &layer) ||
        !slm__mul_overflow_u64(layer, (uint64_t)hp->n_layer, &total))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "context: a KV cache of %u cells is "
                         "too large", kv->n_ctx);
    kv->k_layer = kv->v_layer = layer;
    const slm_device_info_t *dev = slm_sched_device(kv->m->sched);
    uint64_t avail = dev ? dev->memory_free : 0;
    /* Refuse up front what cannot fit: an over-committed allocation would only fail
     * later, when the cache is first written, and take the process down. */
    if (avail && total > avail / 2)
        return too_large(kv, 2 * total, avail, err);
    kv->k = slm_buffer_new(kv->m->sched, total, err);
    kv->v = kv->k ? slm_buffer_new(kv->m->sched, total, err) : NULL;
    if (!kv->v && !avail)   /* free memory unknown: the backend's own message stands */
        return err && err->code ? err->code : SLM_E_NOMEM;
    if (!kv->v)
        return too_large(kv, 2 * total, avail, err);
    /* Padded attention reads cells never written: slm_buffer_new's zeros are finite
     * (and a backend may keep them unbacked until used). */
    slm_log(SLM_LOG_DEBUG, "context", "KV cache: %u cells, %s, %llu bytes", kv->n_ctx,
            slm_type_name(kv->type), (unsigned long long)(2 * total));
    return SLM_OK;
}

/* Whether the device runs the fused attention over a cache of this model and type. */
static bool device_fuses_attention(const slm_model_t *m, slm_type_t type)
{
    const slm__hparams_t *hp = &m->hp;
    slm_graph_t *g = slm_graph_new(8);
    if (!g)
        return false;
    /* Views laid out as kv_attend's: a row of every head per cell, two cells. */
    int64_t hd = hp->head_dim, Hkv = hp->n_head_kv, es = (int64_t)slm_type_get_traits(type)->size;
    const int64_t qne[3] = {hd, hp->n_head, 1}, kne[3] = {hd, 2, Hkv};
    const int64_t knb[3] = {es, Hkv * hd * es, hd * es};
    slm_tensor_t *q = slm_tensor_new(g, SLM_TYPE_F32, 3, qne);
    slm_tensor_t *kc = slm_tensor_new_1d(g, type, 2 * Hkv * hd);
    slm_tensor_t *vc = slm_tensor_new_1d(g, type, 2 * Hkv * hd);
    slm_tensor_t *k = kc ? slm_view(g, kc, 3, kne, knb, 0) : NULL;
    slm_tensor_t *v = vc ? slm_view(g, vc, 3, kne, knb, 0) : NULL;
    slm_tensor_t *mask = slm_tensor_new_2d(g, SLM_TYPE_F32, 2, 1);
    slm_tensor_t *t = q && k && v && mask ? slm_attn(g, q, k, v, mask, 1.0f) : NULL;
    bool ok = t && slm__sched_primary_supports(m->sched, t);
    slm_graph_free(g);
    return ok;
}

int slm__kv_init(slm__kv_cache_t *kv, const slm_model_t *m, uint32_t n_ctx, uint32_t n_seq,
                 slm_type_t type, slm_error_t *err)
{
    memset(kv, 0, sizeof *kv);
    kv->m = m;
    kv->n_ctx = n_ctx;
    kv->n_seq = n_seq;
    kv->type = type;
    kv->es = slm_type_get_traits(type)->size;
    kv->cells = malloc(n_ctx * sizeof *kv->cells);
    kv->seq_next = calloc(n_seq, sizeof *kv->seq_next);
    if (!kv->cells || !kv->seq_next)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "context: out of memory");
    for (uint32_t i = 0; i < n_ctx; i++)
        kv->cells[i] = (slm__kv_cell_t){.pos = -1, .seq = -1};
    kv->v_rows = device_fuses_attention(m, type);
    return alloc_buffers(kv, err);
}

void slm__kv_release(slm__kv_cache_t *kv)
{
    slm_buffer_free(kv->k);
    slm_buffer_free(kv->v);
    free(kv->cells);
    free(kv->seq_next);
    memset(kv, 0, sizeof *kv);
}

void slm__kv_seq_clear(slm__kv_cache_t *kv, int32_t seq)
{
    if (seq < -1 || seq >= (int32_t)kv->n_seq)
        return;
    for (uint32_t i = 0; i < kv->n_ctx; i++)
        if (seq == -1 || kv->cells[i].seq == seq)
            kv->cells[i] = (slm__kv_cell_t){.pos = -1, .seq = -1};
    for (uint32_t s = 0; s < kv->n_seq; s++)
        if (seq == -1 || (int32_t)s == seq)
            kv->seq_next[s] = 0;
}

void slm__kv_seq_truncate(slm__kv_cache_t *kv, int32_t seq, int32_t pos)
{
    if (seq < 0 || seq >= (int32_t)kv->n_seq || pos < 0 || pos >= kv->seq_next[seq])
        return;
    for (uint32_t i = 0; i < kv->n_ctx; i++)
        if (kv->cells[i].seq == seq && kv->cells[i].pos >= pos)
            kv->cells[i] = (slm__kv_cell_t){.pos = -1, .seq = -1};
    kv->seq_next[seq] = pos;
}

int32_t slm__kv_seq_pos(const slm__kv_cache_t *kv, int32_t seq)
{
    if (seq < 0 || seq >= (int32_t)kv->n_seq)
        return -1;
    return kv->seq_next[seq];
}

uint32_t slm__kv_find_run(const slm__kv_cache_t *kv, uint32_t *n)
{
    uint32_t run = 0, best = 0, best_head = kv->n_ctx;
    for (uint32_t i = 0; i < kv->n_ctx; i++) {
        run = kv->cells[i].seq < 0 ? run + 1 : 0;
        if (run == *n)
            return i + 1 - run;
        if (run > best)
            best = run, best_head = i + 1 - run;
    }
    *n = best;
    return best_head;
}

uint32_t slm__kv_free_cells(const slm__kv_cache_t *kv)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < kv->n_ctx; i++)
        n += kv->cells[i].seq < 0;
    return n;
}

uint32_t slm__kv_span(const slm__kv_cache_t *kv)
{
    uint32_t n = kv->n_ctx;
    while (n > 0 && kv->cells[n - 1].seq < 0)
        n--;
    uint32_t p = (n + KV_PAD - 1) / KV_PAD * KV_PAD;
    return p < kv->n_ctx ? p : kv->n_ctx;
}

void slm__kv_occupy(slm__kv_cache_t *kv, uint32_t head, int32_t n, const int32_t *pos,
                    const int32_t *seq)
{
    for (int32_t t = 0; t < n; t++)
        kv->cells[head + (uint32_t)t] = (slm__kv_cell_t){.pos = pos[t], .seq = seq[t]};
}

void slm__kv_vacate(slm__kv_cache_t *kv, uint32_t head, int32_t n)
{
    for (int32_t t = 0; t < n; t++)
        kv->cells[head + (uint32_t)t] = (slm__kv_cell_t){.pos = -1, .seq = -1};
}

void slm__kv_fill_mask(const slm__kv_cache_t *kv, uint32_t n_kv, int32_t n, const int32_t *pos,
                       const int32_t *seq, float *mask)
{
    for (int32_t t = 0; t < n; t++) {
        float *row = mask + (size_t)t * n_kv;
        for (uint32_t i = 0; i < n_kv; i++) {
            const slm__kv_cell_t *cell = &kv->cells[i];
            bool visible = cell->seq == seq[t] && cell->pos <= pos[t];
            row[i] = visible ? 0.0f : -INFINITY;
        }
    }
}

/* ---- the memory seam ---- */

static slm_tensor_t *kv_mask(void *self, slm__fwd_t *f)
{
    const slm__kv_memory_t *km = self;
    return slm_tensor_new_2d(f->g, SLM_TYPE_F32, km->n_kv, f->N);
}

/* Append this batch's K and V to the cache, attend over cells [0, n_kv). */
static void kv_attend(void *self, slm__fwd_t *f, int il, slm_tensor_t *k, slm_tensor_t *v,
                      slm_tensor_t **K, slm_tensor_t **V)
{
    const slm__kv_memory_t *km = self;
    const slm__kv_cache_t *kv = km->kv;
    const slm__hparams_t *hp = &kv->m->hp;
    slm_graph_t *g = f->g;
    int64_t T = f->N, hd = hp->head_dim, Hkv = hp->n_head_kv;
    int64_t KV = Hkv * hd, es = (int64_t)kv->es, n_ctx = kv->n_ctx, n_kv = km->n_kv;
    /* Each layer's K is [KV, n_ctx] (a row per cell); V is stored transposed,
     * [n_ctx, KV], so that attention reads both without copying. */
    slm_tensor_t *kc = slm_tensor_new_1d(g, kv->type, KV * n_ctx);
    slm_tensor_t *vc = slm_tensor_new_1d(g, kv->type, KV * n_ctx);
    if (!kc || !vc || f->rc)
        return;
    if ((f->rc = slm_tensor_bind(kc, kv->k, (uint64_t)il * kv->k_layer, f->err)) ||
        (f->rc = slm_tensor_bind(vc, kv->v, (uint64_t)il * kv->v_layer, f->err)))
        return;
    uint64_t head = km->head;
    const int64_t kdne[2] = {KV, T}, kdnb[2] = {es, KV * es};
    slm_tensor_t **w = km->writes + 4 * il;
    w[1] = slm_view(g, kc, 2, kdne, kdnb, head * KV * es);
    w[0] = slm_cpy(g, slm_reshape(g, k, 2, kdne), w[1]);
    if (kv->v_rows) {
        w[3] = slm_view(g, vc, 2, kdne, kdnb, head * KV * es);
        w[2] = slm_cpy(g, v, w[3]);   /* v [KV, N] as it comes, strided or not */
    } else {
        const int64_t vdne[2] = {T, KV}, vdnb[2] = {es, n_ctx * es};
        w[3] = slm_view(g, vc, 2, vdne, vdnb, head * es);
        w[2] = slm_cpy(g, slm_transpose(g, v), w[3]);
    }

    /* Graphs run their nodes in creation order, so these reads follow the copies. */
    const int64_t kne[3] = {hd, n_kv, Hkv}, knb[3] = {es, KV * es, hd * es};
    const int64_t vne[3] = {n_kv, hd, Hkv}, vnb[3] = {es, n_ctx * es, n_ctx * hd * es};
    *K = slm_view(g, kc, 3, kne, knb, 0);
    *V = kv->v_rows ? slm_view(g, vc, 3, kne, knb, 0) : slm_view(g, vc, 3, vne, vnb, 0);
}

void slm__kv_memory_init(slm__kv_memory_t *km, slm__kv_cache_t *kv, uint32_t head,
                         uint32_t n_kv, slm_tensor_t **writes)
{
    *km = (slm__kv_memory_t){.mem = {.mask = kv_mask, .kv = kv_attend, .self = km,
                                     .v_rows = kv->v_rows},
                             .kv = kv, .head = head, .n_kv = n_kv, .writes = writes};
}

int slm__kv_move_writes(const slm__kv_cache_t *kv, slm_tensor_t **writes, uint32_t head)
{
    size_t row = (size_t)kv->m->hp.n_head_kv * (size_t)kv->m->hp.head_dim * kv->es;
    size_t ko = head * row, vo = kv->v_rows ? ko : head * kv->es;
    for (int il = 0; il < kv->m->hp.n_layer; il++) {
        slm_tensor_t **w = writes + 4 * il;
        if (slm__sched_move_view(w[0], ko) || slm__sched_move_view(w[1], ko) ||
            slm__sched_move_view(w[2], vo) || slm__sched_move_view(w[3], vo))
            return SLM_E_STATE;
    }
    return SLM_OK;
}

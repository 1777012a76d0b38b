/* Fused attention over a KV cache (SLM_OP_ATTN). Per query and head: the scores of
 * the cells its mask row leaves visible, their softmax, and the weighted sum of
 * their V rows. Masked cells cost nothing: one decode step of eight sequences
 * sharing a cache reads each sequence's cells once, not every cell eight times as
 * the matmul-softmax-matmul composite does (docs/decisions.md D53). A prompt's
 * queries go by blocks through the GEMM instead (attn-blocks.c, D59). */
#include "config.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "attn-blocks.h"
#include "convert.h"
#include "cpu.h"
#include "vmath.h"

static bool check_attn(const slm_node_t *n)
{
    if (n->n_src != 4 || !isfinite(n->fp[0]))
        return false;
    const slm_tensor_desc_t *d = &n->dst, *q = &n->src[0], *k = &n->src[1], *v = &n->src[2],
                            *m = &n->src[3];
    if (!cpu_desc_ok(d, SLM_TYPE_F32) || !cpu_desc_ok(q, SLM_TYPE_F32) ||
        !cpu_desc_ok(m, SLM_TYPE_F32) || k->type != v->type ||
        (k->type != SLM_TYPE_F32 && k->type != SLM_TYPE_F16) || !cpu_desc_ok(k, k->type) ||
        !cpu_desc_ok(v, v->type))
        return false;
    int64_t D = q->ne[0], H = q->ne[1], N = q->ne[2], C = k->ne[1], Hk = k->ne[2];
    return cpu_same_shape(d, q) && q->ne[3] == 1 && D > 0 && k->ne[0] == D &&
           k->ne[3] == 1 && Hk > 0 && H % Hk == 0 && v->ne[0] == D && v->ne[1] == C &&
           v->ne[2] == Hk && v->ne[3] == 1 && m->ne[0] == C && m->ne[1] >= N &&
           cpu_rows_packed(q) && cpu_rows_packed(d) && cpu_rows_packed(m) &&
           cpu_rows_packed(k) && cpu_rows_packed(v);
}

/* Query heads that share a kv head, taken together at most this many at a time. */
#define ATTN_GROUP_MAX 4

/* Per thread: the visible cells of the current query (C indices), their scores
 * (C floats for each of up to ATTN_GROUP_MAX heads), the output accumulator
 * (D floats), and for many queries a block's scores (attn-blocks.h) last. */
static size_t query_bytes(const slm_node_t *n)
{
    size_t C = (size_t)n->src[1].ne[1], D = (size_t)n->src[0].ne[0];
    return cpu_align64(C * sizeof(int32_t)) + cpu_align64(ATTN_GROUP_MAX * C * sizeof(float)) +
           cpu_align64(D * sizeof(float));
}

static size_t thread_bytes(const slm_node_t *n, int nth)
{
    return query_bytes(n) +
           (cpu_attn_blocks_apply(n, nth) ? cpu_align64(cpu_attn_block_bytes(n)) : 0);
}

/* Every thread's part, then (blocks) the blocks' spans, shared, from here on. */
static size_t spans_offset(const slm_node_t *n, int nth)
{
    return cpu_scratch_per_thread(thread_bytes(n, nth), nth);
}

static size_t scratch_attn(const slm_node_t *n, int nth)
{
    size_t all = spans_offset(n, nth);
    if (all == SIZE_MAX || !cpu_attn_blocks_apply(n, nth))
        return all;
    size_t spans = (size_t)cpu_attn_blocks(n) * sizeof(attn_span_t);
    return all > SIZE_MAX - spans ? SIZE_MAX : all + spans;
}

/* The cells a mask row leaves visible, in order; how many. */
static int64_t visible_cells(const float *mask, int64_t C, int32_t *idx)
{
    int64_t n = 0;
    for (int64_t c = 0; c < C; c++) {
        idx[n] = (int32_t)c;
        n += mask[c] != -INFINITY;
    }
    return n;
}

/* f16 rows: whole vectors through the hardware conversion where the variant has it
 * (the compiler does not vectorise _cvtsh_ss loops), the tail one element at a time. */
#if defined(__AVX512F__)
#define F16_W 16
typedef __m512 f16v_t;
#define F16_ZERO() _mm512_setzero_ps()
#define F16_LOAD_H(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define F16_LOAD_F(p) _mm512_loadu_ps(p)
#define F16_STORE_F(p, x) _mm512_storeu_ps((p), (x))
#define F16_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define F16_SET1(x) _mm512_set1_ps(x)
#define F16_MUL(a, b) _mm512_mul_ps((a), (b))
#define F16_HSUM(x) _mm512_reduce_add_ps(x)
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define F16_W 8
typedef __m256 f16v_t;
#define F16_ZERO() _mm256_setzero_ps()
#define F16_LOAD_H(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define F16_LOAD_F(p) _mm256_loadu_ps(p)
#define F16_STORE_F(p, x) _mm256_storeu_ps((p), (x))
#define F16_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define F16_SET1(x) _mm256_set1_ps(x)
#define F16_MUL(a, b) _mm256_mul_ps((a), (b))
#define F16_HSUM(x) cpu_hsum256(x)
#endif

/* q . k over D elements; k is f32 or f16. */
static float dot_row(const float *restrict q, const char *k, bool f16, int64_t D)
{
    int64_t d = 0;
    float s = 0.0f;
    if (f16) {
        const uint16_t *kh = (const uint16_t *)k;
#ifdef F16_W
        f16v_t a = F16_ZERO();
        for (; d + F16_W <= D; d += F16_W)
            a = F16_FMA(F16_LOAD_F(q + d), F16_LOAD_H(kh + d), a);
        s = F16_HSUM(a);
#endif
        for (; d < D; d++)
            s += q[d] * slm_half_to_float(kh[d]);
        return s;
    }
    /* f32: fixed-width chunks, which -O2 vectorises. */
    const float *kf = (const float *)k;
    float acc[CPU_VW] = {0};
    for (; d + CPU_VW <= D; d += CPU_VW)
        for (int j = 0; j < CPU_VW; j++)
            acc[j] += q[d + j] * kf[d + j];
    for (; d < D; d++)
        s += q[d] * kf[d];
    for (int j = 0; j < CPU_VW; j++)
        s += acc[j];
    return s;
}

/* out += p * v over D elements. */
static void add_scaled_row(float *restrict out, const char *v, bool f16, float p, int64_t D)
{
    int64_t d = 0;
    if (f16) {
        const uint16_t *vh = (const uint16_t *)v;
#ifdef F16_W
        f16v_t pv = F16_SET1(p);
        for (; d + F16_W <= D; d += F16_W)
            F16_STORE_F(out + d, F16_FMA(pv, F16_LOAD_H(vh + d), F16_LOAD_F(out + d)));
#endif
        for (; d < D; d++)
            out[d] += p * slm_half_to_float(vh[d]);
        return;
    }
    const float *vf = (const float *)v;
    for (; d + CPU_VW <= D; d += CPU_VW)
        for (int j = 0; j < CPU_VW; j++)
            out[d + j] += p * vf[d + j];
    for (; d < D; d++)
        out[d] += p * vf[d];
}

#ifdef F16_W
/* out = inv * sum_j p[j] * V[:, idx[j]] for f16 rows of NV whole vectors: the
 * accumulators stay in registers across the cells (NV is a constant once inlined). */
static inline __attribute__((always_inline)) void
sum_rows_f16(int NV, float *out, const slm_tensor_desc_t *v, int64_t hk, const int32_t *idx,
             const float *p, int64_t n_vis, float inv)
{
    f16v_t acc[8];
    _Pragma("GCC unroll 8")
    for (int i = 0; i < NV; i++)
        acc[i] = F16_ZERO();
    for (int64_t j = 0; j < n_vis; j++) {
        const uint16_t *row = (const uint16_t *)(const void *)cpu_row(v, idx[j], hk, 0);
        f16v_t pj = F16_SET1(p[j]);
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++)
            acc[i] = F16_FMA(pj, F16_LOAD_H(row + i * F16_W), acc[i]);
    }
    f16v_t s = F16_SET1(inv);
    _Pragma("GCC unroll 8")
    for (int i = 0; i < NV; i++)
        F16_STORE_F(out + i * F16_W, F16_MUL(acc[i], s));
}
#endif

/* out = inv * sum_j p[j] * V[:, idx[j]]: the head dimensions of common models with f16
 * rows in registers, anything else through acc. */
static void sum_rows(float *out, const slm_tensor_desc_t *v, int64_t hk, const int32_t *idx,
                     const float *p, int64_t n_vis, float inv, int64_t D, float *acc)
{
    bool f16 = v->type == SLM_TYPE_F16;
#ifdef F16_W
    if (f16 && D == 2 * F16_W)
        return sum_rows_f16(2, out, v, hk, idx, p, n_vis, inv);
    if (f16 && D == 4 * F16_W)
        return sum_rows_f16(4, out, v, hk, idx, p, n_vis, inv);
    if (f16 && D == 8 * F16_W)
        return sum_rows_f16(8, out, v, hk, idx, p, n_vis, inv);
#endif
    memset(acc, 0, (size_t)D * sizeof *acc);
    for (int64_t j = 0; j < n_vis; j++)
        add_scaled_row(acc, cpu_row(v, idx[j], hk, 0), f16, p[j], D);
    for (int64_t d = 0; d < D; d++)
        out[d] = acc[d] * inv;
}

/* One query row of one head over its n_vis visible cells: the scores, then their
 * exponentials in place (whole vectors), then the rows of V they weigh (no visible
 * cell: zeros). */
static void attend_one(const slm_node_t *n, const float *q, const float *mask,
                       const int32_t *idx, int64_t n_vis, int64_t hk, float *scores, float *acc,
                       float *out)
{
    const slm_tensor_desc_t *k = &n->src[1];
    int64_t D = n->src[0].ne[0];
    bool f16 = k->type == SLM_TYPE_F16;
    float scale = n->fp[0];
    for (int64_t j = 0; j < n_vis; j++) {
        int64_t c = idx[j];
        scores[j] = dot_row(q, cpu_row(k, c, hk, 0), f16, D) * scale + mask[c];
    }
    float sum = cpu_exp_shifted(scores, scores, n_vis);
    if (sum == 0.0f) {   /* every visible score overflowed down: as fully masked */
        memset(out, 0, (size_t)D * sizeof *out);
        return;
    }
    sum_rows(out, &n->src[2], hk, idx, scores, n_vis, 1.0f / sum, D, acc);
}

#if defined(__AVX512F__)
/* NV vectors of an f16 row (K or V of one cell), converted to f32. */
static inline __attribute__((always_inline)) void load_row_f16(int NV, const slm_tensor_desc_t *t,
                                                               int64_t cell, int64_t hk,
                                                               __m512 out[8])
{
    const uint16_t *r = (const uint16_t *)(const void *)cpu_row(t, cell, hk, 0);
    _Pragma("GCC unroll 8")
    for (int i = 0; i < NV; i++)
        out[i] = F16_LOAD_H(r + 16 * i);
}

/* G query heads that share kv head hk (G * NV <= 16 vectors: everything in registers),
 * one query: each visible cell's K and V rows are loaded and converted once for all G
 * heads instead of once per head (no visible cell: zeros). f16 K/V with D = 16 * NV. */
static inline __attribute__((always_inline)) void
attend_group(int G, int NV, const slm_node_t *n, const float *mask, const int32_t *idx,
             int64_t n_vis, int64_t t, int64_t h0, int64_t hk, float *scores, int64_t C)
{
    const slm_tensor_desc_t *q = &n->src[0], *k = &n->src[1], *v = &n->src[2];
    float scale = n->fp[0], inv[ATTN_GROUP_MAX];
    __m512 qv[ATTN_GROUP_MAX][8], acc[ATTN_GROUP_MAX][8];
    _Pragma("GCC unroll 4")
    for (int g = 0; g < G; g++) {
        const float *qr = (const float *)(const void *)cpu_row(q, h0 + g, t, 0);
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++)
            qv[g][i] = _mm512_loadu_ps(qr + 16 * i);
    }
    for (int64_t j = 0; j < n_vis; j++) {
        __m512 kv[8];
        load_row_f16(NV, k, idx[j], hk, kv);
        float mk = mask[idx[j]];
        _Pragma("GCC unroll 4")
        for (int g = 0; g < G; g++) {
            __m512 a = _mm512_mul_ps(qv[g][0], kv[0]);
            _Pragma("GCC unroll 8")
            for (int i = 1; i < NV; i++)
                a = _mm512_fmadd_ps(qv[g][i], kv[i], a);
            scores[g * C + j] = _mm512_reduce_add_ps(a) * scale + mk;
        }
    }
    for (int g = 0; g < G; g++) {
        /* every score overflowed down: zeros, as fully masked */
        float sum = cpu_exp_shifted(scores + g * C, scores + g * C, n_vis);
        inv[g] = sum == 0.0f ? 0.0f : 1.0f / sum;
    }
    _Pragma("GCC unroll 4")
    for (int g = 0; g < G; g++)
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++)
            acc[g][i] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n_vis; j++) {
        __m512 vv[8];
        load_row_f16(NV, v, idx[j], hk, vv);
        _Pragma("GCC unroll 4")
        for (int g = 0; g < G; g++) {
            __m512 p = _mm512_set1_ps(scores[g * C + j]);
            _Pragma("GCC unroll 8")
            for (int i = 0; i < NV; i++)
                acc[g][i] = _mm512_fmadd_ps(p, vv[i], acc[g][i]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int g = 0; g < G; g++) {
        float *out = (float *)(void *)cpu_row(&n->dst, h0 + g, t, 0);
        __m512 s = _mm512_set1_ps(inv[g]);
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++)
            _mm512_storeu_ps(out + 16 * i, _mm512_mul_ps(acc[g][i], s));
    }
}

/* Heads per register group for this node: 0 when the grouped kernel does not apply. */
static int group_width(const slm_node_t *n)
{
    int64_t D = n->src[0].ne[0];
    if (n->src[1].type != SLM_TYPE_F16 || (D != 64 && D != 128))
        return 0;
    return D == 64 ? 4 : 2;
}

/* The G (1..4) heads from h0 on: the kernel compiled for that many. */
static void attend_heads(int G, const slm_node_t *n, const float *mask, const int32_t *idx,
                         int64_t n_vis, int64_t t, int64_t h0, int64_t hk, float *scores,
                         int64_t C)
{
    if (n->src[0].ne[0] == 128) {
        if (G == 1)
            attend_group(1, 8, n, mask, idx, n_vis, t, h0, hk, scores, C);
        else
            attend_group(2, 8, n, mask, idx, n_vis, t, h0, hk, scores, C);
        return;
    }
    switch (G) {
    case 1: attend_group(1, 4, n, mask, idx, n_vis, t, h0, hk, scores, C); break;
    case 2: attend_group(2, 4, n, mask, idx, n_vis, t, h0, hk, scores, C); break;
    case 3: attend_group(3, 4, n, mask, idx, n_vis, t, h0, hk, scores, C); break;
    default: attend_group(4, 4, n, mask, idx, n_vis, t, h0, hk, scores, C); break;
    }
}
#endif

/* A thread's current query: its mask row's visible cells, rebuilt only when the
 * query changes (items come query-major). */
typedef struct query_cells {
    int64_t t, n_vis;
    int32_t *idx;              /* C entries of scratch */
} query_cells_t;

static const float *cells_of(const slm_node_t *n, int64_t t, query_cells_t *qc)
{
    const float *mask = (const float *)cpu_row(&n->src[3], t, 0, 0);
    if (t != qc->t) {
        qc->n_vis = visible_cells(mask, n->src[1].ne[1], qc->idx);
        qc->t = t;
    }
    return mask;
}

/* Work items are (query, head) pairs, query-major, taken in chunks by whichever
 * thread is free; a thread rebuilds its visible-cell list only when its query changes. */
static void run_attn(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *dst = &n->dst, *q = &n->src[0];
    int64_t H = q->ne[1], N = q->ne[2], C = n->src[1].ne[1];
    int64_t group = H / n->src[1].ne[2], items = N * H;
    char *mine = cpu_thread_scratch(c, thread_bytes(n, c->nth));
    float *scores = (float *)(mine + cpu_align64((size_t)C * sizeof(int32_t)));
    float *acc = scores + cpu_align64(ATTN_GROUP_MAX * (size_t)C * sizeof(float)) / sizeof(float);
    query_cells_t qc = {.t = -1, .idx = (int32_t *)mine};
    int64_t i0, i1;
#if defined(__AVX512F__)
    /* Enough (query, kv head) items to keep every thread busy: those, each with the
     * query heads that share its kv head. */
    int64_t Hk = n->src[1].ne[2];
    int width = group_width(n);
    if (width && group > 1 && N * Hk >= 2 * (int64_t)c->nth) {
        while (cpu_claim(c, N * Hk, 1, &i0, &i1)) {
            int64_t t = i0 / Hk, hk = i0 % Hk;
            const float *mask = cells_of(n, t, &qc);
            for (int64_t h0 = hk * group; h0 < (hk + 1) * group; h0 += width) {
                int G = (int)((hk + 1) * group - h0 < width ? (hk + 1) * group - h0 : width);
                attend_heads(G, n, mask, qc.idx, qc.n_vis, t, h0, hk, scores, C);
            }
        }
        return;
    }
#endif
    if (cpu_attn_blocks_apply(n, c->nth)) {
        /* A prompt (the grouped kernel, where it applies, measured faster: it reads
         * K and V once for the heads sharing them): each thread finds the spans of
         * some blocks, then (block, head) items, block-major. A block whose cells are
         * not one span goes query by query, every head of a query in turn (its
         * visible cells found once), in its head-0 item. */
        float *block = (float *)(void *)(mine + query_bytes(n));
        attn_span_t *spans = (attn_span_t *)(void *)(c->scratch + spans_offset(n, c->nth));
        cpu_attn_find_spans(n, c->ith, c->nth, spans);
        cpu_pool_barrier(c->pool);
        while (cpu_claim(c, cpu_attn_blocks(n) * H, 1, &i0, &i1)) {
            int64_t b = i0 / H, h = i0 % H;
            if (spans[b].ok) {
                cpu_attn_block(n, b, h, &spans[b], block);
                continue;
            }
            if (h != 0)
                continue;
            int64_t t1 = (b + 1) * ATTN_BLOCK < N ? (b + 1) * ATTN_BLOCK : N;
            for (int64_t t = b * ATTN_BLOCK; t < t1; t++) {
                const float *mask = cells_of(n, t, &qc);
                for (int64_t hh = 0; hh < H; hh++)
                    attend_one(n, (const float *)cpu_row(q, hh, t, 0), mask, qc.idx, qc.n_vis,
                               hh / group, scores, acc, (float *)cpu_row(dst, hh, t, 0));
            }
        }
        return;
    }
    int64_t chunk = items / (16 * (int64_t)c->nth);
    chunk = chunk < 1 ? 1 : (chunk > H ? H : chunk);
    while (cpu_claim(c, items, chunk, &i0, &i1)) {
        for (int64_t i = i0; i < i1; i++) {
            int64_t t = i / H, h = i % H;
            const float *mask = cells_of(n, t, &qc);
            attend_one(n, (const float *)cpu_row(q, h, t, 0), mask, qc.idx, qc.n_vis, h / group,
                       scores, acc, (float *)cpu_row(dst, h, t, 0));
        }
    }
}

const cpu_op_def_t cpu_op_attn = {check_attn, scratch_attn, run_attn};

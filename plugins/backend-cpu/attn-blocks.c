/* Prompt-sized attention (SLM_OP_ATTN with many queries) as two small GEMMs per head
 * and block of queries: the block's scores over the cells it sees (Q K^T), their
 * masked softmax, then the weighted V rows (P V). One query at a time each score is a
 * dot product of D elements and a horizontal sum, and each K and V row is read once
 * per query; the packed GEMM reads them once per block and keeps its FMAs busy
 * (D59). The cells a block sees must be one span every cell of which some query
 * sees (a causal prompt's are): a query's hidden cells in it weigh nothing, but
 * enter P V as zero weights, so a V row holding an inf there (an overflowed f16
 * cache) would make a NaN the query-by-query path does not. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "attn-blocks.h"
#include "matmul.h"
#include "vmath.h"

int64_t cpu_attn_blocks(const slm_node_t *n)
{
    return (n->src[0].ne[2] + ATTN_BLOCK - 1) / ATTN_BLOCK;
}

bool cpu_attn_blocks_apply(const slm_node_t *n, int nth)
{
    return n->src[0].ne[2] >= ATTN_BLOCKS_MIN_N && cpu_attn_blocks(n) * n->src[0].ne[1] >= nth;
}

size_t cpu_attn_block_bytes(const slm_node_t *n)
{
    return (size_t)ATTN_BLOCK * (size_t)n->src[1].ne[1] * sizeof(float);
}

static bool visible(float m)
{
    return m != -INFINITY;
}

/* The cells [*lo, *hi) queries [t0, t1) see between them, when every cell of the span
 * is seen by at least one of them (a cell none sees may hold anything, even NaN, and
 * a zero weight times NaN is NaN). False otherwise, or when none sees any cell. */
static bool block_span(const slm_node_t *n, int64_t t0, int64_t t1, int64_t *lo, int64_t *hi)
{
    const slm_tensor_desc_t *m = &n->src[3];
    int64_t C = n->src[1].ne[1], first = C, last = -1;
    for (int64_t t = t0; t < t1; t++) {
        const float *row = (const float *)cpu_row(m, t, 0, 0);
        int64_t a = 0, b = C - 1;
        while (a < first && !visible(row[a]))
            a++;
        while (b > last && !visible(row[b]))
            b--;
        first = a < first ? a : first;
        last = b > last ? b : last;
    }
    if (last < first)
        return false;
    /* Later queries see the most (causal masks): ask them first. */
    for (int64_t c = first; c <= last; c++) {
        bool seen = false;
        for (int64_t t = t1 - 1; t >= t0 && !seen; t--)
            seen = visible(((const float *)cpu_row(m, t, 0, 0))[c]);
        if (!seen)
            return false;
    }
    *lo = first;
    *hi = last + 1;
    return true;
}

/* One query's scores over the span: scaled, or -inf where its mask hides the cell
 * (whatever the score: an inf in a hidden K row must not make a NaN), then
 * exponentials of the cells from its first to its last visible one (the rest weigh
 * 0, uncomputed: the first queries of a causal block see the fewest); 1 / their sum,
 * 0 with no visible cell (every score -inf, or overflowed down), which makes the
 * row's output zeros. */
static float softmax_row(float *s, const float *mask, int64_t span, float scale)
{
    int64_t a = 0, b = span;
    while (b > a && !visible(mask[b - 1]))
        b--;
    while (a < b && !visible(mask[a]))
        a++;
    int64_t c = a;
    /* Fixed-length inner loops: -O2's cost model vectorises only those. */
    for (; c + CPU_VW <= b; c += CPU_VW)
        for (int i = 0; i < CPU_VW; i++)
            s[c + i] = visible(mask[c + i]) ? s[c + i] * scale + mask[c + i] : -INFINITY;
    for (; c < b; c++)
        s[c] = visible(mask[c]) ? s[c] * scale + mask[c] : -INFINITY;
    float sum = b > a ? cpu_exp_shifted(s + a, s + a, b - a) : 0.0f;
    memset(s, 0, (size_t)a * sizeof *s);
    memset(s + b, 0, (size_t)(span - b) * sizeof *s);
    return sum == 0.0f ? 0.0f : 1.0f / sum;
}

void cpu_attn_find_spans(const slm_node_t *n, int ith, int nth, attn_span_t *spans)
{
    int64_t N = n->src[0].ne[2];
    for (int64_t b = ith; b < cpu_attn_blocks(n); b += nth) {
        int64_t t0 = b * ATTN_BLOCK, t1 = t0 + ATTN_BLOCK < N ? t0 + ATTN_BLOCK : N;
        spans[b].ok = block_span(n, t0, t1, &spans[b].lo, &spans[b].hi);
    }
}

void cpu_attn_block(const slm_node_t *n, int64_t blk, int64_t h, const attn_span_t *sp,
                    float *scores)
{
    const slm_tensor_desc_t *q = &n->src[0], *k = &n->src[1], *v = &n->src[2],
                            *m = &n->src[3], *dst = &n->dst;
    int64_t t0 = blk * ATTN_BLOCK, t1 = t0 + ATTN_BLOCK < q->ne[2] ? t0 + ATTN_BLOCK : q->ne[2];
    int64_t lo = sp->lo, hi = sp->hi;
    int64_t D = q->ne[0], span = hi - lo, hk = h / (q->ne[1] / k->ne[2]), nq = t1 - t0;
    /* scores[j * span + c]: query t0 + j, cell lo + c. */
    cpu_gemm_args_t qk = {
        .a_type = k->type, .a = cpu_row(k, lo, hk, 0), .a_row_bytes = (size_t)k->nb[1],
        .b = (const float *)(const void *)cpu_row(q, h, t0, 0), .b_col_bytes = (size_t)q->nb[2],
        .c = scores, .c_col_bytes = (size_t)span * sizeof(float),
        .K = D, .M = span, .N = nq,
    };
    cpu_mul_mat_2d(&qk, 0, 1);
    float scale = n->fp[0], inv[ATTN_BLOCK];
    for (int64_t j = 0; j < nq; j++)
        inv[j] = softmax_row(scores + j * span, (const float *)cpu_row(m, t0 + j, 0, 0) + lo,
                             span, scale);
    /* V's cell rows are A stored transposed: K = cells, M = D. */
    cpu_gemm_args_t pv = {
        .a_type = v->type, .a = cpu_row(v, lo, hk, 0), .a_row_bytes = (size_t)v->nb[1],
        .a_trans = 1, .b = scores, .b_col_bytes = (size_t)span * sizeof(float),
        .c = (float *)(void *)cpu_row(dst, h, t0, 0), .c_col_bytes = (size_t)dst->nb[2],
        .K = span, .M = D, .N = nq,
    };
    cpu_mul_mat_2d(&pv, 0, 1);
    for (int64_t j = 0; j < nq; j++) {
        float *out = (float *)(void *)cpu_row(dst, h, t0 + j, 0);
        for (int64_t d = 0; d < D; d++)
            out[d] *= inv[j];
    }
}

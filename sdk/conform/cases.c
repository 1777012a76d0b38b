/* The forward cases of the conformance suite: for each op and src0 type, shapes
 * with odd sizes and operands laid out contiguous, padded, permuted or transposed. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <slmops/types.h>

#include "internal.h"
#include "reference.h"

#define F32 SLM_TYPE_F32
#define I32 SLM_TYPE_I32

uint64_t slm_conform__rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double slm_conform__uniform(uint64_t *state, double lo, double hi)
{
    return lo + (hi - lo) * (double)(slm_conform__rand(state) >> 11) * 0x1.0p-53;
}

/* Block types store dim 0 as whole blocks (nb[0] is a block's bytes), so only rows
 * move: padded rows gain one block and element 0 starts one block in. */
static void layout_blocks(conform_tensor_t *t, const slm_type_traits_t *tr)
{
    int64_t pad = t->layout == LAYOUT_PADDED ? 1 : 0;
    t->nb[0] = tr->size;
    t->nb[1] = (t->ne[0] / tr->block + pad) * tr->size;
    t->nb[2] = t->nb[1] * t->ne[1];
    t->nb[3] = t->nb[2] * t->ne[2];
    t->offset = (uint64_t)(pad * tr->size);
    t->bytes = t->offset + (uint64_t)(t->nb[3] * t->ne[3]);
}

void slm_conform__layout(conform_tensor_t *t, int type, int64_t ne0, int64_t ne1, int64_t ne2,
                         int64_t ne3, int layout)
{
    static const int orders[][4] = {
        [LAYOUT_CONTIG] = {0, 1, 2, 3},
        [LAYOUT_PADDED] = {0, 1, 2, 3},
        [LAYOUT_PERMUTED] = {0, 2, 1, 3},
        [LAYOUT_TRANSPOSED] = {1, 0, 2, 3},
    };
    int64_t es = (int64_t)slm_conform_type_size(type);
    int64_t pad = layout == LAYOUT_PADDED ? 3 : 0;
    int64_t off = layout == LAYOUT_PADDED ? 5 : layout == LAYOUT_TRANSPOSED ? 1 : 0;
    t->type = type;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = ne3;
    t->layout = layout;
    int64_t stride = es;
    for (int k = 0; k < 4; k++) {
        int d = orders[layout][k];
        t->nb[d] = stride;
        stride *= t->ne[d] + (k == 0 ? pad : 0);
    }
    t->offset = (uint64_t)(off * es);
    t->bytes = t->offset + (uint64_t)stride;
    if (slm_conform__is_block_type(type))
        layout_blocks(t, slm_type_get_traits(type));
    if (t->fill == FILL_UNIFORM && t->lo == 0 && t->hi == 0) {
        t->lo = -1.0;
        t->hi = 1.0;
    }
}

/* Builders keep the case tables short. */
static conform_tensor_t *src(conform_case_t *c, int i, int type, int64_t ne0, int64_t ne1,
                             int64_t ne2, int64_t ne3, int layout)
{
    slm_conform__layout(&c->src[i], type, ne0, ne1, ne2, ne3, layout);
    if (c->n_src <= i)
        c->n_src = i + 1;
    return &c->src[i];
}

static void dst(conform_case_t *c, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    slm_conform__layout(&c->dst, type, ne0, ne1, ne2, ne3, LAYOUT_CONTIG);
}

static void dst_like(conform_case_t *c, int i)
{
    const int64_t *ne = c->src[i].ne;
    dst(c, F32, ne[0], ne[1], ne[2], ne[3]);
}

static conform_case_t *next(conform_case_t *out, size_t max, size_t *n, int op)
{
    static conform_case_t scratch;
    conform_case_t *c = *n < max ? &out[*n] : &scratch;
    memset(c, 0, sizeof *c);
    c->op = op;
    c->dst_alias = -1;
    c->seed = 0x5eed0000ull + (uint64_t)op * 977 + *n;
    (*n)++;
    return c;
}

static const int64_t shapes[][4] = {
    {1, 1, 1, 1}, {7, 5, 3, 1}, {33, 4, 2, 2}, {67, 3, 1, 1},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])
static const int layouts[] = {LAYOUT_CONTIG, LAYOUT_PADDED, LAYOUT_PERMUTED, LAYOUT_TRANSPOSED};

/* One or two same-shaped f32 operands (scale, silu, gelu, swiglu, *_back of those). */
static size_t cases_elementwise(int op, int n_src, conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < N_SHAPES; s++)
        for (size_t l = 0; l < 4; l++) {
            if (s == 0 && l > 0)
                continue;
            const int64_t *ne = shapes[s];
            conform_case_t *c = next(out, max, &n, op);
            for (int i = 0; i < n_src; i++) {
                int lay = i == 0 ? layouts[l] : layouts[(l + 2 * i) % 4];
                conform_tensor_t *t = src(c, i, F32, ne[0], ne[1], ne[2], ne[3], lay);
                t->lo = op == SLM_OP_SILU || op == SLM_OP_GELU ? -6.0 : -1.5;
                t->hi = op == SLM_OP_SILU || op == SLM_OP_GELU ? 6.0 : 1.5;
                /* log: x in (0, 4], and a few at 0 exercise the clamp */
                if (i == 0 && (op == SLM_OP_LOG || op == SLM_OP_LOG_BACK))
                    t->lo = 0.0, t->hi = 4.0;
            }
            dst_like(c, 0);
            c->fp[0] = s % 2 ? 0.37f : -1.75f;
        }
    return n;
}

static size_t cases_binary(int op, conform_case_t *out, size_t max)
{
    /* src1 shapes broadcasting onto src0 [7,6,3,2]: full, bias row, column, batch. */
    static const int64_t b1[][4] = {
        {7, 6, 3, 2}, {7, 1, 1, 1}, {1, 6, 1, 1}, {7, 6, 1, 2}, {7, 3, 3, 1}, {1, 1, 1, 1},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof b1 / sizeof b1[0]; s++)
        for (size_t l = 0; l < 4; l++) {
            if (s > 1 && l > 1)
                continue;
            conform_case_t *c = next(out, max, &n, op);
            src(c, 0, F32, 7, 6, 3, 2, layouts[l]);
            src(c, 1, F32, b1[s][0], b1[s][1], b1[s][2], b1[s][3], layouts[(l + 3) % 4]);
            dst_like(c, 0);
        }
    conform_case_t *c = next(out, max, &n, op);
    src(c, 0, F32, 67, 5, 1, 1, LAYOUT_CONTIG);
    src(c, 1, F32, 67, 5, 1, 1, LAYOUT_CONTIG);
    dst_like(c, 0);
    return n;
}

/* Smallest K of a block type's cases: one block (two for types with tiny blocks,
 * so a kernel walking blocks is exercised too). */
static int64_t one_block(int type)
{
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    return tr && tr->block >= 64 ? tr->block : 64;
}

/* One case per row of a weight-product table {K, M, N, A batch (b2,b3), B batch
 * (c2,c3), layout of A, layout of B}; K 0 is one block of `type` (one_block). MUL_MAT:
 * A [K,M] · B [K,N] -> [M,N], reducing K; MUL_MAT_T: Aᵀ: A [K,M], B [M,N] -> [K,N],
 * reducing M. */
static size_t matmul_cases(int op, int type, const int64_t (*mm)[9], size_t rows,
                           conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < rows; s++) {
        const int64_t *p = mm[s];
        int64_t K = p[0] ? p[0] : one_block(type), M = p[1], N = p[2];
        bool t = op == SLM_OP_MUL_MAT_T;
        conform_case_t *c = next(out, max, &n, op);
        src(c, 0, type, K, M, p[3], p[4], (int)p[7]);
        src(c, 1, F32, t ? M : K, N, p[5], p[6], (int)p[8]);
        dst(c, F32, t ? K : M, N, p[5], p[6]);
        c->reduce = t ? M : K;
    }
    return n;
}

static size_t cases_mul_mat(int type, conform_case_t *out, size_t max)
{
    /* K, M, N, A batch (b2,b3), B batch (c2,c3), layout of A, layout of B */
    static const int64_t mm[][9] = {
        {1, 1, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {7, 5, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {33, 17, 9, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {64, 16, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {67, 13, 4, 1, 1, 2, 3, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {16, 8, 5, 2, 1, 4, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {35, 9, 6, 1, 1, 2, 1, LAYOUT_PADDED, LAYOUT_PADDED},
        {19, 7, 5, 2, 1, 2, 1, LAYOUT_PERMUTED, LAYOUT_PERMUTED},
        {24, 6, 7, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_TRANSPOSED},
        {256, 24, 19, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {128, 33, 40, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
    };
    return matmul_cases(SLM_OP_MUL_MAT, type, mm, sizeof mm / sizeof mm[0], out, max);
}

/* Quantized weights: K a multiple of every block size (256) unless 0 (one_block),
 * odd M and N, decode- and prompt-sized N (backends often take two paths). */
static size_t cases_mul_mat_q(int type, conform_case_t *out, size_t max)
{
    /* K, M, N, A batch (b2,b3), B batch (c2,c3), layout of A, layout of B */
    static const int64_t mm[][9] = {
        {0, 1, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 3, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {512, 17, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 17, 17, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 3, 17, 2, 1, 4, 3, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 17, 3, 1, 1, 2, 3, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 17, 3, 2, 1, 2, 1, LAYOUT_PADDED, LAYOUT_PADDED},
        {256, 3, 17, 1, 1, 1, 1, LAYOUT_PADDED, LAYOUT_PERMUTED},
        {256, 3, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_TRANSPOSED},
        /* prompt-sized: several weight panels and a partial one, columns past a
         * multiple of 4, K over several blocks, a broadcast batch */
        {512, 70, 37, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 33, 18, 2, 1, 4, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
    };
    return matmul_cases(SLM_OP_MUL_MAT, type, mm, sizeof mm / sizeof mm[0], out, max);
}

/* MUL_MAT_T: A [K,M] read transposed, B [M,N]. The rows mirror cases_mul_mat's
 * (odd sizes, broadcast batches, every layout of both operands) and add a reduction
 * longer than one 256-row step and a K that spans several tiles. */
static size_t cases_mul_mat_t(int type, conform_case_t *out, size_t max)
{
    /* K, M, N, A batch (b2,b3), B batch (c2,c3), layout of A, layout of B */
    static const int64_t mm[][9] = {
        {1, 1, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {7, 5, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {33, 17, 9, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {64, 16, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {67, 13, 4, 1, 1, 2, 3, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {16, 8, 5, 2, 1, 4, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {35, 9, 6, 1, 1, 2, 1, LAYOUT_PADDED, LAYOUT_PADDED},
        {19, 7, 5, 2, 1, 2, 1, LAYOUT_PERMUTED, LAYOUT_PERMUTED},
        {24, 6, 7, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_TRANSPOSED},
        {6, 24, 7, 1, 1, 1, 1, LAYOUT_TRANSPOSED, LAYOUT_CONTIG},
        {40, 300, 37, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {600, 33, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
    };
    return matmul_cases(SLM_OP_MUL_MAT_T, type, mm, sizeof mm / sizeof mm[0], out, max);
}

/* Quantized A: K a multiple of every block size (256) unless 0 (one_block); odd M
 * and N; reductions past one 256-row step; K over several tiles; batches and the
 * layouts block types allow. */
static size_t cases_mul_mat_t_q(int type, conform_case_t *out, size_t max)
{
    /* K, M, N, A batch (b2,b3), B batch (c2,c3), layout of A, layout of B */
    static const int64_t mm[][9] = {
        {0, 1, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 3, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {512, 17, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 17, 17, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 300, 41, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {1280, 5, 70, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 3, 17, 2, 1, 4, 3, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {256, 17, 3, 2, 1, 2, 1, LAYOUT_PADDED, LAYOUT_PADDED},
        {256, 3, 17, 1, 1, 1, 1, LAYOUT_PADDED, LAYOUT_PERMUTED},
        {256, 3, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_TRANSPOSED},
    };
    return matmul_cases(SLM_OP_MUL_MAT_T, type, mm, sizeof mm / sizeof mm[0], out, max);
}

static size_t cases_out_prod(conform_case_t *out, size_t max)
{
    /* P, K, Q, X/Y batch (c2,c3), dst batch (b2,b3), layout of X, of Y */
    static const int64_t op[][9] = {
        {5, 7, 3, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {16, 33, 9, 2, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {6, 11, 4, 2, 3, 2, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {7, 9, 5, 2, 1, 2, 1, LAYOUT_PADDED, LAYOUT_TRANSPOSED},
        {1, 1, 1, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        /* A weight gradient's shape: tiles and a reduction longer than one cache
         * block (a backend may take a blocked GEMM path here), odd edges. */
        {67, 600, 29, 1, 1, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {40, 130, 13, 2, 2, 1, 1, LAYOUT_CONTIG, LAYOUT_CONTIG},
        {33, 70, 17, 1, 1, 1, 1, LAYOUT_PADDED, LAYOUT_PADDED},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof op / sizeof op[0]; s++) {
        const int64_t *p = op[s];
        conform_case_t *c = next(out, max, &n, SLM_OP_OUT_PROD);
        src(c, 0, F32, p[0], p[1], p[3], p[4], (int)p[7]);
        src(c, 1, F32, p[2], p[1], p[3], p[4], (int)p[8]);
        dst(c, F32, p[0], p[2], p[5], p[6]);
        c->reduce = p[1] * (p[3] / p[5]) * (p[4] / p[6]);
    }
    return n;
}

static size_t cases_rms_norm(int op, conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < N_SHAPES; s++)
        for (size_t l = 0; l < 4; l++) {
            if (s == 0 && l > 0)
                continue;
            /* One-element rows make the backward a difference of equal terms (eps
             * aside): no precision is left to compare, so it gets two-element rows. */
            static const int64_t pair[4] = {2, 1, 1, 1};
            const int64_t *ne = s == 0 && op == SLM_OP_RMS_NORM_BACK ? pair : shapes[s];
            conform_case_t *c = next(out, max, &n, op);
            src(c, 0, F32, ne[0], ne[1], ne[2], ne[3], layouts[l]);
            if (op == SLM_OP_RMS_NORM_BACK)
                src(c, 1, F32, ne[0], ne[1], ne[2], ne[3], layouts[(l + 1) % 4]);
            dst_like(c, 0);
            c->fp[0] = s % 2 ? 1e-5f : 1e-6f;
            c->reduce = ne[0];
        }
    return n;
}

static size_t cases_rope(int op, conform_case_t *out, size_t max)
{
    /* D, H, T, B, n_dims, mode, layout */
    static const int64_t rp[][7] = {
        {8, 3, 5, 1, 8, SLM_ROPE_NORMAL, LAYOUT_CONTIG},
        {8, 3, 5, 1, 8, SLM_ROPE_NEOX, LAYOUT_CONTIG},
        {10, 2, 4, 2, 6, SLM_ROPE_NORMAL, LAYOUT_CONTIG},
        {10, 2, 4, 2, 6, SLM_ROPE_NEOX, LAYOUT_CONTIG},
        {16, 4, 3, 1, 16, SLM_ROPE_NEOX, LAYOUT_PERMUTED},
        {12, 3, 7, 1, 8, SLM_ROPE_NORMAL, LAYOUT_PADDED},
        {2, 1, 1, 1, 2, SLM_ROPE_NORMAL, LAYOUT_CONTIG},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof rp / sizeof rp[0]; s++) {
        const int64_t *p = rp[s];
        conform_case_t *c = next(out, max, &n, op);
        src(c, 0, F32, p[0], p[1], p[2], p[3], (int)p[6]);
        conform_tensor_t *pos = src(c, 1, I32, p[2], 1, 1, 1, LAYOUT_CONTIG);
        pos->fill = FILL_IDS;
        pos->range = 48;
        dst_like(c, 0);
        c->ip[0] = p[4];
        c->ip[1] = p[5];
        c->fp[0] = s % 2 ? 10000.0f : 500.0f;
        c->fp[1] = s % 3 == 2 ? 0.5f : 1.0f;
    }
    return n;
}

static size_t cases_soft_max(conform_case_t *out, size_t max)
{
    /* C, R, b2, b3, mask rows (0: none), causal, n_past, layout, mask batches m2, m3
     * (0: 1; a mask per batch, as packed training rows use) */
    static const int64_t sm[][10] = {
        {7, 5, 1, 1, 0, 0, 0, LAYOUT_CONTIG, 0, 0},
        {33, 4, 2, 1, 4, 0, 0, LAYOUT_CONTIG, 0, 0},
        {5, 5, 2, 1, 0, 1, 0, LAYOUT_CONTIG, 0, 0},
        {9, 6, 1, 2, 8, 1, 3, LAYOUT_CONTIG, 0, 0},
        {67, 3, 1, 1, 3, 0, 0, LAYOUT_PADDED, 0, 0},
        {16, 4, 3, 1, 0, 1, 2, LAYOUT_PERMUTED, 0, 0},
        {11, 3, 1, 1, 3, 0, 0, LAYOUT_TRANSPOSED, 0, 0},
        {1, 1, 1, 1, 0, 0, 0, LAYOUT_CONTIG, 0, 0},
        {12, 12, 4, 3, 12, 0, 0, LAYOUT_CONTIG, 1, 3},
        {10, 5, 2, 2, 6, 1, 0, LAYOUT_PERMUTED, 2, 1},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof sm / sizeof sm[0]; s++) {
        const int64_t *p = sm[s];
        conform_case_t *c = next(out, max, &n, SLM_OP_SOFT_MAX);
        conform_tensor_t *x = src(c, 0, F32, p[0], p[1], p[2], p[3], (int)p[7]);
        x->lo = -4.0;
        x->hi = 4.0;
        if (p[4]) {
            conform_tensor_t *m = src(c, 1, F32, p[0], p[4], p[8] ? p[8] : 1,
                                      p[9] ? p[9] : 1, LAYOUT_CONTIG);
            m->fill = FILL_MASK;
        }
        dst_like(c, 0);
        c->fp[0] = s % 2 ? 0.125f : 1.0f;
        c->ip[0] = p[5];
        c->ip[1] = p[6];
        c->reduce = p[0];
    }
    return n;
}

static size_t cases_attn(conform_case_t *out, size_t max)
{
    /* D, H, N, C, Hk, K/V type, K/V layout (PERMUTED: a KV cache's cells outermost),
     * q layout, mask; D of 16, 32, 64 and 128 take the register paths of the vector
     * widths, and with several queries, f16 and D 64 or 128, groups of 1-4 heads
     * sharing a kv head (the five of the ninth case: four, then one). 32 queries or
     * more go by blocks of 64 through the GEMM where the grouped kernel does not
     * apply: causal masks, a partial last block, and a cell no query sees (those
     * blocks go query by query). The mask hides some cells of every query, never
     * cell 0 but in a hole row (two cases have a query that sees no cell: zeros). */
    enum { MASK = FILL_MASK, HOLE = FILL_MASK_HOLE, CAUSAL = FILL_MASK_CAUSAL, GAP = FILL_MASK_GAP };
    static const int64_t at[][9] = {
        {8, 2, 1, 5, 2, F32, LAYOUT_CONTIG, LAYOUT_CONTIG, MASK},
        {16, 4, 3, 9, 2, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_CONTIG, HOLE},
        {64, 9, 2, 70, 3, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_CONTIG, MASK},
        {20, 3, 4, 7, 1, SLM_TYPE_F16, LAYOUT_PADDED, LAYOUT_PADDED, MASK},
        {32, 6, 5, 33, 6, F32, LAYOUT_PERMUTED, LAYOUT_PADDED, HOLE},
        {7, 2, 2, 3, 2, SLM_TYPE_F16, LAYOUT_CONTIG, LAYOUT_CONTIG, MASK},
        {128, 4, 2, 40, 2, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_CONTIG, MASK},
        {32, 2, 3, 17, 1, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_PADDED, MASK},
        {64, 10, 3, 21, 2, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_CONTIG, MASK},
        {48, 3, 70, 90, 3, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_CONTIG, CAUSAL},
        {40, 2, 40, 40, 1, F32, LAYOUT_CONTIG, LAYOUT_PADDED, GAP},
        {64, 4, 33, 50, 2, SLM_TYPE_F16, LAYOUT_PERMUTED, LAYOUT_CONTIG, CAUSAL},
        {24, 2, 36, 36, 2, F32, LAYOUT_PERMUTED, LAYOUT_CONTIG, HOLE},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof at / sizeof at[0]; s++) {
        const int64_t *p = at[s];
        conform_case_t *c = next(out, max, &n, SLM_OP_ATTN);
        src(c, 0, F32, p[0], p[1], p[2], 1, (int)p[7]);
        src(c, 1, (int)p[5], p[0], p[3], p[4], 1, (int)p[6]);
        src(c, 2, (int)p[5], p[0], p[3], p[4], 1, (int)p[6]);
        src(c, 3, F32, p[3], p[2] + (s % 2), 1, 1, LAYOUT_CONTIG)->fill = (int)p[8];
        dst_like(c, 0);
        c->fp[0] = 1.0f / sqrtf((float)p[0]);
        c->reduce = p[0] + p[3];
    }
    return n;
}

static size_t cases_soft_max_back(conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < N_SHAPES; s++)
        for (size_t l = 0; l < 3; l++) {
            const int64_t *ne = shapes[s];
            conform_case_t *c = next(out, max, &n, SLM_OP_SOFT_MAX_BACK);
            src(c, 0, F32, ne[0], ne[1], ne[2], ne[3], layouts[l])->fill = FILL_PROB;
            src(c, 1, F32, ne[0], ne[1], ne[2], ne[3], layouts[(l + 1) % 3]);
            dst_like(c, 0);
            c->fp[0] = s % 2 ? 0.125f : 1.0f;
            c->reduce = ne[0];
        }
    return n;
}

static size_t cases_get_rows(int op, int type, conform_case_t *out, size_t max)
{
    /* E, R, N, B, layout of the table (or of the gradient) */
    static const int64_t gr[][5] = {
        {7, 5, 4, 1, LAYOUT_CONTIG}, {33, 9, 6, 2, LAYOUT_CONTIG}, {1, 1, 1, 1, LAYOUT_CONTIG},
        {67, 4, 9, 1, LAYOUT_PADDED}, {5, 6, 3, 2, LAYOUT_TRANSPOSED},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof gr / sizeof gr[0]; s++) {
        const int64_t *p = gr[s];
        conform_case_t *c = next(out, max, &n, op);
        if (op == SLM_OP_GET_ROWS) {
            src(c, 0, type, p[0], p[1], 1, 1, (int)p[4]);
            dst(c, F32, p[0], p[2], p[3], 1);
        } else {
            src(c, 0, F32, p[0], p[2], p[3], 1, (int)p[4]);
            dst(c, F32, p[0], p[1], 1, 1);
            c->reduce = p[2] * p[3];
        }
        conform_tensor_t *ids = src(c, 1, I32, p[2], p[3], 1, 1, LAYOUT_CONTIG);
        ids->fill = FILL_IDS;
        ids->range = p[1];
    }
    return n;
}

/* Quantized tables: rows of whole blocks, ids broadcast over table batches. */
static size_t cases_get_rows_q(int type, conform_case_t *out, size_t max)
{
    /* E (0: one_block), R, N, B, table batch, layout of the table */
    static const int64_t gr[][6] = {
        {0, 5, 3, 1, 1, LAYOUT_CONTIG}, {256, 17, 17, 1, 1, LAYOUT_CONTIG},
        {512, 3, 1, 1, 1, LAYOUT_CONTIG}, {256, 5, 3, 4, 2, LAYOUT_CONTIG},
        {256, 9, 3, 1, 1, LAYOUT_PADDED},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof gr / sizeof gr[0]; s++) {
        const int64_t *p = gr[s];
        int64_t E = p[0] ? p[0] : one_block(type);
        conform_case_t *c = next(out, max, &n, SLM_OP_GET_ROWS);
        src(c, 0, type, E, p[1], p[4], 1, (int)p[5]);
        dst(c, F32, E, p[2], p[3], 1);
        conform_tensor_t *ids = src(c, 1, I32, p[2], p[3], 1, 1, LAYOUT_CONTIG);
        ids->fill = FILL_IDS;
        ids->range = p[1];
    }
    return n;
}

static size_t cases_cpy(int type, conform_case_t *out, size_t max)
{
    static const int dtypes[] = {SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16};
    size_t n = 0;
    for (size_t t = 0; t < 3; t++) {
        for (size_t l = 0; l < 4; l++) {
            conform_case_t *c = next(out, max, &n, SLM_OP_CPY);
            src(c, 0, type, 7, 5, 3, 1, layouts[l]);
            dst(c, dtypes[t], 7, 5, 3, 1);
        }
        /* Into a padded view of dst, and across shapes with the same count. */
        conform_case_t *c = next(out, max, &n, SLM_OP_CPY);
        src(c, 0, type, 33, 4, 2, 1, LAYOUT_CONTIG);
        slm_conform__layout(&c->dst, dtypes[t], 33, 4, 2, 1, LAYOUT_PADDED);
        c = next(out, max, &n, SLM_OP_CPY);
        src(c, 0, type, 6, 4, 1, 1, LAYOUT_TRANSPOSED);
        dst(c, dtypes[t], 24, 1, 1, 1);
        c = next(out, max, &n, SLM_OP_CPY);
        src(c, 0, type, 67, 1, 1, 1, LAYOUT_CONTIG);
        dst(c, dtypes[t], 67, 1, 1, 1);
    }
    return n;
}

static size_t cases_cross_entropy(int op, conform_case_t *out, size_t max)
{
    static const int64_t ce[][3] = {
        {7, 3, LAYOUT_CONTIG}, {33, 5, LAYOUT_CONTIG}, {1, 2, LAYOUT_CONTIG},
        {67, 4, LAYOUT_PADDED}, {9, 6, LAYOUT_TRANSPOSED},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof ce / sizeof ce[0]; s++) {
        const int64_t *p = ce[s];
        conform_case_t *c = next(out, max, &n, op);
        conform_tensor_t *l = src(c, 0, F32, p[0], p[1], 1, 1, (int)p[2]);
        l->lo = -3.0;
        l->hi = 3.0;
        src(c, 1, F32, p[0], p[1], 1, 1, LAYOUT_CONTIG)->fill = FILL_PROB;
        if (op == SLM_OP_CROSS_ENTROPY_BACK) {
            conform_tensor_t *d = src(c, 2, F32, 1, 1, 1, 1, LAYOUT_CONTIG);
            d->lo = 0.5;
            d->hi = 2.0;
            dst_like(c, 0);
        } else {
            dst(c, F32, 1, 1, 1, 1);
        }
        c->reduce = p[0] * p[1];
    }
    return n;
}

static size_t cases_sum(conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < N_SHAPES; s++)
        for (size_t l = 0; l < 4; l++) {
            if (s == 0 && l > 0)
                continue;
            const int64_t *ne = shapes[s];
            conform_case_t *c = next(out, max, &n, SLM_OP_SUM);
            src(c, 0, F32, ne[0], ne[1], ne[2], ne[3], layouts[l])->lo = 0.0;
            dst(c, F32, 1, 1, 1, 1);
            c->reduce = ne[0] * ne[1] * ne[2] * ne[3];
        }
    return n;
}

static size_t cases_repeat_back(conform_case_t *out, size_t max)
{
    static const int64_t rb[][4] = {
        {7, 1, 3, 1}, {1, 6, 1, 1}, {7, 3, 1, 1}, {7, 6, 3, 2}, {1, 1, 1, 1},
    };
    size_t n = 0;
    for (size_t s = 0; s < sizeof rb / sizeof rb[0]; s++)
        for (size_t l = 0; l < 2; l++) {
            conform_case_t *c = next(out, max, &n, SLM_OP_REPEAT_BACK);
            src(c, 0, F32, 7, 6, 3, 2, l ? LAYOUT_PERMUTED : LAYOUT_CONTIG);
            dst(c, F32, rb[s][0], rb[s][1], rb[s][2], rb[s][3]);
            c->reduce = 7 * 6 * 3 * 2 / (rb[s][0] * rb[s][1] * rb[s][2] * rb[s][3]);
        }
    return n;
}

static size_t cases_acc(conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t l = 0; l < 2; l++) {
        conform_case_t *c = next(out, max, &n, SLM_OP_ACC);
        src(c, 0, F32, 7, 5, 3, 1, l ? LAYOUT_PADDED : LAYOUT_CONTIG);
        src(c, 1, F32, 3, 2, 2, 1, l ? LAYOUT_TRANSPOSED : LAYOUT_CONTIG);
        dst_like(c, 0);
        c->ip[0] = 7 * 4;
        c->ip[1] = 35 * 4;
        c->ip[2] = 105 * 4;
        c->ip[3] = (1 + 7 * 2) * 4;
    }
    /* A 1-D slice: the gradient of a row view. */
    conform_case_t *c = next(out, max, &n, SLM_OP_ACC);
    src(c, 0, F32, 33, 4, 1, 1, LAYOUT_CONTIG);
    src(c, 1, F32, 33, 1, 1, 1, LAYOUT_CONTIG);
    dst_like(c, 0);
    c->ip[0] = 33 * 4;
    c->ip[1] = 132 * 4;
    c->ip[2] = 132 * 4;
    c->ip[3] = 33 * 2 * 4;
    return n;
}

/* The clipping operand: a sum of squares in [50, 60] (a norm near 7.4), so that a
 * max_norm of 1 scales the gradient and one of 100 leaves it alone. */
static void clip_operand(conform_case_t *c, int i)
{
    conform_tensor_t *t = src(c, i, F32, 1, 1, 1, 1, LAYOUT_CONTIG);
    t->lo = 50.0;
    t->hi = 60.0;
}

/* Shapes {ne0, ne1, variant}: variant 0/1/2 without clipping, 3 clipped, 4 not reached. */
static const int64_t update_shapes[][3] = {{7, 5, 0}, {67, 3, 1}, {1, 1, 2}, {9, 4, 3}, {5, 2, 4}};
#define N_UPDATE_SHAPES (sizeof update_shapes / sizeof update_shapes[0])

static double clip_max_norm(int64_t variant)
{
    return variant == 3 ? 1.0 : 100.0;
}

static size_t cases_adamw(conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < N_UPDATE_SHAPES; s++) {
        const int64_t *aw = update_shapes[s];
        bool clip = aw[2] >= 3;
        conform_case_t *c = next(out, max, &n, SLM_OP_ADAMW_STEP);
        for (int i = 0; i < 4; i++)
            src(c, i, F32, aw[0], aw[1], 1, 1, LAYOUT_CONTIG);
        c->src[3].lo = 0.0;   /* second moments are never negative */
        conform_tensor_t *h = src(c, 4, F32, clip ? 8 : 7, 1, 1, 1, LAYOUT_CONTIG);
        h->fill = FILL_VALUES;
        double t = (double)(aw[2] * 10 + 3);
        double v[8] = {1e-2, 0.9, 0.999, 1e-8, s == 1 ? 0.0 : 0.1, 1.0 / (1.0 - pow(0.9, t)),
                       1.0 / (1.0 - pow(0.999, t)), clip_max_norm(aw[2])};
        memcpy(c->values, v, sizeof v);
        if (clip)
            clip_operand(c, 5);
        c->dst = c->src[0];
        c->dst_alias = 0;
        c->outputs = (1u << 2) | (1u << 3);
    }
    return n;
}

static size_t cases_sgd(conform_case_t *out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s < N_UPDATE_SHAPES; s++) {
        const int64_t *sh = update_shapes[s];
        bool clip = sh[2] >= 3;
        conform_case_t *c = next(out, max, &n, SLM_OP_SGD_STEP);
        for (int i = 0; i < 2; i++)
            src(c, i, F32, sh[0], sh[1], 1, 1, LAYOUT_CONTIG);
        conform_tensor_t *h = src(c, 2, F32, clip ? 3 : 2, 1, 1, 1, LAYOUT_CONTIG);
        h->fill = FILL_VALUES;
        double v[3] = {0.05, s == 1 ? 0.0 : 0.1, clip_max_norm(sh[2])};
        memcpy(c->values, v, sizeof v);
        if (clip)
            clip_operand(c, 3);
        c->dst = c->src[0];
        c->dst_alias = 0;
    }
    return n;
}

size_t slm_conform__cases(int op, int type, conform_case_t *out, size_t max)
{
    bool f32 = type == SLM_TYPE_F32;
    bool fl = f32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16;
    if (!fl && slm_conform__is_block_type(type)) {
        if (op == SLM_OP_MUL_MAT)
            return cases_mul_mat_q(type, out, max);
        if (op == SLM_OP_MUL_MAT_T)
            return cases_mul_mat_t_q(type, out, max);
        return op == SLM_OP_GET_ROWS ? cases_get_rows_q(type, out, max) : 0;
    }
    switch (op) {
    case SLM_OP_GET_ROWS: return fl ? cases_get_rows(op, type, out, max) : 0;
    case SLM_OP_GET_ROWS_BACK: return f32 ? cases_get_rows(op, type, out, max) : 0;
    case SLM_OP_MUL_MAT: return fl ? cases_mul_mat(type, out, max) : 0;
    case SLM_OP_OUT_PROD: return f32 ? cases_out_prod(out, max) : 0;
    case SLM_OP_MUL_MAT_T: return fl ? cases_mul_mat_t(type, out, max) : 0;
    case SLM_OP_ADD:
    case SLM_OP_MUL: return f32 ? cases_binary(op, out, max) : 0;
    case SLM_OP_SCALE:
    case SLM_OP_SILU:
    case SLM_OP_GELU:
    case SLM_OP_LOG: return f32 ? cases_elementwise(op, 1, out, max) : 0;
    case SLM_OP_SILU_BACK:
    case SLM_OP_GELU_BACK:
    case SLM_OP_SWIGLU:
    case SLM_OP_LOG_BACK: return f32 ? cases_elementwise(op, 2, out, max) : 0;
    case SLM_OP_RMS_NORM:
    case SLM_OP_RMS_NORM_BACK: return f32 ? cases_rms_norm(op, out, max) : 0;
    case SLM_OP_ROPE:
    case SLM_OP_ROPE_BACK: return f32 ? cases_rope(op, out, max) : 0;
    case SLM_OP_SOFT_MAX: return f32 ? cases_soft_max(out, max) : 0;
    case SLM_OP_SOFT_MAX_BACK: return f32 ? cases_soft_max_back(out, max) : 0;
    case SLM_OP_ATTN: return f32 ? cases_attn(out, max) : 0;
    case SLM_OP_CPY: return fl ? cases_cpy(type, out, max) : 0;
    case SLM_OP_CROSS_ENTROPY:
    case SLM_OP_CROSS_ENTROPY_BACK: return f32 ? cases_cross_entropy(op, out, max) : 0;
    case SLM_OP_SUM: return f32 ? cases_sum(out, max) : 0;
    case SLM_OP_REPEAT_BACK: return f32 ? cases_repeat_back(out, max) : 0;
    case SLM_OP_ACC: return f32 ? cases_acc(out, max) : 0;
    case SLM_OP_ADAMW_STEP: return f32 ? cases_adamw(out, max) : 0;
    case SLM_OP_SGD_STEP: return f32 ? cases_sgd(out, max) : 0;
    default: return 0;
    }
}

/* Bytes between consecutive dim-0 items: elements, or blocks for block types. */
static size_t unit_stride(int type)
{
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    return slm_conform__is_block_type(type) ? tr->size : slm_conform_type_size(type);
}

bool slm_conform__unit_strides(const conform_case_t *c)
{
    for (int i = 0; i < c->n_src; i++)
        if (c->src[i].ne[0] > 1 && (size_t)c->src[i].nb[0] != unit_stride(c->src[i].type))
            return false;
    return c->dst.ne[0] <= 1 || (size_t)c->dst.nb[0] == slm_conform_type_size(c->dst.type);
}

static size_t describe_tensor(char *s, size_t cap, const char *name, const conform_tensor_t *t)
{
    int k = snprintf(s, cap, "%s[%lld,%lld,%lld,%lld] nb[%lld,%lld,%lld,%lld]", name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                     (long long)t->ne[3], (long long)t->nb[0], (long long)t->nb[1],
                     (long long)t->nb[2], (long long)t->nb[3]);
    if (k < 0 || (size_t)k >= cap)
        return cap;
    if (t->offset) {
        int k2 = snprintf(s + k, cap - (size_t)k, " @%llu", (unsigned long long)t->offset);
        if (k2 > 0)
            k += k2;
    }
    return (size_t)k < cap ? (size_t)k : cap;
}

void slm_conform__describe(const conform_case_t *c, slm_conform_result_t *res)
{
    size_t used = 0, cap = sizeof res->types;
    res->types[0] = 0;
    for (int i = 0; i < c->n_src && used < cap; i++) {
        int k = snprintf(res->types + used, cap - used, "%s%s", i ? "," : "",
                         slm_type_name(c->src[i].type));
        used += k > 0 ? (size_t)k : 0;
    }
    if (used < cap)
        snprintf(res->types + used, cap - used, "->%s", slm_type_name(c->dst.type));
    snprintf(res->op, sizeof res->op, "%s", slm_op_name(c->op));

    char *s = res->shape;
    cap = sizeof res->shape;
    used = 0;
    for (int i = 0; i <= c->n_src && used + 2 < cap; i++) {
        const conform_tensor_t *t = i < c->n_src ? &c->src[i] : &c->dst;
        char name[16] = "d";
        if (i < c->n_src)
            snprintf(name, sizeof name, "s%d", i);
        if (i)
            s[used++] = ' ';
        used += describe_tensor(s + used, cap - used, name, t);
    }
    if (used < cap)
        s[used] = 0;
    else
        s[cap - 1] = 0;
}

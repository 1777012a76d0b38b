/* MUL_MAT_T, the activation gradient of MUL_MAT: dst = A^T B read from A's rows as
 * stored. Quantized rows are expanded one tile at a time into per-thread scratch. */
#include "config.h"

#include "cpu.h"
#include "matmul.h"
#include "quant-types.h"

/* A block type with whole blocks per row and a kernel that expands them. */
static const cpu_qtype_t *quant_of(const slm_tensor_desc_t *a)
{
    const cpu_qtype_t *q = cpu_qtype_get(a->type);
    if (!q || q->block <= 0 || !q->dequantize_row || a->ne[0] % q->block ||
        (a->ne[0] > 0 && a->nb[0] != (int64_t)q->block_bytes))
        return NULL;
    return q;
}

/* dst is always a node's own tensor: packed rows are all the kernels write. */
static bool check_mul_mat_t(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    return n->n_src == 2 && (cpu_is_float(a->type) || quant_of(a)) && cpu_desc_ok(a, a->type) &&
           cpu_desc_ok(b, SLM_TYPE_F32) && cpu_desc_ok(d, SLM_TYPE_F32) && cpu_rows_packed(d) &&
           d->nb[1] % (int64_t)sizeof(float) == 0 && a->ne[1] == b->ne[0] &&
           d->ne[0] == a->ne[0] && d->ne[1] == b->ne[1] && d->ne[2] == b->ne[2] &&
           d->ne[3] == b->ne[3] && a->ne[2] > 0 && a->ne[3] > 0 && b->ne[2] % a->ne[2] == 0 &&
           b->ne[3] % a->ne[3] == 0;
}

/* ---- tiles of a quantized A ----
 * dst rows [k0, k0 + kt) of one slice are a tile; each thread owns whole tiles
 * (times a range of columns when tiles are too few) and walks A's rows QT_RED at a
 * time: it expands those rows' blocks in [k0, k0 + kt) into its scratch, then the
 * f32 GEMM, reading the expansion transposed, adds the rows' share to dst. */
#define QT_RED 256          /* rows of A expanded per step: one GEMM depth block */
#define QT_KT_MAX 512       /* dst rows per tile, at most */
#define QT_KT_MIN 64        /* ... and at least, when K allows (GEMM tiles are 32 rows) */
#define QT_MIN_COLS 32      /* fewest columns worth a tile of their own */
#define QT_DQ_COLS 16       /* expanding a weight costs about this many multiply-adds */

typedef struct qt_plan {
    int64_t kt, n_kt;       /* dst rows per tile, tiles along K */
    int64_t nt, n_nt;       /* columns per tile, tiles along N */
    int64_t items;          /* slices * n_kt * n_nt */
} qt_plan_t;

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* The most dst rows a tile gets: tiles are whole blocks, at least K / QT_KT_MAX of them. */
static int64_t qt_kt_max(int64_t K, int64_t block)
{
    return K > 0 ? ceil_div(K / block, ceil_div(K, QT_KT_MAX)) * block : 0;
}

/* The tiling that finishes first on nth threads: the busiest thread's multiply-adds
 * plus its expansions, over a few candidate tile counts. It depends only on the
 * shapes and nth, and no element's sum depends on it: results do not change with
 * the thread count. */
static void qt_plan(const slm_node_t *n, const cpu_qtype_t *q, int nth, qt_plan_t *P)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    int64_t K = a->ne[0], N = b->ne[1], S = b->ne[2] * b->ne[3], blocks = K / q->block;
    int64_t kt_lo = ceil_div(K, QT_KT_MAX), kt_hi = ceil_div(K, QT_KT_MIN);
    kt_hi = kt_hi < blocks ? kt_hi : blocks;
    kt_hi = kt_hi < kt_lo + 2 * nth ? kt_hi : kt_lo + 2 * nth;
    int64_t nt_hi = N / QT_MIN_COLS < 2 * nth ? N / QT_MIN_COLS : 2 * nth;
    double best = -1.0;
    *P = (qt_plan_t){.kt = K, .n_kt = 1, .nt = N, .n_nt = 1, .items = S};
    for (int64_t nk = kt_lo; nk <= (kt_hi > kt_lo ? kt_hi : kt_lo); nk++) {
        int64_t kt = ceil_div(blocks, nk) * q->block;
        int64_t n_kt = ceil_div(K, kt);
        for (int64_t nn = 1; nn <= (nt_hi > 1 ? nt_hi : 1); nn++) {
            int64_t nt = ceil_div(N, nn), n_nt = ceil_div(N, nt);
            int64_t items = S * n_kt * n_nt, per = ceil_div(items, nth);
            int64_t groups = ceil_div(per, n_nt) + 1 < per ? ceil_div(per, n_nt) + 1 : per;
            double cost = (double)per * (double)kt * (double)nt +
                          (double)groups * (double)kt * QT_DQ_COLS;
            if (best < 0 || cost < best) {
                best = cost;
                *P = (qt_plan_t){.kt = kt, .n_kt = n_kt, .nt = nt, .n_nt = n_nt, .items = items};
            }
        }
    }
}

/* Scratch: B packed when its rows are not, A packed (float A) when its rows are
 * not, and per thread one tile of expanded rows (quantized A). */
typedef struct mt_layout {
    bool pack_a, pack_b;
    size_t a_off, b_off, tile_off, tile_bytes, total;
} mt_layout_t;

static bool add_region(size_t *total, uint64_t bytes, size_t *off)
{
    *off = *total;
    if (bytes > SIZE_MAX / 4 || *total > SIZE_MAX / 4)
        return false;
    *total += cpu_align64((size_t)bytes);
    return true;
}

static bool mt_plan(const slm_node_t *n, const cpu_qtype_t *q, int nth, mt_layout_t *L)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    uint64_t ba, bb;
    L->pack_a = !q && !cpu_rows_packed(a);
    L->pack_b = !cpu_rows_packed(b);
    L->total = 0;
    L->tile_bytes = 0;
    if (__builtin_mul_overflow((uint64_t)cpu_nelements(a), (uint64_t)cpu_type_size(a->type), &ba) ||
        __builtin_mul_overflow((uint64_t)cpu_nelements(b), 4u, &bb))
        return false;
    if (q)
        L->tile_bytes = (size_t)qt_kt_max(a->ne[0], q->block) * QT_RED * sizeof(float);
    size_t tiles = L->tile_bytes ? cpu_scratch_per_thread(L->tile_bytes, nth) : 0;
    return tiles != SIZE_MAX && add_region(&L->total, L->pack_a ? ba : 0, &L->a_off) &&
           add_region(&L->total, L->pack_b ? bb : 0, &L->b_off) &&
           add_region(&L->total, tiles, &L->tile_off);
}

static size_t scratch_mul_mat_t(const slm_node_t *n, int nth)
{
    mt_layout_t L;
    return mt_plan(n, quant_of(&n->src[0]), nth, &L) ? L.total : SIZE_MAX;
}

/* Base and strides of t as the kernels read it: itself, or its packed copy. */
typedef struct mt_view {
    const char *base;
    int64_t nb1, nb2, nb3;
} mt_view_t;

static mt_view_t view_of(const slm_tensor_desc_t *t, bool packed, const char *copy)
{
    if (!packed)
        return (mt_view_t){t->data, t->nb[1], t->nb[2], t->nb[3]};
    int64_t r = t->ne[0] * (int64_t)cpu_type_size(t->type);
    return (mt_view_t){copy, r, r * t->ne[1], r * t->ne[1] * t->ne[2]};
}

/* Slice s of dst (batch order i2 fastest) and the slice of A it reads. */
static void slice_of(const slm_node_t *n, int64_t s, int64_t *i2, int64_t *i3, int64_t *a2,
                     int64_t *a3)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    *i2 = s % b->ne[2];
    *i3 = s / b->ne[2];
    *a2 = *i2 / (b->ne[2] / a->ne[2]);
    *a3 = *i3 / (b->ne[3] / a->ne[3]);
}

/* Float A: the GEMM reads A's stored rows as the transposed operand directly. */
static void run_float(const cpu_op_ctx_t *c, const mt_view_t *A, const mt_view_t *B)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    int64_t slices = b->ne[2] * b->ne[3];
    bool by_slice = c->nth > 1 && (slices >= 4 * c->nth || slices % c->nth == 0);
    int64_t s0 = 0, s1 = slices;
    if (by_slice)
        cpu_split(slices, c->ith, c->nth, &s0, &s1);
    for (int64_t s = s0; s < s1; s++) {
        int64_t i2, i3, a2, a3;
        slice_of(n, s, &i2, &i3, &a2, &a3);
        cpu_gemm_args_t g = {
            .a_type = a->type,
            .a = A->base + a2 * A->nb2 + a3 * A->nb3,
            .a_row_bytes = (size_t)A->nb1,
            .a_trans = 1,
            .b = (const float *)(const void *)(B->base + i2 * B->nb2 + i3 * B->nb3),
            .b_col_bytes = (size_t)B->nb1,
            .c = (float *)(void *)((char *)d->data + i2 * d->nb[2] + i3 * d->nb[3]),
            .c_col_bytes = (size_t)d->nb[1],
            .K = a->ne[1], .M = a->ne[0], .N = b->ne[1],
        };
        cpu_mul_mat_2d(&g, by_slice ? 0 : c->ith, by_slice ? 1 : c->nth);
    }
}

/* One tile group of a quantized A: dst rows [k0, k0 + kt) of slice s, columns of
 * tiles [j0, j1); A's rows expanded once per step for all of those columns. */
static void run_tile_group(const cpu_op_ctx_t *c, const cpu_qtype_t *q, const qt_plan_t *P,
                           const mt_view_t *B, float *tile, int64_t s, int64_t k0, int64_t j0,
                           int64_t j1)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    int64_t i2, i3, a2, a3, M = a->ne[1], N = b->ne[1];
    slice_of(n, s, &i2, &i3, &a2, &a3);
    int64_t kt = a->ne[0] - k0 < P->kt ? a->ne[0] - k0 : P->kt;
    const char *arow = (const char *)a->data + a2 * a->nb[2] + a3 * a->nb[3] +
                       (size_t)(k0 / q->block) * q->block_bytes;
    const char *bs = B->base + i2 * B->nb2 + i3 * B->nb3;
    char *ds = (char *)d->data + i2 * d->nb[2] + i3 * d->nb[3];
    for (int64_t m0 = 0; m0 < M; m0 += QT_RED) {
        int64_t mr = M - m0 < QT_RED ? M - m0 : QT_RED;
        for (int64_t r = 0; r < mr; r++)
            q->dequantize_row(arow + (m0 + r) * a->nb[1], tile + r * kt, kt);
        for (int64_t j = j0; j < j1; j++) {
            int64_t n0 = j * P->nt, n1 = n0 + P->nt < N ? n0 + P->nt : N;
            cpu_gemm_args_t g = {
                .a_type = SLM_TYPE_F32,
                .a = tile,
                .a_row_bytes = (size_t)kt * sizeof(float),
                .a_trans = 1,
                .b = (const float *)(const void *)(bs + n0 * B->nb1) + m0,
                .b_col_bytes = (size_t)B->nb1,
                .c = (float *)(void *)(ds + n0 * d->nb[1]) + k0,
                .c_col_bytes = (size_t)d->nb[1],
                .K = mr, .M = kt, .N = n1 - n0,
                .accumulate = m0 > 0,
            };
            cpu_mul_mat_2d(&g, 0, 1);
        }
    }
}

/* This thread's items (slice, K tile, N tile) in order, grouped by (slice, K tile). */
static void run_quant(const cpu_op_ctx_t *c, const cpu_qtype_t *q, const mt_layout_t *L,
                      const mt_view_t *B)
{
    const slm_node_t *n = c->node;
    qt_plan_t P;
    qt_plan(n, q, c->nth, &P);
    float *tile = (float *)(void *)(c->scratch + L->tile_off +
                                    (size_t)c->ith * cpu_align64(L->tile_bytes));
    int64_t i0, i1;
    cpu_split(P.items, c->ith, c->nth, &i0, &i1);
    while (i0 < i1) {
        int64_t group = i0 / P.n_nt, j0 = i0 % P.n_nt;
        int64_t j1 = P.n_nt < j0 + (i1 - i0) ? P.n_nt : j0 + (i1 - i0);
        run_tile_group(c, q, &P, B, tile, group / P.n_kt, group % P.n_kt * P.kt, j0, j1);
        i0 += j1 - j0;
    }
}

/* An empty sum: zero this thread's share of dst's rows. */
static void zero_dst(const cpu_op_ctx_t *c)
{
    const slm_tensor_desc_t *d = &c->node->dst;
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        memset(cpu_row(d, i1, i2, i3), 0, (size_t)d->ne[0] * sizeof(float));
    }
}

static void run_mul_mat_t(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    const cpu_qtype_t *q = quant_of(a);
    mt_layout_t L;
    if (!mt_plan(n, q, c->nth, &L)) {
        cpu_fail(c, SLM_E_NOMEM);
        return;
    }
    if (cpu_nelements(&n->dst) == 0)
        return;
    if (a->ne[1] == 0) {
        zero_dst(c);
        return;
    }
    if (L.pack_a)
        cpu_pack_rows(c, a, c->scratch + L.a_off);
    if (L.pack_b)
        cpu_pack_rows(c, b, c->scratch + L.b_off);
    if (L.pack_a || L.pack_b)
        cpu_pool_barrier(c->pool);
    mt_view_t B = view_of(b, L.pack_b, c->scratch + L.b_off);
    if (q) {
        run_quant(c, q, &L, &B);
        return;
    }
    mt_view_t A = view_of(a, L.pack_a, c->scratch + L.a_off);
    run_float(c, &A, &B);
}

const cpu_op_def_t cpu_op_mul_mat_t = {check_mul_mat_t, scratch_mul_mat_t, run_mul_mat_t};

/* MUL_MAT (float or quantized weights x f32, batch broadcast) and OUT_PROD, the
 * product its backward pass needs. Strided operands are packed into the kernel
 * layout first; quantized weights meet activations converted once to their blocks. */
#include "config.h"

#include "cpu.h"
#include "matmul.h"
#include "qgemm.h"
#include "quant-types.h"
#include "repack.h"

/* The quantized-weight kernels when A has a block type with whole blocks per row. */
static const cpu_qtype_t *quant_of(const slm_tensor_desc_t *a)
{
    const cpu_qtype_t *q = cpu_qtype_get(a->type);
    if (!q || q->block <= 0 || q->act_block <= 0 || a->ne[0] % q->block ||
        a->ne[0] % q->act_block || (a->ne[0] > 0 && a->nb[0] != (int64_t)q->block_bytes))
        return NULL;
    return q;
}

static bool check_mul_mat(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    return n->n_src == 2 && (cpu_is_float(a->type) || quant_of(a)) && cpu_desc_ok(a, a->type) &&
           cpu_desc_ok(b, SLM_TYPE_F32) && cpu_desc_ok(d, SLM_TYPE_F32) &&
           a->ne[0] == b->ne[0] && d->ne[0] == a->ne[1] && d->ne[1] == b->ne[1] &&
           d->ne[2] == b->ne[2] && d->ne[3] == b->ne[3] && a->ne[2] > 0 && a->ne[3] > 0 &&
           b->ne[2] % a->ne[2] == 0 && b->ne[3] % a->ne[3] == 0;
}

/* Where packed copies live in the scratch: A, then B, then C (0 bytes when unneeded). */
typedef struct mm_layout {
    bool pack_a, pack_b, temp_c;
    size_t a_off, b_off, c_off, total;
} mm_layout_t;

static bool add_region(size_t *total, uint64_t bytes, size_t *off)
{
    *off = *total;
    if (bytes > SIZE_MAX / 2 || *total > SIZE_MAX / 2)
        return false;
    *total += cpu_align64((size_t)bytes);
    return true;
}

static bool mm_plan(const slm_node_t *n, mm_layout_t *L)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    L->pack_a = !cpu_rows_packed(a);
    L->pack_b = !cpu_rows_packed(b);
    L->temp_c = !cpu_rows_packed(d);
    L->total = 0;
    uint64_t na = (uint64_t)cpu_nelements(a), nb = (uint64_t)cpu_nelements(b);
    uint64_t nd = (uint64_t)cpu_nelements(d), sa = cpu_type_size(a->type), ba, bb, bd;
    if (__builtin_mul_overflow(na, sa, &ba) || __builtin_mul_overflow(nb, 4u, &bb) ||
        __builtin_mul_overflow(nd, 4u, &bd))
        return false;
    return add_region(&L->total, L->pack_a ? ba : 0, &L->a_off) &&
           add_region(&L->total, L->pack_b ? bb : 0, &L->b_off) &&
           add_region(&L->total, L->temp_c ? bd : 0, &L->c_off);
}

/* ---- quantized weights ----
 * Scratch: every column of B converted to act blocks (act_off; one copy per thread
 * for decode-sized B, see MQ_OWN_ACT_COLS), then one f32 row per thread for
 * columns that are not packed (row_off), then C when its rows are not packed
 * (c_off). */
typedef struct mq_layout {
    size_t act_row, act_off, row_off, row_bytes, c_off, total;
    size_t act_own;            /* bytes between threads' own act copies, 0 if shared */
    bool temp_c;
    bool gemm;                 /* prompt-sized: dequantized rows through the f32 GEMM */
    size_t dq_off, dq_bytes;   /* per thread: MQ_DQ_ROWS dequantized rows */
    bool qgemm;                /* prompt-sized, integer GEMM (qgemm.h) instead */
    size_t qa_col, qa_off;     /* converted columns */
    size_t panel_off, panel_bytes; /* per thread: one packed panel and its row buffer */
} mq_layout_t;

/* From this many columns on, expanding a block of weight rows to f32 once and
 * running the register-blocked f32 GEMM over all columns beats int8 dot products,
 * whose per-block scaling costs as much as the products themselves. */
#define MQ_GEMM_MIN_N 16
/* Up to this many columns (decode), every thread converts all of them into its
 * own copy: a few microseconds of duplicated work instead of a barrier. */
#define MQ_OWN_ACT_COLS 4
#define MQ_DQ_ROWS 128

/* Integer GEMM: every column converted once (shared), then one panel per thread
 * unless the weight comes repacked (`panels`: none to pack). */
static bool mq_qgemm_plan(const slm_node_t *n, int nth, const cpu_qtype_t *q, bool panels,
                          mq_layout_t *L)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    int64_t K = a->ne[0];
    L->gemm = L->qgemm = true;
    L->total = 0;
    L->temp_c = false;
    if ((uint64_t)K > SIZE_MAX / 1024 || K % 32 || K % q->s8_group)
        return false;
    L->qa_col = cpu_qgemm_act_bytes(K);
    L->panel_bytes = panels ? 0 : cpu_qgemm_panel_bytes(q, K) + cpu_qgemm_tmp_bytes(K);
    uint64_t act;
    if (__builtin_mul_overflow((uint64_t)cpu_nrows(b), (uint64_t)L->qa_col, &act))
        return false;
    size_t all = panels ? 0 : cpu_scratch_per_thread(L->panel_bytes, nth);
    return all != SIZE_MAX && add_region(&L->total, act, &L->qa_off) &&
           add_region(&L->total, all, &L->panel_off);
}

static bool mq_gemm_plan(const slm_node_t *n, int nth, mq_layout_t *L)
{
    const slm_tensor_desc_t *a = &n->src[0], *d = &n->dst;
    L->gemm = true;
    L->qgemm = false;
    L->total = 0;
    L->temp_c = false;
    if ((uint64_t)a->ne[0] > SIZE_MAX / (4 * MQ_DQ_ROWS) / 64)
        return false;
    L->dq_bytes = (size_t)a->ne[0] * 4 * MQ_DQ_ROWS;
    size_t all = cpu_scratch_per_thread(L->dq_bytes, nth);
    return all != SIZE_MAX && d->nb[1] % (int64_t)sizeof(float) == 0 &&
           add_region(&L->total, all, &L->dq_off);
}

/* `panels`: the weight comes repacked (the device's, repack.h), so every product
 * with several columns runs on the integer GEMM without packing. */
static bool mq_plan(const slm_node_t *n, int nth, const cpu_qtype_t *q, bool panels,
                    mq_layout_t *L)
{
    const slm_tensor_desc_t *b = &n->src[1], *d = &n->dst;
    if (panels)
        return mq_qgemm_plan(n, nth, q, true, L);
    if (b->ne[1] >= MQ_GEMM_MIN_N && cpu_rows_packed(b) && cpu_rows_packed(d) &&
        d->nb[1] % (int64_t)sizeof(float) == 0 && b->nb[1] % (int64_t)sizeof(float) == 0)
        return cpu_qgemm_ok(q) ? mq_qgemm_plan(n, nth, q, false, L) : mq_gemm_plan(n, nth, L);
    L->gemm = false;
    L->qgemm = false;
    uint64_t cols = (uint64_t)cpu_nrows(b), K = (uint64_t)b->ne[0], act, rows, cb;
    if (K > SIZE_MAX / 64 || (uint64_t)q->act_block_bytes > SIZE_MAX / 64)
        return false;
    L->act_row = cpu_qtype_act_row_bytes(q, (int64_t)K);
    L->row_bytes = (size_t)K * sizeof(float);
    L->temp_c = !cpu_rows_packed(d) || d->nb[1] % (int64_t)sizeof(float) != 0;
    L->total = 0;
    L->act_own = 0;
    if (__builtin_mul_overflow(cols, (uint64_t)L->act_row, &act))
        return false;
    if (nth > 1 && cols <= MQ_OWN_ACT_COLS) {
        L->act_own = cpu_align64((size_t)act);
        if (__builtin_mul_overflow((uint64_t)L->act_own, (uint64_t)nth, &act))
            return false;
    }
    if (__builtin_mul_overflow((uint64_t)cpu_align64(L->row_bytes), (uint64_t)nth, &rows) ||
        __builtin_mul_overflow((uint64_t)cpu_nelements(d), 4u, &cb))
        return false;
    return add_region(&L->total, act, &L->act_off) &&
           add_region(&L->total, cpu_rows_packed(b) ? 0 : rows, &L->row_off) &&
           add_region(&L->total, L->temp_c ? cb : 0, &L->c_off);
}

static size_t scratch_mul_mat(const slm_node_t *n, int nth)
{
    const cpu_qtype_t *q = quant_of(&n->src[0]);
    if (q) {
        /* Whether the weight comes repacked is the device's to say when it runs:
         * room for either way. */
        mq_layout_t Q, R;
        if (!mq_plan(n, nth, q, false, &Q))
            return SIZE_MAX;
        if (!cpu_repack_takes(n))
            return Q.total;
        return mq_plan(n, nth, q, true, &R) ? (R.total > Q.total ? R.total : Q.total) : SIZE_MAX;
    }
    mm_layout_t L;
    return mm_plan(n, &L) ? L.total : SIZE_MAX;
}

/* Strides of t as the kernel sees it: packed copy or the tensor itself. */
typedef struct mm_view {
    const char *base;
    int64_t nb1, nb2, nb3;
} mm_view_t;

static mm_view_t view_of(const slm_tensor_desc_t *t, bool packed, char *copy)
{
    if (!packed)
        return (mm_view_t){t->data, t->nb[1], t->nb[2], t->nb[3]};
    int64_t r = t->ne[0] * (int64_t)cpu_type_size(t->type);
    return (mm_view_t){copy, r, r * t->ne[1], r * t->ne[1] * t->ne[2]};
}

static void slice_args(const slm_node_t *n, const mm_view_t *A, const mm_view_t *B,
                       const mm_view_t *C, int64_t s, cpu_gemm_args_t *g)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    int64_t i2 = s % b->ne[2], i3 = s / b->ne[2];
    int64_t a2 = i2 / (b->ne[2] / a->ne[2]), a3 = i3 / (b->ne[3] / a->ne[3]);
    *g = (cpu_gemm_args_t){
        .a_type = a->type,
        .a = A->base + a2 * A->nb2 + a3 * A->nb3,
        .a_row_bytes = (size_t)A->nb1,
        .b = (const float *)(const void *)(B->base + i2 * B->nb2 + i3 * B->nb3),
        .b_col_bytes = (size_t)B->nb1,
        .c = (float *)(void *)(C->base + i2 * C->nb2 + i3 * C->nb3),
        .c_col_bytes = (size_t)C->nb1,
        .K = a->ne[0], .M = a->ne[1], .N = b->ne[1],
    };
}

static void copy_out(const cpu_op_ctx_t *c, const char *tmp)
{
    const slm_tensor_desc_t *d = &c->node->dst;
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        cpu_row_from_f32(SLM_TYPE_F32, cpu_row(d, i1, i2, i3), d->nb[0],
                         (const float *)(const void *)(tmp + (size_t)r * (size_t)d->ne[0] * 4),
                         d->ne[0]);
    }
}

/* Where this thread reads the converted columns. */
static char *mq_act(const cpu_op_ctx_t *c, const mq_layout_t *L)
{
    return c->scratch + L->act_off + (size_t)c->ith * L->act_own;
}

/* This thread's share of B's columns (all of them when each thread has its own
 * copy), converted to the weight type's act blocks. */
static void mq_convert(const cpu_op_ctx_t *c, const cpu_qtype_t *q, const mq_layout_t *L)
{
    const slm_tensor_desc_t *b = &c->node->src[1];
    float *buf = (float *)(void *)(c->scratch + L->row_off +
                                   (size_t)c->ith * cpu_align64(L->row_bytes));
    int64_t r0 = 0, r1 = cpu_nrows(b);
    if (!L->act_own)
        cpu_split(r1, c->ith, c->nth, &r0, &r1);
    char *act = mq_act(c, L);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(b, r, &i1, &i2, &i3);
        const float *x = cpu_row_in(b, cpu_row(b, i1, i2, i3), buf);
        q->quantize_act(x, act + (size_t)r * L->act_row, b->ne[0]);
    }
}

/* One slice's product over rows [m0, m1) x columns [n0, n1): 4 x 4 tiles, columns
 * taken in chunks so that their act blocks stay in cache while the rows stream. */
typedef struct mq_slice {
    const char *a;             /* weight row 0 of the slice */
    size_t a_row;
    const char *act;           /* converted column 0 of the slice */
    size_t act_row;
    float *c;                  /* C column 0 of the slice */
    size_t c_col;              /* floats between C columns */
    int64_t K;
} mq_slice_t;

#define MQ_COL_CHUNK 64
/* Float products with fewer columns than this are matrix-vector work (decode); their
 * rows are claimed, at least MM_MIN_CLAIM at a time. */
#define MM_CLAIM_MAX_N 6
#define MM_MIN_CLAIM 32
/* Fewest row groups one claim takes: long enough runs for the prefetcher. */
#define MQ_MIN_CLAIM 8
/* Streams a thread reads side by side in a float vector product (cpu_claim_streams,
 * D58): two made f16 decode 8-13% faster than one, and four 9% slower than two. A
 * quantized one reads a single stream: two, alternating row groups, measured the same. */
#define MM_STREAMS 2
_Static_assert(MM_STREAMS <= MV_STREAMS && MM_STREAMS <= CPU_STREAMS_MAX,
               "more streams than the kernel and the claims take");
/* A matrix-vector product over one slice gives each thread a contiguous 1/nth of the
 * rows, which it streams front to back and the others finish from the back once their
 * own is done (cpu_claim_streams, D57): decode measured 6% (f16) and 11% (q4_0) faster
 * than with four interleaved claims each (D55), and f16 5% faster again than with
 * whole shares. A float one reads its share as MM_STREAMS streams (D58). Over several
 * slices, claims of 1/nth of a slice's rows. */

static void mq_range(const cpu_qtype_t *q, const mq_slice_t *s, int64_t m0, int64_t m1,
                     int64_t n0, int64_t n1)
{
    /* A few columns: every row of the range once per CPU_DOT_COLS of them. */
    if (q->dot_cols && n1 - n0 >= 2 && n1 - n0 < MQ_GEMM_MIN_N) {
        for (int64_t j = n0; j < n1; j += CPU_DOT_COLS) {
            int cols = (int)(n1 - j < CPU_DOT_COLS ? n1 - j : CPU_DOT_COLS);
            if (cols == 1) {
                mq_range(q, s, m0, m1, j, j + 1);
                continue;
            }
            q->dot_cols(s->K, s->a + (size_t)m0 * s->a_row, s->a_row,
                        s->act + (size_t)j * s->act_row, s->act_row,
                        s->c + (size_t)j * s->c_col + (size_t)m0, s->c_col, m1 - m0, cols);
        }
        return;
    }
    for (int64_t nc = n0; nc < n1; nc += MQ_COL_CHUNK) {
        int64_t ne = nc + MQ_COL_CHUNK < n1 ? nc + MQ_COL_CHUNK : n1;
        for (int64_t m = m0; m < m1; m += 4) {
            int nr = (int)(m1 - m < 4 ? m1 - m : 4);
            const char *w = s->a + (size_t)m * s->a_row;
            for (int64_t j = nc; j < ne; j += 4) {
                int cols = (int)(ne - j < 4 ? ne - j : 4);
                const char *x = s->act + (size_t)j * s->act_row;
                float *out = s->c + (size_t)j * s->c_col + (size_t)m;
                if (q->dot_tile) {
                    q->dot_tile(s->K, w, s->a_row, x, s->act_row, out, s->c_col, nr, cols);
                    continue;
                }
                for (int jj = 0; jj < cols; jj++)
                    for (int i = 0; i < nr; i++)
                        out[(size_t)jj * s->c_col + (size_t)i] =
                            q->vec_dot(s->K, w + (size_t)i * s->a_row, x + (size_t)jj * s->act_row);
            }
        }
    }
}

static void mq_slice(const cpu_op_ctx_t *c, const mq_layout_t *L, char *cbase, size_t c_nb1,
                     size_t c_nb2, size_t c_nb3, int64_t s, mq_slice_t *out)
{
    const slm_tensor_desc_t *a = &c->node->src[0], *b = &c->node->src[1];
    int64_t i2 = s % b->ne[2], i3 = s / b->ne[2];
    int64_t a2 = i2 / (b->ne[2] / a->ne[2]), a3 = i3 / (b->ne[3] / a->ne[3]);
    *out = (mq_slice_t){
        .a = (const char *)a->data + a2 * a->nb[2] + a3 * a->nb[3],
        .a_row = (size_t)a->nb[1],
        .act = mq_act(c, L) + (size_t)(s * b->ne[1]) * L->act_row,
        .act_row = L->act_row,
        .c = (float *)(void *)(cbase + (size_t)i2 * c_nb2 + (size_t)i3 * c_nb3),
        .c_col = c_nb1 / sizeof(float),
        .K = a->ne[0],
    };
}

/* Prompt-sized products: this thread's rows of every slice, MQ_DQ_ROWS at a time,
 * expanded to f32 and multiplied by all columns with the f32 GEMM. */
static void run_mul_mat_q_gemm(const cpu_op_ctx_t *c, const cpu_qtype_t *q, const mq_layout_t *L)
{
    const slm_tensor_desc_t *a = &c->node->src[0], *b = &c->node->src[1], *d = &c->node->dst;
    float *rows = (float *)(void *)(c->scratch + L->dq_off + (size_t)c->ith * cpu_align64(L->dq_bytes));
    int64_t M = a->ne[1], K = a->ne[0], units = (M + 3) / 4;
    int64_t per = (units + c->nth - 1) / c->nth, m0 = 4 * per * c->ith;
    int64_t m1 = 4 * per * (c->ith + 1) < M ? 4 * per * (c->ith + 1) : M;
    for (int64_t s = 0; s < b->ne[2] * b->ne[3]; s++) {
        int64_t i2 = s % b->ne[2], i3 = s / b->ne[2];
        const char *aslice = (const char *)a->data + i2 / (b->ne[2] / a->ne[2]) * a->nb[2] +
                             i3 / (b->ne[3] / a->ne[3]) * a->nb[3];
        for (int64_t m = m0; m < m1; m += MQ_DQ_ROWS) {
            int64_t rows_n = m1 - m < MQ_DQ_ROWS ? m1 - m : MQ_DQ_ROWS;
            for (int64_t r = 0; r < rows_n; r++)
                q->dequantize_row(aslice + (m + r) * a->nb[1], rows + r * K, K);
            cpu_gemm_args_t g = {
                .a_type = SLM_TYPE_F32,
                .a = rows,
                .a_row_bytes = (size_t)K * sizeof(float),
                .b = (const float *)(const void *)((const char *)b->data + i2 * b->nb[2] + i3 * b->nb[3]),
                .b_col_bytes = (size_t)b->nb[1],
                .c = (float *)(void *)((char *)d->data + i2 * d->nb[2] + i3 * d->nb[3]) + m,
                .c_col_bytes = (size_t)d->nb[1],
                .K = K, .M = rows_n, .N = b->ne[1],
            };
            cpu_mul_mat_2d(&g, 0, 1);
        }
    }
}

/* Prompt-sized products on integers: all threads convert the columns, then each
 * packs its panels of CPU_QGEMM_MR weight rows (over every slice) and runs them
 * against all columns of the slice. A repacked weight (c->panels, one slice) has
 * them packed already. */
static void run_mul_mat_qgemm(const cpu_op_ctx_t *c, const cpu_qtype_t *q, const mq_layout_t *L)
{
    const slm_tensor_desc_t *a = &c->node->src[0], *b = &c->node->src[1], *d = &c->node->dst;
    int64_t K = a->ne[0], M = a->ne[1], N = b->ne[1], r0, r1;
    char *act = c->scratch + L->qa_off;
    cpu_split(cpu_nrows(b), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(b, r, &i1, &i2, &i3);
        cpu_qgemm_quantize(q, (const float *)(const void *)cpu_row(b, i1, i2, i3),
                           act + (size_t)r * L->qa_col, K);
    }
    cpu_pool_barrier(c->pool);
    char *panel = c->scratch + L->panel_off + (size_t)c->ith * cpu_align64(L->panel_bytes);
    size_t panel_bytes = cpu_qgemm_panel_bytes(q, K);
    char *tmp = panel + panel_bytes;
    int64_t panels = (M + CPU_QGEMM_MR - 1) / CPU_QGEMM_MR, u0, u1;
    cpu_split(panels * b->ne[2] * b->ne[3], c->ith, c->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++) {
        int64_t s = u / panels, m = u % panels * CPU_QGEMM_MR;
        int64_t i2 = s % b->ne[2], i3 = s / b->ne[2];
        const char *aslice = (const char *)a->data + i2 / (b->ne[2] / a->ne[2]) * a->nb[2] +
                             i3 / (b->ne[3] / a->ne[3]) * a->nb[3];
        int rows = (int)(M - m < CPU_QGEMM_MR ? M - m : CPU_QGEMM_MR);
        const char *use = panel;
        if (c->panels)
            use = (const char *)c->panels + (size_t)(u % panels) * panel_bytes;
        else
            cpu_qgemm_pack(q, aslice + m * a->nb[1], (size_t)a->nb[1], rows, K, panel, tmp);
        float *out = (float *)(void *)((char *)d->data + i2 * d->nb[2] + i3 * d->nb[3]) + m;
        cpu_qgemm_run(q, use, rows, K, act + (size_t)(s * N) * L->qa_col, L->qa_col, N, out,
                      (size_t)d->nb[1] / sizeof(float), c->panels != NULL);
    }
}

static void run_mul_mat_q(const cpu_op_ctx_t *c, const cpu_qtype_t *q)
{
    const slm_tensor_desc_t *b = &c->node->src[1], *d = &c->node->dst;
    mq_layout_t L;
    if (!mq_plan(c->node, c->nth, q, c->panels != NULL, &L)) {
        cpu_fail(c, SLM_E_NOMEM);
        return;
    }
    if (L.qgemm) {
        run_mul_mat_qgemm(c, q, &L);
        return;
    }
    if (L.gemm) {
        run_mul_mat_q_gemm(c, q, &L);
        return;
    }
    mq_convert(c, q, &L);
    if (!L.act_own)
        cpu_pool_barrier(c->pool);
    char *cbase = L.temp_c ? c->scratch + L.c_off : d->data;
    size_t nb1 = L.temp_c ? (size_t)d->ne[0] * 4 : (size_t)d->nb[1];
    size_t nb2 = L.temp_c ? nb1 * (size_t)d->ne[1] : (size_t)d->nb[2];
    size_t nb3 = L.temp_c ? nb2 * (size_t)d->ne[2] : (size_t)d->nb[3];
    int64_t slices = b->ne[2] * b->ne[3], M = d->ne[0], N = d->ne[1];
    bool by_slice = c->nth > 1 && (slices >= 4 * c->nth || slices % c->nth == 0);
    /* Otherwise rows in groups of four (columns only when rows are too few). */
    bool by_rows = M >= 4 * (int64_t)c->nth || N < c->nth;
    int64_t units = by_rows ? (M + 3) / 4 : N, k, k1;
    mq_slice_t sl;
    if (by_slice) {
        int64_t s0, s1;
        cpu_split(slices, c->ith, c->nth, &s0, &s1);
        for (int64_t s = s0; s < s1; s++) {
            mq_slice(c, &L, cbase, nb1, nb2, nb3, s, &sl);
            mq_range(q, &sl, 0, M, 0, N);
        }
    } else if (slices == 1 && by_rows) {
        /* One slice (decode's weights): each thread streams its share, then helps. */
        mq_slice(c, &L, cbase, nb1, nb2, nb3, 0, &sl);
        while (cpu_claim_streams(c, units, MQ_MIN_CLAIM, 1, &k, &k1) > 0)
            mq_range(q, &sl, 4 * k, 4 * k1 < M ? 4 * k1 : M, 0, N);
    } else {
        int64_t chunk = by_rows ? (units + c->nth - 1) / c->nth : 1;
        if (chunk < MQ_MIN_CLAIM && by_rows)
            chunk = MQ_MIN_CLAIM;
        /* Claims count chunks, each inside one slice. */
        int64_t per_slice = (units + chunk - 1) / chunk;
        while (cpu_claim(c, per_slice * slices, 1, &k, &k1)) {
            int64_t s = k / per_slice, u0 = k % per_slice * chunk;
            int64_t u1 = u0 + chunk < units ? u0 + chunk : units;
            mq_slice(c, &L, cbase, nb1, nb2, nb3, s, &sl);
            if (by_rows)
                mq_range(q, &sl, 4 * u0, 4 * u1 < M ? 4 * u1 : M, 0, N);
            else
                mq_range(q, &sl, 0, M, u0, u1);
        }
    }
    if (!L.temp_c)
        return;
    cpu_pool_barrier(c->pool);
    copy_out(c, c->scratch + L.c_off);
}

/* Rows [m0, m1) of one slice's product. */
static void mul_mat_rows(const cpu_gemm_args_t *slice, int64_t m0, int64_t m1)
{
    cpu_gemm_args_t g = *slice;
    g.M = m1 - m0;
    g.a = (const char *)g.a + (size_t)m0 * g.a_row_bytes;
    g.c += m0;
    cpu_mul_mat_2d(&g, 0, 1);
}

static void run_mul_mat(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    const cpu_qtype_t *q = quant_of(a);
    if (q) {
        run_mul_mat_q(c, q);
        return;
    }
    mm_layout_t L;
    if (!mm_plan(n, &L)) {
        cpu_fail(c, SLM_E_NOMEM);
        return;
    }
    if (L.pack_a)
        cpu_pack_rows(c, a, c->scratch + L.a_off);
    if (L.pack_b)
        cpu_pack_rows(c, b, c->scratch + L.b_off);
    if (L.pack_a || L.pack_b)
        cpu_pool_barrier(c->pool);
    mm_view_t A = view_of(a, L.pack_a, c->scratch + L.a_off);
    mm_view_t B = view_of(b, L.pack_b, c->scratch + L.b_off);
    mm_view_t C = view_of(d, L.temp_c, c->scratch + L.c_off);
    int64_t slices = b->ne[2] * b->ne[3];
    /* Many slices (attention heads): whole slices per thread; few: split each one. */
    bool by_slice = c->nth > 1 && (slices >= 4 * c->nth || slices % c->nth == 0);
    cpu_gemm_args_t g;
    if (by_slice) {
        int64_t s0, s1;
        cpu_split(slices, c->ith, c->nth, &s0, &s1);
        for (int64_t s = s0; s < s1; s++) {
            slice_args(n, &A, &B, &C, s, &g);
            cpu_mul_mat_2d(&g, 0, 1);
        }
    } else if (b->ne[1] < MM_CLAIM_MAX_N && slices == 1) {
        /* Matrix-vector (decode): rows claimed as run_mul_mat_q claims them, a
         * vector's two streams read side by side. */
        int64_t lo[MM_STREAMS], hi[MM_STREAMS];
        int got;
        slice_args(n, &A, &B, &C, 0, &g);
        while ((got = cpu_claim_streams(c, a->ne[1], MM_MIN_CLAIM, MM_STREAMS, lo, hi)) > 0)
            cpu_mul_vec_rows(&g, lo, hi, got);
    } else if (b->ne[1] < MM_CLAIM_MAX_N) {
        /* Several slices: chunks of a slice in turn. */
        int64_t M = a->ne[1], chunk = (M + c->nth - 1) / c->nth, k, k1;
        chunk = chunk < MM_MIN_CLAIM ? MM_MIN_CLAIM : chunk;
        int64_t per_slice = (M + chunk - 1) / chunk;
        while (cpu_claim(c, per_slice * slices, 1, &k, &k1)) {
            int64_t m0 = k % per_slice * chunk;
            slice_args(n, &A, &B, &C, k / per_slice, &g);
            mul_mat_rows(&g, m0, m0 + chunk < M ? m0 + chunk : M);
        }
    } else {
        for (int64_t s = 0; s < slices; s++) {
            slice_args(n, &A, &B, &C, s, &g);
            cpu_mul_mat_2d(&g, c->ith, c->nth);
        }
    }
    if (!L.temp_c)
        return;
    cpu_pool_barrier(c->pool);
    copy_out(c, c->scratch + L.c_off);
}

static bool check_out_prod(const slm_node_t *n)
{
    const slm_tensor_desc_t *x = &n->src[0], *y = &n->src[1], *d = &n->dst;
    return n->n_src == 2 && cpu_desc_ok(x, SLM_TYPE_F32) && cpu_desc_ok(y, SLM_TYPE_F32) &&
           cpu_desc_ok(d, SLM_TYPE_F32) && x->ne[1] == y->ne[1] && x->ne[2] == y->ne[2] &&
           x->ne[3] == y->ne[3] && d->ne[0] == x->ne[0] && d->ne[1] == y->ne[0] &&
           d->ne[2] > 0 && d->ne[3] > 0 && x->ne[2] % d->ne[2] == 0 &&
           x->ne[3] % d->ne[3] == 0;
}

static size_t scratch_out_prod(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->dst.ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread((size_t)n->dst.ne[0] * 2 * sizeof(float), nth);
}

/* dst[p, q] = sum over k of X[p, k] * Y[q, k] is the GEMM C = A·B with A = X read
 * transposed (row k of X holds consecutive p) and B = Y read transposed (row k of Y
 * holds consecutive q), when all three are contiguous along dim 0. Each dst slice
 * adds up the source batches that map onto it in order (accumulate), every one split
 * over all threads the same way, so a thread only ever adds to its own tiles. */
static bool out_prod_gemm(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *x = &n->src[0], *y = &n->src[1], *d = &n->dst;
    if (x->nb[0] != sizeof(float) || y->nb[0] != sizeof(float) || d->nb[0] != sizeof(float))
        return false;
    int64_t r2 = x->ne[2] / d->ne[2], r3 = x->ne[3] / d->ne[3];
    for (int64_t d3 = 0; d3 < d->ne[3]; d3++)
        for (int64_t d2 = 0; d2 < d->ne[2]; d2++) {
            bool first = true;
            for (int64_t c3 = d3 * r3; c3 < (d3 + 1) * r3; c3++)
                for (int64_t c2 = d2 * r2; c2 < (d2 + 1) * r2; c2++) {
                    cpu_gemm_args_t g = {
                        .a_type = SLM_TYPE_F32, .a = cpu_row(x, 0, c2, c3),
                        .a_row_bytes = (size_t)x->nb[1], .a_trans = 1,
                        .b = (const float *)(const void *)cpu_row(y, 0, c2, c3),
                        .b_col_bytes = (size_t)y->nb[1], .b_trans = 1,
                        .c = (float *)(void *)cpu_row(d, 0, d2, d3),
                        .c_col_bytes = (size_t)d->nb[1],
                        .K = x->ne[1], .M = d->ne[0], .N = d->ne[1],
                        .accumulate = !first,
                    };
                    cpu_mul_mat_2d(&g, c->ith, c->nth);
                    first = false;
                }
        }
    return true;
}

/* Otherwise dst row (q, d2, d3) = sum over the source batches that map onto it, and
 * over k, of X row k scaled by Y[q, k]: a long axpy per k. */
static void run_out_prod(const cpu_op_ctx_t *c)
{
    if (out_prod_gemm(c))
        return;
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *x = &n->src[0], *y = &n->src[1], *d = &n->dst;
    int64_t P = d->ne[0], K = x->ne[1];
    int64_t r2 = x->ne[2] / d->ne[2], r3 = x->ne[3] / d->ne[3];
    float *acc = cpu_thread_scratch(c, (size_t)P * 2 * sizeof(float)), *bx = acc + P;
    int64_t q0, q1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &q0, &q1);
    for (int64_t r = q0; r < q1; r++) {
        int64_t q, d2, d3;
        cpu_unravel_row(d, r, &q, &d2, &d3);
        memset(acc, 0, (size_t)P * sizeof(float));
        for (int64_t c3 = d3 * r3; c3 < (d3 + 1) * r3; c3++)
            for (int64_t c2 = d2 * r2; c2 < (d2 + 1) * r2; c2++)
                for (int64_t k = 0; k < K; k++) {
                    float w = cpu_load(SLM_TYPE_F32, cpu_row(y, k, c2, c3) + q * y->nb[0]);
                    const float *px = cpu_row_in(x, cpu_row(x, k, c2, c3), bx);
                    for (int64_t p = 0; p < P; p++)
                        acc[p] += px[p] * w;
                }
        cpu_row_from_f32(SLM_TYPE_F32, cpu_row(d, q, d2, d3), d->nb[0], acc, P);
    }
}

const cpu_op_def_t cpu_op_mul_mat = {check_mul_mat, scratch_mul_mat, run_mul_mat};
const cpu_op_def_t cpu_op_out_prod = {check_out_prod, scratch_out_prod, run_out_prod};

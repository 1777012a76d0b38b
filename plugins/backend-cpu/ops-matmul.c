/* MUL_MAT (any float weight x f32, batch broadcast) and OUT_PROD, the product its
 * backward pass needs. Strided operands are packed into the kernel layout first. */
#include "config.h"

#include "cpu.h"
#include "matmul.h"

static bool check_mul_mat(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    return n->n_src == 2 && cpu_is_float(a->type) && cpu_desc_ok(a, a->type) &&
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

static size_t scratch_mul_mat(const slm_node_t *n, int nth)
{
    mm_layout_t L;
    return mm_plan(n, &L) ? L.total : SIZE_MAX;
}

/* Copy rows of t packed along ne0 into dst (rows in flat order), this thread's share. */
static void pack_rows(const cpu_op_ctx_t *c, const slm_tensor_desc_t *t, char *dst)
{
    size_t es = cpu_type_size(t->type);
    size_t row_bytes = (size_t)t->ne[0] * es;
    int64_t r0, r1;
    cpu_split(cpu_nrows(t), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(t, r, &i1, &i2, &i3);
        const char *src = cpu_row(t, i1, i2, i3);
        char *out = dst + (size_t)r * row_bytes;
        for (int64_t i = 0; i < t->ne[0]; i++)
            memcpy(out + (size_t)i * es, src + i * t->nb[0], es);
    }
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

static void run_mul_mat(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    mm_layout_t L;
    if (!mm_plan(n, &L)) {
        cpu_fail(c, SLM_E_NOMEM);
        return;
    }
    if (L.pack_a)
        pack_rows(c, a, c->scratch + L.a_off);
    if (L.pack_b)
        pack_rows(c, b, c->scratch + L.b_off);
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

/* dst row (q, d2, d3) = sum over the source batches that map onto it, and over k,
 * of X row k scaled by Y[q, k]: a long contiguous axpy, friendly to the vectoriser. */
static void run_out_prod(const cpu_op_ctx_t *c)
{
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

/* Softmax along ne0 with scale, optional additive mask and causal masking, and
 * its backward pass. Rows that end up fully masked become zeros, not NaN. */
#include "config.h"

#include <math.h>

#include "cpu.h"

static bool check_soft_max(const slm_node_t *n)
{
    const slm_tensor_desc_t *x = &n->src[0];
    if (n->n_src < 1 || n->n_src > 2 || !cpu_desc_ok(&n->dst, SLM_TYPE_F32) ||
        !cpu_desc_ok(x, SLM_TYPE_F32) || !cpu_same_shape(&n->dst, x) || !isfinite(n->fp[0]))
        return false;
    if (n->ip[0] != 0 && n->ip[0] != 1)
        return false;
    if (n->n_src == 1)
        return true;
    const slm_tensor_desc_t *m = &n->src[1];
    return cpu_desc_ok(m, SLM_TYPE_F32) && m->ne[0] == x->ne[0] && cpu_nelements(m) > 0;
}

static bool check_soft_max_back(const slm_node_t *n)
{
    return n->n_src == 2 && cpu_desc_ok(&n->dst, SLM_TYPE_F32) &&
           cpu_desc_ok(&n->src[0], SLM_TYPE_F32) && cpu_desc_ok(&n->src[1], SLM_TYPE_F32) &&
           cpu_same_shape(&n->dst, &n->src[0]) && cpu_same_shape(&n->dst, &n->src[1]) &&
           isfinite(n->fp[0]);
}

/* Scratch per thread: x, mask and output rows (cpu_map_rows_scratch's size). */
static size_t row_bytes(const slm_node_t *n)
{
    return (size_t)n->dst.ne[0] * 3 * sizeof(float);
}

/* bx = px * scale + pm (pm may be NULL); px may be bx itself. */
static void scale_add(float *bx, const float *px, const float *pm, float scale, int64_t n)
{
    enum { W = 16 };
    float t[W];   /* whole chunks are read before written: px == bx is fine */
    int64_t i = 0;
    if (pm) {
        for (; i + W <= n; i += W) {
            for (int j = 0; j < W; j++)
                t[j] = px[i + j] * scale + pm[i + j];
            memcpy(bx + i, t, sizeof t);
        }
    } else {
        for (; i + W <= n; i += W) {
            for (int j = 0; j < W; j++)
                t[j] = px[i + j] * scale;
            memcpy(bx + i, t, sizeof t);
        }
    }
    for (; i < n; i++)
        bx[i] = px[i] * scale + (pm ? pm[i] : 0.0f);
}

/* d = softmax(v) in place-safe form; v already holds scaled, masked logits. */
static void softmax_row(float *d, const float *v, int64_t n)
{
    float sum = cpu_exp_shifted(d, v, n);
    if (sum == 0.0f)
        return;   /* every logit masked: zeros */
    float inv = 1.0f / sum;
    enum { W = 16 };
    int64_t i = 0;
    for (; i + W <= n; i += W)
        for (int j = 0; j < W; j++)
            d[i + j] *= inv;
    for (; i < n; i++)
        d[i] *= inv;
}

static void run_soft_max(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *dst = &n->dst, *x = &n->src[0];
    const slm_tensor_desc_t *m = n->n_src > 1 ? &n->src[1] : NULL;
    int64_t ne0 = dst->ne[0];
    float *bx = cpu_thread_scratch(c, row_bytes(n)), *bm = bx + ne0, *bd = bm + ne0;
    float scale = n->fp[0];
    bool causal = n->ip[0] == 1;
    int64_t n_past = n->ip[1];
    int64_t r0, r1;
    cpu_split(cpu_nrows(dst), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(dst, r, &i1, &i2, &i3);
        const float *px = cpu_row_in(x, cpu_row(x, i1, i2, i3), bx);
        const float *pm = m ? cpu_row_in(m, cpu_row(m, i1 % m->ne[1], i2 % m->ne[2],
                                                    i3 % m->ne[3]), bm)
                            : NULL;
        char *drow = cpu_row(dst, i1, i2, i3);
        float *pd = cpu_row_out(dst, drow, bd);
        /* v goes into bx (px may be bx already: same element read before written). */
        scale_add(bx, px, pm, scale, ne0);
        if (causal)
            for (int64_t i = (n_past + i1 + 1 > 0 ? n_past + i1 + 1 : 0); i < ne0; i++)
                bx[i] = -INFINITY;
        softmax_row(pd, bx, ne0);
        cpu_row_flush(dst, drow, bd, pd);
    }
}

static void row_soft_max_back(float *pd, const float *py, const float *pdy, int64_t ne0,
                              const slm_node_t *n)
{
    float scale = n->fp[0];
    float dot = cpu_dot_f32(py, pdy, ne0);
    for (int64_t i = 0; i < ne0; i++)
        pd[i] = scale * py[i] * (pdy[i] - dot);
}

static void run_soft_max_back(const cpu_op_ctx_t *c)
{
    cpu_map_rows(c, &c->node->src[0], &c->node->src[1], row_soft_max_back);
}

const cpu_op_def_t cpu_op_soft_max = {check_soft_max, cpu_map_rows_scratch, run_soft_max};
const cpu_op_def_t cpu_op_soft_max_back = {check_soft_max_back, cpu_map_rows_scratch, run_soft_max_back};

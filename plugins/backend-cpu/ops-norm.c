/* RMS normalisation over ne0 and its backward pass; sums of squares accumulate
 * with many partial sums so long rows keep their precision. */
#include "config.h"

#include <math.h>

#include "cpu.h"

static bool check_norm(const slm_node_t *n)
{
    return n->n_src == 1 && cpu_desc_ok(&n->dst, SLM_TYPE_F32) &&
           cpu_desc_ok(&n->src[0], SLM_TYPE_F32) && cpu_same_shape(&n->dst, &n->src[0]) &&
           n->fp[0] >= 0.0f;
}

static bool check_norm_back(const slm_node_t *n)
{
    return n->n_src == 2 && cpu_desc_ok(&n->dst, SLM_TYPE_F32) &&
           cpu_desc_ok(&n->src[0], SLM_TYPE_F32) && cpu_desc_ok(&n->src[1], SLM_TYPE_F32) &&
           cpu_same_shape(&n->dst, &n->src[0]) && cpu_same_shape(&n->dst, &n->src[1]) &&
           n->fp[0] >= 0.0f;
}

static size_t row_bytes(const slm_node_t *n)
{
    return (size_t)n->dst.ne[0] * 3 * sizeof(float);
}

static size_t scratch_norm(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->dst.ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread(row_bytes(n), nth);
}

static void run_norm(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *dst = &n->dst, *x = &n->src[0];
    int64_t ne0 = dst->ne[0];
    float *bx = cpu_thread_scratch(c, row_bytes(n)), *bd = bx + ne0;
    float eps = n->fp[0];
    int64_t r0, r1;
    cpu_split(cpu_nrows(dst), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(dst, r, &i1, &i2, &i3);
        const float *px = cpu_row_in(x, cpu_row(x, i1, i2, i3), bx);
        char *drow = cpu_row(dst, i1, i2, i3);
        float *pd = cpu_row_out(dst, drow, bd);
        double ms = ne0 ? (double)cpu_dot_f32(px, px, ne0) / (double)ne0 : 0.0;
        float s = (float)(1.0 / sqrt(ms + eps));
        for (int64_t i = 0; i < ne0; i++)
            pd[i] = px[i] * s;
        cpu_row_flush(dst, drow, bd, pd);
    }
}

/* y = x*r with r = (mean(x^2)+eps)^-1/2 gives dx = r*dy - x * r^3 * sum(x*dy) / n. */
static void run_norm_back(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *dst = &n->dst, *x = &n->src[0], *dy = &n->src[1];
    int64_t ne0 = dst->ne[0];
    float *bx = cpu_thread_scratch(c, row_bytes(n)), *bdy = bx + ne0, *bd = bdy + ne0;
    float eps = n->fp[0];
    int64_t r0, r1;
    cpu_split(cpu_nrows(dst), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(dst, r, &i1, &i2, &i3);
        const float *px = cpu_row_in(x, cpu_row(x, i1, i2, i3), bx);
        const float *pdy = cpu_row_in(dy, cpu_row(dy, i1, i2, i3), bdy);
        char *drow = cpu_row(dst, i1, i2, i3);
        float *pd = cpu_row_out(dst, drow, bd);
        double ms = ne0 ? (double)cpu_dot_f32(px, px, ne0) / (double)ne0 : 0.0;
        double rr = 1.0 / sqrt(ms + eps);
        double xdy = ne0 ? (double)cpu_dot_f32(px, pdy, ne0) : 0.0;
        float a = (float)rr;
        float b = (float)(rr * rr * rr * xdy / (double)(ne0 ? ne0 : 1));
        for (int64_t i = 0; i < ne0; i++)
            pd[i] = a * pdy[i] - b * px[i];
        cpu_row_flush(dst, drow, bd, pd);
    }
}

const cpu_op_def_t cpu_op_rms_norm = {check_norm, scratch_norm, run_norm};
const cpu_op_def_t cpu_op_rms_norm_back = {check_norm_back, scratch_norm, run_norm_back};

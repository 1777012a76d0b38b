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

static void row_norm(float *pd, const float *px, const float *unused, int64_t ne0,
                     const slm_node_t *n)
{
    double ms = ne0 ? (double)cpu_dot_f32(px, px, ne0) / (double)ne0 : 0.0;
    float s = (float)(1.0 / sqrt(ms + n->fp[0]));
    for (int64_t i = 0; i < ne0; i++)
        pd[i] = px[i] * s;
}

/* y = x*r with r = (mean(x^2)+eps)^-1/2 gives dx = r*dy - x * r^3 * sum(x*dy) / n. */
static void row_norm_back(float *pd, const float *px, const float *pdy, int64_t ne0,
                          const slm_node_t *n)
{
    double ms = ne0 ? (double)cpu_dot_f32(px, px, ne0) / (double)ne0 : 0.0;
    double rr = 1.0 / sqrt(ms + n->fp[0]);
    double xdy = ne0 ? (double)cpu_dot_f32(px, pdy, ne0) : 0.0;
    float a = (float)rr;
    float b = (float)(rr * rr * rr * xdy / (double)(ne0 ? ne0 : 1));
    for (int64_t i = 0; i < ne0; i++)
        pd[i] = a * pdy[i] - b * px[i];
}

static void run_norm(const cpu_op_ctx_t *c)
{
    cpu_map_rows(c, &c->node->src[0], NULL, row_norm);
}

static void run_norm_back(const cpu_op_ctx_t *c)
{
    cpu_map_rows(c, &c->node->src[0], &c->node->src[1], row_norm_back);
}

const cpu_op_def_t cpu_op_rms_norm = {check_norm, cpu_map_rows_scratch, run_norm};
const cpu_op_def_t cpu_op_rms_norm_back = {check_norm_back, cpu_map_rows_scratch, run_norm_back};

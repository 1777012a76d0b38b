/* Rotary position embedding (normal: adjacent pairs, NeoX: halves) and its
 * backward pass, which rotates by the opposite angle. */
#include "config.h"

#include <math.h>

#include "cpu.h"

static bool check_rope(const slm_node_t *n)
{
    const slm_tensor_desc_t *x = &n->src[0], *pos = &n->src[1];
    int64_t nd = n->ip[0];
    return n->n_src == 2 && cpu_desc_ok(&n->dst, SLM_TYPE_F32) && cpu_desc_ok(x, SLM_TYPE_F32) &&
           cpu_same_shape(&n->dst, x) && cpu_desc_ok(pos, SLM_TYPE_I32) &&
           pos->ne[0] == x->ne[2] && pos->ne[1] == 1 && pos->ne[2] == 1 && pos->ne[3] == 1 &&
           nd > 0 && nd % 2 == 0 && nd <= x->ne[0] &&
           (n->ip[1] == SLM_ROPE_NORMAL || n->ip[1] == SLM_ROPE_NEOX) && n->fp[0] > 0.0f &&
           isfinite(n->fp[0]) && isfinite(n->fp[1]);
}

/* Per thread: freq (double), cos, sin (n_dims/2 each) and two rows of ne0. */
static size_t table_bytes(const slm_node_t *n)
{
    return cpu_align64((size_t)n->ip[0] / 2 * (sizeof(double) + 2 * sizeof(float)));
}

static size_t per_thread(const slm_node_t *n)
{
    return table_bytes(n) +
           (size_t)n->dst.ne[0] * 2 * sizeof(float);
}

static size_t scratch_rope(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->dst.ne[0] > SIZE_MAX / 32)
        return SIZE_MAX;
    return cpu_scratch_per_thread(per_thread(n), nth);
}

static int32_t position(const slm_tensor_desc_t *pos, int64_t t)
{
    int32_t p;
    memcpy(&p, (const char *)pos->data + t * pos->nb[0], sizeof p);
    return p;
}

static void rotate(const float *px, float *pd, int64_t ne0, int64_t nd, bool neox,
                   const float *cs, const float *sn)
{
    int64_t half = nd / 2;
    for (int64_t i = 0; i < half; i++) {
        int64_t i0 = neox ? i : 2 * i;
        int64_t i1 = neox ? i + half : 2 * i + 1;
        float x0 = px[i0], x1 = px[i1];
        pd[i0] = x0 * cs[i] - x1 * sn[i];
        pd[i1] = x0 * sn[i] + x1 * cs[i];
    }
    for (int64_t i = nd; i < ne0; i++)
        pd[i] = px[i];
}

static void run_rope_dir(const cpu_op_ctx_t *c, double dir)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *dst = &n->dst, *x = &n->src[0], *pos = &n->src[1];
    int64_t ne0 = dst->ne[0], nd = n->ip[0], half = nd / 2;
    bool neox = n->ip[1] == SLM_ROPE_NEOX;
    char *base = cpu_thread_scratch(c, per_thread(n));
    double *freq = (double *)(void *)base;
    float *cs = (float *)(void *)(freq + half), *sn = cs + half;
    float *bx = (float *)(void *)(base + table_bytes(n));
    float *bd = bx + ne0;
    for (int64_t i = 0; i < half; i++)
        freq[i] = pow((double)n->fp[0], -2.0 * (double)i / (double)nd);
    int64_t r0, r1, last_t = -1;
    cpu_split(cpu_nrows(dst), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(dst, r, &i1, &i2, &i3);
        if (i2 != last_t) {
            double p = (double)position(pos, i2) * (double)n->fp[1];
            for (int64_t i = 0; i < half; i++) {
                double th = p * freq[i];
                cs[i] = (float)cos(th);
                sn[i] = (float)(dir * sin(th));
            }
            last_t = i2;
        }
        const float *px = cpu_row_in(x, cpu_row(x, i1, i2, i3), bx);
        char *drow = cpu_row(dst, i1, i2, i3);
        float *pd = cpu_row_out(dst, drow, bd);
        if (pd == px) {   /* in place: rotate from a copy */
            memcpy(bx, px, (size_t)ne0 * sizeof(float));
            px = bx;
        }
        rotate(px, pd, ne0, nd, neox, cs, sn);
        cpu_row_flush(dst, drow, bd, pd);
    }
}

static void run_rope(const cpu_op_ctx_t *c) { run_rope_dir(c, 1.0); }
static void run_rope_back(const cpu_op_ctx_t *c) { run_rope_dir(c, -1.0); }

const cpu_op_def_t cpu_op_rope = {check_rope, scratch_rope, run_rope};
const cpu_op_def_t cpu_op_rope_back = {check_rope, scratch_rope, run_rope_back};

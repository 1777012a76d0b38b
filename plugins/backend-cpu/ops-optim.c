/* The AdamW step, in place: moments m and v are updated and the parameter moves
 * by the bias-corrected ratio plus decoupled weight decay. */
#include "config.h"

#include <math.h>

#include "cpu.h"

enum { H_LR, H_BETA1, H_BETA2, H_EPS, H_WD, H_BC1, H_BC2, H_COUNT };

static bool check_adamw(const slm_node_t *n)
{
    const slm_tensor_desc_t *p = &n->src[0];
    if (n->n_src != 5 || !cpu_desc_ok(&n->dst, SLM_TYPE_F32) || !cpu_same_shape(&n->dst, p))
        return false;
    for (int i = 0; i < 4; i++)
        if (!cpu_desc_ok(&n->src[i], SLM_TYPE_F32) || !cpu_same_shape(&n->src[i], p))
            return false;
    const slm_tensor_desc_t *h = &n->src[4];
    return cpu_desc_ok(h, SLM_TYPE_F32) && h->ne[0] >= H_COUNT;
}

static void run_adamw(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *d = &n->dst, *p = &n->src[0], *g = &n->src[1], *m = &n->src[2],
                            *v = &n->src[3], *h = &n->src[4];
    float hp[H_COUNT];
    for (int i = 0; i < H_COUNT; i++)
        hp[i] = cpu_load(SLM_TYPE_F32, (const char *)h->data + i * h->nb[0]);
    float lr = hp[H_LR], b1 = hp[H_BETA1], b2 = hp[H_BETA2], eps = hp[H_EPS];
    float decay = 1.0f - hp[H_LR] * hp[H_WD];
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        char *pd = cpu_row(d, i1, i2, i3), *pm = cpu_row(m, i1, i2, i3), *pv = cpu_row(v, i1, i2, i3);
        const char *pp = cpu_row(p, i1, i2, i3), *pg = cpu_row(g, i1, i2, i3);
        for (int64_t i = 0; i < d->ne[0]; i++) {
            float gi = cpu_load(SLM_TYPE_F32, pg + i * g->nb[0]);
            float mi = b1 * cpu_load(SLM_TYPE_F32, pm + i * m->nb[0]) + (1.0f - b1) * gi;
            float vi = b2 * cpu_load(SLM_TYPE_F32, pv + i * v->nb[0]) + (1.0f - b2) * gi * gi;
            float mh = mi * hp[H_BC1], vh = vi * hp[H_BC2];
            float pi = cpu_load(SLM_TYPE_F32, pp + i * p->nb[0]);
            cpu_store(SLM_TYPE_F32, pm + i * m->nb[0], mi);
            cpu_store(SLM_TYPE_F32, pv + i * v->nb[0], vi);
            cpu_store(SLM_TYPE_F32, pd + i * d->nb[0], pi * decay - lr * mh / (sqrtf(vh) + eps));
        }
    }
}

const cpu_op_def_t cpu_op_adamw_step = {check_adamw, NULL, run_adamw};

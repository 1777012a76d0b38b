/* The parameter updates, in place: AdamW (moments m and v updated, the parameter
 * moved by the bias-corrected ratio plus decoupled weight decay) and plain SGD. */
#include "config.h"

#include <math.h>

#include "cpu.h"

enum { H_LR, H_BETA1, H_BETA2, H_EPS, H_WD, H_BC1, H_BC2, H_MAX_NORM, H_COUNT };
enum { S_LR, S_WD, S_MAX_NORM, S_COUNT };

/* Operands 0 .. n_f32 - 1 are f32 of the parameter's shape; then the hyper vector
 * of at least n_hyper values and, with one more operand, the clipping sum. */
static bool check_update(const slm_node_t *n, int n_f32, int n_hyper)
{
    const slm_tensor_desc_t *p = &n->src[0];
    bool clip = n->n_src == n_f32 + 2;
    if ((n->n_src != n_f32 + 1 && !clip) || !cpu_desc_ok(&n->dst, SLM_TYPE_F32) ||
        !cpu_same_shape(&n->dst, p))
        return false;
    for (int i = 0; i < n_f32; i++)
        if (!cpu_desc_ok(&n->src[i], SLM_TYPE_F32) || !cpu_same_shape(&n->src[i], p))
            return false;
    const slm_tensor_desc_t *h = &n->src[n_f32];
    if (!cpu_desc_ok(h, SLM_TYPE_F32) || h->ne[0] < n_hyper + (clip ? 1 : 0))
        return false;
    return !clip || (cpu_desc_ok(&n->src[n_f32 + 1], SLM_TYPE_F32) &&
                     cpu_nelements(&n->src[n_f32 + 1]) == 1);
}

static bool check_adamw(const slm_node_t *n)
{
    return check_update(n, 4, H_MAX_NORM);
}

static bool check_sgd(const slm_node_t *n)
{
    return check_update(n, 2, S_MAX_NORM);
}

/* Reads the hyper vector (src[at]) and, when clipping, max_norm after it and the sum
 * of squares in src[at + 1]; returns the gradient scale min(1, max_norm / (norm + 1e-6)),
 * PyTorch's clip_grad_norm_ coefficient, or 1. */
static float load_hyper(const slm_node_t *n, int at, float *hp, int count)
{
    const slm_tensor_desc_t *h = &n->src[at];
    bool clip = n->n_src == at + 2;
    for (int i = 0; i < count - 1; i++)
        hp[i] = cpu_load(SLM_TYPE_F32, (const char *)h->data + i * h->nb[0]);
    hp[count - 1] = clip ? cpu_load(SLM_TYPE_F32, (const char *)h->data + (count - 1) * h->nb[0])
                         : 0.0f;
    if (!(hp[count - 1] > 0.0f))
        return 1.0f;
    float norm = sqrtf(cpu_load(SLM_TYPE_F32, n->src[at + 1].data));
    float c = hp[count - 1] / (norm + 1e-6f);
    return c < 1.0f ? c : 1.0f;
}

static void run_adamw(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *d = &n->dst, *p = &n->src[0], *g = &n->src[1], *m = &n->src[2],
                            *v = &n->src[3];
    float hp[H_COUNT];
    float scale = load_hyper(n, 4, hp, H_COUNT);
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
            float gi = cpu_load(SLM_TYPE_F32, pg + i * g->nb[0]) * scale;
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

static void run_sgd(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *d = &n->dst, *p = &n->src[0], *g = &n->src[1];
    float hp[S_COUNT];
    float scale = load_hyper(n, 2, hp, S_COUNT);
    float lr = hp[S_LR], decay = 1.0f - hp[S_LR] * hp[S_WD];
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        char *pd = cpu_row(d, i1, i2, i3);
        const char *pp = cpu_row(p, i1, i2, i3), *pg = cpu_row(g, i1, i2, i3);
        for (int64_t i = 0; i < d->ne[0]; i++) {
            float gi = cpu_load(SLM_TYPE_F32, pg + i * g->nb[0]) * scale;
            float pi = cpu_load(SLM_TYPE_F32, pp + i * p->nb[0]);
            cpu_store(SLM_TYPE_F32, pd + i * d->nb[0], pi * decay - lr * gi);
        }
    }
}

const cpu_op_def_t cpu_op_adamw_step = {check_adamw, NULL, run_adamw};
const cpu_op_def_t cpu_op_sgd_step = {check_sgd, NULL, run_sgd};

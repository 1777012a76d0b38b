/* Softmax cross-entropy against target distributions and its gradient; the loss
 * is reduced per thread in double, then summed by thread 0 after a barrier. */
#include "config.h"

#include <math.h>

#include "cpu.h"
#include "vmath.h"

#define PARTIAL_BYTES 64   /* one cache line per thread's partial sum */

static bool check_ce(const slm_node_t *n)
{
    const slm_tensor_desc_t *l = &n->src[0], *t = &n->src[1];
    return n->n_src == 2 && cpu_desc_ok(l, SLM_TYPE_F32) && cpu_desc_ok(t, SLM_TYPE_F32) &&
           cpu_same_shape(l, t) && cpu_desc_ok(&n->dst, SLM_TYPE_F32) &&
           cpu_nelements(&n->dst) == 1 && cpu_nrows(l) > 0;
}

static bool check_ce_back(const slm_node_t *n)
{
    const slm_tensor_desc_t *l = &n->src[0], *t = &n->src[1], *g = &n->src[2];
    return n->n_src == 3 && cpu_desc_ok(l, SLM_TYPE_F32) && cpu_desc_ok(t, SLM_TYPE_F32) &&
           cpu_same_shape(l, t) && cpu_desc_ok(g, SLM_TYPE_F32) && cpu_nelements(g) == 1 &&
           cpu_desc_ok(&n->dst, SLM_TYPE_F32) && cpu_same_shape(&n->dst, l) &&
           cpu_nrows(l) > 0;
}

static size_t per_thread(const slm_node_t *n)
{
    return PARTIAL_BYTES + (size_t)n->src[0].ne[0] * 3 * sizeof(float);
}

static size_t scratch_ce(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->src[0].ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread(per_thread(n), nth);
}

/* e[i] = exp(l[i] - max(l)) with the vectorisable expf (vmath.h), and their sum:
 * each chunk of CPU_VW terms in float, the chunks in double, in a fixed order (the
 * same for any thread count). log(sum(exp(l))) = max + log(sum). */
static double exp_shifted(const float *restrict l, float *restrict e, int64_t n, float *max)
{
    float mx = cpu_max_f32(l, n);
    double s = 0.0;
    int64_t i = 0;
    for (; i + CPU_VW <= n; i += CPU_VW) {
        float chunk = 0.0f;
        for (int j = 0; j < CPU_VW; j++)
            e[i + j] = cpu_expf(l[i + j] - mx);
        for (int j = 0; j < CPU_VW; j++)
            chunk += e[i + j];
        s += (double)chunk;
    }
    for (; i < n; i++) {
        e[i] = cpu_expf(l[i] - mx);
        s += (double)e[i];
    }
    *max = mx;
    return s;
}

static void run_ce(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *l = &n->src[0], *t = &n->src[1];
    int64_t V = l->ne[0], rows = cpu_nrows(l);
    char *base = cpu_thread_scratch(c, per_thread(n));
    float *bl = (float *)(void *)(base + PARTIAL_BYTES), *bt = bl + V;
    double part = 0.0;
    int64_t r0, r1;
    cpu_split(rows, c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(l, r, &i1, &i2, &i3);
        const float *pl = cpu_row_in(l, cpu_row(l, i1, i2, i3), bl);
        const float *pt = cpu_row_in(t, cpu_row(t, i1, i2, i3), bt);
        float mx;
        double sum = exp_shifted(pl, bl + 2 * V, V, &mx);
        double lse = (double)mx + log(sum);
        for (int64_t v = 0; v < V; v++)
            if (pt[v] != 0.0f)   /* 0 * log(0) counts as 0 */
                part += (double)pt[v] * ((double)pl[v] - lse);
    }
    memcpy(base, &part, sizeof part);
    cpu_pool_barrier(c->pool);
    if (c->ith != 0)
        return;
    double sum = 0.0;
    for (int i = 0; i < c->nth; i++) {
        double p;
        memcpy(&p, c->scratch + (size_t)i * cpu_align64(per_thread(n)), sizeof p);
        sum += p;
    }
    cpu_store(SLM_TYPE_F32, n->dst.data, (float)(-sum / (double)rows));
}

static void run_ce_back(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *l = &n->src[0], *t = &n->src[1], *d = &n->dst;
    int64_t V = l->ne[0], rows = cpu_nrows(l);
    char *base = cpu_thread_scratch(c, per_thread(n));
    float *bl = (float *)(void *)(base + PARTIAL_BYTES), *bt = bl + V, *bd = bt + V;
    float k = cpu_load(SLM_TYPE_F32, n->src[2].data) / (float)rows;
    int64_t r0, r1;
    cpu_split(rows, c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(l, r, &i1, &i2, &i3);
        const float *pl = cpu_row_in(l, cpu_row(l, i1, i2, i3), bl);
        const float *pt = cpu_row_in(t, cpu_row(t, i1, i2, i3), bt);
        char *drow = cpu_row(d, i1, i2, i3);
        float *pd = cpu_row_out(d, drow, bd);
        float mx;
        float inv = (float)(1.0 / exp_shifted(pl, pd, V, &mx));   /* softmax = e / sum */
        for (int64_t v = 0; v < V; v++)
            pd[v] = (pd[v] * inv - pt[v]) * k;
        cpu_row_flush(d, drow, bd, pd);
    }
}

const cpu_op_def_t cpu_op_cross_entropy = {check_ce, scratch_ce, run_ce};
const cpu_op_def_t cpu_op_cross_entropy_back = {check_ce_back, scratch_ce, run_ce_back};

/* SUM (every element into one f32) and REPEAT_BACK (fold a tiled tensor back
 * onto its tile by adding the repeats): the backward passes of broadcasting. */
#include "config.h"

#include "cpu.h"

#define PARTIAL_BYTES 64

static bool check_sum(const slm_node_t *n)
{
    return n->n_src == 1 && cpu_desc_ok(&n->src[0], SLM_TYPE_F32) &&
           cpu_desc_ok(&n->dst, SLM_TYPE_F32) && cpu_nelements(&n->dst) == 1;
}

static size_t sum_per_thread(const slm_node_t *n)
{
    return PARTIAL_BYTES + (size_t)n->src[0].ne[0] * sizeof(float);
}

static size_t scratch_sum(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->src[0].ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread(sum_per_thread(n), nth);
}

static void run_sum(const cpu_op_ctx_t *c)
{
    const slm_tensor_desc_t *s = &c->node->src[0];
    char *base = cpu_thread_scratch(c, sum_per_thread(c->node));
    float *buf = (float *)(void *)(base + PARTIAL_BYTES);
    double part = 0.0;
    int64_t r0, r1;
    cpu_split(cpu_nrows(s), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(s, r, &i1, &i2, &i3);
        part += cpu_sum_f32(cpu_row_in(s, cpu_row(s, i1, i2, i3), buf), s->ne[0]);
    }
    memcpy(base, &part, sizeof part);
    cpu_pool_barrier(c->pool);
    if (c->ith != 0)
        return;
    double sum = 0.0;
    for (int i = 0; i < c->nth; i++) {
        double p;
        memcpy(&p, c->scratch + (size_t)i * cpu_align64(sum_per_thread(c->node)), sizeof p);
        sum += p;
    }
    cpu_store(SLM_TYPE_F32, c->node->dst.data, (float)sum);
}

static bool check_repeat_back(const slm_node_t *n)
{
    return n->n_src == 1 && cpu_desc_ok(&n->src[0], SLM_TYPE_F32) &&
           cpu_desc_ok(&n->dst, SLM_TYPE_F32) && cpu_can_repeat(&n->src[0], &n->dst);
}

static size_t rb_per_thread(const slm_node_t *n)
{
    return (size_t)(n->src[0].ne[0] + n->dst.ne[0]) * sizeof(float);
}

static size_t scratch_repeat_back(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->src[0].ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread(rb_per_thread(n), nth);
}

/* dst[i] = sum over k of src[i + k * dst.ne], per dimension; split by dst rows. */
static void run_repeat_back(const cpu_op_ctx_t *c)
{
    const slm_tensor_desc_t *s = &c->node->src[0], *d = &c->node->dst;
    int64_t d0 = d->ne[0], s0 = s->ne[0];
    float *acc = cpu_thread_scratch(c, rb_per_thread(c->node)), *buf = acc + d0;
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        memset(acc, 0, (size_t)d0 * sizeof(float));
        for (int64_t j3 = i3; j3 < s->ne[3]; j3 += d->ne[3])
            for (int64_t j2 = i2; j2 < s->ne[2]; j2 += d->ne[2])
                for (int64_t j1 = i1; j1 < s->ne[1]; j1 += d->ne[1]) {
                    const float *ps = cpu_row_in(s, cpu_row(s, j1, j2, j3), buf);
                    for (int64_t k = 0; k < s0; k += d0)
                        for (int64_t i = 0; i < d0; i++)
                            acc[i] += ps[k + i];
                }
        cpu_row_from_f32(SLM_TYPE_F32, cpu_row(d, i1, i2, i3), d->nb[0], acc, d0);
    }
}

const cpu_op_def_t cpu_op_sum = {check_sum, scratch_sum, run_sum};
const cpu_op_def_t cpu_op_repeat_back = {check_repeat_back, scratch_repeat_back, run_repeat_back};

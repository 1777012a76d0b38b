/* CPY (any layout to any layout of the same element count, converting between
 * f32, f16 and bf16) and ACC (copy, then add into a strided window of the copy). */
#include "config.h"

#include "cpu.h"

static bool check_cpy(const slm_node_t *n)
{
    const slm_tensor_desc_t *s = &n->src[0], *d = &n->dst;
    return n->n_src == 1 && cpu_is_float(s->type) && cpu_is_float(d->type) &&
           cpu_desc_ok(s, s->type) && cpu_desc_ok(d, d->type) &&
           cpu_nelements(s) == cpu_nelements(d);
}

static size_t scratch_cpy(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->dst.ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread((size_t)n->dst.ne[0] * sizeof(float), nth);
}

static const char *element(const slm_tensor_desc_t *t, int64_t i)
{
    int64_t off = 0;
    for (int d = 0; d < SLM_MAX_DIMS; d++) {
        off += (i % t->ne[d]) * t->nb[d];
        i /= t->ne[d];
    }
    return (const char *)t->data + off;
}

/* Shapes differ in ne0: walk flat element indices. */
static void cpy_elements(const cpu_op_ctx_t *c)
{
    const slm_tensor_desc_t *s = &c->node->src[0], *d = &c->node->dst;
    int64_t e0, e1;
    cpu_split(cpu_nelements(d), c->ith, c->nth, &e0, &e1);
    for (int64_t i = e0; i < e1; i++)
        cpu_store(d->type, (char *)element(d, i), cpu_load(s->type, element(s, i)));
}

static void run_cpy(const cpu_op_ctx_t *c)
{
    const slm_tensor_desc_t *s = &c->node->src[0], *d = &c->node->dst;
    if (s->ne[0] != d->ne[0]) {
        cpy_elements(c);
        return;
    }
    int64_t ne0 = d->ne[0];
    size_t es = cpu_type_size(d->type);
    bool raw = s->type == d->type && cpu_rows_packed(s) && cpu_rows_packed(d);
    float *buf = cpu_thread_scratch(c, (size_t)ne0 * sizeof(float));
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3, j1, j2, j3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        cpu_unravel_row(s, r, &j1, &j2, &j3);
        const char *srow = cpu_row(s, j1, j2, j3);
        char *drow = cpu_row(d, i1, i2, i3);
        if (raw) {
            memmove(drow, srow, (size_t)ne0 * es);
            continue;
        }
        const float *v = cpu_row_in(s, srow, buf);
        cpu_row_from_f32(d->type, drow, d->nb[0], v, ne0);
    }
}

/* The window's last byte stays inside dst (which is contiguous). */
static bool acc_window_ok(const slm_node_t *n)
{
    const slm_tensor_desc_t *v = &n->src[1];
    uint64_t end = n->ip[3], dst_bytes = (uint64_t)cpu_nelements(&n->dst) * sizeof(float);
    if (n->ip[3] < 0 || n->ip[3] % 4)
        return false;
    if (cpu_nelements(v) == 0)
        return true;
    int64_t nb[SLM_MAX_DIMS] = {sizeof(float), n->ip[0], n->ip[1], n->ip[2]};
    for (int i = 0; i < SLM_MAX_DIMS; i++) {
        uint64_t step;
        if (nb[i] < 0 || nb[i] % 4 ||
            __builtin_mul_overflow((uint64_t)(v->ne[i] - 1), (uint64_t)nb[i], &step) ||
            __builtin_add_overflow(end, step, &end))
            return false;
    }
    return end + sizeof(float) <= dst_bytes;
}

static bool check_acc(const slm_node_t *n)
{
    return n->n_src == 2 && cpu_desc_ok(&n->dst, SLM_TYPE_F32) &&
           cpu_desc_ok(&n->src[0], SLM_TYPE_F32) && cpu_desc_ok(&n->src[1], SLM_TYPE_F32) &&
           cpu_same_shape(&n->dst, &n->src[0]) && cpu_is_contiguous(&n->dst) &&
           acc_window_ok(n);
}

static void run_acc(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *s = &n->src[0], *v = &n->src[1], *d = &n->dst;
    int64_t r0, r1;
    /* In place (the usual case after autodiff) needs no copy. */
    if (s->data != d->data || memcmp(s->nb, d->nb, sizeof s->nb) != 0) {
        cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
        for (int64_t r = r0; r < r1; r++) {
            int64_t i1, i2, i3;
            cpu_unravel_row(d, r, &i1, &i2, &i3);
            cpu_row_to_f32(SLM_TYPE_F32, cpu_row(s, i1, i2, i3), s->nb[0],
                           (float *)(void *)cpu_row(d, i1, i2, i3), d->ne[0]);
        }
        cpu_pool_barrier(c->pool);
    }
    cpu_split(cpu_nrows(v), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(v, r, &i1, &i2, &i3);
        float *w = (float *)(void *)((char *)d->data + n->ip[3] + i1 * n->ip[0] +
                                     i2 * n->ip[1] + i3 * n->ip[2]);
        const char *src = cpu_row(v, i1, i2, i3);
        for (int64_t i = 0; i < v->ne[0]; i++)
            w[i] += cpu_load(SLM_TYPE_F32, src + i * v->nb[0]);
    }
}

const cpu_op_def_t cpu_op_cpy = {check_cpy, scratch_cpy, run_cpy};
const cpu_op_def_t cpu_op_acc = {check_acc, NULL, run_acc};

/* GET_ROWS (embedding lookup from float or quantized tables) and its backward pass,
 * a scatter-add split by columns so threads never write the same element. */
#include "config.h"

#include "cpu.h"
#include "quant-types.h"

/* The table's block type when it has kernels here and whole, packed blocks per row. */
static const cpu_qtype_t *quant_table(const slm_tensor_desc_t *t)
{
    const cpu_qtype_t *q = cpu_qtype_get(t->type);
    if (!q || q->block <= 0 || t->ne[0] % q->block ||
        (t->ne[0] > 0 && t->nb[0] != (int64_t)q->block_bytes))
        return NULL;
    return q;
}

static bool check_get_rows(const slm_node_t *n)
{
    const slm_tensor_desc_t *t = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    return n->n_src == 2 && (cpu_is_float(t->type) || quant_table(t)) && cpu_desc_ok(t, t->type) &&
           cpu_desc_ok(ids, SLM_TYPE_I32) && cpu_desc_ok(d, SLM_TYPE_F32) && ids->ne[3] == 1 &&
           d->ne[0] == t->ne[0] && d->ne[1] == ids->ne[0] && d->ne[2] == ids->ne[1] &&
           d->ne[3] == ids->ne[2] && t->ne[2] > 0 && t->ne[3] > 0 &&
           ids->ne[1] % t->ne[2] == 0 && ids->ne[2] % t->ne[3] == 0;
}

static bool check_get_rows_back(const slm_node_t *n)
{
    const slm_tensor_desc_t *g = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    return n->n_src == 2 && cpu_desc_ok(g, SLM_TYPE_F32) && cpu_desc_ok(ids, SLM_TYPE_I32) &&
           cpu_desc_ok(d, SLM_TYPE_F32) && ids->ne[3] == 1 && g->ne[0] == d->ne[0] &&
           g->ne[1] == ids->ne[0] && g->ne[2] == ids->ne[1] && g->ne[3] == ids->ne[2] &&
           d->ne[2] > 0 && d->ne[3] > 0 && ids->ne[1] % d->ne[2] == 0 &&
           ids->ne[2] % d->ne[3] == 0;
}

/* ids element (i0, i1, i2): ids are one dimension lower than the rows they pick. */
static int32_t row_id(const slm_tensor_desc_t *ids, int64_t i0, int64_t i1, int64_t i2)
{
    int32_t id;
    const char *p = (const char *)ids->data + i0 * ids->nb[0] + i1 * ids->nb[1] + i2 * ids->nb[2];
    memcpy(&id, p, sizeof id);
    return id;
}

static size_t scratch_get_rows(const slm_node_t *n, int nth)
{
    if (!quant_table(&n->src[0]) || n->dst.nb[0] == (int64_t)sizeof(float))
        return 0;
    if ((uint64_t)n->dst.ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread((size_t)n->dst.ne[0] * sizeof(float), nth);
}

static void run_get_rows(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *t = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    const cpu_qtype_t *q = quant_table(t);
    int64_t r0, r1;
    cpu_split(cpu_nrows(d), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        char *drow = cpu_row(d, i1, i2, i3);
        int32_t id = row_id(ids, i1, i2, i3);
        if (id < 0 || id >= t->ne[1]) {
            cpu_fail(c, SLM_E_INVALID);
            for (int64_t e = 0; e < d->ne[0]; e++)
                cpu_store(SLM_TYPE_F32, drow + e * d->nb[0], 0.0f);
            continue;
        }
        const char *trow = cpu_row(t, id, i2 % t->ne[2], i3 % t->ne[3]);
        if (q) {
            float *buf = d->nb[0] == (int64_t)sizeof(float)
                ? NULL : cpu_thread_scratch(c, (size_t)d->ne[0] * sizeof(float));
            float *out = cpu_row_out(d, drow, buf);
            q->dequantize_row(trow, out, d->ne[0]);
            cpu_row_flush(d, drow, buf, out);
            continue;
        }
        if (d->nb[0] == (int64_t)sizeof(float)) {
            cpu_row_to_f32(t->type, trow, t->nb[0], (float *)(void *)drow, d->ne[0]);
            continue;
        }
        for (int64_t e = 0; e < d->ne[0]; e++)
            cpu_store(SLM_TYPE_F32, drow + e * d->nb[0], cpu_load(t->type, trow + e * t->nb[0]));
    }
}

static void add_row(char *dst, int64_t dnb, const char *src, int64_t snb, int64_t e0, int64_t e1)
{
    if (dnb == (int64_t)sizeof(float) && snb == (int64_t)sizeof(float)) {
        float *restrict d = (float *)(void *)dst;
        const float *restrict s = (const float *)(const void *)src;
        for (int64_t e = e0; e < e1; e++)
            d[e] += s[e];
        return;
    }
    for (int64_t e = e0; e < e1; e++) {
        float a = cpu_load(SLM_TYPE_F32, dst + e * dnb) + cpu_load(SLM_TYPE_F32, src + e * snb);
        cpu_store(SLM_TYPE_F32, dst + e * dnb, a);
    }
}

static void run_get_rows_back(const cpu_op_ctx_t *c)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *g = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    int64_t e0, e1;
    cpu_split(d->ne[0], c->ith, c->nth, &e0, &e1);
    if (e0 >= e1)
        return;
    for (int64_t r = 0; r < cpu_nrows(d); r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(d, r, &i1, &i2, &i3);
        char *drow = cpu_row(d, i1, i2, i3);
        for (int64_t e = e0; e < e1; e++)
            cpu_store(SLM_TYPE_F32, drow + e * d->nb[0], 0.0f);
    }
    for (int64_t r = 0; r < cpu_nrows(g); r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(g, r, &i1, &i2, &i3);
        int32_t id = row_id(ids, i1, i2, i3);
        if (id < 0 || id >= d->ne[1]) {
            cpu_fail(c, SLM_E_INVALID);
            continue;
        }
        add_row(cpu_row(d, id, i2 % d->ne[2], i3 % d->ne[3]), d->nb[0], cpu_row(g, i1, i2, i3),
                g->nb[0], e0, e1);
    }
}

const cpu_op_def_t cpu_op_get_rows = {check_get_rows, scratch_get_rows, run_get_rows};
const cpu_op_def_t cpu_op_get_rows_back = {check_get_rows_back, NULL, run_get_rows_back};

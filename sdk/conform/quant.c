/* Block-type (quantized) operands of conformance cases: random rows quantized by the
 * quantizer plugins, their dequantized copy for the reference, and per-element error units. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/quantize.h>
#include <slmops/types.h>

#include "internal.h"
#include "reference.h"

/* Cases stay small; this bounds every allocation made from a case's shape. */
#define MAX_QUANT_ELEMS (1ll << 24)

bool slm_conform__is_block_type(int type)
{
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    return tr && tr->is_quantized && tr->block > 0 && tr->size > 0;
}

int slm_conform__quant_probe(slm_registry_t *reg, int type, slm_error_t *err)
{
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    if (!tr || tr->block == 0 || tr->block > 4096)
        return SLM_E_UNSUPPORTED;
    float *row = calloc(tr->block, sizeof *row);
    void *blk = malloc(tr->size);
    int rc = row && blk ? slm_quantize_rows(reg, type, row, blk, 1, tr->block, NULL, err)
                        : SLM_E_NOMEM;
    free(blk);
    free(row);
    return rc;
}

static int64_t nrows(const int64_t ne[4])
{
    return ne[1] * ne[2] * ne[3];
}

/* Row r of t in memory, rows counted over dims 1..3 in order. */
static char *row_at(const conform_tensor_t *t, void *buf, int64_t r)
{
    int64_t i1 = r % t->ne[1], i2 = r / t->ne[1] % t->ne[2], i3 = r / t->ne[1] / t->ne[2];
    return (char *)buf + t->offset + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
}

/* Quantize random rows of src k into its (already 0xff-filled) host buffer and keep
 * the dequantized rows, which are what the backend is expected to multiply. */
static int fill_one(slm_registry_t *reg, const conform_case_t *c, int k, conform_host_t *h,
                    conform_quant_t *q, slm_error_t *err)
{
    const conform_tensor_t *t = &c->src[k];
    int64_t K = t->ne[0], rows = nrows(t->ne);
    size_t row_bytes = slm_type_row_size(t->type, K);
    if (K <= 0 || rows <= 0 || row_bytes == 0 || K > MAX_QUANT_ELEMS / rows)
        return SLM_E_INVALID;
    size_t n = (size_t)(K * rows);
    float *f = malloc(n * sizeof *f);
    char *qb = malloc((size_t)rows * row_bytes);
    q->deq[k] = malloc(n * sizeof *q->deq[k]);
    int rc = f && qb && q->deq[k] ? 0 : SLM_E_NOMEM;
    uint64_t rng = c->seed ^ (0x9a17ull * (uint64_t)(k + 1));
    for (size_t i = 0; rc == 0 && i < n; i++)
        f[i] = (float)slm_conform__uniform(&rng, t->lo, t->hi);
    if (rc == 0)
        rc = slm_quantize_rows(reg, t->type, f, qb, rows, K, NULL, err);
    if (rc == 0)
        rc = slm_dequantize_rows(reg, t->type, qb, q->deq[k], rows, K, err);
    for (int64_t r = 0; rc == 0 && r < rows; r++)
        memcpy(row_at(t, h->buf[k], r), qb + (size_t)r * row_bytes, row_bytes);
    free(qb);
    free(f);
    return rc;
}

int slm_conform__quant_fill(slm_registry_t *reg, const conform_case_t *c, conform_host_t *h,
                            conform_quant_t *q, slm_error_t *err)
{
    memset(q, 0, sizeof *q);
    for (int k = 0; k < c->n_src; k++) {
        if (!slm_conform__is_block_type(c->src[k].type))
            continue;
        int rc = fill_one(reg, c, k, h, q, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void slm_conform__quant_node(const conform_case_t *c, const conform_quant_t *q, slm_node_t *node)
{
    for (int k = 0; k < c->n_src; k++) {
        if (!q->deq[k])
            continue;
        slm_tensor_desc_t *d = &node->src[k];
        d->type = SLM_TYPE_F32;
        d->offset = 0;
        d->nb[0] = sizeof(float);
        for (int i = 1; i < 4; i++)
            d->nb[i] = d->nb[i - 1] * d->ne[i - 1];
        d->data = q->deq[k];
    }
}

/* sum_k |w_k * x_k| of one dst element: what activation rounding errs in proportion to. */
static double abs_dot(const slm_node_t *n, const float *w, const int64_t i[4])
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    int64_t K = a->ne[0], r2 = b->ne[2] / a->ne[2], r3 = b->ne[3] / a->ne[3];
    const float *wr = w + ((i[3] / r3 * a->ne[2] + i[2] / r2) * a->ne[1] + i[0]) * K;
    double s = 0;
    for (int64_t k = 0; k < K; k++)
        s += fabs((double)wr[k] * slm_conform_ref_load(b, (const int64_t[4]){k, i[1], i[2], i[3]}));
    return s;
}

/* The same for MUL_MAT_T: sum_m |w[k,m] * x[m,n]|, w's column k across its rows. */
static double abs_dot_t(const slm_node_t *n, const float *w, const int64_t i[4])
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    int64_t K = a->ne[0], M = a->ne[1], r2 = b->ne[2] / a->ne[2], r3 = b->ne[3] / a->ne[3];
    const float *ws = w + (i[3] / r3 * a->ne[2] + i[2] / r2) * M * K;
    double s = 0;
    for (int64_t m = 0; m < M; m++)
        s += fabs((double)ws[m * K + i[0]] *
                  slm_conform_ref_load(b, (const int64_t[4]){m, i[1], i[2], i[3]}));
    return s;
}

static double ulp(float v)
{
    float a = fabsf(v);
    return isfinite(a) ? (double)(nextafterf(a, INFINITY) - a) : 1.0;
}

int slm_conform__quant_units(const conform_case_t *c, const slm_node_t *ref, conform_quant_t *q)
{
    const int64_t *ne = c->dst.ne;
    int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
    if (!q->deq[0] || n <= 0 || n > MAX_QUANT_ELEMS)
        return 0;
    if (!(q->unit = malloc((size_t)n * sizeof *q->unit)))
        return SLM_E_NOMEM;
    int64_t i[4];
    size_t at = 0;
    CONFORM_FOR4(ne, i) {
        double u = c->op == SLM_OP_MUL_MAT     ? abs_dot(ref, q->deq[0], i)
                   : c->op == SLM_OP_MUL_MAT_T ? abs_dot_t(ref, q->deq[0], i)
                                               : ulp((float)slm_conform_ref_load(&ref->dst, i));
        q->unit[at++] = u > 1e-30 ? u : 1e-30;
    }
    return 0;
}

void slm_conform__quant_free(conform_quant_t *q)
{
    for (int k = 0; k < SLM_MAX_SRC; k++)
        free(q->deq[k]);
    free(q->unit);
    memset(q, 0, sizeof *q);
}

/* Which nodes the CUDA backend runs (op x types x layouts the kernels address:
 * the Vulkan backend's set, with 64-bit addressing), and one node's launches. */
#include <math.h>
#include <string.h>

#include <slmops/types.h>

#include "cu.h"

#define TYPE_NF4 1024   /* slmops' own NF4 id, as the CPU backend names it */

/* Block types the kernels decode (common.cuh ldq): block elements and bytes. */
static bool block_type(int type, int64_t *elems, int64_t *bytes)
{
    switch (type) {
    case SLM_TYPE_Q8_0: *elems = 32; *bytes = 34; return true;
    case SLM_TYPE_Q4_0: *elems = 32; *bytes = 18; return true;
    case SLM_TYPE_Q4_1: *elems = 32; *bytes = 20; return true;
    case SLM_TYPE_Q5_0: *elems = 32; *bytes = 22; return true;
    case SLM_TYPE_Q5_1: *elems = 32; *bytes = 24; return true;
    case TYPE_NF4: *elems = 64; *bytes = 34; return true;
    case SLM_TYPE_Q4_K: *elems = 256; *bytes = 144; return true;
    case SLM_TYPE_Q5_K: *elems = 256; *bytes = 176; return true;
    case SLM_TYPE_Q6_K: *elems = 256; *bytes = 210; return true;
    default: return false;
    }
}

/* The kernels load f32/i32 as 4-byte words and 16-bit types and block scales as
 * 2-byte halves: offsets and strides keep that alignment; block rows are whole
 * blocks laid out contiguously. */
static bool addressable(const slm_tensor_desc_t *t)
{
    int64_t align = t->type == SLM_TYPE_F16 || t->type == SLM_TYPE_BF16 ? 2 : 4, be = 1, bb = 0;
    bool blocks = block_type(t->type, &be, &bb);
    if (blocks) {
        if (t->ne[0] % be || t->nb[0] != bb)
            return false;
        align = 2;
    } else if (t->type != SLM_TYPE_F32 && t->type != SLM_TYPE_F16 && t->type != SLM_TYPE_BF16 &&
               t->type != SLM_TYPE_I32) {
        return false;
    }
    if (t->offset % (uint64_t)align)
        return false;
    for (int d = 0; d < SLM_MAX_DIMS; d++)
        if (t->ne[d] < 1 || t->nb[d] < 0 || t->nb[d] % align)
            return false;
    return true;
}

static bool is(const slm_tensor_desc_t *t, int type)
{
    return t->type == type;
}

static bool float_type(int type)
{
    return type == SLM_TYPE_F32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16;
}

static bool weight_type(int type)
{
    int64_t e, b;
    return float_type(type) || block_type(type, &e, &b);
}

static bool same_shape(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b)
{
    return memcmp(a->ne, b->ne, sizeof a->ne) == 0;
}

static bool broadcasts(const slm_tensor_desc_t *b, const slm_tensor_desc_t *a)
{
    for (int d = 0; d < SLM_MAX_DIMS; d++)
        if (a->ne[d] % b->ne[d])
            return false;
    return true;
}

static int64_t nelem(const slm_tensor_desc_t *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

static bool all_f32(const slm_node_t *n)
{
    for (int i = 0; i < n->n_src; i++)
        if (!is(&n->src[i], SLM_TYPE_F32))
            return false;
    return is(&n->dst, SLM_TYPE_F32);
}

static bool rope_ok(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1];
    return n->n_src == 2 && is(a, SLM_TYPE_F32) && is(&n->dst, SLM_TYPE_F32) &&
           is(b, SLM_TYPE_I32) && same_shape(a, &n->dst) && b->ne[0] == a->ne[2] &&
           n->ip[0] > 0 && n->ip[0] % 2 == 0 && n->ip[0] <= a->ne[0] &&
           (n->ip[1] == SLM_ROPE_NORMAL || n->ip[1] == SLM_ROPE_NEOX) && n->fp[0] > 0.0f &&
           isfinite(n->fp[0]) && isfinite(n->fp[1]);
}

static bool soft_max_ok(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *m = &n->src[1];
    if (n->n_src < 1 || n->n_src > 2 || !all_f32(n) || !same_shape(a, &n->dst) ||
        !isfinite(n->fp[0]) || (n->ip[0] != 0 && n->ip[0] != 1))
        return false;
    return n->n_src == 1 || m->ne[0] == a->ne[0];
}

static bool acc_ok(const slm_node_t *n)
{
    for (int i = 0; i < 4; i++)
        if (n->ip[i] < 0 || n->ip[i] % 4)
            return false;
    return n->n_src == 2 && all_f32(n) && same_shape(&n->src[0], &n->dst);
}

static bool types_ok(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0], *b = &n->src[1], *d = &n->dst;
    switch (n->op) {
    case SLM_OP_GET_ROWS:
        return n->n_src == 2 && weight_type(a->type) && is(b, SLM_TYPE_I32) && is(d, SLM_TYPE_F32);
    case SLM_OP_GET_ROWS_BACK:
        return n->n_src == 2 && is(a, SLM_TYPE_F32) && is(b, SLM_TYPE_I32) && is(d, SLM_TYPE_F32);
    case SLM_OP_MUL_MAT:
    case SLM_OP_MUL_MAT_T:
        return n->n_src == 2 && weight_type(a->type) && is(b, SLM_TYPE_F32) && is(d, SLM_TYPE_F32) &&
               b->ne[2] % a->ne[2] == 0 && b->ne[3] % a->ne[3] == 0 &&
               (n->op == SLM_OP_MUL_MAT ? a->ne[0] == b->ne[0] : a->ne[1] == b->ne[0]);
    case SLM_OP_OUT_PROD:
        return n->n_src == 2 && all_f32(n) && a->ne[2] % d->ne[2] == 0 && a->ne[3] % d->ne[3] == 0;
    case SLM_OP_ADD:
    case SLM_OP_MUL:
        return n->n_src == 2 && all_f32(n) && same_shape(a, d) && broadcasts(b, a);
    case SLM_OP_SCALE:
    case SLM_OP_SILU:
    case SLM_OP_GELU:
    case SLM_OP_LOG:
    case SLM_OP_RMS_NORM:
        return n->n_src == 1 && all_f32(n) && same_shape(a, d);
    case SLM_OP_SILU_BACK:
    case SLM_OP_GELU_BACK:
    case SLM_OP_LOG_BACK:
    case SLM_OP_SWIGLU:
    case SLM_OP_RMS_NORM_BACK:
    case SLM_OP_SOFT_MAX_BACK:
        return n->n_src == 2 && all_f32(n) && same_shape(a, d) && same_shape(b, d);
    case SLM_OP_ROPE:
    case SLM_OP_ROPE_BACK:
        return rope_ok(n);
    case SLM_OP_SOFT_MAX:
        return soft_max_ok(n);
    case SLM_OP_CPY:
        return n->n_src == 1 && float_type(a->type) && float_type(d->type) && nelem(a) == nelem(d);
    case SLM_OP_CROSS_ENTROPY:
        return n->n_src == 2 && all_f32(n) && same_shape(a, b);
    case SLM_OP_CROSS_ENTROPY_BACK:
        return n->n_src == 3 && all_f32(n) && same_shape(a, b) && same_shape(a, d);
    case SLM_OP_SUM:
        return n->n_src == 1 && all_f32(n);
    case SLM_OP_REPEAT_BACK:
        return n->n_src == 1 && all_f32(n) && broadcasts(d, a);
    case SLM_OP_ACC:
        return acc_ok(n);
    case SLM_OP_ADAMW_STEP:
        return (n->n_src == 5 || n->n_src == 6) && all_f32(n) && same_shape(a, d);
    case SLM_OP_SGD_STEP:
        return (n->n_src == 3 || n->n_src == 4) && all_f32(n) && same_shape(a, d);
    default:
        return false;
    }
}

bool cu_supports_node(void *dev, const slm_node_t *n)
{
    (void)dev;
    if (!n || n->struct_size < sizeof *n || n->n_src < 1 || n->n_src > SLM_MAX_SRC)
        return false;
    if (!addressable(&n->dst))
        return false;
    for (int i = 0; i < n->n_src; i++)
        if (!addressable(&n->src[i]))
            return false;
    return types_ok(n);
}

int cu_node_phases(const slm_node_t *n)
{
    return n->op == SLM_OP_ACC || n->op == SLM_OP_CROSS_ENTROPY || n->op == SLM_OP_SUM ? 2 : 1;
}

uint64_t cu_node_scratch(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0];
    if (n->op == SLM_OP_CROSS_ENTROPY)
        return (uint64_t)(a->ne[1] * a->ne[2] * a->ne[3]);
    if (n->op == SLM_OP_SUM)
        return (uint64_t)((nelem(a) + CU_SUM_CHUNK - 1) / CU_SUM_CHUNK);
    return 0;
}

static void put_tensor(cu_tensor_t *t, const slm_tensor_desc_t *d)
{
    const cu_buffer_t *b = d->buffer;
    t->data = b->ptr + d->offset;
    for (int k = 0; k < 4; k++) {
        t->ne[k] = d->ne[k];
        t->nb[k] = d->nb[k];
    }
    t->type = d->type;
}

typedef int (*launch_fn)(const cu_params_t *p, void *stream);

static launch_fn family_of(int op)
{
    switch (op) {
    case SLM_OP_GET_ROWS:
    case SLM_OP_GET_ROWS_BACK:
    case SLM_OP_MUL_MAT:
    case SLM_OP_MUL_MAT_T:
    case SLM_OP_OUT_PROD:
    case SLM_OP_REPEAT_BACK:
        return cu_launch_matmul;
    case SLM_OP_RMS_NORM:
    case SLM_OP_RMS_NORM_BACK:
    case SLM_OP_ROPE:
    case SLM_OP_ROPE_BACK:
    case SLM_OP_SOFT_MAX:
    case SLM_OP_SOFT_MAX_BACK:
    case SLM_OP_CROSS_ENTROPY:
    case SLM_OP_CROSS_ENTROPY_BACK:
    case SLM_OP_SUM:
        return cu_launch_rows;
    default:
        return cu_launch_elem;
    }
}

/* What the launch's threads (elem, per-element matmul-family ops, rope), warps
 * (MUL_MAT) or blocks (row ops) cover. */
static int64_t items(const slm_node_t *n, int phase, uint64_t partials)
{
    const slm_tensor_desc_t *a = &n->src[0];
    int64_t rows = a->ne[1] * a->ne[2] * a->ne[3];
    switch (n->op) {
    case SLM_OP_MUL_MAT:
        return a->ne[1] * ((n->src[1].ne[1] + 7) / 8) * n->src[1].ne[2] * n->src[1].ne[3];
    case SLM_OP_ROPE:
    case SLM_OP_ROPE_BACK:
        return rows * (n->ip[0] / 2 + (a->ne[0] - n->ip[0]));
    case SLM_OP_SUM:
        return (int64_t)partials;
    case SLM_OP_ACC:
        return phase == 1 ? nelem(&n->src[1]) : nelem(&n->dst);
    default:
        return family_of(n->op) == cu_launch_rows ? rows : nelem(&n->dst);
    }
}

int cu_node_launch(const slm_node_t *n, int phase, char *scratch, cudaStream_t stream)
{
    cu_params_t p;
    memset(&p, 0, sizeof p);
    for (int t = 0; t < CU_NT; t++)
        for (int k = 0; k < 4; k++)
            p.t[t].ne[k] = 1;
    put_tensor(&p.t[0], &n->dst);
    for (int i = 0; i < n->n_src; i++)
        put_tensor(&p.t[i + 1], &n->src[i]);
    for (int i = 0; i < 8; i++) {
        p.ip[i] = n->ip[i];
        p.fp[i] = n->fp[i];
    }
    p.op = n->op;
    p.n_src = n->n_src;
    p.phase = phase;
    uint64_t partials = cu_node_scratch(n);
    if (partials) {   /* t[3]: an operand slot neither SUM nor CROSS_ENTROPY uses */
        p.t[3] = (cu_tensor_t){.data = scratch, .ne = {(int64_t)partials, 1, 1, 1},
                               .nb = {4, 4 * (int64_t)partials, 4 * (int64_t)partials,
                                      4 * (int64_t)partials},
                               .type = SLM_TYPE_F32};
    }
    p.n_items = items(n, phase, partials);
    cudaError_t e = (cudaError_t)family_of(n->op)(&p, stream);
    if (e != cudaSuccess)
        return cu_fail("kernel launch", e);
    return SLM_OK;
}

/* The node set of the generic GPU kernels (plugins/backend-vulkan's shaders and
 * plugins/backend-opencl's kernels) and the parameter block both read. */
#include <string.h>

#include <slmops/types.h>

#include "gpu-nodes.h"

#define TYPE_NF4 1024   /* slmops' own NF4 id, as the CPU backend names it */

/* Block types the kernels decode (their ldq): block elements and bytes. */
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

/* The kernels address bytes with 32-bit integers and read f32/i32 as whole words. */
static bool addressable(const slm_tensor_desc_t *t)
{
    int64_t align = t->type == SLM_TYPE_F16 || t->type == SLM_TYPE_BF16 ? 2 : 4, be = 1, bb = 0, last = (int64_t)t->offset;
    bool blocks = block_type(t->type, &be, &bb);
    if (blocks) {
        if (t->ne[0] % be || t->nb[0] != bb)
            return false;
        align = 2;   /* every block size is even: f16 scales sit on 2-byte boundaries */
    } else if (t->type != SLM_TYPE_F32 && t->type != SLM_TYPE_F16 && t->type != SLM_TYPE_BF16 &&
               t->type != SLM_TYPE_I32) {
        return false;
    }
    if ((int64_t)t->offset % align)
        return false;
    for (int d = 0; d < SLM_MAX_DIMS; d++) {
        if (t->ne[d] < 1 || t->ne[d] > INT32_MAX || t->nb[d] < 0 || t->nb[d] > INT32_MAX ||
            t->nb[d] % align)
            return false;
        int64_t n = blocks && d == 0 ? t->ne[0] / be : t->ne[d];
        last += (n - 1) * t->nb[d];
    }
    return last + 256 < INT32_MAX;
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
    return type == SLM_TYPE_F32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16 ||
           block_type(type, &e, &b);
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

/* Every operand f32 (positions/ids excepted by the callers). */
static bool all_f32(const slm_node_t *n, int from)
{
    for (int i = from; i < n->n_src; i++)
        if (!is(&n->src[i], SLM_TYPE_F32))
            return false;
    return is(&n->dst, SLM_TYPE_F32);
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
        return n->n_src == 2 && all_f32(n, 0) && a->ne[2] % d->ne[2] == 0 &&
               a->ne[3] % d->ne[3] == 0;
    case SLM_OP_ADD:
    case SLM_OP_MUL:
        return n->n_src == 2 && all_f32(n, 0) && same_shape(a, d) && broadcasts(b, a);
    case SLM_OP_SCALE:
    case SLM_OP_SILU:
    case SLM_OP_GELU:
    case SLM_OP_LOG:
        return n->n_src == 1 && all_f32(n, 0) && same_shape(a, d);
    case SLM_OP_SILU_BACK:
    case SLM_OP_GELU_BACK:
    case SLM_OP_LOG_BACK:
    case SLM_OP_SWIGLU:
    case SLM_OP_RMS_NORM_BACK:
    case SLM_OP_SOFT_MAX_BACK:
        return n->n_src == 2 && all_f32(n, 0) && same_shape(a, d) && same_shape(b, d);
    case SLM_OP_RMS_NORM:
        return n->n_src == 1 && all_f32(n, 0) && same_shape(a, d);
    case SLM_OP_ROPE:
    case SLM_OP_ROPE_BACK:
        return n->n_src == 2 && is(a, SLM_TYPE_F32) && is(d, SLM_TYPE_F32) &&
               is(b, SLM_TYPE_I32) && same_shape(a, d) && n->ip[0] >= 0 && n->ip[0] % 2 == 0 &&
               n->ip[0] <= a->ne[0] && b->ne[0] >= a->ne[2];
    case SLM_OP_SOFT_MAX:
        return (n->n_src == 1 || (n->n_src == 2 && b->ne[0] >= a->ne[0] && b->ne[1] >= a->ne[1])) &&
               all_f32(n, 0) && same_shape(a, d);
    case SLM_OP_CPY:
        return n->n_src == 1 && float_type(a->type) && float_type(d->type) && nelem(a) == nelem(d);
    case SLM_OP_CROSS_ENTROPY:
        return n->n_src == 2 && all_f32(n, 0) && same_shape(a, b);
    case SLM_OP_CROSS_ENTROPY_BACK:
        return n->n_src == 3 && all_f32(n, 0) && same_shape(a, b) && same_shape(a, d);
    case SLM_OP_SUM:
        return n->n_src == 1 && all_f32(n, 0);
    case SLM_OP_REPEAT_BACK:
        return n->n_src == 1 && all_f32(n, 0) && broadcasts(d, a);
    case SLM_OP_ACC:
        return n->n_src == 2 && all_f32(n, 0) && same_shape(a, d) && n->ip[0] % 4 == 0 &&
               n->ip[1] % 4 == 0 && n->ip[2] % 4 == 0 && n->ip[3] % 4 == 0 && n->ip[0] >= 0 &&
               n->ip[1] >= 0 && n->ip[2] >= 0 && n->ip[3] >= 0 && n->ip[3] < INT32_MAX &&
               n->ip[0] < INT32_MAX && n->ip[1] < INT32_MAX && n->ip[2] < INT32_MAX;
    case SLM_OP_ADAMW_STEP:
        return (n->n_src == 5 || n->n_src == 6) && all_f32(n, 0) && same_shape(a, d);
    case SLM_OP_SGD_STEP:
        return (n->n_src == 3 || n->n_src == 4) && all_f32(n, 0) && same_shape(a, d);
    default:
        return false;
    }
}

bool gpu_node_supported(const slm_node_t *n)
{
    if (!n || n->struct_size < sizeof *n || n->n_src < 1 || n->n_src > SLM_MAX_SRC)
        return false;
    if (!addressable(&n->dst))
        return false;
    for (int i = 0; i < n->n_src; i++)
        if (!addressable(&n->src[i]))
            return false;
    return types_ok(n);
}

int gpu_node_phases(const slm_node_t *n)
{
    return n->op == SLM_OP_ACC || n->op == SLM_OP_CROSS_ENTROPY || n->op == SLM_OP_SUM ? 2 : 1;
}

uint64_t gpu_node_scratch(const slm_node_t *n)
{
    const slm_tensor_desc_t *a = &n->src[0];
    if (n->op == SLM_OP_CROSS_ENTROPY)
        return (uint64_t)(a->ne[1] * a->ne[2] * a->ne[3]);
    if (n->op == SLM_OP_SUM)
        return (uint64_t)((nelem(a) + GPU_SUM_CHUNK - 1) / GPU_SUM_CHUNK);
    return 0;
}

int gpu_node_kernel(int op)
{
    switch (op) {
    case SLM_OP_GET_ROWS:
    case SLM_OP_GET_ROWS_BACK:
    case SLM_OP_MUL_MAT:
    case SLM_OP_MUL_MAT_T:
    case SLM_OP_OUT_PROD:
    case SLM_OP_REPEAT_BACK:
        return GPU_KERNEL_MATMUL;
    case SLM_OP_RMS_NORM:
    case SLM_OP_RMS_NORM_BACK:
    case SLM_OP_ROPE:
    case SLM_OP_ROPE_BACK:
    case SLM_OP_SOFT_MAX:
    case SLM_OP_SOFT_MAX_BACK:
    case SLM_OP_CROSS_ENTROPY:
    case SLM_OP_CROSS_ENTROPY_BACK:
    case SLM_OP_SUM:
        return GPU_KERNEL_ROWS;
    default:
        return GPU_KERNEL_ELEM;
    }
}

static void put_tensor(gpu_params_t *p, int t, const slm_tensor_desc_t *d)
{
    for (int k = 0; k < 4; k++) {
        p->ne[t * 4 + k] = (int32_t)d->ne[k];
        p->nb[t * 4 + k] = (int32_t)d->nb[k];
    }
    p->off[t] = (uint32_t)d->offset;
    p->type[t] = d->type;
}

int gpu_node_params(const slm_node_t *n, int phase, gpu_params_t *p)
{
    memset(p, 0, sizeof *p);
    for (int t = 0; t < GPU_NT * 4; t++)
        p->ne[t] = 1;
    put_tensor(p, 0, &n->dst);
    for (int i = 0; i < n->n_src; i++)
        put_tensor(p, i + 1, &n->src[i]);
    for (int i = 0; i < 8; i++) {
        p->ip[i] = (int32_t)n->ip[i];
        p->fp[i] = n->fp[i];
    }
    p->op = n->op;
    p->n_src = n->n_src;
    p->phase = phase;
    int kernel = gpu_node_kernel(n->op);
    const slm_tensor_desc_t *a = &n->src[0];
    uint64_t partials = gpu_node_scratch(n);
    if (partials) {   /* tensor 3 (an unused source slot of both ops): the scratch */
        p->ne[3 * 4] = (int32_t)partials;
        p->nb[3 * 4] = 4;
        p->type[3] = SLM_TYPE_F32;
        p->off[3] = 0;
    }
    if (partials && phase == 1)
        p->n_items = 1;
    else if (n->op == SLM_OP_SUM)
        p->n_items = (uint32_t)partials;
    else if (kernel == GPU_KERNEL_ROWS)
        p->n_items = (uint32_t)(a->ne[1] * a->ne[2] * a->ne[3]);
    else if (n->op == SLM_OP_ACC && phase == 1)
        p->n_items = (uint32_t)nelem(&n->src[1]);
    else
        p->n_items = (uint32_t)nelem(&n->dst);
    return kernel;
}

/* Elementwise ops (ADD, MUL with broadcast, SCALE, SILU, GELU, SWIGLU and the
 * backward ones): packed f32 row kernels, strided rows go through scratch. */
#include "config.h"

#include <float.h>
#include <math.h>

#include "cpu.h"
#include "vmath.h"

/* Row kernel: d = f(a, b; p). d may alias a or b exactly. */
typedef void (*row_kernel_fn)(float *d, const float *a, const float *b, int64_t n, float p);

/* Chunked loops through a local buffer: d may alias a or b exactly, which the
 * compiler cannot rule out, and a whole chunk is read before it is written. */
#define CHUNKED(expr)                                                        \
    do {                                                                     \
        float t_[CPU_VW];                                                    \
        int64_t i = 0;                                                       \
        for (; i + CPU_VW <= n; i += CPU_VW) {                               \
            for (int j_ = 0; j_ < CPU_VW; j_++) {                            \
                int64_t k = i + j_;                                          \
                t_[j_] = (expr);                                             \
            }                                                                \
            memcpy(d + i, t_, sizeof t_);                                    \
        }                                                                    \
        for (; i < n; i++) {                                                 \
            int64_t k = i;                                                   \
            d[k] = (expr);                                                   \
        }                                                                    \
    } while (0)

static void k_add(float *d, const float *a, const float *b, int64_t n, float p)
{
    CHUNKED(a[k] + b[k]);
}

static void k_mul(float *d, const float *a, const float *b, int64_t n, float p)
{
    CHUNKED(a[k] * b[k]);
}

static void k_scale(float *d, const float *a, const float *b, int64_t n, float p)
{
    CHUNKED(a[k] * p);
}

static inline float silu1(float x)
{
    return x / (1.0f + cpu_expf(-x));
}

static void k_silu(float *d, const float *a, const float *b, int64_t n, float p)
{
    CHUNKED(silu1(a[k]));
}

static void k_silu_back(float *d, const float *a, const float *b, int64_t n, float p)
{
    for (int64_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-a[i]));
        d[i] = b[i] * s * (1.0f + a[i] * (1.0f - s));
    }
}

static void k_log(float *d, const float *a, const float *b, int64_t n, float p)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = logf(a[i] > FLT_MIN ? a[i] : FLT_MIN);
}

static void k_log_back(float *d, const float *a, const float *b, int64_t n, float p)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = a[i] > FLT_MIN ? b[i] / a[i] : 0.0f;
}

#define GELU_C 0.7978845608028654f   /* sqrt(2/pi) */
#define GELU_A 0.044715f

static void k_gelu(float *d, const float *a, const float *b, int64_t n, float p)
{
    for (int64_t i = 0; i < n; i++) {
        float x = a[i];
        d[i] = 0.5f * x * (1.0f + tanhf(GELU_C * (x + GELU_A * x * x * x)));
    }
}

static void k_gelu_back(float *d, const float *a, const float *b, int64_t n, float p)
{
    for (int64_t i = 0; i < n; i++) {
        float x = a[i];
        float t = tanhf(GELU_C * (x + GELU_A * x * x * x));
        float du = GELU_C * (1.0f + 3.0f * GELU_A * x * x);
        d[i] = b[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}

static void k_swiglu(float *d, const float *a, const float *b, int64_t n, float p)
{
    CHUNKED(silu1(a[k]) * b[k]);
}

/* ---- checks ---- */

static bool f32_same(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b)
{
    return cpu_desc_ok(a, SLM_TYPE_F32) && cpu_desc_ok(b, SLM_TYPE_F32) && cpu_same_shape(a, b);
}

static bool check_unary(const slm_node_t *n)
{
    return n->n_src == 1 && f32_same(&n->dst, &n->src[0]);
}

static bool check_binary_same(const slm_node_t *n)
{
    return n->n_src == 2 && f32_same(&n->dst, &n->src[0]) && f32_same(&n->dst, &n->src[1]);
}

static bool check_broadcast(const slm_node_t *n)
{
    return n->n_src == 2 && f32_same(&n->dst, &n->src[0]) &&
           cpu_desc_ok(&n->src[1], SLM_TYPE_F32) && cpu_can_repeat(&n->src[0], &n->src[1]);
}

/* Three rows of ne0 floats per thread: a, b and d when they are not packed. */
static size_t scratch_rows(const slm_node_t *n, int nth)
{
    uint64_t bytes;
    if (__builtin_mul_overflow((uint64_t)n->dst.ne[0], 3u * sizeof(float), &bytes) ||
        bytes > SIZE_MAX / 2)
        return SIZE_MAX;
    return cpu_scratch_per_thread((size_t)bytes, nth);
}

/* b's row for dst row (i1,i2,i3), tiled along ne0 when b is narrower. */
static const float *row_b(const slm_tensor_desc_t *b, int64_t i1, int64_t i2, int64_t i3,
                          int64_t ne0, float *buf)
{
    const char *row = cpu_row(b, i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
    if (b->ne[0] == ne0)
        return cpu_row_in(b, row, buf);
    /* One period of b, then copies of what is filled so far (a broadcast scalar
     * costs a fill, not a load, a modulo and a store per element). */
    int64_t have = b->ne[0];
    for (int64_t i = 0; i < have; i++)
        buf[i] = cpu_load(b->type, row + i * b->nb[0]);
    while (have < ne0) {
        int64_t n = have < ne0 - have ? have : ne0 - have;
        memcpy(buf + have, buf, (size_t)n * sizeof(float));
        have += n;
    }
    return buf;
}

static void run_rows(const cpu_op_ctx_t *c, row_kernel_fn k, float p)
{
    const slm_node_t *n = c->node;
    const slm_tensor_desc_t *dst = &n->dst, *a = &n->src[0];
    const slm_tensor_desc_t *b = n->n_src > 1 ? &n->src[1] : NULL;
    int64_t ne0 = dst->ne[0];
    float *buf = cpu_thread_scratch(c, cpu_align64((size_t)ne0 * 3 * sizeof(float)));
    float *ba = buf, *bb = buf + ne0, *bd = buf + 2 * ne0;
    int64_t r0, r1;
    cpu_split(cpu_nrows(dst), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(dst, r, &i1, &i2, &i3);
        const float *pa = cpu_row_in(a, cpu_row(a, i1, i2, i3), ba);
        const float *pb = b ? row_b(b, i1, i2, i3, ne0, bb) : NULL;
        char *drow = cpu_row(dst, i1, i2, i3);
        float *pd = cpu_row_out(dst, drow, bd);
        k(pd, pa, pb, ne0, p);
        cpu_row_flush(dst, drow, bd, pd);
    }
}

static void run_add(const cpu_op_ctx_t *c) { run_rows(c, k_add, 0.0f); }
static void run_mul(const cpu_op_ctx_t *c) { run_rows(c, k_mul, 0.0f); }
static void run_scale(const cpu_op_ctx_t *c) { run_rows(c, k_scale, c->node->fp[0]); }
static void run_silu(const cpu_op_ctx_t *c) { run_rows(c, k_silu, 0.0f); }
static void run_silu_back(const cpu_op_ctx_t *c) { run_rows(c, k_silu_back, 0.0f); }
static void run_gelu(const cpu_op_ctx_t *c) { run_rows(c, k_gelu, 0.0f); }
static void run_gelu_back(const cpu_op_ctx_t *c) { run_rows(c, k_gelu_back, 0.0f); }
static void run_swiglu(const cpu_op_ctx_t *c) { run_rows(c, k_swiglu, 0.0f); }
static void run_log(const cpu_op_ctx_t *c) { run_rows(c, k_log, 0.0f); }
static void run_log_back(const cpu_op_ctx_t *c) { run_rows(c, k_log_back, 0.0f); }

const cpu_op_def_t cpu_op_add = {check_broadcast, scratch_rows, run_add};
const cpu_op_def_t cpu_op_mul = {check_broadcast, scratch_rows, run_mul};
const cpu_op_def_t cpu_op_scale = {check_unary, scratch_rows, run_scale};
const cpu_op_def_t cpu_op_silu = {check_unary, scratch_rows, run_silu};
const cpu_op_def_t cpu_op_silu_back = {check_binary_same, scratch_rows, run_silu_back};
const cpu_op_def_t cpu_op_gelu = {check_unary, scratch_rows, run_gelu};
const cpu_op_def_t cpu_op_gelu_back = {check_binary_same, scratch_rows, run_gelu_back};
const cpu_op_def_t cpu_op_swiglu = {check_binary_same, scratch_rows, run_swiglu};
const cpu_op_def_t cpu_op_log = {check_unary, scratch_rows, run_log};
const cpu_op_def_t cpu_op_log_back = {check_binary_same, scratch_rows, run_log_back};

/* Internals shared by the CPU backend's files: the device context, the op table
 * and the helpers every op uses to walk strided tensors and split rows by thread. */
#ifndef SLMOPS_CPU_H
#define SLMOPS_CPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "convert.h"
#include "threadpool.h"

#ifndef CPU_VARIANT_NAME
#error "CPU_VARIANT_NAME must name the variant being built (\"cpu-avx2\")"
#endif

/* Host services saved by the entry point (logging). */
extern const slm_host_t *cpu_host;
#define cpu_log(level, ...)                                                  \
    do {                                                                     \
        if (cpu_host && cpu_host->log)                                       \
            cpu_host->log(level, CPU_VARIANT_NAME, __VA_ARGS__);             \
    } while (0)

/* What every thread gets while running one node. */
typedef struct cpu_op_ctx {
    const slm_node_t *node;
    int ith, nth;
    cpu_pool_t *pool;
    char *scratch;             /* shared by all threads, size from the op's plan */
    atomic_int *status;        /* first failure wins */
    atomic_long *claimed;      /* the node's work taken so far, shared (cpu_claim) */
    atomic_ullong *shares;     /* CPU_SHARE_WORDS: the parts' claims, shared
                                  (cpu_claim_streams) */
    const void *panels;        /* src[0] repacked for this product (repack.h), or NULL */
} cpu_op_ctx_t;

typedef struct cpu_op_def {
    /* True when the node's types, shapes and params are ones the op handles. */
    bool (*check)(const slm_node_t *n);
    /* Optional: bytes of scratch the op needs with nth threads. */
    size_t (*scratch)(const slm_node_t *n, int nth);
    void (*run)(const cpu_op_ctx_t *c);
} cpu_op_def_t;

/* The op table and its per-family parts. */
const cpu_op_def_t *cpu_op_get(int op);
extern const cpu_op_def_t cpu_op_get_rows, cpu_op_get_rows_back;
extern const cpu_op_def_t cpu_op_mul_mat, cpu_op_mul_mat_t, cpu_op_out_prod;
extern const cpu_op_def_t cpu_op_log, cpu_op_log_back;
extern const cpu_op_def_t cpu_op_add, cpu_op_mul, cpu_op_scale, cpu_op_silu, cpu_op_silu_back,
    cpu_op_gelu, cpu_op_gelu_back, cpu_op_swiglu;
extern const cpu_op_def_t cpu_op_rms_norm, cpu_op_rms_norm_back;
extern const cpu_op_def_t cpu_op_rope, cpu_op_rope_back;
extern const cpu_op_def_t cpu_op_soft_max, cpu_op_soft_max_back, cpu_op_attn;
extern const cpu_op_def_t cpu_op_cpy, cpu_op_acc;
extern const cpu_op_def_t cpu_op_cross_entropy, cpu_op_cross_entropy_back;
extern const cpu_op_def_t cpu_op_sum, cpu_op_repeat_back;
extern const cpu_op_def_t cpu_op_adamw_step, cpu_op_sgd_step;

/* Record a failure seen while running (the first one is reported). */
static inline void cpu_fail(const cpu_op_ctx_t *c, int code)
{
    int expected = 0;
    atomic_compare_exchange_strong(c->status, &expected, code);
}

/* ---- tensor descriptors ---- */

/* Bytes of one element of the scalar types this backend handles, 0 for others. */
static inline size_t cpu_type_size(int type)
{
    switch (type) {
    case SLM_TYPE_F32:
    case SLM_TYPE_I32:
        return 4;
    case SLM_TYPE_F16:
    case SLM_TYPE_BF16:
        return 2;
    default:
        return 0;
    }
}

static inline bool cpu_is_float(int type)
{
    return type == SLM_TYPE_F32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16;
}

static inline int64_t cpu_nrows(const slm_tensor_desc_t *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

static inline int64_t cpu_nelements(const slm_tensor_desc_t *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

/* Same ne in every dimension. */
bool cpu_same_shape(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b);
/* ne[i] of b divides ne[i] of a in every dimension (broadcast of b onto a). */
bool cpu_can_repeat(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b);
/* Type is `type`, sizes and strides non-negative (any layout is fine). */
bool cpu_desc_ok(const slm_tensor_desc_t *t, int type);
/* Packed in the usual order (nb[0] = element size, no gaps). */
bool cpu_is_contiguous(const slm_tensor_desc_t *t);
/* Innermost dimension packed (rows may be anywhere). */
static inline bool cpu_rows_packed(const slm_tensor_desc_t *t)
{
    return t->ne[0] <= 1 || (size_t)t->nb[0] == cpu_type_size(t->type);
}

/* Row (i1,i2,i3) of a tensor. */
static inline char *cpu_row(const slm_tensor_desc_t *t, int64_t i1, int64_t i2, int64_t i3)
{
    return (char *)t->data + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
}

/* Flat row index r (over ne1*ne2*ne3) to (i1,i2,i3). */
static inline void cpu_unravel_row(const slm_tensor_desc_t *t, int64_t r, int64_t *i1, int64_t *i2,
                                   int64_t *i3)
{
    *i1 = r % t->ne[1];
    r /= t->ne[1];
    *i2 = r % t->ne[2];
    *i3 = r / t->ne[2];
}

static inline float cpu_load(int type, const char *p)
{
    switch (type) {
    case SLM_TYPE_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return slm_half_to_float(h);
    }
    case SLM_TYPE_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return slm_bf16_to_float(h);
    }
    default: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    }
}

static inline void cpu_store(int type, char *p, float v)
{
    uint16_t h;
    switch (type) {
    case SLM_TYPE_F16:
        h = slm_float_to_half(v);
        memcpy(p, &h, 2);
        break;
    case SLM_TYPE_BF16:
        h = slm_float_to_bf16(v);
        memcpy(p, &h, 2);
        break;
    default:
        memcpy(p, &v, 4);
        break;
    }
}

/* Read row of n elements of any float type with element stride `stride` into f32. */
void cpu_row_to_f32(int type, const char *src, int64_t stride, float *restrict dst, int64_t n);
/* Write n f32 into a strided row of any float type. */
void cpu_row_from_f32(int type, char *dst, int64_t stride, const float *src, int64_t n);

/* This thread's share [*start, *end) of n items, in contiguous chunks. */
static inline void cpu_split(int64_t n, int ith, int nth, int64_t *start, int64_t *end)
{
    int64_t per = (n + nth - 1) / nth;
    int64_t s = per * ith;
    int64_t e = s + per;
    *start = s < n ? s : n;
    *end = e < n ? e : n;
}

/* The next chunk [*start, *end) of n items, taken by whichever of the node's threads
 * asks first: a thread the OS preempted leaves its share to the others instead of
 * making them wait at the next barrier (a busy neighbour on a small machine). False
 * when none is left. Every node has its counter, at 0 when it starts. */
static inline bool cpu_claim(const cpu_op_ctx_t *c, int64_t n, int64_t chunk, int64_t *start,
                             int64_t *end)
{
    int64_t s = atomic_fetch_add_explicit(c->claimed, chunk, memory_order_relaxed);
    if (s >= n)
        return false;
    *start = s;
    *end = s + chunk < n ? s + chunk : n;
    return true;
}

/* Work of n units in nth contiguous shares (cpu_split's), share i thread i's, each cut
 * in `streams` parts (1 to CPU_STREAMS_MAX): a thread takes `grain` units at a time
 * from the front of every part of its own share, to work them side by side, so it
 * reads that many far-apart places in address order (D58); its share done, it takes
 * from the back of the others' parts what their owners have not reached (a partner
 * slowed or off its core leaves no one waiting, D57). Fills lo/hi with up to
 * `streams` ranges and returns how many, 0 when none is left. Every thread of a node
 * passes the same n and streams. Which ranges come together depends on timing: the
 * results must not. More than CPU_SHARES_MAX threads (or n of 2^32 or more, or
 * streams out of range): one range at a time in cpu_claim's order. */
#define CPU_SHARES_MAX 8
#define CPU_STREAMS_MAX 2
/* Words between two threads' claim words: thread t's parts are words
 * [t * CPU_SHARE_STRIDE, + streams). 128 bytes apart, no two threads' claims share a
 * cache line (nor an adjacent-line prefetch pair), so a thread taking from its own
 * share does not pull the line from its partner at every claim. */
#define CPU_SHARE_STRIDE 16
#define CPU_SHARE_WORDS (CPU_SHARES_MAX * CPU_SHARE_STRIDE)
_Static_assert(CPU_STREAMS_MAX <= CPU_SHARE_STRIDE, "a thread's parts fit its stride");
int cpu_claim_streams(const cpu_op_ctx_t *c, int64_t n, int64_t grain, int streams,
                      int64_t lo[], int64_t hi[]);

/* Sums with several accumulators so they vectorise without -ffast-math. */
float cpu_sum_f32(const float *restrict x, int64_t n);
float cpu_dot_f32(const float *restrict x, const float *restrict y, int64_t n);
/* d = exp(v - max(v)) (d may be v) and its sum: softmax before the division. All -inf
 * (every logit masked): zeros and 0. */
float cpu_exp_shifted(float *d, const float *v, int64_t n);

/* Round up to a 64-byte multiple, for carving scratch. */
static inline size_t cpu_align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* Scratch for `nth` threads of `per_thread` bytes each, or SIZE_MAX on overflow. */
size_t cpu_scratch_per_thread(size_t per_thread, int nth);
/* This thread's slice of such scratch. */
static inline void *cpu_thread_scratch(const cpu_op_ctx_t *c, size_t per_thread)
{
    return c->scratch + (size_t)c->ith * cpu_align64(per_thread);
}

/* This thread's share of t's rows copied packed along ne0 into dst (rows in flat
 * order, ne0 * element size bytes apart); float types only. */
void cpu_pack_rows(const cpu_op_ctx_t *c, const slm_tensor_desc_t *t, char *dst);

/* A row of t as packed f32: the row itself when it already is, else converted into buf. */
const float *cpu_row_in(const slm_tensor_desc_t *t, const char *row, float *buf);
/* Where to compute a row of t: the row itself when it is packed f32, else buf ... */
float *cpu_row_out(const slm_tensor_desc_t *t, char *row, float *buf);
/* ... and, when it was buf, write buf back into the row. */
void cpu_row_flush(const slm_tensor_desc_t *t, char *row, const float *buf, const float *out);

/* One row of a row-wise op: out = f(a, b) over ne0 elements (b is NULL for unary ops). */
typedef void (*cpu_row_fn)(float *out, const float *a, const float *b, int64_t ne0,
                           const slm_node_t *n);
/* Run f on this thread's share of dst's rows, reading the same row of a and of b
 * (both shaped like dst; b may be NULL) as packed f32. Needs 3 rows of scratch per
 * thread: cpu_map_rows_scratch. */
void cpu_map_rows(const cpu_op_ctx_t *c, const slm_tensor_desc_t *a, const slm_tensor_desc_t *b,
                  cpu_row_fn f);
size_t cpu_map_rows_scratch(const slm_node_t *n, int nth);

#endif

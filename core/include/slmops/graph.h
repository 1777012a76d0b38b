/* Static compute graphs: tensors, the ops that build them, reverse-mode autodiff
 * and the in-place update ops an optimizer (slmops/optim.h) appends. A graph is built
 * once for a shape and run many times by a scheduler (slmops/sched.h); building
 * allocates no tensor data. */
#ifndef SLMOPS_GRAPH_H
#define SLMOPS_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/ops.h>
#include <slmops/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_graph slm_graph_t;
typedef struct slm_tensor slm_tensor_t;

enum slm_tensor_flags {
    SLM_TENSOR_INPUT = 1 << 0,   /* data set by the caller before compute */
    SLM_TENSOR_PARAM = 1 << 1,   /* trainable: gets a gradient and an optimizer step */
    SLM_TENSOR_OUTPUT = 1 << 2   /* read by the caller after compute: never reused */
};

/* A graph with room for max_tensors tensors (0: a default of 4096). */
slm_graph_t *slm_graph_new(size_t max_tensors);
void slm_graph_free(slm_graph_t *g);
/* The first error met while building (ops return NULL after it), or SLM_OK. */
int slm_graph_status(const slm_graph_t *g, slm_error_t *err);
size_t slm_graph_n_tensors(const slm_graph_t *g);
slm_tensor_t *slm_graph_tensor(const slm_graph_t *g, size_t i);
slm_tensor_t *slm_graph_find(const slm_graph_t *g, const char *name);

/* Leaf tensors (their data is provided by the caller or the optimizer). */
slm_tensor_t *slm_tensor_new(slm_graph_t *g, slm_type_t type, int n_dims, const int64_t *ne);
slm_tensor_t *slm_tensor_new_1d(slm_graph_t *g, slm_type_t type, int64_t ne0);
slm_tensor_t *slm_tensor_new_2d(slm_graph_t *g, slm_type_t type, int64_t ne0, int64_t ne1);

/* Introspection. */
slm_type_t slm_tensor_type(const slm_tensor_t *t);
int slm_tensor_n_dims(const slm_tensor_t *t);
int64_t slm_tensor_ne(const slm_tensor_t *t, int dim);
int64_t slm_tensor_nb(const slm_tensor_t *t, int dim);
int64_t slm_tensor_nelements(const slm_tensor_t *t);
size_t slm_tensor_nbytes(const slm_tensor_t *t);
bool slm_tensor_is_contiguous(const slm_tensor_t *t);
slm_op_t slm_tensor_op(const slm_tensor_t *t);
slm_tensor_t *slm_tensor_src(const slm_tensor_t *t, int i);
const char *slm_tensor_name(const slm_tensor_t *t);
void slm_tensor_set_name(slm_tensor_t *t, const char *name);
void slm_tensor_set_flags(slm_tensor_t *t, unsigned flags);  /* ORs flags in */
unsigned slm_tensor_flags(const slm_tensor_t *t);

/* Forward ops; each returns a new tensor, or NULL after recording an error in g. */
slm_tensor_t *slm_get_rows(slm_graph_t *g, slm_tensor_t *table, slm_tensor_t *ids);
slm_tensor_t *slm_mul_mat(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b);
/* a^T b for a [K,M] of any weight type and b [M,N]: [K,N], without transposing a. */
slm_tensor_t *slm_mul_mat_t(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b);
slm_tensor_t *slm_out_prod(slm_graph_t *g, slm_tensor_t *x, slm_tensor_t *y);
slm_tensor_t *slm_add(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b);
slm_tensor_t *slm_mul(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *b);
slm_tensor_t *slm_scale(slm_graph_t *g, slm_tensor_t *a, float s);
slm_tensor_t *slm_rms_norm(slm_graph_t *g, slm_tensor_t *a, float eps);
slm_tensor_t *slm_rope(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *pos, int n_dims, int mode,
                       float freq_base, float freq_scale);
/* mask may be NULL; causal masks column c of row r when c > n_past + r. */
slm_tensor_t *slm_soft_max(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *mask, float scale,
                           bool causal, int64_t n_past);
/* softmax(scale * q.K + mask) . V in one op (SLM_OP_ATTN: shapes in slmops/ops.h):
 * the attention of a KV cache whose V holds a row per cell like K. No gradient. */
slm_tensor_t *slm_attn(slm_graph_t *g, slm_tensor_t *q, slm_tensor_t *k, slm_tensor_t *v,
                       slm_tensor_t *mask, float scale);
slm_tensor_t *slm_silu(slm_graph_t *g, slm_tensor_t *a);
slm_tensor_t *slm_gelu(slm_graph_t *g, slm_tensor_t *a);
/* The natural logarithm, clamped below at FLT_MIN (op "log"; slm_log is the logger). */
slm_tensor_t *slm_ln(slm_graph_t *g, slm_tensor_t *a);
slm_tensor_t *slm_swiglu(slm_graph_t *g, slm_tensor_t *gate, slm_tensor_t *up);
/* Copy a into dst (dst may be a view, of f32/f16/bf16); returns dst's new version. */
slm_tensor_t *slm_cpy(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *dst);
/* A contiguous copy of a (of the same type, or converted to `type`). */
slm_tensor_t *slm_cont(slm_graph_t *g, slm_tensor_t *a);
slm_tensor_t *slm_cast(slm_graph_t *g, slm_tensor_t *a, slm_type_t type);
slm_tensor_t *slm_cross_entropy(slm_graph_t *g, slm_tensor_t *logits, slm_tensor_t *targets);
slm_tensor_t *slm_sum(slm_graph_t *g, slm_tensor_t *a);
slm_tensor_t *slm_repeat_back(slm_graph_t *g, slm_tensor_t *a, slm_tensor_t *shape_like);

/* Metadata-only ops: no copy, share the source's data. ne/nb arrays have n_dims entries. */
slm_tensor_t *slm_view(slm_graph_t *g, slm_tensor_t *a, int n_dims, const int64_t *ne,
                       const int64_t *nb, size_t offset);
slm_tensor_t *slm_reshape(slm_graph_t *g, slm_tensor_t *a, int n_dims, const int64_t *ne);
slm_tensor_t *slm_permute(slm_graph_t *g, slm_tensor_t *a, int ax0, int ax1, int ax2, int ax3);
slm_tensor_t *slm_transpose(slm_graph_t *g, slm_tensor_t *a);

/* Append the backward pass for scalar `loss`: every PARAM tensor that loss depends
 * on gets a gradient tensor (slm_tensor_grad). Call once, after the forward pass. */
int slm_graph_backward(slm_graph_t *g, slm_tensor_t *loss, slm_error_t *err);
/* Gradient of t after slm_graph_backward, or NULL if loss does not depend on t. */
slm_tensor_t *slm_tensor_grad(const slm_tensor_t *t);

/* In-place parameter updates, normally appended by the optimizer (slmops/optim.h),
 * which owns their moments and writes their hyper-parameters before each run. Each
 * returns param's storage after the update; operands are contiguous f32, param a leaf
 * with storage of its own. hyper holds the values slmops/ops.h lists for the op;
 * sumsq (NULL: no clipping) is the one-element sum of squares of every gradient. */
slm_tensor_t *slm_adamw_step(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                             slm_tensor_t *m, slm_tensor_t *v, slm_tensor_t *hyper,
                             slm_tensor_t *sumsq);
slm_tensor_t *slm_sgd_step(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                           slm_tensor_t *hyper, slm_tensor_t *sumsq);

#ifdef __cplusplus
}
#endif
#endif

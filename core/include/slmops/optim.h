/* The optimizer: owns, for each trainable (PARAM) tensor of a graph, its moments, and
 * the step counter and hyper-parameters; appends the update nodes after the backward
 * pass and sets their inputs (scheduled learning rate, bias corrections) before each
 * run. The scheduler knows nothing of it. docs/compute.md, "Optimizer", has the maths.
 *
 *   slm_graph_backward(g, loss, err);
 *   slm_optim_t *o = slm_optim_new(g, &params, err);   appends the updates
 *   slm_sched_alloc(s, g, err);  ... set the parameters and inputs ...
 *   for each batch: set the inputs, slm_optim_step(o, s, err)
 *   slm_optim_save(o, path, err) / slm_optim_load(o, path, err)   bit-exact resume
 *
 * Gradient accumulation (params.accumulate): per micro-batch set its inputs and
 * slm_optim_accumulate(o, s, weight, err); then slm_optim_apply(o, s, err) once. */
#ifndef SLMOPS_OPTIM_H
#define SLMOPS_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/graph.h>
#include <slmops/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_optim slm_optim_t;

typedef enum slm_optim_kind {
    SLM_OPTIM_ADAMW = 0,       /* Adam with decoupled weight decay, bias-corrected */
    SLM_OPTIM_SGD = 1          /* plain gradient descent (no momentum): for tests */
} slm_optim_kind_t;

/* Learning-rate schedules. lr(t) is the rate of the step that follows t completed
 * steps (t = 0 for the first), as transformers' get_*_schedule_with_warmup define it:
 * warmup t < W: lr * t / W; then CONSTANT: lr; LINEAR: lr * (r + (1 - r) * (T - t) /
 * (T - W)); COSINE: lr * (r + (1 - r) * (1 + cos(pi * (t - W) / (T - W))) / 2), with
 * T = total_steps, W = warmup_steps, r = min_lr_ratio, and r * lr from t = T on. */
typedef enum slm_lr_schedule {
    SLM_LR_CONSTANT = 0,
    SLM_LR_LINEAR = 1,
    SLM_LR_COSINE = 2
} slm_lr_schedule_t;

typedef struct slm_optim_params {
    uint32_t struct_size;
    int32_t kind;              /* slm_optim_kind_t; default ADAMW */
    float lr;                  /* peak learning rate; default 1e-3 */
    float beta1;               /* AdamW; default 0.9 */
    float beta2;               /* AdamW; default 0.999 */
    float eps;                 /* AdamW; default 1e-8 */
    float weight_decay;        /* decoupled: p -= lr * weight_decay * p; default 0 */
    float clip_norm;           /* > 0: gradients scaled by min(1, clip_norm / (global
                                * L2 norm + 1e-6)), as torch's clip_grad_norm_; default 0 */
    int32_t schedule;          /* slm_lr_schedule_t; default CONSTANT */
    int64_t warmup_steps;      /* default 0 */
    int64_t total_steps;       /* LINEAR and COSINE: where the decay ends (> warmup_steps) */
    float min_lr_ratio;        /* LINEAR and COSINE: the floor, a fraction of lr; default 0 */
    /* Which parameters skip weight decay (NULL: every one decays); asked once per
     * parameter by slm_optim_new. */
    bool (*no_decay)(const slm_tensor_t *param, void *user);
    void *no_decay_user;
    /* Since 0.2 (read when struct_size covers it). Gradients add up over
     * micro-batches in accumulators (persistent leaves NAME.grad_acc) that the
     * updates read: slm_optim_accumulate runs forward and backward only,
     * slm_optim_apply the updates only. Default false: slm_optim_step runs all. */
    bool accumulate;
} slm_optim_params_t;

void slm_optim_params_default(slm_optim_params_t *p);
/* The usual no_decay rule: one-dimensional tensors (norm gains, biases) do not decay. */
bool slm_optim_no_decay_1d(const slm_tensor_t *param, void *user);
/* The learning rate of the step that follows `step` completed steps under p. */
double slm_optim_lr_at(const slm_optim_params_t *p, int64_t step);

/* After slm_graph_backward: for every PARAM tensor with a gradient (contiguous f32,
 * in creation order), append its moments (persistent leaves named NAME.adam_m and
 * NAME.adam_v for AdamW) and its update node; with clip_norm, first the sum of
 * squares of all gradients, reduced in that order (deterministic). The moments
 * start at zero. Refused (SLM_E_STATE) before the backward pass or when the
 * graph already has updates; SLM_E_INVALID for hyper-parameters out of range. */
slm_optim_t *slm_optim_new(slm_graph_t *g, const slm_optim_params_t *p, slm_error_t *err);
/* The graph is not touched: free it before or after its optimizer. */
void slm_optim_free(slm_optim_t *o);

/* One training step: write the state still held by the optimizer (zero or loaded
 * moments) and this step's inputs into the graph, run it on s (forward, backward,
 * update), count the step. The graph must be allocated on s (slm_sched_alloc).
 * An accumulating optimizer: slm_optim_accumulate with weight 1, then apply. */
int slm_optim_step(slm_optim_t *o, slm_sched_t *s, slm_error_t *err);

/* Accumulating optimizers only. Run the graph up to its updates (forward, backward)
 * and add weight x this micro-batch's gradients into the accumulators; the first
 * call after an apply (or construction) replaces them. With weights summing to 1
 * over a step's micro-batches the update sees their weighted mean gradient (one
 * micro-batch of weight 1 gives exactly the gradient slm_optim_step would use). */
int slm_optim_accumulate(slm_optim_t *o, slm_sched_t *s, float weight, slm_error_t *err);
/* Accumulating optimizers only: the update of every parameter from the accumulated
 * gradients (clipping included), and the step is counted. SLM_E_STATE before any
 * slm_optim_accumulate since the last apply. */
int slm_optim_apply(slm_optim_t *o, slm_sched_t *s, slm_error_t *err);
/* Micro-batches accumulated since the last apply. */
int64_t slm_optim_n_accumulated(const slm_optim_t *o);

/* Steps taken (restored by a load). */
int64_t slm_optim_n_steps(const slm_optim_t *o);
/* The global L2 norm of the gradients before clipping at the last step; -1 when
 * clipping is off (it is not computed then) or before the first step. */
double slm_optim_grad_norm(const slm_optim_t *o);
/* The hyper-parameters in force (after a load, the saved ones); no_decay is NULL. */
void slm_optim_get_params(const slm_optim_t *o, slm_optim_params_t *p);
/* The parameters it updates, in creation order, and whether each decays. */
size_t slm_optim_n_params(const slm_optim_t *o);
slm_tensor_t *slm_optim_param(const slm_optim_t *o, size_t i);
bool slm_optim_param_decays(const slm_optim_t *o, size_t i);

/* The state (kind, hyper-parameters, schedule, step, which parameters decay, and
 * every moment by parameter name) in a safetensors-compatible layout: to a file,
 * atomically (slmops/output.h), or to a malloc'd buffer (*data, free() it) that a
 * checkpoint writer places itself. Every parameter needs a distinct name. */
int slm_optim_save(const slm_optim_t *o, const char *path, slm_error_t *err);
int slm_optim_save_mem(const slm_optim_t *o, void **data, size_t *size, slm_error_t *err);
/* Restore a saved state into an optimizer built the same way (same kind, clipping
 * on or off, parameter names, shapes and decay flags); a mismatch or a damaged file
 * is refused (SLM_E_FORMAT or SLM_E_INVALID, naming the file and the tensor) and
 * leaves o as it was. The saved hyper-parameters, schedule and step replace o's.
 * `name` names the buffer in messages (NULL: "optimizer state"). */
int slm_optim_load(slm_optim_t *o, const char *path, slm_error_t *err);
int slm_optim_load_mem(slm_optim_t *o, const void *data, size_t size, const char *name,
                       slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

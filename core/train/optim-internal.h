/* The optimizer object shared by its files: construction and stepping (optim.c),
 * the learning-rate schedule (schedule.c), the saved state (optim-save.c, optim-load.c). */
#ifndef SLMOPS_TRAIN_OPTIM_INTERNAL_H
#define SLMOPS_TRAIN_OPTIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/optim.h>

#define SLM__OPTIM_MAX_MOMENTS 2

/* What differs between optimizers: one table entry per kind. */
typedef struct slm__optim_kind {
    const char *name;                              /* in saved states: "adamw" */
    int n_moments;                                 /* persistent tensors per parameter */
    const char *moment_suffix[SLM__OPTIM_MAX_MOMENTS];   /* ".adam_m" */
    int64_t n_hyper;                               /* values of the hyper vector */
    /* The hyper vector of step `step` (0: the first) for lr and decay. */
    void (*fill_hyper)(const slm_optim_params_t *p, double lr, bool decay, int64_t step,
                       float *h);
    /* The update node of one parameter from its gradient. */
    slm_tensor_t *(*build)(slm_graph_t *g, slm_tensor_t *param, slm_tensor_t *grad,
                           slm_tensor_t *const *moments, slm_tensor_t *hyper,
                           slm_tensor_t *sumsq);
} slm__optim_kind_t;

typedef struct slm__optim_slot {
    slm_tensor_t *param;
    slm_tensor_t *moment[SLM__OPTIM_MAX_MOMENTS];
    bool decays;
    float *pending[SLM__OPTIM_MAX_MOMENTS];        /* loaded, not yet in the graph */
    slm_tensor_t *acc;                             /* accumulated gradient, or NULL */
} slm__optim_slot_t;

struct slm_optim {
    slm_graph_t *graph;
    slm_optim_params_t params;
    const slm__optim_kind_t *kind;
    slm__optim_slot_t *slots;
    size_t n_slots;
    slm_tensor_t *hyper[2];            /* for parameters that decay, and those that do not */
    slm_tensor_t *sumsq;               /* NULL without clipping */
    /* Accumulation: {keep, weight} of acc = keep * acc + weight * grad, and the
     * first tensor index of the update part (what slm_optim_apply runs). */
    bool accumulate;
    slm_tensor_t *accum_keep, *accum_weight;
    size_t update_from;
    int64_t n_accum;
    int64_t step;
    double grad_norm;
    bool state_pending;                /* the graph does not hold the moments yet */
};

/* The kind named `name`, or NULL. */
const slm__optim_kind_t *slm__optim_kind_by_name(const char *name);
/* NULL when p is valid, else what is wrong (for a message). */
const char *slm__optim_params_check(const slm_optim_params_t *p);
/* Schedule names in saved states ("cosine"), and back (-1 when unknown). */
const char *slm__lr_schedule_name(int schedule);
int slm__lr_schedule_from_name(const char *name);
/* Drop the loaded moments not yet written into the graph. */
void slm__optim_drop_pending(slm_optim_t *o);

/* Saved states: safetensors layout, metadata "format" = SLM__OPTIM_STATE_FORMAT. */
#define SLM__OPTIM_STATE_FORMAT "slmops-optimizer-state"
#define SLM__OPTIM_STATE_VERSION "1"
#define SLM__OPTIM_ENTRY_NAME_MAX 96
/* The saved name of moment m of parameter i: the parameter's name and the suffix. */
void slm__optim_entry_name(const slm_optim_t *o, size_t i, int m, char *buf);
/* Moments are matched by parameter name: every parameter needs a distinct one. */
int slm__optim_check_names(const slm_optim_t *o, const char *what, const char *path,
                           slm_error_t *err);

/* The gradient the updates read of param (its accumulator when accumulating), or
 * NULL when param is none of o's. */
slm_tensor_t *slm__optim_grad_of(const slm_optim_t *o, const slm_tensor_t *param);

#endif

/* Trainer plugin interface: which parameters train, which extra tensors a method
 * adds (e.g. LoRA A/B), and how its loss is formed; the core builds the graph,
 * differentiates it and runs the optimizer.
 *
 * Interface versions:
 *   1  method names, select_params, loss weighting hook. */
#ifndef SLMOPS_PLUGIN_TRAINER_H
#define SLMOPS_PLUGIN_TRAINER_H

#include <stdbool.h>
#include <slmops/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_TRAINER_IFACE_VERSION 1u

/* A tensor of the base model as a trainer sees it when choosing what trains. */
typedef struct slm_trainer_tensor_info {
    uint32_t struct_size;
    const char *name;          /* canonical name, e.g. "blk.0.attn_q.weight" */
    int32_t type;
    int32_t n_dims;
    int64_t ne[4];
} slm_trainer_tensor_info_t;

typedef struct slm_trainer_iface {
    uint32_t struct_size;
    uint32_t iface_version;
    /* NULL-terminated list of method names this plugin implements ("lora"). */
    const char *const *methods;
    /* Decide whether a base tensor trains directly (full fine-tuning) for `method`. */
    bool (*trains_base_tensor)(const char *method, const slm_trainer_tensor_info_t *t);
    /* Rank of the low-rank adapter to add next to tensor t (0: none). */
    int (*adapter_rank)(const char *method, const slm_trainer_tensor_info_t *t, int requested_rank);
    void *reserved[8];
} slm_trainer_iface_t;

#ifdef __cplusplus
}
#endif
#endif

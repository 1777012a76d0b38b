/* Inside the model runtime: the model's hyper-parameters and weight table, shared
 * by loading (model.c), the forward builder (forward.c), decoding and eval. */
#ifndef SLMOPS_RUNTIME_RUNTIME_H
#define SLMOPS_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include <slmops/model.h>
#include <slmops/ops.h>

/* A weight: its shape and type as stored, and the buffer holding its bytes. */
typedef struct slm__weight {
    const char *name;
    int32_t type;
    int64_t ne[4];
    slm_buffer_t *buf;
} slm__weight_t;

typedef struct slm__layer {
    slm__weight_t *attn_norm, *wq, *wk, *wv, *wqkv, *wo, *bq, *bk, *bv;
    slm__weight_t *ffn_norm, *gate, *up, *down, *gate_up;
} slm__layer_t;

typedef struct slm__hparams {
    char arch[32];
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
    int32_t head_dim, n_rot;
    float rope_base, rope_scale, norm_eps;
    int rope_mode;             /* SLM_ROPE_NORMAL or SLM_ROPE_NEOX */
} slm__hparams_t;

struct slm_model {
    slm_registry_t *reg;
    slm_sched_t *sched;
    slm_model_file_t *owned_file;      /* set when slm_model_load opened it */
    const slm_model_file_t *file;
    slm__hparams_t hp;
    slm__weight_t *weights;
    size_t n_weights;
    slm__weight_t *tok_embd, *out_norm, *output;
    slm__layer_t *layers;
    uint64_t n_params;
    int32_t bos, eos;
    bool add_bos;
    /* Adapters attached for run time (model-adapter.c), NULL until the first. */
    struct slm__model_adapters *adapters;
};

struct slm__adapters;
/* The set of adapters every decode context of m applies (NULL: none), and a number
 * that changes whenever it does (a context's kept graphs are then stale). */
const struct slm__adapters *slm__model_adapters(const slm_model_t *m, uint64_t *gen);
void slm__model_adapters_free(slm_model_t *m);

#endif

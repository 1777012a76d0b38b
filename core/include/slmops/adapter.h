/* LoRA adapters: read from any file a format plugin reads (GGUF adapter, PEFT folder),
 * checked against a base model, built for training, saved, and merged into a base.
 *
 * The container is llama.cpp's GGUF LoRA layout (docs/decisions.md, D27): metadata
 * general.type "adapter", adapter.type "lora", adapter.lora.alpha (f32) and
 * general.architecture; for each adapted weight W (ggml ne [n_in, n_out]) the tensors
 * "W.lora_a" (ne [n_in, rank]: rank rows of n_in) and "W.lora_b" (ne [rank, n_out]),
 * with lora_b's rows in the base's own order (llama's q/k rows as llama.cpp permutes
 * them). A weight's output gains scale * B * (A * x), scale = user scale * alpha /
 * rank (alpha 0: the user scale alone), as llama.cpp applies it. rsLoRA's alpha /
 * sqrt(rank) is kept folded: alpha = rsLoRA alpha * sqrt(rank), with
 * adapter.lora.rslora true so that a PEFT folder says use_rslora again. */
#ifndef SLMOPS_ADAPTER_H
#define SLMOPS_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model-file.h>
#include <slmops/output.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_adapter slm_adapter_t;

/* One adapted weight. a and b are the adapter's own f32 arrays: a trainer may
 * write them in place; they live as long as the adapter. */
typedef struct slm_adapter_target {
    uint32_t struct_size;
    const char *name;      /* the base weight: "blk.3.attn_q.weight" */
    int32_t rank;
    int64_t n_in, n_out;   /* the base weight's ne[0] and ne[1] */
    float *a;              /* rank rows of n_in */
    float *b;              /* n_out rows of rank, in the base's row order */
} slm_adapter_target_t;

/* Read the adapter at `path` (any format a plugin reads; a PEFT folder learns its
 * architecture and head counts from `base`) and check it against the base model's
 * container: the same general.architecture, every target a 2-D weight of the base,
 * lora_a [n_in, r] and lora_b [r, n_out] with one r. Errors name the adapter file,
 * the tensor and the base. Tensors of any type (f16, q8_0, ...) become f32. */
int slm_adapter_load(slm_registry_t *reg, const char *path, const slm_model_file_t *base,
                     slm_adapter_t **out, slm_error_t *err);
void slm_adapter_free(slm_adapter_t *ad);

/* Where it was read from, or NULL for one built in memory. */
const char *slm_adapter_path(const slm_adapter_t *ad);
const char *slm_adapter_arch(const slm_adapter_t *ad);
/* adapter.lora.alpha as llama.cpp reads it (rsLoRA folded in); 0 when the file has none. */
float slm_adapter_alpha(const slm_adapter_t *ad);
bool slm_adapter_rslora(const slm_adapter_t *ad);
/* adapter.lora.dropout (PEFT's lora_dropout), 0 when the file has none. */
float slm_adapter_dropout(const slm_adapter_t *ad);

size_t slm_adapter_n_targets(const slm_adapter_t *ad);
/* Target i (file order); SLM_E_INVALID past the last. */
int slm_adapter_target(const slm_adapter_t *ad, size_t i, slm_adapter_target_t *out);
/* The index of the target adapting base weight `name`, or SLM_E_NOT_FOUND. */
int slm_adapter_find(const slm_adapter_t *ad, const char *name, slm_adapter_target_t *out);
/* The factor target i's B * A gets for a user scale: user_scale * alpha / rank, or
 * user_scale when alpha is 0 (llama.cpp's rule). */
float slm_adapter_scale(const slm_adapter_t *ad, size_t i, float user_scale);

/* ---- adapters for training ---- */

typedef struct slm_adapter_params {
    uint32_t struct_size;
    /* Comma-separated weights to adapt: q k v o gate up down qkv output (the
     * projections of every block, or the output matrix), a GGUF name piece
     * ("attn_q", "ffn_down") or a whole tensor name ("blk.0.attn_q.weight").
     * Each must name at least one 2-D weight of the base. NULL: "q,v" (PEFT's
     * default for Llama models). */
    const char *targets;
    int32_t rank;          /* r (default 8) */
    float alpha;           /* PEFT's lora_alpha (default 8) */
    bool rslora;           /* scale alpha / sqrt(r) instead of alpha / r */
    uint64_t seed;         /* A's initial values */
    float dropout;         /* recorded for the trainer and PEFT (lora_dropout); 0 */
} slm_adapter_params_t;

void slm_adapter_params_default(slm_adapter_params_t *p);
/* A new adapter for `base`, initialised as PEFT does: A Kaiming-uniform as
 * torch.nn.init.kaiming_uniform_(a=sqrt(5)) draws it (uniform in +-1/sqrt(n_in)),
 * from `seed` with one stream per target named by its weight (the same seed gives
 * a weight the same bits on every machine, whatever else is adapted), and B zero.
 * Targets follow the base's tensor order. */
int slm_adapter_new(const slm_model_file_t *base, const slm_adapter_params_t *p,
                    slm_adapter_t **out, slm_error_t *err);

/* ---- saving ---- */

/* The adapter as a container (the layout above, plus adapter.lora.rank when every
 * target has one rank, adapter.lora.rslora, adapter.lora.dropout when not 0, and
 * the base's architecture and head counts, which PEFT's q/k row order needs). Its
 * tensors borrow the adapter's arrays: free it before the adapter. A trainer may
 * add its own keys. */
int slm_adapter_to_model_file(const slm_adapter_t *ad, slm_model_file_t **out, slm_error_t *err);
/* Write it atomically through slm_model_file_save_output: format NULL picks the
 * writer by OUT's extension (".gguf": llama.cpp's GGUF adapter); name
 * "format-safetensors" for a PEFT folder (adapter_config.json and
 * adapter_model.safetensors). out may be NULL. */
int slm_adapter_save(const slm_adapter_t *ad, slm_registry_t *reg, const char *path,
                     const char *format, const slm_output_params_t *out, slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

/* The Llama-family model runtime: a model (hyper-parameters and weights on a device,
 * loaded from any model file) and contexts that decode batches of token ids with a
 * KV cache, llama.cpp-style. Text <-> ids is slmops/tokenizer.h's job.
 *
 * Architectures (general.architecture): llama (llama, llama-2, llama-3, mistral-style
 * GQA), mistral, qwen2 (q/k/v biases, NeoX rope), phi3 (fused qkv and gate+up). */
#ifndef SLMOPS_MODEL_H
#define SLMOPS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model-file.h>
#include <slmops/registry.h>
#include <slmops/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_model slm_model_t;
typedef struct slm_context slm_context_t;

typedef struct slm_model_params {
    uint32_t struct_size;
    const char *device;        /* slm_device_open spec; NULL: $SLMOPS_DEVICE or "auto" */
    int32_t n_threads;         /* <= 0: the backend's default */
    /* SLM_DEVICE_* (SLM_DEVICE_REPACK: servers). 64 bits so that the struct grows
     * and struct_size tells callers built before it apart. */
    uint64_t device_flags;
} slm_model_params_t;

void slm_model_params_default(slm_model_params_t *p);

/* Open `path` with slm_model_file_open (any format plugin) and load it; the model
 * owns the container, whose mapping may back the weights. */
int slm_model_load(slm_registry_t *reg, const char *path, const slm_model_params_t *p,
                   slm_model_t **out, slm_error_t *err);
/* Load from a container the caller keeps alive (and unchanged) until slm_model_free. */
int slm_model_from_file(slm_registry_t *reg, const slm_model_file_t *mf,
                        const slm_model_params_t *p, slm_model_t **out, slm_error_t *err);
/* Free the model; its contexts must be freed first. */
void slm_model_free(slm_model_t *m);

/* The container the model was loaded from (e.g. to build its tokenizer). */
const slm_model_file_t *slm_model_container(const slm_model_t *m);
/* The scheduler that owns the model's weights and runs its contexts. */
slm_sched_t *slm_model_sched(const slm_model_t *m);

/* ---- LoRA adapters applied at run time (unmerged) ----
 *
 * An attached adapter's factors live beside the weights, in f32 on the model's
 * device; every weight W it targets then computes W·x + s·B·(A·x) in every graph
 * the model's decode contexts build, with s = slm_adapter_scale(ad, i, user_scale)
 * (llama.cpp's user scale × alpha / rank). Several adapters add their terms, each
 * with its own scale; a scale of 0 leaves the weight's product as it was. Attach
 * before decoding: a context's next decode rebuilds its graphs, but its KV cache
 * keeps what earlier decodes computed (docs/decisions.md, D28). */
typedef struct slm_adapter slm_adapter_t;

/* Check ad against the model (architecture, every target a weight the model
 * multiplies by, shapes) and copy its factors to the model's device; ad may be
 * freed afterwards. Returns the adapter's id (0, 1, ... in attach order) or a
 * negative error, the model unchanged; messages name the adapter's file. */
int slm_model_attach_adapter(slm_model_t *m, const slm_adapter_t *ad, float user_scale,
                             slm_error_t *err);
/* slm_adapter_load (a GGUF adapter or a PEFT folder, checked against the model's
 * container) then slm_model_attach_adapter. */
int slm_model_load_adapter(slm_model_t *m, const char *path, float user_scale,
                           slm_error_t *err);
size_t slm_model_n_adapters(const slm_model_t *m);

/* Hyper-parameters. */
const char *slm_model_arch(const slm_model_t *m);      /* general.architecture */
int32_t slm_model_n_vocab(const slm_model_t *m);
int32_t slm_model_n_embd(const slm_model_t *m);
int32_t slm_model_n_layer(const slm_model_t *m);
int32_t slm_model_n_head(const slm_model_t *m);
int32_t slm_model_n_head_kv(const slm_model_t *m);
int32_t slm_model_n_ff(const slm_model_t *m);
int32_t slm_model_n_ctx_train(const slm_model_t *m);
float slm_model_rope_freq_base(const slm_model_t *m);
/* Elements in every weight tensor. */
uint64_t slm_model_n_params(const slm_model_t *m);
/* tokenizer.ggml.bos_token_id / eos_token_id, or -1; whether a BOS starts a text. */
int32_t slm_model_token_bos(const slm_model_t *m);
int32_t slm_model_token_eos(const slm_model_t *m);
bool slm_model_add_bos(const slm_model_t *m);

typedef struct slm_context_params {
    uint32_t struct_size;
    uint32_t n_ctx;            /* KV cells shared by all sequences; 0: n_ctx_train (<= 4096) */
    uint32_t n_batch;          /* most tokens one graph processes; 0: 512 */
    uint32_t n_seq;            /* distinct sequence ids, 0 .. n_seq-1; 0: 1 */
    int32_t type_kv;           /* SLM_TYPE_F16 (default) or SLM_TYPE_F32 */
    uint32_t flags;            /* SLM_CONTEXT_* */
} slm_context_params_t;

enum {
    /* Decode keeps each asked-for token's final hidden state (after the output norm,
     * n_embd floats: slm_context_embeddings) instead of its logits. */
    SLM_CONTEXT_EMBEDDINGS = 1u << 0
};

void slm_context_params_default(slm_context_params_t *p);

int slm_context_new(slm_model_t *m, const slm_context_params_t *p, slm_context_t **out,
                    slm_error_t *err);
void slm_context_free(slm_context_t *ctx);
uint32_t slm_context_n_ctx(const slm_context_t *ctx);

/* A batch of tokens, each with its position and sequence. Any size: the context
 * splits it into graphs of at most n_batch tokens. */
typedef struct slm_batch {
    uint32_t struct_size;
    int32_t n_tokens;
    const int32_t *token;
    const int32_t *pos;        /* NULL: each token continues its sequence */
    const int32_t *seq_id;     /* NULL: every token is in sequence 0 */
    const int8_t *logits;      /* nonzero: keep this token's logits; NULL: the last only */
} slm_batch_t;

/* Run the batch: the tokens' keys and values enter the cache, and the logits asked
 * for are kept until the next decode. SLM_E_NOMEM when the cache has no room. */
int slm_context_decode(slm_context_t *ctx, const slm_batch_t *batch, slm_error_t *err);
/* n_vocab logits of token i of the last batch (-1: its last token), or NULL when
 * they were not asked for. */
const float *slm_context_logits(const slm_context_t *ctx, int32_t i);
/* With SLM_CONTEXT_EMBEDDINGS: n_embd floats, token i's final hidden state (-1: the
 * last token), or NULL when it was not asked for. */
const float *slm_context_embeddings(const slm_context_t *ctx, int32_t i);
/* From the next decode on, sequence seq_id applies exactly these attached adapters
 * (ids of slm_model_attach_adapter, below 64; n 0: none, the base model) instead
 * of every attached one, the default; sequences with different sets may share a
 * batch. SLM_E_INVALID for a bad id. */
int slm_context_seq_adapters(slm_context_t *ctx, int32_t seq_id, const int32_t *ids, size_t n,
                             slm_error_t *err);
/* Forget a sequence's cells (-1: every sequence). */
void slm_context_seq_clear(slm_context_t *ctx, int32_t seq_id);
/* Forget a sequence's cells from position pos on (the next token goes to pos);
 * a pos at or past its length changes nothing. */
void slm_context_seq_truncate(slm_context_t *ctx, int32_t seq_id, int32_t pos);
/* Next position of a sequence (its length so far), or -1 for a bad id. */
int32_t slm_context_seq_pos(const slm_context_t *ctx, int32_t seq_id);

#ifdef __cplusplus
}
#endif
#endif

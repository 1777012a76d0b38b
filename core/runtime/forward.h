/* The one builder of the model's forward graph, shared by decode, perplexity, training
 * and distillation, with its two seams: memory (where K/V come from) and linear (adapters). */
#ifndef SLMOPS_RUNTIME_FORWARD_H
#define SLMOPS_RUNTIME_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slmops/graph.h>

#include "runtime/runtime.h"

/* ---- the linear seam: adapters ---- */

/* One adapter's low-rank factors on one base weight W [in, out]: the weight's matmul
 * becomes W·x + scale·B·(A·x). A is [in, r] and B is [r, out] (ne order: PEFT's r×in
 * lora_A and out×r lora_B); their bytes live in buffers their owner keeps alive. */
typedef struct slm__lora {
    slm__weight_t a, b;
    float scale;               /* the user's scale × alpha / r (or alpha / √r) */
    float dropout;             /* PEFT's lora_dropout on the input of A, when training */
    bool trainable;            /* A and B enter graphs as PARAM leaves */
    uint32_t adapter;          /* which adapter of the set: per-sequence selection, later */
    struct slm__lora *next;    /* the next adapter on the same weight */
} slm__lora_t;

/* The adapters active on one model: per weight (its index in model->weights) a list,
 * applied in the order attached. Built once, read by every graph built with it. */
typedef struct slm__adapters {
    const slm_model_t *m;
    slm__lora_t **on;          /* n_weights list heads */
    size_t n_weights;
    size_t n_loras;
    /* Base weights that train themselves (full fine-tuning): one PARAM leaf per
     * weight per graph, however often the graph reads it (tied embeddings). */
    bool *trains;              /* n_weights flags, NULL when none trains */
    size_t n_trains;
    uint32_t n_adapters;       /* 1 + the largest slm__lora_t.adapter */
} slm__adapters_t;

/* Most adapters a batch may select among per row (a sequence's set is a bit mask). */
#define SLM__MAX_ROW_ADAPTERS 64

slm__adapters_t *slm__adapters_new(const slm_model_t *m, slm_error_t *err);
void slm__adapters_free(slm__adapters_t *ad);
/* Attach factors to weight w of ad's model, checking their shapes against it. */
int slm__adapters_attach(slm__adapters_t *ad, const slm__weight_t *w, const slm__lora_t *lora,
                         slm_error_t *err);
/* Base weight w trains (f32, in a buffer its owner may update in place). */
int slm__adapters_train_base(slm__adapters_t *ad, const slm__weight_t *w, slm_error_t *err);
bool slm__adapters_trains(const slm__adapters_t *ad, const slm__weight_t *w);
/* The adapters on w, or NULL (also for a NULL set). */
const slm__lora_t *slm__adapters_on(const slm__adapters_t *ad, const slm__weight_t *w);
/* Every graph a decode context builds from now on applies ad (NULL: none) instead
 * of the model's attached adapters; kept graphs are dropped. ad must outlive its
 * use by the context. */
void slm__context_set_adapters(slm_context_t *c, const slm__adapters_t *ad);
/* A weight of the model by its name (blk.0.attn_q.weight), or NULL. */
const slm__weight_t *slm__model_weight(const slm_model_t *m, const char *name);

/* ---- the memory seam ---- */

typedef struct slm__fwd slm__fwd_t;

/* Where each layer's attention finds its keys and values. Implementations: the
 * KV cache (kv-cache.c) and whole-sequence attention (forward-seq.c). */
typedef struct slm__memory {
    /* The additive attention mask input, f32 [n_kv, T, 1, B] (0 or -inf); made once,
     * before the first layer. */
    slm_tensor_t *(*mask)(void *self, slm__fwd_t *f);
    /* Layer il: from the batch's roped k [hd, Hkv, N] and v [Hkv·hd, N], the K
     * [hd, n_kv, Hkv, B] and V [n_kv, hd, Hkv, B] its queries attend over (with
     * v_rows: V [hd, n_kv, Hkv], a row per cell like K). */
    void (*kv)(void *self, slm__fwd_t *f, int il, slm_tensor_t *k, slm_tensor_t *v,
               slm_tensor_t **K, slm_tensor_t **V);
    void *self;
    /* V comes as rows and attention is the fused op (slm_attn): the device runs it,
     * and it reads only the cells each query sees (D53). B is 1 then. */
    bool v_rows;
} slm__memory_t;

/* The state of one build, seen by the memory while it runs. */
struct slm__fwd {
    const slm_model_t *m;
    slm_graph_t *g;
    int64_t T, B, N;           /* tokens per row, rows, T·B */
    const slm__adapters_t *ad;
    slm__memory_t *mem;
    slm_tensor_t *pos, *mask;
    slm_tensor_t **row_masks;  /* per adapter f32 [1, N]: 1 on its rows, 0 elsewhere; or NULL */
    slm_error_t *err;
    int rc;                    /* first failure outside the graph (bindings) */
    slm_tensor_t **train_leaf; /* per weight: its PARAM leaf once made (ad->trains) */
    const struct slm__fwd_params *p;
};

/* ---- building ---- */

typedef struct slm__fwd_params {
    int64_t n_tokens;          /* T */
    int64_t n_rows;            /* B: rows of T tokens each (decode: 1) */
    /* Rows kept at the end: N (all), fewer (picked by the out_ids input), or 0: no
     * head at all, the last layer's output ends the graph (the memory's writes are
     * what the run is for). */
    int64_t n_out;
    bool hidden;               /* end at the final norm: hidden states, not logits */
    const slm__adapters_t *adapters;   /* NULL: none, the plain graph */
    /* Each adapter's update only on the rows its mask input selects (the base
     * product still runs once for all of them): rows of different sequences may
     * use different adapters in one batch. */
    bool row_adapters;
    slm__memory_t *mem;
    /* Training: called for each trainable adapter with dropout, with its mask input
     * (f32 [in, N], to fill with 0 or 1 / (1 - p) before each run), which multiplies
     * the input of A. NULL: no dropout (evaluation). */
    void (*on_dropout)(void *user, slm_tensor_t *mask, const slm__lora_t *lora);
    void *hook_user;
} slm__fwd_params_t;

/* The handles a run needs. */
typedef struct slm__fwd_graph {
    slm_tensor_t *tokens;      /* i32 [N], INPUT */
    slm_tensor_t *pos;         /* i32 [N], INPUT */
    slm_tensor_t *mask;        /* the memory's mask, INPUT */
    slm_tensor_t *out_ids;     /* i32 [n_out] INPUT when 0 < n_out < N, else NULL */
    /* With row_adapters: f32 [1, N] INPUT per adapter id (n_row_masks of them). */
    slm_tensor_t *row_masks[SLM__MAX_ROW_ADAPTERS];
    uint32_t n_row_masks;
    slm_tensor_t *out;         /* OUTPUT: logits [V, n_out], hidden [E, n_out], or [E, N] */
} slm__fwd_graph_t;

/* Tensors a forward graph of m may hold (its graph's max_tensors), adapters included. */
size_t slm__forward_graph_size(const slm_model_t *m, const slm__adapters_t *ad);
/* Build the forward pass of m into g; the memory decides where K/V live. */
int slm__forward_build(const slm_model_t *m, slm_graph_t *g, const slm__fwd_params_t *p,
                       slm__fwd_graph_t *out, slm_error_t *err);

/* ---- training mode: whole sequences, no KV cache ---- */

enum {
    SLM__SEQ_HIDDEN = 1u << 0, /* final-norm hidden states [E, ·] instead of logits [V, ·] */
    SLM__SEQ_LAST = 1u << 1    /* only each row's last position: [·, B] instead of [·, N] */
};

typedef struct slm__seq_graph {
    slm__fwd_graph_t fwd;
    int64_t T, B;
    int32_t n_vocab;
} slm__seq_graph_t;

/* The forward pass over B rows of T tokens, every position's logits (or hidden
 * states, or only the last position's: flags), differentiable: attention is causal within each row and, with document
 * ids, never crosses documents. */
int slm__forward_sequences(const slm_model_t *m, slm_graph_t *g, int64_t T, int64_t B,
                           const slm__adapters_t *ad, unsigned flags, slm__seq_graph_t *out,
                           slm_error_t *err);
/* The same for a training step: adapter dropout masks through on_dropout (see
 * slm__fwd_params_t; NULL: none). */
int slm__forward_sequences_train(const slm_model_t *m, slm_graph_t *g, int64_t T, int64_t B,
                                 const slm__adapters_t *ad, unsigned flags,
                                 void (*on_dropout)(void *user, slm_tensor_t *mask,
                                                    const slm__lora_t *lora),
                                 void *hook_user, slm__seq_graph_t *out, slm_error_t *err);
/* After slm_sched_alloc: tokens [B·T] (row-major, a row's T tokens together) and
 * doc_ids [B·T] or NULL (each row one document). A document is the tokens of a row
 * sharing an id: they see only each other, positions count from 0 within it. A
 * negative id is padding: it sees only itself. */
int slm__forward_sequences_feed(const slm__seq_graph_t *s, const int32_t *tokens,
                                const int32_t *doc_ids, slm_error_t *err);

/* ---- loss ---- */

/* Mean cross-entropy of logits [V, N] over the rows that have a target. */
typedef struct slm__xent {
    slm_tensor_t *targets;     /* f32 [V, N] one-hot rows (zero rows: not scored), INPUT */
    slm_tensor_t *keep;        /* f32 [1, N]: 1 scored, 0 not, INPUT */
    slm_tensor_t *norm;        /* f32 [1]: N / rows scored (0 when none), INPUT */
    slm_tensor_t *loss;        /* f32 [1], OUTPUT */
    int64_t V, N;
} slm__xent_t;

int slm__xent_build(slm_graph_t *g, slm_tensor_t *logits, slm__xent_t *out, slm_error_t *err);
/* targets [N]: the id each row predicts, -1 for a row not scored. Returns the number of
 * rows scored, or a negative error. */
int64_t slm__xent_feed(const slm__xent_t *x, const int32_t *targets, slm_error_t *err);

#endif

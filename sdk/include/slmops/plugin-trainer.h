/* Trainer plugin interface: a training method (full, LoRA, QLoRA, ...) as the
 * core's training job sees it. The plugin chooses what trains and how it starts,
 * may add loss terms, and says what to save; the core builds the forward graph,
 * differentiates it, runs the optimizer and writes the files.
 *
 * Interface versions (SLM_TRAINER_IFACE_VERSION):
 *   1  method names, trains_base_tensor, adapter_rank. No host ever called the two
 *      slots; a version-1 trainer loads and is listed, but trains nothing.
 *   2  method_table (taken from `reserved`; slm_trainer_iface_t keeps its size):
 *      per method its options, prepare (trainable parameters, adapters, frozen
 *      storage types, initial values), add_loss (extra loss terms with weights),
 *      finish (what to save: the model, or adapter tensors under their PEFT and
 *      GGUF names) and release; slm_trainer_tensor_info_t gains hf_name and layer.
 *      The slots of version 1 are left NULL in version 2 and never called.
 *
 * Negotiation (docs/plugin-authoring.md, P19): fill iface_version with the highest
 * version you speak that is <= host->iface_version(SLM_PLUGIN_KIND_TRAINER) (or
 * your own highest when that slot is NULL); a host refuses a newer one, and reads
 * an older one by its struct_size.
 *
 * Shapes use ne[0] as the innermost dimension, as <slmops/ops.h> does: a weight
 * Hugging Face stores as [out, in] has ne = {in, out}. Every struct starts with
 * struct_size; either side reads only the fields inside the other's size. Lists
 * are NULL-terminated arrays of pointers, so that their elements can grow. */
#ifndef SLMOPS_PLUGIN_TRAINER_H
#define SLMOPS_PLUGIN_TRAINER_H

#include <stdbool.h>
#include <slmops/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_TRAINER_IFACE_VERSION 2u

/* A tensor of the base model as a trainer sees it. */
typedef struct slm_trainer_tensor_info {
    uint32_t struct_size;
    const char *name;          /* canonical name, e.g. "blk.0.attn_q.weight" */
    int32_t type;              /* slm_type_t as stored; host->type_name() names it */
    int32_t n_dims;
    int64_t ne[4];
    /* Version 2. */
    const char *hf_name;       /* "model.layers.0.self_attn.q_proj.weight", or NULL when the
                                * architecture has no Hugging Face name for it */
    int32_t layer;             /* block index, -1 outside the blocks */
    int32_t reserved0;
} slm_trainer_tensor_info_t;

/* ---- Version 2: what the host lends to prepare ---- */

/* The base model, read-only. Valid until prepare returns. */
typedef struct slm_trainer_model {
    uint32_t struct_size;
    void *ctx;
    const char *arch;          /* architecture name: "llama", "qwen2", ... */
    size_t n_tensors;
    /* Tensor i, 0 <= i < n_tensors, in the model file's order. */
    const slm_trainer_tensor_info_t *(*tensor)(void *ctx, size_t i);
    /* Tensor by canonical name, or NULL. */
    const slm_trainer_tensor_info_t *(*find)(void *ctx, const char *name);
    /* Rows [row0, row0 + n_rows) of tensor `name` (ne[1] counts rows), dequantized to
     * n_rows * ne[0] floats in dst. For initialisations that read weights. */
    int (*read_rows)(void *ctx, const char *name, int64_t row0, int64_t n_rows, float *dst);
    /* A numeric hyper-parameter by the name GGUF gives it after "ARCH."
     * ("embedding_length", "block_count", "attention.head_count"): 0 and *value,
     * or SLM_E_NOT_FOUND. */
    int (*hparam)(void *ctx, const char *key, double *value);
    void *reserved[8];
} slm_trainer_model_t;

/* Types of a method's options (slm_trainer_option_t.type). */
typedef enum slm_trainer_option_type {
    SLM_TRAINER_OPT_INT = 1,       /* a JSON integer, within [min, max] */
    SLM_TRAINER_OPT_FLOAT = 2,     /* a JSON number, within [min, max] */
    SLM_TRAINER_OPT_BOOL = 3,      /* true or false */
    SLM_TRAINER_OPT_STRING = 4,    /* a string */
    SLM_TRAINER_OPT_STRINGS = 5    /* a list of strings, or one string "q,k,v" split at commas */
} slm_trainer_option_type_t;

/* One setting a method accepts, declared so that the host can check what the user
 * gave and list every knob (as libfabric providers declare their tunables). */
typedef struct slm_trainer_option {
    uint32_t struct_size;
    int32_t type;              /* slm_trainer_option_type_t */
    const char *name;          /* "rank": [a-z0-9_]+ */
    const char *default_json;  /* the default as JSON text ("16", "[\"q\",\"v\"]"), or NULL:
                                * absent unless the user gives it */
    double min, max;           /* INT and FLOAT: the accepted range, inclusive */
    const char *description;   /* one line for help output */
    void *reserved[4];
} slm_trainer_option_t;

/* The user's settings for one method, checked by the host against the method's
 * options before prepare: an unknown key, a wrong type or a value out of range
 * never reaches the plugin. Getters return 1 (set by the user or by the default),
 * 0 (absent) or SLM_E_INVALID (an undeclared name, or the getter of another
 * type). Strings stay valid until prepare returns. */
typedef struct slm_trainer_options {
    uint32_t struct_size;
    void *ctx;
    const char *json;          /* the settings as given, a compact JSON object ("{}": none) */
    int (*get_int)(void *ctx, const char *name, int64_t *value);
    int (*get_float)(void *ctx, const char *name, double *value);
    int (*get_bool)(void *ctx, const char *name, bool *value);
    int (*get_string)(void *ctx, const char *name, const char **value);
    int (*get_strings)(void *ctx, const char *name, const char *const **values, size_t *n);
    void *reserved[8];
} slm_trainer_options_t;

/* slm_trainer_plan_t flags of a trainable tensor. */
#define SLM_TRAINER_PARAM_NO_DECAY 0x1u   /* the optimizer skips weight decay (norms, biases) */

/* A low-rank adapter on one base weight W (ne = {in, out}), as PEFT's LoRA:
 *   y = W x + scale * B (A dropout(x))
 * A and B are parameters declared with plan->new_param: A with ne = {in, rank}
 * (PEFT's lora_A.weight, r x in), B with ne = {rank, out} (lora_B.weight, out x r).
 * PEFT initialises A Kaiming-uniform (kaiming_uniform_ with a = sqrt(5), so
 * U(-1/sqrt(in), 1/sqrt(in))) and B with zeros, so training starts at W. */
typedef struct slm_trainer_adapter {
    uint32_t struct_size;
    const char *target;        /* canonical name of W */
    const char *a;             /* parameter name of A */
    const char *b;             /* parameter name of B */
    int32_t rank;
    float scale;               /* alpha / rank; rsLoRA: alpha / sqrt(rank) */
    float dropout;             /* probability, on the adapter's input, while training only */
    void *reserved[4];
} slm_trainer_adapter_t;

/* What prepare declares. Names are copied; a failing call returns a negative
 * slm_status_t and the host has recorded why: return it from prepare. */
typedef struct slm_trainer_plan {
    uint32_t struct_size;
    void *ctx;
    /* Base weight `name` trains itself (full fine-tuning): f32 master weights, a
     * gradient and optimizer state. Every other base weight stays frozen. */
    int (*train_base)(void *ctx, const char *name, uint32_t flags);
    /* Keep frozen base weight `name` in memory as `type` ("nf4", "q4_0", "f16": a
     * type the core or a quantizer plugin registers), quantized once at load if it
     * is stored otherwise (QLoRA). Default: as stored. */
    int (*freeze_as)(void *ctx, const char *name, const char *type);
    /* A new trainable f32 tensor (an adapter factor, a distillation projection).
     * *init receives a zeroed buffer of its elements, to fill before prepare
     * returns with the tensor's initial value. */
    int (*new_param)(void *ctx, const char *name, int32_t n_dims, const int64_t *ne,
                     uint32_t flags, float **init);
    /* Attach a low-rank adapter; its A and B must have been declared. */
    int (*add_adapter)(void *ctx, const slm_trainer_adapter_t *adapter);
    /* n floats uniform in [lo, hi) from the job's seeded random stream: the same
     * seed gives the same initial values. Never use rand() or the clock. */
    int (*uniform)(void *ctx, float *dst, size_t n, float lo, float hi);
    /* n floats normal(mean, std) from the same stream. */
    int (*normal)(void *ctx, float *dst, size_t n, float mean, float std);
    void *reserved[8];
} slm_trainer_plan_t;

/* ---- Version 2: what the host lends to add_loss ---- */

/* A tensor of the training graph; only the host looks inside. */
typedef struct slm_trainer_node slm_trainer_node_t;

/* Names of the tensors graph->input offers (a job may offer more); n_tokens counts
 * every token of the micro-batch. */
#define SLM_TRAINER_IN_LOGITS "logits"        /* f32 [n_vocab, n_tokens]: the model's output */
#define SLM_TRAINER_IN_HIDDEN "hidden"        /* f32 [n_embd, n_tokens]: the final norm's output */
#define SLM_TRAINER_IN_TARGETS "targets"      /* f32 [n_vocab, n_tokens]: one-hot next tokens,
                                               * zero columns where no loss is taken */
#define SLM_TRAINER_IN_LOSS_MASK "loss_mask"  /* f32 [n_tokens]: 1 where the loss counts, else 0 */
/* f32 [n_vocab, n_tokens]: the teacher's logits, in distillation jobs (a train job
 * with a teacher). With the job's teacher_top_k = k, each column keeps its k largest
 * logits and every other entry is the k-th largest minus 30 (finite, so that log
 * probabilities stay finite; e^-30 of the mass each). */
#define SLM_TRAINER_IN_TEACHER_LOGITS "teacher_logits"
/* f32 [1]: n_tokens / the tokens where the loss counts (0 when none): multiplies a
 * mean over all n_tokens into a mean over the counted ones. */
#define SLM_TRAINER_IN_LOSS_NORM "loss_norm"

/* Building loss terms on the training graph after the forward pass. Nodes are
 * differentiated by the host; a failing call returns NULL (or a negative status)
 * and the host has recorded why. */
typedef struct slm_trainer_graph {
    uint32_t struct_size;
    void *ctx;
    /* A tensor the job offers (SLM_TRAINER_IN_*), or NULL when this job has none. */
    slm_trainer_node_t *(*input)(void *ctx, const char *name);
    /* A parameter declared by prepare (plan->new_param), or NULL. */
    slm_trainer_node_t *(*param)(void *ctx, const char *name);
    /* The node's type and shape (name is NULL). */
    int (*info)(void *ctx, const slm_trainer_node_t *node, slm_trainer_tensor_info_t *info);
    /* A new node: forward op `op` (slm_op_t, <slmops/ops.h>) of src[0..n_src-1] with
     * ip/fp as documented next to the op. Backward and optimizer ops are refused. */
    slm_trainer_node_t *(*op)(void *ctx, int32_t op, const slm_trainer_node_t *const *src,
                              int32_t n_src, const int64_t *ip, int32_t n_ip, const float *fp,
                              int32_t n_fp);
    /* Views that copy nothing, as slm_reshape/slm_view/slm_permute. */
    slm_trainer_node_t *(*reshape)(void *ctx, slm_trainer_node_t *node, int32_t n_dims,
                                   const int64_t *ne);
    slm_trainer_node_t *(*view)(void *ctx, slm_trainer_node_t *node, int32_t n_dims,
                                const int64_t *ne, const int64_t *nb, uint64_t offset);
    slm_trainer_node_t *(*permute)(void *ctx, slm_trainer_node_t *node, int32_t ax0,
                                   int32_t ax1, int32_t ax2, int32_t ax3);
    /* A constant f32 tensor holding a copy of data. */
    slm_trainer_node_t *(*constant)(void *ctx, int32_t n_dims, const int64_t *ne,
                                    const float *data);
    /* Add weight * value (an f32 node of one element) to the loss, reported under
     * `name` ("kd") in the job's progress and report. */
    int (*add_term)(void *ctx, const char *name, slm_trainer_node_t *value, float weight);
    /* Weight of the host's own language-model loss (cross-entropy on the targets),
     * reported as "lm": 1 unless set; 0 leaves it out. */
    int (*lm_weight)(void *ctx, float weight);
    void *reserved[8];
} slm_trainer_graph_t;

/* ---- Version 2: what the host lends to finish ---- */

typedef struct slm_trainer_save {
    uint32_t struct_size;
    void *ctx;
    /* Save the whole model, trained base weights included, in the format the user
     * asked for (full fine-tuning). */
    int (*model)(void *ctx);
    /* Save trained parameter `param` in the adapter outputs: as `peft_name` in a
     * PEFT folder and as `gguf_name` in a llama.cpp adapter GGUF (NULL: not in that
     * form). `rows_of` names the base weight whose output rows the tensor's rows
     * are (LoRA's B: its target), so the host reorders them as it reorders that
     * weight's rows for each form (llama.cpp permutes Q and K); NULL: none. */
    int (*tensor)(void *ctx, const char *param, const char *rows_of, const char *peft_name,
                  const char *gguf_name);
    /* Adapter metadata, a JSON object: "peft" holds adapter_config.json's members
     * ({"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": [...]}),
     * "gguf" the adapter GGUF's keys ({"adapter.type": "lora", "adapter.lora.alpha": 32}). */
    int (*adapter_config)(void *ctx, const char *json);
    void *reserved[8];
} slm_trainer_save_t;

/* ---- Version 2: one method ---- */

typedef struct slm_trainer_method {
    uint32_t struct_size;
    const char *name;          /* as the manifest's provides.methods names it */
    /* The settings it accepts (NULL-terminated; NULL: none). */
    const slm_trainer_option_t *const *options;
    /* Choose what trains, from the model and the checked settings: call plan's
     * slots, then return 0 and in *state whatever add_loss and finish need (or
     * NULL). On failure fill err (when err->struct_size covers it) and return a
     * negative slm_status_t. A resumed job calls prepare again with the same seed
     * and then overwrites every parameter from the checkpoint, so prepare must
     * depend only on its arguments. */
    int (*prepare)(const slm_trainer_model_t *model, const slm_trainer_options_t *options,
                   const slm_trainer_plan_t *plan, void **state, slm_error_t *err);
    /* Optional. Add loss terms (knowledge distillation's KL term) once per graph
     * the job builds. NULL: the loss is the host's language-model loss alone. */
    int (*add_loss)(void *state, const slm_trainer_graph_t *graph, slm_error_t *err);
    /* Say what to save, through save's slots, once training ends (and at each
     * checkpoint a job exports). */
    int (*finish)(void *state, const slm_trainer_save_t *save, slm_error_t *err);
    /* Optional. Free the state prepare returned. */
    void (*release)(void *state);
    void *reserved[8];
} slm_trainer_method_t;

typedef struct slm_trainer_iface {
    uint32_t struct_size;
    uint32_t iface_version;
    /* NULL-terminated method names, exactly the manifest's provides.methods; in
     * version 2 the names of method_table, in its order. */
    const char *const *methods;
    /* Version 1 only (NULL in version 2): whether a base tensor trains directly. */
    bool (*trains_base_tensor)(const char *method, const slm_trainer_tensor_info_t *t);
    /* Version 1 only (NULL in version 2): rank of an adapter on t (0: none). */
    int (*adapter_rank)(const char *method, const slm_trainer_tensor_info_t *t, int requested_rank);
    /* Version 2: one entry per name of `methods`, NULL-terminated. */
    const slm_trainer_method_t *const *method_table;
    void *reserved[7];
} slm_trainer_iface_t;

#ifdef __cplusplus
}
#endif
#endif

/* Inside the train job: its settings, what the trainer plugin planned (trainable
 * tensors, adapters, frozen types), the graphs, and the state a checkpoint keeps. */
#ifndef SLMOPS_JOBS_TRAIN_H
#define SLMOPS_JOBS_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <slmops/adapter.h>
#include <slmops/chat.h>
#include <slmops/comm.h>
#include <slmops/dataset.h>
#include <slmops/optim.h>
#include <slmops/plugin-trainer.h>
#include <slmops/tokenizer.h>

#include "internal/trainer.h"
#include "jobs/kind.h"
#include "runtime/forward.h"

/* The settings of one run (kind-train.c reads them from the job's options). */
typedef struct slm__train_opts {
    const char *model, *data, *val_data, *method, *output, *output_gguf, *format;
    const char *log, *checkpoints, *resume, *device;
    const char *dump_grads;    /* write the first batch's gradients there and stop */
    const char *teacher;       /* distillation: the teacher model (teacher_logits) */
    int64_t teacher_top_k;     /* its logits kept per position; 0: all */
    const char *teacher_cache; /* a folder: the top-k logits kept on disk (train-tcache.c) */
    const char *chat_template; /* a built-in name or template text, for {"messages"} */
    char *method_json;         /* the method's settings, compact JSON ("{}": none); owned */
    char **adapters;           /* frozen adapters attached under the trained one; owned */
    float *adapter_scales;
    size_t n_adapters;
    double val_split;
    int32_t ctx, batch, accum, threads, val_batches;
    int64_t epochs, steps, warmup, eval_every, save_every;
    uint32_t keep;
    float lr, beta1, beta2, eps, weight_decay, clip, min_lr_ratio, lm_weight;
    int32_t schedule;          /* slm_lr_schedule_t */
    uint64_t seed;
    bool skip_bad_lines;
    char *checkpoints_default; /* OUT.checkpoints when no root is given; owned */
} slm__train_opts_t;

/* A trainable tensor: a base weight trained in f32, or a parameter the method added. */
typedef struct slm__tparam {
    char *name;
    int32_t n_dims;
    int64_t ne[4];
    uint32_t flags;            /* SLM_TRAINER_PARAM_* */
    slm__weight_t *base;       /* the model's weight it is, or NULL for a new one */
    float *init;               /* a new one's initial values, until placed */
    slm__weight_t w;           /* a new one's storage, as the linear seam reads it */
    uint64_t stream;           /* its random stream (plan->uniform into init) */
    bool stream_started;
} slm__tparam_t;

/* A LoRA adapter the method attached: params[a] and params[b] on `target`. */
typedef struct slm__tadapter {
    char *target;
    size_t a, b;
    int32_t rank;
    float scale, dropout;
} slm__tadapter_t;

/* A frozen base weight kept in memory as another type (QLoRA). */
typedef struct slm__tfreeze {
    char *name;
    int32_t type;
} slm__tfreeze_t;

/* A loss term a method added (add_loss), and a constant it gave. */
#define SLM__TRAIN_MAX_TERMS 8
typedef struct slm__tterm {
    char name[32];
    slm_tensor_t *value;       /* one element, OUTPUT */
    float weight;
} slm__tterm_t;

typedef struct slm__tconst {
    slm_tensor_t *t;
    float *data;
    size_t n;
} slm__tconst_t;

/* One graph of the job: the training step (forward, loss, backward, accumulation,
 * updates) or the validation forward pass. */
typedef struct slm__tgraph {
    slm_graph_t *g;
    slm__seq_graph_t seq;
    slm__xent_t xent;
    slm_tensor_t *loss;        /* the total loss (lm weight and method terms) */
    slm_optim_t *optim;        /* the training graph only */
    slm_tensor_t **drop;       /* dropout masks and their probabilities */
    float *drop_p;
    size_t n_drop, cap_drop;
    float lm_weight;           /* of the cross-entropy in loss (add_loss may change it) */
    slm__tterm_t terms[SLM__TRAIN_MAX_TERMS];
    size_t n_terms;
    slm__tconst_t *consts;
    size_t n_consts;
    slm_tensor_t *teacher_in;  /* f32 [V, N] INPUT, when the method asked for it */
} slm__tgraph_t;

typedef struct slm__train {
    slm_registry_t *reg;
    const slm__train_opts_t *o;
    const slm__jobrt_t *rt;
    slm_error_t *err;
    slm_model_t *model;
    slm_tokenizer_t *tok;
    /* Distillation: the teacher and its forward graph (train-teacher.c). */
    slm_model_t *teacher;
    slm_graph_t *teacher_g;
    slm__seq_graph_t teacher_seq;
    float *teacher_buf;        /* its logits of one micro-batch, [V, N] */
    float *teacher_kth;        /* each column's k-th largest logit, [N] */
    struct slm__tcache *tcache;
    uint64_t teacher_runs, teacher_cached;   /* micro-batches run / read from the cache */
    slm_chat_template_t *chat;
    slm_dataset_t *data, *train_ds, *val_ds, *val_file;
    slm_dataset_cursor_t cursor;
    /* The method and what it planned. */
    const slm_trainer_method_t *method;
    const char *plugin;
    slm__trainer_options_t *mopts;
    void *mstate;
    bool mstate_set;
    slm_trainer_tensor_info_t *infos;  /* the base's tensors as the plugin sees them */
    char **hf_names;
    size_t n_infos;
    slm__tparam_t *params;
    size_t n_params, cap_params;
    slm__tadapter_t *ads;
    size_t n_ads, cap_ads;
    slm__tfreeze_t *freezes;
    size_t n_freezes, cap_freezes;
    uint64_t stream;           /* plan->uniform outside any parameter */
    slm__adapters_t *attach;
    slm_adapter_t **frozen;    /* the adapters of opts->adapters */
    slm_buffer_t **frozen_bufs;
    size_t n_frozen_bufs;
    /* Graphs. */
    slm__tgraph_t tg, vg;
    /* Where the run stands: what a checkpoint keeps. */
    uint64_t drop_rng;         /* the dropout stream */
    int64_t step, start_step, total_steps;
    uint64_t tokens;           /* tokens learned (scored) so far */
    double seconds_before;     /* training seconds of the runs before a resume */
    json_t *curve;             /* {step, loss, lr, ...} per step */
    json_t *evals;             /* {step, val_loss, val_ppl} */
    double val_loss0, val_loss;
    double last_loss;
    char *resumed_from;
    char *last_checkpoint;
    size_t n_checkpoints;
    FILE *log;
    double t0;
    /* Data parallelism (train-dp.c): this process's rank of n_ranks; rank 0 alone
     * writes the log, checkpoints and outputs and reports progress. */
    slm_comm_t *comm;
    int rank, n_ranks;
    slm_comm_stats_t comm_stats;   /* what the collectives cost, for the report */
    const char *comm_name;
} slm__train_t;

/* kind-train.c's entry: the whole run. */
int slm__train_run(slm__train_t *t);
void slm__train_free(slm__train_t *t);

/* train-plan.c: the method's prepare through the host's tables, then the plan put in
 * place (frozen types, f32 master weights, new parameters, adapters attached). */
int slm__train_plan(slm__train_t *t);
int slm__train_place(slm__train_t *t);
void slm__train_plan_free(slm__train_t *t);
/* The trainable tensor named `name`, or NULL. */
slm__tparam_t *slm__train_param(const slm__train_t *t, const char *name);
/* Its storage: the base weight's f32 buffer, or the new parameter's. */
slm_buffer_t *slm__train_param_buf(const slm__tparam_t *p);
size_t slm__train_param_count(const slm__tparam_t *p);

/* train-names.c: the Hugging Face name of canonical tensor `name` in `arch`
 * ("model.layers.0.self_attn.q_proj.weight"), malloc'd, or NULL when none. */
char *slm__train_hf_name(const char *arch, const char *name, int32_t *layer);

/* train-rng.c: splitmix64 streams. */
uint64_t slm__train_rng_next(uint64_t *state);
/* A uniform double in [0, 1) with 53 random bits. */
double slm__train_rng_unit(uint64_t *state);
/* The stream of a name under a seed (FNV-1a of the name mixed with the seed). */
uint64_t slm__train_rng_stream(uint64_t seed, const char *name);

/* train-graph.c */
int slm__train_graphs(slm__train_t *t);
void slm__train_graphs_free(slm__train_t *t);
/* One micro-batch into the training graph, forward and backward, its gradients
 * added with `weight`; *loss is its loss (with the method's terms), terms (NULL: not
 * wanted) each term's value. */
int slm__train_micro(slm__train_t *t, const slm_dataset_batch_t *b, float weight, double *loss,
                     double *terms);

/* train-loss.c: the method's add_loss on graph G (after the cross-entropy): G->loss
 * becomes lm_weight x cross-entropy + its weighted terms. */
int slm__train_add_loss(slm__train_t *t, slm__tgraph_t *G);
/* After allocation: the values of the constants add_loss made. */
int slm__train_set_constants(slm__train_t *t, slm__tgraph_t *G);
/* After a run: each term's value into values[0..G->n_terms). */
int slm__train_read_terms(const slm__train_t *t, const slm__tgraph_t *G, double *values);
/* The mean validation loss over the validation set (at most val_batches batches). */
int slm__train_validate(slm__train_t *t, double *loss, uint64_t *scored);

/* train-ckpt.c */
int slm__train_checkpoint_save(slm__train_t *t);
int slm__train_checkpoint_load(slm__train_t *t, const char *dir);
/* The root checkpoints go under. */
const char *slm__train_checkpoint_root(const slm__train_t *t);

/* Below the k-th logit, the rest sit this far under it rather than at -infinity, so
 * that a method may take their logarithm (reverse KL): e^-30 of the mass each. */
#define SLM__TEACHER_FLOOR 30.0f

/* train-tcache.c: the teacher's top-k logits on disk, in dir, one file per teacher
 * (path, size, mtime), data set (its bytes), V and k; entries by a document's tokens
 * (a document attends only to itself, from position 0, so its logits are its own).
 * fill gives a micro-batch's [V, rows*T] logits when every document of it is cached
 * (else false);
 * put adds the documents of a batch the teacher ran (logits cut to kth per column). */
typedef struct slm__tcache slm__tcache_t;
int slm__tcache_open(const char *dir, const char *teacher, const char *data, int64_t V,
                     int64_t k, slm__tcache_t **out, slm_error_t *err);
bool slm__tcache_fill(const slm__tcache_t *c, const int32_t *tokens, const int32_t *doc,
                      int64_t rows, int64_t T, float *logits);
int slm__tcache_put(slm__tcache_t *c, const int32_t *tokens, const int32_t *doc, int64_t rows,
                    int64_t T, const float *logits, const float *kth);
int slm__tcache_save(slm__tcache_t *c, slm_error_t *err);
void slm__tcache_free(slm__tcache_t *c);

/* train-teacher.c: the teacher named by o->teacher (same vocabulary as the
 * student), the "teacher_logits" input of graph G (NULL: no teacher), and its
 * values for a micro-batch (nothing when G has no such input). */
int slm__train_teacher_open(slm__train_t *t);
/* Write the logits cache if it grew (at the end of a run that finished). */
int slm__train_teacher_save(slm__train_t *t);
slm_tensor_t *slm__train_teacher_input(slm__train_t *t, slm__tgraph_t *G);
int slm__train_teacher_feed(slm__train_t *t, slm__tgraph_t *G, const slm_dataset_batch_t *b);
void slm__train_teacher_free(slm__train_t *t);

/* train-dump.c: the first batch, its loss and every trainable tensor with its
 * gradient, into o->dump_grads (safetensors). */
int slm__train_dump_grads(slm__train_t *t);

/* train-dp.c: join the launched job (a single process without one) and refuse
 * settings it cannot split; compare every rank's files and settings with rank 0's;
 * sum values (doubles), the accumulated gradients, or a flag over the ranks. */
int slm__train_dp_open(slm__train_t *t);
void slm__train_dp_close(slm__train_t *t, bool failed);
int slm__train_dp_check(slm__train_t *t);
int slm__train_dp_sum(slm__train_t *t, double *vals, size_t n);
int slm__train_dp_grads(slm__train_t *t);
int slm__train_dp_any(slm__train_t *t, bool mine, bool *any);
/* Every rank waits (long) for rank 0's checkpoint or outputs. */
int slm__train_dp_wait_writes(slm__train_t *t);

/* train-save.c: the method's finish, writing the model or the adapter. */
int slm__train_save(slm__train_t *t);

#endif

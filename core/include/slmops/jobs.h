/* Model jobs that write or measure whole model files: quantizing a model (with an
 * optional before/after evaluation), making a random model of a named shape, and
 * timing prompt processing and generation as llama-bench does. These typed calls
 * run the same work as the job kinds of slmops/job.h ("quantize", "init", "bench"),
 * which add JSON options, the report, progress events with timing, and inputs. */
#ifndef SLMOPS_JOBS_H
#define SLMOPS_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called as a job advances: `done` of `total` units of work (bytes of tensor data
 * for quantize/init, chunks for an evaluation), `item` the tensor or stage. The
 * job contract's callback (slm_job_progress_cb) gets the same events. */
typedef void (*slm_job_progress_fn)(void *user, const char *stage, uint64_t done,
                                    uint64_t total, const char *item);

/* ---- quantize ---- */

/* Tensors whose name matches `pattern` (POSIX extended regex, searched anywhere in
 * the name, as llama-quantize's --tensor-type) get `type`; the first match wins. */
typedef struct slm_tensor_type_rule {
    const char *pattern;
    int32_t type;
} slm_tensor_type_rule_t;

typedef struct slm_quantize_params {
    uint32_t struct_size;
    int32_t type;                        /* type of the 2-D weights (slm_type_t id) */
    const slm_tensor_type_rule_t *rules; /* optional per-tensor overrides */
    size_t n_rules;
    bool pure;                           /* no output/embedding default: every weight gets `type` */
    const char *eval_file;               /* optional text: perplexity before/after and KL */
    int32_t eval_ctx;                    /* tokens per evaluation chunk; 0: 512 */
    int32_t n_threads;                   /* <= 0: the number of online CPUs */
    const char *format;                  /* output format plugin; NULL: by OUT's extension */
    slm_job_progress_fn progress;        /* optional */
    void *user;
    const volatile int *cancel;          /* optional: nonzero stops with SLM_E_CANCELLED */
    /* What to make, as llama-quantize names it: a file type (mix) such as "Q4_K_M",
     * its alias or number ("Q4_K", "15"), or a type name ("nf4"); any case. When
     * set it replaces `type` (docs/quantization.md, "Mixes"). */
    const char *type_name;
    /* Convert tensors that are already quantized (llama-quantize's
     * --allow-requantize); without it such a request fails before writing. */
    bool allow_requantize;
} slm_quantize_params_t;

/* What happened to one tensor. */
typedef struct slm_quantize_tensor {
    char *name;
    int32_t type_in, type_out;
    int32_t n_dims;
    int64_t ne[4];
    uint64_t bytes_in, bytes_out;
    char *kept;        /* NULL, or why it did not get the type it asked for */
} slm_quantize_tensor_t;

typedef struct slm_quantize_report {
    uint32_t struct_size;
    int32_t type;                   /* the requested type */
    int32_t file_type;              /* general.file_type written (LLAMA_FTYPE), -1 none */
    uint64_t file_bytes_in, file_bytes_out;   /* sizes of the two files */
    uint64_t data_bytes_in, data_bytes_out;   /* tensor data only */
    uint64_t n_weights;             /* elements of every tensor */
    double bpw_in, bpw_out;         /* tensor data bits per element */
    size_t n_tensors;
    slm_quantize_tensor_t *tensors; /* in file order */
    size_t n_kept;                  /* tensors with a `kept` reason */
    double seconds;                 /* quantizing and writing, evaluation excluded */
    /* With eval_file: both models scored on the same chunks (llama-perplexity's
     * method), and the KL divergence of the quantized model's next-token
     * distribution from the original's, averaged over the scored positions. */
    bool has_eval;
    int32_t eval_ctx, eval_chunks;
    uint64_t eval_scored;
    double ppl_before, ppl_after;
    double kld_mean, kld_max;
    double top1_agree;              /* fraction of positions with the same argmax */
    double eval_seconds;
    char *mix;                      /* the mix applied ("Q4_K_M"), or NULL */
} slm_quantize_report_t;

void slm_quantize_params_default(slm_quantize_params_t *p);
/* What `name` (as slm_quantize_params_t.type_name takes it) quantizes most weights
 * to: *type gets that type. SLM_E_NOT_FOUND when no mix or type has the name;
 * SLM_E_UNSUPPORTED (err says which type is missing) when it names a mix this
 * installation cannot make. */
int slm_quantize_type_lookup(slm_registry_t *reg, const char *name, int32_t *type,
                             slm_error_t *err);
/* Read in_path with any format plugin, quantize its 2-D weights, write out_path
 * atomically. Rows the chosen type's block does not divide keep a wider type (see
 * docs/quantization.md, "Tensors kept in a wider type") and are listed in the
 * report. out_path may not be in_path; the evaluation text is read and checked,
 * and every tensor's type chosen, before anything is written, so a refused request
 * (an unknown type, quantized input without allow_requantize) leaves no file. An
 * output larger than the input is logged as a warning. An evaluation
 * that fails after the write (e.g. no backend runs the new types) returns its
 * error and leaves the complete OUT in place. The report is filled on success
 * only; free it with slm_quantize_report_free. */
int slm_quantize_model(slm_registry_t *reg, const char *in_path, const char *out_path,
                       const slm_quantize_params_t *p, slm_quantize_report_t *report,
                       slm_error_t *err);
void slm_quantize_report_free(slm_quantize_report_t *r);

/* ---- random models of a named shape ---- */

typedef struct slm_init_params {
    uint32_t struct_size;
    const char *arch;          /* "llama" */
    const char *preset;        /* "smollm2-135m", "stories15m", ... (slm_init_preset_name) */
    int32_t type;              /* type of the 2-D weights */
    uint64_t seed;
    int32_t n_threads;         /* <= 0: the number of online CPUs */
    const char *format;        /* NULL: by the path's extension */
    slm_job_progress_fn progress;
    void *user;
    const volatile int *cancel;
    /* Since 0.3: a model file whose vocabulary (every tokenizer.* key, the chat
     * template included) the model takes instead of a synthetic one, its size
     * replacing the preset's (a distillation student of that teacher); NULL: none. */
    const char *vocab_from;
    /* With vocab_from (a byte-level BPE vocabulary): a data set (JSONL or
     * text, read as training reads it); the model keeps only the tokens its examples
     * use, the byte alphabet and the special tokens, with the merges that build them.
     * The data then tokenizes to the same tokens, renumbered; other text in more,
     * shorter tokens. A narrow task's student: a smaller embedding and tokenizer.
     * NULL: the whole vocabulary. */
    const char *vocab_data;
    /* How vocab_data's {"messages"} lines render: a built-in template's name or a
     * template's text; NULL: vocab_from's chat template. */
    const char *vocab_chat_template;
} slm_init_params_t;

void slm_init_params_default(slm_init_params_t *p);
/* Name of preset i, or NULL past the last. */
const char *slm_init_preset_name(size_t i);
/* Write a model with the preset's shapes, N(0, 0.02) weights, norms of 1 and a
 * synthetic SentencePiece-style vocabulary of the preset's size (docs/slmops.1). */
int slm_model_init_random(slm_registry_t *reg, const char *out_path, const slm_init_params_t *p,
                          slm_error_t *err);

/* ---- benchmark ---- */

typedef struct slm_bench_params {
    uint32_t struct_size;
    int32_t n_prompt;          /* pp test: tokens decoded as one batch; 0: skip */
    int32_t n_gen;             /* tg test: tokens decoded one at a time; 0: skip */
    int32_t reps;              /* repetitions of each test; 0: 5 */
    int32_t n_batch;           /* 0: 512 */
    uint64_t seed;
    const volatile int *cancel;
} slm_bench_params_t;

/* One test's tokens/s over repetitions (a warm-up run is not counted). */
typedef struct slm_bench_stat {
    int32_t n_tokens;
    int32_t reps;
    double mean, stddev;       /* tokens per second */
    double mean_ms;
} slm_bench_stat_t;

typedef struct slm_bench_result {
    uint32_t struct_size;
    slm_bench_stat_t pp, tg;
} slm_bench_result_t;

void slm_bench_params_default(slm_bench_params_t *p);
/* pp: a fresh context decodes n_prompt random tokens in one batch; tg: a fresh
 * context decodes BOS and then n_gen tokens, one per decode. */
int slm_bench_run(slm_model_t *m, const slm_bench_params_t *p, slm_bench_result_t *out,
                  slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

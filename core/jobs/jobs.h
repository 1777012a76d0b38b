/* What the job files (quantize, init, bench) share: the rule that picks each
 * tensor's type, threaded row conversion, and the work behind each entry point. */
#ifndef SLMOPS_JOBS_INTERNAL_H
#define SLMOPS_JOBS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/jobs.h>
#include <slmops/model-file.h>
#include <slmops/registry.h>

struct slm__jobrt;

/* plan.c: the type each tensor of a quantized model gets (docs/quantization.md). */
typedef struct slm__qplan {
    int32_t type;        /* what most weights get: the mix's type, or the one asked for */
    char *mix;           /* the mix's name, or NULL */
    int32_t file_type;   /* general.file_type to write, -1 for none */
    size_t n;            /* tensors of the input, in file order: */
    int32_t *types;      /* each one's type */
    char **why;          /* why it did not get the type it asked for, or NULL */
} slm__qplan_t;

/* Resolve p's type (and mix), choose every tensor's type, and refuse a request
 * that would convert already-quantized tensors without p->allow_requantize. */
int slm__qplan_make(slm_registry_t *reg, const slm_model_file_t *in, const char *in_path,
                    const slm_quantize_params_t *p, slm__qplan_t *plan, slm_error_t *err);
void slm__qplan_free(slm__qplan_t *plan);

/* SLM_OK when `type` is one a weight can be written in (f32, f16, bf16 or a
 * quantizer's); `what` names the request in the error. */
int slm__jobs_check_weight_type(int32_t type, const char *what, slm_error_t *err);

/* Whether a tensor is a weight matrix that quantization changes (llama-quantize's
 * rule: a name ending in "weight", two or more dims, not a norm). */
bool slm__jobs_is_quantizable(const char *name, int32_t n_dims);

/* The type a quantizable tensor gets: `wanted` (the requested type, or an override)
 * unless its row length ne0 is not a multiple of that type's block, in which case
 * the type's manifest "fallback" applies if its block divides the row, else f16
 * (docs/quantization.md); `why` (cap bytes) then says why. */
int32_t slm__jobs_fit_type(slm_registry_t *reg, int32_t wanted, int64_t ne0, char *why,
                           size_t cap);

/* The output matrix's (or the tied embedding's) type in a model of `requested`:
 * the "output_type" of that type's manifest, else `requested`. */
int32_t slm__jobs_output_type(slm_registry_t *reg, int32_t requested);

/* LLAMA_FTYPE id for general.file_type (the manifest's "gguf_file_type" for a
 * quantized type), or -1 when the type has none. */
int32_t slm__jobs_file_type(slm_registry_t *reg, int32_t type);

/* Convert n_rows rows of ne0 elements from type `src_type` to `dst_type` using up
 * to n_threads threads. Either type may be f32, f16, bf16 or a quantized type
 * whose plugin is available. */
int slm__jobs_convert(slm_registry_t *reg, int32_t src_type, const void *src, int32_t dst_type,
                      void *dst, int64_t n_rows, int64_t ne0, int n_threads, slm_error_t *err);

/* Tokenize the evaluation text with in's vocabulary; it must hold two chunks. */
int slm__jobs_eval_tokens(const slm_model_file_t *in, const char *path, int32_t n_ctx,
                          int32_t **tokens, size_t *n_tokens, slm_error_t *err);
/* Score the original (in) and the written model (out_path) on the tokens and
 * fill the evaluation fields of the report. */
int slm__jobs_eval(slm_registry_t *reg, const slm_model_file_t *in, const char *out_path,
                   const int32_t *tokens, size_t n_tokens, const slm_quantize_params_t *p,
                   const struct slm__jobrt *rt, slm_quantize_report_t *rep, slm_error_t *err);

/* The work of each job, reporting through rt (jobs/kind.h): the old entry points
 * and the job contract's kinds both call these. The params' own progress and
 * cancel fields are not read: rt carries them. */
int slm__quantize_run(slm_registry_t *reg, const char *in_path, const char *out_path,
                      const slm_quantize_params_t *p, const struct slm__jobrt *rt,
                      slm_quantize_report_t *report, slm_error_t *err);
/* The checks slm__init_run makes of p before anything else (arch, preset, type). */
int slm__init_check(const slm_init_params_t *p, slm_error_t *err);
/* n_vocab (may be NULL): the written model's vocabulary size. */
int slm__init_run(slm_registry_t *reg, const char *out_path, const slm_init_params_t *p,
                  const struct slm__jobrt *rt, uint32_t *n_vocab, slm_error_t *err);
int slm__bench_run(slm_model_t *m, const slm_bench_params_t *p, const struct slm__jobrt *rt,
                   slm_bench_result_t *out, slm_error_t *err);

/* quantize.c: slm_quantize_model on a container already read (the merge job's
 * result); in stays the caller's, in_path names it and is the input OUT may not be. */
int slm__quantize_container(slm_registry_t *reg, const slm_model_file_t *in, const char *in_path,
                            const char *out_path, const slm_quantize_params_t *p,
                            const struct slm__jobrt *rt, slm_quantize_report_t *report,
                            slm_error_t *err);

/* Online CPUs when n <= 0, else n (at most 256). */
int slm__jobs_threads(int n);

#endif

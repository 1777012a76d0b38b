/* Evaluation jobs on a loaded model. Perplexity is computed as llama.cpp's
 * llama-perplexity computes it, so the two numbers can be compared. */
#ifndef SLMOPS_EVAL_H
#define SLMOPS_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/* After each chunk: its index (0-based), the chunk count, and the perplexity over
 * every chunk done so far. */
typedef void (*slm_perplexity_progress_fn)(void *user, int32_t chunk, int32_t n_chunks,
                                           double ppl_so_far);

typedef struct slm_perplexity_params {
    uint32_t struct_size;
    int32_t n_ctx;             /* tokens per chunk; 0: 512 */
    int32_t n_batch;           /* tokens per decode; 0: n_ctx */
    int32_t type_kv;           /* KV cache type; 0 (F32): exact, the default */
    slm_perplexity_progress_fn progress;   /* optional */
    void *user;
    const volatile int *cancel;            /* optional: nonzero stops with SLM_E_CANCELLED */
} slm_perplexity_params_t;

typedef struct slm_perplexity_result {
    uint32_t struct_size;
    double ppl;                /* exp(nll) */
    double nll;                /* mean negative log-likelihood of the scored tokens */
    uint64_t n_scored;
    int32_t n_chunks;
} slm_perplexity_result_t;

void slm_perplexity_params_default(slm_perplexity_params_t *p);

/* Split tokens into n_tokens / n_ctx chunks (at least two are needed, as llama.cpp
 * requires 2 * n_ctx tokens); in each, the first token becomes BOS when the model
 * adds one, and the next-token log-likelihood of the second half is scored. */
int slm_eval_perplexity(slm_model_t *m, const int32_t *tokens, size_t n_tokens,
                        const slm_perplexity_params_t *p, slm_perplexity_result_t *out,
                        slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

/* Choosing the next token from a model's logits: penalties, top-k, top-p, min-p,
 * temperature and a seeded draw, in llama.cpp's default order; plus stop strings.
 *
 * Order of the transforms (as llama.cpp's common sampler applies them by default):
 *   1. repetition / frequency / presence penalties over the last repeat_last_n tokens
 *   2. top-k   3. top-p   4. min-p   5. temperature   6. draw
 * temperature <= 0 is greedy: the token with the highest penalised logit (ties go to
 * the lowest id), with no randomness. The draw uses xoshiro256** seeded through
 * splitmix64 from `seed`, so the same seed and logits give the same tokens on every
 * machine. */
#ifndef SLMOPS_SAMPLER_H
#define SLMOPS_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_sampler slm_sampler_t;

typedef struct slm_sampler_params {
    uint32_t struct_size;      /* sizeof(slm_sampler_params_t) */
    float temperature;         /* <= 0: greedy. Default 0.8 */
    int32_t top_k;             /* <= 0: off. Default 40 */
    float top_p;               /* >= 1: off. Default 0.95 */
    float min_p;               /* <= 0: off. Default 0.05 */
    float repeat_penalty;      /* 1: off. Default 1.0 */
    int32_t repeat_last_n;     /* history the penalties look at; 0 off, -1 all. Default 64 */
    float frequency_penalty;   /* subtracted once per occurrence. Default 0 */
    float presence_penalty;    /* subtracted once if present. Default 0 */
    uint64_t seed;             /* PRNG seed. Default 0 */
} slm_sampler_params_t;

/* One surviving candidate, as slm_sampler_candidates reports it. */
typedef struct slm_candidate {
    int32_t id;
    float logit;               /* after penalties and temperature */
    float p;                   /* softmax over the survivors */
} slm_candidate_t;

/* Fill p with the defaults above (struct_size set). */
void slm_sampler_params_default(slm_sampler_params_t *p);

/* SLM_E_INVALID (in err) for a NaN or negative parameter or a wrong struct_size. */
slm_sampler_t *slm_sampler_new(const slm_sampler_params_t *p, slm_error_t *err);
void slm_sampler_free(slm_sampler_t *s);

/* Forget the token history and restart the PRNG from the seed. */
void slm_sampler_reset(slm_sampler_t *s);

/* Record a token (prompt or generated) in the history the penalties use. */
void slm_sampler_accept(slm_sampler_t *s, int32_t token);

/* Pick the next token from n_vocab logits (not modified). Returns the token id,
 * or a negative slm_status_t (SLM_E_INVALID when n_vocab < 1 or every logit is
 * NaN / -inf). Does not accept the token: call slm_sampler_accept. */
int32_t slm_sampler_sample(slm_sampler_t *s, const float *logits, int32_t n_vocab,
                           slm_error_t *err);

/* Run every transform but the draw. Writes the survivors, highest logit first,
 * into out (room for n_vocab entries) and their number into *n_out. Greedy
 * (temperature <= 0) leaves one survivor. */
int slm_sampler_candidates(slm_sampler_t *s, const float *logits, int32_t n_vocab,
                           slm_candidate_t *out, int32_t *n_out, slm_error_t *err);

/* ---- stop strings: matched on the text, across token boundaries ---- */

typedef struct slm_stop slm_stop_t;

/* A matcher for n strings (copied; empty strings are ignored). */
slm_stop_t *slm_stop_new(const char *const *stops, size_t n, slm_error_t *err);
void slm_stop_free(slm_stop_t *st);

/* Append len bytes of generated text. *emit / *emit_len: the text now safe to show
 * (it cannot be the start of a stop string); valid until the next call. Returns
 * true when a stop string has appeared: *emit then ends just before it, and the
 * rest is dropped. */
bool slm_stop_feed(slm_stop_t *st, const char *text, size_t len, const char **emit,
                   size_t *emit_len);

/* At the end of generation: the held-back text that never became a stop string. */
void slm_stop_flush(slm_stop_t *st, const char **emit, size_t *emit_len);

#ifdef __cplusplus
}
#endif
#endif

/* Generation as a library object: sequence slots (prompt, sampler, KV cells, stop
 * rules, adapters) that a generator decodes together, one batched step at a time.
 *
 * A generator owns a decode context whose KV cache its slots share; each slot's cells
 * are tagged with its sequence id, and each slot may hold n_ctx / n_slots of them. A
 * step runs the next token of every decoding sequence and a chunk of the prompts
 * still to prefill (at most n_batch tokens in all) in one graph, then samples each
 * sequence whose logits came out. A sequence started between steps joins at the next
 * one. `slmops generate`, `chat` and `serve` all drive one.
 *
 *   slm_generator_new(model, tok, &gp, &gen, &err);
 *   slm_seq_new(gen, &seq, &err);
 *   slm_seq_start(seq, &sp, prompt, n_prompt, &err);   // sp.on_text streams the text
 *   while (slm_generator_step(gen, &err) > 0) {}
 *   slm_seq_text(seq, &len); slm_seq_stop_reason(seq);
 *   slm_seq_free(seq); slm_generator_free(gen);
 *
 * Not thread-safe: one thread owns a generator and its sequences. */
#ifndef SLMOPS_GENERATION_H
#define SLMOPS_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/json-filter.h>
#include <slmops/model.h>
#include <slmops/sampler.h>
#include <slmops/tokenizer.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_generator slm_generator_t;
typedef struct slm_seq slm_seq_t;

typedef struct slm_generator_params {
    uint32_t struct_size;
    uint32_t n_slots;          /* sequences decoded together; 0: 1 */
    uint32_t n_ctx;            /* KV cells all slots share; 0: n_ctx_train (<= 4096) */
    uint32_t n_batch;          /* most tokens one step decodes; 0: 512; at least n_slots */
    int32_t type_kv;           /* SLM_TYPE_F16 (default) or SLM_TYPE_F32 */
    /* A freed slot keeps its cells, and which tokens they hold, for a later sequence
     * whose prompt starts the same way (slm_seq_new_for), as llama-server's
     * cache_prompt does: a repeated system prompt or conversation runs once. */
    bool prompt_cache;
} slm_generator_params_t;

void slm_generator_params_default(slm_generator_params_t *p);

/* A generator over m (its attached adapters apply) with tok deciding the end of
 * generation and the text; both must outlive it. */
int slm_generator_new(slm_model_t *m, const slm_tokenizer_t *tok,
                      const slm_generator_params_t *p, slm_generator_t **out, slm_error_t *err);
/* Free the generator; its sequences must be freed first. */
void slm_generator_free(slm_generator_t *g);

/* One step: every running sequence's next token and prompt chunks, one graph, then
 * sampling. Returns how many sequences are still running afterwards (0: idle, the
 * step did nothing more than finish cancelled ones), or a negative error, after
 * which the sequences that were in the failed step have finished with
 * SLM_SEQ_ERROR and their cells are as before the step. */
int slm_generator_step(slm_generator_t *g, slm_error_t *err);

uint32_t slm_generator_n_slots(const slm_generator_t *g);
/* Slots no sequence holds. */
uint32_t slm_generator_n_free_slots(const slm_generator_t *g);
/* The most tokens (prompt and generated) one slot's cells may hold. */
uint32_t slm_generator_n_ctx_slot(const slm_generator_t *g);
/* KV cells in use, all slots together, and all cells. */
uint32_t slm_generator_kv_used(const slm_generator_t *g);
uint32_t slm_generator_n_ctx(const slm_generator_t *g);

/* ---- sequences ---- */

typedef enum slm_seq_state {
    SLM_SEQ_IDLE,              /* never started, or finished: slm_seq_stop_reason says why */
    SLM_SEQ_PREFILL,           /* its prompt is being decoded */
    SLM_SEQ_DECODING           /* sampling tokens */
} slm_seq_state_t;

typedef enum slm_seq_stop {
    SLM_SEQ_NOT_STOPPED,       /* running, or never started */
    SLM_SEQ_LENGTH,            /* max_tokens generated */
    SLM_SEQ_EOS,               /* an end-of-generation token (not kept) */
    SLM_SEQ_STOP_STRING,       /* a stop string appeared (the text ends before it) */
    SLM_SEQ_CONTEXT,           /* the slot's cells are full */
    SLM_SEQ_CANCELLED,         /* slm_seq_cancel */
    SLM_SEQ_ERROR              /* a step failed */
} slm_seq_stop_t;

/* "length", "eos", "stop", "context", "cancelled", "error", or "" while running. */
const char *slm_seq_stop_name(slm_seq_stop_t why);

/* Called with each piece of text that is ready: whole UTF-8 characters that cannot
 * be the start of a stop string. */
typedef void (*slm_seq_text_fn)(void *user, const char *text, size_t len);

enum {
    /* The text continues earlier text: keep the first piece's leading space. */
    SLM_SEQ_CONTINUES = 1u << 0
};

typedef struct slm_seq_params {
    uint32_t struct_size;
    /* A new sampler from these; NULL: keep the sequence's sampler as the last start
     * left it (history and random stream go on, as a conversation's next turn does),
     * or the sampler's defaults on a first start. */
    const slm_sampler_params_t *sampling;
    const char *const *stop;   /* stop strings (copied) */
    size_t n_stop;
    int32_t max_tokens;        /* tokens to generate; -1: until the end of the text or a
                                  full slot; 0: decode the prompt only */
    unsigned flags;            /* SLM_SEQ_* */
    /* The adapters applied (ids from slm_model_attach_adapter, below 64), exactly
     * these (n_adapters 0: none, the base model); NULL: every adapter attached to the
     * model. Sequences with different sets share a step: the base product runs once
     * for all of them and each adapter's update only on its own sequences' rows. */
    const int32_t *adapters;
    size_t n_adapters;
    slm_seq_text_fn on_text;   /* NULL: only slm_seq_text */
    void *user;
    /* Keep each generated token's log-probability and the n_logprobs (0..20) most
     * likely tokens at its position (slm_seq_logprob); -1: off. */
    int32_t n_logprobs;
    /* Sample only tokens that keep the text a prefix of JSON the filter accepts; the
     * sequence stops (SLM_SEQ_EOS) once the value is complete. The filter must
     * outlive the start. NULL: off. */
    const slm_json_filter_t *json;
} slm_seq_params_t;

/* max_tokens -1, n_logprobs -1, everything else off. */
void slm_seq_params_default(slm_seq_params_t *p);

/* Take a free slot; SLM_E_STATE when every slot is held. Its cells start empty. */
int slm_seq_new(slm_generator_t *g, slm_seq_t **out, slm_error_t *err);
/* Give the slot back, its cells freed (kept, with prompt_cache); a running sequence
 * just stops. */
void slm_seq_free(slm_seq_t *s);
/* As slm_seq_new, for a start of prompt with the adapters of p (NULL: every one
 * attached): with prompt_cache, the free slot whose kept cells share the longest start
 * with prompt (computed with the same adapters), the shared part kept, at most
 * n_prompt - 1 tokens (the last one runs, for its logits), the other cells freed.
 * *n_kept: how many prompt tokens the cells hold; start with prompt + *n_kept. Without
 * prompt_cache, slm_seq_new's slot and *n_kept 0. */
int slm_seq_new_for(slm_generator_t *g, const slm_seq_params_t *p, const int32_t *prompt,
                    size_t n_prompt, slm_seq_t **out, size_t *n_kept, slm_error_t *err);

/* Start generating: the prompt follows what the slot's cells hold already (n_prompt
 * >= 1; they must fit in the slot) and joins the next step. The sequence must be idle.
 * The prompt enters the sampler's history. */
int slm_seq_start(slm_seq_t *s, const slm_seq_params_t *p, const int32_t *prompt,
                  size_t n_prompt, slm_error_t *err);
/* Stop at the next step (SLM_SEQ_CANCELLED); what is held back is flushed. */
void slm_seq_cancel(slm_seq_t *s);

slm_seq_state_t slm_seq_state(const slm_seq_t *s);
slm_seq_stop_t slm_seq_stop_reason(const slm_seq_t *s);
/* The slot's sequence id in the generator's context, 0 .. n_slots-1. */
int32_t slm_seq_id(const slm_seq_t *s);
/* Tokens the slot's cells hold (the last generated token never enters them). */
int32_t slm_seq_pos(const slm_seq_t *s);
/* Forget the cells from position pos on; only while idle. */
void slm_seq_truncate(slm_seq_t *s, int32_t pos);

/* What the last start generated: token ids (an end-of-generation token excluded)
 * and the text handed out, stop strings cut; valid until the next start or free. */
const int32_t *slm_seq_tokens(const slm_seq_t *s, size_t *n);
const char *slm_seq_text(const slm_seq_t *s, size_t *len);

typedef struct slm_token_logprob {
    int32_t id;
    float logprob;             /* natural log */
} slm_token_logprob_t;

/* Generated token i's log-probability under the model (the log-softmax of its raw
 * logits: before penalties, temperature and the JSON filter), and in *top the
 * n_logprobs most likely tokens there, most likely first. SLM_E_INVALID when i is
 * past the tokens or the start did not ask for log-probabilities. */
int slm_seq_logprob(const slm_seq_t *s, size_t i, slm_token_logprob_t *chosen,
                    const slm_token_logprob_t **top, size_t *n_top);

typedef struct slm_seq_stats {
    uint32_t struct_size;
    size_t n_prompt, n_gen;
    double prompt_ms;          /* from the first step holding its prompt to its logits */
    double gen_ms;             /* from then to the end */
} slm_seq_stats_t;

void slm_seq_stats(const slm_seq_t *s, slm_seq_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif

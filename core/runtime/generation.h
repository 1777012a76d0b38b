/* Inside generation: a sequence slot's state, shared by the generator that steps
 * the slots (generator.c) and the slot's own calls (sequence.c). */
#ifndef SLMOPS_RUNTIME_GENERATION_H
#define SLMOPS_RUNTIME_GENERATION_H

#include <stdbool.h>
#include <stdint.h>

#include <slmops/generation.h>
#include <slmops/json-filter.h>

typedef struct slm__json_state slm__json_state_t;

struct slm_seq {
    slm_generator_t *g;
    int32_t id;
    slm_seq_state_t state;
    slm_seq_stop_t why;
    bool cancel;
    /* The prompt of the current start; [0, n_fed) have run. */
    int32_t *prompt;
    size_t n_prompt, n_fed, cap_prompt;
    int32_t next;              /* DECODING: the sampled token the next step feeds */
    int32_t max_tokens;
    slm_sampler_t *smp;
    slm_stop_t *stop;
    slm_detokenizer_t *dt;
    bool stop_hit;             /* a stop string cut the text: nothing more to flush */
    slm_seq_text_fn on_text;
    void *user;
    int32_t *tokens;
    size_t n_tokens, cap_tokens;
    char *text;
    size_t len, cap;
    double t_start, t_first, t_end;   /* ms; t_start 0: no step has held it yet */
    int32_t row;               /* its logits in the step's batch, or -1 */
    int32_t n_logprobs;        /* -1: off */
    slm_token_logprob_t *lp;   /* per token: the chosen one, then n_logprobs top ones */
    size_t cap_lp;             /* tokens lp has room for */
    slm__json_state_t *json;   /* the JSON filter's state, or NULL */
    float *masked;             /* n_vocab logits with the filter applied */
    uint64_t ticket;           /* start order: prompts prefill first come, first served */
    uint64_t adapters;         /* the set it applies: bit a for adapter a */
};

struct slm_generator {
    slm_model_t *m;
    const slm_tokenizer_t *tok;
    slm_context_t *ctx;
    uint32_t n_slots, n_batch, n_ctx_slot;
    slm_seq_t **slots;         /* n_slots; NULL: free */
    uint64_t tickets;
    /* prompt_cache: per slot, the tokens its cells hold in position order (the first
     * n_hist[i]; the context's count wins when it is lower: a failed step, a
     * truncation), the adapter set they ran with (valid: one set), when it was freed. */
    bool prompt_cache;
    int32_t *hist;             /* n_slots x n_ctx_slot */
    uint32_t *n_hist;
    uint64_t *hist_set, *freed_at;
    bool *hist_valid;
    /* One step's batch (n_batch entries each) and who owns each token. */
    int32_t *b_tok, *b_seq;
    int8_t *b_logits;
    slm_seq_t **b_owner;
};

double slm__now_ms(void);
/* prompt_cache: the slot's history cut to the tokens its cells hold. */
uint32_t slm__gen_hist_len(slm_generator_t *g, int32_t slot);
/* The step produced s's logits: sample, keep and hand out the token, and finish
 * when a stop rule says so. Returns false when out of memory (s then finished). */
bool slm__seq_take(slm_seq_t *s, const float *logits, double now);
/* End the current start with why; the held-back text is handed out unless a stop
 * string cut it. */
void slm__seq_finish(slm_seq_t *s, slm_seq_stop_t why, double now);
/* JSON-constrained sampling (json-filter.c): a sequence's parser state. */
slm__json_state_t *slm__json_state_new(const slm_json_filter_t *f);
void slm__json_state_free(slm__json_state_t *s);
/* Set to -inf the logits of the tokens that may not come next; returns how many may. */
size_t slm__json_mask(const slm__json_state_t *s, float *logits, int32_t n_vocab);
/* Advance over token tok; false when it may not come next (the state is unchanged). */
bool slm__json_accept(slm__json_state_t *s, int32_t tok);
/* The value is complete and nothing may follow it. */
bool slm__json_done(const slm__json_state_t *s);
/* Per-sequence adapters in a context (context.c): from now on its graphs apply each
 * adapter only to the rows of the sequences whose set (bit a: adapter a) holds it;
 * every set starts full. */
int slm__context_row_adapters(slm_context_t *c, slm_error_t *err);
void slm__context_seq_adapters(slm_context_t *c, int32_t seq, uint64_t set);
/* KV cells in use (context.c). */
uint32_t slm__context_kv_used(const slm_context_t *c);

#endif

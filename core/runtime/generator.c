/* The generator: sequence slots over one decode context, stepped together; a step
 * is every running sequence's next token plus prompt chunks, in one graph. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/generation.h"

void slm_generator_params_default(slm_generator_params_t *p)
{
    if (p)
        *p = (slm_generator_params_t){.struct_size = sizeof *p, .type_kv = SLM_TYPE_F16};
}

static int alloc_batch(slm_generator_t *g, slm_error_t *err)
{
    g->slots = calloc(g->n_slots, sizeof *g->slots);
    g->b_tok = malloc(g->n_batch * sizeof *g->b_tok);
    g->b_seq = malloc(g->n_batch * sizeof *g->b_seq);
    g->b_logits = malloc(g->n_batch);
    g->b_owner = malloc(g->n_batch * sizeof *g->b_owner);
    if (!g->slots || !g->b_tok || !g->b_seq || !g->b_logits || !g->b_owner)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "generator: out of memory");
    if (!g->prompt_cache)
        return SLM_OK;
    g->hist = malloc((size_t)g->n_slots * g->n_ctx_slot * sizeof *g->hist);
    g->n_hist = calloc(g->n_slots, sizeof *g->n_hist);
    g->hist_set = calloc(g->n_slots, sizeof *g->hist_set);
    g->freed_at = calloc(g->n_slots, sizeof *g->freed_at);
    g->hist_valid = calloc(g->n_slots, sizeof *g->hist_valid);
    if (!g->hist || !g->n_hist || !g->hist_set || !g->freed_at || !g->hist_valid)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "generator: out of memory");
    return SLM_OK;
}

uint32_t slm__gen_hist_len(slm_generator_t *g, int32_t slot)
{
    int32_t pos = slm_context_seq_pos(g->ctx, slot);
    if (pos < 0)
        pos = 0;
    if (g->n_hist[slot] > (uint32_t)pos)
        g->n_hist[slot] = (uint32_t)pos;
    return g->n_hist[slot];
}

int slm_generator_new(slm_model_t *m, const slm_tokenizer_t *tok,
                      const slm_generator_params_t *params, slm_generator_t **out,
                      slm_error_t *err)
{
    if (!m || !tok || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "generator: NULL argument");
    *out = NULL;
    slm_generator_params_t p;
    slm_generator_params_default(&p);
    if (params)
        memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    if (p.n_slots == 0)
        p.n_slots = 1;
    if (p.n_batch == 0)
        p.n_batch = 512;
    if (p.n_slots > 4096 || p.n_batch < p.n_slots)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "generator: %u slots need a batch of "
                         "at least as many tokens, not %u", p.n_slots, p.n_batch);
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = p.n_ctx;
    cp.n_batch = p.n_batch;
    cp.n_seq = p.n_slots;
    cp.type_kv = p.type_kv;
    slm_generator_t *g = calloc(1, sizeof *g);
    if (!g)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "generator: out of memory");
    g->m = m;
    g->tok = tok;
    g->n_slots = p.n_slots;
    g->prompt_cache = p.prompt_cache;
    int rc = slm_context_new(m, &cp, &g->ctx, err);
    if (rc == SLM_OK) {
        /* The context may have cut the batch to its size. */
        uint32_t n_ctx = slm_context_n_ctx(g->ctx);
        g->n_batch = p.n_batch < n_ctx ? p.n_batch : n_ctx;
        g->n_ctx_slot = n_ctx / g->n_slots;
        rc = g->n_ctx_slot ? alloc_batch(g, err)
                           : slm__fail(err, SLM_E_INVALID, NULL, -1, "generator: %u cells "
                                       "cannot hold %u slots", n_ctx, g->n_slots);
        /* Sequences may pick their adapters: only when there are some to pick. */
        if (rc == SLM_OK && slm_model_n_adapters(m) > 0)
            rc = slm__context_row_adapters(g->ctx, err);
    }
    if (rc != SLM_OK) {
        slm_generator_free(g);
        return rc;
    }
    *out = g;
    return SLM_OK;
}

void slm_generator_free(slm_generator_t *g)
{
    if (!g)
        return;
    slm_context_free(g->ctx);
    free(g->slots);
    free(g->b_tok);
    free(g->b_seq);
    free(g->b_logits);
    free(g->b_owner);
    free(g->hist);
    free(g->n_hist);
    free(g->hist_set);
    free(g->freed_at);
    free(g->hist_valid);
    free(g);
}

uint32_t slm_generator_n_slots(const slm_generator_t *g)
{
    return g ? g->n_slots : 0;
}

uint32_t slm_generator_n_free_slots(const slm_generator_t *g)
{
    uint32_t n = 0;
    for (uint32_t i = 0; g && i < g->n_slots; i++)
        n += g->slots[i] == NULL;
    return n;
}

uint32_t slm_generator_n_ctx_slot(const slm_generator_t *g)
{
    return g ? g->n_ctx_slot : 0;
}

uint32_t slm_generator_kv_used(const slm_generator_t *g)
{
    return g ? slm__context_kv_used(g->ctx) : 0;
}

uint32_t slm_generator_n_ctx(const slm_generator_t *g)
{
    return g ? slm_context_n_ctx(g->ctx) : 0;
}

/* ---- one step ---- */

static void add(slm_generator_t *g, int32_t *n, slm_seq_t *s, int32_t tok, bool logits)
{
    int32_t i = (*n)++;
    g->b_tok[i] = tok;
    g->b_seq[i] = s->id;
    g->b_logits[i] = logits;
    g->b_owner[i] = s;
    if (logits)
        s->row = i;
    if (g->prompt_cache && g->n_hist[s->id] < g->n_ctx_slot)
        g->hist[(size_t)s->id * g->n_ctx_slot + g->n_hist[s->id]++] = tok;
}

/* The prefilling sequence that started first and has not been served this step. */
static slm_seq_t *next_prefill(slm_generator_t *g, uint64_t after)
{
    slm_seq_t *best = NULL;
    for (uint32_t i = 0; i < g->n_slots; i++) {
        slm_seq_t *s = g->slots[i];
        if (s && s->state == SLM_SEQ_PREFILL && !s->cancel && s->ticket > after &&
            (!best || s->ticket < best->ticket))
            best = s;
    }
    return best;
}

/* Running sequences' tokens first (a stream never waits for a prompt), then prompt
 * chunks in start order with what is left of the batch. */
static int32_t gather(slm_generator_t *g, double now)
{
    int32_t n = 0, cap = (int32_t)g->n_batch;
    for (uint32_t i = 0; i < g->n_slots; i++) {
        slm_seq_t *s = g->slots[i];
        if (s && s->state != SLM_SEQ_IDLE && s->cancel)
            slm__seq_finish(s, SLM_SEQ_CANCELLED, now);
        else if (s && s->state == SLM_SEQ_DECODING)
            add(g, &n, s, s->next, true);
    }
    uint64_t after = 0;
    for (slm_seq_t *s; n < cap && (s = next_prefill(g, after)); after = s->ticket) {
        size_t k = s->n_prompt - s->n_fed;
        if (k > (size_t)(cap - n))
            k = (size_t)(cap - n);
        if (s->t_start == 0)
            s->t_start = now;
        for (size_t j = 0; j < k; j++) {
            bool last = s->n_fed + 1 == s->n_prompt;
            add(g, &n, s, s->prompt[s->n_fed++], last && s->max_tokens != 0);
        }
    }
    return n;
}

static int n_running(const slm_generator_t *g)
{
    int n = 0;
    for (uint32_t i = 0; i < g->n_slots; i++)
        n += g->slots[i] && g->slots[i]->state != SLM_SEQ_IDLE;
    return n;
}

/* A failed step (the context undid its cells): its sequences end. */
static void fail_step(slm_generator_t *g, int32_t n, double now)
{
    for (int32_t i = 0; i < n; i++) {
        slm_seq_t *s = g->b_owner[i];
        if (s->state != SLM_SEQ_IDLE)
            slm__seq_finish(s, SLM_SEQ_ERROR, now);
    }
}

int slm_generator_step(slm_generator_t *g, slm_error_t *err)
{
    if (!g)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "generator: NULL argument");
    double now = slm__now_ms();
    for (uint32_t i = 0; g->prompt_cache && i < g->n_slots; i++)
        slm__gen_hist_len(g, (int32_t)i);   /* cells a failed step or a truncation undid */
    int32_t n = gather(g, now);
    if (n == 0)
        return n_running(g);
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = n, .token = g->b_tok,
                     .seq_id = g->b_seq, .logits = g->b_logits};
    int rc = slm_context_decode(g->ctx, &b, err);
    now = slm__now_ms();
    if (rc != SLM_OK) {
        fail_step(g, n, now);
        return rc;
    }
    bool oom = false;
    for (int32_t i = 0; i < n; i++) {
        slm_seq_t *s = g->b_owner[i];
        if (s->row != i)
            continue;
        s->row = -1;
        oom |= !slm__seq_take(s, slm_context_logits(g->ctx, i), now);
    }
    for (uint32_t i = 0; i < g->n_slots; i++) {   /* max_tokens 0: the prompt was all */
        slm_seq_t *s = g->slots[i];
        if (s && s->state == SLM_SEQ_PREFILL && s->n_fed == s->n_prompt)
            slm__seq_finish(s, SLM_SEQ_LENGTH, now);
    }
    if (oom)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "generator: out of memory keeping the "
                         "generated text");
    return n_running(g);
}

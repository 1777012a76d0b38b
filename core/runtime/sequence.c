/* A generation slot: one sequence's prompt, sampler, stop rules and output, and what
 * happens to each token its generator's steps sample for it. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal/util.h"
#include "runtime/forward.h"
#include "runtime/generation.h"

double slm__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *slm_seq_stop_name(slm_seq_stop_t why)
{
    static const char *const names[] = {"", "length", "eos", "stop", "context", "cancelled",
                                        "error"};
    return (unsigned)why < sizeof names / sizeof *names ? names[why] : "";
}

void slm_seq_params_default(slm_seq_params_t *p)
{
    if (p)
        *p = (slm_seq_params_t){.struct_size = sizeof *p, .max_tokens = -1, .n_logprobs = -1};
}

/* Slot i (free) for a new sequence, its cells cut to the first keep tokens. */
static int take_slot(slm_generator_t *g, uint32_t i, uint32_t keep, slm_seq_t **out,
                     slm_error_t *err)
{
    slm_seq_t *s = calloc(1, sizeof *s);
    if (!s)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "sequence: out of memory");
    s->g = g;
    s->id = (int32_t)i;
    s->row = -1;
    if (keep)
        slm_context_seq_truncate(g->ctx, s->id, (int32_t)keep);
    else
        slm_context_seq_clear(g->ctx, s->id);
    if (g->prompt_cache) {
        g->n_hist[i] = keep;
        g->hist_valid[i] = keep > 0;
    }
    g->slots[i] = s;
    *out = s;
    return SLM_OK;
}

int slm_seq_new(slm_generator_t *g, slm_seq_t **out, slm_error_t *err)
{
    if (!g || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: NULL argument");
    *out = NULL;
    uint32_t i = 0;
    while (i < g->n_slots && g->slots[i])
        i++;
    if (i == g->n_slots)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "sequence: all %u slots are taken",
                         g->n_slots);
    return take_slot(g, i, 0, out, err);
}

/* The adapter set of a start with p (as slm_seq_start reads it). */
static uint64_t adapter_set(const slm_seq_params_t *p)
{
    if (!p || !p->adapters)
        return ~0ull;
    uint64_t set = 0;
    for (size_t i = 0; i < p->n_adapters; i++)
        if (p->adapters[i] >= 0 && p->adapters[i] < 64)
            set |= 1ull << p->adapters[i];
    return set;
}

int slm_seq_new_for(slm_generator_t *g, const slm_seq_params_t *p, const int32_t *prompt,
                    size_t n_prompt, slm_seq_t **out, size_t *n_kept, slm_error_t *err)
{
    if (!g || !out || !n_kept || (n_prompt && !prompt))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: NULL argument");
    *out = NULL;
    *n_kept = 0;
    if (!g->prompt_cache)
        return slm_seq_new(g, out, err);
    slm_seq_params_t pp;
    slm_seq_params_default(&pp);
    if (p)
        memcpy(&pp, p, p->struct_size < sizeof pp ? p->struct_size : sizeof pp);
    uint64_t set = adapter_set(&pp);
    /* The longest shared start; among equals, the slot freed longest ago (its cells
     * are the least likely to be asked for again). */
    int64_t best = -1;
    uint32_t best_len = 0;
    for (uint32_t i = 0; i < g->n_slots; i++) {
        if (g->slots[i])
            continue;
        uint32_t n = slm__gen_hist_len(g, (int32_t)i), len = 0;
        const int32_t *h = g->hist + (size_t)i * g->n_ctx_slot;
        if (g->hist_valid[i] && g->hist_set[i] == set)
            while (len < n && len < n_prompt && h[len] == prompt[len])
                len++;
        if (best < 0 || len > best_len ||
            (len == best_len && g->freed_at[i] < g->freed_at[best])) {
            best = i;
            best_len = len;
        }
    }
    if (best < 0)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "sequence: all %u slots are taken",
                         g->n_slots);
    if (n_prompt && best_len > n_prompt - 1)
        best_len = (uint32_t)(n_prompt - 1);   /* the last token runs, for its logits */
    int rc = take_slot(g, (uint32_t)best, best_len, out, err);
    if (rc == SLM_OK)
        *n_kept = best_len;
    return rc;
}

void slm_seq_free(slm_seq_t *s)
{
    if (!s)
        return;
    slm_generator_t *g = s->g;
    if (g->prompt_cache)
        g->freed_at[s->id] = ++g->tickets;
    else
        slm_context_seq_clear(g->ctx, s->id);
    g->slots[s->id] = NULL;
    slm_sampler_free(s->smp);
    slm_stop_free(s->stop);
    slm_detokenizer_free(s->dt);
    free(s->prompt);
    free(s->tokens);
    free(s->text);
    free(s->lp);
    free(s->masked);
    slm__json_state_free(s->json);
    free(s);
}

/* ---- starting ---- */

static int check_start(slm_seq_t *s, const slm_seq_params_t *p, const int32_t *prompt,
                       size_t n_prompt, slm_error_t *err)
{
    if (!s || !p || !prompt || n_prompt == 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: a start needs a prompt");
    if (s->state != SLM_SEQ_IDLE)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "sequence %d is still running", s->id);
    if (p->max_tokens < -1)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: max_tokens %d is negative",
                         p->max_tokens);
    int32_t n_vocab = slm_model_n_vocab(s->g->m);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= n_vocab)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: prompt token %d (at "
                             "%zu) is outside the vocabulary of %d", prompt[i], i, n_vocab);
    uint64_t used = (uint64_t)slm_seq_pos(s);
    if (used + n_prompt > s->g->n_ctx_slot)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: %zu prompt tokens do not "
                         "fit: a slot holds %u tokens and %llu are used", n_prompt,
                         s->g->n_ctx_slot, (unsigned long long)used);
    size_t n_all = slm_model_n_adapters(s->g->m);
    for (size_t i = 0; p->adapters && i < p->n_adapters; i++)
        if (p->adapters[i] < 0 || (size_t)p->adapters[i] >= n_all ||
            p->adapters[i] >= SLM__MAX_ROW_ADAPTERS)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: adapter %d is not one "
                             "of the %zu attached", p->adapters[i], n_all);
    if (p->n_logprobs < -1 || p->n_logprobs > 20)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sequence: n_logprobs %d is outside "
                         "-1..20", p->n_logprobs);
    return SLM_OK;
}

/* The sampler, stop matcher and detokenizer of a start. */
static int start_tools(slm_seq_t *s, const slm_seq_params_t *p, bool *fresh_sampler,
                       slm_error_t *err)
{
    *fresh_sampler = p->sampling || !s->smp;
    if (*fresh_sampler) {
        slm_sampler_params_t def;
        slm_sampler_params_default(&def);
        slm_sampler_t *smp = slm_sampler_new(p->sampling ? p->sampling : &def, err);
        if (!smp)
            return err && err->code ? err->code : SLM_E_INVALID;
        slm_sampler_free(s->smp);
        s->smp = smp;
    }
    slm_stop_free(s->stop);
    slm_detokenizer_free(s->dt);
    s->dt = NULL;
    if (!(s->stop = slm_stop_new(p->stop, p->n_stop, err)))
        return err && err->code ? err->code : SLM_E_NOMEM;
    unsigned flags = p->flags & SLM_SEQ_CONTINUES ? SLM_DECODE_CONTINUE : 0;
    if (slm_detokenizer_new(s->g->tok, flags, &s->dt) != SLM_OK)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "sequence: out of memory");
    slm__json_state_free(s->json);
    s->json = NULL;
    if (!p->json)
        return SLM_OK;
    size_t nv = (size_t)slm_model_n_vocab(s->g->m);
    if (!s->masked && !(s->masked = malloc(nv * sizeof *s->masked)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "sequence: out of memory");
    if (!(s->json = slm__json_state_new(p->json)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "sequence: out of memory");
    return SLM_OK;
}

int slm_seq_start(slm_seq_t *s, const slm_seq_params_t *params, const int32_t *prompt,
                  size_t n_prompt, slm_error_t *err)
{
    slm_seq_params_t p;
    slm_seq_params_default(&p);
    if (params)
        memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    bool fresh_sampler = false;
    int rc = check_start(s, &p, prompt, n_prompt, err);
    if (rc == SLM_OK)
        rc = start_tools(s, &p, &fresh_sampler, err);
    if (rc != SLM_OK)
        return rc;
    if (n_prompt > s->cap_prompt) {
        int32_t *v = realloc(s->prompt, n_prompt * sizeof *v);
        if (!v)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "sequence: out of memory");
        s->prompt = v;
        s->cap_prompt = n_prompt;
    }
    memcpy(s->prompt, prompt, n_prompt * sizeof *prompt);
    slm_generator_t *g = s->g;
    uint64_t set = adapter_set(&p);
    if (g->prompt_cache) {
        uint32_t held = slm__gen_hist_len(g, s->id);
        /* A new sampler's history starts with what the cells hold (a prompt the
         * cache kept in part has its whole self there, as without the cache). */
        if (fresh_sampler)
            for (uint32_t i = 0; i < held; i++)
                slm_sampler_accept(s->smp, g->hist[(size_t)s->id * g->n_ctx_slot + i]);
        /* The cells are reusable only if they all ran with one adapter set. */
        g->hist_valid[s->id] = held == 0 || (g->hist_valid[s->id] && g->hist_set[s->id] == set);
        g->hist_set[s->id] = set;
    }
    for (size_t i = 0; i < n_prompt; i++)
        slm_sampler_accept(s->smp, prompt[i]);
    s->n_prompt = n_prompt;
    s->n_fed = 0;
    s->max_tokens = p.max_tokens;
    s->n_logprobs = p.n_logprobs;
    s->on_text = p.on_text;
    s->user = p.user;
    s->n_tokens = s->len = 0;
    if (s->text)
        s->text[0] = '\0';
    s->stop_hit = s->cancel = false;
    s->t_start = s->t_first = s->t_end = 0;
    s->why = SLM_SEQ_NOT_STOPPED;
    s->row = -1;
    s->ticket = ++s->g->tickets;
    s->adapters = set;
    slm__context_seq_adapters(s->g->ctx, s->id, s->adapters);
    s->state = SLM_SEQ_PREFILL;
    return SLM_OK;
}

void slm_seq_cancel(slm_seq_t *s)
{
    if (s && s->state != SLM_SEQ_IDLE)
        s->cancel = true;
}

/* ---- tokens ---- */

static bool push_token(slm_seq_t *s, int32_t t)
{
    if (s->n_tokens == s->cap_tokens) {
        size_t cap = s->cap_tokens ? 2 * s->cap_tokens : 256;
        int32_t *v = realloc(s->tokens, cap * sizeof *v);
        if (!v)
            return false;
        s->tokens = v;
        s->cap_tokens = cap;
    }
    s->tokens[s->n_tokens++] = t;
    return true;
}

/* Keep and hand out text that is ready. */
static bool show(slm_seq_t *s, const char *t, size_t n)
{
    if (!n)
        return true;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *v = realloc(s->text, cap);
        if (!v)
            return false;
        s->text = v;
        s->cap = cap;
    }
    memcpy(s->text + s->len, t, n);
    s->len += n;
    s->text[s->len] = '\0';
    if (s->on_text)
        s->on_text(s->user, t, n);
    return true;
}

void slm__seq_finish(slm_seq_t *s, slm_seq_stop_t why, double now)
{
    const char *t, *e;
    size_t n = 0, en = 0;
    if (!s->stop_hit && s->dt) {
        slm_detokenizer_flush(s->dt, &t, &n);
        if (n)
            slm_stop_feed(s->stop, t, n, &e, &en), show(s, e, en);
        slm_stop_flush(s->stop, &e, &en);
        show(s, e, en);
    }
    s->why = why;
    s->state = SLM_SEQ_IDLE;
    s->cancel = false;
    s->row = -1;
    if (s->t_first == 0)
        s->t_first = now;
    s->t_end = now;
}

/* The token's text through the stop matcher; true when a stop string appeared. */
static bool emit(slm_seq_t *s, int32_t tok, bool *oom)
{
    const char *t, *e;
    size_t n = 0, en = 0;
    slm_detokenizer_feed(s->dt, tok, &t, &n);
    bool hit = slm_stop_feed(s->stop, t, n, &e, &en);
    *oom = !show(s, e, en);
    return hit;
}

/* Token n_tokens's log-probability and the top ones, from the raw logits. */
static bool keep_logprobs(slm_seq_t *s, const float *logits, int32_t nv, int32_t tok)
{
    size_t k = (size_t)s->n_logprobs, w = k + 1;
    if (s->n_tokens >= s->cap_lp) {
        size_t cap = s->cap_lp ? 2 * s->cap_lp : 256;
        slm_token_logprob_t *v = realloc(s->lp, cap * w * sizeof *v);
        if (!v)
            return false;
        s->lp = v;
        s->cap_lp = cap;
    }
    float max = -INFINITY;
    for (int32_t t = 0; t < nv; t++)
        max = logits[t] > max ? logits[t] : max;
    double sum = 0;
    for (int32_t t = 0; t < nv; t++)
        sum += exp((double)(logits[t] - max));
    float lse = max + (float)log(sum);
    slm_token_logprob_t *row = s->lp + s->n_tokens * w, *top = row + 1;
    row[0] = (slm_token_logprob_t){tok, logits[tok] - lse};
    size_t n = 0;
    for (int32_t t = 0; t < nv && k; t++) {   /* insertion into the k best so far */
        float x = logits[t];
        if (n == k && x <= top[k - 1].logprob)
            continue;
        size_t j = n < k ? n++ : k - 1;
        while (j > 0 && top[j - 1].logprob < x) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (slm_token_logprob_t){t, x};
    }
    for (size_t j = 0; j < n; j++)
        top[j].logprob -= lse;
    return true;
}

/* The logits the sampler sees: with a JSON filter, only the tokens it lets through
 * (NULL when it lets none). */
static const float *filtered(slm_seq_t *s, const float *logits, int32_t nv)
{
    if (!s->json)
        return logits;
    memcpy(s->masked, logits, (size_t)nv * sizeof *logits);
    return slm__json_mask(s->json, s->masked, nv) ? s->masked : NULL;
}

bool slm__seq_take(slm_seq_t *s, const float *logits, double now)
{
    slm_generator_t *g = s->g;
    if (s->state == SLM_SEQ_PREFILL)
        s->t_first = now;
    s->state = SLM_SEQ_DECODING;
    int32_t nv = slm_model_n_vocab(g->m);
    const float *use = filtered(s, logits, nv);
    int32_t tok = use ? slm_sampler_sample(s->smp, use, nv, NULL) : -1;
    if (tok < 0) {
        slm__seq_finish(s, SLM_SEQ_ERROR, now);
        return true;
    }
    slm_sampler_accept(s->smp, tok);
    if (slm_tokenizer_is_eog(g->tok, tok)) {
        slm__seq_finish(s, SLM_SEQ_EOS, now);
        return true;
    }
    if (s->json)
        slm__json_accept(s->json, tok);
    bool oom = s->n_logprobs >= 0 && !keep_logprobs(s, logits, nv, tok);
    oom = oom || !push_token(s, tok);
    if (!oom && emit(s, tok, &oom)) {
        s->stop_hit = true;
        slm__seq_finish(s, SLM_SEQ_STOP_STRING, now);
        return true;
    }
    if (oom) {
        slm__seq_finish(s, SLM_SEQ_ERROR, now);
        return false;
    }
    if (s->json && slm__json_done(s->json))
        slm__seq_finish(s, SLM_SEQ_EOS, now);      /* the value is whole: nothing may follow */
    else if (s->max_tokens >= 0 && s->n_tokens == (size_t)s->max_tokens)
        slm__seq_finish(s, SLM_SEQ_LENGTH, now);   /* the last token needs no forward pass */
    else if ((uint32_t)slm_seq_pos(s) >= g->n_ctx_slot)
        slm__seq_finish(s, SLM_SEQ_CONTEXT, now);
    else
        s->next = tok;
    return true;
}

/* ---- reading ---- */

slm_seq_state_t slm_seq_state(const slm_seq_t *s)
{
    return s ? s->state : SLM_SEQ_IDLE;
}

slm_seq_stop_t slm_seq_stop_reason(const slm_seq_t *s)
{
    return s ? s->why : SLM_SEQ_NOT_STOPPED;
}

int32_t slm_seq_id(const slm_seq_t *s)
{
    return s ? s->id : -1;
}

int32_t slm_seq_pos(const slm_seq_t *s)
{
    return s ? slm_context_seq_pos(s->g->ctx, s->id) : -1;
}

void slm_seq_truncate(slm_seq_t *s, int32_t pos)
{
    if (s && s->state == SLM_SEQ_IDLE)
        slm_context_seq_truncate(s->g->ctx, s->id, pos);
}

const int32_t *slm_seq_tokens(const slm_seq_t *s, size_t *n)
{
    if (n)
        *n = s ? s->n_tokens : 0;
    return s ? s->tokens : NULL;
}

const char *slm_seq_text(const slm_seq_t *s, size_t *len)
{
    if (len)
        *len = s ? s->len : 0;
    return s && s->text ? s->text : "";
}

int slm_seq_logprob(const slm_seq_t *s, size_t i, slm_token_logprob_t *chosen,
                    const slm_token_logprob_t **top, size_t *n_top)
{
    if (!s || s->n_logprobs < 0 || i >= s->n_tokens)
        return SLM_E_INVALID;
    const slm_token_logprob_t *row = s->lp + i * ((size_t)s->n_logprobs + 1);
    if (chosen)
        *chosen = row[0];
    if (top)
        *top = row + 1;
    if (n_top)
        *n_top = (size_t)s->n_logprobs;
    return SLM_OK;
}

void slm_seq_stats(const slm_seq_t *s, slm_seq_stats_t *out)
{
    if (!out)
        return;
    uint32_t size = out->struct_size && out->struct_size < sizeof *out ? out->struct_size
                                                                       : sizeof *out;
    slm_seq_stats_t st = {.struct_size = size};
    if (s) {
        st.n_prompt = s->n_prompt;
        st.n_gen = s->n_tokens;
        double end = s->t_end ? s->t_end : slm__now_ms();
        double first = s->t_first ? s->t_first : end;
        st.prompt_ms = s->t_start ? first - s->t_start : 0;
        st.gen_ms = s->t_start ? end - first : 0;
    }
    memcpy(out, &st, size);
}

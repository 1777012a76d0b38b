/* The token sampler: penalties, top-k, top-p, min-p, temperature and a seeded
 * draw over a logits vector, in the order <slmops/sampler.h> documents. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/sampler.h>

#include "internal/util.h"

/* History kept for penalties beyond what repeat_last_n needs is trimmed in one go
 * once it reaches this many extra tokens (amortised O(1) per token). */
#define HISTORY_SLACK 4096

struct slm_sampler {
    slm_sampler_params_t p;
    uint64_t rng[4];          /* xoshiro256** state */
    int32_t *history;
    size_t n_history, cap_history;
    slm_candidate_t *cand;    /* scratch, n_vocab entries */
    int32_t *counts;          /* scratch, n_vocab entries, all zero between calls */
    int32_t cap_vocab;
};

void slm_sampler_params_default(slm_sampler_params_t *p)
{
    if (!p)
        return;
    *p = (slm_sampler_params_t){
        .struct_size = sizeof *p,
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = 0,
    };
}

/* ---- PRNG: splitmix64 seeds xoshiro256** (both public-domain algorithms by
 * Vigna / Blackman), so a seed means the same stream everywhere. ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(slm_sampler_t *s)
{
    return (double)(xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

static void rng_seed(slm_sampler_t *s)
{
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

/* ---- life cycle ---- */

static bool bad_float(float v, float lo)
{
    return isnan(v) || v < lo;
}

slm_sampler_t *slm_sampler_new(const slm_sampler_params_t *p, slm_error_t *err)
{
    if (!p || p->struct_size != sizeof *p) {
        slm__fail(err, SLM_E_INVALID, NULL, -1, "sampler parameters: struct_size %u, expected %zu",
                  p ? p->struct_size : 0, sizeof *p);
        return NULL;
    }
    if (bad_float(p->temperature, -INFINITY) || bad_float(p->top_p, 0.0f) ||
        bad_float(p->min_p, 0.0f) || bad_float(p->repeat_penalty, 0.0f) ||
        p->repeat_penalty == 0.0f || isnan(p->frequency_penalty) ||
        isnan(p->presence_penalty) || p->repeat_last_n < -1) {
        slm__fail(err, SLM_E_INVALID, NULL, -1,
                  "sampler parameters out of range (temperature %g, top_p %g, min_p %g, "
                  "repeat_penalty %g, repeat_last_n %d)", (double)p->temperature,
                  (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty,
                  (int)p->repeat_last_n);
        return NULL;
    }
    slm_sampler_t *s = calloc(1, sizeof *s);
    if (!s) {
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory for the sampler");
        return NULL;
    }
    s->p = *p;
    rng_seed(s);
    return s;
}

void slm_sampler_free(slm_sampler_t *s)
{
    if (!s)
        return;
    free(s->history);
    free(s->cand);
    free(s->counts);
    free(s);
}

void slm_sampler_reset(slm_sampler_t *s)
{
    if (!s)
        return;
    s->n_history = 0;
    rng_seed(s);
}

void slm_sampler_accept(slm_sampler_t *s, int32_t token)
{
    if (!s || s->p.repeat_last_n == 0)
        return;
    size_t keep = s->p.repeat_last_n > 0 ? (size_t)s->p.repeat_last_n : 0;
    if (keep && s->n_history >= keep + HISTORY_SLACK) {
        memmove(s->history, s->history + s->n_history - keep, keep * sizeof *s->history);
        s->n_history = keep;
    }
    if (s->n_history == s->cap_history) {
        size_t cap = s->cap_history ? s->cap_history * 2 : 256;
        int32_t *h = realloc(s->history, cap * sizeof *h);
        if (!h)
            return;   /* penalties then see a shorter history; never fatal */
        s->history = h;
        s->cap_history = cap;
    }
    s->history[s->n_history++] = token;
}

/* ---- transforms on the candidate list ---- */

static int reserve(slm_sampler_t *s, int32_t n_vocab, slm_error_t *err)
{
    if (n_vocab <= s->cap_vocab)
        return SLM_OK;
    slm_candidate_t *c = realloc(s->cand, (size_t)n_vocab * sizeof *c);
    if (c)
        s->cand = c;
    int32_t *k = c ? realloc(s->counts, (size_t)n_vocab * sizeof *k) : NULL;
    if (!k)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory for %d candidates",
                         (int)n_vocab);
    s->counts = k;
    memset(s->counts, 0, (size_t)n_vocab * sizeof *k);
    s->cap_vocab = n_vocab;
    return SLM_OK;
}

static bool penalties_active(const slm_sampler_params_t *p)
{
    return p->repeat_last_n != 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f ||
            p->presence_penalty != 0.0f);
}

/* llama.cpp's rule: a positive logit is divided by the penalty, a negative one
 * multiplied, so a repeated token always becomes less likely; then frequency and
 * presence are subtracted. Runs on the full vocabulary, indexed by id. */
static void apply_penalties(slm_sampler_t *s, int32_t n_vocab)
{
    const slm_sampler_params_t *p = &s->p;
    if (!penalties_active(p) || s->n_history == 0)
        return;
    size_t n = s->n_history;
    if (p->repeat_last_n > 0 && (size_t)p->repeat_last_n < n)
        n = (size_t)p->repeat_last_n;
    const int32_t *h = s->history + s->n_history - n;
    for (size_t i = 0; i < n; i++)
        if (h[i] >= 0 && h[i] < n_vocab)
            s->counts[h[i]]++;
    for (size_t i = 0; i < n; i++) {
        int32_t t = h[i];
        if (t < 0 || t >= n_vocab || s->counts[t] == 0)
            continue;
        float *l = &s->cand[t].logit;
        *l = *l <= 0.0f ? *l * p->repeat_penalty : *l / p->repeat_penalty;
        *l -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
        s->counts[t] = 0;   /* each distinct token once; leaves counts zeroed */
    }
}

static int cmp_cand(const void *a, const void *b)
{
    const slm_candidate_t *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best (by cmp_cand) to the front, in order. */
static void select_top(slm_candidate_t *c, int32_t n, int32_t k)
{
    if (k < n) {
        /* Quickselect on the order cmp_cand defines, then sort only the head. */
        int32_t lo = 0, hi = n - 1;
        while (lo < hi) {
            slm_candidate_t pivot = c[lo + (hi - lo) / 2];
            int32_t i = lo, j = hi;
            while (i <= j) {
                while (cmp_cand(&c[i], &pivot) < 0)
                    i++;
                while (cmp_cand(&c[j], &pivot) > 0)
                    j--;
                if (i <= j) {
                    slm_candidate_t t = c[i];
                    c[i++] = c[j];
                    c[j--] = t;
                }
            }
            if (k - 1 <= j)
                hi = j;
            else if (k - 1 >= i)
                lo = i;
            else
                break;
        }
    }
    qsort(c, (size_t)(k < n ? k : n), sizeof *c, cmp_cand);
}

/* p of each candidate from its logit; c[0] holds the highest logit. */
static void softmax(slm_candidate_t *c, int32_t n)
{
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - c[0].logit);
        sum += c[i].p;
    }
    for (int32_t i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / sum);
}

static int32_t apply_top_p(slm_candidate_t *c, int32_t n, float top_p)
{
    if (top_p >= 1.0f)
        return n;
    softmax(c, n);
    double cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (cum >= top_p)
            return i + 1;
    }
    return n;
}

/* Keeps p >= min_p * p_max, i.e. logit >= max_logit + log(min_p). */
static int32_t apply_min_p(const slm_candidate_t *c, int32_t n, float min_p)
{
    if (min_p <= 0.0f)
        return n;
    float floor = c[0].logit + logf(min_p);
    int32_t keep = 1;
    while (keep < n && c[keep].logit >= floor)
        keep++;
    return keep;
}

/* Loads logits (NaN as -inf) and penalises them; returns how many are finite. */
static int32_t load_logits(slm_sampler_t *s, const float *logits, int32_t n_vocab)
{
    int32_t finite = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        float l = logits[i];
        s->cand[i] = (slm_candidate_t){.id = i, .logit = isnan(l) ? -INFINITY : l, .p = 0.0f};
    }
    apply_penalties(s, n_vocab);
    for (int32_t i = 0; i < n_vocab; i++)
        finite += s->cand[i].logit > -INFINITY;
    return finite;
}

/* Drops -inf candidates so that every later step sees real numbers. */
static int32_t compact(slm_candidate_t *c, int32_t n)
{
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit > -INFINITY)
            c[m++] = c[i];
    return m;
}

static int32_t argmax(const slm_candidate_t *c, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (c[i].logit > c[best].logit)
            best = i;
    return best;
}

static int run_transforms(slm_sampler_t *s, const float *logits, int32_t n_vocab,
                          int32_t *n_out, slm_error_t *err)
{
    if (!logits || n_vocab < 1)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sampler: no logits (n_vocab %d)",
                         (int)n_vocab);
    const slm_sampler_params_t *p = &s->p;
    /* Greedy without penalties: the best logit, without a candidate per token (a
     * 49152-token vocabulary made that a few percent of a batched decode step). */
    if (p->temperature <= 0.0f && !(penalties_active(p) && s->n_history)) {
        int32_t best = -1;
        for (int32_t i = 0; i < n_vocab; i++)
            if (logits[i] > -INFINITY && (best < 0 || logits[i] > logits[best]))
                best = i;   /* NaN compares false: never chosen */
        if (best < 0)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "sampler: every one of the %d "
                             "logits is NaN or -inf", (int)n_vocab);
        int rc = reserve(s, 1, err);
        if (rc != SLM_OK)
            return rc;
        s->cand[0] = (slm_candidate_t){.id = best, .logit = logits[best], .p = 1.0f};
        *n_out = 1;
        return SLM_OK;
    }
    int rc = reserve(s, n_vocab, err);
    if (rc != SLM_OK)
        return rc;
    if (load_logits(s, logits, n_vocab) == 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "sampler: every one of the %d logits is NaN or -inf", (int)n_vocab);
    slm_candidate_t *c = s->cand;
    if (p->temperature <= 0.0f) {
        c[0] = c[argmax(c, n_vocab)];
        c[0].p = 1.0f;
        *n_out = 1;
        return SLM_OK;
    }
    int32_t n = compact(c, n_vocab);
    int32_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    select_top(c, n, k);
    n = k;
    n = apply_top_p(c, n, p->top_p);
    n = apply_min_p(c, n, p->min_p);
    for (int32_t i = 0; i < n; i++)
        c[i].logit /= p->temperature;
    softmax(c, n);
    *n_out = n;
    return SLM_OK;
}

int slm_sampler_candidates(slm_sampler_t *s, const float *logits, int32_t n_vocab,
                           slm_candidate_t *out, int32_t *n_out, slm_error_t *err)
{
    if (!s || !out || !n_out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sampler: NULL argument");
    int32_t n = 0;
    int rc = run_transforms(s, logits, n_vocab, &n, err);
    if (rc != SLM_OK)
        return rc;
    memcpy(out, s->cand, (size_t)n * sizeof *out);
    *n_out = n;
    return SLM_OK;
}

int32_t slm_sampler_sample(slm_sampler_t *s, const float *logits, int32_t n_vocab,
                           slm_error_t *err)
{
    if (!s)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "sampler: NULL sampler");
    int32_t n = 0;
    int rc = run_transforms(s, logits, n_vocab, &n, err);
    if (rc != SLM_OK)
        return rc;
    if (n == 1)
        return s->cand[0].id;
    double u = rng_uniform(s), cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += s->cand[i].p;
        if (u < cum)
            return s->cand[i].id;
    }
    return s->cand[n - 1].id;   /* rounding left u just above the sum */
}

/* The benchmark job, measured the way llama-bench measures: prompt processing
 * (one batch of random tokens) and generation (one token per decode after BOS). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/jobs.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

void slm_bench_params_default(slm_bench_params_t *p)
{
    if (p)
        *p = (slm_bench_params_t){.struct_size = sizeof *p, .n_prompt = 512, .n_gen = 128,
                                  .reps = 5, .n_batch = 512, .seed = 1234};
}

static int32_t rand_token(uint64_t *s, int32_t n_vocab)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((*s >> 33) % (uint64_t)n_vocab);
}

/* The first token: BOS when the model starts texts with one, as llama-bench does. */
static int32_t first_token(slm_model_t *m, uint64_t *s)
{
    int32_t bos = slm_model_token_bos(m);
    return slm_model_add_bos(m) && bos >= 0 ? bos : rand_token(s, slm_model_n_vocab(m));
}

static int run_pp(slm_context_t *ctx, slm_model_t *m, int32_t n, uint64_t *s, int32_t *tok,
                  double *sec, slm_error_t *err)
{
    tok[0] = first_token(m, s);
    for (int32_t i = 1; i < n; i++)
        tok[i] = rand_token(s, slm_model_n_vocab(m));
    slm_context_seq_clear(ctx, -1);
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = n, .token = tok};
    double t0 = slm__job_now();
    int rc = slm_context_decode(ctx, &b, err);
    *sec = slm__job_now() - t0;
    return rc;
}

static int run_tg(slm_context_t *ctx, slm_model_t *m, int32_t n, uint64_t *s, double *sec,
                  slm_error_t *err)
{
    int32_t t = first_token(m, s);
    slm_context_seq_clear(ctx, -1);
    double t0 = slm__job_now();
    for (int32_t i = 0; i < n; i++) {
        slm_batch_t b = {.struct_size = sizeof b, .n_tokens = 1, .token = &t};
        int rc = slm_context_decode(ctx, &b, err);
        if (rc)
            return rc;
        t = rand_token(s, slm_model_n_vocab(m));
    }
    *sec = slm__job_now() - t0;
    return SLM_OK;
}

/* One warm-up run, then reps timed runs; mean and sample stddev of tokens/s.
 * Progress counts the runs, the warm-up included. */
static int measure(slm_context_t *ctx, slm_model_t *m, const slm_bench_params_t *p,
                   const slm__jobrt_t *rt, bool pp, int32_t *tok, slm_bench_stat_t *st,
                   slm_error_t *err)
{
    int32_t n = pp ? p->n_prompt : p->n_gen;
    const char *test = pp ? "pp" : "tg";
    char item[24];
    snprintf(item, sizeof item, "%s%d", test, (int)n);
    uint64_t s = p->seed;
    double sec, sum = 0, sum2 = 0, ms = 0;
    *st = (slm_bench_stat_t){.n_tokens = n};
    if (n <= 0)
        return SLM_OK;
    for (int32_t r = -1; r < p->reps; r++) {
        if (slm__jobrt_cancelled(rt))
            return slm__jobrt_fail_cancelled(err, "bench");
        int rc = pp ? run_pp(ctx, m, n, &s, tok, &sec, err) : run_tg(ctx, m, n, &s, &sec, err);
        if (rc)
            return rc;
        slm__jobrt_progress(rt, test, (uint64_t)(r + 2), (uint64_t)p->reps + 1, item, NAN);
        if (r < 0)
            continue;
        double ts = (double)n / (sec > 1e-9 ? sec : 1e-9);
        sum += ts;
        sum2 += ts * ts;
        ms += sec * 1e3;
    }
    st->reps = p->reps;
    st->mean = sum / p->reps;
    st->stddev = p->reps > 1 ? sqrt(fmax(0.0, (sum2 - sum * sum / p->reps) / (p->reps - 1))) : 0;
    st->mean_ms = ms / p->reps;
    return SLM_OK;
}

int slm__bench_run(slm_model_t *m, const slm_bench_params_t *p, const slm__jobrt_t *rt,
                   slm_bench_result_t *out, slm_error_t *err)
{
    if (!m || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "bench: NULL argument");
    slm_bench_params_t o;
    slm_bench_params_default(&o);
    if (p)
        memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    if (o.n_prompt < 0 || o.n_gen < 0 || o.n_prompt > (1 << 20) || o.n_gen > (1 << 20) ||
        o.reps < 0 || o.reps > 100000 || o.n_batch < 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "bench: bad sizes (-p %d, -n %d, "
                         "-r %d)", o.n_prompt, o.n_gen, o.reps);
    if (o.reps == 0)
        o.reps = 5;
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = (uint32_t)(o.n_prompt + o.n_gen + 1);
    cp.n_batch = o.n_batch ? (uint32_t)o.n_batch : 512;
    slm_context_t *ctx = NULL;
    int32_t *tok = malloc(((size_t)o.n_prompt + 1) * sizeof *tok);
    int rc = tok ? slm_context_new(m, &cp, &ctx, err)
                 : slm__fail(err, SLM_E_NOMEM, NULL, -1, "bench: out of memory");
    slm_bench_result_t r = {.struct_size = sizeof r};
    if (rc == SLM_OK)
        rc = measure(ctx, m, &o, rt, true, tok, &r.pp, err);
    if (rc == SLM_OK)
        rc = measure(ctx, m, &o, rt, false, tok, &r.tg, err);
    slm_context_free(ctx);
    free(tok);
    if (rc == SLM_OK)
        *out = r;
    return rc;
}

int slm_bench_run(slm_model_t *m, const slm_bench_params_t *p, slm_bench_result_t *out,
                  slm_error_t *err)
{
    slm_bench_params_t o;
    slm_bench_params_default(&o);
    if (p)
        memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    slm__jobrt_t rt;
    slm__jobrt_init(&rt, NULL, NULL, o.cancel);
    return slm__bench_run(m, p, &rt, out, err);
}

/* Prompt-processing and generation speed of the model runtime, llama-bench style:
 * pp = one batch of P random tokens, tg = N single-token decodes; used by bench/generate. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/model.h>
#include <slmops/registry.h>

typedef struct opts {
    const char *model;
    int p, n, t, r;
} opts_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.p = 512, .n = 128, .t = 2, .r = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (strcmp(a, "-m") == 0)
            o->model = v;
        else if (strcmp(a, "-p") == 0)
            o->p = atoi(v);
        else if (strcmp(a, "-n") == 0)
            o->n = atoi(v);
        else if (strcmp(a, "-t") == 0)
            o->t = atoi(v);
        else if (strcmp(a, "-r") == 0)
            o->r = atoi(v);
        else
            return -1;
        i++;
    }
    return o->model && o->p >= 0 && o->n >= 0 && o->r > 0 && o->p + o->n <= 1 << 20 ? 0 : -1;
}

static void stats(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* Tokens/s of decoding `n` tokens in batches of `per_call`, from an empty cache
 * or (pp == false) after the prompt already in it. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_rate;

static double run(slm_context_t *c, const int32_t *tok, int n, int per_call, slm_error_t *err)
{
    double t0 = now(), c0 = cpu_now();
    for (int i = 0; i < n; i += per_call) {
        slm_batch_t b = {.struct_size = sizeof b, .n_tokens = n - i < per_call ? n - i : per_call,
                         .token = tok + i};
        if (slm_context_decode(c, &b, err) != SLM_OK)
            return -1.0;
    }
    cpu_rate = n / (cpu_now() - c0);
    return n / (now() - t0);
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: decode-bench -m MODEL [-p 512] [-n 128] [-t 2] [-r 3]\n");
        return 2;
    }
    slm_error_t err = {.struct_size = sizeof err};
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.n_threads = o.t;
    slm_model_t *m = NULL;
    slm_context_t *c = NULL;
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = (uint32_t)(o.p + o.n + 16);
    cp.n_batch = o.p > 0 ? (uint32_t)o.p : 1;
    if (!reg || slm_model_load(reg, o.model, &mp, &m, &err) ||
        slm_context_new(m, &cp, &c, &err)) {
        fprintf(stderr, "decode-bench: %s\n", err.message);
        return 1;
    }
    int n_tok = o.p + o.n + 1;
    int32_t *tok = malloc((size_t)n_tok * sizeof *tok);
    double *pp = calloc((size_t)o.r + 1, sizeof *pp), *tg = calloc((size_t)o.r + 1, sizeof *tg);
    if (!tok || !pp || !tg)
        return 1;
    unsigned seed = 12345;
    for (int i = 0; i < n_tok; i++) {
        seed = seed * 1664525u + 1013904223u;
        tok[i] = (int32_t)((seed >> 8) % (unsigned)slm_model_n_vocab(m));
    }
    /* One warm-up of each (page faults of the mapping, pool start-up), as llama-bench. */
    for (int rep = -1; rep < o.r; rep++) {
        slm_context_seq_clear(c, -1);
        double a = o.p ? run(c, tok, o.p, o.p, &err) : 0.0;
        slm_context_seq_clear(c, -1);
        /* tg starts after a prompt of one token, as llama-bench's tg128 does. */
        double b = o.n ? run(c, tok + o.p, o.n, 1, &err) : 0.0;
        if (o.n)
            fprintf(stderr, "tg wall %.1f cpu %.1f\n", b, cpu_rate);
        if (a < 0 || b < 0) {
            fprintf(stderr, "decode-bench: %s\n", err.message);
            return 1;
        }
        if (rep >= 0) {
            pp[rep] = a;
            tg[rep] = b;
        }
    }
    double pm, ps, tm, ts;
    stats(pp, o.r, &pm, &ps);
    stats(tg, o.r, &tm, &ts);
    printf("{\"model\": \"%s\", \"threads\": %d, \"reps\": %d, \"pp\": %d, \"pp_ts\": %.3f, "
           "\"pp_sd\": %.3f, \"tg\": %d, \"tg_ts\": %.3f, \"tg_sd\": %.3f}\n", o.model, o.t,
           o.r, o.p, pm, ps, o.n, tm, ts);
    free(tok);
    free(pp);
    free(tg);
    slm_context_free(c);
    slm_model_free(m);
    slm_registry_free(reg);
    return 0;
}

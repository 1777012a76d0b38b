/* The quantize job's evaluation: the original and the quantized model scored on
 * the same chunks of a text (llama-perplexity's method), and the KL divergence
 * between their next-token distributions (llama-perplexity --kl-divergence). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/input.h>
#include <slmops/model.h>
#include <slmops/tokenizer.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

/* Larger text files are refused: the whole file is tokenized at once. */
#define MAX_TEXT_BYTES (1ull << 30)

typedef struct side {
    slm_model_t *m;
    slm_context_t *ctx;
    double nll;
} side_t;

typedef struct evaljob {
    side_t a, b;               /* a: original, b: quantized */
    int32_t n_ctx, n_vocab;
    int32_t *buf;
    int8_t *want;
    float *saved;              /* a's logits of one chunk's scored positions */
    double *lp;                /* log-softmax scratch, 2 * n_vocab */
    double kld, kld_max;
    uint64_t n, agree;
} evaljob_t;

static char *read_text(const char *path, size_t *len, slm_error_t *err)
{
    char *buf;
    return slm_input_read_all(path, MAX_TEXT_BYTES, &buf, len, err) == SLM_OK ? buf : NULL;
}

static int tokenize(const slm_model_file_t *in, const char *path, int32_t **ids, size_t *n,
                    slm_error_t *err)
{
    size_t len = 0;
    char *text = read_text(path, &len, err);
    if (!text)
        return err ? err->code : SLM_E_IO;
    slm_tokenizer_t *tok = NULL;
    int rc = slm_tokenizer_from_model_file(in, &tok, err);
    if (rc == SLM_OK)
        rc = slm_tokenizer_encode(tok, text, len, slm_tokenizer_add_bos(tok) ? SLM_TOKENIZE_ADD_BOS
                                                                             : 0, ids, n, err);
    slm_tokenizer_free(tok);
    free(text);
    return rc;
}

/* log-softmax of n logits into out, in double. */
static void log_softmax(const float *x, int32_t n, double *out)
{
    float mx = x[0];
    for (int32_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)(x[i] - mx));
    double ls = log(sum);
    for (int32_t i = 0; i < n; i++)
        out[i] = (double)(x[i] - mx) - ls;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* One position: both NLLs of the target, KL(a || b) and whether the argmax agrees. */
static void score(evaljob_t *e, const float *la, const float *lb, int32_t target)
{
    int32_t V = e->n_vocab;
    double *pa = e->lp, *pb = e->lp + V, kl = 0.0;
    log_softmax(la, V, pa);
    log_softmax(lb, V, pb);
    for (int32_t i = 0; i < V; i++)
        kl += exp(pa[i]) * (pa[i] - pb[i]);
    kl = kl > 0 ? kl : 0;
    e->a.nll -= pa[target];
    e->b.nll -= pb[target];
    e->kld += kl;
    e->kld_max = kl > e->kld_max ? kl : e->kld_max;
    e->agree += argmax(la, V) == argmax(lb, V);
    e->n++;
}

static int decode(side_t *s, const evaljob_t *e, slm_error_t *err)
{
    slm_context_seq_clear(s->ctx, -1);
    slm_batch_t bt = {.struct_size = sizeof bt, .n_tokens = e->n_ctx, .token = e->buf,
                      .logits = e->want};
    return slm_context_decode(s->ctx, &bt, err);
}

static int chunk(evaljob_t *e, const int32_t *tokens, slm_error_t *err)
{
    int32_t first = e->n_ctx / 2, V = e->n_vocab;
    memcpy(e->buf, tokens, (size_t)e->n_ctx * sizeof *e->buf);
    if (slm_model_add_bos(e->a.m))
        e->buf[0] = slm_model_token_bos(e->a.m);
    for (int32_t i = 0; i < e->n_ctx; i++)
        e->want[i] = i >= first && i < e->n_ctx - 1;
    int rc = decode(&e->a, e, err);
    for (int32_t i = first; rc == SLM_OK && i < e->n_ctx - 1; i++)
        memcpy(e->saved + (size_t)(i - first) * V, slm_context_logits(e->a.ctx, i),
               (size_t)V * sizeof(float));
    if (rc == SLM_OK)
        rc = decode(&e->b, e, err);
    for (int32_t i = first; rc == SLM_OK && i < e->n_ctx - 1; i++)
        score(e, e->saved + (size_t)(i - first) * V, slm_context_logits(e->b.ctx, i),
              tokens[i + 1]);
    return rc;
}

static int open_side(slm_registry_t *reg, const slm_model_file_t *mf, const char *path,
                     const evaljob_t *e, int n_threads, side_t *s, slm_error_t *err)
{
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.n_threads = n_threads;
    int rc = mf ? slm_model_from_file(reg, mf, &mp, &s->m, err)
                : slm_model_load(reg, path, &mp, &s->m, err);
    if (rc)
        return rc;
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = (uint32_t)e->n_ctx;
    cp.n_batch = (uint32_t)e->n_ctx;
    cp.type_kv = SLM_TYPE_F32;
    return slm_context_new(s->m, &cp, &s->ctx, err);
}

static int run(evaljob_t *e, const int32_t *tokens, size_t n_tokens,
               const slm_quantize_params_t *p, const slm__jobrt_t *rt,
               slm_quantize_report_t *rep, slm_error_t *err)
{
    int32_t V = e->n_vocab, n_chunks = (int32_t)(n_tokens / (size_t)e->n_ctx);
    e->buf = malloc((size_t)e->n_ctx * sizeof *e->buf);
    e->want = malloc((size_t)e->n_ctx);
    e->saved = malloc((size_t)(e->n_ctx / 2) * (size_t)V * sizeof *e->saved);
    e->lp = malloc(2 * (size_t)V * sizeof *e->lp);
    if (!e->buf || !e->want || !e->saved || !e->lp)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize: evaluation: out of memory");
    for (int32_t c = 0; c < n_chunks; c++) {
        if (slm__jobrt_cancelled(rt))
            return slm__jobrt_fail_cancelled(err, "quantize");
        int rc = chunk(e, tokens + (size_t)c * (size_t)e->n_ctx, err);
        if (rc)
            return rc;
        slm__jobrt_progress(rt, "eval", (uint64_t)c + 1, (uint64_t)n_chunks, p->eval_file, NAN);
    }
    rep->has_eval = true;
    rep->eval_ctx = e->n_ctx;
    rep->eval_chunks = n_chunks;
    rep->eval_scored = e->n;
    rep->ppl_before = exp(e->a.nll / (double)e->n);
    rep->ppl_after = exp(e->b.nll / (double)e->n);
    rep->kld_mean = e->kld / (double)e->n;
    rep->kld_max = e->kld_max;
    rep->top1_agree = (double)e->agree / (double)e->n;
    return SLM_OK;
}

int slm__jobs_eval_tokens(const slm_model_file_t *in, const char *path, int32_t n_ctx,
                          int32_t **tokens, size_t *n_tokens, slm_error_t *err)
{
    *tokens = NULL;
    *n_tokens = 0;
    int rc = tokenize(in, path, tokens, n_tokens, err);
    if (rc == SLM_OK && *n_tokens < 2 * (size_t)n_ctx)
        rc = slm__fail(err, SLM_E_INVALID, path, -1, "quantize: the evaluation text has %zu "
                       "tokens; a context of %d needs at least %d (two chunks)", *n_tokens,
                       n_ctx, 2 * n_ctx);
    if (rc) {
        free(*tokens);
        *tokens = NULL;
    }
    return rc;
}

int slm__jobs_eval(slm_registry_t *reg, const slm_model_file_t *in, const char *out_path,
                   const int32_t *tokens, size_t n_tokens, const slm_quantize_params_t *p,
                   const slm__jobrt_t *rt, slm_quantize_report_t *rep, slm_error_t *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    evaljob_t e = {.n_ctx = p->eval_ctx > 0 ? p->eval_ctx : 512};
    int rc = open_side(reg, in, NULL, &e, p->n_threads, &e.a, err);
    if (rc == SLM_OK)
        rc = open_side(reg, NULL, out_path, &e, p->n_threads, &e.b, err);
    if (rc == SLM_OK && slm_model_n_vocab(e.a.m) != slm_model_n_vocab(e.b.m))
        rc = slm__fail(err, SLM_E_FORMAT, out_path, -1, "quantize: the two models' "
                       "vocabularies differ");
    for (size_t i = 0; rc == SLM_OK && i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= slm_model_n_vocab(e.a.m))
            rc = slm__fail(err, SLM_E_FORMAT, p->eval_file, -1, "quantize: token %d is "
                           "outside the model's vocabulary", tokens[i]);
    if (rc == SLM_OK) {
        e.n_vocab = slm_model_n_vocab(e.a.m);
        rc = run(&e, tokens, n_tokens, p, rt, rep, err);
    }
    side_t *sides[2] = {&e.a, &e.b};
    for (int i = 0; i < 2; i++) {
        slm_context_free(sides[i]->ctx);
        slm_model_free(sides[i]->m);
    }
    free(e.buf);
    free(e.want);
    free(e.saved);
    free(e.lp);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep->eval_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return rc;
}

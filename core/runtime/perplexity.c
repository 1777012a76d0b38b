/* Perplexity exactly as llama.cpp's llama-perplexity computes it: chunks of n_ctx
 * tokens, BOS first in each chunk, only the second half of each chunk scored. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/eval.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/runtime.h"

void slm_perplexity_params_default(slm_perplexity_params_t *p)
{
    if (p)
        *p = (slm_perplexity_params_t){.struct_size = sizeof *p, .n_ctx = 512,
                                       .type_kv = SLM_TYPE_F32};
}

/* -log softmax(logits)[target], accumulated in double as llama.cpp does. */
static double nll_of(const float *logits, int32_t n_vocab, int32_t target)
{
    float mx = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += exp((double)(logits[i] - mx));
    return -((double)(logits[target] - mx) - log(sum));
}

/* Decode one chunk (first token replaced by BOS when the model adds one) and add
 * the NLL of its second half. */
static int score_chunk(slm_context_t *ctx, const slm_model_t *m, const int32_t *tokens,
                       int32_t n_ctx, int32_t n_batch, int32_t *buf, int8_t *want, double *nll,
                       uint64_t *count, slm_error_t *err)
{
    int32_t first = n_ctx / 2, V = m->hp.n_vocab;
    memcpy(buf, tokens, (size_t)n_ctx * sizeof *buf);
    if (m->add_bos)
        buf[0] = m->bos;
    slm_context_seq_clear(ctx, -1);
    for (int32_t b0 = 0; b0 < n_ctx; b0 += n_batch) {
        int32_t n = n_ctx - b0 < n_batch ? n_ctx - b0 : n_batch;
        for (int32_t i = 0; i < n; i++)
            want[i] = b0 + i >= first && b0 + i < n_ctx - 1;
        slm_batch_t bt = {.struct_size = sizeof bt, .n_tokens = n, .token = buf + b0,
                          .logits = want};
        int rc = slm_context_decode(ctx, &bt, err);
        if (rc)
            return rc;
        for (int32_t i = 0; i < n; i++) {
            if (!want[i])
                continue;
            /* Scored against the original text: llama.cpp restores the token it
             * replaced by BOS before scoring (only position 0, never scored). */
            *nll += nll_of(slm_context_logits(ctx, i), V, tokens[b0 + i + 1]);
            (*count)++;
        }
    }
    return SLM_OK;
}

int slm_eval_perplexity(slm_model_t *m, const int32_t *tokens, size_t n_tokens,
                        const slm_perplexity_params_t *p, slm_perplexity_result_t *out,
                        slm_error_t *err)
{
    if (!m || !tokens || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "perplexity: NULL argument");
    slm_perplexity_params_t o;
    slm_perplexity_params_default(&o);
    if (p)
        memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    if (o.n_ctx <= 0)
        o.n_ctx = 512;
    if (o.n_batch <= 0 || o.n_batch > o.n_ctx)
        o.n_batch = o.n_ctx;
    if (o.n_ctx < 3)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "perplexity: a context of %d tokens "
                         "scores none (a chunk scores its second half, but not its last "
                         "token): use a context of 3 or more", o.n_ctx);
    if (n_tokens < 2 * (size_t)o.n_ctx)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "perplexity: %zu tokens; a context of "
                         "%d needs at least %d", n_tokens, o.n_ctx, 2 * o.n_ctx);
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "perplexity: token %d at %zu is "
                             "outside the vocabulary", tokens[i], i);
    int32_t n_chunks = (int32_t)(n_tokens / (size_t)o.n_ctx);
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = (uint32_t)o.n_ctx;
    cp.n_batch = (uint32_t)o.n_batch;
    cp.type_kv = o.type_kv == SLM_TYPE_F16 ? SLM_TYPE_F16 : SLM_TYPE_F32;
    slm_context_t *ctx = NULL;
    int rc = slm_context_new(m, &cp, &ctx, err);
    if (rc)
        return rc;
    int32_t *buf = malloc((size_t)o.n_ctx * sizeof *buf);
    int8_t *want = malloc((size_t)o.n_batch);
    double nll = 0.0;
    uint64_t count = 0;
    if (!buf || !want)
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "perplexity: out of memory");
    for (int32_t ch = 0; rc == SLM_OK && ch < n_chunks; ch++) {
        if (o.cancel && *o.cancel) {
            rc = slm__fail(err, SLM_E_CANCELLED, NULL, -1, "perplexity: cancelled after %d of "
                           "%d chunks", ch, n_chunks);
            break;
        }
        rc = score_chunk(ctx, m, tokens + (size_t)ch * (size_t)o.n_ctx, o.n_ctx, o.n_batch, buf,
                         want, &nll, &count, err);
        if (rc == SLM_OK && o.progress)
            o.progress(o.user, ch, n_chunks, exp(nll / (double)count));
    }
    free(buf);
    free(want);
    slm_context_free(ctx);
    if (rc)
        return rc;
    out->nll = nll / (double)count;
    out->ppl = exp(out->nll);
    out->n_scored = count;
    out->n_chunks = n_chunks;
    return SLM_OK;
}

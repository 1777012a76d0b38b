/* Training mode: the forward pass over whole rows of tokens with no KV cache, each
 * layer attending over its own row's K/V under a causal, document-aware mask. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/sched.h>
#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/forward.h"

static slm_tensor_t *seq_mask(void *self, slm__fwd_t *f)
{
    (void)self;
    const int64_t ne[4] = {f->T, f->T, 1, f->B};
    return slm_tensor_new(f->g, SLM_TYPE_F32, f->B > 1 ? 4 : 2, ne);
}

/* K and V are this batch's own: only views, and one transposing copy of V. */
static void seq_attend(void *self, slm__fwd_t *f, int il, slm_tensor_t *k, slm_tensor_t *v,
                       slm_tensor_t **K, slm_tensor_t **V)
{
    (void)self;
    (void)il;
    const slm__hparams_t *hp = &f->m->hp;
    slm_graph_t *g = f->g;
    int64_t T = f->T, B = f->B, hd = hp->head_dim, Hkv = hp->n_head_kv, KV = Hkv * hd;
    if (B > 1) {
        const int64_t kne[4] = {hd, Hkv, T, B}, vne[3] = {KV, T, B};
        k = slm_reshape(g, k, 4, kne);
        /* phi3's V is a strided view of the fused projection. */
        if (v && !slm_tensor_is_contiguous(v))
            v = slm_cont(g, v);
        v = slm_reshape(g, v, 3, vne);
    }
    *K = slm_permute(g, k, 0, 2, 1, 3);                          /* [hd, T, Hkv, B] */
    const int64_t Vne[4] = {T, hd, Hkv, B};
    *V = slm_reshape(g, slm_cont(g, slm_transpose(g, v)), 4, Vne);   /* [T, hd, Hkv, B] */
}

int slm__forward_sequences(const slm_model_t *m, slm_graph_t *g, int64_t T, int64_t B,
                           const slm__adapters_t *ad, unsigned flags, slm__seq_graph_t *out,
                           slm_error_t *err)
{
    return slm__forward_sequences_train(m, g, T, B, ad, flags, NULL, NULL, out, err);
}

int slm__forward_sequences_train(const slm_model_t *m, slm_graph_t *g, int64_t T, int64_t B,
                                 const slm__adapters_t *ad, unsigned flags,
                                 void (*on_dropout)(void *user, slm_tensor_t *mask,
                                                    const slm__lora_t *lora),
                                 void *hook_user, slm__seq_graph_t *out, slm_error_t *err)
{
    if (!out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "forward: NULL argument");
    memset(out, 0, sizeof *out);
    if (T <= 0 || B <= 0 || T > INT32_MAX / B)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "forward: %lld rows of %lld tokens",
                         (long long)B, (long long)T);
    slm__memory_t mem = {.mask = seq_mask, .kv = seq_attend};
    slm__fwd_params_t p = {.n_tokens = T, .n_rows = B,
                           .n_out = flags & SLM__SEQ_LAST ? B : T * B,
                           .hidden = (flags & SLM__SEQ_HIDDEN) != 0, .adapters = ad,
                           .mem = &mem, .on_dropout = on_dropout, .hook_user = hook_user};
    out->T = T;
    out->B = B;
    out->n_vocab = m ? m->hp.n_vocab : 0;
    return slm__forward_build(m, g, &p, &out->fwd, err);
}

/* One row: who sees whom (mask [T, T], row i = query i) and the positions. */
static void fill_row(int64_t T, const int32_t *doc, float *mask, int32_t *pos)
{
    for (int64_t i = 0; i < T; i++) {
        float *row = mask + i * T;
        int32_t seen = 0;
        for (int64_t j = 0; j < T; j++) {
            bool same = doc ? (doc[i] >= 0 ? doc[j] == doc[i] : j == i) : true;
            bool visible = j <= i && same;
            row[j] = visible ? 0.0f : -INFINITY;
            seen += visible && j < i;
        }
        pos[i] = doc && doc[i] < 0 ? 0 : seen;
    }
}

int slm__forward_sequences_feed(const slm__seq_graph_t *s, const int32_t *tokens,
                                const int32_t *doc_ids, slm_error_t *err)
{
    if (!s || !tokens || !s->fwd.tokens)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "forward: NULL argument");
    int64_t T = s->T, B = s->B, N = T * B;
    for (int64_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= s->n_vocab)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "forward: token %d (at %lld) is "
                             "outside the vocabulary of %d", tokens[i], (long long)i,
                             s->n_vocab);
    float *mask = malloc((size_t)(T * T) * sizeof *mask);
    int32_t *pos = malloc((size_t)N * sizeof *pos);
    int rc = mask && pos ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1, "forward: out of "
                                              "memory");
    for (int64_t b = 0; rc == SLM_OK && b < B; b++) {
        fill_row(T, doc_ids ? doc_ids + b * T : NULL, mask, pos + b * T);
        size_t bytes = (size_t)(T * T) * sizeof *mask;
        if (slm_tensor_set_data(s->fwd.mask, mask, (size_t)b * bytes, bytes) < 0)
            rc = slm__fail(err, SLM_E_DEVICE, NULL, -1, "forward: setting the mask failed");
    }
    /* SLM__SEQ_LAST: the rows kept are each row's last position. */
    for (int64_t b = 0; rc == SLM_OK && s->fwd.out_ids && b < B; b++) {
        int32_t last = (int32_t)(b * T + T - 1);
        if (slm_tensor_set_data(s->fwd.out_ids, &last, (size_t)b * 4, 4) < 0)
            rc = slm__fail(err, SLM_E_DEVICE, NULL, -1, "forward: setting the rows failed");
    }
    if (rc == SLM_OK &&
        (slm_tensor_set_data(s->fwd.tokens, tokens, 0, (size_t)N * 4) < 0 ||
         slm_tensor_set_data(s->fwd.pos, pos, 0, (size_t)N * 4) < 0))
        rc = slm__fail(err, SLM_E_DEVICE, NULL, -1, "forward: setting the inputs failed");
    free(mask);
    free(pos);
    return rc;
}

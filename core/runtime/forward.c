/* The forward graph of a Llama-family model, built once per shape for every job:
 * embeddings, attention through the memory seam, FFN, head; every matmul through linear. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/util.h"
#include "runtime/forward.h"

/* Nodes one layer adds to the plain graph, and one adapter on one weight (two
 * leaves, two products, a scale and an add; a dropout mask and its product). */
#define NODES_PER_LAYER 64
#define NODES_PER_LORA 8

size_t slm__forward_graph_size(const slm_model_t *m, const slm__adapters_t *ad)
{
    size_t n = (size_t)m->hp.n_layer * NODES_PER_LAYER + 64;
    /* + a row mask per adapter and its product per update, when rows select them */
    return n + (ad ? ad->n_loras * (NODES_PER_LORA + 1) + ad->n_adapters : 0);
}

static slm_tensor_t *new_leaf(slm__fwd_t *f, const slm__weight_t *w);

/* A leaf bound to a weight's buffer; a base weight that trains is one PARAM leaf,
 * made at its first use, so every use adds to the same gradient. */
static slm_tensor_t *leaf(slm__fwd_t *f, const slm__weight_t *w)
{
    if (!w || f->rc)
        return NULL;
    if (!f->train_leaf || !slm__adapters_trains(f->ad, w))
        return new_leaf(f, w);
    size_t i = (size_t)(w - f->m->weights);
    if (!f->train_leaf[i] && (f->train_leaf[i] = new_leaf(f, w)))
        slm_tensor_set_flags(f->train_leaf[i], SLM_TENSOR_PARAM);
    return f->train_leaf[i];
}

static slm_tensor_t *new_leaf(slm__fwd_t *f, const slm__weight_t *w)
{
    int n_dims = w->ne[1] > 1 ? 2 : 1;
    slm_tensor_t *t = slm_tensor_new(f->g, (slm_type_t)w->type, n_dims, w->ne);
    if (!t)
        return NULL;
    slm_tensor_set_name(t, w->name);
    int rc = slm_tensor_bind(t, w->buf, 0, f->err);
    if (rc)
        f->rc = rc;
    return rc ? NULL : t;
}

static slm_tensor_t *lora_leaf(slm__fwd_t *f, const slm__weight_t *w, bool trainable)
{
    slm_tensor_t *t = leaf(f, w);
    if (t && trainable)
        slm_tensor_set_flags(t, SLM_TENSOR_PARAM);
    return t;
}

/* The linear seam: W·x + Σ scale·B·(A·x) over the adapters on W, then the bias. With
 * no adapter on W it is the plain product, node for node. */
static slm_tensor_t *linear(slm__fwd_t *f, const slm__weight_t *w, slm_tensor_t *x,
                            const slm__weight_t *bias)
{
    slm_graph_t *g = f->g;
    slm_tensor_t *y = slm_mul_mat(g, leaf(f, w), x);
    for (const slm__lora_t *l = slm__adapters_on(f->ad, w); l; l = l->next) {
        if (l->scale == 0.0f && !l->trainable)
            continue;   /* switched off: exactly the product without it */
        slm_tensor_t *in = x;
        if (l->trainable && l->dropout > 0.0f && f->p->on_dropout && x) {
            const int64_t ne[4] = {slm_tensor_ne(x, 0), slm_tensor_ne(x, 1), slm_tensor_ne(x, 2),
                                   slm_tensor_ne(x, 3)};
            slm_tensor_t *mask = slm_tensor_new(g, SLM_TYPE_F32, slm_tensor_n_dims(x), ne);
            slm_tensor_set_flags(mask, SLM_TENSOR_INPUT);
            in = slm_mul(g, x, mask);
            if (mask)
                f->p->on_dropout(f->p->hook_user, mask, l);
        }
        slm_tensor_t *ax = slm_mul_mat(g, lora_leaf(f, &l->a, l->trainable), in);
        slm_tensor_t *bax = slm_scale(g, slm_mul_mat(g, lora_leaf(f, &l->b, l->trainable), ax),
                                      l->scale);
        if (f->row_masks)   /* 0 on the rows of sequences without this adapter */
            bax = slm_mul(g, bax, f->row_masks[l->adapter]);
        y = slm_add(g, y, bax);
    }
    return bias ? slm_add(g, y, leaf(f, bias)) : y;
}

static slm_tensor_t *norm(slm__fwd_t *f, slm_tensor_t *x, const slm__weight_t *w)
{
    return slm_mul(f->g, slm_rms_norm(f->g, x, f->m->hp.norm_eps), leaf(f, w));
}

static slm_tensor_t *rope(slm__fwd_t *f, slm_tensor_t *x)
{
    const slm__hparams_t *hp = &f->m->hp;
    return slm_rope(f->g, x, f->pos, hp->n_rot, hp->rope_mode, hp->rope_base, hp->rope_scale);
}

/* Q as [hd, H, N], K as [hd, Hkv, N] and V as [KV, N] for one layer. */
static void qkv(slm__fwd_t *f, const slm__layer_t *l, slm_tensor_t *cur, slm_tensor_t **q,
                slm_tensor_t **k, slm_tensor_t **v)
{
    const slm__hparams_t *hp = &f->m->hp;
    int64_t N = f->N, hd = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv;
    if (l->wqkv) {
        slm_tensor_t *fused = linear(f, l->wqkv, cur, NULL);
        int64_t row = (H + 2 * Hkv) * hd * 4;
        const int64_t qne[3] = {hd, H, N}, kne[3] = {hd, Hkv, N}, vne[2] = {Hkv * hd, N};
        const int64_t nb3[3] = {4, hd * 4, row}, nb2[2] = {4, row};
        *q = slm_view(f->g, fused, 3, qne, nb3, 0);
        *k = slm_view(f->g, fused, 3, kne, nb3, (size_t)(H * hd * 4));
        *v = slm_view(f->g, fused, 2, vne, nb2, (size_t)((H + Hkv) * hd * 4));
        return;
    }
    const int64_t qne[3] = {hd, H, N}, kne[3] = {hd, Hkv, N};
    *q = slm_reshape(f->g, linear(f, l->wq, cur, l->bq), 3, qne);
    *k = slm_reshape(f->g, linear(f, l->wk, cur, l->bk), 3, kne);
    *v = linear(f, l->wv, cur, l->bv);
}

/* Attention of one layer over the K/V the memory hands back. */
static slm_tensor_t *attention(slm__fwd_t *f, int il, slm_tensor_t *cur)
{
    const slm__hparams_t *hp = &f->m->hp;
    const slm__layer_t *l = &f->m->layers[il];
    slm_graph_t *g = f->g;
    int64_t hd = hp->head_dim, H = hp->n_head;
    slm_tensor_t *q, *k, *v, *K = NULL, *V = NULL;
    qkv(f, l, cur, &q, &k, &v);
    q = rope(f, q);
    k = rope(f, k);
    f->mem->kv(f->mem->self, f, il, k, v, &K, &V);
    if (!K || !V || f->rc)
        return NULL;
    const int64_t one[2] = {H * hd, f->N};
    if (f->mem->v_rows) {
        float scale = 1.0f / sqrtf((float)hd);
        return linear(f, l->wo, slm_reshape(g, slm_attn(g, q, K, V, f->mask, scale), 2, one),
                      NULL);
    }
    if (f->B > 1) {
        const int64_t ne[4] = {hd, H, f->T, f->B};
        q = slm_reshape(g, q, 4, ne);
    }
    slm_tensor_t *kq = slm_mul_mat(g, K, slm_permute(g, q, 0, 2, 1, 3));   /* [n_kv, T, H, B] */
    kq = slm_soft_max(g, kq, f->mask, 1.0f / sqrtf((float)hd), false, 0);
    slm_tensor_t *kqv = slm_mul_mat(g, V, kq);                               /* [hd, T, H, B] */
    slm_tensor_t *o = slm_reshape(g, slm_cont(g, slm_permute(g, kqv, 0, 2, 1, 3)), 2, one);
    return linear(f, l->wo, o, NULL);
}

static slm_tensor_t *ffn(slm__fwd_t *f, int il, slm_tensor_t *cur)
{
    const slm__layer_t *l = &f->m->layers[il];
    slm_graph_t *g = f->g;
    if (l->gate_up) {
        slm_tensor_t *gu = linear(f, l->gate_up, cur, NULL);
        int64_t F = f->m->hp.n_ff;
        const int64_t ne[2] = {F, f->N}, nb[2] = {4, 2 * F * 4};
        slm_tensor_t *gate = slm_cont(g, slm_view(g, gu, 2, ne, nb, 0));
        slm_tensor_t *up = slm_cont(g, slm_view(g, gu, 2, ne, nb, (size_t)F * 4));
        return linear(f, l->down, slm_swiglu(g, gate, up), NULL);
    }
    return linear(f, l->down, slm_swiglu(g, linear(f, l->gate, cur, NULL),
                                         linear(f, l->up, cur, NULL)), NULL);
}

/* The rows kept and their head: logits, hidden states, or (n_out 0) the last
 * layer's output as the graph's end. */
static slm_tensor_t *head(slm__fwd_t *f, const slm__fwd_params_t *p, slm_tensor_t *x,
                          slm__fwd_graph_t *out)
{
    const slm_model_t *m = f->m;
    if (p->n_out == 0) {
        slm_tensor_set_flags(x, SLM_TENSOR_OUTPUT);
        return x;
    }
    if (p->n_out < f->N) {
        out->out_ids = slm_tensor_new_1d(f->g, SLM_TYPE_I32, p->n_out);
        slm_tensor_set_flags(out->out_ids, SLM_TENSOR_INPUT);
        x = slm_get_rows(f->g, x, out->out_ids);
    }
    slm_tensor_t *y = p->hidden ? norm(f, x, m->out_norm)
                                : linear(f, m->output, norm(f, x, m->out_norm), NULL);
    if (y)
        slm_tensor_set_flags(y, SLM_TENSOR_OUTPUT);
    return y;
}

int slm__forward_build(const slm_model_t *m, slm_graph_t *g, const slm__fwd_params_t *p,
                       slm__fwd_graph_t *out, slm_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (!m || !g || !p || !p->mem || p->n_tokens <= 0 || p->n_rows <= 0 || p->n_out < 0 ||
        p->n_tokens > INT32_MAX / p->n_rows || p->n_out > p->n_tokens * p->n_rows)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "forward: bad build parameters");
    if (p->adapters && p->adapters->m != m)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "forward: the adapters belong to "
                         "another model");
    slm__fwd_t f = {.m = m, .g = g, .T = p->n_tokens, .B = p->n_rows,
                    .N = p->n_tokens * p->n_rows, .ad = p->adapters, .mem = p->mem, .err = err,
                    .p = p};
    if (p->row_adapters && p->adapters && p->adapters->n_loras) {
        if (p->adapters->n_adapters > SLM__MAX_ROW_ADAPTERS)
            return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "forward: %u adapters; rows "
                             "select among %d at most", p->adapters->n_adapters,
                             SLM__MAX_ROW_ADAPTERS);
        const int64_t ne[2] = {1, f.N};
        for (uint32_t a = 0; a < p->adapters->n_adapters; a++) {
            out->row_masks[a] = slm_tensor_new(g, SLM_TYPE_F32, 2, ne);
            slm_tensor_set_flags(out->row_masks[a], SLM_TENSOR_INPUT);
        }
        out->n_row_masks = p->adapters->n_adapters;
        f.row_masks = out->row_masks;
    }
    if (p->adapters && p->adapters->n_trains &&
        !(f.train_leaf = calloc(m->n_weights ? m->n_weights : 1, sizeof *f.train_leaf)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "forward: out of memory");
    out->tokens = slm_tensor_new_1d(g, SLM_TYPE_I32, f.N);
    f.pos = out->pos = slm_tensor_new_1d(g, SLM_TYPE_I32, f.N);
    f.mask = out->mask = p->mem->mask(p->mem->self, &f);
    slm_tensor_set_flags(out->tokens, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(out->pos, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(out->mask, SLM_TENSOR_INPUT);
    slm_tensor_t *x = slm_get_rows(g, leaf(&f, m->tok_embd), out->tokens);
    for (int il = 0; il < m->hp.n_layer && !f.rc; il++) {
        x = slm_add(g, x, attention(&f, il, norm(&f, x, m->layers[il].attn_norm)));
        x = slm_add(g, x, ffn(&f, il, norm(&f, x, m->layers[il].ffn_norm)));
    }
    out->out = x ? head(&f, p, x, out) : NULL;
    free(f.train_leaf);
    if (f.rc)
        return f.rc;
    return out->out ? SLM_OK : slm_graph_status(g, err);
}

/* The forward builder's training mode against decode on stories260K (whole rows,
 * packed documents), adapters against merged weights, and on tiny llama/qwen2/phi3
 * models the loss's adapter gradients against finite differences. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/model-file.h>
#include <slmops/model.h>
#include <slmops/registry.h>
#include <slmops/sched.h>

#include "runtime/forward.h"

#define MODEL_REL "gguf/stories260K.gguf"
/* Sequence mode and one decode batch run the same kernels over the same values; only
 * the attention's span (padded cache cells, masked) and summation tails differ. */
#define TOL_SEQ 1e-5f
/* Merged weights are rounded to f32 once; the unmerged path rounds B·(A·x). */
#define TOL_MERGED 1e-4f
/* Norm-wise relative error of a gradient against central differences in f32. */
#define TOL_GRAD 2e-3

static char model_path[1200];
static slm_registry_t *reg;

static void setup(void)
{
    slm_error_t err = {.struct_size = sizeof err};
    reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg, "registry: %s", err.message);
}

static void teardown(void)
{
    slm_registry_free(reg);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static float urand(uint32_t *s)   /* [-1, 1) */
{
    return (float)(lcg(s) % 65536u) / 32768.0f - 1.0f;
}

static void tokens_fill(int32_t *t, int n, int32_t n_vocab, uint32_t seed)
{
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)(lcg(&seed) % (uint32_t)n_vocab);
}

static slm_model_t *load_fixture(void)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = "cpu";
    mp.n_threads = 2;
    slm_model_t *m = NULL;
    ck_assert_msg(slm_model_load(reg, model_path, &mp, &m, &err) == SLM_OK, "%s: %s",
                  model_path, err.message);
    return m;
}

/* The output of B rows of T tokens in training mode: logits [V, B·T] unless flags ask
 * for hidden states or last positions. */
static float *seq_run(slm_model_t *m, const slm__adapters_t *ad, int64_t T, int64_t B,
                      const int32_t *tok, const int32_t *doc, unsigned flags)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_graph_t *g = slm_graph_new(slm__forward_graph_size(m, ad));
    slm__seq_graph_t sg;
    ck_assert_msg(slm__forward_sequences(m, g, T, B, ad, flags, &sg, &err) == SLM_OK,
                  "build: %s", err.message);
    ck_assert_msg(slm_sched_alloc(slm_model_sched(m), g, &err) == SLM_OK, "alloc: %s",
                  err.message);
    ck_assert_msg(slm__forward_sequences_feed(&sg, tok, doc, &err) == SLM_OK, "%s", err.message);
    ck_assert_msg(slm_sched_compute(slm_model_sched(m), g, &err) == SLM_OK, "%s", err.message);
    size_t row = (size_t)(flags & SLM__SEQ_HIDDEN ? slm_model_n_embd(m) : slm_model_n_vocab(m));
    size_t n = row * (size_t)(flags & SLM__SEQ_LAST ? B : T * B);
    ck_assert_int_eq(slm_tensor_nelements(sg.fwd.out), (int64_t)n);
    float *out = malloc(n * sizeof *out);
    ck_assert_int_eq(slm_tensor_get_data(sg.fwd.out, out, 0, n * sizeof *out), 0);
    slm_graph_free(g);
    return out;
}

static float *seq_logits(slm_model_t *m, const slm__adapters_t *ad, int64_t T, int64_t B,
                         const int32_t *tok, const int32_t *doc)
{
    return seq_run(m, ad, T, B, tok, doc, 0);
}

/* Every logit of n tokens decoded as one batch in a fresh f32 context. */
static float *decode_logits(slm_model_t *m, const slm__adapters_t *ad, const int32_t *tok, int n)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = 256;
    cp.type_kv = SLM_TYPE_F32;
    slm_context_t *c = NULL;
    ck_assert_msg(slm_context_new(m, &cp, &c, &err) == SLM_OK, "%s", err.message);
    slm__context_set_adapters(c, ad);
    int8_t *want = malloc((size_t)n);
    memset(want, 1, (size_t)n);
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = n, .token = tok, .logits = want};
    ck_assert_msg(slm_context_decode(c, &b, &err) == SLM_OK, "%s", err.message);
    size_t V = (size_t)slm_model_n_vocab(m);
    float *out = malloc((size_t)n * V * sizeof *out);
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * V, slm_context_logits(c, i), V * sizeof *out);
    free(want);
    slm_context_free(c);
    return out;
}

static void assert_close(const float *a, const float *b, size_t n, float tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(a[i] - b[i]) <= tol * (1.0f + fabsf(b[i])), "%s: logit %zu: %.9g "
                      "vs %.9g", what, i, (double)a[i], (double)b[i]);
}

/* (a) One row, and three rows at once, give the logits of decoding each row. */
START_TEST(sequences_match_decode)
{
    slm_model_t *m = load_fixture();
    size_t V = (size_t)slm_model_n_vocab(m);
    int32_t tok[120];
    tokens_fill(tok, 120, (int32_t)V, 7);
    float *seq = seq_logits(m, NULL, 100, 1, tok, NULL), *dec = decode_logits(m, NULL, tok, 100);
    assert_close(seq, dec, 100 * V, TOL_SEQ, "one row");
    free(seq);
    free(dec);
    seq = seq_logits(m, NULL, 40, 3, tok, NULL);
    for (int r = 0; r < 3; r++) {
        dec = decode_logits(m, NULL, tok + 40 * r, 40);
        assert_close(seq + (size_t)r * 40 * V, dec, 40 * V, TOL_SEQ, "row of three");
        free(dec);
    }
    free(seq);
    slm_model_free(m);
}
END_TEST

/* (b) Documents packed into rows (with padding, and a different split per row) give
 * the logits of decoding each document alone. */
START_TEST(packed_documents_match_decode)
{
    slm_model_t *m = load_fixture();
    size_t V = (size_t)slm_model_n_vocab(m);
    enum { T = 64 };
    int32_t tok[2 * T], doc[2 * T];
    tokens_fill(tok, 2 * T, (int32_t)V, 11);
    /* Row 0: 25 + 30 tokens and 9 of padding; row 1: 40 + 24. */
    const int starts[2][3] = {{0, 25, 55}, {0, 40, 64}};
    for (int t = 0; t < T; t++) {
        doc[t] = t < 25 ? 0 : t < 55 ? 1 : -1;
        doc[T + t] = t < 40 ? 5 : 6;
    }
    float *seq = seq_logits(m, NULL, T, 2, tok, doc);
    for (int r = 0; r < 2; r++)
        for (int d = 0; d < 2; d++) {
            int a = starts[r][d], n = starts[r][d + 1] - a;
            float *dec = decode_logits(m, NULL, tok + r * T + a, n);
            assert_close(seq + (size_t)(r * T + a) * V, dec, (size_t)n * V, TOL_SEQ, "document");
            free(dec);
        }
    free(seq);
    slm_model_free(m);
}
END_TEST

/* The other outputs: each row's last position only, and hidden states instead of
 * logits; projecting the hidden states by the head gives the logits back. */
START_TEST(last_positions_and_hidden_states)
{
    slm_model_t *m = load_fixture();
    size_t V = (size_t)slm_model_n_vocab(m), E = (size_t)slm_model_n_embd(m);
    enum { T = 20, B = 3 };
    int32_t tok[T * B];
    tokens_fill(tok, T * B, (int32_t)V, 19);
    float *all = seq_logits(m, NULL, T, B, tok, NULL);
    float *last = seq_run(m, NULL, T, B, tok, NULL, SLM__SEQ_LAST);
    float *hid = seq_run(m, NULL, T, B, tok, NULL, SLM__SEQ_HIDDEN);
    float *hid_last = seq_run(m, NULL, T, B, tok, NULL, SLM__SEQ_HIDDEN | SLM__SEQ_LAST);
    const slm__weight_t *out = slm__model_weight(m, "output.weight");
    ck_assert_ptr_nonnull(out);
    float *w = malloc(V * E * sizeof *w), *proj = malloc(V * sizeof *proj);
    ck_assert_int_eq(slm_buffer_get(out->buf, 0, w, V * E * sizeof *w), 0);
    for (int b = 0; b < B; b++) {
        size_t r = (size_t)(b * T + T - 1);
        assert_close(last + b * V, all + r * V, V, TOL_SEQ, "last position");
        for (size_t e = 0; e < E; e++)
            ck_assert_msg(hid_last[b * E + e] == hid[r * E + e], "hidden state %zu", e);
    }
    for (size_t r = 0; r < T * B; r += 7) {
        for (size_t v = 0; v < V; v++) {
            double s = 0.0;
            for (size_t e = 0; e < E; e++)
                s += (double)w[v * E + e] * hid[r * E + e];
            proj[v] = (float)s;
        }
        assert_close(proj, all + r * V, V, TOL_SEQ, "head of hidden states");
    }
    free(w);
    free(proj);
    free(all);
    free(last);
    free(hid);
    free(hid_last);
    slm_model_free(m);
}
END_TEST

/* ---- adapters ---- */

typedef struct factor {
    slm__weight_t w;
    float *host;
    char name[80];
} factor_t;

static void factor_make(factor_t *f, slm_model_t *m, const char *name, int64_t ne0, int64_t ne1,
                        float scale, uint32_t seed)
{
    slm_error_t err = {.struct_size = sizeof err};
    size_t n = (size_t)(ne0 * ne1);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->host = malloc(n * sizeof *f->host);
    for (size_t i = 0; i < n; i++)
        f->host[i] = scale * urand(&seed);
    f->w = (slm__weight_t){.name = f->name, .type = SLM_TYPE_F32, .ne = {ne0, ne1, 1, 1}};
    f->w.buf = slm_buffer_new(slm_model_sched(m), n * sizeof(float), &err);
    ck_assert_msg(f->w.buf, "%s", err.message);
    ck_assert_int_eq(slm_buffer_set(f->w.buf, 0, f->host, n * sizeof(float)), 0);
}

static void factor_free(factor_t *f)
{
    slm_buffer_free(f->w.buf);
    free(f->host);
}

/* Rank-r factors for weight `name`, attached with `scale`. */
typedef struct lora_fx {
    factor_t a, b;
    float scale;
    const slm__weight_t *base;
} lora_fx_t;

static void lora_make(lora_fx_t *l, slm__adapters_t *ad, slm_model_t *m, const char *name, int r,
                      float scale, float b_scale, bool trainable, uint32_t seed)
{
    slm_error_t err = {.struct_size = sizeof err};
    l->base = slm__model_weight(m, name);
    ck_assert_msg(l->base, "no weight %s", name);
    char n[96];
    snprintf(n, sizeof n, "%s.lora_a", name);
    factor_make(&l->a, m, n, l->base->ne[0], r, 0.5f, seed);
    snprintf(n, sizeof n, "%s.lora_b", name);
    factor_make(&l->b, m, n, r, l->base->ne[1], b_scale, seed * 3 + 1);
    l->scale = scale;
    slm__lora_t lo = {.a = l->a.w, .b = l->b.w, .scale = scale, .trainable = trainable};
    ck_assert_msg(slm__adapters_attach(ad, l->base, &lo, &err) == SLM_OK, "%s", err.message);
}

static void lora_free(lora_fx_t *l)
{
    factor_free(&l->a);
    factor_free(&l->b);
}

/* In model m2 (a second load of the same file), replace the weight l adapts by
 * W + scale·B·A, accumulated over ls[0..n) on that weight. */
static slm_buffer_t *merge_into(slm_model_t *m2, const lora_fx_t *ls, int n)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm__weight_t *w = (slm__weight_t *)slm__model_weight(m2, ls[0].base->name);
    int64_t in = w->ne[0], out = w->ne[1];
    size_t bytes = (size_t)(in * out) * sizeof(float);
    float *host = malloc(bytes);
    ck_assert_int_eq(slm_buffer_get(w->buf, 0, host, bytes), 0);
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) {
            double s = host[o * in + i];
            for (int k = 0; k < n; k++) {
                int64_t r = ls[k].a.w.ne[1];
                for (int64_t j = 0; j < r; j++)
                    s += (double)ls[k].scale * ls[k].b.host[o * r + j] * ls[k].a.host[j * in + i];
            }
            host[o * in + i] = (float)s;
        }
    slm_buffer_t *old = w->buf;
    w->buf = slm_buffer_new(slm_model_sched(m2), bytes, &err);
    ck_assert_msg(w->buf, "%s", err.message);
    ck_assert_int_eq(slm_buffer_set(w->buf, 0, host, bytes), 0);
    free(host);
    return old;
}

/* Factors that do not fit their weight are refused with the weight's name. */
START_TEST(attach_checks_factors)
{
    slm_model_t *m = load_fixture(), *other = load_fixture();
    slm_error_t err = {.struct_size = sizeof err};
    slm__adapters_t *ad = slm__adapters_new(m, &err);
    ck_assert_ptr_nonnull(ad);
    const slm__weight_t *w = slm__model_weight(m, "blk.0.attn_k.weight");
    ck_assert_ptr_nonnull(w);
    factor_t a, b, b_wide;
    factor_make(&a, m, "a", w->ne[0], 4, 1.0f, 1);
    factor_make(&b, m, "b", 4, w->ne[1], 1.0f, 2);
    factor_make(&b_wide, m, "b", 4, w->ne[1] + 1, 1.0f, 3);
    slm__lora_t ok = {.a = a.w, .b = b.w, .scale = 1.0f, .trainable = true};
    slm__lora_t bad = ok;
    bad.b = b_wide.w;
    ck_assert_int_eq(slm__adapters_attach(ad, w, &bad, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "blk.0.attn_k.weight"), "%s", err.message);
    bad = (slm__lora_t){.a = b.w, .b = a.w, .scale = 1.0f};
    ck_assert_int_eq(slm__adapters_attach(ad, w, &bad, &err), SLM_E_INVALID);
    bad = ok;
    bad.scale = NAN;
    ck_assert_int_eq(slm__adapters_attach(ad, w, &bad, &err), SLM_E_INVALID);
    bad = ok;
    bad.a.type = SLM_TYPE_F16;   /* f16 factors serve inference, not training */
    ck_assert_int_eq(slm__adapters_attach(ad, w, &bad, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm__adapters_attach(ad, slm__model_weight(other, w->name), &ok, &err),
                     SLM_E_INVALID);
    ck_assert_int_eq(slm__adapters_attach(ad, slm__model_weight(m, "blk.0.attn_norm.weight"),
                                          &ok, &err), SLM_E_INVALID);
    ck_assert_ptr_null(slm__adapters_on(ad, w));
    ck_assert_int_eq(slm__adapters_attach(ad, w, &ok, &err), SLM_OK);
    ck_assert_ptr_nonnull(slm__adapters_on(ad, w));
    ck_assert_int_eq(ad->n_loras, 1);
    factor_free(&a);
    factor_free(&b);
    factor_free(&b_wide);
    slm__adapters_free(ad);
    slm_model_free(other);
    slm_model_free(m);
}
END_TEST

/* (c) An adapter whose B is zero changes no logit, in training mode and decode. */
START_TEST(zero_adapter_is_identity)
{
    slm_model_t *m = load_fixture();
    size_t V = (size_t)slm_model_n_vocab(m);
    slm_error_t err = {.struct_size = sizeof err};
    slm__adapters_t *ad = slm__adapters_new(m, &err);
    ck_assert_ptr_nonnull(ad);
    lora_fx_t l[3];
    lora_make(&l[0], ad, m, "blk.0.attn_q.weight", 4, 2.0f, 0.0f, false, 3);
    lora_make(&l[1], ad, m, "blk.2.ffn_down.weight", 2, 1.0f, 0.0f, false, 5);
    lora_make(&l[2], ad, m, "output.weight", 3, 0.5f, 0.0f, false, 9);
    int32_t tok[48];
    tokens_fill(tok, 48, (int32_t)V, 13);
    float *plain = seq_logits(m, NULL, 24, 2, tok, NULL), *with = seq_logits(m, ad, 24, 2, tok, NULL);
    for (size_t i = 0; i < 48 * V; i++)
        ck_assert_msg(plain[i] == with[i], "training mode, logit %zu: %.9g vs %.9g", i,
                      (double)plain[i], (double)with[i]);
    free(plain);
    free(with);
    plain = decode_logits(m, NULL, tok, 30);
    with = decode_logits(m, ad, tok, 30);
    for (size_t i = 0; i < 30 * V; i++)
        ck_assert_msg(plain[i] == with[i], "decode, logit %zu: %.9g vs %.9g", i,
                      (double)plain[i], (double)with[i]);
    free(plain);
    free(with);
    for (int i = 0; i < 3; i++)
        lora_free(&l[i]);
    slm__adapters_free(ad);
    slm_model_free(m);
}
END_TEST

/* (c) Adapters (two on one weight, one on the head) give the logits of a model whose
 * weights were replaced by W + Σ scale·B·A. */
START_TEST(adapters_match_merged_weights)
{
    slm_model_t *m = load_fixture(), *merged = load_fixture();
    size_t V = (size_t)slm_model_n_vocab(m);
    slm_error_t err = {.struct_size = sizeof err};
    slm__adapters_t *ad = slm__adapters_new(m, &err);
    ck_assert_ptr_nonnull(ad);
    lora_fx_t l[4];
    lora_make(&l[0], ad, m, "blk.1.attn_v.weight", 4, 0.75f, 0.3f, false, 21);
    lora_make(&l[1], ad, m, "blk.1.attn_v.weight", 2, -1.5f, 0.2f, false, 23);
    lora_make(&l[2], ad, m, "blk.3.ffn_gate.weight", 8, 0.5f, 0.1f, false, 25);
    lora_make(&l[3], ad, m, "output.weight", 2, 1.0f, 0.3f, false, 27);
    slm_buffer_t *old[3] = {merge_into(merged, &l[0], 2), merge_into(merged, &l[2], 1),
                            merge_into(merged, &l[3], 1)};
    int32_t tok[64];
    tokens_fill(tok, 64, (int32_t)V, 17);
    float *a = seq_logits(m, ad, 32, 2, tok, NULL), *b = seq_logits(merged, NULL, 32, 2, tok, NULL);
    float *plain = seq_logits(m, NULL, 32, 2, tok, NULL);
    assert_close(a, b, 64 * V, TOL_MERGED, "training mode");
    /* The adapters did change the logits: the comparison above can fail. */
    double moved = 0.0;
    for (size_t i = 0; i < 64 * V; i++)
        moved = fmax(moved, fabs((double)a[i] - plain[i]));
    ck_assert_msg(moved > 1e-2, "the adapters moved no logit by more than %g", moved);
    free(a);
    free(b);
    free(plain);
    a = decode_logits(m, ad, tok, 40);
    b = decode_logits(merged, NULL, tok, 40);
    assert_close(a, b, 40 * V, TOL_MERGED, "decode");
    free(a);
    free(b);
    for (int i = 0; i < 3; i++)
        slm_buffer_free(old[i]);
    for (int i = 0; i < 4; i++)
        lora_free(&l[i]);
    slm__adapters_free(ad);
    slm_model_free(merged);
    slm_model_free(m);
}
END_TEST

/* ---- tiny models of each architecture ---- */

enum { TE = 16, TH = 4, THKV = 2, THD = 4, TF = 24, TL = 2, TV = 32 };

static void tiny_tensor(slm_model_file_t *mf, const char *name, int64_t ne0, int64_t ne1,
                        float base, float scale, uint32_t *seed)
{
    slm_error_t err = {.struct_size = sizeof err};
    size_t n = (size_t)(ne0 * (ne1 ? ne1 : 1));
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = base + scale * urand(seed);
    const int64_t ne[2] = {ne0, ne1};
    ck_assert_msg(slm_model_file_add_tensor(mf, name, SLM_TYPE_F32, ne1 ? 2 : 1, ne, x,
                                            n * sizeof *x, SLM_MF_COPY, &err) == SLM_OK,
                  "%s: %s", name, err.message);
    free(x);
}

static void tiny_u32(slm_model_file_t *mf, const char *arch, const char *key, uint32_t v)
{
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    ck_assert_int_ge(slm_model_file_set_value(mf, k, SLM_MF_U32, &v, 0, NULL), 0);
}

/* llama: GQA, tied embeddings; qwen2: q/k/v biases; phi3: fused qkv and gate+up. */
static slm_model_file_t *tiny_file(const char *arch)
{
    slm_model_file_t *mf = slm_model_file_new();
    ck_assert_ptr_nonnull(mf);
    ck_assert_int_ge(slm_model_file_set_string(mf, "general.architecture", arch, NULL), 0);
    tiny_u32(mf, arch, "embedding_length", TE);
    tiny_u32(mf, arch, "block_count", TL);
    tiny_u32(mf, arch, "feed_forward_length", TF);
    tiny_u32(mf, arch, "attention.head_count", TH);
    tiny_u32(mf, arch, "attention.head_count_kv", THKV);
    tiny_u32(mf, arch, "context_length", 64);
    uint32_t seed = 99;
    int64_t Q = TH * THD, KV = THKV * THD;
    tiny_tensor(mf, "token_embd.weight", TE, TV, 0.0f, 0.5f, &seed);
    tiny_tensor(mf, "output_norm.weight", TE, 0, 1.0f, 0.2f, &seed);
    if (strcmp(arch, "llama") != 0)
        tiny_tensor(mf, "output.weight", TE, TV, 0.0f, 0.4f, &seed);
    for (int il = 0; il < TL; il++) {
        char n[64];
#define T2(suffix, ne0, ne1, base, sc) \
    (snprintf(n, sizeof n, "blk.%d.%s", il, suffix), tiny_tensor(mf, n, ne0, ne1, base, sc, &seed))
        T2("attn_norm.weight", TE, 0, 1.0f, 0.2f);
        T2("ffn_norm.weight", TE, 0, 1.0f, 0.2f);
        T2("attn_output.weight", Q, TE, 0.0f, 0.4f);
        T2("ffn_down.weight", TF, TE, 0.0f, 0.4f);
        if (strcmp(arch, "phi3") == 0) {
            T2("attn_qkv.weight", TE, Q + 2 * KV, 0.0f, 0.4f);
            T2("ffn_up.weight", TE, 2 * TF, 0.0f, 0.4f);
            continue;
        }
        T2("attn_q.weight", TE, Q, 0.0f, 0.4f);
        T2("attn_k.weight", TE, KV, 0.0f, 0.4f);
        T2("attn_v.weight", TE, KV, 0.0f, 0.4f);
        T2("ffn_gate.weight", TE, TF, 0.0f, 0.4f);
        T2("ffn_up.weight", TE, TF, 0.0f, 0.4f);
        if (strcmp(arch, "qwen2") == 0) {
            T2("attn_q.bias", Q, 0, 0.0f, 0.3f);
            T2("attn_k.bias", KV, 0, 0.0f, 0.3f);
            T2("attn_v.bias", KV, 0, 0.0f, 0.3f);
        }
#undef T2
    }
    return mf;
}

static slm_model_t *tiny_model(slm_model_file_t *mf)
{
    slm_error_t err = {.struct_size = sizeof err};
    slm_model_params_t mp;
    slm_model_params_default(&mp);
    mp.device = "cpu";
    mp.n_threads = 2;
    slm_model_t *m = NULL;
    ck_assert_msg(slm_model_from_file(reg, mf, &mp, &m, &err) == SLM_OK, "%s", err.message);
    return m;
}

static const char *const tiny_archs[] = {"llama", "qwen2", "phi3"};

/* Two rows and packed documents against decode for each architecture's layout. */
START_TEST(tiny_arch_matches_decode)
{
    slm_model_file_t *mf = tiny_file(tiny_archs[_i]);
    slm_model_t *m = tiny_model(mf);
    enum { T = 12 };
    int32_t tok[2 * T], doc[2 * T];
    tokens_fill(tok, 2 * T, TV, 31);
    for (int t = 0; t < 2 * T; t++)
        doc[t] = t < T ? 0 : t < T + 5 ? 1 : 2;
    float *seq = seq_logits(m, NULL, T, 2, tok, doc);
    const int spans[3][2] = {{0, T}, {T, 5}, {T + 5, T - 5}};
    for (int s = 0; s < 3; s++) {
        float *dec = decode_logits(m, NULL, tok + spans[s][0], spans[s][1]);
        assert_close(seq + (size_t)spans[s][0] * TV, dec, (size_t)spans[s][1] * TV, TOL_SEQ,
                     tiny_archs[_i]);
        free(dec);
    }
    free(seq);
    slm_model_free(m);
    slm_model_file_free(mf);
}
END_TEST

/* ---- (d) gradients ---- */

typedef struct train_fx {
    slm_model_t *m;
    slm_graph_t *g;
    slm__seq_graph_t sg;
    slm__xent_t xe;
} train_fx_t;

static double run_loss(train_fx_t *t)
{
    slm_error_t err = {.struct_size = sizeof err};
    ck_assert_msg(slm_sched_compute(slm_model_sched(t->m), t->g, &err) == SLM_OK, "%s",
                  err.message);
    float loss;
    ck_assert_int_eq(slm_tensor_get_data(t->xe.loss, &loss, 0, sizeof loss), 0);
    return loss;
}

/* Norm-wise relative error of factor f's autodiff gradient against central
 * differences with step h (its buffer is perturbed in place, then restored). */
static double grad_error(train_fx_t *t, factor_t *f, double h)
{
    slm_tensor_t *leaf = slm_graph_find(t->g, f->name);
    ck_assert_msg(leaf && slm_tensor_grad(leaf), "no gradient for %s", f->name);
    size_t n = (size_t)(f->w.ne[0] * f->w.ne[1]);
    float *ga = malloc(n * sizeof *ga);
    run_loss(t);
    ck_assert_int_eq(slm_tensor_get_data(slm_tensor_grad(leaf), ga, 0, n * sizeof *ga), 0);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        float keep = f->host[i], x = keep + (float)h;
        slm_buffer_set(f->w.buf, i * 4, &x, 4);
        double up = run_loss(t);
        x = keep - (float)h;
        slm_buffer_set(f->w.buf, i * 4, &x, 4);
        double down = run_loss(t);
        slm_buffer_set(f->w.buf, i * 4, &keep, 4);
        double fd = (up - down) / (2.0 * h);
        num += (fd - ga[i]) * (fd - ga[i]);
        den += fd * fd;
    }
    free(ga);
    ck_assert_msg(sqrt(den) > 1e-4, "%s: the loss does not depend on it", f->name);
    return sqrt(num) / sqrt(den);
}

/* The loss as the host computes it from the logits: the mean over scored rows. */
static double host_loss(const float *logits, const int32_t *target, int n)
{
    double sum = 0.0;
    int scored = 0;
    for (int r = 0; r < n; r++) {
        if (target[r] < 0)
            continue;
        const float *l = logits + (size_t)r * TV;
        double mx = l[0], s = 0.0;
        for (int v = 1; v < TV; v++)
            mx = fmax(mx, l[v]);
        for (int v = 0; v < TV; v++)
            s += exp(l[v] - mx);
        sum += log(s) + mx - l[target[r]];
        scored++;
    }
    return sum / scored;
}

START_TEST(adapter_gradients_match_finite_differences)
{
    const char *arch = tiny_archs[_i];
    slm_error_t err = {.struct_size = sizeof err};
    slm_model_file_t *mf = tiny_file(arch);
    train_fx_t t = {.m = tiny_model(mf)};
    slm__adapters_t *ad = slm__adapters_new(t.m, &err);
    ck_assert_ptr_nonnull(ad);
    bool phi3 = strcmp(arch, "phi3") == 0;
    lora_fx_t l[3];
    lora_make(&l[0], ad, t.m, phi3 ? "blk.0.attn_qkv.weight" : "blk.0.attn_q.weight", 2, 1.0f,
              0.5f, true, 41);
    lora_make(&l[1], ad, t.m, phi3 ? "blk.1.ffn_up.weight" : "blk.1.attn_v.weight", 3, 0.5f,
              0.5f, true, 43);
    lora_make(&l[2], ad, t.m, "blk.1.ffn_down.weight", 2, 2.0f, 0.5f, true, 45);
    enum { T = 6, B = 2 };
    t.g = slm_graph_new(slm__forward_graph_size(t.m, ad) * 8);
    ck_assert_msg(slm__forward_sequences(t.m, t.g, T, B, ad, 0, &t.sg, &err) == SLM_OK, "%s",
                  err.message);
    ck_assert_msg(slm__xent_build(t.g, t.sg.fwd.out, &t.xe, &err) == SLM_OK, "%s", err.message);
    ck_assert_msg(slm_graph_backward(t.g, t.xe.loss, &err) == SLM_OK, "%s", err.message);
    ck_assert_msg(slm_sched_alloc(slm_model_sched(t.m), t.g, &err) == SLM_OK, "%s", err.message);
    /* Row 0 packs two documents and a padding token; unscored rows (-1) must add
     * nothing to the loss nor to the gradients. */
    const int32_t doc[T * B] = {0, 0, 0, 1, 1, -1, 3, 3, 3, 3, 3, 3};
    const int32_t target[T * B] = {4, 9, -1, 17, 2, -1, -1, 30, 1, 1, 8, 22};
    int32_t tok[T * B];
    tokens_fill(tok, T * B, TV, 51);
    ck_assert_msg(slm__forward_sequences_feed(&t.sg, tok, doc, &err) == SLM_OK, "%s",
                  err.message);
    ck_assert_int_eq(slm__xent_feed(&t.xe, target, &err), 9);
    double loss = run_loss(&t);
    float logits[T * B * TV];
    ck_assert_int_eq(slm_tensor_get_data(t.sg.fwd.out, logits, 0, sizeof logits), 0);
    double want = host_loss(logits, target, T * B);
    ck_assert_msg(fabs(loss - want) <= 1e-5 * want, "%s: loss %.9g, host %.9g", arch, loss, want);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            factor_t *f = k ? &l[i].b : &l[i].a;
            double e = fmin(grad_error(&t, f, 1e-2), grad_error(&t, f, 2e-3));
            ck_assert_msg(e < TOL_GRAD, "%s: gradient of %s: relative error %g", arch, f->name, e);
        }
    slm_graph_free(t.g);
    for (int i = 0; i < 3; i++)
        lora_free(&l[i]);
    slm__adapters_free(ad);
    slm_model_free(t.m);
    slm_model_file_free(mf);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/%s", fx ? fx : ".", MODEL_REL);
    FILE *f = fopen(model_path, "rb");
    if (!f) {
        printf("SKIP: %s not found\n", model_path);
        return 77;
    }
    fclose(f);
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sequences_match_decode);
    tcase_add_test(tc, packed_documents_match_decode);
    tcase_add_test(tc, last_positions_and_hidden_states);
    tcase_add_test(tc, attach_checks_factors);
    tcase_add_test(tc, zero_adapter_is_identity);
    tcase_add_test(tc, adapters_match_merged_weights);
    tcase_add_loop_test(tc, tiny_arch_matches_decode, 0, 3);
    tcase_add_loop_test(tc, adapter_gradients_match_finite_differences, 0, 3);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

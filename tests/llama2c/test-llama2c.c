/* The llama2.c and SentencePiece format plugins against the real fixtures: the
 * checkpoint equals llama.cpp's GGUF conversion tensor for tensor, the tokenizers
 * equal each other, and v1/v2 checkpoints written here read back to the same model. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <slmops/model-file.h>
#include <slmops/types.h>

static slm_registry_t *reg;
static char tmpdir[256];

static void fixture(char *out, size_t n, const char *rel)
{
    const char *root = getenv("SLMOPS_FIXTURES");
    snprintf(out, n, "%s/%s", root && *root ? root : "../shared/fixtures", rel);
}

static void setup(void)
{
    reg = slm_registry_new(NULL, NULL);
    ck_assert_ptr_nonnull(reg);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/slm-llama2c-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    slm_registry_free(reg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static slm_model_file_t *open_ok(const char *path, const char *want_format)
{
    slm_error_t e;
    slm_error_init(&e);
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, NULL, &mf, &e);
    ck_assert_msg(rc == SLM_OK, "%s: %s", path, e.message);
    ck_assert_str_eq(slm_model_file_format(mf), want_format);
    return mf;
}

static slm_model_file_t *open_fixture(const char *rel, const char *want_format)
{
    char path[1100];
    fixture(path, sizeof path, rel);
    return open_ok(path, want_format);
}

static int64_t get_int(const slm_model_file_t *mf, const char *key)
{
    int64_t v = -1;
    ck_assert_msg(slm_model_file_get_int(mf, key, &v, NULL) == SLM_OK, "missing %s", key);
    return v;
}

static void *slurp(const char *rel, size_t *len)
{
    char path[1100];
    fixture(path, sizeof path, rel);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, *len, f), *len);
    fclose(f);
    return p;
}

/* Every tensor of b is in a with the same type, shape and bytes, in the same order. */
static void assert_same_tensors(const slm_model_file_t *a, const slm_model_file_t *b)
{
    ck_assert_uint_eq(slm_model_file_n_tensors(a), slm_model_file_n_tensors(b));
    for (size_t i = 0; i < slm_model_file_n_tensors(b); i++) {
        slm_model_tensor_t tb = {.struct_size = sizeof tb}, ta = {.struct_size = sizeof ta};
        ck_assert_int_eq(slm_model_file_tensor(b, i, &tb), SLM_OK);
        ck_assert_int_eq(slm_model_file_tensor(a, i, &ta), SLM_OK);
        ck_assert_str_eq(ta.name, tb.name);
        ck_assert_int_eq(ta.type, tb.type);
        ck_assert_int_eq(ta.n_dims, tb.n_dims);
        for (int d = 0; d < SLM_MODEL_FILE_MAX_DIMS; d++)
            ck_assert_int_eq(ta.ne[d], tb.ne[d]);
        ck_assert_uint_eq(ta.nbytes, tb.nbytes);
        ck_assert_msg(memcmp(ta.data, tb.data, tb.nbytes) == 0, "%s differs", tb.name);
    }
}

START_TEST(stories_bin_equals_gguf)
{
    slm_model_file_t *bin = open_fixture("llama2c/stories260K.bin", "format-llama2c");
    slm_model_file_t *gguf = open_fixture("gguf/stories260K.gguf", "format-gguf");
    assert_same_tensors(bin, gguf);
    const char *arch = NULL;
    ck_assert_int_eq(slm_model_file_get_string(bin, "general.architecture", &arch, NULL), 0);
    ck_assert_str_eq(arch, "llama");
    /* The checkpoint's own seq_len; llama.cpp's converter wrote its default 2048. */
    ck_assert_int_eq(get_int(bin, "llama.context_length"), 512);
    static const char *const same[] = {
        "llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
        "llama.attention.head_count", "llama.attention.head_count_kv",
        "llama.rope.dimension_count"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        ck_assert_int_eq(get_int(bin, same[i]), get_int(gguf, same[i]));
    ck_assert_int_eq(get_int(bin, "llama.embedding_length"), 64);
    ck_assert_int_eq(get_int(bin, "llama.feed_forward_length"), 172);
    ck_assert_int_eq(get_int(bin, "llama.block_count"), 5);
    ck_assert_int_eq(get_int(bin, "llama.attention.head_count"), 8);
    ck_assert_int_eq(get_int(bin, "llama.attention.head_count_kv"), 4);
    ck_assert_int_eq(get_int(bin, "llama.rope.dimension_count"), 8);
    ck_assert_int_eq(get_int(bin, "llama.vocab_size"), 512);
    double eps = 0, eps_gguf = 0;
    ck_assert_int_eq(slm_model_file_get_float(bin, "llama.attention.layer_norm_rms_epsilon",
                                              &eps, NULL), 0);
    ck_assert_int_eq(slm_model_file_get_float(gguf, "llama.attention.layer_norm_rms_epsilon",
                                              &eps_gguf, NULL), 0);
    ck_assert(eps == eps_gguf);
    slm_model_file_free(bin);
    slm_model_file_free(gguf);
}
END_TEST

/* Same tokens, scores and token types (strings compared with their lengths). */
static void assert_same_vocab(const slm_model_file_t *a, const slm_model_file_t *b,
                              bool scores, bool types)
{
    slm_model_value_t ta = {.struct_size = sizeof ta}, tb = {.struct_size = sizeof tb};
    ck_assert_int_eq(slm_model_file_get_array(a, "tokenizer.ggml.tokens", SLM_MF_STRING, &ta, NULL), 0);
    ck_assert_int_eq(slm_model_file_get_array(b, "tokenizer.ggml.tokens", SLM_MF_STRING, &tb, NULL), 0);
    ck_assert_uint_eq(ta.n, tb.n);
    const char *const *sa = ta.data, *const *sb = tb.data;
    for (uint64_t i = 0; i < ta.n; i++) {
        ck_assert_msg(ta.lens[i] == tb.lens[i] && memcmp(sa[i], sb[i], ta.lens[i]) == 0,
                      "token %llu: '%s' vs '%s'", (unsigned long long)i, sa[i], sb[i]);
    }
    if (scores) {
        ck_assert_int_eq(slm_model_file_get_array(a, "tokenizer.ggml.scores", SLM_MF_F32, &ta, NULL), 0);
        ck_assert_int_eq(slm_model_file_get_array(b, "tokenizer.ggml.scores", SLM_MF_F32, &tb, NULL), 0);
        ck_assert_uint_eq(ta.n, tb.n);
        ck_assert(memcmp(ta.data, tb.data, ta.n * 4) == 0);
    }
    if (types) {
        ck_assert_int_eq(slm_model_file_get_array(a, "tokenizer.ggml.token_type", SLM_MF_I32, &ta, NULL), 0);
        ck_assert_int_eq(slm_model_file_get_array(b, "tokenizer.ggml.token_type", SLM_MF_I32, &tb, NULL), 0);
        ck_assert_uint_eq(ta.n, tb.n);
        const int32_t *ia = ta.data, *ib = tb.data;
        for (uint64_t i = 0; i < ta.n; i++)
            ck_assert_msg(ia[i] == ib[i], "token %llu: type %d vs %d", (unsigned long long)i,
                          ia[i], ib[i]);
    }
    static const char *const ids[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                      "tokenizer.ggml.unknown_token_id"};
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(get_int(a, ids[i]), get_int(b, ids[i]));
    const char *ma = NULL, *mb = NULL;
    ck_assert_int_eq(slm_model_file_get_string(a, "tokenizer.ggml.model", &ma, NULL), 0);
    ck_assert_int_eq(slm_model_file_get_string(b, "tokenizer.ggml.model", &mb, NULL), 0);
    ck_assert_str_eq(ma, mb);
}

START_TEST(tok512_bin_equals_gguf)
{
    slm_model_file_t *tok = open_fixture("llama2c/tok512.bin", "format-llama2c");
    slm_model_file_t *gguf = open_fixture("gguf/stories260K.gguf", "format-gguf");
    assert_same_vocab(tok, gguf, true, true);
    ck_assert_uint_eq(slm_model_file_n_tensors(tok), 0);
    /* A tokenizer-only container holds tokenizer.* keys and nothing else. */
    for (size_t i = 0; i < slm_model_file_n_values(tok); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        ck_assert_int_eq(slm_model_file_value(tok, i, &v), 0);
        ck_assert_msg(strncmp(v.key, "tokenizer.", 10) == 0, "unexpected key %s", v.key);
    }
    slm_model_file_free(tok);
    slm_model_file_free(gguf);
}
END_TEST

START_TEST(model_equals_bin)
{
    static const char *const pairs[2][2] = {
        {"llama2c/tok512.model", "llama2c/tok512.bin"},
        {"llama2c/llama2_tokenizer.model", "llama2c/llama2_tokenizer.bin"}};
    slm_model_file_t *model = open_fixture(pairs[_i][0], "format-sentencepiece");
    slm_model_file_t *bin = open_fixture(pairs[_i][1], "format-llama2c");
    assert_same_vocab(model, bin, true, true);
    bool prefix = false;
    ck_assert_int_eq(slm_model_file_get_bool(model, "tokenizer.ggml.add_space_prefix", &prefix, NULL), 0);
    ck_assert(prefix);
    slm_model_file_free(model);
    slm_model_file_free(bin);
}
END_TEST

START_TEST(unigram_refused)
{
    char path[1100];
    fixture(path, sizeof path, "sentencepiece/sentencepiece_test_model.model");
    slm_error_t e;
    slm_error_init(&e);
    slm_model_file_t *mf = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, path, NULL, &mf, &e), SLM_E_UNSUPPORTED);
    ck_assert_ptr_null(mf);
    ck_assert_msg(strstr(e.message, "UNIGRAM") && strstr(e.message, "not supported") &&
                  strstr(e.message, "sentencepiece_test_model.model"), "%s", e.message);
}
END_TEST

/* ---- checkpoints written here from stories260K.bin's weights ---- */

enum { TOK, RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3, RMS_FINAL, FREQ, N_ARR };

typedef struct model {
    int32_t h[7];              /* dim hidden layers heads kv_heads vocab seq_len */
    const float *arr[N_ARR];
    size_t layer_n[N_ARR];     /* floats per layer */
    size_t layers[N_ARR];
    void *file;
} model_t;

static void load_v0(model_t *m)
{
    size_t len;
    m->file = slurp("llama2c/stories260K.bin", &len);
    memcpy(m->h, m->file, sizeof m->h);
    size_t dim = (size_t)m->h[0], hid = (size_t)m->h[1], L = (size_t)m->h[2];
    size_t head = dim / (size_t)m->h[3], kv = head * (size_t)m->h[4], V = (size_t)m->h[5];
    const size_t per[N_ARR] = {V * dim, dim, dim * dim, dim * kv, dim * kv, dim * dim, dim,
                               dim * hid, hid * dim, dim * hid, dim, (size_t)m->h[6] * head};
    const size_t lay[N_ARR] = {1, L, L, L, L, L, L, L, L, L, 1, 1};
    const float *p = (const float *)((const char *)m->file + 28);
    for (int k = 0; k < N_ARR; k++) {
        m->arr[k] = p;
        m->layer_n[k] = per[k];
        m->layers[k] = lay[k];
        p += per[k] * lay[k];
    }
    ck_assert_uint_eq((size_t)((const char *)p - (const char *)m->file), len);
}

static void put_header(FILE *f, const model_t *m, int version, int32_t group_size)
{
    uint8_t h[256] = {0};
    uint32_t magic = 0x616b3432;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &version, 4);
    memcpy(h + 8, m->h, 28);
    h[36] = 1;   /* shared classifier */
    if (version == 2)
        memcpy(h + 37, &group_size, 4);
    ck_assert_uint_eq(fwrite(h, 1, 256, f), 256);
}

static void put_all(FILE *f, const model_t *m, int k)
{
    size_t n = m->layer_n[k] * m->layers[k];
    ck_assert_uint_eq(fwrite(m->arr[k], 4, n, f), n);
}

/* export.py's quantize_q80: per flat group, scale = max|w| / 127, q = round(w / scale)
 * (torch.round: half to even, as nearbyintf in the default rounding mode). */
static void put_q80(FILE *f, const float *w, size_t n, size_t gs)
{
    int8_t *q = malloc(n);
    float *s = malloc(n / gs * sizeof *s);
    ck_assert(q && s);
    for (size_t g = 0; g < n / gs; g++) {
        float wmax = 0;
        for (size_t i = 0; i < gs; i++)
            wmax = fmaxf(wmax, fabsf(w[g * gs + i]));
        s[g] = wmax / 127.0f;
        for (size_t i = 0; i < gs; i++)
            q[g * gs + i] = s[g] ? (int8_t)nearbyintf(w[g * gs + i] / s[g]) : 0;
    }
    ck_assert_uint_eq(fwrite(q, 1, n, f), n);
    ck_assert_uint_eq(fwrite(s, 4, n / gs, f), n / gs);
    free(q);
    free(s);
}

static void write_checkpoint(const char *path, const model_t *m, int version, int32_t gs)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    put_header(f, m, version, gs);
    put_all(f, m, RMS_ATT);
    put_all(f, m, RMS_FFN);
    put_all(f, m, RMS_FINAL);
    static const int mats[] = {TOK, WQ, WK, WV, WO, W1, W2, W3};
    for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) {
        int k = mats[i];
        if (version == 1) {
            put_all(f, m, k);
            continue;
        }
        for (size_t l = 0; l < m->layers[k]; l++)
            put_q80(f, m->arr[k] + l * m->layer_n[k], m->layer_n[k], (size_t)gs);
    }
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(v1_equals_v0)
{
    model_t m;
    load_v0(&m);
    char path[300];
    snprintf(path, sizeof path, "%s/stories260K-v1.bin", tmpdir);
    write_checkpoint(path, &m, 1, 0);
    slm_model_file_t *v1 = open_ok(path, "format-llama2c");
    slm_model_file_t *v0 = open_fixture("llama2c/stories260K.bin", "format-llama2c");
    assert_same_tensors(v1, v0);
    ck_assert_int_eq(get_int(v1, "llama.context_length"), 512);
    slm_model_file_free(v1);
    slm_model_file_free(v0);
    free(m.file);
}
END_TEST

static float f16(const uint8_t *p)
{
    return slm_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Each value of t is within 0.6 of its group's step (max|w| / 127) of the f32
 * original: 0.5 from rounding to int8, the rest from the scale's rounding to f16. */
static void assert_q8_close(const slm_model_tensor_t *t, const float *orig, size_t gs)
{
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    for (size_t g = 0; g < n / gs; g++) {
        float wmax = 0;
        for (size_t i = 0; i < gs; i++)
            wmax = fmaxf(wmax, fabsf(orig[g * gs + i]));
        float step = wmax / 127.0f;
        for (size_t i = 0; i < gs; i++) {
            size_t j = g * gs + i;
            float v = t->type == SLM_TYPE_F32
                          ? ((const float *)t->data)[j]
                          : f16((const uint8_t *)t->data + j / 32 * 34) *
                                (float)((const int8_t *)t->data)[j / 32 * 34 + 2 + j % 32];
            ck_assert_msg(fabsf(v - orig[j]) <= 0.6f * step + 1e-12f, "%s[%zu]: %g vs %g",
                          t->name, j, v, orig[j]);
        }
    }
}

static void check_v2(int32_t gs)
{
    model_t m;
    load_v0(&m);
    char path[300];
    snprintf(path, sizeof path, "%s/stories260K-v2-%d.bin", tmpdir, gs);
    write_checkpoint(path, &m, 2, gs);
    slm_model_file_t *v2 = open_ok(path, "format-llama2c");
    slm_model_file_t *v0 = open_fixture("llama2c/stories260K.bin", "format-llama2c");
    ck_assert_uint_eq(slm_model_file_n_tensors(v2), slm_model_file_n_tensors(v0));
    size_t n_q8 = 0;
    for (size_t i = 0; i < slm_model_file_n_tensors(v0); i++) {
        slm_model_tensor_t a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
        ck_assert_int_eq(slm_model_file_tensor(v0, i, &a), 0);
        ck_assert_int_eq(slm_model_file_tensor(v2, i, &b), 0);
        ck_assert_str_eq(a.name, b.name);
        ck_assert_int_eq(a.ne[0], b.ne[0]);
        ck_assert_int_eq(a.ne[1], b.ne[1]);
        if (a.n_dims == 1) {   /* norms stay fp32, bit for bit */
            ck_assert_int_eq(b.type, SLM_TYPE_F32);
            ck_assert(memcmp(a.data, b.data, a.nbytes) == 0);
            continue;
        }
        /* q8_0 exactly when groups are ggml blocks: 32 wide, never across a row */
        bool want_q8 = gs == 32 && a.ne[0] % 32 == 0;
        ck_assert_int_eq(b.type, want_q8 ? SLM_TYPE_Q8_0 : SLM_TYPE_F32);
        n_q8 += want_q8;
        assert_q8_close(&b, a.data, (size_t)gs);
    }
    ck_assert_uint_eq(n_q8, gs == 32 ? 2 + 5 * 6 : 0);
    slm_model_file_free(v2);
    slm_model_file_free(v0);
    free(m.file);
}

START_TEST(v2_group32_is_q8_0)
{
    check_v2(32);
}
END_TEST

START_TEST(v2_group64_is_f32)
{
    check_v2(64);
}
END_TEST

START_TEST(v0_unshared_classifier)
{
    model_t m;
    load_v0(&m);
    size_t n = m.layer_n[TOK];
    float *cls = malloc(n * sizeof *cls);
    ck_assert_ptr_nonnull(cls);
    for (size_t i = 0; i < n; i++)
        cls[i] = -m.arr[TOK][i] * 0.5f;
    char path[300];
    snprintf(path, sizeof path, "%s/unshared.bin", tmpdir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    int32_t h[7];
    memcpy(h, m.h, sizeof h);
    h[5] = -h[5];   /* v0's way of saying "a classifier follows" */
    ck_assert_uint_eq(fwrite(h, 4, 7, f), 7);
    for (int k = 0; k < N_ARR; k++)
        put_all(f, &m, k);
    ck_assert_uint_eq(fwrite(cls, 4, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    slm_model_file_t *mf = open_ok(path, "format-llama2c");
    slm_model_tensor_t out = {.struct_size = sizeof out}, emb = {.struct_size = sizeof emb};
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "output.weight", &out), 0);
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "token_embd.weight", &emb), 0);
    ck_assert_uint_eq(out.nbytes, n * 4);
    ck_assert(memcmp(out.data, cls, n * 4) == 0);
    ck_assert(memcmp(emb.data, m.arr[TOK], n * 4) == 0);
    ck_assert_int_eq(get_int(mf, "llama.vocab_size"), 512);
    slm_model_file_free(mf);
    free(cls);
    free(m.file);
}
END_TEST

int main(void)
{
    char probe[1100];
    fixture(probe, sizeof probe, "llama2c/stories260K.bin");
    if (access(probe, R_OK) != 0) {
        printf("SKIP: %s not found (set SLMOPS_FIXTURES)\n", probe);
        return 77;
    }
    Suite *s = suite_create("llama2c");
    TCase *tc = tcase_create("fixtures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stories_bin_equals_gguf);
    tcase_add_test(tc, tok512_bin_equals_gguf);
    tcase_add_loop_test(tc, model_equals_bin, 0, 2);
    tcase_add_test(tc, unigram_refused);
    tcase_add_test(tc, v1_equals_v0);
    tcase_add_test(tc, v2_group32_is_q8_0);
    tcase_add_test(tc, v2_group64_is_f32);
    tcase_add_test(tc, v0_unshared_classifier);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

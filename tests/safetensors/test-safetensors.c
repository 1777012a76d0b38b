/* The safetensors format plugin through the public API: the safetensors samples,
 * a GGUF -> Hugging Face folder -> container round trip, and the HF tokenizers. */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include <slmops/model-file.h>
#include <slmops/registry.h>
#include <slmops/types.h>

static slm_registry_t *reg;
static char tmpdir[256];
static char fixtures[1024];

/* Remove tmpdir and the folders inside it (one level deep is all the tests make). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void setup(void)
{
    slm_error_t err;
    slm_error_init(&err);
    reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    snprintf(tmpdir, sizeof tmpdir, "%s/st-test-XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    remove_tree(tmpdir);
    slm_registry_free(reg);
}

static void fixture(char *out, size_t size, const char *rel)
{
    snprintf(out, size, "%s/%s", fixtures, rel);
}

static slm_model_file_t *open_ok(const char *path, const char *format)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, format, &mf, &err);
    ck_assert_msg(rc == SLM_OK, "%s: %s", path, err.message);
    return mf;
}

static int64_t get_int(const slm_model_file_t *mf, const char *key)
{
    int64_t v = -1;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_model_file_get_int(mf, key, &v, &err) == SLM_OK, "%s: %s", key, err.message);
    return v;
}

static const char *get_str(const slm_model_file_t *mf, const char *key)
{
    const char *v = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_model_file_get_string(mf, key, &v, &err) == SLM_OK, "%s: %s", key, err.message);
    return v;
}

static uint64_t array_len(const slm_model_file_t *mf, const char *key)
{
    slm_model_value_t v = {.struct_size = sizeof v};
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_model_file_get_array(mf, key, -1, &v, &err) == SLM_OK, "%s: %s", key, err.message);
    return v.n;
}

/* ---- safetensors-samples ---- */

static double element(const slm_model_tensor_t *t, int64_t i)
{
    switch (t->type) {
    case SLM_TYPE_F32: return ((const float *)t->data)[i];
    case SLM_TYPE_F16: return slm_f16_to_f32(((const uint16_t *)t->data)[i]);
    case SLM_TYPE_F64: return ((const double *)t->data)[i];
    case SLM_TYPE_I8: return ((const int8_t *)t->data)[i];
    case SLM_TYPE_I16: return ((const int16_t *)t->data)[i];
    case SLM_TYPE_I32: return ((const int32_t *)t->data)[i];
    default: ck_abort_msg("unexpected type %d", t->type); return 0;
    }
}

static const struct { const char *file; int type; } samples[] = {
    {"b", SLM_TYPE_I8}, {"h", SLM_TYPE_I16}, {"i", SLM_TYPE_I32},
    {"e", SLM_TYPE_F16}, {"f", SLM_TYPE_F32}, {"d", SLM_TYPE_F64},
};

START_TEST(sample_reads)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/safetensors-samples/%s.safetensors", fixtures, samples[_i].file);
    slm_model_file_t *mf = open_ok(path, NULL);
    ck_assert_str_eq(slm_model_file_format(mf), "format-safetensors");
    slm_model_tensor_t t = {.struct_size = sizeof t};
    ck_assert_int_eq(slm_model_file_n_tensors(mf), 1);
    ck_assert_int_ge(slm_model_file_find_tensor(mf, samples[_i].file, &t), 0);
    ck_assert_int_eq(t.type, samples[_i].type);
    ck_assert_int_eq(t.n_dims, 1);
    ck_assert_int_eq(t.ne[0], 6);
    for (int64_t k = 0; k < 6; k++)
        ck_assert_msg(element(&t, k) == (double)(k - 3), "%s[%lld] = %g", samples[_i].file, (long long)k,
                      element(&t, k));
    ck_assert_str_eq(get_str(mf, "safetensors.metadata.test"), "a");
    slm_model_file_free(mf);
}
END_TEST

static const char *const unsupported[][2] = {{"B", "U8"}, {"H", "U16"}, {"I", "U32"}, {"overall", "U8"}};

START_TEST(sample_unsupported_dtype)
{
    char path[1200], want[64];
    snprintf(path, sizeof path, "%s/safetensors-samples/%s.safetensors", fixtures, unsupported[_i][0]);
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, path, NULL, &mf, &err), SLM_E_UNSUPPORTED);
    ck_assert_ptr_null(mf);
    snprintf(want, sizeof want, "has dtype %s, which slmops has no type for", unsupported[_i][1]);
    ck_assert_msg(strstr(err.message, want), "message: %s", err.message);
    ck_assert_msg(strstr(err.message, "overall") || strstr(err.message, unsupported[_i][0]), "%s", err.message);
}
END_TEST

/* ---- GGUF -> HF folder -> container ---- */

static void save_ok(const slm_model_file_t *mf, const char *path)
{
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_model_file_save(mf, reg, path, "format-safetensors", &err);
    ck_assert_msg(rc == SLM_OK, "%s: %s", path, err.message);
}

static void same_tensors(const slm_model_file_t *a, const slm_model_file_t *b)
{
    ck_assert_int_eq(slm_model_file_n_tensors(a), slm_model_file_n_tensors(b));
    for (size_t i = 0; i < slm_model_file_n_tensors(a); i++) {
        slm_model_tensor_t x = {.struct_size = sizeof x}, y = {.struct_size = sizeof y};
        ck_assert_int_eq(slm_model_file_tensor(a, i, &x), SLM_OK);
        ck_assert_msg(slm_model_file_find_tensor(b, x.name, &y) >= 0, "%s missing", x.name);
        ck_assert_int_eq(x.type, y.type);
        ck_assert_int_eq(x.n_dims, y.n_dims);
        for (int d = 0; d < SLM_MODEL_FILE_MAX_DIMS; d++)
            ck_assert_int_eq(x.ne[d], y.ne[d]);
        ck_assert_uint_eq(x.nbytes, y.nbytes);
        ck_assert_msg(memcmp(x.data, y.data, x.nbytes) == 0, "%s: bytes differ", x.name);
    }
}

static void same_value(const slm_model_file_t *a, const slm_model_file_t *b, const char *key)
{
    slm_model_value_t x = {.struct_size = sizeof x}, y = {.struct_size = sizeof y};
    ck_assert_msg(slm_model_file_find_value(a, key, &x) >= 0, "%s missing in the original", key);
    ck_assert_msg(slm_model_file_find_value(b, key, &y) >= 0, "%s missing after the round trip", key);
    ck_assert_int_eq(x.type, y.type);
    ck_assert_int_eq(x.elem_type, y.elem_type);
    ck_assert_uint_eq(x.n, y.n);
    if (x.elem_type == SLM_MF_STRING && x.type == SLM_MF_ARRAY) {
        for (uint64_t i = 0; i < x.n; i++)
            ck_assert_msg(x.lens[i] == y.lens[i] &&
                          memcmp(((const char *const *)x.data)[i], ((const char *const *)y.data)[i],
                                 x.lens[i]) == 0, "%s[%llu] differs", key, (unsigned long long)i);
        return;
    }
    size_t size = x.type == SLM_MF_STRING ? x.n : x.elem_type == SLM_MF_BOOL || x.elem_type <= SLM_MF_I8 ? 1
                  : x.elem_type <= SLM_MF_I16 ? 2 : x.elem_type <= SLM_MF_F32 ? 4 : 8;
    ck_assert_msg(memcmp(x.data, y.data, x.type == SLM_MF_STRING ? x.n : size * x.n) == 0, "%s differs", key);
}

static const char *const hparams[] = {
    "general.architecture", "llama.context_length", "llama.embedding_length", "llama.block_count",
    "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
    "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model",
    "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
};

START_TEST(gguf_folder_round_trip)
{
    char src[1200], out[512];
    fixture(src, sizeof src, "gguf/stories260K.gguf");
    snprintf(out, sizeof out, "%s/hf", tmpdir);
    slm_model_file_t *g = open_ok(src, NULL);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_model_file_set_string(g, "tokenizer.chat_template", "{{ messages }}", &err), SLM_OK);
    save_ok(g, out);
    slm_model_file_t *h = open_ok(out, NULL);
    ck_assert_str_eq(slm_model_file_format(h), "format-safetensors");
    same_tensors(g, h);
    same_value(g, h, "tokenizer.chat_template");
    for (size_t i = 0; i < sizeof hparams / sizeof hparams[0]; i++)
        same_value(g, h, hparams[i]);
    /* The file itself holds HF's q layout: row (h, i, j) of HF is row (h, j, i) here. */
    char st[600];
    snprintf(st, sizeof st, "%s/model.safetensors", out);
    slm_model_file_t *raw = open_ok(st, NULL);
    slm_model_tensor_t q = {.struct_size = sizeof q}, hq = {.struct_size = sizeof hq};
    ck_assert_int_ge(slm_model_file_find_tensor(g, "blk.0.attn_q.weight", &q), 0);
    ck_assert_int_ge(slm_model_file_find_tensor(raw, "model.layers.0.self_attn.q_proj.weight", &hq), 0);
    ck_assert_int_lt(slm_model_file_find_tensor(raw, "blk.0.attn_q.weight", NULL), 0);
    int64_t heads = get_int(g, "llama.attention.head_count"), rows = q.ne[1], half = rows / heads / 2;
    size_t row = (size_t)q.ne[0] * sizeof(float);
    for (int64_t hh = 0; hh < heads; hh++)
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < half; j++)
                ck_assert(memcmp((const char *)hq.data + (size_t)(hh * 2 * half + i * half + j) * row,
                                 (const char *)q.data + (size_t)(hh * 2 * half + j * 2 + i) * row, row) == 0);
    slm_model_file_free(raw);
    slm_model_file_free(h);
    slm_model_file_free(g);
}
END_TEST

static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    int ca, cb;
    while (same && ((ca = getc(fa)) != EOF) | ((cb = getc(fb)) != EOF))
        same = ca == cb;
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

START_TEST(write_is_deterministic_and_replaces_own_output)
{
    char src[1200], a[512], b[512], fa[600], fb[600];
    fixture(src, sizeof src, "gguf/stories260K.gguf");
    snprintf(a, sizeof a, "%s/a", tmpdir);
    snprintf(b, sizeof b, "%s/b", tmpdir);
    slm_model_file_t *g = open_ok(src, NULL);
    save_ok(g, a);
    save_ok(g, b);
    save_ok(g, a);   /* an earlier output is replaced */
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json", "generation_config.json"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(fa, sizeof fa, "%s/%s", a, files[i]);
        snprintf(fb, sizeof fb, "%s/%s", b, files[i]);
        ck_assert_msg(same_file(fa, fb), "%s differs between two writes", files[i]);
    }
    /* Nothing left under a temporary name. */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(n, 2);
    slm_model_file_free(g);
}
END_TEST

START_TEST(refuses_foreign_folder)
{
    char src[1200], dir[512], keep[600];
    fixture(src, sizeof src, "gguf/stories260K.gguf");
    snprintf(dir, sizeof dir, "%s/mine", tmpdir);
    snprintf(keep, sizeof keep, "%s/notes.txt", dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    FILE *f = fopen(keep, "w");
    ck_assert_ptr_nonnull(f);
    fputs("precious\n", f);
    fclose(f);
    slm_model_file_t *g = open_ok(src, NULL);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_model_file_save(g, reg, dir, "format-safetensors", &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "notes.txt"), "%s", err.message);
    ck_assert_int_eq(access(keep, R_OK), 0);
    slm_model_file_free(g);
}
END_TEST

START_TEST(single_file_keeps_names_and_metadata)
{
    char src[1200], out[512];
    fixture(src, sizeof src, "safetensors-samples/f.safetensors");
    snprintf(out, sizeof out, "%s/copy.safetensors", tmpdir);
    slm_model_file_t *a = open_ok(src, NULL);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_model_file_save(a, reg, out, NULL, &err) == SLM_OK, "%s", err.message);
    slm_model_file_t *b = open_ok(out, NULL);
    same_tensors(a, b);
    ck_assert_str_eq(get_str(b, "safetensors.metadata.test"), "a");
    ck_assert_str_eq(get_str(b, "safetensors.metadata.format"), "pt");
    slm_model_file_free(b);
    slm_model_file_free(a);
}
END_TEST

/* ---- HF tokenizers ---- */

/* The value of an integer key, or -1 when the file does not have it. */
static int64_t int_or_absent(const slm_model_file_t *mf, const char *key)
{
    int64_t v = -1;
    int rc = slm_model_file_get_int(mf, key, &v, NULL);
    ck_assert_msg(rc == SLM_OK || rc == SLM_E_NOT_FOUND, "%s: status %d", key, rc);
    return rc == SLM_OK ? v : -1;
}

/* Special ids (-1: the key must be absent). GPT-2's folder has no config: its BOS,
 * EOS and UNK are GPT2Tokenizer's "<|endoftext|>"; Qwen2.5's config names EOS by
 * content and has no BOS; Llama 3's are its first two special tokens. */
static const struct {
    const char *dir, *pre;
    uint64_t n_tokens, n_merges;
    int64_t bos, eos, unk;
} hf_tokenizers[] = {
    {"hf/gpt2-tokenizer", "gpt-2", 50257, 50000, 50256, 50256, 50256},
    {"hf/qwen2.5-tokenizer", "qwen2", 151665, 151387, -1, 151645, -1},
    {"hf/llama3.2-bpe", "llama3", 128256, 280147, 128000, 128001, -1},
};

START_TEST(hf_tokenizer_loads)
{
    char dir[1200];
    fixture(dir, sizeof dir, hf_tokenizers[_i].dir);
    slm_model_file_t *mf = open_ok(dir, NULL);
    ck_assert_int_eq(slm_model_file_n_tensors(mf), 0);
    ck_assert_str_eq(get_str(mf, "tokenizer.ggml.model"), "gpt2");
    ck_assert_str_eq(get_str(mf, "tokenizer.ggml.pre"), hf_tokenizers[_i].pre);
    ck_assert_uint_eq(array_len(mf, "tokenizer.ggml.tokens"), hf_tokenizers[_i].n_tokens);
    ck_assert_uint_eq(array_len(mf, "tokenizer.ggml.token_type"), hf_tokenizers[_i].n_tokens);
    ck_assert_uint_eq(array_len(mf, "tokenizer.ggml.merges"), hf_tokenizers[_i].n_merges);
    ck_assert_int_eq(int_or_absent(mf, "tokenizer.ggml.bos_token_id"), hf_tokenizers[_i].bos);
    ck_assert_int_eq(int_or_absent(mf, "tokenizer.ggml.eos_token_id"), hf_tokenizers[_i].eos);
    ck_assert_int_eq(int_or_absent(mf, "tokenizer.ggml.unknown_token_id"), hf_tokenizers[_i].unk);
    slm_model_file_free(mf);
}
END_TEST

START_TEST(qwen_tokenizer_config)
{
    char dir[1200];
    fixture(dir, sizeof dir, "hf/qwen2.5-tokenizer");
    slm_model_file_t *mf = open_ok(dir, NULL);
    ck_assert_int_eq(get_int(mf, "tokenizer.ggml.eos_token_id"), 151645);   /* by content */
    ck_assert_int_eq(get_int(mf, "tokenizer.ggml.padding_token_id"), 151643);
    slm_model_value_t v = {.struct_size = sizeof v};
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_model_file_get_array(mf, "tokenizer.ggml.token_type", SLM_MF_I32, &v, &err), SLM_OK);
    const int32_t *types = v.data;
    ck_assert_int_eq(types[151644], 3);   /* <|im_start|>: control */
    ck_assert_int_eq(types[151657], 4);   /* <tool_call>: user-defined, not special */
    ck_assert_int_eq(types[100], 1);
    bool add_bos = true;
    ck_assert_int_eq(slm_model_file_get_bool(mf, "tokenizer.ggml.add_bos_token", &add_bos, &err), SLM_OK);
    ck_assert(!add_bos);
    slm_model_file_free(mf);
}
END_TEST

/* A tokenizer-only container written as a folder reads back the same. */
START_TEST(tokenizer_only_round_trip)
{
    char dir[1200], out[512];
    fixture(dir, sizeof dir, hf_tokenizers[_i].dir);
    snprintf(out, sizeof out, "%s/tok", tmpdir);
    slm_model_file_t *a = open_ok(dir, NULL);
    save_ok(a, out);
    slm_model_file_t *b = open_ok(out, NULL);
    static const char *const keys[] = {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                                       "tokenizer.ggml.token_type", "tokenizer.ggml.merges"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        same_value(a, b, keys[i]);
    slm_model_file_free(b);
    slm_model_file_free(a);
}
END_TEST

/* Every metadata type survives a lone file (issue 7, item 9): the edge values
 * JSON cannot hold as they are (u64 above 2^63, NaN, infinities, bytes that are not
 * UTF-8, NUL) included. */
START_TEST(single_file_keeps_every_metadata_type)
{
    slm_model_file_t *a = slm_model_file_new();
    slm_error_t err;
    slm_error_init(&err);
    uint8_t u8 = 250, yes = 1;
    int8_t i8 = -5;
    uint16_t u16 = 65000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    uint64_t u64 = UINT64_MAX;
    int64_t i64 = INT64_MIN;
    float f32 = 1e-5f, fs[4] = {NAN, -INFINITY, INFINITY, -0.0f};
    double f64 = 3.141592653589793;
    int32_t is[3] = {-1, 0, 7};
    uint64_t us[2] = {1, UINT64_MAX - 1};
    const char *strs[3] = {"plain", "\xff\xfe not UTF-8", "h\xc3\xa9llo"};
    struct { const char *key; int32_t type; const void *v; } scalars[] = {
        {"t.u8", SLM_MF_U8, &u8}, {"t.i8", SLM_MF_I8, &i8}, {"t.u16", SLM_MF_U16, &u16},
        {"t.i16", SLM_MF_I16, &i16}, {"t.u32", SLM_MF_U32, &u32}, {"t.i32", SLM_MF_I32, &i32},
        {"t.u64", SLM_MF_U64, &u64}, {"t.i64", SLM_MF_I64, &i64}, {"t.f32", SLM_MF_F32, &f32},
        {"t.f64", SLM_MF_F64, &f64}, {"t.bool", SLM_MF_BOOL, &yes}};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        ck_assert_int_eq(slm_model_file_set_value(a, scalars[i].key, scalars[i].type, scalars[i].v, 1, &err),
                         SLM_OK);
    ck_assert_int_eq(slm_model_file_set_value(a, "t.nul", SLM_MF_STRING, "a\0b", 3, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_string(a, "t.bytes", "\x80\x81", &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_array(a, "t.f32s", SLM_MF_F32, fs, NULL, 4, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_array(a, "t.i32s", SLM_MF_I32, is, NULL, 3, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_array(a, "t.u64s", SLM_MF_U64, us, NULL, 2, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_array(a, "t.strs", SLM_MF_STRING, strs, NULL, 3, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_array(a, "t.empty", SLM_MF_STRING, strs, NULL, 0, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_set_string(a, "safetensors.metadata.note", "own", &err), SLM_OK);
    static const float w[2] = {1, 2};
    const int64_t ne[1] = {2};
    ck_assert_int_eq(slm_model_file_add_tensor(a, "w", SLM_TYPE_F32, 1, ne, w, sizeof w, SLM_MF_COPY, &err),
                     SLM_OK);
    char out[512];
    snprintf(out, sizeof out, "%s/all.safetensors", tmpdir);
    save_ok(a, out);
    slm_model_file_t *b = open_ok(out, NULL);
    for (size_t i = 0; i < slm_model_file_n_values(a); i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        ck_assert_int_eq(slm_model_file_value(a, i, &v), SLM_OK);
        same_value(a, b, v.key);
    }
    ck_assert_str_eq(get_str(b, "safetensors.metadata.format"), "pt");
    ck_assert_int_eq(slm_model_file_find_value(b, "safetensors.metadata.slmops.gguf_metadata", NULL),
                     SLM_E_NOT_FOUND);
    same_tensors(a, b);
    slm_model_file_free(b);
    slm_model_file_free(a);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(fixtures, sizeof fixtures, "%s", fx ? fx : "../shared/fixtures");
    char probe[1200];
    fixture(probe, sizeof probe, "gguf/stories260K.gguf");
    if (access(probe, R_OK) != 0) {
        printf("SKIP: %s not found (set SLMOPS_FIXTURES)\n", probe);
        return 77;
    }
    Suite *s = suite_create("safetensors");
    TCase *samples_tc = tcase_create("samples");
    tcase_add_checked_fixture(samples_tc, setup, teardown);
    tcase_add_loop_test(samples_tc, sample_reads, 0, sizeof samples / sizeof samples[0]);
    tcase_add_loop_test(samples_tc, sample_unsupported_dtype, 0, sizeof unsupported / sizeof unsupported[0]);
    tcase_add_test(samples_tc, single_file_keeps_names_and_metadata);
    tcase_add_test(samples_tc, single_file_keeps_every_metadata_type);
    suite_add_tcase(s, samples_tc);
    TCase *model = tcase_create("model");
    tcase_add_checked_fixture(model, setup, teardown);
    tcase_add_test(model, gguf_folder_round_trip);
    tcase_add_test(model, write_is_deterministic_and_replaces_own_output);
    tcase_add_test(model, refuses_foreign_folder);
    suite_add_tcase(s, model);
    TCase *tok = tcase_create("tokenizers");
    tcase_add_checked_fixture(tok, setup, teardown);
    tcase_set_timeout(tok, 300);
    tcase_add_loop_test(tok, hf_tokenizer_loads, 0, sizeof hf_tokenizers / sizeof hf_tokenizers[0]);
    tcase_add_test(tok, qwen_tokenizer_config);
    tcase_add_loop_test(tok, tokenizer_only_round_trip, 0, sizeof hf_tokenizers / sizeof hf_tokenizers[0]);
    suite_add_tcase(s, tok);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

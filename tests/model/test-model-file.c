/* The model-file container through the public API: real GGUF fixtures read with
 * the right names, shapes, types and metadata; copies byte-identical; typed access. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include <slmops/model-file.h>
#include <slmops/types.h>

static slm_registry_t *reg;
static char tmpdir[256];
static char fixtures[1024];

static void setup(void)
{
    slm_error_t err;
    slm_error_init(&err);
    reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err.message);
    snprintf(tmpdir, sizeof tmpdir, "%s/model-file-XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
    slm_registry_free(reg);
}

static slm_model_file_t *open_ok(const char *path)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, NULL, &mf, &err);
    ck_assert_msg(rc == SLM_OK, "%s: %s", path, err.message);
    ck_assert_str_eq(slm_model_file_format(mf), "format-gguf");
    return mf;
}

static void fixture(char *out, size_t size, const char *rel)
{
    snprintf(out, size, "%s/%s", fixtures, rel);
}

static int64_t get_int(const slm_model_file_t *mf, const char *key)
{
    int64_t v = -1;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_model_file_get_int(mf, key, &v, &err) == SLM_OK, "%s", err.message);
    return v;
}

static void expect_tensor(const slm_model_file_t *mf, const char *name, int type, int n_dims,
                          int64_t ne0, int64_t ne1)
{
    slm_model_tensor_t t = {.struct_size = sizeof t};
    ck_assert_msg(slm_model_file_find_tensor(mf, name, &t) >= 0, "no tensor %s", name);
    ck_assert_int_eq(t.type, type);
    ck_assert_int_eq(t.n_dims, n_dims);
    ck_assert_int_eq(t.ne[0], ne0);
    ck_assert_int_eq(t.ne[1], ne1);
    ck_assert_uint_eq(t.nbytes, slm_type_row_size(type, ne0) * (uint64_t)ne1);
    ck_assert(t.borrowed);
}

START_TEST(stories260k)
{
    char path[1100];
    fixture(path, sizeof path, "gguf/stories260K.gguf");
    slm_model_file_t *mf = open_ok(path);
    ck_assert_uint_eq(slm_model_file_n_tensors(mf), 48);   /* 3 + 5 layers x 9 */
    const char *s;
    ck_assert_int_eq(slm_model_file_get_string(mf, "general.architecture", &s, NULL), SLM_OK);
    ck_assert_str_eq(s, "llama");
    ck_assert_int_eq(get_int(mf, "llama.embedding_length"), 64);
    ck_assert_int_eq(get_int(mf, "llama.feed_forward_length"), 172);
    ck_assert_int_eq(get_int(mf, "llama.block_count"), 5);
    ck_assert_int_eq(get_int(mf, "llama.attention.head_count"), 8);
    ck_assert_int_eq(get_int(mf, "llama.attention.head_count_kv"), 4);
    ck_assert_int_eq(get_int(mf, "llama.context_length"), 2048);
    double eps;
    ck_assert_int_eq(slm_model_file_get_float(mf, "llama.attention.layer_norm_rms_epsilon", &eps,
                                              NULL), SLM_OK);
    ck_assert_double_eq_tol(eps, 1e-5, 1e-9);
    slm_model_value_t v = {.struct_size = sizeof v};
    ck_assert_int_eq(slm_model_file_get_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, &v, NULL),
                     SLM_OK);
    ck_assert_uint_eq(v.n, 512);
    ck_assert_str_eq(((const char *const *)v.data)[1], "<s>");
    ck_assert_int_eq(slm_model_file_get_array(mf, "tokenizer.ggml.scores", SLM_MF_F32, &v, NULL),
                     SLM_OK);
    ck_assert_uint_eq(v.n, 512);
    ck_assert_int_eq(slm_model_file_get_array(mf, "tokenizer.ggml.token_type", SLM_MF_I32, &v,
                                              NULL), SLM_OK);
    ck_assert_uint_eq(v.n, 512);
    expect_tensor(mf, "token_embd.weight", SLM_TYPE_F32, 2, 64, 512);
    expect_tensor(mf, "output.weight", SLM_TYPE_F32, 2, 64, 512);
    expect_tensor(mf, "output_norm.weight", SLM_TYPE_F32, 1, 64, 1);
    expect_tensor(mf, "blk.4.ffn_down.weight", SLM_TYPE_F32, 2, 172, 64);
    expect_tensor(mf, "blk.0.attn_k.weight", SLM_TYPE_F32, 2, 64, 32);
    slm_model_file_free(mf);
}
END_TEST

START_TEST(tiny_random_and_f16)
{
    char path[1100];
    fixture(path, sizeof path, "gguf/llama-2-tiny-random.gguf");
    slm_model_file_t *mf = open_ok(path);
    ck_assert_int_eq(get_int(mf, "llama.embedding_length"), 8);
    slm_model_value_t v = {.struct_size = sizeof v};
    ck_assert_int_eq(slm_model_file_get_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, &v, NULL),
                     SLM_OK);
    ck_assert_uint_eq(v.n, 32000);
    expect_tensor(mf, "blk.0.attn_q.weight", SLM_TYPE_F16, 2, 8, 8);
    expect_tensor(mf, "blk.0.attn_norm.weight", SLM_TYPE_F32, 1, 8, 1);
    slm_model_file_free(mf);

    fixture(path, sizeof path, "gguf/derived/stories260K-F16.gguf");
    mf = open_ok(path);
    ck_assert_uint_eq(slm_model_file_n_tensors(mf), 48);
    expect_tensor(mf, "blk.0.ffn_up.weight", SLM_TYPE_F16, 2, 64, 172);
    expect_tensor(mf, "blk.0.ffn_norm.weight", SLM_TYPE_F32, 1, 64, 1);
    slm_model_file_free(mf);
}
END_TEST

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Every fixture: read, write, byte-compare with the original, re-read equal. */
START_TEST(fixtures_round_trip)
{
    const char *dirs[] = {"gguf", "gguf/derived", "llama.cpp-vocab"};
    int n = 0;
    for (size_t d = 0; d < 3; d++) {
        char dir[1100];
        fixture(dir, sizeof dir, dirs[d]);
        DIR *dh = opendir(dir);
        ck_assert_msg(dh != NULL, "missing %s", dir);
        struct dirent *e;
        while ((e = readdir(dh))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0)
                continue;
            char src[1400], dst[1400];
            snprintf(src, sizeof src, "%s/%s", dir, e->d_name);
            snprintf(dst, sizeof dst, "%s/copy.gguf", tmpdir);
            slm_model_file_t *mf = open_ok(src);
            slm_error_t err;
            slm_error_init(&err);
            ck_assert_msg(slm_model_file_save(mf, reg, dst, NULL, &err) == SLM_OK, "%s", err.message);
            ck_assert_msg(files_equal(src, dst), "%s: the copy differs", src);
            slm_model_file_t *again = open_ok(dst);
            ck_assert_uint_eq(slm_model_file_n_values(again), slm_model_file_n_values(mf));
            ck_assert_uint_eq(slm_model_file_n_tensors(again), slm_model_file_n_tensors(mf));
            slm_model_file_free(again);
            slm_model_file_free(mf);
            n++;
        }
        closedir(dh);
    }
    ck_assert_int_ge(n, 15);
}
END_TEST

/* A container with every value type, arrays and a few tensors. */
static slm_model_file_t *build(void)
{
    slm_model_file_t *mf = slm_model_file_new();
    ck_assert_ptr_nonnull(mf);
    uint8_t u8 = 200, b = 1;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    float f32 = 0.25f;
    uint64_t u64 = UINT64_MAX;
    int64_t i64 = INT64_MIN;
    double f64 = 1.0 / 3;
    ck_assert_int_eq(slm_model_file_set_string(mf, "general.architecture", "llama", NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.u8", SLM_MF_U8, &u8, 1, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.i8", SLM_MF_I8, &i8, 1, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.u16", SLM_MF_U16, &u16, 2, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.i16", SLM_MF_I16, &i16, 2, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.u32", SLM_MF_U32, &u32, 4, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.i32", SLM_MF_I32, &i32, 4, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.f32", SLM_MF_F32, &f32, 4, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.bool", SLM_MF_BOOL, &b, 1, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.u64", SLM_MF_U64, &u64, 8, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.i64", SLM_MF_I64, &i64, 8, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.f64", SLM_MF_F64, &f64, 8, NULL), 0);
    const float fa[3] = {1, 2, 3};
    const char *sa[3] = {"x", "", "long string"};
    ck_assert_int_eq(slm_model_file_set_array(mf, "t.floats", SLM_MF_F32, fa, NULL, 3, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_array(mf, "t.strings", SLM_MF_STRING, sa, NULL, 3, NULL), 0);
    ck_assert_int_eq(slm_model_file_set_array(mf, "t.empty", SLM_MF_I32, NULL, NULL, 0, NULL), 0);
    static float w[3 * 5];
    static uint16_t h[33];
    for (int i = 0; i < 15; i++)
        w[i] = (float)i / 7;
    for (int i = 0; i < 33; i++)
        h[i] = (uint16_t)(i * 977);
    const int64_t ne_w[2] = {3, 5}, ne_h[1] = {33};
    ck_assert_int_eq(slm_model_file_add_tensor(mf, "w", SLM_TYPE_F32, 2, ne_w, w, sizeof w,
                                               SLM_MF_COPY, NULL), 0);
    ck_assert_int_eq(slm_model_file_add_tensor(mf, "h", SLM_TYPE_F16, 1, ne_h, h, sizeof h,
                                               SLM_MF_BORROW, NULL), 0);
    return mf;
}

START_TEST(write_twice_identical_and_reread)
{
    slm_model_file_t *mf = build();
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a.gguf", tmpdir);
    snprintf(b, sizeof b, "%s/b.gguf", tmpdir);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_model_file_save(mf, reg, a, NULL, &err) == SLM_OK, "%s", err.message);
    ck_assert_msg(slm_model_file_save(mf, reg, b, "format-gguf", &err) == SLM_OK, "%s", err.message);
    ck_assert(files_equal(a, b));
    slm_model_file_t *r = open_ok(a);
    ck_assert_uint_eq(slm_model_file_n_values(r), slm_model_file_n_values(mf));
    for (size_t i = 0; i < slm_model_file_n_values(mf); i++) {
        slm_model_value_t x = {.struct_size = sizeof x}, y = {.struct_size = sizeof y};
        slm_model_file_value(mf, i, &x);
        slm_model_file_value(r, i, &y);
        ck_assert_str_eq(x.key, y.key);
        ck_assert_int_eq(x.type, y.type);
        ck_assert_int_eq(x.elem_type, y.elem_type);
        ck_assert_uint_eq(x.n, y.n);
    }
    int64_t i;
    ck_assert_int_eq(slm_model_file_get_int(r, "t.i64", &i, NULL), SLM_OK);
    ck_assert(i == INT64_MIN);
    ck_assert_int_eq(slm_model_file_get_int(r, "t.u64", &i, NULL), SLM_E_INVALID);
    double f;
    ck_assert_int_eq(slm_model_file_get_float(r, "t.f64", &f, NULL), SLM_OK);
    ck_assert(f == 1.0 / 3);
    slm_model_value_t s = {.struct_size = sizeof s};
    ck_assert_int_eq(slm_model_file_get_array(r, "t.strings", SLM_MF_STRING, &s, NULL), SLM_OK);
    ck_assert_str_eq(((const char *const *)s.data)[2], "long string");
    ck_assert_uint_eq(s.lens[1], 0);
    for (size_t t = 0; t < 2; t++) {
        slm_model_tensor_t x = {.struct_size = sizeof x}, y = {.struct_size = sizeof y};
        slm_model_file_tensor(mf, t, &x);
        slm_model_file_tensor(r, t, &y);
        ck_assert_str_eq(x.name, y.name);
        ck_assert_uint_eq(x.nbytes, y.nbytes);
        ck_assert_int_eq(memcmp(x.data, y.data, x.nbytes), 0);
    }
    slm_model_file_free(r);
    slm_model_file_free(mf);
}
END_TEST

START_TEST(typed_access)
{
    slm_model_file_t *mf = build();
    slm_error_t err;
    slm_error_init(&err);
    int64_t i;
    ck_assert_int_eq(slm_model_file_get_int(mf, "general.architecture", &i, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "is string, not an integer"));
    ck_assert_int_eq(slm_model_file_get_int(mf, "missing", &i, &err), SLM_E_NOT_FOUND);
    ck_assert_int_eq(slm_model_file_get_int(mf, "t.u32", &i, NULL), SLM_OK);
    ck_assert_int_eq(i, 4000000000LL);
    ck_assert_int_eq(slm_model_file_get_array(mf, "t.floats", SLM_MF_I32, NULL, &err), SLM_E_INVALID);
    bool b;
    ck_assert_int_eq(slm_model_file_get_bool(mf, "t.bool", &b, NULL), SLM_OK);
    ck_assert(b);
    /* Replacing keeps the position; removing closes the gap. */
    int pos = slm_model_file_find_value(mf, "t.u8", NULL);
    ck_assert_int_eq(slm_model_file_set_string(mf, "t.u8", "now a string", NULL), SLM_OK);
    ck_assert_int_eq(slm_model_file_find_value(mf, "t.u8", NULL), pos);
    size_t n = slm_model_file_n_values(mf);
    ck_assert_int_eq(slm_model_file_remove_value(mf, "t.u8"), SLM_OK);
    ck_assert_uint_eq(slm_model_file_n_values(mf), n - 1);
    ck_assert_int_eq(slm_model_file_find_value(mf, "t.i8", NULL), pos);
    ck_assert_int_eq(slm_model_file_remove_value(mf, "t.u8"), SLM_E_NOT_FOUND);
    uint8_t two = 2;
    ck_assert_int_eq(slm_model_file_set_value(mf, "t.bad", SLM_MF_BOOL, &two, 1, NULL), SLM_E_INVALID);
    slm_model_file_free(mf);
}
END_TEST

START_TEST(tensor_checks)
{
    slm_model_file_t *mf = build();
    slm_error_t err;
    slm_error_init(&err);
    float x[4] = {0};
    const int64_t ne[1] = {4}, ne5[5] = {1, 1, 1, 1, 4};
    ck_assert_int_eq(slm_model_file_add_tensor(mf, "w", SLM_TYPE_F32, 1, ne, x, 16, 0, &err),
                     SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "duplicate tensor name 'w'"));
    ck_assert_int_eq(slm_model_file_add_tensor(mf, "x", SLM_TYPE_F32, 1, ne, x, 12, 0, &err),
                     SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "12 bytes given"));
    ck_assert_int_eq(slm_model_file_add_tensor(mf, "x", SLM_TYPE_F32, 5, ne5, x, 16, 0, &err),
                     SLM_E_INVALID);
    slm_model_tensor_t t = {.struct_size = sizeof t};
    ck_assert_int_eq(slm_model_file_find_tensor(mf, "h", &t), 1);
    ck_assert(t.borrowed);
    ck_assert_int_eq(slm_model_file_find_tensor(mf, "w", &t), 0);
    ck_assert(!t.borrowed);
    ck_assert_int_eq(slm_model_file_find_tensor(mf, "nope", &t), SLM_E_NOT_FOUND);
    /* Many tensors: the name index grows and still finds each one. */
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof name, "many.%d", i);
        ck_assert_int_eq(slm_model_file_add_tensor(mf, name, SLM_TYPE_F32, 1, ne, x, 16, 0, NULL), 0);
    }
    ck_assert_int_eq(slm_model_file_find_tensor(mf, "many.17", NULL), 2 + 17);
    slm_model_file_free(mf);
}
END_TEST

START_TEST(save_failures_leave_nothing)
{
    slm_model_file_t *mf = build();
    slm_error_t err;
    slm_error_init(&err);
    char p[512];
    snprintf(p, sizeof p, "%s/model.unknownext", tmpdir);
    ck_assert_int_eq(slm_model_file_save(mf, reg, p, NULL, &err), SLM_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "no available format plugin writes"));
    uint32_t bad = 48;
    ck_assert_int_eq(slm_model_file_set_value(mf, "general.alignment", SLM_MF_U32, &bad, 4, NULL), 0);
    snprintf(p, sizeof p, "%s/bad.gguf", tmpdir);
    ck_assert_int_eq(slm_model_file_save(mf, reg, p, NULL, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "not a power of two"));
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        entries += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(entries, 0);   /* no target, no temporary file */
    uint32_t good = 64;
    ck_assert_int_eq(slm_model_file_set_value(mf, "general.alignment", SLM_MF_U32, &good, 4, NULL), 0);
    ck_assert_int_eq(slm_model_file_save(mf, reg, p, NULL, &err), SLM_OK);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size % 64, 0);   /* data padded to the file's own alignment */
    slm_model_file_free(mf);
}
END_TEST

START_TEST(unknown_file_refused)
{
    char p[512];
    snprintf(p, sizeof p, "%s/notes.txt", tmpdir);
    FILE *f = fopen(p, "w");
    fputs("just text, no model here\n", f);
    fclose(f);
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = (slm_model_file_t *)&err;
    ck_assert_int_eq(slm_model_file_open(reg, p, NULL, &mf, &err), SLM_E_UNSUPPORTED);
    ck_assert_ptr_null(mf);
    ck_assert_ptr_nonnull(strstr(err.message, "no format plugin recognises this file"));
    snprintf(p, sizeof p, "%s/absent.gguf", tmpdir);
    ck_assert_int_eq(slm_model_file_open(reg, p, NULL, &mf, &err), SLM_E_NOT_FOUND);
    ck_assert_int_eq(slm_model_file_open(reg, p, "no-such-format", &mf, &err), SLM_E_NOT_FOUND);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(fixtures, sizeof fixtures, "%s", fx ? fx : "../shared/fixtures");
    Suite *s = suite_create("model-file");
    TCase *tc = tcase_create("container");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, write_twice_identical_and_reread);
    tcase_add_test(tc, typed_access);
    tcase_add_test(tc, tensor_checks);
    tcase_add_test(tc, save_failures_leave_nothing);
    tcase_add_test(tc, unknown_file_refused);
    suite_add_tcase(s, tc);
    char probe[1100];
    fixture(probe, sizeof probe, "gguf/stories260K.gguf");
    if (access(probe, R_OK) == 0) {
        TCase *tf = tcase_create("fixtures");
        tcase_add_checked_fixture(tf, setup, teardown);
        tcase_set_timeout(tf, 300);
        tcase_add_test(tf, stories260k);
        tcase_add_test(tf, tiny_random_and_f16);
        tcase_add_test(tf, fixtures_round_trip);
        suite_add_tcase(s, tf);
    } else {
        printf("SKIP fixture tests: %s not found (set SLMOPS_FIXTURES)\n", probe);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

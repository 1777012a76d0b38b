/* The quantizer plugins through the public conversion API: registry listing,
 * type traits, layouts, round-trip error bounds, reference dot products, errors. */
#include "config.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <slmops/plugin-quantizer.h>
#include <slmops/quantize.h>
#include <slmops/registry.h>
#include <slmops/types.h>

/* rms_bound: the round-trip RMS error on N(0,1) data this test holds each type
 * to (docs/quantization.md records the same numbers and the measured values). */
typedef struct {
    const char *name;
    int id;
    unsigned block, bytes;
    double rms_bound;
} qtype_t;

static const qtype_t qtypes[] = {
    {"q8_0", 8, 32, 34, 0.0060},
    {"q4_0", 2, 32, 18, 0.095},
    {"q4_1", 3, 32, 20, 0.086},
    {"q5_0", 6, 32, 22, 0.047},
    {"q5_1", 7, 32, 24, 0.042},
    {"q4_k", 12, 256, 144, 0.079},
    {"q5_k", 13, 256, 176, 0.040},
    {"q6_k", 14, 256, 210, 0.0196},
    {"nf4", 1024, 64, 34, 0.101},
};
#define N_TYPES ((int)(sizeof qtypes / sizeof qtypes[0]))

#define ROWS 64
#define COLS 4096

static slm_registry_t *reg;

static void setup(void)
{
    slm_error_t err;
    slm_error_init(&err);
    reg = slm_registry_new(NULL, &err);
    ck_assert_msg(reg != NULL, "registry: %s", err.message);
}

static void teardown(void)
{
    slm_registry_free(reg);
    reg = NULL;
}

/* Seeded N(0,1): splitmix64 + Box-Muller, the same numbers on every machine. */
static uint64_t rng_state;
static double rng_uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static float *gaussian(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    rng_state = seed;
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(rng_uniform())), t = 2.0 * M_PI * rng_uniform();
        x[i] = (float)(r * cos(t));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(t));
    }
    return x;
}

static void *quantize_or_fail(const qtype_t *t, const float *x, int64_t rows, int64_t cols,
                              const float *imatrix)
{
    size_t bytes = (size_t)rows * slm_type_row_size(t->id, cols);
    void *q = malloc(bytes);
    ck_assert_ptr_nonnull(q);
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_quantize_rows(reg, t->id, x, q, rows, cols, imatrix, &err);
    ck_assert_msg(rc == SLM_OK, "%s: %s", t->name, err.message);
    return q;
}

static float *dequantize_or_fail(const qtype_t *t, const void *q, int64_t rows, int64_t cols)
{
    float *y = malloc((size_t)rows * cols * sizeof *y);
    ck_assert_ptr_nonnull(y);
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_dequantize_rows(reg, t->id, q, y, rows, cols, &err);
    ck_assert_msg(rc == SLM_OK, "%s: %s", t->name, err.message);
    return y;
}

static double rms_diff(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

START_TEST(registry_lists_all_quantizers)
{
    size_t n_quant = 0;
    for (size_t i = 0; i < slm_registry_count(reg); i++)
        n_quant += strcmp(slm_registry_get(reg, i)->kind, "quantizer") == 0;
    ck_assert_uint_eq(n_quant, N_TYPES);
    for (int i = 0; i < N_TYPES; i++) {
        char name[64];
        snprintf(name, sizeof name, "quantizer-%s", qtypes[i].name);
        const slm_plugin_info_t *p = slm_registry_find(reg, "quantizer", name);
        ck_assert_msg(p != NULL, "%s not listed", name);
        ck_assert_msg(p->state == SLM_PLUGIN_AVAILABLE || p->state == SLM_PLUGIN_LOADED,
                      "%s is %s: %s", name, slm_plugin_state_name(p->state), p->reason);
    }
}
END_TEST

static void host_log(slm_log_level_t level, const char *category, const char *fmt, ...)
{
    (void)level, (void)category, (void)fmt;
}

/* Manifest traits (registered without loading anything) = the library's own iface. */
START_TEST(traits_match_manifest_and_iface)
{
    const qtype_t *t = &qtypes[_i];
    const slm_type_traits_t *tr = slm_type_get_traits(t->id);
    ck_assert_msg(tr != NULL, "%s not registered", t->name);
    ck_assert_str_eq(tr->name, t->name);
    ck_assert_uint_eq(tr->block, t->block);
    ck_assert_uint_eq(tr->size, t->bytes);
    ck_assert(tr->is_quantized);
    ck_assert_int_eq(slm_type_from_name(t->name), t->id);
    ck_assert_uint_eq(slm_type_row_size(t->id, 4096), 4096 / t->block * t->bytes);
    ck_assert_uint_eq(slm_type_row_size(t->id, t->block + 1), 0);

    char name[64];
    snprintf(name, sizeof name, "quantizer-%s", t->name);
    const slm_plugin_info_t *p = slm_registry_find(reg, "quantizer", name);
    ck_assert_ptr_nonnull(p);
    void *dl = dlopen(p->library_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(dl != NULL, "%s", dlerror());
    slm_plugin_entry_fn entry = (slm_plugin_entry_fn)(uintptr_t)dlsym(dl, SLM_PLUGIN_ENTRY_SYMBOL);
    ck_assert_ptr_nonnull((void *)(uintptr_t)entry);
    slm_host_t host = {.struct_size = sizeof host, .abi_version = 1, .log = host_log};
    const slm_plugin_descriptor_t *d = entry(&host, SLM_PLUGIN_ABI_VERSION);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->kind, SLM_PLUGIN_KIND_QUANTIZER);
    ck_assert_str_eq(d->name, name);
    const slm_quantizer_iface_t *q = d->iface;
    ck_assert_int_eq(q->type, t->id);
    ck_assert_str_eq(q->type_name, t->name);
    ck_assert_uint_eq(q->block, t->block);
    ck_assert_uint_eq(q->block_bytes, t->bytes);
    dlclose(dl);
}
END_TEST

START_TEST(roundtrip_error_bound)
{
    const qtype_t *t = &qtypes[_i];
    size_t n = (size_t)ROWS * COLS;
    float *x = gaussian(n, 1234);
    void *q = quantize_or_fail(t, x, ROWS, COLS, NULL);
    float *y = dequantize_or_fail(t, q, ROWS, COLS);
    double rms = rms_diff(x, y, n);
    ck_assert_msg(rms < t->rms_bound, "%s: RMS %.5f not under %.5f", t->name, rms, t->rms_bound);
    /* Deterministic: the same input gives the same bytes. */
    void *q2 = quantize_or_fail(t, x, ROWS, COLS, NULL);
    ck_assert_mem_eq(q, q2, (size_t)ROWS * slm_type_row_size(t->id, COLS));
    free(q2);
    free(y);
    free(q);
    free(x);
}
END_TEST

/* An importance matrix steers the search but must not break the error bound. */
START_TEST(roundtrip_with_imatrix)
{
    const qtype_t *t = &qtypes[_i];
    size_t n = (size_t)8 * COLS;
    float *x = gaussian(n, 99);
    float *imatrix = gaussian(COLS, 7);
    for (int i = 0; i < COLS; i++)
        imatrix[i] = 0.5f + fabsf(imatrix[i]);
    void *q = quantize_or_fail(t, x, 8, COLS, imatrix);
    float *y = dequantize_or_fail(t, q, 8, COLS);
    double rms = rms_diff(x, y, n);
    ck_assert_msg(rms < t->rms_bound, "%s: RMS %.5f with imatrix", t->name, rms);
    free(y);
    free(q);
    free(imatrix);
    free(x);
}
END_TEST

START_TEST(reference_dot_matches_dequantized)
{
    const qtype_t *t = &qtypes[_i];
    const int rows = 8;
    float *x = gaussian((size_t)rows * COLS, 555);
    float *v = gaussian(COLS, 556);
    void *q = quantize_or_fail(t, x, rows, COLS, NULL);
    float *y = dequantize_or_fail(t, q, rows, COLS);
    size_t row_bytes = slm_type_row_size(t->id, COLS);
    for (int r = 0; r < rows; r++) {
        double want = 0, mag = 0;
        for (int i = 0; i < COLS; i++) {
            want += (double)y[(size_t)r * COLS + i] * v[i];
            mag += fabs((double)y[(size_t)r * COLS + i] * v[i]);
        }
        float got;
        slm_error_t err;
        slm_error_init(&err);
        ck_assert_int_eq(slm_quantized_dot(reg, t->id, (char *)q + r * row_bytes, v, COLS, &got,
                                           &err), SLM_OK);
        ck_assert_msg(fabs(got - want) <= 1e-4 * fabs(want) + 1e-7 * mag,
                      "%s row %d: dot %.7g, dequantized %.7g", t->name, r, got, want);
    }
    free(y);
    free(q);
    free(v);
    free(x);
}
END_TEST

/* All-zero input must come back as exact zeros: a zero scale must not become a
 * NaN or a division by zero. (The bytes are not all zero: ggml stores q4_0's
 * scale as -0.0 and the zero level as nibble 8, and nf4's zero is index 7.) */
START_TEST(zeros_stay_zero)
{
    const qtype_t *t = &qtypes[_i];
    float x[512] = {0};
    void *q = quantize_or_fail(t, x, 1, 512, NULL);
    float *y = dequantize_or_fail(t, q, 1, 512);
    for (int i = 0; i < 512; i++)
        ck_assert_msg(y[i] == 0.0f, "%s: element %d is %g", t->name, i, y[i]);
    free(y);
    free(q);
}
END_TEST

/* Exact layouts: the scale first, low nibbles hold the first half of the block. */
START_TEST(layout_q4_0)
{
    float x[32];
    for (int j = 0; j < 16; j++) {
        x[j] = (float)(j - 8);        /* -8 first: the scale is -8 / -8 = 1 */
        x[j + 16] = (float)(7 - j);
    }
    unsigned char b[18];
    ck_assert_int_eq(slm_quantize_rows(reg, SLM_TYPE_Q4_0, x, b, 1, 32, NULL, NULL), SLM_OK);
    ck_assert_uint_eq(b[0] | (b[1] << 8), 0x3c00);   /* f16 1.0 */
    for (int j = 0; j < 16; j++)
        ck_assert_uint_eq(b[2 + j], (unsigned)(j | ((15 - j) << 4)));
}
END_TEST

START_TEST(layout_q8_0)
{
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    unsigned char b[34];
    ck_assert_int_eq(slm_quantize_rows(reg, SLM_TYPE_Q8_0, x, b, 1, 32, NULL, NULL), SLM_OK);
    ck_assert_uint_eq(b[0] | (b[1] << 8), slm_f32_to_f16(16.0f / 127));
    ck_assert_int_eq((signed char)b[2], -127);
    ck_assert_int_eq((signed char)b[2 + 16], 0);
    ck_assert_int_eq((signed char)b[2 + 31], 119);   /* round(15 * 127 / 16) */
}
END_TEST

START_TEST(layout_nf4)
{
    /* Levels times 2 are exact: absmax 2, index j % 16 in both halves. */
    static const float levels[16] = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
    float x[64], y[64];
    for (int j = 0; j < 64; j++)
        x[j] = 2.0f * levels[j % 16];
    unsigned char b[34];
    ck_assert_int_eq(slm_quantize_rows(reg, 1024, x, b, 1, 64, NULL, NULL), SLM_OK);
    ck_assert_uint_eq(b[0] | (b[1] << 8), 0x4000);   /* f16 2.0 */
    for (int j = 0; j < 32; j++)
        ck_assert_uint_eq(b[2 + j], (unsigned)((j % 16) | ((j % 16) << 4)));
    ck_assert_int_eq(slm_dequantize_rows(reg, 1024, b, y, 1, 64, NULL), SLM_OK);
    ck_assert_mem_eq(x, y, sizeof x);
}
END_TEST

START_TEST(layout_q6_k_scale_last)
{
    /* q6_k keeps its f16 d in the last two bytes: a block of 1.0s must decode to
     * 1.0s within the 6-bit step, and d must be the only non-zero trailing field. */
    float x[256], y[256];
    for (int j = 0; j < 256; j++)
        x[j] = 1.0f;
    unsigned char b[210];
    ck_assert_int_eq(slm_quantize_rows(reg, SLM_TYPE_Q6_K, x, b, 1, 256, NULL, NULL), SLM_OK);
    ck_assert_uint_ne(b[208] | (b[209] << 8), 0);
    ck_assert_int_eq(slm_dequantize_rows(reg, SLM_TYPE_Q6_K, b, y, 1, 256, NULL), SLM_OK);
    for (int j = 0; j < 256; j++)
        ck_assert_float_eq_tol(y[j], 1.0f, 1.0f / 32);
}
END_TEST

START_TEST(core_types_need_no_plugin)
{
    float x[4] = {1.0f, -2.5f, 0.333333f, 65504.0f}, y[4];
    uint16_t h[4];
    ck_assert_int_eq(slm_quantize_rows(NULL, SLM_TYPE_F16, x, h, 2, 2, NULL, NULL), SLM_OK);
    ck_assert_uint_eq(h[0], 0x3c00);
    ck_assert_int_eq(slm_dequantize_rows(NULL, SLM_TYPE_F16, h, y, 2, 2, NULL), SLM_OK);
    ck_assert_float_eq(y[1], -2.5f);
    ck_assert_float_eq_tol(y[2], 0.333333f, 1e-3);
    ck_assert_int_eq(slm_quantize_rows(NULL, SLM_TYPE_BF16, x, h, 1, 4, NULL, NULL), SLM_OK);
    ck_assert_uint_eq(h[0], 0x3f80);
    float d;
    ck_assert_int_eq(slm_quantized_dot(NULL, SLM_TYPE_F32, x, x, 3, &d, NULL), SLM_OK);
    ck_assert_float_eq_tol(d, 1.0f + 6.25f + 0.333333f * 0.333333f, 1e-5);
}
END_TEST

START_TEST(bad_requests_fail_cleanly)
{
    float x[64] = {0};
    unsigned char b[64];
    slm_error_t err;
    slm_error_init(&err);
    /* 172 is stories260K's ffn width: not a multiple of any block here. */
    ck_assert_int_eq(slm_quantize_rows(reg, SLM_TYPE_Q8_0, x, b, 1, 172, NULL, &err),
                     SLM_E_INVALID);
    ck_assert(strstr(err.message, "multiple of 32") != NULL);
    ck_assert_int_eq(slm_quantize_rows(reg, 999, x, b, 1, 32, NULL, &err), SLM_E_UNSUPPORTED);
    ck_assert_int_eq(slm_quantize_rows(reg, SLM_TYPE_Q8_0, x, b, -1, 32, NULL, &err),
                     SLM_E_INVALID);
    ck_assert_int_eq(slm_quantize_rows(NULL, SLM_TYPE_Q8_0, x, b, 1, 32, NULL, &err),
                     SLM_E_INVALID);
    ck_assert_int_eq(slm_dequantize_rows(reg, SLM_TYPE_Q4_K, b, x, 1, 64, &err), SLM_E_INVALID);
    float d;
    ck_assert_int_eq(slm_quantized_dot(reg, SLM_TYPE_Q4_0, b, x, 33, &d, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_quantize_rows(reg, SLM_TYPE_Q8_0, NULL, b, 1, 32, NULL, &err),
                     SLM_E_INVALID);
}
END_TEST

/* A registry that finds no quantizer cannot convert quantized types, and says so. */
START_TEST(no_plugin_is_unsupported)
{
    slm_registry_options_t o = {.struct_size = sizeof o, .search_path = "/nonexistent-slmops",
                                .ignore_environment = true};
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *empty = slm_registry_new(&o, &err);
    ck_assert_ptr_nonnull(empty);
    float x[32] = {0};
    unsigned char b[34];
    ck_assert_int_eq(slm_quantize_rows(empty, SLM_TYPE_Q8_0, x, b, 1, 32, NULL, &err),
                     SLM_E_UNSUPPORTED);
    ck_assert(strstr(err.message, "q8_0") != NULL);
    slm_registry_free(empty);
}
END_TEST

/* Issue 7, item 14: every message names types through slm_type_name, which never
 * answers a bare number, and names are matched ignoring case (item 18). */
START_TEST(type_names_for_messages)
{
    ck_assert_str_eq(slm_type_name(SLM_TYPE_Q8_0), "q8_0");
    ck_assert_str_eq(slm_type_name(1234), "type 1234 (unknown)");
    ck_assert_str_eq(slm_type_name(-3), "type -3 (unknown)");
    const char *a = slm_type_name(1500), *b = slm_type_name(1501);
    ck_assert_str_eq(a, "type 1500 (unknown)");   /* one message may name several */
    ck_assert_str_eq(b, "type 1501 (unknown)");
    ck_assert_int_eq(slm_type_from_name("Q8_0"), SLM_TYPE_Q8_0);
    ck_assert_int_eq(slm_type_from_name("BF16"), SLM_TYPE_BF16);
    float x[32] = {0};
    unsigned char q[64];
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_quantize_rows(reg, 1234, x, q, 1, 32, NULL, &err), SLM_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.message, "type 1234 (unknown)"), "%s", err.message);
}
END_TEST

static Suite *quantize_suite(void)
{
    Suite *s = suite_create("quantize");
    TCase *tc = tcase_create("quantizers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, registry_lists_all_quantizers);
    tcase_add_loop_test(tc, traits_match_manifest_and_iface, 0, N_TYPES);
    tcase_add_loop_test(tc, roundtrip_error_bound, 0, N_TYPES);
    tcase_add_loop_test(tc, roundtrip_with_imatrix, 0, N_TYPES);
    tcase_add_loop_test(tc, reference_dot_matches_dequantized, 0, N_TYPES);
    tcase_add_loop_test(tc, zeros_stay_zero, 0, N_TYPES);
    tcase_add_test(tc, layout_q4_0);
    tcase_add_test(tc, layout_q8_0);
    tcase_add_test(tc, layout_nf4);
    tcase_add_test(tc, layout_q6_k_scale_last);
    tcase_add_test(tc, core_types_need_no_plugin);
    tcase_add_test(tc, bad_requests_fail_cleanly);
    tcase_add_test(tc, no_plugin_is_unsupported);
    tcase_add_test(tc, type_names_for_messages);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(quantize_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

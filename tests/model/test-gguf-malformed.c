/* Broken GGUF files built byte by byte: each must be refused with a message that
 * names the problem, never a crash or a read outside the file. Built twice: through
 * the registry (dlopen), and with GGUF_DIRECT the plugin compiled in, under ASan. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <slmops/plugin-format.h>
#ifndef GGUF_DIRECT
#include <slmops/model-file.h>
#endif

#include "../common/bytebuf.h"

/* ---- a GGUF byte builder ---- */

static void b_str(buf_t *b, const char *s)
{
    b_le(b, strlen(s), 8);
    b_bytes(b, s, strlen(s));
}

static void b_header(buf_t *b, const char *magic, uint32_t version, uint64_t nt, uint64_t nkv)
{
    b_bytes(b, magic, 4);
    b_le(b, version, 4);
    b_le(b, nt, 8);
    b_le(b, nkv, 8);
}

static void kv_u32(buf_t *b, const char *key, uint32_t v)
{
    b_str(b, key);
    b_le(b, SLM_VALUE_U32, 4);
    b_le(b, v, 4);
}

static void kv_str(buf_t *b, const char *key, const char *v)
{
    b_str(b, key);
    b_le(b, SLM_VALUE_STRING, 4);
    b_str(b, v);
}

static void b_tensor(buf_t *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                     uint32_t type, uint64_t offset)
{
    b_str(b, name);
    b_le(b, n_dims, 4);
    for (uint32_t d = 0; d < n_dims; d++)
        b_le(b, ne[d], 8);
    b_le(b, type, 4);
    b_le(b, offset, 8);
}

static void b_pad(buf_t *b, size_t align)
{
    while (b->n % align)
        b_le(b, 0, 1);
}

static void b_fill(buf_t *b, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        b_le(b, (uint8_t)(seed + i * 7), 1);
}

/* Every value type, arrays, and two tensors whose data ends exactly at the end of
 * the file, so that cutting any byte breaks it. */
static void valid_file(buf_t *b)
{
    b_header(b, "GGUF", 3, 2, 15);
    kv_str(b, "general.architecture", "llama");
    const uint32_t types[] = {SLM_VALUE_U8, SLM_VALUE_I8, SLM_VALUE_U16, SLM_VALUE_I16,
                              SLM_VALUE_U32, SLM_VALUE_I32, SLM_VALUE_F32, SLM_VALUE_BOOL,
                              SLM_VALUE_U64, SLM_VALUE_I64, SLM_VALUE_F64};
    const unsigned sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    for (size_t i = 0; i < 11; i++) {
        char key[32];
        snprintf(key, sizeof key, "test.scalar%zu", i);
        b_str(b, key);
        b_le(b, types[i], 4);
        b_le(b, 1, sizes[i]);
    }
    b_str(b, "test.ints");
    b_le(b, SLM_VALUE_ARRAY, 4);
    b_le(b, SLM_VALUE_I32, 4);
    b_le(b, 3, 8);
    b_le(b, 7, 4), b_le(b, 8, 4), b_le(b, 9, 4);
    b_str(b, "test.strings");
    b_le(b, SLM_VALUE_ARRAY, 4);
    b_le(b, SLM_VALUE_STRING, 4);
    b_le(b, 2, 8);
    b_str(b, "a"), b_str(b, "bc");
    kv_u32(b, "general.alignment", 32);
    const uint64_t ne_a[2] = {4, 2}, ne_b[1] = {32};
    b_tensor(b, "a", 2, ne_a, 0, 0);          /* f32: 32 bytes */
    b_tensor(b, "b", 1, ne_b, 8, 32);         /* q8_0: one 34-byte block */
    b_pad(b, 32);
    b_fill(b, 32, 1);
    b_fill(b, 34, 2);
}

/* ---- reading, through the registry or the compiled-in plugin ---- */

static char tmpdir[256];
static volatile unsigned touch_sum;

static void touch(const void *p, uint64_t n)
{
    const volatile uint8_t *b = p;
    for (uint64_t i = 0; i < n; i++)
        touch_sum += b[i];
}

static void err_init(slm_error_t *e)
{
    memset(e, 0, sizeof *e);
    e->struct_size = sizeof *e;
    e->offset = -1;
}

#ifdef GGUF_DIRECT
SLM_PLUGIN_EXPORT const slm_plugin_descriptor_t *slm_plugin_entry(const slm_host_t *host,
                                                                  uint32_t host_abi_version);

static const slm_format_iface_t *iface(void)
{
    static const slm_host_t host = {.struct_size = sizeof host, .abi_version = 1};
    const slm_plugin_descriptor_t *d = slm_plugin_entry(&host, SLM_PLUGIN_ABI_VERSION);
    ck_assert_ptr_nonnull(d);
    return d->iface;
}

typedef struct seen {
    uint64_t n_values, n_tensors;
    void *mapping;
    void (*release)(void *);
} seen_t;

static int t_value(void *ctx, const char *key, int32_t type, const void *v, uint64_t len)
{
    ((seen_t *)ctx)->n_values++;
    touch(key, strlen(key));
    touch(v, len);
    return 0;
}

static int t_array(void *ctx, const char *key, int32_t et, const void *v, const uint64_t *lens,
                   uint64_t n)
{
    static const unsigned sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    ((seen_t *)ctx)->n_values++;
    touch(key, strlen(key));
    if (et == SLM_VALUE_STRING)
        for (uint64_t i = 0; i < n; i++)
            touch(((const char *const *)v)[i], lens[i]);
    else
        touch(v, n * sizes[et]);
    return 0;
}

static int t_tensor(void *ctx, const char *name, int32_t type, int32_t n_dims, const int64_t *ne,
                    const void *data, uint64_t nbytes)
{
    ((seen_t *)ctx)->n_tensors++;
    touch(name, strlen(name));
    touch(ne, (uint64_t)n_dims * sizeof *ne);
    touch(data, nbytes);
    return 0;
}

static int t_mapping(void *ctx, void *m, void (*release)(void *))
{
    ((seen_t *)ctx)->mapping = m;
    ((seen_t *)ctx)->release = release;
    return 0;
}

static int read_file(const char *path, slm_error_t *err)
{
    seen_t s = {0};
    slm_format_sink_t sink = {.struct_size = sizeof sink, .ctx = &s, .set_value = t_value,
                              .set_array = t_array, .add_tensor = t_tensor,
                              .set_mapping = t_mapping};
    int rc = iface()->read(path, &sink, err);
    if (s.release)
        s.release(s.mapping);
    return rc;
}
#else
static slm_registry_t *reg;

static void setup_registry(void)
{
    reg = slm_registry_new(NULL, NULL);
    ck_assert_ptr_nonnull(reg);
}

static void teardown_registry(void)
{
    slm_registry_free(reg);
}

static int read_file(const char *path, slm_error_t *err)
{
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, NULL, &mf, err);
    for (size_t i = 0; i < slm_model_file_n_tensors(mf); i++) {
        slm_model_tensor_t t = {.struct_size = sizeof t};
        slm_model_file_tensor(mf, i, &t);
        touch(t.data, t.nbytes);
    }
    slm_model_file_free(mf);
    return rc;
}
#endif

static void write_buf(const char *path, const buf_t *b)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b->p, 1, b->n, f), b->n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The file must be refused as malformed, naming itself and the problem. */
static void expect_bad(buf_t *b, const char *case_name, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, case_name);
    write_buf(path, b);
    slm_error_t err;
    err_init(&err);
    int rc = read_file(path, &err);
    ck_assert_msg(rc == SLM_E_FORMAT, "%s: expected SLM_E_FORMAT, got %d (%s)", case_name, rc,
                  err.message);
    ck_assert_msg(strstr(err.message, needle), "%s: message '%s' lacks '%s'", case_name,
                  err.message, needle);
    ck_assert_msg(strstr(err.message, path), "%s: message '%s' does not name the file",
                  case_name, err.message);
    ck_assert_str_eq(err.path, path);
    unlink(path);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void setup_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/gguf-malformed-XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
#ifndef GGUF_DIRECT
    setup_registry();
#endif
}

static void teardown_tmp(void)
{
#ifndef GGUF_DIRECT
    teardown_registry();
#endif
    rmdir(tmpdir);
}

/* ---- cases ---- */

START_TEST(valid_reference_reads)
{
    buf_t b = {0};
    valid_file(&b);
    char path[512];
    snprintf(path, sizeof path, "%s/valid.gguf", tmpdir);
    write_buf(path, &b);
    slm_error_t err;
    err_init(&err);
    ck_assert_msg(read_file(path, &err) == SLM_OK, "%s", err.message);
    unlink(path);
    free(b.p);
}
END_TEST

START_TEST(truncated_everywhere)
{
    buf_t full = {0};
    valid_file(&full);
    char path[512];
    snprintf(path, sizeof path, "%s/truncated.gguf", tmpdir);
    for (size_t len = 0; len < full.n; len++) {
        buf_t cut = {.p = full.p, .n = len};
        write_buf(path, &cut);
        slm_error_t err;
        err_init(&err);
        int rc = read_file(path, &err);
        ck_assert_msg(rc == SLM_E_FORMAT, "cut at %zu of %zu: rc %d (%s)", len, full.n, rc,
                      err.message);
        ck_assert_msg(strstr(err.message, path), "cut at %zu: '%s'", len, err.message);
    }
    unlink(path);
    free(full.p);
}
END_TEST

START_TEST(bad_magic)
{
    buf_t b = {0};
    valid_file(&b);
    memcpy(b.p, "GGUX", 4);
    expect_bad(&b, "bad-magic", "bad magic");
}
END_TEST

START_TEST(bad_versions)
{
    buf_t b = {0};
    b_header(&b, "GGUF", 1, 0, 0);
    b_fill(&b, 64, 0);
    expect_bad(&b, "version-1", "version 1 is not supported");
    b_header(&b, "GGUF", 99, 0, 0);
    expect_bad(&b, "version-99", "unsupported GGUF version 99");
    b_header(&b, "GGUF", 0x03000000u, 0, 0);
    expect_bad(&b, "big-endian", "big-endian");
}
END_TEST

START_TEST(huge_counts)
{
    buf_t b = {0};
    b_header(&b, "GGUF", 3, UINT64_C(1) << 62, 0);
    b_fill(&b, 100, 0);
    expect_bad(&b, "huge-tensor-count", "tensor count");
    b_header(&b, "GGUF", 3, 0, UINT64_MAX);
    b_fill(&b, 100, 0);
    expect_bad(&b, "huge-kv-count", "key-value count");
}
END_TEST

START_TEST(huge_strings)
{
    buf_t b = {0};
    b_header(&b, "GGUF", 3, 0, 1);
    b_le(&b, UINT64_C(1) << 63, 8);   /* key length */
    b_fill(&b, 16, 0);
    expect_bad(&b, "huge-key-length", "string length");
    b_header(&b, "GGUF", 3, 0, 1);
    b_str(&b, "k");
    b_le(&b, SLM_VALUE_STRING, 4);
    b_le(&b, UINT64_MAX - 3, 8);
    b_fill(&b, 16, 0);
    expect_bad(&b, "huge-value-length", "string length");
    b_header(&b, "GGUF", 3, 0, 1);
    b_str(&b, "k");
    b_le(&b, SLM_VALUE_ARRAY, 4);
    b_le(&b, SLM_VALUE_U64, 4);
    b_le(&b, UINT64_C(1) << 61, 8);
    b_fill(&b, 16, 0);
    expect_bad(&b, "huge-array-count", "array count");
}
END_TEST

/* A file with one tensor 't' of `type` at `offset`, then `data` bytes of data. */
static void one_tensor(buf_t *b, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data)
{
    b_header(b, "GGUF", 3, 1, 0);
    b_tensor(b, "t", n_dims, ne, type, offset);
    b_pad(b, 32);
    b_fill(b, data, 3);
}

/* Files of one tensor that its info alone makes unreadable. */
static const struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;
    size_t data;
    const char *needle;
} bad_infos[] = {
    {"short-data", 2, {8, 2}, 0, 0, 63, "past end of file"},   /* needs 64 */
    {"offset-overflow", 2, {8, 2}, 0, UINT64_MAX - 31, 64, "past end of file"},
    {"offset-past-end", 2, {8, 2}, 0, 4096, 64, "past end of file"},
    {"misaligned", 1, {4}, 0, 4, 64, "misaligned"},
    {"n-dims-0", 0, {2, 2, 2, 2, 2}, 0, 0, 64, "n_dims 0"},
    {"n-dims-5", 5, {2, 2, 2, 2, 2}, 0, 0, 256, "n_dims 5"},
    {"dims-overflow", 3, {UINT64_C(1) << 31, UINT64_C(1) << 31, UINT64_C(1) << 31}, 0, 0, 64,
     "overflows"},
    {"dims-negative", 2, {4, (uint64_t)-4}, 0, 0, 64, "negative"},
    {"unknown-type", 1, {32}, 77, 0, 256, "type 77 (unknown) is not a tensor type"},
    {"retired-type", 1, {32}, 4, 0, 256, "type 4 (unknown) is not a tensor type"},   /* Q4_2 */
    {"partial-block", 1, {31}, 8, 0, 256, "whole number of q8_0 blocks"},
};

START_TEST(bad_tensor_info)
{
    buf_t b = {0};
    one_tensor(&b, bad_infos[_i].n_dims, bad_infos[_i].ne, bad_infos[_i].type,
               bad_infos[_i].offset, bad_infos[_i].data);
    expect_bad(&b, bad_infos[_i].name, bad_infos[_i].needle);
}
END_TEST

START_TEST(overlapping_tensors)
{
    buf_t b = {0};
    const uint64_t ne[1] = {16};
    b_header(&b, "GGUF", 3, 2, 0);
    b_tensor(&b, "x", 1, ne, 0, 0);
    b_tensor(&b, "y", 1, ne, 0, 32);   /* x covers 0..63 */
    b_pad(&b, 32);
    b_fill(&b, 96, 0);
    expect_bad(&b, "overlap", "overlaps");
}
END_TEST

START_TEST(duplicates)
{
    buf_t b = {0};
    const uint64_t ne[1] = {8};
    b_header(&b, "GGUF", 3, 2, 0);
    b_tensor(&b, "w", 1, ne, 0, 0);
    b_tensor(&b, "w", 1, ne, 0, 32);
    b_pad(&b, 32);
    b_fill(&b, 64, 0);
    expect_bad(&b, "duplicate-tensor", "duplicate tensor name 'w'");
    b_header(&b, "GGUF", 3, 0, 3);
    kv_u32(&b, "k.one", 1);
    kv_str(&b, "k.two", "x");
    kv_u32(&b, "k.one", 2);
    expect_bad(&b, "duplicate-key", "duplicate key 'k.one'");
}
END_TEST

START_TEST(bad_alignment)
{
    buf_t b = {0};
    b_header(&b, "GGUF", 3, 0, 1);
    kv_u32(&b, "general.alignment", 0);
    expect_bad(&b, "alignment-0", "not a power of two");
    b_header(&b, "GGUF", 3, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    expect_bad(&b, "alignment-48", "not a power of two");
    b_header(&b, "GGUF", 3, 0, 1);
    b_str(&b, "general.alignment");
    b_le(&b, SLM_VALUE_U64, 4);
    b_le(&b, 32, 8);
    expect_bad(&b, "alignment-u64", "expected u32");
}
END_TEST

START_TEST(bad_values)
{
    buf_t b = {0};
    b_header(&b, "GGUF", 3, 0, 1);
    b_str(&b, "k");
    b_le(&b, 13, 4);
    b_fill(&b, 16, 0);
    expect_bad(&b, "unknown-value-type", "unknown value type 13");
    b_header(&b, "GGUF", 3, 0, 1);
    b_str(&b, "k");
    b_le(&b, SLM_VALUE_ARRAY, 4);
    b_le(&b, SLM_VALUE_ARRAY, 4);
    b_le(&b, 1, 8);
    b_fill(&b, 32, 0);
    expect_bad(&b, "array-of-arrays", "arrays of arrays are not supported");
    b_header(&b, "GGUF", 3, 0, 1);
    b_str(&b, "k");
    b_le(&b, SLM_VALUE_BOOL, 4);
    b_le(&b, 2, 1);
    expect_bad(&b, "bool-2", "neither 0 nor 1");
    b_header(&b, "GGUF", 3, 0, 1);
    b_le(&b, 3, 8);
    b_bytes(&b, "a\0b", 3);
    b_le(&b, SLM_VALUE_U8, 4);
    b_le(&b, 1, 1);
    expect_bad(&b, "nul-in-key", "NUL byte");
}
END_TEST

/* Every real GGUF file in the fixtures reads cleanly (under ASan: without a report). */
START_TEST(fixtures_read)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    const char *dirs[] = {"gguf", "gguf/derived", "llama.cpp-vocab"};
    int n = 0;
    for (size_t d = 0; fx && d < 3; d++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", fx, dirs[d]);
        DIR *dh = opendir(dir);
        ck_assert_msg(dh != NULL, "fixtures folder %s is missing", dir);
        struct dirent *e;
        while ((e = readdir(dh))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0)
                continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            slm_error_t err;
            err_init(&err);
            ck_assert_msg(read_file(path, &err) == SLM_OK, "%s: %s", path, err.message);
            n++;
        }
        closedir(dh);
    }
    ck_assert_int_ge(n, 15);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gguf-malformed");
    TCase *tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
    tcase_add_test(tc, valid_reference_reads);
    tcase_add_test(tc, truncated_everywhere);
    tcase_add_test(tc, bad_magic);
    tcase_add_test(tc, bad_versions);
    tcase_add_test(tc, huge_counts);
    tcase_add_test(tc, huge_strings);
    tcase_add_loop_test(tc, bad_tensor_info, 0, sizeof bad_infos / sizeof bad_infos[0]);
    tcase_add_test(tc, overlapping_tensors);
    tcase_add_test(tc, duplicates);
    tcase_add_test(tc, bad_alignment);
    tcase_add_test(tc, bad_values);
    suite_add_tcase(s, tc);
    const char *fx = getenv("SLMOPS_FIXTURES");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/gguf/stories260K.gguf", fx ? fx : "");
    if (fx && access(probe, R_OK) == 0) {
        TCase *tf = tcase_create("fixtures");
        tcase_add_checked_fixture(tf, setup_tmp, teardown_tmp);
        tcase_set_timeout(tf, 300);
        tcase_add_test(tf, fixtures_read);
        suite_add_tcase(s, tf);
    } else {
        printf("SKIP fixtures: %s not found (set SLMOPS_FIXTURES)\n", probe);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

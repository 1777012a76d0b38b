/* Broken safetensors files and Hugging Face folders, generated here: each must be
 * refused with a message naming the problem. Built twice: through the registry
 * (dlopen), and with ST_DIRECT the plugin compiled in, under ASan and UBSan. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include <slmops/plugin-format.h>
#ifndef ST_DIRECT
#include <slmops/model-file.h>
#endif

static char tmpdir[256];

/* The direct build has no libslmops to call slm_error_init from. */
static void error_init(slm_error_t *err)
{
    memset(err, 0, sizeof *err);
    err->struct_size = sizeof *err;
    err->offset = -1;
}

/* A .safetensors file: 8-byte length, the header text, then `data_len` bytes. */
static void write_st(const char *path, const char *header, uint64_t claimed_len, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t n = claimed_len ? claimed_len : strlen(header);
    for (int i = 0; i < 8; i++)
        fputc((int)((n >> (8 * i)) & 0xff), f);
    fputs(header, f);
    for (size_t i = 0; i < data_len; i++)
        fputc((int)i, f);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* ---- reading: through the compiled-in plugin, or through the registry ---- */

#ifdef ST_DIRECT
SLM_PLUGIN_EXPORT const slm_plugin_descriptor_t *slm_plugin_entry(const slm_host_t *host,
                                                                  uint32_t host_abi_version);

typedef struct held {
    void *mapping;
    void (*release)(void *);
    int n_tensors;
} held_t;

static int set_value(void *ctx, const char *key, int32_t type, const void *value, uint64_t len)
{
    (void)ctx, (void)key, (void)type, (void)value, (void)len;
    return 0;
}

static int set_array(void *ctx, const char *key, int32_t elem_type, const void *values,
                     const uint64_t *lens, uint64_t n)
{
    (void)ctx, (void)key, (void)elem_type;
    /* Touch every element so that ASan sees any bad pointer the reader hands over. */
    volatile uint8_t sum = 0;
    for (uint64_t i = 0; elem_type == SLM_VALUE_STRING && i < n; i++)
        for (uint64_t k = 0; k < lens[i]; k++)
            sum += (uint8_t)((const char *const *)values)[i][k];
    (void)sum;
    return 0;
}

static int add_tensor(void *ctx, const char *name, int32_t type, int32_t n_dims, const int64_t *ne,
                      const void *data, uint64_t nbytes)
{
    (void)name, (void)type, (void)n_dims, (void)ne;
    volatile uint8_t sum = 0;
    for (uint64_t i = 0; i < nbytes; i++)
        sum += ((const uint8_t *)data)[i];
    (void)sum;
    ((held_t *)ctx)->n_tensors++;
    return 0;
}

static int set_mapping(void *ctx, void *mapping, void (*release)(void *))
{
    held_t *h = ctx;
    h->mapping = mapping;
    h->release = release;
    return 0;
}

static int read_path(const char *path, slm_error_t *err)
{
    static const slm_host_t host = {.struct_size = sizeof host, .abi_version = 1};
    const slm_plugin_descriptor_t *d = slm_plugin_entry(&host, SLM_PLUGIN_ABI_VERSION);
    ck_assert_ptr_nonnull(d);
    const slm_format_iface_t *f = d->iface;
    held_t h = {0};
    slm_format_sink_t sink = {.struct_size = sizeof sink, .ctx = &h, .set_value = set_value,
                              .set_array = set_array, .add_tensor = add_tensor,
                              .set_mapping = set_mapping};
    int rc = f->read(path, &sink, err);
    if (h.release)
        h.release(h.mapping);
    return rc;
}
#else
static int read_path(const char *path, slm_error_t *err)
{
    slm_registry_t *reg = slm_registry_new(NULL, err);
    ck_assert_ptr_nonnull(reg);
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, "format-safetensors", &mf, err);
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc;
}
#endif

static void expect_refused(const char *path, const char *needle)
{
    slm_error_t err;
    error_init(&err);
    int rc = read_path(path, &err);
    ck_assert_msg(rc < 0, "%s was accepted", path);
    ck_assert_msg(strstr(err.message, needle), "%s: expected '%s' in: %s", path, needle, err.message);
    ck_assert_msg(strstr(err.message, path), "message does not name the file: %s", err.message);
}

/* ---- single files ---- */

static const struct {
    const char *what, *header;
    uint64_t claimed;
    size_t data;
    const char *needle;
} files[] = {
    {"valid", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, NULL},
    {"header length past EOF", "{}", 4096, 0, "runs past the end"},
    {"huge header length", "{}", 1ull << 62, 0, "exceeds the"},
    {"non-JSON header", "{not json at all", 0, 0, "not valid JSON"},
    {"JSON array header", "[1, 2, 3]", 0, 0, "not a JSON object"},
    {"duplicate names",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8, "duplicate"},
    {"offsets past the end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8,
     "run past the end of the"},
    {"overlapping tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12, "overlap"},
    {"gap between tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 0, 12, "gap of 4 bytes"},
    {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 12,
     "bytes after the last tensor"},
    {"shape product overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 0, 8,
     "overflows"},
    {"element bytes overflow",
     "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 0, 8,
     "overflows"},
    {"wrong byte count", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8,
     "needs 12"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"Q4_WEIRD\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     "unknown dtype 'Q4_WEIRD'"},
    {"negative dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 0, 8,
     "not a non-negative integer"},
    {"too many dimensions",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 0, 8, "5 dimensions"},
    {"reversed offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 0, 8,
     "begin <= end"},
    {"missing fields", "{\"a\":{\"dtype\":\"F32\"}}", 0, 0, "needs string \"dtype\""},
    {"bad metadata", "{\"__metadata__\":{\"n\":1}}", 0, 0, "is not a string"},
};

START_TEST(broken_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/case%d.safetensors", tmpdir, _i);
    write_st(path, files[_i].header, files[_i].claimed, files[_i].data);
    if (!files[_i].needle) {
        slm_error_t err;
        error_init(&err);
        ck_assert_msg(read_path(path, &err) == SLM_OK, "%s", err.message);
    } else {
        expect_refused(path, files[_i].needle);
    }
    unlink(path);
}
END_TEST

START_TEST(truncated_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/short.safetensors", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs("\x10\0\0", f);
    fclose(f);
    expect_refused(path, "too short");
    unlink(path);
}
END_TEST

/* ---- folders ---- */

#define CONFIG_LLAMA                                                                        \
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4,\"num_attention_heads\":1," \
    "\"num_hidden_layers\":1,\"intermediate_size\":8,\"rms_norm_eps\":1e-5}"

/* A folder of text files and at most one .safetensors file, and what its refusal says. */
static const struct {
    const char *dir;
    struct {
        const char *name, *text;
    } files[3];
    const char *st_name, *st_header;
    size_t st_data;
    const char *needle;
} folders[] = {
    {"sharded",
     {{"config.json", CONFIG_LLAMA},
      {"model.safetensors.index.json",
       "{\"metadata\":{},\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00002.safetensors\","
       "\"lm_head.weight\":\"model-00002-of-00002.safetensors\"}}"}},
     "model-00001-of-00002.safetensors",
     "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
     "model-00002-of-00002.safetensors', which is missing"},
    {"escape",
     {{"config.json", CONFIG_LLAMA},
      {"model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}"}},
     NULL, NULL, 0, "names no plain shard file"},
    {"gptj", {{"config.json", "{\"architectures\":[\"GPTJForCausalLM\"]}"}}, NULL, NULL, 0,
     "architecture 'GPTJForCausalLM' is not supported"},
    {"badq",
     {{"config.json",
       "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":6,\"num_attention_heads\":2}"}},
     "model.safetensors",
     "{\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"F32\",\"shape\":[6,1],"
     "\"data_offsets\":[0,24]}}", 24, "cannot be split into 2 heads"},
    {"tokconflict",
     {{"vocab.json", "{\"a\":0,\"b\":1}"}, {"merges.txt", "a b\n"},
      {"added_tokens.json", "{\"<x>\":1}"}},
     NULL, NULL, 0, "token id 1 is both"},
    {"badmerge", {{"vocab.json", "{\"a\":0,\"b\":1}"}, {"merges.txt", "#version: 0.2\na b\nab\n"}},
     NULL, NULL, 0, "line 3 is not a merge"},
    {"hugeid", {{"vocab.json", "{\"a\":0,\"b\":9000000000}"}, {"merges.txt", "a b\n"}}, NULL, NULL,
     0, "outside [0,"},
    {"dupcfg", {{"config.json", "{\"hidden_size\":4,\"hidden_size\":8}"}}, NULL, NULL, 0,
     "duplicate"},
};

static void clear_folder(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

START_TEST(broken_folder)
{
    char dir[400], p[600];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, folders[_i].dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (size_t k = 0; k < sizeof folders[0].files / sizeof folders[0].files[0]; k++)
        if (folders[_i].files[k].name)
            write_text(dir, folders[_i].files[k].name, folders[_i].files[k].text);
    if (folders[_i].st_name) {
        snprintf(p, sizeof p, "%s/%s", dir, folders[_i].st_name);
        write_st(p, folders[_i].st_header, 0, folders[_i].st_data);
    }
    expect_refused(dir, folders[_i].needle);
    clear_folder(dir);
}
END_TEST

#ifdef ST_DIRECT
/* The valid fixtures under the sanitizers too: a reader bug need not show on bad input. */
static const char *const good[] = {"hf/gpt2-tokenizer", "hf/qwen2.5-tokenizer", "hf/llama3.2-bpe",
                                   "safetensors-samples/f.safetensors", "safetensors-samples/e.safetensors"};

START_TEST(fixture_reads_clean)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", fx ? fx : "../shared/fixtures", good[_i]);
    if (access(path, R_OK) != 0) {
        printf("SKIP %s: not found\n", path);
        return;
    }
    slm_error_t err;
    error_init(&err);
    ck_assert_msg(read_path(path, &err) == SLM_OK, "%s", err.message);
}
END_TEST
#endif

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/st-bad-XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    rmdir(tmpdir);
}

int main(void)
{
    Suite *s = suite_create("safetensors-malformed");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, broken_file, 0, sizeof files / sizeof files[0]);
    tcase_add_test(tc, truncated_file);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("folders");
    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_add_loop_test(tf, broken_folder, 0, sizeof folders / sizeof folders[0]);
    suite_add_tcase(s, tf);
#ifdef ST_DIRECT
    TCase *tg = tcase_create("fixtures");
    tcase_set_timeout(tg, 300);
    tcase_add_loop_test(tg, fixture_reads_clean, 0, sizeof good / sizeof good[0]);
    suite_add_tcase(s, tg);
#endif
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

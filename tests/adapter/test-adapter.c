/* LoRA adapters through the public API on stories260K: PEFT's initialisation from a
 * seed, target lists, llama.cpp's scale, GGUF / PEFT folder / lone file round trips,
 * every refusal of a bad adapter (naming file and tensor), and the merge job. */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include <slmops/adapter.h>
#include <slmops/jobs.h>
#include <slmops/merge.h>
#include <slmops/model-file.h>
#include <slmops/quantize.h>
#include <slmops/registry.h>
#include <slmops/types.h>

static slm_registry_t *reg;
static slm_model_file_t *base;
static char tmpdir[256];
static char base_path[1200];
/* What tmp() made, freed by teardown. */
static char *paths[64];
static size_t n_paths;

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
    ck_assert_msg(slm_model_file_open(reg, base_path, NULL, &base, &err) == SLM_OK, "%s", err.message);
    snprintf(tmpdir, sizeof tmpdir, "%s/adapter-test-XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    while (n_paths)
        free(paths[--n_paths]);
    remove_tree(tmpdir);
    slm_model_file_free(base);
    slm_registry_free(reg);
}


/* tmpdir/name; each path lives until the test's teardown. */
static const char *tmp(const char *name)
{
    ck_assert_uint_lt(n_paths, sizeof paths / sizeof paths[0]);
    char *p = malloc(strlen(tmpdir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(p);
    sprintf(p, "%s/%s", tmpdir, name);
    return paths[n_paths++] = p;
}

static float dropout;   /* what make() records */

static slm_adapter_t *make(const char *targets, int rank, float alpha, bool rslora, uint64_t seed)
{
    slm_adapter_params_t p;
    slm_adapter_params_default(&p);
    p.dropout = dropout;
    p.targets = targets;
    p.rank = rank;
    p.alpha = alpha;
    p.rslora = rslora;
    p.seed = seed;
    slm_adapter_t *ad = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_adapter_new(base, &p, &ad, &err) == SLM_OK, "%s", err.message);
    return ad;
}

static slm_adapter_target_t target(const slm_adapter_t *ad, size_t i)
{
    slm_adapter_target_t t = {.struct_size = sizeof t};
    ck_assert_int_eq(slm_adapter_target(ad, i, &t), SLM_OK);
    return t;
}

static void random_b(slm_adapter_t *ad, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < slm_adapter_n_targets(ad); i++) {
        slm_adapter_target_t t = target(ad, i);
        for (int64_t k = 0; k < t.n_out * t.rank; k++)
            t.b[k] = (float)rand() / (float)RAND_MAX * 0.2f - 0.1f;
    }
}

static void save(const slm_adapter_t *ad, const char *path, const char *format)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_adapter_save(ad, reg, path, format, NULL, &err) == SLM_OK, "%s: %s", path, err.message);
}

static slm_adapter_t *load(const char *path)
{
    slm_adapter_t *ad = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_adapter_load(reg, path, base, &ad, &err) == SLM_OK, "%s: %s", path, err.message);
    return ad;
}

/* The load fails with `code` and a message holding each of the NULL-terminated words. */
static void refused(const char *path, int code, const char *const *words)
{
    slm_adapter_t *ad = NULL;
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_adapter_load(reg, path, base, &ad, &err);
    ck_assert_ptr_null(ad);
    ck_assert_msg(rc == code, "%s: code %d (%s), want %d", path, rc, err.message, code);
    for (; *words; words++)
        ck_assert_msg(strstr(err.message, *words), "'%s' is not in: %s", *words, err.message);
}

static void same_adapters(const slm_adapter_t *x, const slm_adapter_t *y)
{
    ck_assert_uint_eq(slm_adapter_n_targets(x), slm_adapter_n_targets(y));
    ck_assert(slm_adapter_alpha(x) == slm_adapter_alpha(y));
    ck_assert(slm_adapter_rslora(x) == slm_adapter_rslora(y));
    ck_assert(slm_adapter_dropout(x) == slm_adapter_dropout(y));
    ck_assert_str_eq(slm_adapter_arch(x), slm_adapter_arch(y));
    for (size_t i = 0; i < slm_adapter_n_targets(x); i++) {
        slm_adapter_target_t a = target(x, i), b = target(y, i);
        ck_assert_str_eq(a.name, b.name);
        ck_assert_int_eq(a.rank, b.rank);
        ck_assert_int_eq(a.n_in, b.n_in);
        ck_assert_int_eq(a.n_out, b.n_out);
        ck_assert_msg(memcmp(a.a, b.a, (size_t)(a.rank * a.n_in) * 4) == 0, "%s: A differs", a.name);
        ck_assert_msg(memcmp(a.b, b.b, (size_t)(a.rank * a.n_out) * 4) == 0, "%s: B differs", a.name);
    }
}

/* ---- building ---- */

START_TEST(new_is_peft_init_from_the_seed)
{
    slm_adapter_t *ad = make(NULL, 8, 8.0f, false, 42), *again = make(NULL, 8, 8.0f, false, 42);
    slm_adapter_t *other = make(NULL, 8, 8.0f, false, 43);
    /* PEFT's default targets for Llama: q and v of every block, in the base's order. */
    ck_assert_uint_eq(slm_adapter_n_targets(ad), 10);
    ck_assert_str_eq(target(ad, 0).name, "blk.0.attn_q.weight");
    ck_assert_str_eq(target(ad, 1).name, "blk.0.attn_v.weight");
    ck_assert_int_eq(target(ad, 1).n_out, 32);
    double sum = 0, sq = 0;
    size_t n = 0;
    for (size_t i = 0; i < slm_adapter_n_targets(ad); i++) {
        slm_adapter_target_t t = target(ad, i), u = target(again, i), o = target(other, i);
        double bound = 1.0 / sqrt((double)t.n_in);
        for (int64_t k = 0; k < t.rank * t.n_in; k++) {
            ck_assert(fabs(t.a[k]) <= bound);
            sum += t.a[k];
            sq += (double)t.a[k] * t.a[k] / (bound * bound);
            n++;
        }
        for (int64_t k = 0; k < t.rank * t.n_out; k++)
            ck_assert(t.b[k] == 0.0f);
        ck_assert(memcmp(t.a, u.a, (size_t)(t.rank * t.n_in) * 4) == 0);
        ck_assert(memcmp(t.a, o.a, (size_t)(t.rank * t.n_in) * 4) != 0);
    }
    /* Uniform in +-bound: mean 0, variance bound^2 / 3. */
    ck_assert_msg(fabs(sum / (double)n) < 0.01, "mean %g", sum / (double)n);
    ck_assert_msg(fabs(sq / (double)n - 1.0 / 3.0) < 0.02, "variance / bound^2 = %g", sq / (double)n);
    /* The same seed gives a weight the same values, whatever else is adapted. */
    slm_adapter_t *more = make("q,k,v", 8, 8.0f, false, 42);
    ck_assert_str_eq(target(more, 1).name, "blk.0.attn_k.weight");
    ck_assert_str_eq(target(more, 2).name, "blk.0.attn_v.weight");
    ck_assert(memcmp(target(more, 2).a, target(ad, 1).a, 8 * 64 * 4) == 0);
    ck_assert(memcmp(target(more, 1).a, target(ad, 1).a, 8 * 64 * 4) != 0);
    slm_adapter_free(more);
    slm_adapter_free(ad);
    slm_adapter_free(again);
    slm_adapter_free(other);
}
END_TEST

static const struct { const char *targets; size_t n; const char *first; int64_t n_in, n_out; } lists[] = {
    {"q,k,v,o,gate,up,down", 35, "blk.0.attn_q.weight", 64, 64},
    {" attn_output , ffn_down ", 10, "blk.0.attn_output.weight", 64, 64},
    {"blk.2.ffn_down.weight", 1, "blk.2.ffn_down.weight", 172, 64},
    {"output", 1, "output.weight", 64, 512},
    {"k", 5, "blk.0.attn_k.weight", 64, 32},
};

START_TEST(target_lists)
{
    slm_adapter_t *ad = make(lists[_i].targets, 4, 8.0f, false, 1);
    ck_assert_uint_eq(slm_adapter_n_targets(ad), lists[_i].n);
    slm_adapter_target_t t = target(ad, 0);
    ck_assert_str_eq(t.name, lists[_i].first);
    ck_assert_int_eq(t.n_in, lists[_i].n_in);
    ck_assert_int_eq(t.n_out, lists[_i].n_out);
    ck_assert_int_eq(slm_adapter_find(ad, lists[_i].first, NULL), 0);
    ck_assert_int_eq(slm_adapter_find(ad, "token_embd.weight", NULL), SLM_E_NOT_FOUND);
    slm_adapter_free(ad);
}
END_TEST

START_TEST(bad_params_are_refused)
{
    static const struct { const char *targets; int rank; float alpha; int code; const char *word; } bad[] = {
        {"nope", 4, 8, SLM_E_NOT_FOUND, "'nope'"},
        {"token_embd.weight", 4, 8, SLM_E_NOT_FOUND, "token_embd.weight"},
        {"q,,v", 4, 8, SLM_E_INVALID, "empty item"},
        {"q", 0, 8, SLM_E_INVALID, "rank 0"},
        {"q", 4, 0, SLM_E_INVALID, "alpha 0"},
        {"q", 4, 8, SLM_E_INVALID, "dropout 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        slm_adapter_params_t p;
        slm_adapter_params_default(&p);
        p.targets = bad[i].targets;
        p.rank = bad[i].rank;
        p.alpha = bad[i].alpha;
        p.dropout = strstr(bad[i].word, "dropout") ? 1.0f : 0.0f;
        slm_adapter_t *ad = NULL;
        slm_error_t err;
        slm_error_init(&err);
        ck_assert_int_eq(slm_adapter_new(base, &p, &ad, &err), bad[i].code);
        ck_assert_ptr_null(ad);
        ck_assert_msg(strstr(err.message, bad[i].word), "%s", err.message);
    }
}
END_TEST

START_TEST(scale_is_llama_cpps)
{
    slm_adapter_t *ad = make("q", 8, 16.0f, false, 1);
    ck_assert(slm_adapter_scale(ad, 0, 0.5f) == 1.0f);
    slm_adapter_free(ad);
    /* rsLoRA: alpha / sqrt(r) = 16 / 2, kept as llama.cpp's alpha 32 over rank 4. */
    ad = make("q", 4, 16.0f, true, 1);
    ck_assert(slm_adapter_alpha(ad) == 32.0f);
    ck_assert(slm_adapter_rslora(ad));
    ck_assert(slm_adapter_scale(ad, 0, 1.0f) == 8.0f);
    ck_assert(slm_adapter_scale(ad, 99, 1.0f) == 0.0f);
    slm_adapter_free(ad);
}
END_TEST

/* ---- saving and reading back ---- */

START_TEST(round_trips)
{
    dropout = 0.05f;
    slm_adapter_t *ad = make("q,k,v,o,gate,up,down,output", 4, 16.0f, true, 7);
    dropout = 0.0f;
    ck_assert(slm_adapter_dropout(ad) == 0.05f);
    random_b(ad, 1);
    static const struct { const char *name, *format; } outs[] = {
        {"a.gguf", NULL}, {"peft", "format-safetensors"}, {"a.safetensors", NULL},
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        save(ad, tmp(outs[i].name), outs[i].format);
        slm_adapter_t *back = load(tmp(outs[i].name));
        same_adapters(ad, back);
        ck_assert_str_eq(slm_adapter_path(back), tmp(outs[i].name));
        slm_adapter_free(back);
    }
    ck_assert_ptr_null(slm_adapter_path(ad));
    slm_adapter_free(ad);
}
END_TEST

START_TEST(gguf_layout_is_llama_cpps)
{
    slm_adapter_t *ad = make("q,v", 4, 8.0f, false, 3);
    slm_model_file_t *mf = NULL;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_adapter_to_model_file(ad, &mf, &err), SLM_OK);
    const char *s = NULL;
    double alpha = 0;
    int64_t rank = 0;
    ck_assert_int_eq(slm_model_file_get_string(mf, "general.type", &s, NULL), SLM_OK);
    ck_assert_str_eq(s, "adapter");
    ck_assert_int_eq(slm_model_file_get_string(mf, "adapter.type", &s, NULL), SLM_OK);
    ck_assert_str_eq(s, "lora");
    ck_assert_int_eq(slm_model_file_get_string(mf, "general.architecture", &s, NULL), SLM_OK);
    ck_assert_str_eq(s, "llama");
    slm_model_value_t v = {.struct_size = sizeof v};
    ck_assert_int_ge(slm_model_file_find_value(mf, "adapter.lora.alpha", &v), 0);
    ck_assert_int_eq(v.type, SLM_MF_F32);
    ck_assert_int_eq(slm_model_file_get_float(mf, "adapter.lora.alpha", &alpha, NULL), SLM_OK);
    ck_assert(alpha == 8.0);
    ck_assert_int_eq(slm_model_file_get_int(mf, "adapter.lora.rank", &rank, NULL), SLM_OK);
    ck_assert_int_eq(rank, 4);
    ck_assert_int_eq(slm_model_file_get_int(mf, "llama.attention.head_count_kv", &rank, NULL), SLM_OK);
    ck_assert_int_eq(rank, 4);
    slm_model_tensor_t t = {.struct_size = sizeof t};
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "blk.1.attn_v.weight.lora_a", &t), 0);
    ck_assert_int_eq(t.type, SLM_TYPE_F32);
    ck_assert_int_eq(t.ne[0], 64);   /* n_in */
    ck_assert_int_eq(t.ne[1], 4);    /* rank */
    ck_assert_int_ge(slm_model_file_find_tensor(mf, "blk.1.attn_v.weight.lora_b", &t), 0);
    ck_assert_int_eq(t.ne[0], 4);
    ck_assert_int_eq(t.ne[1], 32);   /* n_out */
    ck_assert_uint_eq(slm_model_file_n_tensors(mf), 20);
    slm_model_file_free(mf);
    slm_adapter_free(ad);
}
END_TEST

/* An adapter container written by hand, for the refusals. */
typedef struct piece {
    const char *name;
    int64_t ne0, ne1;
} piece_t;

static void write_adapter(const char *path, const char *type, const char *arch, int32_t dtype,
                          const piece_t *pieces)
{
    slm_model_file_t *mf = slm_model_file_new();
    slm_error_t err;
    slm_error_init(&err);
    float alpha = 8.0f;
    if (arch)
        ck_assert_int_ge(slm_model_file_set_string(mf, "general.architecture", arch, &err), 0);
    if (type)
        ck_assert_int_ge(slm_model_file_set_string(mf, "general.type", type, &err), 0);
    ck_assert_int_ge(slm_model_file_set_string(mf, "adapter.type", "lora", &err), 0);
    ck_assert_int_ge(slm_model_file_set_value(mf, "adapter.lora.alpha", SLM_MF_F32, &alpha, 0, &err), 0);
    static uint16_t data[65536];
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++)
        data[i] = 0x3c00;   /* 1.0 in f16; the f32 tensors read pairs of these */
    for (; pieces->name; pieces++) {
        int64_t ne[2] = {pieces->ne0, pieces->ne1};
        uint64_t nbytes = (uint64_t)(pieces->ne0 * pieces->ne1) * (dtype == SLM_TYPE_F16 ? 2 : 4);
        ck_assert_msg(slm_model_file_add_tensor(mf, pieces->name, dtype, 2, ne, data, nbytes, SLM_MF_COPY,
                                                &err) >= 0, "%s", err.message);
    }
    ck_assert_msg(slm_model_file_save(mf, reg, path, NULL, &err) == SLM_OK, "%s", err.message);
    slm_model_file_free(mf);
}

START_TEST(f16_tensors_become_f32)
{
    const piece_t ok[] = {{"blk.0.attn_q.weight.lora_a", 64, 2}, {"blk.0.attn_q.weight.lora_b", 2, 64}, {0}};
    write_adapter(tmp("f16.gguf"), "adapter", "llama", SLM_TYPE_F16, ok);
    slm_adapter_t *ad = load(tmp("f16.gguf"));
    slm_adapter_target_t t = target(ad, 0);
    ck_assert_int_eq(t.rank, 2);
    ck_assert(t.a[0] == 1.0f && t.a[127] == 1.0f && t.b[127] == 1.0f);
    ck_assert(slm_adapter_scale(ad, 0, 1.0f) == 4.0f);
    slm_adapter_free(ad);
}
END_TEST

START_TEST(bad_adapters_are_refused)
{
    const piece_t no_base[] = {{"blk.9.attn_q.weight.lora_a", 64, 4}, {"blk.9.attn_q.weight.lora_b", 4, 64}, {0}};
    const piece_t shape[] = {{"blk.0.attn_q.weight.lora_a", 32, 4}, {"blk.0.attn_q.weight.lora_b", 4, 64}, {0}};
    const piece_t out[] = {{"blk.0.attn_k.weight.lora_a", 64, 4}, {"blk.0.attn_k.weight.lora_b", 4, 64}, {0}};
    const piece_t rank[] = {{"blk.0.attn_q.weight.lora_a", 64, 4}, {"blk.0.attn_q.weight.lora_b", 3, 64}, {0}};
    const piece_t lone_a[] = {{"blk.0.attn_q.weight.lora_a", 64, 4}, {0}};
    const piece_t lone_b[] = {{"blk.0.attn_q.weight.lora_b", 4, 64}, {0}};
    const piece_t norm[] = {{"blk.0.attn_norm.weight", 64, 1}, {0}};
    const piece_t embd[] = {{"token_embd.weight.lora_a", 64, 4}, {"token_embd.weight.lora_b", 4, 512}, {0}};
    const piece_t none[] = {{0}};
    const piece_t good[] = {{"blk.0.attn_q.weight.lora_a", 64, 4}, {"blk.0.attn_q.weight.lora_b", 4, 64}, {0}};
    static const struct {
        const char *file, *type, *arch;
        int code;
        const char *words[4];
    } cases[] = {
        {"no-base.gguf", "adapter", "llama", SLM_E_NOT_FOUND,
         {"no-base.gguf", "blk.9.attn_q.weight.lora_a", "stories260K.gguf", NULL}},
        {"shape.gguf", "adapter", "llama", SLM_E_INVALID, {"shape.gguf", "blk.0.attn_q.weight.lora_a", "[32, 4]", NULL}},
        {"out.gguf", "adapter", "llama", SLM_E_INVALID, {"out.gguf", "blk.0.attn_k.weight.lora_b", "[4, 64]", NULL}},
        {"rank.gguf", "adapter", "llama", SLM_E_FORMAT, {"rank.gguf", "rank 4", "rank 3", NULL}},
        {"lone-a.gguf", "adapter", "llama", SLM_E_FORMAT, {"lone-a.gguf", "has no 'blk.0.attn_q.weight.lora_b'", NULL}},
        {"lone-b.gguf", "adapter", "llama", SLM_E_FORMAT, {"lone-b.gguf", "has no 'blk.0.attn_q.weight.lora_a'", NULL}},
        {"norm.gguf", "adapter", "llama", SLM_E_UNSUPPORTED, {"norm.gguf", "blk.0.attn_norm.weight", NULL}},
        {"embd.gguf", "adapter", "llama", SLM_E_UNSUPPORTED, {"embd.gguf", "token embedding", NULL}},
        {"none.gguf", "adapter", "llama", SLM_E_FORMAT, {"none.gguf", "no tensors", NULL}},
        {"qwen2.gguf", "adapter", "qwen2", SLM_E_INVALID, {"qwen2.gguf", "'qwen2'", "'llama'", NULL}},
        {"no-arch.gguf", "adapter", NULL, SLM_E_FORMAT, {"no-arch.gguf", "general.architecture", NULL}},
        {"model.gguf", "model", "llama", SLM_E_FORMAT, {"model.gguf", "not an adapter", "'model'", NULL}},
    };
    const piece_t *pieces[] = {no_base, shape, out, rank, lone_a, lone_b, norm, embd, none, good, good, good};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_adapter(tmp(cases[i].file), cases[i].type, cases[i].arch, SLM_TYPE_F32, pieces[i]);
        refused(tmp(cases[i].file), cases[i].code, cases[i].words);
    }
    /* The base itself is a model, not an adapter. */
    refused(base_path, SLM_E_FORMAT, (const char *const[]){"not an adapter", NULL});
}
END_TEST

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(bad_peft_folders_are_refused)
{
    slm_adapter_t *ad = make("q,v", 4, 8.0f, false, 3);
    char dir[1024], file[1100];
    snprintf(dir, sizeof dir, "%s", tmp("peft"));
    save(ad, dir, "format-safetensors");
    snprintf(file, sizeof file, "%s/adapter_config.json", dir);
    static const struct { const char *config; int code; const char *word; } bad[] = {
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"use_dora\": true}", SLM_E_UNSUPPORTED, "use_dora"},
        {"{\"peft_type\": \"IA3\", \"r\": 4}", SLM_E_UNSUPPORTED, "IA3"},
        {"{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16}", SLM_E_FORMAT, "r of adapter_config.json"},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"rank_pattern\": {\"q_proj\": 2}}", SLM_E_UNSUPPORTED, "rank_pattern"},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 0}", SLM_E_UNSUPPORTED, "lora_alpha 0"},
        {"{\"peft_type\": \"LORA\", \"r\": \"4\"}", SLM_E_FORMAT, "\"r\""},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_dropout\": 2}", SLM_E_FORMAT, "lora_dropout"},
        {"{\"peft_type\": \"LORA\", \"r\": 4,", SLM_E_FORMAT, "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(file, bad[i].config);
        refused(dir, bad[i].code, (const char *const[]){"adapter_config.json", bad[i].word, NULL});
    }
    unlink(file);
    refused(dir, SLM_E_NOT_FOUND, (const char *const[]){"adapter_model.safetensors without adapter_config.json", NULL});
    slm_adapter_free(ad);
}
END_TEST

/* ---- merging ---- */

static const float *f32_of(const slm_model_file_t *mf, const char *name, slm_model_tensor_t *t)
{
    ck_assert_msg(slm_model_file_find_tensor(mf, name, t) >= 0, "%s", name);
    ck_assert_int_eq(t->type, SLM_TYPE_F32);
    return t->data;
}

/* W + scale * B * A in double, for one weight. */
static double expected(const float *w, const slm_adapter_target_t *t, float scale, int64_t o, int64_t i)
{
    double d = 0;
    for (int32_t r = 0; r < t->rank; r++)
        d += (double)t->b[o * t->rank + r] * t->a[(int64_t)r * t->n_in + i];
    return w[o * t->n_in + i] + scale * d;
}

static int merge(const char *base_file, const slm_merge_adapter_t *ads, size_t n, const char *type,
                 const char *out, slm_error_t *err)
{
    slm_merge_params_t p;
    slm_merge_params_default(&p);
    p.adapters = ads;
    p.n_adapters = n;
    p.type_name = type;
    p.n_threads = 2;
    slm_merge_report_t r = {.struct_size = sizeof r};
    slm_error_init(err);
    int rc = slm_merge_model(reg, base_file, out, &p, &r, err);
    if (rc == SLM_OK)
        ck_assert_uint_eq(r.n_adapters, n);
    slm_merge_report_free(&r);
    return rc;
}

START_TEST(merge_adds_scaled_deltas)
{
    slm_adapter_t *one = make("q", 2, 8.0f, false, 1), *two = make("q,v", 4, 4.0f, true, 2);
    random_b(one, 3);
    random_b(two, 4);
    save(one, tmp("one.gguf"), NULL);
    save(two, tmp("two"), "format-safetensors");
    slm_merge_adapter_t ads[] = {{tmp("one.gguf"), 0.5f}, {tmp("two"), -1.0f}};
    slm_error_t err;
    ck_assert_msg(merge(base_path, ads, 2, NULL, tmp("m.gguf"), &err) == SLM_OK, "%s", err.message);
    slm_model_file_t *m = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, tmp("m.gguf"), NULL, &m, &err), SLM_OK);
    ck_assert_uint_eq(slm_model_file_n_values(m), slm_model_file_n_values(base));
    ck_assert_uint_eq(slm_model_file_n_tensors(m), slm_model_file_n_tensors(base));
    slm_model_tensor_t tw = {.struct_size = sizeof tw}, tm = {.struct_size = sizeof tm};
    float s1 = slm_adapter_scale(one, 0, 0.5f), s2 = slm_adapter_scale(two, 0, -1.0f);
    ck_assert(s1 == 2.0f && fabsf(s2 + 2.0f) < 1e-6f);   /* 8 / 2 * 0.5; -(4 * 2) / 4 */
    const float *w = f32_of(base, "blk.2.attn_q.weight", &tw), *mw = f32_of(m, "blk.2.attn_q.weight", &tm);
    slm_adapter_target_t t1, t2;
    t1.struct_size = t2.struct_size = sizeof t1;
    int i1 = slm_adapter_find(one, "blk.2.attn_q.weight", &t1), i2 = slm_adapter_find(two, "blk.2.attn_q.weight", &t2);
    ck_assert(i1 >= 0 && i2 >= 0);
    double moved = 0;
    for (int64_t o = 0; o < 64; o++)
        for (int64_t i = 0; i < 64; i++) {
            double want = expected(w, &t1, s1, o, i) + expected(w, &t2, s2, o, i) - w[o * 64 + i];
            ck_assert_msg(fabs(mw[o * 64 + i] - want) < 1e-5, "[%lld, %lld]: %g, want %g", (long long)o,
                          (long long)i, mw[o * 64 + i], want);
            moved = fmax(moved, fabs(mw[o * 64 + i] - w[o * 64 + i]));
        }
    ck_assert_msg(moved > 1e-3, "the adapters changed nothing (%g)", moved);
    /* Untouched weights are the base's bytes. */
    f32_of(base, "blk.2.attn_k.weight", &tw);
    f32_of(m, "blk.2.attn_k.weight", &tm);
    ck_assert(tw.nbytes == tm.nbytes && memcmp(tw.data, tm.data, tw.nbytes) == 0);
    slm_model_file_free(m);
    slm_adapter_free(one);
    slm_adapter_free(two);
}
END_TEST

START_TEST(merge_keeps_or_requantizes_types)
{
    slm_quantize_params_t q;
    slm_quantize_params_default(&q);
    q.type = SLM_TYPE_Q8_0;
    q.n_threads = 2;
    slm_quantize_report_t qr = {.struct_size = sizeof qr};
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_quantize_model(reg, base_path, tmp("q8.gguf"), &q, &qr, &err) == SLM_OK, "%s", err.message);
    slm_quantize_report_free(&qr);
    slm_adapter_t *ad = make("q", 2, 8.0f, false, 1);
    random_b(ad, 5);
    save(ad, tmp("a.gguf"), NULL);
    slm_merge_adapter_t ads[] = {{tmp("a.gguf"), 1.0f}};
    /* A q8_0 base stays q8_0: dequantized, merged, quantized again. */
    ck_assert_msg(merge(tmp("q8.gguf"), ads, 1, NULL, tmp("m8.gguf"), &err) == SLM_OK, "%s", err.message);
    slm_model_file_t *b8 = NULL, *m8 = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, tmp("q8.gguf"), NULL, &b8, &err), SLM_OK);
    ck_assert_int_eq(slm_model_file_open(reg, tmp("m8.gguf"), NULL, &m8, &err), SLM_OK);
    slm_model_tensor_t tb = {.struct_size = sizeof tb}, tm = {.struct_size = sizeof tm};
    ck_assert_int_ge(slm_model_file_find_tensor(b8, "blk.0.attn_q.weight", &tb), 0);
    ck_assert_int_ge(slm_model_file_find_tensor(m8, "blk.0.attn_q.weight", &tm), 0);
    ck_assert_int_eq(tm.type, SLM_TYPE_Q8_0);
    float *wb = malloc(64 * 64 * 4), *wm = malloc(64 * 64 * 4);
    ck_assert_int_eq(slm_dequantize_rows(reg, tb.type, tb.data, wb, 64, 64, &err), SLM_OK);
    ck_assert_int_eq(slm_dequantize_rows(reg, tm.type, tm.data, wm, 64, 64, &err), SLM_OK);
    slm_adapter_target_t t = target(ad, 0);
    float s = slm_adapter_scale(ad, 0, 1.0f);
    for (int64_t o = 0; o < 64; o++) {
        double amax = 0;
        for (int64_t i = 0; i < 64; i++)
            amax = fmax(amax, fabs(expected(wb, &t, s, o, i)));
        for (int64_t i = 0; i < 64; i++)   /* within one q8_0 step of the row's largest */
            ck_assert(fabs(wm[o * 64 + i] - expected(wb, &t, s, o, i)) <= amax / 127.0 + 1e-6);
    }
    free(wb);
    free(wm);
    /* --type: the merged model goes through the quantize job. */
    ck_assert_msg(merge(base_path, ads, 1, "q8_0", tmp("mq.gguf"), &err) == SLM_OK, "%s", err.message);
    slm_model_file_t *mq = NULL;
    ck_assert_int_eq(slm_model_file_open(reg, tmp("mq.gguf"), NULL, &mq, &err), SLM_OK);
    ck_assert_int_ge(slm_model_file_find_tensor(mq, "blk.0.attn_q.weight", &tm), 0);
    ck_assert_int_eq(tm.type, SLM_TYPE_Q8_0);
    int64_t ft = 0;
    ck_assert_int_eq(slm_model_file_get_int(mq, "general.file_type", &ft, NULL), SLM_OK);
    ck_assert_int_eq(ft, 7);   /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    slm_model_file_free(mq);
    slm_model_file_free(m8);
    slm_model_file_free(b8);
    slm_adapter_free(ad);
}
END_TEST

START_TEST(merge_refuses_before_writing)
{
    slm_adapter_t *ad = make("q", 2, 8.0f, false, 1);
    save(ad, tmp("a.gguf"), NULL);
    const piece_t bad[] = {{"blk.9.attn_q.weight.lora_a", 64, 4}, {"blk.9.attn_q.weight.lora_b", 4, 64}, {0}};
    write_adapter(tmp("bad.gguf"), "adapter", "llama", SLM_TYPE_F32, bad);
    slm_error_t err;
    slm_merge_adapter_t ads[] = {{tmp("a.gguf"), 1.0f}, {tmp("bad.gguf"), 1.0f}};
    ck_assert_int_eq(merge(base_path, ads, 2, NULL, tmp("m.gguf"), &err), SLM_E_NOT_FOUND);
    ck_assert_msg(strstr(err.message, "bad.gguf") && strstr(err.message, "blk.9.attn_q.weight.lora_a"), "%s",
                  err.message);
    ck_assert_int_ne(access(tmp("m.gguf"), F_OK), 0);
    ck_assert_int_eq(merge(base_path, ads, 1, "no-such-type", tmp("m.gguf"), &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "no-such-type"), "%s", err.message);
    /* OUT may be neither the base nor an adapter. */
    ck_assert_int_ne(merge(base_path, ads, 1, NULL, tmp("a.gguf"), &err), SLM_OK);
    ck_assert_int_ne(merge(base_path, ads, 1, NULL, base_path, &err), SLM_OK);
    ck_assert_int_ne(access(tmp("m.gguf"), F_OK), 0);
    ck_assert_int_eq(merge(base_path, ads, 0, NULL, tmp("m.gguf"), &err), SLM_E_INVALID);
    slm_adapter_t *back = load(tmp("a.gguf"));
    same_adapters(ad, back);
    slm_adapter_free(back);
    slm_adapter_free(ad);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    snprintf(base_path, sizeof base_path, "%s/gguf/stories260K.gguf", fx ? fx : "../shared/fixtures");
    if (access(base_path, R_OK) != 0) {
        printf("SKIP: %s not found (set SLMOPS_FIXTURES)\n", base_path);
        return 77;
    }
    Suite *s = suite_create("adapter");
    TCase *build = tcase_create("build");
    tcase_add_checked_fixture(build, setup, teardown);
    tcase_add_test(build, new_is_peft_init_from_the_seed);
    tcase_add_loop_test(build, target_lists, 0, sizeof lists / sizeof lists[0]);
    tcase_add_test(build, bad_params_are_refused);
    tcase_add_test(build, scale_is_llama_cpps);
    suite_add_tcase(s, build);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files, round_trips);
    tcase_add_test(files, gguf_layout_is_llama_cpps);
    tcase_add_test(files, f16_tensors_become_f32);
    tcase_add_test(files, bad_adapters_are_refused);
    tcase_add_test(files, bad_peft_folders_are_refused);
    suite_add_tcase(s, files);
    TCase *mergetc = tcase_create("merge");
    tcase_add_checked_fixture(mergetc, setup, teardown);
    tcase_add_test(mergetc, merge_adds_scaled_deltas);
    tcase_add_test(mergetc, merge_keeps_or_requantizes_types);
    tcase_add_test(mergetc, merge_refuses_before_writing);
    suite_add_tcase(s, mergetc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

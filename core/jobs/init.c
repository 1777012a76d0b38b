/* `slmops init`: a Llama model with the shapes of a named preset, seeded random
 * weights and a synthetic vocabulary, for benchmarks and tests. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/chat.h>
#include <slmops/dataset.h>
#include <slmops/jobs.h>
#include <slmops/model-file.h>
#include <slmops/tokenizer.h>
#include <slmops/types.h>

#include "internal/model-file.h"
#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"
#include "jobs/vocab.h"

typedef struct preset {
    const char *name;
    uint32_t n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_base, rms_eps;
    bool tied;
} preset_t;

static const preset_t presets[] = {
    {"smollm2-135m", 576, 1536, 30, 9, 3, 49152, 8192, 100000.0f, 1e-5f, true},
    {"stories15m", 288, 768, 6, 6, 6, 32000, 256, 10000.0f, 1e-5f, false},
    /* Distillation students of SmolLM2-135M (with its 49152-token vocabulary): 3.8%
     * and 8.8% of its 134.5M parameters, mostly the tied embedding. */
    {"student-5m", 96, 256, 4, 4, 2, 49152, 2048, 100000.0f, 1e-5f, true},
    {"student-12m", 192, 512, 6, 6, 2, 49152, 2048, 100000.0f, 1e-5f, true},
    /* A student of stories260K for tests: 41K parameters with its 512 tokens. */
    {"student-micro", 32, 96, 2, 4, 2, 512, 512, 10000.0f, 1e-5f, true},
};
#define PRESET_NAMES "smollm2-135m, stories15m, student-5m, student-12m, student-micro"

/* Standard deviation of the weights, as a transformer initialisation uses. */
#define INIT_STD 0.02

typedef struct ijob {
    slm_registry_t *reg;
    slm_init_params_t p;
    const slm__jobrt_t *rt;
    const preset_t *ps;        /* the preset's shapes, with the vocabulary's size */
    preset_t shape;
    slm_model_file_t *mf, *vocab;  /* vocab: the vocab_from model's file */
    void **bufs;
    size_t n_bufs, cap_bufs;
    uint64_t done, total;
    slm_error_t *err;
} ijob_t;

void slm_init_params_default(slm_init_params_t *p)
{
    if (p)
        *p = (slm_init_params_t){.struct_size = sizeof *p, .arch = "llama",
                                 .preset = "stories15m", .type = SLM_TYPE_F32, .seed = 42};
}

const char *slm_init_preset_name(size_t i)
{
    return i < SLM__ARRAY_LEN(presets) ? presets[i].name : NULL;
}

/* splitmix64: one stream per tensor, so the result does not depend on threads. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double next_unit(uint64_t *s)
{
    return ((double)(next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return h;
}

/* Box-Muller, two normals per pair of uniforms. */
static void fill_normal(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(next_unit(&s))) * INIT_STD, a = 2.0 * M_PI * next_unit(&s);
        x[i] = (float)(r * cos(a));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(a));
    }
}

static int keep(ijob_t *j, void *buf)
{
    if (j->n_bufs == j->cap_bufs) {
        size_t cap = j->cap_bufs ? 2 * j->cap_bufs : 64;
        void **nb = realloc(j->bufs, cap * sizeof *nb);
        if (!nb) {
            free(buf);
            return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "init: out of memory");
        }
        j->bufs = nb;
        j->cap_bufs = cap;
    }
    j->bufs[j->n_bufs++] = buf;
    return SLM_OK;
}

/* A norm vector of ones (f32), or a matrix [ne0, ne1] of N(0, INIT_STD) values
 * in the type the quantize policy gives it. */
static int add_tensor(ijob_t *j, const char *name, int64_t ne0, int64_t ne1, bool is_output)
{
    if (slm__jobrt_cancelled(j->rt))
        return slm__jobrt_fail_cancelled(j->err, "init");
    size_t n = (size_t)ne0 * (size_t)(ne1 ? ne1 : 1);
    int64_t ne[2] = {ne0, ne1};
    float *x = malloc(n * sizeof *x);
    if (!x)
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "init: out of memory");
    int rc;
    if (ne1 == 0) {
        for (size_t i = 0; i < n; i++)
            x[i] = 1.0f;
        if ((rc = keep(j, x)))
            return rc;
        rc = slm_model_file_add_tensor(j->mf, name, SLM_TYPE_F32, 1, ne, x, n * sizeof *x,
                                       SLM_MF_BORROW, j->err);
    } else {
        fill_normal(x, n, name_seed(j->p.seed, name));
        int32_t wanted = is_output ? slm__jobs_output_type(j->reg, j->p.type) : j->p.type;
        int32_t type = slm__jobs_fit_type(j->reg, wanted, ne0, NULL, 0);
        size_t nbytes = slm_type_row_size(type, ne0) * (size_t)ne1;
        void *q = type == SLM_TYPE_F32 ? x : malloc(nbytes ? nbytes : 1);
        if (!q) {
            free(x);
            return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "init: out of memory");
        }
        rc = q == x ? SLM_OK : slm__jobs_convert(j->reg, SLM_TYPE_F32, x, type, q, ne1, ne0,
                                                 j->p.n_threads, j->err);
        if (q != x)
            free(x);
        if (rc || (rc = keep(j, q)))
            return rc;
        rc = slm_model_file_add_tensor(j->mf, name, type, 2, ne, q, nbytes, SLM_MF_BORROW, j->err);
    }
    if (rc < 0)
        return rc;
    j->done += n * sizeof(float);
    slm__jobrt_progress(j->rt, "init", j->done, j->total, name, NAN);
    return SLM_OK;
}

static int set_u32(ijob_t *j, const char *key, uint32_t v)
{
    int rc = slm_model_file_set_value(j->mf, key, SLM_MF_U32, &v, 0, j->err);
    return rc < 0 ? rc : SLM_OK;
}

static int set_f32(ijob_t *j, const char *key, float v)
{
    int rc = slm_model_file_set_value(j->mf, key, SLM_MF_F32, &v, 0, j->err);
    return rc < 0 ? rc : SLM_OK;
}

static int hparams(ijob_t *j)
{
    const preset_t *p = j->ps;
    char name[96];
    snprintf(name, sizeof name, "%s (random, seed %llu)", p->name, (unsigned long long)j->p.seed);
    int32_t ft = slm__jobs_file_type(j->reg, j->p.type);
    int rc;
    if ((rc = slm_model_file_set_string(j->mf, "general.architecture", "llama", j->err)) < 0 ||
        (rc = slm_model_file_set_string(j->mf, "general.name", name, j->err)) < 0 ||
        (ft >= 0 && (rc = set_u32(j, "general.file_type", (uint32_t)ft))) ||
        (rc = set_u32(j, "general.quantization_version", 2)) ||
        (rc = set_u32(j, "llama.context_length", p->n_ctx)) ||
        (rc = set_u32(j, "llama.embedding_length", p->n_embd)) ||
        (rc = set_u32(j, "llama.block_count", p->n_layer)) ||
        (rc = set_u32(j, "llama.feed_forward_length", p->n_ff)) ||
        (rc = set_u32(j, "llama.rope.dimension_count", p->n_embd / p->n_head)) ||
        (rc = set_u32(j, "llama.attention.head_count", p->n_head)) ||
        (rc = set_u32(j, "llama.attention.head_count_kv", p->n_head_kv)) ||
        (rc = set_f32(j, "llama.attention.layer_norm_rms_epsilon", p->rms_eps)) ||
        (rc = set_f32(j, "llama.rope.freq_base", p->rope_base)) ||
        (rc = set_u32(j, "llama.vocab_size", p->n_vocab)))
        return rc < 0 ? rc : SLM_OK;
    if (j->vocab)
        return slm_model_file_copy_values(j->mf, j->vocab, "tokenizer.", j->err) < 0
                   ? j->err->code : SLM_OK;
    return slm__jobs_write_vocab(j->mf, p->n_vocab, j->err);
}

static int layer(ijob_t *j, uint32_t il)
{
    const preset_t *p = j->ps;
    int64_t E = p->n_embd, KV = (int64_t)p->n_embd / p->n_head * p->n_head_kv, F = p->n_ff;
    const struct { const char *n; int64_t ne0, ne1; } t[] = {
        {"attn_norm", E, 0}, {"attn_q", E, E},  {"attn_k", E, KV},   {"attn_v", E, KV},
        {"attn_output", E, E}, {"ffn_norm", E, 0}, {"ffn_gate", E, F}, {"ffn_up", E, F},
        {"ffn_down", F, E},
    };
    char name[64];
    for (size_t i = 0; i < SLM__ARRAY_LEN(t); i++) {
        snprintf(name, sizeof name, "blk.%u.%s.weight", il, t[i].n);
        int rc = add_tensor(j, name, t[i].ne0, t[i].ne1, false);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static uint64_t total_elements(const preset_t *p)
{
    uint64_t E = p->n_embd, KV = (uint64_t)p->n_embd / p->n_head * p->n_head_kv, F = p->n_ff;
    uint64_t per_layer = 2 * E + 2 * E * E + 2 * E * KV + 3 * E * F;
    return E * p->n_vocab * (p->tied ? 1 : 2) + E + per_layer * p->n_layer;
}

static int build(ijob_t *j)
{
    const preset_t *p = j->ps;
    j->total = total_elements(p) * sizeof(float);
    int rc = hparams(j);
    if (rc || (rc = add_tensor(j, "token_embd.weight", p->n_embd, p->n_vocab, p->tied)))
        return rc;
    for (uint32_t il = 0; il < p->n_layer; il++)
        if ((rc = layer(j, il)))
            return rc;
    if ((rc = add_tensor(j, "output_norm.weight", p->n_embd, 0, false)))
        return rc;
    if (!p->tied && (rc = add_tensor(j, "output.weight", p->n_embd, p->n_vocab, true)))
        return rc;
    /* The last safe point before the write. */
    return slm__jobrt_cancelled(j->rt) ? slm__jobrt_fail_cancelled(j->err, "init") : SLM_OK;
}

static int check(const slm_init_params_t *p, const preset_t **ps, slm_error_t *err)
{
    *ps = NULL;
    if (!p->arch || strcmp(p->arch, "llama") != 0)
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "init: architecture '%s' is not "
                         "supported (llama)", p->arch ? p->arch : "(none)");
    for (size_t i = 0; p->preset && i < SLM__ARRAY_LEN(presets); i++)
        if (strcmp(p->preset, presets[i].name) == 0)
            *ps = &presets[i];
    if (!*ps)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "init: unknown preset '%s' "
                         "(" PRESET_NAMES ")", p->preset ? p->preset : "(none)");
    if ((p->vocab_data || p->vocab_chat_template) && !p->vocab_from)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init: a vocabulary cut to a data set "
                         "needs the vocabulary to cut (vocab_from)");
    const slm_type_traits_t *t = slm_type_get_traits(p->type);
    if (!t || (!t->is_quantized && p->type != SLM_TYPE_F32 && p->type != SLM_TYPE_F16 &&
               p->type != SLM_TYPE_BF16))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init: %s is not a weight type this "
                         "build knows (f32, f16, bf16 or a quantizer plugin's type)",
                         slm_type_name(p->type));
    return SLM_OK;
}

/* Mark in used[] every token vocab_data's examples hold, tokenized and rendered as
 * training on it will (with vocab_from's tokenizer and chat template, or
 * vocab_chat_template). */
static int mark_used(ijob_t *j, const slm_tokenizer_t *tok, const slm_chat_template_t *chat,
                     bool *used)
{
    slm_dataset_params_t dp;
    slm_dataset_params_default(&dp);
    dp.tok = tok;
    dp.chat = chat;
    dp.n_ctx = INT32_MAX;      /* every example, however long: its tokens count */
    slm_dataset_t *ds = NULL;
    int rc = slm_dataset_load(j->p.vocab_data, &dp, &ds, j->err);
    for (size_t i = 0; rc == SLM_OK && i < slm_dataset_n_examples(ds); i++) {
        const int32_t *ids;
        size_t n;
        slm_dataset_example(ds, i, &ids, NULL, &n, NULL);
        for (size_t k = 0; k < n; k++)
            if (ids[k] >= 0 && (uint32_t)ids[k] < j->shape.n_vocab)
                used[ids[k]] = true;
    }
    slm_dataset_free(ds);
    return rc;
}

/* vocab_from's vocabulary cut down to what vocab_data uses (vocab-trim.c): j->vocab
 * becomes a container of the cut tokenizer.* keys alone. */
static int cut_vocab(ijob_t *j)
{
    slm_tokenizer_t *tok = NULL;
    slm_chat_template_t *chat = NULL;
    slm_model_file_t *cut = slm_model_file_new();
    bool *used = calloc(j->shape.n_vocab, sizeof *used);
    int rc = cut && used ? slm_tokenizer_from_model_file(j->vocab, &tok, j->err)
                         : slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "init: out of memory");
    if (rc == SLM_OK && j->p.vocab_chat_template)
        rc = slm__job_chat_template("init", j->p.vocab_chat_template, &chat, j->err);
    else if (rc == SLM_OK && slm_chat_template_from_model_file(j->vocab, &chat, NULL) != SLM_OK)
        chat = NULL;   /* {"messages"} lines then say the vocabulary has no template */
    if (rc == SLM_OK)
        rc = mark_used(j, tok, chat, used);
    uint32_t n_kept = 0;
    if (rc == SLM_OK)
        rc = slm__vocab_trim(j->vocab, used, cut, &n_kept, j->err);
    if (rc == SLM_OK) {
        slm_model_file_free(j->vocab);
        j->vocab = cut;
        cut = NULL;
        j->shape.n_vocab = n_kept;
    } else if (j->err && strncmp(j->err->message, "init:", 5) != 0) {
        /* Say which step failed; the message itself names the file or the reason. */
        char why[sizeof j->err->message];
        snprintf(why, sizeof why, "%s", j->err->message);
        slm__fail(j->err, j->err->code, NULL, -1, "init: cutting %s's vocabulary to the "
                  "tokens of %s: %s", j->p.vocab_from, j->p.vocab_data, why);
    }
    slm_model_file_free(cut);
    slm_tokenizer_free(tok);
    slm_chat_template_free(chat);
    free(used);
    return rc;
}

/* The shapes to build: the preset's, with vocab_from's vocabulary in place of the
 * synthetic one (a student that shares its teacher's tokenizer). */
static int take_vocab(ijob_t *j)
{
    j->shape = *j->ps;
    j->ps = &j->shape;
    if (!j->p.vocab_from)
        return SLM_OK;
    int rc = slm_model_file_open(j->reg, j->p.vocab_from, NULL, &j->vocab, j->err);
    slm_model_value_t v = {.struct_size = sizeof v};
    if (rc == SLM_OK &&
        slm_model_file_get_array(j->vocab, "tokenizer.ggml.tokens", SLM_MF_STRING, &v,
                                 NULL) != SLM_OK)
        return slm__fail(j->err, SLM_E_FORMAT, j->p.vocab_from, -1, "init: %s carries no "
                         "vocabulary (tokenizer.ggml.tokens) to take", j->p.vocab_from);
    if (rc == SLM_OK && (v.n < 4 || v.n > (1u << 22)))
        return slm__fail(j->err, SLM_E_FORMAT, j->p.vocab_from, -1, "init: %s: a vocabulary "
                         "of %llu tokens", j->p.vocab_from, (unsigned long long)v.n);
    if (rc == SLM_OK)
        j->shape.n_vocab = (uint32_t)v.n;
    if (rc == SLM_OK && j->p.vocab_data)
        rc = cut_vocab(j);
    return rc;
}

int slm__init_check(const slm_init_params_t *p, slm_error_t *err)
{
    const preset_t *ps;
    return check(p, &ps, err);
}

int slm__init_run(slm_registry_t *reg, const char *out_path, const slm_init_params_t *p,
                  const slm__jobrt_t *rt, uint32_t *n_vocab, slm_error_t *err)
{
    if (!reg || !out_path || !p)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init: NULL argument");
    ijob_t j = {.reg = reg, .rt = rt, .err = err};
    slm_init_params_default(&j.p);
    memcpy(&j.p, p, p->struct_size < sizeof j.p ? p->struct_size : sizeof j.p);
    slm_output_params_t out;
    slm_output_params_init(&out);
    out.inputs = rt->inputs;
    out.n_inputs = rt->n_inputs;
    int rc = check(&j.p, &j.ps, err);
    if (rc == SLM_OK)
        rc = take_vocab(&j);
    /* OUT is judged before the model is built. */
    if (rc == SLM_OK)
        rc = slm__model_file_check_output(reg, out_path, j.p.format, &out, err);
    if (rc) {
        slm_model_file_free(j.vocab);
        return rc;
    }
    j.mf = slm_model_file_new();
    rc = j.mf ? build(&j) : slm__fail(err, SLM_E_NOMEM, NULL, -1, "init: out of memory");
    if (rc == SLM_OK)
        rc = slm_model_file_save_output(j.mf, reg, out_path, j.p.format, &out, err);
    if (rc == SLM_OK)
        slm__jobrt_wrote(rt, out_path);
    if (rc == SLM_OK && n_vocab)
        *n_vocab = j.ps->n_vocab;
    slm_model_file_free(j.mf);
    slm_model_file_free(j.vocab);
    for (size_t i = 0; i < j.n_bufs; i++)
        free(j.bufs[i]);
    free(j.bufs);
    return rc;
}

int slm_model_init_random(slm_registry_t *reg, const char *out_path, const slm_init_params_t *p,
                          slm_error_t *err)
{
    if (!p)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "init: NULL argument");
    slm_init_params_t o;
    slm_init_params_default(&o);
    memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    slm__jobrt_t rt;
    slm__jobrt_init(&rt, o.progress, o.user, o.cancel);
    return slm__init_run(reg, out_path, p, &rt, NULL, err);
}

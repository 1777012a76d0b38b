/* Loading a Llama-family model from a model file: hyper-parameters from GGUF keys,
 * every weight checked against the shape they imply, then placed on the device. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/host-pages.h"
#include "internal/util.h"
#include "runtime/runtime.h"

/* Sizes beyond this are refused before any product is formed. */
#define DIM_MAX (1 << 24)

typedef struct arch_desc {
    const char *name;
    int rope_mode;
    bool fused;                /* phi3: attn_qkv and ffn_up holding gate+up */
} arch_desc_t;

static const arch_desc_t archs[] = {
    {"llama", SLM_ROPE_NORMAL, false},
    {"mistral", SLM_ROPE_NORMAL, false},
    {"qwen2", SLM_ROPE_NEOX, false},
    {"phi3", SLM_ROPE_NEOX, true},
};

void slm_model_params_default(slm_model_params_t *p)
{
    if (p)
        *p = (slm_model_params_t){.struct_size = sizeof *p};
}

/* ---- hyper-parameters ---- */

typedef struct loader {
    slm_model_t *m;
    const slm_model_file_t *mf;
    const char *path;          /* for messages */
    slm_error_t *err;
    slm__host_pages_t *pages;  /* the mappings, to give back copied weights' pages (read
                                  at the first copied weight; NULL until then) */
    bool pages_read;
    slm__host_range_t *copied; /* the file bytes of the weights copied so far */
    size_t n_copied;
} loader_t;

static int key_int(loader_t *L, const char *suffix, bool required, int64_t def, int64_t lo,
                   int64_t hi, int32_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->m->hp.arch, suffix);
    int64_t v;
    int rc = slm_model_file_get_int(L->mf, key, &v, NULL);
    if (rc == SLM_E_NOT_FOUND && !required) {
        v = def;
    } else if (rc == SLM_E_NOT_FOUND) {
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: metadata key %s is missing",
                         key);
    } else if (rc < 0) {
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: metadata key %s is not a "
                         "single integer", key);
    }
    if (v < lo || v > hi)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: %s = %lld is outside "
                         "[%lld, %lld]", key, (long long)v, (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return SLM_OK;
}

static int key_float(loader_t *L, const char *suffix, double def, double lo, double hi,
                     float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->m->hp.arch, suffix);
    double v;
    int rc = slm_model_file_get_float(L->mf, key, &v, NULL);
    if (rc == SLM_E_NOT_FOUND)
        v = def;
    else if (rc < 0)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: metadata key %s is not a "
                         "float", key);
    if (!(v >= lo && v <= hi))
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: %s = %g is outside "
                         "[%g, %g]", key, v, lo, hi);
    *out = (float)v;
    return SLM_OK;
}

static const arch_desc_t *find_arch(loader_t *L)
{
    const char *arch = NULL, *type = NULL;
    if (slm_model_file_get_string(L->mf, "general.type", &type, NULL) == SLM_OK &&
        strcmp(type, "adapter") == 0) {
        slm__fail(L->err, SLM_E_INVALID, L->path, -1, "model: a LoRA adapter, not a model: bake it into "
                  "its base with 'slmops merge -m BASE --lora ADAPTER -o OUT'");
        return NULL;
    }
    if (slm_model_file_get_string(L->mf, "general.architecture", &arch, NULL) < 0) {
        slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: general.architecture is missing "
                  "(a tokenizer-only file?)");
        return NULL;
    }
    for (size_t i = 0; i < SLM__ARRAY_LEN(archs); i++)
        if (strcmp(arch, archs[i].name) == 0) {
            snprintf(L->m->hp.arch, sizeof L->m->hp.arch, "%s", arch);
            return &archs[i];
        }
    slm__fail(L->err, SLM_E_UNSUPPORTED, L->path, -1, "model: architecture '%s' is not "
              "supported (llama, mistral, qwen2, phi3)", arch);
    return NULL;
}

/* Rope scaling as llama.cpp stores it: linear divides positions by the factor. */
static int rope_scaling(loader_t *L)
{
    slm__hparams_t *hp = &L->m->hp;
    char key[128];
    const char *type = NULL;
    hp->rope_scale = 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch);
    if (slm_model_file_get_string(L->mf, key, &type, NULL) < 0 || strcmp(type, "none") == 0)
        return SLM_OK;
    float factor;
    int rc = key_float(L, "rope.scaling.factor", 1.0, 1e-6, 1e6, &factor);
    if (rc)
        return rc;
    if (strcmp(type, "linear") == 0) {
        hp->rope_scale = 1.0f / factor;
        return SLM_OK;
    }
    return slm__fail(L->err, SLM_E_UNSUPPORTED, L->path, -1, "model: rope scaling '%s' is not "
                     "supported (linear, or llama3 through rope_freqs)", type);
}

/* A wrong embedding length shows first in the token embedding's width: say so
 * there, before it surfaces as a confusing head-size or shape complaint. */
static int check_embedding_length(loader_t *L)
{
    const slm__hparams_t *hp = &L->m->hp;
    slm_model_tensor_t embd = {.struct_size = sizeof embd};
    if (slm_model_file_find_tensor(L->mf, "token_embd.weight", &embd) < 0 || embd.n_dims < 1 ||
        embd.ne[0] == hp->n_embd)
        return SLM_OK;
    return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: %s.embedding_length is %d but "
                     "token_embd.weight has rows of %lld: the metadata and the tensors disagree",
                     hp->arch, hp->n_embd, (long long)embd.ne[0]);
}

static int read_hparams(loader_t *L, const arch_desc_t *a)
{
    slm__hparams_t *hp = &L->m->hp;
    int rc;
    if ((rc = key_int(L, "embedding_length", true, 0, 1, DIM_MAX, &hp->n_embd)) ||
        (rc = key_int(L, "block_count", true, 0, 1, 4096, &hp->n_layer)) ||
        (rc = key_int(L, "feed_forward_length", true, 0, 1, DIM_MAX, &hp->n_ff)) ||
        (rc = key_int(L, "attention.head_count", true, 0, 1, 65536, &hp->n_head)) ||
        (rc = key_int(L, "attention.head_count_kv", false, hp->n_head, 1, hp->n_head,
                      &hp->n_head_kv)) ||
        (rc = key_int(L, "context_length", false, 2048, 1, DIM_MAX, &hp->n_ctx_train)))
        return rc;
    if (hp->n_head % hp->n_head_kv)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: %d heads are not a "
                         "multiple of %d key/value heads", hp->n_head, hp->n_head_kv);
    if ((rc = check_embedding_length(L)))
        return rc;
    int32_t def_hd = hp->n_embd % hp->n_head ? 0 : hp->n_embd / hp->n_head;
    char key_length[96];
    snprintf(key_length, sizeof key_length, "%s.attention.key_length", hp->arch);
    if (def_hd == 0 && slm_model_file_find_value(L->mf, key_length, NULL) < 0)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: %s.embedding_length %d is "
                         "not a multiple of %s.attention.head_count %d, and no %s gives the "
                         "head size", hp->arch, hp->n_embd, hp->arch, hp->n_head, key_length);
    if ((rc = key_int(L, "attention.key_length", false, def_hd, 2, 65536, &hp->head_dim)))
        return rc;
    int32_t v_len;
    if ((rc = key_int(L, "attention.value_length", false, hp->head_dim, 1, 65536, &v_len)))
        return rc;
    if (v_len != hp->head_dim)
        return slm__fail(L->err, SLM_E_UNSUPPORTED, L->path, -1, "model: key length %d and "
                         "value length %d differ", hp->head_dim, v_len);
    if ((int64_t)hp->head_dim * hp->n_head > DIM_MAX)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: %d heads of %d are too "
                         "many", hp->n_head, hp->head_dim);
    if ((rc = key_int(L, "rope.dimension_count", false, hp->head_dim, 2, hp->head_dim,
                      &hp->n_rot)))
        return rc;
    if (hp->n_rot % 2)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: rope dimension count %d "
                         "is odd", hp->n_rot);
    if ((rc = key_float(L, "rope.freq_base", 10000.0, 1e-3, 1e12, &hp->rope_base)) ||
        (rc = key_float(L, "attention.layer_norm_rms_epsilon", 1e-5, 0.0, 1.0, &hp->norm_eps)))
        return rc;
    hp->rope_mode = a->rope_mode;
    return rope_scaling(L);
}

/* n_vocab: the arch key, else the token list, else the embedding's rows. */
static int vocab_size(loader_t *L, const slm_model_tensor_t *embd)
{
    slm__hparams_t *hp = &L->m->hp;
    slm_model_value_t toks = {.struct_size = sizeof toks};
    int32_t def = embd->ne[1] > DIM_MAX ? 0 : (int32_t)embd->ne[1];
    if (slm_model_file_get_array(L->mf, "tokenizer.ggml.tokens", SLM_MF_STRING, &toks, NULL) >= 0 &&
        toks.n <= DIM_MAX)
        def = (int32_t)toks.n;
    int rc = key_int(L, "vocab_size", false, def, 1, DIM_MAX, &hp->n_vocab);
    if (rc)
        return rc;
    if (embd->ne[1] != hp->n_vocab)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: token_embd.weight has %lld "
                         "rows for a vocabulary of %d", (long long)embd->ne[1], hp->n_vocab);
    return SLM_OK;
}

/* ---- weights ---- */

static int shape_str(char *out, size_t cap, const int64_t *ne)
{
    return snprintf(out, cap, "[%lld, %lld, %lld, %lld]", (long long)ne[0], (long long)ne[1],
                    (long long)ne[2], (long long)ne[3]);
}

/* Find `name`, check it has shape {d0, d1} (d1 0: a vector) and put it on the device.
 * A missing optional tensor leaves *out NULL. */
static int weight(loader_t *L, const char *name, int64_t d0, int64_t d1, bool required,
                  slm__weight_t **out)
{
    slm_model_t *m = L->m;
    *out = NULL;
    slm_model_tensor_t t = {.struct_size = sizeof t};
    if (slm_model_file_find_tensor(L->mf, name, &t) < 0) {
        if (!required)
            return SLM_OK;
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: tensor %s is missing", name);
    }
    const int64_t want[4] = {d0, d1 ? d1 : 1, 1, 1};
    if (memcmp(t.ne, want, sizeof want) != 0) {
        char got_s[96], want_s[96];
        shape_str(got_s, sizeof got_s, t.ne);
        shape_str(want_s, sizeof want_s, want);
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: tensor %s has shape %s, "
                         "expected %s", name, got_s, want_s);
    }
    if (!slm_type_get_traits(t.type) || !t.data)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: tensor %s has no data or "
                         "a type this build does not know (%s)", name, slm_type_name(t.type));
    size_t row = slm_type_row_size(t.type, t.ne[0]);
    if (row == 0 || (uint64_t)row * (uint64_t)t.ne[1] != t.nbytes)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: tensor %s holds %llu "
                         "bytes, not the %llu its %s shape needs", name,
                         (unsigned long long)t.nbytes, (unsigned long long)row * t.ne[1],
                         slm_type_name(t.type));
    slm__weight_t *w = &m->weights[m->n_weights];
    w->buf = slm_buffer_from_host(m->sched, t.data, t.nbytes, L->err);
    if (!w->buf)
        return L->err ? L->err->code : SLM_E_DEVICE;
    if (!slm_buffer_is_zero_copy(w->buf)) {   /* copied: its file pages go now (D60) */
        if (!L->pages_read) {
            L->pages = slm__host_pages_open();
            L->pages_read = true;
        }
        slm__host_range_t r = {t.data, t.nbytes};
        slm__host_pages_drop(L->pages, &r, 1);
        if (L->copied)   /* room for every tensor of the file (load_weights) */
            L->copied[L->n_copied++] = r;
    }
    m->n_weights++;
    w->name = t.name;
    w->type = t.type;
    memcpy(w->ne, t.ne, sizeof w->ne);
    m->n_params += (uint64_t)t.ne[0] * (uint64_t)t.ne[1];
    *out = w;
    return SLM_OK;
}

static int layer_weights(loader_t *L, const arch_desc_t *a, int il)
{
    const slm__hparams_t *hp = &L->m->hp;
    slm__layer_t *l = &L->m->layers[il];
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim;
    int64_t KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    char n[16][64];
    const char *names[] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight",
                           "attn_v.weight", "attn_qkv.weight", "attn_output.weight",
                           "attn_q.bias", "attn_k.bias", "attn_v.bias", "ffn_norm.weight",
                           "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
    for (size_t i = 0; i < SLM__ARRAY_LEN(names); i++)
        snprintf(n[i], sizeof n[i], "blk.%d.%s", il, names[i]);
    int rc;
    if ((rc = weight(L, n[0], E, 0, true, &l->attn_norm)) ||
        (rc = weight(L, n[5], Q, E, true, &l->wo)) ||
        (rc = weight(L, n[9], E, 0, true, &l->ffn_norm)) ||
        (rc = weight(L, n[12], F, E, true, &l->down)))
        return rc;
    if (a->fused) {
        if ((rc = weight(L, n[4], E, Q + 2 * KV, true, &l->wqkv)) ||
            (rc = weight(L, n[11], E, 2 * F, true, &l->gate_up)))
            return rc;
    } else {
        if ((rc = weight(L, n[1], E, Q, true, &l->wq)) ||
            (rc = weight(L, n[2], E, KV, true, &l->wk)) ||
            (rc = weight(L, n[3], E, KV, true, &l->wv)) ||
            (rc = weight(L, n[10], E, F, true, &l->gate)) ||
            (rc = weight(L, n[11], E, F, true, &l->up)))
            return rc;
        /* qwen2 always has them; llama-family files may. */
        bool need_bias = strcmp(a->name, "qwen2") == 0;
        if ((rc = weight(L, n[6], Q, 0, need_bias, &l->bq)) ||
            (rc = weight(L, n[7], KV, 0, need_bias, &l->bk)) ||
            (rc = weight(L, n[8], KV, 0, need_bias, &l->bv)))
            return rc;
    }
    return SLM_OK;
}

/* Weights the device copied (not wrapped in place) are read from the copy from now
 * on: the pages of the file mapping they came from are given back (D60), so a model
 * does not count twice toward resident memory; weight() gives back each one's whole
 * pages as it goes (the peak stays one model), this the pages neighbours share.
 * Best effort: nothing fails here. */
static void release_copied(loader_t *L)
{
    slm__host_pages_drop(L->pages, L->copied, L->n_copied);
}

static int load_weights(loader_t *L, const arch_desc_t *a)
{
    slm_model_t *m = L->m;
    slm_model_tensor_t embd = {.struct_size = sizeof embd};
    if (slm_model_file_find_tensor(L->mf, "token_embd.weight", &embd) < 0)
        return slm__fail(L->err, SLM_E_FORMAT, L->path, -1, "model: tensor token_embd.weight "
                         "is missing");
    int rc = vocab_size(L, &embd);
    if (rc)
        return rc;
    size_t n_tensors = slm_model_file_n_tensors(L->mf);
    m->weights = calloc(n_tensors + 1, sizeof *m->weights);
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    L->copied = calloc(n_tensors + 1, sizeof *L->copied);   /* NULL: only boundary pages stay */
    if (!m->weights || !m->layers)
        return slm__fail(L->err, SLM_E_NOMEM, L->path, -1, "model: out of memory");
    /* weight() never adds more entries than the file has tensors (each name once). */
    const slm__hparams_t *hp = &m->hp;
    if ((rc = weight(L, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->tok_embd)) ||
        (rc = weight(L, "output_norm.weight", hp->n_embd, 0, true, &m->out_norm)) ||
        (rc = weight(L, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output)))
        return rc;
    if (!m->output)
        m->output = m->tok_embd;   /* tied embeddings */
    for (int il = 0; il < hp->n_layer; il++)
        if ((rc = layer_weights(L, a, il)))
            return rc;
    if (slm_model_file_find_tensor(L->mf, "rope_freqs.weight", NULL) >= 0)
        slm_log(SLM_LOG_WARN, "model", "rope_freqs.weight (llama3 rope scaling) is not "
                "applied yet; logits will differ slightly from llama.cpp's");
    release_copied(L);
    return SLM_OK;
}

static void special_tokens(slm_model_t *m)
{
    int64_t v;
    m->bos = m->eos = -1;
    if (slm_model_file_get_int(m->file, "tokenizer.ggml.bos_token_id", &v, NULL) >= 0 &&
        v >= 0 && v < m->hp.n_vocab)
        m->bos = (int32_t)v;
    if (slm_model_file_get_int(m->file, "tokenizer.ggml.eos_token_id", &v, NULL) >= 0 &&
        v >= 0 && v < m->hp.n_vocab)
        m->eos = (int32_t)v;
    const char *kind = NULL;
    bool add;
    slm_model_file_get_string(m->file, "tokenizer.ggml.model", &kind, NULL);
    /* llama.cpp's default: SentencePiece vocabularies start with BOS, others do not. */
    if (slm_model_file_get_bool(m->file, "tokenizer.ggml.add_bos_token", &add, NULL) < 0)
        add = kind && strcmp(kind, "llama") == 0;
    m->add_bos = add && m->bos >= 0;
}

int slm_model_from_file(slm_registry_t *reg, const slm_model_file_t *mf,
                        const slm_model_params_t *p, slm_model_t **out, slm_error_t *err)
{
    if (!reg || !mf || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "model: NULL argument");
    *out = NULL;
    slm_model_params_t o;
    slm_model_params_default(&o);
    if (p)
        memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    slm_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "model: out of memory");
    m->reg = reg;
    m->file = mf;
    loader_t L = {.m = m, .mf = mf, .path = NULL, .err = err};
    const arch_desc_t *a = find_arch(&L);
    int rc = a ? read_hparams(&L, a) : (err ? err->code : SLM_E_FORMAT);
    if (rc == SLM_OK) {
        slm_sched_options_t so = {.struct_size = sizeof so, .device = o.device,
                                  .n_threads = o.n_threads, .device_flags = o.device_flags};
        m->sched = slm_sched_new(reg, &so, err);
        rc = m->sched ? load_weights(&L, a) : (err ? err->code : SLM_E_DEVICE);
        slm__host_pages_close(L.pages);
        free(L.copied);
    }
    if (rc != SLM_OK) {
        slm_model_free(m);
        return rc;
    }
    special_tokens(m);
    slm_log(SLM_LOG_INFO, "model", "%s: %d layers, %d embd, %d heads (%d kv), %d ff, vocab %d, "
            "%llu parameters on %s", m->hp.arch, m->hp.n_layer, m->hp.n_embd, m->hp.n_head,
            m->hp.n_head_kv, m->hp.n_ff, m->hp.n_vocab, (unsigned long long)m->n_params,
            slm_sched_device(m->sched)->id);
    *out = m;
    return SLM_OK;
}

int slm_model_load(slm_registry_t *reg, const char *path, const slm_model_params_t *p,
                   slm_model_t **out, slm_error_t *err)
{
    if (!reg || !path || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "model: NULL argument");
    *out = NULL;
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, NULL, &mf, err);
    if (rc < 0)
        return rc;
    rc = slm_model_from_file(reg, mf, p, out, err);
    if (rc < 0) {
        if (err && err->path[0] == '\0')
            snprintf(err->path, sizeof err->path, "%s", path);
        slm_model_file_free(mf);
        return rc;
    }
    (*out)->owned_file = mf;
    return SLM_OK;
}

void slm_model_free(slm_model_t *m)
{
    if (!m)
        return;
    slm__model_adapters_free(m);
    for (size_t i = 0; i < m->n_weights; i++)
        slm_buffer_free(m->weights[i].buf);
    free(m->weights);
    free(m->layers);
    slm_sched_free(m->sched);
    slm_model_file_free(m->owned_file);
    free(m);
}

const slm_model_file_t *slm_model_container(const slm_model_t *m) { return m ? m->file : NULL; }
slm_sched_t *slm_model_sched(const slm_model_t *m) { return m ? m->sched : NULL; }
const char *slm_model_arch(const slm_model_t *m) { return m ? m->hp.arch : NULL; }
int32_t slm_model_n_vocab(const slm_model_t *m) { return m ? m->hp.n_vocab : 0; }
int32_t slm_model_n_embd(const slm_model_t *m) { return m ? m->hp.n_embd : 0; }
int32_t slm_model_n_layer(const slm_model_t *m) { return m ? m->hp.n_layer : 0; }
int32_t slm_model_n_head(const slm_model_t *m) { return m ? m->hp.n_head : 0; }
int32_t slm_model_n_head_kv(const slm_model_t *m) { return m ? m->hp.n_head_kv : 0; }
int32_t slm_model_n_ff(const slm_model_t *m) { return m ? m->hp.n_ff : 0; }
int32_t slm_model_n_ctx_train(const slm_model_t *m) { return m ? m->hp.n_ctx_train : 0; }
float slm_model_rope_freq_base(const slm_model_t *m) { return m ? m->hp.rope_base : 0.0f; }
uint64_t slm_model_n_params(const slm_model_t *m) { return m ? m->n_params : 0; }
int32_t slm_model_token_bos(const slm_model_t *m) { return m ? m->bos : -1; }
int32_t slm_model_token_eos(const slm_model_t *m) { return m ? m->eos : -1; }
bool slm_model_add_bos(const slm_model_t *m) { return m && m->add_bos; }

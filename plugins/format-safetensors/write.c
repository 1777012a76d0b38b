/* Writing a Hugging Face folder (config.json, model.safetensors, tokenizer files,
 * generation_config.json) or a single .safetensors file into the host's temporary,
 * with the same bytes for the same container. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

/* What a folder written here may hold: the host replaces an existing folder with
 * only these (an earlier output) and refuses anything else. */
static const char *const our_files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json", "generation_config.json",
                                        ST_PEFT_CONFIG, ST_PEFT_WEIGHTS, NULL};

typedef struct writer {
    const char *path;          /* the final name, for messages */
    const slm_format_source_t *src;
    slm_error_t *err;
    const char *arch;
    uint32_t n_head, n_head_kv;
    bool adapter;              /* a LoRA adapter: PEFT names, only lora_b is permuted */
    int64_t n_vocab;           /* token_embd.weight's rows, 0 when it has none */
} writer_t;

/* ---- the source's metadata ---- */

typedef struct value {
    int32_t type, elem_type;
    const void *data;
    const uint64_t *lens;
    uint64_t n;
} value_t;

static bool find(const writer_t *w, const char *key, value_t *v)
{
    uint64_t n = w->src->n_values(w->src->ctx);
    for (uint64_t i = 0; i < n; i++) {
        const char *k;
        if (w->src->get_value(w->src->ctx, i, &k, &v->type, &v->elem_type, &v->data, &v->lens, &v->n) == 0 &&
            k && strcmp(k, key) == 0)
            return true;
    }
    return false;
}

static bool get_int(const writer_t *w, const char *key, int64_t *out)
{
    value_t v;
    if (!find(w, key, &v) || v.type == SLM_VALUE_ARRAY)
        return false;
    switch (v.type) {
    case SLM_VALUE_U8: *out = *(const uint8_t *)v.data; return true;
    case SLM_VALUE_I8: *out = *(const int8_t *)v.data; return true;
    case SLM_VALUE_U16: *out = *(const uint16_t *)v.data; return true;
    case SLM_VALUE_I16: *out = *(const int16_t *)v.data; return true;
    case SLM_VALUE_U32: *out = *(const uint32_t *)v.data; return true;
    case SLM_VALUE_I32: *out = *(const int32_t *)v.data; return true;
    case SLM_VALUE_I64: *out = *(const int64_t *)v.data; return true;
    case SLM_VALUE_U64:
        if (*(const uint64_t *)v.data > INT64_MAX)
            return false;
        *out = (int64_t) * (const uint64_t *)v.data;
        return true;
    default: return false;
    }
}

static bool get_arch_int(const writer_t *w, const char *key, int64_t *out)
{
    char full[96];
    snprintf(full, sizeof full, "%s.%s", w->arch, key);
    return get_int(w, full, out);
}

static bool get_arch_float(const writer_t *w, const char *key, double *out)
{
    char full[96];
    value_t v;
    snprintf(full, sizeof full, "%s.%s", w->arch, key);
    if (!find(w, full, &v))
        return false;
    if (v.type == SLM_VALUE_F32)
        *out = *(const float *)v.data;
    else if (v.type == SLM_VALUE_F64)
        *out = *(const double *)v.data;
    else
        return false;
    return true;
}

static const char *get_str(const writer_t *w, const char *key)
{
    value_t v;
    return find(w, key, &v) && v.type == SLM_VALUE_STRING ? v.data : NULL;
}

/* ---- files ---- */

static int write_all(int fd, const void *p, uint64_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t put = write(fd, b, n > (1u << 30) ? (1u << 30) : (size_t)n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        b += put;
        n -= (uint64_t)put;
    }
    return 0;
}

/* A new file in the temporary folder, or the host's (empty) temporary file. */
static int create(writer_t *w, const char *path, bool existing, int *fd)
{
    *fd = existing ? open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
                   : open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (*fd < 0)
        return st_fail(w->err, SLM_E_IO, w->path, -1, "cannot create %s: %s", path, strerror(errno));
    return SLM_OK;
}

/* The host syncs; a write or close error is still this writer's to report. */
static int finish(writer_t *w, int fd, int failed)
{
    int e = failed ? errno : 0;
    if (close(fd) != 0 && !failed)
        e = errno, failed = 1;
    return failed ? st_fail(w->err, SLM_E_IO, w->path, -1, "cannot write: %s", strerror(e ? e : EIO))
                  : SLM_OK;
}

static int write_json(writer_t *w, const char *dir, const char *name, json_t *j)
{
    char *path = st_join(dir, name);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    int rc = path && text ? SLM_OK : st_fail(w->err, SLM_E_NOMEM, w->path, -1, "cannot serialise %s", name);
    int fd;
    if (!rc && !(rc = create(w, path, false, &fd)))
        rc = finish(w, fd, write_all(fd, text, strlen(text)) || write_all(fd, "\n", 1));
    free(text);
    free(path);
    return rc;
}

/* ---- model.safetensors ---- */

typedef struct out_tensor {
    char name[256];
    const st_dtype_t *dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
    uint32_t unpermute_heads;   /* > 0: rows go back to HF order */
} out_tensor_t;

static int plan_tensor(writer_t *w, uint64_t i, bool map_names, out_tensor_t *t, bool *skip)
{
    const char *name;
    int32_t type, n_dims;
    const int64_t *ne;
    *skip = false;
    if (w->src->get_tensor(w->src->ctx, i, &name, &type, &n_dims, &ne, &t->data, &t->nbytes) != 0)
        return st_fail(w->err, SLM_E_INVALID, w->path, -1, "the source has no tensor %llu",
                       (unsigned long long)i);
    t->dtype = st_dtype_by_type(type);
    char tn[32];
    if (!t->dtype)
        return st_fail(w->err, SLM_E_UNSUPPORTED, w->path, -1,
                       "tensor '%s': %s cannot be stored in safetensors (F32, F16, BF16, F64 and "
                       "integers only; dequantize first)", name,
                       plugin_type_name(st_host, type, tn, sizeof tn));
    if (n_dims < 1 || n_dims > ST_MAX_DIMS)
        return st_fail(w->err, SLM_E_INVALID, w->path, -1, "tensor '%s': %d dimensions", name, n_dims);
    if (map_names && strcmp(name, "rope_freqs.weight") == 0) {
        *skip = true;   /* derived from rope_scaling in config.json */
        return SLM_OK;
    }
    if (map_names && w->adapter) {
        if (!st_peft_name_from_gguf(name, w->arch, t->name, sizeof t->name))
            return st_fail(w->err, SLM_E_UNSUPPORTED, w->path, -1, "tensor '%s' is not the lora_a or "
                           "lora_b of a module PEFT names for %s", name, w->arch ? w->arch : "this model");
    } else if (map_names)
        st_name_to_hf(name, w->arch, t->name, sizeof t->name);
    else
        snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++)
        t->shape[d] = ne[n_dims - 1 - d];
    t->unpermute_heads = 0;
    size_t len = strlen(name);
    bool lora_b = len > 7 && strcmp(name + len - 7, ".lora_b") == 0;
    if (map_names && st_arch_permutes(w->arch) && strncmp(name, "blk.", 4) == 0 && (!w->adapter || lora_b)) {
        if (strstr(name, ".attn_q."))
            t->unpermute_heads = w->n_head;
        else if (strstr(name, ".attn_k."))
            t->unpermute_heads = w->n_head_kv;
    }
    return SLM_OK;
}

/* A lone file (with_kv) also carries every other key, so that it loads again. */
static json_t *metadata_of(writer_t *w, bool with_kv)
{
    json_t *m = json_object();
    uint64_t n = w->src->n_values(w->src->ctx);
    static const char prefix[] = "safetensors.metadata.";
    json_object_set_new(m, "format", json_string("pt"));
    for (uint64_t i = 0; m && i < n; i++) {
        const char *k;
        value_t v;
        if (w->src->get_value(w->src->ctx, i, &k, &v.type, &v.elem_type, &v.data, &v.lens, &v.n) == 0 &&
            k && strncmp(k, prefix, sizeof prefix - 1) == 0 && v.type == SLM_VALUE_STRING)
            json_object_set_new(m, k + sizeof prefix - 1, json_stringn(v.data, (size_t)v.n));
    }
    const char *why = NULL;
    int rc = m && with_kv ? st_kv_encode(w->src, m, &why) : SLM_OK;
    if (rc) {
        st_fail(w->err, rc, w->path, -1, "%s", why);
        json_decref(m);
        return NULL;
    }
    return m;
}

/* Header JSON padded with spaces so that the data starts 8-byte aligned. */
static char *header_of(writer_t *w, const out_tensor_t *ts, size_t n, bool with_kv, uint64_t *len)
{
    json_t *meta = metadata_of(w, with_kv);
    if (!meta)
        return NULL;
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", meta);
    uint64_t at = 0;
    for (size_t i = 0; h && i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < ts[i].n_dims; d++)
            json_array_append_new(shape, json_integer(ts[i].shape[d]));
        json_object_set_new(h, ts[i].name, json_pack("{ss so s[II]}", "dtype", ts[i].dtype->name, "shape",
                                                     shape, "data_offsets", (json_int_t)at,
                                                     (json_int_t)(at + ts[i].nbytes)));
        at += ts[i].nbytes;
    }
    char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!text)
        return NULL;
    size_t n0 = strlen(text), padded = (8 + n0 + 7) / 8 * 8 - 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n0, ' ', padded - n0);
    out[padded] = 0;
    *len = padded;
    return out;
}

static int write_tensor_data(writer_t *w, int fd, const out_tensor_t *t)
{
    if (!t->unpermute_heads)
        return write_all(fd, t->data, t->nbytes) ? SLM_E_IO : SLM_OK;
    uint64_t rows = (uint64_t)t->shape[0], row_bytes = rows ? t->nbytes / rows : 0;
    uint8_t *copy = t->nbytes <= SIZE_MAX ? malloc(t->nbytes ? (size_t)t->nbytes : 1) : NULL;
    if (!copy)
        return st_fail(w->err, SLM_E_NOMEM, w->path, -1, "out of memory for tensor '%s'", t->name);
    if (!rows || !st_permute_rows(t->data, copy, rows, row_bytes, t->unpermute_heads, false)) {
        free(copy);
        return st_fail(w->err, SLM_E_INVALID, w->path, -1,
                       "tensor '%s': %llu rows cannot be split into %u heads of rotary pairs", t->name,
                       (unsigned long long)rows, t->unpermute_heads);
    }
    int rc = write_all(fd, copy, t->nbytes) ? SLM_E_IO : SLM_OK;
    free(copy);
    return rc;
}

/* map_names: the folder's model.safetensors (HF names, created in the temporary
 * folder); otherwise a lone file (GGUF names and metadata, the host's temporary). */
static int write_safetensors(writer_t *w, const char *path, bool map_names)
{
    uint64_t n = w->src->n_tensors(w->src->ctx), kept = 0;
    out_tensor_t *ts = calloc(n ? (size_t)n : 1, sizeof *ts);
    if (!ts)
        return st_fail(w->err, SLM_E_NOMEM, w->path, -1, "out of memory for %llu tensors", (unsigned long long)n);
    int rc = SLM_OK;
    json_t *names = json_object();
    for (uint64_t i = 0; i < n && !rc; i++) {
        bool skip;
        rc = plan_tensor(w, i, map_names, &ts[kept], &skip);
        if (!rc && !skip && json_object_get(names, ts[kept].name))
            rc = st_fail(w->err, SLM_E_INVALID, w->path, -1, "two tensors would be named '%s'", ts[kept].name);
        if (!rc && !skip) {
            json_object_set_new(names, ts[kept].name, json_true());
            kept++;
        }
    }
    json_decref(names);
    uint64_t hlen = 0;
    /* An adapter folder also carries the container's keys (arch, head counts), so
     * that it reads again without its base; PEFT ignores them. */
    char *header = rc ? NULL : header_of(w, ts, (size_t)kept, !map_names || w->adapter, &hlen);
    if (!rc && !header)
        rc = w->err && w->err->code ? w->err->code
                                    : st_fail(w->err, SLM_E_NOMEM, w->path, -1,
                                              "cannot serialise the safetensors header");
    int fd;
    if (!rc && !(rc = create(w, path, !map_names, &fd))) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)(hlen >> (8 * i));
        int failed = write_all(fd, len8, 8) || write_all(fd, header, hlen);
        for (uint64_t i = 0; i < kept && !failed; i++)
            if ((rc = write_tensor_data(w, fd, &ts[i])) != SLM_OK)
                failed = 1;
        int frc = finish(w, fd, failed && rc != SLM_E_NOMEM && rc != SLM_E_INVALID);
        rc = rc ? rc : frc;
    }
    free(header);
    free(ts);
    return rc;
}

/* ---- config.json ---- */

static const char *hf_class(const char *arch)
{
    if (strcmp(arch, "llama") == 0)
        return "LlamaForCausalLM";
    if (strcmp(arch, "qwen2") == 0)
        return "Qwen2ForCausalLM";
    if (strcmp(arch, "phi3") == 0)
        return "Phi3ForCausalLM";
    return NULL;
}

static void put_int(json_t *c, const char *field, const writer_t *w, const char *key)
{
    int64_t v;
    if (get_arch_int(w, key, &v))
        json_object_set_new(c, field, json_integer(v));
}

static void put_float(json_t *c, const char *field, const writer_t *w, const char *key)
{
    double v;
    if (get_arch_float(w, key, &v))
        json_object_set_new(c, field, json_real(v));
}

static json_t *rope_scaling_json(const writer_t *w)
{
    char key[96];
    snprintf(key, sizeof key, "%s.rope.scaling.type", w->arch);
    const char *type = get_str(w, key);
    if (!type || strcmp(type, "none") == 0)
        return NULL;
    json_t *rs = json_pack("{ss}", "rope_type", type);
    put_float(rs, "factor", w, "rope.scaling.factor");
    put_float(rs, "low_freq_factor", w, "rope.scaling.low_freq_factor");
    put_float(rs, "high_freq_factor", w, "rope.scaling.high_freq_factor");
    put_int(rs, "original_max_position_embeddings", w, "rope.scaling.original_context_length");
    return rs;
}

static json_t *config_json(const writer_t *w, bool tied, const char *dtype)
{
    json_t *c = json_pack("{s[s] ss}", "architectures", hf_class(w->arch), "model_type",
                          strcmp(w->arch, "llama") == 0 ? "llama" : w->arch);
    if (!c)
        return NULL;
    const char *name = get_str(w, "general.name");
    if (name)
        json_object_set_new(c, "_name_or_path", json_string(name));
    int64_t v, hidden = 0, heads = 0, rope_dim = 0;
    if (get_int(w, "tokenizer.ggml.bos_token_id", &v) && v >= 0 && v < UINT32_MAX)
        json_object_set_new(c, "bos_token_id", json_integer(v));
    if (get_int(w, "tokenizer.ggml.eos_token_id", &v) && v >= 0 && v < UINT32_MAX)
        json_object_set_new(c, "eos_token_id", json_integer(v));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    put_int(c, "hidden_size", w, "embedding_length");
    put_int(c, "intermediate_size", w, "feed_forward_length");
    put_int(c, "max_position_embeddings", w, "context_length");
    put_int(c, "num_attention_heads", w, "attention.head_count");
    put_int(c, "num_hidden_layers", w, "block_count");
    put_int(c, "num_key_value_heads", w, "attention.head_count_kv");
    get_arch_int(w, "embedding_length", &hidden);
    get_arch_int(w, "attention.head_count", &heads);
    if (get_arch_int(w, "rope.dimension_count", &rope_dim) && (!heads || rope_dim != hidden / heads))
        json_object_set_new(c, "head_dim", json_integer(rope_dim));
    put_float(c, "rms_norm_eps", w, "attention.layer_norm_rms_epsilon");
    json_t *rs = rope_scaling_json(w);
    if (rs)
        json_object_set_new(c, "rope_scaling", rs);
    put_float(c, "rope_theta", w, "rope.freq_base");
    json_object_set_new(c, "tie_word_embeddings", json_boolean(tied));
    if (dtype)
        json_object_set_new(c, "torch_dtype", json_string(dtype));
    /* GGUFs often leave it to the embedding's rows; transformers needs it said. */
    if (get_arch_int(w, "vocab_size", &v))
        json_object_set_new(c, "vocab_size", json_integer(v));
    else if (w->n_vocab > 0)
        json_object_set_new(c, "vocab_size", json_integer(w->n_vocab));
    return c;
}

/* ---- tokenizer keys ---- */

static int64_t id_or(const writer_t *w, const char *key)
{
    int64_t v;
    return get_int(w, key, &v) && v >= 0 && v < UINT32_MAX ? v : -1;
}

static int flag_or(const writer_t *w, const char *key)
{
    value_t v;
    return find(w, key, &v) && v.type == SLM_VALUE_BOOL ? *(const uint8_t *)v.data != 0 : -1;
}

/* false when the source holds no tokenizer; an error when it holds a broken one. */
static int tok_source(const writer_t *w, st_tok_src_t *t, bool *have)
{
    value_t tokens, v;
    memset(t, 0, sizeof *t);
    *have = false;
    t->model = get_str(w, "tokenizer.ggml.model");
    if (!t->model || !find(w, "tokenizer.ggml.tokens", &tokens))
        return SLM_OK;
    if (tokens.type != SLM_VALUE_ARRAY || tokens.elem_type != SLM_VALUE_STRING || !tokens.lens)
        return st_fail(w->err, SLM_E_INVALID, w->path, -1, "tokenizer.ggml.tokens is not a string array");
    t->tokens = tokens.data;
    t->token_lens = tokens.lens;
    t->n_tokens = tokens.n;
    if (find(w, "tokenizer.ggml.token_type", &v) && v.elem_type == SLM_VALUE_I32 && v.n == t->n_tokens)
        t->types = v.data;
    if (find(w, "tokenizer.ggml.scores", &v) && v.elem_type == SLM_VALUE_F32 && v.n == t->n_tokens)
        t->scores = v.data;
    if (find(w, "tokenizer.ggml.merges", &v) && v.elem_type == SLM_VALUE_STRING && v.lens) {
        t->merges = v.data;
        t->merge_lens = v.lens;
        t->n_merges = v.n;
    }
    t->pre = get_str(w, "tokenizer.ggml.pre");
    t->bos = id_or(w, "tokenizer.ggml.bos_token_id");
    t->eos = id_or(w, "tokenizer.ggml.eos_token_id");
    t->unk = id_or(w, "tokenizer.ggml.unknown_token_id");
    t->pad = id_or(w, "tokenizer.ggml.padding_token_id");
    t->add_bos = flag_or(w, "tokenizer.ggml.add_bos_token");
    t->add_eos = flag_or(w, "tokenizer.ggml.add_eos_token");
    t->chat_template = get_str(w, "tokenizer.chat_template");
    t->ctx = w->arch && get_arch_int(w, "context_length", &t->ctx) ? t->ctx : -1;
    *have = true;
    return SLM_OK;
}

static int write_tokenizer(writer_t *w, const char *dir, bool *have)
{
    st_tok_src_t t;
    int rc = tok_source(w, &t, have);
    if (rc || !*have)
        return rc;
    json_t *tj;
    const char *why;
    if ((rc = st_tokenizer_json(&t, &tj, &why)) != SLM_OK)
        return st_fail(w->err, rc, w->path, -1, "%s", why);
    rc = write_json(w, dir, "tokenizer.json", tj);
    json_decref(tj);
    json_t *cfg = rc ? NULL : st_tokenizer_config_json(&t);
    if (!rc)
        rc = write_json(w, dir, "tokenizer_config.json", cfg);
    json_decref(cfg);
    return rc;
}

static int write_generation_config(writer_t *w, const char *dir)
{
    json_t *g = json_pack("{sb}", "_from_model_config", 1);
    int64_t bos = id_or(w, "tokenizer.ggml.bos_token_id"), eos = id_or(w, "tokenizer.ggml.eos_token_id");
    if (g && bos >= 0)
        json_object_set_new(g, "bos_token_id", json_integer(bos));
    if (g && eos >= 0)
        json_object_set_new(g, "eos_token_id", json_integer(eos));
    int rc = write_json(w, dir, "generation_config.json", g);
    json_decref(g);
    return rc;
}

/* ---- the folder ---- */

/* The embedding's type as config.json's torch_dtype; w->n_vocab gets its rows. */
static const char *dtype_name_of(writer_t *w)
{
    int32_t type, n_dims;
    const char *name;
    const int64_t *ne;
    const void *data;
    uint64_t nbytes;
    uint64_t n = w->src->n_tensors(w->src->ctx);
    for (uint64_t i = 0; i < n; i++)
        if (w->src->get_tensor(w->src->ctx, i, &name, &type, &n_dims, &ne, &data, &nbytes) == 0 &&
            strcmp(name, "token_embd.weight") == 0) {
            w->n_vocab = n_dims >= 2 ? ne[1] : 0;
            return type == SLM_TYPE_F16 ? "float16" : type == SLM_TYPE_BF16 ? "bfloat16" : "float32";
        }
    return NULL;
}

static bool has_tensor(const writer_t *w, const char *want)
{
    int32_t type, n_dims;
    const char *name;
    const int64_t *ne;
    const void *data;
    uint64_t nbytes;
    uint64_t n = w->src->n_tensors(w->src->ctx);
    for (uint64_t i = 0; i < n; i++)
        if (w->src->get_tensor(w->src->ctx, i, &name, &type, &n_dims, &ne, &data, &nbytes) == 0 &&
            strcmp(name, want) == 0)
            return true;
    return false;
}

/* ---- a PEFT adapter folder ---- */

/* Every tensor's rank (lora_a rows) must be one r; the modules PEFT targets. */
static int adapter_shape(writer_t *w, st_peft_out_t *o)
{
    uint64_t n = w->src->n_tensors(w->src->ctx);
    for (uint64_t i = 0; i < n; i++) {
        const char *name;
        int32_t type, n_dims;
        const int64_t *ne;
        const void *data;
        uint64_t nbytes;
        char module[64];
        if (w->src->get_tensor(w->src->ctx, i, &name, &type, &n_dims, &ne, &data, &nbytes) != 0)
            return st_fail(w->err, SLM_E_INVALID, w->path, -1, "the source has no tensor %llu",
                           (unsigned long long)i);
        size_t len = strlen(name);
        bool is_a = len > 7 && strcmp(name + len - 7, ".lora_a") == 0;
        int64_t rank = n_dims != 2 ? 0 : is_a ? ne[1] : ne[0];
        if (rank <= 0 || rank > UINT32_MAX || (o->rank && rank != o->rank))
            return st_fail(w->err, SLM_E_UNSUPPORTED, w->path, -1, "tensor '%s': PEFT needs one rank "
                           "for every tensor (this one has %lld, others %u)", name, (long long)rank, o->rank);
        o->rank = (uint32_t)rank;
        if (!st_peft_module_of(name, w->arch, module, sizeof module))
            return st_fail(w->err, SLM_E_UNSUPPORTED, w->path, -1, "tensor '%s' is not the lora_a or "
                           "lora_b of a module PEFT names", name);
        bool seen = false;
        for (size_t k = 0; k < json_array_size(o->modules) && !seen; k++)
            seen = strcmp(json_string_value(json_array_get(o->modules, k)), module) == 0;
        if (!seen)
            json_array_append_new(o->modules, json_string(module));
    }
    return n ? SLM_OK : st_fail(w->err, SLM_E_INVALID, w->path, -1, "the adapter has no tensors");
}

static int by_string(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static void sort_strings(json_t *a)
{
    size_t n = json_array_size(a);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(a, i));
    qsort(v, n, sizeof *v, by_string);
    json_array_clear(a);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, v[i]);
    free(v);
}

static double float_or(const writer_t *w, const char *key, double fallback)
{
    value_t v;
    if (!find(w, key, &v) || v.type == SLM_VALUE_ARRAY)
        return fallback;
    return v.type == SLM_VALUE_F32 ? *(const float *)v.data
           : v.type == SLM_VALUE_F64 ? *(const double *)v.data : fallback;
}

/* adapter_model.safetensors with PEFT's names and rows, and adapter_config.json. */
static int fill_adapter(writer_t *w, const char *dir)
{
    const char *type = get_str(w, "adapter.type");
    if (!type || strcmp(type, "lora") != 0)
        return st_fail(w->err, SLM_E_UNSUPPORTED, w->path, -1, "adapter.type '%s' has no PEFT form here "
                       "(lora only)", type ? type : "(none)");
    w->adapter = true;
    int64_t h = 0, kv = 0;
    if (w->arch && get_arch_int(w, "attention.head_count", &h) && !get_arch_int(w, "attention.head_count_kv", &kv))
        kv = h;
    w->n_head = h > 0 && h <= UINT32_MAX ? (uint32_t)h : 0;
    w->n_head_kv = kv > 0 && kv <= UINT32_MAX ? (uint32_t)kv : 0;
    if (st_arch_permutes(w->arch) && (!w->n_head || !w->n_head_kv))
        return st_fail(w->err, SLM_E_INVALID, w->path, -1, "the adapter has no %s.attention.head_count, "
                       "which PEFT's q/k row order needs: read it with its base model", w->arch);
    value_t v;
    bool rslora = find(w, "adapter.lora.rslora", &v) && v.type == SLM_VALUE_BOOL && *(const uint8_t *)v.data;
    st_peft_out_t o = {.alpha = float_or(w, "adapter.lora.alpha", 0), .rslora = rslora,
                       .dropout = float_or(w, "adapter.lora.dropout", 0),
                       .base_model = get_str(w, "general.base_model.0.name"), .modules = json_array()};
    int rc = o.modules ? adapter_shape(w, &o) : st_fail(w->err, SLM_E_NOMEM, w->path, -1, "out of memory");
    sort_strings(o.modules);
    char *p = rc ? NULL : st_join(dir, ST_PEFT_WEIGHTS);
    if (!rc)
        rc = p ? write_safetensors(w, p, true) : st_fail(w->err, SLM_E_NOMEM, w->path, -1, "out of memory");
    free(p);
    json_t *cfg = rc ? NULL : st_peft_config_json(&o);
    if (!rc)
        rc = write_json(w, dir, ST_PEFT_CONFIG, cfg);
    json_decref(cfg);
    json_decref(o.modules);
    return rc;
}

static int fill_folder(writer_t *w, const char *dir)
{
    bool have_tok = false, tensors = w->src->n_tensors(w->src->ctx) > 0;
    w->arch = get_str(w, "general.architecture");
    const char *gtype = get_str(w, "general.type");
    if (gtype && strcmp(gtype, "adapter") == 0)
        return fill_adapter(w, dir);
    if (tensors && (!w->arch || !hf_class(w->arch)))
        return st_fail(w->err, SLM_E_UNSUPPORTED, w->path, -1,
                       "architecture '%s' has no Hugging Face form here (llama, qwen2, phi3)",
                       w->arch ? w->arch : "(none)");
    int rc = SLM_OK;
    if (tensors) {
        int64_t h = 0, kv = 0;
        get_arch_int(w, "attention.head_count", &h);
        if (!get_arch_int(w, "attention.head_count_kv", &kv))
            kv = h;
        if (h <= 0 || h > UINT32_MAX || kv <= 0 || kv > UINT32_MAX)
            return st_fail(w->err, SLM_E_INVALID, w->path, -1, "%s.attention.head_count is missing or bad",
                           w->arch);
        w->n_head = (uint32_t)h;
        w->n_head_kv = (uint32_t)kv;
        const char *dtype = dtype_name_of(w);   /* also notes the vocabulary size */
        json_t *cfg = config_json(w, !has_tensor(w, "output.weight"), dtype);
        rc = write_json(w, dir, "config.json", cfg);
        json_decref(cfg);
        char *p = rc ? NULL : st_join(dir, "model.safetensors");
        if (!rc)
            rc = p ? write_safetensors(w, p, true) : SLM_E_NOMEM;
        free(p);
    }
    if (!rc)
        rc = write_tokenizer(w, dir, &have_tok);
    if (!rc && tensors)
        rc = write_generation_config(w, dir);
    if (!rc && !tensors && !have_tok)
        rc = st_fail(w->err, SLM_E_INVALID, w->path, -1, "nothing to write: no tensors and no tokenizer");
    return rc;
}

int st_layout(const char *final_path, const char *const **names)
{
    size_t n = strlen(final_path);
    while (n > 1 && final_path[n - 1] == '/')
        n--;
    if (n > 12 && strncasecmp(final_path + n - 12, ".safetensors", 12) == 0)
        return SLM_FORMAT_LAYOUT_FILE;
    if (names)
        *names = our_files;
    return SLM_FORMAT_LAYOUT_FOLDER;
}

int st_write(const char *temp, const char *path, const slm_format_source_t *source, slm_error_t *err)
{
    if (!temp || !path || !source || source->struct_size < offsetof(slm_format_source_t, reserved))
        return st_fail(err, SLM_E_INVALID, path, -1, "no path or an incomplete source");
    writer_t w = {.path = path, .src = source, .err = err};
    if (st_layout(path, NULL) == SLM_FORMAT_LAYOUT_FILE)
        return write_safetensors(&w, temp, false);
    return fill_folder(&w, temp);
}

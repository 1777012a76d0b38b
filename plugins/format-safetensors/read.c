/* Reading a Hugging Face folder (config.json, model.safetensors or its shards,
 * tokenizer files) or a single .safetensors file into the host's container. */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "st.h"

/* Everything the container's tensors borrow: the mapped shards and the
 * permuted or realigned copies. Released by the host with the container. */
typedef struct keep {
    st_file_t **files;
    size_t n_files;
    void **bufs;
    size_t n_bufs;
} keep_t;

static void keep_release(void *p)
{
    keep_t *k = p;
    if (!k)
        return;
    for (size_t i = 0; i < k->n_files; i++)
        st_file_close(k->files[i]);
    for (size_t i = 0; i < k->n_bufs; i++)
        free(k->bufs[i]);
    free(k->files);
    free(k->bufs);
    free(k);
}

static int keep_file(keep_t *k, st_file_t *f)
{
    st_file_t **p = realloc(k->files, (k->n_files + 1) * sizeof *p);
    if (!p)
        return SLM_E_NOMEM;
    k->files = p;
    k->files[k->n_files++] = f;
    return SLM_OK;
}

static void *keep_alloc(keep_t *k, uint64_t n)
{
    void **p = realloc(k->bufs, (k->n_bufs + 1) * sizeof *p);
    if (!p)
        return NULL;
    k->bufs = p;
    if (n > SIZE_MAX || !(p[k->n_bufs] = malloc(n ? (size_t)n : 1)))
        return NULL;
    return k->bufs[k->n_bufs++];
}

/* What reading needs from config.json. */
typedef struct model_info {
    char arch[32];
    uint32_t n_head, n_head_kv;
} model_info_t;

typedef struct reader {
    const char *path;
    const slm_format_sink_t *sink;
    slm_error_t *err;
    keep_t *keep;
    st_meta_t *meta;
    model_info_t info;
    bool map_names;            /* folders map HF names; a lone file keeps its own */
    bool adapter;              /* a PEFT folder: LoRA names, only lora_b is permuted */
    uint32_t rank;             /* its adapter_config.json's r */
    json_t *seen;              /* tensor names reported so far (GGUF spelling) */
} reader_t;

/* ---- config.json -> GGUF hyper-parameters ---- */

static const char *arch_of(json_t *cfg)
{
    static const struct { const char *hf, *arch; } archs[] = {
        {"LlamaForCausalLM", "llama"}, {"MistralForCausalLM", "llama"},
        {"Qwen2ForCausalLM", "qwen2"}, {"Phi3ForCausalLM", "phi3"},
        {"llama", "llama"}, {"mistral", "llama"}, {"qwen2", "qwen2"}, {"phi3", "phi3"}};
    const char *names[2] = {json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                            json_string_value(json_object_get(cfg, "model_type"))};
    for (size_t n = 0; n < 2; n++)
        for (size_t i = 0; names[n] && i < sizeof archs / sizeof archs[0]; i++)
            if (strcmp(names[n], archs[i].hf) == 0)
                return archs[i].arch;
    return NULL;
}

static int cfg_u32(reader_t *r, json_t *cfg, const char *field, const char *key, uint32_t *out)
{
    json_t *v = json_object_get(cfg, field);
    if (!v || json_is_null(v))
        return SLM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return st_fail(r->err, SLM_E_FORMAT, r->path, -1, "config.json: %s is not an integer in [0, 2^32)",
                       field);
    char full[96];
    snprintf(full, sizeof full, "%s.%s", r->info.arch, key);
    if (out)
        *out = (uint32_t)json_integer_value(v);
    return st_meta_u32(r->meta, full, (uint32_t)json_integer_value(v));
}

static int cfg_f32(reader_t *r, json_t *cfg, const char *field, const char *key)
{
    json_t *v = json_object_get(cfg, field);
    if (!v || json_is_null(v))
        return SLM_OK;
    if (!json_is_number(v))
        return st_fail(r->err, SLM_E_FORMAT, r->path, -1, "config.json: %s is not a number", field);
    char full[96];
    snprintf(full, sizeof full, "%s.%s", r->info.arch, key);
    return st_meta_f32(r->meta, full, (float)json_number_value(v));
}

/* rope_scaling: linear/dynamic/yarn keep llama.cpp's keys; "llama3" also keeps
 * its factors so that a writer can restore them. */
static int rope_scaling(reader_t *r, json_t *cfg)
{
    json_t *rs = json_object_get(cfg, "rope_scaling");
    if (!json_is_object(rs))
        return SLM_OK;
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    if (!type)
        type = json_string_value(json_object_get(rs, "type"));
    if (!type)
        return st_fail(r->err, SLM_E_FORMAT, r->path, -1, "config.json: rope_scaling has no type");
    char key[96];
    snprintf(key, sizeof key, "%s.rope.scaling.type", r->info.arch);
    int rc = st_meta_str(r->meta, key, type, strlen(type));
    rc = rc ? rc : cfg_f32(r, rs, "factor", "rope.scaling.factor");
    rc = rc ? rc : cfg_u32(r, rs, "original_max_position_embeddings",
                           "rope.scaling.original_context_length", NULL);
    rc = rc ? rc : cfg_f32(r, rs, "low_freq_factor", "rope.scaling.low_freq_factor");
    rc = rc ? rc : cfg_f32(r, rs, "high_freq_factor", "rope.scaling.high_freq_factor");
    if (!rc && (json_object_get(rs, "long_factor") || json_object_get(rs, "short_factor")))
        st_log(SLM_LOG_WARN, "%s: rope_scaling long/short factors are not carried over", r->path);
    return rc;
}

static int read_config(reader_t *r, const char *dir)
{
    char *p = st_join(dir, "config.json");
    json_t *cfg = NULL;
    int rc = p ? st_json_load(p, &cfg, r->err) : SLM_E_NOMEM;
    free(p);
    if (rc)
        return rc;
    const char *arch = arch_of(cfg);
    if (!arch) {
        const char *a = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
        rc = st_fail(r->err, SLM_E_UNSUPPORTED, r->path, -1,
                     "config.json: architecture '%s' is not supported (Llama, Mistral, Qwen2, Phi-3)",
                     a ? a : "(none)");
        json_decref(cfg);
        return rc;
    }
    snprintf(r->info.arch, sizeof r->info.arch, "%s", arch);
    rc = st_meta_str(r->meta, "general.architecture", arch, strlen(arch));
    const char *name = json_string_value(json_object_get(cfg, "_name_or_path"));
    if (!rc && name && *name)
        rc = st_meta_str(r->meta, "general.name", name, strlen(name));
    uint32_t hidden = 0, head_dim = 0;
    rc = rc ? rc : cfg_u32(r, cfg, "max_position_embeddings", "context_length", NULL);
    rc = rc ? rc : cfg_u32(r, cfg, "hidden_size", "embedding_length", &hidden);
    rc = rc ? rc : cfg_u32(r, cfg, "num_hidden_layers", "block_count", NULL);
    rc = rc ? rc : cfg_u32(r, cfg, "intermediate_size", "feed_forward_length", NULL);
    rc = rc ? rc : cfg_u32(r, cfg, "num_attention_heads", "attention.head_count", &r->info.n_head);
    r->info.n_head_kv = r->info.n_head;
    if (!rc && !json_object_get(cfg, "num_key_value_heads"))
        rc = cfg_u32(r, cfg, "num_attention_heads", "attention.head_count_kv", NULL);
    rc = rc ? rc : cfg_u32(r, cfg, "num_key_value_heads", "attention.head_count_kv", &r->info.n_head_kv);
    rc = rc ? rc : cfg_f32(r, cfg, "rope_theta", "rope.freq_base");
    rc = rc ? rc : cfg_f32(r, cfg, "rms_norm_eps", "attention.layer_norm_rms_epsilon");
    rc = rc ? rc : cfg_u32(r, cfg, "vocab_size", "vocab_size", NULL);
    rc = rc ? rc : cfg_u32(r, cfg, "head_dim", "rope.dimension_count", &head_dim);
    if (!rc && !head_dim && r->info.n_head && hidden % r->info.n_head == 0) {
        char key[96];
        snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
        rc = st_meta_u32(r->meta, key, hidden / r->info.n_head);
    }
    rc = rc ? rc : rope_scaling(r, cfg);
    json_decref(cfg);
    if (rc == SLM_E_NOMEM)
        st_fail(r->err, rc, r->path, -1, "out of memory");
    return rc;
}

/* ---- tensors ---- */

/* Bytes the container can use in place: in the mapping when aligned for the
 * element size, a copy otherwise; q/k of permuting architectures are reordered. */
static int tensor_bytes(reader_t *r, const st_file_t *f, const st_entry_t *e, const char *gname,
                        const void **data)
{
    const uint8_t *src = f->data + e->begin;
    uint64_t nbytes = e->end - e->begin;
    bool q = strncmp(gname, "blk.", 4) == 0 && (strstr(gname, ".attn_q.") != NULL);
    bool k = strncmp(gname, "blk.", 4) == 0 && (strstr(gname, ".attn_k.") != NULL);
    size_t glen = strlen(gname);
    bool lora_b = glen > 7 && strcmp(gname + glen - 7, ".lora_b") == 0;
    /* An adapter's A multiplies the input: only B's rows are the projection's. */
    bool permute = r->map_names && st_arch_permutes(r->info.arch) && (q || k) && (!r->adapter || lora_b);
    if (!permute && (uintptr_t)src % e->dtype->size == 0) {
        *data = src;
        return SLM_OK;
    }
    uint8_t *copy = keep_alloc(r->keep, nbytes);
    if (!copy)
        return st_fail(r->err, SLM_E_NOMEM, f->path, -1, "out of memory copying tensor '%s'", e->name);
    if (!permute) {
        memcpy(copy, src, nbytes);
        *data = copy;
        return SLM_OK;
    }
    uint64_t rows = e->n_dims ? (uint64_t)e->shape[0] : 1;
    uint64_t row_bytes = rows ? nbytes / rows : 0;
    uint32_t heads = q ? r->info.n_head : r->info.n_head_kv;
    if (!heads)
        return st_fail(r->err, SLM_E_FORMAT, f->path, -1, "tensor '%s': the %s head count is unknown, "
                       "so its rows cannot be put in llama.cpp's order", e->name, r->info.arch);
    if (!rows || !st_permute_rows(src, copy, rows, row_bytes, heads, true))
        return st_fail(r->err, SLM_E_FORMAT, f->path, (int64_t)(f->data_at + e->begin),
                       "tensor '%s': %llu rows cannot be split into %u heads of rotary pairs",
                       e->name, (unsigned long long)rows, heads);
    *data = copy;
    return SLM_OK;
}

/* A PEFT tensor's canonical name, and its rank checked against adapter_config.json. */
static int adapter_name(reader_t *r, const st_file_t *f, const st_entry_t *e, char *gname, size_t cap)
{
    if (!st_peft_name_to_gguf(e->name, gname, cap))
        return st_fail(r->err, SLM_E_UNSUPPORTED, f->path, -1,
                       "tensor '%s' is not the lora_A or lora_B weight of a module slmops maps "
                       "(embedding adapters, DoRA magnitudes and saved modules are not supported)",
                       e->name);
    bool is_a = strcmp(gname + strlen(gname) - 7, ".lora_a") == 0;
    if (e->n_dims != 2)
        return st_fail(r->err, SLM_E_FORMAT, f->path, -1, "tensor '%s' has %d dimensions, not 2", e->name,
                       e->n_dims);
    if (e->shape[is_a ? 0 : 1] != (int64_t)r->rank)
        return st_fail(r->err, SLM_E_FORMAT, f->path, -1,
                       "tensor '%s' has shape [%lld, %lld], whose rank is not %u (the r of %s)", e->name,
                       (long long)e->shape[0], (long long)e->shape[1], r->rank, ST_PEFT_CONFIG);
    return SLM_OK;
}

static int report_tensor(reader_t *r, const st_file_t *f, const st_entry_t *e)
{
    if (e->dtype->type < 0)
        return st_fail(r->err, SLM_E_UNSUPPORTED, f->path, (int64_t)(f->data_at + e->begin),
                       "tensor '%s' has dtype %s, which slmops has no type for "
                       "(supported: F32 F16 BF16 F64 I8 I16 I32 I64)", e->name, e->dtype->name);
    if (r->map_names && strstr(e->name, "rotary_emb.inv_freq"))
        return SLM_OK;   /* recomputed from the hyper-parameters, as llama.cpp does */
    char gname[256];
    if (r->adapter) {
        int rc = adapter_name(r, f, e, gname, sizeof gname);
        if (rc)
            return rc;
    } else if (r->map_names)
        st_name_to_gguf(e->name, gname, sizeof gname);
    else
        snprintf(gname, sizeof gname, "%s", e->name);
    if (json_object_get(r->seen, gname))
        return st_fail(r->err, SLM_E_FORMAT, f->path, -1, "tensor '%s' appears more than once%s", e->name,
                       r->map_names ? " (across shards or names mapping to one GGUF name)" : "");
    if (json_object_set_new(r->seen, gname, json_true()))
        return st_fail(r->err, SLM_E_NOMEM, f->path, -1, "out of memory");
    int64_t ne[ST_MAX_DIMS] = {1, 1, 1, 1};
    int n_dims = e->n_dims ? e->n_dims : 1;
    for (int i = 0; i < e->n_dims; i++)
        ne[i] = e->shape[e->n_dims - 1 - i];   /* row-major [out, in] -> ne[0] = in */
    const void *data = NULL;
    int rc = tensor_bytes(r, f, e, gname, &data);
    if (rc)
        return rc;
    if (r->sink->add_tensor(r->sink->ctx, gname, e->dtype->type, n_dims, ne, data, e->end - e->begin))
        return st_fail(r->err, SLM_E_FORMAT, f->path, -1, "the container refused tensor '%s'", e->name);
    return SLM_OK;
}

static int read_shard(reader_t *r, const char *path, st_file_t **out)
{
    st_file_t *f;
    int rc = st_file_open(path, &f, r->err);
    if (rc)
        return rc;
    if (keep_file(r->keep, f)) {
        st_file_close(f);
        return st_fail(r->err, SLM_E_NOMEM, path, -1, "out of memory");
    }
    for (size_t i = 0; i < f->n_entries && !rc; i++)
        rc = report_tensor(r, f, &f->entries[i]);
    if (out)
        *out = f;
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard name from index.json: a plain file name inside the folder. */
static bool safe_shard_name(const char *s)
{
    return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int read_index(reader_t *r, const char *dir)
{
    char *ip = st_join(dir, "model.safetensors.index.json");
    json_t *idx = NULL, *shards = json_object();
    int rc = ip && shards ? st_json_load(ip, &idx, r->err) : SLM_E_NOMEM;
    json_t *map = json_object_get(idx, "weight_map");
    if (!rc && !json_is_object(map))
        rc = st_fail(r->err, SLM_E_FORMAT, ip, -1, "no \"weight_map\" object");
    const char *name;
    json_t *v;
    if (!rc)
        json_object_foreach(map, name, v) {
            const char *shard = json_string_value(v);
            if (!shard || !safe_shard_name(shard)) {
                rc = st_fail(r->err, SLM_E_FORMAT, ip, -1, "weight_map: '%s' names no plain shard file", name);
                break;
            }
            if (!st_exists(dir, shard)) {
                rc = st_fail(r->err, SLM_E_NOT_FOUND, ip, -1,
                             "weight_map: tensor '%s' is in shard '%s', which is missing", name, shard);
                break;
            }
            json_object_set_new(shards, shard, json_true());
        }
    /* Shards in name order: the file order of the tensors does not depend on hashing. */
    size_t n = rc ? 0 : json_object_size(shards), k = 0;
    const char **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted && !rc)
        rc = st_fail(r->err, SLM_E_NOMEM, dir, -1, "out of memory");
    if (!rc) {
        json_object_foreach(shards, name, v) sorted[k++] = name;
        qsort(sorted, n, sizeof *sorted, by_name);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        char *sp = st_join(dir, sorted[i]);
        rc = sp ? read_shard(r, sp, NULL) : SLM_E_NOMEM;
        free(sp);
    }
    if (!rc)
        json_object_foreach(map, name, v) {
            char gname[256];
            st_name_to_gguf(name, gname, sizeof gname);
            if (!json_object_get(r->seen, gname) && !strstr(name, "rotary_emb.inv_freq")) {
                rc = st_fail(r->err, SLM_E_FORMAT, ip, -1, "weight_map: tensor '%s' is not in shard '%s'",
                             name, json_string_value(v));
                break;
            }
        }
    free(sorted);
    json_decref(idx);
    json_decref(shards);
    free(ip);
    return rc;
}

/* __metadata__ strings survive as safetensors.metadata.KEY; a file slmops wrote
 * also gives back the container's own keys (kv.c). */
static int keep_metadata(reader_t *r, const st_file_t *f)
{
    bool kv = st_kv_present(f->metadata);
    if (kv) {
        int rc = st_kv_decode(f->path, f->metadata, r->meta, r->err);
        if (rc)
            return rc;
    }
    const char *k;
    json_t *v;
    json_object_foreach(f->metadata, k, v) {
        if (kv && (strcmp(k, ST_KV_MARK) == 0 || strncmp(k, ST_KV_PREFIX, sizeof ST_KV_PREFIX - 1) == 0))
            continue;
        char key[256];
        snprintf(key, sizeof key, "safetensors.metadata.%s", k);
        if (st_meta_str(r->meta, key, json_string_value(v), json_string_length(v)))
            return st_fail(r->err, SLM_E_NOMEM, f->path, -1, "out of memory");
    }
    return SLM_OK;
}

/* ---- PEFT adapter folders ---- */

/* An integer the host knows about the base model. */
static bool hint_int(const reader_t *r, const char *key, int64_t *v)
{
    const slm_format_sink_t *s = r->sink;
    int32_t type, elem;
    const void *p;
    uint64_t n;
    if (s->struct_size < offsetof(slm_format_sink_t, reserved) || !s->get_hint ||
        s->get_hint(s->ctx, key, &type, &elem, &p, &n) != 0)
        return false;
    switch (type) {
    case SLM_VALUE_U32: *v = *(const uint32_t *)p; return true;
    case SLM_VALUE_I32: *v = *(const int32_t *)p; return true;
    case SLM_VALUE_U64:
        if (*(const uint64_t *)p > INT64_MAX)
            return false;
        *v = (int64_t)*(const uint64_t *)p;
        return true;
    case SLM_VALUE_I64: *v = *(const int64_t *)p; return true;
    case SLM_VALUE_U16: *v = *(const uint16_t *)p; return true;
    default: return false;
    }
}

static const char *hint_str(const reader_t *r, const char *key)
{
    const slm_format_sink_t *s = r->sink;
    int32_t type, elem;
    const void *p;
    uint64_t n;
    if (s->struct_size < offsetof(slm_format_sink_t, reserved) || !s->get_hint ||
        s->get_hint(s->ctx, key, &type, &elem, &p, &n) != 0 || type != SLM_VALUE_STRING)
        return NULL;
    return p;
}

/* One head count: the file's own (an adapter slmops wrote), else the base's. */
static int adapter_heads(reader_t *r, const char *suffix, uint32_t *out)
{
    char key[96];
    int64_t v = 0;
    snprintf(key, sizeof key, "%s.%s", r->info.arch, suffix);
    if (!st_meta_get_int(r->meta, key, &v) && hint_int(r, key, &v) && v > 0 && v <= UINT32_MAX &&
        st_meta_u32(r->meta, key, (uint32_t)v))
        return st_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    *out = v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
    return SLM_OK;
}

/* A PEFT folder names no architecture: an adapter slmops wrote carries it (with the
 * head counts) in its metadata; otherwise the host's hints about the base give it.
 * Without either the rows stay in the file's order and the container has no arch. */
static int adapter_model_info(reader_t *r)
{
    const char *arch = st_meta_get_str(r->meta, "general.architecture");
    if (!arch && (arch = hint_str(r, "general.architecture")) &&
        st_meta_str(r->meta, "general.architecture", arch, strlen(arch)))
        return st_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    if (!arch) {
        st_log(SLM_LOG_DEBUG, "%s: a PEFT adapter read without its base model: no architecture", r->path);
        return SLM_OK;
    }
    snprintf(r->info.arch, sizeof r->info.arch, "%s", arch);
    int rc = adapter_heads(r, "attention.head_count", &r->info.n_head);
    if (!rc)
        rc = adapter_heads(r, "attention.head_count_kv", &r->info.n_head_kv);
    if (!rc && !r->info.n_head_kv)
        r->info.n_head_kv = r->info.n_head;
    return rc;
}

static int read_adapter(reader_t *r, const char *dir)
{
    if (!st_exists(dir, ST_PEFT_CONFIG))
        return st_fail(r->err, SLM_E_NOT_FOUND, dir, -1, "%s without %s: PEFT's r and lora_alpha are needed",
                       ST_PEFT_WEIGHTS, ST_PEFT_CONFIG);
    if (!st_exists(dir, ST_PEFT_WEIGHTS))
        return st_fail(r->err, SLM_E_NOT_FOUND, dir, -1, "%s without %s%s", ST_PEFT_CONFIG, ST_PEFT_WEIGHTS,
                       st_exists(dir, "adapter_model.bin")
                           ? " (adapter_model.bin is a pickle, which slmops does not run: save the "
                             "adapter with safe_serialization=True)" : "");
    r->adapter = true;
    char *p = st_join(dir, ST_PEFT_WEIGHTS);
    st_file_t *f = NULL;
    int rc = p ? st_file_open(p, &f, r->err) : st_fail(r->err, SLM_E_NOMEM, dir, -1, "out of memory");
    free(p);
    if (!rc && keep_file(r->keep, f)) {
        st_file_close(f);
        return st_fail(r->err, SLM_E_NOMEM, dir, -1, "out of memory");
    }
    /* The file's own keys first: adapter_config.json, which a user may edit, wins. */
    if (!rc)
        rc = keep_metadata(r, f);
    if (!rc)
        rc = st_peft_config_read(dir, r->meta, &r->rank, r->err);
    if (!rc)
        rc = adapter_model_info(r);
    for (size_t i = 0; !rc && i < f->n_entries; i++)
        rc = report_tensor(r, f, &f->entries[i]);
    return rc;
}

static int read_folder(reader_t *r, const char *dir)
{
    if (st_peft_is_folder(dir))
        return read_adapter(r, dir);
    int rc = SLM_OK;
    bool has_cfg = st_exists(dir, "config.json"), has_tok = false;
    if (has_cfg)
        rc = read_config(r, dir);
    if (!rc)
        rc = st_tokenizer_read(dir, r->meta, &has_tok, r->err);
    bool index = st_exists(dir, "model.safetensors.index.json");
    bool single = st_exists(dir, "model.safetensors");
    if (!rc && !index && !single && !has_tok)
        return st_fail(r->err, SLM_E_NOT_FOUND, dir, -1,
                       "no model.safetensors, model.safetensors.index.json or tokenizer files");
    if (!rc && (index || single) && !has_cfg)
        return st_fail(r->err, SLM_E_NOT_FOUND, dir, -1,
                       "weights without config.json: its hyper-parameters are needed");
    st_file_t *f = NULL;
    if (!rc && index) {
        rc = read_index(r, dir);
    } else if (!rc && single) {
        char *p = st_join(dir, "model.safetensors");
        rc = p ? read_shard(r, p, &f) : SLM_E_NOMEM;
        free(p);
        if (!rc)
            rc = keep_metadata(r, f);
    }
    if (!rc && !json_object_get(r->seen, "output.weight") && json_object_get(r->seen, "token_embd.weight"))
        st_log(SLM_LOG_DEBUG, "%s: no lm_head.weight: output tied to token_embd", dir);
    return rc;
}

int st_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return st_fail(err, errno == ENOENT ? SLM_E_NOT_FOUND : SLM_E_IO, path, -1, "cannot stat: %s",
                       strerror(errno));
    reader_t r = {.path = path, .sink = sink, .err = err, .map_names = S_ISDIR(st.st_mode)};
    /* Hand the host what tensors will borrow first, so that it is freed on failure too. */
    r.keep = calloc(1, sizeof *r.keep);
    if (!r.keep)
        return st_fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    if (sink->set_mapping(sink->ctx, r.keep, keep_release)) {
        keep_release(r.keep);
        return st_fail(err, SLM_E_NOMEM, path, -1, "the container refused the mapping");
    }
    r.meta = st_meta_new();
    r.seen = json_object();
    int rc = r.meta && r.seen ? SLM_OK : st_fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    if (!rc && r.map_names) {
        rc = read_folder(&r, path);
    } else if (!rc) {
        st_file_t *f;
        rc = read_shard(&r, path, &f);
        if (!rc)
            rc = keep_metadata(&r, f);
    }
    if (!rc && st_meta_flush(r.meta, sink))
        rc = st_fail(err, SLM_E_FORMAT, path, -1, "the container refused the metadata");
    st_meta_free(r.meta);
    json_decref(r.seen);
    return rc;
}

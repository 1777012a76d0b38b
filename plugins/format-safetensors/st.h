/* Hugging Face safetensors folders: the pieces the plugin's files share (the
 * .safetensors parser, metadata staging, name mapping, tokenizer files, errors). */
#ifndef SLMOPS_FORMAT_SAFETENSORS_H
#define SLMOPS_FORMAT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <slmops/plugin-format.h>

#include "../common/plugin-util.h"

/* The reference implementation's cap on the JSON header. */
#define ST_MAX_HEADER 100000000ull
/* Side files (config.json, tokenizer.json, vocab.json, merges.txt, ...). */
#define ST_MAX_SIDE_FILE (256ull << 20)
#define ST_MAX_DIMS 4
/* Token ids beyond this are refused before anything is allocated for them. */
#define ST_MAX_VOCAB (1u << 24)

/* GGUF token types (llama.cpp's llama_token_type). */
enum { ST_TOK_NORMAL = 1, ST_TOK_UNKNOWN = 2, ST_TOK_CONTROL = 3, ST_TOK_USER = 4,
       ST_TOK_UNUSED = 5, ST_TOK_BYTE = 6 };

/* ---- errors and logging (plugin.c) ---- */

/* Fill err as the core would; the message starts with the path and, when
 * offset >= 0, the byte offset. Returns code. */
#define st_fail plugin_fail
void st_log(slm_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The host's services, or NULL when the sources are compiled into a test. */
extern const slm_host_t *st_host;

/* ---- one .safetensors file (header.c) ---- */

typedef struct st_dtype {
    const char *name;   /* as safetensors spells it */
    uint32_t size;      /* bytes per element */
    int32_t type;       /* slm_type_t, or -1 when slmops has no such type */
} st_dtype_t;

const st_dtype_t *st_dtype_by_name(const char *name);
/* The safetensors dtype that stores slm type `type`, or NULL. */
const st_dtype_t *st_dtype_by_type(int32_t type);

typedef struct st_entry {
    const char *name;          /* points into the parsed header */
    const st_dtype_t *dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];  /* row-major, as stored */
    uint64_t begin, end;       /* relative to the data section */
} st_entry_t;

typedef struct st_file {
    char *path;
    void *map;
    size_t map_len;
    const uint8_t *data;       /* the data section */
    uint64_t data_len;
    uint64_t data_at;          /* file offset of the data section */
    json_t *header;
    json_t *metadata;          /* the __metadata__ object, or NULL */
    st_entry_t *entries;       /* in header order */
    size_t n_entries;
} st_file_t;

/* Map and validate a whole file: header length, JSON, every entry, and that the
 * tensors tile the data section exactly. */
int st_file_open(const char *path, st_file_t **out, slm_error_t *err);
void st_file_close(st_file_t *f);

/* ---- reading side files ---- */

/* Load a JSON file (size-capped, duplicate keys refused). */
int st_json_load(const char *path, json_t **out, slm_error_t *err);
/* Read a whole small file into a NUL-terminated buffer. */
int st_slurp(const char *path, char **out, size_t *len, slm_error_t *err);
bool st_exists(const char *dir, const char *name);
/* dir + "/" + name, or NULL when out of memory. */
char *st_join(const char *dir, const char *name);

/* ---- metadata staging (meta.c): later sets replace earlier ones ---- */

typedef struct st_meta st_meta_t;

st_meta_t *st_meta_new(void);
void st_meta_free(st_meta_t *m);
int st_meta_u32(st_meta_t *m, const char *key, uint32_t v);
int st_meta_f32(st_meta_t *m, const char *key, float v);
int st_meta_bool(st_meta_t *m, const char *key, bool v);
/* Any scalar type but strings; v holds its bytes (bool: one byte). */
int st_meta_scalar(st_meta_t *m, const char *key, int32_t type, const void *v);
int st_meta_str(st_meta_t *m, const char *key, const char *s, size_t len);
/* Takes ownership of values (and of lens and each string for string arrays). */
int st_meta_array(st_meta_t *m, const char *key, int32_t elem_type, void *values,
                  uint64_t *lens, uint64_t n);
bool st_meta_has(const st_meta_t *m, const char *key);
/* A staged string, or NULL. */
const char *st_meta_get_str(const st_meta_t *m, const char *key);
/* A staged integer of any integer type; false when absent or of another kind. */
bool st_meta_get_int(const st_meta_t *m, const char *key, int64_t *v);
int st_meta_flush(const st_meta_t *m, const slm_format_sink_t *sink);

/* ---- the container's metadata in a lone file's __metadata__ (kv.c) ---- */

/* Each key KEY is "gguf:KEY" -> '{"type":"u32","value":5}' (arrays also "elem";
 * strings that are not UTF-8 are {"hex": "..."}); ST_KV_MARK says the file has them. */
#define ST_KV_PREFIX "gguf:"
#define ST_KV_MARK "slmops.gguf_metadata"
#define ST_KV_VERSION "1"

/* Add every source key but safetensors.metadata.* to metadata; *why on failure. */
int st_kv_encode(const slm_format_source_t *src, json_t *metadata, const char **why);
/* Whether metadata carries ST_KV_MARK with a version this reader knows. */
bool st_kv_present(json_t *metadata);
/* Stage the "gguf:" entries of metadata into m under their own keys. */
int st_kv_decode(const char *path, json_t *metadata, st_meta_t *m, slm_error_t *err);

/* ---- names and the llama q/k permutation (names.c) ---- */

/* HF tensor name -> GGUF name (unknown names pass through). out has room for cap. */
void st_name_to_gguf(const char *hf, char *out, size_t cap);
/* GGUF name -> HF name for architecture arch. */
void st_name_to_hf(const char *gguf, const char *arch, char *out, size_t cap);
/* Whether arch's q/k rows are permuted between HF and GGUF (llama.cpp's LlamaModel). */
bool st_arch_permutes(const char *arch);
/* Reorder the rows of a [rows, row_bytes] matrix between HF and GGUF layout for
 * n_head heads: to_gguf mirrors convert_hf_to_gguf.py's permute, !to_gguf undoes it.
 * Returns false when rows is not a multiple of 2 * n_head. */
bool st_permute_rows(const uint8_t *src, uint8_t *dst, uint64_t rows, uint64_t row_bytes,
                     uint32_t n_head, bool to_gguf);

/* PEFT LoRA tensor names <-> the canonical adapter's: "base_model.model.model.layers.3.
 * self_attn.q_proj.lora_A.weight" <-> "blk.3.attn_q.weight.lora_a" (lora_B: .lora_b).
 * False for a name that is not a LoRA A/B of a module the model name map knows. */
bool st_peft_name_to_gguf(const char *peft, char *out, size_t cap);
bool st_peft_name_from_gguf(const char *gguf, const char *arch, char *out, size_t cap);
/* The PEFT module name ("q_proj", "lm_head") of a canonical adapter tensor. */
bool st_peft_module_of(const char *gguf, const char *arch, char *out, size_t cap);

/* ---- PEFT LoRA adapter folders (peft.c) ---- */

#define ST_PEFT_CONFIG "adapter_config.json"
#define ST_PEFT_WEIGHTS "adapter_model.safetensors"

/* Whether dir is a PEFT adapter folder (either of its two files is there). */
bool st_peft_is_folder(const char *dir);
/* adapter_config.json -> the canonical adapter keys (general.type, adapter.type,
 * adapter.lora.alpha with rsLoRA folded in, adapter.lora.rank, adapter.lora.rslora);
 * *rank gets r. Settings slmops cannot represent are refused by name. */
int st_peft_config_read(const char *dir, st_meta_t *m, uint32_t *rank, slm_error_t *err);

/* What adapter_config.json says, from the container's adapter keys. */
typedef struct st_peft_out {
    uint32_t rank;
    double alpha;                /* the container's (llama.cpp's: scale = alpha / rank) */
    bool rslora;                 /* write use_rslora and unfold alpha */
    double dropout;
    const char *base_model;      /* or NULL */
    json_t *modules;             /* array of module names, sorted */
} st_peft_out_t;

json_t *st_peft_config_json(const st_peft_out_t *o);

/* ---- tokenizer files (tokenizer-read.c, tokenizer-write.c) ---- */

/* Read whichever tokenizer files dir holds into m; *found says whether there were any. */
int st_tokenizer_read(const char *dir, st_meta_t *m, bool *found, slm_error_t *err);

/* What the writer needs from the source's tokenizer.* keys. */
typedef struct st_tok_src {
    const char *model;                 /* tokenizer.ggml.model */
    const char *pre;                   /* tokenizer.ggml.pre or NULL */
    const char *const *tokens;
    const uint64_t *token_lens;
    uint64_t n_tokens;
    const int32_t *types;              /* or NULL */
    const float *scores;               /* or NULL */
    const char *const *merges;         /* or NULL */
    const uint64_t *merge_lens;
    uint64_t n_merges;
    int64_t bos, eos, unk, pad;        /* -1 when absent */
    int add_bos, add_eos;              /* -1 when absent */
    const char *chat_template;         /* or NULL */
    int64_t ctx;                       /* model_max_length, or -1 */
} st_tok_src_t;

/* tokenizer.json and tokenizer_config.json as HF's tokenizers would write them. */
int st_tokenizer_json(const st_tok_src_t *t, json_t **out, const char **why);
json_t *st_tokenizer_config_json(const st_tok_src_t *t);

/* ---- the plugin's entry points ---- */

int st_probe(const char *path, const uint8_t *head, size_t head_len);
int st_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err);
/* Interface version 2: a path ending in .safetensors is one file, anything else a
 * Hugging Face folder of the files in *names. */
int st_layout(const char *final_path, const char *const **names);
int st_write(const char *temp, const char *path, const slm_format_source_t *source,
             slm_error_t *err);

#endif

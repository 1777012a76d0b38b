/* Tokenizer files of a Hugging Face folder -> GGUF tokenizer.* keys: tokenizer.json,
 * vocab.json + merges.txt, encoder.json + vocab.bpe, and the files around them
 * (tokenizer_config.json, special_tokens_map.json, added_tokens.json,
 * generation_config.json, config.json) that name special tokens and templates. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

/* Pre-tokenizer regexes as HF's tokenizer.json files spell them. */
#define RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* Llama 3's vocabulary: 128000 byte-level BPE tokens and 280147 merges; its 256
 * special tokens live outside encoder.json (tiktoken layout). */
#define LLAMA3_N_BPE 128000u
#define LLAMA3_N_MERGES 280147u
#define LLAMA3_N_SPECIAL 256u

typedef struct tok {
    const char *path;          /* the file being read, for messages */
    char **s;
    uint64_t *len;
    int32_t *type;
    float *score;              /* NULL unless the model has scores */
    uint64_t n_score;
    uint64_t n, cap;
    char **merges;
    uint64_t *mlen;
    uint64_t n_merges;
    const char *model;         /* "llama", "gpt2", "bert" */
    const char *pre;           /* tokenizer.ggml.pre or NULL */
    int add_bos, add_eos;      /* -1: not stated */
    int64_t unk;               /* -1: not named */
} tok_t;

static void tok_free(tok_t *t)
{
    for (uint64_t i = 0; i < t->n; i++)
        free(t->s[i]);
    for (uint64_t i = 0; i < t->n_merges; i++)
        free(t->merges[i]);
    free(t->s);
    free(t->len);
    free(t->type);
    free(t->score);
    free(t->merges);
    free(t->mlen);
}

static int grow(tok_t *t, uint64_t need, slm_error_t *err)
{
    if (need <= t->cap)
        return SLM_OK;
    uint64_t cap = t->cap ? t->cap : 1024;
    while (cap < need)
        cap *= 2;
    char **s = realloc(t->s, cap * sizeof *s);
    if (s)
        t->s = s;
    uint64_t *len = realloc(t->len, cap * sizeof *len);
    if (len)
        t->len = len;
    int32_t *type = realloc(t->type, cap * sizeof *type);
    if (type)
        t->type = type;
    if (!s || !len || !type)
        return st_fail(err, SLM_E_NOMEM, t->path, -1, "out of memory for %llu tokens",
                       (unsigned long long)cap);
    memset(t->s + t->cap, 0, (cap - t->cap) * sizeof *s);
    memset(t->type + t->cap, 0, (cap - t->cap) * sizeof *type);
    t->cap = cap;
    return SLM_OK;
}

/* Token `id` is `s`. The same id with other text is an error; an added token that
 * repeats a vocabulary entry only changes its type. */
static int tok_put(tok_t *t, int64_t id, const char *s, size_t len, int32_t type, slm_error_t *err)
{
    if (id < 0 || id >= (int64_t)ST_MAX_VOCAB)
        return st_fail(err, SLM_E_FORMAT, t->path, -1, "token '%.*s' has id %lld, outside [0, %u)",
                       (int)(len > 64 ? 64 : len), s, (long long)id, ST_MAX_VOCAB);
    int rc = grow(t, (uint64_t)id + 1, err);
    if (rc)
        return rc;
    if (t->n <= (uint64_t)id)
        t->n = (uint64_t)id + 1;
    if (t->s[id]) {
        if (t->len[id] != len || memcmp(t->s[id], s, len) != 0)
            return st_fail(err, SLM_E_FORMAT, t->path, -1, "token id %lld is both '%.*s' and '%.*s'",
                           (long long)id, (int)(t->len[id] > 64 ? 64 : t->len[id]), t->s[id],
                           (int)(len > 64 ? 64 : len), s);
        if (type)
            t->type[id] = type;
        return SLM_OK;
    }
    if (!(t->s[id] = malloc(len + 1)))
        return st_fail(err, SLM_E_NOMEM, t->path, -1, "out of memory");
    memcpy(t->s[id], s, len);
    t->s[id][len] = 0;
    t->len[id] = len;
    t->type[id] = type;
    return SLM_OK;
}

static int64_t tok_find(const tok_t *t, const char *s)
{
    size_t len = strlen(s);
    for (uint64_t i = 0; i < t->n; i++)
        if (t->s[i] && t->len[i] == len && memcmp(t->s[i], s, len) == 0)
            return (int64_t)i;
    return -1;
}

/* {"token": id, ...} */
static int vocab_object(tok_t *t, json_t *vocab, slm_error_t *err)
{
    if (!json_is_object(vocab))
        return st_fail(err, SLM_E_FORMAT, t->path, -1, "vocabulary is not a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v))
            return st_fail(err, SLM_E_FORMAT, t->path, -1, "vocabulary entry '%.64s' has no integer id", k);
        int rc = tok_put(t, json_integer_value(v), k, strlen(k), 0, err);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static int add_merge(tok_t *t, const char *a, size_t alen, const char *b, size_t blen,
                     uint64_t *cap, slm_error_t *err)
{
    if (t->n_merges == *cap) {
        uint64_t nc = *cap ? *cap * 2 : 4096;
        char **m = realloc(t->merges, nc * sizeof *m);
        if (m)
            t->merges = m;
        uint64_t *ml = realloc(t->mlen, nc * sizeof *ml);
        if (ml)
            t->mlen = ml;
        if (!m || !ml)
            return st_fail(err, SLM_E_NOMEM, t->path, -1, "out of memory for merges");
        *cap = nc;
    }
    char *s = malloc(alen + blen + 2);
    if (!s)
        return st_fail(err, SLM_E_NOMEM, t->path, -1, "out of memory for merges");
    memcpy(s, a, alen);
    s[alen] = ' ';
    memcpy(s + alen + 1, b, blen);
    s[alen + blen + 1] = 0;
    t->merges[t->n_merges] = s;
    t->mlen[t->n_merges++] = alen + blen + 1;
    return SLM_OK;
}

/* merges.txt / vocab.bpe: one "a b" per line, maybe after a "#version" line. */
static int merges_text(tok_t *t, const char *path, slm_error_t *err)
{
    char *buf;
    size_t len;
    int rc = st_slurp(path, &buf, &len, err);
    if (rc)
        return rc;
    uint64_t cap = 0, line = 0;
    for (char *p = buf, *end = buf + len; p < end && rc == SLM_OK; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n && !(line == 0 && n >= 8 && memcmp(p, "#version", 8) == 0)) {
            char *sp = memchr(p, ' ', n);
            if (!sp || sp == p || sp == p + n - 1)
                rc = st_fail(err, SLM_E_FORMAT, path, (int64_t)(p - buf),
                             "line %llu is not a merge \"A B\"", (unsigned long long)line + 1);
            else
                rc = add_merge(t, p, (size_t)(sp - p), sp + 1, n - (size_t)(sp - p) - 1, &cap, err);
        }
        p = stop + 1;
    }
    free(buf);
    return rc;
}

/* tokenizer.json merges: "a b" strings or ["a", "b"] pairs. */
static int merges_json(tok_t *t, json_t *merges, slm_error_t *err)
{
    uint64_t cap = 0;
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        int rc;
        if (json_is_string(m)) {
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (!sp)
                return st_fail(err, SLM_E_FORMAT, t->path, -1, "merge %zu is not \"A B\"", i);
            rc = add_merge(t, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), &cap, err);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            rc = add_merge(t, json_string_value(a), json_string_length(a), json_string_value(b),
                           json_string_length(b), &cap, err);
        } else {
            return st_fail(err, SLM_E_FORMAT, t->path, -1, "merge %zu is neither \"A B\" nor [A, B]", i);
        }
        if (rc)
            return rc;
    }
    return SLM_OK;
}

/* The Split regex inside a pre_tokenizer (possibly within a Sequence), or NULL. */
static const char *split_regex(json_t *pre)
{
    const char *type = json_string_value(json_object_get(pre, "type"));
    if (type && strcmp(type, "Split") == 0)
        return json_string_value(json_object_get(json_object_get(pre, "pattern"), "Regex"));
    json_t *list = json_object_get(pre, "pretokenizers");
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) {
        const char *re = split_regex(p);
        if (re)
            return re;
    }
    return NULL;
}

/* llama.cpp's pre-tokenizer name for a tokenizer.json pre_tokenizer. */
static const char *pre_name(json_t *pre, const char *path)
{
    const char *re = split_regex(pre);
    if (!re)
        return "gpt-2";   /* plain ByteLevel with its built-in GPT-2 regex */
    if (strcmp(re, RE_LLAMA3) == 0)
        return "llama3";
    if (strcmp(re, RE_QWEN2) == 0)
        return "qwen2";
    if (strcmp(re, RE_GPT2) == 0)
        return "gpt-2";
    st_log(SLM_LOG_WARN, "%s: pre-tokenizer regex not recognised; using \"default\"", path);
    return "default";
}

static bool is_byte_token(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    return len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && strchr(hex, s[3]) && s[3] &&
           strchr(hex, s[4]) && s[4];
}

static int unigram_vocab(tok_t *t, json_t *vocab, slm_error_t *err)
{
    size_t i;
    json_t *e;
    if (!json_is_array(vocab) || !(t->score = malloc((json_array_size(vocab) + 1) * sizeof(float))))
        return st_fail(err, json_is_array(vocab) ? SLM_E_NOMEM : SLM_E_FORMAT, t->path, -1,
                       "Unigram vocabulary is not an array of [piece, score]");
    json_array_foreach(vocab, i, e) {
        json_t *piece = json_array_get(e, 0), *score = json_array_get(e, 1);
        if (!json_is_string(piece) || !json_is_number(score))
            return st_fail(err, SLM_E_FORMAT, t->path, -1, "Unigram entry %zu is not [piece, score]", i);
        int rc = tok_put(t, (int64_t)i, json_string_value(piece), json_string_length(piece), 0, err);
        if (rc)
            return rc;
        t->score[i] = (float)json_number_value(score);
        t->n_score = i + 1;
    }
    return SLM_OK;
}

/* The model section of tokenizer.json. */
static int tokenizer_json_model(tok_t *t, json_t *root, slm_error_t *err)
{
    json_t *model = json_object_get(root, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type)
        return st_fail(err, SLM_E_FORMAT, t->path, -1, "no model.type");
    if (strcmp(type, "Unigram") == 0) {
        t->model = "llama";
        return unigram_vocab(t, json_object_get(model, "vocab"), err);
    }
    int rc = vocab_object(t, json_object_get(model, "vocab"), err);
    if (rc)
        return rc;
    if (strcmp(type, "WordPiece") == 0) {
        t->model = "bert";
        return SLM_OK;
    }
    if (strcmp(type, "BPE") != 0)
        return st_fail(err, SLM_E_UNSUPPORTED, t->path, -1, "tokenizer model type '%s' is not supported",
                       type);
    if (json_is_true(json_object_get(model, "byte_fallback"))) {
        t->model = "llama";   /* SentencePiece-style BPE; llama.cpp ranks it by scores */
        return SLM_OK;
    }
    t->model = "gpt2";
    t->pre = pre_name(json_object_get(root, "pre_tokenizer"), t->path);
    return merges_json(t, json_object_get(model, "merges"), err);
}

/* A post-processor that puts a special token first adds BOS. */
static int post_adds_bos(json_t *pp)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(pp, "processors"), i, p) if (post_adds_bos(p) == 1)
        return 1;
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type || strcmp(type, "TemplateProcessing") != 0)
        return -1;
    json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    return json_object_get(first, "SpecialToken") ? 1 : 0;
}

static int added_tokens_array(tok_t *t, json_t *added, slm_error_t *err)
{
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *content = json_object_get(a, "content"), *id = json_object_get(a, "id");
        if (!json_is_string(content) || !json_is_integer(id))
            return st_fail(err, SLM_E_FORMAT, t->path, -1, "added_tokens[%zu] needs content and id", i);
        int32_t type = json_is_true(json_object_get(a, "special")) ? ST_TOK_CONTROL : ST_TOK_USER;
        int rc = tok_put(t, json_integer_value(id), json_string_value(content),
                         json_string_length(content), type, err);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static int read_tokenizer_json(tok_t *t, const char *path, slm_error_t *err)
{
    json_t *root;
    int rc = st_json_load(path, &root, err);
    if (rc)
        return rc;
    t->path = path;
    rc = tokenizer_json_model(t, root, err);
    if (!rc)
        rc = added_tokens_array(t, json_object_get(root, "added_tokens"), err);
    if (!rc && strcmp(t->model, "gpt2") == 0 &&
        json_is_true(json_object_get(json_object_get(root, "model"), "ignore_merges")) &&
        strcmp(t->pre, "default") == 0)
        t->pre = "llama3";
    if (!rc) {
        int bos = post_adds_bos(json_object_get(root, "post_processor"));
        if (bos >= 0)
            t->add_bos = bos;
    }
    json_decref(root);
    return rc;
}

/* vocab.json + merges.txt, or encoder.json + vocab.bpe. */
static int read_vocab_merges(tok_t *t, const char *dir, const char *vocab_name,
                             const char *merges_name, slm_error_t *err)
{
    char *vp = st_join(dir, vocab_name), *mp = st_join(dir, merges_name);
    json_t *vocab = NULL;
    int rc = vp && mp ? SLM_OK : st_fail(err, SLM_E_NOMEM, dir, -1, "out of memory");
    if (!rc)
        rc = st_json_load(vp, &vocab, err);
    t->path = vp;
    if (!rc)
        rc = vocab_object(t, vocab, err);
    t->path = mp;
    if (!rc)
        rc = merges_text(t, mp, err);
    json_decref(vocab);
    free(vp);
    free(mp);
    t->path = dir;
    t->model = "gpt2";
    t->pre = "gpt-2";
    return rc;
}

/* Llama 3 in tiktoken layout: exactly its BPE size and merge count, and no ids
 * above them. Its special tokens are then appended as Meta's tokenizer defines them. */
static int maybe_llama3(tok_t *t, slm_error_t *err)
{
    if (t->n != LLAMA3_N_BPE || t->n_merges != LLAMA3_N_MERGES)
        return SLM_OK;
    static const char *const named[] = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
        "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
    char name[48];
    for (uint32_t i = 0; i < LLAMA3_N_SPECIAL; i++) {
        const char *s = name;
        if (i < sizeof named / sizeof named[0])
            s = named[i];
        else
            snprintf(name, sizeof name, "<|reserved_special_token_%u|>", i - 8);
        int rc = tok_put(t, LLAMA3_N_BPE + i, s, strlen(s), ST_TOK_CONTROL, err);
        if (rc)
            return rc;
    }
    t->pre = "llama3";
    t->add_bos = 1;
    st_log(SLM_LOG_INFO, "%s: 128000 tokens and 280147 merges: Llama-3 vocabulary, 256 special tokens added",
           t->path);
    return SLM_OK;
}

/* "<s>" or {"content": "<s>", ...} */
static const char *token_content(json_t *v)
{
    return json_is_string(v) ? json_string_value(v)
                             : json_string_value(json_object_get(v, "content"));
}

/* The special-token roles a tokenizer config names by content, and their keys. */
static const char *const roles[][2] = {
    {"bos_token", "tokenizer.ggml.bos_token_id"}, {"eos_token", "tokenizer.ggml.eos_token_id"},
    {"unk_token", "tokenizer.ggml.unknown_token_id"},
    {"pad_token", "tokenizer.ggml.padding_token_id"}};
#define ROLE_UNK 2
#define N_ROLES (sizeof roles / sizeof roles[0])

/* Role i is the token whose text is s (NULL: nothing to set). */
static int set_role(tok_t *t, size_t i, const char *s, st_meta_t *m)
{
    int64_t id = s ? tok_find(t, s) : -1;
    if (s && id < 0)
        st_log(SLM_LOG_WARN, "%s '%s' is not in the vocabulary", roles[i][0], s);
    if (id >= 0 && i == ROLE_UNK)
        t->unk = id;
    if (id >= 0 && st_meta_u32(m, roles[i][1], (uint32_t)id))
        return SLM_E_NOMEM;
    return SLM_OK;
}

static int special_ids(tok_t *t, json_t *cfg, st_meta_t *m)
{
    for (size_t i = 0; i < N_ROLES; i++)
        if (set_role(t, i, token_content(json_object_get(cfg, roles[i][0])), m))
            return SLM_E_NOMEM;
    return SLM_OK;
}

/* The special tokens transformers' tokenizer classes have when their config does not
 * name them (each class's __init__ defaults), in roles' order; NULL: none. */
static const struct {
    const char *cls;
    const char *role[N_ROLES];
} class_defaults[] = {
    {"GPT2Tokenizer", {"<|endoftext|>", "<|endoftext|>", "<|endoftext|>", NULL}},
    {"Qwen2Tokenizer", {NULL, "<|endoftext|>", "<|endoftext|>", "<|endoftext|>"}},
};

/* A class default applies to a role no file states: a config key set even to null
 * wins, as does an id from config.json or generation_config.json. A byte-level BPE
 * folder that names no class is GPT-2's own layout (vocab.json + merges.txt, or
 * encoder.json + vocab.bpe), which transformers reads with GPT2Tokenizer. */
static int default_ids(tok_t *t, const char *cls, json_t *tcfg, json_t *smap, st_meta_t *m)
{
    if (!cls && strcmp(t->model, "gpt2") == 0 && t->pre && strcmp(t->pre, "gpt-2") == 0)
        cls = "GPT2Tokenizer";
    size_t c = 0, n = sizeof class_defaults / sizeof class_defaults[0];
    while (cls && c < n && strncmp(cls, class_defaults[c].cls, strlen(class_defaults[c].cls)))
        c++;
    if (!cls || c == n)
        return SLM_OK;
    for (size_t i = 0; i < N_ROLES; i++) {
        const char *s = class_defaults[c].role[i];
        if (!s || json_object_get(tcfg, roles[i][0]) || json_object_get(smap, roles[i][0]) ||
            st_meta_has(m, roles[i][1]) || tok_find(t, s) < 0)
            continue;
        if (set_role(t, i, s, m))
            return SLM_E_NOMEM;
    }
    return SLM_OK;
}

static int ids_from(json_t *cfg, st_meta_t *m)
{
    static const char *const id_keys[][2] = {
        {"bos_token_id", "tokenizer.ggml.bos_token_id"},
        {"eos_token_id", "tokenizer.ggml.eos_token_id"},
        {"pad_token_id", "tokenizer.ggml.padding_token_id"}};
    for (size_t i = 0; i < sizeof id_keys / sizeof id_keys[0]; i++) {
        json_t *v = json_object_get(cfg, id_keys[i][0]);
        if (json_is_array(v))
            v = json_array_get(v, 0);   /* several EOS ids: the first is the main one */
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) <= UINT32_MAX &&
            st_meta_u32(m, id_keys[i][1], (uint32_t)json_integer_value(v)))
            return SLM_E_NOMEM;
    }
    return SLM_OK;
}

/* Optional JSON side file: absent is fine, malformed is an error. */
static int optional_json(const char *dir, const char *name, json_t **out, slm_error_t *err)
{
    *out = NULL;
    if (!st_exists(dir, name))
        return SLM_OK;
    char *p = st_join(dir, name);
    if (!p)
        return st_fail(err, SLM_E_NOMEM, dir, -1, "out of memory");
    int rc = st_json_load(p, out, err);
    free(p);
    if (!rc && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return st_fail(err, SLM_E_FORMAT, dir, -1, "%s is not a JSON object", name);
    }
    return rc;
}

/* added_tokens.json, then added_tokens_decoder (which knows which are special). */
static int added_from_configs(tok_t *t, json_t *added, json_t *tcfg, json_t *smap, slm_error_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(added, k, v) {
        int rc = json_is_integer(v) ? tok_put(t, json_integer_value(v), k, strlen(k), ST_TOK_USER, err)
                                    : st_fail(err, SLM_E_FORMAT, t->path, -1,
                                              "added_tokens.json: '%.64s' has no integer id", k);
        if (rc)
            return rc;
    }
    json_t *dec = json_object_get(tcfg, "added_tokens_decoder");
    json_object_foreach(dec, k, v) {
        char *end;
        long long id = strtoll(k, &end, 10);
        json_t *content = json_object_get(v, "content");
        if (*end || !json_is_string(content))
            return st_fail(err, SLM_E_FORMAT, t->path, -1, "added_tokens_decoder entry '%.32s' is malformed", k);
        int32_t type = json_is_true(json_object_get(v, "special")) ? ST_TOK_CONTROL : ST_TOK_USER;
        int rc = tok_put(t, id, json_string_value(content), json_string_length(content), type, err);
        if (rc)
            return rc;
    }
    size_t i;
    json_array_foreach(json_object_get(smap, "additional_special_tokens"), i, v) {
        int64_t id = token_content(v) ? tok_find(t, token_content(v)) : -1;
        if (id >= 0)
            t->type[id] = ST_TOK_CONTROL;
    }
    return SLM_OK;
}

static const char *chat_template(json_t *tcfg)
{
    json_t *ct = json_object_get(tcfg, "chat_template");
    if (json_is_string(ct))
        return json_string_value(ct);
    size_t i;
    json_t *e;
    json_array_foreach(ct, i, e) {   /* [{"name": "default", "template": "..."}, ...] */
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name && strcmp(name, "default") == 0)
            return json_string_value(json_object_get(e, "template"));
    }
    return NULL;
}

/* Types and scores for tokens the files left open, holes filled as llama.cpp does. */
static int finish_types(tok_t *t, int64_t unk, slm_error_t *err)
{
    bool spm = strcmp(t->model, "llama") == 0, want_scores = spm && !t->score;
    if (t->score || want_scores) {
        float *sc = realloc(t->score, (t->n ? t->n : 1) * sizeof(float));
        if (!sc)
            return st_fail(err, SLM_E_NOMEM, t->path, -1, "out of memory");
        t->score = sc;
        for (uint64_t i = t->n_score; i < t->n; i++)
            sc[i] = 0.0f;
    }
    uint64_t rank = 0;
    for (uint64_t i = 0; i < t->n; i++) {
        if (!t->s[i]) {
            char pad[32];
            int len = snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
            int rc = tok_put(t, (int64_t)i, pad, (size_t)len, ST_TOK_UNUSED, err);
            if (rc)
                return rc;
        }
        if ((int64_t)i == unk)
            t->type[i] = ST_TOK_UNKNOWN;
        if (!t->type[i])
            t->type[i] = spm && is_byte_token(t->s[i], t->len[i]) ? ST_TOK_BYTE : ST_TOK_NORMAL;
        /* SentencePiece orders normal pieces by falling score: rebuild that order. */
        if (want_scores)
            t->score[i] = t->type[i] == ST_TOK_NORMAL ? -(float)rank++ : 0.0f;
    }
    return SLM_OK;
}

static int emit(tok_t *t, st_meta_t *m, slm_error_t *err)
{
    int rc = st_meta_str(m, "tokenizer.ggml.model", t->model, strlen(t->model));
    if (!rc && t->pre)
        rc = st_meta_str(m, "tokenizer.ggml.pre", t->pre, strlen(t->pre));
    if (!rc) {
        rc = st_meta_array(m, "tokenizer.ggml.tokens", SLM_VALUE_STRING, t->s, t->len, t->n);
        t->s = NULL;
        t->len = NULL;
    }
    if (!rc && t->score) {
        rc = st_meta_array(m, "tokenizer.ggml.scores", SLM_VALUE_F32, t->score, NULL, t->n);
        t->score = NULL;
    }
    if (!rc) {
        rc = st_meta_array(m, "tokenizer.ggml.token_type", SLM_VALUE_I32, t->type, NULL, t->n);
        t->type = NULL;
    }
    if (!rc && t->n_merges) {
        rc = st_meta_array(m, "tokenizer.ggml.merges", SLM_VALUE_STRING, t->merges, t->mlen,
                           t->n_merges);
        t->merges = NULL;
        t->mlen = NULL;
    }
    t->n = t->n_merges = 0;
    return rc ? st_fail(err, rc, t->path, -1, "out of memory") : SLM_OK;
}

static int read_vocab(tok_t *t, const char *dir, bool *found, slm_error_t *err)
{
    *found = true;
    if (st_exists(dir, "tokenizer.json")) {
        char *p = st_join(dir, "tokenizer.json");
        int rc = p ? read_tokenizer_json(t, p, err) : SLM_E_NOMEM;
        free(p);
        t->path = dir;
        return rc;
    }
    if (st_exists(dir, "vocab.json") && st_exists(dir, "merges.txt"))
        return read_vocab_merges(t, dir, "vocab.json", "merges.txt", err);
    if (st_exists(dir, "encoder.json") && st_exists(dir, "vocab.bpe")) {
        int rc = read_vocab_merges(t, dir, "encoder.json", "vocab.bpe", err);
        return rc ? rc : maybe_llama3(t, err);
    }
    *found = false;
    return SLM_OK;
}

static int apply_configs(tok_t *t, const char *dir, st_meta_t *m, slm_error_t *err)
{
    json_t *cfg = NULL, *gen = NULL, *added = NULL, *smap = NULL, *tcfg = NULL;
    int rc = optional_json(dir, "config.json", &cfg, err);
    rc = rc ? rc : optional_json(dir, "generation_config.json", &gen, err);
    rc = rc ? rc : optional_json(dir, "added_tokens.json", &added, err);
    rc = rc ? rc : optional_json(dir, "special_tokens_map.json", &smap, err);
    rc = rc ? rc : optional_json(dir, "tokenizer_config.json", &tcfg, err);
    const char *cls = json_string_value(json_object_get(tcfg, "tokenizer_class"));
    if (t->model && strcmp(t->model, "gpt2") == 0 && t->pre && strcmp(t->pre, "gpt-2") == 0 &&
        cls && strncmp(cls, "Qwen2Tokenizer", 14) == 0)
        t->pre = "qwen2";
    if (!rc && t->model)
        rc = added_from_configs(t, added, tcfg, smap, err);
    if (!rc)
        rc = ids_from(cfg, m) | ids_from(gen, m);
    if (!rc && t->model)
        rc = special_ids(t, smap, m) | special_ids(t, tcfg, m);
    if (!rc && t->model)
        rc = default_ids(t, cls, tcfg, smap, m);
    json_t *ab = json_object_get(tcfg, "add_bos_token"), *ae = json_object_get(tcfg, "add_eos_token");
    if (json_is_boolean(ab))
        t->add_bos = json_is_true(ab);
    if (json_is_boolean(ae))
        t->add_eos = json_is_true(ae);
    const char *tmpl = chat_template(tcfg);
    if (!rc && tmpl)
        rc = st_meta_str(m, "tokenizer.chat_template", tmpl, strlen(tmpl));
    if (rc == SLM_E_NOMEM)
        st_fail(err, rc, dir, -1, "out of memory");
    json_decref(cfg);
    json_decref(gen);
    json_decref(added);
    json_decref(smap);
    json_decref(tcfg);
    return rc;
}

int st_tokenizer_read(const char *dir, st_meta_t *m, bool *found, slm_error_t *err)
{
    tok_t t = {.path = dir, .add_bos = -1, .add_eos = -1, .unk = -1};
    int rc = read_vocab(&t, dir, found, err);
    if (!rc)
        rc = apply_configs(&t, dir, m, err);
    if (!rc && *found) {
        int64_t unk = t.unk;
        if (unk < 0 && strcmp(t.model, "gpt2") != 0)
            unk = tok_find(&t, strcmp(t.model, "bert") == 0 ? "[UNK]" : "<unk>");
        if (unk >= 0)
            rc = st_meta_u32(m, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
        if (!rc)
            rc = finish_types(&t, unk, err);
        if (!rc && strcmp(t.model, "llama") == 0 && t.add_bos < 0)
            t.add_bos = 1;   /* LlamaTokenizer's default */
        if (!rc && t.pre && strcmp(t.pre, "llama3") == 0 && !st_meta_has(m, "tokenizer.ggml.bos_token_id"))
            rc = st_meta_u32(m, "tokenizer.ggml.bos_token_id", LLAMA3_N_BPE) |
                 st_meta_u32(m, "tokenizer.ggml.eos_token_id", LLAMA3_N_BPE + 1);
        /* A byte-level BPE vocabulary without a BOS token cannot start with one. */
        if (!rc && strcmp(t.model, "gpt2") == 0 && t.add_bos < 0 &&
            !st_meta_has(m, "tokenizer.ggml.bos_token_id"))
            t.add_bos = 0;
        if (!rc && t.add_bos >= 0)
            rc = st_meta_bool(m, "tokenizer.ggml.add_bos_token", t.add_bos);
        if (!rc && t.add_eos >= 0)
            rc = st_meta_bool(m, "tokenizer.ggml.add_eos_token", t.add_eos);
        if (!rc)
            rc = emit(&t, m, err);
    }
    if (!rc && !*found && st_exists(dir, "tokenizer.model")) {
        /* The sentencepiece plugin reads that file; say where it is. */
        rc = st_meta_str(m, "tokenizer.sentencepiece.model_file", "tokenizer.model", 15);
        *found = true;
    }
    tok_free(&t);
    return rc;
}

/* Tokenizer set-up from a model file's tokenizer.* keys, the lookup tables, the
 * special-token split that runs before every encoder, and the public accessors. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "tokenizer/tokenizer-internal.h"

#define LOG_CAT "tokenizer"

/* ---- small containers ---------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int slm__tok_index_build(slm__tok_index_t *ix, const slm__tok_str_t *strs, size_t n,
                         bool keep_first, size_t *dup)
{
    size_t cap = 16;
    while (cap < n * 2 + 1)
        cap <<= 1;
    ix->slots = calloc(cap, sizeof(*ix->slots));
    if (!ix->slots)
        return SLM_E_NOMEM;
    ix->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        size_t slot = hash_bytes(strs[i].s, strs[i].len) & ix->mask;
        for (;; slot = (slot + 1) & ix->mask) {
            uint32_t v = ix->slots[slot];
            if (v == 0) {
                ix->slots[slot] = (uint32_t)i + 1;
                break;
            }
            const slm__tok_str_t *o = &strs[v - 1];
            if (o->len == strs[i].len && memcmp(o->s, strs[i].s, o->len) == 0) {
                if (!keep_first) {
                    if (dup)
                        *dup = i;
                    return SLM_E_FORMAT;
                }
                break;
            }
        }
    }
    return SLM_OK;
}

void slm__tok_index_free(slm__tok_index_t *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = 0;
}

int32_t slm__tok_index_find(const slm__tok_index_t *ix, const slm__tok_str_t *strs,
                            const char *s, size_t len)
{
    if (!ix->slots)
        return SLM_TOKEN_NULL;
    for (size_t slot = hash_bytes(s, len) & ix->mask;; slot = (slot + 1) & ix->mask) {
        uint32_t v = ix->slots[slot];
        if (v == 0)
            return SLM_TOKEN_NULL;
        const slm__tok_str_t *o = &strs[v - 1];
        if (o->len == len && memcmp(o->s, s, len) == 0)
            return (int32_t)(v - 1);
    }
}

int slm__tok_ids_push(slm__tok_ids_t *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof(*v));
        if (!v)
            return SLM_E_NOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return SLM_OK;
}

int slm__tok_buf_append(slm__tok_buf_t *b, const void *s, size_t n)
{
    if (n > SIZE_MAX / 2 - b->n)
        return SLM_E_NOMEM;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *v = realloc(b->v, cap);
        if (!v)
            return SLM_E_NOMEM;
        b->v = v;
        b->cap = cap;
    }
    if (n)
        memcpy(b->v + b->n, s, n);
    b->n += n;
    b->v[b->n] = '\0';
    return SLM_OK;
}

uint32_t slm__tok_utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    size_t o = *i;
    unsigned c = s[o];
    if (!(c & 0x80)) {
        *i = o + 1;
        return c;
    }
    size_t need = (c & 0x40) == 0 ? 0 : (c & 0x20) == 0 ? 2 : (c & 0x10) == 0 ? 3
                : (c & 0x08) == 0 ? 4 : 0;
    if (need == 0 || o + need > len)
        goto invalid;
    for (size_t k = 1; k < need; k++)
        if ((s[o + k] & 0xc0) != 0x80)
            goto invalid;
    uint32_t cp = need == 2 ? (c & 0x1fu) : need == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (size_t k = 1; k < need; k++)
        cp = (cp << 6) | (s[o + k] & 0x3fu);
    *i = o + need;
    return cp;
invalid:
    *i = o + 1;
    return 0xFFFD;
}

size_t slm__tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp <= 0x7f) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp <= 0x7ff) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp <= 0xffff) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    if (cp > 0x10ffff)
        cp = 0xFFFD;
    if (cp <= 0xffff)
        return slm__tok_utf8_put(cp, out);
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- loading ------------------------------------------------------------- */

void slm_tokenizer_free(slm_tokenizer_t *tok)
{
    if (!tok)
        return;
    slm__tok_bpe_free(tok);
    slm__tok_index_free(&tok->text_index);
    slm__tok_index_free(&tok->merge_index);
    free(tok->text);
    free(tok->text_pool);
    free(tok->score);
    free(tok->attr);
    free(tok->piece);
    free(tok->piece_pool);
    free(tok->merges);
    free(tok->merge_pool);
    free(tok->eog);
    free(tok->special);
    free(tok);
}

/* Copy a string array into one pool; empty entries become "[EMPTY_<i>]" when
 * empty_name is set (as llama.cpp does for tokens). */
static int copy_strings(const slm_model_value_t *v, bool empty_name, slm__tok_str_t **out,
                        char **pool_out)
{
    const char *const *s = v->data;
    uint64_t total = 0;
    for (uint64_t i = 0; i < v->n; i++) {
        uint64_t l = v->lens ? v->lens[i] : strlen(s[i]);
        if (l > UINT32_MAX / 2)
            return SLM_E_FORMAT;
        total += (l ? l : 32) + 1;
    }
    slm__tok_str_t *strs = calloc(v->n ? v->n : 1, sizeof(*strs));
    char *pool = malloc(total ? total : 1);
    if (!strs || !pool) {
        free(strs);
        free(pool);
        return SLM_E_NOMEM;
    }
    char *p = pool;
    for (uint64_t i = 0; i < v->n; i++) {
        uint64_t l = v->lens ? v->lens[i] : strlen(s[i]);
        if (l == 0 && empty_name)
            l = (uint64_t)snprintf(p, 32, "[EMPTY_%llu]", (unsigned long long)i);
        else
            memcpy(p, s[i], l);
        p[l] = '\0';
        strs[i].s = p;
        strs[i].len = (uint32_t)l;
        p += l + 1;
    }
    *out = strs;
    *pool_out = pool;
    return SLM_OK;
}

static uint32_t attr_from_type(int32_t t)
{
    switch (t) {
    case 1: return SLM_TOKEN_ATTR_NORMAL;
    case 2: return SLM_TOKEN_ATTR_UNKNOWN;
    case 3: return SLM_TOKEN_ATTR_CONTROL;
    case 4: return SLM_TOKEN_ATTR_USER_DEFINED;
    case 5: return SLM_TOKEN_ATTR_UNUSED;
    case 6: return SLM_TOKEN_ATTR_BYTE;
    default: return 0;
    }
}

static int load_vocab(slm_tokenizer_t *tok, const slm_model_file_t *mf, slm_error_t *err)
{
    slm_model_value_t v = { .struct_size = sizeof(v) };
    int rc = slm_model_file_get_array(mf, "tokenizer.ggml.tokens", SLM_MF_STRING, &v, err);
    if (rc < 0)
        return rc == SLM_E_NOT_FOUND
            ? slm__fail(err, rc, NULL, -1, "the file has no tokenizer.ggml.tokens")
            : rc;
    if (v.n == 0 || v.n > INT32_MAX)
        return slm__fail(err, SLM_E_FORMAT, NULL, -1,
                         "tokenizer.ggml.tokens: %llu entries", (unsigned long long)v.n);
    tok->n_vocab = (size_t)v.n;
    rc = copy_strings(&v, true, &tok->text, &tok->text_pool);
    if (rc < 0)
        return slm__fail(err, rc, NULL, -1, "tokenizer.ggml.tokens: cannot copy");
    size_t dup = 0;
    rc = slm__tok_index_build(&tok->text_index, tok->text, tok->n_vocab, false, &dup);
    if (rc == SLM_E_FORMAT)
        return slm__fail(err, rc, NULL, -1, "duplicate token in vocabulary: '%s' (id %zu)",
                         tok->text[dup].s, dup);
    if (rc < 0)
        return slm__fail(err, rc, NULL, -1, "out of memory");
    for (size_t i = 0; i < tok->n_vocab; i++)
        if (tok->text[i].len > tok->max_token_len)
            tok->max_token_len = tok->text[i].len;

    tok->score = calloc(tok->n_vocab, sizeof(*tok->score));
    tok->attr = malloc(tok->n_vocab * sizeof(*tok->attr));
    if (!tok->score || !tok->attr)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    for (size_t i = 0; i < tok->n_vocab; i++)
        tok->attr[i] = SLM_TOKEN_ATTR_NORMAL;

    if (slm_model_file_get_array(mf, "tokenizer.ggml.scores", -1, &v, NULL) == SLM_OK) {
        if ((v.elem_type != SLM_MF_F32 && v.elem_type != SLM_MF_I32) || v.n < tok->n_vocab)
            return slm__fail(err, SLM_E_FORMAT, NULL, -1,
                             "tokenizer.ggml.scores: want %zu f32 or i32 values", tok->n_vocab);
        for (size_t i = 0; i < tok->n_vocab; i++)
            tok->score[i] = v.elem_type == SLM_MF_F32 ? ((const float *)v.data)[i]
                                                      : (float)((const int32_t *)v.data)[i];
    }
    if (slm_model_file_get_array(mf, "tokenizer.ggml.token_type", -1, &v, NULL) == SLM_OK) {
        if (v.elem_type != SLM_MF_I32 || v.n < tok->n_vocab)
            return slm__fail(err, SLM_E_FORMAT, NULL, -1,
                             "tokenizer.ggml.token_type: want %zu i32 values", tok->n_vocab);
        for (size_t i = 0; i < tok->n_vocab; i++)
            tok->attr[i] = attr_from_type(((const int32_t *)v.data)[i]);
    }
    return SLM_OK;
}

static int load_merges(slm_tokenizer_t *tok, const slm_model_file_t *mf, slm_error_t *err)
{
    slm_model_value_t v = { .struct_size = sizeof(v) };
    int rc = slm_model_file_get_array(mf, "tokenizer.ggml.merges", SLM_MF_STRING, &v, NULL);
    if (rc < 0)
        return slm__fail(err, SLM_E_FORMAT, NULL, -1,
                         "byte-level BPE vocabulary without tokenizer.ggml.merges");
    if (v.n > INT32_MAX)
        return slm__fail(err, SLM_E_FORMAT, NULL, -1, "tokenizer.ggml.merges: too many");
    tok->n_merges = (size_t)v.n;
    rc = copy_strings(&v, false, &tok->merges, &tok->merge_pool);
    if (rc == SLM_OK)
        rc = slm__tok_index_build(&tok->merge_index, tok->merges, tok->n_merges, true, NULL);
    return rc < 0 ? slm__fail(err, rc, NULL, -1, "tokenizer.ggml.merges: cannot index") : rc;
}

/* An id from the file replaces the default when it is inside the vocabulary. */
static void load_special_id(const slm_tokenizer_t *tok, const slm_model_file_t *mf,
                            const char *key, int32_t *id)
{
    if (*id >= 0 && (size_t)*id >= tok->n_vocab)
        *id = SLM_TOKEN_NULL;
    int64_t v;
    if (slm_model_file_get_int(mf, key, &v, NULL) != SLM_OK)
        return;
    if (v < 0 || (uint64_t)v >= tok->n_vocab) {
        if (v != UINT32_MAX && v != -1)
            slm_log(SLM_LOG_WARN, LOG_CAT, "%s = %lld is outside the vocabulary; ignored",
                    key, (long long)v);
        return;
    }
    *id = (int32_t)v;
}

static void load_bool(const slm_model_file_t *mf, const char *key, bool *out)
{
    bool b;
    if (slm_model_file_get_bool(mf, key, &b, NULL) == SLM_OK)
        *out = b;
}

static bool text_is(const slm_tokenizer_t *tok, size_t id, const char *s)
{
    size_t n = strlen(s);
    return tok->text[id].len == n && memcmp(tok->text[id].s, s, n) == 0;
}

static bool text_in(const slm_tokenizer_t *tok, size_t id, const char *const *list)
{
    for (; *list; list++)
        if (text_is(tok, id, *list))
            return true;
    return false;
}

static int add_eog(slm_tokenizer_t *tok, int32_t id)
{
    if (id < 0)
        return SLM_OK;
    for (size_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id)
            return SLM_OK;
    int32_t *v = realloc(tok->eog, (tok->n_eog + 1) * sizeof(*v));
    if (!v)
        return SLM_E_NOMEM;
    tok->eog = v;
    tok->eog[tok->n_eog++] = id;
    return SLM_OK;
}

/* llama.cpp recognises end-of-turn and end-of-generation tokens by their text
 * (converters do not always say), and treats them as control tokens. */
static int detect_eog(slm_tokenizer_t *tok)
{
    static const char *const eot_texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
        "<end_of_utterance>", NULL
    };
    static const char *const eog_texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
        "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", NULL
    };
    for (size_t id = 0; id < tok->n_vocab; id++) {
        if (tok->eot == SLM_TOKEN_NULL && text_in(tok, id, eot_texts)) {
            tok->eot = (int32_t)id;
            tok->attr[id] |= SLM_TOKEN_ATTR_CONTROL;
        }
        if (tok->eom == SLM_TOKEN_NULL && text_is(tok, id, "<|eom_id|>")) {
            tok->eom = (int32_t)id;
            tok->attr[id] |= SLM_TOKEN_ATTR_CONTROL;
        }
    }
    for (size_t id = 0; id < tok->n_vocab; id++) {
        if ((tok->attr[id] & SLM_TOKEN_ATTR_CONTROL) && strstr(tok->text[id].s, "unused"))
            tok->attr[id] |= SLM_TOKEN_ATTR_UNUSED;
        if (text_in(tok, id, eog_texts)) {
            tok->attr[id] |= SLM_TOKEN_ATTR_CONTROL;
            if (add_eog(tok, (int32_t)id) < 0)
                return SLM_E_NOMEM;
        }
    }
    if (add_eog(tok, tok->eos) < 0 || add_eog(tok, tok->eot) < 0 || add_eog(tok, tok->eom) < 0)
        return SLM_E_NOMEM;
    return SLM_OK;
}

typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key_t;

/* Longest first; equal lengths by id, so the order never depends on qsort. */
static int cmp_special(const void *a, const void *b)
{
    const special_key_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int build_special(slm_tokenizer_t *tok, const slm_model_file_t *mf)
{
    const uint32_t mask = SLM_TOKEN_ATTR_CONTROL | SLM_TOKEN_ATTR_USER_DEFINED
                        | SLM_TOKEN_ATTR_UNKNOWN;
    size_t n = 0;
    for (size_t id = 0; id < tok->n_vocab; id++)
        n += (tok->attr[id] & mask) != 0;
    tok->special = malloc((n ? n : 1) * sizeof(*tok->special));
    special_key_t *keys = malloc((n ? n : 1) * sizeof(*keys));
    if (!tok->special || !keys) {
        free(keys);
        return SLM_E_NOMEM;
    }
    for (size_t id = 0; id < tok->n_vocab; id++)
        if (tok->attr[id] & mask)
            keys[tok->n_special++] = (special_key_t){ tok->text[id].len, (int32_t)id };
    qsort(keys, tok->n_special, sizeof(*keys), cmp_special);
    for (size_t k = 0; k < tok->n_special; k++)
        tok->special[k] = keys[k].id;
    free(keys);

    /* Phi-3's converter leaves out the strip flags its tokenizer_config.json sets;
     * llama.cpp keys them on the model name, and so do we. */
    const char *name = NULL;
    if (slm_model_file_get_string(mf, "general.name", &name, NULL) == SLM_OK && name) {
        char low[128];
        size_t i = 0;
        for (; name[i] && i + 1 < sizeof(low); i++)
            low[i] = (char)tolower((unsigned char)name[i]);
        low[i] = '\0';
        if (strstr(low, "phi-3") || strstr(low, "phi3")) {
            for (size_t k = 0; k < tok->n_special; k++)
                tok->attr[tok->special[k]] |= SLM_TOKEN_ATTR_RSTRIP;
            static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
            int32_t id = slm__tok_find(tok, "</s>", 4);
            if (id >= 0)
                tok->attr[id] |= SLM_TOKEN_ATTR_RSTRIP;
            for (size_t k = 0; k < SLM__ARRAY_LEN(keep); k++) {
                id = slm__tok_find(tok, keep[k], strlen(keep[k]));
                if (id >= 0)
                    tok->attr[id] &= ~SLM_TOKEN_ATTR_RSTRIP;
            }
        }
    }
    return SLM_OK;
}

static int set_kind(slm_tokenizer_t *tok, const char *model, slm_error_t *err)
{
    if (strcmp(model, "llama") == 0) {
        tok->kind = SLM__TOK_SPM;
        tok->bos = 1, tok->eos = 2, tok->unk = 0;
        tok->add_space_prefix = true, tok->add_bos = true;
        snprintf(tok->pre_name, sizeof(tok->pre_name), "default");
    } else if (strcmp(model, "gpt2") == 0) {
        tok->kind = SLM__TOK_BPE;
        tok->bos = 11, tok->eos = 11;
        tok->clean_spaces = true;
    } else if (strcmp(model, "bert") == 0) {
        tok->kind = SLM__TOK_WPM;
        tok->bos = 101, tok->unk = 100, tok->sep = 102, tok->pad = 0;
        tok->clean_spaces = true, tok->add_bos = true;
        snprintf(tok->pre_name, sizeof(tok->pre_name), "default");
    } else {
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1,
                         "tokenizer.ggml.model '%s' is not supported (llama, gpt2, bert are)",
                         model);
    }
    return SLM_OK;
}

static int build(slm_tokenizer_t *tok, const slm_model_file_t *mf, slm_error_t *err)
{
    const char *model = NULL;
    int rc = slm_model_file_get_string(mf, "tokenizer.ggml.model", &model, NULL);
    if (rc < 0)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1,
                         "the file has no tokenizer (tokenizer.ggml.model is missing)");
    tok->bos = tok->eos = tok->eot = tok->eom = SLM_TOKEN_NULL;
    tok->unk = tok->pad = tok->sep = SLM_TOKEN_NULL;
    if ((rc = set_kind(tok, model, err)) < 0)
        return rc;
    if ((rc = load_vocab(tok, mf, err)) < 0)
        return rc;
    if (tok->kind == SLM__TOK_BPE) {
        const char *pre = NULL;
        if (slm_model_file_get_string(mf, "tokenizer.ggml.pre", &pre, NULL) < 0 || !pre) {
            slm_log(SLM_LOG_WARN, LOG_CAT,
                    "no tokenizer.ggml.pre: using the 'default' pre-tokenizer");
            pre = "default";
        }
        if ((rc = load_merges(tok, mf, err)) < 0 || (rc = slm__tok_bpe_init(tok, pre, err)) < 0)
            return rc;
    } else if (tok->kind == SLM__TOK_WPM) {
        tok->wpm_lowercase = true;
        load_bool(mf, "tokenizer.ggml.normalizer.lowercase", &tok->wpm_lowercase);
        tok->wpm_strip_accents = tok->wpm_lowercase;
        load_bool(mf, "tokenizer.ggml.normalizer.strip_accents", &tok->wpm_strip_accents);
    }
    load_bool(mf, "tokenizer.ggml.add_space_prefix", &tok->add_space_prefix);
    load_special_id(tok, mf, "tokenizer.ggml.bos_token_id", &tok->bos);
    load_special_id(tok, mf, "tokenizer.ggml.eos_token_id", &tok->eos);
    load_special_id(tok, mf, "tokenizer.ggml.eot_token_id", &tok->eot);
    load_special_id(tok, mf, "tokenizer.ggml.eom_token_id", &tok->eom);
    load_special_id(tok, mf, "tokenizer.ggml.unknown_token_id", &tok->unk);
    load_special_id(tok, mf, "tokenizer.ggml.seperator_token_id", &tok->sep);
    load_special_id(tok, mf, "tokenizer.ggml.padding_token_id", &tok->pad);
    load_bool(mf, "tokenizer.ggml.add_bos_token", &tok->add_bos);
    load_bool(mf, "tokenizer.ggml.add_eos_token", &tok->add_eos);
    if (detect_eog(tok) < 0 || build_special(tok, mf) < 0 || slm__tok_build_pieces(tok) < 0)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    return SLM_OK;
}

int slm_tokenizer_from_model_file(const slm_model_file_t *mf, slm_tokenizer_t **out,
                                  slm_error_t *err)
{
    if (!mf || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_tokenizer_from_model_file: NULL");
    *out = NULL;
    slm_tokenizer_t *tok = calloc(1, sizeof(*tok));
    if (!tok)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    int rc = build(tok, mf, err);
    if (rc < 0) {
        slm_tokenizer_free(tok);
        return rc;
    }
    *out = tok;
    return SLM_OK;
}

int slm_tokenizer_load(slm_registry_t *reg, const char *path, slm_tokenizer_t **out,
                       slm_error_t *err)
{
    if (!reg || !path || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_tokenizer_load: NULL argument");
    *out = NULL;
    slm_model_file_t *mf = NULL;
    int rc = slm_model_file_open(reg, path, NULL, &mf, err);
    if (rc < 0)
        return rc;
    rc = slm_tokenizer_from_model_file(mf, out, err);
    slm_model_file_free(mf);
    if (rc < 0 && err && err->path[0] == '\0')
        snprintf(err->path, sizeof(err->path), "%s", path);
    return rc;
}

/* ---- encoding ------------------------------------------------------------ */

/* A run of the input: plain text (token < 0) or one special token. */
typedef struct fragment {
    int32_t token;
    size_t off, len;
} fragment_t;

typedef struct fragments {
    fragment_t *v;
    size_t n, cap;
} fragments_t;

static int frag_push(fragments_t *f, int32_t token, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        fragment_t *v = realloc(f->v, cap * sizeof(*v));
        if (!v)
            return SLM_E_NOMEM;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (fragment_t){ token, off, len };
    return SLM_OK;
}

/* Split one text fragment around every occurrence of special token `id`. */
static int split_one(const slm_tokenizer_t *tok, const char *text, fragment_t fr, int32_t id,
                     fragments_t *out)
{
    const slm__tok_str_t *t = &tok->text[id];
    uint32_t attr = tok->attr[id];
    size_t off = fr.off, len = fr.len;
    for (;;) {
        const char *m = len >= t->len ? memmem(text + off, len, t->s, t->len) : NULL;
        if (!m)
            return len ? frag_push(out, -1, off, len) : SLM_OK;
        size_t mpos = (size_t)(m - text);
        size_t llen = mpos - off;
        if (attr & SLM_TOKEN_ATTR_LSTRIP)
            while (llen > 0 && isspace((unsigned char)text[off + llen - 1]))
                llen--;
        if (llen > 0 && frag_push(out, -1, off, llen) < 0)
            return SLM_E_NOMEM;
        if (frag_push(out, id, mpos, t->len) < 0)
            return SLM_E_NOMEM;
        size_t end = fr.off + fr.len;
        off = mpos + t->len;
        len = end - off;
        if (attr & SLM_TOKEN_ATTR_RSTRIP)
            while (len > 0 && isspace((unsigned char)text[off]))
                off++, len--;
    }
}

/* llama.cpp's tokenizer_st_partition: special tokens, longest first, are cut out of
 * the text before the encoder sees it. Control and unknown tokens only when asked. */
static int partition(const slm_tokenizer_t *tok, const char *text, size_t len, bool parse_special,
                     fragments_t *frags)
{
    if (len && frag_push(frags, -1, 0, len) < 0)
        return SLM_E_NOMEM;
    for (size_t k = 0; k < tok->n_special && frags->n; k++) {
        int32_t id = tok->special[k];
        if (!parse_special && (tok->attr[id] & (SLM_TOKEN_ATTR_CONTROL | SLM_TOKEN_ATTR_UNKNOWN)))
            continue;
        fragments_t next = { 0 };
        for (size_t i = 0; i < frags->n; i++) {
            int rc = frags->v[i].token >= 0
                ? frag_push(&next, frags->v[i].token, frags->v[i].off, frags->v[i].len)
                : split_one(tok, text, frags->v[i], id, &next);
            if (rc < 0) {
                free(next.v);
                return rc;
            }
        }
        free(frags->v);
        *frags = next;
    }
    return SLM_OK;
}

static int encode_spm_run(const slm_tokenizer_t *tok, const char *text, size_t len, bool prefix,
                          slm__tok_ids_t *out)
{
    /* Spaces become U+2581 (3 bytes) and a leading one may be added. */
    size_t spaces = prefix;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    if (len > (SIZE_MAX - 4) / 3)
        return SLM_E_NOMEM;
    char *buf = malloc(len + spaces * 2 + 4);
    if (!buf)
        return SLM_E_NOMEM;
    size_t n = 0;
    if (prefix)
        memcpy(buf, "\xe2\x96\x81", 3), n = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            buf[n++] = text[i];
        }
    }
    int rc = slm__tok_spm_encode(tok, buf, n, out);
    free(buf);
    return rc;
}

static int encode_fragments(const slm_tokenizer_t *tok, const char *text, const fragments_t *fr,
                            unsigned flags, slm__tok_ids_t *out)
{
    int rc = SLM_OK;
    bool add_bos = (flags & SLM_TOKENIZE_ADD_BOS) && tok->bos >= 0;
    if (add_bos)
        rc = slm__tok_ids_push(out, tok->bos);
    bool prev_special = true;  /* SentencePiece adds its space prefix after these */
    for (size_t i = 0; i < fr->n && rc == SLM_OK; i++) {
        const fragment_t *f = &fr->v[i];
        if (f->token >= 0) {
            rc = slm__tok_ids_push(out, f->token);
            prev_special = true;
            continue;
        }
        const char *s = text + f->off;
        switch (tok->kind) {
        case SLM__TOK_SPM:
            rc = encode_spm_run(tok, s, f->len, tok->add_space_prefix && prev_special, out);
            break;
        case SLM__TOK_BPE:
            rc = slm__tok_bpe_encode(tok, s, f->len, out);
            break;
        default:
            rc = slm__tok_wpm_encode(tok, s, f->len, out);
            break;
        }
        prev_special = false;
    }
    /* BERT-style inputs end with [SEP] whenever they start with [CLS]. */
    if (rc == SLM_OK && add_bos && tok->kind == SLM__TOK_WPM && tok->sep >= 0)
        rc = slm__tok_ids_push(out, tok->sep);
    return rc;
}

int slm_tokenizer_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                         unsigned flags, int32_t **ids, size_t *n_ids, slm_error_t *err)
{
    if (!tok || (!text && len) || !ids || !n_ids)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    fragments_t fr = { 0 };
    slm__tok_ids_t out = { 0 };
    int rc = partition(tok, text, len, (flags & SLM_TOKENIZE_PARSE_SPECIAL) != 0, &fr);
    if (rc == SLM_OK)
        rc = encode_fragments(tok, text, &fr, flags, &out);
    free(fr.v);
    if (rc < 0) {
        free(out.v);
        return slm__fail(err, rc, NULL, -1, "tokenizing %zu bytes failed: %s", len,
                         slm_strerror(rc));
    }
    *ids = out.v;
    *n_ids = out.n;
    return SLM_OK;
}

/* ---- accessors ----------------------------------------------------------- */

static bool valid_id(const slm_tokenizer_t *tok, int32_t id)
{
    return tok && id >= 0 && (size_t)id < tok->n_vocab;
}

const char *slm_tokenizer_token_text(const slm_tokenizer_t *tok, int32_t id)
{
    return valid_id(tok, id) ? tok->text[id].s : NULL;
}

float slm_tokenizer_token_score(const slm_tokenizer_t *tok, int32_t id)
{
    return valid_id(tok, id) ? tok->score[id] : 0.0f;
}

unsigned slm_tokenizer_token_attr(const slm_tokenizer_t *tok, int32_t id)
{
    return valid_id(tok, id) ? tok->attr[id] : 0u;
}

int32_t slm_tokenizer_find_token(const slm_tokenizer_t *tok, const char *text, size_t len)
{
    return tok && text ? slm__tok_find(tok, text, len) : SLM_TOKEN_NULL;
}

size_t slm_tokenizer_n_vocab(const slm_tokenizer_t *tok) { return tok ? tok->n_vocab : 0; }
int32_t slm_tokenizer_bos(const slm_tokenizer_t *tok) { return tok ? tok->bos : SLM_TOKEN_NULL; }
int32_t slm_tokenizer_eos(const slm_tokenizer_t *tok) { return tok ? tok->eos : SLM_TOKEN_NULL; }
int32_t slm_tokenizer_eot(const slm_tokenizer_t *tok) { return tok ? tok->eot : SLM_TOKEN_NULL; }
int32_t slm_tokenizer_unk(const slm_tokenizer_t *tok) { return tok ? tok->unk : SLM_TOKEN_NULL; }
int32_t slm_tokenizer_pad(const slm_tokenizer_t *tok) { return tok ? tok->pad : SLM_TOKEN_NULL; }
bool slm_tokenizer_add_bos(const slm_tokenizer_t *tok) { return tok && tok->add_bos; }
const char *slm_tokenizer_pre(const slm_tokenizer_t *tok) { return tok ? tok->pre_name : ""; }

bool slm_tokenizer_is_eog(const slm_tokenizer_t *tok, int32_t id)
{
    if (!valid_id(tok, id))
        return false;
    for (size_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id)
            return true;
    return false;
}

const char *slm_tokenizer_kind(const slm_tokenizer_t *tok)
{
    if (!tok)
        return "";
    return tok->kind == SLM__TOK_SPM ? "spm" : tok->kind == SLM__TOK_BPE ? "bpe" : "wpm";
}

/* GGUF tokenizer.* keys -> tokenizer.json and tokenizer_config.json as Hugging
 * Face's LlamaTokenizerFast (SentencePiece-style) or byte-level BPE writes them. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

#define RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define SPM_SPACE "\xe2\x96\x81"   /* U+2581, SentencePiece's space */

static int32_t type_of(const st_tok_src_t *t, uint64_t i)
{
    return t->types ? t->types[i] : ST_TOK_NORMAL;
}

static bool is_added(int32_t type)
{
    return type == ST_TOK_CONTROL || type == ST_TOK_USER || type == ST_TOK_UNKNOWN;
}

static json_t *token_str(const st_tok_src_t *t, uint64_t i)
{
    return json_stringn_nocheck(t->tokens[i], (size_t)t->token_lens[i]);
}

static json_t *added_tokens(const st_tok_src_t *t)
{
    json_t *a = json_array();
    for (uint64_t i = 0; a && i < t->n_tokens; i++) {
        int32_t type = type_of(t, i);
        if (!is_added(type))
            continue;
        json_array_append_new(a, json_pack("{sI so sb sb sb sb sb}", "id", (json_int_t)i, "content",
                                           token_str(t, i), "single_word", 0, "lstrip", 0, "rstrip", 0,
                                           "normalized", type == ST_TOK_USER, "special",
                                           type != ST_TOK_USER));
    }
    return a;
}

/* ---- merges for SentencePiece vocabularies (HF's SentencePieceExtractor) ---- */

typedef struct strmap {
    const st_tok_src_t *t;
    int64_t *slot;     /* token id, -1 empty */
    size_t mask;
} strmap_t;

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int64_t map_find(const strmap_t *m, const char *s, size_t n)
{
    for (size_t i = hash(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int64_t id = m->slot[i];
        if (id < 0)
            return -1;
        if (m->t->token_lens[id] == n && memcmp(m->t->tokens[id], s, n) == 0)
            return id;
    }
}

static bool map_build(strmap_t *m, const st_tok_src_t *t)
{
    size_t cap = 16;
    while (cap < t->n_tokens * 2)
        cap *= 2;
    m->t = t;
    m->mask = cap - 1;
    if (!(m->slot = malloc(cap * sizeof *m->slot)))
        return false;
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    for (uint64_t id = 0; id < t->n_tokens; id++) {
        const char *s = t->tokens[id];
        size_t n = (size_t)t->token_lens[id];
        if (map_find(m, s, n) >= 0)
            continue;   /* the first of duplicate pieces wins */
        size_t i = hash(s, n) & m->mask;
        while (m->slot[i] >= 0)
            i = (i + 1) & m->mask;
        m->slot[i] = (int64_t)id;
    }
    return true;
}

static const st_tok_src_t *sort_src;

static int by_score(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    float sx = sort_src->scores ? sort_src->scores[x] : -(float)x;
    float sy = sort_src->scores ? sort_src->scores[y] : -(float)y;
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int by_pair(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

static void append_merge(json_t *merges, const st_tok_src_t *t, int64_t l, int64_t r, bool pairs)
{
    if (pairs) {
        json_array_append_new(merges, json_pack("[oo]", token_str(t, (uint64_t)l), token_str(t, (uint64_t)r)));
        return;
    }
    size_t a = (size_t)t->token_lens[l], b = (size_t)t->token_lens[r];
    char *s = malloc(a + b + 2);
    if (!s)
        return;
    memcpy(s, t->tokens[l], a);
    s[a] = ' ';
    memcpy(s + a + 1, t->tokens[r], b);
    json_array_append_new(merges, json_stringn_nocheck(s, a + b + 1));
    free(s);
}

/* Every piece, best score first, splits into all (left, right) pairs that are
 * both pieces; within a piece the pairs go by the ids of their halves. */
static json_t *spm_merges(const st_tok_src_t *t, bool pairs)
{
    strmap_t m;
    uint64_t *order = malloc((t->n_tokens ? t->n_tokens : 1) * sizeof *order);
    int64_t *local = NULL;
    json_t *merges = json_array();
    if (!order || !merges || !map_build(&m, t)) {
        free(order);
        json_decref(merges);
        return NULL;
    }
    uint64_t n = 0, max_len = 1;
    for (uint64_t i = 0; i < t->n_tokens; i++) {
        if (type_of(t, i) == ST_TOK_NORMAL || type_of(t, i) == ST_TOK_USER)
            order[n++] = i;
        if (t->token_lens[i] > max_len)
            max_len = t->token_lens[i];
    }
    sort_src = t;
    qsort(order, n, sizeof *order, by_score);
    local = malloc(max_len * 2 * sizeof *local);
    for (uint64_t k = 0; local && k < n; k++) {
        const char *s = t->tokens[order[k]];
        size_t len = (size_t)t->token_lens[order[k]], nl = 0;
        for (size_t cut = 1; cut < len; cut++) {
            int64_t l = map_find(&m, s, cut), r = l >= 0 ? map_find(&m, s + cut, len - cut) : -1;
            if (r >= 0) {
                local[2 * nl] = l;
                local[2 * nl++ + 1] = r;
            }
        }
        qsort(local, nl, 2 * sizeof *local, by_pair);
        for (size_t i = 0; i < nl; i++)
            append_merge(merges, t, local[2 * i], local[2 * i + 1], pairs);
    }
    if (!local) {
        json_decref(merges);
        merges = NULL;
    }
    free(local);
    free(order);
    free(m.slot);
    return merges;
}

/* GGUF stores byte-level merges as "a b"; HF reads those or [a, b] pairs. */
static json_t *bpe_merges(const st_tok_src_t *t, bool pairs)
{
    json_t *merges = json_array();
    for (uint64_t i = 0; merges && i < t->n_merges; i++) {
        const char *s = t->merges[i], *sp = memchr(s, ' ', (size_t)t->merge_lens[i]);
        if (!pairs || !sp) {
            json_array_append_new(merges, json_stringn_nocheck(s, (size_t)t->merge_lens[i]));
            continue;
        }
        json_array_append_new(merges, json_pack("[s#s#]", s, (int)(sp - s), sp + 1,
                                                (int)(t->merge_lens[i] - (uint64_t)(sp - s) - 1)));
    }
    return merges;
}

static bool any_space(const st_tok_src_t *t)
{
    for (uint64_t i = 0; i < t->n_tokens; i++)
        if (memchr(t->tokens[i], ' ', (size_t)t->token_lens[i]))
            return true;
    return false;
}

static json_t *vocab(const st_tok_src_t *t)
{
    json_t *v = json_object();
    for (uint64_t i = 0; v && i < t->n_tokens; i++) {
        char *key = strndup(t->tokens[i], (size_t)t->token_lens[i]);
        if (key && !json_object_get(v, key))
            json_object_set_new_nocheck(v, key, json_integer((json_int_t)i));
        else if (key)
            st_log(SLM_LOG_WARN, "token %llu '%s' repeats an earlier one; left out of the vocab",
                   (unsigned long long)i, key);
        free(key);
    }
    return v;
}

static json_t *content_or_null(const st_tok_src_t *t, int64_t id)
{
    return id >= 0 && (uint64_t)id < t->n_tokens ? token_str(t, (uint64_t)id) : json_null();
}

static json_t *spm_tokenizer(const st_tok_src_t *t, json_t *merges)
{
    json_t *post = json_null();
    if (t->add_bos != 0 && t->bos >= 0 && (uint64_t)t->bos < t->n_tokens) {
        json_t *bos = token_str(t, (uint64_t)t->bos);
        post = json_pack("{ss s[{s{sOsi}}{s{sssi}}] s[{s{sOsi}}{s{sssi}}{s{sOsi}}{s{sssi}}] s{s{sOs[I]s[O]}}}",
                         "type", "TemplateProcessing",
                         "single", "SpecialToken", "id", bos, "type_id", 0, "Sequence", "id", "A", "type_id", 0,
                         "pair", "SpecialToken", "id", bos, "type_id", 0, "Sequence", "id", "A", "type_id", 0,
                         "SpecialToken", "id", bos, "type_id", 1, "Sequence", "id", "B", "type_id", 1,
                         "special_tokens", json_string_value(bos), "id", bos, "ids", (json_int_t)t->bos,
                         "tokens", bos);
        json_decref(bos);
    }
    return json_pack(
        "{ss so so so s{ss s[{ss ss}{ss s{ss} ss}]} sn so s{ss s[{ss s{ss} ss}{ss}{ss}{ss ss si si}]}"
        " s{ss sn so sn sn sb sb so so}}",
        "version", "1.0", "truncation", json_null(), "padding", json_null(), "added_tokens", added_tokens(t),
        "normalizer", "type", "Sequence", "normalizers", "type", "Prepend", "prepend", SPM_SPACE,
        "type", "Replace", "pattern", "String", " ", "content", SPM_SPACE,
        "pre_tokenizer", "post_processor", post,
        "decoder", "type", "Sequence", "decoders", "type", "Replace", "pattern", "String", SPM_SPACE,
        "content", " ", "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ",
        "start", 1, "stop", 0,
        "model", "type", "BPE", "dropout", "unk_token", content_or_null(t, t->unk),
        "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 1,
        "vocab", vocab(t), "merges", merges);
}

static json_t *byte_level_pre(const char *pre)
{
    const char *re = NULL;
    if (pre && (strcmp(pre, "llama3") == 0 || strcmp(pre, "llama-bpe") == 0))
        re = RE_LLAMA3;
    else if (pre && strcmp(pre, "qwen2") == 0)
        re = RE_QWEN2;
    else if (pre && strcmp(pre, "gpt-2") != 0 && strcmp(pre, "default") != 0)
        st_log(SLM_LOG_WARN, "pre-tokenizer '%s' has no tokenizer.json form here; writing GPT-2's", pre);
    if (!re)
        return json_pack("{ss sb sb sb}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                         "use_regex", 1);
    return json_pack("{ss s[{ss s{ss} ss sb}{ss sb sb sb}]}", "type", "Sequence", "pretokenizers",
                     "type", "Split", "pattern", "Regex", re, "behavior", "Isolated", "invert", 0,
                     "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
}

static json_t *bpe_tokenizer(const st_tok_src_t *t, json_t *merges)
{
    json_t *model = json_pack("{ss sn sn sn sn sb sb so so}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "vocab", vocab(t), "merges", merges);
    if (model && t->pre && (strcmp(t->pre, "llama3") == 0 || strcmp(t->pre, "llama-bpe") == 0))
        json_object_set_new(model, "ignore_merges", json_true());
    return json_pack("{ss sn sn so sn so s{ss sb sb sb} s{ss sb sb sb} so}", "version", "1.0",
                     "truncation", "padding", "added_tokens", added_tokens(t), "normalizer",
                     "pre_tokenizer", byte_level_pre(t->pre),
                     "post_processor", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0,
                     "use_regex", 1,
                     "decoder", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                     "use_regex", 1, "model", model);
}

int st_tokenizer_json(const st_tok_src_t *t, json_t **out, const char **why)
{
    *out = NULL;
    bool spm = strcmp(t->model, "llama") == 0;
    if (!spm && strcmp(t->model, "gpt2") != 0) {
        *why = "only SentencePiece-style (\"llama\") and byte-level (\"gpt2\") BPE tokenizers can be written";
        return SLM_E_UNSUPPORTED;
    }
    bool pairs = any_space(t);
    json_t *merges = spm ? spm_merges(t, pairs) : bpe_merges(t, pairs);
    *out = merges ? (spm ? spm_tokenizer(t, merges) : bpe_tokenizer(t, merges)) : NULL;
    *why = "out of memory building tokenizer.json";
    return *out ? SLM_OK : SLM_E_NOMEM;
}

json_t *st_tokenizer_config_json(const st_tok_src_t *t)
{
    json_t *c = json_object(), *dec = json_object();
    if (!c || !dec) {
        json_decref(c);
        json_decref(dec);
        return NULL;
    }
    bool spm = strcmp(t->model, "llama") == 0;
    json_object_set_new(c, "add_bos_token", json_boolean(t->add_bos >= 0 ? t->add_bos : spm));
    json_object_set_new(c, "add_eos_token", json_boolean(t->add_eos > 0));
    for (uint64_t i = 0; i < t->n_tokens; i++) {
        int32_t type = type_of(t, i);
        if (!is_added(type))
            continue;
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)i);
        json_object_set_new(dec, id, json_pack("{so sb sb sb sb sb}", "content", token_str(t, i), "lstrip", 0,
                                               "normalized", type == ST_TOK_USER, "rstrip", 0,
                                               "single_word", 0, "special", type != ST_TOK_USER));
    }
    json_object_set_new(c, "added_tokens_decoder", dec);
    json_object_set_new(c, "bos_token", content_or_null(t, t->bos));
    if (t->chat_template)
        json_object_set_new(c, "chat_template", json_string(t->chat_template));
    json_object_set_new(c, "clean_up_tokenization_spaces", json_false());
    json_object_set_new(c, "eos_token", content_or_null(t, t->eos));
    if (t->ctx > 0)
        json_object_set_new(c, "model_max_length", json_integer(t->ctx));
    json_object_set_new(c, "pad_token", content_or_null(t, t->pad));
    json_object_set_new(c, "tokenizer_class", json_string(spm ? "LlamaTokenizer" : "PreTrainedTokenizerFast"));
    json_object_set_new(c, "unk_token", content_or_null(t, t->unk));
    return c;
}

/* Byte-level BPE ("gpt2" vocabularies): pre-tokenizer regexes per tokenizer.ggml.pre
 * (PCRE2, Unicode properties), GPT-2's byte-to-unicode mapping, merges by rank. */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "tokenizer/tokenizer-internal.h"

/* llama.cpp's whitespace set (its \s): matching runs on text where non-ASCII
 * whitespace has become \v, as in llama.cpp, so ASCII would do; the full list keeps
 * the patterns meaningful on their own. */
#define WS "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}" \
           "\\x{202f}\\x{205f}\\x{3000}"
#define SP "[" WS "]"
#define NOT_FOLLOWED_BY_NONSPACE "(?![^" WS "])"

#define RE_GPT2 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" \
    SP "+" NOT_FOLLOWED_BY_NONSPACE
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3_LIKE(num) \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" num "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" \
    SP "*[\\r\\n]+|" SP "+" NOT_FOLLOWED_BY_NONSPACE "|" SP "+"
#define RE_CJK "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"
#define RE_PORO " ?[^(" WS "|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"
/* Cased letters of many scripts, as DeepSeek's tokenizer.json lists them. */
#define RE_DEEPSEEK_LETTERS \
    "[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}" \
    "\\x{1c4}-\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}" \
    "\\x{37f}\\x{386}\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}" \
    "\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}" \
    "\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}" \
    "\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}" \
    "\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}" \
    "\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}" \
    "\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}" \
    "\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}" \
    "\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}" \
    "\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}" \
    "\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}" \
    "\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}\\x{a771}-\\x{a787}" \
    "\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}" \
    "\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}" \
    "\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}" \
    "\\x{1e900}-\\x{1e943}]+"

enum { MAX_RE = 6 };

/* One pre-tokenizer: the regexes llama.cpp applies in turn (each splits the pieces
 * the previous ones left, keeping unmatched text as pieces of its own). */
typedef struct pre_tokenizer {
    const char *names;       /* '|'-separated tokenizer.ggml.pre values */
    const char *re[MAX_RE];
    bool ignore_merges, keep_spaces, add_bos, no_bos;
} pre_tokenizer_t;

static const pre_tokenizer_t pre_tokenizers[] = {
    { "default", { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" },
      false, false, false, false },
    { "llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2",
      { RE_LLAMA3_LIKE("\\p{N}{1,3}") }, true, false, true, false },
    { "dbrx|smaug-bpe", { RE_LLAMA3_LIKE("\\p{N}{1,3}") }, false, false, false, false },
    { "chatglm-bpe|glm4", { RE_LLAMA3_LIKE("\\p{N}{1,3}") }, false, false, false, true },
    { "deepseek-llm",
      { "[\\r\\n]", SP "?" RE_DEEPSEEK_LETTERS,
        SP "?[\\x{21}-\\x{2f}\\x{3a}-\\x{7e}\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}"
        "\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+",
        SP "+$", RE_CJK, "\\p{N}+" }, false, true, false, false },
    { "deepseek-coder",
      { "[\\r\\n]", SP "?\\p{L}+", SP "?\\p{P}+", RE_CJK, "\\p{N}" },
      false, true, false, false },
    { "deepseek-v3",
      { "\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
        "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|" SP "*[\\r\\n]+|" SP "+"
        NOT_FOLLOWED_BY_NONSPACE "|" SP "+" }, false, true, false, false },
    { "falcon", { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]" },
      false, false, false, false },
    { "starcoder|refact|codeshell|exaone|minerva-7b", { "\\p{N}", RE_GPT2 },
      false, false, false, false },
    { "command-r|smollm", { "\\p{N}", RE_GPT2 }, false, true, false, false },
    { "gpt-2|mpt|olmo|jais|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|"
      "mellum|modern-bert|exaone4|jina-v1-en|jina-v2-code|roberta-bpe", { RE_GPT2 },
      false, false, false, false },
    { "trillion|granite-docling", { RE_GPT2 }, false, true, false, false },
    { "qwen2|deepseek-r1-qwen|kormo|hunyuan|grok-2", { RE_LLAMA3_LIKE("\\p{N}") },
      false, true, false, false },
    { "stablelm2|megrez", { RE_LLAMA3_LIKE("\\p{N}") }, false, false, false, false },
    { "seed-coder",
      { RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^" WS
        "\\p{L}\\p{N}\\r\\n]+|" SP "*[\\r\\n]+|" SP "+" NOT_FOLLOWED_BY_NONSPACE "|" SP "+" },
      false, true, false, false },
    { "poro-chat", { RE_PORO }, false, true, false, false },
    { "bloom|gpt3-finnish", { RE_PORO }, false, false, false, false },
    { "viking", { RE_PORO, "\\p{N}" }, false, true, false, false },
    { "tekken",
      { "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
        "\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" SP "*[\\r\\n]+|" SP "+"
        NOT_FOLLOWED_BY_NONSPACE "|" SP "+" }, true, true, true, false },
    { "gpt-4o|llama4",
      { "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
        "(?:" RE_CONTRACTIONS ")?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
        "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:" RE_CONTRACTIONS ")?|\\p{N}{1,3}| ?[^" WS
        "\\p{L}\\p{N}]+[\\r\\n/]*|" SP "*[\\r\\n]+|" SP "+" NOT_FOLLOWED_BY_NONSPACE "|" SP "+" },
      false, true, false, false },
    { "bailingmoe|bailingmoe2|llada-moe",
      { "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^"
        WS "\\p{L}\\p{N}]+[\\r\\n]*|" SP "*[\\r\\n]|" SP "+" NOT_FOLLOWED_BY_NONSPACE "|" SP "+" },
      false, true, false, false },
};

static bool name_in(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

/* ---- GPT-2 bytes <-> code points ---------------------------------------- */

/* Printable Latin-1 bytes stand for themselves; the others map to 256 + n. */
uint32_t slm__tok_byte_to_cp(uint8_t b)
{
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae)
        return b;
    uint32_t n = 0;
    for (uint32_t c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae))
            n++;
    return 256 + n;
}

int slm__tok_cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xac) || (cp >= 0xae && cp <= 0xff))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68)
        return -1;
    uint32_t n = 256;
    for (uint32_t c = 0; c < 256; c++)
        if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae))
            if (n++ == cp)
                return (int)c;
    return -1;
}

/* ---- set-up -------------------------------------------------------------- */

static pcre2_code *compile(const char *pattern, char *why, size_t why_len)
{
    /* The library is the 32-bit one (code points, as llama.cpp matches): widen. */
    size_t len = strlen(pattern), n = 0;
    uint32_t *p32 = malloc((len + 1) * sizeof(*p32));
    if (!p32) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len;)
        p32[n++] = slm__tok_utf8_next((const unsigned char *)pattern, len, &i);
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *re = pcre2_compile(p32, n, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                                   &errcode, &erroff, NULL);
    free(p32);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(errcode, msg, SLM__ARRAY_LEN(msg));
        size_t k = 0;
        for (; msg[k] && k + 1 < why_len; k++)
            why[k] = msg[k] < 128 ? (char)msg[k] : '?';
        why[k] = '\0';
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  /* faster when available */
    return re;
}

int slm__tok_bpe_init(slm_tokenizer_t *tok, const char *pre, slm_error_t *err)
{
    const pre_tokenizer_t *pt = NULL;
    for (size_t i = 0; i < SLM__ARRAY_LEN(pre_tokenizers) && !pt; i++)
        if (name_in(pre_tokenizers[i].names, pre))
            pt = &pre_tokenizers[i];
    if (!pt)
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1,
                         "unknown pre-tokenizer tokenizer.ggml.pre = '%s'", pre);
    snprintf(tok->pre_name, sizeof(tok->pre_name), "%s", pre);
    tok->ignore_merges = pt->ignore_merges;
    tok->clean_spaces = !pt->keep_spaces;
    tok->add_bos = pt->add_bos;
    if (pt->no_bos)
        tok->bos = SLM_TOKEN_NULL;
    tok->regex = calloc(MAX_RE, sizeof(*tok->regex));
    if (!tok->regex)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    for (size_t i = 0; i < MAX_RE && pt->re[i]; i++) {
        char why[128];
        tok->regex[i] = compile(pt->re[i], why, sizeof(why));
        if (!tok->regex[i])
            return slm__fail(err, SLM_E_INVALID, NULL, -1,
                             "pre-tokenizer '%s': regex %zu does not compile: %s", pre, i, why);
        tok->n_regex++;
    }
    return SLM_OK;
}

void slm__tok_bpe_free(slm_tokenizer_t *tok)
{
    for (size_t i = 0; i < tok->n_regex; i++)
        pcre2_code_free(tok->regex[i]);
    free(tok->regex);
    tok->regex = NULL;
    tok->n_regex = 0;
}

/* ---- splitting ----------------------------------------------------------- */

typedef struct span {
    size_t off, len;   /* in code points */
} span_t;

typedef struct spans {
    span_t *v;
    size_t n, cap;
} spans_t;

static int span_push(spans_t *s, size_t off, size_t len)
{
    if (len == 0)
        return SLM_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        span_t *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return SLM_E_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (span_t){ off, len };
    return SLM_OK;
}

static bool is_nonascii_space(uint32_t c)
{
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a)
        || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Each match becomes a piece, and so does the text between matches. Every span is
 * matched on its own, so lookarounds and $ stop at its ends, as with std::regex. */
static int split_spans(const pcre2_code *re, const uint32_t *subject, const spans_t *in,
                       spans_t *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return SLM_E_NOMEM;
    int rc = SLM_OK;
    for (size_t k = 0; k < in->n && rc == SLM_OK; k++) {
        const uint32_t *s = subject + in->v[k].off;
        size_t len = in->v[k].len, pos = 0, prev = 0;
        while (pos < len && rc == SLM_OK) {
            int m = pcre2_match(re, s, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            /* JIT code runs on a small machine stack; the interpreter uses the heap. */
            if (m < 0 && m != PCRE2_ERROR_NOMATCH)
                m = pcre2_match(re, s, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
            if (m == PCRE2_ERROR_NOMATCH)
                break;  /* the rest is one piece */
            if (m < 0) {
                rc = SLM_E_NOMEM;  /* a matching limit: refuse rather than split wrongly */
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] == ov[0]) {  /* an empty match splits nothing */
                pos = ov[0] + 1;
                continue;
            }
            rc = span_push(out, in->v[k].off + prev, ov[0] - prev);
            if (rc == SLM_OK)
                rc = span_push(out, in->v[k].off + ov[0], ov[1] - ov[0]);
            prev = pos = ov[1];
        }
        if (rc == SLM_OK)
            rc = span_push(out, in->v[k].off + prev, len - prev);
    }
    pcre2_match_data_free(md);
    return rc;
}

/* ---- merging ------------------------------------------------------------- */

typedef struct bpe_work {
    slm__tok_heap_t heap;
    slm__tok_buf_t key;    /* "left right" for rank lookups */
} bpe_work_t;

/* *rank: the merge's position in tokenizer.ggml.merges, or -1 when not a merge. */
static int rank_of(const slm_tokenizer_t *tok, bpe_work_t *w, const slm__tok_sym_t *l,
                   const slm__tok_sym_t *r, int32_t *rank)
{
    w->key.n = 0;
    if (slm__tok_buf_append(&w->key, l->text, l->n) < 0
        || slm__tok_buf_append(&w->key, " ", 1) < 0
        || slm__tok_buf_append(&w->key, r->text, r->n) < 0)
        return SLM_E_NOMEM;
    *rank = slm__tok_index_find(&tok->merge_index, tok->merges, w->key.v, w->key.n);
    return SLM_OK;
}

static int add_bigram(const slm_tokenizer_t *tok, bpe_work_t *w, const slm__tok_sym_t *syms,
                      int left, int right)
{
    if (left < 0 || right < 0)
        return SLM_OK;
    int32_t rank = -1;
    if (rank_of(tok, w, &syms[left], &syms[right], &rank) < 0)
        return SLM_E_NOMEM;
    if (rank < 0)
        return SLM_OK;
    return slm__tok_heap_push(&w->heap, (slm__tok_bigram_t){
        left, right, -(double)rank, syms[left].n + syms[right].n });
}

static int emit(const slm_tokenizer_t *tok, const slm__tok_sym_t *sym, slm__tok_ids_t *out)
{
    int32_t id = slm__tok_find(tok, sym->text, sym->n);
    if (id >= 0)
        return slm__tok_ids_push(out, id);
    /* llama.cpp looks each byte of the (already byte-encoded) text up on its own. */
    for (size_t j = 0; j < sym->n; j++) {
        id = slm__tok_find(tok, sym->text + j, 1);
        if (id >= 0 && slm__tok_ids_push(out, id) < 0)
            return SLM_E_NOMEM;
    }
    return SLM_OK;
}

static int merge_word(const slm_tokenizer_t *tok, bpe_work_t *w, const char *word, size_t len,
                      slm__tok_ids_t *out)
{
    if (tok->ignore_merges) {
        int32_t id = slm__tok_find(tok, word, len);
        if (id >= 0)
            return slm__tok_ids_push(out, id);
    }
    slm__tok_sym_t *syms = NULL;
    size_t n = 0;
    int rc = slm__tok_syms_split(word, len, &syms, &n);
    w->heap.n = 0;
    for (size_t i = 1; i < n && rc == SLM_OK; i++)
        rc = add_bigram(tok, w, syms, (int)i - 1, (int)i);
    while (rc == SLM_OK && w->heap.n) {
        slm__tok_bigram_t b = slm__tok_heap_pop(&w->heap);
        slm__tok_sym_t *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        rc = add_bigram(tok, w, syms, l->prev, b.left);
        if (rc == SLM_OK)
            rc = add_bigram(tok, w, syms, b.left, l->next);
    }
    for (int i = n ? 0 : -1; i != -1 && rc == SLM_OK; i = syms[i].next)
        if (syms[i].n)
            rc = emit(tok, &syms[i], out);
    free(syms);
    return rc;
}

/* The piece's code points, as UTF-8 bytes, each byte spelled as GPT-2's code point. */
static int byte_encode(const uint32_t *cps, size_t n, slm__tok_buf_t *word)
{
    word->n = 0;
    for (size_t i = 0; i < n; i++) {
        char u[4], e[4];
        size_t ul = slm__tok_utf8_put(cps[i], u);
        for (size_t j = 0; j < ul; j++) {
            size_t el = slm__tok_utf8_put(slm__tok_byte_to_cp((uint8_t)u[j]), e);
            if (slm__tok_buf_append(word, e, el) < 0)
                return SLM_E_NOMEM;
        }
    }
    return SLM_OK;
}

int slm__tok_bpe_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        slm__tok_ids_t *out)
{
    if (len == 0)
        return SLM_OK;
    uint32_t *cps = malloc(len * sizeof(*cps)), *match = malloc(len * sizeof(*match));
    spans_t a = { 0 }, b = { 0 };
    bpe_work_t w = { 0 };
    slm__tok_buf_t word = { 0 };
    int rc = cps && match ? SLM_OK : SLM_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len && rc == SLM_OK;) {
        uint32_t c = slm__tok_utf8_next((const unsigned char *)text, len, &i);
        cps[n] = c;
        /* What the regexes see: llama.cpp's \v for non-ASCII spaces, and U+FFFD for
         * what UTF-32 cannot hold (surrogates, beyond U+10FFFF). */
        match[n++] = is_nonascii_space(c) ? 0x0b
                   : (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff ? 0xfffd : c;
    }
    if (rc == SLM_OK)
        rc = span_push(&a, 0, n);
    for (size_t r = 0; r < tok->n_regex && rc == SLM_OK; r++) {
        b.n = 0;
        rc = split_spans(tok->regex[r], match, &a, &b);
        spans_t t = a;
        a = b;
        b = t;
    }
    for (size_t k = 0; k < a.n && rc == SLM_OK; k++) {
        rc = byte_encode(cps + a.v[k].off, a.v[k].len, &word);
        if (rc == SLM_OK)
            rc = merge_word(tok, &w, word.v, word.n, out);
    }
    free(cps);
    free(match);
    free(a.v);
    free(b.v);
    free(w.heap.v);
    free(w.key.v);
    free(word.v);
    return rc;
}

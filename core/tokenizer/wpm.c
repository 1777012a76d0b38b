/* WordPiece ("bert" vocabularies): lower-casing, accent stripping and punctuation
 * splits (utf8proc's Unicode tables), then the longest vocabulary prefix, as
 * llama.cpp's llm_tokenizer_wpm. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer-internal.h"

static bool is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680
        || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f
        || c == 0x205f || c == 0x3000;
}

static bool is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)
        || (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F)
        || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF)
        || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* llama.cpp's "NFD" keeps the first code point of the canonical decomposition. */
static uint32_t nfd_first(uint32_t c)
{
    utf8proc_int32_t out[8];
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)c, out, 8,
                                                 UTF8PROC_DECOMPOSE, &last);
    return n > 0 && n <= 8 ? (uint32_t)out[0] : c;
}

typedef enum { CAT_OTHER, CAT_CONTROL, CAT_MARK, CAT_PUNCT, CAT_SYMBOL } cat_t;

static cat_t category(uint32_t c)
{
    if (c > 0x10ffff)
        return CAT_OTHER;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return CAT_CONTROL;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return CAT_MARK;
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return CAT_PUNCT;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        return CAT_SYMBOL;
    default:
        return CAT_OTHER;
    }
}

/* Words as "\xe2\x96\x81word\0" one after the other in *words (the converter writes
 * word-initial pieces with U+2581 in front). */
static int preprocess(const slm_tokenizer_t *tok, const char *text, size_t len,
                      slm__tok_buf_t *words, size_t *n_words)
{
    bool open = false;  /* a word is being appended to */
    *n_words = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = slm__tok_utf8_next((const unsigned char *)text, len, &i);
        if (tok->wpm_strip_accents)
            c = nfd_first(c);
        if (is_space(c)) {
            if (open && slm__tok_buf_append(words, "", 1) < 0)
                return SLM_E_NOMEM;
            open = false;
            continue;
        }
        cat_t cat = category(c);
        if (c == 0 || c == 0xfffd || cat == CAT_CONTROL)
            continue;
        if (tok->wpm_strip_accents && cat == CAT_MARK)
            continue;
        bool alone = cat == CAT_PUNCT || (c < 0x7f && cat == CAT_SYMBOL) || is_chinese(c);
        if (tok->wpm_lowercase && c <= 0x10ffff)
            c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        char u[4];
        size_t ul = slm__tok_utf8_put(c, u);
        if (alone && open) {
            if (slm__tok_buf_append(words, "", 1) < 0)
                return SLM_E_NOMEM;
            open = false;
        }
        if (!open) {
            if (slm__tok_buf_append(words, "\xe2\x96\x81", 3) < 0)
                return SLM_E_NOMEM;
            (*n_words)++;
            open = true;
        }
        if (slm__tok_buf_append(words, u, ul) < 0)
            return SLM_E_NOMEM;
        if (alone) {
            if (slm__tok_buf_append(words, "", 1) < 0)
                return SLM_E_NOMEM;
            open = false;
        }
    }
    if (open && slm__tok_buf_append(words, "", 1) < 0)
        return SLM_E_NOMEM;
    return SLM_OK;
}

/* Greedy longest match from the left; a word with any unmatched position becomes
 * one unknown token. */
static int encode_word(const slm_tokenizer_t *tok, const char *w, size_t n, slm__tok_ids_t *out)
{
    size_t start = out->n;
    for (size_t i = 0; i < n; i++) {
        bool match = false;
        size_t hi = i + tok->max_token_len + 1 < n ? i + tok->max_token_len + 1 : n;
        for (size_t j = hi; j > i; j--) {
            int32_t id = slm__tok_find(tok, w + i, j - i);
            if (id >= 0) {
                if (slm__tok_ids_push(out, id) < 0)
                    return SLM_E_NOMEM;
                match = true;
                i = j - 1;
                break;
            }
        }
        if (!match) {
            out->n = start;
            break;
        }
    }
    if (out->n == start && tok->unk >= 0)
        return slm__tok_ids_push(out, tok->unk);
    return SLM_OK;
}

int slm__tok_wpm_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        slm__tok_ids_t *out)
{
    slm__tok_buf_t words = { 0 };
    size_t n_words = 0;
    int rc = preprocess(tok, text, len, &words, &n_words);
    const char *w = words.v;
    for (size_t k = 0; k < n_words && rc == SLM_OK; k++) {
        size_t n = strlen(w);
        rc = encode_word(tok, w, n, out);
        w += n + 1;
    }
    free(words.v);
    return rc;
}

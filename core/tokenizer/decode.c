/* Ids back to text: the bytes each token prints as, whole-sequence decoding with
 * llama.cpp's clean-ups, and the streaming decoder that never splits a character. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "tokenizer/tokenizer-internal.h"

/* ---- pieces ---------------------------------------------------------------- */

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<0xAB>" -> 0xAB, or -1. */
static int byte_of(const slm__tok_str_t *t)
{
    if (t->len != 6 || memcmp(t->s, "<0x", 3) != 0 || t->s[5] != '>')
        return -1;
    int hi = hex_digit(t->s[3]), lo = hex_digit(t->s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int append_unescaped(slm__tok_buf_t *b, const slm__tok_str_t *t)
{
    for (uint32_t i = 0; i < t->len;) {
        if (t->len - i >= 3 && memcmp(t->s + i, "\xe2\x96\x81", 3) == 0) {
            if (slm__tok_buf_append(b, " ", 1) < 0)
                return SLM_E_NOMEM;
            i += 3;
        } else {
            if (slm__tok_buf_append(b, t->s + i, 1) < 0)
                return SLM_E_NOMEM;
            i++;
        }
    }
    return SLM_OK;
}

/* llama.cpp's llama_decode_text: each code point of a byte-level token is one byte. */
static int append_bytes_decoded(slm__tok_buf_t *b, const slm__tok_str_t *t)
{
    for (size_t i = 0; i < t->len;) {
        size_t start = i;
        uint32_t cp = slm__tok_utf8_next((const unsigned char *)t->s, t->len, &i);
        int byte = slm__tok_cp_to_byte(cp);
        if (byte >= 0) {
            char c = (char)byte;
            if (slm__tok_buf_append(b, &c, 1) < 0)
                return SLM_E_NOMEM;
            continue;
        }
        char tmp[64];
        int n = snprintf(tmp, sizeof(tmp), "[UNK_BYTE_0x");
        for (size_t j = start; j < i && n < 56; j++)
            n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, "%02x", (unsigned char)t->s[j]);
        if (slm__tok_buf_append(b, tmp, (size_t)n) < 0 || slm__tok_buf_append(b, t->s, t->len) < 0
            || slm__tok_buf_append(b, "]", 1) < 0)
            return SLM_E_NOMEM;
    }
    return SLM_OK;
}

static int append_piece(const slm_tokenizer_t *tok, size_t id, slm__tok_buf_t *b)
{
    const slm__tok_str_t *t = &tok->text[id];
    uint32_t attr = tok->attr[id];
    if (attr & (SLM_TOKEN_ATTR_UNKNOWN | SLM_TOKEN_ATTR_CONTROL | SLM_TOKEN_ATTR_USER_DEFINED))
        return slm__tok_buf_append(b, t->s, t->len);
    if (attr & SLM_TOKEN_ATTR_NORMAL)
        return tok->kind == SLM__TOK_BPE ? append_bytes_decoded(b, t) : append_unescaped(b, t);
    if (attr & SLM_TOKEN_ATTR_BYTE) {
        int byte = byte_of(t);
        char c = (char)byte;
        return byte < 0 ? SLM_OK : slm__tok_buf_append(b, &c, 1);
    }
    return SLM_OK;  /* unused and undefined tokens print nothing */
}

int slm__tok_build_pieces(slm_tokenizer_t *tok)
{
    slm__tok_buf_t pool = { 0 };
    size_t *off = malloc(tok->n_vocab * sizeof(*off));
    tok->piece = malloc(tok->n_vocab * sizeof(*tok->piece));
    if (!off || !tok->piece) {
        free(off);
        return SLM_E_NOMEM;
    }
    for (size_t id = 0; id < tok->n_vocab; id++) {
        off[id] = pool.n;
        if (append_piece(tok, id, &pool) < 0 || slm__tok_buf_append(&pool, "", 1) < 0) {
            free(off);
            free(pool.v);
            return SLM_E_NOMEM;
        }
    }
    /* Pieces point into the pool only once it stops moving. */
    for (size_t id = 0; id < tok->n_vocab; id++) {
        size_t end = id + 1 < tok->n_vocab ? off[id + 1] : pool.n;
        tok->piece[id].s = pool.v + off[id];
        tok->piece[id].len = (uint32_t)(end - off[id] - 1);
    }
    tok->piece_pool = pool.v;
    free(off);
    return SLM_OK;
}

const char *slm_tokenizer_piece(const slm_tokenizer_t *tok, int32_t id, size_t *len)
{
    if (!tok || id < 0 || (size_t)id >= tok->n_vocab) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = tok->piece[id].len;
    return tok->piece[id].s;
}

/* What id prints as under these flags (control text only when rendered). */
static slm__tok_str_t visible_piece(const slm_tokenizer_t *tok, int32_t id, unsigned flags)
{
    slm__tok_str_t none = { "", 0 };
    if (id < 0 || (size_t)id >= tok->n_vocab)
        return none;
    if (!(flags & SLM_DECODE_RENDER_SPECIAL)
        && (tok->attr[id] & (SLM_TOKEN_ATTR_UNKNOWN | SLM_TOKEN_ATTR_CONTROL)))
        return none;
    return tok->piece[id];
}

/* ---- whole sequences ------------------------------------------------------- */

/* llama.cpp's three passes for vocabularies that set clean_spaces. */
static size_t clean_spaces(char *t, size_t total)
{
    size_t n1 = total, k = total ? 1 : 0;
    for (size_t i = 1; i < n1; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            k--;
        t[k++] = x;
    }
    size_t n2 = k;
    k = n2 ? 1 : 0;
    for (size_t i = 1; i < n2; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
            k--;
            t[++i] = '\0';
        }
        t[k++] = x;
    }
    size_t n3 = k;
    k = n3 ? 1 : 0;
    for (size_t i = 1; i < n3; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm')
                k--;
            else if (i + 2 < n3 && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
                k--;
        }
        t[k++] = x;
    }
    return k;
}

int slm_tokenizer_decode(const slm_tokenizer_t *tok, const int32_t *ids, size_t n_ids,
                         unsigned flags, char **text, size_t *len, slm_error_t *err)
{
    if (!tok || (!ids && n_ids) || !text)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_tokenizer_decode: NULL argument");
    *text = NULL;
    bool strip = tok->add_space_prefix && !(flags & SLM_DECODE_CONTINUE);
    if ((flags & SLM_DECODE_REMOVE_SPECIAL) && tok->add_bos && n_ids && ids[0] == tok->bos)
        ids++, n_ids--;
    if ((flags & SLM_DECODE_REMOVE_SPECIAL) && tok->add_eos && n_ids && ids[n_ids - 1] == tok->eos)
        n_ids--;
    slm__tok_buf_t b = { 0 };
    if (slm__tok_buf_append(&b, "", 0) < 0)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_vocab) {
            free(b.v);
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "token id %d is outside 0..%zu",
                             (int)ids[i], tok->n_vocab - 1);
        }
        slm__tok_str_t p = visible_piece(tok, ids[i], flags);
        if (strip && p.len && p.s[0] == ' ')
            p.s++, p.len--;
        /* The space belongs to the first piece of text, which may follow a BOS. */
        strip = strip && ids[i] == tok->bos;
        if (slm__tok_buf_append(&b, p.s, p.len) < 0) {
            free(b.v);
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
        }
    }
    if (tok->clean_spaces && !(flags & SLM_DECODE_KEEP_SPACES)) {
        b.n = clean_spaces(b.v, b.n);
        b.v[b.n] = '\0';
    }
    *text = b.v;
    if (len)
        *len = b.n;
    return SLM_OK;
}

/* ---- streaming ----------------------------------------------------------- */

struct slm_detokenizer {
    const slm_tokenizer_t *tok;
    unsigned flags;
    bool strip;                /* the next piece of text may lose its leading space */
    char held[4];              /* start of a character still missing bytes */
    size_t n_held;
    slm__tok_buf_t out;
};

int slm_detokenizer_new(const slm_tokenizer_t *tok, unsigned flags, slm_detokenizer_t **out)
{
    if (!tok || !out)
        return SLM_E_INVALID;
    slm_detokenizer_t *dt = calloc(1, sizeof(*dt));
    if (!dt)
        return SLM_E_NOMEM;
    dt->tok = tok;
    dt->flags = flags;
    dt->strip = tok->add_space_prefix && !(flags & SLM_DECODE_CONTINUE);
    *out = dt;
    return SLM_OK;
}

void slm_detokenizer_free(slm_detokenizer_t *dt)
{
    if (!dt)
        return;
    free(dt->out.v);
    free(dt);
}

/* Bytes at the end of b that start a character not yet complete. */
static size_t incomplete_tail(const char *b, size_t n)
{
    size_t back = 0;
    while (back < n && back < 4) {
        unsigned char c = (unsigned char)b[n - 1 - back];
        if ((c & 0xc0) != 0x80) {
            size_t need = c >= 0xf0 && c <= 0xf7 ? 4 : c >= 0xe0 && c < 0xf0 ? 3
                        : c >= 0xc0 && c < 0xe0 ? 2 : 1;
            return need > back + 1 ? back + 1 : 0;
        }
        back++;
    }
    return 0;  /* stray continuation bytes: nothing will complete them */
}

int slm_detokenizer_feed(slm_detokenizer_t *dt, int32_t id, const char **text, size_t *len)
{
    if (!dt || !text || !len)
        return SLM_E_INVALID;
    const slm_tokenizer_t *tok = dt->tok;
    if (id < 0 || (size_t)id >= tok->n_vocab)
        return SLM_E_INVALID;
    slm__tok_str_t p = visible_piece(tok, id, dt->flags);
    if (dt->strip && p.len && p.s[0] == ' ')
        p.s++, p.len--;
    dt->strip = dt->strip && id == tok->bos;
    dt->out.n = 0;
    if (slm__tok_buf_append(&dt->out, dt->held, dt->n_held) < 0
        || slm__tok_buf_append(&dt->out, p.s, p.len) < 0)
        return SLM_E_NOMEM;
    dt->n_held = incomplete_tail(dt->out.v, dt->out.n);
    dt->out.n -= dt->n_held;
    memcpy(dt->held, dt->out.v + dt->out.n, dt->n_held);
    dt->out.v[dt->out.n] = '\0';
    *text = dt->out.v;
    *len = dt->out.n;
    return SLM_OK;
}

int slm_detokenizer_flush(slm_detokenizer_t *dt, const char **text, size_t *len)
{
    if (!dt || !text || !len)
        return SLM_E_INVALID;
    dt->out.n = 0;
    if (slm__tok_buf_append(&dt->out, dt->held, dt->n_held) < 0)
        return SLM_E_NOMEM;
    dt->n_held = 0;
    *text = dt->out.v;
    *len = dt->out.n;
    return SLM_OK;
}

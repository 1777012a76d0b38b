/* The Jinja lexer: a template source becomes text and tag tokens, with jinja2's
 * whitespace rules as transformers sets them (trim_blocks, lstrip_blocks, - and +). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

typedef struct lexer {
    jj_template_t *t;
    const char *src;
    size_t len, pos;
    jj_token_t *toks;
    size_t n, cap;
    jj_error_t *e;
    /* line/column of offsets, which only grow */
    size_t track, line_start;
    uint32_t line;
    char balance[JJ_MAX_NEST];     /* closing brackets expected inside a tag */
    size_t depth;
} lexer_t;

static jj_pos_t pos_at(lexer_t *lx, size_t off)
{
    if (off < lx->track) {   /* only errors look back: start over */
        lx->track = lx->line_start = 0;
        lx->line = 1;
    }
    for (; lx->track < off; lx->track++)
        if (lx->src[lx->track] == '\n') {
            lx->line++;
            lx->line_start = lx->track + 1;
        }
    uint32_t col = 1;
    for (size_t i = lx->line_start; i < off; i++)
        col += ((unsigned char)lx->src[i] & 0xC0) != 0x80;
    return (jj_pos_t){.line = lx->line, .col = col, .off = (uint32_t)off};
}

static bool fail(lexer_t *lx, size_t off, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail(lexer_t *lx, size_t off, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slm__jj_error_set(lx->e, code, pos_at(lx, off), fmt, ap);
    va_end(ap);
    return false;
}

static jj_token_t *emit(lexer_t *lx, jj_tok_kind_t kind, size_t off, const char *s, size_t len)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? 2 * lx->cap : 256;
        jj_token_t *v = realloc(lx->toks, cap * sizeof *v);
        if (!v) {
            fail(lx, off, SLM_E_NOMEM, "out of memory");
            return NULL;
        }
        lx->toks = v;
        lx->cap = cap;
    }
    char *copy = NULL;
    if (s) {
        copy = slm__jj_arena_alloc(lx->t, len + 1);
        if (!copy) {
            fail(lx, off, SLM_E_NOMEM, "out of memory");
            return NULL;
        }
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    jj_token_t *tk = &lx->toks[lx->n++];
    *tk = (jj_token_t){.kind = kind, .pos = pos_at(lx, off), .s = copy, .len = len};
    return tk;
}

/* Length of the Python whitespace character at p, or 0. */
static size_t space_at(const lexer_t *lx, size_t p)
{
    if (p >= lx->len)
        return 0;
    uint32_t cp;
    size_t n = slm__jj_utf8_decode(lx->src + p, lx->len - p, &cp);
    return slm__jj_py_isspace(cp) ? n : 0;
}

static size_t skip_space(const lexer_t *lx, size_t p)
{
    for (size_t n; (n = space_at(lx, p)) > 0;)
        p += n;
    return p;
}

/* Whether [from, to) is one or more whitespace characters. */
static bool all_space(const lexer_t *lx, size_t from, size_t to)
{
    if (from >= to)
        return false;
    while (from < to) {
        size_t n = space_at(lx, from);
        if (!n)
            return false;
        from += n;
    }
    return true;
}

/* End of [from, to) without trailing whitespace (str.rstrip()). */
static size_t rstrip_end(const lexer_t *lx, size_t from, size_t to)
{
    size_t end = from;
    for (size_t p = from; p < to;) {
        size_t n = space_at(lx, p);
        if (n) {
            p += n;
            continue;
        }
        uint32_t cp;
        p += slm__jj_utf8_decode(lx->src + p, to - p, &cp);
        end = p;
    }
    return end;
}

/* Emits the text [from, to) that precedes a tag whose whitespace mark is sign;
 * block tags and comments (not {{ }}) take lstrip_blocks. */
static bool emit_text(lexer_t *lx, size_t from, size_t to, char sign, bool lstrip,
                      bool line_starting)
{
    if (sign == '-') {
        to = rstrip_end(lx, from, to);
    } else if (sign != '+' && lstrip) {
        size_t l = to;
        while (l > from && lx->src[l - 1] != '\n')
            l--;
        if ((l > from || line_starting) && all_space(lx, l, to))
            to = l;
    }
    return to == from || emit(lx, JT_TEXT, from, lx->src + from, to - from);
}

/* The end of a block tag at p ("-%}", "+%}" or "%}"): offset past it, with
 * trim_blocks' newline or the '-' mark's whitespace; 0 when p is not one. */
static size_t block_end_at(const lexer_t *lx, size_t p)
{
    const char *s = lx->src;
    if (p + 3 <= lx->len && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}')
        return skip_space(lx, p + 3);
    if (p + 3 <= lx->len && s[p] == '+' && s[p + 1] == '%' && s[p + 2] == '}')
        return p + 3;
    if (p + 2 <= lx->len && s[p] == '%' && s[p + 1] == '}')
        return p + 2 + (p + 2 < lx->len && s[p + 2] == '\n');
    return 0;
}

static size_t var_end_at(const lexer_t *lx, size_t p)
{
    const char *s = lx->src;
    if (p + 3 <= lx->len && s[p] == '-' && s[p + 1] == '}' && s[p + 2] == '}')
        return skip_space(lx, p + 3);
    if (p + 2 <= lx->len && s[p] == '}' && s[p + 1] == '}')
        return p + 2;
    return 0;
}

/* {# ... #}: returns the offset past it. */
static bool lex_comment(lexer_t *lx, size_t body, size_t *end)
{
    const char *close = NULL;
    for (size_t p = body; p + 1 < lx->len; p++)
        if (lx->src[p] == '#' && lx->src[p + 1] == '}') {
            close = lx->src + p;
            break;
        }
    if (!close)
        return fail(lx, body, SLM_E_FORMAT, "missing end of comment tag '#}'");
    size_t at = (size_t)(close - lx->src);
    if (at > body && close[-1] == '-')
        *end = skip_space(lx, at + 2);
    else if (at > body && close[-1] == '+')
        *end = at + 2;
    else
        *end = at + 2 + (at + 2 < lx->len && lx->src[at + 2] == '\n');
    return true;
}

static bool word_at(const lexer_t *lx, size_t p, const char *w, size_t *after)
{
    size_t n = strlen(w);
    if (p + n > lx->len || memcmp(lx->src + p, w, n) != 0)
        return false;
    char ch = p + n < lx->len ? lx->src[p + n] : '\0';
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '_')
        return false;
    *after = p + n;
    return true;
}

/* "{% raw %}" at start (the "{%" and sign already seen at p): the offset past it. */
static bool raw_begin_at(const lexer_t *lx, size_t p, size_t *end)
{
    size_t q;
    if (!word_at(lx, skip_space(lx, p), "raw", &q))
        return false;
    q = skip_space(lx, q);
    size_t e = block_end_at(lx, q);
    if (!e)
        return false;
    /* jinja2 keeps the newline after "{% raw %}" (no trim_blocks there). */
    *end = lx->src[q] == '%' ? q + 2 : e;
    return true;
}

static bool lex_raw(lexer_t *lx, size_t body, bool line_starting, size_t *end)
{
    for (size_t p = body; p + 1 < lx->len; p++) {
        if (lx->src[p] != '{' || lx->src[p + 1] != '%')
            continue;
        size_t q = p + 2;
        char sign = q < lx->len && (lx->src[q] == '-' || lx->src[q] == '+') ? lx->src[q++] : 0;
        size_t w;
        if (!word_at(lx, skip_space(lx, q), "endraw", &w))
            continue;
        size_t e = block_end_at(lx, skip_space(lx, w));
        if (!e)
            continue;
        if (!emit_text(lx, body, p, sign, true, line_starting))
            return false;
        *end = e;
        return true;
    }
    return fail(lx, body, SLM_E_FORMAT, "missing '{%% endraw %%}' for this raw block");
}

/* ---- inside a tag ---- */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool in_set(char ch, const char *set) { return ch && strchr(set, ch); }
static bool is_name_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}
static bool is_name_char(char ch) { return is_name_start(ch) || is_digit(ch); }

static size_t digits(const lexer_t *lx, size_t p)
{
    if (p >= lx->len || !is_digit(lx->src[p]))
        return p;
    while (p < lx->len && (is_digit(lx->src[p]) ||
                           (lx->src[p] == '_' && p + 1 < lx->len && is_digit(lx->src[p + 1]))))
        p++;
    return p;
}

/* Copies the literal without '_' into buf (false when too long). */
static bool strip_underscores(const char *s, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_')
            continue;
        if (k + 1 >= cap)
            return false;
        buf[k++] = s[i];
    }
    buf[k] = '\0';
    return true;
}

static bool lex_number(lexer_t *lx, size_t p, bool after_dot, size_t *end)
{
    const char *s = lx->src;
    size_t q = digits(lx, p);
    bool is_float = false;
    if (!after_dot && q + 1 < lx->len && s[q] == '.' && is_digit(s[q + 1])) {
        q = digits(lx, q + 1);
        is_float = true;
    }
    if (!after_dot && q < lx->len && (s[q] == 'e' || s[q] == 'E')) {
        size_t r = q + 1;
        if (r < lx->len && (s[r] == '+' || s[r] == '-'))
            r++;
        if (r < lx->len && is_digit(s[r])) {
            q = digits(lx, r);
            is_float = true;
        }
    }
    int base = 10;
    size_t from = p;
    if (!is_float && s[p] == '0' && p + 1 < lx->len && in_set(s[p + 1], "xXoObB")) {
        base = in_set(s[p + 1], "xX") ? 16 : in_set(s[p + 1], "oO") ? 8 : 2;
        from = q = p + 2;
        while (q < lx->len && (s[q] == '_' || in_set(s[q], "0123456789abcdefABCDEF")))
            q++;
    }
    char buf[128];
    if (!strip_underscores(s + from, q - from, buf, sizeof buf) || !buf[0])
        return fail(lx, p, SLM_E_FORMAT, "bad number literal");
    jj_token_t *tk = emit(lx, is_float ? JT_FLOAT : JT_INT, p, s + p, q - p);
    if (!tk)
        return false;
    char *stop;
    errno = 0;
    if (is_float)
        tk->f = strtod(buf, &stop);
    else
        tk->i = strtoll(buf, &stop, base);
    if (*stop || (errno == ERANGE && !is_float))
        return fail(lx, p, SLM_E_UNSUPPORTED, "number literal '%.*s' is out of range",
                    (int)(q - p), s + p);
    *end = q;
    return true;
}

static int hex_val(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* One backslash escape at s[*i] (after the backslash), as Python's
 * unicode-escape codec reads it, appended to out. */
static bool unescape_one(lexer_t *lx, size_t at, const char *s, size_t n, size_t *i, char *out,
                         size_t *k)
{
    static const char simple_in[] = "\\'\"abfnrtv", simple_out[] = "\\'\"\a\b\f\n\r\t\v";
    char ch = s[*i];
    const char *hit = strchr(simple_in, ch);
    if (ch && hit) {
        out[(*k)++] = simple_out[hit - simple_in];
        (*i)++;
        return true;
    }
    if (ch == '\n') {    /* a backslash-newline joins lines */
        (*i)++;
        return true;
    }
    uint32_t cp = 0;
    int want = ch == 'x' ? 2 : ch == 'u' ? 4 : ch == 'U' ? 8 : 0;
    if (want) {
        for (int d = 0; d < want; d++) {
            int h = *i + 1 + (size_t)d < n ? hex_val(s[*i + 1 + (size_t)d]) : -1;
            if (h < 0)
                return fail(lx, at, SLM_E_FORMAT, "truncated \\%c escape in a string", ch);
            cp = cp * 16 + (uint32_t)h;
        }
        *i += 1 + (size_t)want;
    } else if (ch >= '0' && ch <= '7') {
        for (int d = 0; d < 3 && *i < n && s[*i] >= '0' && s[*i] <= '7'; d++)
            cp = cp * 8 + (uint32_t)(s[(*i)++] - '0');
    } else if (ch == 'N') {
        return fail(lx, at, SLM_E_UNSUPPORTED, "\\N{...} escapes are not supported");
    } else {
        out[(*k)++] = '\\';   /* an unknown escape keeps its backslash */
        return true;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(lx, at, SLM_E_FORMAT, "escape U+%X is not a character", (unsigned)cp);
    *k += slm__jj_utf8_encode(cp, out + *k);
    return true;
}

static bool lex_string(lexer_t *lx, size_t p, size_t *end)
{
    const char *s = lx->src;
    char quote = s[p];
    size_t q = p + 1;
    while (q < lx->len && s[q] != quote)
        q += s[q] == '\\' && q + 1 < lx->len ? 2 : 1;
    if (q >= lx->len)
        return fail(lx, p, SLM_E_FORMAT, "unterminated string");
    const char *body = s + p + 1;
    size_t n = q - p - 1, k = 0;
    char *out = malloc(n + 1);
    if (!out)
        return fail(lx, p, SLM_E_NOMEM, "out of memory");
    bool ok = true;
    for (size_t i = 0; ok && i < n;) {
        if (body[i] != '\\') {
            out[k++] = body[i++];
            continue;
        }
        i++;
        ok = unescape_one(lx, p, body, n, &i, out, &k);
    }
    ok = ok && emit(lx, JT_STRING, p, out, k);
    free(out);
    *end = q + 1;
    return ok;
}

static const char *const operators[] = {
    "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
    "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
};

static bool balance(lexer_t *lx, size_t p, char op)
{
    static const char open[] = "([{", close[] = ")]}";
    const char *o = strchr(open, op), *c = strchr(close, op);
    if (o) {
        if (lx->depth == JJ_MAX_NEST)
            return fail(lx, p, SLM_E_UNSUPPORTED, "brackets nested too deeply");
        lx->balance[lx->depth++] = close[o - open];
        return true;
    }
    if (!c)
        return true;
    if (!lx->depth)
        return fail(lx, p, SLM_E_FORMAT, "unexpected '%c'", op);
    char want = lx->balance[--lx->depth];
    if (want != op)
        return fail(lx, p, SLM_E_FORMAT, "unexpected '%c', expected '%c'", op, want);
    return true;
}

static bool lex_operator(lexer_t *lx, size_t p, size_t *end)
{
    for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++) {
        size_t n = strlen(operators[i]);
        if (p + n <= lx->len && memcmp(lx->src + p, operators[i], n) == 0) {
            if (n == 1 && !balance(lx, p, operators[i][0]))
                return false;
            *end = p + n;
            return emit(lx, JT_OP, p, operators[i], n) != NULL;
        }
    }
    uint32_t cp;
    slm__jj_utf8_decode(lx->src + p, lx->len - p, &cp);
    return fail(lx, p, SLM_E_FORMAT, "unexpected character '%.*s' in a tag",
                (int)slm__jj_utf8_decode(lx->src + p, lx->len - p, &cp), lx->src + p);
}

/* The tokens of a {{ }} or {% %} tag from p; *end is past its end delimiter. */
static bool lex_tag(lexer_t *lx, size_t p, bool block, size_t *end)
{
    lx->depth = 0;
    for (;;) {
        p = skip_space(lx, p);
        if (p >= lx->len)
            return fail(lx, p, SLM_E_FORMAT, "unexpected end of template, expected '%s'",
                        block ? "%}" : "}}");
        size_t e = lx->depth ? 0 : block ? block_end_at(lx, p) : var_end_at(lx, p);
        if (e) {
            *end = e;
            return emit(lx, block ? JT_BLOCK_END : JT_VAR_END, p, NULL, 0) != NULL;
        }
        char ch = lx->src[p];
        bool after_dot = p > 0 && lx->src[p - 1] == '.';
        size_t q = p;
        bool ok;
        if (is_digit(ch)) {
            ok = lex_number(lx, p, after_dot, &q);
        } else if (is_name_start(ch)) {
            while (q < lx->len && is_name_char(lx->src[q]))
                q++;
            ok = emit(lx, JT_NAME, p, lx->src + p, q - p) != NULL;
        } else if (ch == '"' || ch == '\'') {
            ok = lex_string(lx, p, &q);
        } else {
            ok = lex_operator(lx, p, &q);
        }
        if (!ok)
            return false;
        p = q;
    }
}

/* The next "{{", "{%" or "{#" at or after p, or len. */
static size_t next_tag(const lexer_t *lx, size_t p)
{
    for (const char *s = lx->src; p + 1 < lx->len; p++) {
        const char *hit = memchr(s + p, '{', lx->len - 1 - p);
        if (!hit)
            return lx->len;
        p = (size_t)(hit - s);
        if (s[p + 1] == '{' || s[p + 1] == '%' || s[p + 1] == '#')
            return p;
    }
    return lx->len;
}

static bool lex_all(lexer_t *lx)
{
    bool line_starting = true;
    while (lx->pos < lx->len) {
        size_t start = next_tag(lx, lx->pos);
        if (start == lx->len)
            return emit(lx, JT_TEXT, lx->pos, lx->src + lx->pos, lx->len - lx->pos) != NULL;
        char kind = lx->src[start + 1];
        size_t body = start + 2;
        char sign = body < lx->len && (lx->src[body] == '-' || lx->src[body] == '+')
                        ? lx->src[body] : 0;
        body += sign != 0;
        if (!emit_text(lx, lx->pos, start, sign, kind != '{', line_starting))
            return false;
        size_t end = lx->len;
        bool ok;
        if (kind == '#') {
            ok = lex_comment(lx, body, &end);
        } else if (kind == '%' && raw_begin_at(lx, body, &end)) {
            bool ls = lx->src[end - 1] == '\n';
            ok = lex_raw(lx, end, ls, &end);
        } else {
            ok = emit(lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, start, NULL, 0) &&
                 lex_tag(lx, body, kind == '%', &end);
        }
        if (!ok)
            return false;
        line_starting = lx->src[end - 1] == '\n';
        lx->pos = end;
    }
    return true;
}

bool slm__jj_lex(jj_template_t *t, const char *src, size_t len, jj_token_t **toks,
                 size_t *n_toks, jj_error_t *e)
{
    lexer_t lx = {.t = t, .src = src, .len = len, .e = e, .line = 1};
    bool ok = lex_all(&lx) && emit(&lx, JT_EOF, len, NULL, 0);
    if (!ok) {
        free(lx.toks);
        return false;
    }
    *toks = lx.toks;
    *n_toks = lx.n;
    return true;
}

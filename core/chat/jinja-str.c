/* Strings for the Jinja engine: UTF-8 code points, and Python's str rules for
 * whitespace, case, strip, split, splitlines and replace (utf8proc's tables). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include <slmops/error.h>

#include "chat/jinja.h"

size_t slm__jj_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s,
                                          len > 4 ? 4 : (utf8proc_ssize_t)len, &c);
    if (n <= 0) {   /* not UTF-8: one byte, shown as U+FFFD where it matters */
        *cp = 0xFFFD;
        return len ? 1 : 0;
    }
    *cp = (uint32_t)c;
    return (size_t)n;
}

size_t slm__jj_utf8_encode(uint32_t cp, char out[4])
{
    return (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out);
}

size_t slm__jj_str_ncp(jj_str_t *s)
{
    if (s->n_cp != SIZE_MAX)
        return s->n_cp;
    size_t n = 0;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        i += slm__jj_utf8_decode(s->s + i, s->len - i, &cp);
        n++;
    }
    if (s->h.refs != JJ_IMMORTAL)   /* constants are shared between threads: no caching */
        s->n_cp = n;
    return n;
}

size_t slm__jj_str_offset(const jj_str_t *s, size_t i)
{
    size_t off = 0;
    for (; i > 0 && off < s->len; i--) {
        uint32_t cp;
        off += slm__jj_utf8_decode(s->s + off, s->len - off, &cp);
    }
    return off;
}

bool slm__jj_py_isspace(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 9 && cp <= 13) || (cp >= 28 && cp <= 32);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static utf8proc_category_t cat(uint32_t cp)
{
    return utf8proc_category((utf8proc_int32_t)cp);
}

uint32_t slm__jj_upper(uint32_t cp) { return (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp); }
uint32_t slm__jj_lower(uint32_t cp) { return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp); }
static uint32_t title(uint32_t cp) { return (uint32_t)utf8proc_totitle((utf8proc_int32_t)cp); }

bool slm__jj_is_alpha(uint32_t cp)
{
    utf8proc_category_t c = cat(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

bool slm__jj_is_digit(uint32_t cp) { return cat(cp) == UTF8PROC_CATEGORY_ND; }

bool slm__jj_is_alnum(uint32_t cp)
{
    utf8proc_category_t c = cat(cp);
    return slm__jj_is_alpha(cp) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

static bool is_cased(uint32_t cp)
{
    utf8proc_category_t c = cat(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

bool slm__jj_is_cased_upper(uint32_t cp) { return cat(cp) == UTF8PROC_CATEGORY_LU; }
bool slm__jj_is_cased_lower(uint32_t cp) { return cat(cp) == UTF8PROC_CATEGORY_LL; }

/* Python's str.isprintable: everything but controls, format characters,
 * separators other than the space, private use, surrogates and unassigned. */
bool slm__jj_is_printable(uint32_t cp)
{
    if (cp == ' ')
        return true;
    switch (cat(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
        return false;
    default:
        return true;
    }
}

static bool put_cp(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, uint32_t cp)
{
    char enc[4];
    return slm__jj_buf_put(c, at, b, enc, slm__jj_utf8_encode(cp, enc));
}

/* Python's full uppercase of ß is "SS"; utf8proc's simple mapping keeps it. */
static bool put_upper(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, uint32_t cp)
{
    if (cp == 0xDF)
        return slm__jj_buf_put(c, at, b, "SS", 2);
    return put_cp(c, at, b, slm__jj_upper(cp));
}

bool slm__jj_case(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len, char how,
                  jj_buf_t *b)
{
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = slm__jj_utf8_decode(s + i, len - i, &cp);
        bool ok;
        if (cp == 0xFFFD && n == 1) {   /* keep bytes that are not UTF-8 as they are */
            ok = slm__jj_buf_put(c, at, b, s + i, 1);
        } else if (how == 'u') {
            ok = put_upper(c, at, b, cp);
        } else if (how == 'l') {
            ok = put_cp(c, at, b, slm__jj_lower(cp));
        } else if (how == 'c') {
            ok = put_cp(c, at, b, first ? title(cp) : slm__jj_lower(cp));
        } else if (how == 's') {
            ok = slm__jj_is_cased_upper(cp) ? put_cp(c, at, b, slm__jj_lower(cp))
                                            : slm__jj_is_cased_lower(cp) ? put_upper(c, at, b, cp)
                                                                         : put_cp(c, at, b, cp);
        } else {   /* 't': str.title */
            ok = put_cp(c, at, b, prev_cased ? slm__jj_lower(cp) : title(cp));
            prev_cased = is_cased(cp);
        }
        if (!ok)
            return false;
        first = false;
        i += n;
    }
    return true;
}

static bool in_chars(uint32_t cp, const char *chars, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += slm__jj_utf8_decode(chars + i, n - i, &c);
        if (c == cp)
            return true;
    }
    return false;
}

static bool strip_this(uint32_t cp, const char *chars, size_t n)
{
    return chars ? in_chars(cp, chars, n) : slm__jj_py_isspace(cp);
}

/* Start of the code point that ends at byte `end`. */
static size_t prev_cp(const char *s, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80 && end - i < 4)
        i--;
    return i;
}

void slm__jj_strip(const char *s, size_t len, const char *chars, size_t n_chars, int which,
                   size_t *start, size_t *end)
{
    size_t a = 0, z = len;
    while ((which & 1) && a < z) {
        uint32_t cp;
        size_t n = slm__jj_utf8_decode(s + a, z - a, &cp);
        if (!strip_this(cp, chars, n_chars))
            break;
        a += n;
    }
    while ((which & 2) && z > a) {
        size_t p = prev_cp(s, z);
        uint32_t cp;
        slm__jj_utf8_decode(s + p, z - p, &cp);
        if (!strip_this(cp, chars, n_chars))
            break;
        z = p;
    }
    *start = a;
    *end = z;
}

static bool push_str(jj_ctx_t *c, const jj_node_t *at, jj_value_t list, const char *s, size_t n)
{
    jj_value_t v;
    return slm__jj_str(c, at, s, n, &v) && slm__jj_list_push(c, at, list, v);
}

/* Length of the line break at s[i] (\r\n counts 2), or 0. */
static size_t line_break(const char *s, size_t len, size_t i)
{
    uint32_t cp;
    size_t n = slm__jj_utf8_decode(s + i, len - i, &cp);
    if (cp == '\r')
        return i + 1 < len && s[i + 1] == '\n' ? 2 : 1;
    bool br = cp == '\n' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E) ||
              cp == 0x85 || cp == 0x2028 || cp == 0x2029;
    return br ? n : 0;
}

bool slm__jj_splitlines(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                        jj_value_t *out)
{
    if (!slm__jj_list_new(c, at, JJ_LIST, 0, out))
        return false;
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        size_t br = line_break(s, len, i);
        if (!br) {
            uint32_t cp;
            i += slm__jj_utf8_decode(s + i, len - i, &cp);
            continue;
        }
        if (!push_str(c, at, *out, s + start, i - start))
            return false;
        i += br;
        start = i;
    }
    return start == len || push_str(c, at, *out, s + start, len - start);
}

static size_t space_len(const char *s, size_t len, size_t i)
{
    uint32_t cp;
    size_t n = slm__jj_utf8_decode(s + i, len - i, &cp);
    return slm__jj_py_isspace(cp) ? n : 0;
}

/* str.split() with no separator: runs of whitespace, ends ignored. */
static bool split_ws(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                     int64_t maxsplit, jj_value_t list)
{
    size_t i = 0;
    for (int64_t done = 0;; done++) {
        for (size_t n; i < len && (n = space_len(s, len, i));)
            i += n;
        if (i >= len)
            return true;
        if (maxsplit >= 0 && done == maxsplit)
            return push_str(c, at, list, s + i, len - i);
        size_t w = i;
        while (w < len && !space_len(s, len, w)) {
            uint32_t cp;
            w += slm__jj_utf8_decode(s + w, len - w, &cp);
        }
        if (!push_str(c, at, list, s + i, w - i))
            return false;
        i = w;
    }
}

/* rsplit() with no separator, collected right to left then reversed. */
static bool rsplit_ws(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                      int64_t maxsplit, jj_value_t list)
{
    size_t z = len;
    for (int64_t done = 0;; done++) {
        while (z > 0) {
            size_t p = prev_cp(s, z);
            if (!space_len(s, z, p))
                break;
            z = p;
        }
        if (z == 0)
            return true;
        if (maxsplit >= 0 && done == maxsplit)
            return push_str(c, at, list, s, z);
        size_t w = z;
        while (w > 0) {
            size_t p = prev_cp(s, w);
            if (space_len(s, w, p))
                break;
            w = p;
        }
        if (!push_str(c, at, list, s + w, z - w))
            return false;
        z = w;
    }
}

static const char *find_bytes(const char *s, size_t len, const char *sub, size_t n)
{
    return n <= len ? memmem(s, len, sub, n) : NULL;
}

static const char *rfind_bytes(const char *s, size_t len, const char *sub, size_t n)
{
    for (size_t i = len - n + 1; n <= len && i-- > 0;)
        if (memcmp(s + i, sub, n) == 0)
            return s + i;
    return NULL;
}

static void reverse(jj_list_t *l)
{
    for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
        jj_value_t t = l->v[i];
        l->v[i] = l->v[j];
        l->v[j] = t;
    }
}

bool slm__jj_split(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len, const char *sep,
                   size_t sep_len, int64_t maxsplit, bool right, jj_value_t *out)
{
    if (sep && !sep_len)
        return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: empty separator");
    if (!slm__jj_list_new(c, at, JJ_LIST, 0, out))
        return false;
    bool ok;
    if (!sep) {
        ok = right ? rsplit_ws(c, at, s, len, maxsplit, *out) : split_ws(c, at, s, len, maxsplit, *out);
    } else if (!right) {
        size_t i = 0;
        ok = true;
        for (int64_t done = 0; ok && (maxsplit < 0 || done < maxsplit); done++) {
            const char *hit = find_bytes(s + i, len - i, sep, sep_len);
            if (!hit)
                break;
            ok = push_str(c, at, *out, s + i, (size_t)(hit - s) - i);
            i = (size_t)(hit - s) + sep_len;
        }
        ok = ok && push_str(c, at, *out, s + i, len - i);
    } else {
        size_t z = len;
        ok = true;
        for (int64_t done = 0; ok && (maxsplit < 0 || done < maxsplit); done++) {
            const char *hit = rfind_bytes(s, z, sep, sep_len);
            if (!hit)
                break;
            size_t h = (size_t)(hit - s);
            ok = push_str(c, at, *out, s + h + sep_len, z - h - sep_len);
            z = h;
        }
        ok = ok && push_str(c, at, *out, s, z);
    }
    if (ok && right)
        reverse(jj_as_list(*out));
    return ok;
}

bool slm__jj_replace(jj_ctx_t *c, const jj_node_t *at, jj_str_t *s, jj_str_t *old,
                     jj_str_t *new_, int64_t count, jj_value_t *out)
{
    jj_buf_t b = {0};
    bool ok = true;
    size_t i = 0;
    int64_t done = 0;
    if (!old->len) {   /* "" matches before every character and at the end */
        for (; ok && i <= s->len; done++) {
            if (count < 0 || done < count)
                ok = slm__jj_buf_put(c, at, &b, new_->s, new_->len);
            if (i == s->len)
                break;
            uint32_t cp;
            size_t n = slm__jj_utf8_decode(s->s + i, s->len - i, &cp);
            ok = ok && slm__jj_buf_put(c, at, &b, s->s + i, n);
            i += n;
        }
        i = s->len;
    }
    while (ok && old->len && (count < 0 || done < count)) {
        const char *hit = find_bytes(s->s + i, s->len - i, old->s, old->len);
        if (!hit)
            break;
        size_t h = (size_t)(hit - s->s);
        ok = slm__jj_buf_put(c, at, &b, s->s + i, h - i) &&
             slm__jj_buf_put(c, at, &b, new_->s, new_->len);
        i = h + old->len;
        done++;
    }
    ok = ok && slm__jj_buf_put(c, at, &b, s->s + i, s->len - i);
    if (!ok) {
        free(b.s);
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

bool slm__jj_html_escape(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                         jj_buf_t *b)
{
    bool ok = true;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = s[i];
        const char *rep = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;"
                        : ch == '"' ? "&#34;" : ch == '\'' ? "&#39;" : NULL;
        ok = rep ? slm__jj_buf_put(c, at, b, rep, strlen(rep)) : slm__jj_buf_putc(c, at, b, ch);
    }
    return ok;
}

/* What templates call: Python's str/list/dict methods (mutating ones refused as the
 * immutable sandbox does), loop and namespace attributes, and the global functions. */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/error.h>

#include "chat/jinja.h"

#define FN_ARGS jj_ctx_t *c, const jj_node_t *at, jj_value_t self, const jj_value_t *pos, \
                size_t n_pos, const char *const *kw_names, const jj_value_t *kw_vals, size_t n_kw, \
                jj_value_t *out
#define ARGS (&(jj_call_args_t){pos, n_pos, kw_names, kw_vals, n_kw})
#define UNUSED_ARGS (void)self, (void)pos, (void)n_pos, (void)kw_names, (void)kw_vals, (void)n_kw

/* ---- arguments ---- */

bool slm__jj_arg(const jj_call_args_t *a, size_t i, const char *name, jj_value_t *v)
{
    if (i < a->n_pos) {
        *v = a->pos[i];
        return true;
    }
    for (size_t k = 0; name && k < a->n_kw; k++)
        if (!strcmp(a->kw_names[k], name)) {
            *v = a->kw_vals[k];
            return true;
        }
    return false;
}

bool slm__jj_args_check(jj_ctx_t *c, const jj_node_t *at, const char *what,
                        const jj_call_args_t *a, size_t max_pos, const char *const *allowed)
{
    if (a->n_pos > max_pos)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s takes at most %zu argument(s) "
                            "(%zu given)", what, max_pos, a->n_pos);
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i = 0;
        while (allowed && allowed[i] && strcmp(allowed[i], a->kw_names[k]))
            i++;
        if (!allowed || !allowed[i])
            return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s got an unexpected keyword "
                                "argument '%s'", what, a->kw_names[k]);
    }
    return true;
}

/* An optional str argument (none counts as absent). */
static bool opt_str(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a, size_t i,
                    const char *name, const char *what, jj_str_t **s)
{
    jj_value_t v;
    *s = NULL;
    if (!slm__jj_arg(a, i, name, &v) || v.type == JJ_NONE)
        return true;
    if (v.type != JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s arg must be None or str, not %s",
                            what, slm__jj_type_name(v));
    *s = jj_as_str(v);
    return true;
}

static bool req_str(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a, size_t i,
                    const char *name, const char *what, jj_str_t **s)
{
    jj_value_t v;
    if (!slm__jj_arg(a, i, name, &v))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s() missing required argument",
                            what);
    if (v.type != JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s() argument must be str, not %s",
                            what, slm__jj_type_name(v));
    *s = jj_as_str(v);
    return true;
}

static bool opt_int(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a, size_t i,
                    const char *name, int64_t *out, int64_t def)
{
    jj_value_t v;
    *out = def;
    if (!slm__jj_arg(a, i, name, &v) || v.type == JJ_NONE)
        return true;
    if (v.type != JJ_INT && v.type != JJ_BOOL)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: '%s' object cannot be interpreted "
                            "as an integer", slm__jj_type_name(v));
    *out = v.type == JJ_INT ? v.u.i : v.u.b;
    return true;
}

static jj_str_t *S(jj_value_t v) { return jj_as_str(v); }

/* ---- str methods ---- */

static bool str_strip_any(FN_ARGS, int which, const char *what)
{
    jj_str_t *chars;
    if (!slm__jj_args_check(c, at, what, ARGS, 1, NULL) ||
        !opt_str(c, at, ARGS, 0, NULL, what, &chars))
        return false;
    size_t a, z;
    slm__jj_strip(S(self)->s, S(self)->len, chars ? chars->s : NULL, chars ? chars->len : 0,
                  which, &a, &z);
    return slm__jj_str(c, at, S(self)->s + a, z - a, out);
}

static bool m_strip(FN_ARGS) { return str_strip_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 3, "strip"); }
static bool m_lstrip(FN_ARGS) { return str_strip_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 1, "lstrip"); }
static bool m_rstrip(FN_ARGS) { return str_strip_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 2, "rstrip"); }

static bool str_case(FN_ARGS, char how, const char *what)
{
    if (!slm__jj_args_check(c, at, what, ARGS, 0, NULL))
        return false;
    jj_buf_t b = {0};
    if (!slm__jj_case(c, at, S(self)->s, S(self)->len, how, &b)) {
        free(b.s);
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

static bool m_upper(FN_ARGS) { return str_case(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'u', "upper"); }
static bool m_lower(FN_ARGS) { return str_case(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'l', "lower"); }
static bool m_title(FN_ARGS) { return str_case(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 't', "title"); }
static bool m_capitalize(FN_ARGS) { return str_case(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'c', "capitalize"); }
static bool m_swapcase(FN_ARGS) { return str_case(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 's', "swapcase"); }

/* Byte range of code points [start, end) as str.find's optional arguments say. */
static bool sub_range(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a, jj_str_t *s,
                      size_t first, size_t *from, size_t *to)
{
    int64_t n = (int64_t)slm__jj_str_ncp(s), st, en;
    if (!opt_int(c, at, a, first, NULL, &st, 0) || !opt_int(c, at, a, first + 1, NULL, &en, n))
        return false;
    st = st < 0 ? (st + n < 0 ? 0 : st + n) : st > n ? n : st;
    en = en < 0 ? (en + n < 0 ? 0 : en + n) : en > n ? n : en;
    *from = slm__jj_str_offset(s, (size_t)st);
    *to = en < st ? *from : slm__jj_str_offset(s, (size_t)en);
    return true;
}

static bool affix_one(jj_str_t *s, size_t from, size_t to, jj_str_t *x, bool end)
{
    if (x->len > to - from)
        return false;
    return !memcmp(s->s + (end ? to - x->len : from), x->s, x->len);
}

static bool str_affix(FN_ARGS, bool end)
{
    const char *what = end ? "endswith" : "startswith";
    jj_value_t x;
    size_t from, to;
    if (!slm__jj_args_check(c, at, what, ARGS, 3, NULL) || !slm__jj_arg(ARGS, 0, NULL, &x))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s() takes at least 1 argument",
                            what);
    if (!sub_range(c, at, ARGS, S(self), 1, &from, &to))
        return false;
    bool hit = false;
    if (x.type == JJ_STR) {
        hit = affix_one(S(self), from, to, S(x), end);
    } else if (x.type == JJ_TUPLE) {
        for (size_t i = 0; i < jj_as_list(x)->n && !hit; i++) {
            jj_value_t e = jj_as_list(x)->v[i];
            if (e.type != JJ_STR)
                return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: tuple for %s must only "
                                    "contain str, not %s", what, slm__jj_type_name(e));
            hit = affix_one(S(self), from, to, S(e), end);
        }
    } else {
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s first arg must be str or a "
                            "tuple of str, not %s", what, slm__jj_type_name(x));
    }
    *out = jj_bool(hit);
    return true;
}

static bool m_startswith(FN_ARGS) { return str_affix(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false); }
static bool m_endswith(FN_ARGS) { return str_affix(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true); }

static bool str_split_any(FN_ARGS, bool right)
{
    static const char *const kws[] = {"sep", "maxsplit", NULL};
    const char *what = right ? "rsplit" : "split";
    jj_str_t *sep;
    int64_t max;
    if (!slm__jj_args_check(c, at, what, ARGS, 2, kws) ||
        !opt_str(c, at, ARGS, 0, "sep", what, &sep) || !opt_int(c, at, ARGS, 1, "maxsplit", &max, -1))
        return false;
    return slm__jj_split(c, at, S(self)->s, S(self)->len, sep ? sep->s : NULL, sep ? sep->len : 0,
                         max, right, out);
}

static bool m_split(FN_ARGS) { return str_split_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false); }
static bool m_rsplit(FN_ARGS) { return str_split_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true); }

static bool m_splitlines(FN_ARGS)
{
    static const char *const kws[] = {"keepends", NULL};
    jj_value_t keep;
    if (!slm__jj_args_check(c, at, "splitlines", ARGS, 1, kws))
        return false;
    if (slm__jj_arg(ARGS, 0, "keepends", &keep) && slm__jj_truthy(keep))
        return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported: splitlines(keepends=True)");
    return slm__jj_splitlines(c, at, S(self)->s, S(self)->len, out);
}

static bool m_replace(FN_ARGS)
{
    static const char *const kws[] = {"count", NULL};
    jj_str_t *old, *new_;
    int64_t count;
    if (!slm__jj_args_check(c, at, "replace", ARGS, 3, kws) ||
        !req_str(c, at, ARGS, 0, NULL, "replace", &old) ||
        !req_str(c, at, ARGS, 1, NULL, "replace", &new_) ||
        !opt_int(c, at, ARGS, 2, "count", &count, -1))
        return false;
    return slm__jj_replace(c, at, S(self), old, new_, count, out);
}

/* Code point index of byte offset off. */
static int64_t cp_index(jj_str_t *s, size_t off)
{
    int64_t n = 0;
    for (size_t i = 0; i < off;) {
        uint32_t cp;
        i += slm__jj_utf8_decode(s->s + i, s->len - i, &cp);
        n++;
    }
    return n;
}

static bool str_find_any(FN_ARGS, bool right, bool raise, const char *what)
{
    jj_str_t *sub;
    size_t from, to;
    if (!slm__jj_args_check(c, at, what, ARGS, 3, NULL) || !req_str(c, at, ARGS, 0, NULL, what, &sub) ||
        !sub_range(c, at, ARGS, S(self), 1, &from, &to))
        return false;
    const char *hit = NULL, *base = S(self)->s + from;
    size_t len = to - from;
    if (sub->len <= len && !right)
        hit = memmem(base, len, sub->s, sub->len);
    for (size_t i = len - sub->len + 1; right && sub->len <= len && i-- > 0;)
        if (!memcmp(base + i, sub->s, sub->len)) {
            hit = base + i;
            break;
        }
    if (!hit && raise)
        return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: substring not found");
    *out = jj_int(hit ? cp_index(S(self), (size_t)(hit - S(self)->s)) : -1);
    return true;
}

static bool m_find(FN_ARGS) { return str_find_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false, false, "find"); }
static bool m_rfind(FN_ARGS) { return str_find_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true, false, "rfind"); }
static bool m_index(FN_ARGS) { return str_find_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false, true, "index"); }
static bool m_rindex(FN_ARGS) { return str_find_any(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true, true, "rindex"); }

static bool m_count(FN_ARGS)
{
    jj_str_t *sub;
    size_t from, to;
    if (!slm__jj_args_check(c, at, "count", ARGS, 3, NULL) ||
        !req_str(c, at, ARGS, 0, NULL, "count", &sub) ||
        !sub_range(c, at, ARGS, S(self), 1, &from, &to))
        return false;
    int64_t n = 0;
    if (!sub->len) {
        n = cp_index(S(self), to) - cp_index(S(self), from) + 1;
    } else {
        for (size_t i = from; i + sub->len <= to;) {
            const char *hit = memmem(S(self)->s + i, to - i, sub->s, sub->len);
            if (!hit)
                break;
            n++;
            i = (size_t)(hit - S(self)->s) + sub->len;
        }
    }
    *out = jj_int(n);
    return true;
}

static bool m_join(FN_ARGS)
{
    jj_value_t seq, items;
    if (!slm__jj_args_check(c, at, "join", ARGS, 1, NULL) || !slm__jj_arg(ARGS, 0, NULL, &seq))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: join() takes exactly one argument");
    if (!slm__jj_iterate(c, at, seq, &items))
        return false;
    jj_buf_t b = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        jj_value_t e = jj_as_list(items)->v[i];
        if (e.type != JJ_STR)
            ok = slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: sequence item %zu: expected str "
                              "instance, %s found", i, slm__jj_type_name(e));
        ok = ok && (!i || slm__jj_buf_put(c, at, &b, S(self)->s, S(self)->len)) &&
             slm__jj_buf_put(c, at, &b, S(e)->s, S(e)->len);
    }
    slm__jj_unref(items);
    if (!ok) {
        free(b.s);
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

/* isdigit, isalpha, ...: true when non-empty and every code point passes. */
static bool str_is(FN_ARGS, bool (*pred)(uint32_t), const char *what)
{
    if (!slm__jj_args_check(c, at, what, ARGS, 0, NULL))
        return false;
    bool all = S(self)->len > 0;
    for (size_t i = 0; all && i < S(self)->len;) {
        uint32_t cp;
        i += slm__jj_utf8_decode(S(self)->s + i, S(self)->len - i, &cp);
        all = pred(cp);
    }
    *out = jj_bool(all);
    return true;
}

static bool m_isdigit(FN_ARGS) { return str_is(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, slm__jj_is_digit, "isdigit"); }
static bool m_isalpha(FN_ARGS) { return str_is(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, slm__jj_is_alpha, "isalpha"); }
static bool m_isalnum(FN_ARGS) { return str_is(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, slm__jj_is_alnum, "isalnum"); }
static bool m_isspace(FN_ARGS) { return str_is(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, slm__jj_py_isspace, "isspace"); }

/* isupper / islower: some cased character, and none of the other case. */
static bool str_case_is(FN_ARGS, bool upper)
{
    if (!slm__jj_args_check(c, at, upper ? "isupper" : "islower", ARGS, 0, NULL))
        return false;
    bool cased = false, other = false;
    for (size_t i = 0; i < S(self)->len;) {
        uint32_t cp;
        i += slm__jj_utf8_decode(S(self)->s + i, S(self)->len - i, &cp);
        cased |= upper ? slm__jj_is_cased_upper(cp) : slm__jj_is_cased_lower(cp);
        other |= upper ? slm__jj_is_cased_lower(cp) : slm__jj_is_cased_upper(cp);
    }
    *out = jj_bool(cased && !other);
    return true;
}

static bool m_isupper(FN_ARGS) { return str_case_is(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true); }
static bool m_islower(FN_ARGS) { return str_case_is(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false); }

/* center / ljust / rjust / zfill. */
static bool str_pad(FN_ARGS, char how)
{
    int64_t width;
    jj_str_t *fill = NULL;
    if (!slm__jj_args_check(c, at, "padding", ARGS, how == 'z' ? 1 : 2, NULL) ||
        !opt_int(c, at, ARGS, 0, NULL, &width, -1) || (how != 'z' && !opt_str(c, at, ARGS, 1, NULL, "fill", &fill)))
        return false;
    if (fill && slm__jj_str_ncp(fill) != 1)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: The fill character must be exactly "
                            "one character long");
    int64_t n = (int64_t)slm__jj_str_ncp(S(self)), pad = width > n ? width - n : 0;
    if (pad > (int64_t)JJ_MAX_STRING)
        return slm__jj_fail(c, at, SLM_E_INVALID, "a string would exceed %u MiB", JJ_MAX_STRING >> 20);
    const char *f = how == 'z' ? "0" : fill ? fill->s : " ";
    size_t fl = how == 'z' ? 1 : fill ? fill->len : 1;
    int64_t left = how == 'l' ? 0 : how == 'r' || how == 'z' ? pad : pad / 2 + (pad & width & 1);
    jj_buf_t b = {0};
    bool ok = true, sign = how == 'z' && S(self)->len && strchr("+-", S(self)->s[0]);
    if (sign)
        ok = slm__jj_buf_putc(c, at, &b, S(self)->s[0]);
    for (int64_t i = 0; ok && i < left; i++)
        ok = slm__jj_buf_put(c, at, &b, f, fl);
    ok = ok && slm__jj_buf_put(c, at, &b, S(self)->s + sign, S(self)->len - sign);
    for (int64_t i = left; ok && i < pad; i++)
        ok = slm__jj_buf_put(c, at, &b, f, fl);
    if (!ok) {
        free(b.s);
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

static bool m_center(FN_ARGS) { return str_pad(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'c'); }
static bool m_ljust(FN_ARGS) { return str_pad(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'l'); }
static bool m_rjust(FN_ARGS) { return str_pad(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'r'); }
static bool m_zfill(FN_ARGS) { return str_pad(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 'z'); }

static bool str_partition(FN_ARGS, bool right)
{
    jj_str_t *sep;
    if (!slm__jj_args_check(c, at, "partition", ARGS, 1, NULL) ||
        !req_str(c, at, ARGS, 0, NULL, "partition", &sep))
        return false;
    if (!sep->len)
        return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: empty separator");
    jj_str_t *s = S(self);
    const char *hit = NULL;
    if (!right)
        hit = memmem(s->s, s->len, sep->s, sep->len);
    for (size_t i = s->len - sep->len + 1; right && sep->len <= s->len && i-- > 0;)
        if (!memcmp(s->s + i, sep->s, sep->len)) {
            hit = s->s + i;
            break;
        }
    size_t h = hit ? (size_t)(hit - s->s) : right ? 0 : s->len;
    const char *parts[3] = {s->s, hit ? sep->s : "", hit ? s->s + h + sep->len : s->s};
    size_t lens[3] = {h, hit ? sep->len : 0, hit ? s->len - h - sep->len : 0};
    if (!hit && right) {
        parts[2] = s->s;
        lens[2] = s->len;
        lens[0] = 0;
    }
    if (!slm__jj_list_new(c, at, JJ_TUPLE, 3, out))
        return false;
    for (int i = 0; i < 3; i++) {
        jj_value_t v;
        if (!slm__jj_str(c, at, parts[i], lens[i], &v) || !slm__jj_list_push(c, at, *out, v))
            return false;
    }
    return true;
}

static bool m_partition(FN_ARGS) { return str_partition(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false); }
static bool m_rpartition(FN_ARGS) { return str_partition(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true); }

static bool str_remove(FN_ARGS, bool suffix)
{
    jj_str_t *x;
    const char *what = suffix ? "removesuffix" : "removeprefix";
    if (!slm__jj_args_check(c, at, what, ARGS, 1, NULL) || !req_str(c, at, ARGS, 0, NULL, what, &x))
        return false;
    jj_str_t *s = S(self);
    bool hit = affix_one(s, 0, s->len, x, suffix);
    size_t from = hit && !suffix ? x->len : 0, to = hit && suffix ? s->len - x->len : s->len;
    return slm__jj_str(c, at, s->s + from, to - from, out);
}

static bool m_removeprefix(FN_ARGS) { return str_remove(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, false); }
static bool m_removesuffix(FN_ARGS) { return str_remove(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, true); }

/* str.format: {}, {0}, {name}, {{ }} and the conversions !s and !r; a format
 * spec after ':' is not supported. */
static bool format_field(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a,
                         const char *f, size_t n, size_t *auto_i, jj_buf_t *b)
{
    char conv = 0;
    if (n >= 2 && f[n - 2] == '!') {
        conv = f[n - 1];
        n -= 2;
    }
    if (memchr(f, ':', n) || memchr(f, '.', n) || memchr(f, '[', n))
        return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported str.format field '{%.*s}'",
                            (int)n, f);
    jj_value_t v;
    bool found;
    if (n == 0) {
        found = slm__jj_arg(a, (*auto_i)++, NULL, &v);
    } else if (f[0] >= '0' && f[0] <= '9') {
        found = slm__jj_arg(a, (size_t)strtoul(f, NULL, 10), NULL, &v);
    } else {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)n, f);
        found = slm__jj_arg(a, SIZE_MAX, name, &v);
    }
    if (!found)
        return slm__jj_fail(c, at, SLM_E_INVALID, "IndexError/KeyError: no argument for "
                            "'{%.*s}' in str.format", (int)n, f);
    return conv == 'r' ? slm__jj_repr(c, at, v, b) : slm__jj_to_str(c, at, v, b);
}

static bool m_format(FN_ARGS)
{
    jj_str_t *s = S(self);
    jj_buf_t b = {0};
    size_t auto_i = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < s->len; i++) {
        char ch = s->s[i];
        if ((ch == '{' || ch == '}') && i + 1 < s->len && s->s[i + 1] == ch) {
            ok = slm__jj_buf_putc(c, at, &b, ch);
            i++;
        } else if (ch == '{') {
            const char *close = memchr(s->s + i, '}', s->len - i);
            if (!close) {
                ok = slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: Single '{' encountered in "
                                  "format string");
                break;
            }
            ok = format_field(c, at, ARGS, s->s + i + 1, (size_t)(close - s->s) - i - 1, &auto_i, &b);
            i = (size_t)(close - s->s);
        } else {
            ok = slm__jj_buf_putc(c, at, &b, ch);
        }
    }
    if (!ok) {
        free(b.s);
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

/* ---- list and dict methods ---- */

static bool m_list_index(FN_ARGS)
{
    jj_value_t x;
    if (!slm__jj_args_check(c, at, "index", ARGS, 1, NULL) || !slm__jj_arg(ARGS, 0, NULL, &x))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: index expected 1 argument");
    for (size_t i = 0; i < jj_as_list(self)->n; i++)
        if (slm__jj_equal(jj_as_list(self)->v[i], x)) {
            *out = jj_int((int64_t)i);
            return true;
        }
    return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: value is not in list");
}

static bool m_list_count(FN_ARGS)
{
    jj_value_t x;
    if (!slm__jj_args_check(c, at, "count", ARGS, 1, NULL) || !slm__jj_arg(ARGS, 0, NULL, &x))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: count expected 1 argument");
    int64_t n = 0;
    for (size_t i = 0; i < jj_as_list(self)->n; i++)
        n += slm__jj_equal(jj_as_list(self)->v[i], x);
    *out = jj_int(n);
    return true;
}

static bool m_copy(FN_ARGS)
{
    UNUSED_ARGS;
    (void)c, (void)at;
    *out = slm__jj_ref(self);   /* values are immutable: a copy may share */
    return true;
}

static bool m_get(FN_ARGS)
{
    jj_value_t key, def = jj_none();
    if (!slm__jj_args_check(c, at, "get", ARGS, 2, NULL) || !slm__jj_arg(ARGS, 0, NULL, &key))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: get expected at least 1 argument");
    slm__jj_arg(ARGS, 1, NULL, &def);
    jj_value_t *v = slm__jj_dict_get(self, key);
    *out = slm__jj_ref(v ? *v : def);
    return true;
}

/* items / keys / values: what=0, 1, 2. */
static bool dict_view(FN_ARGS, int what)
{
    if (!slm__jj_args_check(c, at, "items", ARGS, 0, NULL))
        return false;
    jj_dict_t *d = jj_as_dict(self);
    if (!slm__jj_iter_new(c, at, JJ_ITER_ITEMS + what, out))
        return false;
    for (size_t i = 0; i < d->n; i++) {
        jj_value_t v;
        if (what == 0) {
            if (!slm__jj_list_new(c, at, JJ_TUPLE, 2, &v))
                return false;
            jj_as_list(v)->v[0] = slm__jj_ref(d->k[i]);
            jj_as_list(v)->v[1] = slm__jj_ref(d->v[i]);
            jj_as_list(v)->n = 2;
        } else {
            v = slm__jj_ref(what == 1 ? d->k[i] : d->v[i]);
        }
        if (!slm__jj_list_push(c, at, *out, v))
            return false;
    }
    return true;
}

static bool m_items(FN_ARGS) { return dict_view(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 0); }
static bool m_keys(FN_ARGS) { return dict_view(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 1); }
static bool m_values(FN_ARGS) { return dict_view(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, 2); }

/* ---- the method tables ---- */

typedef struct method {
    const char *name;
    jj_builtin_fn fn;
} method_t;

static const method_t str_methods[] = {
    {"capitalize", m_capitalize}, {"casefold", m_lower}, {"center", m_center},
    {"count", m_count}, {"endswith", m_endswith}, {"find", m_find}, {"format", m_format},
    {"index", m_index}, {"isalnum", m_isalnum}, {"isalpha", m_isalpha},
    {"isdecimal", m_isdigit}, {"isdigit", m_isdigit}, {"islower", m_islower},
    {"isnumeric", m_isdigit}, {"isspace", m_isspace}, {"isupper", m_isupper},
    {"join", m_join}, {"ljust", m_ljust}, {"lower", m_lower}, {"lstrip", m_lstrip},
    {"partition", m_partition}, {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix}, {"replace", m_replace}, {"rfind", m_rfind},
    {"rindex", m_rindex}, {"rjust", m_rjust}, {"rpartition", m_rpartition},
    {"rsplit", m_rsplit}, {"rstrip", m_rstrip}, {"split", m_split},
    {"splitlines", m_splitlines}, {"startswith", m_startswith}, {"strip", m_strip},
    {"swapcase", m_swapcase}, {"title", m_title}, {"upper", m_upper}, {"zfill", m_zfill},
    {NULL, NULL},
};
static const char *const str_unsupported[] = {
    "encode", "expandtabs", "format_map", "isascii", "isidentifier", "isprintable",
    "istitle", "maketrans", "translate", NULL,
};

static const method_t list_methods[] = {
    {"count", m_list_count}, {"index", m_list_index}, {"copy", m_copy}, {NULL, NULL},
};
static const char *const list_unsafe[] = {
    "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", NULL,
};

static const method_t dict_methods[] = {
    {"copy", m_copy}, {"get", m_get}, {"items", m_items}, {"keys", m_keys},
    {"values", m_values}, {NULL, NULL},
};
static const char *const dict_unsafe[] = {
    "clear", "pop", "popitem", "setdefault", "update", "fromkeys", NULL,
};

static bool listed(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

static bool bind_method(jj_ctx_t *c, const jj_node_t *at, jj_value_t self,
                        const method_t *table, const char *name, jj_value_t *out, bool *found)
{
    for (size_t i = 0; table[i].name; i++) {
        if (strcmp(table[i].name, name))
            continue;
        jj_func_t *f;
        *found = true;
        if (!slm__jj_func_new(c, at, JJ_FN_BUILTIN, table[i].name, out, &f))
            return false;
        f->fn = table[i].fn;
        f->self = slm__jj_ref(self);
        return true;
    }
    return false;
}

/* ---- the loop variable ---- */

static bool m_cycle(FN_ARGS)
{
    (void)kw_names, (void)kw_vals, (void)n_kw;
    if (!n_pos)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: no items for cycling given");
    *out = slm__jj_ref(pos[jj_as_loop(self)->index0 % n_pos]);
    return true;
}

static bool m_changed(FN_ARGS)
{
    (void)kw_names, (void)kw_vals, (void)n_kw;
    jj_value_t now;
    if (!slm__jj_list_new(c, at, JJ_LIST, 0, &now))
        return false;
    for (size_t i = 0; i < n_pos; i++)
        if (!slm__jj_list_push(c, at, now, slm__jj_ref(pos[i])))
            return false;
    jj_loop_t *l = jj_as_loop(self);
    bool changed = l->changed_last.type == JJ_UNDEF || !slm__jj_equal(now, l->changed_last);
    slm__jj_unref(l->changed_last);
    l->changed_last = now;
    *out = jj_bool(changed);
    return true;
}

static bool loop_attribute(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const char *name,
                           jj_value_t *out, bool *found)
{
    static const method_t loop_methods[] = {{"cycle", m_cycle}, {"changed", m_changed}, {NULL, NULL}};
    jj_loop_t *l = jj_as_loop(v);
    jj_list_t *items = jj_as_list(l->items);
    int64_t i = (int64_t)l->index0, n = (int64_t)items->n;
    *found = true;
    if (!strcmp(name, "index")) *out = jj_int(i + 1);
    else if (!strcmp(name, "index0")) *out = jj_int(i);
    else if (!strcmp(name, "revindex")) *out = jj_int(n - i);
    else if (!strcmp(name, "revindex0")) *out = jj_int(n - i - 1);
    else if (!strcmp(name, "first")) *out = jj_bool(i == 0);
    else if (!strcmp(name, "last")) *out = jj_bool(i == n - 1);
    else if (!strcmp(name, "length")) *out = jj_int(n);
    else if (!strcmp(name, "depth")) *out = jj_int(l->depth);
    else if (!strcmp(name, "depth0")) *out = jj_int(l->depth - 1);
    else if (!strcmp(name, "previtem"))
        *out = i > 0 ? slm__jj_ref(items->v[i - 1])
                     : slm__jj_undef_msg(c, "there is no previous item");
    else if (!strcmp(name, "nextitem"))
        *out = i + 1 < n ? slm__jj_ref(items->v[i + 1])
                         : slm__jj_undef_msg(c, "there is no next item");
    else {
        *found = false;
        return bind_method(c, at, v, loop_methods, name, out, found);
    }
    return true;
}

bool slm__jj_attribute(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const char *name,
                       jj_value_t *out, bool *found)
{
    *found = false;
    *out = jj_undef();
    const method_t *table = NULL;
    const char *const *refused = NULL;
    bool unsafe = false;
    switch (v.type) {
    case JJ_STR: table = str_methods; refused = str_unsupported; break;
    case JJ_LIST: table = list_methods; refused = list_unsafe; unsafe = true; break;
    case JJ_TUPLE: table = list_methods; break;
    case JJ_DICT: table = dict_methods; refused = dict_unsafe; unsafe = true; break;
    case JJ_LOOP: return loop_attribute(c, at, v, name, out, found);
    case JJ_NS: {
        jj_value_t *x = slm__jj_dict_get_str(v, name);
        if (x)
            *out = slm__jj_ref(*x);
        return x != NULL;
    }
    default:
        return false;
    }
    if (bind_method(c, at, v, table, name, out, found) || *found)
        return *found && out->type != JJ_UNDEF;
    if (!refused || !listed(refused, name))
        return false;
    *found = true;
    if (unsafe)
        return slm__jj_fail(c, at, SLM_E_INVALID, "SecurityError: access to attribute '%s' of "
                            "'%s' object is unsafe.", name, slm__jj_type_name(v));
    return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported method %s.%s()",
                        slm__jj_type_name(v), name);
}

/* ---- globals ---- */

static bool g_range(FN_ARGS)
{
    (void)self;
    int64_t a = 0, z, st = 1;
    if (!slm__jj_args_check(c, at, "range", ARGS, 3, NULL))
        return false;
    if (n_pos == 0)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: range expected at least 1 argument");
    if (n_pos == 1 ? !opt_int(c, at, ARGS, 0, NULL, &z, 0)
                   : !opt_int(c, at, ARGS, 0, NULL, &a, 0) || !opt_int(c, at, ARGS, 1, NULL, &z, 0) ||
                     !opt_int(c, at, ARGS, 2, NULL, &st, 1))
        return false;
    if (st == 0)
        return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: range() arg 3 must not be zero");
    double count = st > 0 ? ((double)z - (double)a) / (double)st : ((double)a - (double)z) / (double)-st;
    if (count > 100000)   /* jinja2's sandbox has the same bound */
        return slm__jj_fail(c, at, SLM_E_INVALID, "OverflowError: Range too big. The sandbox "
                            "blocks ranges larger than MAX_RANGE (100000).");
    if (!slm__jj_iter_new(c, at, JJ_ITER_RANGE, out))
        return false;
    jj_list_t *r = jj_as_list(*out);
    r->range[0] = a;
    r->range[1] = z;
    r->range[2] = st;
    for (int64_t i = a; st > 0 ? i < z : i > z; i += st)
        if (!slm__jj_list_push(c, at, *out, jj_int(i)))
            return false;
    return true;
}

/* namespace(...) and dict(...): keywords, or one mapping (or list of pairs) first. */
static bool make_mapping(FN_ARGS, jj_type_t type)
{
    (void)self;
    if (n_pos > 1)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s expected at most 1 argument",
                            type == JJ_NS ? "namespace" : "dict");
    if (!slm__jj_dict_new(c, at, type, out))
        return false;
    if (type == JJ_NS)
        slm__jj_mutable_add(c, *out);
    if (n_pos == 1 && pos[0].type == JJ_DICT) {
        jj_dict_t *d = jj_as_dict(pos[0]);
        for (size_t i = 0; i < d->n; i++)
            if (!slm__jj_dict_set(c, at, *out, slm__jj_ref(d->k[i]), slm__jj_ref(d->v[i])))
                return false;
    } else if (n_pos == 1) {
        jj_value_t items;
        if (!slm__jj_iterate(c, at, pos[0], &items))
            return false;
        bool ok = true;
        for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
            jj_value_t p = jj_as_list(items)->v[i];
            if (!jj_is_seq(p) || jj_as_list(p)->n != 2)
                ok = slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: dictionary update sequence "
                                  "element #%zu has the wrong length", i);
            ok = ok && slm__jj_dict_set(c, at, *out, slm__jj_ref(jj_as_list(p)->v[0]),
                                        slm__jj_ref(jj_as_list(p)->v[1]));
        }
        slm__jj_unref(items);
        if (!ok)
            return false;
    }
    for (size_t k = 0; k < n_kw; k++) {
        jj_value_t key;
        if (!slm__jj_str(c, at, kw_names[k], strlen(kw_names[k]), &key) ||
            !slm__jj_dict_set(c, at, *out, key, slm__jj_ref(kw_vals[k])))
            return false;
    }
    return true;
}

static bool g_namespace(FN_ARGS) { return make_mapping(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, JJ_NS); }
static bool g_dict(FN_ARGS) { return make_mapping(c, at, self, pos, n_pos, kw_names, kw_vals, n_kw, out, JJ_DICT); }

/* transformers' raise_exception(message): the template refuses the conversation. */
static bool g_raise(FN_ARGS)
{
    (void)self, (void)kw_names, (void)kw_vals, (void)n_kw, (void)out;
    jj_buf_t b = {0};
    if (n_pos && !slm__jj_to_str(c, at, pos[0], &b)) {
        free(b.s);
        return false;
    }
    slm__jj_fail(c, at, SLM_E_INVALID, "%s", b.s ? b.s : "");
    c->err->raised = true;
    free(b.s);
    return false;
}

/* transformers' strftime_now(format): the render's time, in the C locale. */
static bool g_strftime_now(FN_ARGS)
{
    (void)self;
    jj_str_t *fmt;
    if (!slm__jj_args_check(c, at, "strftime_now", ARGS, 1, NULL) ||
        !req_str(c, at, ARGS, 0, NULL, "strftime_now", &fmt))
        return false;
    time_t t = (time_t)c->now;
    struct tm tm;
    char buf[1024];
    locale_t cl = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    size_t n = localtime_r(&t, &tm) && cl ? strftime_l(buf, sizeof buf, fmt->s, &tm, cl) : 0;
    if (cl)
        freelocale(cl);
    if (!n && fmt->len)
        return slm__jj_fail(c, at, SLM_E_INVALID, "strftime_now('%s') failed", fmt->s);
    return slm__jj_str(c, at, buf, n, out);
}

static bool g_lipsum(FN_ARGS)
{
    (void)self, (void)pos, (void)n_pos, (void)kw_names, (void)kw_vals, (void)n_kw, (void)out;
    return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported function 'lipsum'");
}

static bool g_cycler(FN_ARGS)
{
    (void)self, (void)pos, (void)n_pos, (void)kw_names, (void)kw_vals, (void)n_kw, (void)out;
    return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported function 'cycler'");
}

static bool g_joiner(FN_ARGS)
{
    (void)self, (void)pos, (void)n_pos, (void)kw_names, (void)kw_vals, (void)n_kw, (void)out;
    return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported function 'joiner'");
}

bool slm__jj_globals(jj_ctx_t *c, jj_scope_t *scope)
{
    static const method_t globals[] = {
        {"range", g_range}, {"dict", g_dict}, {"namespace", g_namespace},
        {"raise_exception", g_raise}, {"strftime_now", g_strftime_now},
        {"cycler", g_cycler}, {"joiner", g_joiner}, {"lipsum", g_lipsum}, {NULL, NULL},
    };
    for (size_t i = 0; globals[i].name; i++) {
        jj_value_t v;
        jj_func_t *f;
        if (!slm__jj_func_new(c, NULL, JJ_FN_BUILTIN, globals[i].name, &v, &f))
            return false;
        f->fn = globals[i].fn;
        if (scope->n == scope->cap) {
            size_t cap = scope->cap ? 2 * scope->cap : 16;
            jj_var_t *vars = realloc(scope->vars, cap * sizeof *vars);
            if (!vars) {
                slm__jj_unref(v);
                return slm__jj_fail(c, NULL, SLM_E_NOMEM, "out of memory");
            }
            scope->vars = vars;
            scope->cap = cap;
        }
        scope->vars[scope->n++] = (jj_var_t){.name = globals[i].name, .v = v};
    }
    return true;
}

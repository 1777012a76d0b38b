/* jinja2's built-in filters with its exact semantics (tojson is transformers'
 * json.dumps); filters jinja2 has and this engine lacks fail when they run. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

typedef bool (*filter_fn)(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_call_args_t *a,
                          jj_value_t *out);

#define FARGS jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_call_args_t *a, jj_value_t *out

static bool check(jj_ctx_t *c, const jj_node_t *at, const char *name, const jj_call_args_t *a,
                  size_t max_pos, const char *const *kws)
{
    char what[64];
    snprintf(what, sizeof what, "filter '%s'", name);
    return slm__jj_args_check(c, at, what, a, max_pos, kws);
}

static jj_value_t arg_or(const jj_call_args_t *a, size_t i, const char *name, jj_value_t def)
{
    jj_value_t v;
    return slm__jj_arg(a, i, name, &v) ? v : def;
}

static bool int_arg(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const char *what, int64_t *out)
{
    if (v.type == JJ_INT || v.type == JJ_BOOL) {
        *out = v.type == JJ_INT ? v.u.i : v.u.b;
        return true;
    }
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %s must be an integer, not %s", what,
                        slm__jj_type_name(v));
}

static bool take_buf(jj_ctx_t *c, const jj_node_t *at, bool ok, jj_buf_t *b, jj_value_t *out)
{
    if (!ok) {
        free(b->s);
        return false;
    }
    return slm__jj_str_take(c, at, b, out);
}

/* ---- attribute getters (map, selectattr, sort, ...) ---- */

/* jinja2's make_attrgetter: "a.b.0" looked up part by part with getitem. */
static bool get_attr_path(jj_ctx_t *c, const jj_node_t *at, jj_value_t item, jj_value_t attr,
                          jj_value_t *out)
{
    *out = jj_undef();
    if (item.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, item);
    if (attr.type == JJ_INT)
        return slm__jj_getitem(c, at, item, attr, out);
    if (attr.type != JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: attribute must be a string");
    jj_value_t cur = slm__jj_ref(item);
    for (const char *p = jj_as_str(attr)->s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        jj_value_t key = jj_undef(), next = jj_undef();
        char *end;
        long long idx = strtoll(p, &end, 10);
        bool is_int = n && end == p + n && *p >= '0' && *p <= '9';
        bool ok = cur.type != JJ_UNDEF || slm__jj_undefined_error(c, at, cur);
        ok = ok && (is_int ? (key = jj_int(idx), true) : slm__jj_str(c, at, p, n, &key));
        ok = ok && slm__jj_getitem(c, at, cur, key, &next);
        slm__jj_unref(key);
        slm__jj_unref(cur);
        cur = next;
        if (!ok || !dot) {
            *out = cur;
            return ok;
        }
        p = dot + 1;
    }
}

/* ---- sorting (stable, with Python's comparisons) ---- */

typedef struct sort_ctx {
    jj_ctx_t *c;
    const jj_node_t *at;
    jj_value_t *keys;
    bool failed;
} sort_ctx_t;

static int key_cmp(sort_ctx_t *s, size_t x, size_t y)
{
    int r = 0;
    if (!s->failed && !slm__jj_compare(s->c, s->at, s->keys[x], s->keys[y], &r))
        s->failed = true;
    return r == 2 ? 0 : r;
}

static void merge_sort(sort_ctx_t *s, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(s, idx, tmp, h);
    merge_sort(s, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = key_cmp(s, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* The sort key of an item: its attribute (if given), lowercased unless case_sensitive. */
static bool sort_key(jj_ctx_t *c, const jj_node_t *at, jj_value_t item, jj_value_t attr,
                     bool case_sensitive, jj_value_t *key)
{
    jj_value_t k;
    if (attr.type == JJ_UNDEF || attr.type == JJ_NONE)
        k = slm__jj_ref(item);
    else if (!get_attr_path(c, at, item, attr, &k))
        return false;
    if (case_sensitive || k.type != JJ_STR) {
        *key = k;
        return true;
    }
    jj_buf_t b = {0};
    bool ok = slm__jj_case(c, at, jj_as_str(k)->s, jj_as_str(k)->len, 'l', &b);
    slm__jj_unref(k);
    return take_buf(c, at, ok, &b, key);
}

/* The sort filter's key (jinja2's make_multi_attrgetter): a list of one key per
 * comma-separated attribute, so that equal parts compare as equal first. */
static bool multi_key(jj_ctx_t *c, const jj_node_t *at, jj_value_t item, jj_value_t attr,
                      bool case_sensitive, jj_value_t *key)
{
    if (!slm__jj_list_new(c, at, JJ_LIST, 1, key))
        return false;
    if (attr.type != JJ_STR) {
        jj_value_t k;
        return sort_key(c, at, item, attr, case_sensitive, &k) && slm__jj_list_push(c, at, *key, k);
    }
    for (const char *p = jj_as_str(attr)->s;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        jj_value_t part, k;
        if (!slm__jj_str(c, at, p, n, &part))
            return false;
        bool ok = sort_key(c, at, item, part, case_sensitive, &k) &&
                  slm__jj_list_push(c, at, *key, k);
        slm__jj_unref(part);
        if (!ok || !comma)
            return ok;
        p = comma + 1;
    }
}

/* Sorts items (a list) into a new list by their keys; multi: the sort filter's. */
static bool sorted(jj_ctx_t *c, const jj_node_t *at, jj_value_t items, jj_value_t attr,
                   bool case_sensitive, bool reverse, bool multi, jj_value_t *out)
{
    jj_list_t *l = jj_as_list(items);
    size_t n = l->n;
    jj_value_t *keys = calloc(n + 1, sizeof *keys);
    size_t *idx = malloc((n + 1) * sizeof *idx), *tmp = malloc((n + 1) * sizeof *tmp);
    bool ok = keys && idx && tmp;
    if (!ok)
        slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
    for (size_t i = 0; ok && i < n; i++) {
        idx[i] = i;
        ok = multi ? multi_key(c, at, l->v[i], attr, case_sensitive, &keys[i])
                   : sort_key(c, at, l->v[i], attr, case_sensitive, &keys[i]);
    }
    sort_ctx_t s = {.c = c, .at = at, .keys = keys};
    if (ok) {
        if (reverse)   /* Python's reverse sort keeps equal items in order too */
            for (size_t i = 0; i < n; i++)
                idx[i] = n - 1 - i;
        merge_sort(&s, idx, tmp, n);
        ok = !s.failed && slm__jj_list_new(c, at, JJ_LIST, n, out);
    }
    for (size_t i = 0; ok && i < n; i++)
        jj_as_list(*out)->v[jj_as_list(*out)->n++] =
            slm__jj_ref(l->v[reverse ? idx[n - 1 - i] : idx[i]]);
    for (size_t i = 0; keys && i < n; i++)
        slm__jj_unref(keys[i]);
    free(keys);
    free(idx);
    free(tmp);
    return ok;
}

/* ---- the filters ---- */

static bool f_abs(FARGS)
{
    if (!check(c, at, "abs", a, 0, NULL))
        return false;
    if (v.type == JJ_FLOAT)
        *out = jj_float(fabs(v.u.f));
    else if (v.type == JJ_INT && v.u.i == INT64_MIN)
        return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "integer overflow");
    else if (v.type == JJ_INT || v.type == JJ_BOOL)
        *out = jj_int(llabs(v.type == JJ_INT ? v.u.i : v.u.b));
    else
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: bad operand type for abs(): '%s'",
                            slm__jj_type_name(v));
    return true;
}

static bool f_attr(FARGS)
{
    jj_value_t name;
    if (!check(c, at, "attr", a, 1, NULL) || !slm__jj_arg(a, 0, NULL, &name) || name.type != JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "filter 'attr' needs an attribute name");
    if (v.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, v);
    bool found;
    if (slm__jj_attribute(c, at, v, jj_as_str(name)->s, out, &found))
        return true;
    if (found)
        return false;
    *out = slm__jj_undef_msg(c, "'%s' has no attribute '%s'", slm__jj_object_name(v),
                             jj_as_str(name)->s);
    return true;
}

static bool f_batch(FARGS)
{
    static const char *const kws[] = {"linecount", "fill_with", NULL};
    jj_value_t items, fill = arg_or(a, 1, "fill_with", jj_none()), row = jj_undef();
    int64_t n = 0;
    bool has_fill = slm__jj_arg(a, 1, "fill_with", &fill);
    if (!check(c, at, "batch", a, 2, kws) ||
        !int_arg(c, at, arg_or(a, 0, "linecount", jj_undef()), "linecount", &n))
        return false;
    if (n <= 0)
        return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: batch size must be positive");
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    bool ok = slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        if (row.type == JJ_UNDEF)
            ok = slm__jj_list_new(c, at, JJ_LIST, 0, &row);
        ok = ok && slm__jj_list_push(c, at, row, slm__jj_ref(jj_as_list(items)->v[i]));
        if (ok && (int64_t)jj_as_list(row)->n == n) {
            ok = slm__jj_list_push(c, at, *out, row);
            row = jj_undef();
        }
    }
    while (ok && row.type != JJ_UNDEF && has_fill && (int64_t)jj_as_list(row)->n < n)
        ok = slm__jj_list_push(c, at, row, slm__jj_ref(fill));
    if (ok && row.type != JJ_UNDEF)
        ok = slm__jj_list_push(c, at, *out, row);
    else
        slm__jj_unref(row);
    slm__jj_unref(items);
    return ok;
}

static bool str_filter(FARGS, char how, const char *name)
{
    if (!check(c, at, name, a, 0, NULL))
        return false;
    jj_value_t s;
    if (!slm__jj_stringify(c, at, v, &s))
        return false;
    jj_buf_t b = {0};
    bool ok = slm__jj_case(c, at, jj_as_str(s)->s, jj_as_str(s)->len, how, &b);
    slm__jj_unref(s);
    return take_buf(c, at, ok, &b, out);
}

static bool f_capitalize(FARGS) { return str_filter(c, at, v, a, out, 'c', "capitalize"); }
static bool f_upper(FARGS) { return str_filter(c, at, v, a, out, 'u', "upper"); }
static bool f_lower(FARGS) { return str_filter(c, at, v, a, out, 'l', "lower"); }

/* jinja2's title: the first letter after "-", whitespace or an opening bracket is
 * upper case, the others lower. */
static bool f_title(FARGS)
{
    if (!check(c, at, "title", a, 0, NULL))
        return false;
    jj_value_t s;
    if (!slm__jj_stringify(c, at, v, &s))
        return false;
    jj_str_t *str = jj_as_str(s);
    jj_buf_t b = {0};
    bool ok = true, word_start = true;
    for (size_t i = 0; ok && i < str->len;) {
        uint32_t cp;
        size_t n = slm__jj_utf8_decode(str->s + i, str->len - i, &cp);
        bool sep = slm__jj_py_isspace(cp) || (cp < 0x80 && strchr("-({[<", (int)cp) && cp);
        ok = sep ? slm__jj_buf_put(c, at, &b, str->s + i, n)
                 : slm__jj_case(c, at, str->s + i, n, word_start ? 'u' : 'l', &b);
        word_start = sep;
        i += n;
    }
    slm__jj_unref(s);
    return take_buf(c, at, ok, &b, out);
}

static bool f_center(FARGS)
{
    static const char *const kws[] = {"width", NULL};
    jj_value_t s, fn, args[1] = {arg_or(a, 0, "width", jj_int(80))};
    if (!check(c, at, "center", a, 1, kws) || !slm__jj_stringify(c, at, v, &s))
        return false;
    bool found;
    bool ok = slm__jj_attribute(c, at, s, "center", &fn, &found);
    jj_call_args_t ca = {.pos = args, .n_pos = 1};
    ok = ok && slm__jj_call(c, at, fn, &ca, out);
    slm__jj_unref(fn);
    slm__jj_unref(s);
    return ok;
}

static bool f_length(FARGS)
{
    int64_t n = 0;
    if (!check(c, at, "length", a, 0, NULL) || !slm__jj_length(c, at, v, &n))
        return false;
    *out = jj_int(n);
    return true;
}

static bool f_default(FARGS)
{
    static const char *const kws[] = {"default_value", "boolean", NULL};
    if (!check(c, at, "default", a, 2, kws))
        return false;
    jj_value_t def, boolean;
    if (!slm__jj_arg(a, 0, "default_value", &def)) {
        if (!slm__jj_str(c, at, "", 0, &def))
            return false;
    } else {
        def = slm__jj_ref(def);
    }
    bool use = v.type == JJ_UNDEF ||
               (slm__jj_arg(a, 1, "boolean", &boolean) && slm__jj_truthy(boolean) &&
                !slm__jj_truthy(v));
    *out = use ? def : slm__jj_ref(v);
    if (!use)
        slm__jj_unref(def);
    return true;
}

static bool f_dictsort(FARGS)
{
    static const char *const kws[] = {"case_sensitive", "by", "reverse", NULL};
    if (!check(c, at, "dictsort", a, 3, kws))
        return false;
    if (v.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, v);
    if (v.type != JJ_DICT)
        return slm__jj_fail(c, at, SLM_E_INVALID, "AttributeError: '%s' object has no attribute "
                            "'items'", slm__jj_type_name(v));
    jj_value_t by = arg_or(a, 1, "by", jj_undef());
    int which = 0;
    if (by.type == JJ_STR && !strcmp(jj_as_str(by)->s, "value"))
        which = 1;
    else if (by.type != JJ_UNDEF && (by.type != JJ_STR || strcmp(jj_as_str(by)->s, "key")))
        return slm__jj_fail(c, at, SLM_E_INVALID, "FilterArgumentError: You can only sort by "
                            "either 'key' or 'value'");
    jj_dict_t *d = jj_as_dict(v);
    jj_value_t items, attr = jj_int(which);
    bool ok = slm__jj_list_new(c, at, JJ_LIST, d->n, &items);
    for (size_t i = 0; ok && i < d->n; i++) {
        jj_value_t pair;
        ok = slm__jj_list_new(c, at, JJ_TUPLE, 2, &pair);
        if (ok) {
            jj_as_list(pair)->v[0] = slm__jj_ref(d->k[i]);
            jj_as_list(pair)->v[1] = slm__jj_ref(d->v[i]);
            jj_as_list(pair)->n = 2;
            ok = slm__jj_list_push(c, at, items, pair);
        }
    }
    ok = ok && sorted(c, at, items, attr, slm__jj_truthy(arg_or(a, 0, "case_sensitive", jj_bool(false))),
                      slm__jj_truthy(arg_or(a, 2, "reverse", jj_bool(false))), false, out);
    slm__jj_unref(items);
    return ok;
}

/* A markupsafe Markup string: what |safe and |escape give. */
static bool markup(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, bool ok, jj_value_t *out)
{
    if (!take_buf(c, at, ok, b, out))
        return false;
    jj_as_str(*out)->markup = true;
    return true;
}

static bool f_escape(FARGS)
{
    if (!check(c, at, "escape", a, 0, NULL))
        return false;
    if (v.type == JJ_STR && jj_as_str(v)->markup) {   /* already safe */
        *out = slm__jj_ref(v);
        return true;
    }
    jj_value_t s;
    if (!slm__jj_stringify(c, at, v, &s))
        return false;
    jj_buf_t b = {0};
    bool ok = slm__jj_html_escape(c, at, jj_as_str(s)->s, jj_as_str(s)->len, &b);
    slm__jj_unref(s);
    return markup(c, at, &b, ok, out);
}

static bool f_first_last(FARGS, bool last)
{
    if (!check(c, at, last ? "last" : "first", a, 0, NULL))
        return false;
    jj_value_t items;
    if (last && v.type == JJ_ITER && !jj_is_view(v))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: '%s' object is not reversible",
                            slm__jj_type_name(v));
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    jj_list_t *l = jj_as_list(items);
    *out = l->n ? slm__jj_ref(l->v[last ? l->n - 1 : 0])
                : slm__jj_undef_msg(c, "No %s item, sequence was empty.", last ? "last" : "first");
    slm__jj_unref(items);
    return true;
}

static bool f_first(FARGS) { return f_first_last(c, at, v, a, out, false); }
static bool f_last(FARGS) { return f_first_last(c, at, v, a, out, true); }

/* Python's float(str): whitespace around, underscores between digits, inf/nan. */
static bool parse_float(const char *s, double *out)
{
    char buf[128];
    size_t k = 0;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    for (; *s && k + 1 < sizeof buf; s++)
        if (*s != '_')
            buf[k++] = *s;
    while (k && (buf[k - 1] == ' ' || (buf[k - 1] >= '\t' && buf[k - 1] <= '\r')))
        k--;
    buf[k] = '\0';
    if (!k || *s || strchr(buf, 'x') || strchr(buf, 'X'))
        return false;
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0';
}

static bool f_float(FARGS)
{
    static const char *const kws[] = {"default", NULL};
    if (!check(c, at, "float", a, 1, kws))
        return false;
    if (v.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, v);
    double f;
    if (jj_is_num(v))
        f = v.type == JJ_FLOAT ? v.u.f : v.type == JJ_INT ? (double)v.u.i : v.u.b;
    else if (!(v.type == JJ_STR && parse_float(jj_as_str(v)->s, &f))) {
        *out = slm__jj_ref(arg_or(a, 0, "default", jj_float(0.0)));
        return true;
    }
    *out = jj_float(f);
    return true;
}

/* Python's int(str, base): sign, underscores, optional 0x/0o/0b prefix. */
static bool parse_int(const char *s, int64_t base, int64_t *out)
{
    char buf[128];
    size_t k = 0;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    if (*s == '+' || *s == '-')
        buf[k++] = *s++;
    if (*s == '0' && s[1] && strchr("xXoObB", s[1])) {
        int pb = strchr("xX", s[1]) ? 16 : strchr("oO", s[1]) ? 8 : 2;
        if (base != 0 && base != pb)
            return false;
        base = pb;
        s += 2;
    }
    for (; *s && !(*s == ' ' || (*s >= '\t' && *s <= '\r')) && k + 1 < sizeof buf; s++)
        if (*s != '_')
            buf[k++] = *s;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    buf[k] = '\0';
    if (*s || !k || base < 0 || base == 1 || base > 36)
        return false;
    char *end;
    errno = 0;
    *out = strtoll(buf, &end, base == 0 ? 10 : (int)base);
    return *end == '\0' && end != buf && errno == 0;
}

static bool f_int(FARGS)
{
    static const char *const kws[] = {"default", "base", NULL};
    int64_t base = 10, i = 0;
    if (!check(c, at, "int", a, 2, kws) ||
        !int_arg(c, at, arg_or(a, 1, "base", jj_int(10)), "base", &base))
        return false;
    if (v.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, v);
    double f;
    if (v.type == JJ_INT || v.type == JJ_BOOL) {
        *out = jj_int(v.type == JJ_INT ? v.u.i : v.u.b);
    } else if (v.type == JJ_FLOAT || (v.type == JJ_STR && !parse_int(jj_as_str(v)->s, base, &i) &&
                                      parse_float(jj_as_str(v)->s, &f))) {
        double x = v.type == JJ_FLOAT ? v.u.f : f;
        if (isnan(x) || isinf(x) || fabs(x) >= 9.2e18)
            return slm__jj_fail(c, at, SLM_E_INVALID, "OverflowError: cannot convert float to "
                                "integer");
        *out = jj_int((int64_t)x);
    } else if (v.type == JJ_STR && parse_int(jj_as_str(v)->s, base, &i)) {
        *out = jj_int(i);
    } else {
        *out = slm__jj_ref(arg_or(a, 0, "default", jj_int(0)));
    }
    return true;
}

static bool f_format(FARGS)
{
    jj_value_t s, args;
    if (a->n_pos && a->n_kw)
        return slm__jj_fail(c, at, SLM_E_INVALID, "FilterArgumentError: can't handle positional "
                            "and keyword arguments at the same time");
    if (!slm__jj_stringify(c, at, v, &s))
        return false;
    bool ok;
    if (a->n_kw) {
        ok = slm__jj_dict_new(c, at, JJ_DICT, &args);
        for (size_t k = 0; ok && k < a->n_kw; k++) {
            jj_value_t key;
            ok = slm__jj_str(c, at, a->kw_names[k], strlen(a->kw_names[k]), &key) &&
                 slm__jj_dict_set(c, at, args, key, slm__jj_ref(a->kw_vals[k]));
        }
    } else {
        ok = slm__jj_list_new(c, at, JJ_TUPLE, a->n_pos, &args);
        for (size_t i = 0; ok && i < a->n_pos; i++)
            ok = slm__jj_list_push(c, at, args, slm__jj_ref(a->pos[i]));
    }
    ok = ok && slm__jj_percent_format(c, at, jj_as_str(s), args, out);
    slm__jj_unref(args);
    slm__jj_unref(s);
    return ok;
}

static bool f_indent(FARGS)
{
    static const char *const kws[] = {"width", "first", "blank", NULL};
    if (!check(c, at, "indent", a, 3, kws))
        return false;
    if (v.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, v);
    if (v.type == JJ_LIST)   /* jinja2 does s += "\n", then s.splitlines() */
        return slm__jj_fail(c, at, SLM_E_INVALID, "AttributeError: 'list' object has no "
                            "attribute 'splitlines'");
    if (v.type != JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: unsupported operand type(s) for "
                            "+=: '%s' and 'str'", slm__jj_type_name(v));
    jj_value_t w = arg_or(a, 0, "width", jj_int(4)), s, lines = jj_undef();
    jj_buf_t ind = {0}, b = {0};
    bool ok = true;
    if (w.type == JJ_STR)
        ok = slm__jj_buf_put(c, at, &ind, jj_as_str(w)->s, jj_as_str(w)->len);
    int64_t n = 0;
    if (w.type != JJ_STR && !int_arg(c, at, w, "width", &n))
        return false;
    for (int64_t i = 0; ok && i < n && i < 1000; i++)
        ok = slm__jj_buf_putc(c, at, &ind, ' ');
    bool first = slm__jj_truthy(arg_or(a, 1, "first", jj_bool(false)));
    bool blank = slm__jj_truthy(arg_or(a, 2, "blank", jj_bool(false)));
    if (!ok || !slm__jj_stringify(c, at, v, &s)) {
        free(ind.s);
        return false;
    }
    /* jinja2 appends "\n" first so that splitlines keeps a last empty line */
    jj_buf_t t = {0};
    ok = slm__jj_buf_put(c, at, &t, jj_as_str(s)->s, jj_as_str(s)->len) &&
         slm__jj_buf_putc(c, at, &t, '\n') && slm__jj_splitlines(c, at, t.s, t.len, &lines);
    free(t.s);
    slm__jj_unref(s);
    const char *is = ind.s ? ind.s : "";
    if (ok && first)
        ok = slm__jj_buf_put(c, at, &b, is, ind.len);
    for (size_t i = 0; ok && i < jj_as_list(lines)->n; i++) {
        jj_str_t *line = jj_as_str(jj_as_list(lines)->v[i]);
        if (i)
            ok = slm__jj_buf_putc(c, at, &b, '\n') &&
                 ((!blank && !line->len) || slm__jj_buf_put(c, at, &b, is, ind.len));
        ok = ok && slm__jj_buf_put(c, at, &b, line->s, line->len);
    }
    slm__jj_unref(lines);
    free(ind.s);
    return take_buf(c, at, ok, &b, out);
}

static bool f_items(FARGS)
{
    if (!check(c, at, "items", a, 0, NULL))
        return false;
    if (v.type == JJ_UNDEF)
        return slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    if (v.type != JJ_DICT)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: Can only get item pairs from a "
                            "mapping.");
    jj_dict_t *d = jj_as_dict(v);
    if (!slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out))
        return false;
    for (size_t i = 0; i < d->n; i++) {
        jj_value_t pair;
        if (!slm__jj_list_new(c, at, JJ_TUPLE, 2, &pair))
            return false;
        jj_as_list(pair)->v[0] = slm__jj_ref(d->k[i]);
        jj_as_list(pair)->v[1] = slm__jj_ref(d->v[i]);
        jj_as_list(pair)->n = 2;
        if (!slm__jj_list_push(c, at, *out, pair))
            return false;
    }
    return true;
}

/* Items of v, each replaced by its attribute when attr is given. */
static bool mapped(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_value_t attr,
                   jj_value_t *out)
{
    jj_value_t items;
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    if (attr.type == JJ_UNDEF || attr.type == JJ_NONE) {
        *out = items;
        return true;
    }
    bool ok = slm__jj_list_new(c, at, JJ_LIST, 0, out);
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        jj_value_t x;
        ok = get_attr_path(c, at, jj_as_list(items)->v[i], attr, &x) &&
             slm__jj_list_push(c, at, *out, x);
    }
    slm__jj_unref(items);
    if (!ok) {
        slm__jj_unref(*out);
        *out = jj_undef();
    }
    return ok;
}

static bool f_join(FARGS)
{
    static const char *const kws[] = {"d", "attribute", NULL};
    if (!check(c, at, "join", a, 2, kws))
        return false;
    jj_value_t sep = arg_or(a, 0, "d", jj_undef()), items, sep_s = jj_undef();
    if (!mapped(c, at, v, arg_or(a, 1, "attribute", jj_undef()), &items))
        return false;
    jj_buf_t b = {0};
    bool ok = sep.type == JJ_UNDEF || slm__jj_stringify(c, at, sep, &sep_s);
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        if (i && sep_s.type == JJ_STR)
            ok = slm__jj_buf_put(c, at, &b, jj_as_str(sep_s)->s, jj_as_str(sep_s)->len);
        ok = ok && slm__jj_to_str(c, at, jj_as_list(items)->v[i], &b);
    }
    slm__jj_unref(sep_s);
    slm__jj_unref(items);
    return take_buf(c, at, ok, &b, out);
}

static bool f_list(FARGS)
{
    jj_value_t items;
    if (!check(c, at, "list", a, 0, NULL) || !slm__jj_iterate(c, at, v, &items))
        return false;
    if (items.type == JJ_LIST) {   /* iterators and tuples become a new list */
        *out = items;
        return true;
    }
    bool ok = slm__jj_list_new(c, at, JJ_LIST, jj_as_list(items)->n, out);
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++)
        ok = slm__jj_list_push(c, at, *out, slm__jj_ref(jj_as_list(items)->v[i]));
    slm__jj_unref(items);
    return ok;
}

/* map(attribute='x', default=...) or map('filter', args...). */
static bool f_map(FARGS)
{
    jj_value_t attr, items;
    if (!slm__jj_truthy(v))   /* jinja2 maps nothing over a false value, None included */
        return slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    bool ok = slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    bool by_attr = slm__jj_arg(a, SIZE_MAX, "attribute", &attr);
    jj_value_t def = arg_or(a, SIZE_MAX, "default", jj_undef()), name = arg_or(a, 0, NULL, jj_undef());
    if (ok && !by_attr && name.type != JJ_STR)
        ok = slm__jj_fail(c, at, SLM_E_INVALID, "filter 'map' needs attribute= or a filter name");
    jj_call_args_t rest = *a;
    if (!by_attr && a->n_pos) {
        rest.pos++;
        rest.n_pos--;
    }
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        jj_value_t x, item = jj_as_list(items)->v[i];
        if (by_attr) {
            ok = get_attr_path(c, at, item, attr, &x);
            if (ok && x.type == JJ_UNDEF && def.type != JJ_UNDEF) {
                slm__jj_unref(x);
                x = slm__jj_ref(def);
            }
        } else {
            ok = slm__jj_filter_by_name(c, at, jj_as_str(name)->s, item, &rest, &x);
        }
        ok = ok && slm__jj_list_push(c, at, *out, x);
    }
    slm__jj_unref(items);
    return ok;
}

/* select / reject / selectattr / rejectattr. */
static bool filter_items(FARGS, bool keep, bool by_attr)
{
    jj_value_t items, attr = jj_undef(), test = jj_undef();
    size_t first = 0;
    if (by_attr && !slm__jj_arg(a, first++, NULL, &attr))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: missing the attribute argument");
    bool has_test = slm__jj_arg(a, first, NULL, &test);
    if (has_test && test.type != JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: the test name must be a string");
    jj_call_args_t rest = {.pos = a->pos + (a->n_pos > first ? first + 1 : a->n_pos),
                           .n_pos = a->n_pos > first + 1 ? a->n_pos - first - 1 : 0,
                           .kw_names = a->kw_names, .kw_vals = a->kw_vals, .n_kw = a->n_kw};
    if (!slm__jj_truthy(v))   /* as in jinja2: a false value selects nothing */
        return slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    bool ok = slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        jj_value_t item = jj_as_list(items)->v[i], x = slm__jj_ref(item);
        if (by_attr) {
            slm__jj_unref(x);
            ok = get_attr_path(c, at, item, attr, &x);
        }
        bool r = false;
        if (ok && has_test)
            ok = slm__jj_test_by_name(c, at, jj_as_str(test)->s, x, &rest, &r);
        else
            r = slm__jj_truthy(x);
        slm__jj_unref(x);
        if (ok && r == keep)
            ok = slm__jj_list_push(c, at, *out, slm__jj_ref(item));
    }
    slm__jj_unref(items);
    return ok;
}

static bool f_select(FARGS) { return filter_items(c, at, v, a, out, true, false); }
static bool f_reject(FARGS) { return filter_items(c, at, v, a, out, false, false); }
static bool f_selectattr(FARGS) { return filter_items(c, at, v, a, out, true, true); }
static bool f_rejectattr(FARGS) { return filter_items(c, at, v, a, out, false, true); }

/* min / max: the first smallest (largest) item; undefined when empty. */
static bool f_extreme(FARGS, bool max)
{
    static const char *const kws[] = {"case_sensitive", "attribute", NULL};
    if (!check(c, at, max ? "max" : "min", a, 2, kws))
        return false;
    jj_value_t items, best_key = jj_undef(), attr = arg_or(a, 1, "attribute", jj_undef());
    bool cs = slm__jj_truthy(arg_or(a, 0, "case_sensitive", jj_bool(false))), ok = true;
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    jj_list_t *l = jj_as_list(items);
    size_t best = SIZE_MAX;
    for (size_t i = 0; ok && i < l->n; i++) {
        jj_value_t key = jj_undef();
        int cmp = 0;
        ok = sort_key(c, at, l->v[i], attr, cs, &key) &&
             (best == SIZE_MAX || slm__jj_compare(c, at, key, best_key, &cmp));
        if (ok && (best == SIZE_MAX || (max ? cmp == 1 : cmp == -1))) {
            best = i;
            slm__jj_unref(best_key);
            best_key = key;
        } else {
            slm__jj_unref(key);
        }
    }
    *out = best != SIZE_MAX ? slm__jj_ref(l->v[best])
                            : slm__jj_undef_msg(c, "No aggregated item, sequence was empty.");
    slm__jj_unref(best_key);
    slm__jj_unref(items);
    return ok;
}

static bool f_max(FARGS) { return f_extreme(c, at, v, a, out, true); }
static bool f_min(FARGS) { return f_extreme(c, at, v, a, out, false); }

static bool f_replace(FARGS)
{
    static const char *const kws[] = {"old", "new", "count", NULL};
    jj_value_t s, old = arg_or(a, 0, "old", jj_undef()), nw = arg_or(a, 1, "new", jj_undef());
    jj_value_t count = arg_or(a, 2, "count", jj_none()), os = jj_undef(), ns = jj_undef();
    int64_t n = -1;
    if (!check(c, at, "replace", a, 3, kws))
        return false;
    if (count.type != JJ_NONE && !int_arg(c, at, count, "count", &n))
        return false;
    if (old.type == JJ_UNDEF || nw.type == JJ_UNDEF)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: filter 'replace' needs old and new");
    if (!slm__jj_stringify(c, at, v, &s))
        return false;
    bool ok = slm__jj_stringify(c, at, old, &os);
    ok = ok && slm__jj_stringify(c, at, nw, &ns);
    ok = ok && slm__jj_replace(c, at, jj_as_str(s), jj_as_str(os), jj_as_str(ns), n, out);
    slm__jj_unref(os);
    slm__jj_unref(ns);
    slm__jj_unref(s);
    return ok;
}

static bool f_reverse(FARGS)
{
    if (!check(c, at, "reverse", a, 0, NULL))
        return false;
    jj_value_t items;
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    jj_list_t *l = jj_as_list(items);
    bool ok = true;
    if (v.type == JJ_STR) {
        jj_buf_t b = {0};
        for (size_t i = l->n; ok && i-- > 0;)
            ok = slm__jj_buf_put(c, at, &b, jj_as_str(l->v[i])->s, jj_as_str(l->v[i])->len);
        ok = take_buf(c, at, ok, &b, out);
    } else {   /* reversed() where Python has it, else a reversed list */
        bool reversible = v.type != JJ_ITER || jj_is_view(v);
        ok = reversible ? slm__jj_iter_new(c, at, JJ_ITER_REVERSED, out)
                        : slm__jj_list_new(c, at, JJ_LIST, l->n, out);
        for (size_t i = l->n; ok && i-- > 0;)
            ok = slm__jj_list_push(c, at, *out, slm__jj_ref(l->v[i]));
    }
    slm__jj_unref(items);
    return ok;
}

/* round(value, precision, method): Python's round (correctly rounded, half to even)
 * for "common"; floor and ceil scale first as jinja2 does. */
static bool f_round(FARGS)
{
    static const char *const kws[] = {"precision", "method", NULL};
    int64_t prec = 0;
    jj_value_t method = arg_or(a, 1, "method", jj_undef());
    if (!check(c, at, "round", a, 2, kws) ||
        !int_arg(c, at, arg_or(a, 0, "precision", jj_int(0)), "precision", &prec))
        return false;
    const char *m = method.type == JJ_STR ? jj_as_str(method)->s : "common";
    if (strcmp(m, "common") && strcmp(m, "floor") && strcmp(m, "ceil"))
        return slm__jj_fail(c, at, SLM_E_INVALID, "FilterArgumentError: method must be common, "
                            "ceil or floor");
    if (!jj_is_num(v))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: type %s doesn't define __round__ "
                            "method", slm__jj_type_name(v));
    if (v.type != JJ_FLOAT && !strcmp(m, "common")) {
        *out = jj_int(v.type == JJ_INT ? v.u.i : v.u.b);   /* round(int, n) is the int */
        return true;
    }
    double x = v.type == JJ_FLOAT ? v.u.f : v.type == JJ_INT ? (double)v.u.i : v.u.b, r;
    if (prec > 300 || prec < -300)
        prec = prec > 0 ? 300 : -300;
    if (strcmp(m, "common")) {
        double scale = pow(10.0, (double)prec);
        r = (m[0] == 'f' ? floor(x * scale) : ceil(x * scale)) / scale;
    } else if (fabs(x) >= 1e16 || isnan(x)) {
        r = x;   /* already a whole number (or not a number) */
    } else if (prec >= 0) {
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
        r = strtod(buf, NULL);
    } else {
        double scale = pow(10.0, (double)-prec);
        r = nearbyint(x / scale) * scale;
    }
    *out = jj_float(r);
    return true;
}

static bool f_string(FARGS)
{
    return check(c, at, "string", a, 0, NULL) && slm__jj_stringify(c, at, v, out);
}

static bool f_sort(FARGS)
{
    static const char *const kws[] = {"reverse", "case_sensitive", "attribute", NULL};
    jj_value_t items;
    if (!check(c, at, "sort", a, 3, kws) || !slm__jj_iterate(c, at, v, &items))
        return false;
    bool ok = sorted(c, at, items, arg_or(a, 2, "attribute", jj_undef()),
                     slm__jj_truthy(arg_or(a, 1, "case_sensitive", jj_bool(false))),
                     slm__jj_truthy(arg_or(a, 0, "reverse", jj_bool(false))), true, out);
    slm__jj_unref(items);
    return ok;
}

static bool f_sum(FARGS)
{
    static const char *const kws[] = {"attribute", "start", NULL};
    jj_value_t items, acc = slm__jj_ref(arg_or(a, 1, "start", jj_int(0)));
    if (!check(c, at, "sum", a, 2, kws) ||
        !mapped(c, at, v, arg_or(a, 0, "attribute", jj_undef()), &items))
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        jj_value_t next;
        ok = slm__jj_binop(c, at, JJ_OP_ADD, acc, jj_as_list(items)->v[i], &next);
        slm__jj_unref(acc);
        acc = next;
    }
    slm__jj_unref(items);
    *out = acc;
    return ok;
}

static bool f_tojson(FARGS)
{
    static const char *const kws[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    if (!check(c, at, "tojson", a, 4, kws))
        return false;
    jj_json_opts_t o = {.ensure_ascii = slm__jj_truthy(arg_or(a, 0, "ensure_ascii", jj_bool(false))),
                        .sort_keys = slm__jj_truthy(arg_or(a, 3, "sort_keys", jj_bool(false)))};
    jj_value_t indent = arg_or(a, 1, "indent", jj_none()), seps = arg_or(a, 2, "separators", jj_none());
    char spaces[256];
    if (indent.type == JJ_STR) {
        o.indent = jj_as_str(indent)->s;
        o.indent_len = jj_as_str(indent)->len;
    } else if (indent.type == JJ_INT || indent.type == JJ_BOOL) {
        int64_t n = indent.type == JJ_INT ? indent.u.i : indent.u.b;
        n = n < 0 ? 0 : n > 255 ? 255 : n;
        memset(spaces, ' ', (size_t)n);
        o.indent = spaces;
        o.indent_len = (size_t)n;
    } else if (indent.type != JJ_NONE) {
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: tojson indent must be an int or a "
                            "string");
    }
    o.item_sep = o.indent ? "," : ", ";
    o.key_sep = ": ";
    if (seps.type != JJ_NONE) {
        if (!jj_is_seq(seps) || jj_as_list(seps)->n != 2 || jj_as_list(seps)->v[0].type != JJ_STR ||
            jj_as_list(seps)->v[1].type != JJ_STR)
            return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: tojson separators must be two "
                                "strings");
        o.item_sep = jj_as_str(jj_as_list(seps)->v[0])->s;
        o.key_sep = jj_as_str(jj_as_list(seps)->v[1])->s;
    }
    jj_buf_t b = {0};
    return take_buf(c, at, slm__jj_tojson(c, at, v, &o, &b), &b, out);
}

static bool f_trim(FARGS)
{
    static const char *const kws[] = {"chars", NULL};
    jj_value_t s, chars = arg_or(a, 0, "chars", jj_none());
    if (!check(c, at, "trim", a, 1, kws) || !slm__jj_stringify(c, at, v, &s))
        return false;
    size_t x, z;
    bool ok = chars.type == JJ_NONE || chars.type == JJ_STR ||
              slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: strip arg must be None or str");
    if (ok) {
        slm__jj_strip(jj_as_str(s)->s, jj_as_str(s)->len,
                      chars.type == JJ_STR ? jj_as_str(chars)->s : NULL,
                      chars.type == JJ_STR ? jj_as_str(chars)->len : 0, 3, &x, &z);
        ok = slm__jj_str(c, at, jj_as_str(s)->s + x, z - x, out);
    }
    slm__jj_unref(s);
    return ok;
}

static bool f_truncate(FARGS)
{
    static const char *const kws[] = {"length", "killwords", "end", "leeway", NULL};
    int64_t length = 0, leeway = 0;
    jj_value_t end = arg_or(a, 2, "end", jj_undef()), s;
    if (!check(c, at, "truncate", a, 4, kws) ||
        !int_arg(c, at, arg_or(a, 0, "length", jj_int(255)), "length", &length) ||
        !int_arg(c, at, arg_or(a, 3, "leeway", jj_int(5)), "leeway", &leeway))
        return false;
    if (v.type != JJ_STR && v.type != JJ_UNDEF) {   /* jinja2 takes len() of the value */
        int64_t n;
        if (!slm__jj_length(c, at, v, &n))
            return false;
        if (n > length + leeway)
            return slm__jj_fail(c, at, SLM_E_INVALID, "AttributeError: '%s' object has no "
                                "attribute 'rsplit'", slm__jj_type_name(v));
        *out = slm__jj_ref(v);
        return true;
    }
    const char *e = end.type == JJ_STR ? jj_as_str(end)->s : "...";
    int64_t elen = end.type == JJ_STR ? (int64_t)slm__jj_str_ncp(jj_as_str(end)) : 3;
    if (length < elen || leeway < 0)
        return slm__jj_fail(c, at, SLM_E_INVALID, "AssertionError: expected length >= %lld and "
                            "leeway >= 0", (long long)elen);
    if (!slm__jj_stringify(c, at, v, &s))
        return false;
    jj_str_t *str = jj_as_str(s);
    if ((int64_t)slm__jj_str_ncp(str) <= length + leeway) {
        *out = s;
        return true;
    }
    size_t cut = slm__jj_str_offset(str, (size_t)(length - elen));
    if (!slm__jj_truthy(arg_or(a, 1, "killwords", jj_bool(false)))) {
        const char *sp = NULL;
        for (size_t i = cut; i-- > 0;)
            if (str->s[i] == ' ') {
                sp = str->s + i;
                break;
            }
        if (sp)
            cut = (size_t)(sp - str->s);
    }
    jj_buf_t b = {0};
    bool ok = slm__jj_buf_put(c, at, &b, str->s, cut) && slm__jj_buf_put(c, at, &b, e, strlen(e));
    slm__jj_unref(s);
    return take_buf(c, at, ok, &b, out);
}

static bool f_unique(FARGS)
{
    static const char *const kws[] = {"case_sensitive", "attribute", NULL};
    jj_value_t items, seen = jj_undef();
    if (!check(c, at, "unique", a, 2, kws) || !slm__jj_iterate(c, at, v, &items))
        return false;
    bool cs = slm__jj_truthy(arg_or(a, 0, "case_sensitive", jj_bool(false))), ok;
    jj_value_t attr = arg_or(a, 1, "attribute", jj_undef());
    ok = slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out) &&
         slm__jj_list_new(c, at, JJ_LIST, 0, &seen);
    for (size_t i = 0; ok && i < jj_as_list(items)->n; i++) {
        jj_value_t key = jj_undef(), item = jj_as_list(items)->v[i];
        bool dup = false;
        if (!(ok = sort_key(c, at, item, attr, cs, &key) && slm__jj_hashable(c, at, key))) {
            slm__jj_unref(key);
            break;
        }
        ok = slm__jj_contains(c, at, seen, key, &dup);
        if (ok && !dup)
            ok = slm__jj_list_push(c, at, seen, key) && slm__jj_list_push(c, at, *out, slm__jj_ref(item));
        else
            slm__jj_unref(key);
    }
    slm__jj_unref(seen);
    slm__jj_unref(items);
    return ok;
}

static bool f_wordcount(FARGS)
{
    jj_value_t s;
    if (!check(c, at, "wordcount", a, 0, NULL) || !slm__jj_stringify(c, at, v, &s))
        return false;
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < jj_as_str(s)->len;) {
        uint32_t cp;
        i += slm__jj_utf8_decode(jj_as_str(s)->s + i, jj_as_str(s)->len - i, &cp);
        bool w = cp == '_' || slm__jj_is_alnum(cp);
        n += w && !in_word;
        in_word = w;
    }
    slm__jj_unref(s);
    *out = jj_int(n);
    return true;
}

static bool f_slice(FARGS)
{
    static const char *const kws[] = {"slices", "fill_with", NULL};
    int64_t n = 0;
    jj_value_t items, fill;
    bool has_fill = slm__jj_arg(a, 1, "fill_with", &fill);
    if (!check(c, at, "slice", a, 2, kws) ||
        !int_arg(c, at, arg_or(a, 0, "slices", jj_undef()), "slices", &n))
        return false;
    if (n <= 0 || n > (int64_t)JJ_MAX_ITEMS)
        return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: slices must be positive");
    if (!slm__jj_iterate(c, at, v, &items))
        return false;
    size_t len = jj_as_list(items)->n, per = len / (size_t)n, extra = len % (size_t)n, off = 0;
    bool ok = slm__jj_iter_new(c, at, JJ_ITER_GENERATOR, out);
    for (size_t k = 0; ok && k < (size_t)n; k++) {
        size_t take = per + (k < extra);
        jj_value_t part;
        ok = slm__jj_list_new(c, at, JJ_LIST, 0, &part);
        for (size_t i = 0; ok && i < take; i++)
            ok = slm__jj_list_push(c, at, part, slm__jj_ref(jj_as_list(items)->v[off + i]));
        if (ok && has_fill && extra && k >= extra)
            ok = slm__jj_list_push(c, at, part, slm__jj_ref(fill));
        off += take;
        if (ok)
            ok = slm__jj_list_push(c, at, *out, part);
        else
            slm__jj_unref(part);
    }
    slm__jj_unref(items);
    return ok;
}

static bool f_safe(FARGS)
{
    if (!check(c, at, "safe", a, 0, NULL))
        return false;
    if (v.type == JJ_STR && jj_as_str(v)->markup) {
        *out = slm__jj_ref(v);
        return true;
    }
    jj_buf_t b = {0};
    return markup(c, at, &b, slm__jj_to_str(c, at, v, &b), out);
}

/* ---- the table ---- */

typedef struct filter {
    const char *name;
    filter_fn fn;
} filter_t;

static const filter_t filters[] = {
    {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize},
    {"center", f_center}, {"count", f_length}, {"d", f_default}, {"default", f_default},
    {"dictsort", f_dictsort}, {"e", f_escape}, {"escape", f_escape}, {"first", f_first},
    {"float", f_float}, {"forceescape", f_escape}, {"format", f_format}, {"indent", f_indent},
    {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last},
    {"length", f_length}, {"list", f_list}, {"lower", f_lower}, {"map", f_map},
    {"max", f_max}, {"min", f_min}, {"reject", f_reject}, {"rejectattr", f_rejectattr},
    {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round}, {"safe", f_safe},
    {"select", f_select}, {"selectattr", f_selectattr}, {"slice", f_slice}, {"sort", f_sort},
    {"string", f_string}, {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson},
    {"trim", f_trim}, {"truncate", f_truncate}, {"unique", f_unique}, {"upper", f_upper},
    {"wordcount", f_wordcount},
};

/* jinja2 has these; this engine does not. */
static const char *const unsupported[] = {
    "filesizeformat", "groupby", "pprint", "random", "striptags", "urlencode", "urlize",
    "wordwrap", "xmlattr", NULL,
};

int slm__jj_filter_find(const char *name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name))
            return (int)i;
    for (size_t i = 0; unsupported[i]; i++)
        if (!strcmp(unsupported[i], name))
            return -2;
    return -1;
}

bool slm__jj_filter_apply(jj_ctx_t *c, const jj_node_t *at, int id, jj_value_t v,
                          const jj_call_args_t *a, jj_value_t *out)
{
    *out = jj_undef();
    if (id < 0 || (size_t)id >= sizeof filters / sizeof filters[0])
        return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported filter");
    bool ok = filters[id].fn(c, at, v, a, out) && !c->err->set;
    if (!ok) {
        slm__jj_unref(*out);
        *out = jj_undef();
    }
    return ok;
}

bool slm__jj_filter_by_name(jj_ctx_t *c, const jj_node_t *at, const char *name, jj_value_t v,
                            const jj_call_args_t *a, jj_value_t *out)
{
    int id = slm__jj_filter_find(name);
    *out = jj_undef();
    if (id == -1)
        return slm__jj_fail(c, at, SLM_E_INVALID, "no filter named '%s'", name);
    if (id == -2)
        return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported filter '%s'", name);
    return slm__jj_filter_apply(c, at, id, v, a, out);
}

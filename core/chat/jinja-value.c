/* Values of the Jinja engine: reference counting, construction within the render's
 * limits, and Python's semantics for truth, ==, <, str(), repr() and len(). */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

/* ---- errors ---- */

void slm__jj_error_set(jj_error_t *e, int code, jj_pos_t pos, const char *fmt, va_list ap)
{
    if (!e || e->set)
        return;
    e->set = true;
    e->code = code;
    e->pos = pos;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

void slm__jj_error_setf(jj_error_t *e, int code, jj_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slm__jj_error_set(e, code, pos, fmt, ap);
    va_end(ap);
}

bool slm__jj_fail(jj_ctx_t *c, const jj_node_t *at, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slm__jj_error_set(c->err, code, at ? at->pos : (jj_pos_t){0}, fmt, ap);
    va_end(ap);
    return false;
}

bool slm__jj_charge(jj_ctx_t *c, const jj_node_t *at, size_t bytes)
{
    c->alloc += bytes;
    if (c->alloc <= c->max_alloc)
        return true;
    return slm__jj_fail(c, at, SLM_E_INVALID, "the template allocated more than %llu MiB "
                        "(a runaway loop?)", (unsigned long long)(c->max_alloc >> 20));
}

/* ---- buffers ---- */

bool slm__jj_buf_put(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        if (b->len + n > JJ_MAX_STRING)
            return slm__jj_fail(c, at, SLM_E_INVALID, "the text would exceed %u MiB",
                                JJ_MAX_STRING >> 20);
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!slm__jj_charge(c, at, cap - b->cap))
            return false;
        char *p = realloc(b->s, cap);
        if (!p)
            return slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
        b->s = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

bool slm__jj_buf_putc(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, char ch)
{
    return slm__jj_buf_put(c, at, b, &ch, 1);
}

bool slm__jj_buf_printf(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return slm__jj_fail(c, at, SLM_E_INVALID, "formatting failed");
    return slm__jj_buf_put(c, at, b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- reference counting ---- */

static bool has_obj(jj_value_t v)
{
    return (v.type >= JJ_STR || v.type == JJ_UNDEF) && v.u.o;
}

jj_value_t slm__jj_ref(jj_value_t v)
{
    if (has_obj(v) && v.u.o->refs != JJ_IMMORTAL)
        v.u.o->refs++;
    return v;
}

static void free_items(jj_value_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        slm__jj_unref(v[i]);
    free(v);
}

void slm__jj_unref(jj_value_t v)
{
    if (!has_obj(v) || v.u.o->refs == JJ_IMMORTAL || --v.u.o->refs)
        return;
    switch (v.type) {
    case JJ_LIST:
    case JJ_TUPLE:
    case JJ_ITER:
        free_items(jj_as_list(v)->v, jj_as_list(v)->n);
        break;
    case JJ_DICT:
    case JJ_NS:
        free_items(jj_as_dict(v)->k, jj_as_dict(v)->n);
        free_items(jj_as_dict(v)->v, jj_as_dict(v)->n);
        break;
    case JJ_FUNC:
        slm__jj_unref(jj_as_func(v)->self);
        slm__jj_scope_unref(jj_as_func(v)->scope);
        break;
    case JJ_LOOP:
        slm__jj_unref(jj_as_loop(v)->items);
        slm__jj_unref(jj_as_loop(v)->changed_last);
        break;
    default:
        break;
    }
    free(v.u.o);
}

/* ---- construction ---- */

static void *obj_new(jj_ctx_t *c, const jj_node_t *at, size_t size)
{
    if (!slm__jj_charge(c, at, size))
        return NULL;
    jj_obj_t *o = calloc(1, size);
    if (!o) {
        slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
        return NULL;
    }
    o->refs = 1;
    return o;
}

jj_str_t *slm__jj_str_new(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len)
{
    if (len > JJ_MAX_STRING) {
        slm__jj_fail(c, at, SLM_E_INVALID, "a string would exceed %u MiB", JJ_MAX_STRING >> 20);
        return NULL;
    }
    jj_str_t *str = obj_new(c, at, sizeof *str + len + 1);
    if (!str)
        return NULL;
    str->len = len;
    str->n_cp = SIZE_MAX;
    if (len)
        memcpy(str->s, s, len);
    str->s[len] = '\0';
    return str;
}

bool slm__jj_str(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len, jj_value_t *out)
{
    jj_str_t *str = slm__jj_str_new(c, at, s, len);
    *out = str ? (jj_value_t){.type = JJ_STR, .u.o = &str->h} : jj_undef();
    return str != NULL;
}

bool slm__jj_str_take(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, jj_value_t *out)
{
    bool ok = slm__jj_str(c, at, b->s ? b->s : "", b->len, out);
    free(b->s);
    *b = (jj_buf_t){0};
    return ok;
}

jj_value_t slm__jj_undef_msg(jj_ctx_t *c, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jj_value_t v = jj_undef();
    jj_str_t *s = slm__jj_str_new(c, NULL, msg, strlen(msg));
    if (s)
        v.u.o = &s->h;
    return v;
}

bool slm__jj_list_new(jj_ctx_t *c, const jj_node_t *at, jj_type_t type, size_t cap,
                      jj_value_t *out)
{
    *out = jj_undef();
    if (cap > JJ_MAX_ITEMS)
        return slm__jj_fail(c, at, SLM_E_INVALID, "a list would have more than %u items",
                            JJ_MAX_ITEMS);
    jj_list_t *l = obj_new(c, at, sizeof *l);
    if (!l)
        return false;
    l->depth = 1;
    if (cap && (!slm__jj_charge(c, at, cap * sizeof *l->v) || !(l->v = malloc(cap * sizeof *l->v)))) {
        free(l);
        if (!c->err->set)
            slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
        return false;
    }
    l->cap = cap;
    *out = (jj_value_t){.type = type, .u.o = &l->h};
    return true;
}

bool slm__jj_iter_new(jj_ctx_t *c, const jj_node_t *at, int kind, jj_value_t *out)
{
    if (!slm__jj_list_new(c, at, JJ_ITER, 0, out))
        return false;
    jj_as_list(*out)->iter = (uint8_t)kind;
    return true;
}

static uint32_t depth_of(jj_value_t v)
{
    if (jj_has_items(v))
        return jj_as_list(v)->depth;
    return v.type == JJ_DICT ? jj_as_dict(v)->depth : 0;
}

static bool deeper(jj_ctx_t *c, const jj_node_t *at, uint32_t *depth, jj_value_t item)
{
    uint32_t d = depth_of(item) + 1;
    if (d > JJ_MAX_VALUE_DEPTH)
        return slm__jj_fail(c, at, SLM_E_INVALID, "lists and dicts nest deeper than %d levels",
                            JJ_MAX_VALUE_DEPTH);
    if (d > *depth)
        *depth = d;
    return true;
}

static bool grow(jj_ctx_t *c, const jj_node_t *at, void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    if (n >= JJ_MAX_ITEMS)
        return slm__jj_fail(c, at, SLM_E_INVALID, "a list or dict would have more than %u items",
                            JJ_MAX_ITEMS);
    size_t ncap = *cap ? 2 * *cap : 4;
    if (!slm__jj_charge(c, at, (ncap - *cap) * size))
        return false;
    void *p = realloc(*v, ncap * size);
    if (!p)
        return slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
    *v = p;
    *cap = ncap;
    return true;
}

bool slm__jj_list_push(jj_ctx_t *c, const jj_node_t *at, jj_value_t list, jj_value_t v)
{
    jj_list_t *l = jj_as_list(list);
    if (!deeper(c, at, &l->depth, v) ||
        !grow(c, at, (void **)&l->v, &l->cap, l->n, sizeof *l->v)) {
        slm__jj_unref(v);
        return false;
    }
    l->v[l->n++] = v;
    return true;
}

bool slm__jj_dict_new(jj_ctx_t *c, const jj_node_t *at, jj_type_t type, jj_value_t *out)
{
    jj_dict_t *d = obj_new(c, at, sizeof *d);
    *out = d ? (jj_value_t){.type = type, .u.o = &d->h} : jj_undef();
    if (d)
        d->depth = 1;
    return d != NULL;
}

static bool str_eq(jj_value_t a, const char *s, size_t n)
{
    return a.type == JJ_STR && jj_as_str(a)->len == n && memcmp(jj_as_str(a)->s, s, n) == 0;
}

jj_value_t *slm__jj_dict_get(jj_value_t dict, jj_value_t key)
{
    jj_dict_t *d = jj_as_dict(dict);
    for (size_t i = 0; i < d->n; i++) {
        if (key.type == JJ_STR ? str_eq(d->k[i], jj_as_str(key)->s, jj_as_str(key)->len)
                               : slm__jj_equal(d->k[i], key))
            return &d->v[i];
    }
    return NULL;
}

jj_value_t *slm__jj_dict_get_str(jj_value_t dict, const char *key)
{
    jj_dict_t *d = jj_as_dict(dict);
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (str_eq(d->k[i], key, n))
            return &d->v[i];
    return NULL;
}

bool slm__jj_dict_set(jj_ctx_t *c, const jj_node_t *at, jj_value_t dict, jj_value_t key,
                      jj_value_t v)
{
    jj_dict_t *d = jj_as_dict(dict);
    jj_value_t *old = slm__jj_dict_get(dict, key);
    if (dict.type == JJ_DICT && !deeper(c, at, &d->depth, v)) {
        slm__jj_unref(key);
        slm__jj_unref(v);
        return false;
    }
    if (old) {   /* Python keeps the first key and its place */
        slm__jj_unref(*old);
        *old = v;
        slm__jj_unref(key);
        return true;
    }
    size_t cap = d->cap;
    if (!grow(c, at, (void **)&d->k, &cap, d->n, sizeof *d->k) ||
        !grow(c, at, (void **)&d->v, &d->cap, d->n, sizeof *d->v)) {
        slm__jj_unref(key);
        slm__jj_unref(v);
        return false;
    }
    d->k[d->n] = key;
    d->v[d->n++] = v;
    return true;
}

bool slm__jj_func_new(jj_ctx_t *c, const jj_node_t *at, int kind, const char *name,
                      jj_value_t *out, jj_func_t **f)
{
    *f = obj_new(c, at, sizeof **f);
    *out = *f ? (jj_value_t){.type = JJ_FUNC, .u.o = &(*f)->h} : jj_undef();
    if (*f) {
        (*f)->kind = kind;
        (*f)->name = name;
    }
    return *f != NULL;
}

void slm__jj_mutable_add(jj_ctx_t *c, jj_value_t v)
{
    if (c->n_mut == c->cap_mut) {
        size_t cap = c->cap_mut ? 2 * c->cap_mut : 8;
        jj_value_t *m = realloc(c->mutables, cap * sizeof *m);
        if (!m)
            return;   /* it is only not emptied at the end: a cycle through it leaks */
        c->mutables = m;
        c->cap_mut = cap;
    }
    c->mutables[c->n_mut++] = slm__jj_ref(v);
}

/* ---- Python semantics ---- */

bool slm__jj_truthy(jj_value_t v)
{
    switch (v.type) {
    case JJ_UNDEF: case JJ_NONE: return false;
    case JJ_BOOL: return v.u.b;
    case JJ_INT: return v.u.i != 0;
    case JJ_FLOAT: return v.u.f != 0.0;
    case JJ_STR: return jj_as_str(v)->len > 0;
    case JJ_LIST: case JJ_TUPLE: return jj_as_list(v)->n > 0;
    case JJ_DICT: return jj_as_dict(v)->n > 0;
    case JJ_ITER: return !jj_is_view(v) || jj_as_list(v)->n > 0;   /* a generator is true */
    default: return true;
    }
}

static double num(jj_value_t v)
{
    return v.type == JJ_FLOAT ? v.u.f : v.type == JJ_INT ? (double)v.u.i : (double)v.u.b;
}

static bool num_eq(jj_value_t a, jj_value_t b)
{
    if (a.type != JJ_FLOAT && b.type != JJ_FLOAT)
        return (a.type == JJ_INT ? a.u.i : a.u.b) == (b.type == JJ_INT ? b.u.i : b.u.b);
    return num(a) == num(b);
}

static bool equal(jj_value_t a, jj_value_t b, int depth)
{
    if (depth > JJ_MAX_VALUE_DEPTH)
        return false;
    if (jj_is_num(a) && jj_is_num(b))
        return num_eq(a, b);
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case JJ_UNDEF: case JJ_NONE:
        return true;
    case JJ_STR:
        return str_eq(a, jj_as_str(b)->s, jj_as_str(b)->len);
    case JJ_LIST: case JJ_TUPLE: {
        jj_list_t *x = jj_as_list(a), *y = jj_as_list(b);
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++)
            if (!equal(x->v[i], y->v[i], depth + 1))
                return false;
        return true;
    }
    case JJ_DICT: {
        jj_dict_t *x = jj_as_dict(a);
        if (x->n != jj_as_dict(b)->n)
            return false;
        for (size_t i = 0; i < x->n; i++) {
            jj_value_t *w = slm__jj_dict_get(b, x->k[i]);
            if (!w || !equal(x->v[i], *w, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return a.u.o == b.u.o;
    }
}

bool slm__jj_equal(jj_value_t a, jj_value_t b)
{
    return equal(a, b, 0);
}

static bool compare(jj_ctx_t *c, const jj_node_t *at, jj_value_t a, jj_value_t b, int *cmp,
                    int depth)
{
    if (a.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, a);
    if (b.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, b);
    if (jj_is_num(a) && jj_is_num(b)) {
        if (num_eq(a, b))
            *cmp = 0;
        else if (a.type != JJ_FLOAT && b.type != JJ_FLOAT)
            *cmp = (a.type == JJ_INT ? a.u.i : a.u.b) < (b.type == JJ_INT ? b.u.i : b.u.b) ? -1 : 1;
        else
            *cmp = num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 2;   /* 2: NaN, unordered */
        return true;
    }
    if (a.type == JJ_STR && b.type == JJ_STR) {
        jj_str_t *x = jj_as_str(a), *y = jj_as_str(b);
        int r = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
        *cmp = r ? (r < 0 ? -1 : 1) : x->len < y->len ? -1 : x->len > y->len;
        return true;
    }
    if (a.type == b.type && jj_is_seq(a) && depth < JJ_MAX_VALUE_DEPTH) {
        jj_list_t *x = jj_as_list(a), *y = jj_as_list(b);
        for (size_t i = 0; i < x->n && i < y->n; i++) {
            if (equal(x->v[i], y->v[i], depth + 1))
                continue;
            return compare(c, at, x->v[i], y->v[i], cmp, depth + 1);
        }
        *cmp = x->n < y->n ? -1 : x->n > y->n;
        return true;
    }
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: '<' not supported between instances "
                        "of '%s' and '%s'", slm__jj_type_name(a), slm__jj_type_name(b));
}

bool slm__jj_compare(jj_ctx_t *c, const jj_node_t *at, jj_value_t a, jj_value_t b, int *cmp)
{
    return compare(c, at, a, b, cmp, 0);
}

static bool hashable(jj_value_t v, jj_value_t *bad, int depth)
{
    if (v.type == JJ_TUPLE && depth < JJ_MAX_VALUE_DEPTH) {
        for (size_t i = 0; i < jj_as_list(v)->n; i++)
            if (!hashable(jj_as_list(v)->v[i], bad, depth + 1))
                return false;
        return true;
    }
    *bad = v;
    return v.type != JJ_LIST && v.type != JJ_DICT && v.type != JJ_TUPLE &&
           !(v.type == JJ_ITER && jj_is_view(v) && jj_as_list(v)->iter != JJ_ITER_RANGE);
}

bool slm__jj_hashable(jj_ctx_t *c, const jj_node_t *at, jj_value_t v)
{
    jj_value_t bad = v;
    if (hashable(v, &bad, 0))
        return true;
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: unhashable type: '%s'",
                        slm__jj_type_name(bad));
}

const char *slm__jj_type_name(jj_value_t v)
{
    static const char *const names[] = {
        [JJ_UNDEF] = "Undefined", [JJ_NONE] = "NoneType", [JJ_BOOL] = "bool", [JJ_INT] = "int",
        [JJ_FLOAT] = "float", [JJ_STR] = "str", [JJ_LIST] = "list", [JJ_TUPLE] = "tuple",
        [JJ_DICT] = "dict", [JJ_NS] = "Namespace", [JJ_FUNC] = "function",
        [JJ_LOOP] = "LoopContext",
    };
    static const char *const iters[] = {
        [JJ_ITER_GENERATOR] = "generator", [JJ_ITER_REVERSED] = "list_reverseiterator",
        [JJ_ITER_ITEMS] = "dict_items", [JJ_ITER_KEYS] = "dict_keys",
        [JJ_ITER_VALUES] = "dict_values", [JJ_ITER_RANGE] = "range",
    };
    if (v.type == JJ_FUNC && jj_as_func(v)->kind != JJ_FN_BUILTIN)
        return "Macro";
    if (v.type == JJ_ITER)
        return iters[jj_as_list(v)->iter];
    return names[v.type];
}

const char *slm__jj_object_name(jj_value_t v)
{
    switch (v.type) {
    case JJ_NONE: return "None";
    case JJ_BOOL: return "bool object";
    case JJ_INT: return "int object";
    case JJ_FLOAT: return "float object";
    case JJ_STR: return "str object";
    case JJ_LIST: return "list object";
    case JJ_TUPLE: return "tuple object";
    case JJ_DICT: return "dict object";
    case JJ_NS: return "jinja2.utils.Namespace object";
    case JJ_LOOP: return "jinja2.runtime.LoopContext object";
    case JJ_FUNC: return jj_as_func(v)->kind == JJ_FN_BUILTIN ? "builtin_function_or_method object"
                                                              : "jinja2.runtime.Macro object";
    case JJ_ITER: {
        static const char *const names[] = {
            [JJ_ITER_GENERATOR] = "generator object", [JJ_ITER_REVERSED] = "list_reverseiterator object",
            [JJ_ITER_ITEMS] = "dict_items object", [JJ_ITER_KEYS] = "dict_keys object",
            [JJ_ITER_VALUES] = "dict_values object", [JJ_ITER_RANGE] = "range object",
        };
        return names[jj_as_list(v)->iter];
    }
    default: return "jinja2.runtime.Undefined object";
    }
}

bool slm__jj_undefined_error(jj_ctx_t *c, const jj_node_t *at, jj_value_t v)
{
    const char *msg = v.type == JJ_UNDEF && v.u.o ? jj_as_str(v)->s : "value is undefined";
    return slm__jj_fail(c, at, SLM_E_INVALID, "UndefinedError: %s", msg);
}

/* ---- text ---- */

void slm__jj_float_repr(double f, char buf[40])
{
    if (isnan(f)) {
        strcpy(buf, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(buf, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {   /* the shortest text that reads back */
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f)
            break;
    }
    /* e is [-]d[.ddd]e[+-]XX: collect the digits and the decimal exponent. */
    char digits[24];
    size_t nd = 0;
    const char *p = e + (e[0] == '-');
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp10 = atoi(p + 1), decpt = exp10 + 1;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char *o = buf;
    if (f < 0 || (f == 0 && signbit(f)))
        *o++ = '-';
    if (decpt > 16 || decpt < -3) {   /* Python's repr switches to 1e+16 / 1e-05 here */
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, nd - 1);
            o += nd - 1;
        }
        sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        return;
    }
    if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -decpt; i++)
            *o++ = '0';
        memcpy(o, digits, nd);
        o += nd;
    } else {
        for (int i = 0; i < decpt; i++)
            *o++ = (size_t)i < nd ? digits[i] : '0';
        *o++ = '.';
        if ((size_t)decpt < nd) {
            memcpy(o, digits + decpt, nd - (size_t)decpt);
            o += nd - (size_t)decpt;
        } else {
            *o++ = '0';
        }
    }
    *o = '\0';
}

static bool repr_str(jj_ctx_t *c, const jj_node_t *at, const jj_str_t *s, jj_buf_t *b)
{
    char q = memchr(s->s, '\'', s->len) && !memchr(s->s, '"', s->len) ? '"' : '\'';
    if (!slm__jj_buf_putc(c, at, b, q))
        return false;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        size_t n = slm__jj_utf8_decode(s->s + i, s->len - i, &cp);
        bool ok;
        if (cp == (uint32_t)q || cp == '\\')
            ok = slm__jj_buf_putc(c, at, b, '\\') && slm__jj_buf_putc(c, at, b, (char)cp);
        else if (cp == '\n' || cp == '\r' || cp == '\t')
            ok = slm__jj_buf_put(c, at, b, cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : "\\t", 2);
        else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0xFF && !slm__jj_is_printable(cp)))
            ok = slm__jj_buf_printf(c, at, b, "\\x%02x", (unsigned)cp);
        else if (cp > 0xFF && !slm__jj_is_printable(cp))
            ok = slm__jj_buf_printf(c, at, b, cp > 0xFFFF ? "\\U%08x" : "\\u%04x", (unsigned)cp);
        else
            ok = slm__jj_buf_put(c, at, b, s->s + i, n);
        if (!ok)
            return false;
        i += n;
    }
    return slm__jj_buf_putc(c, at, b, q);
}

static bool text(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_buf_t *b, bool repr,
                 int depth);

static bool text_items(jj_ctx_t *c, const jj_node_t *at, const jj_value_t *k,
                       const jj_value_t *v, size_t n, jj_buf_t *b, int depth)
{
    for (size_t i = 0; i < n; i++) {
        if (i && !slm__jj_buf_put(c, at, b, ", ", 2))
            return false;
        if (k && (!text(c, at, k[i], b, true, depth + 1) || !slm__jj_buf_put(c, at, b, ": ", 2)))
            return false;
        if (!text(c, at, v[i], b, true, depth + 1))
            return false;
    }
    return true;
}

static bool text(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_buf_t *b, bool repr,
                 int depth)
{
    char num_buf[40];
    if (depth > JJ_MAX_VALUE_DEPTH)
        return slm__jj_fail(c, at, SLM_E_INVALID, "a value nests deeper than %d levels",
                            JJ_MAX_VALUE_DEPTH);
    switch (v.type) {
    case JJ_UNDEF: return repr ? slm__jj_buf_put(c, at, b, "Undefined", 9) : true;
    case JJ_NONE: return slm__jj_buf_put(c, at, b, "None", 4);
    case JJ_BOOL: return v.u.b ? slm__jj_buf_put(c, at, b, "True", 4)
                               : slm__jj_buf_put(c, at, b, "False", 5);
    case JJ_INT: return slm__jj_buf_printf(c, at, b, "%" PRId64, v.u.i);
    case JJ_FLOAT:
        slm__jj_float_repr(v.u.f, num_buf);
        return slm__jj_buf_put(c, at, b, num_buf, strlen(num_buf));
    case JJ_STR:
        if (!repr)
            return slm__jj_buf_put(c, at, b, jj_as_str(v)->s, jj_as_str(v)->len);
        if (jj_as_str(v)->markup)   /* markupsafe's repr */
            return slm__jj_buf_put(c, at, b, "Markup(", 7) && repr_str(c, at, jj_as_str(v), b) &&
                   slm__jj_buf_putc(c, at, b, ')');
        return repr_str(c, at, jj_as_str(v), b);
    case JJ_LIST:
        return slm__jj_buf_putc(c, at, b, '[') &&
               text_items(c, at, NULL, jj_as_list(v)->v, jj_as_list(v)->n, b, depth) &&
               slm__jj_buf_putc(c, at, b, ']');
    case JJ_TUPLE:
        return slm__jj_buf_putc(c, at, b, '(') &&
               text_items(c, at, NULL, jj_as_list(v)->v, jj_as_list(v)->n, b, depth) &&
               (jj_as_list(v)->n != 1 || slm__jj_buf_putc(c, at, b, ',')) &&
               slm__jj_buf_putc(c, at, b, ')');
    case JJ_DICT:
    case JJ_NS:
        return (v.type == JJ_DICT || slm__jj_buf_put(c, at, b, "<Namespace ", 11)) &&
               slm__jj_buf_putc(c, at, b, '{') &&
               text_items(c, at, jj_as_dict(v)->k, jj_as_dict(v)->v, jj_as_dict(v)->n, b, depth) &&
               slm__jj_buf_putc(c, at, b, '}') &&
               (v.type == JJ_DICT || slm__jj_buf_putc(c, at, b, '>'));
    case JJ_FUNC:
        if (jj_as_func(v)->kind == JJ_FN_BUILTIN)
            return slm__jj_buf_printf(c, at, b, "<built-in method %s>", jj_as_func(v)->name);
        return slm__jj_buf_printf(c, at, b, "<Macro '%s'>", jj_as_func(v)->name);
    case JJ_LOOP:
        return slm__jj_buf_printf(c, at, b, "<LoopContext %zu/%zu>", jj_as_loop(v)->index0 + 1,
                                  jj_as_list(jj_as_loop(v)->items)->n);
    case JJ_ITER:
        if (!jj_is_view(v))   /* Python shows an address here: nothing to match */
            return slm__jj_buf_printf(c, at, b, "<%s>", slm__jj_object_name(v));
        if (jj_as_list(v)->iter == JJ_ITER_RANGE) {
            const int64_t *r = jj_as_list(v)->range;
            return r[2] == 1 ? slm__jj_buf_printf(c, at, b, "range(%" PRId64 ", %" PRId64 ")", r[0], r[1])
                             : slm__jj_buf_printf(c, at, b, "range(%" PRId64 ", %" PRId64 ", %" PRId64 ")",
                                                  r[0], r[1], r[2]);
        }
        return slm__jj_buf_printf(c, at, b, "%s([", slm__jj_type_name(v)) &&
               text_items(c, at, NULL, jj_as_list(v)->v, jj_as_list(v)->n, b, depth) &&
               slm__jj_buf_put(c, at, b, "])", 2);
    }
    return true;
}

bool slm__jj_to_str(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_buf_t *b)
{
    return text(c, at, v, b, false, 0);
}

bool slm__jj_repr(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_buf_t *b)
{
    return text(c, at, v, b, true, 0);
}

bool slm__jj_stringify(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_value_t *out)
{
    if (v.type == JJ_STR) {
        *out = slm__jj_ref(v);
        return true;
    }
    jj_buf_t b = {0};
    if (!slm__jj_to_str(c, at, v, &b)) {
        free(b.s);
        *out = jj_undef();
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

/* ---- iteration and length ---- */

bool slm__jj_iterate(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_value_t *list)
{
    if (jj_has_items(v)) {
        *list = slm__jj_ref(v);
        return true;
    }
    if (v.type == JJ_DICT) {   /* the room is there: nothing below can fail */
        jj_dict_t *d = jj_as_dict(v);
        if (!slm__jj_list_new(c, at, JJ_LIST, d->n, list))
            return false;
        for (size_t i = 0; i < d->n; i++)
            jj_as_list(*list)->v[jj_as_list(*list)->n++] = slm__jj_ref(d->k[i]);
        return true;
    }
    if (v.type == JJ_UNDEF)
        return slm__jj_list_new(c, at, JJ_LIST, 0, list);
    if (v.type != JJ_STR) {
        *list = jj_undef();
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: '%s' object is not iterable",
                            slm__jj_type_name(v));
    }
    jj_str_t *s = jj_as_str(v);
    if (!slm__jj_list_new(c, at, JJ_LIST, 0, list))
        return false;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        size_t n = slm__jj_utf8_decode(s->s + i, s->len - i, &cp);
        jj_value_t ch;
        if (!slm__jj_str(c, at, s->s + i, n, &ch) || !slm__jj_list_push(c, at, *list, ch)) {
            slm__jj_unref(*list);
            *list = jj_undef();
            return false;
        }
        i += n;
    }
    return true;
}

bool slm__jj_length(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, int64_t *n)
{
    switch (v.type) {
    case JJ_UNDEF: *n = 0; return true;
    case JJ_STR: *n = (int64_t)slm__jj_str_ncp(jj_as_str(v)); return true;
    case JJ_LIST: case JJ_TUPLE: *n = (int64_t)jj_as_list(v)->n; return true;
    case JJ_DICT: *n = (int64_t)jj_as_dict(v)->n; return true;
    case JJ_ITER:
        if (!jj_is_view(v))
            break;
        *n = (int64_t)jj_as_list(v)->n;
        return true;
    default:
        break;
    }
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: object of type '%s' has no len()",
                        slm__jj_type_name(v));
}

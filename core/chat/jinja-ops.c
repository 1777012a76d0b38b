/* Jinja operators with Python's semantics: arithmetic, ~, comparisons, in, % string
 * formatting, and attribute, item and slice access as jinja2's sandbox does them. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

/* ---- attribute and item access ---- */

static bool missing(jj_ctx_t *c, jj_value_t obj, const char *name, jj_value_t *out)
{
    *out = obj.type == JJ_NONE ? slm__jj_undef_msg(c, "'None' has no attribute '%s'", name)
                               : slm__jj_undef_msg(c, "'%s' has no attribute '%s'",
                                                   slm__jj_object_name(obj), name);
    return true;
}

bool slm__jj_getattr(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, const char *name,
                     jj_value_t *out)
{
    bool found = false;
    if (slm__jj_attribute(c, at, obj, name, out, &found))
        return true;
    if (found)
        return false;   /* an error */
    if (obj.type == JJ_DICT) {
        jj_value_t *v = slm__jj_dict_get_str(obj, name);
        if (v) {
            *out = slm__jj_ref(*v);
            return true;
        }
    }
    return missing(c, obj, name, out);
}

/* Python's index of a sequence: negative counts from the end; false when out of range. */
static bool seq_index(jj_value_t key, size_t n, size_t *i)
{
    if (key.type != JJ_INT && key.type != JJ_BOOL)
        return false;
    int64_t k = key.type == JJ_INT ? key.u.i : key.u.b;
    if (k < 0)
        k += (int64_t)n;
    if (k < 0 || (uint64_t)k >= n)
        return false;
    *i = (size_t)k;
    return true;
}

static bool no_element(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, jj_value_t key,
                       jj_value_t *out)
{
    if (key.type == JJ_STR)
        return slm__jj_getattr(c, at, obj, jj_as_str(key)->s, out);
    jj_buf_t b = {0};
    if (!slm__jj_repr(c, at, key, &b)) {
        free(b.s);
        return false;
    }
    *out = slm__jj_undef_msg(c, "%s has no element %s", slm__jj_object_name(obj), b.s);
    free(b.s);
    return true;
}

bool slm__jj_getitem(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, jj_value_t key,
                     jj_value_t *out)
{
    size_t i;
    if (obj.type == JJ_DICT) {
        jj_value_t *v = slm__jj_dict_get(obj, key);
        if (v) {
            *out = slm__jj_ref(*v);
            return true;
        }
    } else if ((jj_is_seq(obj) || (obj.type == JJ_ITER && jj_as_list(obj)->iter == JJ_ITER_RANGE)) &&
               seq_index(key, jj_as_list(obj)->n, &i)) {
        *out = slm__jj_ref(jj_as_list(obj)->v[i]);
        return true;
    } else if (obj.type == JJ_STR && seq_index(key, slm__jj_str_ncp(jj_as_str(obj)), &i)) {
        jj_str_t *s = jj_as_str(obj);
        size_t a = slm__jj_str_offset(s, i), b = slm__jj_str_offset(s, i + 1);
        return slm__jj_str(c, at, s->s + a, b - a, out);
    }
    return no_element(c, at, obj, key, out);
}

/* Python's slice.indices(n) for one bound: none gives the default. */
static bool slice_bound(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, int64_t n, int64_t step,
                        bool is_start, int64_t *out)
{
    if (v.type == JJ_NONE) {
        *out = step < 0 ? (is_start ? n - 1 : -1) : (is_start ? 0 : n);
        return true;
    }
    if (v.type != JJ_INT && v.type != JJ_BOOL)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: slice indices must be integers "
                            "or None");
    int64_t k = v.type == JJ_INT ? v.u.i : v.u.b;
    if (k < 0) {
        k = k < -n ? (step < 0 ? -1 : 0) : k + n;
    } else if (k >= n) {
        k = step < 0 ? n - 1 : n;
    }
    *out = k;
    return true;
}

bool slm__jj_slice(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, const jj_value_t *start,
                   const jj_value_t *stop, const jj_value_t *step, jj_value_t *out)
{
    bool is_str = obj.type == JJ_STR;
    bool range = obj.type == JJ_ITER && jj_as_list(obj)->iter == JJ_ITER_RANGE;
    if (!is_str && !jj_is_seq(obj) && !range)   /* jinja2 slices with Python's own [] */
        return obj.type == JJ_DICT
                   ? slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: unhashable type: 'slice'")
                   : slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: '%s' object is not "
                                  "subscriptable", slm__jj_type_name(obj));
    int64_t st = 1, a, z;
    if (step->type != JJ_NONE) {
        if (step->type != JJ_INT && step->type != JJ_BOOL)
            return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: slice indices must be "
                                "integers or None");
        st = step->type == JJ_INT ? step->u.i : step->u.b;
        if (st == 0)
            return slm__jj_fail(c, at, SLM_E_INVALID, "ValueError: slice step cannot be zero");
    }
    int64_t n = is_str ? (int64_t)slm__jj_str_ncp(jj_as_str(obj)) : (int64_t)jj_as_list(obj)->n;
    if (!slice_bound(c, at, *start, n, st, true, &a) || !slice_bound(c, at, *stop, n, st, false, &z))
        return false;
    if (is_str) {
        jj_str_t *s = jj_as_str(obj);
        jj_buf_t b = {0};
        bool ok = true;
        for (int64_t i = a; ok && (st > 0 ? i < z : i > z); i += st) {
            size_t p = slm__jj_str_offset(s, (size_t)i), q = slm__jj_str_offset(s, (size_t)i + 1);
            ok = slm__jj_buf_put(c, at, &b, s->s + p, q - p);
        }
        if (!ok) {
            free(b.s);
            return false;
        }
        return slm__jj_str_take(c, at, &b, out);
    }
    if (range) {   /* a range's slice is a range */
        const int64_t *r = jj_as_list(obj)->range;
        if (!slm__jj_iter_new(c, at, JJ_ITER_RANGE, out))
            return false;
        int64_t *q = jj_as_list(*out)->range;
        q[0] = r[0] + a * r[2];
        q[1] = r[0] + z * r[2];
        q[2] = r[2] * st;
    } else if (!slm__jj_list_new(c, at, obj.type, 0, out)) {
        return false;
    }
    for (int64_t i = a; st > 0 ? i < z : i > z; i += st)
        if (!slm__jj_list_push(c, at, *out, slm__jj_ref(jj_as_list(obj)->v[i])))
            return false;
    return true;
}

/* ---- in ---- */

bool slm__jj_contains(jj_ctx_t *c, const jj_node_t *at, jj_value_t container, jj_value_t x,
                      bool *in)
{
    *in = false;
    switch (container.type) {
    case JJ_UNDEF:
        return true;
    case JJ_STR:
        if (x.type != JJ_STR)
            return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: 'in <string>' requires string "
                                "as left operand, not %s", slm__jj_type_name(x));
        *in = memmem(jj_as_str(container)->s, jj_as_str(container)->len, jj_as_str(x)->s,
                     jj_as_str(x)->len) != NULL;
        return true;
    case JJ_LIST:
    case JJ_TUPLE:
    case JJ_ITER:
        for (size_t i = 0; !*in && i < jj_as_list(container)->n; i++)
            *in = slm__jj_equal(jj_as_list(container)->v[i], x);
        return true;
    case JJ_DICT:
        if (!slm__jj_hashable(c, at, x))
            return false;
        *in = slm__jj_dict_get(container, x) != NULL;
        return true;
    default:
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: argument of type '%s' is not "
                            "iterable", slm__jj_type_name(container));
    }
}

/* ---- arithmetic ---- */

static const char *const op_text[] = {
    [JJ_OP_ADD] = "+", [JJ_OP_SUB] = "-", [JJ_OP_MUL] = "*", [JJ_OP_DIV] = "/",
    [JJ_OP_FLOORDIV] = "//", [JJ_OP_MOD] = "%", [JJ_OP_POW] = "** or pow()",
};

static bool type_error(jj_ctx_t *c, const jj_node_t *at, int op, jj_value_t a, jj_value_t b)
{
    if (op == JJ_OP_ADD && a.type == JJ_STR)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: can only concatenate str (not "
                            "\"%s\") to str", slm__jj_type_name(b));
    if (op == JJ_OP_ADD && jj_is_seq(a))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: can only concatenate %s (not "
                            "\"%s\") to %s", slm__jj_type_name(a), slm__jj_type_name(b),
                            slm__jj_type_name(a));
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: unsupported operand type(s) for %s: "
                        "'%s' and '%s'", op_text[op], slm__jj_type_name(a), slm__jj_type_name(b));
}

static bool overflow(jj_ctx_t *c, const jj_node_t *at)
{
    return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "integer overflow (this engine's integers "
                        "have 64 bits)");
}

static int64_t as_int(jj_value_t v) { return v.type == JJ_INT ? v.u.i : v.u.b; }
static double as_float(jj_value_t v) { return v.type == JJ_FLOAT ? v.u.f : (double)as_int(v); }

static bool int_pow(jj_ctx_t *c, const jj_node_t *at, int64_t base, int64_t exp, jj_value_t *out)
{
    if (exp < 0) {
        if (base == 0)
            return slm__jj_fail(c, at, SLM_E_INVALID, "ZeroDivisionError: 0.0 cannot be raised "
                                "to a negative power");
        *out = jj_float(pow((double)base, (double)exp));
        return true;
    }
    int64_t r = 1;
    for (; exp > 0; exp >>= 1) {
        if ((exp & 1) && __builtin_mul_overflow(r, base, &r))
            return overflow(c, at);
        if (exp > 1 && __builtin_mul_overflow(base, base, &base))
            return overflow(c, at);
    }
    *out = jj_int(r);
    return true;
}

static bool int_arith(jj_ctx_t *c, const jj_node_t *at, int op, int64_t x, int64_t y,
                      jj_value_t *out)
{
    int64_t r = 0;
    switch (op) {
    case JJ_OP_ADD: if (__builtin_add_overflow(x, y, &r)) return overflow(c, at); break;
    case JJ_OP_SUB: if (__builtin_sub_overflow(x, y, &r)) return overflow(c, at); break;
    case JJ_OP_MUL: if (__builtin_mul_overflow(x, y, &r)) return overflow(c, at); break;
    case JJ_OP_POW: return int_pow(c, at, x, y, out);
    case JJ_OP_FLOORDIV:
    case JJ_OP_MOD:
        if (y == 0)
            return slm__jj_fail(c, at, SLM_E_INVALID, "ZeroDivisionError: integer division or "
                                "modulo by zero");
        if (x == INT64_MIN && y == -1)
            return op == JJ_OP_MOD ? (*out = jj_int(0), true) : overflow(c, at);
        r = op == JJ_OP_FLOORDIV ? x / y : x % y;
        if (op == JJ_OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0)))
            r--;
        if (op == JJ_OP_MOD && r != 0 && ((r < 0) != (y < 0)))
            r += y;
        break;
    default:
        return false;
    }
    *out = jj_int(r);
    return true;
}

/* Python's float // and %: floor division with the sign of the divisor. */
static void float_divmod(double x, double y, double *div, double *mod)
{
    double m = fmod(x, y), d = (x - m) / y;
    if (m != 0) {
        if ((y < 0) != (m < 0)) {
            m += y;
            d -= 1.0;
        }
    } else {
        m = copysign(0.0, y);
    }
    double f = d != 0 ? floor(d) : copysign(0.0, x / y);
    if (d != 0 && d - f > 0.5)
        f += 1.0;
    *div = f;
    *mod = m;
}

static bool num_arith(jj_ctx_t *c, const jj_node_t *at, int op, jj_value_t a, jj_value_t b,
                      jj_value_t *out)
{
    if (op == JJ_OP_DIV) {
        if (as_float(b) == 0)
            return slm__jj_fail(c, at, SLM_E_INVALID, "ZeroDivisionError: division by zero");
        *out = jj_float(as_float(a) / as_float(b));
        return true;
    }
    if (a.type != JJ_FLOAT && b.type != JJ_FLOAT)
        return int_arith(c, at, op, as_int(a), as_int(b), out);
    double x = as_float(a), y = as_float(b), d, m;
    switch (op) {
    case JJ_OP_ADD: *out = jj_float(x + y); return true;
    case JJ_OP_SUB: *out = jj_float(x - y); return true;
    case JJ_OP_MUL: *out = jj_float(x * y); return true;
    case JJ_OP_POW:
        if (x == 0 && y < 0)
            return slm__jj_fail(c, at, SLM_E_INVALID, "ZeroDivisionError: 0.0 cannot be raised "
                                "to a negative power");
        *out = jj_float(pow(x, y));
        return true;
    default:
        if (y == 0)
            return slm__jj_fail(c, at, SLM_E_INVALID, "ZeroDivisionError: float %s by zero",
                                op == JJ_OP_MOD ? "modulo" : "floor division");
        float_divmod(x, y, &d, &m);
        *out = jj_float(op == JJ_OP_MOD ? m : d);
        return true;
    }
}

/* One side of str + str: escaped when the other side is Markup and it is not. */
static bool put_side(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, jj_str_t *s, bool escape)
{
    return escape ? slm__jj_html_escape(c, at, s->s, s->len, b)
                  : slm__jj_buf_put(c, at, b, s->s, s->len);
}

/* "~" (str() of both, a plain string) or str + str (Markup wins and escapes). */
static bool concat(jj_ctx_t *c, const jj_node_t *at, jj_value_t a, jj_value_t b, bool as_text,
                   jj_value_t *out)
{
    jj_buf_t buf = {0};
    bool mark = !as_text && (jj_as_str(a)->markup || jj_as_str(b)->markup);
    bool ok = as_text ? slm__jj_to_str(c, at, a, &buf) && slm__jj_to_str(c, at, b, &buf)
                      : put_side(c, at, &buf, jj_as_str(a), mark && !jj_as_str(a)->markup) &&
                        put_side(c, at, &buf, jj_as_str(b), mark && !jj_as_str(b)->markup);
    if (!ok) {
        free(buf.s);
        return false;
    }
    if (!slm__jj_str_take(c, at, &buf, out))
        return false;
    jj_as_str(*out)->markup = mark;
    return true;
}

static bool join_lists(jj_ctx_t *c, const jj_node_t *at, jj_value_t a, jj_value_t b,
                       jj_value_t *out)
{
    jj_list_t *x = jj_as_list(a), *y = jj_as_list(b);
    if (!slm__jj_list_new(c, at, a.type, 0, out))
        return false;
    for (size_t i = 0; i < x->n + y->n; i++)
        if (!slm__jj_list_push(c, at, *out, slm__jj_ref(i < x->n ? x->v[i] : y->v[i - x->n])))
            return false;
    return true;
}

/* "ab" * 3, [1] * 2 (either order). */
static bool repeat(jj_ctx_t *c, const jj_node_t *at, jj_value_t seq, int64_t times,
                   jj_value_t *out)
{
    if (times < 0)
        times = 0;
    if (seq.type == JJ_STR) {
        jj_str_t *s = jj_as_str(seq);
        if (s->len && (uint64_t)times > JJ_MAX_STRING / s->len)
            return slm__jj_fail(c, at, SLM_E_INVALID, "a string would exceed %u MiB",
                                JJ_MAX_STRING >> 20);
        jj_buf_t b = {0};
        for (int64_t i = 0; i < times; i++)
            if (!slm__jj_buf_put(c, at, &b, s->s, s->len)) {
                free(b.s);
                return false;
            }
        return slm__jj_str_take(c, at, &b, out);
    }
    jj_list_t *l = jj_as_list(seq);
    if (l->n && (uint64_t)times > JJ_MAX_ITEMS / l->n)
        return slm__jj_fail(c, at, SLM_E_INVALID, "a list would have more than %u items",
                            JJ_MAX_ITEMS);
    if (!slm__jj_list_new(c, at, seq.type, 0, out))
        return false;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < l->n; k++)
            if (!slm__jj_list_push(c, at, *out, slm__jj_ref(l->v[k])))
                return false;
    return true;
}

static bool arith(jj_ctx_t *c, const jj_node_t *at, int op, jj_value_t a, jj_value_t b,
                  jj_value_t *out)
{
    if (op == JJ_OP_MOD && a.type == JJ_STR)   /* Python formats even an Undefined */
        return slm__jj_percent_format(c, at, jj_as_str(a), b, out);
    if (a.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, a);
    if (b.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, b);
    if (jj_is_num(a) && jj_is_num(b))
        return num_arith(c, at, op, a, b, out);
    if (op == JJ_OP_ADD && a.type == JJ_STR && b.type == JJ_STR)
        return concat(c, at, a, b, false, out);
    if (op == JJ_OP_ADD && jj_is_seq(a) && a.type == b.type)
        return join_lists(c, at, a, b, out);
    if (op == JJ_OP_MUL && (a.type == JJ_STR || jj_is_seq(a)) && (b.type == JJ_INT || b.type == JJ_BOOL))
        return repeat(c, at, a, as_int(b), out);
    if (op == JJ_OP_MUL && (b.type == JJ_STR || jj_is_seq(b)) && (a.type == JJ_INT || a.type == JJ_BOOL))
        return repeat(c, at, b, as_int(a), out);
    if (op == JJ_OP_MOD && a.type == JJ_STR)
        return slm__jj_percent_format(c, at, jj_as_str(a), b, out);
    return type_error(c, at, op, a, b);
}

bool slm__jj_binop(jj_ctx_t *c, const jj_node_t *at, int op, jj_value_t a, jj_value_t b,
                   jj_value_t *out)
{
    int cmp = 0;
    bool in;
    *out = jj_undef();
    switch (op) {
    case JJ_OP_CONCAT:
        return concat(c, at, a, b, true, out);
    case JJ_OP_EQ:
    case JJ_OP_NE:
        *out = jj_bool(slm__jj_equal(a, b) == (op == JJ_OP_EQ));
        return true;
    case JJ_OP_LT: case JJ_OP_LE: case JJ_OP_GT: case JJ_OP_GE:
        if (!slm__jj_compare(c, at, a, b, &cmp))
            return false;
        *out = jj_bool(op == JJ_OP_LT ? cmp == -1 : op == JJ_OP_LE ? cmp == -1 || cmp == 0
                       : op == JJ_OP_GT ? cmp == 1 : cmp == 1 || cmp == 0);
        return true;
    case JJ_OP_IN:
    case JJ_OP_NOTIN:
        if (!slm__jj_contains(c, at, b, a, &in))
            return false;
        *out = jj_bool(in == (op == JJ_OP_IN));
        return true;
    default:
        return arith(c, at, op, a, b, out);
    }
}

/* ---- "%s" % args ---- */

typedef struct spec {
    char flags[8];
    int width, prec;           /* -1: none */
    char type;
} spec_t;

static const char *parse_spec(const char *p, spec_t *s)
{
    size_t nf = 0;
    while (*p && strchr("-+ #0", *p) && nf < sizeof s->flags - 1)
        s->flags[nf++] = *p++;
    s->flags[nf] = '\0';
    s->width = s->prec = -1;
    if (*p >= '0' && *p <= '9')
        for (s->width = 0; *p >= '0' && *p <= '9' && s->width < 100000; p++)
            s->width = s->width * 10 + (*p - '0');
    if (*p == '.')
        for (p++, s->prec = 0; *p >= '0' && *p <= '9' && s->prec < 100000; p++)
            s->prec = s->prec * 10 + (*p - '0');
    while (*p == 'l' || *p == 'h' || *p == 'L')
        p++;
    s->type = *p;
    return *p ? p + 1 : p;
}

/* A %s/%r text padded to the width in code points. */
static bool put_padded(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const spec_t *s,
                       const char *txt, size_t len)
{
    size_t n_cp = 0, cut = len;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (s->prec >= 0 && n_cp == (size_t)s->prec) {
            cut = i;
            break;
        }
        i += slm__jj_utf8_decode(txt + i, len - i, &cp);
        n_cp++;
    }
    bool left = strchr(s->flags, '-') != NULL;
    size_t pad = s->width > 0 && (size_t)s->width > n_cp ? (size_t)s->width - n_cp : 0;
    for (size_t i = 0; !left && i < pad; i++)
        if (!slm__jj_buf_putc(c, at, b, ' '))
            return false;
    if (!slm__jj_buf_put(c, at, b, txt, cut))
        return false;
    for (size_t i = 0; left && i < pad; i++)
        if (!slm__jj_buf_putc(c, at, b, ' '))
            return false;
    return true;
}

static bool put_number(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const spec_t *s,
                       jj_value_t v)
{
    if (!jj_is_num(v))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %%%c format: a real number is "
                            "required, not %s", s->type, slm__jj_type_name(v));
    bool is_int = strchr("diuoxX", s->type) != NULL;
    if (is_int && v.type == JJ_FLOAT && strchr("oxX", s->type))
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %%%c format: an integer is "
                            "required, not float", s->type);
    char type = s->type == 'u' || s->type == 'i' ? 'd' : s->type, fmt[48], out[512];
    int w = s->width > 400 ? 400 : s->width < 0 ? 0 : s->width;
    int p = s->prec > 300 ? 300 : s->prec;
    if (is_int) {
        int64_t i = v.type == JJ_FLOAT ? (int64_t)v.u.f : as_int(v);
        if (p < 0) {
            snprintf(fmt, sizeof fmt, "%%%s*ll%c", s->flags, type);
            snprintf(out, sizeof out, fmt, w, (long long)i);
        } else {
            snprintf(fmt, sizeof fmt, "%%%s*.*ll%c", s->flags, type);
            snprintf(out, sizeof out, fmt, w, p, (long long)i);
        }
    } else {
        snprintf(fmt, sizeof fmt, "%%%s*.*%c", s->flags, type);
        snprintf(out, sizeof out, fmt, w, p < 0 ? 6 : p, as_float(v));
    }
    return slm__jj_buf_put(c, at, b, out, strlen(out));
}

/* %c: a code point or a one-character string. */
static bool put_char(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const spec_t *s,
                     jj_value_t v)
{
    char enc[4];
    if (v.type == JJ_STR && slm__jj_str_ncp(jj_as_str(v)) == 1)
        return put_padded(c, at, b, s, jj_as_str(v)->s, jj_as_str(v)->len);
    if ((v.type != JJ_INT && v.type != JJ_BOOL) || as_int(v) < 0 || as_int(v) > 0x10FFFF)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: %%c requires an int in range or "
                            "a char");
    return put_padded(c, at, b, s, enc, slm__jj_utf8_encode((uint32_t)as_int(v), enc));
}

static bool format_one(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const spec_t *s,
                       jj_value_t v)
{
    if (s->type == 's' || s->type == 'r' || s->type == 'a') {
        jj_buf_t t = {0};
        bool ok = s->type == 's' ? slm__jj_to_str(c, at, v, &t) : slm__jj_repr(c, at, v, &t);
        ok = ok && put_padded(c, at, b, s, t.s ? t.s : "", t.len);
        free(t.s);
        return ok;
    }
    if (s->type == 'c')
        return put_char(c, at, b, s, v);
    if (s->type && strchr("diuoxXeEfFgG", s->type))
        return put_number(c, at, b, s, v);
    return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported format character '%c'", s->type);
}

bool slm__jj_percent_format(jj_ctx_t *c, const jj_node_t *at, jj_str_t *fmt, jj_value_t args,
                            jj_value_t *out)
{
    jj_buf_t b = {0};
    size_t next = 0, n_args = args.type == JJ_TUPLE ? jj_as_list(args)->n : 1;
    /* Python takes any object with [] (a list too) as a mapping: no "not all converted" */
    bool ok = true, mapping = args.type == JJ_DICT;
    bool lenient = mapping || args.type == JJ_LIST || args.type == JJ_UNDEF;
    for (const char *p = fmt->s; ok && *p;) {
        const char *pct = strchr(p, '%');
        if (!pct) {
            ok = slm__jj_buf_put(c, at, &b, p, strlen(p));
            break;
        }
        ok = slm__jj_buf_put(c, at, &b, p, (size_t)(pct - p));
        p = pct + 1;
        if (ok && *p == '%') {
            ok = slm__jj_buf_putc(c, at, &b, '%');
            p++;
            continue;
        }
        jj_value_t v = jj_undef();
        if (ok && *p == '(') {
            const char *close = strchr(p, ')');
            if (!close || !mapping)
                ok = slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: format requires a mapping");
            jj_value_t key, *hit = NULL;
            if (ok && (ok = slm__jj_str(c, at, p + 1, (size_t)(close - p - 1), &key))) {
                hit = slm__jj_dict_get(args, key);
                slm__jj_unref(key);
            }
            if (ok && !hit)
                ok = slm__jj_fail(c, at, SLM_E_INVALID, "KeyError: '%.*s'", (int)(close - p - 1),
                                  p + 1);
            if (ok) {
                v = *hit;
                p = close + 1;
            }
        } else if (ok) {
            if (next >= n_args)
                ok = slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: not enough arguments for "
                                  "format string");
            else
                v = args.type == JJ_TUPLE ? jj_as_list(args)->v[next] : args;
            next++;
        }
        spec_t s;
        if (ok) {
            p = parse_spec(p, &s);
            ok = format_one(c, at, &b, &s, v);
        }
    }
    if (ok && !lenient && next < n_args)
        ok = slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: not all arguments converted during "
                          "string formatting");
    if (!ok) {
        free(b.s);
        return false;
    }
    return slm__jj_str_take(c, at, &b, out);
}

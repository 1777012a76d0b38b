/* jinja2's tests ("x is defined", "x is divisibleby 3", ...) with its exact
 * answers, including the ones about undefined values. */
#include "config.h"

#include <math.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

#define TARGS jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_call_args_t *a, bool *r

typedef bool (*test_fn)(TARGS);

/* The one argument a comparison test takes. */
static bool other(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a, const char *name,
                  jj_value_t *o)
{
    if (a->n_pos == 1 && !a->n_kw) {
        *o = a->pos[0];
        return true;
    }
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: test '%s' takes one argument", name);
}

static bool none_args(jj_ctx_t *c, const jj_node_t *at, const jj_call_args_t *a, const char *name)
{
    if (!a->n_pos && !a->n_kw)
        return true;
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: test '%s' takes no arguments", name);
}

#define SIMPLE(fname, label, expr) \
    static bool fname(TARGS) \
    { \
        (void)v; \
        if (!none_args(c, at, a, label)) \
            return false; \
        *r = (expr); \
        return true; \
    }

SIMPLE(t_defined, "defined", v.type != JJ_UNDEF)
SIMPLE(t_undefined, "undefined", v.type == JJ_UNDEF)
SIMPLE(t_none, "none", v.type == JJ_NONE)
SIMPLE(t_boolean, "boolean", v.type == JJ_BOOL)
SIMPLE(t_true, "true", v.type == JJ_BOOL && v.u.b)
SIMPLE(t_false, "false", v.type == JJ_BOOL && !v.u.b)
SIMPLE(t_integer, "integer", v.type == JJ_INT)
SIMPLE(t_float, "float", v.type == JJ_FLOAT)
SIMPLE(t_number, "number", jj_is_num(v))
SIMPLE(t_string, "string", v.type == JJ_STR)
SIMPLE(t_mapping, "mapping", v.type == JJ_DICT)
/* Undefined has __len__ and __getitem__ and __iter__ and __call__ in jinja2. */
SIMPLE(t_sequence, "sequence", v.type == JJ_STR || jj_is_seq(v) || v.type == JJ_DICT ||
                                   v.type == JJ_UNDEF ||
                                   (v.type == JJ_ITER && jj_as_list(v)->iter == JJ_ITER_RANGE))
SIMPLE(t_iterable, "iterable", v.type == JJ_STR || jj_has_items(v) || v.type == JJ_DICT ||
                                   v.type == JJ_UNDEF || v.type == JJ_LOOP)
SIMPLE(t_callable, "callable", v.type == JJ_FUNC || v.type == JJ_UNDEF || v.type == JJ_LOOP)
SIMPLE(t_escaped, "escaped", false)

static bool parity(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, int64_t *rem)
{
    if (v.type == JJ_INT || v.type == JJ_BOOL) {
        int64_t i = v.type == JJ_INT ? v.u.i : v.u.b;
        *rem = ((i % 2) + 2) % 2;
        return true;
    }
    if (v.type == JJ_FLOAT) {
        double m = fmod(v.u.f, 2.0);
        *rem = m == 0 ? 0 : m == 1 || m == -1 ? 1 : 2;
        return true;
    }
    if (v.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, v);
    return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: unsupported operand type(s) for %%: "
                        "'%s' and 'int'", slm__jj_type_name(v));
}

static bool t_odd(TARGS)
{
    int64_t rem;
    if (!none_args(c, at, a, "odd") || !parity(c, at, v, &rem))
        return false;
    *r = rem == 1;
    return true;
}

static bool t_even(TARGS)
{
    int64_t rem;
    if (!none_args(c, at, a, "even") || !parity(c, at, v, &rem))
        return false;
    *r = rem == 0;
    return true;
}

static bool t_divisibleby(TARGS)
{
    jj_value_t n = jj_undef(), m = jj_undef();
    if (!other(c, at, a, "divisibleby", &n) || !slm__jj_binop(c, at, JJ_OP_MOD, v, n, &m))
        return false;
    *r = (m.type == JJ_INT && m.u.i == 0) || (m.type == JJ_FLOAT && m.u.f == 0);
    slm__jj_unref(m);
    return true;
}

static bool compare_test(TARGS, int op, const char *name)
{
    jj_value_t o = jj_undef(), res = jj_undef();
    if (!other(c, at, a, name, &o) || !slm__jj_binop(c, at, op, v, o, &res))
        return false;
    *r = res.type == JJ_BOOL && res.u.b;
    return true;
}

static bool t_eq(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_EQ, "eq"); }
static bool t_ne(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_NE, "ne"); }
static bool t_lt(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_LT, "lt"); }
static bool t_le(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_LE, "le"); }
static bool t_gt(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_GT, "gt"); }
static bool t_ge(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_GE, "ge"); }
static bool t_in(TARGS) { return compare_test(c, at, v, a, r, JJ_OP_IN, "in"); }

static bool t_sameas(TARGS)
{
    jj_value_t o = jj_undef();
    if (!other(c, at, a, "sameas", &o))
        return false;
    if (v.type != o.type)
        *r = false;
    else if (v.type == JJ_NONE || v.type == JJ_UNDEF)
        *r = true;
    else if (v.type == JJ_BOOL)
        *r = v.u.b == o.u.b;
    else if (v.type == JJ_INT)
        *r = v.u.i == o.u.i && v.u.i >= -5 && v.u.i <= 256;   /* CPython's cached ints */
    else
        *r = v.type != JJ_FLOAT && v.u.o == o.u.o;
    return true;
}

/* str(v).islower() / isupper(). */
static bool case_test(TARGS, bool upper)
{
    jj_value_t s, fn, res = jj_undef();
    bool found;
    if (!none_args(c, at, a, upper ? "upper" : "lower") || !slm__jj_stringify(c, at, v, &s))
        return false;
    jj_call_args_t none = {0};
    bool ok = slm__jj_attribute(c, at, s, upper ? "isupper" : "islower", &fn, &found) &&
              slm__jj_call(c, at, fn, &none, &res);
    *r = ok && res.type == JJ_BOOL && res.u.b;
    slm__jj_unref(fn);
    slm__jj_unref(s);
    return ok;
}

static bool t_lower(TARGS) { return case_test(c, at, v, a, r, false); }
static bool t_upper(TARGS) { return case_test(c, at, v, a, r, true); }

static bool t_filter(TARGS)
{
    if (!none_args(c, at, a, "filter"))
        return false;
    *r = v.type == JJ_STR && slm__jj_filter_find(jj_as_str(v)->s) >= 0;
    return true;
}

static bool t_test(TARGS)
{
    if (!none_args(c, at, a, "test"))
        return false;
    *r = v.type == JJ_STR && slm__jj_test_find(jj_as_str(v)->s) >= 0;
    return true;
}

typedef struct test {
    const char *name;
    test_fn fn;
} test_t;

static const test_t tests[] = {
    {"boolean", t_boolean}, {"callable", t_callable}, {"defined", t_defined},
    {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq},
    {"escaped", t_escaped}, {"even", t_even}, {"false", t_false}, {"filter", t_filter},
    {"float", t_float}, {"ge", t_ge}, {">=", t_ge}, {"gt", t_gt}, {"greaterthan", t_gt},
    {">", t_gt}, {"in", t_in}, {"integer", t_integer}, {"iterable", t_iterable},
    {"le", t_le}, {"<=", t_le}, {"lower", t_lower}, {"lt", t_lt}, {"lessthan", t_lt},
    {"<", t_lt}, {"mapping", t_mapping}, {"ne", t_ne}, {"!=", t_ne}, {"none", t_none},
    {"number", t_number}, {"odd", t_odd}, {"sameas", t_sameas}, {"sequence", t_sequence},
    {"string", t_string}, {"test", t_test}, {"true", t_true}, {"undefined", t_undefined},
    {"upper", t_upper},
};

int slm__jj_test_find(const char *name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(tests[i].name, name))
            return (int)i;
    return -1;
}

bool slm__jj_test_apply(jj_ctx_t *c, const jj_node_t *at, int id, jj_value_t v,
                        const jj_call_args_t *a, bool *result)
{
    *result = false;
    if (id < 0 || (size_t)id >= sizeof tests / sizeof tests[0])
        return slm__jj_fail(c, at, SLM_E_UNSUPPORTED, "unsupported test");
    return tests[id].fn(c, at, v, a, result) && !c->err->set;
}

bool slm__jj_test_by_name(jj_ctx_t *c, const jj_node_t *at, const char *name, jj_value_t v,
                          const jj_call_args_t *a, bool *result)
{
    int id = slm__jj_test_find(name);
    if (id < 0)
        return slm__jj_fail(c, at, SLM_E_INVALID, "no test named '%s'", name);
    return slm__jj_test_apply(c, at, id, v, a, result);
}

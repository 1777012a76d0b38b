/* The Jinja evaluator: runs a parsed template's statements and expressions with
 * jinja2's scoping (a scope per loop turn, macro, block), within the render limits. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

#define MAX_RECURSION 2000   /* evaluator frames: bounds the C stack */

static bool eval(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out);
static bool exec(jj_ctx_t *c, const jj_node_t *n);

/* ---- scopes ---- */

static jj_scope_t *scope_push(jj_ctx_t *c, jj_scope_t *parent, const jj_node_t *at)
{
    jj_scope_t *s = calloc(1, sizeof *s);   /* freed when left: not charged */
    if (!s) {
        slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
        return NULL;
    }
    s->refs = 1;
    s->parent = parent;
    if (parent)
        parent->refs++;
    c->scope = s;
    return s;
}

static void scope_clear(jj_scope_t *s)
{
    jj_var_t *vars = s->vars;
    size_t n = s->n;
    s->vars = NULL;
    s->n = s->cap = 0;
    for (size_t i = 0; i < n; i++)
        slm__jj_unref(vars[i].v);
    free(vars);
}

void slm__jj_scope_unref(jj_scope_t *s)
{
    while (s && --s->refs == 0) {
        jj_scope_t *parent = s->parent;
        scope_clear(s);
        free(s);
        s = parent;
    }
}

/* Leaves scope s (the innermost): its variables are released now, so a macro
 * defined in it and kept elsewhere cannot hold it in a cycle. */
static void scope_pop(jj_ctx_t *c, jj_scope_t *s, jj_scope_t *restore)
{
    scope_clear(s);
    c->scope = restore;
    slm__jj_scope_unref(s);
}

static jj_value_t *scope_find(jj_scope_t *s, const char *name)
{
    for (; s; s = s->parent)
        for (size_t i = 0; i < s->n; i++)
            if (!strcmp(s->vars[i].name, name))
                return &s->vars[i].v;
    return NULL;
}

/* Binds name in the innermost scope (v is taken over). */
static bool scope_set(jj_ctx_t *c, const jj_node_t *at, const char *name, jj_value_t v)
{
    jj_scope_t *s = c->scope;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->vars[i].name, name)) {
            slm__jj_unref(s->vars[i].v);
            s->vars[i].v = v;
            return true;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        jj_var_t *vars = realloc(s->vars, cap * sizeof *vars);
        if (!vars) {
            slm__jj_unref(v);
            return c->err->set ? false : slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
        }
        s->vars = vars;
        s->cap = cap;
    }
    s->vars[s->n++] = (jj_var_t){.name = name, .v = v};
    return true;
}

/* ---- limits ---- */

static bool step(jj_ctx_t *c, const jj_node_t *n)
{
    if (++c->steps > c->max_steps)
        return slm__jj_fail(c, n, SLM_E_INVALID, "the template ran for more than %llu steps "
                            "(an endless loop?)", (unsigned long long)c->max_steps);
    if (c->depth >= MAX_RECURSION)
        return slm__jj_fail(c, n, SLM_E_INVALID, "the template recurses too deeply");
    return true;
}

/* ---- output ---- */

static bool emit_value(jj_ctx_t *c, const jj_node_t *at, jj_value_t v)
{
    if (v.type == JJ_STR)
        return slm__jj_buf_put(c, at, c->out, jj_as_str(v)->s, jj_as_str(v)->len);
    return slm__jj_to_str(c, at, v, c->out);
}

/* Runs body in a new scope with its output captured as a string. */
static bool capture(jj_ctx_t *c, const jj_node_t *body, jj_value_t *out)
{
    jj_buf_t buf = {0}, *saved_out = c->out;
    jj_scope_t *saved = c->scope, *s = scope_push(c, saved, body);
    if (!s)
        return false;
    c->out = &buf;
    bool ok = exec(c, body);
    c->out = saved_out;
    scope_pop(c, s, saved);
    if (!ok) {
        free(buf.s);
        return false;
    }
    return slm__jj_str_take(c, body, &buf, out);
}

/* ---- calls ---- */

typedef struct args {
    jj_value_t *pos;
    size_t n_pos;
    const char **kw_names;
    jj_value_t *kw_vals;
    size_t n_kw;
} args_t;

static void args_free(args_t *a)
{
    for (size_t i = 0; i < a->n_pos; i++)
        slm__jj_unref(a->pos[i]);
    for (size_t i = 0; i < a->n_kw; i++)
        slm__jj_unref(a->kw_vals[i]);
    free(a->pos);
    free(a->kw_names);
    free(a->kw_vals);
}

/* Evaluates the positional (kids) and keyword (names, kids2) arguments of n,
 * with room for one more keyword (a call block's caller). */
static bool eval_args(jj_ctx_t *c, const jj_node_t *n, args_t *a)
{
    memset(a, 0, sizeof *a);
    a->pos = calloc(n->n_kids + 1, sizeof *a->pos);
    a->kw_names = calloc(n->n_names + 1, sizeof *a->kw_names);
    a->kw_vals = calloc(n->n_names + 1, sizeof *a->kw_vals);
    if (!a->pos || !a->kw_names || !a->kw_vals)
        return slm__jj_fail(c, n, SLM_E_NOMEM, "out of memory");
    for (; a->n_pos < n->n_kids; a->n_pos++)
        if (!eval(c, n->kids[a->n_pos], &a->pos[a->n_pos]))
            return false;
    for (; a->n_kw < n->n_names; a->n_kw++) {
        a->kw_names[a->n_kw] = n->names[a->n_kw];
        if (!eval(c, n->kids2[a->n_kw], &a->kw_vals[a->n_kw]))
            return false;
    }
    return true;
}

static jj_call_args_t view(const args_t *a)
{
    return (jj_call_args_t){.pos = a->pos, .n_pos = a->n_pos, .kw_names = a->kw_names,
                            .kw_vals = a->kw_vals, .n_kw = a->n_kw};
}

/* Keyword arguments of a macro call: a parameter not given by position, the
 * caller, or (when the body reads it) an entry of `kwargs`. */
static bool bind_keywords(jj_ctx_t *c, const jj_node_t *at, const jj_func_t *f,
                          const jj_call_args_t *a, bool *bound, jj_value_t extra_kw)
{
    const jj_node_t *m = f->node;
    for (size_t k = 0; k < a->n_kw; k++) {
        const char *name = a->kw_names[k];
        size_t i = 0;
        while (i < m->n_names && strcmp(m->names[i], name))
            i++;
        bool ok;
        if (i < m->n_names && !bound[i]) {
            bound[i] = true;
            ok = scope_set(c, at, name, slm__jj_ref(a->kw_vals[k]));
        } else if (!strcmp(name, "caller")) {
            ok = scope_set(c, at, "caller", slm__jj_ref(a->kw_vals[k]));
        } else if (extra_kw.type == JJ_DICT) {
            jj_value_t key;
            ok = slm__jj_str(c, at, name, strlen(name), &key) &&
                 slm__jj_dict_set(c, at, extra_kw, key, slm__jj_ref(a->kw_vals[k]));
        } else {
            ok = slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: macro '%s' takes no keyword "
                              "argument '%s'", f->name, name);
        }
        if (!ok)
            return false;
    }
    return true;
}

/* Binds a macro's (or caller's) parameters in the current scope as jinja2 does:
 * missing ones take their default or are undefined. */
static bool bind_params(jj_ctx_t *c, const jj_node_t *at, const jj_func_t *f,
                        const jj_call_args_t *a)
{
    const jj_node_t *m = f->node;
    size_t np = m->n_names;
    if (a->n_pos > np && !m->flag)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: macro '%s' takes not more than "
                            "%zu argument(s)", f->name, np);
    bool *bound = calloc(np + 1, sizeof *bound);
    if (!bound)
        return slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
    jj_value_t extra_kw = jj_undef(), extra_pos = jj_undef();
    bool ok = (!m->flag2 || slm__jj_dict_new(c, at, JJ_DICT, &extra_kw)) &&
              (!m->flag || slm__jj_list_new(c, at, JJ_TUPLE, 0, &extra_pos));
    for (size_t i = 0; ok && i < a->n_pos; i++) {
        if (i < np) {
            bound[i] = true;
            ok = scope_set(c, at, m->names[i], slm__jj_ref(a->pos[i]));
        } else {
            ok = slm__jj_list_push(c, at, extra_pos, slm__jj_ref(a->pos[i]));
        }
    }
    ok = ok && bind_keywords(c, at, f, a, bound, extra_kw);
    for (size_t i = 0; ok && i < np; i++) {
        if (bound[i])
            continue;
        jj_value_t v;
        if (m->kids && m->kids[i])
            ok = eval(c, m->kids[i], &v);
        else
            v = slm__jj_undef_msg(c, "parameter '%s' was not provided", m->names[i]);
        ok = ok && scope_set(c, at, m->names[i], v);
    }
    if (ok && m->flag)
        ok = scope_set(c, at, "varargs", slm__jj_ref(extra_pos));
    if (ok && m->flag2)
        ok = scope_set(c, at, "kwargs", slm__jj_ref(extra_kw));
    slm__jj_unref(extra_pos);
    slm__jj_unref(extra_kw);
    free(bound);
    return ok;
}

static bool call_macro(jj_ctx_t *c, const jj_node_t *at, const jj_func_t *f,
                       const jj_call_args_t *a, jj_value_t *out)
{
    if (c->call_depth >= JJ_MAX_CALL_DEPTH)
        return slm__jj_fail(c, at, SLM_E_INVALID, "macros call each other more than %d deep",
                            JJ_MAX_CALL_DEPTH);
    jj_scope_t *saved = c->scope, *s = scope_push(c, f->scope, at);
    if (!s)
        return false;
    jj_buf_t buf = {0}, *saved_out = c->out;
    int saved_brk = c->brk;
    c->call_depth++;
    bool ok = bind_params(c, at, f, a);
    c->out = &buf;
    ok = ok && exec(c, f->node->b);
    c->out = saved_out;
    c->brk = saved_brk;
    c->call_depth--;
    scope_pop(c, s, saved);
    if (!ok) {
        free(buf.s);
        return false;
    }
    return slm__jj_str_take(c, at, &buf, out);
}

bool slm__jj_call(jj_ctx_t *c, const jj_node_t *at, jj_value_t fn, const jj_call_args_t *a,
                  jj_value_t *out)
{
    *out = jj_undef();
    if (fn.type == JJ_UNDEF)
        return slm__jj_undefined_error(c, at, fn);
    if (fn.type != JJ_FUNC)
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: '%s' object is not callable",
                            slm__jj_type_name(fn));
    jj_func_t *f = jj_as_func(fn);
    if (f->kind == JJ_FN_BUILTIN)
        return f->fn(c, at, f->self, a->pos, a->n_pos, a->kw_names, a->kw_vals, a->n_kw, out);
    return call_macro(c, at, f, a, out);
}

/* A call expression; caller (or undefined) joins the keywords of a call block. */
static bool eval_call(jj_ctx_t *c, const jj_node_t *n, jj_value_t caller, jj_value_t *out)
{
    jj_value_t fn;
    args_t a;
    *out = jj_undef();
    if (!eval(c, n->a, &fn))
        return false;
    bool ok = eval_args(c, n, &a);
    if (ok && caller.type != JJ_UNDEF) {
        a.kw_names[a.n_kw] = "caller";
        a.kw_vals[a.n_kw++] = slm__jj_ref(caller);
    }
    jj_call_args_t v = view(&a);
    ok = ok && slm__jj_call(c, n, fn, &v, out);
    args_free(&a);
    slm__jj_unref(fn);
    return ok;
}

/* ---- filters and tests ---- */

/* A filter chain; its innermost operand is base when the chain has none (filter
 * blocks and set blocks). */
static bool eval_filter(jj_ctx_t *c, const jj_node_t *n, const jj_value_t *base, jj_value_t *out)
{
    jj_value_t v;
    *out = jj_undef();
    bool ok = n->a ? (n->a->kind == JN_FILTER && base ? eval_filter(c, n->a, base, &v)
                                                      : eval(c, n->a, &v))
                   : (v = slm__jj_ref(*base), true);
    if (!ok)
        return false;
    args_t a;
    ok = eval_args(c, n, &a);
    jj_call_args_t view_args = view(&a);
    if (ok && n->op == -2)
        ok = slm__jj_fail(c, n, SLM_E_UNSUPPORTED, "unsupported filter '%s'", n->name);
    else if (ok && n->op == -1)
        ok = slm__jj_fail(c, n, SLM_E_UNSUPPORTED, "TemplateRuntimeError: No filter named '%s' "
                          "found.", n->name);
    else if (ok)
        ok = slm__jj_filter_apply(c, n, n->op, v, &view_args, out);
    args_free(&a);
    slm__jj_unref(v);
    return ok;
}

static bool eval_test(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t v;
    if (!eval(c, n->a, &v))
        return false;
    args_t a;
    bool ok = eval_args(c, n, &a), r = false;
    jj_call_args_t view_args = view(&a);
    if (ok && n->op < 0)
        ok = slm__jj_fail(c, n, SLM_E_UNSUPPORTED, "TemplateRuntimeError: No test named '%s' "
                          "found.", n->name);
    else if (ok)
        ok = slm__jj_test_apply(c, n, n->op, v, &view_args, &r);
    args_free(&a);
    slm__jj_unref(v);
    *out = jj_bool(r != n->flag);
    return ok;
}

/* ---- expressions ---- */

static bool eval_items(jj_ctx_t *c, const jj_node_t *n, jj_type_t type, jj_value_t *out)
{
    if (!slm__jj_list_new(c, n, type, n->n_kids, out))
        return false;
    for (size_t i = 0; i < n->n_kids; i++) {
        jj_value_t v;
        if (!eval(c, n->kids[i], &v) || !slm__jj_list_push(c, n, *out, v))
            return false;
    }
    return true;
}

static bool eval_dict(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    if (!slm__jj_dict_new(c, n, JJ_DICT, out))
        return false;
    for (size_t i = 0; i < n->n_kids; i++) {
        jj_value_t k, v;
        if (!eval(c, n->kids[i], &k))
            return false;
        if (!slm__jj_hashable(c, n->kids[i], k) || !eval(c, n->kids2[i], &v)) {
            slm__jj_unref(k);
            return false;
        }
        if (!slm__jj_dict_set(c, n, *out, k, v))
            return false;
    }
    return true;
}

static bool eval_name(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t *v = scope_find(c->scope, n->name);
    *out = v ? slm__jj_ref(*v) : slm__jj_undef_msg(c, "'%s' is undefined", n->name);
    return true;
}

static bool eval_attr(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t obj;
    *out = jj_undef();
    if (!eval(c, n->a, &obj))
        return false;
    bool ok = obj.type == JJ_UNDEF ? slm__jj_undefined_error(c, n, obj)
                                   : slm__jj_getattr(c, n, obj, n->name, out);
    slm__jj_unref(obj);
    return ok;
}

static bool eval_item(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t obj, parts[3] = {jj_none(), jj_none(), jj_none()};
    *out = jj_undef();
    if (!eval(c, n->a, &obj))
        return false;
    const jj_node_t *k = n->b;
    bool ok = true;
    if (obj.type == JJ_UNDEF) {
        ok = slm__jj_undefined_error(c, n, obj);
    } else if (k->kind == JN_SLICE) {
        const jj_node_t *p[3] = {k->a, k->b, k->c};
        for (int i = 0; ok && i < 3; i++)
            ok = !p[i] || eval(c, p[i], &parts[i]);
        ok = ok && slm__jj_slice(c, n, obj, &parts[0], &parts[1], &parts[2], out);
    } else {
        ok = eval(c, k, &parts[0]) && slm__jj_getitem(c, n, obj, parts[0], out);
    }
    for (int i = 0; i < 3; i++)
        slm__jj_unref(parts[i]);
    slm__jj_unref(obj);
    return ok;
}

static bool eval_unary(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t v;
    *out = jj_undef();
    if (!eval(c, n->a, &v))
        return false;
    bool ok = true;
    if (n->kind == JN_NOT) {
        *out = jj_bool(!slm__jj_truthy(v));
    } else if (v.type == JJ_UNDEF) {
        ok = slm__jj_undefined_error(c, n, v);
    } else if (v.type == JJ_FLOAT) {
        *out = jj_float(n->kind == JN_NEG ? -v.u.f : v.u.f);
    } else if (v.type == JJ_INT || v.type == JJ_BOOL) {
        int64_t i = v.type == JJ_INT ? v.u.i : v.u.b;
        if (n->kind == JN_NEG && i == INT64_MIN)
            ok = slm__jj_fail(c, n, SLM_E_UNSUPPORTED, "integer overflow");
        *out = jj_int(n->kind == JN_NEG ? -i : i);
    } else {
        ok = slm__jj_fail(c, n, SLM_E_INVALID, "TypeError: bad operand type for unary %c: '%s'",
                          n->kind == JN_NEG ? '-' : '+', slm__jj_type_name(v));
    }
    slm__jj_unref(v);
    return ok;
}

static bool eval_logic(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    if (!eval(c, n->a, out))
        return false;
    if (slm__jj_truthy(*out) == (n->kind == JN_OR))
        return true;   /* Python returns the deciding operand itself */
    slm__jj_unref(*out);
    return eval(c, n->b, out);
}

static bool eval_binop(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t a, b;
    *out = jj_undef();
    if (!eval(c, n->a, &a))
        return false;
    if (!eval(c, n->b, &b)) {
        slm__jj_unref(a);
        return false;
    }
    bool ok = slm__jj_binop(c, n, n->op, a, b, out);
    slm__jj_unref(a);
    slm__jj_unref(b);
    return ok;
}

/* a < b < c: each operand evaluated once, stopping at the first false. */
static bool eval_compare(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t left;
    *out = jj_bool(true);
    if (!eval(c, n->a, &left))
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < n->n_kids; i++) {
        jj_value_t right, r = jj_undef();
        if (!(ok = eval(c, n->kids[i], &right)))
            break;
        ok = slm__jj_binop(c, n, n->ops[i], left, right, &r);
        slm__jj_unref(left);
        left = right;
        if (ok && !r.u.b) {
            *out = jj_bool(false);
            break;
        }
    }
    slm__jj_unref(left);
    return ok;
}

static bool eval_cond(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    jj_value_t cond;
    if (!eval(c, n->a, &cond))
        return false;
    bool yes = slm__jj_truthy(cond);
    slm__jj_unref(cond);
    if (yes)
        return eval(c, n->b, out);
    if (n->c)
        return eval(c, n->c, out);
    *out = slm__jj_undef_msg(c, "the inline if-expression on line %u evaluated to false and "
                             "no else section was defined.", n->pos.line);
    return true;
}

static bool eval_inner(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    switch (n->kind) {
    case JN_CONST: *out = slm__jj_ref(n->value); return true;
    case JN_NAME: return eval_name(c, n, out);
    case JN_LIST: return eval_items(c, n, JJ_LIST, out);
    case JN_TUPLE: return eval_items(c, n, JJ_TUPLE, out);
    case JN_DICT: return eval_dict(c, n, out);
    case JN_ATTR: return eval_attr(c, n, out);
    case JN_ITEM: return eval_item(c, n, out);
    case JN_CALL: return eval_call(c, n, jj_undef(), out);
    case JN_FILTER: return eval_filter(c, n, NULL, out);
    case JN_TEST: return eval_test(c, n, out);
    case JN_NEG: case JN_POS: case JN_NOT: return eval_unary(c, n, out);
    case JN_AND: case JN_OR: return eval_logic(c, n, out);
    case JN_BINOP: return eval_binop(c, n, out);
    case JN_COMPARE: return eval_compare(c, n, out);
    case JN_COND: return eval_cond(c, n, out);
    default: return slm__jj_fail(c, n, SLM_E_INVALID, "not an expression");
    }
}

static bool eval(jj_ctx_t *c, const jj_node_t *n, jj_value_t *out)
{
    *out = jj_undef();
    if (!step(c, n))
        return false;
    c->depth++;
    bool ok = eval_inner(c, n, out) && !c->err->set;
    c->depth--;
    if (!ok) {
        slm__jj_unref(*out);
        *out = jj_undef();
    }
    return ok;
}

/* ---- statements ---- */

/* Binds a for/set target: one name, or a tuple of names unpacked from v. */
static bool assign(jj_ctx_t *c, const jj_node_t *n, jj_value_t v)
{
    if (!n->flag)
        return scope_set(c, n, n->names[0], slm__jj_ref(v));
    jj_value_t items;
    if (!slm__jj_iterate(c, n, v, &items))
        return false;
    jj_list_t *l = jj_as_list(items);
    bool ok = l->n == n->n_names;
    if (!ok && l->n < n->n_names)
        slm__jj_fail(c, n, SLM_E_INVALID, "ValueError: not enough values to unpack "
                     "(expected %zu, got %zu)", n->n_names, l->n);
    else if (!ok)
        slm__jj_fail(c, n, SLM_E_INVALID, "ValueError: too many values to unpack (expected %zu)",
                     n->n_names);
    for (size_t i = 0; ok && i < n->n_names; i++)
        ok = scope_set(c, n, n->names[i], slm__jj_ref(l->v[i]));
    slm__jj_unref(items);
    return ok;
}

static bool exec_set(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t v;
    bool ok = n->kind == JN_SET ? eval(c, n->a, &v) : capture(c, n->b, &v);
    if (ok && n->kind == JN_SET_BLOCK && n->a) {
        jj_value_t f;
        ok = eval_filter(c, n->a, &v, &f);
        slm__jj_unref(v);
        v = f;
    }
    if (!ok)
        return false;
    if (!n->flag2) {
        ok = assign(c, n, v);
    } else {
        jj_value_t *ns = scope_find(c->scope, n->names[0]);
        jj_value_t key;
        if (!ns || ns->type != JJ_NS)
            ok = slm__jj_fail(c, n, SLM_E_INVALID, "TemplateRuntimeError: cannot assign "
                              "attribute on non-namespace object");
        else
            ok = slm__jj_str(c, n, n->name, strlen(n->name), &key) &&
                 slm__jj_dict_set(c, n, *ns, key, slm__jj_ref(v));
    }
    slm__jj_unref(v);
    return ok;
}

/* The items a for loop visits: its iterable, filtered by "if cond". */
static bool loop_items(jj_ctx_t *c, const jj_node_t *n, jj_value_t *items)
{
    jj_value_t v, all;
    *items = jj_undef();
    if (!eval(c, n->a, &v))
        return false;
    bool ok = slm__jj_iterate(c, n->a, v, &all);
    slm__jj_unref(v);
    if (!ok || !n->d) {
        *items = all;
        return ok;
    }
    ok = slm__jj_list_new(c, n, JJ_LIST, 0, items);
    for (size_t i = 0; ok && i < jj_as_list(all)->n; i++) {
        jj_value_t item = jj_as_list(all)->v[i], keep = jj_undef();
        jj_scope_t *saved = c->scope, *s = scope_push(c, saved, n);
        ok = s && assign(c, n, item) && eval(c, n->d, &keep);
        if (s)
            scope_pop(c, s, saved);
        if (ok && slm__jj_truthy(keep))
            ok = slm__jj_list_push(c, n, *items, slm__jj_ref(item));
        slm__jj_unref(keep);
    }
    slm__jj_unref(all);
    if (!ok) {
        slm__jj_unref(*items);
        *items = jj_undef();
    }
    return ok;
}

static bool loop_turn(jj_ctx_t *c, const jj_node_t *n, jj_value_t loop, jj_value_t item)
{
    jj_scope_t *saved = c->scope, *s = scope_push(c, saved, n);
    if (!s)
        return false;
    bool ok = assign(c, n, item) && scope_set(c, n, "loop", slm__jj_ref(loop)) && exec(c, n->b);
    scope_pop(c, s, saved);
    return ok;
}

static bool exec_for(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t items;
    if (!loop_items(c, n, &items))
        return false;
    jj_list_t *l = jj_as_list(items);
    bool ok = true;
    if (l->n == 0) {
        slm__jj_unref(items);
        if (!n->c)
            return true;
        jj_scope_t *saved = c->scope, *s = scope_push(c, saved, n);
        ok = s && exec(c, n->c);
        if (s)
            scope_pop(c, s, saved);
        return ok;
    }
    jj_loop_t *lp = calloc(1, sizeof *lp);
    if (!lp) {
        slm__jj_unref(items);
        return slm__jj_fail(c, n, SLM_E_NOMEM, "out of memory");
    }
    lp->h.refs = 1;
    lp->items = items;   /* taken over */
    lp->depth = 1;       /* only recursive loops go deeper, and they are not supported */
    jj_value_t loop = {.type = JJ_LOOP, .u.o = &lp->h};
    for (size_t i = 0; ok && i < l->n; i++) {
        lp->index0 = i;
        ok = step(c, n) && loop_turn(c, n, loop, l->v[i]);
        int brk = c->brk;
        c->brk = 0;
        if (brk == 1)
            break;
    }
    slm__jj_unref(loop);
    return ok;
}

static bool exec_if(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t cond;
    if (!eval(c, n->a, &cond))
        return false;
    bool yes = slm__jj_truthy(cond);
    slm__jj_unref(cond);
    if (yes)
        return exec(c, n->b);
    return !n->c || exec(c, n->c);
}

static bool exec_macro(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t v;
    jj_func_t *f;
    if (!slm__jj_func_new(c, n, JJ_FN_MACRO, n->name, &v, &f))
        return false;
    f->node = n;
    f->scope = c->scope;
    c->scope->refs++;
    return scope_set(c, n, n->name, v);
}

static bool exec_call_block(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t caller, result;
    jj_func_t *f;
    if (!slm__jj_func_new(c, n, JJ_FN_CALLER, "caller", &caller, &f))
        return false;
    f->node = n;
    f->scope = c->scope;
    c->scope->refs++;
    bool ok = eval_call(c, n->a, caller, &result) && emit_value(c, n, result);
    slm__jj_unref(result);
    slm__jj_unref(caller);
    return ok;
}

static bool exec_filter_block(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t body, v;
    if (!capture(c, n->b, &body))
        return false;
    bool ok = eval_filter(c, n->a, &body, &v) && emit_value(c, n, v);
    slm__jj_unref(body);
    slm__jj_unref(v);
    return ok;
}

static bool exec_with(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t *vals = calloc(n->n_names + 1, sizeof *vals);
    if (!vals)
        return slm__jj_fail(c, n, SLM_E_NOMEM, "out of memory");
    bool ok = true;
    size_t done = 0;
    for (; ok && done < n->n_names; done++)   /* values see the outer scope */
        ok = eval(c, n->kids2[done], &vals[done]);
    jj_scope_t *saved = c->scope, *s = ok ? scope_push(c, saved, n) : NULL;
    for (size_t i = 0; s && ok && i < n->n_names; i++)
        ok = scope_set(c, n, n->names[i], slm__jj_ref(vals[i]));
    ok = s && ok && exec(c, n->b);
    if (s)
        scope_pop(c, s, saved);
    for (size_t i = 0; i < done; i++)
        slm__jj_unref(vals[i]);
    free(vals);
    return ok;
}

static bool exec_output(jj_ctx_t *c, const jj_node_t *n)
{
    jj_value_t v;
    if (!eval(c, n->a, &v))
        return false;
    bool ok = emit_value(c, n, v);
    slm__jj_unref(v);
    return ok;
}

static bool exec_body(jj_ctx_t *c, const jj_node_t *n)
{
    for (size_t i = 0; i < n->n_kids && !c->brk; i++)
        if (!exec(c, n->kids[i]))
            return false;
    return true;
}

static bool exec_inner(jj_ctx_t *c, const jj_node_t *n)
{
    switch (n->kind) {
    case JN_BODY: return exec_body(c, n);
    case JN_TEXT: return emit_value(c, n, n->value);
    case JN_OUTPUT: return exec_output(c, n);
    case JN_IF: return exec_if(c, n);
    case JN_FOR: return exec_for(c, n);
    case JN_SET: case JN_SET_BLOCK: return exec_set(c, n);
    case JN_MACRO: return exec_macro(c, n);
    case JN_CALL_BLOCK: return exec_call_block(c, n);
    case JN_FILTER_BLOCK: return exec_filter_block(c, n);
    case JN_WITH: return exec_with(c, n);
    case JN_BREAK: c->brk = 1; return true;
    case JN_CONTINUE: c->brk = 2; return true;
    default: return slm__jj_fail(c, n, SLM_E_INVALID, "not a statement");
    }
}

static bool exec(jj_ctx_t *c, const jj_node_t *n)
{
    if (!step(c, n))
        return false;
    c->depth++;
    bool ok = exec_inner(c, n) && !c->err->set;
    c->depth--;
    return ok;
}

/* ---- the entry ---- */

static bool bind_vars(jj_ctx_t *c, const json_t *vars)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vars, key, val) {
        jj_value_t v;
        if (!slm__jj_from_json(c, val, &v, 0) || !scope_set(c, NULL, key, v))
            return false;
    }
    return true;
}

/* About the bytes of a JSON document (strings, 8 for anything else). */
static uint64_t json_weight(const json_t *j, int depth)
{
    uint64_t w = 8;
    const char *key;
    json_t *v;
    if (depth > JJ_MAX_VALUE_DEPTH)
        return w;
    if (json_is_string(j))
        return w + json_string_length(j);
    for (size_t i = 0; json_is_array(j) && i < json_array_size(j); i++)
        w += json_weight(json_array_get(j, i), depth + 1);
    if (json_is_object(j))
        json_object_foreach((json_t *)j, key, v)
            w += strlen(key) + json_weight(v, depth + 1);
    return w;
}

static void release_mutables(jj_ctx_t *c)
{
    for (size_t i = 0; i < c->n_mut; i++) {   /* empty first: breaks cycles */
        jj_dict_t *d = jj_as_dict(c->mutables[i]);
        jj_value_t *k = d->k, *v = d->v;
        size_t n = d->n;
        d->k = d->v = NULL;
        d->n = d->cap = 0;
        for (size_t j = 0; j < n; j++) {
            slm__jj_unref(k[j]);
            slm__jj_unref(v[j]);
        }
        free(k);
        free(v);
    }
    for (size_t i = 0; i < c->n_mut; i++)
        slm__jj_unref(c->mutables[i]);
    free(c->mutables);
}

bool slm__jj_render(const jj_template_t *t, const json_t *vars, int64_t now, char **out,
                    size_t *out_len, jj_error_t *e)
{
    jj_buf_t buf = {0};
    uint64_t input = json_weight(vars, 0);   /* scales the bounds */
    jj_ctx_t ctx = {.tpl = t, .err = e, .now = now, .out = &buf,
                    .max_steps = JJ_MAX_STEPS + JJ_PER_INPUT_BYTE * input,
                    .max_alloc = JJ_MAX_ALLOC + JJ_PER_INPUT_BYTE * input};
    jj_ctx_t *c = &ctx;
    jj_scope_t *globals = scope_push(c, NULL, NULL), *root = NULL;
    bool ok = globals && slm__jj_globals(c, globals) && (root = scope_push(c, globals, NULL)) &&
              bind_vars(c, vars) && exec(c, t->root) && slm__jj_buf_put(c, NULL, &buf, "", 0);
    if (root)
        scope_pop(c, root, globals);
    if (globals)
        scope_pop(c, globals, NULL);
    release_mutables(c);
    if (!ok || e->set) {
        free(buf.s);
        return false;
    }
    *out = buf.s;
    *out_len = buf.len;
    return true;
}

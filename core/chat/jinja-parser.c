/* The Jinja parser: tokens become a syntax tree with jinja2's grammar and operator
 * precedence; the tree and its strings live in the template's arena. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

/* ---- the arena ---- */

struct jj_arena_chunk {
    jj_arena_chunk_t *next;
    size_t used, cap;
    max_align_t data[];
};

void *slm__jj_arena_alloc(jj_template_t *t, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    jj_arena_chunk_t *c = t->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = t->chunks;
        t->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void slm__jj_template_clear(jj_template_t *t)
{
    while (t->chunks) {
        jj_arena_chunk_t *next = t->chunks->next;
        free(t->chunks);
        t->chunks = next;
    }
    memset(t, 0, sizeof *t);
}

/* ---- the parser ---- */

typedef struct parser {
    jj_template_t *t;
    jj_token_t *tk;
    size_t n, i;
    jj_error_t *e;
    int depth;
    int loops;          /* enclosing for loops (break/continue are valid) */
} parser_t;

/* A growable array of pointers, copied into the arena when done. */
typedef struct vec {
    void **v;
    size_t n, cap;
} vec_t;

static bool fail_at(parser_t *p, jj_pos_t pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail_at(parser_t *p, jj_pos_t pos, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slm__jj_error_set(p->e, code, pos, fmt, ap);
    va_end(ap);
    return false;
}

static jj_token_t *cur(parser_t *p) { return &p->tk[p->i]; }
static jj_token_t *peek(parser_t *p) { return &p->tk[p->i + 1 < p->n ? p->i + 1 : p->i]; }
static jj_token_t *next(parser_t *p)
{
    jj_token_t *t = cur(p);
    if (p->i + 1 < p->n)
        p->i++;
    return t;
}

static bool is_op(const jj_token_t *t, const char *op)
{
    return t->kind == JT_OP && strcmp(t->s, op) == 0;
}
static bool is_name(const jj_token_t *t, const char *name)
{
    return t->kind == JT_NAME && strcmp(t->s, name) == 0;
}
static bool skip_op(parser_t *p, const char *op)
{
    if (!is_op(cur(p), op))
        return false;
    next(p);
    return true;
}
static bool skip_name(parser_t *p, const char *name)
{
    if (!is_name(cur(p), name))
        return false;
    next(p);
    return true;
}

static const char *describe(const jj_token_t *t)
{
    switch (t->kind) {
    case JT_EOF: return "end of template";
    case JT_TEXT: return "template data";
    case JT_VAR_BEGIN: return "begin of print statement";
    case JT_VAR_END: return "end of print statement";
    case JT_BLOCK_BEGIN: return "begin of statement block";
    case JT_BLOCK_END: return "end of statement block";
    case JT_STRING: return "string";
    case JT_INT: return "integer";
    case JT_FLOAT: return "float";
    default: return t->s;
    }
}

static bool expect_op(parser_t *p, const char *op)
{
    if (skip_op(p, op))
        return true;
    return fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected '%s', got '%s'", op, describe(cur(p)));
}

static bool expect_kind(parser_t *p, jj_tok_kind_t kind, const char *what)
{
    if (cur(p)->kind == kind) {
        next(p);
        return true;
    }
    return fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected %s, got '%s'", what, describe(cur(p)));
}

static bool push(parser_t *p, vec_t *v, void *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 8;
        void **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) {
            free(v->v);
            v->v = NULL;
            return fail_at(p, cur(p)->pos, SLM_E_NOMEM, "out of memory");
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

/* Moves v into the arena (v is freed); NULL only on failure with n > 0. */
static void **seal(parser_t *p, vec_t *v, size_t *n)
{
    *n = v->n;
    void **out = v->n ? slm__jj_arena_alloc(p->t, v->n * sizeof *out) : NULL;
    if (out)
        memcpy(out, v->v, v->n * sizeof *out);
    else if (v->n)
        fail_at(p, cur(p)->pos, SLM_E_NOMEM, "out of memory");
    free(v->v);
    *v = (vec_t){0};
    return out;
}

static jj_node_t *node(parser_t *p, jj_kind_t kind, jj_pos_t pos)
{
    jj_node_t *n = slm__jj_arena_alloc(p->t, sizeof *n);
    if (!n) {
        fail_at(p, pos, SLM_E_NOMEM, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    return n;
}

/* Each link of a chain (a + b + c, x|f|g, a.b.c) deepens the tree like a nesting
 * level: counted the same, so every tree walk is bounded. */
static bool link(parser_t *p, int *links)
{
    (*links)++;
    return ++p->depth <= JJ_MAX_NEST ||
           fail_at(p, cur(p)->pos, SLM_E_UNSUPPORTED, "an expression is nested too deeply");
}

static bool enter(parser_t *p)
{
    if (++p->depth <= JJ_MAX_NEST)
        return true;
    return fail_at(p, cur(p)->pos, SLM_E_UNSUPPORTED, "the template nests deeper than %d levels",
                   JJ_MAX_NEST);
}

/* An immortal string constant in the arena. */
static bool const_str(parser_t *p, const char *s, size_t len, jj_value_t *out)
{
    jj_str_t *str = slm__jj_arena_alloc(p->t, sizeof *str + len + 1);
    if (!str)
        return fail_at(p, cur(p)->pos, SLM_E_NOMEM, "out of memory");
    str->h.refs = JJ_IMMORTAL;
    str->len = len;
    str->n_cp = SIZE_MAX;
    memcpy(str->s, s, len);
    str->s[len] = '\0';
    *out = (jj_value_t){.type = JJ_STR, .u.o = &str->h};
    return true;
}

/* ---- expressions ---- */

static jj_node_t *parse_expression(parser_t *p, bool with_condexpr);
static jj_node_t *parse_or(parser_t *p);
static jj_node_t *parse_unary(parser_t *p, bool with_filter);
static jj_node_t *parse_primary(parser_t *p);
static jj_node_t *parse_postfix(parser_t *p, jj_node_t *n);

typedef enum { T_FULL, T_NO_COND, T_SIMPLE } tuple_mode_t;

/* jinja2's parse_tuple: one expression, or a tuple when commas follow. */
static bool tuple_end(parser_t *p, const char *extra)
{
    jj_token_t *t = cur(p);
    if (t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || is_op(t, ")"))
        return true;
    return extra && (is_name(t, extra) || t->kind == JT_EOF);
}

static jj_node_t *parse_tuple(parser_t *p, tuple_mode_t mode, const char *extra, bool parens)
{
    jj_pos_t pos = cur(p)->pos;
    vec_t items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n && !expect_op(p, ","))
            goto fail;
        if (tuple_end(p, extra))
            break;
        jj_node_t *n = mode == T_SIMPLE ? parse_primary(p)
                                        : parse_expression(p, mode == T_FULL);
        if (!n || !push(p, &items, n))
            goto fail;
        if (!is_op(cur(p), ","))
            break;
        is_tuple = true;
    }
    if (!is_tuple) {
        if (items.n) {
            jj_node_t *one = items.v[0];
            free(items.v);
            return one;
        }
        if (!parens) {
            fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected an expression, got '%s'",
                    describe(cur(p)));
            goto fail;
        }
    }
    jj_node_t *t = node(p, JN_TUPLE, pos);
    if (!t)
        goto fail;
    t->kids = (jj_node_t **)seal(p, &items, &t->n_kids);
    return t->n_kids && !t->kids ? NULL : t;
fail:
    free(items.v);
    return NULL;
}

static jj_node_t *parse_list(parser_t *p)
{
    jj_node_t *n = node(p, JN_LIST, next(p)->pos);
    vec_t items = {0};
    while (n && !is_op(cur(p), "]")) {
        if (items.n && !expect_op(p, ","))
            goto fail;
        if (is_op(cur(p), "]"))
            break;
        jj_node_t *x = parse_expression(p, true);
        if (!x || !push(p, &items, x))
            goto fail;
    }
    if (!n || !expect_op(p, "]"))
        goto fail;
    n->kids = (jj_node_t **)seal(p, &items, &n->n_kids);
    return n;
fail:
    free(items.v);
    return NULL;
}

static jj_node_t *parse_dict(parser_t *p)
{
    jj_node_t *n = node(p, JN_DICT, next(p)->pos);
    vec_t keys = {0}, vals = {0};
    while (n && !is_op(cur(p), "}")) {
        if (keys.n && !expect_op(p, ","))
            goto fail;
        if (is_op(cur(p), "}"))
            break;
        jj_node_t *k = parse_expression(p, true);
        if (!k || !expect_op(p, ":"))
            goto fail;
        jj_node_t *v = parse_expression(p, true);
        if (!v || !push(p, &keys, k) || !push(p, &vals, v))
            goto fail;
    }
    if (!n || !expect_op(p, "}"))
        goto fail;
    size_t nv;
    n->kids = (jj_node_t **)seal(p, &keys, &n->n_kids);
    n->kids2 = (jj_node_t **)seal(p, &vals, &nv);
    return n;
fail:
    free(keys.v);
    free(vals.v);
    return NULL;
}

static jj_node_t *parse_primary(parser_t *p)
{
    if (!enter(p))
        return NULL;
    jj_token_t *t = cur(p);
    jj_node_t *n = NULL;
    if (t->kind == JT_NAME) {
        next(p);
        bool yes = !strcmp(t->s, "true") || !strcmp(t->s, "True");
        bool no = !strcmp(t->s, "false") || !strcmp(t->s, "False");
        bool none = !strcmp(t->s, "none") || !strcmp(t->s, "None");
        if ((n = node(p, yes || no || none ? JN_CONST : JN_NAME, t->pos))) {
            n->name = t->s;
            n->value = none ? jj_none() : jj_bool(yes);
        }
    } else if (t->kind == JT_STRING) {
        /* adjacent strings join: "a" "b" */
        size_t len = 0, k = p->i;
        for (; p->tk[k].kind == JT_STRING; k++)
            len += p->tk[k].len;
        char *buf = malloc(len + 1);
        size_t at = 0;
        for (; buf && cur(p)->kind == JT_STRING; next(p)) {
            memcpy(buf + at, cur(p)->s, cur(p)->len);
            at += cur(p)->len;
        }
        if ((n = buf ? node(p, JN_CONST, t->pos) : NULL) && !const_str(p, buf, len, &n->value))
            n = NULL;
        if (!buf)
            fail_at(p, t->pos, SLM_E_NOMEM, "out of memory");
        free(buf);
    } else if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        next(p);
        if ((n = node(p, JN_CONST, t->pos)))
            n->value = t->kind == JT_INT ? jj_int(t->i) : jj_float(t->f);
    } else if (is_op(t, "(")) {
        next(p);
        n = parse_tuple(p, T_FULL, NULL, true);
        if (n && !expect_op(p, ")"))
            n = NULL;
    } else if (is_op(t, "[")) {
        n = parse_list(p);
    } else if (is_op(t, "{")) {
        n = parse_dict(p);
    } else {
        fail_at(p, t->pos, SLM_E_FORMAT, "unexpected '%s'", describe(t));
    }
    p->depth--;
    return n;
}

/* (args, name=value, ...) into n->kids, n->names, n->kids2. */
static bool parse_call_args(parser_t *p, jj_node_t *n)
{
    jj_pos_t pos = cur(p)->pos;
    if (!expect_op(p, "("))
        return false;
    vec_t args = {0}, names = {0}, vals = {0};
    bool comma = false;
    while (!is_op(cur(p), ")")) {
        if (comma && !expect_op(p, ","))
            goto fail;
        if (comma && is_op(cur(p), ")"))
            break;
        if (is_op(cur(p), "*") || is_op(cur(p), "**")) {
            fail_at(p, cur(p)->pos, SLM_E_UNSUPPORTED, "unsupported '%s' argument unpacking",
                    cur(p)->s);
            goto fail;
        }
        if (cur(p)->kind == JT_NAME && is_op(peek(p), "=")) {
            const char *key = next(p)->s;
            next(p);
            jj_node_t *v = parse_expression(p, true);
            if (!v || !push(p, &names, (void *)key) || !push(p, &vals, v))
                goto fail;
        } else {
            if (names.n) {
                fail_at(p, pos, SLM_E_FORMAT, "invalid syntax for function call expression "
                        "(a positional argument after a keyword one)");
                goto fail;
            }
            jj_node_t *v = parse_expression(p, true);
            if (!v || !push(p, &args, v))
                goto fail;
        }
        comma = true;
    }
    if (!expect_op(p, ")"))
        goto fail;
    size_t nv;
    n->kids = (jj_node_t **)seal(p, &args, &n->n_kids);
    n->names = (const char **)seal(p, &names, &n->n_names);
    n->kids2 = (jj_node_t **)seal(p, &vals, &nv);
    return !p->e->set;
fail:
    free(args.v);
    free(names.v);
    free(vals.v);
    return false;
}

static jj_node_t *parse_call(parser_t *p, jj_node_t *callee)
{
    jj_node_t *n = node(p, JN_CALL, callee->pos);
    if (!n)
        return NULL;
    n->a = callee;
    return parse_call_args(p, n) ? n : NULL;
}

static jj_node_t *parse_subscribed(parser_t *p)
{
    jj_pos_t pos = cur(p)->pos;
    jj_node_t *parts[3] = {NULL, NULL, NULL};
    if (!is_op(cur(p), ":")) {
        jj_node_t *x = parse_expression(p, true);
        if (!x || !is_op(cur(p), ":"))
            return x;
        parts[0] = x;
    }
    next(p);   /* the first ':' */
    if (!is_op(cur(p), ":") && !is_op(cur(p), "]") && !is_op(cur(p), ",") &&
        !(parts[1] = parse_expression(p, true)))
        return NULL;
    if (skip_op(p, ":") && !is_op(cur(p), "]") && !is_op(cur(p), ",") &&
        !(parts[2] = parse_expression(p, true)))
        return NULL;
    jj_node_t *n = node(p, JN_SLICE, pos);
    if (n) {
        n->a = parts[0];
        n->b = parts[1];
        n->c = parts[2];
    }
    return n;
}

static jj_node_t *parse_subscript(parser_t *p, jj_node_t *obj)
{
    jj_token_t *t = next(p);
    if (is_op(t, ".")) {
        jj_token_t *a = next(p);
        jj_node_t *n = node(p, a->kind == JT_NAME ? JN_ATTR : JN_ITEM, t->pos);
        if (!n)
            return NULL;
        n->a = obj;
        if (a->kind == JT_NAME) {
            n->name = a->s;
            return n;
        }
        if (a->kind != JT_INT) {
            fail_at(p, a->pos, SLM_E_FORMAT, "expected a name or number after '.'");
            return NULL;
        }
        if (!(n->b = node(p, JN_CONST, a->pos)))
            return NULL;
        n->b->value = jj_int(a->i);
        return n;
    }
    jj_node_t *n = node(p, JN_ITEM, t->pos);
    vec_t args = {0};
    while (n && !is_op(cur(p), "]")) {
        if (args.n && !expect_op(p, ","))
            goto fail;
        jj_node_t *x = parse_subscribed(p);
        if (!x || !push(p, &args, x))
            goto fail;
    }
    if (!n || !expect_op(p, "]"))
        goto fail;
    if (args.n == 0) {
        fail_at(p, t->pos, SLM_E_FORMAT, "expected a subscript expression");
        goto fail;
    }
    n->a = obj;
    if (args.n == 1) {
        n->b = args.v[0];
        free(args.v);
        return n;
    }
    if (!(n->b = node(p, JN_TUPLE, t->pos)))
        goto fail;
    n->b->kids = (jj_node_t **)seal(p, &args, &n->b->n_kids);
    return n;
fail:
    free(args.v);
    return NULL;
}

static jj_node_t *parse_postfix(parser_t *p, jj_node_t *n)
{
    int links = 0;
    while (n) {
        bool more = is_op(cur(p), ".") || is_op(cur(p), "[") || is_op(cur(p), "(");
        if (more && !link(p, &links)) {
            n = NULL;
            break;
        }
        if (is_op(cur(p), ".") || is_op(cur(p), "["))
            n = parse_subscript(p, n);
        else if (is_op(cur(p), "("))
            n = parse_call(p, n);
        else
            break;
    }
    p->depth -= links;
    return n;
}

/* name or name.name (jinja2 allows dotted filter and test names). */
static const char *parse_dotted_name(parser_t *p)
{
    jj_token_t *t = cur(p);
    if (t->kind != JT_NAME) {
        fail_at(p, t->pos, SLM_E_FORMAT, "expected a name, got '%s'", describe(t));
        return NULL;
    }
    next(p);
    if (!is_op(cur(p), "."))
        return t->s;
    size_t len = strlen(t->s);
    char buf[256];
    memcpy(buf, t->s, len < sizeof buf ? len + 1 : sizeof buf);
    while (skip_op(p, ".")) {
        jj_token_t *part = cur(p);
        if (part->kind != JT_NAME || len + 1 + part->len >= sizeof buf) {
            fail_at(p, part->pos, SLM_E_FORMAT, "bad dotted name");
            return NULL;
        }
        buf[len++] = '.';
        memcpy(buf + len, part->s, part->len + 1);
        len += part->len;
        next(p);
    }
    char *s = slm__jj_arena_alloc(p->t, len + 1);
    if (s)
        memcpy(s, buf, len + 1);
    return s;
}

static jj_node_t *parse_filter_links(parser_t *p, jj_node_t *operand, bool inline_start,
                                     int *links);

/* One or more |filter(args) applied to operand (NULL in a filter block). */
static jj_node_t *parse_filter(parser_t *p, jj_node_t *operand, bool inline_start)
{
    int links = 0;
    jj_node_t *n = parse_filter_links(p, operand, inline_start, &links);
    p->depth -= links;
    return n;
}

static jj_node_t *parse_filter_links(parser_t *p, jj_node_t *operand, bool inline_start,
                                     int *links)
{
    while (inline_start || is_op(cur(p), "|")) {
        if (!link(p, links))
            return NULL;
        if (!inline_start)
            next(p);
        inline_start = false;
        jj_pos_t pos = cur(p)->pos;
        const char *name = parse_dotted_name(p);
        if (!name)
            return NULL;
        int id = slm__jj_filter_find(name);   /* unknown ones: see check_names() */
        jj_node_t *n = node(p, JN_FILTER, pos);
        if (!n)
            return NULL;
        n->a = operand;
        n->name = name;
        n->op = id;
        if (is_op(cur(p), "(") && !parse_call_args(p, n))
            return NULL;
        operand = n;
    }
    return operand;
}

static jj_node_t *parse_test(parser_t *p, jj_node_t *operand)
{
    jj_pos_t pos = next(p)->pos;   /* "is" */
    bool negated = skip_name(p, "not");
    const char *name = parse_dotted_name(p);
    if (!name)
        return NULL;
    int id = slm__jj_test_find(name);
    jj_node_t *n = node(p, JN_TEST, pos);
    if (!n)
        return NULL;
    n->a = operand;
    n->name = name;
    n->op = id;
    n->flag = negated;
    jj_token_t *t = cur(p);
    if (is_op(t, "(")) {
        if (!parse_call_args(p, n))
            return NULL;
    } else if ((t->kind == JT_NAME || t->kind == JT_STRING || t->kind == JT_INT ||
                t->kind == JT_FLOAT || is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is")) {
            fail_at(p, t->pos, SLM_E_FORMAT, "you cannot chain multiple tests with 'is'");
            return NULL;
        }
        jj_node_t *arg = parse_postfix(p, parse_primary(p));
        if (!arg || !(n->kids = slm__jj_arena_alloc(p->t, sizeof *n->kids)))
            return NULL;
        n->kids[0] = arg;
        n->n_kids = 1;
    }
    return n;
}

static jj_node_t *parse_filter_expr(parser_t *p, jj_node_t *n)
{
    int links = 0;
    while (n) {
        bool more = is_op(cur(p), "|") || is_name(cur(p), "is") || is_op(cur(p), "(");
        if (more && !link(p, &links)) {
            n = NULL;
            break;
        }
        if (is_op(cur(p), "|"))
            n = parse_filter(p, n, false);
        else if (is_name(cur(p), "is"))
            n = parse_test(p, n);
        else if (is_op(cur(p), "("))
            n = parse_call(p, n);
        else
            break;
    }
    p->depth -= links;
    return n;
}

static jj_node_t *parse_unary(parser_t *p, bool with_filter)
{
    if (!enter(p))
        return NULL;
    jj_token_t *t = cur(p);
    jj_node_t *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        next(p);
        jj_node_t *x = parse_unary(p, false);
        n = x ? node(p, t->s[0] == '-' ? JN_NEG : JN_POS, t->pos) : NULL;
        if (n)
            n->a = x;
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter)
        n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jj_node_t *binop(parser_t *p, jj_node_t *l, int op, jj_pos_t pos, jj_node_t *r)
{
    jj_node_t *n = l && r ? node(p, JN_BINOP, pos) : NULL;
    if (n) {
        n->op = op;
        n->a = l;
        n->b = r;
    }
    return n;
}

static jj_node_t *parse_pow(parser_t *p)
{
    jj_node_t *l = parse_unary(p, true);
    int links = 0;
    while (l && is_op(cur(p), "**")) {
        if (!link(p, &links)) {
            l = NULL;
            break;
        }
        jj_pos_t pos = next(p)->pos;
        l = binop(p, l, JJ_OP_POW, pos, parse_unary(p, true));
    }
    p->depth -= links;
    return l;
}

static jj_node_t *parse_math2(parser_t *p)
{
    static const char *const ops[] = {"*", "/", "//", "%"};
    static const int codes[] = {JJ_OP_MUL, JJ_OP_DIV, JJ_OP_FLOORDIV, JJ_OP_MOD};
    jj_node_t *l = parse_pow(p);
    int links = 0;
    for (int k; l;) {
        for (k = 0; k < 4 && !is_op(cur(p), ops[k]); k++)
            ;
        if (k == 4)
            break;
        if (!link(p, &links)) {
            l = NULL;
            break;
        }
        jj_pos_t pos = next(p)->pos;
        l = binop(p, l, codes[k], pos, parse_pow(p));
    }
    p->depth -= links;
    return l;
}

static jj_node_t *parse_concat(parser_t *p)
{
    jj_node_t *l = parse_math2(p);
    int links = 0;
    while (l && is_op(cur(p), "~")) {
        if (!link(p, &links)) {
            l = NULL;
            break;
        }
        jj_pos_t pos = next(p)->pos;
        l = binop(p, l, JJ_OP_CONCAT, pos, parse_math2(p));
    }
    p->depth -= links;
    return l;
}

static jj_node_t *parse_math1(parser_t *p)
{
    jj_node_t *l = parse_concat(p);
    int links = 0;
    while (l && (is_op(cur(p), "+") || is_op(cur(p), "-"))) {
        if (!link(p, &links)) {
            l = NULL;
            break;
        }
        jj_token_t *t = next(p);
        l = binop(p, l, t->s[0] == '+' ? JJ_OP_ADD : JJ_OP_SUB, t->pos, parse_concat(p));
    }
    p->depth -= links;
    return l;
}

static int compare_op(parser_t *p)
{
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const int codes[] = {JJ_OP_EQ, JJ_OP_NE, JJ_OP_LT, JJ_OP_LE, JJ_OP_GT, JJ_OP_GE};
    for (int k = 0; k < 6; k++)
        if (skip_op(p, ops[k]))
            return codes[k];
    if (skip_name(p, "in"))
        return JJ_OP_IN;
    if (is_name(cur(p), "not") && is_name(peek(p), "in")) {
        next(p);
        next(p);
        return JJ_OP_NOTIN;
    }
    return -1;
}

static jj_node_t *parse_compare(parser_t *p)
{
    jj_pos_t pos = cur(p)->pos;
    jj_node_t *first = parse_math1(p);
    vec_t operands = {0};
    int ops[64];
    for (int op; first && (op = compare_op(p)) >= 0;) {
        if (operands.n == 64) {
            fail_at(p, pos, SLM_E_UNSUPPORTED, "too many chained comparisons");
            goto fail;
        }
        ops[operands.n] = op;
        jj_node_t *x = parse_math1(p);
        if (!x || !push(p, &operands, x))
            goto fail;
    }
    if (!first || !operands.n)
        return first;
    jj_node_t *n = node(p, JN_COMPARE, pos);
    if (!n || !(n->ops = slm__jj_arena_alloc(p->t, operands.n * sizeof *n->ops)))
        goto fail;
    memcpy(n->ops, ops, operands.n * sizeof *ops);
    n->a = first;
    n->kids = (jj_node_t **)seal(p, &operands, &n->n_kids);
    return n;
fail:
    free(operands.v);
    return NULL;
}

static jj_node_t *parse_not(parser_t *p)
{
    if (!is_name(cur(p), "not"))
        return parse_compare(p);
    jj_pos_t pos = next(p)->pos;
    if (!enter(p))
        return NULL;
    jj_node_t *x = parse_not(p);
    p->depth--;
    jj_node_t *n = x ? node(p, JN_NOT, pos) : NULL;
    if (n)
        n->a = x;
    return n;
}

static jj_node_t *parse_and(parser_t *p)
{
    jj_node_t *l = parse_not(p);
    int links = 0;
    while (l && is_name(cur(p), "and")) {
        if (!link(p, &links)) {
            l = NULL;
            break;
        }
        jj_pos_t pos = next(p)->pos;
        jj_node_t *r = parse_not(p), *n = r ? node(p, JN_AND, pos) : NULL;
        if (n) {
            n->a = l;
            n->b = r;
        }
        l = n;
    }
    p->depth -= links;
    return l;
}

static jj_node_t *parse_or(parser_t *p)
{
    jj_node_t *l = parse_and(p);
    int links = 0;
    while (l && is_name(cur(p), "or")) {
        if (!link(p, &links)) {
            l = NULL;
            break;
        }
        jj_pos_t pos = next(p)->pos;
        jj_node_t *r = parse_and(p), *n = r ? node(p, JN_OR, pos) : NULL;
        if (n) {
            n->a = l;
            n->b = r;
        }
        l = n;
    }
    p->depth -= links;
    return l;
}

/* a if cond else b; "else" may be left out (undefined when cond is false). */
static jj_node_t *parse_condexpr(parser_t *p)
{
    jj_node_t *l = parse_or(p);
    int links = 0;
    while (l && is_name(cur(p), "if")) {
        jj_pos_t pos = next(p)->pos;
        jj_node_t *n = link(p, &links) ? node(p, JN_COND, pos) : NULL;
        if (!n || !(n->a = parse_or(p)) || (skip_name(p, "else") && !(n->c = parse_condexpr(p)))) {
            l = NULL;
            break;
        }
        n->b = l;
        n->flag = n->c != NULL;
        l = n;
    }
    p->depth -= links;
    return l;
}

static jj_node_t *parse_expression(parser_t *p, bool with_condexpr)
{
    if (!enter(p))
        return NULL;
    jj_node_t *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    p->depth--;
    return n;
}

/* ---- statements ---- */

static jj_node_t *parse_body(parser_t *p, const char *const *ends);
static jj_node_t *parse_statement(parser_t *p);

/* After a tag's header: "%}", the body up to one of ends, and (consume) that end
 * tag's name; *which is the end name found. */
static jj_node_t *parse_block(parser_t *p, const char *const *ends, const char **which)
{
    if (!expect_kind(p, JT_BLOCK_END, "'%}'"))
        return NULL;
    jj_node_t *body = parse_body(p, ends);
    if (!body)
        return NULL;
    if (cur(p)->kind != JT_NAME) {
        jj_pos_t pos = cur(p)->pos;
        fail_at(p, pos, SLM_E_FORMAT, "unexpected end of template: expected '{%% %s %%}'", ends[0]);
        return NULL;
    }
    if (which)
        *which = cur(p)->s;
    next(p);
    return body;
}

/* A target of for / set / with: a name, a tuple of names, or (set) ns.attr. */
static bool parse_target(parser_t *p, jj_node_t *n, bool allow_attr, const char *extra)
{
    jj_pos_t pos = cur(p)->pos;
    if (allow_attr && cur(p)->kind == JT_NAME && is_op(peek(p), ".")) {
        const char **names = slm__jj_arena_alloc(p->t, sizeof *names);
        if (!names)
            return fail_at(p, pos, SLM_E_NOMEM, "out of memory");
        names[0] = next(p)->s;
        next(p);
        if (cur(p)->kind != JT_NAME)
            return fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected an attribute name");
        n->name = next(p)->s;
        n->names = names;
        n->n_names = 1;
        n->flag2 = true;
        return true;
    }
    jj_node_t *t = parse_tuple(p, T_SIMPLE, extra, false);
    if (!t)
        return false;
    jj_node_t **items = &t;
    size_t n_items = 1;
    if (t->kind == JN_TUPLE) {
        items = t->kids;
        n_items = t->n_kids;
        n->flag = true;
    }
    const char **names = slm__jj_arena_alloc(p->t, (n_items ? n_items : 1) * sizeof *names);
    if (!names)
        return fail_at(p, pos, SLM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n_items; i++) {
        if (items[i]->kind != JN_NAME)
            return fail_at(p, items[i]->pos, SLM_E_FORMAT, "cannot assign to this expression");
        names[i] = items[i]->name;
    }
    n->names = names;
    n->n_names = n_items;
    return true;
}

static jj_node_t *parse_if(parser_t *p, jj_pos_t pos)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const end_if[] = {"endif", NULL};
    jj_node_t *n = node(p, JN_IF, pos);
    const char *which = NULL;
    if (!n || !(n->a = parse_tuple(p, T_NO_COND, NULL, false)) ||
        !(n->b = parse_block(p, ends, &which)))
        return NULL;
    if (!strcmp(which, "elif")) {
        jj_node_t *elif = parse_if(p, p->tk[p->i - 1].pos);
        jj_node_t *body = elif ? node(p, JN_BODY, elif->pos) : NULL;
        if (!body || !(body->kids = slm__jj_arena_alloc(p->t, sizeof *body->kids)))
            return NULL;
        body->kids[0] = elif;
        body->n_kids = 1;
        n->c = body;
        return n;
    }
    if (!strcmp(which, "else") && !(n->c = parse_block(p, end_if, NULL)))
        return NULL;
    return n;
}

static jj_node_t *parse_for(parser_t *p, jj_pos_t pos)
{
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const end_for[] = {"endfor", NULL};
    jj_node_t *n = node(p, JN_FOR, pos);
    if (!n || !parse_target(p, n, false, "in"))
        return NULL;
    if (!skip_name(p, "in")) {
        fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected 'in' in a for loop");
        return NULL;
    }
    if (!(n->a = parse_tuple(p, T_NO_COND, "recursive", false)))
        return NULL;
    if (skip_name(p, "if") && !(n->d = parse_expression(p, true)))
        return NULL;
    if (is_name(cur(p), "recursive")) {
        fail_at(p, cur(p)->pos, SLM_E_UNSUPPORTED, "unsupported recursive for loop");
        return NULL;
    }
    const char *which = NULL;
    p->loops++;
    n->b = parse_block(p, ends, &which);
    p->loops--;
    if (!n->b)
        return NULL;
    if (!strcmp(which, "else") && !(n->c = parse_block(p, end_for, NULL)))
        return NULL;
    return n;
}

static jj_node_t *parse_set(parser_t *p, jj_pos_t pos)
{
    static const char *const ends[] = {"endset", NULL};
    jj_node_t *n = node(p, JN_SET, pos);
    if (!n || !parse_target(p, n, true, NULL))
        return NULL;
    if (skip_op(p, "=")) {
        n->a = parse_tuple(p, T_FULL, NULL, false);
        return n->a ? n : NULL;
    }
    n->kind = JN_SET_BLOCK;
    if (is_op(cur(p), "|") && !(n->a = parse_filter(p, NULL, false)))
        return NULL;
    n->b = parse_block(p, ends, NULL);
    return n->b ? n : NULL;
}

/* (name, name=default, ...) of a macro or call block. */
static bool parse_signature(parser_t *p, jj_node_t *n)
{
    if (!expect_op(p, "("))
        return false;
    vec_t names = {0}, defs = {0};
    while (!is_op(cur(p), ")")) {
        if (names.n && !expect_op(p, ","))
            goto fail;
        if (is_op(cur(p), ")"))
            break;
        jj_token_t *t = cur(p);
        if (t->kind != JT_NAME) {
            fail_at(p, t->pos, SLM_E_FORMAT, "expected a parameter name, got '%s'", describe(t));
            goto fail;
        }
        next(p);
        jj_node_t *def = NULL;
        if (skip_op(p, "=") && !(def = parse_expression(p, true)))
            goto fail;
        if (!def && defs.n && defs.v[defs.n - 1]) {
            fail_at(p, t->pos, SLM_E_FORMAT, "non-default argument follows default argument");
            goto fail;
        }
        if (!push(p, &names, (void *)t->s) || !push(p, &defs, def))
            goto fail;
    }
    next(p);
    size_t nd;
    n->names = (const char **)seal(p, &names, &n->n_names);
    n->kids = (jj_node_t **)seal(p, &defs, &nd);
    n->n_kids = nd;
    return !p->e->set;
fail:
    free(names.v);
    free(defs.v);
    return false;
}

/* Whether the tree under n reads the variable `name` (macros take varargs and
 * kwargs only when they do, as jinja2 decides). */
static bool reads(const jj_node_t *n, const char *name)
{
    if (!n)
        return false;
    if (n->kind == JN_NAME && !strcmp(n->name, name))
        return true;
    if (reads(n->a, name) || reads(n->b, name) || reads(n->c, name) || reads(n->d, name))
        return true;
    for (size_t i = 0; i < n->n_kids; i++)
        if (reads(n->kids[i], name))
            return true;
    size_t n2 = n->kind == JN_DICT ? n->n_kids : n->kind == JN_CALL || n->kind == JN_FILTER ||
                n->kind == JN_TEST || n->kind == JN_WITH ? n->n_names : 0;
    for (size_t i = 0; n->kids2 && i < n2; i++)
        if (reads(n->kids2[i], name))
            return true;
    return false;
}

static jj_node_t *parse_macro(parser_t *p, jj_pos_t pos, bool call_block)
{
    static const char *const end_macro[] = {"endmacro", NULL};
    static const char *const end_call[] = {"endcall", NULL};
    jj_node_t *n = node(p, call_block ? JN_CALL_BLOCK : JN_MACRO, pos);
    if (!n)
        return NULL;
    if (!call_block) {
        if (cur(p)->kind != JT_NAME) {
            fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected a macro name");
            return NULL;
        }
        n->name = next(p)->s;
    }
    if ((!call_block || is_op(cur(p), "(")) && !parse_signature(p, n))
        return NULL;
    if (call_block) {
        jj_node_t *call = parse_expression(p, true);
        if (!call)
            return NULL;
        if (call->kind != JN_CALL) {
            fail_at(p, call->pos, SLM_E_FORMAT, "expected a call after 'call'");
            return NULL;
        }
        n->a = call;
    }
    int loops = p->loops;
    p->loops = 0;   /* break and continue do not cross a macro */
    n->b = parse_block(p, call_block ? end_call : end_macro, NULL);
    p->loops = loops;
    if (!n->b)
        return NULL;
    n->flag = reads(n->b, "varargs");
    n->flag2 = reads(n->b, "kwargs");
    return n;
}

static jj_node_t *parse_with(parser_t *p, jj_pos_t pos)
{
    static const char *const ends[] = {"endwith", NULL};
    jj_node_t *n = node(p, JN_WITH, pos);
    vec_t names = {0}, vals = {0};
    while (n && cur(p)->kind != JT_BLOCK_END) {
        if (names.n && !expect_op(p, ","))
            goto fail;
        if (cur(p)->kind != JT_NAME) {
            fail_at(p, cur(p)->pos, SLM_E_FORMAT, "expected a name in 'with'");
            goto fail;
        }
        const char *name = next(p)->s;
        if (!expect_op(p, "="))
            goto fail;
        jj_node_t *v = parse_expression(p, true);
        if (!v || !push(p, &names, (void *)name) || !push(p, &vals, v))
            goto fail;
    }
    if (!n)
        goto fail;
    size_t nv;
    n->names = (const char **)seal(p, &names, &n->n_names);
    n->kids2 = (jj_node_t **)seal(p, &vals, &nv);
    n->b = parse_block(p, ends, NULL);
    return n->b ? n : NULL;
fail:
    free(names.v);
    free(vals.v);
    return NULL;
}

/* A body that is just its block: generation (transformers' training marks). */
static jj_node_t *parse_plain(parser_t *p, const char *end)
{
    const char *ends[] = {end, NULL};
    return parse_block(p, ends, NULL);
}

static jj_node_t *parse_loop_control(parser_t *p, jj_token_t *t)
{
    if (!p->loops) {
        fail_at(p, t->pos, SLM_E_FORMAT, "'%s' outside of a for loop", t->s);
        return NULL;
    }
    return node(p, t->s[0] == 'b' ? JN_BREAK : JN_CONTINUE, t->pos);
}

static jj_node_t *parse_print(parser_t *p, jj_pos_t pos)
{
    jj_node_t *n = node(p, JN_OUTPUT, pos);
    if (n && !(n->a = parse_tuple(p, T_FULL, NULL, false)))
        return NULL;
    return n;
}

static jj_node_t *parse_filter_block(parser_t *p, jj_pos_t pos)
{
    jj_node_t *n = node(p, JN_FILTER_BLOCK, pos);
    if (!n || !(n->a = parse_filter(p, NULL, true)))
        return NULL;
    return (n->b = parse_plain(p, "endfilter")) ? n : NULL;
}

/* Tags jinja2 has that this engine does not (they need a loader or autoescape). */
static const char *const unsupported_tags[] = {
    "block", "extends", "include", "import", "from", "autoescape", NULL,
};

static jj_node_t *parse_statement(parser_t *p)
{
    jj_token_t *t = cur(p);
    if (t->kind != JT_NAME) {
        fail_at(p, t->pos, SLM_E_FORMAT, "tag name expected, got '%s'", describe(t));
        return NULL;
    }
    next(p);
    const char *w = t->s;
    if (!strcmp(w, "if"))
        return parse_if(p, t->pos);
    if (!strcmp(w, "for"))
        return parse_for(p, t->pos);
    if (!strcmp(w, "set"))
        return parse_set(p, t->pos);
    if (!strcmp(w, "macro") || !strcmp(w, "call"))
        return parse_macro(p, t->pos, w[0] == 'c');
    if (!strcmp(w, "filter"))
        return parse_filter_block(p, t->pos);
    if (!strcmp(w, "with"))
        return parse_with(p, t->pos);
    if (!strcmp(w, "print"))
        return parse_print(p, t->pos);
    if (!strcmp(w, "generation"))
        return parse_plain(p, "endgeneration");
    if (!strcmp(w, "break") || !strcmp(w, "continue"))
        return parse_loop_control(p, t);
    for (size_t i = 0; unsupported_tags[i]; i++)
        if (!strcmp(w, unsupported_tags[i])) {
            fail_at(p, t->pos, SLM_E_UNSUPPORTED, "unsupported tag '%s'", w);
            return NULL;
        }
    fail_at(p, t->pos, SLM_E_FORMAT, "unknown tag '%s'", w);
    return NULL;
}

static bool is_end(const jj_token_t *t, const char *const *ends)
{
    for (size_t i = 0; ends && ends[i]; i++)
        if (is_name(t, ends[i]))
            return true;
    return false;
}

static jj_node_t *parse_output(parser_t *p)
{
    jj_node_t *n = node(p, JN_OUTPUT, next(p)->pos);
    if (!n || !(n->a = parse_tuple(p, T_FULL, NULL, false)))
        return NULL;
    return expect_kind(p, JT_VAR_END, "'}}'") ? n : NULL;
}

static jj_node_t *parse_text(parser_t *p)
{
    jj_token_t *t = next(p);
    jj_node_t *n = node(p, JN_TEXT, t->pos);
    return n && const_str(p, t->s, t->len, &n->value) ? n : NULL;
}

/* Statements up to EOF (ends NULL) or to a "{% END" whose name is in ends: the
 * parser is left on that name. */
static jj_node_t *parse_body(parser_t *p, const char *const *ends)
{
    if (!enter(p))
        return NULL;
    jj_node_t *body = node(p, JN_BODY, cur(p)->pos);
    vec_t kids = {0};
    while (body) {
        jj_token_t *t = cur(p);
        jj_node_t *n = NULL;
        if (t->kind == JT_EOF) {
            if (ends) {
                char want[128] = "";
                for (size_t i = 0; ends[i]; i++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s'{%% %s %%}'",
                             !i ? "" : ends[i + 1] ? ", " : " or ", ends[i]);
                fail_at(p, t->pos, SLM_E_FORMAT, "unexpected end of template: expected %s", want);
                goto fail;
            }
            break;
        }
        if (t->kind == JT_TEXT) {
            n = parse_text(p);
        } else if (t->kind == JT_VAR_BEGIN) {
            n = parse_output(p);
        } else if (t->kind == JT_BLOCK_BEGIN) {
            next(p);
            if (is_end(cur(p), ends))
                break;
            n = parse_statement(p);
            if (n && !expect_kind(p, JT_BLOCK_END, "'%}'"))
                goto fail;
        } else {
            fail_at(p, t->pos, SLM_E_FORMAT, "unexpected '%s'", describe(t));
        }
        if (!n || !push(p, &kids, n))
            goto fail;
    }
    if (!body)
        goto fail;
    body->kids = (jj_node_t **)seal(p, &kids, &body->n_kids);
    p->depth--;
    return body->n_kids && !body->kids ? NULL : body;
fail:
    free(kids.v);
    return NULL;
}

/* jinja2 refuses a filter or test it does not know when it compiles the template,
 * except inside an if (its test and bodies) or a conditional expression, where the
 * error waits until the filter runs ("soft" frames); for, macro, call, filter and
 * set blocks start hard frames again. */
static bool check_names(parser_t *p, const jj_node_t *n, bool soft)
{
    if (!n)
        return true;
    if ((n->kind == JN_FILTER || n->kind == JN_TEST) && n->op == -1 && !soft)
        return fail_at(p, n->pos, SLM_E_FORMAT, "no %s named '%s'",
                       n->kind == JN_FILTER ? "filter" : "test", n->name);
    bool inner = soft;
    switch (n->kind) {
    case JN_IF: case JN_COND:
        inner = true;
        break;
    case JN_FOR: case JN_MACRO: case JN_CALL_BLOCK: case JN_FILTER_BLOCK: case JN_SET_BLOCK:
    case JN_WITH:
        inner = false;
        break;
    default:
        break;
    }
    /* a for loop's iterable and a call block's call belong to the outer frame */
    bool head = n->kind == JN_FOR || n->kind == JN_CALL_BLOCK ? soft : inner;
    if (!check_names(p, n->a, head) || !check_names(p, n->b, inner) ||
        !check_names(p, n->c, inner) || !check_names(p, n->d, inner))
        return false;
    for (size_t i = 0; i < n->n_kids; i++)
        if (!check_names(p, n->kids[i], inner))
            return false;
    size_t n2 = n->kind == JN_DICT ? n->n_kids : n->kind == JN_CALL || n->kind == JN_FILTER ||
                n->kind == JN_TEST || n->kind == JN_WITH ? n->n_names : 0;
    for (size_t i = 0; n->kids2 && i < n2; i++)
        if (!check_names(p, n->kids2[i], n->kind == JN_WITH ? soft : inner))
            return false;
    return true;
}

/* jinja2 reads "\r\n" and "\r" as "\n" and drops one newline at the very end. */
static char *normalise(jj_template_t *t, const char *src, size_t len, size_t *out_len)
{
    char *s = slm__jj_arena_alloc(t, len + 1);
    if (!s)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            i += i + 1 < len && src[i + 1] == '\n';
        } else {
            s[k++] = src[i];
        }
    }
    if (k && s[k - 1] == '\n')
        k--;
    s[k] = '\0';
    *out_len = k;
    return s;
}

bool slm__jj_parse(jj_template_t *t, const char *source, size_t len, jj_error_t *e)
{
    jj_pos_t start = {.line = 1, .col = 1};
    if (len > JJ_MAX_SOURCE) {
        slm__jj_error_setf(e, SLM_E_UNSUPPORTED, start, "the template is larger than 4 MiB");
        return false;
    }
    size_t n_src;
    char *src = normalise(t, source, len, &n_src);
    if (!src) {
        slm__jj_error_setf(e, SLM_E_NOMEM, start, "out of memory");
        return false;
    }
    t->source = src;
    parser_t p = {.t = t, .e = e};
    if (!slm__jj_lex(t, src, n_src, &p.tk, &p.n, e))
        return false;
    t->root = parse_body(&p, NULL);
    free(p.tk);
    return t->root != NULL && check_names(&p, t->root, false) && !e->set;
}

/* JSON-constrained sampling: a schema compiled into nodes, and a pushdown parser whose
 * state, tried on each token's bytes, says which tokens may come next. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal/util.h"
#include "runtime/generation.h"

#define MAX_DEPTH 32
#define MAX_CHOICES 64         /* properties of an object, values of an enum */
#define MAX_WS 2               /* whitespace characters in a row */
#define MAX_DIGITS 24

enum { T_OBJECT = 1, T_ARRAY = 2, T_STRING = 4, T_NUMBER = 8, T_INTEGER = 16, T_BOOLEAN = 32,
       T_NULL = 64, T_ALL = 127 };

/* One schema: the types it allows and, per type, what it says more. */
typedef struct node {
    unsigned types;
    bool any_keys;             /* an object with any keys (values: any JSON) */
    size_t n_props;
    char **keys;               /* each key as a JSON string, quotes included */
    size_t *key_len;
    struct node **props;
    bool *required;
    struct node *items;        /* an array's elements; NULL: any JSON */
    size_t n_lits;             /* enum / const: the values as compact JSON */
    char **lits;
    size_t *lit_len;
    struct node *next_alloc;
} node_t;

struct slm_json_filter {
    const slm_tokenizer_t *tok;
    node_t *root, *nodes;
    int32_t n_vocab;
    const char **piece;
    size_t *piece_len;
    uint8_t *cls;              /* per token: 0 text, 1 end of generation, 2 never */
};

static node_t any_node = {.types = T_ALL, .any_keys = true};

/* ---- the parser ---- */

enum { F_ROOT, F_OBJ, F_ARR, F_STR, F_NUM, F_LIT };
enum { R_START, R_DONE };
enum { O_START, O_KEY, O_COLON, O_VALUE, O_INVAL, O_AFTER, O_NEXT };
enum { A_START, A_INVAL, A_AFTER, A_NEXT };
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

typedef struct frame {
    const node_t *n;
    uint8_t kind, st, ws, esc;
    uint16_t pi;               /* object: the first property that may still come */
    int16_t key;               /* object: the property whose value is being read */
    uint32_t pos;              /* literal: bytes matched; number: digits */
    uint64_t mask;             /* literal: the candidates still matching */
    char *const *lits;         /* literal: candidates and their lengths */
    const size_t *lens;
    bool integer;              /* number: no fraction, no exponent */
} frame_t;

struct slm__json_state {
    const slm_json_filter_t *f;
    int depth;
    frame_t stack[MAX_DEPTH + 1];
};

static char *const bool_lits[] = {"true", "false"};
static const size_t bool_lens[] = {4, 5};
static char *const null_lits[] = {"null"};
static const size_t null_lens[] = {4};

static bool is_ws(int c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static bool take_ws(frame_t *f)
{
    if (f->ws >= MAX_WS)
        return false;
    f->ws++;
    return true;
}

static frame_t *push(slm__json_state_t *s, uint8_t kind, const node_t *n)
{
    if (s->depth > MAX_DEPTH)
        return NULL;
    frame_t *f = &s->stack[s->depth++];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->n = n ? n : &any_node;
    f->key = -1;
    return f;
}

static frame_t *push_lit(slm__json_state_t *s, char *const *lits, const size_t *lens, size_t n)
{
    frame_t *f = push(s, F_LIT, NULL);
    if (f) {
        f->lits = lits;
        f->lens = lens;
        f->mask = n >= 64 ? ~0ull : (1ull << n) - 1;
    }
    return f;
}

/* The schema keys that may come next: from pi up to the first required one. */
static uint64_t key_candidates(const frame_t *f)
{
    uint64_t m = 0;
    for (size_t i = f->pi; i < f->n->n_props; i++) {
        m |= 1ull << i;
        if (f->n->required[i])
            break;
    }
    return m;
}

static bool can_close(const frame_t *f)
{
    for (size_t i = f->pi; !f->n->any_keys && i < f->n->n_props; i++)
        if (f->n->required[i])
            return false;
    return true;
}

/* A value of schema n starts with c: push its frame. Returns -1 rejected, 0 c is
 * consumed, 1 c must be fed to the new frame. */
static int start_value(slm__json_state_t *s, const node_t *n, int c)
{
    n = n ? n : &any_node;
    if (n->n_lits)
        return push_lit(s, n->lits, n->lit_len, n->n_lits) ? 1 : -1;
    if (c == '{' && (n->types & T_OBJECT))
        return push(s, F_OBJ, n) ? 0 : -1;
    if (c == '[' && (n->types & T_ARRAY))
        return push(s, F_ARR, n) ? 0 : -1;
    if (c == '"' && (n->types & T_STRING))
        return push(s, F_STR, n) ? 0 : -1;
    if ((c == '-' || (c >= '0' && c <= '9')) && (n->types & (T_NUMBER | T_INTEGER))) {
        frame_t *f = push(s, F_NUM, n);
        if (f)
            f->integer = !(n->types & T_NUMBER);
        return f ? 1 : -1;
    }
    if ((c == 't' || c == 'f') && (n->types & T_BOOLEAN))
        return push_lit(s, bool_lits, bool_lens, 2) ? 1 : -1;
    if (c == 'n' && (n->types & T_NULL))
        return push_lit(s, null_lits, null_lens, 1) ? 1 : -1;
    return -1;
}

/* The frame on top is complete: pop it; its parent moves on. matched: the literal
 * that matched, for a key. */
static void pop(slm__json_state_t *s, int matched)
{
    s->depth--;
    frame_t *p = &s->stack[s->depth - 1];
    p->ws = 0;
    switch (p->kind) {
    case F_ROOT:
        p->st = R_DONE;
        break;
    case F_OBJ:
        if (p->st == O_KEY) {
            p->key = (int16_t)matched;
            p->st = O_COLON;
        } else {
            if (!p->n->any_keys && p->key >= 0)
                p->pi = (uint16_t)(p->key + 1);
            p->st = O_AFTER;
        }
        break;
    case F_ARR:
        p->st = A_AFTER;
        break;
    }
}

/* The literal candidate matched exactly so far, or -1. */
static int exact(const frame_t *f)
{
    for (int i = 0; i < 64; i++)
        if ((f->mask >> i & 1) && f->lens[i] == f->pos)
            return i;
    return -1;
}

static bool longer(const frame_t *f)
{
    for (int i = 0; i < 64; i++)
        if ((f->mask >> i & 1) && f->lens[i] > f->pos)
            return true;
    return false;
}

/* Returns -1 rejected, 0 consumed, 1 the frame popped and c goes to its parent. */
static int feed_lit(slm__json_state_t *s, frame_t *f, int c)
{
    uint64_t m = 0;
    for (int i = 0; i < 64; i++)
        if ((f->mask >> i & 1) && f->lens[i] > f->pos &&
            (unsigned char)f->lits[i][f->pos] == (unsigned)c)
            m |= 1ull << i;
    if (!m) {
        int e = exact(f);
        if (e < 0 || f->pos == 0)
            return -1;
        pop(s, e);
        return 1;
    }
    f->mask = m;
    f->pos++;
    int e = exact(f);
    if (e >= 0 && !longer(f))
        pop(s, e);
    return 0;
}

static bool num_complete(const frame_t *f)
{
    return f->st == N_ZERO || f->st == N_INT || f->st == N_FRAC || f->st == N_EXP;
}

static int feed_num(slm__json_state_t *s, frame_t *f, int c)
{
    bool digit = c >= '0' && c <= '9';
    int next = -1;
    switch (f->st) {
    case N_START:
        next = c == '-' ? N_MINUS : c == '0' ? N_ZERO : digit ? N_INT : -1;
        break;
    case N_MINUS:
        next = c == '0' ? N_ZERO : digit ? N_INT : -1;
        break;
    case N_ZERO:
    case N_INT:
        next = digit && f->st == N_INT ? N_INT : -1;
        if (!f->integer && c == '.')
            next = N_DOT;
        if (!f->integer && (c == 'e' || c == 'E'))
            next = N_E;
        break;
    case N_DOT:
    case N_FRAC:
        next = digit ? N_FRAC : f->st == N_FRAC && (c == 'e' || c == 'E') ? N_E : -1;
        break;
    case N_E:
        next = c == '+' || c == '-' ? N_ESIGN : digit ? N_EXP : -1;
        break;
    default:
        next = digit ? N_EXP : -1;
        break;
    }
    if (next >= 0 && (!digit || ++f->pos <= MAX_DIGITS)) {
        f->st = (uint8_t)next;
        return 0;
    }
    if (next >= 0 || !num_complete(f))
        return -1;
    pop(s, -1);
    return 1;
}

static int feed_str(slm__json_state_t *s, frame_t *f, int c)
{
    if (f->esc == 1) {
        if (!strchr("\"\\/bfnrtu", c) || c == 0)
            return -1;
        f->esc = c == 'u' ? 2 : 0;
        return 0;
    }
    if (f->esc >= 2) {
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex)
            return -1;
        f->esc = f->esc == 5 ? 0 : f->esc + 1;
        return 0;
    }
    if (c < 0x20)
        return -1;
    if (c == '\\')
        f->esc = 1;
    else if (c == '"')
        pop(s, -1);
    return 0;
}

/* A key starts with c ('"'): any string, or one of the schema's keys. */
static int start_key(slm__json_state_t *s, frame_t *f)
{
    const node_t *n = f->n;
    uint64_t m = n->any_keys ? 0 : key_candidates(f);
    if (!n->any_keys && !m)
        return -1;
    f->st = O_KEY;
    if (n->any_keys)
        return push(s, F_STR, NULL) ? 0 : -1;
    frame_t *k = push_lit(s, n->keys, n->key_len, n->n_props);
    if (!k)
        return -1;
    k->mask = m;
    return 1;
}

static int feed_obj(slm__json_state_t *s, frame_t *f, int c)
{
    if (is_ws(c) && f->st != O_KEY && f->st != O_INVAL)
        return take_ws(f) ? 0 : -1;
    f->ws = 0;
    switch (f->st) {
    case O_START:
    case O_NEXT:
        if (c == '"')
            return start_key(s, f);
        if (c == '}' && f->st == O_START && can_close(f)) {
            pop(s, -1);
            return 0;
        }
        return -1;
    case O_COLON:
        if (c != ':')
            return -1;
        f->st = O_VALUE;
        return 0;
    case O_VALUE: {
        const node_t *v = f->n->any_keys ? NULL : f->n->props[f->key];
        f->st = O_INVAL;
        int r = start_value(s, v, c);
        if (r < 0)
            f->st = O_VALUE;
        return r;
    }
    case O_AFTER:
        if (c == ',' && (f->n->any_keys || key_candidates(f))) {
            f->st = O_NEXT;
            return 0;
        }
        if (c == '}' && can_close(f)) {
            pop(s, -1);
            return 0;
        }
        return -1;
    default:
        return -1;
    }
}

static int feed_arr(slm__json_state_t *s, frame_t *f, int c)
{
    if (is_ws(c))
        return take_ws(f) ? 0 : -1;
    f->ws = 0;
    if (f->st == A_AFTER) {
        if (c == ',') {
            f->st = A_NEXT;
            return 0;
        }
        if (c != ']')
            return -1;
        pop(s, -1);
        return 0;
    }
    if (c == ']' && f->st == A_START) {
        pop(s, -1);
        return 0;
    }
    f->st = A_INVAL;
    int r = start_value(s, f->n->items, c);
    if (r < 0)
        f->st = A_NEXT;
    return r;
}

static bool feed(slm__json_state_t *s, int c)
{
    for (;;) {
        frame_t *f = &s->stack[s->depth - 1];
        int r;
        switch (f->kind) {
        case F_ROOT:
            if (f->st == R_DONE)
                return false;
            if (is_ws(c))
                return take_ws(f);
            r = start_value(s, f->n, c);
            break;
        case F_OBJ:
            r = feed_obj(s, f, c);
            break;
        case F_ARR:
            r = feed_arr(s, f, c);
            break;
        case F_STR:
            r = feed_str(s, f, c);
            break;
        case F_NUM:
            r = feed_num(s, f, c);
            break;
        default:
            r = feed_lit(s, f, c);
            break;
        }
        if (r <= 0)
            return r == 0;
    }
}

/* Whether the text so far is a whole value (a number or literal at the end is
 * closed as the end of the text would close it). */
static bool complete(const slm__json_state_t *st)
{
    slm__json_state_t s;
    s.f = st->f;
    s.depth = st->depth;
    memcpy(s.stack, st->stack, (size_t)st->depth * sizeof *s.stack);
    while (s.depth > 1) {
        frame_t *f = &s.stack[s.depth - 1];
        int e = f->kind == F_LIT ? exact(f) : -1;
        if (f->kind == F_NUM && num_complete(f))
            pop(&s, -1);
        else if (e >= 0 && f->pos > 0)
            pop(&s, e);
        else
            return false;
    }
    return s.stack[0].st == R_DONE;
}

static void state_reset(slm__json_state_t *s, const slm_json_filter_t *f)
{
    s->f = f;
    s->depth = 1;
    memset(&s->stack[0], 0, sizeof s->stack[0]);
    s->stack[0].kind = F_ROOT;
    s->stack[0].n = f->root;
}

/* ---- the state a sequence keeps ---- */

slm__json_state_t *slm__json_state_new(const slm_json_filter_t *f)
{
    slm__json_state_t *s = f ? malloc(sizeof *s) : NULL;
    if (s)
        state_reset(s, f);
    return s;
}

void slm__json_state_free(slm__json_state_t *s)
{
    free(s);
}

static bool try_bytes(const slm__json_state_t *st, slm__json_state_t *tmp, const char *p,
                      size_t n)
{
    tmp->f = st->f;
    tmp->depth = st->depth;
    memcpy(tmp->stack, st->stack, (size_t)st->depth * sizeof *tmp->stack);
    for (size_t i = 0; i < n; i++)
        if (!feed(tmp, (unsigned char)p[i]))
            return false;
    return true;
}

size_t slm__json_mask(const slm__json_state_t *st, float *logits, int32_t n_vocab)
{
    const slm_json_filter_t *f = st->f;
    slm__json_state_t tmp;
    bool end = complete(st);
    size_t n_ok = 0;
    for (int32_t t = 0; t < n_vocab; t++) {
        bool ok = false;
        if (t < f->n_vocab && f->cls[t] == 1)
            ok = end;
        else if (t < f->n_vocab && f->cls[t] == 0 && logits[t] > -INFINITY)
            ok = try_bytes(st, &tmp, f->piece[t], f->piece_len[t]);
        if (!ok)
            logits[t] = -INFINITY;
        n_ok += ok;
    }
    return n_ok;
}

bool slm__json_accept(slm__json_state_t *st, int32_t tok)
{
    const slm_json_filter_t *f = st->f;
    if (tok < 0 || tok >= f->n_vocab || f->cls[tok] != 0)
        return f->cls[tok] == 1 && complete(st);
    slm__json_state_t tmp;
    if (!try_bytes(st, &tmp, f->piece[tok], f->piece_len[tok]))
        return false;
    st->depth = tmp.depth;
    memcpy(st->stack, tmp.stack, (size_t)tmp.depth * sizeof *st->stack);
    return true;
}

bool slm__json_done(const slm__json_state_t *st)
{
    return st->depth == 1 && st->stack[0].st == R_DONE;
}

int slm_json_filter_check(const slm_json_filter_t *f, const char *text, size_t len)
{
    if (!f || (!text && len))
        return SLM_JSON_REJECTED;
    slm__json_state_t s, tmp;
    state_reset(&s, f);
    if (!try_bytes(&s, &tmp, text, len))
        return SLM_JSON_REJECTED;
    return complete(&tmp) ? SLM_JSON_COMPLETE : SLM_JSON_PREFIX;
}

/* ---- compiling a schema ---- */

typedef struct compiler {
    slm_json_filter_t *f;
    slm_error_t *err;
    int rc;
} compiler_t;

static node_t *new_node(compiler_t *c)
{
    node_t *n = calloc(1, sizeof *n);
    if (!n) {
        c->rc = slm__fail(c->err, SLM_E_NOMEM, NULL, -1, "json schema: out of memory");
        return NULL;
    }
    n->next_alloc = c->f->nodes;
    c->f->nodes = n;
    return n;
}

static void free_node(node_t *n)
{
    for (size_t i = 0; i < n->n_props; i++)
        free(n->keys[i]);
    for (size_t i = 0; i < n->n_lits; i++)
        free(n->lits[i]);
    free(n->keys);
    free(n->key_len);
    free(n->props);
    free(n->required);
    free(n->lits);
    free(n->lit_len);
    free(n);
}

static bool refuse(compiler_t *c, const char *fmt, const char *what)
{
    c->rc = slm__fail(c->err, SLM_E_UNSUPPORTED, NULL, -1, fmt, what);
    return false;
}

static unsigned type_bit(const char *t)
{
    static const char *const names[] = {"object", "array", "string", "number", "integer",
                                        "boolean", "null"};
    for (unsigned i = 0; i < 7; i++)
        if (strcmp(t, names[i]) == 0)
            return 1u << i;
    return 0;
}

static bool compile_type(compiler_t *c, node_t *n, json_t *t)
{
    if (json_is_string(t)) {
        n->types = type_bit(json_string_value(t));
        return n->types || refuse(c, "json schema: type '%s' is not supported",
                                  json_string_value(t));
    }
    if (!json_is_array(t) || json_array_size(t) == 0)
        return refuse(c, "json schema: %s must be a type name or an array of them", "'type'");
    size_t i;
    json_t *v;
    n->types = 0;
    json_array_foreach(t, i, v) {
        unsigned b = json_is_string(v) ? type_bit(json_string_value(v)) : 0;
        if (!b)
            return refuse(c, "json schema: %s holds something that is not a type name",
                          "'type'");
        n->types |= b;
    }
    if ((n->types & T_OBJECT) && (n->types & T_ARRAY))
        return refuse(c, "json schema: %s may not allow both object and array", "'type'");
    return true;
}

static bool add_lit(compiler_t *c, node_t *n, json_t *v)
{
    if (n->n_lits >= MAX_CHOICES)
        return refuse(c, "json schema: %s has more than 64 values", "'enum'");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (!s) {
        c->rc = slm__fail(c->err, SLM_E_NOMEM, NULL, -1, "json schema: out of memory");
        return false;
    }
    n->lits[n->n_lits] = s;
    n->lit_len[n->n_lits++] = strlen(s);
    return true;
}

static bool compile_enum(compiler_t *c, node_t *n, json_t *e, bool is_const)
{
    if (!is_const && (!json_is_array(e) || json_array_size(e) == 0))
        return refuse(c, "json schema: %s must be a non-empty array", "'enum'");
    n->lits = calloc(MAX_CHOICES, sizeof *n->lits);
    n->lit_len = calloc(MAX_CHOICES, sizeof *n->lit_len);
    if (!n->lits || !n->lit_len) {
        c->rc = slm__fail(c->err, SLM_E_NOMEM, NULL, -1, "json schema: out of memory");
        return false;
    }
    if (is_const)
        return add_lit(c, n, e);
    size_t i;
    json_t *v;
    json_array_foreach(e, i, v) {
        if (!add_lit(c, n, v))
            return false;
    }
    return true;
}

static node_t *compile(compiler_t *c, json_t *s, int depth);

static bool compile_props(compiler_t *c, node_t *n, json_t *props, json_t *req, int depth)
{
    if (!json_is_object(props))
        return refuse(c, "json schema: %s must be an object", "'properties'");
    size_t np = json_object_size(props);
    if (np > MAX_CHOICES)
        return refuse(c, "json schema: %s has more than 64 keys", "'properties'");
    if (req && !json_is_array(req))
        return refuse(c, "json schema: %s must be an array of key names", "'required'");
    n->keys = calloc(np + 1, sizeof *n->keys);
    n->key_len = calloc(np + 1, sizeof *n->key_len);
    n->props = calloc(np + 1, sizeof *n->props);
    n->required = calloc(np + 1, sizeof *n->required);
    if (!n->keys || !n->key_len || !n->props || !n->required) {
        c->rc = slm__fail(c->err, SLM_E_NOMEM, NULL, -1, "json schema: out of memory");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v) {
        json_t *ks = json_string(k);
        char *q = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        size_t i = n->n_props;
        if (!q || !(n->props[i] = compile(c, v, depth + 1))) {
            free(q);
            return false;
        }
        n->keys[i] = q;
        n->key_len[i] = strlen(q);
        n->n_props++;
    }
    size_t i;
    json_array_foreach(req, i, v) {
        size_t j = 0;
        const char *name = json_is_string(v) ? json_string_value(v) : NULL;
        json_object_foreach(props, k, v) {
            if (name && strcmp(k, name) == 0)
                break;
            j++;
        }
        if (j == n->n_props)
            return refuse(c, "json schema: 'required' names '%.64s', which is not in "
                          "'properties'", name ? name : "(not a string)");
        n->required[j] = true;
    }
    return true;
}

static const char *const known_keys[] = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "title", "description", "$schema", "default", "examples", NULL};

static node_t *compile(compiler_t *c, json_t *s, int depth)
{
    if (depth > MAX_DEPTH) {
        refuse(c, "json schema: %s", "nested more than 32 levels");
        return NULL;
    }
    if (json_is_true(s))
        return &any_node;
    if (!json_is_object(s)) {
        refuse(c, "json schema: %s must be an object", "a schema");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        size_t i = 0;
        while (known_keys[i] && strcmp(known_keys[i], k) != 0)
            i++;
        if (!known_keys[i]) {
            refuse(c, "json schema: the keyword '%s' is not supported", k);
            return NULL;
        }
    }
    node_t *n = new_node(c);
    if (!n)
        return NULL;
    n->types = T_ALL;
    json_t *t = json_object_get(s, "type"), *props = json_object_get(s, "properties");
    json_t *ap = json_object_get(s, "additionalProperties"), *items = json_object_get(s, "items");
    json_t *e = json_object_get(s, "enum"), *cst = json_object_get(s, "const");
    if (t && !compile_type(c, n, t))
        return NULL;
    if (ap && !json_is_false(ap)) {
        refuse(c, "json schema: %s is supported only as false", "'additionalProperties'");
        return NULL;
    }
    n->any_keys = !props;
    if (props && !compile_props(c, n, props, json_object_get(s, "required"), depth))
        return NULL;
    if (!props && json_object_get(s, "required")) {
        refuse(c, "json schema: %s needs 'properties'", "'required'");
        return NULL;
    }
    if (items && !(n->items = compile(c, items, depth + 1)))
        return NULL;
    if ((e || cst) && !compile_enum(c, n, e ? e : cst, !e))
        return NULL;
    return n;
}

static int tokens(slm_json_filter_t *f, slm_error_t *err)
{
    size_t nv = slm_tokenizer_n_vocab(f->tok);
    f->n_vocab = (int32_t)nv;
    f->piece = calloc(nv ? nv : 1, sizeof *f->piece);
    f->piece_len = calloc(nv ? nv : 1, sizeof *f->piece_len);
    f->cls = calloc(nv ? nv : 1, 1);
    if (!f->piece || !f->piece_len || !f->cls)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "json filter: out of memory");
    for (size_t t = 0; t < nv; t++) {
        int32_t id = (int32_t)t;
        f->piece[t] = slm_tokenizer_piece(f->tok, id, &f->piece_len[t]);
        unsigned attr = slm_tokenizer_token_attr(f->tok, id);
        if (slm_tokenizer_is_eog(f->tok, id))
            f->cls[t] = 1;
        else if ((attr & SLM_TOKEN_ATTR_CONTROL) || !f->piece[t] || !f->piece_len[t])
            f->cls[t] = 2;
    }
    return SLM_OK;
}

int slm_json_filter_new(const slm_tokenizer_t *tok, const char *schema, size_t len,
                        slm_json_filter_t **out, slm_error_t *err)
{
    if (!tok || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "json filter: NULL argument");
    *out = NULL;
    slm_json_filter_t *f = calloc(1, sizeof *f);
    if (!f)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "json filter: out of memory");
    f->tok = tok;
    compiler_t c = {.f = f, .err = err};
    if (!schema) {
        f->root = new_node(&c);
        if (f->root) {
            f->root->types = T_OBJECT;
            f->root->any_keys = true;
        }
    } else {
        json_error_t je;
        json_t *doc = json_loadb(schema, len, JSON_REJECT_DUPLICATES, &je);
        if (!doc)
            c.rc = slm__fail(err, SLM_E_INVALID, NULL, -1, "json schema: not valid JSON: %s",
                             je.text);
        else
            f->root = compile(&c, doc, 0);
        json_decref(doc);
    }
    int rc = c.rc ? c.rc : f->root ? tokens(f, err) : SLM_E_INVALID;
    if (rc != SLM_OK) {
        slm_json_filter_free(f);
        return rc;
    }
    *out = f;
    return SLM_OK;
}

void slm_json_filter_free(slm_json_filter_t *f)
{
    if (!f)
        return;
    for (node_t *n = f->nodes, *next; n; n = next) {
        next = n->next_alloc;
        free_node(n);
    }
    free(f->piece);
    free(f->piece_len);
    free(f->cls);
    free(f);
}

/* Inside the Jinja engine that renders chat templates: values, the syntax tree, and
 * the calls the lexer, parser, evaluator, filters, methods and JSON files share. */
#ifndef SLMOPS_CHAT_JINJA_H
#define SLMOPS_CHAT_JINJA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Bounds that keep a hostile or looping template finite; each one that is hit
 * ends the render with an error that names it. */
#define JJ_MAX_SOURCE     (4u << 20)     /* bytes of template source */
#define JJ_MAX_STRING     (16u << 20)    /* bytes of any string, the output included */
#define JJ_MAX_ITEMS      (1u << 20)     /* items of one list or dict */
#define JJ_MAX_ALLOC      (1ull << 30)   /* bytes allocated by one render, in all, and */
#define JJ_MAX_STEPS      50000000ull    /* nodes evaluated and loop turns, each plus */
#define JJ_PER_INPUT_BYTE 1000u          /* this much per byte of the variables (a long
                                          * conversation may take a template long) */
#define JJ_MAX_CALL_DEPTH 200            /* nested macro calls */
#define JJ_MAX_NEST       500            /* nesting of statements and expressions */
#define JJ_MAX_VALUE_DEPTH 500           /* nesting of lists/dicts printed, compared, dumped */

/* ---- values ---- */

typedef enum jj_type {
    JJ_UNDEF,      /* jinja2's Undefined; u.o is NULL or a string saying why */
    JJ_NONE,
    JJ_BOOL,
    JJ_INT,
    JJ_FLOAT,
    JJ_STR,
    JJ_LIST,
    JJ_TUPLE,
    JJ_DICT,
    JJ_NS,         /* namespace(): the one mutable object */
    JJ_FUNC,       /* built-in function, bound method, macro, caller */
    JJ_LOOP,       /* the `loop` variable of a for loop */
    JJ_ITER        /* what Python gives as an iterator or a view (map(), reversed(),
                    * dict.items()): iterable, but no list (a jj_list_t inside) */
} jj_type_t;

/* Kinds of JJ_ITER: they differ in truth, len(), reversed() and their name. */
enum {
    JJ_ITER_GENERATOR, JJ_ITER_REVERSED,
    JJ_ITER_ITEMS, JJ_ITER_KEYS, JJ_ITER_VALUES, JJ_ITER_RANGE   /* these have a len() */
};

/* Every heap value starts with this. refs == JJ_IMMORTAL: owned by a parsed
 * template (constants), never counted, so templates render from many threads. */
typedef struct jj_obj {
    uint32_t refs;
} jj_obj_t;
#define JJ_IMMORTAL UINT32_MAX

typedef struct jj_value {
    jj_type_t type;
    union {
        bool b;
        int64_t i;
        double f;
        jj_obj_t *o;
    } u;
} jj_value_t;

typedef struct jj_str {
    jj_obj_t h;
    bool markup;           /* markupsafe's Markup (from |safe, |escape): + escapes the other side */
    size_t len;
    size_t n_cp;           /* code points, SIZE_MAX until counted */
    char s[];              /* NUL-terminated UTF-8 */
} jj_str_t;

typedef struct jj_list {   /* lists, tuples and iterators */
    jj_obj_t h;
    uint32_t depth;        /* 1 + the deepest list/tuple/dict inside */
    uint8_t iter;          /* JJ_ITER: its JJ_ITER_* kind */
    int64_t range[3];      /* JJ_ITER_RANGE: start, stop, step */
    size_t n, cap;
    jj_value_t *v;
} jj_list_t;

typedef struct jj_dict {   /* dicts and namespaces: insertion-ordered */
    jj_obj_t h;
    uint32_t depth;
    size_t n, cap;
    jj_value_t *k, *v;
} jj_dict_t;

struct jj_ctx;
struct jj_node;
struct jj_scope;

/* A built-in: self is the bound object (a method's str, list, dict) or undefined. */
typedef bool (*jj_builtin_fn)(struct jj_ctx *c, const struct jj_node *at, jj_value_t self,
                              const jj_value_t *args, size_t n_args, const char *const *kw_names,
                              const jj_value_t *kw_vals, size_t n_kw, jj_value_t *out);

enum { JJ_FN_BUILTIN, JJ_FN_MACRO, JJ_FN_CALLER };

typedef struct jj_func {
    jj_obj_t h;
    int kind;
    const char *name;
    jj_builtin_fn fn;               /* JJ_FN_BUILTIN */
    jj_value_t self;
    const struct jj_node *node;     /* JJ_FN_MACRO / JJ_FN_CALLER: the definition */
    struct jj_scope *scope;         /* where it was defined */
} jj_func_t;

typedef struct jj_loop {
    jj_obj_t h;
    jj_value_t items;               /* a list */
    size_t index0;
    int64_t depth;
    jj_value_t changed_last;        /* loop.changed's memory */
} jj_loop_t;

static inline jj_value_t jj_undef(void) { return (jj_value_t){.type = JJ_UNDEF}; }
static inline jj_value_t jj_none(void) { return (jj_value_t){.type = JJ_NONE}; }
static inline jj_value_t jj_bool(bool b) { return (jj_value_t){.type = JJ_BOOL, .u.b = b}; }
static inline jj_value_t jj_int(int64_t i) { return (jj_value_t){.type = JJ_INT, .u.i = i}; }
static inline jj_value_t jj_float(double f) { return (jj_value_t){.type = JJ_FLOAT, .u.f = f}; }
static inline jj_str_t *jj_as_str(jj_value_t v) { return (jj_str_t *)v.u.o; }
static inline jj_list_t *jj_as_list(jj_value_t v) { return (jj_list_t *)v.u.o; }
static inline jj_dict_t *jj_as_dict(jj_value_t v) { return (jj_dict_t *)v.u.o; }
static inline jj_func_t *jj_as_func(jj_value_t v) { return (jj_func_t *)v.u.o; }
static inline jj_loop_t *jj_as_loop(jj_value_t v) { return (jj_loop_t *)v.u.o; }
static inline bool jj_is_seq(jj_value_t v) { return v.type == JJ_LIST || v.type == JJ_TUPLE; }
/* Lists, tuples and iterators: what has items in a jj_list_t. */
static inline bool jj_has_items(jj_value_t v) { return jj_is_seq(v) || v.type == JJ_ITER; }
static inline bool jj_is_view(jj_value_t v)
{
    return v.type == JJ_ITER && jj_as_list(v)->iter >= JJ_ITER_ITEMS;
}
static inline bool jj_is_num(jj_value_t v)
{
    return v.type == JJ_INT || v.type == JJ_FLOAT || v.type == JJ_BOOL;
}

/* ---- the syntax tree ---- */

typedef struct jj_pos {
    uint32_t line, col, off;
} jj_pos_t;

typedef enum jj_kind {
    /* statements */
    JN_BODY, JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_BLOCK, JN_MACRO, JN_CALL_BLOCK,
    JN_FILTER_BLOCK, JN_WITH, JN_BREAK, JN_CONTINUE,
    /* expressions */
    JN_CONST, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL,
    JN_FILTER, JN_TEST, JN_NEG, JN_POS, JN_NOT, JN_AND, JN_OR, JN_BINOP, JN_COMPARE, JN_COND
} jj_kind_t;

/* Binary and comparison operators. */
enum {
    JJ_OP_ADD, JJ_OP_SUB, JJ_OP_MUL, JJ_OP_DIV, JJ_OP_FLOORDIV, JJ_OP_MOD, JJ_OP_POW,
    JJ_OP_CONCAT, JJ_OP_EQ, JJ_OP_NE, JJ_OP_LT, JJ_OP_LE, JJ_OP_GT, JJ_OP_GE, JJ_OP_IN,
    JJ_OP_NOTIN
};

/* One node shape for all kinds; which fields a kind uses is said beside each. */
typedef struct jj_node {
    jj_kind_t kind;
    int op;                       /* BINOP; FILTER/TEST: index in their table */
    jj_pos_t pos;
    const char *name;             /* NAME, ATTR, FILTER, TEST, MACRO; SET: attribute */
    jj_value_t value;             /* CONST, TEXT (an immortal string) */
    struct jj_node *a, *b, *c, *d;  /* operands; IF: cond/then/else; FOR: iter/body/else/cond */
    struct jj_node **kids;        /* BODY statements, LIST/TUPLE/DICT items, CALL args,
                                   * COMPARE operands, MACRO defaults (NULL: none) */
    size_t n_kids;
    struct jj_node **kids2;       /* DICT values, CALL keyword values, WITH values */
    const char **names;           /* FOR/SET/WITH targets, MACRO params, CALL keywords */
    size_t n_names;
    int *ops;                     /* COMPARE operators */
    bool flag;                    /* TEST: negated; FOR/SET: tuple target;
                                   * MACRO: uses varargs; COND: has else */
    bool flag2;                   /* MACRO: uses kwargs; SET: namespace attribute */
} jj_node_t;

/* A parsed template: the tree and the arena that holds it. */
typedef struct jj_arena_chunk jj_arena_chunk_t;
typedef struct jj_template {
    jj_node_t *root;
    jj_arena_chunk_t *chunks;
    const char *source;           /* normalised copy, in the arena */
} jj_template_t;

/* ---- errors (the first one wins) ---- */

typedef struct jj_error {
    bool set;
    bool raised;                  /* raise_exception(): message verbatim */
    int code;                     /* an slm_status_t */
    jj_pos_t pos;
    char msg[480];
} jj_error_t;

void slm__jj_error_set(jj_error_t *e, int code, jj_pos_t pos, const char *fmt, va_list ap);
void slm__jj_error_setf(jj_error_t *e, int code, jj_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- parsing ---- */

void *slm__jj_arena_alloc(jj_template_t *t, size_t n);
/* Parse source into t (zeroed by the caller); false with e set on error. */
bool slm__jj_parse(jj_template_t *t, const char *source, size_t len, jj_error_t *e);
void slm__jj_template_clear(jj_template_t *t);

/* Tokens of the lexer, handed to the parser. */
typedef enum jj_tok_kind {
    JT_EOF, JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END, JT_NAME,
    JT_STRING, JT_INT, JT_FLOAT, JT_OP
} jj_tok_kind_t;

typedef struct jj_token {
    jj_tok_kind_t kind;
    jj_pos_t pos;
    const char *s;                /* TEXT/NAME/STRING (decoded)/OP text, NUL-terminated */
    size_t len;
    int64_t i;
    double f;
} jj_token_t;

/* Tokenise a normalised source (trim_blocks, lstrip_blocks, '-' and '+' marks,
 * comments and raw blocks handled here); tokens live in t's arena. */
bool slm__jj_lex(jj_template_t *t, const char *src, size_t len, jj_token_t **toks,
                 size_t *n_toks, jj_error_t *e);

/* ---- rendering ---- */

typedef struct jj_buf {
    char *s;
    size_t len, cap;
} jj_buf_t;

typedef struct jj_var {
    const char *name;
    jj_value_t v;
} jj_var_t;

typedef struct jj_scope {
    uint32_t refs;
    struct jj_scope *parent;
    jj_var_t *vars;
    size_t n, cap;
} jj_scope_t;

typedef struct jj_ctx {
    const jj_template_t *tpl;
    jj_error_t *err;
    jj_scope_t *scope;            /* innermost */
    jj_buf_t *out;                /* where text goes now */
    int64_t now;                  /* strftime_now's time */
    uint64_t steps, alloc;
    uint64_t max_steps, max_alloc;
    int depth, call_depth, loop_depth;
    int brk;                      /* 1: break, 2: continue pending */
    jj_value_t *mutables;         /* namespaces made: emptied at the end (cycles) */
    size_t n_mut, cap_mut;
} jj_ctx_t;

/* Render t with each member of the JSON object vars as a variable; *out is malloc'd. */
bool slm__jj_render(const jj_template_t *t, const json_t *vars, int64_t now, char **out,
                    size_t *out_len, jj_error_t *e);

/* Set the error at node `at` (NULL: no position); returns false. */
bool slm__jj_fail(jj_ctx_t *c, const jj_node_t *at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Count bytes against the render's allocation bound; false with the error set when over. */
bool slm__jj_charge(jj_ctx_t *c, const jj_node_t *at, size_t bytes);

/* ---- values (jinja-value.c) ---- */

jj_value_t slm__jj_ref(jj_value_t v);
void slm__jj_scope_unref(jj_scope_t *s);
void slm__jj_unref(jj_value_t v);
/* New objects; NULL/undefined with the error set on failure (c may be NULL at parse
 * time: then no accounting and no error). */
jj_str_t *slm__jj_str_new(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len);
bool slm__jj_str(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len, jj_value_t *out);
bool slm__jj_str_take(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, jj_value_t *out);
jj_value_t slm__jj_undef_msg(jj_ctx_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool slm__jj_list_new(jj_ctx_t *c, const jj_node_t *at, jj_type_t type, size_t cap,
                      jj_value_t *out);
/* An empty JJ_ITER of kind `kind`. */
bool slm__jj_iter_new(jj_ctx_t *c, const jj_node_t *at, int kind, jj_value_t *out);
/* Appends v (the reference is taken over, also on failure). */
bool slm__jj_list_push(jj_ctx_t *c, const jj_node_t *at, jj_value_t list, jj_value_t v);
bool slm__jj_dict_new(jj_ctx_t *c, const jj_node_t *at, jj_type_t type, jj_value_t *out);
/* Sets key to v (both references taken over). */
bool slm__jj_dict_set(jj_ctx_t *c, const jj_node_t *at, jj_value_t dict, jj_value_t key,
                      jj_value_t v);
/* Borrowed value of key, or NULL. */
jj_value_t *slm__jj_dict_get(jj_value_t dict, jj_value_t key);
jj_value_t *slm__jj_dict_get_str(jj_value_t dict, const char *key);
bool slm__jj_func_new(jj_ctx_t *c, const jj_node_t *at, int kind, const char *name,
                      jj_value_t *out, jj_func_t **f);
void slm__jj_mutable_add(jj_ctx_t *c, jj_value_t v);

bool slm__jj_truthy(jj_value_t v);
/* Python's ==; false when too deep. */
bool slm__jj_equal(jj_value_t a, jj_value_t b);
/* Python's < etc.: -1/0/1 into *cmp, false with the error set for unorderable types. */
bool slm__jj_compare(jj_ctx_t *c, const jj_node_t *at, jj_value_t a, jj_value_t b, int *cmp);
/* Whether Python could hash v (a dict key, a set member); false with TypeError set. */
bool slm__jj_hashable(jj_ctx_t *c, const jj_node_t *at, jj_value_t v);
/* Python's type name ("str", "NoneType", ...) and jinja2's object description
 * ("dict object", "None"). */
const char *slm__jj_type_name(jj_value_t v);
const char *slm__jj_object_name(jj_value_t v);
/* str(v) / repr(v) appended to b. */
bool slm__jj_to_str(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_buf_t *b);
bool slm__jj_repr(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_buf_t *b);
/* str(v) as a value (a string is returned as is, with a new reference). */
bool slm__jj_stringify(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_value_t *out);
/* The text of a float as Python's repr writes it. */
void slm__jj_float_repr(double f, char buf[40]);
/* Fails with the undefined value's message (UndefinedError). */
bool slm__jj_undefined_error(jj_ctx_t *c, const jj_node_t *at, jj_value_t v);
/* Items of a list, tuple, dict (keys), string (characters) or undefined (none) as a
 * new list; TypeError for others. */
bool slm__jj_iterate(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, jj_value_t *list);
/* len(); false with TypeError when it has none. */
bool slm__jj_length(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, int64_t *n);

bool slm__jj_buf_put(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const char *s, size_t n);
bool slm__jj_buf_putc(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, char ch);
bool slm__jj_buf_printf(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- strings (jinja-str.c): UTF-8 with Python's Unicode rules ---- */

size_t slm__jj_utf8_decode(const char *s, size_t len, uint32_t *cp);
size_t slm__jj_utf8_encode(uint32_t cp, char out[4]);
size_t slm__jj_str_ncp(jj_str_t *s);
/* Byte offset of code point index i (clamped to len). */
size_t slm__jj_str_offset(const jj_str_t *s, size_t i);
bool slm__jj_py_isspace(uint32_t cp);
uint32_t slm__jj_upper(uint32_t cp);
uint32_t slm__jj_lower(uint32_t cp);
bool slm__jj_is_alpha(uint32_t cp);
bool slm__jj_is_digit(uint32_t cp);
bool slm__jj_is_alnum(uint32_t cp);
bool slm__jj_is_printable(uint32_t cp);
bool slm__jj_is_cased_upper(uint32_t cp);
bool slm__jj_is_cased_lower(uint32_t cp);
/* Case mappings of a whole string into b: 'u'pper, 'l'ower, 'c'apitalize,
 * 't'itle (Python's str.title), 's'wapcase. */
bool slm__jj_case(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len, char how,
                  jj_buf_t *b);
/* Python's str.strip family: chars NULL strips whitespace; which: 1 left, 2 right, 3 both. */
void slm__jj_strip(const char *s, size_t len, const char *chars, size_t n_chars, int which,
                   size_t *start, size_t *end);
/* Python's str.splitlines (without the ends) into a new list. */
bool slm__jj_splitlines(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                        jj_value_t *out);
/* str.split / rsplit: sep NULL splits on runs of whitespace. */
bool slm__jj_split(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len, const char *sep,
                   size_t sep_len, int64_t maxsplit, bool right, jj_value_t *out);
bool slm__jj_replace(jj_ctx_t *c, const jj_node_t *at, jj_str_t *s, jj_str_t *old,
                     jj_str_t *new_, int64_t count, jj_value_t *out);
/* markupsafe's escape: & < > " ' as entities, appended to b. */
bool slm__jj_html_escape(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                         jj_buf_t *b);

/* ---- filters, tests, methods and globals ---- */

typedef struct jj_call_args {
    const jj_value_t *pos;
    size_t n_pos;
    const char *const *kw_names;
    const jj_value_t *kw_vals;
    size_t n_kw;
} jj_call_args_t;

/* Index of a filter / test in its table: -1 unknown to jinja2 (a parse error),
 * -2 known to jinja2 but not supported here (an error when it runs). */
int slm__jj_filter_find(const char *name);
int slm__jj_test_find(const char *name);
bool slm__jj_filter_apply(jj_ctx_t *c, const jj_node_t *at, int id, jj_value_t v,
                          const jj_call_args_t *a, jj_value_t *out);
bool slm__jj_test_apply(jj_ctx_t *c, const jj_node_t *at, int id, jj_value_t v,
                        const jj_call_args_t *a, bool *result);
/* A test or filter by name at run time (select, map): false with the error set. */
bool slm__jj_filter_by_name(jj_ctx_t *c, const jj_node_t *at, const char *name, jj_value_t v,
                            const jj_call_args_t *a, jj_value_t *out);
bool slm__jj_test_by_name(jj_ctx_t *c, const jj_node_t *at, const char *name, jj_value_t v,
                          const jj_call_args_t *a, bool *result);

/* Python attribute `name` of v (a str/list/dict method, a loop or namespace
 * attribute): true with *out set when there is one, false with *out undefined
 * when there is none; errors (an unsafe or unsupported method) set c's error
 * and return false with *found = true. */
bool slm__jj_attribute(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const char *name,
                       jj_value_t *out, bool *found);
/* The global functions: range, dict, namespace, raise_exception, strftime_now,
 * cycler, joiner. */
bool slm__jj_globals(jj_ctx_t *c, jj_scope_t *scope);
/* Call a function value. */
bool slm__jj_call(jj_ctx_t *c, const jj_node_t *at, jj_value_t fn, const jj_call_args_t *a,
                  jj_value_t *out);
/* Reads keyword `name` or positional `i` of a built-in's arguments; *v borrowed. */
bool slm__jj_arg(const jj_call_args_t *a, size_t i, const char *name, jj_value_t *v);
/* Fails with "unexpected keyword argument" for a keyword not in `allowed`
 * (NULL-terminated) or more than max_pos positional arguments. */
bool slm__jj_args_check(jj_ctx_t *c, const jj_node_t *at, const char *what,
                        const jj_call_args_t *a, size_t max_pos, const char *const *allowed);

/* Getattr and getitem as jinja2's sandboxed environment does them. */
bool slm__jj_getattr(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, const char *name,
                     jj_value_t *out);
bool slm__jj_getitem(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, jj_value_t key,
                     jj_value_t *out);
bool slm__jj_slice(jj_ctx_t *c, const jj_node_t *at, jj_value_t obj, const jj_value_t *start,
                   const jj_value_t *stop, const jj_value_t *step, jj_value_t *out);
/* Binary operators (arithmetic, ~, comparisons, in). */
bool slm__jj_binop(jj_ctx_t *c, const jj_node_t *at, int op, jj_value_t a, jj_value_t b,
                   jj_value_t *out);
/* Python's fmt % args (args: a tuple, a dict for %(name)s, or one value). */
bool slm__jj_percent_format(jj_ctx_t *c, const jj_node_t *at, jj_str_t *fmt, jj_value_t args,
                            jj_value_t *out);
/* Python's "x in y". */
bool slm__jj_contains(jj_ctx_t *c, const jj_node_t *at, jj_value_t container, jj_value_t x,
                      bool *in);

/* ---- JSON (jinja-json.c) ---- */

/* A jansson value as a template value. */
bool slm__jj_from_json(jj_ctx_t *c, const json_t *j, jj_value_t *out, int depth);
/* Python's json.dumps(v, ensure_ascii, indent, separators, sort_keys); indent NULL: none. */
typedef struct jj_json_opts {
    bool ensure_ascii, sort_keys;
    const char *indent;           /* NULL: one line */
    size_t indent_len;
    const char *item_sep, *key_sep;
} jj_json_opts_t;
bool slm__jj_tojson(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_json_opts_t *o,
                    jj_buf_t *b);

#endif

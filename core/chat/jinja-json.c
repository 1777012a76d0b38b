/* JSON in and out of the Jinja engine: jansson documents become template values,
 * and tojson writes exactly what Python's json.dumps writes (transformers' tojson). */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/error.h>

#include "chat/jinja.h"

bool slm__jj_from_json(jj_ctx_t *c, const json_t *j, jj_value_t *out, int depth)
{
    *out = jj_undef();
    if (depth > JJ_MAX_VALUE_DEPTH)
        return slm__jj_fail(c, NULL, SLM_E_INVALID, "the conversation nests deeper than %d levels",
                            JJ_MAX_VALUE_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL: *out = jj_none(); return true;
    case JSON_TRUE: *out = jj_bool(true); return true;
    case JSON_FALSE: *out = jj_bool(false); return true;
    case JSON_INTEGER: *out = jj_int((int64_t)json_integer_value(j)); return true;
    case JSON_REAL: *out = jj_float(json_real_value(j)); return true;
    case JSON_STRING:
        return slm__jj_str(c, NULL, json_string_value(j), json_string_length(j), out);
    case JSON_ARRAY: {
        if (!slm__jj_list_new(c, NULL, JJ_LIST, json_array_size(j), out))
            return false;
        for (size_t i = 0; i < json_array_size(j); i++) {
            jj_value_t v;
            if (!slm__jj_from_json(c, json_array_get(j, i), &v, depth + 1) ||
                !slm__jj_list_push(c, NULL, *out, v))
                return false;
        }
        return true;
    }
    case JSON_OBJECT: {
        if (!slm__jj_dict_new(c, NULL, JJ_DICT, out))
            return false;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val) {
            jj_value_t k, v;
            if (!slm__jj_str(c, NULL, key, strlen(key), &k))
                return false;
            if (!slm__jj_from_json(c, val, &v, depth + 1)) {
                slm__jj_unref(k);
                return false;
            }
            if (!slm__jj_dict_set(c, NULL, *out, k, v))
                return false;
        }
        return true;
    }
    }
    return slm__jj_fail(c, NULL, SLM_E_INVALID, "unknown JSON value");
}

/* ---- json.dumps ---- */

static bool put(jj_ctx_t *c, const jj_node_t *at, jj_buf_t *b, const char *s)
{
    return slm__jj_buf_put(c, at, b, s, strlen(s));
}

static bool dump_string(jj_ctx_t *c, const jj_node_t *at, const char *s, size_t len,
                        bool ascii, jj_buf_t *b)
{
    bool ok = slm__jj_buf_putc(c, at, b, '"');
    for (size_t i = 0; ok && i < len;) {
        uint32_t cp;
        size_t n = slm__jj_utf8_decode(s + i, len - i, &cp);
        const char *esc = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\n' ? "\\n"
                        : cp == '\r' ? "\\r" : cp == '\t' ? "\\t" : cp == '\b' ? "\\b"
                        : cp == '\f' ? "\\f" : NULL;
        if (esc)
            ok = put(c, at, b, esc);
        else if (cp < 0x20 || (ascii && cp == 0x7F))
            ok = slm__jj_buf_printf(c, at, b, "\\u%04x", (unsigned)cp);
        else if (ascii && cp > 0xFFFF)
            ok = slm__jj_buf_printf(c, at, b, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
                                    0xDC00 + ((cp - 0x10000) & 0x3FF));
        else if (ascii && cp > 0x7F)
            ok = slm__jj_buf_printf(c, at, b, "\\u%04x", (unsigned)cp);
        else
            ok = slm__jj_buf_put(c, at, b, s + i, n);
        i += n;
    }
    return ok && slm__jj_buf_putc(c, at, b, '"');
}

static bool dump_float(jj_ctx_t *c, const jj_node_t *at, double f, jj_buf_t *b)
{
    char num[40];
    if (isnan(f))
        return put(c, at, b, "NaN");
    if (isinf(f))
        return put(c, at, b, f < 0 ? "-Infinity" : "Infinity");
    slm__jj_float_repr(f, num);
    return put(c, at, b, num);
}

static bool newline(jj_ctx_t *c, const jj_node_t *at, const jj_json_opts_t *o, int level,
                    jj_buf_t *b)
{
    if (!o->indent)
        return true;
    bool ok = slm__jj_buf_putc(c, at, b, '\n');
    for (int i = 0; ok && i < level; i++)
        ok = slm__jj_buf_put(c, at, b, o->indent, o->indent_len);
    return ok;
}

/* A dict key as json.dumps turns it into a string. */
static bool dump_key(jj_ctx_t *c, const jj_node_t *at, jj_value_t k, const jj_json_opts_t *o,
                     jj_buf_t *b)
{
    char num[40];
    switch (k.type) {
    case JJ_STR: return dump_string(c, at, jj_as_str(k)->s, jj_as_str(k)->len, o->ensure_ascii, b);
    case JJ_NONE: return put(c, at, b, "\"null\"");
    case JJ_BOOL: return put(c, at, b, k.u.b ? "\"true\"" : "\"false\"");
    case JJ_INT: return slm__jj_buf_printf(c, at, b, "\"%" PRId64 "\"", k.u.i);
    case JJ_FLOAT:
        if (isnan(k.u.f) || isinf(k.u.f))
            strcpy(num, isnan(k.u.f) ? "NaN" : k.u.f < 0 ? "-Infinity" : "Infinity");
        else
            slm__jj_float_repr(k.u.f, num);
        return slm__jj_buf_printf(c, at, b, "\"%s\"", num);
    default:
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: keys must be str, int, float, bool "
                            "or None, not %s", slm__jj_type_name(k));
    }
}

static bool dump(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_json_opts_t *o,
                 int level, jj_buf_t *b);

static bool dump_list(jj_ctx_t *c, const jj_node_t *at, jj_list_t *l, const jj_json_opts_t *o,
                      int level, jj_buf_t *b)
{
    if (!l->n)
        return put(c, at, b, "[]");
    bool ok = slm__jj_buf_putc(c, at, b, '[') && newline(c, at, o, level + 1, b);
    for (size_t i = 0; ok && i < l->n; i++) {
        if (i)
            ok = put(c, at, b, o->item_sep) && newline(c, at, o, level + 1, b);
        ok = ok && dump(c, at, l->v[i], o, level + 1, b);
    }
    return ok && newline(c, at, o, level, b) && slm__jj_buf_putc(c, at, b, ']');
}

/* Key order: insertion, or sorted (Python's sort of the keys). */
static bool key_order(jj_ctx_t *c, const jj_node_t *at, jj_dict_t *d, bool sort, size_t *idx)
{
    for (size_t i = 0; i < d->n; i++)
        idx[i] = i;
    for (size_t i = 1; sort && i < d->n; i++) {   /* insertion sort: stable */
        size_t x = idx[i], j = i;
        for (; j > 0; j--) {
            int cmp;
            if (!slm__jj_compare(c, at, d->k[x], d->k[idx[j - 1]], &cmp))
                return false;
            if (cmp != -1)
                break;
            idx[j] = idx[j - 1];
        }
        idx[j] = x;
    }
    return true;
}

static bool dump_dict(jj_ctx_t *c, const jj_node_t *at, jj_dict_t *d, const jj_json_opts_t *o,
                      int level, jj_buf_t *b)
{
    if (!d->n)
        return put(c, at, b, "{}");
    size_t *idx = malloc(d->n * sizeof *idx);
    if (!idx)
        return slm__jj_fail(c, at, SLM_E_NOMEM, "out of memory");
    bool ok = key_order(c, at, d, o->sort_keys, idx) && slm__jj_buf_putc(c, at, b, '{') &&
              newline(c, at, o, level + 1, b);
    for (size_t i = 0; ok && i < d->n; i++) {
        if (i)
            ok = put(c, at, b, o->item_sep) && newline(c, at, o, level + 1, b);
        ok = ok && dump_key(c, at, d->k[idx[i]], o, b) && put(c, at, b, o->key_sep) &&
             dump(c, at, d->v[idx[i]], o, level + 1, b);
    }
    free(idx);
    return ok && newline(c, at, o, level, b) && slm__jj_buf_putc(c, at, b, '}');
}

static bool dump(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_json_opts_t *o,
                 int level, jj_buf_t *b)
{
    if (level > JJ_MAX_VALUE_DEPTH)
        return slm__jj_fail(c, at, SLM_E_INVALID, "a value nests deeper than %d levels",
                            JJ_MAX_VALUE_DEPTH);
    switch (v.type) {
    case JJ_NONE: return put(c, at, b, "null");
    case JJ_BOOL: return put(c, at, b, v.u.b ? "true" : "false");
    case JJ_INT: return slm__jj_buf_printf(c, at, b, "%" PRId64, v.u.i);
    case JJ_FLOAT: return dump_float(c, at, v.u.f, b);
    case JJ_STR: return dump_string(c, at, jj_as_str(v)->s, jj_as_str(v)->len, o->ensure_ascii, b);
    case JJ_LIST: case JJ_TUPLE: return dump_list(c, at, jj_as_list(v), o, level, b);
    case JJ_DICT: return dump_dict(c, at, jj_as_dict(v), o, level, b);
    default:
        return slm__jj_fail(c, at, SLM_E_INVALID, "TypeError: Object of type %s is not JSON "
                            "serializable", slm__jj_type_name(v));
    }
}

bool slm__jj_tojson(jj_ctx_t *c, const jj_node_t *at, jj_value_t v, const jj_json_opts_t *o,
                    jj_buf_t *b)
{
    return dump(c, at, v, o, 0, b) && slm__jj_buf_put(c, at, b, "", 0);
}

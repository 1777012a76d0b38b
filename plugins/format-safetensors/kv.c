/* A lone .safetensors file carries the container's whole metadata (hyper-parameters,
 * tokenizer) in `__metadata__`, one typed JSON string per key, so it loads again. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static const char *const type_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                         "bool", "string", "array", "u64", "i64", "f64"};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

static int type_id(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (strcmp(name, type_names[i]) == 0)
            return (int)i;
    return -1;
}

static size_t scalar_size(int32_t type)
{
    switch (type) {
    case SLM_VALUE_U8: case SLM_VALUE_I8: case SLM_VALUE_BOOL: return 1;
    case SLM_VALUE_U16: case SLM_VALUE_I16: return 2;
    case SLM_VALUE_U32: case SLM_VALUE_I32: case SLM_VALUE_F32: return 4;
    case SLM_VALUE_U64: case SLM_VALUE_I64: case SLM_VALUE_F64: return 8;
    default: return 0;
    }
}

/* ---- writing ---- */

static json_t *float_json(double v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

static json_t *scalar_json(int32_t type, const uint8_t *p)
{
    switch (type) {
    case SLM_VALUE_U8: return json_integer(*p);
    case SLM_VALUE_I8: return json_integer(*(const int8_t *)p);
    case SLM_VALUE_BOOL: return json_boolean(*p != 0);
    case SLM_VALUE_U16: { uint16_t x; memcpy(&x, p, 2); return json_integer(x); }
    case SLM_VALUE_I16: { int16_t x; memcpy(&x, p, 2); return json_integer(x); }
    case SLM_VALUE_U32: { uint32_t x; memcpy(&x, p, 4); return json_integer(x); }
    case SLM_VALUE_I32: { int32_t x; memcpy(&x, p, 4); return json_integer(x); }
    case SLM_VALUE_F32: { float x; memcpy(&x, p, 4); return float_json(x); }
    case SLM_VALUE_I64: { int64_t x; memcpy(&x, p, 8); return json_integer(x); }
    case SLM_VALUE_F64: { double x; memcpy(&x, p, 8); return float_json(x); }
    case SLM_VALUE_U64: {
        uint64_t x;
        memcpy(&x, p, 8);
        if (x <= INT64_MAX)
            return json_integer((json_int_t)x);
        char text[24];
        snprintf(text, sizeof text, "%llu", (unsigned long long)x);
        return json_string(text);   /* beyond JSON integers jansson keeps */
    }
    default: return NULL;
    }
}

/* JSON strings hold UTF-8 only: other bytes go as {"hex": "..."}. */
static json_t *string_json(const char *s, uint64_t len)
{
    json_t *j = json_stringn(s, (size_t)len);
    if (j)
        return j;
    char *hex = malloc(2 * (size_t)len + 1);
    if (!hex)
        return NULL;
    for (uint64_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
    j = json_pack("{ss}", "hex", hex);
    free(hex);
    return j;
}

static json_t *value_json(int32_t type, int32_t elem_type, const void *data, const uint64_t *lens,
                          uint64_t n)
{
    if (type == SLM_VALUE_STRING)
        return string_json(data, n);
    if (type != SLM_VALUE_ARRAY)
        return scalar_json(type, data);
    json_t *arr = json_array();
    size_t size = scalar_size(elem_type);
    for (uint64_t i = 0; arr && i < n; i++) {
        json_t *e = elem_type == SLM_VALUE_STRING ? string_json(((const char *const *)data)[i], lens[i])
                                                  : scalar_json(elem_type, (const uint8_t *)data + i * size);
        if (!e || json_array_append_new(arr, e)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int st_kv_encode(const slm_format_source_t *src, json_t *metadata, const char **why)
{
    static const char skip[] = "safetensors.metadata.";
    uint64_t n = src->n_values(src->ctx);
    bool any = false;
    for (uint64_t i = 0; i < n; i++) {
        const char *key;
        int32_t type, elem_type;
        const void *data;
        const uint64_t *lens;
        uint64_t count;
        if (src->get_value(src->ctx, i, &key, &type, &elem_type, &data, &lens, &count) != 0 || !key) {
            *why = "the host could not give a metadata entry";
            return SLM_E_INVALID;
        }
        if (strncmp(key, skip, sizeof skip - 1) == 0)
            continue;   /* the file's own __metadata__ strings, written as they were */
        bool array = type == SLM_VALUE_ARRAY;
        int32_t t = array ? elem_type : type;
        if (t < 0 || (size_t)t >= N_TYPES || t == SLM_VALUE_ARRAY ||
            (array && t == SLM_VALUE_STRING && count && !lens) || (count && !data)) {
            *why = "a metadata value has a type a .safetensors file cannot carry (arrays of arrays?)";
            return SLM_E_UNSUPPORTED;
        }
        json_t *doc = json_pack("{ss}", "type", type_names[type]);
        if (doc && array)
            json_object_set_new(doc, "elem", json_string(type_names[elem_type]));
        json_t *v = doc ? value_json(type, elem_type, data, lens, count) : NULL;
        /* f32 needs 9 significant digits to come back bit for bit, f64 17. */
        size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(t == SLM_VALUE_F32 ? 9 : 17);
        char *text = v && !json_object_set_new(doc, "value", v) ? json_dumps(doc, flags) : NULL;
        json_decref(doc);
        size_t klen = strlen(key);
        char *name = text ? malloc(klen + sizeof ST_KV_PREFIX) : NULL;
        if (name)
            snprintf(name, klen + sizeof ST_KV_PREFIX, ST_KV_PREFIX "%s", key);
        int bad = !name || json_object_set_new(metadata, name, json_string(text));
        free(name);
        free(text);
        if (bad) {
            *why = "out of memory for the metadata";
            return SLM_E_NOMEM;
        }
        any = true;
    }
    if (any && json_object_set_new(metadata, ST_KV_MARK, json_string(ST_KV_VERSION))) {
        *why = "out of memory for the metadata";
        return SLM_E_NOMEM;
    }
    return SLM_OK;
}

/* ---- reading ---- */

typedef struct decoder {
    const char *path, *key;
    slm_error_t *err;
} decoder_t;

static int bad(const decoder_t *d, const char *what)
{
    return st_fail(d->err, SLM_E_FORMAT, d->path, -1, "__metadata__ '" ST_KV_PREFIX "%s': %s",
                   d->key, what);
}

static int get_float(const decoder_t *d, json_t *j, double *out)
{
    const char *s = json_string_value(j);
    if (json_is_number(j))
        *out = json_number_value(j);
    else if (s && strcmp(s, "nan") == 0)
        *out = NAN;
    else if (s && strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (s && strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else
        return bad(d, "a float value is not a number");
    return SLM_OK;
}

/* A u64 above INT64_MAX, written as a decimal string. */
static bool big_u64(const char *s, uint64_t *u)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *u = v;
    return true;
}

/* One scalar of `type` from j into p (scalar_size(type) bytes). */
static int get_scalar(const decoder_t *d, int32_t type, json_t *j, uint8_t *p)
{
    static const struct { int64_t lo; uint64_t hi; } range[] = {
        [SLM_VALUE_U8] = {0, UINT8_MAX},          [SLM_VALUE_I8] = {INT8_MIN, INT8_MAX},
        [SLM_VALUE_U16] = {0, UINT16_MAX},        [SLM_VALUE_I16] = {INT16_MIN, INT16_MAX},
        [SLM_VALUE_U32] = {0, UINT32_MAX},        [SLM_VALUE_I32] = {INT32_MIN, INT32_MAX},
        [SLM_VALUE_I64] = {INT64_MIN, INT64_MAX}, [SLM_VALUE_U64] = {0, UINT64_MAX},
    };
    if (type == SLM_VALUE_BOOL) {
        if (!json_is_boolean(j))
            return bad(d, "a bool value is not true or false");
        *p = json_is_true(j);
        return SLM_OK;
    }
    if (type == SLM_VALUE_F32 || type == SLM_VALUE_F64) {
        double v = 0;
        int rc = get_float(d, j, &v);
        float f = (float)v;
        if (!rc)
            memcpy(p, type == SLM_VALUE_F32 ? (const void *)&f : (const void *)&v,
                   type == SLM_VALUE_F32 ? 4 : 8);
        return rc;
    }
    uint64_t u;
    if (json_is_integer(j) && json_integer_value(j) >= range[type].lo &&
        (json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) <= range[type].hi))
        u = (uint64_t)json_integer_value(j);
    else if (type != SLM_VALUE_U64 || !big_u64(json_string_value(j), &u))
        return bad(d, "an integer value is missing or out of its type's range");
    size_t size = scalar_size(type);
    for (size_t i = 0; i < size; i++)   /* little-endian hosts only, as the rest */
        p[i] = (uint8_t)(u >> (8 * i));
    return SLM_OK;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A string value: a JSON string or {"hex": "..."}; *out is malloc'ed, NUL-terminated. */
static int get_string(const decoder_t *d, json_t *j, char **out, uint64_t *len)
{
    const char *hex = json_string_value(json_object_get(j, "hex"));
    size_t n = hex ? strlen(hex) / 2 : json_string_length(j);
    if (!json_is_string(j) && (!hex || strlen(hex) % 2))
        return bad(d, "a string value is neither a string nor {\"hex\": ...}");
    char *s = malloc(n + 1);
    if (!s)
        return st_fail(d->err, SLM_E_NOMEM, d->path, -1, "out of memory");
    for (size_t i = 0; hex && i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(s);
            return bad(d, "a hex string holds a character that is not a lowercase hex digit");
        }
        s[i] = (char)(hi << 4 | lo);
    }
    if (!hex)
        memcpy(s, json_string_value(j), n);
    s[n] = '\0';
    *out = s;
    *len = n;
    return SLM_OK;
}

static int get_array(const decoder_t *d, st_meta_t *m, int32_t elem, json_t *v)
{
    if (!json_is_array(v) || elem < 0 || elem == SLM_VALUE_ARRAY)
        return bad(d, "an array has no \"elem\" type or no array value");
    size_t n = json_array_size(v), size = elem == SLM_VALUE_STRING ? sizeof(char *) : scalar_size(elem);
    void *values = calloc(n ? n : 1, size);
    uint64_t *lens = elem == SLM_VALUE_STRING ? calloc(n ? n : 1, sizeof *lens) : NULL;
    int rc = values && (lens || elem != SLM_VALUE_STRING) ? SLM_OK
             : st_fail(d->err, SLM_E_NOMEM, d->path, -1, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        rc = elem == SLM_VALUE_STRING
                 ? get_string(d, json_array_get(v, i), &((char **)values)[i], &lens[i])
                 : get_scalar(d, elem, json_array_get(v, i), (uint8_t *)values + i * size);
    if (!rc)
        return st_meta_array(m, d->key, elem, values, lens, n) ? st_fail(d->err, SLM_E_NOMEM, d->path, -1,
                                                                        "out of memory")
                                                               : SLM_OK;
    if (elem == SLM_VALUE_STRING && values)
        for (size_t i = 0; i < n; i++)
            free(((char **)values)[i]);
    free(values);
    free(lens);
    return rc;
}

static int decode_one(const decoder_t *d, st_meta_t *m, const char *text)
{
    json_error_t je;
    json_t *doc = text ? json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je) : NULL;
    int type = type_id(json_string_value(json_object_get(doc, "type")));
    json_t *v = json_object_get(doc, "value");
    int rc;
    if (!doc || type < 0 || !v) {
        rc = bad(d, "not a {\"type\", \"value\"} JSON object");
    } else if (type == SLM_VALUE_ARRAY) {
        rc = get_array(d, m, type_id(json_string_value(json_object_get(doc, "elem"))), v);
    } else if (type == SLM_VALUE_STRING) {
        char *s = NULL;
        uint64_t len;
        rc = get_string(d, v, &s, &len);
        if (!rc && st_meta_str(m, d->key, s, len))
            rc = st_fail(d->err, SLM_E_NOMEM, d->path, -1, "out of memory");
        free(s);
    } else {
        uint8_t p[8];
        rc = get_scalar(d, type, v, p);
        if (!rc && st_meta_scalar(m, d->key, type, p))
            rc = st_fail(d->err, SLM_E_NOMEM, d->path, -1, "out of memory");
    }
    json_decref(doc);
    return rc;
}

bool st_kv_present(json_t *metadata)
{
    const char *v = json_string_value(json_object_get(metadata, ST_KV_MARK));
    return v && strcmp(v, ST_KV_VERSION) == 0;
}

int st_kv_decode(const char *path, json_t *metadata, st_meta_t *m, slm_error_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(metadata, k, v) {
        if (strncmp(k, ST_KV_PREFIX, sizeof ST_KV_PREFIX - 1) != 0)
            continue;
        decoder_t d = {.path = path, .key = k + sizeof ST_KV_PREFIX - 1, .err = err};
        int rc = decode_one(&d, m, json_string_value(v));
        if (rc)
            return rc;
    }
    return SLM_OK;
}

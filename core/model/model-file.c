/* The model-file container's tables: ordered metadata and tensors, each with a
 * name index, and the typed accessors applications use on them. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/model-file.h"
#include "internal/util.h"

size_t slm__mf_scalar_size(int32_t type)
{
    switch (type) {
    case SLM_MF_U8: case SLM_MF_I8: case SLM_MF_BOOL: return 1;
    case SLM_MF_U16: case SLM_MF_I16: return 2;
    case SLM_MF_U32: case SLM_MF_I32: case SLM_MF_F32: return 4;
    case SLM_MF_U64: case SLM_MF_I64: case SLM_MF_F64: return 8;
    default: return 0;
    }
}

static const char *value_type_name(int32_t type)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return type >= 0 && (size_t)type < SLM__ARRAY_LEN(names) ? names[type] : "unknown";
}

/* ---- name index ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

typedef const char *(*name_at_fn)(const slm_model_file_t *mf, size_t i);

static const char *value_name_at(const slm_model_file_t *mf, size_t i)
{
    return mf->values[i].key;
}

static const char *tensor_name_at(const slm_model_file_t *mf, size_t i)
{
    return mf->tensors[i].name;
}

static long index_find(const slm_model_file_t *mf, const slm__mf_index_t *ix, name_at_fn at,
                       const char *name)
{
    if (!ix->cap || !name)
        return -1;
    for (size_t s = hash_name(name) & (ix->cap - 1);; s = (s + 1) & (ix->cap - 1)) {
        size_t v = ix->slots[s];
        if (!v)
            return -1;
        if (strcmp(at(mf, v - 1), name) == 0)
            return (long)(v - 1);
    }
}

static void index_put(slm__mf_index_t *ix, const char *name, size_t pos)
{
    size_t s = hash_name(name) & (ix->cap - 1);
    while (ix->slots[s])
        s = (s + 1) & (ix->cap - 1);
    ix->slots[s] = pos + 1;
}

/* Rebuild for n names, keeping the load under one half. */
static int index_rebuild(const slm_model_file_t *mf, slm__mf_index_t *ix, name_at_fn at,
                         size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    if (cap != ix->cap) {
        size_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return SLM_E_NOMEM;
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
    } else {
        memset(ix->slots, 0, cap * sizeof *ix->slots);
    }
    for (size_t i = 0; i < n; i++)
        index_put(ix, at(mf, i), i);
    return SLM_OK;
}

/* Make room for entry n (the one about to be appended) in the index. */
static int index_grow(const slm_model_file_t *mf, slm__mf_index_t *ix, name_at_fn at, size_t n)
{
    if (ix->cap >= 2 * (n + 1) + 2)
        return SLM_OK;
    return index_rebuild(mf, ix, at, n);
}

/* ---- lifetime ---- */

slm_model_file_t *slm_model_file_new(void)
{
    return calloc(1, sizeof(slm_model_file_t));
}

static void value_clear(slm__mf_value_t *v)
{
    /* A string array is one block: its pointers, then their bytes (copy_strings). */
    free(v->data);
    free(v->lens);
    v->data = NULL;
    v->lens = NULL;
}

void slm_model_file_free(slm_model_file_t *mf)
{
    if (!mf)
        return;
    for (size_t i = 0; i < mf->n_values; i++) {
        value_clear(&mf->values[i]);
        free(mf->values[i].key);
    }
    for (size_t i = 0; i < mf->n_tensors; i++) {
        free(mf->tensors[i].name);
        free(mf->tensors[i].owned);
    }
    /* Tensors may borrow from the mappings: release them last. */
    for (size_t i = 0; i < mf->n_maps; i++)
        if (mf->maps[i].release)
            mf->maps[i].release(mf->maps[i].mapping);
    free(mf->values);
    free(mf->tensors);
    free(mf->maps);
    free(mf->value_index.slots);
    free(mf->tensor_index.slots);
    free(mf->format);
    free(mf->origin);
    free(mf);
}

int slm__mf_add_mapping(slm_model_file_t *mf, void *mapping, void (*release)(void *))
{
    slm__mf_mapping_t *m = realloc(mf->maps, (mf->n_maps + 1) * sizeof *m);
    if (!m)
        return SLM_E_NOMEM;
    mf->maps = m;
    m[mf->n_maps++] = (slm__mf_mapping_t){mapping, release};
    return SLM_OK;
}

const char *slm_model_file_format(const slm_model_file_t *mf)
{
    return mf ? mf->format : NULL;
}

/* ---- metadata ---- */

size_t slm_model_file_n_values(const slm_model_file_t *mf)
{
    return mf ? mf->n_values : 0;
}

static void fill_value(const slm__mf_value_t *v, slm_model_value_t *out)
{
    if (!out || out->struct_size < offsetof(slm_model_value_t, lens) + sizeof out->lens)
        return;
    uint32_t size = out->struct_size;
    *out = (slm_model_value_t){.struct_size = size, .key = v->key, .type = v->type,
                               .elem_type = v->elem_type, .n = v->n, .data = v->data,
                               .lens = v->lens};
}

int slm_model_file_value(const slm_model_file_t *mf, size_t i, slm_model_value_t *out)
{
    if (!mf || i >= mf->n_values)
        return SLM_E_NOT_FOUND;
    fill_value(&mf->values[i], out);
    return SLM_OK;
}

int slm_model_file_find_value(const slm_model_file_t *mf, const char *key, slm_model_value_t *out)
{
    long i = mf ? index_find(mf, &mf->value_index, value_name_at, key) : -1;
    if (i < 0)
        return SLM_E_NOT_FOUND;
    fill_value(&mf->values[i], out);
    return (int)i;
}

static const slm__mf_value_t *lookup(const slm_model_file_t *mf, const char *key,
                                     slm_error_t *err)
{
    long i = mf ? index_find(mf, &mf->value_index, value_name_at, key) : -1;
    if (i < 0) {
        slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no metadata key '%s'", key ? key : "(null)");
        return NULL;
    }
    return &mf->values[i];
}

static int wrong_type(slm_error_t *err, const slm__mf_value_t *v, const char *wanted)
{
    return slm__fail(err, SLM_E_INVALID, NULL, -1, "metadata key '%s' is %s%s%s, not %s", v->key,
                     value_type_name(v->type), v->type == SLM_MF_ARRAY ? " of " : "",
                     v->type == SLM_MF_ARRAY ? value_type_name(v->elem_type) : "", wanted);
}

int slm_model_file_get_int(const slm_model_file_t *mf, const char *key, int64_t *value,
                           slm_error_t *err)
{
    const slm__mf_value_t *v = lookup(mf, key, err);
    if (!v)
        return SLM_E_NOT_FOUND;
    const void *p = v->data;
    int64_t r;
    switch (v->type) {
    case SLM_MF_U8: r = *(const uint8_t *)p; break;
    case SLM_MF_I8: r = *(const int8_t *)p; break;
    case SLM_MF_U16: r = *(const uint16_t *)p; break;
    case SLM_MF_I16: r = *(const int16_t *)p; break;
    case SLM_MF_U32: r = *(const uint32_t *)p; break;
    case SLM_MF_I32: r = *(const int32_t *)p; break;
    case SLM_MF_I64: r = *(const int64_t *)p; break;
    case SLM_MF_U64:
        if (*(const uint64_t *)p > INT64_MAX)
            return slm__fail(err, SLM_E_INVALID, NULL, -1,
                             "metadata key '%s' holds %llu, beyond a signed 64-bit integer", key,
                             (unsigned long long)*(const uint64_t *)p);
        r = (int64_t)*(const uint64_t *)p;
        break;
    default: return wrong_type(err, v, "an integer");
    }
    if (value)
        *value = r;
    return SLM_OK;
}

int slm_model_file_get_float(const slm_model_file_t *mf, const char *key, double *value,
                             slm_error_t *err)
{
    const slm__mf_value_t *v = lookup(mf, key, err);
    if (!v)
        return SLM_E_NOT_FOUND;
    if (v->type != SLM_MF_F32 && v->type != SLM_MF_F64)
        return wrong_type(err, v, "a floating-point number");
    if (value)
        *value = v->type == SLM_MF_F32 ? *(const float *)v->data : *(const double *)v->data;
    return SLM_OK;
}

int slm_model_file_get_bool(const slm_model_file_t *mf, const char *key, bool *value,
                            slm_error_t *err)
{
    const slm__mf_value_t *v = lookup(mf, key, err);
    if (!v)
        return SLM_E_NOT_FOUND;
    if (v->type != SLM_MF_BOOL)
        return wrong_type(err, v, "bool");
    if (value)
        *value = *(const uint8_t *)v->data != 0;
    return SLM_OK;
}

int slm_model_file_get_string(const slm_model_file_t *mf, const char *key, const char **value,
                              slm_error_t *err)
{
    const slm__mf_value_t *v = lookup(mf, key, err);
    if (!v)
        return SLM_E_NOT_FOUND;
    if (v->type != SLM_MF_STRING)
        return wrong_type(err, v, "string");
    if (value)
        *value = v->data;
    return SLM_OK;
}

int slm_model_file_get_array(const slm_model_file_t *mf, const char *key, int32_t elem_type,
                             slm_model_value_t *out, slm_error_t *err)
{
    const slm__mf_value_t *v = lookup(mf, key, err);
    if (!v)
        return SLM_E_NOT_FOUND;
    if (v->type != SLM_MF_ARRAY || (elem_type >= 0 && v->elem_type != elem_type)) {
        char want[32];
        snprintf(want, sizeof want, "array of %s",
                 elem_type >= 0 ? value_type_name(elem_type) : "anything");
        return wrong_type(err, v, want);
    }
    fill_value(v, out);
    return SLM_OK;
}

static int check_key(const char *key, slm_error_t *err)
{
    if (!key || !*key)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "metadata key is empty");
    return SLM_OK;
}

/* Put v (already filled, key not yet set) under key: replace in place or append. */
static int store_value(slm_model_file_t *mf, const char *key, slm__mf_value_t *v, slm_error_t *err)
{
    long i = index_find(mf, &mf->value_index, value_name_at, key);
    if (i >= 0) {
        slm__mf_value_t *old = &mf->values[i];
        value_clear(old);
        v->key = old->key;
        *old = *v;
        return SLM_OK;
    }
    if (mf->n_values == mf->cap_values) {
        size_t cap = mf->cap_values ? 2 * mf->cap_values : 16;
        slm__mf_value_t *nv = realloc(mf->values, cap * sizeof *nv);
        if (!nv)
            goto nomem;
        mf->values = nv;
        mf->cap_values = cap;
    }
    if (index_grow(mf, &mf->value_index, value_name_at, mf->n_values) != SLM_OK)
        goto nomem;
    if (!(v->key = strdup(key)))
        goto nomem;
    mf->values[mf->n_values] = *v;
    index_put(&mf->value_index, v->key, mf->n_values);
    mf->n_values++;
    return SLM_OK;
nomem:
    value_clear(v);
    return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory storing metadata key '%s'", key);
}

int slm_model_file_set_value(slm_model_file_t *mf, const char *key, int32_t type,
                             const void *value, uint64_t len, slm_error_t *err)
{
    if (!mf || !value)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "no container or no value");
    int rc = check_key(key, err);
    if (rc)
        return rc;
    slm__mf_value_t v = {.type = type, .elem_type = type, .n = 1};
    if (type == SLM_MF_STRING) {
        if (len >= SIZE_MAX)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "string for '%s' is too long", key);
        if (!(v.data = malloc((size_t)len + 1)))
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory for '%s'", key);
        memcpy(v.data, value, (size_t)len);
        ((char *)v.data)[len] = '\0';
        v.n = len;
        return store_value(mf, key, &v, err);
    }
    size_t size = slm__mf_scalar_size(type);
    if (!size)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "metadata key '%s': type %d is not a scalar",
                         key, (int)type);
    if (type == SLM_MF_BOOL && *(const uint8_t *)value > 1)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "metadata key '%s': bool is neither 0 nor 1",
                         key);
    if (!(v.data = calloc(1, sizeof(uint64_t))))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory for '%s'", key);
    memcpy(v.data, value, size);
    return store_value(mf, key, &v, err);
}

int slm_model_file_set_string(slm_model_file_t *mf, const char *key, const char *value,
                              slm_error_t *err)
{
    if (!value)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "no string for '%s'", key ? key : "");
    return slm_model_file_set_value(mf, key, SLM_MF_STRING, value, strlen(value), err);
}

/* One allocation holds the pointer array and every string after it: a 50k-token
 * vocabulary in 100k small blocks cost as much again in malloc headers. */
static int copy_strings(slm__mf_value_t *v, const void *values, const uint64_t *lens, uint64_t n)
{
    const char *const *src = values;
    size_t bytes = (size_t)(n ? n : 1) * sizeof(char *);
    v->lens = calloc(n ? (size_t)n : 1, sizeof *v->lens);
    if (!v->lens)
        return SLM_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        if (!src[i])
            return SLM_E_INVALID;
        uint64_t len = lens ? lens[i] : strlen(src[i]);
        if (len >= SIZE_MAX / 2 || bytes > SIZE_MAX / 2 - (size_t)len)
            return SLM_E_NOMEM;
        v->lens[i] = len;
        bytes += (size_t)len + 1;
    }
    char **dst = malloc(bytes);
    if (!dst)
        return SLM_E_NOMEM;
    v->data = dst;
    char *pool = (char *)(dst + (n ? n : 1));
    for (uint64_t i = 0; i < n; i++) {
        dst[i] = pool;
        memcpy(pool, src[i], (size_t)v->lens[i]);
        pool[v->lens[i]] = '\0';
        pool += v->lens[i] + 1;
    }
    return SLM_OK;
}

int slm_model_file_set_array(slm_model_file_t *mf, const char *key, int32_t elem_type,
                             const void *values, const uint64_t *lens, uint64_t n,
                             slm_error_t *err)
{
    if (!mf || (n && !values))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "no container or no values");
    int rc = check_key(key, err);
    if (rc)
        return rc;
    slm__mf_value_t v = {.type = SLM_MF_ARRAY, .elem_type = elem_type, .n = n};
    if (elem_type == SLM_MF_STRING) {
        if (n > SIZE_MAX / sizeof(char *))
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "array '%s' is too long", key);
        rc = copy_strings(&v, values, lens, n);
        if (rc) {
            value_clear(&v);
            return slm__fail(err, rc, NULL, -1, "cannot store string array '%s'%s", key,
                             rc == SLM_E_INVALID ? ": an element is NULL" : ": out of memory");
        }
        return store_value(mf, key, &v, err);
    }
    size_t size = slm__mf_scalar_size(elem_type);
    uint64_t bytes;
    if (!size)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "array '%s': element type %d is not a scalar or string", key,
                         (int)elem_type);
    if (!slm__mul_overflow_u64(n, size, &bytes) || bytes >= SIZE_MAX)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "array '%s' is too long", key);
    if (!(v.data = malloc(bytes ? (size_t)bytes : 1)))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory for array '%s'", key);
    if (bytes)
        memcpy(v.data, values, (size_t)bytes);
    return store_value(mf, key, &v, err);
}

int slm_model_file_remove_value(slm_model_file_t *mf, const char *key)
{
    long i = mf ? index_find(mf, &mf->value_index, value_name_at, key) : -1;
    if (i < 0)
        return SLM_E_NOT_FOUND;
    value_clear(&mf->values[i]);
    free(mf->values[i].key);
    memmove(&mf->values[i], &mf->values[i + 1], (mf->n_values - (size_t)i - 1) * sizeof *mf->values);
    mf->n_values--;
    return index_rebuild(mf, &mf->value_index, value_name_at, mf->n_values);
}

int slm_model_file_copy_values(slm_model_file_t *dst, const slm_model_file_t *src,
                               const char *prefix, slm_error_t *err)
{
    if (!dst || !src || !prefix)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "copy values: NULL argument");
    size_t n = strlen(prefix);
    for (size_t i = 0; i < src->n_values; i++) {
        const slm__mf_value_t *v = &src->values[i];
        if (strncmp(v->key, prefix, n) != 0)
            continue;
        int rc = v->type == SLM_MF_ARRAY
                     ? slm_model_file_set_array(dst, v->key, v->elem_type, v->data, v->lens,
                                                v->n, err)
                     : slm_model_file_set_value(dst, v->key, v->type, v->data, v->n, err);
        if (rc != SLM_OK)
            return rc;
    }
    return SLM_OK;
}

/* ---- tensors ---- */

size_t slm_model_file_n_tensors(const slm_model_file_t *mf)
{
    return mf ? mf->n_tensors : 0;
}

static void fill_tensor(const slm__mf_tensor_t *t, slm_model_tensor_t *out)
{
    if (!out || out->struct_size < offsetof(slm_model_tensor_t, borrowed) + sizeof out->borrowed)
        return;
    uint32_t size = out->struct_size;
    *out = (slm_model_tensor_t){.struct_size = size, .name = t->name, .type = t->type,
                                .n_dims = t->n_dims, .data = t->data, .nbytes = t->nbytes,
                                .borrowed = t->owned == NULL && t->nbytes > 0};
    memcpy(out->ne, t->ne, sizeof out->ne);
}

int slm_model_file_tensor(const slm_model_file_t *mf, size_t i, slm_model_tensor_t *out)
{
    if (!mf || i >= mf->n_tensors)
        return SLM_E_NOT_FOUND;
    fill_tensor(&mf->tensors[i], out);
    return SLM_OK;
}

int slm_model_file_find_tensor(const slm_model_file_t *mf, const char *name,
                               slm_model_tensor_t *out)
{
    long i = mf ? index_find(mf, &mf->tensor_index, tensor_name_at, name) : -1;
    if (i < 0)
        return SLM_E_NOT_FOUND;
    fill_tensor(&mf->tensors[i], out);
    return (int)i;
}

/* Dims in range and, when the core knows the type, nbytes equal to what they give. */
static int check_shape(const char *name, int32_t type, int32_t n_dims, const int64_t *ne,
                       uint64_t nbytes, slm_error_t *err)
{
    if (n_dims < 1 || n_dims > SLM_MODEL_FILE_MAX_DIMS || !ne)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "tensor '%s': n_dims %d is not in 1..%d",
                         name, (int)n_dims, SLM_MODEL_FILE_MAX_DIMS);
    uint64_t count = 1;
    for (int d = 0; d < n_dims; d++)
        if (ne[d] < 0 || !slm__mul_overflow_u64(count, (uint64_t)ne[d], &count) ||
            count > INT64_MAX)
            return slm__fail(err, SLM_E_INVALID, NULL, -1,
                             "tensor '%s': dimension %d (%lld) is negative or overflows", name, d,
                             (long long)ne[d]);
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    if (!tr)
        return SLM_OK;   /* a type only its plugins know: trust the reader's size */
    uint64_t want;
    if (ne[0] % tr->block || !slm__mul_overflow_u64(count / tr->block, tr->size, &want))
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "tensor '%s': %lld elements per row do not fill %s blocks of %u", name,
                         (long long)ne[0], tr->name, tr->block);
    if (want != nbytes)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "tensor '%s': %llu bytes given, its %s shape needs %llu", name,
                         (unsigned long long)nbytes, tr->name, (unsigned long long)want);
    return SLM_OK;
}

int slm_model_file_add_tensor(slm_model_file_t *mf, const char *name, int32_t type,
                              int32_t n_dims, const int64_t *ne, const void *data,
                              uint64_t nbytes, unsigned flags, slm_error_t *err)
{
    if (!mf || !name || !*name || (nbytes && !data) || type < 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "tensor without container, name, type or data");
    int rc = check_shape(name, type, n_dims, ne, nbytes, err);
    if (rc)
        return rc;
    if (index_find(mf, &mf->tensor_index, tensor_name_at, name) >= 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "duplicate tensor name '%s'", name);
    if (nbytes >= SIZE_MAX)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "tensor '%s' is too large", name);
    if (mf->n_tensors == mf->cap_tensors) {
        size_t cap = mf->cap_tensors ? 2 * mf->cap_tensors : 64;
        slm__mf_tensor_t *nt = realloc(mf->tensors, cap * sizeof *nt);
        if (!nt)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory adding tensor '%s'", name);
        mf->tensors = nt;
        mf->cap_tensors = cap;
    }
    if (index_grow(mf, &mf->tensor_index, tensor_name_at, mf->n_tensors) != SLM_OK)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory adding tensor '%s'", name);
    slm__mf_tensor_t t = {.type = type, .n_dims = n_dims, .data = data, .nbytes = nbytes};
    for (int d = 0; d < SLM_MODEL_FILE_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    t.name = strdup(name);
    if (t.name && !(flags & SLM_MF_BORROW) && nbytes) {
        if ((t.owned = malloc((size_t)nbytes)))
            memcpy(t.owned, data, (size_t)nbytes);
        t.data = t.owned;
    }
    if (!t.name || (!(flags & SLM_MF_BORROW) && nbytes && !t.owned)) {
        free(t.name);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory adding tensor '%s'", name);
    }
    mf->tensors[mf->n_tensors] = t;
    index_put(&mf->tensor_index, t.name, mf->n_tensors);
    mf->n_tensors++;
    return SLM_OK;
}

/* Metadata staging: several HF files may state the same fact (bos id in
 * config.json and tokenizer_config.json), so values collect here, later ones win,
 * and the sink sees each key once. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "st.h"

typedef struct entry {
    char *key;
    int32_t type;           /* SLM_VALUE_*; SLM_VALUE_ARRAY for arrays */
    int32_t elem_type;
    uint8_t scalar[8];
    char *str;
    uint64_t n;             /* string length or array count */
    void *values;
    uint64_t *lens;
} entry_t;

struct st_meta {
    entry_t *e;
    size_t n, cap;
};

st_meta_t *st_meta_new(void)
{
    return calloc(1, sizeof(st_meta_t));
}

static void entry_clear(entry_t *e)
{
    if (e->type == SLM_VALUE_ARRAY && e->elem_type == SLM_VALUE_STRING)
        for (uint64_t i = 0; i < e->n; i++)
            free(((char **)e->values)[i]);
    free(e->values);
    free(e->lens);
    free(e->str);
    e->values = NULL;
    e->lens = NULL;
    e->str = NULL;
}

void st_meta_free(st_meta_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        entry_clear(&m->e[i]);
        free(m->e[i].key);
    }
    free(m->e);
    free(m);
}

/* The entry for key, emptied, or a new one at the end; NULL when out of memory. */
static entry_t *slot(st_meta_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0) {
            entry_clear(&m->e[i]);
            return &m->e[i];
        }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        entry_t *p = realloc(m->e, cap * sizeof *p);
        if (!p)
            return NULL;
        m->e = p;
        m->cap = cap;
    }
    entry_t *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key)))
        return NULL;
    m->n++;
    return e;
}

static int scalar(st_meta_t *m, const char *key, int32_t type, const void *v, size_t size)
{
    entry_t *e = slot(m, key);
    if (!e)
        return SLM_E_NOMEM;
    e->type = e->elem_type = type;
    e->n = 1;
    memcpy(e->scalar, v, size);
    return SLM_OK;
}

int st_meta_u32(st_meta_t *m, const char *key, uint32_t v)
{
    return scalar(m, key, SLM_VALUE_U32, &v, sizeof v);
}

int st_meta_f32(st_meta_t *m, const char *key, float v)
{
    return scalar(m, key, SLM_VALUE_F32, &v, sizeof v);
}

int st_meta_bool(st_meta_t *m, const char *key, bool v)
{
    uint8_t b = v;
    return scalar(m, key, SLM_VALUE_BOOL, &b, 1);
}

int st_meta_scalar(st_meta_t *m, const char *key, int32_t type, const void *v)
{
    static const uint8_t sizes[] = {[SLM_VALUE_U8] = 1,  [SLM_VALUE_I8] = 1,  [SLM_VALUE_U16] = 2,
                                    [SLM_VALUE_I16] = 2, [SLM_VALUE_U32] = 4, [SLM_VALUE_I32] = 4,
                                    [SLM_VALUE_F32] = 4, [SLM_VALUE_BOOL] = 1, [SLM_VALUE_U64] = 8,
                                    [SLM_VALUE_I64] = 8, [SLM_VALUE_F64] = 8};
    if (type < 0 || (size_t)type >= sizeof sizes || !sizes[type])
        return SLM_E_INVALID;
    return scalar(m, key, type, v, sizes[type]);
}

int st_meta_str(st_meta_t *m, const char *key, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    entry_t *e = copy ? slot(m, key) : NULL;
    if (!e) {
        free(copy);
        return SLM_E_NOMEM;
    }
    memcpy(copy, s, len);
    copy[len] = 0;
    e->type = e->elem_type = SLM_VALUE_STRING;
    e->str = copy;
    e->n = len;
    return SLM_OK;
}

int st_meta_array(st_meta_t *m, const char *key, int32_t elem_type, void *values,
                  uint64_t *lens, uint64_t n)
{
    entry_t *e = slot(m, key);
    if (!e) {
        if (elem_type == SLM_VALUE_STRING)
            for (uint64_t i = 0; i < n; i++)
                free(((char **)values)[i]);
        free(values);
        free(lens);
        return SLM_E_NOMEM;
    }
    e->type = SLM_VALUE_ARRAY;
    e->elem_type = elem_type;
    e->values = values;
    e->lens = lens;
    e->n = n;
    return SLM_OK;
}

bool st_meta_has(const st_meta_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0)
            return true;
    return false;
}

static const entry_t *lookup(const st_meta_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0)
            return &m->e[i];
    return NULL;
}

const char *st_meta_get_str(const st_meta_t *m, const char *key)
{
    const entry_t *e = lookup(m, key);
    return e && e->type == SLM_VALUE_STRING ? e->str : NULL;
}

bool st_meta_get_int(const st_meta_t *m, const char *key, int64_t *v)
{
    const entry_t *e = lookup(m, key);
    if (!e)
        return false;
    const uint8_t *p = e->scalar;
    switch (e->type) {
    case SLM_VALUE_U8: *v = p[0]; return true;
    case SLM_VALUE_I8: *v = (int8_t)p[0]; return true;
    case SLM_VALUE_U16: { uint16_t x; memcpy(&x, p, 2); *v = x; return true; }
    case SLM_VALUE_I16: { int16_t x; memcpy(&x, p, 2); *v = x; return true; }
    case SLM_VALUE_U32: { uint32_t x; memcpy(&x, p, 4); *v = x; return true; }
    case SLM_VALUE_I32: { int32_t x; memcpy(&x, p, 4); *v = x; return true; }
    case SLM_VALUE_I64: { int64_t x; memcpy(&x, p, 8); *v = x; return true; }
    case SLM_VALUE_U64: {
        uint64_t x;
        memcpy(&x, p, 8);
        if (x > INT64_MAX)
            return false;
        *v = (int64_t)x;
        return true;
    }
    default: return false;
    }
}

int st_meta_flush(const st_meta_t *m, const slm_format_sink_t *sink)
{
    for (size_t i = 0; i < m->n; i++) {
        const entry_t *e = &m->e[i];
        int rc;
        if (e->type == SLM_VALUE_ARRAY)
            rc = sink->set_array(sink->ctx, e->key, e->elem_type, e->values, e->lens, e->n);
        else if (e->type == SLM_VALUE_STRING)
            rc = sink->set_value(sink->ctx, e->key, e->type, e->str, e->n);
        else
            rc = sink->set_value(sink->ctx, e->key, e->type, e->scalar, 1);
        if (rc)
            return rc;
    }
    return SLM_OK;
}

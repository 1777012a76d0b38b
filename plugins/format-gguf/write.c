/* GGUF v3 writer: deterministic bytes (source order, zero padding) written into
 * the temporary file the host made; the host syncs and renames it over OUT. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"

typedef struct value {
    const char *key;
    int32_t type, elem_type;
    const void *data;
    const uint64_t *lens;
    uint64_t n;
} value_t;

typedef struct tensor {
    const char *name;
    int32_t type, n_dims;
    const int64_t *ne;
    const void *data;
    uint64_t nbytes;
    uint64_t offset;
} tensor_t;

typedef struct writer {
    const char *path;
    slm_error_t *err;
    int fd;
    uint8_t buf[1 << 16];
    size_t used;
    uint64_t total;           /* bytes put so far: the file position */
    int failed_errno;
} writer_t;

/* ---- validating what the source offers ---- */

static int bad(slm_error_t *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(slm_error_t *err, const char *path, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gguf_fail(err, SLM_E_INVALID, path, -1, "cannot write: %s", what);
}

static int check_value(const char *path, const value_t *v, uint64_t *alignment, slm_error_t *err)
{
    if (!v->key || !*v->key)
        return bad(err, path, "a metadata key is empty");
    bool array = v->type == SLM_VALUE_ARRAY;
    int32_t t = array ? v->elem_type : v->type;
    if (t == SLM_VALUE_ARRAY)
        return bad(err, path, "key '%s': arrays of arrays are not supported", v->key);
    if (t != SLM_VALUE_STRING && !gguf_value_size(t))
        return bad(err, path, "key '%s': unknown value type %d", v->key, (int)t);
    if ((v->n && !v->data) || (array && t == SLM_VALUE_STRING && v->n && !v->lens))
        return bad(err, path, "key '%s': the value is missing", v->key);
    if (strcmp(v->key, GGUF_KEY_ALIGNMENT) == 0) {
        if (v->type != SLM_VALUE_U32)
            return bad(err, path, "key '" GGUF_KEY_ALIGNMENT "' has type %s, expected u32",
                       gguf_value_type_name(v->type));
        uint32_t a;
        memcpy(&a, v->data, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return bad(err, path, "key '" GGUF_KEY_ALIGNMENT "' is %u, not a power of two", a);
        *alignment = a;
    }
    return 0;
}

static int check_tensor(const char *path, const tensor_t *t, slm_error_t *err)
{
    if (!t->name || !*t->name)
        return bad(err, path, "a tensor has no name");
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS || !t->ne)
        return bad(err, path, "tensor '%s': n_dims %d is not in 1..%d", t->name, (int)t->n_dims,
                   GGUF_MAX_DIMS);
    const gguf_type_t *ty = gguf_type_get(t->type);
    char tn[32];
    if (!ty)
        return bad(err, path, "tensor '%s': %s has no GGUF id", t->name,
                   plugin_type_name(gguf_host, (int)t->type, tn, sizeof tn));
    uint64_t count = 1;
    for (int d = 0; d < t->n_dims; d++)
        if (t->ne[d] < 0 || __builtin_mul_overflow(count, (uint64_t)t->ne[d], &count) ||
            count > INT64_MAX)
            return bad(err, path, "tensor '%s': dimension %d is negative or overflows", t->name, d);
    uint64_t want;
    if (t->ne[0] % ty->block || __builtin_mul_overflow(count / ty->block, (uint64_t)ty->bytes, &want))
        return bad(err, path, "tensor '%s': rows of %lld elements are not whole %s blocks",
                   t->name, (long long)t->ne[0], ty->name);
    if (want != t->nbytes || (t->nbytes && !t->data))
        return bad(err, path, "tensor '%s': %llu bytes given, its %s shape needs %llu", t->name,
                   (unsigned long long)t->nbytes, ty->name, (unsigned long long)want);
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names are unique: sort a copy of the pointers and compare neighbours. */
static int check_unique(const char *path, const char **names, uint64_t n, const char *what,
                        slm_error_t *err)
{
    qsort(names, (size_t)n, sizeof *names, cmp_key);
    for (uint64_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return bad(err, path, "duplicate %s '%s'", what, names[i]);
    return 0;
}

/* ---- buffered output ---- */

static void flush(writer_t *w)
{
    size_t off = 0;
    while (off < w->used && !w->failed_errno) {
        ssize_t n = write(w->fd, w->buf + off, w->used - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->failed_errno = n < 0 ? errno : EIO;
        else
            off += (size_t)n;
    }
    w->used = 0;
}

static void put(writer_t *w, const void *p, uint64_t n)
{
    const uint8_t *b = p;
    w->total += n;
    while (n && !w->failed_errno) {
        if (w->used == sizeof w->buf)
            flush(w);
        size_t k = sizeof w->buf - w->used;
        if (k > n)
            k = (size_t)n;
        memcpy(w->buf + w->used, b, k);
        w->used += k;
        b += k;
        n -= k;
    }
}

static void put_le(writer_t *w, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, bytes);
}

static void put_str(writer_t *w, const char *s, uint64_t len)
{
    put_le(w, len, 8);
    put(w, s, len);
}

static void put_zeros(writer_t *w, uint64_t n)
{
    static const uint8_t zeros[64];
    while (n) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        put(w, zeros, k);
        n -= k;
    }
}

/* Scalars as stored by the source (host order) become little-endian bytes. */
static void put_scalars(writer_t *w, int32_t type, const void *data, uint64_t n)
{
    uint32_t size = gguf_value_size(type);
    const uint8_t *p = data;
    for (uint64_t i = 0; i < n; i++, p += size) {
        uint64_t v = 0;
        switch (size) {
        case 1: v = *p; break;
        case 2: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
        case 4: { uint32_t x; memcpy(&x, p, 4); v = x; break; }
        default: memcpy(&v, p, 8); break;
        }
        put_le(w, v, size);
    }
}

static void put_value(writer_t *w, const value_t *v)
{
    put_str(w, v->key, strlen(v->key));
    put_le(w, (uint32_t)v->type, 4);
    if (v->type == SLM_VALUE_STRING) {
        put_str(w, v->data, v->n);
        return;
    }
    if (v->type != SLM_VALUE_ARRAY) {
        put_scalars(w, v->type, v->data, 1);
        return;
    }
    put_le(w, (uint32_t)v->elem_type, 4);
    put_le(w, v->n, 8);
    if (v->elem_type != SLM_VALUE_STRING) {
        put_scalars(w, v->elem_type, v->data, v->n);
        return;
    }
    const char *const *s = v->data;
    for (uint64_t i = 0; i < v->n; i++)
        put_str(w, s[i], v->lens[i]);
}

static void put_tensor_info(writer_t *w, const tensor_t *t)
{
    put_str(w, t->name, strlen(t->name));
    put_le(w, (uint32_t)t->n_dims, 4);
    for (int d = 0; d < t->n_dims; d++)
        put_le(w, (uint64_t)t->ne[d], 8);
    put_le(w, (uint32_t)t->type, 4);
    put_le(w, t->offset, 8);
}

/* ---- collecting the source ---- */

typedef struct plan {
    value_t *values;
    uint64_t n_values;
    tensor_t *tensors;
    uint64_t n_tensors;
    uint64_t alignment;
} plan_t;

static int collect(const char *path, const slm_format_source_t *src, plan_t *p, slm_error_t *err)
{
    p->alignment = GGUF_DEFAULT_ALIGNMENT;
    p->n_values = src->n_values(src->ctx);
    p->n_tensors = src->n_tensors(src->ctx);
    if (p->n_values > SIZE_MAX / sizeof(value_t) || p->n_tensors > SIZE_MAX / sizeof(tensor_t))
        return bad(err, path, "too many entries");
    p->values = calloc(p->n_values ? (size_t)p->n_values : 1, sizeof *p->values);
    p->tensors = calloc(p->n_tensors ? (size_t)p->n_tensors : 1, sizeof *p->tensors);
    uint64_t most = p->n_values > p->n_tensors ? p->n_values : p->n_tensors;
    const char **names = calloc(most ? (size_t)most : 1, sizeof *names);
    int rc = 0;
    if (!p->values || !p->tensors || !names)
        rc = gguf_fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    for (uint64_t i = 0; !rc && i < p->n_values; i++) {
        value_t *v = &p->values[i];
        if (src->get_value(src->ctx, i, &v->key, &v->type, &v->elem_type, &v->data, &v->lens, &v->n))
            rc = bad(err, path, "the host could not give metadata entry %llu", (unsigned long long)i);
        else if (!(rc = check_value(path, v, &p->alignment, err)))
            names[i] = v->key;
    }
    if (!rc)
        rc = check_unique(path, names, p->n_values, "metadata key", err);
    for (uint64_t i = 0; !rc && i < p->n_tensors; i++) {
        tensor_t *t = &p->tensors[i];
        if (src->get_tensor(src->ctx, i, &t->name, &t->type, &t->n_dims, &t->ne, &t->data, &t->nbytes))
            rc = bad(err, path, "the host could not give tensor %llu", (unsigned long long)i);
        else if (!(rc = check_tensor(path, t, err)))
            names[i] = t->name;
    }
    if (!rc)
        rc = check_unique(path, names, p->n_tensors, "tensor name", err);
    free(names);
    return rc;
}

/* Tensor offsets: each starts on the alignment, in source order. */
static int place(const char *path, plan_t *p, slm_error_t *err)
{
    uint64_t off = 0;
    for (uint64_t i = 0; i < p->n_tensors; i++) {
        p->tensors[i].offset = off;
        if (__builtin_add_overflow(off, p->tensors[i].nbytes, &off) ||
            !gguf_align_up(off, p->alignment, &off))
            return bad(err, path, "the tensors' total size overflows");
    }
    return 0;
}

static void emit(writer_t *w, const plan_t *p)
{
    put(w, GGUF_MAGIC, 4);
    put_le(w, GGUF_VERSION, 4);
    put_le(w, p->n_tensors, 8);
    put_le(w, p->n_values, 8);
    for (uint64_t i = 0; i < p->n_values; i++)
        put_value(w, &p->values[i]);
    for (uint64_t i = 0; i < p->n_tensors; i++)
        put_tensor_info(w, &p->tensors[i]);
    /* No data section, no padding (as the files gguf-py writes for vocabularies). */
    uint64_t pos = w->total, start = pos;
    if (p->n_tensors)
        gguf_align_up(pos, p->alignment, &start);
    put_zeros(w, start - pos);
    for (uint64_t i = 0; i < p->n_tensors; i++) {
        const tensor_t *t = &p->tensors[i];
        uint64_t end = t->offset + t->nbytes;
        put(w, t->data, t->nbytes);
        gguf_align_up(t->offset + t->nbytes, p->alignment, &end);
        put_zeros(w, end - t->offset - t->nbytes);
    }
    flush(w);
}

/* ---- the file ---- */

static int write_file(const char *temp, const char *path, const plan_t *p, slm_error_t *err)
{
    writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return gguf_fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    w->fd = open(temp, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        free(w);
        return gguf_fail(err, SLM_E_IO, path, -1, "cannot open the temporary file %s: %s", temp,
                         strerror(e));
    }
    emit(w, p);
    if (close(w->fd) != 0 && !w->failed_errno)
        w->failed_errno = errno;
    int rc = w->failed_errno ? gguf_fail(err, SLM_E_IO, path, -1, "cannot write: %s",
                                         strerror(w->failed_errno))
                             : 0;
    free(w);
    return rc;
}

int gguf_write(const char *temp, const char *path, const slm_format_source_t *source,
               slm_error_t *err)
{
    if (!temp || !*temp || !path || !*path || !source || source->struct_size < offsetof(slm_format_source_t, reserved) ||
        !source->n_values || !source->get_value || !source->n_tensors || !source->get_tensor)
        return gguf_fail(err, SLM_E_INVALID, path, -1, "no path or an incomplete source");
    plan_t p = {0};
    int rc = collect(path, source, &p, err);
    if (!rc)
        rc = place(path, &p, err);
    if (!rc)
        rc = write_file(temp, path, &p, err);
    free(p.values);
    free(p.tensors);
    return rc;
}

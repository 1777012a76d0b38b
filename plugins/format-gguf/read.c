/* GGUF reader: maps the file read-only and validates every count, length, type,
 * offset and size against the file before it allocates or reports anything. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"

/* Smallest possible encodings: they bound the counts a file of a given size can hold. */
#define MIN_KV_BYTES 13u      /* key length, 0-byte key, value type, 1-byte value */
#define MIN_TENSOR_BYTES 32u  /* name length, n_dims, one dim, type, offset */

typedef struct kv {
    const uint8_t *key;
    uint64_t key_len;
    uint64_t at;              /* offset of the key, for messages */
    uint32_t type;
    uint32_t elem_type;
    uint64_t n;               /* array count */
    uint64_t value_at;        /* offset of the value (arrays: of the first element) */
} kv_t;

typedef struct tensor {
    const uint8_t *name;
    uint64_t name_len;
    uint64_t at;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t offset;          /* relative to the data section */
    uint64_t nbytes;
} tensor_t;

typedef struct reader {
    const char *path;
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    slm_error_t *err;
    uint64_t n_kv, n_tensors;
    kv_t *kvs;
    tensor_t *tensors;
    uint64_t alignment;
    uint64_t data_start;
} reader_t;

typedef struct mapping {
    void *addr;
    size_t len;
} mapping_t;

static void mapping_release(void *p)
{
    mapping_t *m = p;
    if (m && m->addr)
        munmap(m->addr, m->len);
    free(m);
}

int gguf_probe(const char *path, const uint8_t *head, size_t head_len)
{
    if (head && head_len >= 4 && memcmp(head, GGUF_MAGIC, 4) == 0)
        return 100;
    /* A damaged .gguf still reaches this reader, which can say what is wrong. */
    size_t n = path ? strlen(path) : 0;
    return n > 5 && strcasecmp(path + n - 5, ".gguf") == 0 ? 5 : 0;
}

/* ---- primitive reads, each checked against the bytes left ---- */

static int bad(reader_t *r, uint64_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(reader_t *r, uint64_t at, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gguf_fail(r->err, SLM_E_FORMAT, r->path, (int64_t)at, "%s", what);
}

static int need(reader_t *r, uint64_t n, const char *field)
{
    if (n <= r->size - r->pos)
        return 0;
    return bad(r, r->pos, "%s needs %llu bytes, only %llu left (file is %llu bytes; truncated?)",
               field, (unsigned long long)n, (unsigned long long)(r->size - r->pos),
               (unsigned long long)r->size);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int get_u32(reader_t *r, uint32_t *v, const char *field)
{
    if (need(r, 4, field))
        return -1;
    *v = (uint32_t)le(r->base + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int get_u64(reader_t *r, uint64_t *v, const char *field)
{
    if (need(r, 8, field))
        return -1;
    *v = le(r->base + r->pos, 8);
    r->pos += 8;
    return 0;
}

/* A GGUF string: u64 length, bytes. no_nul: it becomes a C string (key, name). */
static int get_str(reader_t *r, const uint8_t **s, uint64_t *len, bool no_nul, const char *field)
{
    uint64_t at = r->pos;
    if (get_u64(r, len, field))
        return -1;
    if (*len > r->size - r->pos)
        return bad(r, at, "%s: string length %llu runs past the end of the file (%llu bytes left)",
                   field, (unsigned long long)*len, (unsigned long long)(r->size - r->pos));
    *s = r->base + r->pos;
    if (no_nul && memchr(*s, 0, (size_t)*len))
        return bad(r, at, "%s contains a NUL byte", field);
    r->pos += *len;
    return 0;
}

/* ---- header and metadata ---- */

static int parse_header(reader_t *r)
{
    if (r->size < GGUF_HEADER_BYTES)
        return bad(r, 0, "file is %llu bytes, too short for a GGUF header (%u bytes)",
                   (unsigned long long)r->size, GGUF_HEADER_BYTES);
    if (memcmp(r->base, GGUF_MAGIC, 4) != 0)
        return bad(r, 0, "bad magic %02x %02x %02x %02x, expected \"GGUF\"", r->base[0],
                   r->base[1], r->base[2], r->base[3]);
    r->pos = 4;
    uint32_t version;
    get_u32(r, &version, "version");
    if (version == 1)
        return bad(r, 4, "GGUF version 1 is not supported (32-bit counts); this reader reads "
                   "versions 2 and 3 (re-convert the file with a current tool)");
    if ((version & 0xffffu) == 0 && (version >> 16) != 0)
        return bad(r, 4, "big-endian GGUF (version field 0x%08x) is not supported", version);
    if (version < 2 || version > GGUF_VERSION)
        return bad(r, 4, "unsupported GGUF version %u (this reader reads versions 2 and 3)",
                   version);
    get_u64(r, &r->n_tensors, "tensor count");
    get_u64(r, &r->n_kv, "key-value count");
    uint64_t room = r->size - r->pos;
    if (r->n_kv > room / MIN_KV_BYTES)
        return bad(r, 16, "key-value count %llu cannot fit in the %llu bytes after the header",
                   (unsigned long long)r->n_kv, (unsigned long long)room);
    if (r->n_tensors > (room - r->n_kv * MIN_KV_BYTES) / MIN_TENSOR_BYTES)
        return bad(r, 8, "tensor count %llu cannot fit in the %llu bytes after the header",
                   (unsigned long long)r->n_tensors, (unsigned long long)room);
    return 0;
}

/* Skip (and check) one value of a scalar or string type. */
static int skip_value(reader_t *r, uint32_t type, const char *field)
{
    if (type == SLM_VALUE_STRING) {
        const uint8_t *s;
        uint64_t len;
        return get_str(r, &s, &len, false, field);
    }
    uint32_t size = gguf_value_size(type);
    if (need(r, size, field))
        return -1;
    if (type == SLM_VALUE_BOOL && r->base[r->pos] > 1)
        return bad(r, r->pos, "%s: bool value %u is neither 0 nor 1", field, r->base[r->pos]);
    r->pos += size;
    return 0;
}

static int parse_array(reader_t *r, kv_t *kv, const char *field)
{
    uint64_t at = r->pos;
    if (get_u32(r, &kv->elem_type, field) || get_u64(r, &kv->n, field))
        return -1;
    if (kv->elem_type == SLM_VALUE_ARRAY)
        return bad(r, at, "%s: arrays of arrays are not supported", field);
    if (kv->elem_type != SLM_VALUE_STRING && !gguf_value_size(kv->elem_type))
        return bad(r, at, "%s: unknown array element type %u", field, kv->elem_type);
    uint64_t min = kv->elem_type == SLM_VALUE_STRING ? 8 : gguf_value_size(kv->elem_type);
    if (kv->n > (r->size - r->pos) / min)
        return bad(r, at + 4, "%s: array count %llu runs past the end of the file", field,
                   (unsigned long long)kv->n);
    kv->value_at = r->pos;
    if (kv->elem_type != SLM_VALUE_STRING && kv->elem_type != SLM_VALUE_BOOL) {
        r->pos += kv->n * min;
        return 0;
    }
    for (uint64_t i = 0; i < kv->n; i++)
        if (skip_value(r, kv->elem_type, field))
            return -1;
    return 0;
}

static int check_alignment(reader_t *r, const kv_t *kv)
{
    if (kv->type != SLM_VALUE_U32)
        return bad(r, kv->at, "key '" GGUF_KEY_ALIGNMENT "' has type %s, expected u32",
                   gguf_value_type_name(kv->type));
    uint64_t a = le(r->base + kv->value_at, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return bad(r, kv->value_at, "key '" GGUF_KEY_ALIGNMENT "' is %llu, not a power of two",
                   (unsigned long long)a);
    r->alignment = a;
    return 0;
}

static int parse_kvs(reader_t *r)
{
    r->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < r->n_kv; i++) {
        kv_t *kv = &r->kvs[i];
        char field[96];
        snprintf(field, sizeof field, "key-value %llu", (unsigned long long)i);
        kv->at = r->pos;
        if (get_str(r, &kv->key, &kv->key_len, true, field))
            return -1;
        if (kv->key_len == 0)
            return bad(r, kv->at, "%s has an empty key", field);
        snprintf(field, sizeof field, "key '%.*s'", (int)(kv->key_len < 64 ? kv->key_len : 64),
                 (const char *)kv->key);
        uint64_t type_at = r->pos;
        if (get_u32(r, &kv->type, field))
            return -1;
        kv->elem_type = kv->type;
        kv->n = 1;
        kv->value_at = r->pos;
        int rc;
        if (kv->type == SLM_VALUE_ARRAY)
            rc = parse_array(r, kv, field);
        else if (kv->type == SLM_VALUE_STRING || gguf_value_size(kv->type))
            rc = skip_value(r, kv->type, field);
        else
            rc = bad(r, type_at, "%s: unknown value type %u", field, kv->type);
        if (rc)
            return -1;
        if (kv->key_len == strlen(GGUF_KEY_ALIGNMENT) &&
            memcmp(kv->key, GGUF_KEY_ALIGNMENT, kv->key_len) == 0 && check_alignment(r, kv))
            return -1;
    }
    return 0;
}

/* ---- tensor infos ---- */

static int parse_dims(reader_t *r, tensor_t *t, const char *field)
{
    uint64_t at = r->pos;
    if (get_u32(r, &t->n_dims, field))
        return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return bad(r, at, "%s: n_dims %u is not in 1..%d", field, t->n_dims, GGUF_MAX_DIMS);
    uint64_t count = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne, prod;
        at = r->pos;
        if (get_u64(r, &ne, field))
            return -1;
        if (ne > INT64_MAX)
            return bad(r, at, "%s: dimension %u is negative (%lld)", field, d, (long long)ne);
        if (__builtin_mul_overflow(count, ne, &prod) || prod > INT64_MAX)
            return bad(r, at, "%s: the product of the dimensions overflows (dimension %u is %llu)",
                       field, d, (unsigned long long)ne);
        count = prod;
        t->ne[d] = (int64_t)ne;
    }
    for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    return 0;
}

static int parse_type(reader_t *r, tensor_t *t, const char *field)
{
    uint64_t at = r->pos;
    if (get_u32(r, &t->type, field))
        return -1;
    const gguf_type_t *ty = gguf_type_get(t->type);
    char tn[32];
    const char *name = tn;
    if (!ty && t->type > INT32_MAX)
        snprintf(tn, sizeof tn, "type %u (unknown)", t->type);
    else if (!ty)
        name = plugin_type_name(gguf_host, (int)t->type, tn, sizeof tn);
    if (!ty)
        return bad(r, at, "%s: %s is not a tensor type this reader knows", field, name);
    if (t->ne[0] % ty->block)
        return bad(r, at, "%s: rows of %lld elements are not a whole number of %s blocks (%u)",
                   field, (long long)t->ne[0], ty->name, ty->block);
    uint64_t count = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        count *= (uint64_t)t->ne[d];   /* checked in parse_dims */
    if (__builtin_mul_overflow(count / ty->block, (uint64_t)ty->bytes, &t->nbytes))
        return bad(r, at, "%s: byte size overflows", field);
    return 0;
}

static int parse_tensors(reader_t *r)
{
    for (uint64_t i = 0; i < r->n_tensors; i++) {
        tensor_t *t = &r->tensors[i];
        char field[128];
        snprintf(field, sizeof field, "tensor %llu", (unsigned long long)i);
        t->at = r->pos;
        if (get_str(r, &t->name, &t->name_len, true, field))
            return -1;
        if (t->name_len == 0)
            return bad(r, t->at, "%s has an empty name", field);
        snprintf(field, sizeof field, "tensor %llu '%.*s'", (unsigned long long)i,
                 (int)(t->name_len < 64 ? t->name_len : 64), (const char *)t->name);
        if (parse_dims(r, t, field) || parse_type(r, t, field))
            return -1;
        uint64_t at = r->pos;
        if (get_u64(r, &t->offset, field))
            return -1;
        if (t->offset % r->alignment)
            return bad(r, at, "%s: data offset %llu is misaligned (not a multiple of the "
                       "alignment %llu)", field, (unsigned long long)t->offset,
                       (unsigned long long)r->alignment);
    }
    if (!gguf_align_up(r->pos, r->alignment, &r->data_start))
        return bad(r, r->pos, "data section start overflows");
    return 0;
}

/* ---- whole-file checks ---- */

static int cmp_bytes(const uint8_t *a, uint64_t al, const uint8_t *b, uint64_t bl)
{
    int c = memcmp(a, b, (size_t)(al < bl ? al : bl));
    return c ? c : (al > bl) - (al < bl);
}

static int cmp_kv(const void *a, const void *b)
{
    const kv_t *x = *(const kv_t *const *)a, *y = *(const kv_t *const *)b;
    return cmp_bytes(x->key, x->key_len, y->key, y->key_len);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const tensor_t *x = *(const tensor_t *const *)a, *y = *(const tensor_t *const *)b;
    return cmp_bytes(x->name, x->name_len, y->name, y->name_len);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const tensor_t *x = *(const tensor_t *const *)a, *y = *(const tensor_t *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int check_unique_keys(reader_t *r)
{
    if (r->n_kv < 2)
        return 0;
    const kv_t **v = malloc(r->n_kv * sizeof *v);
    if (!v)
        return gguf_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    for (uint64_t i = 0; i < r->n_kv; i++)
        v[i] = &r->kvs[i];
    qsort(v, r->n_kv, sizeof *v, cmp_kv);
    int rc = 0;
    for (uint64_t i = 1; i < r->n_kv && !rc; i++)
        if (cmp_kv(&v[i - 1], &v[i]) == 0) {
            const kv_t *later = v[i - 1]->at > v[i]->at ? v[i - 1] : v[i];
            rc = bad(r, later->at, "duplicate key '%.*s'", (int)(later->key_len < 64 ? later->key_len : 64),
                     (const char *)later->key);
        }
    free(v);
    return rc;
}

static int check_tensors(reader_t *r)
{
    if (!r->n_tensors)
        return 0;
    const tensor_t **v = malloc(r->n_tensors * sizeof *v);
    if (!v)
        return gguf_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; i < r->n_tensors && !rc; i++) {
        const tensor_t *t = v[i] = &r->tensors[i];
        uint64_t end;
        if (__builtin_add_overflow(r->data_start, t->offset, &end) ||
            __builtin_add_overflow(end, t->nbytes, &end) || end > r->size)
            rc = bad(r, t->at, "tensor %llu '%.*s': offset %llu + size %llu past end of file "
                     "(data starts at %llu, file is %llu bytes)", (unsigned long long)i,
                     (int)(t->name_len < 64 ? t->name_len : 64), (const char *)t->name,
                     (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                     (unsigned long long)r->data_start, (unsigned long long)r->size);
    }
    if (!rc) {
        qsort(v, r->n_tensors, sizeof *v, cmp_tensor_name);
        for (uint64_t i = 1; i < r->n_tensors && !rc; i++)
            if (cmp_tensor_name(&v[i - 1], &v[i]) == 0)
                rc = bad(r, v[i]->at > v[i - 1]->at ? v[i]->at : v[i - 1]->at,
                         "duplicate tensor name '%.*s'", (int)(v[i]->name_len < 64 ? v[i]->name_len : 64),
                         (const char *)v[i]->name);
    }
    if (!rc) {
        qsort(v, r->n_tensors, sizeof *v, cmp_tensor_offset);
        const tensor_t *prev = NULL;
        for (uint64_t i = 0; i < r->n_tensors && !rc; i++) {
            if (!v[i]->nbytes)
                continue;
            if (prev && prev->offset + prev->nbytes > v[i]->offset)
                rc = bad(r, v[i]->at, "tensor '%.*s' (offset %llu) overlaps tensor '%.*s' "
                         "(offset %llu, %llu bytes)", (int)(v[i]->name_len < 64 ? v[i]->name_len : 64),
                         (const char *)v[i]->name, (unsigned long long)v[i]->offset,
                         (int)(prev->name_len < 64 ? prev->name_len : 64), (const char *)prev->name,
                         (unsigned long long)prev->offset, (unsigned long long)prev->nbytes);
            prev = v[i];
        }
    }
    free(v);
    return rc;
}

/* ---- reporting to the host ---- */

static char *cstr(const uint8_t *s, uint64_t len)
{
    char *c = malloc((size_t)len + 1);
    if (c) {
        memcpy(c, s, (size_t)len);
        c[len] = '\0';
    }
    return c;
}

static int report_array(reader_t *r, const slm_format_sink_t *sink, const kv_t *kv, const char *key)
{
    if (kv->elem_type != SLM_VALUE_STRING)
        return sink->set_array(sink->ctx, key, (int32_t)kv->elem_type, r->base + kv->value_at,
                               NULL, kv->n);
    const char **strs = malloc((kv->n ? kv->n : 1) * sizeof *strs);
    uint64_t *lens = malloc((kv->n ? kv->n : 1) * sizeof *lens);
    int rc = -1;
    if (strs && lens) {
        uint64_t p = kv->value_at;
        for (uint64_t i = 0; i < kv->n; i++) {   /* lengths were checked while parsing */
            lens[i] = le(r->base + p, 8);
            strs[i] = (const char *)r->base + p + 8;
            p += 8 + lens[i];
        }
        rc = sink->set_array(sink->ctx, key, SLM_VALUE_STRING, strs, lens, kv->n);
    } else {
        gguf_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    }
    free(strs);
    free(lens);
    return rc;
}

static int report_kv(reader_t *r, const slm_format_sink_t *sink, const kv_t *kv)
{
    char *key = cstr(kv->key, kv->key_len);
    if (!key)
        return gguf_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    int rc;
    const uint8_t *v = r->base + kv->value_at;
    if (kv->type == SLM_VALUE_ARRAY) {
        rc = report_array(r, sink, kv, key);
    } else if (kv->type == SLM_VALUE_STRING) {
        rc = sink->set_value(sink->ctx, key, SLM_VALUE_STRING, v + 8, le(v, 8));
    } else {
        uint64_t scalar = 0;   /* aligned copy of the little-endian bytes */
        uint32_t size = gguf_value_size(kv->type);
        memcpy(&scalar, v, size);
        rc = sink->set_value(sink->ctx, key, (int32_t)kv->type, &scalar, size);
    }
    if (rc && r->err && r->err->code == SLM_OK)
        gguf_fail(r->err, SLM_E_PLUGIN, r->path, (int64_t)kv->at, "the host refused key '%s'", key);
    free(key);
    return rc ? -1 : 0;
}

static int report_tensor(reader_t *r, const slm_format_sink_t *sink, const tensor_t *t)
{
    char *name = cstr(t->name, t->name_len);
    if (!name)
        return gguf_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    int rc = sink->add_tensor(sink->ctx, name, (int32_t)t->type, (int32_t)t->n_dims, t->ne,
                              r->base + r->data_start + t->offset, t->nbytes);
    if (rc && r->err && r->err->code == SLM_OK)
        gguf_fail(r->err, SLM_E_PLUGIN, r->path, (int64_t)t->at, "the host refused tensor '%s'", name);
    free(name);
    return rc ? -1 : 0;
}

static int report(reader_t *r, const slm_format_sink_t *sink)
{
    for (uint64_t i = 0; i < r->n_kv; i++)
        if (report_kv(r, sink, &r->kvs[i]))
            return -1;
    for (uint64_t i = 0; i < r->n_tensors; i++)
        if (report_tensor(r, sink, &r->tensors[i]))
            return -1;
    return 0;
}

/* ---- entry ---- */

static int map_file(const char *path, mapping_t **out, uint64_t *size, slm_error_t *err)
{
    struct stat st;
    int fd = plugin_open_file(path, &st, err);
    if (fd < 0)
        return fd;
    mapping_t *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return gguf_fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    }
    *size = (uint64_t)st.st_size;
    if (st.st_size > 0) {
        if ((uint64_t)st.st_size > SIZE_MAX) {
            close(fd);
            free(m);
            return gguf_fail(err, SLM_E_IO, path, -1, "file too large to map");
        }
        m->len = (size_t)st.st_size;
        m->addr = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m->addr == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(m);
            return gguf_fail(err, SLM_E_IO, path, -1, "cannot map: %s", strerror(e));
        }
    }
    close(fd);
    *out = m;
    return 0;
}

static int parse(reader_t *r)
{
    if (parse_header(r))
        return -1;
    /* Counts are bounded by the file size now, so these allocations are too. */
    r->kvs = calloc(r->n_kv ? r->n_kv : 1, sizeof *r->kvs);
    r->tensors = calloc(r->n_tensors ? r->n_tensors : 1, sizeof *r->tensors);
    if (!r->kvs || !r->tensors)
        return gguf_fail(r->err, SLM_E_NOMEM, r->path, -1, "out of memory");
    if (parse_kvs(r) || check_unique_keys(r) || parse_tensors(r) || check_tensors(r))
        return -1;
    return 0;
}

int gguf_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err)
{
    if (!path || !sink || sink->struct_size < offsetof(slm_format_sink_t, reserved) ||
        !sink->set_value || !sink->set_array || !sink->add_tensor || !sink->set_mapping)
        return gguf_fail(err, SLM_E_INVALID, path, -1, "incomplete sink");
    mapping_t *m = NULL;
    reader_t r = {.path = path, .err = err};
    int rc = map_file(path, &m, &r.size, err);
    if (rc)
        return rc;
    r.base = m->addr;
    if (parse(&r)) {
        mapping_release(m);
        rc = err && err->code ? err->code : SLM_E_FORMAT;
    } else if (sink->set_mapping(sink->ctx, m, mapping_release) != 0) {
        mapping_release(m);
        rc = gguf_fail(err, SLM_E_PLUGIN, path, -1, "the host refused the file mapping");
    } else if (report(&r, sink)) {
        rc = err && err->code ? err->code : SLM_E_PLUGIN;
    }
    if (!rc && gguf_host && gguf_host->log)
        gguf_host->log(SLM_LOG_DEBUG, "format-gguf", "%s: %llu keys, %llu tensors, alignment %llu",
                       path, (unsigned long long)r.n_kv, (unsigned long long)r.n_tensors,
                       (unsigned long long)r.alignment);
    free(r.kvs);
    free(r.tensors);
    return rc;
}

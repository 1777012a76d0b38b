/* One .safetensors file: maps it read-only and validates the header (length, JSON,
 * dtypes, shapes, offsets) before the reader trusts a single tensor byte. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

static const st_dtype_t dtypes[] = {
    {"F32", 4, SLM_TYPE_F32},  {"F16", 2, SLM_TYPE_F16},  {"BF16", 2, SLM_TYPE_BF16},
    {"F64", 8, SLM_TYPE_F64},  {"I8", 1, SLM_TYPE_I8},    {"I16", 2, SLM_TYPE_I16},
    {"I32", 4, SLM_TYPE_I32},  {"I64", 8, SLM_TYPE_I64},  {"U8", 1, -1},
    {"U16", 2, -1},            {"U32", 4, -1},            {"U64", 8, -1},
    {"BOOL", 1, -1},           {"F8_E4M3", 1, -1},        {"F8_E5M2", 1, -1},
    {"F8_E8M0", 1, -1},
};

const st_dtype_t *st_dtype_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return &dtypes[i];
    return NULL;
}

const st_dtype_t *st_dtype_by_type(int32_t type)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].type >= 0 && dtypes[i].type == type)
            return &dtypes[i];
    return NULL;
}

void st_file_close(st_file_t *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    json_decref(f->header);
    free(f->entries);
    free(f->path);
    free(f);
}

static int map_file(const char *path, st_file_t *f, slm_error_t *err)
{
    struct stat st;
    int fd = plugin_open_file(path, &st, err);
    if (fd < 0)
        return fd;
    if (st.st_size < 8) {
        close(fd);
        return st_fail(err, SLM_E_FORMAT, path, 0,
                       "file is %lld bytes, too short for the 8-byte header length (truncated?)",
                       (long long)st.st_size);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return st_fail(err, SLM_E_IO, path, -1, "cannot map: %s", strerror(e));
    f->map = p;
    f->map_len = (size_t)st.st_size;
    return SLM_OK;
}

static int parse_u64(json_t *j, uint64_t *v)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return -1;
    *v = (uint64_t)json_integer_value(j);
    return 0;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry. */
static int parse_entry(st_file_t *f, const char *name, json_t *obj, st_entry_t *e,
                       slm_error_t *err)
{
    const char *p = f->path;
    if (!json_is_object(obj))
        return st_fail(err, SLM_E_FORMAT, p, 8, "tensor '%s': entry is not a JSON object", name);
    const char *dt = json_string_value(json_object_get(obj, "dtype"));
    json_t *shape = json_object_get(obj, "shape"), *offs = json_object_get(obj, "data_offsets");
    if (!dt || !json_is_array(shape) || !json_is_array(offs))
        return st_fail(err, SLM_E_FORMAT, p, 8,
                       "tensor '%s': needs string \"dtype\", array \"shape\" and array \"data_offsets\"",
                       name);
    e->name = name;
    e->dtype = st_dtype_by_name(dt);
    if (!e->dtype)
        return st_fail(err, SLM_E_FORMAT, p, 8, "tensor '%s': unknown dtype '%s'", name, dt);
    size_t nd = json_array_size(shape);
    if (nd > ST_MAX_DIMS)
        return st_fail(err, SLM_E_UNSUPPORTED, p, 8,
                       "tensor '%s': %zu dimensions, slmops supports at most %d", name, nd,
                       ST_MAX_DIMS);
    e->n_dims = (int)nd;
    uint64_t count = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (parse_u64(json_array_get(shape, i), &d) || d > INT64_MAX)
            return st_fail(err, SLM_E_FORMAT, p, 8,
                           "tensor '%s': shape[%zu] is not a non-negative integer", name, i);
        if (d && count > UINT64_MAX / d)
            return st_fail(err, SLM_E_FORMAT, p, 8, "tensor '%s': shape product overflows 64 bits",
                           name);
        count *= d;
        e->shape[i] = (int64_t)d;
    }
    if (count > INT64_MAX / e->dtype->size)
        return st_fail(err, SLM_E_FORMAT, p, 8, "tensor '%s': byte size of the shape overflows",
                       name);
    if (json_array_size(offs) != 2 || parse_u64(json_array_get(offs, 0), &e->begin) ||
        parse_u64(json_array_get(offs, 1), &e->end) || e->begin > e->end)
        return st_fail(err, SLM_E_FORMAT, p, 8,
                       "tensor '%s': data_offsets must be two integers [begin, end] with begin <= end",
                       name);
    if (e->end > f->data_len)
        return st_fail(err, SLM_E_FORMAT, p, (int64_t)f->data_at,
                       "tensor '%s': data_offsets [%llu, %llu] run past the end of the %llu-byte data section",
                       name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)f->data_len);
    if (e->end - e->begin != count * e->dtype->size)
        return st_fail(err, SLM_E_FORMAT, p, (int64_t)(f->data_at + e->begin),
                       "tensor '%s': data_offsets hold %llu bytes but dtype %s x %llu elements needs %llu",
                       name, (unsigned long long)(e->end - e->begin), e->dtype->name,
                       (unsigned long long)count, (unsigned long long)(count * e->dtype->size));
    return SLM_OK;
}

static int by_begin(const void *a, const void *b)
{
    const st_entry_t *x = *(st_entry_t *const *)a, *y = *(st_entry_t *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Like the reference implementation: the tensors cover the data section exactly,
 * without overlap, gap or trailing bytes. */
static int check_tiling(st_file_t *f, slm_error_t *err)
{
    if (!f->n_entries) {
        if (f->data_len)
            return st_fail(err, SLM_E_FORMAT, f->path, (int64_t)f->data_at,
                           "%llu data bytes but no tensors", (unsigned long long)f->data_len);
        return SLM_OK;
    }
    st_entry_t **order = malloc(f->n_entries * sizeof *order);
    if (!order)
        return st_fail(err, SLM_E_NOMEM, f->path, -1, "out of memory");
    for (size_t i = 0; i < f->n_entries; i++)
        order[i] = &f->entries[i];
    qsort(order, f->n_entries, sizeof *order, by_begin);
    int rc = SLM_OK;
    uint64_t at = 0;
    for (size_t i = 0; i < f->n_entries && rc == SLM_OK; i++) {
        const st_entry_t *e = order[i];
        if (e->begin < at)
            rc = st_fail(err, SLM_E_FORMAT, f->path, (int64_t)(f->data_at + e->begin),
                         "tensors '%s' and '%s' overlap", order[i - 1]->name, e->name);
        else if (e->begin > at)
            rc = st_fail(err, SLM_E_FORMAT, f->path, (int64_t)(f->data_at + at),
                         "gap of %llu bytes before tensor '%s'",
                         (unsigned long long)(e->begin - at), e->name);
        at = e->end;
    }
    if (rc == SLM_OK && at != f->data_len)
        rc = st_fail(err, SLM_E_FORMAT, f->path, (int64_t)(f->data_at + at),
                     "%llu bytes after the last tensor", (unsigned long long)(f->data_len - at));
    free(order);
    return rc;
}

static int parse_header(st_file_t *f, slm_error_t *err)
{
    const uint8_t *b = f->map;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)b[i] << (8 * i);
    if (n > ST_MAX_HEADER)
        return st_fail(err, SLM_E_FORMAT, f->path, 0,
                       "header length %llu exceeds the %llu-byte limit",
                       (unsigned long long)n, ST_MAX_HEADER);
    if (n > f->map_len - 8)
        return st_fail(err, SLM_E_FORMAT, f->path, 0,
                       "header length %llu runs past the end of the %zu-byte file (truncated?)",
                       (unsigned long long)n, f->map_len);
    if (n < 2 || b[8] != '{')
        return st_fail(err, SLM_E_FORMAT, f->path, 8, "header is not a JSON object");
    f->data_at = 8 + n;
    f->data = b + f->data_at;
    f->data_len = f->map_len - f->data_at;
    json_error_t je;
    f->header = json_loadb((const char *)b + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!f->header)
        return st_fail(err, SLM_E_FORMAT, f->path, 8 + je.position,
                       strstr(je.text, "duplicate") ? "duplicate name in header: %s"
                                                    : "header is not valid JSON: %s",
                       je.text);
    if (!json_is_object(f->header))
        return st_fail(err, SLM_E_FORMAT, f->path, 8, "header is not a JSON object");
    return SLM_OK;
}

static int parse_entries(st_file_t *f, slm_error_t *err)
{
    size_t cap = json_object_size(f->header);
    f->entries = calloc(cap ? cap : 1, sizeof *f->entries);
    if (!f->entries)
        return st_fail(err, SLM_E_NOMEM, f->path, -1, "out of memory for %zu entries", cap);
    const char *key;
    json_t *v;
    json_object_foreach(f->header, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v))
                return st_fail(err, SLM_E_FORMAT, f->path, 8, "__metadata__ is not an object");
            json_object_foreach(v, mk, mv) if (!json_is_string(mv))
                return st_fail(err, SLM_E_FORMAT, f->path, 8,
                               "__metadata__ value '%s' is not a string", mk);
            f->metadata = v;
            continue;
        }
        int rc = parse_entry(f, key, v, &f->entries[f->n_entries], err);
        if (rc)
            return rc;
        f->n_entries++;
    }
    return check_tiling(f, err);
}

int st_file_open(const char *path, st_file_t **out, slm_error_t *err)
{
    *out = NULL;
    st_file_t *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return st_fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    }
    int rc = map_file(path, f, err);
    if (!rc)
        rc = parse_header(f, err);
    if (!rc)
        rc = parse_entries(f, err);
    if (rc) {
        st_file_close(f);
        return rc;
    }
    *out = f;
    return SLM_OK;
}

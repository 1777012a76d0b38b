/* Loading an optimizer's saved state (optim-save.c writes it): every name, shape and
 * size is checked against the optimizer before any of its state changes. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/input.h>

#include "internal/graph.h"
#include "internal/util.h"
#include "train/optim-internal.h"

#define MAX_HEADER ((uint64_t)64 << 20)

typedef struct source {
    const char *what, *path;
    const unsigned char *mem;   /* NULL: fd */
    int fd;
    uint64_t size;
} source_t;

static int bad(const source_t *s, int code, slm_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(const source_t *s, int code, slm_error_t *err, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slm__fail(err, code, s->path, -1, "%s: %s", s->what, msg);
}

static int src_read(const source_t *s, uint64_t off, void *buf, size_t n, slm_error_t *err)
{
    if (off > s->size || n > s->size - off)
        return bad(s, SLM_E_FORMAT, err, "ends at byte %" PRIu64 ", before the %zu bytes at "
                   "%" PRIu64 " its header announces (truncated?)", s->size, n, off);
    if (s->mem) {
        memcpy(buf, s->mem + off, n);
        return SLM_OK;
    }
    for (char *c = buf; n > 0;) {
        ssize_t r = pread(s->fd, c, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return bad(s, SLM_E_IO, err, "cannot read: %s", strerror(errno));
        if (r == 0)
            return bad(s, SLM_E_FORMAT, err, "ends early (truncated?)");
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return SLM_OK;
}

/* What a header says, checked against the optimizer before anything of it changes. */
typedef struct parsed {
    slm_optim_params_t params;
    int64_t step;
    uint64_t data_at;           /* where the data starts */
    uint64_t *offset;           /* per slot and moment, relative to data_at */
} parsed_t;

static const char *meta_get(json_t *meta, const char *key)
{
    return json_string_value(json_object_get(meta, key));
}

static bool parse_real(json_t *meta, const char *key, float *out)
{
    const char *s = meta_get(meta, key);
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    bool ok = json_is_number(v);
    if (ok)
        *out = (float)json_number_value(v);
    json_decref(v);
    return ok;
}

static bool parse_int(json_t *meta, const char *key, int64_t *out)
{
    const char *s = meta_get(meta, key);
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static int parse_params(const slm_optim_t *o, const source_t *src, json_t *meta, parsed_t *p,
                        slm_error_t *err)
{
    const char *kind = meta_get(meta, "optimizer");
    if (!slm__optim_kind_by_name(kind))
        return bad(src, SLM_E_FORMAT, err, "names no optimizer this build knows (\"%s\")",
                   kind ? kind : "");
    if (strcmp(kind, o->kind->name) != 0)
        return bad(src, SLM_E_INVALID, err, "holds the state of the %s optimizer; this one is "
                   "%s", kind, o->kind->name);
    slm_optim_params_t *q = &p->params;
    slm_optim_params_default(q);
    q->kind = o->params.kind;
    q->schedule = slm__lr_schedule_from_name(meta_get(meta, "schedule"));
    static const char *const reals[] = {"lr", "beta1", "beta2", "eps", "weight_decay",
                                        "clip_norm", "min_lr_ratio"};
    float *dst[] = {&q->lr, &q->beta1, &q->beta2, &q->eps, &q->weight_decay, &q->clip_norm,
                    &q->min_lr_ratio};
    for (size_t i = 0; i < SLM__ARRAY_LEN(reals); i++)
        if (!parse_real(meta, reals[i], dst[i]))
            return bad(src, SLM_E_FORMAT, err, "metadata \"%s\" is missing or not a number",
                       reals[i]);
    if (!parse_int(meta, "step", &p->step) || p->step < 0 ||
        !parse_int(meta, "warmup_steps", &q->warmup_steps) ||
        !parse_int(meta, "total_steps", &q->total_steps))
        return bad(src, SLM_E_FORMAT, err, "metadata \"step\", \"warmup_steps\" or "
                   "\"total_steps\" is missing or not a count");
    const char *why = q->schedule < 0 ? "unknown learning-rate schedule"
                                      : slm__optim_params_check(q);
    if (why)
        return bad(src, SLM_E_FORMAT, err, "saved hyper-parameters are invalid: %s", why);
    if ((q->clip_norm > 0.0f) != (o->sumsq != NULL))
        return bad(src, SLM_E_INVALID, err, "was saved %s gradient clipping; this optimizer "
                   "was built %s it", o->sumsq ? "without" : "with", o->sumsq ? "with" : "without");
    return SLM_OK;
}

/* A metadata list of parameter names (JSON text), or NULL. */
static json_t *name_list(json_t *meta, const char *key)
{
    const char *s = meta_get(meta, key);
    json_t *a = s ? json_loads(s, 0, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static bool list_has(json_t *a, const char *name)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(json_string_value(json_array_get(a, i)), name) == 0)
            return true;
    return false;
}

static int check_lists(const slm_optim_t *o, const source_t *src, json_t *names,
                       json_t *no_decay, slm_error_t *err)
{
    for (size_t i = 0; i < o->n_slots; i++) {
        const char *n = o->slots[i].param->name;
        if (!list_has(names, n))
            return bad(src, SLM_E_INVALID, err, "has no state for parameter '%s' of this graph",
                       n);
        if (list_has(no_decay, n) == o->slots[i].decays)
            return bad(src, SLM_E_INVALID, err, "parameter '%s' %s weight decay there but %s "
                       "here", n, o->slots[i].decays ? "skips" : "takes",
                       o->slots[i].decays ? "takes it" : "skips it");
    }
    for (size_t i = 0; i < json_array_size(names); i++) {
        const char *n = json_string_value(json_array_get(names, i));
        bool known = false;
        for (size_t j = 0; j < o->n_slots && !known; j++)
            known = strcmp(n, o->slots[j].param->name) == 0;
        if (!known)
            return bad(src, SLM_E_INVALID, err, "has state for parameter '%s', which this "
                       "graph does not train", n);
    }
    return SLM_OK;
}

static bool shape_matches(json_t *shape, const slm_tensor_t *t)
{
    int n = slm_tensor_n_dims(t);
    if (!json_is_array(shape) || json_array_size(shape) != (size_t)n)
        return false;
    for (int d = 0; d < n; d++) {
        json_t *v = json_array_get(shape, (size_t)(n - 1 - d));
        if (!json_is_integer(v) || json_integer_value(v) != slm_tensor_ne(t, d))
            return false;
    }
    return true;
}

/* Every moment this optimizer has is there, as F32 of its shape within the data, and
 * nothing else is. */
static int check_entries(const slm_optim_t *o, const source_t *src, json_t *root,
                         parsed_t *p, slm_error_t *err)
{
    uint64_t data_len = src->size - p->data_at;
    size_t k = 0;
    for (size_t i = 0; i < o->n_slots; i++) {
        for (int m = 0; m < o->kind->n_moments; m++, k++) {
            const slm_tensor_t *t = o->slots[i].moment[m];
            char name[SLM__OPTIM_ENTRY_NAME_MAX];
            slm__optim_entry_name(o, i, m, name);
            json_t *e = json_object_get(root, name), *off = json_object_get(e, "data_offsets");
            if (!e)
                return bad(src, SLM_E_INVALID, err, "has no tensor '%s'", name);
            const char *dtype = json_string_value(json_object_get(e, "dtype"));
            if (!dtype || strcmp(dtype, "F32") != 0)
                return bad(src, SLM_E_INVALID, err, "tensor '%s' is %s, not F32", name,
                           dtype ? dtype : "untyped");
            if (!shape_matches(json_object_get(e, "shape"), t))
                return bad(src, SLM_E_INVALID, err, "tensor '%s' does not have the shape of "
                           "parameter '%s' [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                           "] (innermost first)", name, o->slots[i].param->name,
                           slm_tensor_ne(t, 0), slm_tensor_ne(t, 1), slm_tensor_ne(t, 2),
                           slm_tensor_ne(t, 3));
            json_int_t b = json_integer_value(json_array_get(off, 0));
            json_int_t e2 = json_integer_value(json_array_get(off, 1));
            if (json_array_size(off) != 2 || b < 0 || e2 < b ||
                (uint64_t)(e2 - b) != slm_tensor_nbytes(t) || (uint64_t)e2 > data_len)
                return bad(src, SLM_E_FORMAT, err, "tensor '%s' has data offsets outside the "
                           "file's %" PRIu64 " data bytes or not of its %zu bytes", name,
                           data_len, slm_tensor_nbytes(t));
            p->offset[k] = (uint64_t)b;
        }
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < o->n_slots && !known; i++)
            for (int m = 0; m < o->kind->n_moments && !known; m++) {
                char name[SLM__OPTIM_ENTRY_NAME_MAX];
                slm__optim_entry_name(o, i, m, name);
                known = strcmp(key, name) == 0;
            }
        if (!known)
            return bad(src, SLM_E_INVALID, err, "has tensor '%s', which this optimizer does "
                       "not hold", key);
    }
    return SLM_OK;
}

static int parse_header(const slm_optim_t *o, const source_t *src, parsed_t *p,
                        slm_error_t *err)
{
    unsigned char le[8];
    if (src->size < 8)
        return bad(src, SLM_E_FORMAT, err, "is %" PRIu64 " bytes long, too short for an "
                   "optimizer state", src->size);
    int rc = src_read(src, 0, le, sizeof le, err);
    if (rc)
        return rc;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | le[i];
    if (hlen > MAX_HEADER || hlen > src->size - 8)
        return bad(src, SLM_E_FORMAT, err, "announces a %" PRIu64 "-byte header in a %" PRIu64
                   "-byte file: not an optimizer state, or truncated", hlen, src->size);
    char *text = malloc((size_t)hlen + 1);
    if (!text)
        return bad(src, SLM_E_NOMEM, err, "out of memory");
    rc = src_read(src, 8, text, (size_t)hlen, err);
    json_error_t je;
    json_t *root = rc ? NULL : json_loadb(text, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (rc)
        return rc;
    if (!json_is_object(root)) {
        json_decref(root);
        return bad(src, SLM_E_FORMAT, err, "the header is not a JSON object%s%s",
                   root ? "" : ": ", root ? "" : je.text);
    }
    p->data_at = 8 + hlen;
    json_t *meta = json_object_get(root, "__metadata__");
    const char *fmt = meta_get(meta, "format"), *ver = meta_get(meta, "format_version");
    json_t *names = name_list(meta, "parameters"), *no_decay = name_list(meta, "no_decay");
    if (!fmt || strcmp(fmt, SLM__OPTIM_STATE_FORMAT) != 0)
        rc = bad(src, SLM_E_FORMAT, err, "is not an slmops optimizer state (no \"format\": "
                 "\"" SLM__OPTIM_STATE_FORMAT "\" in its metadata)");
    else if (!ver || strcmp(ver, SLM__OPTIM_STATE_VERSION) != 0)
        rc = bad(src, SLM_E_FORMAT, err, "has format version \"%s\"; this build reads "
                 SLM__OPTIM_STATE_VERSION, ver ? ver : "");
    else if (!names || !no_decay)
        rc = bad(src, SLM_E_FORMAT, err, "metadata \"parameters\" or \"no_decay\" is missing "
                 "or not a list of names");
    else if ((rc = parse_params(o, src, meta, p, err)) == SLM_OK &&
             (rc = check_lists(o, src, names, no_decay, err)) == SLM_OK)
        rc = check_entries(o, src, root, p, err);
    json_decref(names);
    json_decref(no_decay);
    json_decref(root);
    return rc;
}

/* Parse and check everything, read every moment, and only then replace o's state. */
static int load(slm_optim_t *o, const source_t *src, slm_error_t *err)
{
    int rc = slm__optim_check_names(o, src->what, src->path, err);
    if (rc)
        return rc;
    size_t n = o->n_slots * (size_t)o->kind->n_moments;
    parsed_t p = {.offset = calloc(n ? n : 1, sizeof *p.offset)};
    float **data = calloc(n ? n : 1, sizeof *data);
    if (!p.offset || !data)
        rc = bad(src, SLM_E_NOMEM, err, "out of memory");
    if (rc == SLM_OK)
        rc = parse_header(o, src, &p, err);
    for (size_t k = 0; rc == SLM_OK && k < n; k++) {
        const slm_tensor_t *t = o->slots[k / (size_t)o->kind->n_moments]
                                    .moment[k % (size_t)o->kind->n_moments];
        size_t bytes = slm_tensor_nbytes(t);
        data[k] = malloc(bytes ? bytes : 1);
        rc = data[k] ? src_read(src, p.data_at + p.offset[k], data[k], bytes, err)
                     : bad(src, SLM_E_NOMEM, err, "out of memory");
    }
    if (rc == SLM_OK) {
        slm__optim_drop_pending(o);
        for (size_t k = 0; k < n; k++)
            o->slots[k / (size_t)o->kind->n_moments].pending[k % (size_t)o->kind->n_moments] =
                data[k];
        o->params = p.params;
        o->step = p.step;
        o->grad_norm = -1.0;
        o->state_pending = true;
    } else {
        for (size_t k = 0; data && k < n; k++)
            free(data[k]);
    }
    free(data);
    free(p.offset);
    return rc;
}

int slm_optim_load_mem(slm_optim_t *o, const void *data, size_t size, const char *name,
                       slm_error_t *err)
{
    const char *what = name ? name : "optimizer state";
    if (!o || (!data && size))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s: NULL argument", what);
    source_t src = {.what = what, .mem = data ? data : (const void *)"", .fd = -1,
                    .size = size};
    return load(o, &src, err);
}

int slm_optim_load(slm_optim_t *o, const char *path, slm_error_t *err)
{
    if (!o || !path)
        return slm__fail(err, SLM_E_INVALID, path, -1, "optimizer state: NULL argument");
    int fd;
    int rc = slm_input_open(path, 0, &fd, err);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return slm__fail(err, SLM_E_IO, path, -1, "%s: cannot stat: %s", path, strerror(e));
    }
    source_t src = {.what = path, .path = path, .fd = fd, .size = (uint64_t)st.st_size};
    rc = load(o, &src, err);
    close(fd);
    return rc;
}

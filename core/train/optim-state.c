/* An optimizer's saved state, in a safetensors-compatible layout (8-byte little-endian
 * header length, JSON header, raw f32 moments) so that Python tools read it as well. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/input.h>
#include <slmops/output.h>

#include "internal/graph.h"
#include "internal/util.h"
#include "train/optim-internal.h"

#define STATE_FORMAT "slmops-optimizer-state"
#define STATE_VERSION "1"
#define MAX_HEADER ((uint64_t)64 << 20)
#define CHUNK ((size_t)1 << 20)
#define ENTRY_NAME_MAX 96

/* ---- names ---- */

static void entry_name(const slm_optim_t *o, size_t i, int m, char *buf)
{
    snprintf(buf, ENTRY_NAME_MAX, "%s%s", o->slots[i].param->name, o->kind->moment_suffix[m]);
}

/* Moments are matched by parameter name: every parameter needs a distinct one. */
static int check_names(const slm_optim_t *o, const char *what, const char *path,
                       slm_error_t *err)
{
    for (size_t i = 0; i < o->n_slots; i++) {
        const char *a = o->slots[i].param->name;
        if (a[0] == '\0')
            return slm__fail(err, SLM_E_INVALID, path, -1, "%s: trainable tensor #%zu has no "
                             "name; name every PARAM tensor (slm_tensor_set_name) to save or "
                             "load an optimizer state", what, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a, o->slots[j].param->name) == 0)
                return slm__fail(err, SLM_E_INVALID, path, -1, "%s: two trainable tensors are "
                                 "named '%s'; their moments could not be told apart", what, a);
    }
    return SLM_OK;
}

/* ---- the header ---- */

/* Metadata values are strings (safetensors' rule); reals go through jansson, whose
 * output and input ignore the locale and round-trip every double. */
static int meta_real(json_t *meta, const char *key, double x)
{
    json_t *r = json_real(x);
    char *s = r ? json_dumps(r, JSON_ENCODE_ANY) : NULL;
    json_decref(r);
    int rc = s ? json_object_set_new(meta, key, json_string(s)) : -1;
    free(s);
    return rc;
}

static int meta_int(json_t *meta, const char *key, int64_t x)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, x);
    return json_object_set_new(meta, key, json_string(s));
}

static int meta_names(json_t *meta, const char *key, const slm_optim_t *o, bool only_no_decay)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < o->n_slots; i++)
        if (!only_no_decay || !o->slots[i].decays)
            json_array_append_new(a, json_string(o->slots[i].param->name));
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    int rc = s ? json_object_set_new(meta, key, json_string(s)) : -1;
    free(s);
    return rc;
}

static json_t *metadata(const slm_optim_t *o)
{
    const slm_optim_params_t *p = &o->params;
    json_t *m = json_object();
    if (!m)
        return NULL;
    int rc = json_object_set_new(m, "format", json_string(STATE_FORMAT)) |
             json_object_set_new(m, "format_version", json_string(STATE_VERSION)) |
             json_object_set_new(m, "optimizer", json_string(o->kind->name)) |
             meta_int(m, "step", o->step) | meta_real(m, "lr", p->lr) |
             meta_real(m, "beta1", p->beta1) | meta_real(m, "beta2", p->beta2) |
             meta_real(m, "eps", p->eps) | meta_real(m, "weight_decay", p->weight_decay) |
             meta_real(m, "clip_norm", p->clip_norm) |
             json_object_set_new(m, "schedule", json_string(slm__lr_schedule_name(p->schedule))) |
             meta_int(m, "warmup_steps", p->warmup_steps) |
             meta_int(m, "total_steps", p->total_steps) |
             meta_real(m, "min_lr_ratio", p->min_lr_ratio) |
             meta_names(m, "parameters", o, false) | meta_names(m, "no_decay", o, true);
    if (rc) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* safetensors lists shapes outermost first. */
static json_t *shape_of(const slm_tensor_t *t)
{
    json_t *a = json_array();
    for (int d = slm_tensor_n_dims(t) - 1; a && d >= 0; d--)
        json_array_append_new(a, json_integer(slm_tensor_ne(t, d)));
    return a;
}

/* The JSON header padded with spaces to a multiple of 8 (as safetensors writes it),
 * and the bytes of data it describes. */
static int header_text(const slm_optim_t *o, char **text, size_t *len, uint64_t *data_len,
                       const char *what, const char *path, slm_error_t *err)
{
    json_t *root = json_object(), *meta = metadata(o);
    bool ok = root && meta;
    if (!ok)
        json_decref(meta);   /* json_object_set_new releases it itself, even on failure */
    else
        ok = json_object_set_new(root, "__metadata__", meta) == 0;
    uint64_t at = 0;
    for (size_t i = 0; ok && i < o->n_slots; i++) {
        for (int m = 0; ok && m < o->kind->n_moments; m++) {
            const slm_tensor_t *t = o->slots[i].moment[m];
            char name[ENTRY_NAME_MAX];
            entry_name(o, i, m, name);
            uint64_t n = slm_tensor_nbytes(t);
            json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape_of(t),
                                  "data_offsets", (json_int_t)at, (json_int_t)(at + n));
            ok = e && json_object_set_new(root, name, e) == 0;
            at += n;
        }
    }
    char *s = ok ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!s)
        return slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", what);
    size_t n = strlen(s), padded = (n + 7) / 8 * 8;
    char *t = realloc(s, padded + 1);
    if (!t) {
        free(s);
        return slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", what);
    }
    memset(t + n, ' ', padded - n);
    t[padded] = '\0';
    *text = t;
    *len = padded;
    *data_len = at;
    return SLM_OK;
}

/* ---- writing ---- */

typedef struct sink {
    int fd;                     /* -1: memory */
    unsigned char *mem;
    size_t at;
    const char *what, *path;
} sink_t;

static int sink_put(sink_t *s, const void *p, size_t n, slm_error_t *err)
{
    if (s->fd < 0) {
        memcpy(s->mem + s->at, p, n);
        s->at += n;
        return SLM_OK;
    }
    for (const char *c = p; n > 0;) {
        ssize_t w = write(s->fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return slm__fail(err, SLM_E_IO, s->path, -1, "%s: cannot write: %s", s->what,
                             w < 0 ? strerror(errno) : "no progress");
        c += w;
        n -= (size_t)w;
    }
    return SLM_OK;
}

/* One moment's bytes: what the graph holds, or while the optimizer still holds the
 * state itself, the loaded values or zeros. */
static int put_moment(const slm_optim_t *o, const slm__optim_slot_t *s, int m, sink_t *out,
                      unsigned char *buf, slm_error_t *err)
{
    size_t n = slm_tensor_nbytes(s->moment[m]);
    for (size_t off = 0; off < n;) {
        size_t len = n - off < CHUNK ? n - off : CHUNK;
        const void *src = buf;
        if (o->state_pending && s->pending[m])
            src = (const char *)s->pending[m] + off;
        else if (o->state_pending)
            memset(buf, 0, len);
        else if (slm_tensor_get_data(s->moment[m], buf, off, len) != SLM_OK)
            return slm__fail(err, SLM_E_DEVICE, out->path, -1, "%s: reading '%s' from the "
                             "device failed", out->what, s->moment[m]->name);
        int rc = sink_put(out, src, len, err);
        if (rc)
            return rc;
        off += len;
    }
    return SLM_OK;
}

static int write_state(const slm_optim_t *o, sink_t *out, const char *hdr, size_t hlen,
                       slm_error_t *err)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int rc = sink_put(out, le, sizeof le, err);
    if (rc == SLM_OK)
        rc = sink_put(out, hdr, hlen, err);
    unsigned char *buf = rc == SLM_OK && o->kind->n_moments ? malloc(CHUNK) : NULL;
    if (rc == SLM_OK && o->kind->n_moments && !buf)
        rc = slm__fail(err, SLM_E_NOMEM, out->path, -1, "%s: out of memory", out->what);
    for (size_t i = 0; rc == SLM_OK && i < o->n_slots; i++)
        for (int m = 0; rc == SLM_OK && m < o->kind->n_moments; m++)
            rc = put_moment(o, &o->slots[i], m, out, buf, err);
    free(buf);
    return rc;
}

int slm_optim_save_mem(const slm_optim_t *o, void **data, size_t *size, slm_error_t *err)
{
    const char *what = "optimizer state";
    if (!o || !data || !size)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s: NULL argument", what);
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    int rc = check_names(o, what, NULL, err);
    if (rc == SLM_OK)
        rc = header_text(o, &hdr, &hlen, &dlen, what, NULL, err);
    if (rc)
        return rc;
    if (dlen > SIZE_MAX - 8 - hlen) {
        free(hdr);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "%s: too large for memory", what);
    }
    sink_t out = {.fd = -1, .mem = malloc(8 + hlen + (size_t)dlen), .what = what};
    if (!out.mem) {
        free(hdr);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "%s: out of memory", what);
    }
    rc = write_state(o, &out, hdr, hlen, err);
    free(hdr);
    if (rc) {
        free(out.mem);
        return rc;
    }
    *data = out.mem;
    *size = out.at;
    return SLM_OK;
}

int slm_optim_save(const slm_optim_t *o, const char *path, slm_error_t *err)
{
    if (!o || !path)
        return slm__fail(err, SLM_E_INVALID, path, -1, "optimizer state: NULL argument");
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    int rc = check_names(o, path, path, err);
    if (rc == SLM_OK)
        rc = header_text(o, &hdr, &hlen, &dlen, path, path, err);
    if (rc)
        return rc;
    slm_output_params_t p;
    slm_output_params_init(&p);
    slm_output_t *tmp;
    rc = slm_output_prepare(path, &p, &tmp, err);
    if (rc) {
        free(hdr);
        return rc;
    }
    sink_t out = {.fd = open(slm_output_path(tmp), O_WRONLY | O_TRUNC | O_CLOEXEC), .what = path,
                  .path = path};
    if (out.fd < 0)
        rc = slm__fail(err, SLM_E_IO, path, -1, "%s: cannot open %s: %s", path,
                       slm_output_path(tmp), strerror(errno));
    else
        rc = write_state(o, &out, hdr, hlen, err);
    free(hdr);
    if (out.fd >= 0 && close(out.fd) != 0 && rc == SLM_OK)
        rc = slm__fail(err, SLM_E_IO, path, -1, "%s: cannot write: %s", path, strerror(errno));
    if (rc) {
        slm_output_abort(tmp);
        return rc;
    }
    return slm_output_commit(tmp, err);
}

/* ---- reading ---- */

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
            char name[ENTRY_NAME_MAX];
            entry_name(o, i, m, name);
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
                char name[ENTRY_NAME_MAX];
                entry_name(o, i, m, name);
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
    if (!fmt || strcmp(fmt, STATE_FORMAT) != 0)
        rc = bad(src, SLM_E_FORMAT, err, "is not an slmops optimizer state (no \"format\": "
                 "\"" STATE_FORMAT "\" in its metadata)");
    else if (!ver || strcmp(ver, STATE_VERSION) != 0)
        rc = bad(src, SLM_E_FORMAT, err, "has format version \"%s\"; this build reads "
                 STATE_VERSION, ver ? ver : "");
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
    int rc = check_names(o, src->what, src->path, err);
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

/* Saving an optimizer's state in a safetensors-compatible layout (8-byte little-endian
 * header length, JSON header, raw f32 moments) so that Python tools read it as well. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/output.h>

#include "internal/graph.h"
#include "internal/util.h"
#include "train/optim-internal.h"

#define CHUNK ((size_t)1 << 20)

void slm__optim_entry_name(const slm_optim_t *o, size_t i, int m, char *buf)
{
    snprintf(buf, SLM__OPTIM_ENTRY_NAME_MAX, "%s%s", o->slots[i].param->name,
             o->kind->moment_suffix[m]);
}

int slm__optim_check_names(const slm_optim_t *o, const char *what, const char *path,
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
    int rc = json_object_set_new(m, "format", json_string(SLM__OPTIM_STATE_FORMAT)) |
             json_object_set_new(m, "format_version", json_string(SLM__OPTIM_STATE_VERSION)) |
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
            char name[SLM__OPTIM_ENTRY_NAME_MAX];
            slm__optim_entry_name(o, i, m, name);
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
    int rc;
    for (size_t off = 0; off < n;) {
        size_t len = n - off < CHUNK ? n - off : CHUNK;
        const void *src = buf;
        if (o->state_pending && s->pending[m])
            src = (const char *)s->pending[m] + off;
        else if (o->state_pending)
            memset(buf, 0, len);
        else if ((rc = slm_tensor_get_data(s->moment[m], buf, off, len)) != SLM_OK)
            return slm__fail(err, rc == SLM_E_STATE ? SLM_E_STATE : SLM_E_DEVICE, out->path, -1,
                             "%s: cannot read '%s': %s", out->what, s->moment[m]->name,
                             rc == SLM_E_STATE ? "its graph is no longer allocated"
                                               : slm_strerror(rc));
        if ((rc = sink_put(out, src, len, err)) != SLM_OK)
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
    int rc = slm__optim_check_names(o, what, NULL, err);
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
    int rc = slm__optim_check_names(o, path, path, err);
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

/* The merge job: every adapter checked against the base, each adapted weight
 * dequantized, given scale * B * A in f32 and stored again, the result written atomically. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slmops/adapter.h>
#include <slmops/log.h>
#include <slmops/merge.h>
#include <slmops/model-file.h>
#include <slmops/types.h>

#include "internal/model-file.h"
#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

typedef struct mjob {
    slm_registry_t *reg;
    const char *base_path;
    slm_merge_params_t p;
    slm_model_file_t *base, *out;
    slm_adapter_t **ads;
    void **bufs;               /* merged tensor data, owned until the save */
    size_t n_bufs;
    const char **inputs;       /* the base and every adapter: OUT is none of them */
    slm_merge_report_t rep;
    slm_error_t *err;
} mjob_t;

void slm_merge_params_default(slm_merge_params_t *p)
{
    if (p)
        *p = (slm_merge_params_t){.struct_size = sizeof *p};
}

void slm_merge_report_free(slm_merge_report_t *r)
{
    if (!r)
        return;
    free(r->mix);
    r->mix = NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void output_params(const mjob_t *j, slm_output_params_t *out)
{
    slm_output_params_init(out);
    out->inputs = j->inputs;
    out->n_inputs = j->p.n_adapters + 1;
}

static int check_args(mjob_t *j, const char *out_path)
{
    if (!j->p.n_adapters || !j->p.adapters)
        return slm__fail(j->err, SLM_E_INVALID, NULL, -1, "merge: no adapter to merge");
    j->inputs = calloc(j->p.n_adapters + 1, sizeof *j->inputs);
    if (!j->inputs)
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "merge: out of memory");
    j->inputs[0] = j->base_path;
    for (size_t i = 0; i < j->p.n_adapters; i++) {
        const slm_merge_adapter_t *a = &j->p.adapters[i];
        if (!a->path || !isfinite(a->scale))
            return slm__fail(j->err, SLM_E_INVALID, a->path, -1, "merge: adapter %zu has no path or a "
                             "scale that is not a finite number", i + 1);
        j->inputs[i + 1] = a->path;
    }
    if (j->p.type_name) {
        int32_t type;
        int rc = slm_quantize_type_lookup(j->reg, j->p.type_name, &type, j->err);
        if (rc == SLM_E_NOT_FOUND)
            return slm__fail(j->err, SLM_E_INVALID, NULL, -1, "merge: unknown type '%s'",
                             j->p.type_name);
        if (rc)
            return rc;
    }
    slm_output_params_t out;
    output_params(j, &out);
    return slm__model_file_check_output(j->reg, out_path, j->p.format, &out, j->err);
}

static int load_adapters(mjob_t *j)
{
    j->ads = calloc(j->p.n_adapters, sizeof *j->ads);
    if (!j->ads)
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "merge: out of memory");
    for (size_t i = 0; i < j->p.n_adapters; i++) {
        int rc = slm_adapter_load(j->reg, j->p.adapters[i].path, j->base, &j->ads[i], j->err);
        if (rc)
            return rc;
    }
    j->rep.n_adapters = j->p.n_adapters;
    return SLM_OK;
}

static int copy_metadata(mjob_t *j)
{
    size_t n = slm_model_file_n_values(j->base);
    for (size_t i = 0; i < n; i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        int rc = slm_model_file_value(j->base, i, &v);
        if (rc >= 0)
            rc = v.type == SLM_MF_ARRAY
                     ? slm_model_file_set_array(j->out, v.key, v.elem_type, v.data, v.lens, v.n, j->err)
                     : slm_model_file_set_value(j->out, v.key, v.type, v.data,
                                                v.type == SLM_MF_STRING ? v.n : 0, j->err);
        if (rc < 0)
            return rc;
    }
    return SLM_OK;
}

/* w (n_out rows of n_in) += scale * B * A, each row's delta summed in f32 first as
 * llama.cpp's export-lora and PEFT's merge compute B * A before adding it. */
static int add_delta(float *w, const slm_adapter_target_t *t, float scale)
{
    float *delta = malloc((size_t)t->n_in * sizeof *delta);
    if (!delta)
        return SLM_E_NOMEM;
    for (int64_t o = 0; o < t->n_out; o++) {
        memset(delta, 0, (size_t)t->n_in * sizeof *delta);
        for (int32_t r = 0; r < t->rank; r++) {
            float c = t->b[o * t->rank + r];
            const float *a = t->a + (int64_t)r * t->n_in;
            for (int64_t i = 0; i < t->n_in; i++)
                delta[i] += c * a[i];
        }
        float *row = w + o * t->n_in;
        for (int64_t i = 0; i < t->n_in; i++)
            row[i] += scale * delta[i];
    }
    free(delta);
    return SLM_OK;
}

static void *keep(mjob_t *j, uint64_t nbytes)
{
    void *buf = nbytes <= SIZE_MAX ? malloc(nbytes ? (size_t)nbytes : 1) : NULL;
    if (buf)
        j->bufs[j->n_bufs++] = buf;
    return buf;
}

/* One base tensor: borrowed when no adapter touches it; else merged in f32 and
 * stored in its own type, or left f32 for the quantize job to convert. */
static int merge_tensor(mjob_t *j, const slm_model_tensor_t *t)
{
    bool touched = false;
    for (size_t a = 0; a < j->p.n_adapters && !touched; a++)
        touched = slm_adapter_find(j->ads[a], t->name, NULL) >= 0;
    if (!touched) {
        int rc = slm_model_file_add_tensor(j->out, t->name, t->type, t->n_dims, t->ne, t->data,
                                           t->nbytes, SLM_MF_BORROW, j->err);
        return rc < 0 ? rc : SLM_OK;
    }
    int64_t rows = t->ne[1], ne0 = t->ne[0];
    int nt = slm__jobs_threads(j->p.n_threads);
    float *w = keep(j, (uint64_t)rows * (uint64_t)ne0 * sizeof(float));
    if (!w)
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "merge: %s: out of memory", t->name);
    int rc = slm__jobs_convert(j->reg, t->type, t->data, SLM_TYPE_F32, w, rows, ne0, nt, j->err);
    for (size_t a = 0; rc == SLM_OK && a < j->p.n_adapters; a++) {
        slm_adapter_target_t at = {.struct_size = sizeof at};
        int i = slm_adapter_find(j->ads[a], t->name, &at);
        if (i < 0)
            continue;
        float scale = slm_adapter_scale(j->ads[a], (size_t)i, j->p.adapters[a].scale);
        if (add_delta(w, &at, scale) != SLM_OK)
            rc = slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "merge: %s: out of memory", t->name);
    }
    if (rc != SLM_OK)
        return rc;
    j->rep.n_weights++;
    int32_t type = j->p.type_name ? SLM_TYPE_F32 : t->type;
    uint64_t nbytes = (uint64_t)rows * slm_type_row_size(type, ne0);
    void *data = w;
    if (type != SLM_TYPE_F32) {
        if (!(data = keep(j, nbytes)))
            return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "merge: %s: out of memory", t->name);
        rc = slm__jobs_convert(j->reg, SLM_TYPE_F32, w, type, data, rows, ne0, nt, j->err);
    }
    if (rc == SLM_OK)
        rc = slm_model_file_add_tensor(j->out, t->name, type, t->n_dims, t->ne, data, nbytes,
                                       SLM_MF_BORROW, j->err);
    return rc < 0 ? rc : SLM_OK;
}

static int merge_tensors(mjob_t *j)
{
    size_t n = slm_model_file_n_tensors(j->base);
    uint64_t total = 0, done = 0;
    j->bufs = calloc(2 * n + 1, sizeof *j->bufs);
    if (!j->bufs)
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "merge: out of memory");
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < n; i++)
        if (slm_model_file_tensor(j->base, i, &t) >= 0)
            total += t.nbytes;
    for (size_t i = 0; i < n; i++) {
        if (j->p.cancel && *j->p.cancel)
            return slm__fail(j->err, SLM_E_CANCELLED, NULL, -1, "merge: cancelled");
        int rc = slm_model_file_tensor(j->base, i, &t);
        if (rc < 0 || (rc = merge_tensor(j, &t)) != SLM_OK)
            return rc;
        done += t.nbytes;
        if (j->p.progress)
            j->p.progress(j->p.user, "merge", done, total, t.name);
    }
    return SLM_OK;
}

static int write_out(mjob_t *j, const char *out_path)
{
    slm_output_params_t out;
    output_params(j, &out);
    if (!j->p.type_name)
        return slm_model_file_save_output(j->out, j->reg, out_path, j->p.format, &out, j->err);
    slm_quantize_params_t q;
    slm_quantize_params_default(&q);
    q.type_name = j->p.type_name;
    slm_quantize_type_lookup(j->reg, j->p.type_name, &q.type, NULL);
    q.allow_requantize = true;   /* asked for by name: the base's quantized tensors too */
    q.n_threads = j->p.n_threads;
    q.format = j->p.format;
    q.progress = j->p.progress;
    q.user = j->p.user;
    q.cancel = j->p.cancel;
    slm_quantize_report_t qr = {.struct_size = sizeof qr};
    const char *inputs[1] = {j->base_path};
    slm__jobrt_t rt;
    slm__jobrt_init(&rt, q.progress, q.user, q.cancel);
    rt.inputs = inputs;
    rt.n_inputs = 1;
    int rc = slm__quantize_container(j->reg, j->out, j->base_path, out_path, &q, &rt, &qr, j->err);
    if (rc == SLM_OK) {
        j->rep.type = qr.type;
        j->rep.mix = qr.mix;
        qr.mix = NULL;
        slm_quantize_report_free(&qr);
    }
    return rc;
}

static void mjob_free(mjob_t *j)
{
    slm_model_file_free(j->out);
    for (size_t i = 0; i < j->n_bufs; i++)
        free(j->bufs[i]);
    free(j->bufs);
    for (size_t i = 0; j->ads && i < j->p.n_adapters; i++)
        slm_adapter_free(j->ads[i]);
    free(j->ads);
    slm_model_file_free(j->base);
    free(j->inputs);
}

int slm_merge_model(slm_registry_t *reg, const char *base_path, const char *out_path,
                    const slm_merge_params_t *p, slm_merge_report_t *report, slm_error_t *err)
{
    if (!reg || !base_path || !out_path || !p)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "merge: NULL argument");
    mjob_t j = {.reg = reg, .base_path = base_path, .err = err};
    slm_merge_params_default(&j.p);
    memcpy(&j.p, p, p->struct_size < sizeof j.p ? p->struct_size : sizeof j.p);
    j.rep = (slm_merge_report_t){.struct_size = sizeof j.rep, .type = -1};
    double t0 = now_s();
    int rc = check_args(&j, out_path);
    if (rc == SLM_OK)
        rc = slm_model_file_open(reg, base_path, NULL, &j.base, err);
    if (rc == SLM_OK)
        rc = load_adapters(&j);
    if (rc == SLM_OK && !(j.out = slm_model_file_new()))
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "merge: out of memory");
    if (rc == SLM_OK)
        rc = copy_metadata(&j);
    if (rc == SLM_OK)
        rc = merge_tensors(&j);
    if (rc == SLM_OK)
        rc = write_out(&j, out_path);
    j.rep.seconds = now_s() - t0;
    if (rc == SLM_OK)
        slm_log(SLM_LOG_INFO, "merge", "%s: %zu weights changed by %zu adapters", out_path,
                j.rep.n_weights, j.rep.n_adapters);
    if (rc == SLM_OK && report && report->struct_size >= sizeof *report) {
        *report = j.rep;
        j.rep.mix = NULL;
    }
    slm_merge_report_free(&j.rep);
    mjob_free(&j);
    return rc;
}

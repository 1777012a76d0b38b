/* The quantize job: read a model with any format plugin, give each weight matrix
 * its type (docs/quantization.md), write the result atomically, report it. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/model-file.h>
#include <slmops/types.h>

#include "internal/model-file.h"
#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

/* GGUF's general.quantization_version of the current ggml block layouts. */
#define QUANT_VERSION 2u

typedef struct qjob {
    slm_registry_t *reg;
    slm_quantize_params_t p;
    const slm__jobrt_t *rt;
    slm__qplan_t plan;
    slm_model_file_t *in, *out;
    void **bufs;               /* converted tensor data, owned until the save */
    size_t n_bufs;
    uint64_t done, total;
    slm_quantize_report_t *rep;
    slm_error_t *err;
} qjob_t;

void slm_quantize_params_default(slm_quantize_params_t *p)
{
    if (p)
        *p = (slm_quantize_params_t){.struct_size = sizeof *p, .type = SLM_TYPE_Q8_0};
}

void slm_quantize_report_free(slm_quantize_report_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tensors; i++) {
        free(r->tensors[i].name);
        free(r->tensors[i].kept);
    }
    free(r->tensors);
    r->tensors = NULL;
    r->n_tensors = 0;
    free(r->mix);
    r->mix = NULL;
}

/* OUT may be none of the job's inputs: the model read, the evaluation text, and
 * what a pipeline adds. */
static void output_params(const slm__jobrt_t *rt, slm_output_params_t *out)
{
    slm_output_params_init(out);
    out->inputs = rt->inputs;
    out->n_inputs = rt->n_inputs;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Metadata are copied in order; the quantization keys are then set. */
static int copy_value(qjob_t *j, const slm_model_value_t *v)
{
    if (v->type == SLM_MF_ARRAY)
        return slm_model_file_set_array(j->out, v->key, v->elem_type, v->data, v->lens, v->n,
                                        j->err);
    return slm_model_file_set_value(j->out, v->key, v->type, v->data,
                                    v->type == SLM_MF_STRING ? v->n : 0, j->err);
}

static int copy_metadata(qjob_t *j)
{
    size_t n = slm_model_file_n_values(j->in);
    for (size_t i = 0; i < n; i++) {
        slm_model_value_t v = {.struct_size = sizeof v};
        int rc = slm_model_file_value(j->in, i, &v);
        if (rc < 0 || (rc = copy_value(j, &v)) < 0)
            return rc;
    }
    int32_t ft = j->plan.file_type;
    uint32_t qv = QUANT_VERSION, ftu = (uint32_t)ft;
    j->rep->file_type = ft;
    /* A type llama.cpp has no LLAMA_FTYPE for: no claim about the mix at all. */
    if (ft < 0)
        slm_model_file_remove_value(j->out, "general.file_type");
    int rc = ft < 0 ? SLM_OK
                    : slm_model_file_set_value(j->out, "general.file_type", SLM_MF_U32, &ftu, 0,
                                               j->err);
    if (rc >= 0)
        rc = slm_model_file_set_value(j->out, "general.quantization_version", SLM_MF_U32, &qv, 0,
                                      j->err);
    return rc < 0 ? rc : SLM_OK;
}

static int add_report_entry(qjob_t *j, const slm_model_tensor_t *t, int32_t type,
                            uint64_t bytes_out, const char *why)
{
    slm_quantize_tensor_t *e = &j->rep->tensors[j->rep->n_tensors];
    *e = (slm_quantize_tensor_t){.name = slm__strdup(t->name), .type_in = t->type,
                                 .type_out = type, .n_dims = t->n_dims, .bytes_in = t->nbytes,
                                 .bytes_out = bytes_out};
    memcpy(e->ne, t->ne, sizeof e->ne);
    if (why[0])
        e->kept = slm__strdup(why);
    j->rep->n_tensors++;
    if (!e->name || (why[0] && !e->kept))
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    if (why[0]) {
        j->rep->n_kept++;
        slm_log(SLM_LOG_INFO, "quantize", "%s: %s", t->name, why);
    }
    return SLM_OK;
}

static int quantize_tensor(qjob_t *j, size_t i, const slm_model_tensor_t *t)
{
    int32_t type = j->plan.types[i];
    const char *why = j->plan.why[i] ? j->plan.why[i] : "";
    uint64_t rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
    size_t row_out = slm_type_row_size(type, t->ne[0]);
    uint64_t nbytes = type == t->type ? t->nbytes : 0;
    int rc;
    if (type == t->type) {
        rc = slm_model_file_add_tensor(j->out, t->name, type, t->n_dims, t->ne, t->data,
                                       t->nbytes, SLM_MF_BORROW, j->err);
    } else {
        void *buf = NULL;
        if (!row_out || !slm__mul_overflow_u64(rows, row_out, &nbytes) || nbytes > SIZE_MAX ||
            !(buf = malloc(nbytes ? (size_t)nbytes : 1)))
            return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "quantize: %s: cannot hold %s "
                             "data of shape [%lld, %llu]", t->name, slm_type_name(type),
                             (long long)t->ne[0], (unsigned long long)rows);
        j->bufs[j->n_bufs++] = buf;
        rc = slm__jobs_convert(j->reg, t->type, t->data, type, buf, (int64_t)rows, t->ne[0],
                               j->p.n_threads, j->err);
        if (rc == SLM_OK)
            rc = slm_model_file_add_tensor(j->out, t->name, type, t->n_dims, t->ne, buf,
                                           nbytes, SLM_MF_BORROW, j->err);
    }
    if (rc < 0)
        return rc;
    return add_report_entry(j, t, type, nbytes, why);
}

static int quantize_tensors(qjob_t *j)
{
    size_t n = j->plan.n;
    j->bufs = calloc(n + 1, sizeof *j->bufs);
    j->rep->tensors = calloc(n + 1, sizeof *j->rep->tensors);
    if (!j->bufs || !j->rep->tensors)
        return slm__fail(j->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < n; i++)
        if (slm_model_file_tensor(j->in, i, &t) >= 0)
            j->total += t.nbytes;
    for (size_t i = 0; i < n; i++) {
        if (slm__jobrt_cancelled(j->rt))
            return slm__jobrt_fail_cancelled(j->err, "quantize");
        int rc = slm_model_file_tensor(j->in, i, &t);
        if (rc < 0 || (rc = quantize_tensor(j, i, &t)) < 0)
            return rc;
        j->done += t.nbytes;
        j->rep->n_weights += (uint64_t)t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
        j->rep->data_bytes_in += t.nbytes;
        j->rep->data_bytes_out += j->rep->tensors[j->rep->n_tensors - 1].bytes_out;
        slm__jobrt_progress(j->rt, "quantize", j->done, j->total, t.name, NAN);
    }
    /* The last safe point: a cancel raised by the last progress call is seen
     * before anything is written. */
    return slm__jobrt_cancelled(j->rt) ? slm__jobrt_fail_cancelled(j->err, "quantize") : SLM_OK;
}

static void qjob_free(qjob_t *j)
{
    slm__qplan_free(&j->plan);
    slm_model_file_free(j->out);
    for (size_t i = 0; i < j->n_bufs; i++)
        free(j->bufs[i]);
    free(j->bufs);
    slm_model_file_free(j->in);
}

static int check_args(slm_registry_t *reg, const char *in_path, const char *out_path,
                      const slm_quantize_params_t *p, const slm__jobrt_t *rt,
                      slm_quantize_report_t *report, slm_error_t *err)
{
    if (!reg || !in_path || !out_path || !p || !report)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize: NULL argument");
    /* OUT is judged before the work, and again when it is written. */
    slm_output_params_t out;
    output_params(rt, &out);
    int rc = slm__model_file_check_output(reg, out_path, p->format, &out, err);
    if (rc)
        return rc;
    if (p->eval_ctx < 0 || (p->eval_ctx > 0 && p->eval_ctx < 8))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize: evaluation context %d is "
                         "too small (at least 8)", p->eval_ctx);
    return SLM_OK;
}

/* What the user sees of both sides: the files' sizes, or the tensor data's when
 * the input is not one regular file (a Hugging Face folder). */
static void warn_if_larger(const char *in_path, const char *out_path,
                           const slm_quantize_report_t *r)
{
    struct stat st;
    bool files = stat(in_path, &st) == 0 && S_ISREG(st.st_mode);
    uint64_t in = files ? r->file_bytes_in : r->data_bytes_in;
    uint64_t out = files ? r->file_bytes_out : r->data_bytes_out;
    if (out <= in)
        return;
    slm_log(SLM_LOG_WARN, "quantize", "%s is larger than its input: %llu bytes (%.2f MiB) "
            "from %llu bytes (%.2f MiB)%s", out_path, (unsigned long long)out,
            (double)out / 1048576.0, (unsigned long long)in, (double)in / 1048576.0,
            files ? "" : " of tensor data");
}

/* The job on a container already read (in stays the caller's): in_path names it in
 * messages and is the input OUT may not be. */
int slm__quantize_container(slm_registry_t *reg, const slm_model_file_t *in, const char *in_path,
                            const char *out_path, const slm_quantize_params_t *p,
                            const slm__jobrt_t *rt, slm_quantize_report_t *report,
                            slm_error_t *err)
{
    int rc = check_args(reg, in_path, out_path, p, rt, report, err);
    if (rc)
        return rc;
    qjob_t j = {.reg = reg, .rt = rt, .err = err, .in = (slm_model_file_t *)in};
    slm_quantize_params_default(&j.p);
    memcpy(&j.p, p, p->struct_size < sizeof j.p ? p->struct_size : sizeof j.p);
    slm_quantize_report_t rep = {.struct_size = sizeof rep, .type = j.p.type, .file_type = -1};
    j.rep = &rep;
    j.plan.file_type = -1;
    double t0 = slm__job_now();
    if ((rc = slm__qplan_make(reg, j.in, in_path, &j.p, &j.plan, err)) == SLM_OK) {
        rep.type = j.plan.type;
        rep.mix = j.plan.mix;
        j.plan.mix = NULL;
        j.out = slm_model_file_new();
        rc = j.out ? copy_metadata(&j)
                   : slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    }
    int32_t *tokens = NULL;
    size_t n_tokens = 0;
    /* The text is checked before anything is written. */
    if (rc == SLM_OK && j.p.eval_file)
        rc = slm__jobs_eval_tokens(j.in, j.p.eval_file, j.p.eval_ctx > 0 ? j.p.eval_ctx : 512,
                                   &tokens, &n_tokens, err);
    if (rc == SLM_OK)
        rc = quantize_tensors(&j);
    slm_output_params_t out;
    output_params(rt, &out);
    if (rc == SLM_OK)
        rc = slm_model_file_save_output(j.out, reg, out_path, j.p.format, &out, err);
    if (rc == SLM_OK) {
        slm__jobrt_wrote(rt, out_path);
        rep.seconds = slm__job_now() - t0;
        rep.file_bytes_in = file_size(in_path);
        rep.file_bytes_out = file_size(out_path);
        rep.bpw_in = rep.n_weights ? 8.0 * (double)rep.data_bytes_in / (double)rep.n_weights : 0;
        rep.bpw_out = rep.n_weights ? 8.0 * (double)rep.data_bytes_out / (double)rep.n_weights : 0;
        warn_if_larger(in_path, out_path, &rep);
        if (j.p.eval_file)
            rc = slm__jobs_eval(reg, j.in, out_path, tokens, n_tokens, &j.p, rt, &rep, err);
    }
    free(tokens);
    j.in = NULL;   /* the caller's */
    qjob_free(&j);
    if (rc != SLM_OK) {
        slm_quantize_report_free(&rep);
        return rc;
    }
    *report = rep;
    return SLM_OK;
}

int slm__quantize_run(slm_registry_t *reg, const char *in_path, const char *out_path,
                      const slm_quantize_params_t *p, const slm__jobrt_t *rt,
                      slm_quantize_report_t *report, slm_error_t *err)
{
    int rc = check_args(reg, in_path, out_path, p, rt, report, err);
    if (rc)
        return rc;
    slm_model_file_t *in;
    if ((rc = slm_model_file_open(reg, in_path, NULL, &in, err)) != SLM_OK)
        return rc;
    rc = slm__quantize_container(reg, in, in_path, out_path, p, rt, report, err);
    slm_model_file_free(in);
    return rc;
}

int slm_quantize_model(slm_registry_t *reg, const char *in_path, const char *out_path,
                       const slm_quantize_params_t *p, slm_quantize_report_t *report,
                       slm_error_t *err)
{
    if (!p)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize: NULL argument");
    slm_quantize_params_t o;
    slm_quantize_params_default(&o);
    memcpy(&o, p, p->struct_size < sizeof o ? p->struct_size : sizeof o);
    const char *inputs[2] = {in_path, o.eval_file};
    slm__jobrt_t rt;
    slm__jobrt_init(&rt, o.progress, o.user, o.cancel);
    rt.inputs = inputs;
    rt.n_inputs = o.eval_file ? 2 : 1;
    return slm__quantize_run(reg, in_path, out_path, p, &rt, report, err);
}

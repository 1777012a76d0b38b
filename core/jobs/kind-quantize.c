/* The "quantize" job kind: JSON options into slm_quantize_params_t, the work of
 * quantize.c, and its report as JSON (the fields docs/jobs.md lists). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/types.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

typedef struct qstate {
    const char *in, *out;
    slm_quantize_params_t p;
    slm_tensor_type_rule_t *rules;
    slm_quantize_report_t rep;
    char format[160];
} qstate_t;

static const slm__job_opt_t opts[] = {
    {"input", SLM__OPT_STRING},
    {"output", SLM__OPT_STRING},
    {"type", SLM__OPT_STRING},
    {"tensor_types", SLM__OPT_ARRAY},
    {"pure", SLM__OPT_BOOL},
    {"allow_requantize", SLM__OPT_BOOL},
    {"eval", SLM__OPT_STRING},
    {"eval_ctx", SLM__OPT_INT},
    {"threads", SLM__OPT_INT},
    {"format", SLM__OPT_STRING},
    {NULL, 0},
};
static const char *const inputs[] = {"input", "eval", NULL};
static const char *const outputs[] = {"output", NULL};

static int need(const slm_job_t *job, const char *key, const char **v, slm_error_t *err)
{
    *v = slm__job_str(job, key);
    return *v ? SLM_OK : slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize job: the option "
                                   "'%s' is required", key);
}

/* ["REGEX=TYPE", ...], as llama-quantize's --tensor-type (the last '=' splits). */
static int read_rules(const slm_job_t *job, qstate_t *q, slm_error_t *err)
{
    const json_t *a = slm__job_get(job, "tensor_types");
    size_t n = json_array_size(a);
    q->rules = calloc(n + 1, sizeof *q->rules);
    if (!q->rules)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize job: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *r = json_string_value(json_array_get(a, i));
        const char *eq = r ? strrchr(r, '=') : NULL;
        if (!eq || eq == r)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize job: tensor_types[%zu] "
                             "is not a string REGEX=TYPE", i);
        int32_t type = slm_type_from_name(eq + 1);
        if (type < 0)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize job: tensor_types[%zu] "
                             "'%s': unknown type '%s'", i, r, eq + 1);
        char *pat = strndup(r, (size_t)(eq - r));
        if (!pat)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize job: out of memory");
        q->rules[i] = (slm_tensor_type_rule_t){.pattern = pat, .type = type};
        q->p.n_rules = i + 1;
    }
    q->p.rules = q->rules;
    return SLM_OK;
}

/* A format named as the CLI's --to names it ("gguf") means its plugin. */
static const char *format_plugin(const slm_job_t *job, const char *name, char *buf,
                                 size_t cap)
{
    if (!name)
        return NULL;
    snprintf(buf, cap, "format-%s", name);
    return slm_registry_find(slm__job_registry(job), "format", buf) ? buf : name;
}

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    qstate_t *q = state;
    slm_quantize_params_default(&q->p);
    int rc;
    if ((rc = need(job, "input", &q->in, err)) || (rc = need(job, "output", &q->out, err)) ||
        (rc = need(job, "type", &q->p.type_name, err)))
        return rc;
    int64_t ctx = slm__job_int(job, "eval_ctx", 0), threads = slm__job_int(job, "threads", 0);
    if (ctx < 0 || ctx > INT32_MAX || threads < 0 || threads > 4096)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize job: %s %lld is out of range",
                         ctx < 0 || ctx > INT32_MAX ? "eval_ctx" : "threads",
                         (long long)(ctx < 0 || ctx > INT32_MAX ? ctx : threads));
    q->p.pure = slm__job_bool(job, "pure", false);
    q->p.allow_requantize = slm__job_bool(job, "allow_requantize", false);
    q->p.eval_file = slm__job_str(job, "eval");
    q->p.eval_ctx = (int32_t)ctx;
    q->p.n_threads = (int32_t)threads;
    q->p.format = format_plugin(job, slm__job_str(job, "format"), q->format, sizeof q->format);
    return read_rules(job, q, err);
}

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    qstate_t *q = state;
    q->rep = (slm_quantize_report_t){.struct_size = sizeof q->rep};
    return slm__quantize_run(slm__job_registry(job), q->in, q->out, &q->p, rt, &q->rep, err);
}

static json_t *settings(const void *state)
{
    const qstate_t *q = state;
    json_t *rules = json_array();
    for (size_t i = 0; i < q->p.n_rules; i++) {
        char *r = NULL;
        if (asprintf(&r, "%s=%s", q->rules[i].pattern, slm_type_name(q->rules[i].type)) >= 0)
            json_array_append_new(rules, slm__json_path(r));
        free(r);
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:b, s:b, s:o, s:i, s:i, s:o}",
                     "input", slm__json_path(q->in), "output", slm__json_path(q->out),
                     "type", slm__json_path(q->p.type_name), "tensor_types", rules,
                     "pure", q->p.pure, "allow_requantize", q->p.allow_requantize,
                     "eval", slm__json_path(q->p.eval_file),
                     "eval_ctx", q->p.eval_ctx > 0 ? q->p.eval_ctx : 512,
                     "threads", q->p.n_threads, "format", slm__json_path(q->p.format));
}

static double mib(uint64_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

/* Tensors per output type, in the order the types first appear. */
static json_t *type_counts(const slm_quantize_report_t *r)
{
    json_t *o = json_object();
    for (size_t i = 0; i < r->n_tensors; i++) {
        const char *n = slm_type_name(r->tensors[i].type_out);
        json_int_t c = json_integer_value(json_object_get(o, n));
        json_object_set_new(o, n, json_integer(c + 1));
    }
    return o;
}

static json_t *shape(const slm_quantize_tensor_t *t)
{
    json_t *a = json_array();
    for (int d = 0; d < t->n_dims && d < 4; d++)
        json_array_append_new(a, json_integer(t->ne[d]));
    return a;
}

static json_t *eval_results(const qstate_t *q)
{
    const slm_quantize_report_t *r = &q->rep;
    return json_pack("{s:o, s:i, s:i, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "file", slm__json_path(q->p.eval_file), "ctx", r->eval_ctx, "chunks",
                     r->eval_chunks, "scored", (json_int_t)r->eval_scored,
                     "ppl_before", slm__json_num(r->ppl_before),
                     "ppl_after", slm__json_num(r->ppl_after),
                     "ppl_change", slm__json_num(r->ppl_after / r->ppl_before - 1.0),
                     "kld_mean", slm__json_num(r->kld_mean),
                     "kld_max", slm__json_num(r->kld_max),
                     "top1_agree", slm__json_num(r->top1_agree),
                     "seconds", slm__json_num(r->eval_seconds));
}

static json_t *results(const void *state)
{
    const qstate_t *q = state;
    const slm_quantize_report_t *r = &q->rep;
    json_t *kept = json_array(), *tensors = json_array();
    for (size_t i = 0; i < r->n_tensors; i++) {
        const slm_quantize_tensor_t *t = &r->tensors[i];
        json_array_append_new(tensors, json_pack("{s:o, s:o, s:s, s:s, s:I, s:I}", "name",
            slm__json_path(t->name), "shape", shape(t), "type_in", slm_type_name(t->type_in),
            "type", slm_type_name(t->type_out), "bytes_in", (json_int_t)t->bytes_in, "bytes",
            (json_int_t)t->bytes_out));
        if (t->kept)
            json_array_append_new(kept, json_pack("{s:o, s:o, s:s, s:o}", "name",
                                  slm__json_path(t->name), "shape", shape(t), "type",
                                  slm_type_name(t->type_out), "reason",
                                  slm__json_path(t->kept)));
    }
    json_t *doc = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, "
                            "s:o, s:o, s:o, s:o}",
        "type", slm_type_name(r->type), "mix", slm__json_path(r->mix),
        "file_type", (json_int_t)r->file_type, "file_bytes_in", (json_int_t)r->file_bytes_in,
        "file_bytes_out", (json_int_t)r->file_bytes_out, "data_bytes_in",
        (json_int_t)r->data_bytes_in, "data_bytes_out", (json_int_t)r->data_bytes_out,
        "mib_in", slm__json_num(mib(r->file_bytes_in)),
        "mib_out", slm__json_num(mib(r->file_bytes_out)),
        "bpw_in", slm__json_num(r->bpw_in), "bpw_out", slm__json_num(r->bpw_out),
        "n_weights", (json_int_t)r->n_weights, "types", type_counts(r),
        "kept", kept, "tensors", tensors, "seconds", slm__json_num(r->seconds));
    if (doc && r->has_eval)
        json_object_set_new(doc, "eval", eval_results(q));
    return doc;
}

static void release(void *state)
{
    qstate_t *q = state;
    slm_quantize_report_free(&q->rep);
    for (size_t i = 0; i < q->p.n_rules; i++)
        free((char *)q->rules[i].pattern);
    free(q->rules);
}

const slm__job_kind_t slm__job_kind_quantize = {
    .name = "quantize",
    .opts = opts,
    .input_keys = inputs,
    .output_keys = outputs,
    .state_size = sizeof(qstate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
    .release = release,
};

/* The "train" job kind: fine-tuning a base model with a trainer plugin's method
 * (full, lora, qlora, ...): its options, the run (train-*.c) and its report with
 * the whole loss curve and the settings. docs/jobs.md, "train". */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"
#include "jobs/train.h"

typedef struct tstate {
    slm__train_opts_t o;
    slm__train_t t;
    const char *schedule_name;
} tstate_t;

static const slm__job_opt_t opts[] = {
    {"model", SLM__OPT_STRING},
    {"data", SLM__OPT_STRING},
    {"val_data", SLM__OPT_STRING},
    {"val_split", SLM__OPT_NUMBER},
    {"val_batches", SLM__OPT_INT},
    {"method", SLM__OPT_STRING},
    {"method_options", SLM__OPT_OBJECT},
    {"adapters", SLM__OPT_ARRAY},
    {"output", SLM__OPT_STRING},
    {"output_gguf", SLM__OPT_STRING},
    {"format", SLM__OPT_STRING},
    {"ctx", SLM__OPT_INT},
    {"batch", SLM__OPT_INT},
    {"accum", SLM__OPT_INT},
    {"epochs", SLM__OPT_INT},
    {"steps", SLM__OPT_INT},
    {"lr", SLM__OPT_NUMBER},
    {"beta1", SLM__OPT_NUMBER},
    {"beta2", SLM__OPT_NUMBER},
    {"eps", SLM__OPT_NUMBER},
    {"weight_decay", SLM__OPT_NUMBER},
    {"clip", SLM__OPT_NUMBER},
    {"schedule", SLM__OPT_STRING},
    {"warmup", SLM__OPT_INT},
    {"min_lr_ratio", SLM__OPT_NUMBER},
    {"seed", SLM__OPT_SEED},
    {"eval_every", SLM__OPT_INT},
    {"save_every", SLM__OPT_INT},
    {"keep", SLM__OPT_INT},
    {"checkpoints", SLM__OPT_STRING},
    {"resume", SLM__OPT_STRING},
    {"log", SLM__OPT_STRING},
    {"skip_bad_lines", SLM__OPT_BOOL},
    {"threads", SLM__OPT_INT},
    {"device", SLM__OPT_STRING},
    {"dump_grads", SLM__OPT_STRING},
    {"chat_template", SLM__OPT_STRING},
    {"teacher", SLM__OPT_STRING},
    {"teacher_top_k", SLM__OPT_INT},
    {"teacher_cache", SLM__OPT_STRING},
    {NULL, 0},
};
static const char *const inputs[] = {"model", "data", "val_data", "teacher", NULL};
static const char *const outputs[] = {"output", "output_gguf", "log", "dump_grads", NULL};

static const char *const schedules[] = {"constant", "linear", "cosine"};

static int bad(slm_error_t *err, const char *key, const char *why)
{
    return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: %s %s", key, why);
}

static int int_in(const slm_job_t *job, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                  int64_t *out, slm_error_t *err)
{
    int64_t v = slm__job_int(job, key, dflt);
    if (v < lo || v > hi)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: %s %lld is out of range "
                         "(%lld to %lld)", key, (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return SLM_OK;
}

static int real_in(const slm_job_t *job, const char *key, double dflt, double lo, double hi,
                   bool hi_open, float *out, slm_error_t *err)
{
    const json_t *v = slm__job_get(job, key);
    double x = v ? json_number_value(v) : dflt;
    if (!isfinite(x) || x < lo || x > hi || (hi_open && x == hi)) {
        char why[96];
        snprintf(why, sizeof why, "%g is out of range (%g to %g%s)", x, lo, hi,
                 hi_open ? ", excluded" : "");
        return bad(err, key, why);
    }
    *out = (float)x;
    return SLM_OK;
}

static int read_ints(const slm_job_t *job, slm__train_opts_t *o, slm_error_t *err)
{
    int64_t ctx = 0, batch = 0, accum = 0, threads = 0, val_batches = 0, keep = 0;
    int rc;
    if ((rc = int_in(job, "ctx", 512, 2, 1 << 20, &ctx, err)) ||
        (rc = int_in(job, "batch", 1, 1, 4096, &batch, err)) ||
        (rc = int_in(job, "accum", 1, 1, 1 << 16, &accum, err)) ||
        (rc = int_in(job, "epochs", 1, 1, 1000000, &o->epochs, err)) ||
        (rc = int_in(job, "steps", 0, 0, (int64_t)1 << 40, &o->steps, err)) ||
        (rc = int_in(job, "warmup", 0, 0, (int64_t)1 << 40, &o->warmup, err)) ||
        (rc = int_in(job, "eval_every", 0, 0, (int64_t)1 << 40, &o->eval_every, err)) ||
        (rc = int_in(job, "save_every", 0, 0, (int64_t)1 << 40, &o->save_every, err)) ||
        (rc = int_in(job, "keep", 3, 0, 1 << 20, &keep, err)) ||
        (rc = int_in(job, "val_batches", 0, 0, 1 << 30, &val_batches, err)) ||
        (rc = int_in(job, "threads", 0, 0, 4096, &threads, err)) ||
        (rc = int_in(job, "teacher_top_k", 0, 0, 1 << 24, &o->teacher_top_k, err)))
        return rc;
    if ((int64_t)ctx * batch > (1 << 22))
        return bad(err, "ctx x batch", "is more than 4M tokens a micro-batch");
    o->ctx = (int32_t)ctx;
    o->batch = (int32_t)batch;
    o->accum = (int32_t)accum;
    o->threads = (int32_t)threads;
    o->val_batches = (int32_t)val_batches;
    o->keep = (uint32_t)keep;
    return SLM_OK;
}

static int read_reals(const slm_job_t *job, slm__train_opts_t *o, slm_error_t *err)
{
    float split;
    int rc;
    if ((rc = real_in(job, "lr", 1e-4, 0, 1e3, false, &o->lr, err)) ||
        (rc = real_in(job, "beta1", 0.9, 0, 1, true, &o->beta1, err)) ||
        (rc = real_in(job, "beta2", 0.999, 0, 1, true, &o->beta2, err)) ||
        (rc = real_in(job, "eps", 1e-8, 1e-30, 1, false, &o->eps, err)) ||
        (rc = real_in(job, "weight_decay", 0, 0, 1e3, false, &o->weight_decay, err)) ||
        (rc = real_in(job, "clip", 1.0, 0, 1e9, false, &o->clip, err)) ||
        (rc = real_in(job, "min_lr_ratio", 0, 0, 1, false, &o->min_lr_ratio, err)) ||
        (rc = real_in(job, "val_split", 0, 0, 1, true, &split, err)))
        return rc;
    o->val_split = split;
    return SLM_OK;
}

static int read_schedule(const slm_job_t *job, tstate_t *s, slm_error_t *err)
{
    const char *name = slm__job_str(job, "schedule");
    s->schedule_name = name ? name : "linear";
    for (size_t i = 0; i < SLM__ARRAY_LEN(schedules); i++)
        if (strcmp(s->schedule_name, schedules[i]) == 0) {
            s->o.schedule = (int32_t)i;
            return SLM_OK;
        }
    return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: schedule '%s' is unknown "
                     "(constant, linear, cosine)", s->schedule_name);
}

/* ["PATH", "PATH:SCALE", ...]: frozen adapters, each with its user scale (default 1). */
static int read_adapters(const slm_job_t *job, slm__train_opts_t *o, slm_error_t *err)
{
    const json_t *a = slm__job_get(job, "adapters");
    size_t n = json_array_size(a);
    o->adapters = calloc(n + 1, sizeof *o->adapters);
    o->adapter_scales = calloc(n + 1, sizeof *o->adapter_scales);
    if (!o->adapters || !o->adapter_scales)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "train job: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_array_get(a, i));
        if (!v || !*v)
            return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: adapters[%zu] is not "
                             "a path (PATH or PATH:SCALE)", i);
        const char *colon = strrchr(v, ':');
        char *end = NULL;
        double scale = colon ? strtod(colon + 1, &end) : 1.0;
        bool scaled = colon && end != colon + 1 && *end == '\0' && isfinite(scale);
        o->adapters[i] = scaled ? strndup(v, (size_t)(colon - v)) : strdup(v);
        o->adapter_scales[i] = scaled ? (float)scale : 1.0f;
        if (!o->adapters[i])
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "train job: out of memory");
        o->n_adapters = i + 1;
    }
    return SLM_OK;
}

static char *strip_slashes(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    char *s = malloc(n + sizeof ".checkpoints");
    if (s) {
        memcpy(s, path, n);
        strcpy(s + n, ".checkpoints");
    }
    return s;
}

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    tstate_t *s = state;
    slm__train_opts_t *o = &s->o;
    o->model = slm__job_str(job, "model");
    o->data = slm__job_str(job, "data");
    o->output = slm__job_str(job, "output");
    o->dump_grads = slm__job_str(job, "dump_grads");
    if (!o->model || !o->data || (!o->output && !o->dump_grads))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: the options 'model', 'data' "
                         "and 'output' are required");
    o->val_data = slm__job_str(job, "val_data");
    o->method = slm__job_str(job, "method");
    if (!o->method)
        o->method = "lora";
    o->output_gguf = slm__job_str(job, "output_gguf");
    o->format = slm__job_str(job, "format");
    o->log = slm__job_str(job, "log");
    o->checkpoints = slm__job_str(job, "checkpoints");
    o->resume = slm__job_str(job, "resume");
    o->device = slm__job_str(job, "device");
    o->chat_template = slm__job_str(job, "chat_template");
    o->teacher = slm__job_str(job, "teacher");
    o->teacher_cache = slm__job_str(job, "teacher_cache");
    if (o->teacher_cache && !o->teacher)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: teacher_cache is for a "
                         "teacher's logits: give 'teacher'");
    o->skip_bad_lines = slm__job_bool(job, "skip_bad_lines", false);
    const json_t *mo = slm__job_get(job, "method_options");
    o->method_json = json_dumps(mo ? mo : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
    o->checkpoints_default = strip_slashes(o->output ? o->output : o->dump_grads);
    if (!o->method_json || !o->checkpoints_default)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "train job: out of memory");
    int rc;
    if ((rc = read_ints(job, o, err)) || (rc = read_reals(job, o, err)) ||
        (rc = read_schedule(job, s, err)) || (rc = read_adapters(job, o, err)) ||
        (rc = slm__job_seed(job, "seed", 42, &o->seed, err)))
        return rc;
    if (o->val_data && o->val_split > 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: give val_data or "
                         "val_split, not both");
    if (o->schedule != SLM_LR_CONSTANT && o->steps > 0 && o->warmup >= o->steps)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "train job: warmup %lld must be less "
                         "than steps %lld for a decaying schedule", (long long)o->warmup,
                         (long long)o->steps);
    return SLM_OK;
}

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    tstate_t *s = state;
    s->t = (slm__train_t){.reg = slm__job_registry(job), .o = &s->o, .rt = rt, .err = err};
    return slm__train_run(&s->t);
}

static json_t *adapters_json(const slm__train_opts_t *o)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < o->n_adapters; i++)
        json_array_append_new(a, json_pack("{s:o, s:f}", "path", slm__json_path(o->adapters[i]),
                                           "scale", (double)o->adapter_scales[i]));
    return a;
}

static json_t *settings(const void *state)
{
    const tstate_t *s = state;
    const slm__train_opts_t *o = &s->o;
    json_t *mo = json_loads(o->method_json ? o->method_json : "{}", 0, NULL);
    json_t *j = json_pack("{s:o, s:o, s:o, s:f, s:i, s:s, s:o, s:o, s:o, s:o, s:o}",
                          "model", slm__json_path(o->model), "data", slm__json_path(o->data),
                          "val_data", slm__json_path(o->val_data), "val_split", o->val_split,
                          "val_batches", (int)o->val_batches, "method", o->method,
                          "method_options", mo ? mo : json_object(), "adapters",
                          adapters_json(o), "output", slm__json_path(o->output),
                          "output_gguf", slm__json_path(o->output_gguf), "format",
                          slm__json_path(o->format));
    json_t *k = json_pack("{s:i, s:i, s:i, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:I, "
                          "s:o, s:o, s:I, s:I, s:i}",
                          "ctx", (int)o->ctx, "batch", (int)o->batch, "accum", (int)o->accum,
                          "epochs", (json_int_t)o->epochs, "steps", (json_int_t)o->steps,
                          "lr", slm__json_num(o->lr), "beta1", slm__json_num(o->beta1),
                          "beta2", slm__json_num(o->beta2), "eps", slm__json_num(o->eps),
                          "weight_decay", slm__json_num(o->weight_decay), "clip",
                          slm__json_num(o->clip), "schedule", s->schedule_name, "warmup",
                          (json_int_t)o->warmup, "min_lr_ratio", slm__json_num(o->min_lr_ratio),
                          "seed", slm__json_u64(o->seed), "eval_every",
                          (json_int_t)o->eval_every, "save_every", (json_int_t)o->save_every,
                          "keep", (int)o->keep);
    json_t *l = json_pack("{s:o, s:o, s:o, s:b, s:i, s:o, s:o, s:o, s:I}", "checkpoints",
                          slm__json_path(o->checkpoints ? o->checkpoints
                                                        : o->checkpoints_default),
                          "resume", slm__json_path(o->resume), "log", slm__json_path(o->log),
                          "skip_bad_lines", o->skip_bad_lines, "threads", (int)o->threads,
                          "device", slm__json_path(o->device), "chat_template",
                          slm__json_path(o->chat_template), "teacher",
                          slm__json_path(o->teacher), "teacher_top_k",
                          (json_int_t)o->teacher_top_k);
    if (l && o->teacher_cache)
        json_object_set_new(l, "teacher_cache", slm__json_path(o->teacher_cache));
    if (!j || json_object_update(j, k) || json_object_update(j, l)) {
        json_decref(j);
        j = NULL;
    }
    json_decref(k);
    json_decref(l);
    return j;
}

static json_t *trainable_json(const slm__train_t *t, uint64_t *n_elements)
{
    json_t *a = json_array();
    *n_elements = 0;
    for (size_t i = 0; a && i < t->n_params; i++) {
        json_array_append_new(a, json_string(t->params[i].name));
        *n_elements += slm__train_param_count(&t->params[i]);
    }
    return a;
}

static json_t *results(const void *state)
{
    const tstate_t *s = state;
    const slm__train_t *t = &s->t;
    uint64_t n_el = 0;
    json_t *names = trainable_json(t, &n_el);
    double secs = t->seconds_before + (t->t0 > 0 ? slm__job_now() - t->t0 : 0);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:f, s:o, s:o, s:o, s:o, s:o, s:o}",
                          "method", t->o->method, "plugin", t->plugin ? t->plugin : "",
                          "steps", (json_int_t)t->step, "total_steps",
                          (json_int_t)t->total_steps, "resumed_from",
                          slm__json_path(t->resumed_from), "tokens", slm__json_u64(t->tokens),
                          "seconds", secs, "loss", slm__json_num(t->last_loss),
                          "val_loss_start", slm__json_num(t->val_loss0), "val_ppl_start",
                          slm__json_num(exp(t->val_loss0)), "val_loss",
                          slm__json_num(t->val_loss), "val_ppl", slm__json_num(exp(t->val_loss)),
                          "checkpoint", slm__json_path(t->last_checkpoint));
    json_t *k = json_pack("{s:o, s:I, s:I, s:I, s:I, s:O, s:O}", "trainable", names,
                          "trainable_elements", (json_int_t)n_el, "train_examples",
                          (json_int_t)(t->train_ds ? slm_dataset_n_examples(t->train_ds) : 0),
                          "val_examples",
                          (json_int_t)(t->val_ds ? slm_dataset_n_examples(t->val_ds) : 0),
                          "skipped_lines",
                          (json_int_t)(t->data ? slm_dataset_n_skipped(t->data) : 0),
                          "curve", t->curve, "evals", t->evals);
    if (j && t->n_ranks > 1)
        json_object_set_new(j, "data_parallel", json_pack(
            "{s:i, s:s, s:I, s:I, s:f}", "ranks", t->n_ranks, "engine", t->comm_name,
            "collectives", (json_int_t)t->comm_stats.collectives, "bytes_reduced",
            (json_int_t)t->comm_stats.bytes_reduced, "comm_seconds", t->comm_stats.seconds));
    if (j)
        json_object_set_new(j, "rank", json_integer(t->rank));
    if (j && t->o->teacher) {
        json_object_set_new(j, "teacher_batches", json_integer((json_int_t)t->teacher_runs));
        json_object_set_new(j, "teacher_cached", json_integer((json_int_t)t->teacher_cached));
    }
    if (!j || json_object_update(j, k)) {
        json_decref(j);
        j = NULL;
    }
    json_decref(k);
    return j;
}

static void release(void *state)
{
    tstate_t *s = state;
    slm__train_free(&s->t);
    for (size_t i = 0; i < s->o.n_adapters; i++)
        free(s->o.adapters[i]);
    free(s->o.adapters);
    free(s->o.adapter_scales);
    free(s->o.method_json);
    free(s->o.checkpoints_default);
}

const slm__job_kind_t slm__job_kind_train = {
    .name = "train",
    .opts = opts,
    .input_keys = inputs,
    .output_keys = outputs,
    .state_size = sizeof(tstate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
    .release = release,
};

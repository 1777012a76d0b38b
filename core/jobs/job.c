/* The job object of the contract (slmops/job.h): options checked against the
 * kind's table, one run with the output-over-input check first, and the report. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/job.h>

#include "internal/util.h"
#include "jobs/kind.h"

static const slm__job_kind_t *const kinds[] = {
    &slm__job_kind_quantize,
    &slm__job_kind_eval,
    &slm__job_kind_bench,
    &slm__job_kind_init,
    &slm__job_kind_train,
    &slm__job_kind_synth,
    &slm__job_kind_distill,
};

struct slm_job {
    const slm__job_kind_t *kind;
    slm_registry_t *reg;
    json_t *opts;                  /* the options set, an object */
    char **extra;                  /* slm_job_add_input's paths */
    size_t n_extra;
    const char **inputs;           /* the run's inputs (pointers into opts and extra) */
    size_t n_inputs;
    char **outputs;                /* complete outputs the run wrote */
    size_t n_outputs;
    slm_model_t *model;            /* borrowed */
    const int32_t *tokens;         /* borrowed */
    size_t n_tokens;
    slm_job_progress_cb cb;
    void *user;
    volatile int cancel;
    bool running, ran;
    char *report;
};

const char *slm_job_kind_name(size_t i)
{
    return i < SLM__ARRAY_LEN(kinds) ? kinds[i]->name : NULL;
}

const char *slm_job_kind(const slm_job_t *job)
{
    return job ? job->kind->name : NULL;
}

/* ---- options ---- */

static const char *type_name(int type)
{
    static const char *const names[] = {"a string", "an integer", "a number", "true or false",
                                        "an integer or a string of digits", "an array",
                                        "an object"};
    return type >= 0 && (size_t)type < SLM__ARRAY_LEN(names) ? names[type] : "?";
}

static bool has_type(const json_t *v, int type)
{
    switch (type) {
    case SLM__OPT_STRING: return json_is_string(v);
    case SLM__OPT_INT: return json_is_integer(v);
    case SLM__OPT_NUMBER: return json_is_number(v);
    case SLM__OPT_BOOL: return json_is_boolean(v);
    case SLM__OPT_SEED: return (json_is_integer(v) && json_integer_value(v) >= 0) ||
                               json_is_string(v);
    case SLM__OPT_ARRAY: return json_is_array(v);
    case SLM__OPT_OBJECT: return json_is_object(v);
    default: return false;
    }
}

static void key_list(const slm__job_kind_t *k, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (const slm__job_opt_t *o = k->opts; o->key && len + 1 < cap; o++) {
        int w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", o->key);
        len += w > 0 ? (size_t)w : 0;
    }
}

static int state_error(const slm_job_t *job, slm_error_t *err)
{
    return slm__fail(err, SLM_E_STATE, NULL, -1, "%s job: options cannot change once the job "
                     "has run", job->kind->name);
}

/* Set key to v (taking it); a null removes the key. */
static int set_value(slm_job_t *job, const char *key, json_t *v, slm_error_t *err)
{
    if (!v)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "%s job: out of memory", job->kind->name);
    const slm__job_opt_t *o = job->kind->opts;
    while (o->key && strcmp(o->key, key) != 0)
        o++;
    int rc = SLM_OK;
    if (job->running || job->ran) {
        rc = state_error(job, err);
    } else if (!o->key) {
        char keys[512];
        key_list(job->kind, keys, sizeof keys);
        rc = slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: unknown option '%s' (it takes "
                       "%s)", job->kind->name, key, keys);
    } else if (json_is_null(v)) {
        json_object_del(job->opts, key);
    } else if (!has_type(v, o->type)) {
        rc = slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: option '%s' must be %s",
                       job->kind->name, key, type_name(o->type));
    } else if (json_object_set(job->opts, key, v) != 0) {
        rc = slm__fail(err, SLM_E_NOMEM, NULL, -1, "%s job: out of memory", job->kind->name);
    }
    json_decref(v);
    return rc;
}

int slm_job_set_options(slm_job_t *job, const char *options_json, slm_error_t *err)
{
    if (!job)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    if (!options_json)
        return SLM_OK;
    json_error_t je;
    json_t *doc = json_loads(options_json, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return slm__fail(err, SLM_E_FORMAT, NULL, -1, "%s job: options: %s (line %d, column "
                         "%d)", job->kind->name, je.text, je.line, je.column);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: options must be a JSON object",
                         job->kind->name);
    }
    int rc = SLM_OK;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        if ((rc = set_value(job, key, json_incref(v), err)))
            break;
    }
    json_decref(doc);
    return rc;
}

int slm_job_set_string(slm_job_t *job, const char *key, const char *value, slm_error_t *err)
{
    if (!job || !key)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    /* Paths need not be UTF-8: they are kept as given (the report replaces bytes). */
    return set_value(job, key, value ? json_stringn_nocheck(value, strlen(value)) : json_null(),
                     err);
}

int slm_job_set_int(slm_job_t *job, const char *key, int64_t value, slm_error_t *err)
{
    if (!job || !key)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    return set_value(job, key, json_integer((json_int_t)value), err);
}

int slm_job_set_number(slm_job_t *job, const char *key, double value, slm_error_t *err)
{
    if (!job || !key)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    json_t *v = json_real(value);
    if (!v)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: option '%s': %g is not a "
                         "finite number", job->kind->name, key, value);
    return set_value(job, key, v, err);
}

int slm_job_set_bool(slm_job_t *job, const char *key, bool value, slm_error_t *err)
{
    if (!job || !key)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    return set_value(job, key, json_boolean(value), err);
}

int slm_job_append_string(slm_job_t *job, const char *key, const char *value,
                          slm_error_t *err)
{
    if (!job || !key || !value)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    const json_t *old = json_object_get(job->opts, key);
    json_t *a = json_is_array(old) ? json_copy((json_t *)old) : json_array();
    if (a && json_array_append_new(a, json_stringn_nocheck(value, strlen(value))) != 0) {
        json_decref(a);
        a = NULL;
    }
    return set_value(job, key, a, err);
}

/* ---- the object ---- */

int slm_job_new(slm_registry_t *reg, const char *kind, const char *options_json,
                slm_job_t **out, slm_error_t *err)
{
    if (out)
        *out = NULL;
    if (!reg || !kind || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    const slm__job_kind_t *k = NULL;
    for (size_t i = 0; i < SLM__ARRAY_LEN(kinds) && !k; i++)
        if (strcmp(kinds[i]->name, kind) == 0)
            k = kinds[i];
    if (!k)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "job: unknown kind '%s' (quantize, "
                         "eval, bench, init, train, synth, distill)", kind);
    slm_job_t *job = calloc(1, sizeof *job);
    if (!job || !(job->opts = json_object())) {
        free(job);
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "job: out of memory");
    }
    job->kind = k;
    job->reg = reg;
    int rc = slm_job_set_options(job, options_json, err);
    if (rc) {
        slm_job_free(job);
        return rc;
    }
    *out = job;
    return SLM_OK;
}

void slm_job_free(slm_job_t *job)
{
    if (!job)
        return;
    json_decref(job->opts);
    for (size_t i = 0; i < job->n_extra; i++)
        free(job->extra[i]);
    free(job->extra);
    free(job->inputs);
    for (size_t i = 0; i < job->n_outputs; i++)
        free(job->outputs[i]);
    free(job->outputs);
    free(job->report);
    free(job);
}

/* Append a copy of s to *list; false when out of memory. */
static bool push_copy(char ***list, size_t *n, const char *s)
{
    char *p = strdup(s);
    char **l = p ? realloc(*list, (*n + 1) * sizeof *l) : NULL;
    if (!l) {
        free(p);
        return false;
    }
    l[(*n)++] = p;
    *list = l;
    return true;
}

int slm_job_add_input(slm_job_t *job, const char *path, slm_error_t *err)
{
    if (!job || !path)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    if (job->running || job->ran)
        return state_error(job, err);
    if (!push_copy(&job->extra, &job->n_extra, path))
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "job: out of memory");
    return SLM_OK;
}

int slm_job_use_model(slm_job_t *job, slm_model_t *model, slm_error_t *err)
{
    if (!job || !model)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    if (!(job->kind->takes & SLM__JOB_TAKES_MODEL))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: takes no loaded model",
                         job->kind->name);
    if (job->running || job->ran)
        return state_error(job, err);
    job->model = model;
    return SLM_OK;
}

int slm_job_use_tokens(slm_job_t *job, const int32_t *tokens, size_t n_tokens,
                       slm_error_t *err)
{
    if (!job || (!tokens && n_tokens))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    if (!(job->kind->takes & SLM__JOB_TAKES_TOKENS))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: takes no tokens",
                         job->kind->name);
    if (job->running || job->ran)
        return state_error(job, err);
    job->tokens = tokens;
    job->n_tokens = n_tokens;
    return SLM_OK;
}

void slm_job_set_progress(slm_job_t *job, slm_job_progress_cb cb, void *user)
{
    if (!job)
        return;
    job->cb = cb;
    job->user = user;
}

void slm_job_cancel(slm_job_t *job)
{
    if (job)
        job->cancel = 1;
}

/* ---- inputs and outputs ---- */

/* Counts the inputs, setting *found to input `want`: the options the kind names
 * (a string, or each element of an array: a string or an object's "path"), then
 * the added ones. */
static size_t each_input(const slm_job_t *job, size_t want, const char **found)
{
    size_t n = 0;
    for (const char *const *k = job->kind->input_keys; k && *k; k++) {
        const json_t *v = slm__job_get(job, *k);
        size_t m = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < m; i++) {
            const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            const char *p = json_string_value(json_is_object(e) ? json_object_get(e, "path") : e);
            if (p && n++ == want && found)
                *found = p;
        }
    }
    for (size_t i = 0; i < job->n_extra; i++)
        if (n++ == want && found)
            *found = job->extra[i];
    return n;
}

size_t slm_job_n_inputs(const slm_job_t *job)
{
    return job ? each_input(job, SIZE_MAX, NULL) : 0;
}

const char *slm_job_input(const slm_job_t *job, size_t i)
{
    const char *p = NULL;
    if (job)
        each_input(job, i, &p);
    return p;
}

size_t slm_job_n_outputs(const slm_job_t *job)
{
    return job ? job->n_outputs : 0;
}

const char *slm_job_output(const slm_job_t *job, size_t i)
{
    return job && i < job->n_outputs ? job->outputs[i] : NULL;
}

void slm__jobrt_wrote(const slm__jobrt_t *rt, const char *path)
{
    slm_job_t *job = rt ? rt->job : NULL;
    if (!job || !path)
        return;
    if (!push_copy(&job->outputs, &job->n_outputs, path))
        slm_log(SLM_LOG_WARN, "job", "%s: out of memory recording the output %s",
                job->kind->name, path);
}

/* Every output the options name is checked against every input before any work
 * (the kinds check again, with their writer's layout, when they write). */
static int check_outputs(slm_job_t *job, slm_error_t *err)
{
    slm_output_params_t p;
    slm_output_params_init(&p);
    p.layout = SLM_OUTPUT_ANY;
    p.inputs = job->inputs;
    p.n_inputs = job->n_inputs;
    for (const char *const *k = job->kind->output_keys; k && *k; k++) {
        const char *out = slm__job_str(job, *k);
        int rc = out ? slm_output_check(out, &p, NULL, err) : SLM_OK;
        if (rc)
            return rc;
    }
    return SLM_OK;
}

static int collect_inputs(slm_job_t *job, slm_error_t *err)
{
    size_t n = slm_job_n_inputs(job);
    job->inputs = calloc(n + 1, sizeof *job->inputs);
    if (!job->inputs)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "job: out of memory");
    for (size_t i = 0; i < n; i++)
        job->inputs[i] = slm_job_input(job, i);
    job->n_inputs = n;
    return SLM_OK;
}

/* ---- the run and its report ---- */

static json_t *path_list(const char *const *paths, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, slm__json_path(paths[i]));
    return a;
}

/* The options as given, strings made valid UTF-8 (paths need not be). */
static json_t *clean_copy(const json_t *v)
{
    if (json_is_string(v))
        return slm__json_path(json_string_value(v));
    json_t *out = json_is_object(v) ? json_object() : json_is_array(v) ? json_array() : NULL;
    if (!out)
        return json_deep_copy(v);
    const char *key;
    json_t *x;
    size_t i;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, key, x)
            json_object_set_new(out, key, clean_copy(x));
    else
        json_array_foreach(v, i, x)
            json_array_append_new(out, clean_copy(x));
    return out;
}

static const char *status_of(int rc)
{
    return rc == SLM_OK ? "ok" : rc == SLM_E_CANCELLED ? "cancelled" : "failed";
}

static void make_report(slm_job_t *job, const void *state, bool prepared, int rc,
                        const slm_error_t *e, double seconds)
{
    const slm__job_kind_t *k = job->kind;
    json_t *doc = json_object();
    json_object_set_new(doc, "kind", json_string(k->name));
    json_object_set_new(doc, "status", json_string(status_of(rc)));
    if (rc != SLM_OK)
        json_object_set_new(doc, "error", json_pack("{s:i, s:o}", "code", rc, "message",
                                                    slm__json_path(e->message)));
    json_object_set_new(doc, "settings", prepared ? k->settings(state) : clean_copy(job->opts));
    json_object_set_new(doc, "inputs", path_list(job->inputs, job->n_inputs));
    json_object_set_new(doc, "outputs",
                        path_list((const char *const *)job->outputs, job->n_outputs));
    json_object_set_new(doc, "seconds", slm__json_num(seconds));
    json_object_set_new(doc, "results", rc == SLM_OK ? k->results(state) : json_null());
    job->report = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!job->report)
        slm_log(SLM_LOG_WARN, "job", "%s: out of memory writing the report", k->name);
    json_decref(doc);
}

/* The caller's error gets the run's (only as much as its struct_size holds). */
static void copy_error(slm_error_t *err, const slm_error_t *e)
{
    if (e->code)
        slm__fail(err, e->code, e->path, e->offset, "%s", e->message);
}

int slm_job_run(slm_job_t *job, slm_error_t *err)
{
    if (!job)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "job: NULL argument");
    if (job->running || job->ran)
        return slm__fail(err, SLM_E_STATE, NULL, -1, "%s job: a job runs once",
                         job->kind->name);
    const slm__job_kind_t *k = job->kind;
    slm_error_t e;
    slm_error_init(&e);
    job->running = true;
    slm__jobrt_t rt;
    slm__jobrt_init(&rt, NULL, NULL, &job->cancel);
    rt.cb = job->cb;
    rt.user = job->user;
    rt.job = job;
    void *state = calloc(1, k->state_size ? k->state_size : 1);
    int rc = state ? collect_inputs(job, &e) : slm__fail(&e, SLM_E_NOMEM, NULL, -1,
                                                          "job: out of memory");
    bool prepared = false;
    if (rc == SLM_OK)
        prepared = (rc = k->prepare(job, state, &e)) == SLM_OK;
    if (rc == SLM_OK)
        rc = check_outputs(job, &e);
    if (rc == SLM_OK && slm__jobrt_cancelled(&rt))
        rc = slm__jobrt_fail_cancelled(&e, k->name);
    rt.inputs = job->inputs;
    rt.n_inputs = job->n_inputs;
    if (rc == SLM_OK)
        rc = k->run(job, state, &rt, &e);
    make_report(job, state, prepared, rc, &e, slm__job_now() - rt.t0);
    if (state && k->release)
        k->release(state);
    free(state);
    job->running = false;
    job->ran = true;
    copy_error(err, &e);
    return rc;
}

const char *slm_job_report(const slm_job_t *job)
{
    return job ? job->report : NULL;
}

/* ---- what kinds read ---- */

slm_registry_t *slm__job_registry(const slm_job_t *job)
{
    return job->reg;
}

const json_t *slm__job_get(const slm_job_t *job, const char *key)
{
    return json_object_get(job->opts, key);
}

const char *slm__job_str(const slm_job_t *job, const char *key)
{
    return json_string_value(json_object_get(job->opts, key));
}

int64_t slm__job_int(const slm_job_t *job, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(job->opts, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool slm__job_bool(const slm_job_t *job, const char *key, bool dflt)
{
    const json_t *v = json_object_get(job->opts, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int slm__job_seed(const slm_job_t *job, const char *key, uint64_t dflt, uint64_t *out,
                  slm_error_t *err)
{
    const json_t *v = json_object_get(job->opts, key);
    *out = dflt;
    if (json_is_integer(v)) {
        *out = (uint64_t)json_integer_value(v);
        return SLM_OK;
    }
    if (!json_is_string(v))
        return SLM_OK;
    const char *s = json_string_value(v);
    uint64_t x = 0;
    bool ok = *s != '\0';
    for (const char *c = s; ok && *c; c++)
        ok = *c >= '0' && *c <= '9' && slm__mul_overflow_u64(x, 10, &x) &&
             slm__add_overflow_u64(x, (uint64_t)(*c - '0'), &x);
    if (!ok)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%s job: option '%s': '%s' is not a "
                         "whole number from 0 to 2^64-1", job->kind->name, key, s);
    *out = x;
    return SLM_OK;
}

slm_model_t *slm__job_model(const slm_job_t *job)
{
    return job->model;
}

const int32_t *slm__job_tokens(const slm_job_t *job, size_t *n)
{
    *n = job->n_tokens;
    return job->tokens;
}

/* The "distill" job kind: the teacher writes a data set (a "synth" job), a student
 * is made from a preset with the teacher's vocabulary (an "init" job) or given, and
 * the student trains on the data (a "train" job: method kd with the teacher's logits,
 * or full for sequence-level distillation alone). Each step is a job of its own,
 * run through the contract, so its progress, checkpoints and report are theirs. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/comm.h>
#include <slmops/job.h>

#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/kind.h"

typedef struct dstate {
    const char *teacher, *student, *preset, *output, *kd_loss;
    const char *student_vocab;  /* "teacher" (every token) or "data" (the data set's) */
    const char *responses, *teacher_name;   /* a remote teacher's, from its client */
    bool responses_only;        /* a remote teacher, resumed: no responses needed */
    char *data, *student_init;  /* owned: where the data set and a preset student go */
    json_t *synth_opts, *train_opts, *method_opts;
    int64_t top_k;
    const slm__jobrt_t *rt;
    slm_job_t *sub;             /* the step running now */
    json_t *steps;              /* each step's report */
    bool resumed;
} dstate_t;

static const slm__job_opt_t opts[] = {
    {"teacher", SLM__OPT_STRING},
    {"student", SLM__OPT_STRING},
    {"student_preset", SLM__OPT_STRING},
    {"student_vocab", SLM__OPT_STRING},
    {"output", SLM__OPT_STRING},
    {"data_output", SLM__OPT_STRING},
    {"student_output", SLM__OPT_STRING},
    {"kd_loss", SLM__OPT_STRING},
    {"temperature", SLM__OPT_NUMBER},
    {"alpha", SLM__OPT_NUMBER},
    {"top_k", SLM__OPT_INT},
    {"logits_cache", SLM__OPT_STRING},
    {"synth", SLM__OPT_OBJECT},
    {"responses", SLM__OPT_STRING},
    {"responses_chat", SLM__OPT_BOOL},
    {"teacher_name", SLM__OPT_STRING},
    {"train", SLM__OPT_OBJECT},
    {NULL, 0},
};
static const char *const inputs[] = {"teacher", "student", "responses", NULL};
static const char *const outputs[] = {"output", "data_output", "student_output", NULL};

static char *with_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", path, suffix);
    return s;
}

static int prepare(slm_job_t *job, void *state, slm_error_t *err)
{
    dstate_t *s = state;
    s->teacher = slm__job_str(job, "teacher");
    s->student = slm__job_str(job, "student");
    s->preset = slm__job_str(job, "student_preset");
    s->output = slm__job_str(job, "output");
    s->kd_loss = slm__job_str(job, "kd_loss");
    s->responses = slm__job_str(job, "responses");
    s->teacher_name = slm__job_str(job, "teacher_name");
    /* A remote teacher is named (teacher_name); its responses come unless resuming. */
    if (!s->responses && !s->teacher && s->teacher_name &&
        !json_object_get(slm__job_get(job, "train"), "resume"))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: a remote teacher's "
                         "'responses' are required");
    if (s->teacher_name && !s->teacher && !s->responses)
        s->responses_only = true;
    if ((!s->teacher && !s->responses && !s->responses_only) || !s->output)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: the options 'teacher' "
                         "(or a remote teacher's 'responses') and 'output' are required");
    if (s->responses && s->teacher)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: give 'teacher' or "
                         "'responses', not both");
    /* A remote teacher gives text, neither logits nor a vocabulary. */
    bool remote = s->responses || s->responses_only;
    if (remote && s->kd_loss && strcmp(s->kd_loss, "none") != 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: kd_loss '%s' needs the "
                         "teacher's logits; a remote teacher gives only text: use kd_loss "
                         "none (sequence-level distillation)", s->kd_loss);
    if (remote && slm__job_str(job, "student_preset"))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: a preset student takes "
                         "the teacher's vocabulary, which a remote teacher does not give: "
                         "give 'student' (a model file)");
    if (remote && !s->kd_loss)
        s->kd_loss = "none";
    if (!!s->student == !!s->preset)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: give 'student' (a model "
                         "file) or 'student_preset', one of them");
    if (!s->kd_loss)
        s->kd_loss = "forward-kl";
    s->student_vocab = slm__job_str(job, "student_vocab");
    if (!s->student_vocab)
        s->student_vocab = "teacher";
    if (strcmp(s->student_vocab, "teacher") != 0 && strcmp(s->student_vocab, "data") != 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: student_vocab '%s' is "
                         "neither teacher nor data", s->student_vocab);
    if (strcmp(s->student_vocab, "data") == 0 && !s->preset)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: student_vocab data cuts "
                         "a preset student's vocabulary; a given student keeps its own");
    if (strcmp(s->student_vocab, "data") == 0 && strcmp(s->kd_loss, "none") != 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: kd_loss '%s' compares "
                         "the teacher's and the student's logits token by token, which needs "
                         "one vocabulary; student_vocab data gives the student its own: use "
                         "kd_loss none", s->kd_loss);
    if (s->preset) {
        /* A preset the init step would refuse is refused before the teacher works. */
        slm_init_params_t ip;
        slm_init_params_default(&ip);
        ip.preset = s->preset;
        int rc = slm__init_check(&ip, err);
        if (rc)
            return rc;
    }
    const char *d = slm__job_str(job, "data_output"), *so = slm__job_str(job, "student_output");
    s->data = d ? strdup(d) : with_suffix(s->output, ".data.jsonl");
    s->student_init = so ? strdup(so) : with_suffix(s->output, ".init.gguf");
    s->synth_opts = json_deep_copy(slm__job_get(job, "synth"));
    s->train_opts = json_deep_copy(slm__job_get(job, "train"));
    s->method_opts = json_object();
    s->steps = json_object();
    if (!s->data || !s->student_init || !s->method_opts || !s->steps)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "distill job: out of memory");
    if (!s->synth_opts)
        s->synth_opts = json_object();
    if (!s->train_opts)
        s->train_opts = json_object();
    if (!json_object_get(s->synth_opts, "prompts") && !json_object_get(s->train_opts, "resume"))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: synth.prompts (the "
                         "prompt file) is required");
    s->top_k = slm__job_int(job, "top_k", 0);
    if (s->top_k < 0 || s->top_k > (1 << 24))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "distill job: top_k %lld is out of "
                         "range (0 to 16777216)", (long long)s->top_k);
    if (strcmp(s->kd_loss, "none") != 0) {
        json_object_set_new(s->method_opts, "loss", json_string(s->kd_loss));
        const json_t *t = slm__job_get(job, "temperature"), *a = slm__job_get(job, "alpha");
        if (t)
            json_object_set(s->method_opts, "temperature", (json_t *)t);
        if (a)
            json_object_set(s->method_opts, "alpha", (json_t *)a);
    }
    return SLM_OK;
}

/* A step's events go on as the distill job's; a cancel of the distill job cancels it. */
static void forward(void *user, const slm_job_progress_t *ev)
{
    dstate_t *s = user;
    slm__jobrt_progress_figures(s->rt, ev->stage, ev->done, ev->total, ev->item, ev->value,
                                ev->figures);
    if (slm__jobrt_cancelled(s->rt))
        slm_job_cancel(s->sub);
}

static int step(slm_job_t *job, dstate_t *s, const char *kind, json_t *options,
                slm_error_t *err)
{
    char *text = json_dumps(options, JSON_COMPACT);
    int rc = text ? slm_job_new(slm__job_registry(job), kind, text, &s->sub, err)
                  : slm__fail(err, SLM_E_NOMEM, NULL, -1, "distill job: out of memory");
    free(text);
    /* What the distill job reads, the step may not write over either. */
    for (size_t i = 0; rc == SLM_OK && i < s->rt->n_inputs; i++)
        rc = slm_job_add_input(s->sub, s->rt->inputs[i], err);
    if (rc == SLM_OK) {
        slm_job_set_progress(s->sub, forward, s);
        if (slm__jobrt_cancelled(s->rt))
            slm_job_cancel(s->sub);
        rc = slm_job_run(s->sub, err);
    }
    const char *report = s->sub ? slm_job_report(s->sub) : NULL;
    json_t *r = report ? json_loads(report, 0, NULL) : NULL;
    if (r)
        json_object_set_new(s->steps, kind, r);
    for (size_t i = 0; s->sub && i < slm_job_n_outputs(s->sub); i++)
        slm__jobrt_wrote(s->rt, slm_job_output(s->sub, i));
    slm_job_free(s->sub);
    s->sub = NULL;
    return rc;
}

static int synth(slm_job_t *job, dstate_t *s, slm_error_t *err)
{
    json_t *o = json_deep_copy(s->synth_opts);
    if (s->responses) {
        json_object_set_new(o, "responses", json_string(s->responses));
        json_object_set_new(o, "responses_chat",
                            json_boolean(slm__job_bool(job, "responses_chat", false)));
        if (s->teacher_name)
            json_object_set_new(o, "teacher_name", json_string(s->teacher_name));
    } else {
        json_object_set_new(o, "teacher", json_string(s->teacher));
    }
    json_object_set_new(o, "output", json_string(s->data));
    int rc = step(job, s, "synth", o, err);
    json_decref(o);
    return rc;
}

static int init(slm_job_t *job, dstate_t *s, slm_error_t *err)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "output", s->student_init, "arch",
                          "llama", "preset", s->preset, "type", "f32", "vocab_from",
                          s->teacher);
    const json_t *seed = json_object_get(s->train_opts, "seed");
    if (o && seed)
        json_object_set(o, "seed", (json_t *)seed);
    /* Cut to what the data holds, rendered with the template training will use. */
    const json_t *tpl = json_object_get(s->train_opts, "chat_template");
    if (o && strcmp(s->student_vocab, "data") == 0) {
        json_object_set_new(o, "vocab_data", json_string(s->data));
        if (tpl)
            json_object_set(o, "chat_template", (json_t *)tpl);
    }
    int rc = o ? step(job, s, "init", o, err)
               : slm__fail(err, SLM_E_NOMEM, NULL, -1, "distill job: out of memory");
    json_decref(o);
    return rc;
}

static int train(slm_job_t *job, dstate_t *s, slm_error_t *err)
{
    json_t *o = json_deep_copy(s->train_opts);
    bool kd = strcmp(s->kd_loss, "none") != 0;
    json_object_set_new(o, "model", json_string(s->student ? s->student : s->student_init));
    json_object_set_new(o, "data", json_string(s->data));
    json_object_set_new(o, "output", json_string(s->output));
    json_object_set_new(o, "method", json_string(kd ? "kd" : "full"));
    if (kd) {
        json_object_set_new(o, "teacher", json_string(s->teacher));
        json_object_set_new(o, "teacher_top_k", json_integer((json_int_t)s->top_k));
        const char *lc = slm__job_str(job, "logits_cache");
        if (lc)
            json_object_set_new(o, "teacher_cache", json_string(lc));
        json_object_set(o, "method_options", s->method_opts);
    }
    int rc = step(job, s, "train", o, err);
    json_decref(o);
    return rc;
}

/* Under a launcher rank 0 alone writes the data set and the student; the other ranks
 * wait for it (as long as that takes: a dead rank 0 is the launcher's to report), then
 * every rank trains its share. */
#define PREPARE_WAIT_S (7 * 24 * 3600.0)

static int prepare_run(slm_job_t *job, dstate_t *s, slm_error_t *err);

static int run(slm_job_t *job, void *state, const slm__jobrt_t *rt, slm_error_t *err)
{
    dstate_t *s = state;
    s->rt = rt;
    slm_comm_t *comm = NULL;
    int rc = slm_comm_open(&comm, err);
    if (rc)
        return rc;
    if (slm_comm_rank(comm) == 0)
        rc = prepare_run(job, s, err);
    else
        s->resumed = json_object_get(s->train_opts, "resume") != NULL;
    int brc = slm_comm_barrier(comm, PREPARE_WAIT_S, rc == SLM_OK ? err : NULL);
    if (rc == SLM_OK)
        rc = brc;
    if (rc == SLM_OK)
        rc = train(job, s, err);
    slm_comm_close(comm, rc != SLM_OK);
    return rc;
}

/* The data set and the student (unless resuming, when the first run made them). */
static int prepare_run(slm_job_t *job, dstate_t *s, slm_error_t *err)
{
    /* A resumed run trains on the data and the student the first run made. */
    s->resumed = json_object_get(s->train_opts, "resume") != NULL;
    int rc = SLM_OK;
    if (s->resumed) {
        if (access(s->data, R_OK) != 0 || (s->preset && access(s->student_init, R_OK) != 0))
            return slm__fail(err, SLM_E_NOT_FOUND, s->data, -1, "distill: resuming needs the "
                             "data set %s%s%s the first run wrote", s->data,
                             s->preset ? " and the student " : "",
                             s->preset ? s->student_init : "");
    } else {
        rc = synth(job, s, err);
        if (rc == SLM_OK && s->preset)
            rc = init(job, s, err);
    }
    return rc;
}

static json_t *settings(const void *state)
{
    const dstate_t *s = state;
    return json_pack("{s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:s, s:O, s:I, s:O, s:O}",
                     "teacher", slm__json_path(s->teacher ? s->teacher : s->teacher_name),
                     "student", slm__json_path(s->student), "student_preset",
                     slm__json_path(s->preset), "student_vocab", s->student_vocab, "output",
                     slm__json_path(s->output), "data_output", slm__json_path(s->data),
                     "student_output", slm__json_path(s->preset ? s->student_init : NULL),
                     "kd_loss", s->kd_loss, "method_options", s->method_opts, "top_k",
                     (json_int_t)s->top_k, "synth", s->synth_opts, "train", s->train_opts);
}

static json_t *results(const void *state)
{
    const dstate_t *s = state;
    json_t *r = json_object();
    const char *key;
    json_t *v;
    /* Each step's results, under its kind; its settings are in this job's. */
    json_object_foreach(s->steps, key, v)
        json_object_set(r, key, json_object_get(v, "results"));
    json_object_set_new(r, "resumed", json_boolean(s->resumed));
    return r;
}

static void release(void *state)
{
    dstate_t *s = state;
    slm_job_free(s->sub);
    json_decref(s->steps);
    json_decref(s->synth_opts);
    json_decref(s->train_opts);
    json_decref(s->method_opts);
    free(s->data);
    free(s->student_init);
}

const slm__job_kind_t slm__job_kind_distill = {
    .name = "distill",
    .opts = opts,
    .input_keys = inputs,
    .output_keys = outputs,
    .state_size = sizeof(dstate_t),
    .prepare = prepare,
    .run = run,
    .settings = settings,
    .results = results,
    .release = release,
};

/* The stages, in order: each one's cache key (its settings with every referenced file
 * replaced by its content hash), skipped when done with that key, else run as jobs. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <slmops/checkpoint.h>
#include <slmops/job.h>
#include <slmops/log.h>
#include <slmops/output.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"
#include "cli/pipeline/run.h"
#include "cli/train-progress.h"
#include "internal/sha256.h"


/* A copy of v with each "@X.Y" replaced by the artifact's path (hash: by
 * {"sha256": content hash}); NULL on a failure (printed). */
static json_t *resolve(slm_pipe_t *p, const json_t *v, bool hash)
{
    if (json_is_string(v) && slm_pipe_is_ref(json_string_value(v))) {
        const char *path = json_string_value(json_object_get(p->artifacts,
                                                             json_string_value(v) + 1));
        if (!path) {
            fprintf(stderr, "slmops %s: %s: no such artifact\n", p->verb, json_string_value(v));
            return NULL;
        }
        if (!hash)
            return json_string(path);
        const char *h = slm_pipe_hash(p, path);
        return h ? json_pack("{s:s}", "sha256", h) : NULL;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < json_array_size(v); i++) {
            json_t *e = resolve(p, json_array_get(v, i), hash);
            if (!e) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, e);
        }
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e) {
            json_t *r = resolve(p, e, hash);
            if (!r) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, key, r);
        }
        return o;
    }
    return json_deep_copy(v);
}

char *slm_pipe_path_in(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, file);
    return s;
}

void slm_pipe_set_path(json_t *o, const char *key, const char *dir, const char *file)
{
    char *s = slm_pipe_path_in(dir, file);
    json_object_set_new(o, key, json_string(s));
    free(s);
}

static void set_threads(const slm_pipe_t *p, json_t *o)
{
    if (p->threads > 0)
        json_object_set_new(o, "threads", json_integer(p->threads));
}

/* Threads and the device, for the jobs that run a model on one. */
static void set_compute(const slm_pipe_t *p, json_t *o)
{
    set_threads(p, o);
    if (p->device)
        json_object_set_new(o, "device", json_string(p->device));
}

/* A training step as finetune shows it; the teacher's data set a line per prompt. */
static void on_progress(void *user, const slm_job_progress_t *ev)
{
    slm_cli_train_progress_t *prog = user;
    if (strcmp(ev->stage, "train") == 0) {
        slm_cli_train_on_progress(prog, ev);
        return;
    }
    if (strcmp(ev->stage, "synth") != 0)
        return;
    char line[160];
    snprintf(line, sizeof line, "synth: prompt %llu/%llu, %.0f responses kept",
             (unsigned long long)ev->done, (unsigned long long)ev->total, ev->value);
    if (!prog->tty) {
        slm_log(SLM_LOG_INFO, "pipeline", "%s", line);
        return;
    }
    fprintf(stderr, "\r%-78s%s", line, ev->done >= ev->total ? "\n" : "");
}

/* Run a job made of opts (taken) with the finetune progress line; fills *report. */
static int run_job(slm_pipe_stage_t *r, const char *kind, json_t *opts, json_t **report)
{
    slm_error_t err;
    slm_error_init(&err);
    char *text = json_dumps(opts, JSON_COMPACT);
    json_decref(opts);
    slm_job_t *job = NULL;
    *report = NULL;
    if (!text || slm_job_new(r->p->reg, kind, text, &job, &err) != SLM_OK) {
        free(text);
        if (err.code != SLM_E_INVALID)
            return slm_cli_fail(r->p->verb, &err);
        /* an option the job does not take, or of the wrong type: the recipe's fault */
        fprintf(stderr, "slmops %s: %s: /stages/%zu: %s\n", r->p->verb, r->p->recipe_path,
                r->index, err.message);
        return SLM_CLI_USAGE;
    }
    free(text);
    slm_cli_train_progress_t prog = {.tty = isatty(2), .verb = "pipeline"};
    slm_job_set_progress(job, on_progress, &prog);
    int rc = slm_cli_train_run(job, &prog, r->p->verb);
    if (rc == SLM_OK) {
        *report = json_loads(slm_job_report(job), 0, NULL);
        if (!*report)
            rc = SLM_CLI_FAILED;
    }
    slm_job_free(job);
    return rc;
}

/* The train job's results, less the per-step curve (the log file keeps it). */
static json_t *train_results(const json_t *res)
{
    json_t *t = json_deep_copy(res);
    json_object_del(t, "curve");
    json_object_del(t, "trainable");
    return t;
}

/* A checkpoint root under dir that holds a complete checkpoint, for a resumed run. */
static bool has_checkpoint(const char *root)
{
    slm_error_t err;
    slm_error_init(&err);
    char *found = NULL;
    bool ok = slm_checkpoint_find(root, &found, &err) == SLM_OK;
    free(found);
    return ok;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int stage_distill(slm_pipe_stage_t *r)
{
    json_t *o = json_deep_copy(r->s), *res = NULL;
    json_object_del(o, "name");
    json_object_del(o, "type");
    json_t *synth = json_object_get(o, "synth") ? json_incref(json_object_get(o, "synth"))
                                                : json_object();
    json_t *train = json_object_get(o, "train") ? json_incref(json_object_get(o, "train"))
                                                : json_object();
    json_object_set(synth, "prompts", json_object_get(o, "prompts"));
    json_object_del(o, "prompts");
    set_compute(r->p, synth);
    set_compute(r->p, train);
    slm_pipe_set_path(o, "output", r->dir, "student.gguf");
    slm_pipe_set_path(o, "data_output", r->dir, "data.jsonl");
    if (json_object_get(o, "student_preset"))
        slm_pipe_set_path(o, "student_output", r->dir, "init.gguf");
    slm_pipe_set_path(train, "log", r->dir, "train-log.jsonl");
    slm_pipe_set_path(train, "checkpoints", r->dir, "checkpoints");
    char *ckpt = slm_pipe_path_in(r->dir, "checkpoints"), *data = slm_pipe_path_in(r->dir, "data.jsonl");
    char *init = slm_pipe_path_in(r->dir, "init.gguf");
    if (r->resume && has_checkpoint(ckpt) && exists(data) &&
        (!json_object_get(o, "student_preset") || exists(init))) {
        fprintf(stderr, "slmops %s: stage %s: resuming from its last checkpoint\n", r->p->verb,
                r->name);
        json_object_set_new(train, "resume", json_string(ckpt));
    }
    free(ckpt);
    free(data);
    free(init);
    json_object_set_new(o, "synth", synth);
    json_object_set_new(o, "train", train);
    int rc = run_job(r, "distill", o, &res);
    if (rc != SLM_CLI_OK)
        return rc;
    const json_t *results = json_object_get(res, "results");
    json_t *st = json_object_get(res, "settings");
    json_object_set(r->outputs, "model", json_object_get(st, "output"));
    json_object_set(r->outputs, "student", json_object_get(st, "output"));
    json_object_set(r->outputs, "data", json_object_get(st, "data_output"));
    slm_pipe_set_path(r->outputs, "log", r->dir, "train-log.jsonl");
    json_object_set_new(r->results, "train", train_results(json_object_get(results, "train")));
    json_object_set(r->results, "synth", json_object_get(results, "synth"));
    json_object_set(r->results, "resumed", json_object_get(results, "resumed"));
    json_decref(res);
    return SLM_CLI_OK;
}

static int stage_finetune(slm_pipe_stage_t *r)
{
    json_t *o = json_deep_copy(r->s), *res = NULL;
    json_object_del(o, "name");
    json_object_del(o, "type");
    set_compute(r->p, o);
    slm_pipe_set_path(o, "output", r->dir, "model.gguf");
    slm_pipe_set_path(o, "log", r->dir, "train-log.jsonl");
    slm_pipe_set_path(o, "checkpoints", r->dir, "checkpoints");
    char *ckpt = slm_pipe_path_in(r->dir, "checkpoints");
    if (r->resume && has_checkpoint(ckpt)) {
        fprintf(stderr, "slmops %s: stage %s: resuming from its last checkpoint\n", r->p->verb,
                r->name);
        json_object_set_new(o, "resume", json_string(ckpt));
    }
    free(ckpt);
    int rc = run_job(r, "train", o, &res);
    if (rc != SLM_CLI_OK)
        return rc;
    slm_pipe_set_path(r->outputs, "model", r->dir, "model.gguf");
    slm_pipe_set_path(r->outputs, "log", r->dir, "train-log.jsonl");
    json_object_set_new(r->results, "train", train_results(json_object_get(res, "results")));
    json_decref(res);
    return SLM_CLI_OK;
}

static int stage_quantize(slm_pipe_stage_t *r)
{
    json_t *o = json_pack("{s:O, s:O}", "input", json_object_get(r->s, "model"), "type",
                          json_object_get(r->s, "quant")), *res = NULL;
    static const char *const pass[] = {"tensor_types", "pure", "allow_requantize", "eval",
                                       "eval_ctx"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
        if (json_object_get(r->s, pass[i]))
            json_object_set(o, pass[i], json_object_get(r->s, pass[i]));
    set_threads(r->p, o);
    slm_pipe_set_path(o, "output", r->dir, "model.gguf");
    int rc = run_job(r, "quantize", o, &res);
    if (rc != SLM_CLI_OK)
        return rc;
    slm_pipe_set_path(r->outputs, "model", r->dir, "model.gguf");
    json_t *q = json_object();
    static const char *const keep[] = {"type", "mix", "file_bytes_in", "file_bytes_out",
                                       "bpw_in", "bpw_out", "eval"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        json_object_set(q, keep[i], json_object_get(json_object_get(res, "results"), keep[i]));
    json_object_set_new(r->results, "quantize", q);
    json_decref(res);
    return SLM_CLI_OK;
}

static void copy_keys(json_t *to, const json_t *from, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (json_object_get(from, keys[i]))
            json_object_set(to, keys[i], json_object_get(from, keys[i]));
}

/* Write the stage's results as work/NAME/report.json, its "report" artifact. */
static int write_report(slm_pipe_stage_t *r)
{
    char *path = slm_pipe_path_in(r->dir, "report.json");
    char *text = json_dumps(r->results, JSON_INDENT(1) | JSON_SORT_KEYS);
    int rc = path && text ? slm_pipe_write_text(r->p, path, text, strlen(text)) : SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK)
        json_object_set_new(r->outputs, "report", json_string(path));
    free(text);
    free(path);
    return rc;
}

static int eval_one(slm_pipe_stage_t *r, const char *label, const char *model, json_t *m)
{
    json_t *res = NULL;
    int rc = SLM_CLI_OK;
    const json_t *s = r->s;
    if (json_object_get(s, "perplexity")) {
        json_t *o = json_pack("{s:s, s:O}", "model", model, "perplexity",
                              json_object_get(s, "perplexity"));
        static const char *const k[] = {"ctx", "batch"};
        copy_keys(o, s, k, 2);
        set_compute(r->p, o);
        fprintf(stderr, "slmops %s: stage %s: perplexity of %s\n", r->p->verb, r->name, label);
        if ((rc = run_job(r, "eval", o, &res)) != SLM_CLI_OK)
            return rc;
        json_object_set(m, "ppl", json_object_get(json_object_get(res, "results"), "ppl"));
        json_decref(res);
    }
    if (json_object_get(s, "task")) {
        json_t *o = json_pack("{s:s, s:O}", "model", model, "task", json_object_get(s, "task"));
        static const char *const k[] = {"ctx", "match", "max_tokens", "chat_template"};
        copy_keys(o, s, k, 4);
        set_compute(r->p, o);
        char file[128];
        snprintf(file, sizeof file, "%s.task.json", label);
        slm_pipe_set_path(o, "output", r->dir, file);
        fprintf(stderr, "slmops %s: stage %s: task accuracy of %s\n", r->p->verb, r->name, label);
        if ((rc = run_job(r, "eval", o, &res)) != SLM_CLI_OK)
            return rc;
        const json_t *t = json_object_get(res, "results");
        json_object_set_new(m, "task", json_pack("{s:O, s:O, s:O, s:O}", "n",
                                                 json_object_get(t, "n"), "correct",
                                                 json_object_get(t, "correct"), "accuracy",
                                                 json_object_get(t, "accuracy"), "ci95",
                                                 json_object_get(t, "ci95")));
        json_object_set(m, "accuracy", json_object_get(t, "accuracy"));
        json_decref(res);
    }
    return rc;
}

static int stage_eval(slm_pipe_stage_t *r)
{
    json_t *models = json_object();
    json_object_set_new(r->results, "models", models);
    const char *label;
    json_t *v;
    json_object_foreach(json_object_get(r->s, "models"), label, v) {
        json_t *m = json_pack("{s:O}", "model", v);
        json_object_set_new(models, label, m);
        int rc = eval_one(r, label, json_string_value(v), m);
        if (rc != SLM_CLI_OK)
            return rc;
    }
    return write_report(r);
}

static int bench_one(slm_pipe_stage_t *r, const char *label, const char *model, json_t *m)
{
    const json_t *s = r->s;
    json_t *o = json_pack("{s:s}", "model", model), *res = NULL;
    static const char *const k[] = {"n_prompt", "n_gen", "reps", "batch", "seed"};
    copy_keys(o, s, k, 5);
    set_compute(r->p, o);
    fprintf(stderr, "slmops %s: stage %s: timing %s\n", r->p->verb, r->name, label);
    int rc = run_job(r, "bench", o, &res);
    if (rc != SLM_CLI_OK)
        return rc;
    const json_t *b = json_object_get(res, "results");
    json_object_set(m, "n_params", json_object_get(b, "n_params"));
    json_object_set(m, "weight_type", json_object_get(b, "type"));
    json_object_set(m, "backend", json_object_get(b, "backend"));
    json_object_set(m, "prefill_tps", json_object_get(json_object_get(b, "pp"), "avg_ts"));
    json_object_set(m, "decode_tps", json_object_get(json_object_get(b, "tg"), "avg_ts"));
    json_object_set(m, "decode_ms", json_object_get(json_object_get(b, "tg"), "avg_ms"));
    json_decref(res);
    struct stat st;
    if (stat(model, &st) == 0)
        json_object_set_new(m, "file_bytes", json_integer((json_int_t)st.st_size));
    const char *prompt = json_string_value(json_object_get(s, "prompt"));
    json_int_t n = json_integer_value(json_object_get(s, "rss_tokens"));
    if (!n)
        n = json_object_get(s, "n_gen") ? json_integer_value(json_object_get(s, "n_gen")) : 128;
    long kib = 0;
    fprintf(stderr, "slmops %s: stage %s: peak memory of %s generating %lld tokens\n",
            r->p->verb, r->name, label, (long long)n);
    char file[128], json_file[128];
    snprintf(file, sizeof file, "%s.generate.log", label);
    snprintf(json_file, sizeof json_file, "%s.generate.json", label);
    char *log = slm_pipe_path_in(r->dir, file), *out = slm_pipe_path_in(r->dir, json_file);
    rc = log && out ? slm_pipe_measure_rss(r->p, model, prompt ? prompt : "Once upon a time",
                                           (long)(n ? n : 1), out, log, &kib)
                    : SLM_CLI_FAILED;
    free(log);
    free(out);
    if (rc != SLM_CLI_OK)
        return rc;
    json_object_set_new(m, "peak_rss_bytes", json_integer((json_int_t)kib * 1024));
    json_object_set_new(m, "rss_tokens", json_integer(n ? n : 1));
    return SLM_CLI_OK;
}

static int stage_bench(slm_pipe_stage_t *r)
{
    json_t *models = json_object();
    json_object_set_new(r->results, "models", models);
    if (r->p->threads > 0)
        json_object_set_new(r->results, "threads", json_integer(r->p->threads));
    const char *label;
    json_t *v;
    json_object_foreach(json_object_get(r->s, "models"), label, v) {
        json_t *m = json_pack("{s:O}", "model", v);
        json_object_set_new(models, label, m);
        int rc = bench_one(r, label, json_string_value(v), m);
        if (rc != SLM_CLI_OK)
            return rc;
    }
    return write_report(r);
}

/* method: part of the stage's cache key, raised when the way a stage measures changes
 * so that earlier results are not reused (bench 2: peak memory from the child's own
 * VmHWM, not wait4's ru_maxrss, which counted the forked pipeline). */
typedef struct stage_fn {
    const char *type;
    int (*run)(slm_pipe_stage_t *r);
    int method;
} stage_fn_t;

static const stage_fn_t fns[] = {
    {"distill", stage_distill, 1}, {"finetune", stage_finetune, 1},
    {"quantize", stage_quantize, 1}, {"eval", stage_eval, 1},
    {"bench", stage_bench, 2}, {"package", slm_pipe_stage_package, 1},
};

static int method_of(const char *type)
{
    for (size_t i = 0; type && i < sizeof fns / sizeof fns[0]; i++)
        if (strcmp(fns[i].type, type) == 0)
            return fns[i].method;
    return 1;
}

/* ---- the loop ---- */

static char *cache_key(slm_pipe_t *p, const json_t *stage)
{
    json_t *k = resolve(p, stage, true);
    if (!k)
        return NULL;
    json_object_del(k, "name");
    int method = method_of(json_string_value(json_object_get(stage, "type")));
    if (method > 1)   /* absent for 1: keys made before methods existed still match */
        json_object_set_new(k, "method", json_integer(method));
    if (p->threads > 0)
        json_object_set_new(k, "threads", json_integer(p->threads));
    if (p->device)
        json_object_set_new(k, "device", json_string(p->device));
    json_object_set_new(k, "recipe", json_integer(SLM_PIPE_RECIPE_VERSION));
    char *text = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(k);
    if (!text)
        return NULL;
    slm__sha256_t h;
    slm__sha256_init(&h);
    slm__sha256_update(&h, text, strlen(text));
    free(text);
    char *hex = malloc(65);
    if (hex)
        slm__sha256_final(&h, hex);
    return hex;
}

/* Done with this key and every output still there. */
static bool is_done(const json_t *st, const char *key)
{
    if (!st || strcmp(json_string_value(json_object_get(st, "status")) ?: "", "done") != 0 ||
        strcmp(json_string_value(json_object_get(st, "key")) ?: "", key) != 0)
        return false;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(st, "outputs"), name, v)
        if (!exists(json_string_value(v)))
            return false;
    return true;
}

static void publish(slm_pipe_t *p, const char *stage, const json_t *outputs)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)outputs, name, v) {
        char key[200];
        snprintf(key, sizeof key, "%s.%s", stage, name);
        json_object_set(p->artifacts, key, v);
    }
}

static int run_stage(slm_pipe_t *p, size_t index, const json_t *stage)
{
    const char *name = json_string_value(json_object_get(stage, "name"));
    const char *type = json_string_value(json_object_get(stage, "type"));
    json_t *stages = json_object_get(p->state, "stages");
    char *key = cache_key(p, stage);
    if (!key)
        return SLM_CLI_FAILED;
    json_t *st = json_object_get(stages, name);
    if (!p->force && is_done(st, key)) {
        fprintf(stderr, "slmops %s: stage %s (%s): done before, cached\n", p->verb, name, type);
        publish(p, name, json_object_get(st, "outputs"));
        p->cached++;
        free(key);
        return SLM_CLI_OK;
    }
    bool resume = !p->force && st &&
                  strcmp(json_string_value(json_object_get(st, "status")) ?: "", "running") == 0 &&
                  strcmp(json_string_value(json_object_get(st, "key")) ?: "", key) == 0;
    char *dir = slm_pipe_dir(p, name);
    if (!dir) {
        free(key);
        return SLM_CLI_FAILED;
    }
    if (!resume) {   /* a fresh start: nothing of another key's run is reused */
        slm_pipe_remove(dir);
        free(dir);
        dir = slm_pipe_dir(p, name);
    }
    json_object_set_new(stages, name, json_pack("{s:s, s:s, s:s}", "status", "running", "key",
                                                key, "type", type));
    int rc = dir ? slm_pipe_state_save(p) : SLM_CLI_FAILED;
    json_t *resolved = rc == SLM_CLI_OK ? resolve(p, stage, false) : NULL;
    slm_pipe_stage_t r = {.p = p, .index = index, .name = name, .s = resolved, .dir = dir, .resume = resume,
               .outputs = json_object(), .results = json_object()};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (resolved) {
        fprintf(stderr, "slmops %s: stage %s (%s): running\n", p->verb, name, type);
        for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
            if (strcmp(fns[i].type, type) == 0)
                rc = fns[i].run(&r);
    } else if (rc == SLM_CLI_OK) {
        rc = SLM_CLI_FAILED;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (rc == SLM_CLI_OK) {
        json_object_set_new(stages, name, json_pack("{s:s, s:s, s:s, s:O, s:O, s:f}", "status",
                                                    "done", "key", key, "type", type, "outputs",
                                                    r.outputs, "results", r.results, "seconds",
                                                    secs));
        publish(p, name, r.outputs);
        rc = slm_pipe_state_save(p);
        p->ran++;
        fprintf(stderr, "slmops %s: stage %s (%s): done in %.1f s\n", p->verb, name, type, secs);
    }
    json_decref(r.outputs);
    json_decref(r.results);
    json_decref(resolved);
    free(dir);
    free(key);
    return rc;
}

/* Options a job refuses by name or JSON type (slm_job_new checks them, touching no
 * file): refused before any stage runs, as the recipe's error. */
static int preflight_one(slm_pipe_t *p, size_t i, const char *sub, const char *kind,
                         json_t *opts)
{
    slm_error_t err;
    slm_error_init(&err);
    char *text = json_dumps(opts, JSON_COMPACT);
    json_decref(opts);
    slm_job_t *job = NULL;
    int rc = text ? slm_job_new(p->reg, kind, text, &job, &err) : SLM_E_NOMEM;
    free(text);
    slm_job_free(job);
    if (rc == SLM_OK)
        return SLM_CLI_OK;
    if (rc != SLM_E_INVALID)
        return slm_cli_fail(p->verb, &err);
    fprintf(stderr, "slmops %s: %s: /stages/%zu%s: %s\n", p->verb, p->recipe_path, i, sub,
            err.message);
    return SLM_CLI_USAGE;
}

static json_t *without(const json_t *o, const char *const *keys)
{
    json_t *c = json_deep_copy(o);
    for (; *keys; keys++)
        json_object_del(c, *keys);
    return c;
}

static int preflight(slm_pipe_t *p)
{
    const json_t *stages = json_object_get(p->recipe, "stages");
    int rc = SLM_CLI_OK;
    for (size_t i = 0; rc == SLM_CLI_OK && i < json_array_size(stages); i++) {
        const json_t *s = json_array_get(stages, i);
        const char *type = json_string_value(json_object_get(s, "type"));
        static const char *const own[] = {"name", "type", NULL};
        static const char *const nested[] = {"name", "type", "prompts", "synth", "train", NULL};
        if (strcmp(type, "finetune") == 0)
            rc = preflight_one(p, i, "", "train", without(s, own));
        if (strcmp(type, "distill") != 0)
            continue;
        rc = preflight_one(p, i, "", "distill", without(s, nested));
        if (rc == SLM_CLI_OK && json_object_get(s, "synth"))
            rc = preflight_one(p, i, "/synth", "synth", json_deep_copy(json_object_get(s, "synth")));
        if (rc == SLM_CLI_OK && json_object_get(s, "train"))
            rc = preflight_one(p, i, "/train", "train", json_deep_copy(json_object_get(s, "train")));
    }
    return rc;
}

int slm_pipe_run(slm_pipe_t *p)
{
    const json_t *stages = json_object_get(p->recipe, "stages");
    int rc0 = preflight(p);
    if (rc0 != SLM_CLI_OK)
        return rc0;
    for (size_t i = 0; i < json_array_size(stages); i++) {
        int rc = run_stage(p, i, json_array_get(stages, i));
        if (rc != SLM_CLI_OK)
            return rc;
    }
    return SLM_CLI_OK;
}

/* The job contract (slmops/job.h) through the public API: progress events per
 * stage, cancellation that leaves no file, the documented report of each kind,
 * a chain init -> quantize -> eval through reported outputs, and OUT = IN refused. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/slmops.h>

static char model_path[1200], text_path[1200], scratch[512];
static slm_registry_t *reg;

/* ---- helpers ---- */

static void setup(void)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_options_t o = {.struct_size = sizeof o,
                                .search_path = getenv("SLMOPS_PLUGIN_PATH"),
                                .ignore_environment = true};
    reg = slm_registry_new(&o, &err);
    ck_assert_msg(reg != NULL, "registry: %s", err.message);
}

static void teardown(void)
{
    slm_registry_free(reg);
}

/* A fresh folder in the scratch folder, so that a test can see every file in it. */
static const char *fresh_dir(const char *name)
{
    static char buf[8][700];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
    ck_assert_msg(mkdir(buf[k], 0700) == 0, "mkdir %s", buf[k]);
    return buf[k];
}

static const char *in_dir(const char *dir, const char *name)
{
    static char buf[8][800];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Names in dir other than . and .., one string "a,b," */
static void list_dir(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    out[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(out + strlen(out), cap - strlen(out), "%s,", e->d_name);
    closedir(d);
}

static json_t *report_of(const slm_job_t *job)
{
    const char *text = slm_job_report(job);
    ck_assert_ptr_nonnull(text);
    json_error_t je;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(json_is_object(doc), "report is not a JSON object: %s", je.text);
    return doc;
}

static void has_keys(const json_t *o, const char *what, const char *const *keys)
{
    ck_assert_msg(json_is_object(o), "%s is not an object", what);
    for (const char *const *k = keys; *k; k++)
        ck_assert_msg(json_object_get(o, *k) != NULL, "%s has no '%s'", what, *k);
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The fields every report has (docs/jobs.md). */
static void check_envelope(const json_t *doc, const char *kind, const char *status)
{
    static const char *const keys[] = {"kind", "status", "settings", "inputs", "outputs",
                                       "seconds", "results", NULL};
    has_keys(doc, "report", keys);
    ck_assert_str_eq(str_of(doc, "kind"), kind);
    ck_assert_str_eq(str_of(doc, "status"), status);
    ck_assert(json_is_object(json_object_get(doc, "settings")));
    ck_assert(json_is_array(json_object_get(doc, "inputs")));
    ck_assert(json_is_array(json_object_get(doc, "outputs")));
    ck_assert(json_number_value(json_object_get(doc, "seconds")) >= 0);
    bool ok = strcmp(status, "ok") == 0;
    ck_assert(ok == json_is_object(json_object_get(doc, "results")));
    ck_assert(ok == !json_object_get(doc, "error"));
    if (!ok) {
        const json_t *e = json_object_get(doc, "error");
        ck_assert(json_integer_value(json_object_get(e, "code")) < 0);
        ck_assert(strlen(str_of(e, "message")) > 5);
    }
}

static slm_job_t *new_job(const char *kind, const char *options)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    ck_assert_msg(slm_job_new(reg, kind, options, &job, &err) == SLM_OK, "%s", err.message);
    return job;
}

static void set_str(slm_job_t *job, const char *key, const char *value)
{
    ck_assert_int_eq(slm_job_set_string(job, key, value, NULL), SLM_OK);
}

/* ---- progress recording ---- */

typedef struct ev {
    char stage[32], item[96];
    uint64_t done, total;
    double elapsed, value;
} ev_t;

typedef struct rec {
    ev_t ev[1024];
    size_t n;
    slm_job_t *job;
    long cancel_at;            /* event index at which to cancel, or -1 */
    const char *cancel_stage;  /* cancel at this stage's last event (done == total) */
} rec_t;

static void on_progress(void *user, const slm_job_progress_t *e)
{
    rec_t *r = user;
    ck_assert_uint_eq(e->struct_size, sizeof *e);
    ck_assert_ptr_nonnull(e->stage);
    ck_assert_ptr_nonnull(e->item);
    if (r->n < sizeof r->ev / sizeof r->ev[0]) {
        ev_t *x = &r->ev[r->n];
        snprintf(x->stage, sizeof x->stage, "%s", e->stage);
        snprintf(x->item, sizeof x->item, "%s", e->item);
        x->done = e->done;
        x->total = e->total;
        x->elapsed = e->elapsed;
        x->value = e->value;
    }
    if ((long)r->n == r->cancel_at ||
        (r->cancel_stage && strcmp(e->stage, r->cancel_stage) == 0 && e->done == e->total))
        slm_job_cancel(r->job);
    r->n++;
}

static rec_t *recorder(slm_job_t *job)
{
    rec_t *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->job = job;
    r->cancel_at = -1;
    slm_job_set_progress(job, on_progress, r);
    return r;
}

/* Stages come in the given order, each once; within one, total is fixed and
 * positive, done never decreases and ends at total; elapsed never decreases. */
static void check_progress(const rec_t *r, const char *const *stages, bool has_value)
{
    ck_assert_uint_gt(r->n, 0);
    ck_assert_uint_le(r->n, sizeof r->ev / sizeof r->ev[0]);
    size_t si = 0;
    for (size_t i = 0; i < r->n; i++) {
        const ev_t *e = &r->ev[i], *prev = i ? &r->ev[i - 1] : NULL;
        bool same = prev && strcmp(prev->stage, e->stage) == 0;
        if (prev && !same) {
            ck_assert_msg(prev->done == prev->total, "stage %s ended at %llu of %llu",
                          prev->stage, (unsigned long long)prev->done,
                          (unsigned long long)prev->total);
            si++;
        }
        ck_assert_msg(stages[si] && strcmp(stages[si], e->stage) == 0,
                      "event %zu: stage %s, expected %s", i, e->stage,
                      stages[si] ? stages[si] : "(none)");
        ck_assert_uint_gt(e->total, 0);
        ck_assert_msg(e->done <= e->total, "%s: %llu of %llu", e->stage,
                      (unsigned long long)e->done, (unsigned long long)e->total);
        if (same) {
            ck_assert_uint_eq(e->total, prev->total);
            ck_assert_msg(e->done >= prev->done, "%s: done went from %llu to %llu", e->stage,
                          (unsigned long long)prev->done, (unsigned long long)e->done);
        }
        ck_assert(e->elapsed >= 0 && (!prev || e->elapsed >= prev->elapsed));
        ck_assert(has_value ? isfinite(e->value) : isnan(e->value));
    }
    ck_assert_msg(stages[si + 1] == NULL, "stage %s never came", stages[si + 1]);
    ck_assert_uint_eq(r->ev[r->n - 1].done, r->ev[r->n - 1].total);
}

/* ---- each kind: progress and report ---- */

START_TEST(quantize_progress_and_report)
{
    const char *dir = fresh_dir("q");
    slm_job_t *job = new_job("quantize", "{\"type\": \"q8_0\", \"eval_ctx\": 128, "
                                         "\"tensor_types\": [\"attn_q=f16\"]}");
    set_str(job, "input", model_path);
    set_str(job, "output", in_dir(dir, "out.gguf"));
    set_str(job, "eval", text_path);
    rec_t *r = recorder(job);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_job_run(job, &err) == SLM_OK, "%s", err.message);
    static const char *const stages[] = {"quantize", "eval", NULL};
    check_progress(r, stages, false);
    ck_assert_str_eq(r->ev[0].item, "token_embd.weight");
    json_t *doc = report_of(job);
    check_envelope(doc, "quantize", "ok");
    static const char *const settings[] = {"input", "output", "type", "tensor_types", "pure",
                                           "allow_requantize", "eval", "eval_ctx", "threads",
                                           "format", NULL};
    const json_t *st = json_object_get(doc, "settings");
    has_keys(st, "quantize settings", settings);
    ck_assert_str_eq(str_of(st, "type"), "q8_0");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(st, "tensor_types"), 0)),
                     "attn_q=f16");
    static const char *const results[] = {"type", "mix", "file_type", "file_bytes_in",
                                          "file_bytes_out", "data_bytes_in", "data_bytes_out",
                                          "mib_in", "mib_out", "bpw_in", "bpw_out",
                                          "n_weights", "types", "kept", "tensors", "seconds",
                                          "eval", NULL};
    const json_t *res = json_object_get(doc, "results");
    has_keys(res, "quantize results", results);
    static const char *const eval[] = {"file", "ctx", "chunks", "scored", "ppl_before",
                                       "ppl_after", "ppl_change", "kld_mean", "kld_max",
                                       "top1_agree", "seconds", NULL};
    has_keys(json_object_get(res, "eval"), "quantize results.eval", eval);
    const json_t *tensors = json_object_get(res, "tensors");
    ck_assert_uint_eq(json_array_size(tensors), 48);
    /* One progress event per tensor, then one per evaluation chunk. */
    size_t chunks = (size_t)json_integer_value(json_object_get(json_object_get(res, "eval"),
                                                               "chunks"));
    ck_assert_uint_eq(r->n, 48 + chunks);
    ck_assert_str_eq(str_of(json_array_get(tensors, 0), "name"), "token_embd.weight");
    struct stat out;
    ck_assert_int_eq(stat(in_dir(dir, "out.gguf"), &out), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "file_bytes_out")), out.st_size);
    /* Inputs: the model and the evaluation text; the output written. */
    ck_assert_uint_eq(slm_job_n_inputs(job), 2);
    ck_assert_str_eq(slm_job_input(job, 0), model_path);
    ck_assert_str_eq(slm_job_input(job, 1), text_path);
    ck_assert_ptr_null(slm_job_input(job, 2));
    ck_assert_uint_eq(slm_job_n_outputs(job), 1);
    ck_assert_str_eq(slm_job_output(job, 0), in_dir(dir, "out.gguf"));
    const json_t *outs = json_object_get(doc, "outputs"), *ins = json_object_get(doc, "inputs");
    ck_assert_str_eq(json_string_value(json_array_get(outs, 0)), in_dir(dir, "out.gguf"));
    ck_assert_uint_eq(json_array_size(ins), 2);
    json_decref(doc);
    free(r);
    slm_job_free(job);
}
END_TEST

START_TEST(eval_progress_and_report)
{
    slm_job_t *job = new_job("eval", "{\"ctx\": 128}");
    set_str(job, "model", model_path);
    set_str(job, "perplexity", text_path);
    rec_t *r = recorder(job);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_job_run(job, &err) == SLM_OK, "%s", err.message);
    static const char *const stages[] = {"perplexity", NULL};
    check_progress(r, stages, true);
    json_t *doc = report_of(job);
    check_envelope(doc, "eval", "ok");
    static const char *const settings[] = {"model", "perplexity", "ctx", "batch", "tokenizer",
                                           "device", "threads", NULL};
    has_keys(json_object_get(doc, "settings"), "eval settings", settings);
    static const char *const results[] = {"n_ctx", "n_tokens", "n_chunks", "n_scored", "nll",
                                          "ppl", "running", NULL};
    const json_t *res = json_object_get(doc, "results");
    has_keys(res, "eval results", results);
    json_int_t chunks = json_integer_value(json_object_get(res, "n_chunks"));
    const json_t *running = json_object_get(res, "running");
    ck_assert_int_ge(chunks, 2);
    ck_assert_uint_eq(r->n, (size_t)chunks);
    ck_assert_uint_eq(json_array_size(running), (size_t)chunks);
    /* The progress value is the running perplexity; the last one is the result. */
    double ppl = json_number_value(json_object_get(res, "ppl"));
    ck_assert_double_eq_tol(r->ev[r->n - 1].value, ppl, 1e-9 * ppl);
    ck_assert_double_eq_tol(json_number_value(json_array_get(running, (size_t)chunks - 1)), ppl,
                            1e-9 * ppl);
    ck_assert_double_eq_tol(log(ppl), json_number_value(json_object_get(res, "nll")), 1e-9);
    /* Each chunk scores its second half but its last token. */
    ck_assert_int_eq(json_integer_value(json_object_get(res, "n_scored")), chunks * (64 - 1));
    ck_assert_uint_eq(slm_job_n_outputs(job), 0);
    json_decref(doc);
    free(r);
    slm_job_free(job);
}
END_TEST

START_TEST(bench_progress_and_report)
{
    slm_job_t *job = new_job("bench", "{\"n_prompt\": 16, \"n_gen\": 4, \"reps\": 2}");
    set_str(job, "model", model_path);
    rec_t *r = recorder(job);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_job_run(job, &err) == SLM_OK, "%s", err.message);
    static const char *const stages[] = {"pp", "tg", NULL};
    check_progress(r, stages, false);
    ck_assert_uint_eq(r->n, 2 * 3);   /* a warm-up and two timed runs per test */
    ck_assert_str_eq(r->ev[0].item, "pp16");
    ck_assert_str_eq(r->ev[5].item, "tg4");
    json_t *doc = report_of(job);
    check_envelope(doc, "bench", "ok");
    static const char *const settings[] = {"model", "n_prompt", "n_gen", "reps", "batch",
                                           "seed", "device", "threads", NULL};
    has_keys(json_object_get(doc, "settings"), "bench settings", settings);
    static const char *const results[] = {"arch", "n_params", "type", "tensor_bytes",
                                          "backend", "pp", "tg", NULL};
    const json_t *res = json_object_get(doc, "results");
    has_keys(res, "bench results", results);
    static const char *const stat[] = {"n_tokens", "reps", "avg_ts", "stddev_ts", "avg_ms",
                                       NULL};
    has_keys(json_object_get(res, "pp"), "bench results.pp", stat);
    has_keys(json_object_get(res, "tg"), "bench results.tg", stat);
    ck_assert_str_eq(str_of(res, "arch"), "llama");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(res, "pp"),
                                                        "n_tokens")), 16);
    ck_assert(json_number_value(json_object_get(json_object_get(res, "tg"), "avg_ts")) > 0);
    json_decref(doc);
    free(r);
    slm_job_free(job);
}
END_TEST

START_TEST(init_progress_and_report)
{
    const char *dir = fresh_dir("i");
    slm_job_t *job = new_job("init", "{\"preset\": \"stories15m\", \"type\": \"q8_0\", "
                                     "\"seed\": \"18446744073709551615\"}");
    set_str(job, "output", in_dir(dir, "m.gguf"));
    rec_t *r = recorder(job);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_msg(slm_job_run(job, &err) == SLM_OK, "%s", err.message);
    static const char *const stages[] = {"init", NULL};
    check_progress(r, stages, false);
    ck_assert_uint_eq(r->n, 1 + 6 * 9 + 2);   /* embeddings, 6 layers of 9, norm, output */
    json_t *doc = report_of(job);
    check_envelope(doc, "init", "ok");
    static const char *const settings[] = {"output", "arch", "preset", "type", "seed",
                                           "threads", "format", NULL};
    const json_t *st = json_object_get(doc, "settings");
    has_keys(st, "init settings", settings);
    /* Seeds above 2^63 - 1 are decimal strings. */
    ck_assert_str_eq(str_of(st, "seed"), "18446744073709551615");
    ck_assert_str_eq(str_of(st, "type"), "q8_0");
    static const char *const results[] = {"file_bytes", NULL};
    has_keys(json_object_get(doc, "results"), "init results", results);
    ck_assert_uint_eq(slm_job_n_inputs(job), 0);
    ck_assert_str_eq(slm_job_output(job, 0), in_dir(dir, "m.gguf"));
    json_decref(doc);
    free(r);
    slm_job_free(job);
}
END_TEST

/* ---- cancellation ---- */

/* A quantize job cancelled at event `at` (or at the quantize stage's last event)
 * over an OUT that holds `old`: the old OUT stays, no temporary is left. */
static void cancel_quantize(long at, const char *at_stage)
{
    const char *dir = fresh_dir(at_stage ? "cq-end" : "cq");
    const char *out = in_dir(dir, "out.gguf");
    FILE *f = fopen(out, "w");
    ck_assert_ptr_nonnull(f);
    fputs("the previous OUT", f);
    fclose(f);
    slm_job_t *job = new_job("quantize", "{\"type\": \"q4_0\"}");
    set_str(job, "input", model_path);
    set_str(job, "output", out);
    rec_t *r = recorder(job);
    r->cancel_at = at;
    r->cancel_stage = at_stage;
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_CANCELLED);
    ck_assert_int_eq(err.code, SLM_E_CANCELLED);
    ck_assert_msg(strstr(err.message, "cancelled"), "%s", err.message);
    /* The job stopped at the next safe point: one event after the cancel at most. */
    ck_assert_uint_le(r->n, at_stage ? 48 : (size_t)at + 1);
    char names[1024];
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "out.gguf,");
    char buf[64] = "";
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "the previous OUT");
    json_t *doc = report_of(job);
    check_envelope(doc, "quantize", "cancelled");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "error"), "code")),
                     SLM_E_CANCELLED);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "outputs")), 0);
    ck_assert_uint_eq(slm_job_n_outputs(job), 0);
    json_decref(doc);
    free(r);
    slm_job_free(job);
}

START_TEST(cancel_quantize_midway)
{
    cancel_quantize(5, NULL);
}
END_TEST

/* The last event says done == total: the write that would follow is skipped. */
START_TEST(cancel_quantize_at_the_end)
{
    cancel_quantize(-1, "quantize");
}
END_TEST

START_TEST(cancel_init_leaves_no_file)
{
    const char *dir = fresh_dir("ci");
    slm_job_t *job = new_job("init", "{\"preset\": \"stories15m\"}");
    set_str(job, "output", in_dir(dir, "m.gguf"));
    rec_t *r = recorder(job);
    r->cancel_stage = "init";
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_CANCELLED);
    char names[1024];
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "");
    json_t *doc = report_of(job);
    check_envelope(doc, "init", "cancelled");
    json_decref(doc);
    free(r);
    slm_job_free(job);
}
END_TEST

START_TEST(cancel_eval_and_bench)
{
    slm_job_t *job = new_job("eval", "{\"ctx\": 128}");
    set_str(job, "model", model_path);
    set_str(job, "perplexity", text_path);
    rec_t *r = recorder(job);
    r->cancel_at = 1;
    ck_assert_int_eq(slm_job_run(job, NULL), SLM_E_CANCELLED);
    ck_assert_uint_eq(r->n, 2);
    json_t *doc = report_of(job);
    check_envelope(doc, "eval", "cancelled");
    json_decref(doc);
    free(r);
    slm_job_free(job);

    job = new_job("bench", "{\"n_prompt\": 8, \"n_gen\": 8, \"reps\": 3}");
    set_str(job, "model", model_path);
    r = recorder(job);
    r->cancel_at = 0;
    ck_assert_int_eq(slm_job_run(job, NULL), SLM_E_CANCELLED);
    ck_assert_uint_eq(r->n, 1);
    doc = report_of(job);
    check_envelope(doc, "bench", "cancelled");
    json_decref(doc);
    free(r);
    slm_job_free(job);
}
END_TEST

/* A cancel before the run: no work, no event, no file. */
START_TEST(cancel_before_run)
{
    const char *dir = fresh_dir("cb");
    slm_job_t *job = new_job("quantize", "{\"type\": \"q8_0\"}");
    set_str(job, "input", model_path);
    set_str(job, "output", in_dir(dir, "out.gguf"));
    rec_t *r = recorder(job);
    slm_job_cancel(job);
    ck_assert_int_eq(slm_job_run(job, NULL), SLM_E_CANCELLED);
    ck_assert_uint_eq(r->n, 0);
    ck_assert(!exists(in_dir(dir, "out.gguf")));
    free(r);
    slm_job_free(job);
}
END_TEST

/* ---- a chain of jobs through their reported outputs ---- */

/* The first output the report names. */
static char *reported_output(const slm_job_t *job)
{
    json_t *doc = report_of(job);
    const char *p = json_string_value(json_array_get(json_object_get(doc, "outputs"), 0));
    ck_assert_ptr_nonnull(p);
    char *copy = strdup(p);
    json_decref(doc);
    return copy;
}

START_TEST(chain_init_quantize_eval)
{
    const char *dir = fresh_dir("chain");
    /* A short text: two chunks of 64 tokens of the synthetic vocabulary. */
    const char *text = in_dir(dir, "short.txt");
    FILE *in = fopen(text_path, "r"), *out = fopen(text, "w");
    ck_assert(in && out);
    char buf[400];
    size_t n = fread(buf, 1, sizeof buf, in);
    ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    slm_error_t err;
    slm_error_init(&err);

    slm_job_t *init = new_job("init", "{\"preset\": \"stories15m\", \"type\": \"f16\"}");
    set_str(init, "output", in_dir(dir, "base.gguf"));
    ck_assert_msg(slm_job_run(init, &err) == SLM_OK, "%s", err.message);
    char *base = reported_output(init);

    slm_job_t *quant = new_job("quantize", "{\"type\": \"q8_0\"}");
    set_str(quant, "input", base);
    set_str(quant, "output", in_dir(dir, "q8.gguf"));
    ck_assert_msg(slm_job_run(quant, &err) == SLM_OK, "%s", err.message);
    char *q8 = reported_output(quant);
    ck_assert_str_eq(slm_job_input(quant, 0), base);
    ck_assert_str_eq(slm_job_output(quant, 0), q8);

    slm_job_t *eval = new_job("eval", "{\"ctx\": 64}");
    set_str(eval, "model", q8);
    set_str(eval, "perplexity", text);
    ck_assert_msg(slm_job_run(eval, &err) == SLM_OK, "%s", err.message);
    json_t *doc = report_of(eval);
    const json_t *res = json_object_get(doc, "results");
    double ppl = json_number_value(json_object_get(res, "ppl"));
    /* A random model guesses: its perplexity is near the vocabulary's size. */
    ck_assert_msg(ppl > 1000 && ppl < 1e6, "ppl %g", ppl);
    ck_assert_int_ge(json_integer_value(json_object_get(res, "n_chunks")), 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(doc, "inputs"), 0)), q8);
    json_decref(doc);
    free(base);
    free(q8);
    slm_job_free(init);
    slm_job_free(quant);
    slm_job_free(eval);
}
END_TEST

/* ---- outputs over inputs ---- */

START_TEST(output_equal_to_input_is_refused_before_any_work)
{
    const char *dir = fresh_dir("io");
    /* A copy of the model, so that a bug cannot hurt the fixture. */
    const char *model = in_dir(dir, "model.gguf");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", model_path, model);
    ck_assert_int_eq(system(cmd), 0);
    struct stat before, after;
    ck_assert_int_eq(stat(model, &before), 0);

    slm_job_t *job = new_job("quantize", "{\"type\": \"q8_0\"}");
    set_str(job, "input", model);
    set_str(job, "output", model);
    rec_t *r = recorder(job);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "is the input"), "%s", err.message);
    ck_assert_uint_eq(r->n, 0);
    json_t *doc = report_of(job);
    check_envelope(doc, "quantize", "failed");
    json_decref(doc);
    free(r);
    slm_job_free(job);

    /* The output named through a symbolic link, and the evaluation text as output. */
    const char *link = in_dir(dir, "link.gguf");
    ck_assert_int_eq(symlink(model, link), 0);
    job = new_job("quantize", "{\"type\": \"q8_0\"}");
    set_str(job, "input", model);
    set_str(job, "output", link);
    ck_assert_int_eq(slm_job_run(job, NULL), SLM_E_INVALID);
    slm_job_free(job);
    job = new_job("quantize", "{\"type\": \"q8_0\"}");
    set_str(job, "input", model);
    set_str(job, "eval", link);
    set_str(job, "output", model);
    ck_assert_int_eq(slm_job_run(job, NULL), SLM_E_INVALID);
    slm_job_free(job);

    /* A pipeline's earlier input, added to a job that reads nothing itself. */
    job = new_job("init", "{\"preset\": \"stories15m\"}");
    set_str(job, "output", model);
    ck_assert_int_eq(slm_job_add_input(job, model, NULL), SLM_OK);
    r = recorder(job);
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_uint_eq(r->n, 0);
    ck_assert_uint_eq(slm_job_n_inputs(job), 1);
    free(r);
    slm_job_free(job);

    ck_assert_int_eq(stat(model, &after), 0);
    ck_assert(before.st_size == after.st_size && before.st_mtime == after.st_mtime &&
              before.st_ino == after.st_ino);
    char names[1024];
    list_dir(dir, names, sizeof names);
    ck_assert_msg(!strstr(names, "slmops-tmp"), "a temporary was left: %s", names);
}
END_TEST

/* ---- options and state ---- */

START_TEST(options_are_checked_by_name_and_type)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    for (size_t i = 0; slm_job_kind_name(i); i++) {
        ck_assert_int_eq(slm_job_new(reg, slm_job_kind_name(i), NULL, &job, &err), SLM_OK);
        ck_assert_str_eq(slm_job_kind(job), slm_job_kind_name(i));
        slm_job_free(job);
    }
    ck_assert_str_eq(slm_job_kind_name(3), "init");
    ck_assert_str_eq(slm_job_kind_name(4), "train");
    ck_assert_str_eq(slm_job_kind_name(5), "synth");
    ck_assert_str_eq(slm_job_kind_name(6), "distill");
    ck_assert_ptr_null(slm_job_kind_name(7));
    ck_assert_int_eq(slm_job_new(reg, "pipeline", NULL, &job, &err), SLM_E_NOT_FOUND);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(slm_job_new(reg, "quantize", "{\"typo\": 1}", &job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "'typo'") && strstr(err.message, "eval_ctx"), "%s",
                  err.message);
    ck_assert_int_eq(slm_job_new(reg, "quantize", "{\"pure\": 1}", &job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "'pure'"), "%s", err.message);
    ck_assert_int_eq(slm_job_new(reg, "quantize", "{\"type\": ", &job, &err), SLM_E_FORMAT);
    ck_assert_int_eq(slm_job_new(reg, "quantize", "[1]", &job, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_job_new(reg, "init", "{\"seed\": -1}", &job, &err), SLM_E_INVALID);

    job = new_job("quantize", NULL);
    ck_assert_int_eq(slm_job_set_int(job, "eval_ctx", 64, &err), SLM_OK);
    ck_assert_int_eq(slm_job_set_string(job, "eval_ctx", "64", &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_job_set_number(job, "threads", 2.5, &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_job_use_model(job, (slm_model_t *)reg, &err), SLM_E_INVALID);
    /* A missing required option fails the run, with a report. */
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "'input'"), "%s", err.message);
    json_t *doc = report_of(job);
    check_envelope(doc, "quantize", "failed");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "settings"),
                                                        "eval_ctx")), 64);
    json_decref(doc);
    /* A job runs once; its options are fixed after. */
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_STATE);
    ck_assert_int_eq(slm_job_set_bool(job, "pure", true, &err), SLM_E_STATE);
    ck_assert_int_eq(slm_job_add_input(job, "x", &err), SLM_E_STATE);
    slm_job_free(job);

    /* Null removes an option; a string seed must be a u64. */
    job = new_job("init", "{\"preset\": \"nope\", \"seed\": \"12x\"}");
    ck_assert_int_eq(slm_job_set_options(job, "{\"preset\": null}", &err), SLM_OK);
    set_str(job, "output", in_dir(fresh_dir("opt"), "m.gguf"));
    ck_assert_int_eq(slm_job_run(job, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, "'seed'"), "%s", err.message);
    slm_job_free(job);
}
END_TEST

/* A model and tokens the caller loaded: the job opens no file. */
START_TEST(eval_takes_a_loaded_model_and_tokens)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_t *m = NULL;
    ck_assert_int_eq(slm_model_load(reg, model_path, NULL, &m, &err), SLM_OK);
    int32_t toks[300];
    for (int i = 0; i < 300; i++)
        toks[i] = (i * 7 + 3) % slm_model_n_vocab(m);
    slm_job_t *job = new_job("eval", "{\"ctx\": 100, \"perplexity\": \"/nonexistent\"}");
    ck_assert_int_eq(slm_job_use_model(job, m, &err), SLM_OK);
    ck_assert_int_eq(slm_job_use_tokens(job, toks, 300, &err), SLM_OK);
    ck_assert_msg(slm_job_run(job, &err) == SLM_OK, "%s", err.message);
    json_t *doc = report_of(job);
    const json_t *res = json_object_get(doc, "results");
    ck_assert_int_eq(json_integer_value(json_object_get(res, "n_tokens")), 300);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "n_chunks")), 3);
    /* The same number as the perplexity call on the same tokens. */
    slm_perplexity_params_t pp;
    slm_perplexity_params_default(&pp);
    pp.n_ctx = 100;
    slm_perplexity_result_t want = {.struct_size = sizeof want};
    ck_assert_int_eq(slm_eval_perplexity(m, toks, 300, &pp, &want, &err), SLM_OK);
    ck_assert_double_eq(json_number_value(json_object_get(res, "ppl")), want.ppl);
    json_decref(doc);
    slm_job_free(job);
    slm_model_free(m);
}
END_TEST

int main(void)
{
    const char *fx = getenv("SLMOPS_FIXTURES");
    char fixtures[1024];
    snprintf(fixtures, sizeof fixtures, "%s", fx && *fx ? fx : "../shared/fixtures");
    snprintf(model_path, sizeof model_path, "%s/gguf/stories260K.gguf", fixtures);
    snprintf(text_path, sizeof text_path, "%s/text/tinystories_sample.txt", fixtures);
    if (!exists(model_path) || !exists(text_path)) {
        fprintf(stderr, "SKIP: %s or %s is missing\n", model_path, text_path);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/slmops-job-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch))
        return 99;
    Suite *s = suite_create("job contract");
    TCase *k = tcase_create("kinds"), *c = tcase_create("cancel"), *o = tcase_create("other");
    TCase *all[] = {k, c, o};
    for (int i = 0; i < 3; i++) {
        tcase_set_timeout(all[i], 300);
        tcase_add_checked_fixture(all[i], setup, teardown);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(k, quantize_progress_and_report);
    tcase_add_test(k, eval_progress_and_report);
    tcase_add_test(k, bench_progress_and_report);
    tcase_add_test(k, init_progress_and_report);
    tcase_add_test(c, cancel_quantize_midway);
    tcase_add_test(c, cancel_quantize_at_the_end);
    tcase_add_test(c, cancel_init_leaves_no_file);
    tcase_add_test(c, cancel_eval_and_bench);
    tcase_add_test(c, cancel_before_run);
    tcase_add_test(o, chain_init_quantize_eval);
    tcase_add_test(o, output_equal_to_input_is_refused_before_any_work);
    tcase_add_test(o, options_are_checked_by_name_and_type);
    tcase_add_test(o, eval_takes_a_loaded_model_and_tokens);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

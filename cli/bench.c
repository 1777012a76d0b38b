/* `slmops bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]`:
 * prompt processing and generation speed as llama-bench reports them (a "bench" job). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <slmops/job.h>
#include <slmops/jobs.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_bench_params_t bp;
    bool json;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-p, --n-prompt", "N", SLM_CLI_I32, OFF(bp.n_prompt), 0, 1 << 20,
     "prompt tokens (default 512; 0 skips the test)"},
    {"-n, --n-gen", "N", SLM_CLI_I32, OFF(bp.n_gen), 0, 1 << 20,
     "generated tokens (default 128; 0 skips the test)"},
    {"-r, --repetitions", "N", SLM_CLI_I32, OFF(bp.reps), 1, 100000,
     "repetitions (default 5)"},
    {"-b, --batch-size", "N", SLM_CLI_I32, OFF(bp.n_batch), 1, 1 << 16,
     "batch size (default 512)"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), SLM_CLI_CTX_HELP_MODEL),
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "one JSON document"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "bench",
    .synopsis = "-m MODEL [-p N] [-n N] [-t THREADS] [-r REPS] [-b N] [--device DEV] [--json]",
    .about = "Tokens per second as llama-bench measures them, mean +- standard deviation\n"
             "over REPS runs after one warm-up run:\n"
             "  ppN  a fresh KV cache decodes BOS and N-1 random tokens as one batch\n"
             "  tgN  a fresh KV cache decodes BOS, then N tokens one per decode\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_bench_params_default(&o->bp);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("bench", "missing -m MODEL");
    if (o->bp.n_prompt == 0 && o->bp.n_gen == 0)
        return slm_cli_usage_error("bench", "-p 0 and -n 0 leave nothing to measure");
    return SLM_CLI_OK;
}

typedef struct row {
    char model[64], size[32], params[32], backend[96], test[16];
    long threads;
} row_t;

/* The model as llama-bench names it, from the job's results. */
static void describe(const opts_t *o, const json_t *res, row_t *r)
{
    double params = (double)json_integer_value(json_object_get(res, "n_params"));
    double bytes = (double)json_integer_value(json_object_get(res, "tensor_bytes"));
    const char *arch = json_string_value(json_object_get(res, "arch"));
    const char *type = json_string_value(json_object_get(res, "type"));
    const char *backend = json_string_value(json_object_get(res, "backend"));
    snprintf(r->model, sizeof r->model, "%s %.1fM %s", arch ? arch : "?", params / 1e6,
             type ? type : "?");
    snprintf(r->size, sizeof r->size, "%.2f MiB", bytes / (1024.0 * 1024.0));
    snprintf(r->params, sizeof r->params, "%.2f M", params / 1e6);
    snprintf(r->backend, sizeof r->backend, "%s", backend ? backend : "?");
    r->threads = o->model.threads;
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void print_row(const row_t *r, const char *test, const json_t *st)
{
    char th[16];
    snprintf(th, sizeof th, r->threads > 0 ? "%ld" : "auto", r->threads);
    printf("| %-24s | %10s | %10s | %-16s | %7s | %8s | %12.2f ± %7.2f |\n", r->model, r->size,
           r->params, r->backend, th, test, num(st, "avg_ts"), num(st, "stddev_ts"));
}

static json_t *stat_json(const row_t *r, const char *test, const json_t *st)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:O, s:O, s:O, s:O, s:O}", "model",
                     r->model, "size", r->size, "params", r->params, "backend", r->backend,
                     "threads", (json_int_t)r->threads, "test", test, "n_tokens",
                     json_object_get(st, "n_tokens"), "reps", json_object_get(st, "reps"),
                     "avg_ts", json_object_get(st, "avg_ts"), "stddev_ts",
                     json_object_get(st, "stddev_ts"), "avg_ms", json_object_get(st, "avg_ms"));
}

static int report(const opts_t *o, const json_t *res, const json_t *loras)
{
    row_t r;
    describe(o, res, &r);
    const json_t *pp = json_object_get(res, "pp"), *tg = json_object_get(res, "tg");
    char pp_name[24], tg_name[24];
    snprintf(pp_name, sizeof pp_name, "pp%d",
             (int)json_integer_value(json_object_get(pp, "n_tokens")));
    snprintf(tg_name, sizeof tg_name, "tg%d",
             (int)json_integer_value(json_object_get(tg, "n_tokens")));
    if (o->json) {
        json_t *a = json_array();
        if (json_is_object(pp))
            json_array_append_new(a, stat_json(&r, pp_name, pp));
        if (json_is_object(tg))
            json_array_append_new(a, stat_json(&r, tg_name, tg));
        json_t *doc = json_pack("{s:o, s:o}", "file", slm_cli_json_path(o->model.model),
                                "results", a);
        if (doc && json_array_size(loras))
            json_object_set(doc, "lora", (json_t *)loras);
        return slm_cli_print_json(doc);
    }
    printf("| %-24s | %10s | %10s | %-16s | %7s | %8s | %22s |\n", "model", "size", "params",
           "backend", "threads", "test", "t/s");
    printf("| %.24s | %.10s | %.10s | %.16s | %.7s | %.8s | %.22s |\n",
           "------------------------", "----------", "----------", "----------------", "-------",
           "--------", "----------------------");
    if (json_is_object(pp))
        print_row(&r, pp_name, pp);
    if (json_is_object(tg))
        print_row(&r, tg_name, tg);
    return SLM_CLI_OK;
}

static int print_report(const opts_t *o, const char *text)
{
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    const json_t *res = json_object_get(doc, "results");
    const json_t *loras = json_object_get(json_object_get(doc, "settings"), "lora");
    int rc = json_is_object(res) ? report(o, res, loras) : SLM_CLI_FAILED;
    if (!json_is_object(res))
        fprintf(stderr, "slmops bench: the job wrote no report (out of memory)\n");
    json_decref(doc);
    return rc;
}

/* A bench job on the session's model, with the command line's sizes. */
static int run(const opts_t *o, slm_cli_session_t *s)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    int rc = slm_job_new(s->reg, "bench", NULL, &job, &err);
    if (rc == SLM_OK && (rc = slm_job_set_string(job, "model", o->model.model, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "n_prompt", o->bp.n_prompt, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "n_gen", o->bp.n_gen, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "reps", o->bp.reps, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "batch", o->bp.n_batch, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "threads", o->model.threads, &err)) == SLM_OK &&
        (rc = slm_cli_lora_job(job, s, &err)) == SLM_OK &&
        (rc = slm_job_use_model(job, s->model, &err)) == SLM_OK)
        rc = slm_job_run(job, &err);
    rc = rc == SLM_OK ? print_report(o, slm_job_report(job)) : slm_cli_fail("bench", &err);
    slm_job_free(job);
    return rc;
}

int slm_cli_bench(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    rc = slm_cli_session_open(&s, &o.model, false, "bench");
    if (rc == SLM_CLI_OK)
        rc = run(&o, &s);
    slm_cli_session_close(&s);
    return rc;
}

/* `slmops bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]`:
 * prompt processing and generation speed as llama-bench reports them. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <slmops/device.h>
#include <slmops/sched.h>
#include <slmops/jobs.h>
#include <slmops/model-file.h>
#include <slmops/types.h>

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

/* The type most of the weight bytes are in, as llama-bench names a model. */
static const char *main_type(const slm_model_file_t *mf, uint64_t *bytes)
{
    uint64_t by_type[64] = {0};
    int best = 0;
    *bytes = 0;
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < slm_model_file_n_tensors(mf); i++) {
        if (slm_model_file_tensor(mf, i, &t) < 0)
            continue;
        *bytes += t.nbytes;
        if (t.n_dims >= 2 && t.type >= 0 && t.type < 64 &&
            (by_type[t.type] += t.nbytes) > by_type[best])
            best = t.type;
    }
    return slm_type_name(best);
}

typedef struct row {
    char model[64], size[32], params[32], backend[96], test[16];
    long threads;
} row_t;

static void describe(const opts_t *o, const slm_cli_session_t *s, row_t *r)
{
    const slm_model_file_t *mf = slm_model_container(s->model);
    uint64_t bytes;
    const char *type = main_type(mf, &bytes);
    snprintf(r->model, sizeof r->model, "%s %.1fM %s", slm_model_arch(s->model),
             (double)slm_model_n_params(s->model) / 1e6, type);
    snprintf(r->size, sizeof r->size, "%.2f MiB", (double)bytes / (1024.0 * 1024.0));
    snprintf(r->params, sizeof r->params, "%.2f M", (double)slm_model_n_params(s->model) / 1e6);
    const slm_device_info_t *di = slm_sched_device(slm_model_sched(s->model));
    snprintf(r->backend, sizeof r->backend, "%s", di ? di->plugin : "?");
    r->threads = o->model.threads;
}

static void print_row(const row_t *r, const char *test, const slm_bench_stat_t *st)
{
    char th[16];
    snprintf(th, sizeof th, r->threads > 0 ? "%ld" : "auto", r->threads);
    printf("| %-24s | %10s | %10s | %-16s | %7s | %8s | %12.2f ± %7.2f |\n", r->model, r->size,
           r->params, r->backend, th, test, st->mean, st->stddev);
}

static json_t *stat_json(const row_t *r, const char *test, const slm_bench_stat_t *st)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:i, s:f, s:f, s:f}", "model", r->model,
                     "size", r->size, "params", r->params, "backend", r->backend, "threads",
                     (json_int_t)r->threads, "test", test, "n_tokens", st->n_tokens, "reps",
                     st->reps, "avg_ts", st->mean, "stddev_ts", st->stddev, "avg_ms",
                     st->mean_ms);
}

static int report(const opts_t *o, const slm_cli_session_t *s, const slm_bench_result_t *res)
{
    row_t r;
    describe(o, s, &r);
    char pp[16], tg[16];
    snprintf(pp, sizeof pp, "pp%d", (int)res->pp.n_tokens);
    snprintf(tg, sizeof tg, "tg%d", (int)res->tg.n_tokens);
    if (o->json) {
        json_t *a = json_array();
        if (res->pp.n_tokens)
            json_array_append_new(a, stat_json(&r, pp, &res->pp));
        if (res->tg.n_tokens)
            json_array_append_new(a, stat_json(&r, tg, &res->tg));
        return slm_cli_print_json(json_pack("{s:o, s:o}", "file", slm_cli_json_path(o->model.model), "results", a));
    }
    printf("| %-24s | %10s | %10s | %-16s | %7s | %8s | %22s |\n", "model", "size", "params",
           "backend", "threads", "test", "t/s");
    printf("| %.24s | %.10s | %.10s | %.16s | %.7s | %.8s | %.22s |\n",
           "------------------------", "----------", "----------", "----------------", "-------",
           "--------", "----------------------");
    if (res->pp.n_tokens)
        print_row(&r, pp, &res->pp);
    if (res->tg.n_tokens)
        print_row(&r, tg, &res->tg);
    return SLM_CLI_OK;
}

int slm_cli_bench(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    rc = slm_cli_session_open(&s, &o.model, false, "bench");
    if (rc == SLM_CLI_OK) {
        slm_bench_result_t res = {.struct_size = sizeof res};
        slm_error_t err;
        slm_error_init(&err);
        rc = slm_bench_run(s.model, &o.bp, &res, &err) == SLM_OK ? report(&o, &s, &res)
                                                                 : slm_cli_fail("bench", &err);
    }
    slm_cli_session_close(&s);
    return rc;
}

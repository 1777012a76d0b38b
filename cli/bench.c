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
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_bench_params_t bp;
    bool json;
} opts_t;

static void bench_usage(void)
{
    printf("Usage: slmops bench -m MODEL [-p N] [-n N] [-t THREADS] [-r REPS] [-b N]\n"
           "                    [--device DEV] [--json]\n"
           "Tokens per second as llama-bench measures them, mean +- standard deviation\n"
           "over REPS runs after one warm-up run:\n"
           "  ppN  a fresh KV cache decodes BOS and N-1 random tokens as one batch\n"
           "  tgN  a fresh KV cache decodes BOS, then N tokens one per decode\n"
           "  -p N        prompt tokens (default 512; 0 skips the test)\n"
           "  -n N        generated tokens (default 128; 0 skips the test)\n"
           "  -t N        threads (default: the backend's)\n"
           "  -r N        repetitions (default 5)\n"
           "  -b N        batch size (default 512)\n"
           "  --json      one JSON document\n");
}

static int num(int argc, char **argv, int *i, long lo, long hi, long *out)
{
    const char *name = argv[*i], *v = slm_cli_value(argc, argv, i, "bench");
    if (!v)
        return SLM_CLI_USAGE;
    if (!slm_cli_parse_int(v, lo, hi, out))
        return slm_cli_usage_error("bench", "%s needs a number %ld..%ld", name, lo, hi);
    return SLM_CLI_OK;
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_bench_params_default(&o->bp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v = 0;
        int rc = SLM_CLI_OK;
        if (slm_cli_is_help(a)) {
            bench_usage();
            return -1;
        }
        if (strcmp(a, "-t") == 0)
            argv[i] = "--threads";
        int took = slm_cli_model_option(argc, argv, &i, &o->model, "bench");
        if (took < 0)
            return SLM_CLI_USAGE;
        if (took)
            continue;
        if (strcmp(a, "--json") == 0)
            o->json = true;
        else if (strcmp(a, "-p") == 0 && (rc = num(argc, argv, &i, 0, 1 << 20, &v)) == 0)
            o->bp.n_prompt = (int32_t)v;
        else if (strcmp(a, "-n") == 0 && (rc = num(argc, argv, &i, 0, 1 << 20, &v)) == 0)
            o->bp.n_gen = (int32_t)v;
        else if (strcmp(a, "-r") == 0 && (rc = num(argc, argv, &i, 1, 100000, &v)) == 0)
            o->bp.reps = (int32_t)v;
        else if (strcmp(a, "-b") == 0 && (rc = num(argc, argv, &i, 1, 1 << 16, &v)) == 0)
            o->bp.n_batch = (int32_t)v;
        else if (rc == SLM_CLI_OK && strcmp(a, "-p") && strcmp(a, "-n") && strcmp(a, "-r") &&
                 strcmp(a, "-b"))
            return slm_cli_usage_error("bench", "unknown argument '%s'", a);
        if (rc != SLM_CLI_OK)
            return rc;
    }
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
        return slm_cli_print_json(json_pack("{s:s, s:o}", "file", o->model.model, "results", a));
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
        return rc < 0 ? SLM_CLI_OK : rc;
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

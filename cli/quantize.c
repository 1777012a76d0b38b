/* `slmops quantize IN OUT --type T ...`: quantize a model's weight matrices into a
 * GGUF file (a "quantize" job, slmops/job.h) and print its report, as text or JSON. */
#include "config.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <math.h>

#include <jansson.h>
#include <slmops/job.h>
#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *in, *out, *type, *eval, *to;
    slm_cli_strs_t files, rules;
    long ctx, threads;
    bool pure, json, allow_requantize;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--type", "T", SLM_CLI_STR, OFF(type), 0, 0,
     "Q4_K_M (or Q4_K), Q4_K_S, Q5_K_M (or Q5_K), Q5_K_S, Q6_K,\n"
     "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16, F32, or their\n"
     "llama-quantize numbers; nf4 or any type a quantizer\n"
     "plugin provides (the output matrix then gets q6_k)"},
    {"--tensor-type", "R=T", SLM_CLI_STRS, OFF(rules), 0, 0,
     "tensors whose name matches the extended regex R get type\n"
     "T (first match wins; may be repeated)"},
    {"--pure", NULL, SLM_CLI_FLAG, OFF(pure), 0, 0, "every weight matrix gets T's type: no mix rules"},
    {"--allow-requantize", NULL, SLM_CLI_FLAG, OFF(allow_requantize), 0, 0,
     "convert tensors that are already quantized"},
    {"--eval", "FILE", SLM_CLI_STR, OFF(eval), 0, 0,
     "perplexity of FILE before and after, and the mean KL\n"
     "divergence of the new model's next-token distributions"},
    SLM_CLI_CTX_OPT(OFF(ctx), "tokens per evaluation chunk (default 512)"),
    {"--to", "FORMAT", SLM_CLI_STR, OFF(to), 0, 0, "output format plugin (default gguf)"},
    {"-t, --threads", "N", SLM_CLI_LONG, OFF(threads), 1, 4096,
     "threads (default: every CPU)"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "print the report as one JSON document"},
    {0},
};

static const slm_cli_group_t groups[] = {{"Options", own_opts, 0}, {0}};

static const slm_cli_spec_t spec = {
    .verb = "quantize",
    .synopsis = "IN OUT --type T [--tensor-type REGEX=TYPE]... [--pure]\n"
                "                        [--allow-requantize] [--eval FILE] [--ctx N]\n"
                "                        [--threads N] [--json]",
    .about = "Quantize the weight matrices of the model IN (any readable format) into the\n"
             "GGUF file OUT, written under a temporary name and renamed into place.\n"
             "Norms and other vectors stay as they are. T is llama-quantize's file type (a\n"
             "mix, applied tensor by tensor with llama-quantize's rules) or a type; names\n"
             "ignore case. Rows the type's block does not divide keep a wider type and are\n"
             "listed (docs/quantization.md).\n",
    .groups = groups,
    .operand_names = "IN and OUT",
    .min_operands = 2,
    .max_operands = 2,
    .operands_offset = OFF(files),
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    o->in = o->files.v[0];
    o->out = o->files.v[1];
    if (!o->type)
        return slm_cli_usage_error("quantize", "missing --type T");
    return SLM_CLI_OK;
}

/* Each --tensor-type is checked here, so that a mistake is a usage error before
 * any work; the job gets them as given. */
static int check_rules(const opts_t *o)
{
    for (size_t i = 0; i < o->rules.n; i++) {
        const char *eq = strrchr(o->rules.v[i], '=');
        if (!eq || eq == o->rules.v[i])
            return slm_cli_usage_error("quantize", "--tensor-type '%s' is not REGEX=TYPE",
                                       o->rules.v[i]);
        if (slm_type_from_name(eq + 1) < 0)
            return slm_cli_usage_error("quantize", "--tensor-type '%s': unknown type '%s'",
                                       o->rules.v[i], eq + 1);
        char *pat = strndup(o->rules.v[i], (size_t)(eq - o->rules.v[i]));
        if (!pat)
            return SLM_CLI_FAILED;
        regex_t re;
        int bad = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
        free(pat);
        if (bad) {
            char why[128];
            regerror(bad, &re, why, sizeof why);
            return slm_cli_usage_error("quantize", "--tensor-type '%s': bad regular "
                                       "expression: %s", o->rules.v[i], why);
        }
        regfree(&re);
    }
    return SLM_CLI_OK;
}

static void on_progress(void *user, const slm_job_progress_t *ev)
{
    bool tty = *(bool *)user;
    const char *stage = ev->stage, *item = ev->item;
    uint64_t done = ev->done, total = ev->total;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (!tty) {
        slm_log(SLM_LOG_INFO, "quantize", "%s %3d%% %s", stage, pct, item);
        return;
    }
    char bar[41];
    int fill = pct * 40 / 100;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(40 - fill));
    bar[40] = '\0';
    fprintf(stderr, "\r%-8s [%s] %3d%% %-32.32s", stage, bar, pct, item);
    if (done >= total)
        fprintf(stderr, "\n");
}

static double mib(uint64_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

/* A number of the report (null stands for a value that was not finite). */
static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static unsigned long long u64(const json_t *o, const char *key)
{
    return (unsigned long long)json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The job's results under the command line's own names of the files. */
static int print_json(const opts_t *o, const json_t *r)
{
    json_t *doc = json_pack("{s:o, s:o}", "input", slm_cli_json_path(o->in), "output",
                            slm_cli_json_path(o->out));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)r, k, v) {
        json_t *copy = json_copy(v);
        if (copy && strcmp(k, "eval") == 0)
            json_object_set_new(copy, "file", slm_cli_json_path(o->eval));
        if (doc && json_object_set_new(doc, k, copy) != 0) {
            json_decref(doc);
            doc = NULL;
        }
    }
    return slm_cli_print_json(doc);
}

static void print_text(const opts_t *o, const json_t *r)
{
    const char *mix = str(r, "mix"), *type = str(r, "type");
    long long file_type = (long long)json_integer_value(json_object_get(r, "file_type"));
    unsigned long long in = u64(r, "file_bytes_in"), out = u64(r, "file_bytes_out");
    const json_t *tensors = json_object_get(r, "tensors"), *kept = json_object_get(r, "kept");
    const json_t *ev = json_object_get(r, "eval");
    printf("quantized %s -> %s as %s", o->in, o->out, mix ? mix : type);
    if (mix)
        printf(" (mostly %s", type);
    if (file_type >= 0)
        printf("%sgeneral.file_type %d", mix ? ", " : " (", (int)file_type);
    if (mix || file_type >= 0)
        printf(")");
    printf("\n  file size:    %llu -> %llu bytes (%.2f MiB -> %.2f MiB, %.1f%%)\n", in, out,
           mib(in), mib(out), in ? 100.0 * (double)out / (double)in : 0);
    printf("  weights:      %llu elements, %.2f -> %.2f bits per weight\n", u64(r, "n_weights"),
           num(r, "bpw_in"), num(r, "bpw_out"));
    const char *k;
    json_t *v;
    printf("  tensors:      %zu (", json_array_size(tensors));
    bool first = true;
    json_object_foreach(json_object_get(r, "types"), k, v) {
        printf("%s%s: %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
        first = false;
    }
    printf(")\n");
    printf("  kept in a wider type: %zu\n", json_array_size(kept));
    size_t i;
    json_array_foreach(kept, i, v)
        printf("    %-28s %s\n", str(v, "name"), str(v, "reason"));
    if (ev) {
        double before = num(ev, "ppl_before"), after = num(ev, "ppl_after");
        printf("  perplexity:   %.4f -> %.4f (%+.2f%%) on %s, ctx %d, %d chunks, %llu "
               "positions\n", before, after, 100.0 * (after / before - 1.0), o->eval,
               (int)json_integer_value(json_object_get(ev, "ctx")),
               (int)json_integer_value(json_object_get(ev, "chunks")), u64(ev, "scored"));
        printf("  KL divergence: mean %.6f, max %.6f; same top token %.2f%%\n",
               num(ev, "kld_mean"), num(ev, "kld_max"), 100.0 * num(ev, "top1_agree"));
    }
    printf("  time:         %.2f s", num(r, "seconds"));
    if (ev)
        printf(" (+ %.2f s evaluation)", num(ev, "seconds"));
    printf("\n");
}

/* The job's options from the command line. */
static int set_options(const opts_t *o, slm_registry_t *reg, slm_job_t *job, slm_error_t *err)
{
    char fmt[128];
    snprintf(fmt, sizeof fmt, "format-%s", o->to ? o->to : "gguf");
    const char *format = slm_registry_find(reg, "format", fmt) ? fmt : o->to;
    int rc;
    if ((rc = slm_job_set_string(job, "input", o->in, err)) ||
        (rc = slm_job_set_string(job, "output", o->out, err)) ||
        (rc = slm_job_set_string(job, "type", o->type, err)) ||
        (rc = slm_job_set_bool(job, "pure", o->pure, err)) ||
        (rc = slm_job_set_bool(job, "allow_requantize", o->allow_requantize, err)) ||
        (rc = slm_job_set_string(job, "eval", o->eval, err)) ||
        (rc = slm_job_set_int(job, "eval_ctx", o->ctx, err)) ||
        (rc = slm_job_set_int(job, "threads", o->threads, err)) ||
        (rc = slm_job_set_string(job, "format", format, err)))
        return rc;
    for (size_t i = 0; i < o->rules.n && rc == SLM_OK; i++)
        rc = slm_job_append_string(job, "tensor_types", o->rules.v[i], err);
    return rc;
}

static int print_report(const opts_t *o, const char *report)
{
    json_t *doc = report ? json_loads(report, 0, NULL) : NULL;
    const json_t *r = json_object_get(doc, "results");
    int rc = SLM_CLI_OK;
    if (!json_is_object(r)) {
        fprintf(stderr, "slmops quantize: the job wrote no report (out of memory)\n");
        rc = SLM_CLI_FAILED;
    } else if (o->json) {
        rc = print_json(o, r);
    } else {
        print_text(o, r);
    }
    json_decref(doc);
    return rc;
}

static int run(const opts_t *o, slm_registry_t *reg)
{
    int32_t type;
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_quantize_type_lookup(reg, o->type, &type, &err);
    if (rc == SLM_E_NOT_FOUND)
        return slm_cli_usage_error("quantize", "unknown type '%s'", o->type);
    if (rc != SLM_OK)
        return slm_cli_fail("quantize", &err);
    rc = check_rules(o);
    if (rc != SLM_CLI_OK)
        return rc;
    bool tty = isatty(2);
    slm_job_t *job = NULL;
    if (slm_job_new(reg, "quantize", NULL, &job, &err) != SLM_OK ||
        set_options(o, reg, job, &err) != SLM_OK) {
        slm_job_free(job);
        return slm_cli_fail("quantize", &err);
    }
    slm_job_set_progress(job, on_progress, &tty);
    /* SIGINT, SIGTERM and SIGHUP end the verb through cli/signals.c, which removes
     * the temporary output and exits 128+signal. */
    rc = slm_job_run(job, &err) == SLM_OK ? print_report(o, slm_job_report(job))
                                          : slm_cli_fail("quantize", &err);
    slm_job_free(job);
    return rc;
}

int slm_cli_quantize(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    rc = run(&o, reg);
    slm_registry_free(reg);
    return rc;
}

/* `slmops quantize IN OUT --type T ...`: quantize a model's weight matrices into a
 * GGUF file (slm_quantize_model) and print what it did, as text or JSON. */
#include "config.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

#define MAX_RULES SLM_CLI_MAX_STRS

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

static int build_rules(const opts_t *o, slm_tensor_type_rule_t *rules)
{
    for (size_t i = 0; i < o->rules.n; i++) {
        const char *eq = strrchr(o->rules.v[i], '=');
        if (!eq || eq == o->rules.v[i])
            return slm_cli_usage_error("quantize", "--tensor-type '%s' is not REGEX=TYPE",
                                       o->rules.v[i]);
        rules[i].type = slm_type_from_name(eq + 1);
        if (rules[i].type < 0)
            return slm_cli_usage_error("quantize", "--tensor-type '%s': unknown type '%s'",
                                       o->rules.v[i], eq + 1);
        char *pat = strndup(o->rules.v[i], (size_t)(eq - o->rules.v[i]));
        if (!pat)
            return SLM_CLI_FAILED;
        rules[i].pattern = pat;
        /* A pattern regcomp refuses is a command-line mistake: say so before any work. */
        regex_t re;
        int bad = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
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

static void on_progress(void *user, const char *stage, uint64_t done, uint64_t total,
                        const char *item)
{
    bool tty = *(bool *)user;
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

static int print_json(const opts_t *o, const slm_quantize_report_t *r)
{
    json_t *kept = json_array(), *tensors = json_array();
    for (size_t i = 0; i < r->n_tensors; i++) {
        const slm_quantize_tensor_t *t = &r->tensors[i];
        json_array_append_new(tensors, json_pack("{s:s, s:o, s:s, s:s, s:I, s:I}", "name",
            t->name, "shape", shape(t), "type_in", slm_type_name(t->type_in), "type",
            slm_type_name(t->type_out), "bytes_in", (json_int_t)t->bytes_in, "bytes",
            (json_int_t)t->bytes_out));
        if (t->kept)
            json_array_append_new(kept, json_pack("{s:s, s:o, s:s, s:s}", "name", t->name,
                                  "shape", shape(t), "type", slm_type_name(t->type_out),
                                  "reason", t->kept));
    }
    json_t *doc = json_pack("{s:o, s:o, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, "
                            "s:o, s:o, s:o, s:f}",
        "input", slm_cli_json_path(o->in), "output", slm_cli_json_path(o->out), "type", slm_type_name(r->type), "mix", r->mix,
        "file_type",
        (json_int_t)r->file_type, "file_bytes_in", (json_int_t)r->file_bytes_in,
        "file_bytes_out", (json_int_t)r->file_bytes_out, "data_bytes_in",
        (json_int_t)r->data_bytes_in, "data_bytes_out", (json_int_t)r->data_bytes_out,
        "mib_in", mib(r->file_bytes_in), "mib_out", mib(r->file_bytes_out), "bpw_in", r->bpw_in,
        "bpw_out", r->bpw_out, "n_weights", (json_int_t)r->n_weights, "types", type_counts(r),
        "kept", kept, "tensors", tensors, "seconds", r->seconds);
    if (r->has_eval)
        json_object_set_new(doc, "eval", json_pack("{s:o, s:i, s:i, s:I, s:f, s:f, s:f, s:f, "
                            "s:f, s:f, s:f}", "file", slm_cli_json_path(o->eval), "ctx", r->eval_ctx, "chunks",
                            r->eval_chunks, "scored", (json_int_t)r->eval_scored, "ppl_before",
                            r->ppl_before, "ppl_after", r->ppl_after, "ppl_change",
                            r->ppl_after / r->ppl_before - 1.0, "kld_mean", r->kld_mean,
                            "kld_max", r->kld_max, "top1_agree", r->top1_agree, "seconds",
                            r->eval_seconds));
    return slm_cli_print_json(doc);
}

static void print_text(const opts_t *o, const slm_quantize_report_t *r)
{
    printf("quantized %s -> %s as %s", o->in, o->out, r->mix ? r->mix : slm_type_name(r->type));
    if (r->mix)
        printf(" (mostly %s", slm_type_name(r->type));
    if (r->file_type >= 0)
        printf("%sgeneral.file_type %d", r->mix ? ", " : " (", (int)r->file_type);
    if (r->mix || r->file_type >= 0)
        printf(")");
    printf("\n  file size:    %llu -> %llu bytes (%.2f MiB -> %.2f MiB, %.1f%%)\n",
           (unsigned long long)r->file_bytes_in, (unsigned long long)r->file_bytes_out,
           mib(r->file_bytes_in), mib(r->file_bytes_out),
           r->file_bytes_in ? 100.0 * (double)r->file_bytes_out / (double)r->file_bytes_in : 0);
    printf("  weights:      %llu elements, %.2f -> %.2f bits per weight\n",
           (unsigned long long)r->n_weights, r->bpw_in, r->bpw_out);
    json_t *tc = type_counts(r);
    const char *k;
    json_t *v;
    printf("  tensors:      %zu (", r->n_tensors);
    bool first = true;
    json_object_foreach(tc, k, v) {
        printf("%s%s: %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
        first = false;
    }
    printf(")\n");
    json_decref(tc);
    printf("  kept in a wider type: %zu\n", r->n_kept);
    for (size_t i = 0; i < r->n_tensors; i++)
        if (r->tensors[i].kept)
            printf("    %-28s %s\n", r->tensors[i].name, r->tensors[i].kept);
    if (r->has_eval) {
        printf("  perplexity:   %.4f -> %.4f (%+.2f%%) on %s, ctx %d, %d chunks, %llu "
               "positions\n", r->ppl_before, r->ppl_after,
               100.0 * (r->ppl_after / r->ppl_before - 1.0), o->eval, (int)r->eval_ctx,
               (int)r->eval_chunks, (unsigned long long)r->eval_scored);
        printf("  KL divergence: mean %.6f, max %.6f; same top token %.2f%%\n", r->kld_mean,
               r->kld_max, 100.0 * r->top1_agree);
    }
    printf("  time:         %.2f s", r->seconds);
    if (r->has_eval)
        printf(" (+ %.2f s evaluation)", r->eval_seconds);
    printf("\n");
}

static int run(const opts_t *o, slm_registry_t *reg, slm_tensor_type_rule_t *rules)
{
    int32_t type;
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_quantize_type_lookup(reg, o->type, &type, &err);
    if (rc == SLM_E_NOT_FOUND)
        return slm_cli_usage_error("quantize", "unknown type '%s'", o->type);
    if (rc != SLM_OK)
        return slm_cli_fail("quantize", &err);
    rc = build_rules(o, rules);
    if (rc != SLM_CLI_OK)
        return rc;
    bool tty = isatty(2);
    char fmt[128];
    snprintf(fmt, sizeof fmt, "format-%s", o->to ? o->to : "gguf");
    slm_quantize_params_t p;
    slm_quantize_params_default(&p);
    p.type = type;
    p.type_name = o->type;
    p.allow_requantize = o->allow_requantize;
    p.rules = rules;
    p.n_rules = o->rules.n;
    p.pure = o->pure;
    p.eval_file = o->eval;
    p.eval_ctx = (int32_t)o->ctx;
    p.n_threads = (int32_t)o->threads;
    p.format = slm_registry_find(reg, "format", fmt) ? fmt : o->to;
    p.progress = on_progress;
    p.user = &tty;
    /* SIGINT, SIGTERM and SIGHUP end the verb through cli/signals.c, which removes
     * the temporary output and exits 128+signal. */
    slm_quantize_report_t rep = {.struct_size = sizeof rep};
    if (slm_quantize_model(reg, o->in, o->out, &p, &rep, &err) != SLM_OK)
        return slm_cli_fail("quantize", &err);
    if (o->json)
        rc = print_json(o, &rep);
    else
        print_text(o, &rep);
    slm_quantize_report_free(&rep);
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
    slm_tensor_type_rule_t rules[MAX_RULES] = {{0}};
    rc = run(&o, reg, rules);
    for (size_t i = 0; i < MAX_RULES; i++)
        free((char *)rules[i].pattern);
    slm_registry_free(reg);
    return rc;
}

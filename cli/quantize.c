/* `slmops quantize IN OUT --type T ...`: quantize a model's weight matrices into a
 * GGUF file (slm_quantize_model) and print what it did, as text or JSON. */
#include "config.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/verbs.h"

#define MAX_RULES 64

typedef struct opts {
    const char *in, *out, *type, *eval, *to;
    const char *rules[MAX_RULES];
    size_t n_rules;
    long ctx, threads;
    bool pure, json, allow_requantize;
} opts_t;

static volatile int cancelled;

static void quantize_usage(void)
{
    printf("Usage: slmops quantize IN OUT --type T [--tensor-type REGEX=TYPE]... [--pure]\n"
           "                        [--allow-requantize] [--eval FILE] [--ctx N] [--threads N]\n"
           "                        [--json]\n"
           "Quantize the weight matrices of the model IN (any readable format) into the\n"
           "GGUF file OUT, written under a temporary name and renamed into place.\n"
           "Norms and other vectors stay as they are. T is llama-quantize's file type (a\n"
           "mix, applied tensor by tensor with llama-quantize's rules) or a type; names\n"
           "ignore case. Rows the type's block does not divide keep a wider type and are\n"
           "listed (docs/quantization.md).\n"
           "  --type T             Q4_K_M (or Q4_K), Q4_K_S, Q5_K_M (or Q5_K), Q5_K_S, Q6_K,\n"
           "                       Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16, F32, or their\n"
           "                       llama-quantize numbers; nf4 or any type a quantizer\n"
           "                       plugin provides (the output matrix then gets q6_k)\n"
           "  --tensor-type R=T    tensors whose name matches the extended regex R get type\n"
           "                       T (first match wins; may be repeated)\n"
           "  --pure               every weight matrix gets T's type: no mix rules\n"
           "  --allow-requantize   convert tensors that are already quantized\n"
           "  --eval FILE          perplexity of FILE before and after, and the mean KL\n"
           "                       divergence of the new model's next-token distributions\n"
           "  --ctx N              tokens per evaluation chunk (default 512)\n"
           "  --threads N          threads (default: every CPU)\n"
           "  --json               print the report as one JSON document\n");
}

static int parse_opt(int argc, char **argv, int *i, opts_t *o)
{
    const char *a = argv[*i], *v;
    if (strcmp(a, "--pure") == 0 || strcmp(a, "--json") == 0) {
        *(a[2] == 'p' ? &o->pure : &o->json) = true;
        return SLM_CLI_OK;
    }
    if (strcmp(a, "--allow-requantize") == 0) {
        o->allow_requantize = true;
        return SLM_CLI_OK;
    }
    if (!(v = slm_cli_value(argc, argv, i, "quantize")))
        return SLM_CLI_USAGE;
    if (strcmp(a, "--type") == 0)
        o->type = v;
    else if (strcmp(a, "--eval") == 0)
        o->eval = v;
    else if (strcmp(a, "--to") == 0)
        o->to = v;
    else if (strcmp(a, "--tensor-type") == 0 && o->n_rules < MAX_RULES)
        o->rules[o->n_rules++] = v;
    else if (strcmp(a, "--tensor-type") == 0)
        return slm_cli_usage_error("quantize", "at most %d --tensor-type rules", MAX_RULES);
    else if (strcmp(a, "--ctx") == 0 && !slm_cli_parse_int(v, 8, 1L << 20, &o->ctx))
        return slm_cli_usage_error("quantize", "--ctx needs a number 8..1048576");
    else if (strcmp(a, "--threads") == 0 && !slm_cli_parse_int(v, 1, 256, &o->threads))
        return slm_cli_usage_error("quantize", "--threads needs a number 1..256");
    else if (strcmp(a, "--ctx") != 0 && strcmp(a, "--threads") != 0)
        return slm_cli_usage_error("quantize", "unknown option '%s'", a);
    return SLM_CLI_OK;
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        if (slm_cli_is_help(argv[i])) {
            quantize_usage();
            return -1;
        }
        int rc;
        if (argv[i][0] == '-' && argv[i][1]) {
            if ((rc = parse_opt(argc, argv, &i, o)) != SLM_CLI_OK)
                return rc;
        } else if (!o->in) {
            o->in = argv[i];
        } else if (!o->out) {
            o->out = argv[i];
        } else {
            return slm_cli_usage_error("quantize", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!o->in || !o->out)
        return slm_cli_usage_error("quantize", "needs IN and OUT");
    if (!o->type)
        return slm_cli_usage_error("quantize", "missing --type T");
    return SLM_CLI_OK;
}

static int build_rules(const opts_t *o, slm_tensor_type_rule_t *rules)
{
    for (size_t i = 0; i < o->n_rules; i++) {
        const char *eq = strrchr(o->rules[i], '=');
        if (!eq || eq == o->rules[i])
            return slm_cli_usage_error("quantize", "--tensor-type '%s' is not REGEX=TYPE",
                                       o->rules[i]);
        rules[i].type = slm_type_from_name(eq + 1);
        if (rules[i].type < 0)
            return slm_cli_usage_error("quantize", "--tensor-type '%s': unknown type '%s'",
                                       o->rules[i], eq + 1);
        char *pat = strndup(o->rules[i], (size_t)(eq - o->rules[i]));
        if (!pat)
            return SLM_CLI_FAILED;
        rules[i].pattern = pat;
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
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, "
                            "s:o, s:o, s:o, s:f}",
        "input", o->in, "output", o->out, "type", slm_type_name(r->type), "mix", r->mix,
        "file_type",
        (json_int_t)r->file_type, "file_bytes_in", (json_int_t)r->file_bytes_in,
        "file_bytes_out", (json_int_t)r->file_bytes_out, "data_bytes_in",
        (json_int_t)r->data_bytes_in, "data_bytes_out", (json_int_t)r->data_bytes_out,
        "mib_in", mib(r->file_bytes_in), "mib_out", mib(r->file_bytes_out), "bpw_in", r->bpw_in,
        "bpw_out", r->bpw_out, "n_weights", (json_int_t)r->n_weights, "types", type_counts(r),
        "kept", kept, "tensors", tensors, "seconds", r->seconds);
    if (r->has_eval)
        json_object_set_new(doc, "eval", json_pack("{s:s, s:i, s:i, s:I, s:f, s:f, s:f, s:f, "
                            "s:f, s:f, s:f}", "file", o->eval, "ctx", r->eval_ctx, "chunks",
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

static void on_signal(int sig)
{
    (void)sig;
    cancelled = 1;
}

static int run(const opts_t *o, slm_registry_t *reg, slm_tensor_type_rule_t *rules)
{
    int32_t type;
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_quantize_type_lookup(reg, o->type, &type, &err);
    if (rc == SLM_E_NOT_FOUND)
        return slm_cli_usage_error("quantize", "unknown type '%s' (see --help)", o->type);
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
    p.n_rules = o->n_rules;
    p.pure = o->pure;
    p.eval_file = o->eval;
    p.eval_ctx = (int32_t)o->ctx;
    p.n_threads = (int32_t)o->threads;
    p.format = slm_registry_find(reg, "format", fmt) ? fmt : o->to;
    p.progress = on_progress;
    p.user = &tty;
    p.cancel = &cancelled;
    signal(SIGINT, on_signal);
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
        return rc < 0 ? SLM_CLI_OK : rc;
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

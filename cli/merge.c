/* `slmops merge -m BASE --lora FILE[:SCALE]... -o OUT [--type T]`: bake LoRA adapters
 * into their base model (slm_merge_model) and say what changed. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/merge.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/lora.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *model, *out, *type, *to;
    slm_cli_strs_t loras, files;
    long threads;
    bool json;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-m, --model", "BASE", SLM_CLI_STR, OFF(model), 0, 0, "the base model (any readable format)"},
    {"--lora", "FILE[:SCALE]", SLM_CLI_STRS, OFF(loras), 0, 0, SLM_CLI_LORA_HELP},
    {"-o, --output", "OUT", SLM_CLI_STR, OFF(out), 0, 0, "the merged model"},
    {"--type", "T", SLM_CLI_STR, OFF(type), 0, 0,
     "quantize the merged model as 'slmops quantize --type T' does\n"
     "(default: every tensor keeps the base's type)"},
    {"--to", "FORMAT", SLM_CLI_STR, OFF(to), 0, 0,
     "output format (default: the one OUT's extension names)"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "print the report as one JSON document"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "merge",
    .synopsis = "-m BASE --lora FILE[:SCALE]... -o OUT [--type T] [--to FORMAT] [--json]",
    .about = "Bake LoRA adapters into their base model: each adapted weight W becomes\n"
             "W + SCALE * alpha / rank * B * A, computed in f32 (a quantized W is\n"
             "dequantized first and quantized again). Every adapter is checked against\n"
             "BASE before anything is written; OUT is written under a temporary name and\n"
             "renamed into place.\n",
    .groups = groups,
    .operand_names = NULL,
    .min_operands = 0,
    .max_operands = 0,
    .operands_offset = OFF(files),
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model)
        return slm_cli_usage_error("merge", "missing -m BASE");
    if (!o->loras.n)
        return slm_cli_usage_error("merge", "missing --lora FILE[:SCALE]");
    if (!o->out)
        return slm_cli_usage_error("merge", "missing -o OUT");
    return SLM_CLI_OK;
}

static int report(const opts_t *o, const slm_merge_adapter_t *ads, const slm_merge_report_t *r)
{
    const char *type = r->mix ? r->mix : r->type >= 0 ? slm_type_name(r->type) : NULL;
    if (!o->json) {
        printf("merged %zu adapter%s into %s -> %s: %zu weights changed", r->n_adapters,
               r->n_adapters == 1 ? "" : "s", o->model, o->out, r->n_weights);
        if (type)
            printf(", quantized as %s", type);
        printf(" (%.2f s)\n", r->seconds);
        return SLM_CLI_OK;
    }
    json_t *list = slm_cli_lora_json(ads, o->loras.n);
    return slm_cli_print_json(json_pack("{s:o, s:o, s:o, s:I, s:s?, s:f}", "base",
                                        slm_cli_json_path(o->model), "output", slm_cli_json_path(o->out),
                                        "adapters", list, "weights_changed", (json_int_t)r->n_weights,
                                        "type", type, "seconds", r->seconds));
}

static void on_progress(void *user, const char *stage, uint64_t done, uint64_t total,
                        const char *item)
{
    (void)user;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    slm_log(SLM_LOG_DEBUG, "merge", "%s %3d%% %s", stage, pct, item);
}

static int run(const opts_t *o, slm_registry_t *reg, slm_merge_adapter_t *ads)
{
    char fmt[128];
    snprintf(fmt, sizeof fmt, "format-%s", o->to ? o->to : "");
    slm_merge_params_t p;
    slm_merge_params_default(&p);
    p.adapters = ads;
    p.n_adapters = o->loras.n;
    p.type_name = o->type;
    p.n_threads = (int32_t)o->threads;
    p.format = !o->to ? NULL : slm_registry_find(reg, "format", fmt) ? fmt : o->to;
    p.progress = on_progress;
    slm_error_t err;
    slm_error_init(&err);
    int32_t type;
    int rc = o->type ? slm_quantize_type_lookup(reg, o->type, &type, &err) : SLM_OK;
    if (rc == SLM_E_NOT_FOUND)
        return slm_cli_usage_error("merge", "unknown type '%s'", o->type);
    if (rc != SLM_OK)
        return slm_cli_fail("merge", &err);
    slm_merge_report_t r = {.struct_size = sizeof r};
    /* SIGINT, SIGTERM and SIGHUP end the verb through cli/signals.c, which removes
     * the temporary output and exits 128+signal. */
    if (slm_merge_model(reg, o->model, o->out, &p, &r, &err) != SLM_OK)
        return slm_cli_fail("merge", &err);
    rc = report(o, ads, &r);
    slm_merge_report_free(&r);
    return rc;
}

int slm_cli_merge(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_merge_adapter_t ads[SLM_CLI_MAX_STRS];
    char *paths[SLM_CLI_MAX_STRS] = {0};
    rc = slm_cli_lora_parse("merge", &o.loras, ads, paths);
    slm_registry_t *reg = rc == SLM_CLI_OK ? slm_cli_registry_open() : NULL;
    if (rc == SLM_CLI_OK)
        rc = reg ? run(&o, reg, ads) : SLM_CLI_FAILED;
    for (size_t i = 0; i < o.loras.n; i++)
        free(paths[i]);
    slm_registry_free(reg);
    return rc;
}

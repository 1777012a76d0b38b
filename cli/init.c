/* `slmops init --arch llama --preset NAME --random --type T OUT.gguf`: write a
 * model of a named shape with random weights (slm_model_init_random). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *arch, *preset, *type;
    slm_cli_strs_t out;
    slm_cli_seed_t seed;
    long threads;
    bool random;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--arch", "ARCH", SLM_CLI_STR, OFF(arch), 0, 0, "architecture (llama)"},
    {"--preset", "NAME", SLM_CLI_STR, OFF(preset), 0, 0, "the shapes to use (listed below)"},
    {"--random", NULL, SLM_CLI_FLAG, OFF(random), 0, 0, "random weights (the only kind so far)"},
    {"--type", "T", SLM_CLI_STR, OFF(type), 0, 0, "type of the weight matrices (default f16)"},
    {"-s, --seed", "S", SLM_CLI_SEED, OFF(seed), 0, 0,
     "seed of the weights, 0..2^64-1; -1 = a new one (default 42)"},
    {"-t, --threads", "N", SLM_CLI_LONG, OFF(threads), 1, 4096,
     "threads (default: every CPU)"},
    {0},
};

static const slm_cli_group_t groups[] = {{"Options", own_opts, 0}, {0}};

static void presets_help(FILE *f)
{
    fprintf(f, "Presets:\n");
    for (size_t i = 0; slm_init_preset_name(i); i++)
        fprintf(f, "  %s\n", slm_init_preset_name(i));
}

static const slm_cli_spec_t spec = {
    .verb = "init",
    .synopsis = "--arch llama --preset NAME --random [--type T] [--seed S]\n"
                "                    [--threads N] OUT.gguf",
    .about = "Write a model with the shapes of a named preset, N(0, 0.02) random weights\n"
             "(norms 1) in type T (default f16; quantized types as 'slmops quantize' gives\n"
             "them) and a synthetic SentencePiece-style vocabulary of the preset's size:\n"
             "<unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then generated pieces.\n"
             "For benchmarks and tests: the model says nothing useful.\n",
    .groups = groups,
    .operand_names = "OUT",
    .min_operands = 1,
    .max_operands = 1,
    .operands_offset = OFF(out),
    .more_help = presets_help,
};

static void on_progress(void *user, const char *stage, uint64_t done, uint64_t total,
                        const char *item)
{
    (void)user;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (isatty(2)) {
        fprintf(stderr, "\r%s %3d%% %-32.32s", stage, pct, item);
        if (done >= total)
            fprintf(stderr, "\n");
    } else {
        slm_log(SLM_LOG_INFO, "init", "%3d%% %s", pct, item);
    }
}

static int parse(int argc, char **argv, opts_t *o, slm_init_params_t *p)
{
    memset(o, 0, sizeof *o);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->random)
        return slm_cli_usage_error("init", "only --random weights are supported: add --random");
    if (o->arch)
        p->arch = o->arch;
    if (o->preset)
        p->preset = o->preset;
    p->seed = slm_cli_seed_value(&o->seed, false, p->seed);
    p->n_threads = (int32_t)o->threads;
    return SLM_CLI_OK;
}

int slm_cli_init(int argc, char **argv)
{
    slm_init_params_t p;
    slm_init_params_default(&p);
    p.type = SLM_TYPE_F16;
    opts_t o;
    int rc = parse(argc, argv, &o, &p);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    const char *type = o.type, *out = o.out.v[0];
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    if (type && (p.type = slm_type_from_name(type)) < 0) {
        slm_registry_free(reg);
        return slm_cli_usage_error("init", "unknown type '%s'", type);
    }
    p.progress = on_progress;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_model_init_random(reg, out, &p, &err) != SLM_OK) {
        rc = slm_cli_fail("init", &err);
    } else {
        fprintf(stderr, "slmops init: wrote %s (%s, %s, seed %llu)\n", out, p.preset,
                slm_type_name(p.type), (unsigned long long)p.seed);
        rc = SLM_CLI_OK;
    }
    slm_registry_free(reg);
    return rc;
}

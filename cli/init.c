/* `slmops init --arch llama --preset NAME --random --type T OUT.gguf`: write a
 * model of a named shape with random weights (an "init" job, slmops/job.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <slmops/job.h>
#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *arch, *preset, *type, *vocab_from, *vocab_data, *chat_template;
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
    {"--vocab-from", "MODEL", SLM_CLI_STR, OFF(vocab_from), 0, 0,
     "take MODEL's vocabulary (and chat template) instead of a synthetic one;\n"
     "its size replaces the preset's (a distillation student of MODEL)"},
    {"--vocab-data", "FILE", SLM_CLI_STR, OFF(vocab_data), 0, 0,
     "with --vocab-from (byte-level BPE): keep only the tokens FILE's\n"
     "examples use (read as 'slmops train' reads data), the byte alphabet\n"
     "and special tokens: FILE then tokenizes as with MODEL, renumbered"},
    {"--chat-template", "T", SLM_CLI_STR, OFF(chat_template), 0, 0,
     "how --vocab-data's {\"messages\"} lines render (a built-in name or\n"
     "the template's text; default: MODEL's)"},
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
                "                    [--vocab-from MODEL [--vocab-data FILE]] [--threads N] OUT.gguf",
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

static void on_progress(void *user, const slm_job_progress_t *ev)
{
    (void)user;
    const char *stage = ev->stage, *item = ev->item;
    uint64_t done = ev->done, total = ev->total;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (isatty(2)) {
        fprintf(stderr, "\r%s %3d%% %-32.32s", stage, pct, item);
        if (done >= total)
            fprintf(stderr, "\n");
    } else {
        slm_log(SLM_LOG_INFO, "init", "%3d%% %s", pct, item);
    }
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->random)
        return slm_cli_usage_error("init", "only --random weights are supported: add --random");
    return SLM_CLI_OK;
}

/* The job's options from the command line; the job's defaults stand for what is
 * not given, except the type: f16 here. */
static int set_options(const opts_t *o, slm_job_t *job, slm_error_t *err)
{
    char seed[24] = "";
    if (o->seed.given)
        snprintf(seed, sizeof seed, "%llu",
                 (unsigned long long)slm_cli_seed_value(&o->seed, false, 0));
    int rc;
    if ((rc = slm_job_set_string(job, "output", o->out.v[0], err)) ||
        (rc = slm_job_set_string(job, "arch", o->arch, err)) ||
        (rc = slm_job_set_string(job, "preset", o->preset, err)) ||
        (rc = slm_job_set_string(job, "type", o->type ? o->type : "f16", err)) ||
        (rc = slm_job_set_string(job, "seed", seed[0] ? seed : NULL, err)) ||
        (rc = slm_job_set_string(job, "vocab_from", o->vocab_from, err)) ||
        (rc = slm_job_set_string(job, "vocab_data", o->vocab_data, err)) ||
        (rc = slm_job_set_string(job, "chat_template", o->chat_template, err)))
        return rc;
    return slm_job_set_int(job, "threads", o->threads, err);
}

/* "wrote OUT (preset, type, seed S)" from the settings the job used. */
static void print_done(const opts_t *o, const char *report)
{
    json_t *doc = report ? json_loads(report, 0, NULL) : NULL;
    const json_t *st = json_object_get(doc, "settings"), *seed = json_object_get(st, "seed");
    const char *preset = json_string_value(json_object_get(st, "preset"));
    const char *type = json_string_value(json_object_get(st, "type"));
    char digits[24];
    if (json_is_integer(seed))
        snprintf(digits, sizeof digits, "%lld", (long long)json_integer_value(seed));
    else
        snprintf(digits, sizeof digits, "%s", json_is_string(seed) ? json_string_value(seed) : "?");
    fprintf(stderr, "slmops init: wrote %s (%s, %s, seed %s)\n", o->out.v[0],
            preset ? preset : "?", type ? type : "?", digits);
    json_decref(doc);
}

int slm_cli_init(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    if (o.type && slm_type_from_name(o.type) < 0) {
        slm_registry_free(reg);
        return slm_cli_usage_error("init", "unknown type '%s'", o.type);
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    if (slm_job_new(reg, "init", NULL, &job, &err) == SLM_OK &&
        set_options(&o, job, &err) == SLM_OK) {
        slm_job_set_progress(job, on_progress, NULL);
        if (slm_job_run(job, &err) == SLM_OK)
            print_done(&o, slm_job_report(job));
    }
    rc = err.code ? slm_cli_fail("init", &err) : SLM_CLI_OK;
    slm_job_free(job);
    slm_registry_free(reg);
    return rc;
}

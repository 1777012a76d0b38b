/* `slmops init --arch llama --preset NAME --random --type T OUT.gguf`: write a
 * model of a named shape with random weights (slm_model_init_random). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/types.h>

#include "cli/common.h"
#include "cli/verbs.h"

static void init_usage(void)
{
    printf("Usage: slmops init --arch llama --preset NAME --random [--type T] [--seed S]\n"
           "                    [--threads N] OUT.gguf\n"
           "Write a model with the shapes of a named preset, N(0, 0.02) random weights\n"
           "(norms 1) in type T (default f16; quantized types as 'slmops quantize' gives\n"
           "them) and a synthetic SentencePiece-style vocabulary of the preset's size:\n"
           "<unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then generated pieces.\n"
           "For benchmarks and tests: the model says nothing useful.\n"
           "Presets:\n");
    for (size_t i = 0; slm_init_preset_name(i); i++)
        printf("  %s\n", slm_init_preset_name(i));
}

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

static int type_of(const char *name)
{
    char low[32];
    size_t n = strlen(name);
    if (n >= sizeof low)
        return -1;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    return slm_type_from_name(low);
}

static int parse(int argc, char **argv, slm_init_params_t *p, const char **type,
                 const char **out)
{
    bool random = false;
    long v;
    const char *s;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (slm_cli_is_help(a)) {
            init_usage();
            return -1;
        }
        if (strcmp(a, "--random") == 0) {
            random = true;
        } else if (a[0] != '-' || !a[1]) {
            if (*out)
                return slm_cli_usage_error("init", "unexpected argument '%s'", a);
            *out = a;
        } else if (!(s = slm_cli_value(argc, argv, &i, "init"))) {
            return SLM_CLI_USAGE;
        } else if (strcmp(a, "--arch") == 0) {
            p->arch = s;
        } else if (strcmp(a, "--preset") == 0) {
            p->preset = s;
        } else if (strcmp(a, "--type") == 0) {
            *type = s;
        } else if (strcmp(a, "--seed") == 0 || strcmp(a, "--threads") == 0) {
            if (!slm_cli_parse_int(s, a[2] == 's' ? 0 : 1, a[2] == 's' ? 2147483647L : 256, &v))
                return slm_cli_usage_error("init", "%s needs a number", a);
            if (a[2] == 's')
                p->seed = (uint64_t)v;
            else
                p->n_threads = (int32_t)v;
        } else {
            return slm_cli_usage_error("init", "unknown option '%s'", a);
        }
    }
    if (!random)
        return slm_cli_usage_error("init", "only --random weights are supported: add --random");
    if (!*out)
        return slm_cli_usage_error("init", "missing OUT");
    return SLM_CLI_OK;
}

int slm_cli_init(int argc, char **argv)
{
    slm_init_params_t p;
    slm_init_params_default(&p);
    p.type = SLM_TYPE_F16;
    const char *type = NULL, *out = NULL;
    int rc = parse(argc, argv, &p, &type, &out);
    if (rc != SLM_CLI_OK)
        return rc < 0 ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    if (type && (p.type = type_of(type)) < 0) {
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

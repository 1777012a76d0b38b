/* `slmops convert IN OUT [--to FORMAT] [--from FORMAT]`: read a model with any
 * format plugin that reads it and write it with one that writes, atomically. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <slmops/model-file.h>

#include "cli/common.h"
#include "cli/verbs.h"

static void convert_usage(void)
{
    printf("Usage: slmops convert IN OUT [--to FORMAT] [--from FORMAT]\n"
           "Convert a model file between formats: IN is read by the format plugin\n"
           "that recognises it (or --from), OUT is written by the plugin for its\n"
           "extension (or --to) under a temporary name, then renamed into place.\n"
           "FORMAT: gguf, safetensors (a Hugging Face folder), llama2c, or a format\n"
           "plugin's full name (see 'slmops plugins'). OUT may not be IN.\n");
}

/* "gguf" -> "format-gguf" when such a plugin is known; else the name as given. */
static const char *plugin_name(slm_registry_t *reg, const char *fmt, char *buf, size_t cap)
{
    if (!fmt)
        return NULL;
    snprintf(buf, cap, "format-%s", fmt);
    return slm_registry_find(reg, "format", buf) ? buf : fmt;
}

int slm_cli_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *to = NULL, *from = NULL;
    for (int i = 1; i < argc; i++) {
        if (slm_cli_is_help(argv[i])) {
            convert_usage();
            return SLM_CLI_OK;
        }
        if (strcmp(argv[i], "--to") == 0 || strcmp(argv[i], "--from") == 0) {
            const char **dst = argv[i][2] == 't' ? &to : &from;
            if (!(*dst = slm_cli_value(argc, argv, &i, "convert")))
                return SLM_CLI_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return slm_cli_usage_error("convert", "unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return slm_cli_usage_error("convert", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!in || !out)
        return slm_cli_usage_error("convert", "needs IN and OUT");
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    char from_buf[128], to_buf[128];
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
    int rc = SLM_CLI_OK;
    if (slm_model_file_open(reg, in, plugin_name(reg, from, from_buf, sizeof from_buf), &mf,
                            &err) != SLM_OK) {
        rc = slm_cli_fail("convert", &err);
    } else if (slm_model_file_save(mf, reg, out, plugin_name(reg, to, to_buf, sizeof to_buf),
                                   &err) != SLM_OK) {
        rc = slm_cli_fail("convert", &err);
        if (!to && err.code == SLM_E_UNSUPPORTED)
            fprintf(stderr, "slmops convert: name the output format with --to\n");
    } else {
        fprintf(stderr, "slmops convert: %s (%s) -> %s (%zu tensors, %zu metadata entries)\n",
                in, slm_model_file_format(mf), out, slm_model_file_n_tensors(mf),
                slm_model_file_n_values(mf));
    }
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc;
}

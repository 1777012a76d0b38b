/* `slmops convert IN OUT [--to FORMAT] [--from FORMAT]`: read a model with any
 * format plugin that reads it and write it with one that writes, atomically. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <slmops/model-file.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *to, *from;
    slm_cli_strs_t files;
    long threads;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--to", "FORMAT", SLM_CLI_STR, OFF(to), 0, 0,
     "write OUT in this format (default: the one its extension names)"},
    {"--from", "FORMAT", SLM_CLI_STR, OFF(from), 0, 0,
     "read IN in this format (default: the one that recognises it)"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "convert",
    .synopsis = "IN OUT [--to FORMAT] [--from FORMAT]",
    .about = "Convert a model file between formats: IN is read by the format plugin\n"
             "that recognises it (or --from), OUT is written by the plugin for its\n"
             "extension (or --to) under a temporary name, then renamed into place.\n"
             "FORMAT: gguf, safetensors (a Hugging Face folder), or a format plugin's\n"
             "full name (see 'slmops plugins'). OUT may not be IN.\n",
    .groups = groups,
    .operand_names = "IN and OUT",
    .min_operands = 2,
    .max_operands = 2,
    .operands_offset = OFF(files),
};

/* "gguf" -> "format-gguf" when such a plugin is known; else the name as given. */
static const char *plugin_name(slm_registry_t *reg, const char *fmt, char *buf, size_t cap)
{
    if (!fmt)
        return NULL;
    snprintf(buf, cap, "format-%s", fmt);
    return slm_registry_find(reg, "format", buf) ? buf : fmt;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int slm_cli_convert(int argc, char **argv)
{
    opts_t o = {0};
    int rc = slm_cli_parse(&spec, argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    const char *in = o.files.v[0], *out = o.files.v[1], *to = o.to, *from = o.from;
    if (strcmp(in, out) == 0 || same_file(in, out)) {
        fprintf(stderr, "slmops convert: %s: refusing to overwrite the input\n", out);
        return SLM_CLI_FAILED;
    }
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    char from_buf[128], to_buf[128];
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
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

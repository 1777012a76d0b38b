/* `--lora FILE[:SCALE]`: the adapter and its user scale, split the way llama.cpp's
 * --lora and --lora-scaled together say it. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/common.h"
#include "cli/lora.h"

#define SCALE_MAX 1e6

/* One "FILE[:SCALE]" into *out (its path in *path, owned by the caller). */
static int parse_one(const char *verb, const char *arg, slm_merge_adapter_t *out, char **path)
{
    const char *colon = strrchr(arg, ':');
    size_t len = strlen(arg);
    double scale = 1.0;
    /* A path that exists is a file even with a colon in its name ("C:dir"). */
    if (colon && access(arg, F_OK) != 0) {
        const char *s = colon + 1;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        bool number = end != s && *end == '\0';
        if (number && (errno || !isfinite(v) || v < -SCALE_MAX || v > SCALE_MAX))
            return slm_cli_usage_error(verb, "--lora '%s': the scale '%s' is not a finite "
                                       "number in [-1e6, 1e6]", arg, s);
        if (number) {
            scale = v;
            len = (size_t)(colon - arg);
        } else if (colon > arg) {
            /* "adapter.gguf:x" with adapter.gguf there: a bad scale, not a new name. */
            char *before = strndup(arg, (size_t)(colon - arg));
            bool exists = before && access(before, F_OK) == 0;
            free(before);
            if (exists || !*s)
                return slm_cli_usage_error(verb, "--lora '%s': the scale '%s' is not a "
                                           "number (FILE:SCALE)", arg, s);
        }
    }
    if (!len)
        return slm_cli_usage_error(verb, "--lora '%s' names no adapter", arg);
    if (!(*path = strndup(arg, len)))
        return SLM_CLI_FAILED;
    *out = (slm_merge_adapter_t){.path = *path, .scale = (float)scale};
    return SLM_CLI_OK;
}

int slm_cli_lora_parse(const char *verb, const slm_cli_strs_t *args, slm_merge_adapter_t *out,
                       char **paths)
{
    for (size_t i = 0; i < args->n; i++) {
        int rc = parse_one(verb, args->v[i], &out[i], &paths[i]);
        if (rc != SLM_CLI_OK)
            return rc;
    }
    return SLM_CLI_OK;
}

json_t *slm_cli_lora_json(const slm_merge_adapter_t *ads, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_pack("{s:o, s:f}", "path", slm_cli_json_path(ads[i].path),
                                              "scale", (double)ads[i].scale));
    return list;
}

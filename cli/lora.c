/* `--lora FILE[:SCALE]`: the adapter and its user scale, split the way llama.cpp's
 * --lora and --lora-scaled together say it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli/common.h"
#include "cli/lora.h"

int slm_cli_lora_parse(const char *verb, const slm_cli_strs_t *args, slm_merge_adapter_t *out,
                       char **paths)
{
    for (size_t i = 0; i < args->n; i++) {
        const char *arg = args->v[i], *colon = strrchr(arg, ':');
        double scale = 1.0;
        size_t len = strlen(arg);
        /* "adapter.gguf:0.5" has a scale; "C:dir" or "a:b.gguf" is a name. */
        if (colon && colon[1] && slm_cli_parse_float(colon + 1, -1e6, 1e6, &scale))
            len = (size_t)(colon - arg);
        if (!len)
            return slm_cli_usage_error(verb, "--lora '%s' names no adapter", arg);
        if (!(paths[i] = strndup(arg, len)))
            return SLM_CLI_FAILED;
        out[i] = (slm_merge_adapter_t){.path = paths[i], .scale = (float)scale};
    }
    return SLM_CLI_OK;
}

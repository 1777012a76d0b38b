/* `--lora FILE[:SCALE]` as every verb that takes adapters spells it: merge, and
 * generate, chat, eval and bench (the model options, cli/session.c). */
#ifndef SLMOPS_CLI_LORA_H
#define SLMOPS_CLI_LORA_H

#include <slmops/merge.h>

#include "cli/options.h"

/* The --lora option's help line, shared so that every verb words it alike. */
#define SLM_CLI_LORA_HELP \
    "a LoRA adapter (GGUF adapter or PEFT folder), optionally\n" \
    "with its user scale (default 1; applied as llama.cpp does:\n" \
    "SCALE * alpha / rank); may be repeated"

/* Split each "FILE[:SCALE]" of args into out (room for args->n), each path a new
 * string in paths[i]: SCALE is the text after the last ':' when it is a number
 * (one that is not finite or past +-1e6 is a usage error, as is text after the
 * ':' of an existing FILE), else the whole argument is FILE. An argument naming an
 * existing path is FILE. Returns SLM_CLI_OK, or SLM_CLI_USAGE after saying why. */
int slm_cli_lora_parse(const char *verb, const slm_cli_strs_t *args, slm_merge_adapter_t *out,
                       char **paths);

/* The adapters as reports list them: [{"path", "scale"}, ...]. */
struct json_t *slm_cli_lora_json(const slm_merge_adapter_t *ads, size_t n);

#endif

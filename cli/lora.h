/* `--lora FILE[:SCALE]` as every verb that takes adapters spells it (merge now;
 * generate, chat, eval and bench once the runtime applies adapters). */
#ifndef SLMOPS_CLI_LORA_H
#define SLMOPS_CLI_LORA_H

#include <slmops/merge.h>

#include "cli/options.h"

/* The --lora option's help line, shared so that every verb words it alike. */
#define SLM_CLI_LORA_HELP \
    "a LoRA adapter (GGUF adapter or PEFT folder), optionally\n" \
    "with its user scale (default 1; applied as llama.cpp does:\n" \
    "SCALE * alpha / rank); may be repeated"

/* Split each "FILE[:SCALE]" of args into out (room for args->n): SCALE is the text
 * after the last ':' when it is a finite number, else the whole argument is FILE.
 * Returns SLM_CLI_OK or SLM_CLI_USAGE after saying why. */
int slm_cli_lora_parse(const char *verb, const slm_cli_strs_t *args, slm_merge_adapter_t *out,
                       char **paths);

#endif

/* The `slmops` command: global options and the table that dispatches each verb
 * to its file (cli/VERB.c). Verbs are thin shells over library calls. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <slmops/version.h>

#include "cli/common.h"
#include "cli/verbs.h"

typedef struct verb {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} verb_t;

static const verb_t verbs[] = {
    {"plugins", slm_cli_plugins, "list plugin manifests found and their state"},
    {"devices", slm_cli_devices, "list devices and which one \"auto\" picks"},
    {"selftest", slm_cli_selftest, "run the op conformance suite on every device"},
    {"info", slm_cli_info, "describe a model file: format, size, tensors, tokenizer"},
    {"tokenize", slm_cli_tokenize, "print the token ids a vocabulary gives a text"},
    {"generate", slm_cli_generate, "continue a prompt with a model, streaming the text"},
    {"chat", slm_cli_chat, "talk with a model in its chat template"},
    {"eval", slm_cli_eval, "perplexity of a text file, as llama.cpp computes it"},
    {"convert", slm_cli_convert, "convert a model between formats (GGUF, safetensors)"},
    {"quantize", slm_cli_quantize, "quantize a model's weights into a GGUF file, with a report"},
    {"init", slm_cli_init, "write a model of a named shape with random weights"},
    {"bench", slm_cli_bench, "prompt and generation tokens/s, as llama-bench reports them"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: slmops [--help] [--version] VERB [ARGS...]\n\nVerbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\n'slmops VERB --help' describes a verb's options.\n"
               "Environment: SLMOPS_PLUGIN_PATH, SLMOPS_DEVICE, SLMOPS_CPU_VARIANT, SLMOPS_LOG.\n");
}

int main(int argc, char **argv)
{
    slm_cli_log_init();
    slm_cli_signals_init();
    if (argc < 2) {
        usage(stderr);
        return SLM_CLI_USAGE;
    }
    if (slm_cli_is_help(argv[1])) {
        usage(stdout);
        return SLM_CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("slmops %s\n", slm_version());
        return SLM_CLI_OK;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(argv[1], verbs[i].name) == 0)
            return verbs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "slmops: unknown verb or option '%s'\n", argv[1]);
    usage(stderr);
    return SLM_CLI_USAGE;
}

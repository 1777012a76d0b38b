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
    {"eval", slm_cli_eval, "perplexity of a text file, or accuracy on a task file"},
    {"convert", slm_cli_convert, "convert a model between formats (GGUF, safetensors)"},
    {"quantize", slm_cli_quantize, "quantize a model's weights into a GGUF file, with a report"},
    {"finetune", slm_cli_finetune, "train a model or a LoRA adapter on text (full, lora, qlora)"},
    {"distill", slm_cli_distill, "a teacher writes data, a student learns it and its logits"},
    {"pipeline", slm_cli_pipeline, "run a recipe: distill, finetune, quantize, eval, bench, package"},
    {"merge", slm_cli_merge, "bake LoRA adapters into their base model"},
    {"init", slm_cli_init, "write a model of a named shape with random weights"},
    {"bench", slm_cli_bench, "prompt and generation tokens/s, as llama-bench reports them"},
    {"serve", slm_cli_serve, "an OpenAI-compatible HTTP server (127.0.0.1 by default)"},
    {"models", slm_cli_models, "the model catalog: aliases for model files (add, list, rm)"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: slmops [--help] [--version] VERB [ARGS...]\n\nVerbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "  %-10s %s\n", "help", "describe the verbs, or one verb's options");
    fprintf(f, "\n'slmops help VERB' or 'slmops VERB --help' describes a verb's options.\n"
               "Environment: SLMOPS_PLUGIN_PATH, SLMOPS_DEVICE, SLMOPS_CPU_VARIANT, SLMOPS_LOG.\n");
}

static const verb_t *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(name, verbs[i].name) == 0)
            return &verbs[i];
    return NULL;
}

/* `slmops help [VERB]`, as git and ollama have it. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return SLM_CLI_OK;
    }
    const verb_t *v = find_verb(argv[1]);
    if (!v || argc > 2) {
        fprintf(stderr, "slmops help: %s '%s' (see 'slmops help')\n",
                v ? "unexpected argument" : "unknown verb", argv[v ? 2 : 1]);
        return SLM_CLI_USAGE;
    }
    char *verb_help[] = {argv[1], "--help", NULL};
    return v->run(2, verb_help);
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "slmops: missing VERB (see 'slmops help')\n");
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
    if (strcmp(argv[1], "help") == 0)
        return help(argc - 1, argv + 1);
    const verb_t *v = find_verb(argv[1]);
    if (v)
        return v->run(argc - 1, argv + 1);
    fprintf(stderr, "slmops: unknown verb or option '%s' (see 'slmops help')\n", argv[1]);
    return SLM_CLI_USAGE;
}

int main(int argc, char **argv)
{
    slm_cli_log_init();
    slm_cli_signals_init();
    slm_cli_stdout_init();
    return slm_cli_close_stdout(dispatch(argc, argv));
}

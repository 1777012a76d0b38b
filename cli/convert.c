/* `slmops convert IN OUT [--to FORMAT] [--from FORMAT] [--tokenizer PATH] [--base MODEL]`: read a
 * model (or an adapter) with any format plugin that reads it and write it with one that writes. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <slmops/adapter.h>
#include <slmops/model-file.h>
#include <slmops/output.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

/* The formats OUT can be written in: those whose plugin manifest says "write". */
static void writable_formats(FILE *f)
{
    slm_registry_t *reg = slm_cli_registry_open();
    fprintf(f, "\nFORMAT (--to) is one of these, which can be written:\n");
    for (size_t i = 0; reg && i < slm_registry_count(reg); i++) {
        const slm_plugin_info_t *p = slm_registry_get(reg, i);
        if (strcmp(p->kind, "format") != 0 || p->state == SLM_PLUGIN_SHADOWED ||
            p->state == SLM_PLUGIN_DISABLED)
            continue;
        json_t *provides = json_loads(p->manifest_json, 0, NULL);
        if (json_is_true(json_object_get(provides, "write"))) {
            const char *short_name = strncmp(p->name, "format-", 7) == 0 ? p->name + 7 : p->name;
            fprintf(f, "  %-20s %s\n", short_name, p->description);
        }
        json_decref(provides);
    }
    slm_registry_free(reg);
}

typedef struct opts {
    const char *to, *from, *tokenizer, *base;
    slm_cli_strs_t files;
    long threads;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--to", "FORMAT", SLM_CLI_STR, OFF(to), 0, 0,
     "write OUT in this format (default: the one its extension names)"},
    {"--from", "FORMAT", SLM_CLI_STR, OFF(from), 0, 0,
     "read IN in this format (default: the one that recognises it)"},
    {"--tokenizer", "PATH", SLM_CLI_STR, OFF(tokenizer), 0, 0,
     "add this vocabulary (tokenizer.bin, tokenizer.model, GGUF,\n"
     "Hugging Face folder) so that OUT needs no --tokenizer"},
    {"--base", "MODEL", SLM_CLI_STR, OFF(base), 0, 0,
     "IN is a LoRA adapter (GGUF adapter or PEFT folder): check\n"
     "it against this base model, which also gives a PEFT folder\n"
     "its architecture and llama's q/k row order"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "convert",
    .synopsis = "IN OUT [--to FORMAT] [--from FORMAT] [--tokenizer PATH] [--base MODEL]",
    .about = "Convert a model file between formats: IN is read by the format plugin\n"
             "that recognises it (or --from), OUT is written by the plugin for its\n"
             "extension (or --to) under a temporary name, then renamed into place.\n"
             "OUT may not be IN. A LoRA adapter converts too (GGUF adapter <-> PEFT\n"
             "folder); a PEFT folder needs --base.\n",
    .groups = groups,
    .operand_names = "IN and OUT",
    .min_operands = 2,
    .max_operands = 2,
    .operands_offset = OFF(files),
    .more_help = writable_formats,
};

/* "gguf" -> "format-gguf" when such a plugin is known; else the name as given. */
static const char *plugin_name(slm_registry_t *reg, const char *fmt, char *buf, size_t cap)
{
    if (!fmt)
        return NULL;
    snprintf(buf, cap, "format-%s", fmt);
    return slm_registry_find(reg, "format", buf) ? buf : fmt;
}

/* Rows of the token embedding: the most token ids the model can take. */
static int64_t embedding_rows(const slm_model_file_t *mf)
{
    slm_model_tensor_t t = {.struct_size = sizeof t};
    return slm_model_file_find_tensor(mf, "token_embd.weight", &t) >= 0 && t.n_dims >= 2
               ? t.ne[1] : -1;
}

/* The vocabulary of tok_path (every tokenizer.* entry) goes into mf. */
static int add_tokenizer(slm_registry_t *reg, slm_model_file_t *mf, const char *tok_path)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *tok = NULL;
    slm_model_value_t tokens = {.struct_size = sizeof tokens};
    int rc = SLM_CLI_OK;
    if (slm_model_file_open(reg, tok_path, NULL, &tok, &err) != SLM_OK) {
        rc = slm_cli_fail("convert", &err);
    } else if (slm_model_file_get_array(tok, "tokenizer.ggml.tokens", SLM_MF_STRING, &tokens,
                                        NULL) < 0) {
        fprintf(stderr, "slmops convert: --tokenizer %s: holds no vocabulary "
                "(tokenizer.ggml.tokens)\n", tok_path);
        rc = SLM_CLI_FAILED;
    } else if (embedding_rows(mf) >= 0 && (int64_t)tokens.n > embedding_rows(mf)) {
        fprintf(stderr, "slmops convert: --tokenizer %s: %llu tokens, but the model has "
                "embeddings for %lld: they do not belong together\n", tok_path,
                (unsigned long long)tokens.n, (long long)embedding_rows(mf));
        rc = SLM_CLI_FAILED;
    } else if (slm_model_file_copy_values(mf, tok, "tokenizer.", &err) != SLM_OK) {
        rc = slm_cli_fail("convert", &err);
    }
    slm_model_file_free(tok);
    return rc;
}

/* An adapter read against its base (slm_adapter_load) and saved in OUT's format. */
static int convert_adapter(slm_registry_t *reg, const opts_t *o, const char *to)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *base = NULL;
    slm_adapter_t *ad = NULL;
    const char *inputs[1] = {o->base};
    slm_output_params_t op;
    slm_output_params_init(&op);
    op.inputs = inputs;
    op.n_inputs = 1;
    int rc = SLM_CLI_OK;
    if (o->tokenizer)
        rc = slm_cli_usage_error("convert", "--tokenizer and --base do not go together: an adapter has "
                                 "no vocabulary");
    else if (slm_model_file_open(reg, o->base, NULL, &base, &err) != SLM_OK ||
             slm_adapter_load(reg, o->files.v[0], base, &ad, &err) != SLM_OK ||
             slm_adapter_save(ad, reg, o->files.v[1], to, &op, &err) != SLM_OK)
        rc = slm_cli_fail("convert", &err);
    else
        fprintf(stderr, "slmops convert: %s -> %s (adapter of %s: %zu weights, alpha %g)\n", o->files.v[0],
                o->files.v[1], o->base, slm_adapter_n_targets(ad), (double)slm_adapter_alpha(ad));
    slm_adapter_free(ad);
    slm_model_file_free(base);
    return rc;
}

/* A PEFT folder read alone names no architecture: written as a GGUF adapter it would
 * load nowhere, and its q/k rows would be in the wrong order for llama. */
static bool adapter_without_arch(const slm_model_file_t *mf)
{
    const char *type = NULL, *arch = NULL;
    return slm_model_file_get_string(mf, "general.type", &type, NULL) == SLM_OK &&
           strcmp(type, "adapter") == 0 &&
           slm_model_file_get_string(mf, "general.architecture", &arch, NULL) != SLM_OK;
}

int slm_cli_convert(int argc, char **argv)
{
    opts_t o = {0};
    int rc = slm_cli_parse(&spec, argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    const char *in = o.files.v[0], *out = o.files.v[1], *to = o.to, *from = o.from;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    char from_buf[128], to_buf[128];
    if (o.base) {
        rc = convert_adapter(reg, &o, plugin_name(reg, to, to_buf, sizeof to_buf));
        slm_registry_free(reg);
        return rc;
    }
    slm_error_t err;
    slm_error_init(&err);
    slm_model_file_t *mf = NULL;
    /* The model's own file is an input already (the container remembers it); the
     * tokenizer's is one too. */
    slm_output_params_t op;
    slm_output_params_init(&op);
    const char *inputs[1] = {o.tokenizer};
    op.inputs = inputs;
    op.n_inputs = o.tokenizer ? 1 : 0;
    if (slm_model_file_open(reg, in, plugin_name(reg, from, from_buf, sizeof from_buf), &mf,
                            &err) != SLM_OK) {
        rc = slm_cli_fail("convert", &err);
    } else if (adapter_without_arch(mf)) {
        fprintf(stderr, "slmops convert: %s: a LoRA adapter that names no architecture (a PEFT "
                "folder): give its base model with --base MODEL\n", in);
        rc = SLM_CLI_FAILED;
    } else if (o.tokenizer && (rc = add_tokenizer(reg, mf, o.tokenizer)) != SLM_CLI_OK) {
        /* add_tokenizer said why */
    } else if (slm_model_file_save_output(mf, reg, out, plugin_name(reg, to, to_buf, sizeof to_buf),
                                          &op, &err) != SLM_OK) {
        if (!to && err.code == SLM_E_UNSUPPORTED && strlen(err.message) + 40 < sizeof err.message)
            strcat(err.message, "; name the output format with --to");
        rc = slm_cli_fail("convert", &err);
    } else {
        fprintf(stderr, "slmops convert: %s (%s) -> %s (%zu tensors, %zu metadata entries)\n",
                in, slm_model_file_format(mf), out, slm_model_file_n_tensors(mf),
                slm_model_file_n_values(mf));
    }
    slm_model_file_free(mf);
    slm_registry_free(reg);
    return rc;
}

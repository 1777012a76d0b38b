/* `slmops generate -m MODEL [-p TEXT | -f FILE] [-n N] [sampling] [--stop S]... [--json]`:
 * continue a prompt (or BOS alone), streaming whole UTF-8 characters as they come. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_cli_sampling_t sampling;
    bool json, special;
    const char *prompt_arg, *file;
    char *prompt;              /* the prompt's text, from -p, -p - or -f; owned */
    size_t prompt_len;
    long n_predict;
    slm_cli_strs_t stops;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-p, --prompt", "TEXT", SLM_CLI_STR, OFF(prompt_arg), 0, 0,
     "the prompt (BOS is added when the vocabulary wants it);\n"
     "'-' reads it from standard input"},
    {"-f, --file", "FILE", SLM_CLI_STR, OFF(file), 0, 0, "read the prompt from FILE"},
    {"-n, --n-predict", "N", SLM_CLI_LONG, OFF(n_predict), -1, 1 << 24,
     "tokens to generate; -1 = until the end of the text or a\n"
     "full context (default 128)"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), SLM_CLI_CTX_HELP_MODEL),
    {"--stop", "STR", SLM_CLI_STRS, OFF(stops), 0, 0, "stop before this text (may be repeated)"},
    {"--special", NULL, SLM_CLI_FLAG, OFF(special), 0, 0,
     "parse special tokens' text in the prompt"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0,
     "print one JSON document: text, token ids, timings"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {"Sampling options", slm_cli_sampling_opts, OFF(sampling)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "generate",
    .synopsis = "-m MODEL [-p TEXT | -f FILE] [-n N] [OPTIONS]",
    .about = "Continue the prompt (or, without one, start from the BOS token alone) and\n"
             "print the text as it is generated, then a newline. Statistics go to stderr.\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_cli_sampling_init(&o->sampling);
    o->n_predict = 128;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("generate", "missing -m MODEL");
    if (o->prompt_arg && o->file)
        return slm_cli_usage_error("generate", "give the prompt with -p or -f, not both");
    slm_cli_sampling_seed(&o->sampling);
    return slm_cli_prompt_text("generate", o->prompt_arg, o->file, &o->prompt, &o->prompt_len);
}

/* The prompt ids: the text's, or BOS alone. */
static int prompt_ids(slm_cli_session_t *s, const opts_t *o, int32_t **ids, size_t *n)
{
    if (o->prompt_len) {
        unsigned flags = (slm_tokenizer_add_bos(s->tok) ? SLM_TOKENIZE_ADD_BOS : 0) |
                         (o->special ? SLM_TOKENIZE_PARSE_SPECIAL : 0);
        return slm_cli_encode(s, o->prompt, o->prompt_len, flags, ids, n);
    }
    int32_t bos = slm_tokenizer_bos(s->tok);
    if (bos == SLM_TOKEN_NULL) {
        fprintf(stderr, "slmops generate: the vocabulary has no BOS token to start from; "
                "give a prompt with -p\n");
        return SLM_CLI_FAILED;
    }
    if (!(*ids = malloc(sizeof **ids)))
        return SLM_CLI_FAILED;
    (*ids)[0] = bos;
    *n = 1;
    return SLM_CLI_OK;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static int print_json(const opts_t *o, const slm_cli_session_t *s, const int32_t *prompt,
                      const slm_cli_gen_t *g)
{
    json_t *doc = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:{s:f, s:I, s:f, s:f, s:I, s:f, s:f}}",
        "model", slm_cli_json_path(o->model.model), "prompt", slm_cli_json_text(o->prompt ? o->prompt : "",
                                                             o->prompt_len),
        "text", slm_cli_json_text(g->text ? g->text : "", g->len), "prompt_tokens",
        ids_json(prompt, g->n_prompt), "tokens", ids_json(g->tokens, g->n_tokens),
        "stop_reason", g->stop_reason, "seed", slm_cli_json_u64(o->sampling.p.seed), "timings",
        "load_ms", s->load_ms, "prompt_n", (json_int_t)g->n_prompt, "prompt_ms", g->prompt_ms,
        "prompt_tokens_per_s", slm_cli_per_s(g->n_prompt, g->prompt_ms), "predicted_n",
        (json_int_t)g->n_tokens, "predicted_ms", g->gen_ms, "predicted_tokens_per_s",
        slm_cli_per_s(g->n_tokens, g->gen_ms));
    long long peak = slm_cli_peak_rss_bytes();
    if (doc && peak > 0)
        json_object_set_new(json_object_get(doc, "timings"), "peak_rss_bytes",
                            json_integer((json_int_t)peak));
    if (doc && s->n_loras)
        json_object_set_new(doc, "lora", slm_cli_lora_json(s->loras, s->n_loras));
    return slm_cli_print_json(doc);
}

static int run(const opts_t *o, slm_cli_session_t *s)
{
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = prompt_ids(s, o, &prompt, &n_prompt);
    if (rc != SLM_CLI_OK)
        return rc;
    bool has_text = o->prompt_len > 0;
    if (!o->json && has_text)
        slm_cli_emit_stdout(NULL, o->prompt, o->prompt_len);
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.sampling = &o->sampling.p;
    sp.stop = (const char *const *)o->stops.v;
    sp.n_stop = o->stops.n;
    sp.max_tokens = (int32_t)o->n_predict;
    sp.flags = has_text ? SLM_SEQ_CONTINUES : 0;
    sp.on_text = o->json ? NULL : slm_cli_emit_stdout;
    slm_cli_gen_t g;
    rc = slm_cli_session_generate(s, &sp, prompt, n_prompt, &g);
    if (rc == SLM_CLI_OK && o->json) {
        rc = print_json(o, s, prompt, &g);
    } else if (rc == SLM_CLI_OK) {
        printf("\n");   /* as llama2.c's run prints after the last token */
        fprintf(stderr,
                "slmops generate: seed %llu; prompt %zu tokens, %.1f ms (%.1f t/s); "
                "generated %zu tokens, %.1f ms (%.1f t/s); stop: %s",
                (unsigned long long)o->sampling.p.seed, g.n_prompt, g.prompt_ms,
                slm_cli_per_s(g.n_prompt, g.prompt_ms), g.n_tokens, g.gen_ms,
                slm_cli_per_s(g.n_tokens, g.gen_ms), g.stop_reason);
        long long peak = slm_cli_peak_rss_bytes();
        if (peak > 0)
            fprintf(stderr, "; peak RSS %.1f MiB", (double)peak / 1048576.0);
        fputc('\n', stderr);
    }
    free(prompt);
    return rc;
}

int slm_cli_generate(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc == SLM_CLI_OK) {
        slm_cli_session_t s;
        rc = slm_cli_session_open(&s, &o.model, true, "generate");
        if (rc == SLM_CLI_OK)
            rc = run(&o, &s);
        slm_cli_session_close(&s);
    }
    free(o.prompt);
    return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
}

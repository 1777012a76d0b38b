/* `slmops eval -m MODEL --perplexity FILE [--ctx N] [--json]`: perplexity of a text
 * file, computed as llama.cpp's llama-perplexity computes it. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/eval.h>
#include <slmops/input.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    const char *file;
    long batch;
    bool json;
} opts_t;

typedef struct progress {
    bool json;
    json_t *running;
} progress_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--perplexity, -f, --file", "FILE", SLM_CLI_STR, OFF(file), 0, 0,
     "the text whose perplexity is measured"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), "tokens per chunk, at least 3 (default 512)"),
    {"-b, --batch", "N", SLM_CLI_LONG, OFF(batch), 1, 1 << 24,
     "tokens per forward pass (default: --ctx)"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "one JSON document instead"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "eval",
    .synopsis = "-m MODEL --perplexity FILE [--ctx N] [--batch N] [--json]",
    .about = "Perplexity of the text in FILE as llama.cpp's llama-perplexity computes it:\n"
             "the text is tokenized with BOS, cut into chunks of --ctx tokens (at least 2\n"
             "chunks are needed), each chunk starts with BOS, and the second half of each\n"
             "chunk is scored. Prints the running value after each chunk, then the final\n"
             "estimate.\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->model.n_ctx = 512;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("eval", "missing -m MODEL");
    if (!o->file)
        return slm_cli_usage_error("eval", "missing --perplexity FILE");
    if (o->model.n_ctx < 3)
        return slm_cli_usage_error("eval", "--ctx %ld scores no token (a chunk scores its "
                                   "second half but not its last token): use 3 or more",
                                   o->model.n_ctx);
    return SLM_CLI_OK;
}

static void on_chunk(void *user, int32_t chunk, int32_t n_chunks, double ppl)
{
    progress_t *p = user;
    if (p->json) {
        json_array_append_new(p->running, json_real(ppl));
        return;
    }
    printf("%s[%d]%.4f", chunk ? "," : "", (int)chunk + 1, ppl);
    if (chunk + 1 == n_chunks)
        printf("\n");
    fflush(stdout);
}

static int run(const opts_t *o, slm_cli_session_t *s)
{
    size_t len = 0, n_tokens = 0;
    char *text = slm_cli_read_text("eval", o->file, &len);
    if (!text)
        return SLM_CLI_FAILED;
    int32_t *tokens = NULL;
    /* llama-perplexity tokenizes with add_special = true, special text not parsed. */
    unsigned flags = slm_tokenizer_add_bos(s->tok) ? SLM_TOKENIZE_ADD_BOS : 0;
    int rc = slm_cli_encode(s, text, len, flags, &tokens, &n_tokens);
    free(text);
    if (rc != SLM_CLI_OK)
        return rc;
    if (n_tokens < 2 * (size_t)o->model.n_ctx) {
        fprintf(stderr, "slmops eval: %s: %zu tokens; --ctx %ld needs at least %ld "
                "(two chunks)\n", o->file, n_tokens, o->model.n_ctx, 2 * o->model.n_ctx);
        free(tokens);
        return SLM_CLI_FAILED;
    }
    progress_t prog = {.json = o->json, .running = json_array()};
    slm_perplexity_params_t pp;
    slm_perplexity_params_default(&pp);
    pp.n_ctx = (int32_t)o->model.n_ctx;
    pp.n_batch = (int32_t)o->batch;
    pp.progress = on_chunk;
    pp.user = &prog;
    slm_perplexity_result_t res = {.struct_size = sizeof res};
    slm_error_t err;
    slm_error_init(&err);
    if (!o->json)
        printf("perplexity: %s, %zu tokens, %zu chunks of %ld\n", o->file, n_tokens,
               n_tokens / (size_t)o->model.n_ctx, o->model.n_ctx);
    double t0 = slm_cli_now_ms();
    if (slm_eval_perplexity(s->model, tokens, n_tokens, &pp, &res, &err) != SLM_OK) {
        rc = slm_cli_fail("eval", &err);
    } else if (o->json) {
        rc = slm_cli_print_json(json_pack(
            "{s:o, s:o, s:I, s:I, s:I, s:I, s:f, s:f, s:O, s:f}", "model",
            slm_cli_json_path(o->model.model), "file", slm_cli_json_path(o->file), "n_ctx", (json_int_t)o->model.n_ctx, "n_tokens",
            (json_int_t)n_tokens, "n_chunks", (json_int_t)res.n_chunks, "n_scored",
            (json_int_t)res.n_scored, "nll", res.nll, "ppl", res.ppl, "running", prog.running,
            "ms", slm_cli_now_ms() - t0));
    } else {
        printf("Final estimate: PPL = %.4f (%llu tokens scored, mean NLL %.6f, %.1f s)\n",
               res.ppl, (unsigned long long)res.n_scored, res.nll,
               (slm_cli_now_ms() - t0) / 1e3);
    }
    json_decref(prog.running);
    free(tokens);
    return rc;
}

int slm_cli_eval(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    rc = slm_cli_session_open(&s, &o.model, false, "eval");
    if (rc == SLM_CLI_OK)
        rc = run(&o, &s);
    slm_cli_session_close(&s);
    return rc;
}

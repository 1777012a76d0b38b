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
#include "cli/session.h"
#include "cli/verbs.h"

/* Larger text files are refused: the whole file is tokenized at once. */
#define MAX_TEXT_BYTES (1ull << 30)

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

static void eval_usage(void)
{
    printf("Usage: slmops eval -m MODEL --perplexity FILE [--ctx N] [--batch N] [--json]\n"
           "Perplexity of the text in FILE as llama.cpp's llama-perplexity computes it:\n"
           "the text is tokenized with BOS, cut into chunks of N tokens (--ctx, default\n"
           "512; at least 2 chunks are needed), each chunk starts with BOS, and the\n"
           "second half of each chunk is scored. Prints the running value after each\n"
           "chunk, then the final estimate.\n"
           "  --batch N            tokens per forward pass (default: --ctx)\n"
           "  --json               one JSON document instead\n"
           "%s", slm_cli_model_help);
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->model.n_ctx = 512;
    for (int i = 1; i < argc; i++) {
        if (slm_cli_is_help(argv[i])) {
            eval_usage();
            return -1;
        }
        int took = slm_cli_model_option(argc, argv, &i, &o->model, "eval");
        if (took < 0)
            return SLM_CLI_USAGE;
        if (took)
            continue;
        const char *v;
        if (strcmp(argv[i], "--perplexity") == 0 || strcmp(argv[i], "-f") == 0) {
            if (!(o->file = slm_cli_value(argc, argv, &i, "eval")))
                return SLM_CLI_USAGE;
        } else if (strcmp(argv[i], "--batch") == 0 || strcmp(argv[i], "-b") == 0) {
            if (!(v = slm_cli_value(argc, argv, &i, "eval")))
                return SLM_CLI_USAGE;
            if (!slm_cli_parse_int(v, 1, 1L << 24, &o->batch))
                return slm_cli_usage_error("eval", "--batch needs a number 1..16777216");
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else {
            return slm_cli_usage_error("eval", "unknown argument '%s'", argv[i]);
        }
    }
    if (!o->model.model)
        return slm_cli_usage_error("eval", "missing -m MODEL");
    if (!o->file)
        return slm_cli_usage_error("eval", "missing --perplexity FILE");
    return SLM_CLI_OK;
}

static char *read_text(const char *path, size_t *len)
{
    char *buf;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_input_read_all(path, MAX_TEXT_BYTES, &buf, len, &err) != SLM_OK) {
        slm_cli_fail("eval", &err);
        return NULL;
    }
    return buf;
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
    char *text = read_text(o->file, &len);
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
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:O, s:f}", "model", o->model.model,
            "file", o->file, "n_ctx", (json_int_t)o->model.n_ctx, "n_tokens",
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
        return rc < 0 ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    rc = slm_cli_session_open(&s, &o.model, false, "eval");
    if (rc == SLM_CLI_OK)
        rc = run(&o, &s);
    slm_cli_session_close(&s);
    return rc;
}

/* `slmops generate -m MODEL [-p TEXT] [-n N] [sampling] [--stop S]... [--json]`:
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
#include "cli/session.h"
#include "cli/verbs.h"

#define MAX_STOPS 16

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_sampler_params_t sampler;
    bool seed_given, json, special;
    const char *prompt;
    long n_predict;
    const char *stops[MAX_STOPS];
    size_t n_stops;
} opts_t;

static void generate_usage(void)
{
    printf("Usage: slmops generate -m MODEL [-p TEXT] [-n N] [OPTIONS]\n"
           "Continue TEXT (or, without -p, start from the BOS token alone) and print\n"
           "the text as it is generated, then a newline. Statistics go to stderr.\n"
           "  -p, --prompt TEXT    the prompt (BOS is added when the vocabulary wants it)\n"
           "  -n, --n-predict N    tokens to generate (default 128)\n"
           "  --stop STR           stop before this text (may be repeated)\n"
           "  --special            parse special tokens' text in the prompt\n"
           "  --json               print one JSON document: text, token ids, timings\n"
           "%s%s", slm_cli_model_help, slm_cli_sampler_help);
}

static uint64_t fresh_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
            s = 0;
        close(fd);
    }
    if (!s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return s;
}

static int parse_own(int argc, char **argv, int *i, opts_t *o)
{
    const char *a = argv[*i], *v;
    if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) {
        if (!(o->prompt = slm_cli_value(argc, argv, i, "generate")))
            return SLM_CLI_USAGE;
    } else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) {
        if (!(v = slm_cli_value(argc, argv, i, "generate")))
            return SLM_CLI_USAGE;
        if (!slm_cli_parse_int(v, 0, 1L << 24, &o->n_predict))
            return slm_cli_usage_error("generate", "-n needs a number 0..16777216");
    } else if (strcmp(a, "--stop") == 0) {
        if (!(v = slm_cli_value(argc, argv, i, "generate")))
            return SLM_CLI_USAGE;
        if (o->n_stops == MAX_STOPS)
            return slm_cli_usage_error("generate", "at most %d --stop strings", MAX_STOPS);
        o->stops[o->n_stops++] = v;
    } else if (strcmp(a, "--json") == 0) {
        o->json = true;
    } else if (strcmp(a, "--special") == 0) {
        o->special = true;
    } else {
        return slm_cli_usage_error("generate", "unknown argument '%s'", a);
    }
    return SLM_CLI_OK;
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_sampler_params_default(&o->sampler);
    o->n_predict = 128;
    for (int i = 1; i < argc; i++) {
        if (slm_cli_is_help(argv[i])) {
            generate_usage();
            return -1;
        }
        int took = slm_cli_model_option(argc, argv, &i, &o->model, "generate");
        if (took == 0)
            took = slm_cli_sampler_option(argc, argv, &i, &o->sampler, &o->seed_given, "generate");
        if (took < 0)
            return SLM_CLI_USAGE;
        if (took == 0) {
            int rc = parse_own(argc, argv, &i, o);
            if (rc != SLM_CLI_OK)
                return rc;
        }
    }
    if (!o->model.model)
        return slm_cli_usage_error("generate", "missing -m MODEL");
    if (!o->seed_given)
        o->sampler.seed = fresh_seed();
    return SLM_CLI_OK;
}

/* The prompt ids: the text's, or BOS alone. */
static int prompt_ids(slm_cli_session_t *s, const opts_t *o, int32_t **ids, size_t *n)
{
    if (o->prompt && *o->prompt) {
        unsigned flags = (slm_tokenizer_add_bos(s->tok) ? SLM_TOKENIZE_ADD_BOS : 0) |
                         (o->special ? SLM_TOKENIZE_PARSE_SPECIAL : 0);
        return slm_cli_encode(s, o->prompt, strlen(o->prompt), flags, ids, n);
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

static void emit_stdout(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static double per_s(size_t n, double ms)
{
    return ms > 0 ? (double)n * 1e3 / ms : 0.0;
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
        "{s:s, s:o, s:o, s:o, s:o, s:s, s:I, s:{s:f, s:I, s:f, s:f, s:I, s:f, s:f}}",
        "model", o->model.model, "prompt", slm_cli_json_text(o->prompt ? o->prompt : "",
                                                             o->prompt ? strlen(o->prompt) : 0),
        "text", slm_cli_json_text(g->text ? g->text : "", g->len), "prompt_tokens",
        ids_json(prompt, g->n_prompt), "tokens", ids_json(g->tokens, g->n_tokens),
        "stop_reason", g->stop_reason, "seed", (json_int_t)o->sampler.seed, "timings",
        "load_ms", s->load_ms, "prompt_n", (json_int_t)g->n_prompt, "prompt_ms", g->prompt_ms,
        "prompt_tokens_per_s", per_s(g->n_prompt, g->prompt_ms), "predicted_n",
        (json_int_t)g->n_tokens, "predicted_ms", g->gen_ms, "predicted_tokens_per_s",
        per_s(g->n_tokens, g->gen_ms));
    return slm_cli_print_json(doc);
}

static int run(const opts_t *o, slm_cli_session_t *s)
{
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = prompt_ids(s, o, &prompt, &n_prompt);
    if (rc != SLM_CLI_OK)
        return rc;
    slm_error_t err;
    slm_error_init(&err);
    slm_sampler_t *smp = slm_sampler_new(&o->sampler, &err);
    slm_stop_t *stop = smp ? slm_stop_new(o->stops, o->n_stops, &err) : NULL;
    slm_cli_gen_t g = {0};
    if (!stop) {
        rc = slm_cli_fail("generate", &err);
        goto out;
    }
    bool has_text = o->prompt && *o->prompt;
    if (!o->json && has_text)
        emit_stdout(NULL, o->prompt, strlen(o->prompt));
    rc = slm_cli_session_generate(s, smp, stop, prompt, n_prompt, o->n_predict, has_text,
                          o->json ? NULL : emit_stdout, NULL, &g);
    if (rc == SLM_CLI_OK && o->json) {
        rc = print_json(o, s, prompt, &g);
    } else if (rc == SLM_CLI_OK) {
        printf("\n");   /* as llama2.c's run prints after the last token */
        fprintf(stderr,
                "slmops generate: seed %llu; prompt %zu tokens, %.1f ms (%.1f t/s); "
                "generated %zu tokens, %.1f ms (%.1f t/s); stop: %s\n",
                (unsigned long long)o->sampler.seed, g.n_prompt, g.prompt_ms,
                per_s(g.n_prompt, g.prompt_ms), g.n_tokens, g.gen_ms,
                per_s(g.n_tokens, g.gen_ms), g.stop_reason);
    }
out:
    slm_cli_gen_free(&g);
    slm_stop_free(stop);
    slm_sampler_free(smp);
    free(prompt);
    return rc;
}

int slm_cli_generate(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc < 0 ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    rc = slm_cli_session_open(&s, &o.model, true, "generate");
    if (rc == SLM_CLI_OK)
        rc = run(&o, &s);
    slm_cli_session_close(&s);
    return rc;
}

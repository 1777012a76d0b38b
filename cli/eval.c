/* `slmops eval -m MODEL --perplexity FILE | --task FILE.jsonl`: perplexity of a text
 * file (llama-perplexity's method) or accuracy on a task file, through an "eval" job. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include <jansson.h>
#include <slmops/input.h>
#include <slmops/job.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    const char *file;
    const char *task, *output, *match, *chat_template;
    long batch, max_tokens;
    bool json;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--perplexity, -f, --file", "FILE", SLM_CLI_STR, OFF(file), 0, 0,
     "the text whose perplexity is measured"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), "tokens per chunk, at least 3 (default 512); with --task,\n"
                    "the context of one example (default: the model's, at most 4096)"),
    {"-b, --batch", "N", SLM_CLI_LONG, OFF(batch), 1, 1 << 24,
     "tokens per forward pass (default: --ctx)"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "one JSON document instead"},
    {"--task", "FILE", SLM_CLI_STR, OFF(task), 0, 0,
     "a task file (JSONL, see TASK FILES in slmops(1)): accuracy instead of perplexity"},
    {"--match", "MODE", SLM_CLI_STR, OFF(match), 0, 0,
     "exact (default) or contains: how a generated answer is compared, for\n"
     "examples that do not say"},
    {"-n, --max-tokens", "N", SLM_CLI_LONG, OFF(max_tokens), 1, 1 << 20,
     "most tokens generated per answer (default 32)"},
    {"-o, --output", "FILE", SLM_CLI_STR, OFF(output), 0, 0,
     "write the results with every example's (JSON) to FILE"},
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(chat_template), 0, 0,
     "the template \"messages\" examples are rendered with: a\n"
     "built-in name (chatml, ...) or its text (default: the model's)"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "eval",
    .synopsis = "-m MODEL --perplexity FILE [--ctx N] [--batch N] [--json]\n"
                "       slmops eval -m MODEL --task FILE.jsonl [--match MODE] [-n N] [-o FILE]"
                " [--json]",
    .about = "Perplexity of the text in FILE as llama.cpp's llama-perplexity computes it:\n"
             "the text is tokenized with BOS, cut into chunks of --ctx tokens (at least 2\n"
             "chunks are needed), each chunk starts with BOS, and the second half of each\n"
             "chunk is scored. Prints the running value after each chunk, then the final\n"
             "estimate.\n"
             "With --task, the accuracy on the examples of a task file instead: answers\n"
             "generated greedily and compared after normalization (exact or contains), or\n"
             "choices ranked by log-likelihood (acc, and acc_norm per byte of the choice),\n"
             "printed with a 95% Wilson interval.\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->model.n_ctx = -1;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    bool ctx_given = o->model.n_ctx != -1;
    if (!ctx_given)
        o->model.n_ctx = o->task ? 0 : 512;
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("eval", "missing -m MODEL");
    if (o->file && o->task)
        return slm_cli_usage_error("eval", "--perplexity or --task, not both");
    if (!o->file && !o->task)
        return slm_cli_usage_error("eval", "missing --perplexity FILE (or --task FILE)");
    if (o->match && strcmp(o->match, "exact") != 0 && strcmp(o->match, "contains") != 0)
        return slm_cli_usage_error("eval", "--match must be exact or contains, not '%s'",
                                   o->match);
    if (!o->task && (o->output || o->match || o->max_tokens || o->chat_template))
        return slm_cli_usage_error("eval", "%s needs --task", o->output ? "--output"
                                   : o->match ? "--match" : o->max_tokens ? "--max-tokens"
                                   : "--chat-template");
    if (o->task)
        return SLM_CLI_OK;
    if (o->model.n_ctx < 3)
        return slm_cli_usage_error("eval", "--ctx %ld scores no token (a chunk scores its "
                                   "second half but not its last token): use 3 or more",
                                   o->model.n_ctx);
    return SLM_CLI_OK;
}

/* The running perplexity after each chunk (the JSON report has them all). */
static void on_chunk(void *user, const slm_job_progress_t *ev)
{
    (void)user;
    printf("%s[%llu]%.4f", ev->done > 1 ? "," : "", (unsigned long long)ev->done, ev->value);
    if (ev->done == ev->total)
        printf("\n");
    fflush(stdout);
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_int_t integer(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static int print_report(const opts_t *o, const slm_cli_session_t *s, const char *report)
{
    json_t *doc = report ? json_loads(report, 0, NULL) : NULL;
    const json_t *r = json_object_get(doc, "results");
    int rc = SLM_CLI_OK;
    double ms = num(doc, "seconds") * 1e3;
    if (!json_is_object(r)) {
        fprintf(stderr, "slmops eval: the job wrote no report (out of memory)\n");
        rc = SLM_CLI_FAILED;
    } else if (o->json) {
        json_t *out = json_pack(
            "{s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:O, s:f}", "model",
            slm_cli_json_path(o->model.model), "file", slm_cli_json_path(o->file), "n_ctx",
            (json_int_t)o->model.n_ctx, "n_tokens", integer(r, "n_tokens"), "n_chunks",
            integer(r, "n_chunks"), "n_scored", integer(r, "n_scored"), "nll",
            json_copy(json_object_get(r, "nll")), "ppl", json_copy(json_object_get(r, "ppl")),
            "running", json_object_get(r, "running"), "ms", ms);
        if (s->n_loras)   /* the same list the job's settings hold */
            json_object_set(out, "lora", json_object_get(json_object_get(doc, "settings"), "lora"));
        rc = slm_cli_print_json(out);
    } else {
        printf("Final estimate: PPL = %.4f (%llu tokens scored, mean NLL %.6f, %.1f s)\n",
               num(r, "ppl"), (unsigned long long)integer(r, "n_scored"), num(r, "nll"),
               ms / 1e3);
    }
    json_decref(doc);
    return rc;
}

static int run_job(const opts_t *o, slm_cli_session_t *s, const int32_t *tokens,
                   size_t n_tokens)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    int rc = slm_job_new(s->reg, "eval", NULL, &job, &err);
    /* The session's model and the tokens read here: the job opens no file. */
    if (rc == SLM_OK && (rc = slm_job_set_string(job, "model", o->model.model, &err)) == SLM_OK &&
        (rc = slm_job_set_string(job, "perplexity", o->file, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "ctx", o->model.n_ctx, &err)) == SLM_OK &&
        (rc = slm_job_set_int(job, "batch", o->batch, &err)) == SLM_OK &&
        (rc = slm_cli_lora_job(job, s, &err)) == SLM_OK &&
        (rc = slm_job_use_model(job, s->model, &err)) == SLM_OK)
        rc = slm_job_use_tokens(job, tokens, n_tokens, &err);
    if (rc == SLM_OK) {
        if (!o->json)
            slm_job_set_progress(job, on_chunk, NULL);
        rc = slm_job_run(job, &err);
    }
    rc = rc == SLM_OK ? print_report(o, s, slm_job_report(job)) : slm_cli_fail("eval", &err);
    slm_job_free(job);
    return rc;
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
    if (!o->json)
        printf("perplexity: %s, %zu tokens, %zu chunks of %ld\n", o->file, n_tokens,
               n_tokens / (size_t)o->model.n_ctx, o->model.n_ctx);
    rc = run_job(o, s, tokens, n_tokens);
    free(tokens);
    return rc;
}

static void on_example(void *user, const slm_job_progress_t *ev)
{
    (void)user;
    if (ev->done % 10 == 0 || ev->done == ev->total)
        fprintf(stderr, "\rtask: %llu/%llu examples, accuracy so far %.3f",
                (unsigned long long)ev->done, (unsigned long long)ev->total, ev->value);
    if (ev->done == ev->total)
        fprintf(stderr, "\n");
}

static void print_acc(const char *what, const json_t *a)
{
    const json_t *ci = json_object_get(a, "ci95");
    printf("%-12s %.4f  (%lld/%lld, 95%% CI %.4f-%.4f)\n", what, num(a, "accuracy"),
           (long long)integer(a, "correct"), (long long)integer(a, "n"),
           json_number_value(json_array_get(ci, 0)), json_number_value(json_array_get(ci, 1)));
}

static int print_task(const opts_t *o, const char *report)
{
    json_t *doc = report ? json_loads(report, 0, NULL) : NULL;
    json_t *r = json_object_get(doc, "results");
    int rc = SLM_CLI_OK;
    if (!json_is_object(r)) {
        fprintf(stderr, "slmops eval: the job wrote no report (out of memory)\n");
        rc = SLM_CLI_FAILED;
    } else if (o->json) {
        json_object_set(r, "seconds", json_object_get(doc, "seconds"));
        json_object_set(r, "settings", json_object_get(doc, "settings"));
        rc = slm_cli_print_json(json_incref(r));
    } else {
        printf("task: %s\n", o->task);
        print_acc("accuracy", r);
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(r, "by_type"), key, v)
            print_acc(key, v);
        if (o->output)
            printf("per-example results: %s\n", o->output);
    }
    json_decref(doc);
    return rc;
}

static int run_task(const opts_t *o, slm_cli_session_t *s)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_job_t *job = NULL;
    int rc = slm_job_new(s->reg, "eval", NULL, &job, &err);
    if (rc == SLM_OK && (rc = slm_job_set_string(job, "model", o->model.model, &err)) == SLM_OK &&
        (rc = slm_job_set_string(job, "task", o->task, &err)) == SLM_OK &&
        (!o->output || (rc = slm_job_set_string(job, "output", o->output, &err)) == SLM_OK) &&
        (!o->match || (rc = slm_job_set_string(job, "match", o->match, &err)) == SLM_OK) &&
        (rc = slm_job_set_string(job, "chat_template", o->chat_template, &err)) == SLM_OK &&
        (!o->max_tokens || (rc = slm_job_set_int(job, "max_tokens", o->max_tokens,
                                                 &err)) == SLM_OK) &&
        (rc = slm_job_set_int(job, "ctx", o->model.n_ctx, &err)) == SLM_OK &&
        (!o->model.tokenizer ||
         (rc = slm_job_set_string(job, "tokenizer", o->model.tokenizer, &err)) == SLM_OK) &&
        (rc = slm_cli_lora_job(job, s, &err)) == SLM_OK)
        rc = slm_job_use_model(job, s->model, &err);
    if (rc == SLM_OK) {
        if (!o->json)
            slm_job_set_progress(job, on_example, NULL);
        rc = slm_job_run(job, &err);
    }
    rc = rc == SLM_OK ? print_task(o, slm_job_report(job)) : slm_cli_fail("eval", &err);
    slm_job_free(job);
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
        rc = o.task ? run_task(&o, &s) : run(&o, &s);
    slm_cli_session_close(&s);
    return rc;
}

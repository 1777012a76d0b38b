/* `slmops chat -m MODEL [--chat-template NAME] [--system TEXT]`: a conversation on
 * stdin/stdout in the model's chat template, one KV cache kept across turns. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slmops/chat.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_cli_sampling_t sampling;
    const char *template_name, *system;
    long n_predict;
} opts_t;

/* The conversation so far; contents are owned. */
typedef struct convo {
    slm_chat_message_t *m;
    size_t n, cap;
    size_t formatted_len;      /* bytes of the formatted history already decoded */
} convo_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--chat-template", "NAME", SLM_CLI_STR, OFF(template_name), 0, 0,
     "use this built-in format: chatml, llama2, llama2-sys, llama3,\n"
     "mistral-v1, mistral-v3, mistral-v7, phi3, phi4, zephyr, gemma,\n"
     "falcon3, vicuna, deepseek, ..."},
    {"--system", "TEXT", SLM_CLI_STR, OFF(system), 0, 0, "a system message first"},
    {"-n, --n-predict", "N", SLM_CLI_LONG, OFF(n_predict), -1, 1 << 24,
     "most tokens a reply may have; -1 = until the end of the text\n"
     "or a full context (default 1024)"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), SLM_CLI_CTX_HELP_MODEL),
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {"Sampling options", slm_cli_sampling_opts, OFF(sampling)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "chat",
    .synopsis = "-m MODEL [--chat-template NAME] [--system TEXT] [OPTIONS]",
    .about = "Talk with the model: each line read from stdin is a user message, the reply\n"
             "is streamed to stdout. End with end-of-file (Ctrl-D). The prompt is built\n"
             "with the model's chat template (tokenizer.chat_template), recognised as one\n"
             "of the built-in formats, and the KV cache is kept across turns.\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_cli_sampling_init(&o->sampling);
    o->n_predict = 1024;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("chat", "missing -m MODEL");
    slm_cli_sampling_seed(&o->sampling);
    return SLM_CLI_OK;
}

static bool add_message(convo_t *c, const char *role, const char *content, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        slm_chat_message_t *m = realloc(c->m, cap * sizeof *m);
        if (!m)
            return false;
        c->m = m;
        c->cap = cap;
    }
    char *copy = strndup(content, len);
    if (!copy)
        return false;
    c->m[c->n++] = (slm_chat_message_t){.role = role, .content = copy};
    return true;
}

static void convo_free(convo_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free((char *)c->m[i].content);
    free(c->m);
}

static void emit_stdout(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* Format the conversation; the new part (past what the cache holds) is decoded as
 * the prompt of this turn, as llama.cpp's simple-chat does. */
static int reply(slm_cli_session_t *s, const opts_t *o, const char *tmpl, convo_t *c,
                 slm_sampler_t *smp, slm_stop_t *stop)
{
    char *text = NULL;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_chat_apply(tmpl, c->m, c->n, true, &text, &err) != SLM_OK)
        return slm_cli_fail("chat", &err);
    size_t from = c->formatted_len <= strlen(text) ? c->formatted_len : 0;
    bool first = slm_context_seq_pos(s->ctx, 0) == 0;
    unsigned flags = SLM_TOKENIZE_PARSE_SPECIAL |
                     (first && slm_tokenizer_add_bos(s->tok) ? SLM_TOKENIZE_ADD_BOS : 0);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = slm_cli_encode(s, text + from, strlen(text + from), flags, &ids, &n);
    free(text);
    if (rc != SLM_CLI_OK)
        return rc;
    slm_cli_gen_t g;
    rc = slm_cli_session_generate(s, smp, stop, ids, n, o->n_predict, false, emit_stdout, NULL, &g);
    free(ids);
    printf("\n");
    fflush(stdout);
    if (rc == SLM_CLI_OK && !add_message(c, "assistant", g.text ? g.text : "", g.len))
        rc = SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK && slm_chat_apply(tmpl, c->m, c->n, false, &text, &err) == SLM_OK) {
        c->formatted_len = strlen(text);
        free(text);
    }
    if (rc == SLM_CLI_OK && strcmp(g.stop_reason, "context") == 0) {
        fprintf(stderr, "slmops chat: the context (%u tokens) is full; start a new chat or "
                "raise --ctx\n", slm_context_n_ctx(s->ctx));
        rc = SLM_CLI_FAILED;
    }
    slm_cli_gen_free(&g);
    return rc;
}

static int converse(slm_cli_session_t *s, const opts_t *o, const char *tmpl)
{
    convo_t c = {0};
    slm_error_t err;
    slm_error_init(&err);
    slm_sampler_t *smp = slm_sampler_new(&o->sampling.p, &err);
    slm_stop_t *stop = smp ? slm_stop_new(NULL, 0, &err) : NULL;
    int rc = stop ? SLM_CLI_OK : slm_cli_fail("chat", &err);
    if (rc == SLM_CLI_OK && o->system && !add_message(&c, "system", o->system, strlen(o->system)))
        rc = SLM_CLI_FAILED;
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    while (rc == SLM_CLI_OK) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0)
            break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (!add_message(&c, "user", line, (size_t)len))
            rc = SLM_CLI_FAILED;
        else
            rc = reply(s, o, tmpl, &c, smp, stop);
    }
    free(line);
    convo_free(&c);
    slm_stop_free(stop);
    slm_sampler_free(smp);
    return rc;
}

int slm_cli_chat(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    rc = slm_cli_session_open(&s, &o.model, true, "chat");
    const char *tmpl = NULL;
    slm_error_t err;
    slm_error_init(&err);
    if (rc == SLM_CLI_OK &&
        slm_chat_template_for(slm_model_container(s.model), o.template_name, &tmpl, &err) != SLM_OK) {
        rc = slm_cli_fail("chat", &err);
        if (!o.template_name)
            fprintf(stderr, "slmops chat: choose a format with --chat-template NAME\n");
    }
    if (rc == SLM_CLI_OK)
        rc = converse(&s, &o, tmpl);
    slm_cli_session_close(&s);
    return rc;
}

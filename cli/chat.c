/* `slmops chat -m MODEL`: a conversation on stdin/stdout; each turn renders the whole
 * conversation with the chat template and decodes what the KV cache lacks. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/chat.h"
#include "cli/common.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_sampler_params_t sampler;
    bool seed_given;
    const char *template_name, *template_file, *template_kwargs, *system;
    long n_predict;
} opts_t;

static void chat_usage(void)
{
    printf("Usage: slmops chat -m MODEL [--system TEXT] [OPTIONS]\n"
           "Talk with the model: each line read from stdin is a user message, the reply\n"
           "is streamed to stdout. End with end-of-file (Ctrl-D). Each turn renders the\n"
           "whole conversation with the model's chat template (tokenizer.chat_template,\n"
           "a Jinja template, rendered as Hugging Face transformers does) and decodes\n"
           "only what the KV cache does not hold yet.\n"
           "  --chat-template NAME|TEMPLATE   a built-in template (chatml, llama2, llama3,\n"
           "                        phi3, zephyr, gemma) or a Jinja template, instead of\n"
           "                        the model's own\n"
           "  --chat-template-file FILE       the chat template in a file\n"
           "  --chat-template-kwargs JSON     more template variables, as a JSON object\n"
           "                        (e.g. '{\"enable_thinking\": false}')\n"
           "  --system TEXT         a system message first\n"
           "  -n, --n-predict N     most tokens a reply may have (default 1024)\n"
           "%s%s", slm_cli_model_help, slm_cli_sampler_help);
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    slm_sampler_params_default(&o->sampler);
    o->n_predict = 1024;
    for (int i = 1; i < argc; i++) {
        if (slm_cli_is_help(argv[i])) {
            chat_usage();
            return -1;
        }
        int took = slm_cli_model_option(argc, argv, &i, &o->model, "chat");
        if (took == 0)
            took = slm_cli_sampler_option(argc, argv, &i, &o->sampler, &o->seed_given, "chat");
        if (took < 0)
            return SLM_CLI_USAGE;
        if (took)
            continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--chat-template") == 0) {
            if (!(o->template_name = slm_cli_value(argc, argv, &i, "chat")))
                return SLM_CLI_USAGE;
        } else if (strcmp(a, "--chat-template-file") == 0) {
            if (!(o->template_file = slm_cli_value(argc, argv, &i, "chat")))
                return SLM_CLI_USAGE;
        } else if (strcmp(a, "--chat-template-kwargs") == 0) {
            if (!(o->template_kwargs = slm_cli_value(argc, argv, &i, "chat")))
                return SLM_CLI_USAGE;
            json_t *kw = json_loads(o->template_kwargs, 0, NULL);
            bool object = json_is_object(kw);
            json_decref(kw);
            if (!object)
                return slm_cli_usage_error("chat", "--chat-template-kwargs needs a JSON object, "
                                           "not '%s'", o->template_kwargs);
        } else if (strcmp(a, "--system") == 0) {
            if (!(o->system = slm_cli_value(argc, argv, &i, "chat")))
                return SLM_CLI_USAGE;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) {
            if (!(v = slm_cli_value(argc, argv, &i, "chat")))
                return SLM_CLI_USAGE;
            if (!slm_cli_parse_int(v, 1, 1L << 24, &o->n_predict))
                return slm_cli_usage_error("chat", "-n needs a number 1..16777216");
        } else {
            return slm_cli_usage_error("chat", "unknown argument '%s'", a);
        }
    }
    if (!o->model.model)
        return slm_cli_usage_error("chat", "missing -m MODEL");
    if (o->template_name && o->template_file)
        return slm_cli_usage_error("chat", "give --chat-template or --chat-template-file, "
                                   "not both");
    if (!o->seed_given)
        o->sampler.seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
    return SLM_CLI_OK;
}

static void emit_stdout(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

typedef struct chat {
    slm_cli_session_t *s;
    const opts_t *o;
    slm_cli_prompt_t prompt;
    slm_cli_convo_t convo;
    slm_sampler_t *smp;
    slm_stop_t *stop;
} chat_t;

/* One reply: the conversation (ending with the user's message) rendered, the new
 * tokens decoded, the reply streamed and added to the conversation. */
static int reply(chat_t *ch)
{
    slm_cli_session_t *s = ch->s;
    size_t n_ctx = slm_context_n_ctx(s->ctx), reserve = (size_t)ch->o->n_predict, n, shifted;
    if (reserve > n_ctx / 4)
        reserve = n_ctx / 4;
    int32_t *all;
    const int32_t *ids;
    int rc = slm_cli_prompt_prepare(&ch->prompt, s, &ch->convo, reserve, &all, &ids, &n, &shifted);
    if (rc != SLM_CLI_OK)
        return rc;
    if (shifted)
        fprintf(stderr, "slmops chat: the context is full: the oldest turns are dropped\n");
    slm_cli_gen_t g;
    rc = slm_cli_session_generate(s, ch->smp, ch->stop, ids, n, ch->o->n_predict, false,
                                  emit_stdout, NULL, &g);
    printf("\n");
    fflush(stdout);
    if (rc == SLM_CLI_OK && (!slm_cli_prompt_commit(&ch->prompt, s, ids, n, g.tokens, g.n_tokens) ||
                             !slm_cli_convo_add(&ch->convo, "assistant", g.text ? g.text : "",
                                                g.len))) {
        fprintf(stderr, "slmops chat: out of memory\n");
        rc = SLM_CLI_FAILED;
    }
    free(all);
    slm_cli_gen_free(&g);
    return rc;
}

static int converse(chat_t *ch)
{
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    int rc = SLM_CLI_OK;
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
        if (!slm_cli_convo_add(&ch->convo, "user", line, (size_t)len))
            rc = SLM_CLI_FAILED;
        else
            rc = reply(ch);
    }
    free(line);
    return rc;
}

int slm_cli_chat(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc < 0 ? SLM_CLI_OK : rc;
    slm_cli_session_t s;
    chat_t ch = {.s = &s, .o = &o};
    slm_error_t err;
    slm_error_init(&err);
    rc = slm_cli_session_open(&s, &o.model, true, "chat");
    if (rc == SLM_CLI_OK)
        rc = slm_cli_prompt_open(&ch.prompt, &s, o.template_name, o.template_file,
                                 o.template_kwargs);
    if (rc == SLM_CLI_OK && o.system && !slm_cli_convo_add(&ch.convo, "system", o.system,
                                                           strlen(o.system)))
        rc = SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK && (!(ch.smp = slm_sampler_new(&o.sampler, &err)) ||
                             !(ch.stop = slm_stop_new(NULL, 0, &err))))
        rc = slm_cli_fail("chat", &err);
    if (rc == SLM_CLI_OK)
        rc = converse(&ch);
    slm_stop_free(ch.stop);
    slm_sampler_free(ch.smp);
    slm_cli_convo_free(&ch.convo);
    slm_cli_prompt_close(&ch.prompt);
    slm_cli_session_close(&s);
    return rc;
}

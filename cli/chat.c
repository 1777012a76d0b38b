/* `slmops chat -m MODEL`: a conversation on stdin/stdout as Ollama and llama-cli hold
 * one; each turn renders the whole conversation and decodes what the KV cache lacks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/chat.h"
#include "cli/common.h"
#include "cli/options.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    slm_cli_sampling_t sampling;
    const char *template_name, *template_file, *template_kwargs, *system;
    const char *prompt_arg, *file;
    char *first;               /* the first message, from -p, -p - or -f; owned */
    size_t first_len;
    long n_predict;
    bool verbose;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(template_name), 0, 0,
     "a built-in template (chatml, llama2, llama3, phi3, zephyr,\n"
     "gemma) or a Jinja template, instead of the model's own"},
    {"--chat-template-file", "FILE", SLM_CLI_STR, OFF(template_file), 0, 0,
     "the chat template in a file"},
    {"--chat-template-kwargs", "JSON", SLM_CLI_STR, OFF(template_kwargs), 0, 0,
     "more template variables, as a JSON object\n"
     "(e.g. '{\"enable_thinking\": false}')"},
    {"--system", "TEXT", SLM_CLI_STR, OFF(system), 0, 0, "a system message first"},
    {"-p, --prompt", "TEXT", SLM_CLI_STR, OFF(prompt_arg), 0, 0,
     "the first user message; '-' reads it from standard input"},
    {"-f, --file", "FILE", SLM_CLI_STR, OFF(file), 0, 0, "the first user message from FILE"},
    {"-n, --n-predict", "N", SLM_CLI_LONG, OFF(n_predict), -1, 1 << 24,
     "most tokens a reply may have; -1 = until the end of the text\n"
     "or a full context (default 1024)"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), SLM_CLI_CTX_HELP_MODEL),
    {"--verbose", NULL, SLM_CLI_FLAG, OFF(verbose), 0, 0,
     "timings after each reply (a summary always ends the chat)"},
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
    .synopsis = "-m MODEL [--system TEXT] [-p TEXT | -f FILE] [OPTIONS]",
    .about = "Talk with the model: each line read from stdin is a user message (\"\"\" begins\n"
             "and ends one of several lines), the reply is streamed to stdout. Ctrl-C stops\n"
             "a reply; /bye, /exit, Ctrl-D or Ctrl-C at an empty prompt leave; /clear\n"
             "forgets the conversation but the system message; /help lists the commands.\n"
             "Each turn renders the whole conversation with the model's chat template\n"
             "(tokenizer.chat_template, a Jinja template, rendered as Hugging Face\n"
             "transformers does) and decodes only what the KV cache does not hold yet; when\n"
             "the context is full, the oldest turns after the system message are dropped.\n",
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
    if (o->template_name && o->template_file)
        return slm_cli_usage_error("chat", "give --chat-template or --chat-template-file, "
                                   "not both");
    if (o->prompt_arg && o->file)
        return slm_cli_usage_error("chat", "give the first message with -p or -f, not both");
    if (o->template_kwargs) {
        json_t *kw = json_loads(o->template_kwargs, 0, NULL);
        bool object = json_is_object(kw);
        json_decref(kw);
        if (!object)
            return slm_cli_usage_error("chat", "--chat-template-kwargs needs a JSON object, "
                                       "not '%s'", o->template_kwargs);
    }
    slm_cli_sampling_seed(&o->sampling);
    return slm_cli_prompt_text("chat", o->prompt_arg, o->file, &o->first, &o->first_len);
}

typedef struct stats {
    size_t replies, n_prompt, n_gen;
    double prompt_ms, gen_ms;
} stats_t;

typedef struct chat {
    slm_cli_session_t *s;
    const opts_t *o;
    slm_cli_prompt_t prompt;
    slm_cli_convo_t convo;
    bool started;              /* later replies go on with the first one's sampler */
    stats_t total;
} chat_t;

static void print_timings(const char *what, const stats_t *t, uint32_t used, uint32_t n_ctx)
{
    fprintf(stderr, "slmops chat: %s: prompt %zu tokens in %.1f ms (%.1f tokens/s), "
            "reply %zu tokens in %.1f ms (%.1f tokens/s), context %u/%u\n", what, t->n_prompt,
            t->prompt_ms, slm_cli_per_s(t->n_prompt, t->prompt_ms), t->n_gen, t->gen_ms,
            slm_cli_per_s(t->n_gen, t->gen_ms), used, n_ctx);
}

/* What a reply's end says beyond its text. */
static void reply_notes(chat_t *ch, const slm_cli_gen_t *g)
{
    uint32_t n_ctx = slm_generator_n_ctx_slot(ch->s->gen);
    if (strcmp(g->stop_reason, "context") == 0)
        fprintf(stderr, "slmops chat: the context (%u tokens) is full: the reply stops here; "
                "the oldest turns make room for the next one\n", n_ctx);
    if (ch->o->verbose) {
        stats_t one = {.replies = 1, .n_prompt = g->n_prompt, .n_gen = g->n_tokens,
                       .prompt_ms = g->prompt_ms, .gen_ms = g->gen_ms};
        print_timings("reply", &one, (uint32_t)slm_seq_pos(ch->s->seq), n_ctx);
    }
}

/* One reply: the conversation (ending with the user's message) rendered, the new
 * tokens decoded, the reply streamed and added to the conversation (the part
 * written before a Ctrl-C too, so that the roles keep alternating). */
static int reply(chat_t *ch)
{
    slm_cli_session_t *s = ch->s;
    size_t n_ctx = slm_generator_n_ctx_slot(s->gen), reserve = (size_t)ch->o->n_predict, n, shifted;
    if (reserve > n_ctx / 4)
        reserve = n_ctx / 4;
    int32_t *all;
    const int32_t *ids;
    int rc = slm_cli_prompt_prepare(&ch->prompt, s, &ch->convo, reserve, &all, &ids, &n, &shifted);
    if (rc == SLM_CLI_PROMPT_TOO_LONG) {
        slm_cli_convo_drop(&ch->convo, ch->convo.n - 1, 1);   /* back to the prompt */
        return SLM_CLI_OK;
    }
    if (rc != SLM_CLI_OK)
        return rc;
    if (shifted)
        fprintf(stderr, "slmops chat: the context is full: the %zu oldest turn(s) are dropped\n",
                shifted);
    slm_seq_params_t sp;
    slm_seq_params_default(&sp);
    sp.sampling = ch->started ? NULL : &ch->o->sampling.p;
    sp.max_tokens = (int32_t)ch->o->n_predict;
    sp.on_text = slm_cli_emit_stdout;
    slm_cli_gen_t g;
    rc = slm_cli_session_generate(s, &sp, ids, n, &g);
    ch->started |= rc == SLM_CLI_OK;
    slm_cli_chat_interrupted = 0;   /* a Ctrl-C that stopped this reply is used up */
    printf("\n");
    fflush(stdout);
    if (rc == SLM_CLI_OK && (!slm_cli_prompt_commit(&ch->prompt, s, ids, n, g.tokens, g.n_tokens) ||
                             !slm_cli_convo_add(&ch->convo, "assistant", g.text ? g.text : "",
                                                g.len))) {
        fprintf(stderr, "slmops chat: out of memory\n");
        rc = SLM_CLI_FAILED;
    }
    if (rc == SLM_CLI_OK) {
        reply_notes(ch, &g);
        ch->total.replies++;
        ch->total.n_prompt += g.n_prompt;
        ch->total.n_gen += g.n_tokens;
        ch->total.prompt_ms += g.prompt_ms;
        ch->total.gen_ms += g.gen_ms;
    }
    free(all);
    return rc;
}

/* /clear: the conversation restarts from its system message, if it has one. */
static void clear(chat_t *ch)
{
    slm_cli_convo_t *c = &ch->convo;
    size_t keep = c->n && strcmp(c->m[0].role, "system") == 0;
    slm_cli_convo_drop(c, keep, c->n - keep);
    fprintf(stderr, "slmops chat: the conversation is cleared%s\n",
            keep ? " (the system message stays)" : "");
}

/* Answers the first message (-p, -f) if any, then reads and answers until end of
 * input, /bye or Ctrl-C at an empty prompt. */
static int converse(chat_t *ch, const char *first, size_t first_len)
{
    slm_cli_chat_reader_t r = {.tty = isatty(STDIN_FILENO)};
    struct sigaction saved;
    bool handler = slm_cli_chat_sigint_install(&saved);
    if (handler)
        ch->s->interrupt = &slm_cli_chat_interrupted;
    int rc = SLM_CLI_OK;
    if (first && !slm_cli_convo_add(&ch->convo, "user", first, first_len))
        rc = SLM_CLI_FAILED;
    else if (first)
        rc = reply(ch);
    for (bool done = false; rc == SLM_CLI_OK && !done;) {
        switch (slm_cli_chat_read(&r)) {
        case SLM_CLI_CHAT_MESSAGE:
            if (!slm_cli_convo_add(&ch->convo, "user", r.msg, r.msg_len))
                rc = SLM_CLI_FAILED;
            else
                rc = reply(ch);
            break;
        case SLM_CLI_CHAT_CLEAR:
            clear(ch);
            break;
        case SLM_CLI_CHAT_HELP:
            slm_cli_chat_help();
            break;
        case SLM_CLI_CHAT_UNKNOWN:
            fprintf(stderr, "slmops chat: unknown command '%s'; /help lists the commands\n",
                    r.msg);
            break;
        case SLM_CLI_CHAT_ERROR:
            fprintf(stderr, "slmops chat: reading standard input failed: %s\n", strerror(errno));
            rc = SLM_CLI_FAILED;
            break;
        default:   /* end of input, /bye, /exit, Ctrl-C at the prompt */
            done = true;
            break;
        }
    }
    if (handler)
        slm_cli_chat_sigint_restore(&saved);
    ch->s->interrupt = NULL;
    slm_cli_chat_reader_free(&r);
    if (ch->total.replies)
        print_timings("total", &ch->total, (uint32_t)slm_seq_pos(ch->s->seq),
                      slm_generator_n_ctx_slot(ch->s->gen));
    return rc;
}

int slm_cli_chat(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK) {
        free(o.first);
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    }
    slm_cli_session_t s;
    chat_t ch = {.s = &s, .o = &o};
    rc = slm_cli_session_open(&s, &o.model, true, "chat");
    if (rc == SLM_CLI_OK && !o.template_name && !o.template_file)
        o.template_name = s.alias.chat_template;   /* the catalog's, for an alias */
    if (rc == SLM_CLI_OK)
        rc = slm_cli_prompt_open(&ch.prompt, &s, o.template_name, o.template_file,
                                 o.template_kwargs);
    if (rc == SLM_CLI_OK && o.system && !slm_cli_convo_add(&ch.convo, "system", o.system,
                                                           strlen(o.system)))
        rc = SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK)
        rc = converse(&ch, o.first, o.first_len);
    free(o.first);
    slm_cli_convo_free(&ch.convo);
    slm_cli_prompt_close(&ch.prompt);
    slm_cli_session_close(&s);
    return rc;
}

/* `slmops serve -m MODEL [--port N] [--parallel N]`: an OpenAI-compatible HTTP server
 * on 127.0.0.1; requests share batched decode steps (cli/serve/ holds its parts). */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cli/chat.h"
#include "cli/common.h"
#include "cli/options.h"
#include "cli/serve/serve.h"
#include "cli/session.h"
#include "cli/verbs.h"

typedef struct opts {
    slm_cli_model_opts_t model;
    const char *template_name, *template_file, *alias;
    long port, parallel, batch;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--port", "N", SLM_CLI_LONG, OFF(port), 0, 65535,
     "TCP port on 127.0.0.1 (default 8080; 0 = a free one, printed)"},
    {"-np, --parallel", "N", SLM_CLI_LONG, OFF(parallel), 1, 256,
     "requests decoded together, each in a slot of --ctx / N\n"
     "tokens (default 4); more wait in a queue"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), "KV cells all slots share (default: the model's,\n"
                                      "at most 4096)"),
    {"-b, --batch", "N", SLM_CLI_LONG, OFF(batch), 1, 1 << 16,
     "most tokens one decode step runs; longer prompts go in\n"
     "chunks between other requests' tokens (default 512)"},
    {"-a, --alias", "NAME", SLM_CLI_STR, OFF(alias), 0, 0,
     "the model's name in /v1/models and requests (default: the\n"
     "file's name without its extension)"},
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(template_name), 0, 0,
     "a built-in template (chatml, llama2, llama3, phi3, zephyr,\n"
     "gemma) or a Jinja template, instead of the model's own"},
    {"--chat-template-file", "FILE", SLM_CLI_STR, OFF(template_file), 0, 0,
     "the chat template in a file"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "serve",
    .synopsis = "-m MODEL [--port N] [--parallel N] [OPTIONS]",
    .about = "Serve the model over HTTP on 127.0.0.1 with OpenAI's API: POST\n"
             "/v1/chat/completions and /v1/completions (\"stream\": true for Server-Sent\n"
             "Events), GET /v1/models and /health. Requests share batched decode steps;\n"
             "a client that disconnects frees its slot. SIGINT or SIGTERM stops the server.\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->port = 8080;
    o->parallel = 4;
    o->batch = 512;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("serve", "missing -m MODEL");
    if (o->template_name && o->template_file)
        return slm_cli_usage_error("serve", "give --chat-template or --chat-template-file, "
                                   "not both");
    if (o->batch < o->parallel)
        return slm_cli_usage_error("serve", "--batch %ld is smaller than --parallel %ld: "
                                   "every slot needs a token in each step", o->batch,
                                   o->parallel);
    return SLM_CLI_OK;
}

/* The model's name: --alias, else its file name without the extension. */
static char *model_id(const opts_t *o)
{
    if (o->alias)
        return strdup(o->alias);
    const char *path = o->model.model, *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base)   /* a folder given with a trailing slash */
        base = path;
    char *id = strdup(base);
    char *dot = id ? strrchr(id, '.') : NULL;
    if (dot && dot != id)
        *dot = '\0';
    return id;
}

/* The chat template when there is one; a model without one still serves completions. */
static int open_template(srv_t *srv, const opts_t *o)
{
    if (!o->template_name && !o->template_file) {
        slm_chat_template_t *t = NULL;
        int rc = slm_chat_template_from_model_file(slm_model_container(srv->s->model), &t, NULL);
        slm_chat_template_free(t);
        if (rc == SLM_E_NOT_FOUND) {
            fprintf(stderr, "slmops serve: the model has no chat template: "
                    "/v1/chat/completions answers 400 (give --chat-template NAME)\n");
            return SLM_CLI_OK;
        }
    }
    int rc = slm_cli_prompt_open(&srv->chat, srv->s, o->template_name, o->template_file, NULL);
    srv->have_template = rc == SLM_CLI_OK;
    return rc;
}

static int open_generator(slm_cli_session_t *s, const opts_t *o)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_generator_params_t gp;
    slm_generator_params_default(&gp);
    gp.n_slots = (uint32_t)o->parallel;
    gp.n_ctx = (uint32_t)o->model.n_ctx;
    gp.n_batch = (uint32_t)o->batch;
    if (slm_generator_new(s->model, s->tok, &gp, &s->gen, &err) != SLM_OK)
        return slm_cli_fail("serve", &err);
    return SLM_CLI_OK;
}

/* Serve until SIGINT, SIGTERM or SIGHUP (blocked in every thread, taken here). */
static int serve(srv_t *srv, const opts_t *o)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (srv_engine_start(srv) != 0) {
        fprintf(stderr, "slmops serve: cannot start the engine thread\n");
        return SLM_CLI_FAILED;
    }
    unsigned port = 0;
    struct MHD_Daemon *d = srv_http_start(srv, (unsigned)o->port, &port);
    if (!d) {
        fprintf(stderr, "slmops serve: cannot listen on 127.0.0.1:%ld (in use? try another "
                "--port)\n", o->port);
        srv_engine_stop(srv);
        return SLM_CLI_FAILED;
    }
    fprintf(stderr, "slmops serve: listening on http://127.0.0.1:%u (model '%s', %u slots of "
            "%u tokens)\n", port, srv->model_id, slm_generator_n_slots(srv->s->gen),
            slm_generator_n_ctx_slot(srv->s->gen));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "slmops serve: %s: stopping\n", strsignal(sig));
    srv_engine_stop(srv);   /* requests still running end as 503 / a stream error */
    MHD_stop_daemon(d);
    return SLM_CLI_OK;
}

int slm_cli_serve(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_cli_session_t s = {0};
    srv_t srv = {.s = &s, .created = (int64_t)time(NULL)};
    char *id = model_id(&o);
    srv.model_id = id;
    rc = id ? slm_cli_session_open(&s, &o.model, false, "serve") : SLM_CLI_FAILED;
    if (rc == SLM_CLI_OK)
        rc = open_generator(&s, &o);
    if (rc == SLM_CLI_OK)
        rc = open_template(&srv, &o);
    if (rc == SLM_CLI_OK) {
        srv.n_slots = slm_generator_n_slots(s.gen);
        pthread_mutex_init(&srv.mu, NULL);
        pthread_cond_init(&srv.wake, NULL);
        rc = serve(&srv, &o);
        pthread_cond_destroy(&srv.wake);
        pthread_mutex_destroy(&srv.mu);
    }
    if (srv.have_template)
        slm_cli_prompt_close(&srv.chat);
    slm_cli_session_close(&s);
    free(id);
    return rc;
}

/* `slmops serve -m MODEL [--host ADDR] [--port N] [--parallel N]`: an OpenAI-compatible
 * HTTP server, safe by default; requests share batched decode steps (parts: cli/serve/). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/dlopen/mhd.h"

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
    const char *host, *api_key_file, *cors_origin, *access_log;
    bool no_auth, log_prompts, no_prompt_cache, no_repack;
    slm_cli_strs_t allowed_hosts;
    long max_body, max_header, idle_timeout, request_timeout, max_connections, queue;
    long max_tokens, max_n, shutdown_timeout;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--host", "ADDR", SLM_CLI_STR, OFF(host), 0, 0,
     "the numeric IPv4 or IPv6 address to listen on (default\n"
     "127.0.0.1); any but a loopback address needs an API key"},
    {"--port", "N", SLM_CLI_LONG, OFF(port), 0, 65535,
     "TCP port (default 8080; 0 = a free one, printed)"},
    {"-np, --parallel", "N", SLM_CLI_LONG, OFF(parallel), 1, 256,
     "requests decoded together, each in a slot of --ctx / N\n"
     "tokens (default 4); more wait in a queue"},
    SLM_CLI_CTX_OPT(OFF(model.n_ctx), "KV cells all slots share (default: the model's,\n"
                                      "at most 4096)"),
    {"-b, --batch", "N", SLM_CLI_LONG, OFF(batch), 1, 1 << 16,
     "most tokens one decode step runs; longer prompts go in\n"
     "chunks between other requests' tokens (default 512)"},
    {"--no-prompt-cache", NULL, SLM_CLI_FLAG, OFF(no_prompt_cache), 0, 0,
     "free a slot's cells when its request ends; by default they\n"
     "stay, and a request whose prompt starts the same way takes\n"
     "that slot and runs only the rest"},
    {"--no-repack", NULL, SLM_CLI_FLAG, OFF(no_repack), 0, 0,
     "keep quantized weights only as the file has them; by\n"
     "default the CPU keeps them a second time as integer-GEMM\n"
     "panels (as much memory again) for faster batches"},
    {"-a, --alias", "NAME", SLM_CLI_STR, OFF(alias), 0, 0,
     "the model's name in /v1/models and requests (default: the\n"
     "file's name without its extension)"},
    {"--chat-template", "NAME|TEMPLATE", SLM_CLI_STR, OFF(template_name), 0, 0,
     "a built-in template (chatml, llama2, llama3, phi3, zephyr,\n"
     "gemma) or a Jinja template, instead of the model's own"},
    {"--chat-template-file", "FILE", SLM_CLI_STR, OFF(template_file), 0, 0,
     "the chat template in a file"},
    {"--api-key-file", "FILE", SLM_CLI_STR, OFF(api_key_file), 0, 0,
     "requests must send 'Authorization: Bearer KEY' with the key\n"
     "in FILE (one line); $SLMOPS_API_KEY gives it too"},
    {"--no-auth", NULL, SLM_CLI_FLAG, OFF(no_auth), 0, 0,
     "serve a non-loopback --host without an API key (a warning\n"
     "is logged)"},
    {"--allowed-host", "NAME", SLM_CLI_STRS, OFF(allowed_hosts), 0, 0,
     "a name requests may give in their Host header besides the\n"
     "bound address (repeatable; '*': any); others get 403"},
    {"--cors-origin", "ORIGIN", SLM_CLI_STR, OFF(cors_origin), 0, 0,
     "let web pages from ORIGIN ('*': any) call the API (CORS);\n"
     "default: no CORS headers"},
    {"--max-body", "BYTES", SLM_CLI_LONG, OFF(max_body), 1024, 1 << 30,
     "largest request body (default 1048576); more: 413"},
    {"--max-header", "BYTES", SLM_CLI_LONG, OFF(max_header), 4096, 1 << 20,
     "memory for a request's line and headers (default 32768);\n"
     "more: 431"},
    {"--idle-timeout", "S", SLM_CLI_LONG, OFF(idle_timeout), 1, 86400,
     "close a connection silent for S seconds (default 30)"},
    {"--request-timeout", "S", SLM_CLI_LONG, OFF(request_timeout), 1, 86400,
     "close a connection that takes more than S seconds to send\n"
     "a request's headers and body (default 30)"},
    {"--max-connections", "N", SLM_CLI_LONG, OFF(max_connections), 1, 4096,
     "open connections (default 64); more are closed at once"},
    {"--queue", "N", SLM_CLI_LONG, OFF(queue), 1, 1 << 20,
     "requests waiting for a free slot (default 64); more: 429\n"
     "with Retry-After"},
    {"--max-tokens-limit", "N", SLM_CLI_LONG, OFF(max_tokens), 1, INT32_MAX,
     "the most tokens a request may ask for (default 8192);\n"
     "more: 400"},
    {"--max-n", "N", SLM_CLI_LONG, OFF(max_n), 1, 128,
     "the most choices (n) a request may ask for (default 8)"},
    {"--shutdown-timeout", "S", SLM_CLI_LONG, OFF(shutdown_timeout), 0, 86400,
     "SIGTERM: requests in flight have S seconds to finish\n"
     "(default 30); new ones get 503"},
    {"--access-log", "FILE", SLM_CLI_STR, OFF(access_log), 0, 0,
     "one JSON line per request to FILE (appended; default\n"
     "standard error; 'none': off)"},
    {"--log-prompts", NULL, SLM_CLI_FLAG, OFF(log_prompts), 0, 0,
     "put each request's prompt in its access log line"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Model options", slm_cli_model_opts, OFF(model)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "serve",
    .synopsis = "-m MODEL [--host ADDR] [--port N] [--parallel N] [OPTIONS]",
    .about = "Serve the model over HTTP (127.0.0.1 unless --host) with OpenAI's API: POST\n"
             "/v1/chat/completions and /v1/completions (\"stream\": true for Server-Sent\n"
             "Events), GET /v1/models and /health. Requests share batched decode steps;\n"
             "a client that disconnects frees its slot. SIGTERM or SIGINT drains: new\n"
             "requests get 503, those in flight finish (--shutdown-timeout), exit 0.\n",
    .groups = groups,
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->port = 8080;
    o->parallel = 4;
    o->batch = 512;
    o->host = "127.0.0.1";
    o->max_body = 1 << 20;
    o->max_header = 32768;
    o->idle_timeout = o->request_timeout = o->shutdown_timeout = 30;
    o->max_connections = o->queue = 64;
    o->max_tokens = 8192;
    o->max_n = 8;
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model.model)
        return slm_cli_usage_error("serve", "missing -m MODEL");
    if (o->template_name && o->template_file)
        return slm_cli_usage_error("serve", "give --chat-template or --chat-template-file, "
                                   "not both");
    if (o->model.repack && o->no_repack)
        return slm_cli_usage_error("serve", "give --repack or --no-repack, not both");
    if (o->batch < o->parallel)
        return slm_cli_usage_error("serve", "--batch %ld is smaller than --parallel %ld: "
                                   "every slot needs a token in each step", o->batch,
                                   o->parallel);
    return SLM_CLI_OK;
}

/* Each --lora NAME=FILE[:SCALE]: NAME kept (the request's model MODEL+NAME selects
 * it), FILE[:SCALE] left for the session to attach, adapter i being the i-th. */
static int lora_names(srv_t *srv, opts_t *o, const char *id)
{
    slm_cli_strs_t *l = &o->model.loras;
    if (!l->n)
        return SLM_CLI_OK;
    if (!(srv->adapter_names = calloc(l->n, sizeof *srv->adapter_names)))
        return SLM_CLI_FAILED;
    for (size_t i = 0; i < l->n; i++) {
        const char *arg = l->v[i], *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : 0;
        if (!eq || !n || strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789_.-") != n)
            return slm_cli_usage_error("serve", "--lora '%s': serve names each adapter: "
                                       "--lora NAME=FILE[:SCALE] (NAME: letters, digits, "
                                       "'_', '.', '-')", arg);
        if (asprintf(&srv->adapter_names[i], "%s+%.*s", id, (int)n, arg) < 0) {
            srv->adapter_names[i] = NULL;
            return SLM_CLI_FAILED;
        }
        srv->n_adapters = i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(srv->adapter_names[j], srv->adapter_names[i]) == 0)
                return slm_cli_usage_error("serve", "--lora: the name '%.*s' is given twice",
                                           (int)n, arg);
        l->v[i] = eq + 1;
    }
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
    gp.prompt_cache = !o->no_prompt_cache;
    if (slm_generator_new(s->model, s->tok, &gp, &s->gen, &err) != SLM_OK)
        return slm_cli_fail("serve", &err);
    return SLM_CLI_OK;
}

/* --host as a socket address, and what kind of address it is. */
static int bind_address(const opts_t *o, struct sockaddr_storage *ss, srv_guard_t *g)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, o->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)o->port);
        g->loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
        g->wildcard = a4->sin_addr.s_addr == htonl(INADDR_ANY);
        snprintf(g->bound, sizeof g->bound, "%s", o->host);
        return SLM_CLI_OK;
    }
    if (inet_pton(AF_INET6, o->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)o->port);
        g->loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        g->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
        snprintf(g->bound, sizeof g->bound, "%s", o->host);
        return SLM_CLI_OK;
    }
    return slm_cli_usage_error("serve", "--host '%s' is not a numeric IPv4 or IPv6 address "
                               "(e.g. 127.0.0.1, 0.0.0.0, ::1)", o->host);
}

/* The key, and whether this address may be served without one. */
static int setup_guard(srv_t *srv, const opts_t *o)
{
    srv_guard_t *g = &srv->guard;
    g->allowed_hosts = o->allowed_hosts.v;
    g->n_allowed_hosts = o->allowed_hosts.n;
    g->cors_origin = o->cors_origin;
    if (o->no_auth && o->api_key_file)
        return slm_cli_usage_error("serve", "give --api-key-file or --no-auth, not both");
    if (!o->no_auth && !srv_guard_load_key(g, o->api_key_file))
        return SLM_CLI_FAILED;
    if (g->loopback || g->api_key)
        return SLM_CLI_OK;
    if (!o->no_auth)
        return slm_cli_usage_error("serve", "--host %s is not a loopback address: anyone who "
                                   "reaches it could use the model; give an API key "
                                   "(--api-key-file FILE or SLMOPS_API_KEY) or --no-auth",
                                   o->host);
    fprintf(stderr, "slmops serve: warning: --no-auth: anyone who reaches %s can use the "
            "model\n", o->host);
    return SLM_CLI_OK;
}

static void set_limits(srv_t *srv, const opts_t *o)
{
    srv->limits = (srv_limits_t){
        .max_body = (size_t)o->max_body, .max_header = (unsigned)o->max_header,
        .idle_timeout_s = (unsigned)o->idle_timeout,
        .request_timeout_s = (unsigned)o->request_timeout,
        .max_connections = (unsigned)o->max_connections, .max_queue = (unsigned)o->queue,
        .max_tokens = (int32_t)o->max_tokens, .max_n = (unsigned)o->max_n,
        .shutdown_timeout_s = (unsigned)o->shutdown_timeout};
    srv->log_prompts = o->log_prompts;
}

static int open_access_log(srv_t *srv, const opts_t *o)
{
    if (!o->access_log || strcmp(o->access_log, "-") == 0) {
        srv->access_log = stderr;
        return SLM_CLI_OK;
    }
    if (strcmp(o->access_log, "none") == 0)
        return SLM_CLI_OK;
    if (!(srv->access_log = fopen(o->access_log, "ae"))) {
        fprintf(stderr, "slmops serve: --access-log %s: %s\n", o->access_log, strerror(errno));
        return SLM_CLI_FAILED;
    }
    return SLM_CLI_OK;
}

/* Wait for a signal, closing slow connections every second; the signal, or 0 after ms. */
static int wait_signal(srv_t *srv, const sigset_t *set, long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    srv_http_reap_slow(srv);
    return sig > 0 ? sig : 0;
}

/* After the signal: new requests get 503 while those in flight finish. */
static void drain(srv_t *srv, const sigset_t *set)
{
    pthread_mutex_lock(&srv->mu);
    srv->draining = true;
    size_t n = srv->n_inflight;
    pthread_mutex_unlock(&srv->mu);
    if (n)
        fprintf(stderr, "slmops serve: %zu requests in flight may finish (up to %u s)\n", n,
                srv->limits.shutdown_timeout_s);
    double deadline = srv_now_ms() + 1000.0 * srv->limits.shutdown_timeout_s;
    while (n && srv_now_ms() < deadline) {
        if (wait_signal(srv, set, 50)) {
            fprintf(stderr, "slmops serve: a second signal: stopping now\n");
            break;
        }
        pthread_mutex_lock(&srv->mu);
        n = srv->n_inflight;
        pthread_mutex_unlock(&srv->mu);
    }
    if (n)
        fprintf(stderr, "slmops serve: %zu requests did not finish in time; they end with "
                "503 or a stream error\n", n);
}

/* Serve until SIGINT, SIGTERM or SIGHUP (blocked in every thread, taken here). */
static int serve(srv_t *srv, const opts_t *o, const struct sockaddr *addr)
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
    struct MHD_Daemon *d = srv_http_start(srv, addr, &port);
    bool v6 = addr->sa_family == AF_INET6;
    if (!d) {
        fprintf(stderr, "slmops serve: cannot listen on %s%s%s:%ld (in use? try another "
                "--port)\n", v6 ? "[" : "", o->host, v6 ? "]" : "", o->port);
        srv_engine_stop(srv);
        return SLM_CLI_FAILED;
    }
    fprintf(stderr, "slmops serve: listening on http://%s%s%s:%u (model '%s', %u slots of "
            "%u tokens%s)\n", v6 ? "[" : "", o->host, v6 ? "]" : "", port, srv->model_id,
            slm_generator_n_slots(srv->s->gen), slm_generator_n_ctx_slot(srv->s->gen),
            srv->guard.api_key ? ", API key required" : "");
    int sig;
    while (!(sig = wait_signal(srv, &set, 1000))) {
    }
    fprintf(stderr, "slmops serve: %s: stopping\n", strsignal(sig));
    drain(srv, &set);
    srv_engine_stop(srv);   /* requests still running end as 503 / a stream error */
    srv_http_stop(srv, d);
    return SLM_CLI_OK;
}

int slm_cli_serve(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    char why[512];
    if (!slm_mhd_open(why, sizeof why)) {   /* before the model: fail in a moment */
        fprintf(stderr, "slmops serve: %s\n", why);
        return SLM_CLI_FAILED;
    }
    slm_cli_session_t s = {0};
    srv_t srv = {.s = &s, .created = (int64_t)time(NULL)};
    struct sockaddr_storage addr;
    set_limits(&srv, &o);
    rc = bind_address(&o, &addr, &srv.guard);
    if (rc == SLM_CLI_OK)
        rc = setup_guard(&srv, &o);
    if (rc == SLM_CLI_OK)
        rc = open_access_log(&srv, &o);
    if (rc != SLM_CLI_OK) {
        free(srv.guard.api_key);
        return rc;
    }
    slm_cli_alias_t alias;   /* -m ALIAS: its file, adapters (named ones too), template */
    rc = slm_cli_alias_resolve("serve", &o.model, true, &alias);
    if (rc != SLM_CLI_OK) {
        slm_cli_alias_free(&alias);
        free(srv.guard.api_key);
        if (srv.access_log && srv.access_log != stderr)
            fclose(srv.access_log);
        return rc;
    }
    if (alias.name && !o.alias)
        o.alias = alias.name;
    if (alias.chat_template && !o.template_name && !o.template_file)
        o.template_name = alias.chat_template;
    char *id = model_id(&o);
    srv.model_id = id;
    rc = id ? lora_names(&srv, &o, id) : SLM_CLI_FAILED;
    o.model.repack = !o.no_repack;
    if (rc == SLM_CLI_OK)
        rc = slm_cli_session_open(&s, &o.model, false, "serve");
    if (rc == SLM_CLI_OK)
        rc = open_generator(&s, &o);
    if (rc == SLM_CLI_OK)
        rc = open_template(&srv, &o);
    if (rc == SLM_CLI_OK) {
        srv.n_slots = slm_generator_n_slots(s.gen);
        pthread_mutex_init(&srv.mu, NULL);
        pthread_cond_init(&srv.wake, NULL);
        pthread_cond_init(&srv.embed_done, NULL);
        rc = serve(&srv, &o, (const struct sockaddr *)&addr);
        pthread_cond_destroy(&srv.embed_done);
        pthread_cond_destroy(&srv.wake);
        slm_context_free(srv.embed_ctx);
        pthread_mutex_destroy(&srv.mu);
    }
    if (srv.have_template)
        slm_cli_prompt_close(&srv.chat);
    slm_cli_session_close(&s);
    free(id);
    for (size_t i = 0; i < srv.n_adapters; i++)
        free(srv.adapter_names[i]);
    free(srv.adapter_names);
    slm_cli_alias_free(&alias);
    free(srv.guard.api_key);
    if (srv.access_log && srv.access_log != stderr)
        fclose(srv.access_log);
    return rc;
}

/* The HTTP side of `slmops serve` on libmicrohttpd: loopback only, a thread per
 * connection, bodies read up to a limit, routes to /health, /v1/models and generation. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cli/serve/serve.h"

/* What one request's calls of the handler share. */
typedef struct conn {
    char *body;
    size_t len, cap;
    bool too_large;
} conn_t;

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text,
                                 const char *type)
{
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Takes the reference to doc. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return send_text(c, status, text, "application/json");
}

static enum MHD_Result send_error(struct MHD_Connection *c, const srv_error_t *e)
{
    return send_json(c, e->status, srv_error_json(e));
}

static enum MHD_Result fail(struct MHD_Connection *c, unsigned status, const char *type,
                            const char *code, const char *message)
{
    srv_error_t e;
    srv_error_set(&e, status, type, NULL, code, "%s", message);
    return send_error(c, &e);
}

/* A non-streamed answer: wait for the end, watching for the client leaving. */
static enum MHD_Result answer(srv_t *srv, struct MHD_Connection *c, srv_req_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    pthread_mutex_lock(&srv->mu);
    while (!r->done) {
        srv_wait_ms(&r->cv, &srv->mu, 100);
        if (!r->done && srv_peer_closed(fd)) {
            srv_req_abandon(srv, r);
            srv_req_unref(r);
            pthread_mutex_unlock(&srv->mu);
            return MHD_NO;
        }
    }
    json_t *doc = srv_finish_reason(r->why) ? srv_response_json(srv, r) : NULL;
    slm_seq_stop_t why = r->why;
    srv_req_unref(r);
    pthread_mutex_unlock(&srv->mu);
    if (doc)
        return send_json(c, MHD_HTTP_OK, doc);
    if (why == SLM_SEQ_CANCELLED)
        return fail(c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL,
                    "the server is shutting down");
    return fail(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "generation failed");
}

static enum MHD_Result generate(srv_t *srv, struct MHD_Connection *c, const conn_t *st,
                                srv_kind_t kind)
{
    srv_req_t *r = srv_req_new(kind);
    if (!r)
        return fail(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
    srv_error_t e;
    if (!srv_parse_request(srv, st->body ? st->body : "", st->len, r, &e)) {
        srv_req_unref(r);
        return send_error(c, &e);
    }
    if (!srv_engine_submit(srv, r)) {
        srv_req_unref(r);
        return fail(c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL,
                    "the server is busy (its queue is full) or shutting down; retry later");
    }
    if (!r->stream)
        return answer(srv, c, r);
    struct MHD_Response *resp = srv_stream_response(srv, r, c);
    if (!resp) {
        pthread_mutex_lock(&srv->mu);
        srv_req_abandon(srv, r);
        srv_req_unref(r);
        pthread_mutex_unlock(&srv->mu);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Each route: its path and the one method it answers. */
typedef enum route { R_HEALTH, R_MODELS, R_CHAT, R_COMPLETIONS, R_NONE } route_t;
static const struct {
    const char *path, *method;
} routes[] = {
    [R_HEALTH] = {"/health", "GET"},
    [R_MODELS] = {"/v1/models", "GET"},
    [R_CHAT] = {"/v1/chat/completions", "POST"},
    [R_COMPLETIONS] = {"/v1/completions", "POST"},
};

static route_t find_route(const char *url)
{
    for (int i = 0; i < R_NONE; i++)
        if (strcmp(url, routes[i].path) == 0)
            return (route_t)i;
    return R_NONE;
}

static enum MHD_Result dispatch(srv_t *srv, struct MHD_Connection *c, const char *url,
                                const char *method, const conn_t *st)
{
    route_t rt = find_route(url);
    if (rt == R_NONE)
        return fail(c, MHD_HTTP_NOT_FOUND, "invalid_request_error", "not_found",
                    "no such endpoint (see /v1/models, /v1/chat/completions, /v1/completions, "
                    "/health)");
    if (strcmp(method, routes[rt].method) != 0) {
        srv_error_t e;
        srv_error_set(&e, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                      "%s takes %s, not %.16s", routes[rt].path, routes[rt].method, method);
        return send_error(c, &e);
    }
    if (st->too_large) {
        srv_error_t e;
        srv_error_set(&e, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", NULL,
                      "request_too_large", "the request body is larger than %u bytes",
                      SRV_MAX_BODY);
        return send_error(c, &e);
    }
    switch (rt) {
    case R_HEALTH:
        return send_json(c, MHD_HTTP_OK, srv_health_json(srv));
    case R_MODELS:
        return send_json(c, MHD_HTTP_OK, srv_models_json(srv));
    case R_CHAT:
        return generate(srv, c, st, SRV_CHAT);
    default:
        return generate(srv, c, st, SRV_COMPLETION);
    }
}

static bool body_append(conn_t *st, const char *data, size_t n)
{
    if (st->too_large || st->len + n > SRV_MAX_BODY) {
        st->too_large = true;
        return true;   /* read and dropped: the answer is a 413 */
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 4096;
        while (cap < st->len + n + 1)
            cap *= 2;
        char *v = realloc(st->body, cap);
        if (!v)
            return false;
        st->body = v;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, n);
    st->len += n;
    st->body[st->len] = '\0';
    return true;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    srv_t *srv = cls;
    conn_t *st = *con_cls;
    if (!st) {   /* headers only, so far */
        if (!(st = calloc(1, sizeof *st)))
            return MHD_NO;
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        st->too_large = cl && strtoull(cl, NULL, 10) > SRV_MAX_BODY;
        return MHD_YES;
    }
    if (*upload_size) {
        bool ok = body_append(st, upload_data, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    return dispatch(srv, c, url, method, st);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn_t *st = *con_cls;
    if (st)
        free(st->body);
    free(st);
    *con_cls = NULL;
}

struct MHD_Daemon *srv_http_start(srv_t *srv, unsigned port, unsigned *bound)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handler, srv, MHD_OPTION_SOCK_ADDR, &a,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)SRV_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SRV_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, completed, srv, MHD_OPTION_END);
    if (!d)
        return NULL;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = di ? di->port : port;
    return d;
}

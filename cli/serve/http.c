/* The HTTP side of `slmops serve` on libmicrohttpd: a thread per connection, who may
 * ask checked (key, Host), bodies read up to a limit, routes, one log line a request. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/dlopen/mhd.h"

#include "cli/serve/serve.h"

/* One open connection, watched for the request timeout. */
typedef struct sconn {
    int fd;
    double receiving_since;    /* ms: waiting for a request's headers and body; 0: not */
    bool cut;
    struct sconn *next;
} sconn_t;

typedef struct conns {
    pthread_mutex_t mu;
    sconn_t *head;
} conns_t;

/* What one request's calls of the handler share. */
typedef struct conn {
    srv_t *srv;
    char *body;
    size_t len, cap;
    bool too_large;
    srv_error_t refused;       /* status 0: not refused before its body */
    const char *retry_after;
    srv_record_t rec;
    bool inflight;             /* counted in srv->n_inflight */
    char method[16], path[128];
} conn_t;

static void add_cors(const srv_t *srv, struct MHD_Connection *c, struct MHD_Response *resp)
{
    const char *want = srv->guard.cors_origin;
    const char *origin = slm_mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!want || !origin || (strcmp(want, "*") != 0 && strcmp(want, origin) != 0))
        return;
    slm_mhd.MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    slm_mhd.MHD_add_response_header(resp, "Vary", "Origin");
}

/* Queue resp with the status (kept for the log) and the headers every answer gets. */
static enum MHD_Result queue(conn_t *st, struct MHD_Connection *c, unsigned status,
                             struct MHD_Response *resp)
{
    add_cors(st->srv, c, resp);
    if (st->retry_after)
        slm_mhd.MHD_add_response_header(resp, "Retry-After", st->retry_after);
    if (status == MHD_HTTP_UNAUTHORIZED)
        slm_mhd.MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    st->rec.status = status;
    enum MHD_Result ret = slm_mhd.MHD_queue_response(c, status, resp);
    slm_mhd.MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_text(conn_t *st, struct MHD_Connection *c, unsigned status,
                                 char *text, const char *type)
{
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        slm_mhd.MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    slm_mhd.MHD_add_response_header(resp, "Content-Type", type);
    return queue(st, c, status, resp);
}

/* Takes the reference to doc. */
static enum MHD_Result send_json(conn_t *st, struct MHD_Connection *c, unsigned status,
                                 json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return send_text(st, c, status, text, "application/json");
}

static enum MHD_Result send_error(conn_t *st, struct MHD_Connection *c, const srv_error_t *e)
{
    return send_json(st, c, e->status, srv_error_json(e));
}

static enum MHD_Result fail(conn_t *st, struct MHD_Connection *c, unsigned status,
                            const char *type, const char *code, const char *message)
{
    srv_error_t e;
    srv_error_set(&e, status, type, NULL, code, "%s", message);
    return send_error(st, c, &e);
}

/* A non-streamed answer: wait for the end, watching for the client leaving. */
static enum MHD_Result answer(conn_t *st, struct MHD_Connection *c, srv_req_t *r)
{
    srv_t *srv = st->srv;
    const union MHD_ConnectionInfo *ci =
        slm_mhd.MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    pthread_mutex_lock(&srv->mu);
    while (!srv_req_done(r)) {
        srv_wait_ms(&r->cv, &srv->mu, 100);
        if (!srv_req_done(r) && srv_peer_closed(fd)) {
            srv_req_abandon(srv, r);
            srv_req_unref(r);
            pthread_mutex_unlock(&srv->mu);
            st->rec.status = 499;   /* nginx's "client closed request", for the log */
            return MHD_NO;
        }
    }
    slm_seq_stop_t why = SLM_SEQ_EOS;
    for (size_t i = 0; i < r->n_choices; i++)
        if (!srv_finish_reason(r->choices[i].why))
            why = r->choices[i].why;
    json_t *doc = srv_finish_reason(why) ? srv_response_json(srv, r) : NULL;
    srv_req_unref(r);
    pthread_mutex_unlock(&srv->mu);
    if (doc)
        return send_json(st, c, MHD_HTTP_OK, doc);
    if (why == SLM_SEQ_CANCELLED)
        return fail(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL,
                    "the server is shutting down");
    return fail(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL,
                "generation failed");
}

/* Queue r unless the server is draining or its queue is full. */
static bool submit(conn_t *st, struct MHD_Connection *c, srv_req_t *r, enum MHD_Result *ret)
{
    srv_t *srv = st->srv;
    srv_submit_t got = srv_engine_submit(srv, r);
    if (got == SRV_SUBMITTED)
        return true;
    srv_req_unref(r);
    if (got == SRV_DRAINING) {
        *ret = fail(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL,
                    "the server is shutting down");
        return false;
    }
    st->retry_after = "1";
    srv_error_t e;
    srv_error_set(&e, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limit_error", NULL,
                  "rate_limit_exceeded", "the server is busy: %u requests are waiting "
                  "already; retry later", srv->limits.max_queue);
    *ret = send_error(st, c, &e);
    return false;
}

static enum MHD_Result generate(conn_t *st, struct MHD_Connection *c, srv_kind_t kind)
{
    srv_t *srv = st->srv;
    srv_req_t *r = srv_req_new(kind);
    if (!r)
        return fail(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL,
                    "out of memory");
    srv_error_t e;
    if (!srv_parse_request(srv, st->body ? st->body : "", st->len, r, &e)) {
        srv_req_unref(r);
        return send_error(st, c, &e);
    }
    memcpy(st->rec.id, r->id, sizeof r->id);
    enum MHD_Result ret = MHD_NO;
    if (!submit(st, c, r, &ret))
        return ret;
    pthread_mutex_lock(&srv->mu);
    r->refs++;   /* the log's, let go when the connection completes the request */
    pthread_mutex_unlock(&srv->mu);
    st->rec.req = r;
    st->inflight = true;
    if (!r->stream)
        return answer(st, c, r);
    struct MHD_Response *resp = srv_stream_response(srv, r, c);
    if (!resp) {
        pthread_mutex_lock(&srv->mu);
        srv_req_abandon(srv, r);
        srv_req_unref(r);
        pthread_mutex_unlock(&srv->mu);
        return MHD_NO;
    }
    return queue(st, c, MHD_HTTP_OK, resp);
}

static enum MHD_Result embeddings(conn_t *st, struct MHD_Connection *c)
{
    srv_error_t e = {0};
    json_t *doc = srv_embeddings(st->srv, st->body ? st->body : "", st->len, &e);
    return doc ? send_json(st, c, MHD_HTTP_OK, doc) : send_error(st, c, &e);
}

/* The chat page: its script and style are inline and it talks to this server only. */
static enum MHD_Result page(conn_t *st, struct MHD_Connection *c)
{
    struct MHD_Response *resp = slm_mhd.MHD_create_response_from_buffer(
        srv_page_len, (void *)srv_page_html, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    slm_mhd.MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    slm_mhd.MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src "
                            "'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'");
    slm_mhd.MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    return queue(st, c, MHD_HTTP_OK, resp);
}

/* Each route: its path and the one method it answers. */
typedef enum route {
    R_HEALTH, R_MODELS, R_CHAT, R_COMPLETIONS, R_EMBEDDINGS, R_METRICS, R_PAGE, R_NONE
} route_t;
static const struct {
    const char *path, *method;
} routes[] = {
    [R_HEALTH] = {"/health", "GET"},
    [R_MODELS] = {"/v1/models", "GET"},
    [R_CHAT] = {"/v1/chat/completions", "POST"},
    [R_COMPLETIONS] = {"/v1/completions", "POST"},
    [R_EMBEDDINGS] = {"/v1/embeddings", "POST"},
    [R_METRICS] = {"/metrics", "GET"},
    [R_PAGE] = {"/", "GET"},
};

static route_t find_route(const char *url)
{
    for (int i = 0; i < R_NONE; i++)
        if (strcmp(url, routes[i].path) == 0)
            return (route_t)i;
    return R_NONE;
}

/* A CORS preflight for the allowed origin. */
static enum MHD_Result preflight(conn_t *st, struct MHD_Connection *c)
{
    struct MHD_Response *resp = slm_mhd.MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    slm_mhd.MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    slm_mhd.MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type");
    slm_mhd.MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    return queue(st, c, MHD_HTTP_NO_CONTENT, resp);
}

/* Before the body: whether the request may be answered at all (its refusal, if
 * not, waits for the body to be read so that the client reads the answer). */
static void screen(conn_t *st, struct MHD_Connection *c, const char *url, const char *method)
{
    srv_t *srv = st->srv;
    srv_error_t *e = &st->refused;
    const char *host = slm_mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!host) {
        srv_error_set(e, MHD_HTTP_BAD_REQUEST, "invalid_request_error", NULL, NULL,
                      "the request has no Host header");
        return;
    }
    if (!srv_guard_host_ok(&srv->guard, host)) {
        srv_error_set(e, MHD_HTTP_FORBIDDEN, "invalid_request_error", NULL, "host_not_allowed",
                      "the Host header '%.64s' does not name this server (start it with "
                      "--allowed-host NAME)", host ? host : "");
        return;
    }
    route_t rt = find_route(url);
    bool is_preflight = strcmp(method, "OPTIONS") == 0 && srv->guard.cors_origin;
    /* The page asks for the key itself; /health is for probes. */
    if (!is_preflight && rt != R_HEALTH && rt != R_PAGE &&
        !srv_guard_authorized(&srv->guard, slm_mhd.MHD_lookup_connection_value(
                                  c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))) {
        srv_error_set(e, MHD_HTTP_UNAUTHORIZED, "invalid_request_error", NULL,
                      "invalid_api_key", "Incorrect or missing API key: send the header "
                      "'Authorization: Bearer KEY'");
        return;
    }
    if (rt == R_NONE) {
        srv_error_set(e, MHD_HTTP_NOT_FOUND, "invalid_request_error", NULL, "not_found",
                      "no such endpoint (see /v1/models, /v1/chat/completions, "
                      "/v1/completions, /v1/embeddings, /health, /metrics)");
        return;
    }
    if (!is_preflight && strcmp(method, routes[rt].method) != 0) {
        srv_error_set(e, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                      "%s takes %s, not %.16s", routes[rt].path, routes[rt].method, method);
        return;
    }
    pthread_mutex_lock(&srv->mu);
    bool draining = srv->draining;
    pthread_mutex_unlock(&srv->mu);
    if (draining)
        srv_error_set(e, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL, NULL,
                      "the server is shutting down");
    const char *cl = slm_mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    st->too_large = cl && strtoull(cl, NULL, 10) > srv->limits.max_body;
}

static enum MHD_Result dispatch(conn_t *st, struct MHD_Connection *c, const char *url,
                                const char *method)
{
    srv_t *srv = st->srv;
    if (st->refused.status)
        return send_error(st, c, &st->refused);
    if (strcmp(method, "OPTIONS") == 0)
        return preflight(st, c);
    if (st->too_large) {
        srv_error_t e;
        srv_error_set(&e, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", NULL,
                      "request_too_large", "the request body is larger than %zu bytes",
                      srv->limits.max_body);
        return send_error(st, c, &e);
    }
    switch (find_route(url)) {
    case R_HEALTH:
        return send_json(st, c, MHD_HTTP_OK, srv_health_json(srv));
    case R_MODELS:
        return send_json(st, c, MHD_HTTP_OK, srv_models_json(srv));
    case R_PAGE:
        return page(st, c);
    case R_METRICS:
        return send_text(st, c, MHD_HTTP_OK, srv_metrics_text(srv),
                         "text/plain; version=0.0.4; charset=utf-8");
    case R_EMBEDDINGS:
        return embeddings(st, c);
    case R_CHAT:
        return generate(st, c, SRV_CHAT);
    default:
        return generate(st, c, SRV_COMPLETION);
    }
}

static bool body_append(conn_t *st, const char *data, size_t n)
{
    if (st->refused.status)
        return true;   /* read and dropped: the refusal is the answer */
    if (st->too_large || st->len + n > st->srv->limits.max_body) {
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

static sconn_t *socket_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        slm_mhd.MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_receiving(srv_t *srv, struct MHD_Connection *c, double since)
{
    conns_t *cs = srv->conns;
    sconn_t *sc = socket_of(c);
    if (!sc)
        return;
    pthread_mutex_lock(&cs->mu);
    sc->receiving_since = since;
    pthread_mutex_unlock(&cs->mu);
}

static void remote_of(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        slm_mhd.MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *a = ci ? ci->client_addr : NULL;
    snprintf(out, cap, "?");
    if (a && a->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)a)->sin_addr, out,
                  (socklen_t)cap);
    else if (a && a->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)a)->sin6_addr, out,
                  (socklen_t)cap);
}

static conn_t *conn_new(srv_t *srv, struct MHD_Connection *c, const char *url,
                        const char *method)
{
    conn_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->srv = srv;
    snprintf(st->method, sizeof st->method, "%s", method);
    snprintf(st->path, sizeof st->path, "%s", url);
    st->rec = (srv_record_t){.method = st->method, .path = st->path,
                             .t_start = srv_now_ms()};
    snprintf(st->rec.id, sizeof st->rec.id, "req-%llu",
             (unsigned long long)__atomic_add_fetch(&srv->n_ids, 1, __ATOMIC_RELAXED));
    remote_of(c, st->rec.remote, sizeof st->rec.remote);
    return st;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    srv_t *srv = cls;
    conn_t *st = *con_cls;
    if (!st) {   /* headers only, so far */
        if (!(st = conn_new(srv, c, url, method)))
            return MHD_NO;
        *con_cls = st;
        screen(st, c, url, method);
        return MHD_YES;
    }
    if (*upload_size) {
        bool ok = body_append(st, upload_data, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    set_receiving(srv, c, 0);
    return dispatch(st, c, url, method);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    srv_t *srv = cls;
    conn_t *st = *con_cls;
    *con_cls = NULL;
    set_receiving(srv, c, srv_now_ms());   /* the next request on this connection */
    if (!st)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && st->rec.status == 200 &&
        st->rec.req && st->rec.req->stream)
        st->rec.status = 499;   /* the stream did not reach its end */
    if (!st->rec.status)
        st->rec.status = 499;
    pthread_mutex_lock(&srv->mu);
    if (st->rec.status < 600)
        srv->metrics.by_status[st->rec.status]++;
    srv_log_request(srv, &st->rec, srv_now_ms());
    srv_req_unref(st->rec.req);
    if (st->inflight)
        srv->n_inflight--;
    pthread_mutex_unlock(&srv->mu);
    free(st->body);
    free(st);
}

/* ---- connections and the request timeout ---- */

static void notify(void *cls, struct MHD_Connection *c, void **socket_context,
                   enum MHD_ConnectionNotificationCode code)
{
    srv_t *srv = cls;
    conns_t *cs = srv->conns;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            slm_mhd.MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        sconn_t *sc = calloc(1, sizeof *sc);
        if (!sc || !ci) {
            free(sc);
            return;
        }
        sc->fd = ci->connect_fd;
        sc->receiving_since = srv_now_ms();
        pthread_mutex_lock(&cs->mu);
        sc->next = cs->head;
        cs->head = sc;
        pthread_mutex_unlock(&cs->mu);
        *socket_context = sc;
        return;
    }
    sconn_t *sc = *socket_context;
    if (!sc)
        return;
    pthread_mutex_lock(&cs->mu);   /* before MHD closes the socket */
    for (sconn_t **p = &cs->head; *p; p = &(*p)->next)
        if (*p == sc) {
            *p = sc->next;
            break;
        }
    pthread_mutex_unlock(&cs->mu);
    free(sc);
    *socket_context = NULL;
}

void srv_http_reap_slow(srv_t *srv)
{
    conns_t *cs = srv->conns;
    double now = srv_now_ms(), limit = 1000.0 * srv->limits.request_timeout_s;
    pthread_mutex_lock(&cs->mu);
    for (sconn_t *sc = cs->head; sc; sc = sc->next)
        if (!sc->cut && sc->receiving_since && now - sc->receiving_since > limit) {
            sc->cut = true;   /* its thread sees the end of the stream and closes it */
            shutdown(sc->fd, SHUT_RDWR);
        }
    pthread_mutex_unlock(&cs->mu);
}

struct MHD_Daemon *srv_http_start(srv_t *srv, const struct sockaddr *addr, unsigned *bound)
{
    conns_t *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    pthread_mutex_init(&cs->mu, NULL);
    srv->conns = cs;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | (addr->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    const srv_limits_t *l = &srv->limits;
    uint16_t port = ntohs(addr->sa_family == AF_INET6
                              ? ((const struct sockaddr_in6 *)(const void *)addr)->sin6_port
                              : ((const struct sockaddr_in *)(const void *)addr)->sin_port);
    struct MHD_Daemon *d = slm_mhd.MHD_start_daemon(
        flags, port, NULL, NULL, handler, srv, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_CONNECTION_LIMIT, l->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, l->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)l->max_header,
        MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, notify, srv, MHD_OPTION_END);
    if (!d) {
        pthread_mutex_destroy(&cs->mu);
        free(cs);
        srv->conns = NULL;
        return NULL;
    }
    const union MHD_DaemonInfo *di = slm_mhd.MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = di ? di->port : port;
    return d;
}

void srv_http_stop(srv_t *srv, struct MHD_Daemon *d)
{
    slm_mhd.MHD_stop_daemon(d);
    conns_t *cs = srv->conns;
    if (!cs)
        return;
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    srv->conns = NULL;
}

/* Streamed answers of `slmops serve`: Server-Sent Events, one `data: {chunk}` per
 * batch of new text, the finish reason last, then `data: [DONE]`. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cli/serve/serve.h"

typedef struct stream {
    srv_t *srv;
    srv_req_t *r;
    int fd;
    char *buf;                 /* events formatted, not yet handed to MHD: [off, len) */
    size_t len, off, cap;
    bool started, finished;
} stream_t;

static bool put(stream_t *st, const char *s, size_t n)
{
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 4096;
        while (cap < st->len + n)
            cap *= 2;
        char *v = realloc(st->buf, cap);
        if (!v)
            return false;
        st->buf = v;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
    return true;
}

/* `data: JSON\n\n`; takes the reference to doc. */
static bool event(stream_t *st, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    bool ok = text && put(st, "data: ", 6) && put(st, text, strlen(text)) && put(st, "\n\n", 2);
    free(text);
    return ok;
}

/* The end: finish reason (or an error event), usage if asked, [DONE]. */
static bool ending(stream_t *st, slm_seq_stop_t why)
{
    const srv_req_t *r = st->r;
    if (!srv_finish_reason(why)) {
        srv_error_t e;
        srv_error_set(&e, 500, "server_error", NULL, NULL, "generation failed (%s)",
                      slm_seq_stop_name(why));
        return event(st, srv_error_json(&e)) && put(st, "data: [DONE]\n\n", 14);
    }
    return event(st, srv_chunk_json(st->srv, r, "", 0, false, why)) &&
           (!r->include_usage || event(st, srv_usage_chunk_json(st->srv, r))) &&
           put(st, "data: [DONE]\n\n", 14);
}

/* Wait for new text or the end; format what came. false: the client left or out
 * of memory. */
static bool produce(stream_t *st)
{
    srv_t *srv = st->srv;
    srv_req_t *r = st->r;
    st->len = st->off = 0;
    pthread_mutex_lock(&srv->mu);
    bool first_now = !st->started && r->kind == SRV_CHAT;
    while (!first_now && !r->done && r->sent == r->len) {
        srv_wait_ms(&r->cv, &srv->mu, 100);
        if (!r->done && srv_peer_closed(st->fd)) {
            srv_req_abandon(srv, r);
            pthread_mutex_unlock(&srv->mu);
            return false;
        }
    }
    size_t from = r->sent, n = r->len - r->sent;
    char *text = n ? strndup(r->text + from, n) : NULL;
    r->sent = r->len;
    bool done = r->done;
    slm_seq_stop_t why = r->why;
    pthread_mutex_unlock(&srv->mu);
    if (n && !text)
        return false;
    /* A chat stream opens with the role and empty content, as OpenAI's does. */
    bool ok = !first_now || event(st, srv_chunk_json(srv, r, "", 0, true, SLM_SEQ_NOT_STOPPED));
    if (ok && n)
        ok = event(st, srv_chunk_json(srv, r, text, n, !st->started && !first_now,
                                      SLM_SEQ_NOT_STOPPED));
    st->started = true;
    free(text);
    if (ok && done) {
        ok = ending(st, why);
        st->finished = true;
    }
    return ok;
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    stream_t *st = cls;
    (void)pos;
    while (st->off == st->len) {
        if (st->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!produce(st))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(out, st->buf + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

/* The response is gone (sent, or the connection closed): let go of the request. */
static void release(void *cls)
{
    stream_t *st = cls;
    pthread_mutex_lock(&st->srv->mu);
    srv_req_abandon(st->srv, st->r);
    srv_req_unref(st->r);
    pthread_mutex_unlock(&st->srv->mu);
    free(st->buf);
    free(st);
}

struct MHD_Response *srv_stream_response(srv_t *srv, srv_req_t *r, struct MHD_Connection *conn)
{
    stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *st = (stream_t){.srv = srv, .r = r, .fd = ci ? ci->connect_fd : -1};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, st, release);
    if (!resp) {
        free(st);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return resp;
}

/* Streamed answers of `slmops serve`: Server-Sent Events, one `data: {chunk}` per
 * batch of new text, the finish reason last, then `data: [DONE]`. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli/dlopen/mhd.h"

#include "cli/serve/serve.h"

typedef struct stream {
    srv_t *srv;
    srv_req_t *r;
    int fd;
    char *buf;                 /* events formatted, not yet handed to MHD: [off, len) */
    size_t len, off, cap;
    bool started, finished;
    json_t *pending;           /* events made under the lock, written after it */
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

/* `data: JSON\n\n` for each pending event. */
static bool write_events(stream_t *st)
{
    bool ok = st->pending != NULL;
    size_t i;
    json_t *doc;
    json_array_foreach(st->pending, i, doc) {
        char *text = ok ? json_dumps(doc, JSON_COMPACT) : NULL;
        ok = text && put(st, "data: ", 6) && put(st, text, strlen(text)) && put(st, "\n\n", 2);
        free(text);
    }
    json_array_clear(st->pending);
    return ok;
}

static void add(stream_t *st, json_t *doc)
{
    json_array_append_new(st->pending, doc ? doc : json_null());
}

/* Under the lock: whether c has something to send. With log-probabilities, text
 * waits for its tokens' (they come at the end of the step that made the text). */
static bool ready(const srv_choice_t *c)
{
    if (c->req->top_logprobs >= 0 && !c->done)
        return c->n_lp > c->lp_sent;
    return c->sent < c->len || c->lp_sent < c->n_lp;
}

/* Under the lock: the chunks of choice c with what it has that the client has not. */
static void choice_events(stream_t *st, srv_choice_t *c, bool first)
{
    srv_t *srv = st->srv;
    if (first && st->r->kind == SRV_CHAT)   /* a chat stream opens with the role */
        add(st, srv_chunk_json(srv, c, "", 0, 0, 0, true, SLM_SEQ_NOT_STOPPED));
    if (!ready(c))
        return;
    size_t n = c->len - c->sent;
    bool chat = st->r->kind == SRV_CHAT;
    if (n || c->n_lp > c->lp_sent)
        add(st, srv_chunk_json(srv, c, c->text ? c->text + c->sent : "", n, c->lp_sent,
                               c->n_lp, first && !chat, SLM_SEQ_NOT_STOPPED));
    c->sent = c->len;
    c->lp_sent = c->n_lp;
}

/* Under the lock, once every choice is done: finish reasons (or an error event),
 * usage if asked, [DONE]. */
static bool ending(stream_t *st)
{
    const srv_req_t *r = st->r;
    for (size_t i = 0; i < r->n_choices; i++) {
        const srv_choice_t *c = &r->choices[i];
        if (!srv_finish_reason(c->why)) {
            srv_error_t e;
            srv_error_set(&e, 500, "server_error", NULL, NULL, "generation failed (%s)",
                          slm_seq_stop_name(c->why));
            add(st, srv_error_json(&e));
            return false;
        }
    }
    for (size_t i = 0; i < r->n_choices; i++)
        add(st, srv_chunk_json(st->srv, &r->choices[i], "", 0, 0, 0, false, r->choices[i].why));
    if (r->include_usage)
        add(st, srv_usage_chunk_json(st->srv, r));
    return true;
}

static bool anything_new(const srv_req_t *r)
{
    for (size_t i = 0; i < r->n_choices; i++)
        if (ready(&r->choices[i]))
            return true;
    return false;
}

/* Wait for new text or the end; format what came. false: the client left or out
 * of memory. */
static bool produce(stream_t *st)
{
    srv_t *srv = st->srv;
    srv_req_t *r = st->r;
    st->len = st->off = 0;
    pthread_mutex_lock(&srv->mu);
    bool first = !st->started;
    while (!first && !srv_req_done(r) && !anything_new(r)) {
        srv_wait_ms(&r->cv, &srv->mu, 100);
        if (!srv_req_done(r) && srv_peer_closed(st->fd)) {
            srv_req_abandon(srv, r);
            pthread_mutex_unlock(&srv->mu);
            return false;
        }
    }
    for (size_t i = 0; i < r->n_choices; i++)
        choice_events(st, &r->choices[i], first);
    st->started = true;
    bool done = srv_req_done(r);
    if (done)
        ending(st);
    pthread_mutex_unlock(&srv->mu);
    bool ok = write_events(st);
    if (ok && done) {
        ok = put(st, "data: [DONE]\n\n", 14);
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
    json_decref(st->pending);
    free(st->buf);
    free(st);
}

struct MHD_Response *srv_stream_response(srv_t *srv, srv_req_t *r, struct MHD_Connection *conn)
{
    stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        slm_mhd.MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *st = (stream_t){.srv = srv, .r = r, .fd = ci ? ci->connect_fd : -1,
                     .pending = json_array()};
    struct MHD_Response *resp =
        slm_mhd.MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, st, release);
    if (!resp) {
        json_decref(st->pending);
        free(st);
        return NULL;
    }
    slm_mhd.MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    slm_mhd.MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return resp;
}

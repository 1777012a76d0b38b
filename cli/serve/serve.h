/* Inside `slmops serve`: the server, its requests, and the engine thread that owns
 * the model and steps every request's sequence together (the files of cli/serve/). */
#ifndef SLMOPS_CLI_SERVE_H
#define SLMOPS_CLI_SERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <slmops/generation.h>

#include "cli/chat.h"
#include "cli/session.h"

/* Documented limits (docs/slmops.1). */
#define SRV_MAX_BODY (1u << 20)        /* request body bytes; more: 413 */
#define SRV_MAX_STOP 4                 /* stop strings, as OpenAI allows */
#define SRV_MAX_QUEUE 64               /* requests waiting for a slot; more: 503 */
#define SRV_MAX_CONNECTIONS 64
#define SRV_IDLE_TIMEOUT_S 60

typedef enum srv_kind { SRV_CHAT, SRV_COMPLETION } srv_kind_t;

/* One generation request, shared by the HTTP thread that made it and the engine
 * thread that runs it; the server's lock guards the fields after `shared`. */
typedef struct srv_req {
    srv_kind_t kind;
    bool stream, include_usage;
    char id[40];               /* chatcmpl-... / cmpl-..., the same in every chunk */
    int64_t created;
    int32_t *prompt;
    size_t n_prompt;
    slm_sampler_params_t sampling;
    char *stop[SRV_MAX_STOP];
    size_t n_stop;
    int32_t max_tokens;        /* -1: until the end of the text or a full slot */
    /* shared */
    pthread_cond_t cv;         /* new text, or done */
    char *text;                /* generated so far */
    size_t len, cap;
    size_t sent;               /* bytes of text a stream has sent */
    bool done;
    slm_seq_stop_t why;
    size_t n_gen;
    bool gone;                 /* the client left: the engine drops it */
    int refs;                  /* HTTP side + engine side */
    slm_seq_t *seq;            /* engine side only */
    struct srv *srv;
    struct srv_req *next;      /* in the queue or the running list */
} srv_req_t;

typedef struct srv {
    slm_cli_session_t *s;      /* model, tokenizer; its generator belongs to the engine */
    slm_cli_prompt_t chat;     /* the chat template */
    bool have_template;
    const char *model_id;      /* what /v1/models lists and requests name */
    int64_t created;
    pthread_mutex_t mu;
    pthread_cond_t wake;       /* the engine: a new request, a client gone, or stop */
    srv_req_t *queue, *queue_tail, *running;
    size_t n_queued, n_running;
    uint32_t n_slots;
    bool stopping;
    uint64_t n_ids;
    pthread_t thread;
} srv_t;

/* ---- requests (request.c) ---- */

srv_req_t *srv_req_new(srv_kind_t kind);
/* Drop one reference (the caller holds the lock); the last frees the request. */
void srv_req_unref(srv_req_t *r);
/* Under the lock: the client left; the engine frees its slot at the next step. */
void srv_req_abandon(srv_t *srv, srv_req_t *r);
/* Whether the peer of connection fd has closed it. */
bool srv_peer_closed(int fd);
/* Under the lock: wait on cv for at most ms milliseconds. */
void srv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms);

/* ---- the engine (engine.c) ---- */

int srv_engine_start(srv_t *srv);
void srv_engine_stop(srv_t *srv);
/* Queue r (its prompt set); false when the queue is full. Takes a reference. */
bool srv_engine_submit(srv_t *srv, srv_req_t *r);

/* ---- OpenAI bodies (openai.c) ---- */

/* An error to answer with: status and OpenAI's {"error": {...}} body. */
typedef struct srv_error {
    unsigned status;
    const char *type;          /* invalid_request_error, not_found_error, server_error */
    const char *param;         /* the offending field, or NULL */
    const char *code;          /* or NULL */
    char message[256];
} srv_error_t;

void srv_error_set(srv_error_t *e, unsigned status, const char *type, const char *param,
                   const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
json_t *srv_error_json(const srv_error_t *e);

/* Parse and check a request body into r (prompt tokenized); false with e filled. */
bool srv_parse_request(srv_t *srv, const char *body, size_t len, srv_req_t *r, srv_error_t *e);
/* The whole answer of a finished request. */
json_t *srv_response_json(const srv_t *srv, const srv_req_t *r);
/* One stream chunk: text (may be empty), the role in the first, finish_reason in
 * the last (why NOT_STOPPED: none). */
json_t *srv_chunk_json(const srv_t *srv, const srv_req_t *r, const char *text, size_t len,
                       bool first, slm_seq_stop_t why);
/* The usage chunk a stream ends with when stream_options.include_usage asks. */
json_t *srv_usage_chunk_json(const srv_t *srv, const srv_req_t *r);
const char *srv_finish_reason(slm_seq_stop_t why);
json_t *srv_models_json(const srv_t *srv);
/* /health: {"status": "ok"} and how busy the slots are (llama-server's fields). */
json_t *srv_health_json(srv_t *srv);

/* ---- HTTP (http.c, stream.c) ---- */

struct MHD_Daemon;
struct MHD_Connection;
struct MHD_Response;
/* Listen on 127.0.0.1:port (0: a free one); *bound gets the port. */
struct MHD_Daemon *srv_http_start(srv_t *srv, unsigned port, unsigned *bound);
/* The streaming response of r (SSE), which owns one reference to it. */
struct MHD_Response *srv_stream_response(srv_t *srv, srv_req_t *r,
                                         struct MHD_Connection *conn);

#endif

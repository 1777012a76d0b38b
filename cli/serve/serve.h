/* Inside `slmops serve`: the server, its requests, and the engine thread that owns
 * the model and steps every request's sequence together (the files of cli/serve/). */
#ifndef SLMOPS_CLI_SERVE_H
#define SLMOPS_CLI_SERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include <slmops/generation.h>

#include "cli/chat.h"
#include "cli/session.h"

#define SRV_MAX_STOP 4                 /* stop strings, as OpenAI allows */

/* The limits a server keeps; each is an option with a documented default
 * (docs/slmops.1, `slmops serve --help`). */
typedef struct srv_limits {
    size_t max_body;           /* request body bytes; more: 413 */
    unsigned max_header;       /* bytes of a request's line and headers; more: 431 */
    unsigned idle_timeout_s;   /* a connection silent this long is closed */
    unsigned request_timeout_s;/* to send a request's headers and body (slowloris) */
    unsigned max_connections;  /* more are closed at once */
    unsigned max_queue;        /* requests waiting for a slot; more: 429 */
    int32_t max_tokens;        /* the most a request may ask for; more: 400 */
    unsigned max_n;            /* the most choices a request may ask for; more: 400 */
    unsigned shutdown_timeout_s;   /* SIGTERM: how long requests in flight may finish */
} srv_limits_t;

/* Who may talk to the server: the API key, the Host names, the browser origin. */
typedef struct srv_guard {
    char *api_key;             /* NULL: no key asked (loopback, or --no-auth) */
    size_t api_key_len;
    char bound[64];            /* the bound address as written in a Host header */
    bool loopback, wildcard;   /* bound to 127.0.0.0/8 or ::1; to 0.0.0.0 or :: */
    const char *const *allowed_hosts;   /* --allowed-host names ("*": any) */
    size_t n_allowed_hosts;
    const char *cors_origin;   /* NULL: no CORS headers */
} srv_guard_t;

typedef enum srv_kind { SRV_CHAT, SRV_COMPLETION } srv_kind_t;

/* One generated token's log-probability and its top alternatives (k of them). */
typedef slm_token_logprob_t srv_lp_t;

/* One of a request's n choices: a sequence of its own in a slot of its own. The
 * server's lock guards everything but seq, which only the engine touches. */
typedef struct srv_choice {
    struct srv_req *req;
    uint32_t index;
    slm_seq_t *seq;
    char *text;                /* generated so far */
    size_t len, cap;
    size_t sent;               /* bytes of text a stream has sent */
    srv_lp_t *lp;              /* per token 1 + req->top_logprobs entries, when asked */
    size_t n_lp, cap_lp, lp_sent;
    bool done;
    slm_seq_stop_t why;
    size_t n_gen;
    size_t n_cached;           /* prompt tokens the slot's kept cells held already */
    double t_first, t_last;    /* ms, monotonic; 0: not yet */
    size_t n_seen;             /* tokens the engine has timed */
    struct srv_choice *next;   /* in the queue or the running list */
} srv_choice_t;

/* One generation request, shared by the HTTP thread that made it and the engine
 * thread that runs its choices; the server's lock guards the fields after `shared`. */
typedef struct srv_req {
    srv_kind_t kind;
    bool stream, include_usage;
    char id[40];               /* chatcmpl-... / cmpl-..., the same in every chunk */
    int64_t created;
    const char *model;         /* the name it asked for (one of srv's), as answered */
    int32_t adapter;           /* the adapter it selected, or -1 */
    int32_t *prompt;
    size_t n_prompt;
    slm_sampler_params_t sampling;
    char *stop[SRV_MAX_STOP];
    size_t n_stop;
    int32_t max_tokens;        /* -1: until the end of the text or a full slot */
    int32_t top_logprobs;      /* -1: no log-probabilities; else alternatives per token */
    slm_json_filter_t *json;   /* response_format: JSON only, or NULL */
    char *prompt_text;         /* the rendered prompt, kept only for --log-prompts */
    size_t n_choices;
    srv_choice_t *choices;
    /* shared */
    pthread_cond_t cv;         /* new text, or a choice done */
    size_t n_done;             /* choices finished */
    double t_queued, t_first;  /* ms, monotonic; 0: not yet */
    bool gone;                 /* the client left: the engine drops it */
    int refs;                  /* HTTP side, log, one per choice the engine holds */
    struct srv *srv;
} srv_req_t;

/* Histograms of /metrics, in seconds. */
#define SRV_N_BUCKETS 14
typedef struct srv_hist {
    uint64_t count, bucket[SRV_N_BUCKETS];
    double sum;
} srv_hist_t;

/* What /metrics reports; the server's lock guards it. */
typedef struct srv_metrics {
    uint64_t by_status[600];
    uint64_t prompt_tokens, generated_tokens, cached_tokens;
    srv_hist_t ttft, itl;
    uint32_t kv_used, kv_cells;
} srv_metrics_t;

typedef struct srv {
    slm_cli_session_t *s;      /* model, tokenizer; its generator belongs to the engine */
    slm_cli_prompt_t chat;     /* the chat template */
    bool have_template;
    const char *model_id;      /* what /v1/models lists and requests name */
    char **adapter_names;      /* --lora NAME=FILE: adapter i (its attach id) is MODEL+NAME */
    size_t n_adapters;
    int64_t created;
    pthread_mutex_t mu;
    pthread_cond_t wake;       /* the engine: a new request, a client gone, or stop */
    srv_choice_t *queue, *queue_tail, *running;
    size_t n_queued, n_running;
    uint32_t n_slots;
    bool stopping;
    bool draining;             /* SIGTERM: new requests get 503 */
    size_t n_inflight;         /* generation requests not yet answered in full */
    uint64_t n_ids;
    pthread_t thread;
    srv_limits_t limits;
    srv_guard_t guard;
    FILE *access_log;          /* one JSON line per request */
    bool log_prompts;
    void *conns;               /* open connections, for the request timeout (http.c) */
    srv_metrics_t metrics;
    struct srv_embed *embeds;  /* waiting for the engine */
    pthread_cond_t embed_done;
    slm_context_t *embed_ctx;  /* the engine's, made at the first embedding */
} srv_t;

/* ---- requests (request.c) ---- */

srv_req_t *srv_req_new(srv_kind_t kind);
/* Make r's n choices (after parsing); false when out of memory. */
bool srv_req_set_choices(srv_req_t *r, size_t n);
/* Under the lock: every choice has finished. */
bool srv_req_done(const srv_req_t *r);
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
typedef enum srv_submit { SRV_SUBMITTED, SRV_QUEUE_FULL, SRV_DRAINING } srv_submit_t;
/* Queue r's choices (its prompt set), counted in flight until its connection
 * completes; takes a reference per choice when submitted. */
srv_submit_t srv_engine_submit(srv_t *srv, srv_req_t *r);

/* ---- embeddings (embed.c), run by the engine between decode steps ---- */

/* One POST /v1/embeddings: its inputs tokenized, their vectors when done. */
typedef struct srv_embed {
    size_t n_inputs;
    int32_t adapter;           /* the request's model MODEL+NAME: its adapter, or -1 */
    int32_t **tokens;
    size_t *n_tokens;
    float *vectors;            /* n_inputs x n_embd, mean-pooled and L2-normalized */
    int32_t n_embd;
    int status;                /* 0 waiting, 1 done, negative: failed */
    char error[200];
    struct srv_embed *next;
} srv_embed_t;

/* Under the lock: queue e and wait until the engine has run it (or failed). */
void srv_embed_run(srv_t *srv, srv_embed_t *e);
void srv_embed_free(srv_embed_t *e);
/* The engine's side (under the lock): whether one waits; run the first (the lock
 * let go meanwhile); fail all (stopping). */
bool srv_engine_embed_pending(srv_t *srv);
void srv_engine_embed(srv_t *srv);
void srv_engine_embed_cancel(srv_t *srv);

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

/* A request's "model" (NULL or absent: the base model): the name to answer with
 * and the adapter it selects (-1: none; "MODEL+NAME" selects --lora NAME). */
bool srv_resolve_model(const srv_t *srv, const json_t *model, const char **name,
                       int32_t *adapter, srv_error_t *e);
/* POST /v1/embeddings: the answer, or NULL with e filled. */
json_t *srv_embeddings(srv_t *srv, const char *body, size_t len, srv_error_t *e);
/* GET /metrics: Prometheus text (malloc'd). */
char *srv_metrics_text(srv_t *srv);

/* Parse and check a request body into r (prompt tokenized); false with e filled. */
bool srv_parse_request(srv_t *srv, const char *body, size_t len, srv_req_t *r, srv_error_t *e);
/* The whole answer of a finished request. */
json_t *srv_response_json(const srv_t *srv, const srv_req_t *r);
/* One stream chunk of choice c: text (may be empty), log-probabilities of tokens
 * [lp_from, lp_to), the role in the first, finish_reason in the last (why
 * NOT_STOPPED: none). */
json_t *srv_chunk_json(const srv_t *srv, const srv_choice_t *c, const char *text, size_t len,
                       size_t lp_from, size_t lp_to, bool first, slm_seq_stop_t why);
/* The usage chunk a stream ends with when stream_options.include_usage asks. */
json_t *srv_usage_chunk_json(const srv_t *srv, const srv_req_t *r);
const char *srv_finish_reason(slm_seq_stop_t why);
json_t *srv_models_json(const srv_t *srv);
/* /health: {"status": "ok"} and how busy the slots are (llama-server's fields). */
json_t *srv_health_json(srv_t *srv);

/* ---- HTTP (http.c, stream.c, page.c) ---- */

/* The chat page GET / answers. */
extern const char srv_page_html[];
extern const size_t srv_page_len;

struct MHD_Daemon;
struct MHD_Connection;
struct MHD_Response;
struct sockaddr;
/* Listen on addr (its port 0: a free one); *bound gets the port. */
struct MHD_Daemon *srv_http_start(srv_t *srv, const struct sockaddr *addr, unsigned *bound);
/* Close the connections that took longer than the request timeout to send their
 * request (slowloris); the main thread calls it every second. */
void srv_http_reap_slow(srv_t *srv);
void srv_http_stop(srv_t *srv, struct MHD_Daemon *d);

/* ---- who may ask (guard.c) ---- */

/* The key from --api-key-file or $SLMOPS_API_KEY; prints why and returns false
 * when the file cannot be read or the key is empty. */
bool srv_guard_load_key(srv_guard_t *g, const char *file);
/* Whether an Authorization header carries the key (constant time in the key). */
bool srv_guard_authorized(const srv_guard_t *g, const char *authorization);
/* Whether a Host header names this server (DNS-rebinding defense). */
bool srv_guard_host_ok(const srv_guard_t *g, const char *host);
/* Equal in time that depends only on b's length. */
bool srv_const_eq(const char *a, size_t na, const char *b, size_t nb);

/* ---- the access log (log.c) ---- */

/* What one HTTP request did, for its log line and the metrics. */
typedef struct srv_record {
    char id[40];               /* the request's id, or req-N for the others */
    const char *method, *path;
    char remote[64];
    unsigned status;
    double t_start;            /* ms, monotonic: headers read */
    srv_req_t *req;            /* a generation request (one reference), or NULL */
} srv_record_t;

/* One JSON line on srv->access_log. */
void srv_log_request(srv_t *srv, const srv_record_t *rec, double t_end);
double srv_now_ms(void);
/* The streaming response of r (SSE), which owns one reference to it. */
struct MHD_Response *srv_stream_response(srv_t *srv, srv_req_t *r,
                                         struct MHD_Connection *conn);

#endif

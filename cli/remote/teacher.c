/* The remote teacher's client: every (prompt, sample) the cache lacks becomes one
 * chat-completions (or completions) request; --concurrency of them in flight through
 * a curl multi handle; 408/409/429/5xx and broken connections are retried with
 * exponential backoff and jitter (Retry-After honoured), as the openai client does. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "cli/common.h"
#include "cli/dlopen/curl.h"
#include "cli/remote/remote.h"

#define MAX_BODY (64u << 20)
#define BACKOFF_FIRST 0.5
#define BACKOFF_MAX 8.0
#define RETRY_AFTER_MAX 60.0

enum { WAITING, RUNNING, DONE };

typedef struct req {
    size_t line;
    long sample;
    uint64_t seed;
    char *body, key[40];
    int state, tries;
    double not_before;
    CURL *easy;
    char *buf;                 /* the response body so far */
    size_t len;
    bool too_big;
    json_t *result;            /* the cache entry, or {"error"} */
} req_t;

typedef struct client {
    const slm_cli_remote_t *r;
    char *endpoint, *auth;
    struct curl_slist *headers;
    CURLM *multi;
    slm_cli_cache_t *cache;
    req_t *v;
    size_t n, n_done, n_cached, n_failed, n_retried, n_sent, in_flight;
    uint64_t rng;
    bool tty;
} client_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A 128-bit FNV-1a pair over the request: the cache's key. */
static void hash_key(const char *s, char out[40])
{
    uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
    for (; *s; s++) {
        a = (a ^ (unsigned char)*s) * 0x100000001b3ull;
        b = (b ^ (unsigned char)*s) * 0x100000001b3ull + 1;
    }
    snprintf(out, 40, "%016llx%016llx", (unsigned long long)a, (unsigned long long)mix(b));
}

static json_t *request_body(const client_t *c, const json_t *pr, uint64_t seed)
{
    const slm_cli_remote_t *r = c->r;
    const char *prompt = json_string_value(json_object_get(pr, "prompt"));
    const char *sys = json_string_value(json_object_get(pr, "system"));
    json_t *b = json_pack("{s:s, s:I, s:f, s:f, s:I, s:I}", "model", r->model, "max_tokens",
                          (json_int_t)r->max_tokens, "temperature", r->temperature, "top_p",
                          r->top_p, "seed", (json_int_t)(seed & 0x7fffffffffffull), "n",
                          (json_int_t)1);
    if (!b || !prompt)
        return b;
    if (r->top_k >= 0)
        json_object_set_new(b, "top_k", json_integer(r->top_k));
    if (r->completions) {
        size_t n = strlen(prompt) + (sys ? strlen(sys) + 2 : 0) + 1;
        char *text = malloc(n);
        if (text)
            snprintf(text, n, "%s%s%s", sys ? sys : "", sys ? "\n\n" : "", prompt);
        json_object_set_new(b, "prompt", text ? json_string(text) : json_null());
        free(text);
        return b;
    }
    json_t *msgs = json_array();
    if (sys)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", sys));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", prompt));
    json_object_set_new(b, "messages", msgs);
    return b;
}

/* Each sample of each prompt: its body and key; the cache answers what it can. */
static int plan(client_t *c, const json_t *prompts)
{
    size_t n = json_array_size(prompts) * (size_t)c->r->samples;
    if (!(c->v = calloc(n ? n : 1, sizeof *c->v)))
        return SLM_CLI_FAILED;
    size_t i;
    json_t *pr;
    json_array_foreach(prompts, i, pr) {
        for (long s = 0; s < c->r->samples; s++) {
            req_t *q = &c->v[c->n++];
            q->line = (size_t)json_integer_value(json_object_get(pr, "line"));
            q->sample = s;
            q->seed = mix(c->r->seed + 0x9e3779b97f4a7c15ull * (q->line * 65599u + (uint64_t)s + 1));
            json_t *b = request_body(c, pr, q->seed);
            q->body = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            json_decref(b);
            if (!q->body)
                return SLM_CLI_FAILED;
            /* The endpoint kind is part of the question; the server's address is not. */
            char *keyed = malloc(strlen(q->body) + 16);
            if (!keyed)
                return SLM_CLI_FAILED;
            sprintf(keyed, "%s\n%s", c->r->completions ? "completions" : "chat", q->body);
            hash_key(keyed, q->key);
            free(keyed);
            const json_t *hit = slm_cli_cache_get(c->cache, q->key);
            if (hit) {
                q->result = json_deep_copy(hit);
                q->state = DONE;
                c->n_done++;
                c->n_cached++;
            }
        }
    }
    return SLM_CLI_OK;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *user)
{
    req_t *q = user;
    size_t n = size * nmemb;
    if (q->len + n > MAX_BODY) {
        q->too_big = true;
        return 0;
    }
    char *b = realloc(q->buf, q->len + n + 1);
    if (!b)
        return 0;
    memcpy(b + q->len, p, n);
    q->buf = b;
    q->len += n;
    b[q->len] = '\0';
    return n;
}

static int start(client_t *c, req_t *q)
{
    free(q->buf);
    q->buf = NULL;
    q->len = 0;
    q->too_big = false;
    if (!q->easy && !(q->easy = slm_curl.curl_easy_init()))
        return SLM_CLI_FAILED;
    CURL *e = q->easy;
    slm_curl.curl_easy_reset(e);
    slm_curl.curl_easy_setopt(e, CURLOPT_URL, c->endpoint);
    slm_curl.curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    slm_curl.curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
    slm_curl.curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    slm_curl.curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    slm_curl.curl_easy_setopt(e, CURLOPT_PRIVATE, q);
    slm_curl.curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    slm_curl.curl_easy_setopt(e, CURLOPT_TIMEOUT, c->r->timeout_s);
    slm_curl.curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, c->r->timeout_s < 30 ? c->r->timeout_s : 30L);
    slm_curl.curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    slm_curl.curl_easy_setopt(e, CURLOPT_USERAGENT, "slmops/" PACKAGE_VERSION);
    if (slm_curl.curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return SLM_CLI_FAILED;
    q->state = RUNNING;
    q->tries++;
    c->n_sent++;
    c->in_flight++;
    return SLM_CLI_OK;
}

static void report_failure(const client_t *c, const req_t *q, const char *why)
{
    fprintf(stderr, "%sslmops distill: teacher: prompt line %zu, sample %ld: failed after %d "
            "tr%s: %s\n", c->tty ? "\n" : "", q->line, q->sample, q->tries,
            q->tries == 1 ? "y" : "ies", why);
}

static int finish(client_t *c, req_t *q, json_t *result)
{
    q->state = DONE;
    c->n_done++;
    if (json_object_get(result, "error")) {
        c->n_failed++;
        report_failure(c, q, json_string_value(json_object_get(result, "error")));
        q->result = result;
        return SLM_CLI_OK;
    }
    q->result = json_incref(result);
    return slm_cli_cache_put(c->cache, result);
}

/* The jittered exponential backoff of the openai client, or the server's Retry-After. */
static void retry_later(client_t *c, req_t *q, double retry_after)
{
    double d = BACKOFF_FIRST * pow(2.0, q->tries - 1);
    d = d > BACKOFF_MAX ? BACKOFF_MAX : d;
    c->rng = mix(c->rng + 1);
    d *= 1.0 - 0.25 * (double)(c->rng >> 11) / 9007199254740992.0;
    if (retry_after > 0 && retry_after <= RETRY_AFTER_MAX)
        d = retry_after;
    q->state = WAITING;
    q->not_before = now() + d;
    c->n_retried++;
}

static json_t *answer(const client_t *c, const req_t *q, char *why, size_t n_why)
{
    json_t *doc = json_loads(q->buf ? q->buf : "", 0, NULL);
    const json_t *ch = json_array_get(json_object_get(doc, "choices"), 0);
    const json_t *text = c->r->completions ? json_object_get(ch, "text")
                                           : json_object_get(json_object_get(ch, "message"),
                                                             "content");
    json_t *entry = NULL;
    if (json_is_string(text))
        entry = json_pack("{s:s, s:I, s:I, s:O, s:o, s:I}", "key", q->key, "line",
                          (json_int_t)q->line, "sample", (json_int_t)q->sample, "response",
                          text, "finish_reason",
                          json_is_string(json_object_get(ch, "finish_reason"))
                              ? json_incref(json_object_get(ch, "finish_reason"))
                              : json_string("stop"),
                          "seed", (json_int_t)(q->seed & 0x7fffffffffffull));
    else
        snprintf(why, n_why, "the answer (%zu bytes) holds no choices[0].%s", q->len,
                 c->r->completions ? "text" : "message.content");
    json_decref(doc);
    return entry;
}

static bool retryable_status(long st)
{
    return st == 408 || st == 409 || st == 429 || st >= 500;
}

static bool retryable_curl(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_COULDNT_RESOLVE_HOST;
}

/* One finished transfer: the answer, a retry or a failure. */
static int done(client_t *c, req_t *q, CURLcode rc)
{
    slm_curl.curl_multi_remove_handle(c->multi, q->easy);
    c->in_flight--;
    long st = 0;
    curl_off_t after = -1;
    slm_curl.curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &st);
    slm_curl.curl_easy_getinfo(q->easy, CURLINFO_RETRY_AFTER, &after);
    char why[256] = "";
    bool retry = false;
    json_t *entry = NULL;
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s%s", slm_curl.curl_easy_strerror(rc),
                 q->too_big ? " (an answer over 64 MiB)" : "");
        retry = retryable_curl(rc);
    } else if (st != 200) {
        json_t *doc = json_loads(q->buf ? q->buf : "", 0, NULL);
        const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"),
                                                            "message"));
        snprintf(why, sizeof why, "HTTP %ld%s%.200s", st, msg ? ": " : "", msg ? msg : "");
        json_decref(doc);
        retry = retryable_status(st);
    } else if (!(entry = answer(c, q, why, sizeof why))) {
        retry = true;   /* a 200 cut short: the connection broke mid-answer */
    }
    if (entry)
        return finish(c, q, entry);
    if (retry && q->tries <= c->r->retries) {
        retry_later(c, q, (double)after);
        return SLM_CLI_OK;
    }
    return finish(c, q, json_pack("{s:s}", "error", why));
}

static void progress(const client_t *c, bool last)
{
    if (!c->tty && !last)
        return;
    fprintf(stderr, "%steacher: %zu/%zu requests done (%zu cached, %zu failed, %zu retried)%s",
            c->tty ? "\r" : "", c->n_done, c->n, c->n_cached, c->n_failed, c->n_retried,
            c->tty && !last ? "" : "\n");
}

/* Start what may start, run the transfers, collect what finished; until all are done. */
static int loop(client_t *c)
{
    size_t next = 0;   /* requests before it are started or done */
    while (c->n_done < c->n) {
        double t = now(), wake = t + 1.0;
        for (size_t i = next; i < c->n && c->in_flight < (size_t)c->r->concurrency; i++) {
            req_t *q = &c->v[i];
            if (q->state == WAITING && q->not_before <= t && start(c, q) != SLM_CLI_OK)
                return SLM_CLI_FAILED;
        }
        while (next < c->n && c->v[next].state == DONE)
            next++;
        for (size_t i = next; i < c->n; i++)
            if (c->v[i].state == WAITING && c->v[i].not_before > t && c->v[i].not_before < wake)
                wake = c->v[i].not_before;
        int running = 0;
        slm_curl.curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = slm_curl.curl_multi_info_read(c->multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                req_t *q = NULL;
                slm_curl.curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
                if (done(c, q, m->data.result) != SLM_CLI_OK)
                    return SLM_CLI_FAILED;
                progress(c, false);
            }
        if (c->n_done >= c->n)
            break;
        double ms = (wake - now()) * 1000.0;
        slm_curl.curl_multi_poll(c->multi, NULL, 0, ms < 1 ? 1 : ms > 1000 ? 1000 : (int)ms, NULL);
    }
    return SLM_CLI_OK;
}

static int write_responses(const client_t *c, const char *path)
{
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL;
    for (size_t i = 0; ok && i < c->n; i++) {
        const req_t *q = &c->v[i];
        json_t *o = json_deep_copy(q->result);
        json_object_del(o, "key");
        json_object_set_new(o, "line", json_integer((json_int_t)q->line));
        json_object_set_new(o, "sample", json_integer(q->sample));
        char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        ok = text && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        free(text);
        json_decref(o);
    }
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "slmops distill: %s: write failed\n", path);
    return ok ? SLM_CLI_OK : SLM_CLI_FAILED;
}

static char *endpoint(const slm_cli_remote_t *r)
{
    const char *tail = r->completions ? "/completions" : "/chat/completions";
    size_t n = strlen(r->url);
    while (n > 0 && r->url[n - 1] == '/')
        n--;
    size_t t = strlen(tail);
    bool whole = n >= t && strncmp(r->url + n - t, tail, t) == 0;
    char *e = malloc(n + t + 1);
    if (e)
        snprintf(e, n + t + 1, "%.*s%s", (int)n, r->url, whole ? "" : tail);
    return e;
}

/* The key from the named variable or the file; none (a local server) when the default
 * variable is unset. Never from the command line, never printed. */
static int api_key(const slm_cli_remote_t *r, char **key)
{
    *key = NULL;
    if (r->key_file) {
        size_t len = 0;
        char *text = slm_cli_read_text("distill", r->key_file, &len);
        if (!text)
            return SLM_CLI_FAILED;
        text[strcspn(text, "\r\n")] = '\0';
        if (!*text) {
            free(text);
            fprintf(stderr, "slmops distill: %s: the first line holds no API key\n", r->key_file);
            return SLM_CLI_FAILED;
        }
        *key = text;
        return SLM_CLI_OK;
    }
    const char *v = secure_getenv(r->key_env);
    if ((!v || !*v) && r->key_env_given) {
        fprintf(stderr, "slmops distill: --teacher-api-key-env %s: the variable is not set; "
                "export it or give --teacher-api-key-file FILE\n", r->key_env);
        return SLM_CLI_FAILED;
    }
    if (v && *v && !(*key = strdup(v)))
        return SLM_CLI_FAILED;
    return SLM_CLI_OK;
}

static int setup(client_t *c)
{
    char *key = NULL;
    int rc = api_key(c->r, &key);
    if (rc != SLM_CLI_OK)
        return rc;
    if (key) {
        size_t n = strlen(key) + 32;
        if ((c->auth = malloc(n)))
            snprintf(c->auth, n, "Authorization: Bearer %s", key);
        memset(key, 0, strlen(key));
        free(key);
        if (!c->auth)
            return SLM_CLI_FAILED;
    }
    c->headers = slm_curl.curl_slist_append(NULL, "Content-Type: application/json");
    if (c->auth)
        c->headers = slm_curl.curl_slist_append(c->headers, c->auth);
    c->endpoint = endpoint(c->r);
    c->multi = slm_curl.curl_multi_init();
    if (!c->headers || !c->endpoint || !c->multi)
        return SLM_CLI_FAILED;
    slm_curl.curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, c->r->concurrency);
    return SLM_CLI_OK;
}

static void cleanup(client_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].easy) {
            if (c->v[i].state == RUNNING)
                slm_curl.curl_multi_remove_handle(c->multi, c->v[i].easy);
            slm_curl.curl_easy_cleanup(c->v[i].easy);
        }
        free(c->v[i].body);
        free(c->v[i].buf);
        json_decref(c->v[i].result);
    }
    free(c->v);
    if (c->multi)
        slm_curl.curl_multi_cleanup(c->multi);
    slm_curl.curl_slist_free_all(c->headers);
    if (c->auth)
        memset(c->auth, 0, strlen(c->auth));
    free(c->auth);
    free(c->endpoint);
    slm_cli_cache_close(c->cache);
}

int slm_cli_remote_run(const slm_cli_remote_t *r, const char *requests, const char *responses)
{
    size_t len = 0;
    char *text = slm_cli_read_text("distill", requests, &len);
    if (!text)
        return SLM_CLI_FAILED;
    json_t *prompts = json_array();
    for (char *s = text, *nl; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        if (!nl)
            break;
        json_array_append_new(prompts, json_loadb(s, (size_t)(nl - s), 0, NULL));
    }
    free(text);
    char why[512];
    if (!slm_curl_open(why, sizeof why)) {
        json_decref(prompts);
        fprintf(stderr, "slmops distill: --teacher-url: %s\n", why);
        return SLM_CLI_FAILED;
    }
    if (slm_curl.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        json_decref(prompts);
        fprintf(stderr, "slmops distill: libcurl failed to start\n");
        return SLM_CLI_FAILED;
    }
    client_t c = {.r = r, .tty = isatty(2), .rng = r->seed ^ (uint64_t)time(NULL)};
    int rc = slm_cli_cache_open(r->cache, &c.cache);
    if (rc == SLM_CLI_OK && slm_cli_cache_dropped(c.cache))
        fprintf(stderr, "slmops distill: %s: dropped a torn last line (an interrupted run); "
                "its request is asked again\n", r->cache);
    if (rc == SLM_CLI_OK && (rc = setup(&c)) != SLM_CLI_OK && !c.endpoint)
        fprintf(stderr, "slmops distill: out of memory\n");
    if (rc == SLM_CLI_OK && plan(&c, prompts) != SLM_CLI_OK) {
        fprintf(stderr, "slmops distill: out of memory\n");
        rc = SLM_CLI_FAILED;
    }
    if (rc == SLM_CLI_OK && c.n_done < c.n)
        rc = loop(&c);
    if (rc == SLM_CLI_OK) {
        progress(&c, true);
        rc = write_responses(&c, responses);
    }
    cleanup(&c);
    slm_curl.curl_global_cleanup();
    json_decref(prompts);
    return rc;
}

/* OpenAI's request and response bodies for `slmops serve`: every field checked (a
 * wrong type or value is a 400 naming it), prompts rendered and tokenized. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/serve/serve.h"

void srv_error_set(srv_error_t *e, unsigned status, const char *type, const char *param,
                   const char *code, const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

json_t *srv_error_json(const srv_error_t *e)
{
    return json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", e->message, "type",
                     e->type, "param", e->param, "code", e->code);
}

static bool bad(srv_error_t *e, const char *param, const char *fmt, const char *what)
{
    srv_error_set(e, 400, "invalid_request_error", param, NULL, fmt, param, what);
    return false;
}

/* A number no other request gets (HTTP threads parse at the same time). */
static uint64_t next_number(srv_t *srv)
{
    return __atomic_add_fetch(&srv->n_ids, 1, __ATOMIC_RELAXED);
}

/* ---- fields ---- */

/* The fields each endpoint takes; any other is refused, as a typo should be. */
static const char *const chat_fields[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "seed", "stop", "stream", "stream_options", "n", "presence_penalty", "frequency_penalty",
    "user", NULL};
static const char *const completion_fields[] = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
    "stream_options", "n", "presence_penalty", "frequency_penalty", "user", NULL};

static bool known_fields(const json_t *body, const char *const *names, srv_error_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        size_t i = 0;
        while (names[i] && strcmp(names[i], key) != 0)
            i++;
        if (!names[i]) {
            srv_error_set(e, 400, "invalid_request_error", NULL, "unknown_parameter",
                          "Unrecognized request argument supplied: %.64s", key);
            return false;
        }
    }
    return true;
}

/* A number field within [lo, hi] into *out (absent or null: unchanged). */
static bool number(const json_t *body, const char *name, double lo, double hi, float *out,
                   srv_error_t *e)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v))
        return bad(e, name, "'%s' must be a number, not %s", "another type");
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) {
        srv_error_set(e, 400, "invalid_request_error", name, NULL,
                      "'%s' is %g; it must be between %g and %g", name, x, lo, hi);
        return false;
    }
    *out = (float)x;
    return true;
}

static bool max_tokens(const srv_t *srv, const json_t *body, const char *name, int32_t *out,
                       srv_error_t *e)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v))
        return bad(e, name, "'%s' must be an integer, not %s", "another type");
    json_int_t x = json_integer_value(v);
    if (x < 1) {
        srv_error_set(e, 400, "invalid_request_error", name, NULL,
                      "'%s' is %lld; it must be at least 1", name, (long long)x);
        return false;
    }
    if (x > srv->limits.max_tokens) {
        srv_error_set(e, 400, "invalid_request_error", name, NULL, "'%s' is %lld; this server "
                      "allows at most %d (--max-tokens-limit)", name, (long long)x,
                      srv->limits.max_tokens);
        return false;
    }
    *out = (int32_t)x;
    return true;
}

static bool stops(const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *v = json_object_get(body, "stop");
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v)) {
        r->stop[0] = strdup(json_string_value(v));
        r->n_stop = r->stop[0] != NULL;
        return true;
    }
    if (!json_is_array(v))
        return bad(e, "stop", "'%s' must be a string or an array of strings%s", "");
    if (json_array_size(v) > SRV_MAX_STOP) {
        srv_error_set(e, 400, "invalid_request_error", "stop", NULL, "'stop' has %zu "
                      "strings; at most %d are allowed", json_array_size(v), SRV_MAX_STOP);
        return false;
    }
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s))
            return bad(e, "stop", "'%s' must be a string or an array of strings%s", "");
        if ((r->stop[r->n_stop] = strdup(json_string_value(s))))
            r->n_stop++;
    }
    return true;
}

static bool flag(const json_t *body, const char *name, bool *out, srv_error_t *e)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return bad(e, name, "'%s' must be a boolean%s", "");
    *out = json_is_true(v);
    return true;
}

/* Everything but the prompt: sampling, limits, stream. */
static bool common(srv_t *srv, const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *model = json_object_get(body, "model"), *n = json_object_get(body, "n");
    json_t *seed = json_object_get(body, "seed"), *user = json_object_get(body, "user");
    json_t *so = json_object_get(body, "stream_options");
    if (model && !json_is_string(model))
        return bad(e, "model", "'%s' must be a string%s", "");
    if (model && strcmp(json_string_value(model), srv->model_id) != 0) {
        srv_error_set(e, 404, "invalid_request_error", "model", "model_not_found",
                      "The model '%.64s' does not exist; this server serves '%.64s'",
                      json_string_value(model), srv->model_id);
        return false;
    }
    if (n && !json_is_null(n) && (!json_is_integer(n) || json_integer_value(n) != 1))
        return bad(e, "n", "'%s': only n = 1 is supported%s", "");
    if (seed && !json_is_null(seed) && !json_is_integer(seed))
        return bad(e, "seed", "'%s' must be an integer%s", "");
    if (user && !json_is_string(user))
        return bad(e, "user", "'%s' must be a string%s", "");
    if (so && !json_is_null(so) && !json_is_object(so))
        return bad(e, "stream_options", "'%s' must be an object%s", "");
    slm_sampler_params_t *p = &r->sampling;
    p->seed = seed && json_is_integer(seed) ? (uint64_t)json_integer_value(seed)
                                            : ((uint64_t)time(NULL) << 20) ^ next_number(srv);
    return number(body, "temperature", 0, 2, &p->temperature, e) &&
           number(body, "top_p", 0, 1, &p->top_p, e) &&
           number(body, "presence_penalty", -2, 2, &p->presence_penalty, e) &&
           number(body, "frequency_penalty", -2, 2, &p->frequency_penalty, e) &&
           max_tokens(srv, body, "max_tokens", &r->max_tokens, e) &&
           stops(body, r, e) && flag(body, "stream", &r->stream, e);
}

/* ---- prompts ---- */

static bool tokenize(srv_t *srv, const char *text, unsigned flags, srv_req_t *r,
                     const char *param, srv_error_t *e)
{
    slm_error_t err;
    slm_error_init(&err);
    if (slm_tokenizer_encode(srv->s->tok, text, strlen(text), flags, &r->prompt, &r->n_prompt,
                             &err) != SLM_OK) {
        srv_error_set(e, 400, "invalid_request_error", param, NULL, "%s", err.message);
        return false;
    }
    if (r->n_prompt == 0) {
        srv_error_set(e, 400, "invalid_request_error", param, NULL, "the prompt is empty");
        return false;
    }
    uint32_t room = slm_generator_n_ctx_slot(srv->s->gen);
    if (r->n_prompt >= room) {
        srv_error_set(e, 400, "invalid_request_error", param, "context_length_exceeded",
                      "the prompt has %zu tokens; a slot holds %u (raise --ctx or lower "
                      "--parallel)", r->n_prompt, room);
        return false;
    }
    return true;
}

/* A message's content: a string, null, or text parts joined. */
static bool content(json_t *c, json_t **out, srv_error_t *e)
{
    if (!c || json_is_null(c) || json_is_string(c)) {
        *out = json_string(c && json_is_string(c) ? json_string_value(c) : "");
        return true;
    }
    if (!json_is_array(c))
        return bad(e, "messages", "'%s': a message's content must be a string or an array "
                   "of text parts%s", "");
    size_t i, len = 0;
    json_t *part;
    char *all = calloc(1, 1);
    json_array_foreach(c, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
            !json_is_string(text)) {
            free(all);
            return bad(e, "messages", "'%s': only text content parts are supported%s", "");
        }
        size_t n = json_string_length(text);
        char *v = all ? realloc(all, len + n + 1) : NULL;
        if (!v)
            break;
        all = v;
        memcpy(all + len, json_string_value(text), n + 1);
        len += n;
    }
    *out = all ? json_stringn(all, len) : NULL;
    free(all);
    return true;
}

static bool chat_prompt(srv_t *srv, const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return bad(e, "messages", "'%s' must be a non-empty array of messages%s", "");
    json_t *conv = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role"), *text = NULL;
        if (!json_is_object(m) || !json_is_string(role)) {
            json_decref(conv);
            return bad(e, "messages", "'%s': each message must be an object with a string "
                       "'role'%s", "");
        }
        if (!content(json_object_get(m, "content"), &text, e)) {
            json_decref(conv);
            return false;
        }
        json_array_append_new(conv, json_pack("{s:O, s:o}", "role", role, "content", text));
    }
    char *conv_text = json_dumps(conv, JSON_COMPACT), *text = NULL;
    json_decref(conv);
    slm_error_t err;
    slm_error_init(&err);
    int rc = conv_text ? slm_chat_template_render(srv->chat.tmpl, conv_text, &srv->chat.params,
                                                  &text, &err)
                       : SLM_E_NOMEM;
    free(conv_text);
    if (rc != SLM_OK) {
        srv_error_set(e, 400, "invalid_request_error", "messages", NULL, "the chat template "
                      "refused the messages: %s", err.message);
        return false;
    }
    const char *bos = srv->chat.params.bos_token;
    bool has_bos = bos && *bos && strncmp(text, bos, strlen(bos)) == 0;
    unsigned flags = SLM_TOKENIZE_PARSE_SPECIAL |
                     (slm_tokenizer_add_bos(srv->s->tok) && !has_bos ? SLM_TOKENIZE_ADD_BOS : 0);
    bool ok = tokenize(srv, text, flags, r, "messages", e);
    if (srv->log_prompts)
        r->prompt_text = text;
    else
        free(text);
    return ok;
}

static bool completion_prompt(srv_t *srv, const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *p = json_object_get(body, "prompt");
    if (!json_is_string(p))
        return bad(e, "prompt", "'%s' must be a string%s", "");
    unsigned flags = slm_tokenizer_add_bos(srv->s->tok) ? SLM_TOKENIZE_ADD_BOS : 0;
    if (srv->log_prompts)
        r->prompt_text = strdup(json_string_value(p));
    return tokenize(srv, json_string_value(p), flags, r, "prompt", e);
}

bool srv_parse_request(srv_t *srv, const char *body, size_t len, srv_req_t *r, srv_error_t *e)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        srv_error_set(e, 400, "invalid_request_error", NULL, NULL, "the body is not valid "
                      "JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return false;
    }
    bool chat = r->kind == SRV_CHAT, ok;
    if (!json_is_object(doc))
        ok = bad(e, "body", "the %s must be a JSON object%s", "");
    else
        ok = known_fields(doc, chat ? chat_fields : completion_fields, e);
    if (!chat)
        r->max_tokens = 16;   /* OpenAI's default for completions */
    if (ok)
        ok = common(srv, doc, r, e) &&
             (!chat || max_tokens(srv, doc, "max_completion_tokens", &r->max_tokens, e));
    json_t *so = ok ? json_object_get(doc, "stream_options") : NULL;
    if (ok && so && !flag(so, "include_usage", &r->include_usage, e))
        ok = false;
    if (ok && chat && !srv->have_template) {
        srv_error_set(e, 400, "invalid_request_error", "messages", NULL, "the model has no "
                      "chat template; start the server with --chat-template NAME");
        ok = false;
    }
    if (ok)
        ok = chat ? chat_prompt(srv, doc, r, e) : completion_prompt(srv, doc, r, e);
    json_decref(doc);
    if (ok) {
        snprintf(r->id, sizeof r->id, "%s-%016llx%08llx", chat ? "chatcmpl" : "cmpl",
                 (unsigned long long)r->sampling.seed * 0x9e3779b97f4a7c15ull,
                 (unsigned long long)next_number(srv));
        r->created = (int64_t)time(NULL);
    }
    return ok;
}

/* ---- responses ---- */

const char *srv_finish_reason(slm_seq_stop_t why)
{
    switch (why) {
    case SLM_SEQ_EOS:
    case SLM_SEQ_STOP_STRING:
        return "stop";
    case SLM_SEQ_LENGTH:
    case SLM_SEQ_CONTEXT:
        return "length";
    default:
        return NULL;
    }
}

static json_t *usage(const srv_req_t *r)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)r->n_prompt,
                     "completion_tokens", (json_int_t)r->n_gen, "total_tokens",
                     (json_int_t)(r->n_prompt + r->n_gen));
}

json_t *srv_response_json(const srv_t *srv, const srv_req_t *r)
{
    json_t *text = json_stringn(r->text ? r->text : "", r->len);
    json_t *choice = r->kind == SRV_CHAT
        ? json_pack("{s:i, s:{s:s, s:o}, s:n, s:s?}", "index", 0, "message", "role",
                    "assistant", "content", text, "logprobs", "finish_reason",
                    srv_finish_reason(r->why))
        : json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "text", text, "logprobs",
                    "finish_reason", srv_finish_reason(r->why));
    return json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", r->id, "object",
                     r->kind == SRV_CHAT ? "chat.completion" : "text_completion", "created",
                     (json_int_t)r->created, "model", srv->model_id, "choices", choice,
                     "usage", usage(r));
}

json_t *srv_chunk_json(const srv_t *srv, const srv_req_t *r, const char *text, size_t len,
                       bool first, slm_seq_stop_t why)
{
    const char *finish = why == SLM_SEQ_NOT_STOPPED ? NULL : srv_finish_reason(why);
    json_t *choice;
    if (r->kind == SRV_CHAT) {
        json_t *delta = json_object();
        if (first)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (len || (first && !finish))
            json_object_set_new(delta, "content", json_stringn(text, len));
        choice = json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "delta", delta, "logprobs",
                           "finish_reason", finish);
    } else {
        choice = json_pack("{s:i, s:s%, s:n, s:s?}", "index", 0, "text", text, len,
                           "logprobs", "finish_reason", finish);
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", r->id, "object",
                     r->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)r->created, "model", srv->model_id, "choices",
                     choice);
}

json_t *srv_usage_chunk_json(const srv_t *srv, const srv_req_t *r)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", r->id, "object",
                     r->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)r->created, "model", srv->model_id, "choices",
                     "usage", usage(r));
}

json_t *srv_models_json(const srv_t *srv)
{
    return json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                     srv->model_id, "object", "model", "created", (json_int_t)srv->created,
                     "owned_by", "slmops");
}

json_t *srv_health_json(srv_t *srv)
{
    pthread_mutex_lock(&srv->mu);
    size_t running = srv->n_running, queued = srv->n_queued;
    pthread_mutex_unlock(&srv->mu);
    return json_pack("{s:s, s:I, s:I, s:I}", "status", "ok", "slots_idle",
                     (json_int_t)(srv->n_slots - running), "slots_processing",
                     (json_int_t)running, "requests_queued", (json_int_t)queued);
}

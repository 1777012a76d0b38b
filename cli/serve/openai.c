/* OpenAI's request and response bodies for `slmops serve`: every field checked (a
 * wrong type or value is a 400 naming it), prompts rendered and tokenized. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/common.h"
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
    "user", "logprobs", "top_logprobs", "response_format", NULL};
static const char *const completion_fields[] = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
    "stream_options", "n", "presence_penalty", "frequency_penalty", "user", "logprobs", NULL};

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

/* chat: "logprobs": bool and "top_logprobs": 0..20; completions: "logprobs": 0..5. */
static bool logprobs(const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *lp = json_object_get(body, "logprobs"), *top = json_object_get(body, "top_logprobs");
    if (r->kind == SRV_COMPLETION) {
        if (!lp || json_is_null(lp))
            return true;
        if (!json_is_integer(lp) || json_integer_value(lp) < 0 || json_integer_value(lp) > 5)
            return bad(e, "logprobs", "'%s' must be an integer from 0 to 5%s", "");
        r->top_logprobs = (int32_t)json_integer_value(lp);
        return true;
    }
    bool on = false;
    if (!flag(body, "logprobs", &on, e))
        return false;
    if (top && !json_is_null(top)) {
        if (!json_is_integer(top) || json_integer_value(top) < 0 ||
            json_integer_value(top) > 20)
            return bad(e, "top_logprobs", "'%s' must be an integer from 0 to 20%s", "");
        if (!on)
            return bad(e, "top_logprobs", "'%s' needs \"logprobs\": true%s", "");
    }
    if (on)
        r->top_logprobs = top && json_is_integer(top) ? (int32_t)json_integer_value(top) : 0;
    return true;
}

/* "response_format": text, json_object, or json_schema {name, schema, strict}. */
static bool response_format(srv_t *srv, const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *rf = json_object_get(body, "response_format");
    if (!rf || json_is_null(rf))
        return true;
    json_t *type = json_object_get(rf, "type");
    if (!json_is_object(rf) || !json_is_string(type))
        return bad(e, "response_format", "'%s' must be an object with a string 'type'%s", "");
    const char *t = json_string_value(type);
    if (strcmp(t, "text") == 0)
        return true;
    char *schema = NULL;
    if (strcmp(t, "json_schema") == 0) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *sc = json_is_object(js) ? json_object_get(js, "schema") : NULL;
        if (!json_is_object(js) || !json_is_string(json_object_get(js, "name")))
            return bad(e, "response_format", "'%s': json_schema needs an object with a "
                       "string 'name' and a 'schema'%s", "");
        schema = sc ? json_dumps(sc, JSON_COMPACT | JSON_PRESERVE_ORDER) : strdup("{}");
        if (!schema)
            return bad(e, "response_format", "'%s': the schema cannot be read%s", "");
    } else if (strcmp(t, "json_object") != 0) {
        srv_error_set(e, 400, "invalid_request_error", "response_format", NULL,
                      "'response_format' type '%.32s' is not one of text, json_object, "
                      "json_schema", t);
        return false;
    }
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_json_filter_new(srv->s->tok, schema, schema ? strlen(schema) : 0, &r->json,
                                 &err);
    free(schema);
    if (rc != SLM_OK) {
        srv_error_set(e, 400, "invalid_request_error", "response_format", NULL, "%s",
                      err.message);
        return false;
    }
    return true;
}

bool srv_resolve_model(const srv_t *srv, const json_t *model, const char **name,
                       int32_t *adapter, srv_error_t *e)
{
    if (adapter)
        *adapter = -1;
    *name = srv->model_id;
    if (!model || json_is_null(model))
        return true;
    if (!json_is_string(model))
        return bad(e, "model", "'%s' must be a string%s", "");
    const char *m = json_string_value(model);
    if (strcmp(m, srv->model_id) == 0)
        return true;
    for (size_t i = 0; i < srv->n_adapters; i++)
        if (strcmp(m, srv->adapter_names[i]) == 0) {
            *name = srv->adapter_names[i];
            if (adapter)
                *adapter = (int32_t)i;
            return true;
        }
    srv_error_set(e, 404, "invalid_request_error", "model", "model_not_found",
                  "The model '%.64s' does not exist; this server serves '%.64s'%s", m,
                  srv->model_id, srv->n_adapters ? " and its adapters (GET /v1/models)" : "");
    return false;
}

/* Everything but the prompt: sampling, limits, stream. */
static bool common(srv_t *srv, const json_t *body, srv_req_t *r, srv_error_t *e)
{
    json_t *model = json_object_get(body, "model"), *n = json_object_get(body, "n");
    json_t *seed = json_object_get(body, "seed"), *user = json_object_get(body, "user");
    json_t *so = json_object_get(body, "stream_options");
    if (!srv_resolve_model(srv, model, &r->model, &r->adapter, e))
        return false;
    if (n && !json_is_null(n) && !json_is_integer(n))
        return bad(e, "n", "'%s' must be an integer%s", "");
    json_int_t n_choices = n && json_is_integer(n) ? json_integer_value(n) : 1;
    if (n_choices < 1 || n_choices > srv->limits.max_n) {
        srv_error_set(e, 400, "invalid_request_error", "n", NULL, "'n' is %lld; it must be "
                      "between 1 and %u (--max-n)", (long long)n_choices, srv->limits.max_n);
        return false;
    }
    if (!srv_req_set_choices(r, (size_t)n_choices)) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
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
    if (ok)
        ok = logprobs(doc, r, e) && (!chat || response_format(srv, doc, r, e));
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
    size_t n_gen = 0;
    for (size_t i = 0; i < r->n_choices; i++)
        n_gen += r->choices[i].n_gen;
    /* OpenAI's cached_tokens: the prompt tokens a kept slot already held (the first
     * choice's; each choice has its own slot). */
    return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)r->n_prompt,
                     "completion_tokens", (json_int_t)n_gen, "total_tokens",
                     (json_int_t)(r->n_prompt + n_gen), "prompt_tokens_details",
                     "cached_tokens", (json_int_t)(r->n_choices ? r->choices[0].n_cached : 0));
}

/* A token as chat logprobs give it: its text, its bytes, its log-probability. */
static json_t *token_json(const srv_t *srv, const srv_lp_t *lp)
{
    size_t n = 0;
    const char *p = slm_tokenizer_piece(srv->s->tok, lp->id, &n);
    json_t *bytes = json_array();
    for (size_t i = 0; p && i < n; i++)
        json_array_append_new(bytes, json_integer((unsigned char)p[i]));
    return json_pack("{s:o, s:f, s:o}", "token", slm_cli_json_text(p ? p : "", n), "logprob",
                     (double)lp->logprob, "bytes", bytes);
}

/* Chat: {"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}. */
static json_t *chat_logprobs(const srv_t *srv, const srv_choice_t *c, size_t from, size_t to)
{
    size_t k = (size_t)c->req->top_logprobs;
    json_t *content = json_array();
    for (size_t i = from; i < to; i++) {
        const srv_lp_t *row = c->lp + i * (k + 1);
        json_t *tok = token_json(srv, row), *top = json_array();
        for (size_t j = 1; j <= k; j++)
            json_array_append_new(top, token_json(srv, row + j));
        json_object_set_new(tok, "top_logprobs", top);
        json_array_append_new(content, tok);
    }
    return json_pack("{s:o, s:n}", "content", content, "refusal");
}

/* Completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}. */
static json_t *completion_logprobs(const srv_t *srv, const srv_choice_t *c, size_t from,
                                   size_t to, size_t offset)
{
    size_t k = (size_t)c->req->top_logprobs;
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array();
    json_t *offs = json_array();
    for (size_t i = from; i < to; i++) {
        const srv_lp_t *row = c->lp + i * (k + 1);
        size_t n = 0;
        const char *p = slm_tokenizer_piece(srv->s->tok, row->id, &n);
        json_array_append_new(toks, slm_cli_json_text(p ? p : "", n));
        json_array_append_new(lps, json_real(row->logprob));
        json_array_append_new(offs, json_integer((json_int_t)offset));
        offset += n;
        json_t *top = json_object();
        for (size_t j = 1; j <= k; j++) {
            size_t m = 0;
            const char *q = slm_tokenizer_piece(srv->s->tok, row[j].id, &m);
            json_t *key = slm_cli_json_text(q ? q : "", m);
            json_object_set_new(top, json_string_value(key), json_real(row[j].logprob));
            json_decref(key);
        }
        json_array_append_new(tops, top);
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lps,
                     "top_logprobs", tops, "text_offset", offs);
}

static json_t *logprobs_json(const srv_t *srv, const srv_choice_t *c, size_t from, size_t to,
                             size_t offset)
{
    if (c->req->top_logprobs < 0)
        return json_null();
    return c->req->kind == SRV_CHAT ? chat_logprobs(srv, c, from, to)
                                    : completion_logprobs(srv, c, from, to, offset);
}

static const char *object_name(const srv_req_t *r, bool chunk)
{
    if (r->kind != SRV_CHAT)
        return "text_completion";
    return chunk ? "chat.completion.chunk" : "chat.completion";
}

json_t *srv_response_json(const srv_t *srv, const srv_req_t *r)
{
    json_t *choices = json_array();
    for (size_t i = 0; i < r->n_choices; i++) {
        const srv_choice_t *c = &r->choices[i];
        json_t *text = slm_cli_json_text(c->text ? c->text : "", c->len);
        json_t *lp = logprobs_json(srv, c, 0, c->n_lp, 0);
        json_t *choice = r->kind == SRV_CHAT
            ? json_pack("{s:i, s:{s:s, s:o}, s:o, s:s?}", "index", (int)i, "message", "role",
                        "assistant", "content", text, "logprobs", lp, "finish_reason",
                        srv_finish_reason(c->why))
            : json_pack("{s:i, s:o, s:o, s:s?}", "index", (int)i, "text", text, "logprobs", lp,
                        "finish_reason", srv_finish_reason(c->why));
        json_array_append_new(choices, choice);
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", r->id, "object",
                     object_name(r, false), "created", (json_int_t)r->created, "model",
                     r->model, "choices", choices, "usage", usage(r));
}

json_t *srv_chunk_json(const srv_t *srv, const srv_choice_t *c, const char *text, size_t len,
                       size_t lp_from, size_t lp_to, bool first, slm_seq_stop_t why)
{
    const srv_req_t *r = c->req;
    const char *finish = why == SLM_SEQ_NOT_STOPPED ? NULL : srv_finish_reason(why);
    json_t *lp = lp_to > lp_from ? logprobs_json(srv, c, lp_from, lp_to, c->sent)
                                 : json_null();
    json_t *choice;
    if (r->kind == SRV_CHAT) {
        json_t *delta = json_object();
        if (first)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (len || (first && !finish))
            json_object_set_new(delta, "content", slm_cli_json_text(text, len));
        choice = json_pack("{s:i, s:o, s:o, s:s?}", "index", (int)c->index, "delta", delta,
                           "logprobs", lp, "finish_reason", finish);
    } else {
        choice = json_pack("{s:i, s:o, s:o, s:s?}", "index", (int)c->index, "text",
                           slm_cli_json_text(text, len), "logprobs", lp, "finish_reason",
                           finish);
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", r->id, "object",
                     object_name(r, true), "created", (json_int_t)r->created, "model",
                     r->model, "choices", choice);
}

json_t *srv_usage_chunk_json(const srv_t *srv, const srv_req_t *r)
{
    (void)srv;
    return json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", r->id, "object",
                     object_name(r, true), "created", (json_int_t)r->created, "model",
                     r->model, "choices", "usage", usage(r));
}

json_t *srv_models_json(const srv_t *srv)
{
    json_t *data = json_array();
    for (size_t i = 0; i <= srv->n_adapters; i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id",
                                              i ? srv->adapter_names[i - 1] : srv->model_id,
                                              "object", "model", "created",
                                              (json_int_t)srv->created, "owned_by", "slmops"));
    return json_pack("{s:s, s:o}", "object", "list", "data", data);
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

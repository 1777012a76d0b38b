/* POST /v1/embeddings of `slmops serve`: each input's final hidden states (after the
 * output norm), mean-pooled over its tokens and L2-normalized, run by the engine. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common.h"
#include "cli/serve/serve.h"

#define MAX_INPUTS 128

void srv_embed_free(srv_embed_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_inputs; i++)
        free(e->tokens[i]);
    free(e->tokens);
    free(e->n_tokens);
    free(e->vectors);
    free(e);
}

void srv_embed_run(srv_t *srv, srv_embed_t *e)
{
    if (srv->stopping) {   /* the engine may be gone */
        e->status = -1;
        snprintf(e->error, sizeof e->error, "the server is shutting down");
        return;
    }
    srv_embed_t **tail = &srv->embeds;
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    srv->n_inflight++;   /* a drain waits for it */
    pthread_cond_signal(&srv->wake);
    while (e->status == 0)
        pthread_cond_wait(&srv->embed_done, &srv->mu);
    srv->n_inflight--;
}

bool srv_engine_embed_pending(srv_t *srv)
{
    return srv->embeds != NULL;
}

void srv_engine_embed_cancel(srv_t *srv)
{
    for (srv_embed_t *e = srv->embeds; e; e = e->next) {
        e->status = -1;
        snprintf(e->error, sizeof e->error, "the server is shutting down");
    }
    srv->embeds = NULL;
    pthread_cond_broadcast(&srv->embed_done);
}

/* The engine's embedding context: one sequence of a slot's length. */
static int context(srv_t *srv, slm_error_t *err)
{
    if (srv->embed_ctx)
        return SLM_OK;
    slm_context_params_t cp;
    slm_context_params_default(&cp);
    cp.n_ctx = slm_generator_n_ctx_slot(srv->s->gen);
    cp.flags = SLM_CONTEXT_EMBEDDINGS;
    return slm_context_new(srv->s->model, &cp, &srv->embed_ctx, err);
}

/* One input: every token's hidden state, their mean, L2-normalized, into out. */
static int embed_one(srv_t *srv, const int32_t *tok, size_t n, int32_t adapter, float *out,
                     int32_t n_embd, slm_error_t *err)
{
    int8_t *want = malloc(n);
    if (!want)
        return SLM_E_NOMEM;
    memset(want, 1, n);
    slm_context_seq_clear(srv->embed_ctx, -1);
    int rc = slm_model_n_adapters(srv->s->model) == 0 ? SLM_OK
             : slm_context_seq_adapters(srv->embed_ctx, 0, &adapter, adapter >= 0, err);
    if (rc != SLM_OK) {
        free(want);
        return rc;
    }
    slm_batch_t b = {.struct_size = sizeof b, .n_tokens = (int32_t)n, .token = tok,
                     .logits = want};
    rc = slm_context_decode(srv->embed_ctx, &b, err);
    free(want);
    if (rc != SLM_OK)
        return rc;
    double *acc = calloc((size_t)n_embd, sizeof *acc);
    if (!acc)
        return SLM_E_NOMEM;
    for (size_t t = 0; t < n; t++) {
        const float *h = slm_context_embeddings(srv->embed_ctx, (int32_t)t);
        for (int32_t j = 0; h && j < n_embd; j++)
            acc[j] += h[j];
    }
    double norm = 0;
    for (int32_t j = 0; j < n_embd; j++) {
        acc[j] /= (double)n;
        norm += acc[j] * acc[j];
    }
    norm = norm > 0 ? sqrt(norm) : 1;
    for (int32_t j = 0; j < n_embd; j++)
        out[j] = (float)(acc[j] / norm);
    free(acc);
    return SLM_OK;
}

void srv_engine_embed(srv_t *srv)
{
    srv_embed_t *e = srv->embeds;
    srv->embeds = e->next;
    pthread_mutex_unlock(&srv->mu);
    slm_error_t err;
    slm_error_init(&err);
    int rc = context(srv, &err);
    int32_t n_embd = slm_model_n_embd(srv->s->model);
    e->n_embd = n_embd;
    if (rc == SLM_OK && !(e->vectors = malloc(e->n_inputs * (size_t)n_embd * sizeof(float))))
        rc = SLM_E_NOMEM;
    for (size_t i = 0; rc == SLM_OK && i < e->n_inputs; i++)
        rc = embed_one(srv, e->tokens[i], e->n_tokens[i], e->adapter,
                       e->vectors + i * (size_t)n_embd, n_embd, &err);
    pthread_mutex_lock(&srv->mu);
    e->status = rc == SLM_OK ? 1 : -1;
    if (rc != SLM_OK)
        snprintf(e->error, sizeof e->error, "%.190s", err.message[0] ? err.message
                                                                  : "out of memory");
    pthread_cond_broadcast(&srv->embed_done);
}

/* ---- the request and the answer ---- */

static bool add_input(srv_t *srv, srv_embed_t *e, json_t *v, srv_error_t *err)
{
    size_t i = e->n_inputs, room = slm_generator_n_ctx_slot(srv->s->gen);
    int32_t n_vocab = slm_model_n_vocab(srv->s->model);
    if (json_is_string(v)) {
        slm_error_t le;
        slm_error_init(&le);
        unsigned flags = slm_tokenizer_add_bos(srv->s->tok) ? SLM_TOKENIZE_ADD_BOS : 0;
        if (slm_tokenizer_encode(srv->s->tok, json_string_value(v), json_string_length(v),
                                 flags, &e->tokens[i], &e->n_tokens[i], &le) != SLM_OK) {
            srv_error_set(err, 400, "invalid_request_error", "input", NULL, "%s", le.message);
            return false;
        }
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v), j;
        json_t *t;
        if (n && !(e->tokens[i] = malloc(n * sizeof **e->tokens)))
            return false;
        json_array_foreach(v, j, t) {
            json_int_t id = json_is_integer(t) ? json_integer_value(t) : -1;
            if (id < 0 || id >= n_vocab) {
                srv_error_set(err, 400, "invalid_request_error", "input", NULL, "'input' "
                              "holds %s; token ids go from 0 to %d", json_is_integer(t)
                              ? "a token id outside the vocabulary" : "something that is "
                              "not a token id", n_vocab - 1);
                e->n_inputs++;
                return false;
            }
            e->tokens[i][j] = (int32_t)id;
        }
        e->n_tokens[i] = n;
    } else {
        srv_error_set(err, 400, "invalid_request_error", "input", NULL, "'input' must be a "
                      "string, an array of strings, or token ids");
        return false;
    }
    e->n_inputs++;
    if (e->n_tokens[i] == 0 || e->n_tokens[i] > room) {
        srv_error_set(err, 400, "invalid_request_error", "input", NULL, "input %zu has %zu "
                      "tokens; it must have 1 to %zu", i, e->n_tokens[i], room);
        return false;
    }
    return true;
}

/* The inputs of a body: a string, token ids, or an array of either. */
static bool inputs(srv_t *srv, srv_embed_t *e, json_t *in, srv_error_t *err)
{
    bool many = json_is_array(in) && json_array_size(in) > 0 &&
                (json_is_string(json_array_get(in, 0)) || json_is_array(json_array_get(in, 0)));
    size_t n = many ? json_array_size(in) : 1;
    if (!in || (json_is_array(in) && json_array_size(in) == 0) || n > MAX_INPUTS) {
        srv_error_set(err, 400, "invalid_request_error", "input", NULL, "'input' must hold "
                      "1 to %d inputs", MAX_INPUTS);
        return false;
    }
    e->tokens = calloc(n, sizeof *e->tokens);
    e->n_tokens = calloc(n, sizeof *e->n_tokens);
    if (!e->tokens || !e->n_tokens)
        return false;
    if (!many)
        return add_input(srv, e, in, err);
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v) {
        if (!json_is_string(v) && !json_is_array(v)) {
            srv_error_set(err, 400, "invalid_request_error", "input", NULL, "'input' must "
                          "not mix strings and token ids");
            return false;
        }
        if (!add_input(srv, e, v, err))
            return false;
    }
    return true;
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static json_t *vector_json(const float *v, int32_t n, bool b64)
{
    if (b64) {   /* little-endian float32, as OpenAI sends it */
        char *s = base64((const unsigned char *)v, (size_t)n * sizeof *v);
        json_t *j = s ? json_string(s) : NULL;
        free(s);
        return j;
    }
    json_t *a = json_array();
    for (int32_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static const char *const embed_fields[] = {"model", "input", "encoding_format", "user", NULL};

json_t *srv_embeddings(srv_t *srv, const char *body, size_t len, srv_error_t *err)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *out = NULL;
    if (!doc || !json_is_object(doc)) {
        srv_error_set(err, 400, "invalid_request_error", NULL, NULL, "the body is not a JSON "
                      "object%s%s", doc ? "" : ": ", doc ? "" : je.text);
        json_decref(doc);
        return NULL;
    }
    const char *key, *model_name = NULL;
    json_t *v;
    json_object_foreach(doc, key, v) {
        size_t i = 0;
        while (embed_fields[i] && strcmp(embed_fields[i], key) != 0)
            i++;
        if (!embed_fields[i]) {
            srv_error_set(err, 400, "invalid_request_error", NULL, "unknown_parameter",
                          "Unrecognized request argument supplied: %.64s", key);
            json_decref(doc);
            return NULL;
        }
    }
    json_t *fmt = json_object_get(doc, "encoding_format"), *model = json_object_get(doc, "model");
    bool b64 = json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0;
    if (fmt && !json_is_null(fmt) && !b64 &&
        (!json_is_string(fmt) || strcmp(json_string_value(fmt), "float") != 0)) {
        srv_error_set(err, 400, "invalid_request_error", "encoding_format", NULL,
                      "'encoding_format' must be \"float\" or \"base64\"");
        json_decref(doc);
        return NULL;
    }
    int32_t adapter = -1;
    if (!srv_resolve_model(srv, model, &model_name, &adapter, err)) {
        json_decref(doc);
        return NULL;
    }
    srv_embed_t *e = calloc(1, sizeof *e);
    if (e)
        e->adapter = adapter;
    bool ok = e && inputs(srv, e, json_object_get(doc, "input"), err);
    json_decref(doc);
    if (ok) {
        pthread_mutex_lock(&srv->mu);
        srv_embed_run(srv, e);
        pthread_mutex_unlock(&srv->mu);
        if (e->status < 0)
            srv_error_set(err, 503, "server_error", NULL, NULL, "%s", e->error);
        ok = e->status > 0;
    } else if (!err->status) {
        srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    if (ok) {
        json_t *data = json_array();
        size_t n_tok = 0;
        for (size_t i = 0; i < e->n_inputs; i++) {
            n_tok += e->n_tokens[i];
            json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                                  "index", (json_int_t)i, "embedding",
                                                  vector_json(e->vectors + i * (size_t)e->n_embd,
                                                              e->n_embd, b64)));
        }
        out = json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data,
                        "model", model_name, "usage", "prompt_tokens", (json_int_t)n_tok,
                        "total_tokens", (json_int_t)n_tok);
        pthread_mutex_lock(&srv->mu);
        srv->metrics.prompt_tokens += n_tok;
        pthread_mutex_unlock(&srv->mu);
    }
    srv_embed_free(e);
    return out;
}

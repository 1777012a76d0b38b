/* A {"messages": [...]} training example: the conversation rendered with the model's
 * chat template, learned on the assistant turns only, found turn by turn as the
 * text each assistant message adds after its generation prompt. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "train/dataset-internal.h"

/* The first n messages rendered (bare array); *out is freed by the caller. */
static int render_first(const slm_dataset_params_t *p, const json_t *all, size_t n, bool gen,
                        char **out, char *why, size_t why_size)
{
    json_t *part = json_array();
    for (size_t i = 0; part && i < n; i++)
        json_array_append(part, json_array_get(all, i));
    char *text = part ? json_dumps(part, JSON_COMPACT) : NULL;
    json_decref(part);
    if (!text)
        return SLM_E_NOMEM;
    slm_chat_params_t cp;
    slm_chat_params_default(&cp);
    cp.add_generation_prompt = gen;
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_chat_template_render(p->chat, text, &cp, out, &err);
    free(text);
    if (rc != SLM_OK)
        snprintf(why, why_size, "the chat template refuses the conversation: %s", err.message);
    return rc == SLM_OK ? SLM_OK : SLM_E_FORMAT;
}

static bool is_prefix(const char *p, const char *s)
{
    return strncmp(p, s, strlen(p)) == 0;
}

static bool valid_messages(const json_t *all, char *why, size_t why_size, size_t *n_assistant)
{
    *n_assistant = 0;
    for (size_t i = 0; i < json_array_size(all); i++) {
        const json_t *m = json_array_get(all, i);
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_object(m) || !json_is_string(role)) {
            snprintf(why, why_size, "messages[%zu] needs a \"role\" string", i);
            return false;
        }
        if (content && !json_is_string(content) && !json_is_null(content) &&
            !json_is_array(content)) {
            snprintf(why, why_size, "messages[%zu].content must be a string", i);
            return false;
        }
        *n_assistant += strcmp(json_string_value(role), "assistant") == 0;
    }
    if (!*n_assistant)
        snprintf(why, why_size, "no assistant message to learn from");
    return *n_assistant > 0;
}

/* Spans [start, end) of the full rendering that the assistant turns add. */
static int assistant_spans(const slm_dataset_params_t *p, const json_t *all, const char *full,
                           size_t *spans, size_t *n_spans, char *why, size_t why_size)
{
    *n_spans = 0;
    for (size_t i = 0; i < json_array_size(all); i++) {
        const char *role = json_string_value(json_object_get(json_array_get(all, i), "role"));
        if (strcmp(role, "assistant") != 0)
            continue;
        char *before = NULL, *with = NULL;
        int rc = render_first(p, all, i, true, &before, why, why_size);
        if (rc == SLM_OK)
            rc = render_first(p, all, i + 1, false, &with, why, why_size);
        if (rc == SLM_OK && !(is_prefix(before, full) && is_prefix(with, full) &&
                              strlen(with) >= strlen(before))) {
            snprintf(why, why_size, "the chat template does not render this conversation turn by "
                     "turn (messages[%zu]), so its assistant tokens cannot be told apart", i);
            rc = SLM_E_FORMAT;
        }
        if (rc == SLM_OK) {
            spans[2 * *n_spans] = strlen(before);
            spans[2 * *n_spans + 1] = strlen(with);
            (*n_spans)++;
        }
        free(before);
        free(with);
        if (rc != SLM_OK)
            return rc;
    }
    return SLM_OK;
}

int slm__example_from_messages(const slm_dataset_params_t *p, const char *messages_json,
                               size_t n_messages, slm__example_builder_t *b, char *why,
                               size_t why_size)
{
    json_t *all = json_loads(messages_json, 0, NULL);
    size_t n_assistant = 0, n_spans = 0;
    size_t *spans = NULL;
    char *full = NULL;
    int rc = SLM_E_FORMAT;
    if (!all || !valid_messages(all, why, why_size, &n_assistant))
        goto out;
    spans = malloc(2 * n_assistant * sizeof *spans);
    rc = spans ? render_first(p, all, n_messages, false, &full, why, why_size) : SLM_E_NOMEM;
    if (rc == SLM_OK)
        rc = assistant_spans(p, all, full, spans, &n_spans, why, why_size);
    /* Tokenized piece by piece at the span edges, as the chat verb tokenizes the
     * rendering (special tokens' text parsed; BOS added when the vocabulary wants it). */
    size_t at = 0;
    for (size_t s = 0; rc == SLM_OK && s <= n_spans; s++) {
        size_t start = s < n_spans ? spans[2 * s] : strlen(full);
        unsigned flags = SLM_TOKENIZE_PARSE_SPECIAL |
                         (at == 0 && slm_tokenizer_add_bos(p->tok) ? SLM_TOKENIZE_ADD_BOS : 0);
        if (start > at || at == 0)
            rc = slm__example_encode(p->tok, full + at, start - at, flags, false, b, why,
                                     why_size);
        if (rc == SLM_OK && s < n_spans) {
            size_t end = spans[2 * s + 1];
            rc = slm__example_encode(p->tok, full + start, end - start,
                                     SLM_TOKENIZE_PARSE_SPECIAL, true, b, why, why_size);
            at = end;
        }
    }
out:
    free(spans);
    free(full);
    json_decref(all);
    return rc;
}

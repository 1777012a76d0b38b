/* Inside `slmops chat`: the conversation, and the prompt side of a turn (the chat
 * template, and the tokens the KV cache already holds) shared by cli/chat*.c. */
#ifndef SLMOPS_CLI_CHAT_H
#define SLMOPS_CLI_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/chat.h>

#include "cli/session.h"

/* The messages so far; contents are owned. */
typedef struct slm_cli_convo {
    slm_chat_message_t *m;
    size_t n, cap;
} slm_cli_convo_t;

bool slm_cli_convo_add(slm_cli_convo_t *c, const char *role, const char *content, size_t len);
/* Drop messages [from, from + n). */
void slm_cli_convo_drop(slm_cli_convo_t *c, size_t from, size_t n);
void slm_cli_convo_free(slm_cli_convo_t *c);

/* The template and what the cache holds: cache[0 .. n_cache) are the tokens of
 * sequence 0, so a new rendering is decoded only past their common prefix. */
typedef struct slm_cli_prompt {
    slm_chat_template_t *tmpl;
    slm_chat_params_t params;
    int32_t *cache;
    size_t n_cache, cap_cache;
    size_t n_dropped;      /* messages dropped by context shifts so far */
} slm_cli_prompt_t;

/* The template: forced (a built-in name or a Jinja source), a file, or else the
 * model's own; bos/eos texts from the session's tokenizer. kwargs_json: more
 * template variables (a JSON object) or NULL. Prints why on failure. */
int slm_cli_prompt_open(slm_cli_prompt_t *p, slm_cli_session_t *s, const char *forced,
                        const char *file, const char *kwargs_json);
void slm_cli_prompt_close(slm_cli_prompt_t *p);

/* Render convo (opening the assistant's turn) and tokenize it; the cache is cut
 * back to the common prefix (in the KV cache too), and *ids / *n are the tokens
 * still to decode (a view into *all, which the caller frees). When the prompt and
 * `reserve` more tokens do not fit the context, the oldest turns after a leading
 * system message are dropped first (a context shift), and *shifted says how many. */
int slm_cli_prompt_prepare(slm_cli_prompt_t *p, slm_cli_session_t *s, slm_cli_convo_t *convo,
                           size_t reserve, int32_t **all, const int32_t **ids, size_t *n,
                           size_t *shifted);
/* After a decode: the new ids and the generated tokens that entered the KV cache
 * (the context's position says how many) are what the cache holds now. */
bool slm_cli_prompt_commit(slm_cli_prompt_t *p, slm_cli_session_t *s, const int32_t *ids,
                           size_t n, const int32_t *gen, size_t n_gen);

#endif

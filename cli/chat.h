/* Inside `slmops chat`: the conversation, and the prompt side of a turn (the chat
 * template, and the tokens the KV cache already holds) shared by cli/chat*.c. */
#ifndef SLMOPS_CLI_CHAT_H
#define SLMOPS_CLI_CHAT_H

#include <signal.h>
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
/* Returned by slm_cli_prompt_prepare when even the last message alone does not fit
 * (it said so): the chat drops that message and goes on. */
#define SLM_CLI_PROMPT_TOO_LONG 3
int slm_cli_prompt_prepare(slm_cli_prompt_t *p, slm_cli_session_t *s, slm_cli_convo_t *convo,
                           size_t reserve, int32_t **all, const int32_t **ids, size_t *n,
                           size_t *shifted);
/* After a decode: the new ids and the generated tokens that entered the KV cache
 * (the context's position says how many) are what the cache holds now. */
bool slm_cli_prompt_commit(slm_cli_prompt_t *p, slm_cli_session_t *s, const int32_t *ids,
                           size_t n, const int32_t *gen, size_t n_gen);

/* ---- input (cli/chat-input.c) ---- */

/* Set by SIGINT while chat runs: stops the reply, or leaves at an empty prompt. */
extern volatile sig_atomic_t slm_cli_chat_interrupted;
/* Chat's own SIGINT handler (sigaction, no SA_RESTART), and the previous one back. */
bool slm_cli_chat_sigint_install(struct sigaction *saved);
void slm_cli_chat_sigint_restore(const struct sigaction *saved);

typedef enum slm_cli_chat_in {
    SLM_CLI_CHAT_MESSAGE,   /* msg[0 .. msg_len) is a user message */
    SLM_CLI_CHAT_EOF,
    SLM_CLI_CHAT_QUIT,      /* /bye, /exit, Ctrl-C at an empty prompt */
    SLM_CLI_CHAT_CLEAR,     /* /clear */
    SLM_CLI_CHAT_HELP,      /* /help, /? */
    SLM_CLI_CHAT_UNKNOWN,   /* another /word (in msg) */
    SLM_CLI_CHAT_ERROR      /* reading failed */
} slm_cli_chat_in_t;

typedef struct slm_cli_chat_reader {
    bool tty;               /* show "> " and "... " prompts */
    char *buf;              /* bytes read from stdin, not yet used: [start, len) */
    size_t start, len, cap;
    bool eof;
    char *msg;              /* the message or command read last */
    size_t msg_len, msg_cap;
} slm_cli_chat_reader_t;

/* What the user typed next: a line, a """ block (lines joined by newlines), or a
 * command; empty lines are skipped. */
slm_cli_chat_in_t slm_cli_chat_read(slm_cli_chat_reader_t *r);
void slm_cli_chat_reader_free(slm_cli_chat_reader_t *r);
void slm_cli_chat_help(void);

#endif

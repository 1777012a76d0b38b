/* The prompt side of `slmops chat`: choosing the chat template, rendering the whole
 * conversation each turn, and decoding only what the KV cache does not hold yet. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/input.h>

#include "cli/chat.h"
#include "cli/common.h"

#define MAX_TEMPLATE_BYTES (4u << 20)

/* ---- the conversation ---- */

bool slm_cli_convo_add(slm_cli_convo_t *c, const char *role, const char *content, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        slm_chat_message_t *m = realloc(c->m, cap * sizeof *m);
        if (!m)
            return false;
        c->m = m;
        c->cap = cap;
    }
    char *copy = strndup(content, len);
    if (!copy)
        return false;
    c->m[c->n++] = (slm_chat_message_t){.role = role, .content = copy};
    return true;
}

void slm_cli_convo_drop(slm_cli_convo_t *c, size_t from, size_t n)
{
    if (from >= c->n)
        return;
    if (n > c->n - from)
        n = c->n - from;
    for (size_t i = from; i < from + n; i++)
        free((char *)c->m[i].content);
    memmove(c->m + from, c->m + from + n, (c->n - from - n) * sizeof *c->m);
    c->n -= n;
}

void slm_cli_convo_free(slm_cli_convo_t *c)
{
    slm_cli_convo_drop(c, 0, c->n);
    free(c->m);
    memset(c, 0, sizeof *c);
}

/* ---- choosing the template ---- */

/* A template file: a regular file (not a FIFO that would block), at most 4 MiB. */
static char *read_template(const char *verb, const char *path, size_t *len)
{
    char *buf = NULL;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_input_read_all(path, MAX_TEMPLATE_BYTES, &buf, len, &err) != SLM_OK) {
        fprintf(stderr, "slmops %s: --chat-template-file %s\n", verb, err.message);
        return NULL;
    }
    return buf;
}

/* "chatml, llama2, ..." for messages. */
static const char *builtin_names(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; slm_chat_template_builtin_name(i) && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                                 slm_chat_template_builtin_name(i));
    return buf;
}

/* --chat-template VALUE: a built-in name, else (when it looks like Jinja) a source. */
static int open_forced(const char *verb, const char *forced, slm_chat_template_t **t,
                       slm_error_t *err)
{
    if (slm_chat_template_builtin(forced, t, err) == SLM_OK)
        return SLM_CLI_OK;
    if (!strstr(forced, "{{") && !strstr(forced, "{%")) {
        char names[256];
        fprintf(stderr, "slmops %s: unknown chat template '%s': give a built-in name (%s), "
                "a Jinja template, or --chat-template-file FILE\n", verb, forced,
                builtin_names(names, sizeof names));
        return SLM_CLI_USAGE;
    }
    if (slm_chat_template_parse(forced, strlen(forced), t, err) != SLM_OK) {
        fprintf(stderr, "slmops %s: --chat-template: %s\n", verb, err->message);
        return SLM_CLI_FAILED;
    }
    return SLM_CLI_OK;
}

static int open_template(slm_cli_prompt_t *p, slm_cli_session_t *s, const char *forced,
                         const char *file)
{
    slm_error_t err;
    slm_error_init(&err);
    if (forced)
        return open_forced(s->verb, forced, &p->tmpl, &err);
    if (file) {
        size_t len;
        char *src = read_template(s->verb, file, &len);
        if (!src)
            return SLM_CLI_FAILED;
        int rc = slm_chat_template_parse(src, len, &p->tmpl, &err);
        free(src);
        if (rc == SLM_OK)
            return SLM_CLI_OK;
        fprintf(stderr, "slmops %s: %s: %s\n", s->verb, file, err.message);
        return SLM_CLI_FAILED;
    }
    int rc = slm_chat_template_from_model_file(slm_model_container(s->model), &p->tmpl, &err);
    if (rc == SLM_OK)
        return SLM_CLI_OK;
    if (rc == SLM_E_NOT_FOUND) {
        char names[256];
        fprintf(stderr, "slmops %s: the model has no chat template; choose one with "
                "--chat-template NAME (%s) or --chat-template-file FILE\n", s->verb,
                builtin_names(names, sizeof names));
        return SLM_CLI_FAILED;
    }
    fprintf(stderr, "slmops %s: the model's chat template: %s (use --chat-template NAME or "
            "--chat-template-file FILE instead)\n", s->verb, err.message);
    return SLM_CLI_FAILED;
}

static const char *token_text(const slm_tokenizer_t *tok, int32_t id)
{
    return id >= 0 ? slm_tokenizer_token_text(tok, id) : NULL;
}

int slm_cli_prompt_open(slm_cli_prompt_t *p, slm_cli_session_t *s, const char *forced,
                        const char *file, const char *kwargs_json)
{
    memset(p, 0, sizeof *p);
    slm_chat_params_default(&p->params);
    int rc = open_template(p, s, forced, file);
    if (rc != SLM_CLI_OK)
        return rc;
    /* the tokenizer in use names BOS/EOS (it may come from --tokenizer) */
    const char *bos = token_text(s->tok, slm_tokenizer_bos(s->tok));
    const char *eos = token_text(s->tok, slm_tokenizer_eos(s->tok));
    p->params.bos_token = bos ? bos : slm_chat_template_bos_token(p->tmpl);
    p->params.eos_token = eos ? eos : slm_chat_template_eos_token(p->tmpl);
    p->params.vars_json = kwargs_json;
    return SLM_CLI_OK;
}

void slm_cli_prompt_close(slm_cli_prompt_t *p)
{
    slm_chat_template_free(p->tmpl);
    free(p->cache);
    memset(p, 0, sizeof *p);
}

/* ---- a turn ---- */

/* The conversation as tokens: rendered text, BOS added unless the text has it. */
static int render_tokens(slm_cli_prompt_t *p, slm_cli_session_t *s, const slm_cli_convo_t *c,
                         int32_t **ids, size_t *n)
{
    char *text = NULL;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_chat_template_apply(p->tmpl, c->m, c->n, &p->params, &text, &err) != SLM_OK) {
        fprintf(stderr, "slmops chat: %s\n", err.message);
        return SLM_CLI_FAILED;
    }
    const char *bos = p->params.bos_token;
    bool has_bos = bos && *bos && strncmp(text, bos, strlen(bos)) == 0;
    unsigned flags = SLM_TOKENIZE_PARSE_SPECIAL |
                     (slm_tokenizer_add_bos(s->tok) && !has_bos ? SLM_TOKENIZE_ADD_BOS : 0);
    int rc = slm_cli_encode(s, text, strlen(text), flags, ids, n);
    free(text);
    if (rc == SLM_CLI_OK && *n == 0) {
        fprintf(stderr, "slmops chat: the chat template gave an empty prompt\n");
        rc = SLM_CLI_FAILED;
    }
    return rc;
}

/* The first message a context shift may drop (after a leading system message) and
 * how many go with it (a user message and the replies up to the next one); 0 when
 * only the last user message would remain. */
static size_t oldest_turn(const slm_cli_convo_t *c, size_t *from)
{
    *from = c->n && strcmp(c->m[0].role, "system") == 0;
    size_t end = *from + 1;
    while (end < c->n && strcmp(c->m[end].role, "user") != 0)
        end++;
    return end < c->n ? end - *from : 0;
}

int slm_cli_prompt_prepare(slm_cli_prompt_t *p, slm_cli_session_t *s, slm_cli_convo_t *convo,
                           size_t reserve, int32_t **all, const int32_t **ids, size_t *n,
                           size_t *shifted)
{
    size_t n_ctx = slm_generator_n_ctx_slot(s->gen), n_all = 0, from;
    *all = NULL;
    *shifted = 0;
    for (;;) {
        int rc = render_tokens(p, s, convo, all, &n_all);
        if (rc != SLM_CLI_OK)
            return rc;
        if (n_all + reserve <= n_ctx)
            break;
        size_t drop = oldest_turn(convo, &from);
        if (!drop && n_all < n_ctx)
            break;   /* the reply may run short, but the message fits */
        if (!drop) {
            fprintf(stderr, "slmops chat: the message needs %zu tokens but the context holds "
                    "%zu: it is not sent (raise --ctx, or send a shorter one)\n", n_all, n_ctx);
            free(*all);
            *all = NULL;
            return SLM_CLI_PROMPT_TOO_LONG;
        }
        free(*all);
        slm_cli_convo_drop(convo, from, drop);
        (*shifted)++;
    }
    size_t k = 0;
    while (k < p->n_cache && k < n_all && p->cache[k] == (*all)[k])
        k++;
    if (k == n_all)
        k--;   /* the last token is decoded again: its logits start the reply */
    slm_seq_truncate(s->seq, (int32_t)k);
    p->n_cache = k;
    *ids = *all + k;
    *n = n_all - k;
    return SLM_CLI_OK;
}

static bool cache_push(slm_cli_prompt_t *p, const int32_t *ids, size_t n)
{
    if (p->n_cache + n > p->cap_cache) {
        size_t cap = p->cap_cache ? p->cap_cache : 1024;
        while (cap < p->n_cache + n)
            cap *= 2;
        int32_t *v = realloc(p->cache, cap * sizeof *v);
        if (!v)
            return false;
        p->cache = v;
        p->cap_cache = cap;
    }
    memcpy(p->cache + p->n_cache, ids, n * sizeof *ids);
    p->n_cache += n;
    return true;
}

bool slm_cli_prompt_commit(slm_cli_prompt_t *p, slm_cli_session_t *s, const int32_t *ids,
                           size_t n, const int32_t *gen, size_t n_gen)
{
    if (!cache_push(p, ids, n))
        return false;
    int32_t pos = slm_seq_pos(s->seq);
    size_t in_kv = pos > 0 && (size_t)pos > p->n_cache ? (size_t)pos - p->n_cache : 0;
    return cache_push(p, gen, in_kv < n_gen ? in_kv : n_gen);
}

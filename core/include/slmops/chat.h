/* Chat templates: a model's tokenizer.chat_template (a Jinja source) rendered with a
 * conversation exactly as Hugging Face transformers' apply_chat_template renders it.
 *
 * The engine is a Jinja interpreter inside the library (jinja2's syntax, whitespace
 * rules with trim_blocks and lstrip_blocks, Python's semantics for values, filters
 * and methods, transformers' tojson, raise_exception and strftime_now). A template
 * it cannot parse or run fails with a message that names the construct and its
 * place ("chat template line 12, col 5: unsupported filter 'xmlattr'"); a template
 * that refuses a conversation (raise_exception) fails with its own message. A few
 * built-in templates (chatml, llama2, llama3, phi3, zephyr, gemma) are Jinja sources
 * too, for models that carry none. The BOS token is text like any other: templates
 * that want one write bos_token themselves. */
#ifndef SLMOPS_CHAT_H
#define SLMOPS_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model-file.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A parsed template; it may render from several threads at once. */
typedef struct slm_chat_template slm_chat_template_t;

typedef struct slm_chat_message {
    const char *role;      /* "system", "user", "assistant", "tool", ... */
    const char *content;
} slm_chat_message_t;

typedef struct slm_chat_params {
    uint32_t struct_size;
    bool add_generation_prompt;   /* open the assistant's turn (default true) */
    const char *bos_token;        /* NULL: the template's own (from its model file) or "" */
    const char *eos_token;
    const char *vars_json;        /* a JSON object of more variables (enable_thinking,
                                   * tools, ...), or NULL */
    int64_t now;                  /* strftime_now's time in seconds since the epoch
                                   * (local time); 0: the current time */
} slm_chat_params_t;

void slm_chat_params_default(slm_chat_params_t *p);

/* Parse a Jinja template. SLM_E_FORMAT for a syntax error, SLM_E_UNSUPPORTED for a
 * construct the engine lacks; err->offset is the byte offset in the source. */
int slm_chat_template_parse(const char *source, size_t len, slm_chat_template_t **out,
                            slm_error_t *err);
/* The template a model file carries (tokenizer.chat_template), with the texts of its
 * vocabulary's BOS and EOS tokens as the defaults of bos_token and eos_token.
 * SLM_E_NOT_FOUND: the file has none. */
int slm_chat_template_from_model_file(const slm_model_file_t *mf, slm_chat_template_t **out,
                                      slm_error_t *err);
/* The i-th built-in template name, or NULL past the end. */
const char *slm_chat_template_builtin_name(size_t i);
/* A built-in template by name; SLM_E_NOT_FOUND for an unknown name. */
int slm_chat_template_builtin(const char *name, slm_chat_template_t **out, slm_error_t *err);
/* The template's source text. */
const char *slm_chat_template_source(const slm_chat_template_t *t);
/* Its default bos_token / eos_token texts (from a model file), or NULL. */
const char *slm_chat_template_bos_token(const slm_chat_template_t *t);
const char *slm_chat_template_eos_token(const slm_chat_template_t *t);
void slm_chat_template_free(slm_chat_template_t *t);

/* Render a conversation given as JSON text: {"messages": [...], "tools": [...]?,
 * "extra": {...}?} (extra's keys become variables) or a bare array of messages.
 * *out is NUL-terminated, to release with free(). SLM_E_INVALID when the template
 * refuses the conversation (raise_exception: err->message is its message, verbatim)
 * or fails while running (err says where and why). */
int slm_chat_template_render(const slm_chat_template_t *t, const char *conversation_json,
                             const slm_chat_params_t *p, char **out, slm_error_t *err);
/* The same with the messages as an array (no tools). */
int slm_chat_template_apply(const slm_chat_template_t *t, const slm_chat_message_t *msgs,
                            size_t n, const slm_chat_params_t *p, char **out, slm_error_t *err);
/* Parse source and render conversation_json in one call. */
int slm_chat_render(const char *source, const char *conversation_json,
                    const slm_chat_params_t *p, char **out, slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

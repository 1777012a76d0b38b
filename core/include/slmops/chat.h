/* Chat templates: recognising a model's tokenizer.chat_template (a Jinja source) as
 * one of the common built-in formats, and formatting a conversation with it.
 *
 * There is no Jinja engine: as llama.cpp's llm_chat_detect_template does, a source is
 * matched by distinctive substrings, and each built-in format is written in C.
 * Built-in names (llama.cpp's spelling): chatml, llama2, llama2-sys, llama2-sys-bos,
 * llama2-sys-strip, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7,
 * mistral-v7-tekken, phi3, phi4, falcon3, zephyr, gemma, llama3, vicuna,
 * vicuna-orca, deepseek, command-r. The BOS token is not part of the text: callers
 * add it when the tokenizer asks for one. */
#ifndef SLMOPS_CHAT_H
#define SLMOPS_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <slmops/error.h>
#include <slmops/model-file.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_chat_message {
    const char *role;      /* "system", "user" or "assistant" */
    const char *content;
} slm_chat_message_t;

/* The i-th built-in template name, or NULL past the end. */
const char *slm_chat_template_name(size_t i);

/* The built-in template a chat_template source (or a built-in name) stands for,
 * or NULL when none is recognised. */
const char *slm_chat_template_detect(const char *source);

/* The template of a model file: `forced` when non-NULL (it must be a built-in
 * name), else detected from tokenizer.chat_template. *name is a static string.
 * SLM_E_NOT_FOUND: the file has no template; SLM_E_UNSUPPORTED: it has one that
 * is not recognised (err quotes its start); SLM_E_INVALID: unknown forced name. */
int slm_chat_template_for(const slm_model_file_t *mf, const char *forced, const char **name,
                          slm_error_t *err);

/* Format n messages with the built-in template `name`; add_generation_prompt opens
 * the assistant's turn. *out is a NUL-terminated string to release with free().
 * SLM_E_INVALID for an unknown name or a message without role or content. */
int slm_chat_apply(const char *name, const slm_chat_message_t *msgs, size_t n,
                   bool add_generation_prompt, char **out, slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

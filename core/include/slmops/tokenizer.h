/* Tokenizers: text <-> token ids for the vocabularies a model file describes with
 * GGUF's tokenizer.* keys (SentencePiece-style BPE, byte-level BPE, WordPiece).
 *
 * Behaviour follows llama.cpp's llama-vocab.cpp, so ids agree with llama.cpp for the
 * same file. A tokenizer is immutable once built: any number of threads may encode
 * and decode with it at once. Detokenizers (streaming) belong to one thread each. */
#ifndef SLMOPS_TOKENIZER_H
#define SLMOPS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model-file.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_tokenizer slm_tokenizer_t;
typedef struct slm_detokenizer slm_detokenizer_t;

/* "No such token" (an id a vocabulary lacks, e.g. no EOT). */
#define SLM_TOKEN_NULL (-1)

/* Token attributes (bits, as llama.cpp's llama_token_attr). GGUF's
 * tokenizer.ggml.token_type values map to one of the first six. */
#define SLM_TOKEN_ATTR_UNKNOWN      (1u << 0)
#define SLM_TOKEN_ATTR_UNUSED       (1u << 1)
#define SLM_TOKEN_ATTR_NORMAL       (1u << 2)
#define SLM_TOKEN_ATTR_CONTROL      (1u << 3)
#define SLM_TOKEN_ATTR_USER_DEFINED (1u << 4)
#define SLM_TOKEN_ATTR_BYTE         (1u << 5)
#define SLM_TOKEN_ATTR_LSTRIP       (1u << 7)  /* matched special text eats spaces before */
#define SLM_TOKEN_ATTR_RSTRIP       (1u << 8)  /* ... and after */

/* Flags for slm_tokenizer_encode. */
#define SLM_TOKENIZE_ADD_BOS       (1u << 0)  /* start with BOS (if the vocabulary has one) */
#define SLM_TOKENIZE_PARSE_SPECIAL (1u << 1)  /* control tokens' text in the input becomes
                                               * those tokens; user-defined tokens always do */

/* Flags for slm_tokenizer_decode and slm_detokenizer_new. */
#define SLM_DECODE_RENDER_SPECIAL  (1u << 0)  /* control/unknown tokens print their text */
#define SLM_DECODE_REMOVE_SPECIAL  (1u << 1)  /* drop a leading BOS / trailing EOS that the
                                               * vocabulary adds by itself */
#define SLM_DECODE_KEEP_SPACES     (1u << 2)  /* skip the vocabulary's clean-up of spaces
                                               * before punctuation (GPT-2 style " ," -> ",") */
#define SLM_DECODE_CONTINUE        (1u << 3)  /* the ids continue earlier text: keep the
                                               * first piece's leading space */

/* Build a tokenizer from the tokenizer.* keys of a model file (the container may be
 * freed afterwards: the tokenizer keeps its own copy). SLM_E_NOT_FOUND when the file
 * has no tokenizer, SLM_E_UNSUPPORTED for an unknown tokenizer.ggml.model/pre. */
int slm_tokenizer_from_model_file(const slm_model_file_t *mf, slm_tokenizer_t **out,
                                  slm_error_t *err);
/* Open `path` with slm_model_file_open (any format plugin: GGUF, tokenizer.bin,
 * tokenizer.model, a Hugging Face folder...) and build its tokenizer. */
int slm_tokenizer_load(slm_registry_t *reg, const char *path, slm_tokenizer_t **out,
                       slm_error_t *err);
void slm_tokenizer_free(slm_tokenizer_t *tok);

/* Encode len bytes of text (need not be NUL-terminated; invalid UTF-8 is tolerated as
 * llama.cpp does). On success *ids is a malloc'd array the caller frees with free()
 * (NULL when *n_ids is 0). */
int slm_tokenizer_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                         unsigned flags, int32_t **ids, size_t *n_ids, slm_error_t *err);

/* Decode ids to text, as llama.cpp's llama_detokenize does, except that a leading
 * space of the first piece is also removed after a BOS (as SentencePiece and
 * llama2.c do). *text is malloc'd, NUL-terminated, freed with free(). */
int slm_tokenizer_decode(const slm_tokenizer_t *tok, const int32_t *ids, size_t n_ids,
                         unsigned flags, char **text, size_t *len, slm_error_t *err);

/* The bytes token `id` prints as (control tokens' text included); valid as long as
 * the tokenizer. NULL for an id out of range. May hold a partial UTF-8 character. */
const char *slm_tokenizer_piece(const slm_tokenizer_t *tok, int32_t id, size_t *len);
/* The vocabulary entry itself (e.g. "\xe2\x96\x81the", "<0x0A>", "Ġthe"), or NULL. */
const char *slm_tokenizer_token_text(const slm_tokenizer_t *tok, int32_t id);
float slm_tokenizer_token_score(const slm_tokenizer_t *tok, int32_t id);
unsigned slm_tokenizer_token_attr(const slm_tokenizer_t *tok, int32_t id);
/* Id of the vocabulary entry spelled exactly `text` (len bytes), or SLM_TOKEN_NULL. */
int32_t slm_tokenizer_find_token(const slm_tokenizer_t *tok, const char *text, size_t len);

size_t slm_tokenizer_n_vocab(const slm_tokenizer_t *tok);
/* Special ids, SLM_TOKEN_NULL when the vocabulary has none. */
int32_t slm_tokenizer_bos(const slm_tokenizer_t *tok);
int32_t slm_tokenizer_eos(const slm_tokenizer_t *tok);
int32_t slm_tokenizer_eot(const slm_tokenizer_t *tok);
int32_t slm_tokenizer_unk(const slm_tokenizer_t *tok);
int32_t slm_tokenizer_pad(const slm_tokenizer_t *tok);
/* Whether generation should stop at `id` (EOS, EOT, <|im_end|>, ...). */
bool slm_tokenizer_is_eog(const slm_tokenizer_t *tok, int32_t id);
/* Whether the vocabulary wants BOS at the start of a prompt (tokenizer.ggml.add_bos_token
 * or the kind's default). */
bool slm_tokenizer_add_bos(const slm_tokenizer_t *tok);
/* "spm", "bpe" or "wpm". */
const char *slm_tokenizer_kind(const slm_tokenizer_t *tok);
/* The pre-tokenizer as llama.cpp names it ("default", "llama3", "qwen2", ...). */
const char *slm_tokenizer_pre(const slm_tokenizer_t *tok);

/* Streaming decoder: feed ids one at a time and print what comes back, which only
 * ever holds whole UTF-8 characters (bytes of a character split across tokens are
 * held until it is complete). flags: SLM_DECODE_RENDER_SPECIAL, SLM_DECODE_CONTINUE. */
int slm_detokenizer_new(const slm_tokenizer_t *tok, unsigned flags, slm_detokenizer_t **out);
void slm_detokenizer_free(slm_detokenizer_t *dt);
/* *text and *len: bytes ready to print, valid until the next call on dt. */
int slm_detokenizer_feed(slm_detokenizer_t *dt, int32_t id, const char **text, size_t *len);
/* Whatever is held back (an incomplete character at the end of the stream). */
int slm_detokenizer_flush(slm_detokenizer_t *dt, const char **text, size_t *len);

#ifdef __cplusplus
}
#endif
#endif

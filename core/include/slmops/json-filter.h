/* Constrained sampling for JSON output: a filter that, at each generated token,
 * lets through only the tokens that keep the text a prefix of a JSON value its
 * schema accepts (OpenAI's response_format json_object and json_schema).
 *
 * The schema is a subset of JSON Schema; anything outside it is refused with
 * SLM_E_UNSUPPORTED naming the keyword, never silently ignored:
 *   type          "object", "array", "string", "number", "integer", "boolean", "null",
 *                 or an array of these (at most one of them "object" or "array")
 *   properties    object: the keys it may have, written in the order given
 *   required      object: keys that must appear (a required key is never skipped)
 *   additionalProperties   false only (true, or a schema, is refused)
 *   items         array: the schema of every element
 *   enum          any JSON values (compared as written, compactly)
 *   const         one JSON value
 *   title, description, $schema, default, examples: ignored (annotations)
 * Limits: 64 properties per object, 64 enum values, 32 levels of nesting.
 * No schema (NULL) accepts any JSON object, as json_object mode asks.
 *
 * The text may have at most two whitespace characters in a row between tokens of
 * JSON (so a model cannot fill max_tokens with blanks); an object's keys come in
 * the schema's order; once the value is complete only an end-of-generation token
 * may follow. A token whose text is empty or a control token never passes. */
#ifndef SLMOPS_JSON_FILTER_H
#define SLMOPS_JSON_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/tokenizer.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_json_filter slm_json_filter_t;

/* A filter for tok's vocabulary (it must outlive the filter) from a JSON Schema given
 * as JSON text of len bytes, or NULL for any JSON object. SLM_E_INVALID for text that
 * is not a JSON object, SLM_E_UNSUPPORTED for a keyword or value outside the subset. */
int slm_json_filter_new(const slm_tokenizer_t *tok, const char *schema, size_t len,
                        slm_json_filter_t **out, slm_error_t *err);
void slm_json_filter_free(slm_json_filter_t *f);

enum {
    SLM_JSON_REJECTED = 0,     /* no continuation makes it a value the schema accepts */
    SLM_JSON_PREFIX = 1,       /* a prefix of one */
    SLM_JSON_COMPLETE = 2      /* a whole value the schema accepts */
};

/* How len bytes of text stand against the filter's schema (SLM_JSON_*). */
int slm_json_filter_check(const slm_json_filter_t *f, const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif

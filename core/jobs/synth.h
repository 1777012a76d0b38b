/* Inside the synth job (the teacher writes a distillation data set): the prompt
 * file read into prompts, and the filters a response must pass to be kept. */
#ifndef SLMOPS_JOBS_SYNTH_H
#define SLMOPS_JOBS_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <slmops/error.h>

typedef struct slm__synth_prompt {
    const char *prompt, *system, *answer;  /* system, answer: NULL when not given */
    size_t line;
} slm__synth_prompt_t;

typedef struct slm__synth_prompts {
    json_t *lines;             /* owns the JSONL objects */
    char *text;                /* owns a plain file's lines */
    slm__synth_prompt_t *v;
    size_t n;
} slm__synth_prompts_t;

/* Plain lines (each non-blank line a prompt) or JSONL ({"prompt", "system"?,
 * "answer"?}), told apart by the first non-blank character ('{': JSONL). */
int slm__synth_prompts_load(const char *path, slm__synth_prompts_t *p, slm_error_t *err);
void slm__synth_prompts_free(slm__synth_prompts_t *p);

/* A remote teacher (through a client outside the library): the prompts, each with
 * its system prompt, as JSONL {"line", "prompt", "system"?} written atomically to
 * path; and the responses read back, {"line", "sample", "response" | "error",
 * "finish_reason"?, "seed"?}, in prompt order, samples in order. */
typedef struct slm__synth_response {
    size_t line, len;
    int64_t sample;
    const char *text, *error, *finish;   /* text or error: the other is NULL */
    int64_t seed;
} slm__synth_response_t;

typedef struct slm__synth_responses {
    json_t *lines;             /* owns the strings */
    slm__synth_response_t *v;
    size_t n;
} slm__synth_responses_t;

int slm__synth_requests_write(const char *path, const slm__synth_prompts_t *p,
                              const char *system, const char *const *inputs, size_t n_inputs,
                              slm_error_t *err);
int slm__synth_responses_load(const char *path, slm__synth_responses_t *r, slm_error_t *err);
void slm__synth_responses_free(slm__synth_responses_t *r);

/* Why a response was dropped (index into the report's "dropped"), or -1: kept. */
enum { SLM__DROP_EMPTY, SLM__DROP_SHORT, SLM__DROP_LONG, SLM__DROP_REPEAT,
       SLM__DROP_DUPLICATE, SLM__DROP_CHECK, SLM__DROP_N };
extern const char *const slm__synth_drop_names[SLM__DROP_N];

typedef struct slm__synth_filter slm__synth_filter_t;

typedef struct slm__synth_filter_params {
    int32_t min_chars, max_chars;   /* max 0: no bound */
    double max_repeat;              /* share of repeated word 3-grams; >= 1: off */
    bool dedup;
    const char *check;              /* NULL, "exact", "contains" or "regex" */
    const char *regex;              /* check "regex": the pattern (PCRE2) */
} slm__synth_filter_params_t;

int slm__synth_filter_new(const slm__synth_filter_params_t *p, slm__synth_filter_t **out,
                          slm_error_t *err);
void slm__synth_filter_free(slm__synth_filter_t *f);
/* *verdict: -1 to keep text (a response to prompt pr), or the SLM__DROP_* reason.
 * Kept texts are remembered for deduplication. */
int slm__synth_filter_judge(slm__synth_filter_t *f, const slm__synth_prompt_t *pr,
                            const char *text, size_t len, int *verdict, slm_error_t *err);
/* The share of the text's word 3-grams that repeat an earlier one (0: none). */
double slm__synth_repetition(const char *text, size_t len);

#endif

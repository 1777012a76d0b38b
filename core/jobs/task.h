/* Task evaluation inside the eval job: a task file (JSONL, docs/slmops.1 "TASK
 * FILES") read into examples, then each scored by generation or log-likelihood. */
#ifndef SLMOPS_JOBS_TASK_H
#define SLMOPS_JOBS_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <slmops/error.h>
#include <slmops/model.h>
#include <slmops/tokenizer.h>

#include "jobs/kind.h"

enum { SLM__TASK_EXACT, SLM__TASK_CONTAINS, SLM__TASK_CHOICE };

typedef struct slm__task_ex {
    int kind;                  /* SLM__TASK_* */
    const char *prompt;        /* or NULL when messages is set */
    const json_t *messages;    /* an array of {"role", "content"}, borrowed */
    const json_t *answers;     /* generation: an array of accepted strings */
    const json_t *choices;     /* multiple choice: the array of strings */
    int32_t answer_index;
    const json_t *stop;        /* an array of strings, or NULL */
    const json_t *id;          /* the example's "id", or NULL */
    size_t line;
} slm__task_ex_t;

typedef struct slm__task {
    json_t *lines;             /* owns every example's JSON */
    slm__task_ex_t *ex;
    size_t n;
} slm__task_t;

/* Read and check a task file; default_kind is SLM__TASK_EXACT or _CONTAINS for
 * examples with an "answer" and no "match". */
int slm__task_load(const char *path, int default_kind, slm__task_t *t, slm_error_t *err);
void slm__task_free(slm__task_t *t);

typedef struct slm__task_run {
    const char *path;          /* for messages and progress */
    int32_t max_tokens;        /* generated tokens per answer */
    int32_t n_ctx;             /* context per example; 0: the model's, at most 4096 */
    const char *chat_template; /* for "messages": a built-in name or text; NULL: the model's */
    const slm__jobrt_t *rt;
} slm__task_run_t;

/* Score every example; *results gets {"n", "correct", "accuracy", "ci95", ...,
 * "examples": [...]}. */
int slm__task_eval(slm_model_t *m, const slm_tokenizer_t *tok, const slm__task_t *t,
                   const slm__task_run_t *r, json_t **results, slm_error_t *err);

#endif

/* Inside the training data: the example store datasets share, and the builders of
 * one example from a JSONL line (dataset.c, dataset-chat.c) and of batches. */
#ifndef SLMOPS_TRAIN_DATASET_INTERNAL_H
#define SLMOPS_TRAIN_DATASET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slmops/dataset.h>

/* One example: its tokens and which of them are learned. */
typedef struct slm__example {
    int32_t *tokens;
    uint8_t *learned;
    size_t n;
    size_t line;               /* 1-based line of a JSONL file; 0 for plain text */
} slm__example_t;

/* Examples of one file, shared by a dataset and the sets split from it. */
typedef struct slm__example_store {
    int refs;
    slm__example_t *ex;
    size_t n, cap;
    int32_t pad;               /* token that fills empty positions */
    int32_t n_ctx;             /* tokens a row holds (no example is longer) */
} slm__example_store_t;

struct slm_dataset {
    slm__example_store_t *store;
    size_t *idx;               /* the store's examples this set holds, in file order */
    size_t n;
    uint64_t n_tokens, n_scored;
    size_t n_skipped;
    char first_skip[512];
};

/* An example under construction: tokens appended with their learned flag. */
typedef struct slm__example_builder {
    slm__example_t ex;
    size_t cap;
    bool oom;
} slm__example_builder_t;

void slm__example_append(slm__example_builder_t *b, const int32_t *ids, size_t n, bool learned);

/* Tokens of a {"messages": [...]} line rendered with the chat template, learned on
 * the assistant turns. The line's JSON is given as text; a message names what is
 * wrong (without the file and line, which the caller adds). */
int slm__example_from_messages(const slm_dataset_params_t *p, const char *messages_json,
                               size_t n_messages, slm__example_builder_t *b, char *why,
                               size_t why_size);

/* The order of a pass over n examples: a permutation of 0..n-1 drawn from seed and
 * epoch (dataset-batch.c); the same numbers give the same order on every machine. */
int slm__dataset_order(size_t n, uint64_t seed, uint64_t epoch, size_t *order);

/* Tokenize text into b (flags: SLM_TOKENIZE_*). */
int slm__example_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        unsigned flags, bool learned, slm__example_builder_t *b, char *why,
                        size_t why_size);

#endif

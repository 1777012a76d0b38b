/* Training data: a text file or JSONL examples turned into token sequences with a
 * loss mask, split for validation, shuffled by seed and packed into batches of rows.
 *
 * Formats (by content of each JSONL line; a file not named *.jsonl is plain text):
 *   plain text           the whole file, tokenized once, cut into --ctx windows;
 *                        every token is learned
 *   {"text": S}          S, learned whole
 *   {"prompt": P, "completion": C}   learned on C only
 *   {"messages": [...]}  rendered with the model's chat template; learned on the
 *                        assistant turns only (their text and end-of-turn marker)
 * Every bad line (invalid JSON or UTF-8, a wrong field, an example longer than the
 * context) is an error naming the file and line, unless bad lines are skipped and
 * counted. Batches pack whole examples into rows; attention never crosses examples
 * (each token carries its example's id in the row and its position in it). */
#ifndef SLMOPS_DATASET_H
#define SLMOPS_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/chat.h>
#include <slmops/error.h>
#include <slmops/tokenizer.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_dataset slm_dataset_t;

typedef struct slm_dataset_params {
    uint32_t struct_size;
    const slm_tokenizer_t *tok;          /* required; kept, not copied */
    const slm_chat_template_t *chat;     /* for {"messages"} lines; NULL: they are errors */
    int32_t n_ctx;                       /* tokens a row holds; longer examples are bad */
    bool skip_bad_lines;                 /* count and skip bad lines instead of failing */
} slm_dataset_params_t;

void slm_dataset_params_default(slm_dataset_params_t *p);

/* Read and tokenize every example of path. SLM_E_FORMAT names the file and line of the
 * first bad line (or says the file holds no example). */
int slm_dataset_load(const char *path, const slm_dataset_params_t *p, slm_dataset_t **out,
                     slm_error_t *err);
void slm_dataset_free(slm_dataset_t *ds);

size_t slm_dataset_n_examples(const slm_dataset_t *ds);
/* Tokens, and the tokens learned (those with a loss), over all examples. */
uint64_t slm_dataset_n_tokens(const slm_dataset_t *ds);
uint64_t slm_dataset_n_scored(const slm_dataset_t *ds);
/* Bad lines skipped (skip_bad_lines), and the first one's message ("" for none). */
size_t slm_dataset_n_skipped(const slm_dataset_t *ds);
const char *slm_dataset_first_skip(const slm_dataset_t *ds);

/* Example i: its tokens, which of them are learned (1) and the source line (0 for
 * plain text). Pointers live as long as the dataset. */
int slm_dataset_example(const slm_dataset_t *ds, size_t i, const int32_t **tokens,
                        const uint8_t **learned, size_t *n, size_t *line);

/* Split off a validation set: the examples are ordered by seed and the last
 * ceil(fraction x n) go to *val (at least one when fraction > 0 and n >= 2). Both
 * share the examples with ds, which may be freed first. */
int slm_dataset_split(const slm_dataset_t *ds, double fraction, uint64_t seed,
                      slm_dataset_t **train, slm_dataset_t **val, slm_error_t *err);

/* Where an iteration over the examples stands: which pass (epoch), how many examples
 * of its order are used, and the seed that orders each pass. Plain numbers, so a
 * checkpoint can keep it and a resumed run continues with the same batches. */
typedef struct slm_dataset_cursor {
    uint64_t seed;
    uint64_t epoch;
    uint64_t next;
    bool shuffle;              /* false: file order every pass (validation) */
} slm_dataset_cursor_t;

/* One batch of rows, n_rows x n_ctx, row-major. Free with slm_dataset_batch_free. */
typedef struct slm_dataset_batch {
    int32_t n_rows, n_ctx;
    int32_t *tokens;           /* pad token where a row has nothing */
    int32_t *targets;          /* the next token to learn at each position, or -1 */
    int32_t *doc;              /* example id within the row (0, 1, ...), -1 for padding */
    int32_t *pos;              /* position within its example */
    uint64_t n_scored;         /* positions whose target is not -1 */
    uint64_t n_examples;       /* examples packed (a long text counts per window) */
    bool epoch_ended;          /* the last example of a pass went into this batch */
} slm_dataset_batch_t;

/* Pack the next examples of the order into n_rows rows (whole examples, greedily;
 * a row closes when the next example does not fit). A pass that ends starts the next
 * one (epoch + 1, a new order) unless stop_at_epoch_end, when the batch may hold
 * fewer examples (and empty rows). */
int slm_dataset_next_batch(const slm_dataset_t *ds, slm_dataset_cursor_t *cur, int32_t n_rows,
                           bool stop_at_epoch_end, slm_dataset_batch_t *out, slm_error_t *err);
void slm_dataset_batch_free(slm_dataset_batch_t *b);

#ifdef __cplusplus
}
#endif
#endif

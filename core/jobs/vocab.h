/* The synthetic vocabulary of `slmops init`: <unk>, <s>, </s>, the 256 byte
 * tokens, then generated pieces with decreasing scores (docs/slmops.1). */
#ifndef SLMOPS_JOBS_VOCAB_H
#define SLMOPS_JOBS_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/model-file.h>

/* Set the tokenizer.ggml.* keys of a vocabulary of exactly n_vocab tokens. */
int slm__jobs_write_vocab(slm_model_file_t *mf, size_t n_vocab, slm_error_t *err);

/* Set the tokenizer.* keys of `to` from `from` (a byte-level BPE vocabulary), keeping
 * only the tokens with used[id] set, the byte alphabet, special tokens and the merges
 * that build them, renumbered in their order (vocab-trim.c); *n_kept: how many. */
int slm__vocab_trim(const slm_model_file_t *from, const bool *used, slm_model_file_t *to,
                    uint32_t *n_kept, slm_error_t *err);

#endif

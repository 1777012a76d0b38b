/* The synthetic vocabulary of `slmops init`: <unk>, <s>, </s>, the 256 byte
 * tokens, then generated pieces with decreasing scores (docs/slmops.1). */
#ifndef SLMOPS_JOBS_VOCAB_H
#define SLMOPS_JOBS_VOCAB_H

#include <stddef.h>
#include <slmops/error.h>
#include <slmops/model-file.h>

/* Set the tokenizer.ggml.* keys of a vocabulary of exactly n_vocab tokens. */
int slm__jobs_write_vocab(slm_model_file_t *mf, size_t n_vocab, slm_error_t *err);

#endif

/* Helpers shared by the tokenizer tests: reading fixtures, loading tokenizers and
 * checking llama.cpp's .inp/.out tokenizer test vectors. */
#ifndef SLMOPS_TESTS_TOKENIZER_VECTORS_H
#define SLMOPS_TESTS_TOKENIZER_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slmops/tokenizer.h>

/* What follows each test string in a .inp file. */
#define TT_SEPARATOR "\n__ggml_vocab_test__\n"

/* The whole file, NUL-terminated (malloc'd), or NULL. */
char *tt_read_all(const char *path, size_t *len);
/* slm_tokenizer_load through a fresh registry; fails the test on error. */
slm_tokenizer_t *tt_load(const char *path);
void tt_ids_to_string(const int32_t *ids, size_t n, char *out, size_t cap);
/* Printable form of bytes (\xNN for the others). */
void tt_escape(const char *s, size_t n, char *out, size_t cap);
void tt_check_vectors(slm_tokenizer_t *tok, const char *name, const char *inp, const char *outp,
                      bool round_trip);

#endif

/* The byte buffer of bytebuf.h, shared by the tests that write malformed GGUF,
 * llama2.c and SentencePiece files. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "bytebuf.h"

void b_bytes(buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void b_le(buf_t *b, uint64_t v, unsigned n)
{
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    b_bytes(b, x, n);
}

void b_free(buf_t *b)
{
    free(b->p);
    *b = (buf_t){0};
}

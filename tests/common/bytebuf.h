/* A growable byte buffer for tests that build malformed files byte by byte:
 * little-endian integers of any width, raw bytes. Allocation failures fail the test. */
#ifndef SLMOPS_TESTS_COMMON_BYTEBUF_H
#define SLMOPS_TESTS_COMMON_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf_t;

void b_bytes(buf_t *b, const void *p, size_t n);
/* The low n bytes of v, least significant first. */
void b_le(buf_t *b, uint64_t v, unsigned n);
/* Free the bytes and leave b empty, ready to build again. */
void b_free(buf_t *b);

#endif

/* SHA-256 of byte streams, as lowercase hex: the checksums checkpoint manifests keep. */
#ifndef SLMOPS_INTERNAL_SHA256_H
#define SLMOPS_INTERNAL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct slm__sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t fill;
} slm__sha256_t;

void slm__sha256_init(slm__sha256_t *s);
void slm__sha256_update(slm__sha256_t *s, const void *data, size_t n);
void slm__sha256_final(slm__sha256_t *s, char hex[65]);

#endif

/* Helpers every quantizer plugin shares: the block-by-block reference dot product
 * (half-float conversion is the SDK's <slmops/fp16.h>). */
#include "config.h"

#include <string.h>

#include "quant.h"

float qz_dot_by_blocks(qz_dequant_fn dequant, int block, size_t block_bytes, const void *x,
                       const float *y, int64_t n)
{
    float buf[QK_K];
    const uint8_t *p = x;
    double sum = 0.0;
    for (int64_t i = 0; i + block <= n; i += block, p += block_bytes) {
        dequant(p, buf, block);
        for (int j = 0; j < block; j++)
            sum += (double)buf[j] * (double)y[i + j];
    }
    return (float)sum;
}

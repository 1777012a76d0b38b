/* Helpers every quantizer plugin shares: half-float conversion (plugins do not
 * link the core) and the block-by-block reference dot product. */
#include "config.h"

#include <string.h>

#include "quant.h"

float qz_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0 && mant == 0) {
        bits = sign;
    } else if (exp == 0) {          /* subnormal half: renormalise */
        uint32_t e = 113;           /* 127 - 15 + 1 */
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t qz_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (abs >= 0x477ff000u)         /* rounds to 65520 or more: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000u) {        /* result is subnormal or zero */
        if (abs < 0x33000000u)      /* at most half the smallest subnormal */
            return (uint16_t)sign;
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t bits = abs - 0x38000000u;   /* exponent bias 127 -> 15 */
    uint32_t half = bits >> 13;
    uint32_t rem = bits & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++;                          /* a carry into the exponent is still right */
    return (uint16_t)(sign | half);
}

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

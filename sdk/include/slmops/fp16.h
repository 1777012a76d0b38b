/* Half (IEEE binary16) and bfloat16 conversions, header-only so that the core and
 * every plugin (which do not link the core) share one definition. */
#ifndef SLMOPS_FP16_H
#define SLMOPS_FP16_H

#include <stdint.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

static inline float slm_float_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Exact; subnormals through one multiply, so that loops of it vectorise. */
static inline float slm_half_to_float(uint16_t h)
{
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    if (em >= 0x7c00u)              /* infinity, NaN (payload kept) */
        return slm_float_from_bits(sign | 0x7f800000u | ((em & 0x3ffu) << 13));
    if (em < 0x0400u) {             /* zero, subnormal: em units of 2^-24 */
        float v = (float)em * 0x1p-24f;
        return sign ? -v : v;
    }
    return slm_float_from_bits(sign | ((em << 13) + ((uint32_t)(127 - 15) << 23)));
#endif
}

/* Round to nearest even; overflow to infinity; NaN stays a quiet NaN. */
static inline uint16_t slm_float_to_half(float f)
{
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (abs >= 0x477ff000u)         /* rounds to 65520 or more: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000u) {        /* the result is subnormal or zero */
        if (abs < 0x33000000u)      /* at most half the smallest subnormal */
            return (uint16_t)sign;
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;   /* aligns m to units of 2^-24 */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t bits = abs - 0x38000000u;  /* exponent bias 127 -> 15, in place */
    uint32_t half = bits >> 13;
    uint32_t rem = bits & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++;                     /* a carry into the exponent is right */
    return (uint16_t)(sign | half);
#endif
}

static inline float slm_bf16_to_float(uint16_t b)
{
    return slm_float_from_bits((uint32_t)b << 16);
}

/* Round to nearest even; NaN stays a quiet NaN. */
static inline uint16_t slm_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#ifdef __cplusplus
}
#endif
#endif

/* Vectorisable math for the CPU ops: expf in plain arithmetic (libm's is a call per
 * element, which keeps softmax and SiLU loops scalar) and a chunk width for loops. */
#ifndef SLMOPS_CPU_VMATH_H
#define SLMOPS_CPU_VMATH_H

#include <stdint.h>

/* Loops over fixed chunks of this many floats: -O2's cost model vectorises those. */
#define CPU_VW 16

/* e^x, Cephes' polynomial, within 2 ulp of expf for x in [-87, 88]; 0 below
 * (softmax's masked -inf included), e^88 above. */
static inline float cpu_expf(float x)
{
    union {
        float f;
        int32_t i;
    } u;
    float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round */
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    u.i = ((int32_t)n + 127) << 23;
    return x < -87.0f ? 0.0f : p * u.f;
}

/* The largest of x[0..n) (-inf when n is 0), in CPU_VW running maxima the
 * vectoriser keeps in one register. */
static inline float cpu_max_f32(const float *x, int64_t n)
{
    float m[CPU_VW];
    for (int j = 0; j < CPU_VW; j++)
        m[j] = -__builtin_inff();
    int64_t i = 0;
    for (; i + CPU_VW <= n; i += CPU_VW)
        for (int j = 0; j < CPU_VW; j++)
            m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    for (; i < n; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    float mx = m[0];
    for (int j = 1; j < CPU_VW; j++)
        mx = m[j] > mx ? m[j] : mx;
    return mx;
}

#if defined(__AVX__)
#include <immintrin.h>

/* The sum of a 256-bit vector's eight floats (the kernels' AVX2 paths). */
static inline float cpu_hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

#endif

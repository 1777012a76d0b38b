/* NF4, the slmops-only 4-bit NormalFloat type (QLoRA): 64-element blocks with an
 * f16 absmax scale and 4-bit indices into QLoRA's 16 levels (docs/quantization.md). */
#include "config.h"

#include <math.h>

#include "quant.h"

/* QLoRA's NormalFloat levels (bitsandbytes' NF4 table), ascending, in [-1, 1]. */
static const float nf4_levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* Nearest level to v in [-1, 1]; a value exactly between two levels takes the
 * upper one. Binary search over the midpoints (the table is sorted). */
static uint8_t nf4_index(float v)
{
    int lo = 0, hi = 15;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        float between = 0.5f * (nf4_levels[mid] + nf4_levels[mid + 1]);
        if (v >= between)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint8_t)lo;
}

int qz_quantize_nf4(const float *x, void *dst, int64_t n, const float *imatrix)
{
    (void)imatrix;   /* absmax scaling has no search an importance matrix could steer */
    blk_nf4 *y = dst;
    for (int64_t i = 0; i < n / QK_NF4; i++, x += QK_NF4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_NF4; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        y[i].d = slm_float_to_half(fminf(amax, 65504.0f));   /* largest finite half */
        /* Divide by the stored (rounded) scale so levels are chosen for what is read back. */
        const float d = slm_half_to_float(y[i].d);
        const float id = d ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK_NF4 / 2; j++) {
            uint8_t lo = nf4_index(fminf(1.0f, fmaxf(-1.0f, x[j] * id)));
            uint8_t hi = nf4_index(fminf(1.0f, fmaxf(-1.0f, x[j + QK_NF4 / 2] * id)));
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return 0;
}

int qz_dequantize_nf4(const void *src, float *y, int64_t n)
{
    const blk_nf4 *x = src;
    for (int64_t i = 0; i < n / QK_NF4; i++, y += QK_NF4) {
        const float d = slm_half_to_float(x[i].d);
        for (int j = 0; j < QK_NF4 / 2; j++) {
            y[j] = nf4_levels[x[i].qs[j] & 0x0f] * d;
            y[j + QK_NF4 / 2] = nf4_levels[x[i].qs[j] >> 4] * d;
        }
    }
    return 0;
}

float qz_dot_nf4(const void *x, const float *y, int64_t n)
{
    return qz_dot_by_blocks(qz_dequantize_nf4, QK_NF4, sizeof(blk_nf4), x, y, n);
}

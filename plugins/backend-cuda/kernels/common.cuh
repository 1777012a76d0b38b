// Shared by the CUDA backend's kernels: typed loads and stores at element
// coordinates, the quantized block decoders, unravelling and reductions.
// Mirrors plugins/backend-vulkan/shaders/common.glsl with native addresses.
#ifndef SLMOPS_CUDA_COMMON_CUH
#define SLMOPS_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include <slmops/ops.h>
#include <slmops/types.h>

#include "launch.h"

#define TY_NF4 1024   // slmops' own NF4 id, as the CPU backend names it

typedef int64_t i64;

#define NEG_INF (-__int_as_float(0x7f800000))

// Lanes of a warp, and how a kernel is queued. tests/cuda/emu runs these sources
// on the CPU, one thread per block (CU_WARP 1), through its own CU_LAUNCH.
#ifndef CU_WARP
#define CU_WARP 32
#endif
#ifndef CU_LAUNCH
#define CU_LAUNCH(kernel, grid, block, stream, p) kernel<<<(grid), (block), 0, (stream)>>>(p)
#endif

struct idx4 {
    i64 x, y, z, w;
};

__device__ __forceinline__ char *at(const cu_tensor_t &t, i64 i0, i64 i1, i64 i2, i64 i3)
{
    return t.data + i0 * t.nb[0] + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
}

__device__ __forceinline__ float ldh(const char *b)
{
    return __half2float(__ushort_as_half(*(const unsigned short *)b));
}

__device__ __forceinline__ unsigned ld8(const char *b)
{
    return (unsigned)*(const unsigned char *)b;
}

__device__ __forceinline__ int lds8(const char *b)
{
    return (int)*(const signed char *)b;
}

__constant__ static const float nf4_levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// Element k (innermost, 0-based) of the row of blocks starting at `row`.
template <int TY> __device__ __forceinline__ float ldq(const char *row, i64 k)
{
    if (TY == SLM_TYPE_Q8_0) {
        const char *b = row + (k / 32) * 34;
        return ldh(b) * (float)lds8(b + 2 + k % 32);
    }
    if (TY == SLM_TYPE_Q4_0) {
        const char *b = row + (k / 32) * 18;
        int j = (int)(k % 32);
        unsigned q = ld8(b + 2 + j % 16);
        q = j < 16 ? (q & 15u) : (q >> 4);
        return ldh(b) * (float)((int)q - 8);
    }
    if (TY == SLM_TYPE_Q4_1) {
        const char *b = row + (k / 32) * 20;
        int j = (int)(k % 32);
        unsigned q = ld8(b + 4 + j % 16);
        q = j < 16 ? (q & 15u) : (q >> 4);
        return ldh(b) * (float)q + ldh(b + 2);
    }
    if (TY == SLM_TYPE_Q5_0 || TY == SLM_TYPE_Q5_1) {
        const bool one = TY == SLM_TYPE_Q5_1;
        const char *b = row + (k / 32) * (one ? 24 : 22), *qh = b + (one ? 4 : 2);
        int j = (int)(k % 32);
        unsigned q = ld8(qh + 4 + j % 16);
        q = (j < 16 ? (q & 15u) : (q >> 4)) | (((ld8(qh + j / 8) >> (j % 8)) & 1u) << 4);
        return one ? ldh(b) * (float)q + ldh(b + 2) : ldh(b) * (float)((int)q - 16);
    }
    if (TY == TY_NF4) {
        const char *b = row + (k / 64) * 34;
        int j = (int)(k % 64);
        unsigned q = ld8(b + 2 + j % 32);
        q = j < 32 ? (q & 15u) : (q >> 4);
        return ldh(b) * nf4_levels[q];
    }
    if (TY == SLM_TYPE_Q4_K || TY == SLM_TYPE_Q5_K) {
        const bool five = TY == SLM_TYPE_Q5_K;
        const char *b = row + (k / 256) * (five ? 176 : 144);
        int j = (int)(k % 256), il = j / 64, l = j % 32, is = 2 * il + ((j % 64) >= 32 ? 1 : 0);
        const char *sb = b + 4;
        unsigned sc, m;
        if (is < 4) {
            sc = ld8(sb + is) & 63u;
            m = ld8(sb + is + 4) & 63u;
        } else {
            sc = (ld8(sb + is + 4) & 15u) | ((ld8(sb + is - 4) >> 6) << 4);
            m = (ld8(sb + is + 4) >> 4) | ((ld8(sb + is) >> 6) << 4);
        }
        const char *qs = b + (five ? 48 : 16);
        unsigned q = ld8(qs + il * 32 + l);
        q = (j % 64) >= 32 ? (q >> 4) : (q & 15u);
        if (five)
            q += ((ld8(b + 16 + l) >> is) & 1u) * 16u;
        return ldh(b) * (float)sc * (float)q - ldh(b + 2) * (float)m;
    }
    if (TY == SLM_TYPE_Q6_K) {
        const char *b = row + (k / 256) * 210;
        int j = (int)(k % 256), n = j / 128, r = j % 128, g = r / 32, l = r % 32;
        unsigned qlb = ld8(b + 64 * n + l + (g & 1) * 32);
        unsigned nib = g < 2 ? (qlb & 15u) : (qlb >> 4);
        unsigned qhb = (ld8(b + 128 + 32 * n + l) >> (2 * g)) & 3u;
        int q = (int)(nib | (qhb << 4)) - 32;
        int sc = lds8(b + 192 + 8 * n + l / 16 + 2 * g);
        return ldh(b + 208) * (float)sc * (float)q;
    }
    return 0.0f;
}

// Element (i0..i3) of a non-block tensor as f32.
__device__ __forceinline__ float ld(const cu_tensor_t &t, i64 i0, i64 i1, i64 i2, i64 i3)
{
    const char *a = at(t, i0, i1, i2, i3);
    switch (t.type) {
    case SLM_TYPE_F32: return *(const float *)a;
    case SLM_TYPE_F16: return ldh(a);
    case SLM_TYPE_BF16: return __uint_as_float((unsigned)*(const unsigned short *)a << 16);
    case SLM_TYPE_I32: return (float)*(const int32_t *)a;
    default: return 0.0f;
    }
}

__device__ __forceinline__ float ldf(const cu_tensor_t &t, i64 i0, i64 i1, i64 i2, i64 i3)
{
    return *(const float *)at(t, i0, i1, i2, i3);
}

__device__ __forceinline__ int ldi(const cu_tensor_t &t, i64 i0, i64 i1, i64 i2, i64 i3)
{
    return *(const int32_t *)at(t, i0, i1, i2, i3);
}

__device__ __forceinline__ void st(const cu_tensor_t &t, i64 i0, i64 i1, i64 i2, i64 i3, float v)
{
    char *a = at(t, i0, i1, i2, i3);
    if (t.type == SLM_TYPE_F16) {
        *(unsigned short *)a = __half_as_ushort(__float2half_rn(v));
    } else if (t.type == SLM_TYPE_BF16) {
        unsigned u = __float_as_uint(v);   // round to nearest even; NaN stays a quiet NaN
        u = isnan(v) ? 0x7fc0u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        *(unsigned short *)a = (unsigned short)u;
    } else {
        *(float *)a = v;
    }
}

__device__ __forceinline__ void stf(const cu_tensor_t &t, i64 i0, i64 i1, i64 i2, i64 i3, float v)
{
    *(float *)at(t, i0, i1, i2, i3) = v;
}

// Unravel a flat index over tensor t's shape.
__device__ __forceinline__ idx4 unravel(const cu_tensor_t &t, i64 k)
{
    idx4 i;
    i.x = k % t.ne[0]; k /= t.ne[0];
    i.y = k % t.ne[1]; k /= t.ne[1];
    i.z = k % t.ne[2]; k /= t.ne[2];
    i.w = k;
    return i;
}

__device__ __forceinline__ i64 nelem(const cu_tensor_t &t)
{
    return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = CU_WARP / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = CU_WARP / 2; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The sum (or max) over the block's threads, returned to every thread; `red`
// holds 32 floats of shared memory. Every thread of the block must call it.
template <bool MAX> __device__ __forceinline__ float block_reduce(float v, float *red)
{
    int lane = threadIdx.x % CU_WARP, w = threadIdx.x / CU_WARP;
    int nw = (blockDim.x + CU_WARP - 1) / CU_WARP;
    v = MAX ? warp_max(v) : warp_sum(v);
    __syncthreads();   // red may still be read by a previous reduction
    if (lane == 0)
        red[w] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : (MAX ? NEG_INF : 0.0f);
    return MAX ? warp_max(v) : warp_sum(v);
}

// A grid-stride loop's start and step for 1-D launches.
__device__ __forceinline__ i64 gid(void) { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ i64 gstride(void) { return (i64)gridDim.x * blockDim.x; }

// Blocks for n items of `per` threads each, capped (grid-stride loops cover the rest).
static inline unsigned grid_for(i64 n, int per)
{
    i64 g = (n + per - 1) / per;
    return (unsigned)(g < 1 ? 1 : g > 65535 * 16 ? 65535 * 16 : g);
}

#endif

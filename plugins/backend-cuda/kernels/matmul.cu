// Products, row gathers (weights of any type), their backward ops and REPEAT_BACK,
// with shaders/matmul.comp's maths.
#include "common.cuh"

// MUL_MAT, the hot one, runs one warp per weight row and up to MM_COLS columns of
// src1, so that each decoded weight serves MM_COLS products; the weight type is a
// template parameter, not a branch in the loop.

#define MM_COLS 8

// Element k of row (m, a2, a3) of the weight tensor w.
template <int TY> __device__ __forceinline__ float ldw(const cu_tensor_t &w, const char *row, i64 k)
{
    if (TY == SLM_TYPE_F32)
        return *(const float *)(row + k * w.nb[0]);
    if (TY == SLM_TYPE_F16)
        return ldh(row + k * w.nb[0]);
    if (TY == SLM_TYPE_BF16)
        return __uint_as_float((unsigned)*(const unsigned short *)(row + k * w.nb[0]) << 16);
    return ldq<TY>(row, k);
}

// dst[m, n, c2, c3] = sum_k A[k, m, c2 / r2, c3 / r3] * B[k, n, c2, c3]; one warp
// per (m, column group, c2, c3), lanes stride over k.
template <int TY> __global__ void mul_mat_kernel(const cu_params_t p)
{
    const cu_tensor_t &d = p.t[0], &a = p.t[1], &b = p.t[2];
    const i64 K = a.ne[0], M = a.ne[1], N = b.ne[1];
    const i64 groups = (N + MM_COLS - 1) / MM_COLS;
    const i64 r2 = b.ne[2] / a.ne[2], r3 = b.ne[3] / a.ne[3];
    const int lane = threadIdx.x % CU_WARP;
    const i64 warps = (i64)gridDim.x * (blockDim.x / CU_WARP);
    for (i64 wi = (i64)blockIdx.x * (blockDim.x / CU_WARP) + threadIdx.x / CU_WARP; wi < p.n_items;
         wi += warps) {
        i64 m = wi % M, t = wi / M;
        i64 g = t % groups;
        t /= groups;
        i64 c2 = t % b.ne[2], c3 = t / b.ne[2];
        i64 n0 = g * MM_COLS, nn = N - n0 < MM_COLS ? N - n0 : MM_COLS;
        const char *row = a.data + m * a.nb[1] + (c2 / r2) * a.nb[2] + (c3 / r3) * a.nb[3];
        const char *col = b.data + n0 * b.nb[1] + c2 * b.nb[2] + c3 * b.nb[3];
        float acc[MM_COLS];
#pragma unroll
        for (int j = 0; j < MM_COLS; j++)
            acc[j] = 0.0f;
        for (i64 k = lane; k < K; k += CU_WARP) {
            float w = ldw<TY>(a, row, k);
            const char *bk = col + k * b.nb[0];
#pragma unroll
            for (int j = 0; j < MM_COLS; j++)
                if (j < nn)
                    acc[j] += w * *(const float *)(bk + j * b.nb[1]);
        }
#pragma unroll
        for (int j = 0; j < MM_COLS; j++) {
            float s = warp_sum(acc[j]);
            if (lane == 0 && j < nn)
                stf(d, m, n0 + j, c2, c3, s);
        }
    }
}

// One destination element per thread, the weight type a template parameter.
template <int TY> __device__ __forceinline__ void weight_one(const cu_params_t &p, i64 k)
{
    const cu_tensor_t &d = p.t[0], &a = p.t[1], &b = p.t[2];
    idx4 i = unravel(d, k);
    if (p.op == SLM_OP_GET_ROWS) {
        // dst[e, n, b] = src0[e, ids[n, b], b % ne2]; an id out of range reads 0
        i64 r = ldi(b, i.y, i.z, 0, 0);
        float v = 0.0f;
        if (r >= 0 && r < a.ne[1])
            v = ldw<TY>(a, a.data + r * a.nb[1] + (i.z % a.ne[2]) * a.nb[2], i.x);
        stf(d, i.x, i.y, i.z, i.w, v);
        return;
    }
    // MUL_MAT_T: dst[k, n] = sum_m A[k, m] * B[m, n]
    i64 r2 = b.ne[2] / a.ne[2], r3 = b.ne[3] / a.ne[3];
    const char *base = a.data + (i.z / r2) * a.nb[2] + (i.w / r3) * a.nb[3];
    float s = 0.0f;
    for (i64 m = 0; m < a.ne[1]; m++)
        s += ldw<TY>(a, base + m * a.nb[1], i.x) * ldf(b, m, i.y, i.z, i.w);
    stf(d, i.x, i.y, i.z, i.w, s);
}

template <int TY> __global__ void weight_kernel(const cu_params_t p)
{
    for (i64 k = gid(); k < p.n_items; k += gstride())
        weight_one<TY>(p, k);
}

// f32-only ops of this family, one destination element per thread.
__global__ void reduce_kernel(const cu_params_t p)
{
    const cu_tensor_t &d = p.t[0], &a = p.t[1], &b = p.t[2];
    for (i64 k = gid(); k < p.n_items; k += gstride()) {
        idx4 i = unravel(d, k);
        float s = 0.0f;
        switch (p.op) {
        case SLM_OP_GET_ROWS_BACK:
            // dst[e, r] = sum of the gradient rows whose id is r
            if (i.z == 0 && i.w == 0)
                for (i64 bb = 0; bb < b.ne[1]; bb++)
                    for (i64 n = 0; n < b.ne[0]; n++)
                        if (ldi(b, n, bb, 0, 0) == i.y)
                            for (i64 c3 = 0; c3 < a.ne[3]; c3++)
                                s += ldf(a, i.x, n, bb, c3);
            break;
        case SLM_OP_OUT_PROD: {
            i64 r2 = a.ne[2] / d.ne[2], r3 = a.ne[3] / d.ne[3];
            for (i64 c3 = i.w * r3; c3 < (i.w + 1) * r3; c3++)
                for (i64 c2 = i.z * r2; c2 < (i.z + 1) * r2; c2++)
                    for (i64 kk = 0; kk < a.ne[1]; kk++)
                        s += ldf(a, i.x, kk, c2, c3) * ldf(b, i.y, kk, c2, c3);
            break;
        }
        case SLM_OP_REPEAT_BACK:
            for (i64 c3 = i.w; c3 < a.ne[3]; c3 += d.ne[3])
                for (i64 c2 = i.z; c2 < a.ne[2]; c2 += d.ne[2])
                    for (i64 c1 = i.y; c1 < a.ne[1]; c1 += d.ne[1])
                        for (i64 c0 = i.x; c0 < a.ne[0]; c0 += d.ne[0])
                            s += ldf(a, c0, c1, c2, c3);
            break;
        }
        stf(d, i.x, i.y, i.z, i.w, s);
    }
}

template <int TY> static void launch_typed(const cu_params_t *p, cudaStream_t s)
{
    if (p->op == SLM_OP_MUL_MAT)
        CU_LAUNCH(mul_mat_kernel<TY>, grid_for(p->n_items, 4), 128, s, *p);
    else
        CU_LAUNCH(weight_kernel<TY>, grid_for(p->n_items, 256), 256, s, *p);
}

extern "C" int cu_launch_matmul(const cu_params_t *p, void *stream)
{
    cudaStream_t s = (cudaStream_t)stream;
    if (p->op != SLM_OP_MUL_MAT && p->op != SLM_OP_MUL_MAT_T && p->op != SLM_OP_GET_ROWS) {
        CU_LAUNCH(reduce_kernel, grid_for(p->n_items, 256), 256, s, *p);
        return (int)cudaGetLastError();
    }
    switch (p->t[1].type) {
    case SLM_TYPE_F32: launch_typed<SLM_TYPE_F32>(p, s); break;
    case SLM_TYPE_F16: launch_typed<SLM_TYPE_F16>(p, s); break;
    case SLM_TYPE_BF16: launch_typed<SLM_TYPE_BF16>(p, s); break;
    case SLM_TYPE_Q8_0: launch_typed<SLM_TYPE_Q8_0>(p, s); break;
    case SLM_TYPE_Q4_0: launch_typed<SLM_TYPE_Q4_0>(p, s); break;
    case SLM_TYPE_Q4_1: launch_typed<SLM_TYPE_Q4_1>(p, s); break;
    case SLM_TYPE_Q5_0: launch_typed<SLM_TYPE_Q5_0>(p, s); break;
    case SLM_TYPE_Q5_1: launch_typed<SLM_TYPE_Q5_1>(p, s); break;
    case TY_NF4: launch_typed<TY_NF4>(p, s); break;
    case SLM_TYPE_Q4_K: launch_typed<SLM_TYPE_Q4_K>(p, s); break;
    case SLM_TYPE_Q5_K: launch_typed<SLM_TYPE_Q5_K>(p, s); break;
    case SLM_TYPE_Q6_K: launch_typed<SLM_TYPE_Q6_K>(p, s); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

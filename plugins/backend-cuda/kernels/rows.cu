// Row ops (one block per row), rope (one thread per rotated pair) and the
// whole-tensor sums (two launches through the scratch, t[3]).
#include "common.cuh"

// The maths are shaders/rows.comp's and the CPU backend's (ops-norm.c,
// ops-softmax.c, ops-rope.c, ops-loss.c): rms in double, masked rows to zeros.

#define ROW_THREADS 256

// The row of src0 that block-row r is: (r1, r2, r3).
__device__ __forceinline__ void row_of(const cu_tensor_t &a, i64 r, i64 *r1, i64 *r2, i64 *r3)
{
    *r1 = r % a.ne[1];
    *r2 = (r / a.ne[1]) % a.ne[2];
    *r3 = r / (a.ne[1] * a.ne[2]);
}

__device__ void rms_norm_row(const cu_params_t &p, i64 r1, i64 r2, i64 r3, float *red)
{
    const cu_tensor_t &d = p.t[0], &x = p.t[1], &dy = p.t[2];
    const i64 D = x.ne[0];
    const bool back = p.op == SLM_OP_RMS_NORM_BACK;
    float ss = 0.0f, dot = 0.0f;
    for (i64 c = threadIdx.x; c < D; c += blockDim.x) {
        float v = ldf(x, c, r1, r2, r3);
        ss += v * v;
        if (back)
            dot += v * ldf(dy, c, r1, r2, r3);
    }
    ss = block_reduce<false>(ss, red);
    if (back)
        dot = block_reduce<false>(dot, red);
    double rr = 1.0 / sqrt((double)ss / (double)D + (double)p.fp[0]);
    float a = (float)rr, b = (float)(rr * rr * rr * (double)dot / (double)D);
    for (i64 c = threadIdx.x; c < D; c += blockDim.x) {
        float v = ldf(x, c, r1, r2, r3);
        stf(d, c, r1, r2, r3, back ? a * ldf(dy, c, r1, r2, r3) - b * v : v * a);
    }
}

// x*scale + mask, -inf past the causal limit.
__device__ __forceinline__ float masked(const cu_params_t &p, i64 c, i64 r1, i64 r2, i64 r3)
{
    const cu_tensor_t &x = p.t[1], &m = p.t[2];
    if (p.ip[0] == 1 && c > p.ip[1] + r1)
        return NEG_INF;
    float v = ldf(x, c, r1, r2, r3) * p.fp[0];
    if (p.n_src > 1)
        v += ldf(m, c, r1 % m.ne[1], r2 % m.ne[2], r3 % m.ne[3]);
    return v;
}

__device__ void soft_max_row(const cu_params_t &p, i64 r1, i64 r2, i64 r3, float *red)
{
    const cu_tensor_t &d = p.t[0];
    const i64 D = p.t[1].ne[0];
    float mx = NEG_INF;
    for (i64 c = threadIdx.x; c < D; c += blockDim.x)
        mx = fmaxf(mx, masked(p, c, r1, r2, r3));
    mx = block_reduce<true>(mx, red);
    float sum = 0.0f;
    for (i64 c = threadIdx.x; c < D && mx != NEG_INF; c += blockDim.x)
        sum += expf(masked(p, c, r1, r2, r3) - mx);
    sum = block_reduce<false>(sum, red);
    float inv = mx == NEG_INF ? 0.0f : 1.0f / sum;   // a fully masked row becomes zeros
    for (i64 c = threadIdx.x; c < D; c += blockDim.x) {
        float v = masked(p, c, r1, r2, r3);
        stf(d, c, r1, r2, r3, mx == NEG_INF ? 0.0f : expf(v - mx) * inv);
    }
}

__device__ void soft_max_back_row(const cu_params_t &p, i64 r1, i64 r2, i64 r3, float *red)
{
    const cu_tensor_t &d = p.t[0], &y = p.t[1], &dy = p.t[2];
    const i64 D = y.ne[0];
    float dot = 0.0f;
    for (i64 c = threadIdx.x; c < D; c += blockDim.x)
        dot += ldf(y, c, r1, r2, r3) * ldf(dy, c, r1, r2, r3);
    dot = block_reduce<false>(dot, red);
    for (i64 c = threadIdx.x; c < D; c += blockDim.x)
        stf(d, c, r1, r2, r3, p.fp[0] * ldf(y, c, r1, r2, r3) * (ldf(dy, c, r1, r2, r3) - dot));
}

// log-sum-exp of a logits row.
__device__ float row_lse(const cu_tensor_t &l, i64 r1, i64 r2, i64 r3, float *red)
{
    const i64 V = l.ne[0];
    float mx = NEG_INF, sum = 0.0f;
    for (i64 v = threadIdx.x; v < V; v += blockDim.x)
        mx = fmaxf(mx, ldf(l, v, r1, r2, r3));
    mx = block_reduce<true>(mx, red);
    for (i64 v = threadIdx.x; v < V; v += blockDim.x)
        sum += expf(ldf(l, v, r1, r2, r3) - mx);
    sum = block_reduce<false>(sum, red);
    return mx + logf(sum);
}

__device__ void xent_row(const cu_params_t &p, i64 r, i64 r1, i64 r2, i64 r3, float *red)
{
    const cu_tensor_t &d = p.t[0], &l = p.t[1], &t = p.t[2];
    const i64 V = l.ne[0], N = l.ne[1] * l.ne[2] * l.ne[3];
    float lse = row_lse(l, r1, r2, r3, red);
    if (p.op == SLM_OP_CROSS_ENTROPY_BACK) {
        float scale = ldf(p.t[3], 0, 0, 0, 0) / (float)N;
        for (i64 v = threadIdx.x; v < V; v += blockDim.x)
            stf(d, v, r1, r2, r3, (expf(ldf(l, v, r1, r2, r3) - lse) - ldf(t, v, r1, r2, r3)) * scale);
        return;
    }
    float loss = 0.0f;
    for (i64 v = threadIdx.x; v < V; v += blockDim.x)
        loss -= ldf(t, v, r1, r2, r3) * (ldf(l, v, r1, r2, r3) - lse);
    loss = block_reduce<false>(loss, red);
    if (threadIdx.x == 0)
        stf(p.t[3], r, 0, 0, 0, loss);
}

// SUM's first phase: block r adds elements [r*CU_SUM_CHUNK, (r+1)*CU_SUM_CHUNK).
__device__ void sum_chunk(const cu_params_t &p, i64 r, float *red)
{
    const cu_tensor_t &a = p.t[1];
    i64 n = nelem(a), end = (r + 1) * CU_SUM_CHUNK < n ? (r + 1) * CU_SUM_CHUNK : n;
    float s = 0.0f;
    for (i64 q = r * CU_SUM_CHUNK + threadIdx.x; q < end; q += blockDim.x) {
        idx4 j = unravel(a, q);
        s += ldf(a, j.x, j.y, j.z, j.w);
    }
    s = block_reduce<false>(s, red);
    if (threadIdx.x == 0)
        stf(p.t[3], r, 0, 0, 0, s);
}

__global__ void rows_kernel(const cu_params_t p)
{
    __shared__ float red[32];
    for (i64 r = blockIdx.x; r < p.n_items; r += gridDim.x) {
        i64 r1, r2, r3;
        row_of(p.t[1], r, &r1, &r2, &r3);
        switch (p.op) {
        case SLM_OP_RMS_NORM:
        case SLM_OP_RMS_NORM_BACK: rms_norm_row(p, r1, r2, r3, red); break;
        case SLM_OP_SOFT_MAX: soft_max_row(p, r1, r2, r3, red); break;
        case SLM_OP_SOFT_MAX_BACK: soft_max_back_row(p, r1, r2, r3, red); break;
        case SLM_OP_CROSS_ENTROPY:
        case SLM_OP_CROSS_ENTROPY_BACK: xent_row(p, r, r1, r2, r3, red); break;
        case SLM_OP_SUM: sum_chunk(p, r, red); break;
        }
    }
}

// The second phase of SUM and CROSS_ENTROPY: one block adds the partials.
__global__ void finish_kernel(const cu_params_t p)
{
    __shared__ float red[32];
    const cu_tensor_t &s = p.t[3];
    float v = 0.0f;
    for (i64 q = threadIdx.x; q < s.ne[0]; q += blockDim.x)
        v += ldf(s, q, 0, 0, 0);
    v = block_reduce<false>(v, red);
    if (threadIdx.x == 0) {
        const cu_tensor_t &a = p.t[1];
        float div = p.op == SLM_OP_CROSS_ENTROPY ? (float)(a.ne[1] * a.ne[2] * a.ne[3]) : 1.0f;
        stf(p.t[0], 0, 0, 0, 0, v / div);
    }
}

// One thread per rotated pair (so that dst may alias src0) or copied element.
__global__ void rope_kernel(const cu_params_t p)
{
    const cu_tensor_t &d = p.t[0], &x = p.t[1], &pos = p.t[2];
    const i64 D = x.ne[0], nd = p.ip[0], half = nd / 2, per_row = half + (D - nd);
    const bool neox = p.ip[1] == SLM_ROPE_NEOX;
    const double dir = p.op == SLM_OP_ROPE_BACK ? -1.0 : 1.0;
    for (i64 k = gid(); k < p.n_items; k += gstride()) {
        i64 t = k % per_row, r1, r2, r3;
        row_of(x, k / per_row, &r1, &r2, &r3);
        if (t >= half) {
            i64 c = nd + (t - half);
            stf(d, c, r1, r2, r3, ldf(x, c, r1, r2, r3));
            continue;
        }
        double th = (double)ldi(pos, r2, 0, 0, 0) * (double)p.fp[1] *
                    pow((double)p.fp[0], -2.0 * (double)t / (double)nd);
        float cs = (float)cos(th), sn = (float)(dir * sin(th));
        i64 j0 = neox ? t : 2 * t, j1 = neox ? t + half : 2 * t + 1;
        float x0 = ldf(x, j0, r1, r2, r3), x1 = ldf(x, j1, r1, r2, r3);
        stf(d, j0, r1, r2, r3, x0 * cs - x1 * sn);
        stf(d, j1, r1, r2, r3, x0 * sn + x1 * cs);
    }
}

extern "C" int cu_launch_rows(const cu_params_t *p, void *stream)
{
    cudaStream_t s = (cudaStream_t)stream;
    if (p->op == SLM_OP_ROPE || p->op == SLM_OP_ROPE_BACK)
        CU_LAUNCH(rope_kernel, grid_for(p->n_items, 256), 256, s, *p);
    else if (p->phase == 1)
        CU_LAUNCH(finish_kernel, 1, ROW_THREADS, s, *p);
    else
        CU_LAUNCH(rows_kernel, grid_for(p->n_items, 1), ROW_THREADS, s, *p);
    return (int)cudaGetLastError();
}

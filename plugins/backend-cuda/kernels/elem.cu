// Ops computed one destination element per thread: elementwise ops, copies,
// optimizer steps and the accumulate-into-a-view op (shaders/elem.comp's maths).
#include "common.cuh"

// The smallest normal float: LOG clamps there (ops.h), so 0 log 0 stays 0.
#define FLT_MIN_ 1.17549435e-38f

static constexpr float GELU_C = 0.7978845608028654f, GELU_A = 0.044715f;

__device__ __forceinline__ float gelu_tanh(float u)
{
    float e = expf(-2.0f * fabsf(u));   // tanh(u) without overflow for large |u|
    return copysignf((1.0f - e) / (1.0f + e), u);
}

// Global-norm clipping factor (ops.h ADAMW_STEP/SGD_STEP), 1 when not asked.
__device__ __forceinline__ float clip(const cu_params_t &p, int at, float max_norm)
{
    if (p.n_src <= at || !(max_norm > 0.0f))
        return 1.0f;
    float norm = sqrtf(ldf(p.t[1 + at], 0, 0, 0, 0));
    return fminf(1.0f, max_norm / (norm + 1e-6f));
}

__device__ __forceinline__ void elem_one(const cu_params_t &p, i64 k)
{
    const cu_tensor_t &d = p.t[0], &a = p.t[1], &b = p.t[2];
    if (p.op == SLM_OP_ACC && p.phase == 1) {   // over src1's shape, into dst's view
        idx4 j = unravel(b, k);
        float *o = (float *)(d.data + p.ip[3] + j.x * d.nb[0] + j.y * p.ip[0] + j.z * p.ip[1] +
                             j.w * p.ip[2]);
        *o += ldf(b, j.x, j.y, j.z, j.w);
        return;
    }
    idx4 i = unravel(d, k);
    switch (p.op) {
    case SLM_OP_ADD:
    case SLM_OP_MUL: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        float y = ldf(b, i.x % b.ne[0], i.y % b.ne[1], i.z % b.ne[2], i.w % b.ne[3]);
        stf(d, i.x, i.y, i.z, i.w, p.op == SLM_OP_ADD ? x + y : x * y);
        break;
    }
    case SLM_OP_SCALE:
        stf(d, i.x, i.y, i.z, i.w, ldf(a, i.x, i.y, i.z, i.w) * p.fp[0]);
        break;
    case SLM_OP_SILU: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        stf(d, i.x, i.y, i.z, i.w, x * sigmoidf_(x));
        break;
    }
    case SLM_OP_SILU_BACK: {
        float x = ldf(a, i.x, i.y, i.z, i.w), s = sigmoidf_(x);
        stf(d, i.x, i.y, i.z, i.w, ldf(b, i.x, i.y, i.z, i.w) * s * (1.0f + x * (1.0f - s)));
        break;
    }
    case SLM_OP_GELU: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        stf(d, i.x, i.y, i.z, i.w, 0.5f * x * (1.0f + gelu_tanh(GELU_C * (x + GELU_A * x * x * x))));
        break;
    }
    case SLM_OP_GELU_BACK: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        float t = gelu_tanh(GELU_C * (x + GELU_A * x * x * x));
        float du = GELU_C * (1.0f + 3.0f * GELU_A * x * x);
        float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
        stf(d, i.x, i.y, i.z, i.w, ldf(b, i.x, i.y, i.z, i.w) * g);
        break;
    }
    case SLM_OP_LOG: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        stf(d, i.x, i.y, i.z, i.w, logf(x > FLT_MIN_ ? x : FLT_MIN_));
        break;
    }
    case SLM_OP_LOG_BACK: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        stf(d, i.x, i.y, i.z, i.w, x > FLT_MIN_ ? ldf(b, i.x, i.y, i.z, i.w) / x : 0.0f);
        break;
    }
    case SLM_OP_SWIGLU: {
        float x = ldf(a, i.x, i.y, i.z, i.w);
        stf(d, i.x, i.y, i.z, i.w, x * sigmoidf_(x) * ldf(b, i.x, i.y, i.z, i.w));
        break;
    }
    case SLM_OP_CPY: {
        idx4 j = unravel(a, k);
        st(d, i.x, i.y, i.z, i.w, ld(a, j.x, j.y, j.z, j.w));
        break;
    }
    case SLM_OP_ACC:   // phase 0: the copy of src0
        stf(d, i.x, i.y, i.z, i.w, ldf(a, i.x, i.y, i.z, i.w));
        break;
    case SLM_OP_ADAMW_STEP: {
        // hyper (src4): lr, beta1, beta2, eps, wd, 1/(1-b1^t), 1/(1-b2^t), max_norm
        const cu_tensor_t &h = p.t[5];
        float lr = ldf(h, 0, 0, 0, 0), b1 = ldf(h, 1, 0, 0, 0), b2 = ldf(h, 2, 0, 0, 0);
        float eps = ldf(h, 3, 0, 0, 0), wd = ldf(h, 4, 0, 0, 0);
        float c1 = ldf(h, 5, 0, 0, 0), c2 = ldf(h, 6, 0, 0, 0);
        float c = p.n_src > 5 ? clip(p, 5, ldf(h, 7, 0, 0, 0)) : 1.0f;
        float g = ldf(b, i.x, i.y, i.z, i.w) * c;
        float m = b1 * ldf(p.t[3], i.x, i.y, i.z, i.w) + (1.0f - b1) * g;
        float v = b2 * ldf(p.t[4], i.x, i.y, i.z, i.w) + (1.0f - b2) * g * g;
        stf(p.t[3], i.x, i.y, i.z, i.w, m);
        stf(p.t[4], i.x, i.y, i.z, i.w, v);
        float w = ldf(a, i.x, i.y, i.z, i.w);
        w = w * (1.0f - lr * wd) - lr * (m * c1) / (sqrtf(v * c2) + eps);
        stf(d, i.x, i.y, i.z, i.w, w);
        break;
    }
    case SLM_OP_SGD_STEP: {
        const cu_tensor_t &h = p.t[3];
        float lr = ldf(h, 0, 0, 0, 0), wd = ldf(h, 1, 0, 0, 0);
        float c = p.n_src > 3 ? clip(p, 3, ldf(h, 2, 0, 0, 0)) : 1.0f;
        float w = ldf(a, i.x, i.y, i.z, i.w);
        stf(d, i.x, i.y, i.z, i.w, w * (1.0f - lr * wd) - lr * c * ldf(b, i.x, i.y, i.z, i.w));
        break;
    }
    }
}

__global__ void elem_kernel(const cu_params_t p)
{
    for (i64 k = gid(); k < p.n_items; k += gstride())
        elem_one(p, k);
}

extern "C" int cu_launch_elem(const cu_params_t *p, void *stream)
{
    CU_LAUNCH(elem_kernel, grid_for(p->n_items, 256), 256, (cudaStream_t)stream, *p);
    return (int)cudaGetLastError();
}

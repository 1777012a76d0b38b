#version 450
// Ops computed one destination element per invocation: elementwise ops, copies,
// optimizer steps and the accumulate-into-a-view op.
#define NO_QUANT
#include "common.glsl"

// SLM_OP_* ids
#define OP_ADD 5
#define OP_MUL 6
#define OP_SCALE 7
#define OP_SILU 14
#define OP_SILU_BACK 15
#define OP_GELU 16
#define OP_GELU_BACK 17
#define OP_SWIGLU 18
#define OP_CPY 19
#define OP_ACC 24
#define OP_ADAMW 25
#define OP_SGD 26
#define OP_LOG 28
#define OP_LOG_BACK 29

// The smallest normal float: LOG clamps there (ops.h), so 0 log 0 stays 0.
const float FLT_MIN_ = 1.17549435e-38;

const float GELU_C = 0.7978845608028654, GELU_A = 0.044715;

float gelu_tanh(float u)
{
    // tanh(u) without overflow for large |u|
    float e = exp(-2.0 * abs(u));
    return sign(u) * (1.0 - e) / (1.0 + e);
}

// Global-norm clipping factor (ops.h ADAMW_STEP/SGD_STEP), 1 when not asked.
float clip(int at, float max_norm)
{
    if (p.n_src <= at || !(max_norm > 0.0))
        return 1.0;
    float norm = sqrt(ld(1 + at, 0, 0, 0, 0));
    return min(1.0, max_norm / (norm + 1e-6));
}

void main()
{
    int k = item();
    if (k < 0)
        return;
    ivec4 i = unravel(0, k);
    switch (p.op) {
    case OP_ADD:
    case OP_MUL: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        float y = ld(2, i.x % NE(2, 0), i.y % NE(2, 1), i.z % NE(2, 2), i.w % NE(2, 3));
        st(0, i.x, i.y, i.z, i.w, p.op == OP_ADD ? x + y : x * y);
        break;
    }
    case OP_SCALE:
        st(0, i.x, i.y, i.z, i.w, ld(1, i.x, i.y, i.z, i.w) * p.fp[0]);
        break;
    case OP_SILU: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, x * sigmoid(x));
        break;
    }
    case OP_SILU_BACK: {
        float x = ld(1, i.x, i.y, i.z, i.w), s = sigmoid(x);
        st(0, i.x, i.y, i.z, i.w, ld(2, i.x, i.y, i.z, i.w) * s * (1.0 + x * (1.0 - s)));
        break;
    }
    case OP_GELU: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, 0.5 * x * (1.0 + gelu_tanh(GELU_C * (x + GELU_A * x * x * x))));
        break;
    }
    case OP_GELU_BACK: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        float t = gelu_tanh(GELU_C * (x + GELU_A * x * x * x));
        float du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
        float g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
        st(0, i.x, i.y, i.z, i.w, ld(2, i.x, i.y, i.z, i.w) * g);
        break;
    }
    case OP_LOG: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, log(x > FLT_MIN_ ? x : FLT_MIN_));
        break;
    }
    case OP_LOG_BACK: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, x > FLT_MIN_ ? ld(2, i.x, i.y, i.z, i.w) / x : 0.0);
        break;
    }
    case OP_SWIGLU: {
        float x = ld(1, i.x, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, x * sigmoid(x) * ld(2, i.x, i.y, i.z, i.w));
        break;
    }
    case OP_CPY: {
        ivec4 j = unravel(1, k);
        st(0, i.x, i.y, i.z, i.w, ld(1, j.x, j.y, j.z, j.w));
        break;
    }
    case OP_ACC:
        // phase 0 copies src0; phase 1 runs over src1's shape and adds into the view
        if (p.phase == 0) {
            st(0, i.x, i.y, i.z, i.w, ld(1, i.x, i.y, i.z, i.w));
        } else {
            ivec4 j = unravel(2, k);
            uint a = p.off[0] + uint(p.ip[3]) +
                     uint(j.x * NB(0, 0) + j.y * p.ip[0] + j.z * p.ip[1] + j.w * p.ip[2]);
            float v = uintBitsToFloat(ldw(0, a >> 2)) + ld(2, j.x, j.y, j.z, j.w);
            stw(0, a >> 2, floatBitsToUint(v));
        }
        break;
    case OP_ADAMW: {
        // hyper (src4): lr, beta1, beta2, eps, wd, 1/(1-b1^t), 1/(1-b2^t), max_norm
        float lr = ld(5, 0, 0, 0, 0), b1 = ld(5, 1, 0, 0, 0), b2 = ld(5, 2, 0, 0, 0);
        float eps = ld(5, 3, 0, 0, 0), wd = ld(5, 4, 0, 0, 0);
        float c1 = ld(5, 5, 0, 0, 0), c2 = ld(5, 6, 0, 0, 0);
        float c = p.n_src > 5 ? clip(5, ld(5, 7, 0, 0, 0)) : 1.0;
        float g = ld(2, i.x, i.y, i.z, i.w) * c;
        float m = b1 * ld(3, i.x, i.y, i.z, i.w) + (1.0 - b1) * g;
        float v = b2 * ld(4, i.x, i.y, i.z, i.w) + (1.0 - b2) * g * g;
        st(3, i.x, i.y, i.z, i.w, m);
        st(4, i.x, i.y, i.z, i.w, v);
        float w = ld(1, i.x, i.y, i.z, i.w);
        w = w * (1.0 - lr * wd) - lr * (m * c1) / (sqrt(v * c2) + eps);
        st(0, i.x, i.y, i.z, i.w, w);
        break;
    }
    case OP_SGD: {
        float lr = ld(3, 0, 0, 0, 0), wd = ld(3, 1, 0, 0, 0);
        float c = p.n_src > 3 ? clip(3, ld(3, 2, 0, 0, 0)) : 1.0;
        float w = ld(1, i.x, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, w * (1.0 - lr * wd) - lr * c * ld(2, i.x, i.y, i.z, i.w));
        break;
    }
    }
}

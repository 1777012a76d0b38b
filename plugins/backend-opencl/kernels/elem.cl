// Ops computed one destination element per work-item: elementwise ops, copies,
// optimizer steps and the accumulate-into-a-view op.

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

#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

float gelu_tanh(float u)
{
    // tanh(u) without overflow for large |u|
    float e = exp(-2.0f * fabs(u));
    return sign(u) * (1.0f - e) / (1.0f + e);
}

// Global-norm clipping factor (ops.h ADAMW_STEP/SGD_STEP), 1 when not asked.
float clip(const C *c, int at, float max_norm)
{
    if (c->p->n_src <= at || !(max_norm > 0.0f))
        return 1.0f;
    float norm = sqrt(ld(c, 1 + at, 0, 0, 0, 0));
    return min(1.0f, max_norm / (norm + 1e-6f));
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void elem(KERNEL_ARGS)
{
    KERNEL_CTX;
    int k = item(c);
    if (k < 0)
        return;
    int4 i = unravel(c, 0, k);
    switch (p.op) {
    case OP_ADD:
    case OP_MUL: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        float y = ld(c, 2, i.x % NE(c, 2, 0), i.y % NE(c, 2, 1), i.z % NE(c, 2, 2), i.w % NE(c, 2, 3));
        st(c, 0, i.x, i.y, i.z, i.w, p.op == OP_ADD ? x + y : x * y);
        break;
    }
    case OP_SCALE:
        st(c, 0, i.x, i.y, i.z, i.w, ld(c, 1, i.x, i.y, i.z, i.w) * p.fp[0]);
        break;
    case OP_SILU: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w, x * sigmoid_(x));
        break;
    }
    case OP_SILU_BACK: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w), s = sigmoid_(x);
        st(c, 0, i.x, i.y, i.z, i.w, ld(c, 2, i.x, i.y, i.z, i.w) * s * (1.0f + x * (1.0f - s)));
        break;
    }
    case OP_GELU: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w,
           0.5f * x * (1.0f + gelu_tanh(GELU_C * (x + GELU_A * x * x * x))));
        break;
    }
    case OP_GELU_BACK: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        float t = gelu_tanh(GELU_C * (x + GELU_A * x * x * x));
        float du = GELU_C * (1.0f + 3.0f * GELU_A * x * x);
        float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
        st(c, 0, i.x, i.y, i.z, i.w, ld(c, 2, i.x, i.y, i.z, i.w) * g);
        break;
    }
    case OP_LOG: {
        // clamped at the smallest normal float (ops.h), so 0 log 0 stays 0
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w, log(x > FLT_MIN ? x : FLT_MIN));
        break;
    }
    case OP_LOG_BACK: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w, x > FLT_MIN ? ld(c, 2, i.x, i.y, i.z, i.w) / x : 0.0f);
        break;
    }
    case OP_SWIGLU: {
        float x = ld(c, 1, i.x, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w, x * sigmoid_(x) * ld(c, 2, i.x, i.y, i.z, i.w));
        break;
    }
    case OP_CPY: {
        int4 j = unravel(c, 1, k);
        st(c, 0, i.x, i.y, i.z, i.w, ld(c, 1, j.x, j.y, j.z, j.w));
        break;
    }
    case OP_ACC:
        // phase 0 copies src0; phase 1 runs over src1's shape and adds into the view
        if (p.phase == 0) {
            st(c, 0, i.x, i.y, i.z, i.w, ld(c, 1, i.x, i.y, i.z, i.w));
        } else {
            int4 j = unravel(c, 2, k);
            uint a = p.off[0] + (uint)p.ip[3] +
                     (uint)(j.x * NB(c, 0, 0) + j.y * p.ip[0] + j.z * p.ip[1] + j.w * p.ip[2]);
            stf(c, 0, a, as_float(ldw(c, 0, a)) + ld(c, 2, j.x, j.y, j.z, j.w));
        }
        break;
    case OP_ADAMW: {
        // hyper (src4): lr, beta1, beta2, eps, wd, 1/(1-b1^t), 1/(1-b2^t), max_norm
        float lr = ld(c, 5, 0, 0, 0, 0), b1 = ld(c, 5, 1, 0, 0, 0), b2 = ld(c, 5, 2, 0, 0, 0);
        float eps = ld(c, 5, 3, 0, 0, 0), wd = ld(c, 5, 4, 0, 0, 0);
        float c1 = ld(c, 5, 5, 0, 0, 0), c2 = ld(c, 5, 6, 0, 0, 0);
        float cl = p.n_src > 5 ? clip(c, 5, ld(c, 5, 7, 0, 0, 0)) : 1.0f;
        float g = ld(c, 2, i.x, i.y, i.z, i.w) * cl;
        float m = b1 * ld(c, 3, i.x, i.y, i.z, i.w) + (1.0f - b1) * g;
        float v = b2 * ld(c, 4, i.x, i.y, i.z, i.w) + (1.0f - b2) * g * g;
        st(c, 3, i.x, i.y, i.z, i.w, m);
        st(c, 4, i.x, i.y, i.z, i.w, v);
        float w = ld(c, 1, i.x, i.y, i.z, i.w);
        w = w * (1.0f - lr * wd) - lr * (m * c1) / (sqrt(v * c2) + eps);
        st(c, 0, i.x, i.y, i.z, i.w, w);
        break;
    }
    case OP_SGD: {
        float lr = ld(c, 3, 0, 0, 0, 0), wd = ld(c, 3, 1, 0, 0, 0);
        float cl = p.n_src > 3 ? clip(c, 3, ld(c, 3, 2, 0, 0, 0)) : 1.0f;
        float w = ld(c, 1, i.x, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w, w * (1.0f - lr * wd) - lr * cl * ld(c, 2, i.x, i.y, i.z, i.w));
        break;
    }
    }
}

#version 450
// Row ops (dim 0): normalisation, softmax and cross-entropy take p.lanes invocations
// per row (a workgroup of 64 for long rows, else 1), rotary embedding one; sum
// reduces in two phases.
#define NO_QUANT
#include "common.glsl"

#define OP_RMS_NORM 8
#define OP_RMS_NORM_BACK 9
#define OP_ROPE 10
#define OP_ROPE_BACK 11
#define OP_SOFT_MAX 12
#define OP_SOFT_MAX_BACK 13
#define OP_CROSS_ENTROPY 20
#define OP_CROSS_ENTROPY_BACK 21
#define OP_SUM 22

const float NEG_INF = -1.0 / 0.0;
#define SUM_CHUNK 1024   // plugins/common/gpu-nodes.h: GPU_SUM_CHUNK

shared float red[64];

// The sum of the scratch's NE(3, 0) partial results by the one workgroup of 64
// invocations a phase-1 dispatch runs (every invocation gets it).
float sum_scratch(void)
{
    uint l = gl_LocalInvocationID.x;
    float v = 0.0;
    for (int q = int(l); q < NE(3, 0); q += 64)
        v += ld(3, q, 0, 0, 0);
    red[l] = v;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (l < s)
            red[l] += red[l + s];
        barrier();
    }
    return red[0];
}

// The row's sum and maximum of one value per invocation, returned to all of them:
// v itself when an invocation has the row alone. With a workgroup per row every
// invocation must call them (they hold barriers); the barrier first keeps a
// previous result in red[0] until everyone has read it.
float wg_sum(float v)
{
    if (p.lanes == 1u)
        return v;
    uint l = gl_LocalInvocationID.x;
    barrier();
    red[l] = v;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (l < s)
            red[l] += red[l + s];
        barrier();
    }
    return red[0];
}

float wg_max(float v)
{
    if (p.lanes == 1u)
        return v;
    uint l = gl_LocalInvocationID.x;
    barrier();
    red[l] = v;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (l < s)
            red[l] = max(red[l], red[l + s]);
        barrier();
    }
    return red[0];
}

// Cross entropy of row (r1,r2,r3), lane l taking every p.lanes-th column; with
// back, writes dlogits scaled by `scale`. Returns the row's loss.
float xent_row(int r1, int r2, int r3, int l, int L, bool back, float scale)
{
    int V = NE(1, 0);
    float mx = NEG_INF, sum = 0.0, loss = 0.0;
    for (int v = l; v < V; v += L)
        mx = max(mx, ld(1, v, r1, r2, r3));
    mx = wg_max(mx);
    for (int v = l; v < V; v += L)
        sum += exp(ld(1, v, r1, r2, r3) - mx);
    float lse = mx + log(wg_sum(sum));
    for (int v = l; v < V; v += L) {
        float lv = ld(1, v, r1, r2, r3), tv = ld(2, v, r1, r2, r3);
        if (back)
            st(0, v, r1, r2, r3, (exp(lv - lse) - tv) * scale);
        else
            loss -= tv * (lv - lse);
    }
    return wg_sum(loss);
}

// A softmax input: scaled, masked, causal.
float sm_in(int c, int r1, int r2, int r3, bool mask, bool causal)
{
    float v = ld(1, c, r1, r2, r3) * p.fp[0];
    if (mask)
        v += ld(2, c, r1 % NE(2, 1), r2 % NE(2, 2), r3 % NE(2, 3));
    return causal && c > p.ip[1] + r1 ? NEG_INF : v;
}

void main()
{
    int k = item();
    if (k < 0)
        return;   // whole workgroups when p.lanes is 64: n_items is a multiple of it
    // Row k / p.lanes, lane l of it (ops.c sets lanes 1 for rope, sum and short rows).
    int L = p.op == OP_ROPE || p.op == OP_ROPE_BACK || p.op == OP_SUM ? 1 : int(p.lanes);
    int row = k / L, l = L == 1 ? 0 : int(gl_LocalInvocationID.x);
    int r1 = row % NE(1, 1), r2 = (row / NE(1, 1)) % NE(1, 2), r3 = row / (NE(1, 1) * NE(1, 2));
    int D = NE(1, 0);
    switch (p.op) {
    case OP_RMS_NORM:
    case OP_RMS_NORM_BACK: {
        bool back = p.op == OP_RMS_NORM_BACK;
        float ss = 0.0, dot = 0.0;
        for (int c = l; c < D; c += L) {
            float v = ld(1, c, r1, r2, r3);
            ss += v * v;
            if (back)
                dot += v * ld(2, c, r1, r2, r3);
        }
        ss = wg_sum(ss);
        if (back)
            dot = wg_sum(dot);
        float r = inversesqrt(ss / float(D) + p.fp[0]);
        for (int c = l; c < D; c += L) {
            float v = ld(1, c, r1, r2, r3), o = v * r;
            if (back)
                o = r * (ld(2, c, r1, r2, r3) - v * r * r * dot / float(D));
            st(0, c, r1, r2, r3, o);
        }
        break;
    }
    case OP_ROPE:
    case OP_ROPE_BACK: {
        int nd = p.ip[0], half_ = nd / 2;
        bool neox = p.ip[1] == 2;
        float pos = float(ldi(2, r2, 0, 0, 0));
        for (int c = 0; c < half_; c++) {
            float th = pos * p.fp[1] * pow(p.fp[0], -2.0 * float(c) / float(nd));
            float cs = cos(th), sn = p.op == OP_ROPE_BACK ? -sin(th) : sin(th);
            int j0 = neox ? c : 2 * c, j1 = neox ? c + half_ : 2 * c + 1;
            float x0 = ld(1, j0, r1, r2, r3), x1 = ld(1, j1, r1, r2, r3);
            st(0, j0, r1, r2, r3, x0 * cs - x1 * sn);
            st(0, j1, r1, r2, r3, x0 * sn + x1 * cs);
        }
        for (int c = nd; c < D; c++)
            st(0, c, r1, r2, r3, ld(1, c, r1, r2, r3));
        break;
    }
    case OP_SOFT_MAX: {
        bool mask = p.n_src > 1, causal = p.ip[0] != 0;
        float mx = NEG_INF, sum = 0.0;
        for (int c = l; c < D; c += L)
            mx = max(mx, sm_in(c, r1, r2, r3, mask, causal));
        mx = wg_max(mx);
        for (int c = l; c < D; c += L) {
            float v = sm_in(c, r1, r2, r3, mask, causal);
            sum += v == NEG_INF ? 0.0 : exp(v - mx);
        }
        sum = wg_sum(sum);
        for (int c = l; c < D; c += L) {
            float v = sm_in(c, r1, r2, r3, mask, causal);
            st(0, c, r1, r2, r3, v == NEG_INF ? 0.0 : exp(v - mx) / sum);
        }
        break;
    }
    case OP_SOFT_MAX_BACK: {
        float dot = 0.0;
        for (int c = l; c < D; c += L)
            dot += ld(1, c, r1, r2, r3) * ld(2, c, r1, r2, r3);
        dot = wg_sum(dot);
        for (int c = l; c < D; c += L)
            st(0, c, r1, r2, r3, p.fp[0] * ld(1, c, r1, r2, r3) * (ld(2, c, r1, r2, r3) - dot));
        break;
    }
    case OP_CROSS_ENTROPY_BACK: {
        int N = NE(1, 1) * NE(1, 2) * NE(1, 3);
        xent_row(r1, r2, r3, l, L, true, ld(3, 0, 0, 0, 0) / float(N));
        break;
    }
    case OP_CROSS_ENTROPY:
        // phase 0: a row per workgroup into the scratch (tensor 3); phase 1: one
        // workgroup sums them. llvmpipe caps a loop at 65535 iterations per
        // invocation, so no invocation loops over a whole row or tensor.
        if (p.phase == 0) {
            float loss = xent_row(r1, r2, r3, l, L, false, 0.0);
            if (l == 0)
                st(3, row, 0, 0, 0, loss);
        } else {
            float loss = sum_scratch();
            if (l == 0)
                st(0, 0, 0, 0, 0, loss / float(NE(1, 1) * NE(1, 2) * NE(1, 3)));
        }
        break;
    case OP_SUM:
        // phase 0: chunks of SUM_CHUNK elements into the scratch; phase 1 as above
        if (p.phase == 0) {
            int n = NE(1, 0) * NE(1, 1) * NE(1, 2) * NE(1, 3);
            float s = 0.0;
            for (int q = k * SUM_CHUNK; q < min(n, (k + 1) * SUM_CHUNK); q++) {
                ivec4 j = unravel(1, q);
                s += ld(1, j.x, j.y, j.z, j.w);
            }
            st(3, k, 0, 0, 0, s);
        } else {
            float s = sum_scratch();
            if (l == 0)
                st(0, 0, 0, 0, 0, s);
        }
        break;
    }
}

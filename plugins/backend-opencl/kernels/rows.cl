// Ops computed one row (dim 0) per work-item: normalisation, softmax, rotary
// embedding, their backward ops, and phase 0 of the whole-tensor reductions (rows
// or chunks into the scratch; `reduce` sums it).
#define OP_RMS_NORM 8
#define OP_RMS_NORM_BACK 9
#define OP_ROPE 10
#define OP_ROPE_BACK 11
#define OP_SOFT_MAX 12
#define OP_SOFT_MAX_BACK 13
#define OP_CROSS_ENTROPY 20
#define OP_CROSS_ENTROPY_BACK 21
#define OP_SUM 22

#define SUM_CHUNK 1024   // plugins/common/gpu-nodes.h: GPU_SUM_CHUNK

// Cross entropy of row (r1,r2,r3); with back, writes dlogits scaled by `scale`.
float xent_row(const C *c, int r1, int r2, int r3, bool back, float scale)
{
    int V = NE(c, 1, 0);
    float mx = -INFINITY, sum = 0.0f, loss = 0.0f;
    for (int v = 0; v < V; v++)
        mx = max(mx, ld(c, 1, v, r1, r2, r3));
    for (int v = 0; v < V; v++)
        sum += exp(ld(c, 1, v, r1, r2, r3) - mx);
    float lse = mx + log(sum);
    for (int v = 0; v < V; v++) {
        float lv = ld(c, 1, v, r1, r2, r3), tv = ld(c, 2, v, r1, r2, r3);
        if (back)
            st(c, 0, v, r1, r2, r3, (exp(lv - lse) - tv) * scale);
        else
            loss -= tv * (lv - lse);
    }
    return loss;
}

// Softmax input at column col of row (r1,r2,r3): scaled, masked, causal.
float sm_in(const C *c, int col, int r1, int r2, int r3)
{
    if (c->p->ip[0] != 0 && col > c->p->ip[1] + r1)
        return -INFINITY;
    float v = ld(c, 1, col, r1, r2, r3) * c->p->fp[0];
    if (c->p->n_src > 1)
        v += ld(c, 2, col, r1 % NE(c, 2, 1), r2 % NE(c, 2, 2), r3 % NE(c, 2, 3));
    return v;
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void rows(KERNEL_ARGS)
{
    KERNEL_CTX;
    int k = item(c);
    if (k < 0)
        return;
    // rows of src0 (the reductions: chunks or rows into the scratch)
    int r1 = k % NE(c, 1, 1), r2 = (k / NE(c, 1, 1)) % NE(c, 1, 2), r3 = k / (NE(c, 1, 1) * NE(c, 1, 2));
    int D = NE(c, 1, 0);
    switch (p.op) {
    case OP_RMS_NORM:
    case OP_RMS_NORM_BACK: {
        bool back = p.op == OP_RMS_NORM_BACK;
        float ss = 0.0f, dot = 0.0f;
        for (int col = 0; col < D; col++) {
            float v = ld(c, 1, col, r1, r2, r3);
            ss += v * v;
            if (back)
                dot += v * ld(c, 2, col, r1, r2, r3);
        }
        float r = rsqrt(ss / (float)D + p.fp[0]);
        for (int col = 0; col < D; col++) {
            float v = ld(c, 1, col, r1, r2, r3), o = v * r;
            if (back)
                o = r * (ld(c, 2, col, r1, r2, r3) - v * r * r * dot / (float)D);
            st(c, 0, col, r1, r2, r3, o);
        }
        break;
    }
    case OP_ROPE:
    case OP_ROPE_BACK: {
        int nd = p.ip[0], half_ = nd / 2;
        bool neox = p.ip[1] == 2;
        float pos = (float)ldi(c, 2, r2, 0, 0, 0);
        for (int col = 0; col < half_; col++) {
            float th = pos * p.fp[1] * pow(p.fp[0], -2.0f * (float)col / (float)nd);
            float cs = cos(th), sn = p.op == OP_ROPE_BACK ? -sin(th) : sin(th);
            int j0 = neox ? col : 2 * col, j1 = neox ? col + half_ : 2 * col + 1;
            float x0 = ld(c, 1, j0, r1, r2, r3), x1 = ld(c, 1, j1, r1, r2, r3);
            st(c, 0, j0, r1, r2, r3, x0 * cs - x1 * sn);
            st(c, 0, j1, r1, r2, r3, x0 * sn + x1 * cs);
        }
        for (int col = nd; col < D; col++)
            st(c, 0, col, r1, r2, r3, ld(c, 1, col, r1, r2, r3));
        break;
    }
    case OP_SOFT_MAX: {
        float mx = -INFINITY, sum = 0.0f;
        for (int col = 0; col < D; col++)
            mx = max(mx, sm_in(c, col, r1, r2, r3));
        for (int col = 0; col < D; col++) {
            float v = sm_in(c, col, r1, r2, r3);
            sum += v == -INFINITY ? 0.0f : exp(v - mx);
        }
        for (int col = 0; col < D; col++) {
            float v = sm_in(c, col, r1, r2, r3);
            st(c, 0, col, r1, r2, r3, v == -INFINITY ? 0.0f : exp(v - mx) / sum);
        }
        break;
    }
    case OP_SOFT_MAX_BACK: {
        float dot = 0.0f;
        for (int col = 0; col < D; col++)
            dot += ld(c, 1, col, r1, r2, r3) * ld(c, 2, col, r1, r2, r3);
        for (int col = 0; col < D; col++)
            st(c, 0, col, r1, r2, r3,
               p.fp[0] * ld(c, 1, col, r1, r2, r3) * (ld(c, 2, col, r1, r2, r3) - dot));
        break;
    }
    case OP_CROSS_ENTROPY_BACK: {
        int N = NE(c, 1, 1) * NE(c, 1, 2) * NE(c, 1, 3);
        xent_row(c, r1, r2, r3, true, ld(c, 3, 0, 0, 0, 0) / (float)N);
        break;
    }
    case OP_CROSS_ENTROPY:
        st(c, 3, k, 0, 0, 0, xent_row(c, r1, r2, r3, false, 0.0f));
        break;
    case OP_SUM: {
        int n = NE(c, 1, 0) * NE(c, 1, 1) * NE(c, 1, 2) * NE(c, 1, 3);
        float s = 0.0f;
        for (int q = k * SUM_CHUNK; q < min(n, (k + 1) * SUM_CHUNK); q++) {
            int4 j = unravel(c, 1, q);
            s += ld(c, 1, j.x, j.y, j.z, j.w);
        }
        st(c, 3, k, 0, 0, 0, s);
        break;
    }
    }
}

// Phase 1 of the reductions, one work-item: the sum of the scratch's NE(3, 0)
// partial results (at most a few thousand) into dst; the mean for cross entropy.
__kernel void reduce(KERNEL_ARGS)
{
    KERNEL_CTX;
    float s = 0.0f;
    for (int q = 0; q < NE(c, 3, 0); q++)
        s += ld(c, 3, q, 0, 0, 0);
    if (p.op == OP_CROSS_ENTROPY)
        s /= (float)(NE(c, 1, 1) * NE(c, 1, 2) * NE(c, 1, 3));
    st(c, 0, 0, 0, 0, 0, s);
}

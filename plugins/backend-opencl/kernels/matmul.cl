// Ops that read weights of any type (f32, f16, block types) or reduce over another
// dimension, one destination element per work-item: products, row gathers and
// their backward ops.
#define OP_GET_ROWS 1
#define OP_GET_ROWS_BACK 2
#define OP_MUL_MAT 3
#define OP_OUT_PROD 4
#define OP_REPEAT_BACK 23
#define OP_MUL_MAT_T 27

__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void matmul(KERNEL_ARGS)
{
    KERNEL_CTX;
    int k = item(c);
    if (k < 0)
        return;
    int4 i = unravel(c, 0, k);
    switch (p.op) {
    case OP_GET_ROWS: {
        int r = ldi(c, 2, i.y, i.z, 0, 0);
        st(c, 0, i.x, i.y, i.z, i.w, ld(c, 1, i.x, r, i.z % NE(c, 1, 2), 0));
        break;
    }
    case OP_GET_ROWS_BACK: {
        // dst[e, r] = sum of grad rows whose id is r
        float s = 0.0f;
        for (int b = 0; b < NE(c, 2, 1); b++)
            for (int n = 0; n < NE(c, 2, 0); n++)
                if (ldi(c, 2, n, b, 0, 0) == i.y && i.z == 0 && i.w == 0)
                    for (int c3 = 0; c3 < NE(c, 1, 3); c3++)
                        s += ld(c, 1, i.x, n, b, c3);
        st(c, 0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_MUL_MAT: {
        int r2 = NE(c, 2, 2) / NE(c, 1, 2), r3 = NE(c, 2, 3) / NE(c, 1, 3);
        int a2 = i.z / r2, a3 = i.w / r3, K = NE(c, 1, 0), ty = p.type[1];
        float s = 0.0f;
        if (ty == TY_F32 && NB(c, 1, 0) == 4 && p.type[2] == TY_F32 && NB(c, 2, 0) == 4) {
            // contiguous f32 rows: plain pointers, which the compiler vectorises
            __global const float *x = (__global const float *)(t1 + addr(c, 1, 0, i.x, a2, a3));
            __global const float *y = (__global const float *)(t2 + addr(c, 2, 0, i.y, i.z, i.w));
            for (int kk = 0; kk < K; kk++)
                s += x[kk] * y[kk];
        } else if (ty == TY_F32 || ty == TY_F16 || ty == TY_BF16) {
            for (int kk = 0; kk < K; kk++)
                s += ld(c, 1, kk, i.x, a2, a3) * ld(c, 2, kk, i.y, i.z, i.w);
        } else {
            uint row = addr(c, 1, 0, i.x, a2, a3);
            for (int kk = 0; kk < K; kk++)
                s += ldq(c, 1, ty, row, kk) * ld(c, 2, kk, i.y, i.z, i.w);
        }
        st(c, 0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_MUL_MAT_T: {
        int r2 = NE(c, 2, 2) / NE(c, 1, 2), r3 = NE(c, 2, 3) / NE(c, 1, 3);
        int a2 = i.z / r2, a3 = i.w / r3, M = NE(c, 1, 1);
        float s = 0.0f;
        for (int m = 0; m < M; m++)
            s += ld(c, 1, i.x, m, a2, a3) * ld(c, 2, m, i.y, i.z, i.w);
        st(c, 0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_OUT_PROD: {
        int r2 = NE(c, 1, 2) / NE(c, 0, 2), r3 = NE(c, 1, 3) / NE(c, 0, 3);
        float s = 0.0f;
        for (int c3 = i.w * r3; c3 < (i.w + 1) * r3; c3++)
            for (int c2 = i.z * r2; c2 < (i.z + 1) * r2; c2++)
                for (int kk = 0; kk < NE(c, 1, 1); kk++)
                    s += ld(c, 1, i.x, kk, c2, c3) * ld(c, 2, i.y, kk, c2, c3);
        st(c, 0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_REPEAT_BACK: {
        float s = 0.0f;
        for (int c3 = i.w; c3 < NE(c, 1, 3); c3 += NE(c, 0, 3))
            for (int c2 = i.z; c2 < NE(c, 1, 2); c2 += NE(c, 0, 2))
                for (int c1 = i.y; c1 < NE(c, 1, 1); c1 += NE(c, 0, 1))
                    for (int c0 = i.x; c0 < NE(c, 1, 0); c0 += NE(c, 0, 0))
                        s += ld(c, 1, c0, c1, c2, c3);
        st(c, 0, i.x, i.y, i.z, i.w, s);
        break;
    }
    }
}

#version 450
// Ops that read weights of any type (f32, f16, block types) or reduce over another
// dimension, one destination element per invocation: products, row gathers and
// their backward ops.
#ifdef FP16_ARITH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"

#define OP_GET_ROWS 1
#define OP_GET_ROWS_BACK 2
#define OP_MUL_MAT 3
#define OP_OUT_PROD 4
#define OP_REPEAT_BACK 23
#define OP_MUL_MAT_T 27

// The dot product of n f32 elements of tensors 1 and 2 from byte addresses a and b,
// each stepping by its own byte stride: the products' common case, with the
// per-element type dispatch and address arithmetic of ld() taken out of the loop.
float dot_f32(uint a, int sa, uint b, int sb, int n)
{
    int wa = int(a >> 2), wb = int(b >> 2), da = sa / 4, db = sb / 4;
    float s = 0.0;
    for (int k = 0; k < n; k++, wa += da, wb += db)
        s += uintBitsToFloat(ldw(1, uint(wa))) * uintBitsToFloat(ldw(2, uint(wb)));
    return s;
}

bool both_f32(void)
{
    return p.type[1] == TY_F32 && p.type[2] == TY_F32 && NB(1, 0) % 4 == 0 && NB(2, 0) % 4 == 0 &&
           NB(1, 1) % 4 == 0 && NB(2, 1) % 4 == 0;
}

void main()
{
    int k = item();
    if (k < 0)
        return;
    ivec4 i = unravel(0, k);
    switch (p.op) {
    case OP_GET_ROWS: {
        int r = ldi(2, i.y, i.z, 0, 0);
        st(0, i.x, i.y, i.z, i.w, ld(1, i.x, r, i.z % NE(1, 2), 0));
        break;
    }
    case OP_GET_ROWS_BACK: {
        // dst[e, r] = sum of grad rows whose id is r
        float s = 0.0;
        for (int b = 0; b < NE(2, 1); b++)
            for (int n = 0; n < NE(2, 0); n++)
                if (ldi(2, n, b, 0, 0) == i.y && i.z == 0 && i.w == 0)
                    for (int c3 = 0; c3 < NE(1, 3); c3++)
                        s += ld(1, i.x, n, b, c3);
        st(0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_MUL_MAT: {
        int r2 = NE(2, 2) / NE(1, 2), r3 = NE(2, 3) / NE(1, 3);
        int a2 = i.z / r2, a3 = i.w / r3, K = NE(1, 0);
        if (both_f32()) {
            st(0, i.x, i.y, i.z, i.w, dot_f32(addr(1, 0, i.x, a2, a3), NB(1, 0),
                                              addr(2, 0, i.y, i.z, i.w), NB(2, 0), K));
            break;
        }
        float s = 0.0;
        int ty = p.type[1];
#ifdef FP16_ARITH
        // 16-bit and block weights: fp16 products summed in fp16 over runs of 32,
        // the runs in fp32. f32 weights keep f32 arithmetic (they ask for it).
        bool plain = ty == TY_F32 || ty == TY_F16 || ty == TY_BF16;
        uint row = addr(1, 0, i.x, a2, a3);
        for (int k0 = 0; ty == TY_F32 && k0 < K; k0 += K)
            for (int kk = 0; kk < K; kk++)
                s += ld(1, kk, i.x, a2, a3) * ld(2, kk, i.y, i.z, i.w);
        for (int k0 = 0; ty != TY_F32 && k0 < K; k0 += 32) {
            float16_t part = float16_t(0.0);
            for (int kk = k0; kk < min(k0 + 32, K); kk++) {
                float w = plain ? ld(1, kk, i.x, a2, a3) : ldq(1, ty, row, kk);
                part += float16_t(w) * float16_t(ld(2, kk, i.y, i.z, i.w));
            }
            s += float(part);
        }
#else
        if (ty == TY_F32 || ty == TY_F16 || ty == TY_BF16) {
            for (int kk = 0; kk < K; kk++)
                s += ld(1, kk, i.x, a2, a3) * ld(2, kk, i.y, i.z, i.w);
        } else {
            uint row = addr(1, 0, i.x, a2, a3);
            for (int kk = 0; kk < K; kk++)
                s += ldq(1, ty, row, kk) * ld(2, kk, i.y, i.z, i.w);
        }
#endif
        st(0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_MUL_MAT_T: {
        int r2 = NE(2, 2) / NE(1, 2), r3 = NE(2, 3) / NE(1, 3);
        int a2 = i.z / r2, a3 = i.w / r3, M = NE(1, 1);
        if (both_f32()) {
            st(0, i.x, i.y, i.z, i.w, dot_f32(addr(1, i.x, 0, a2, a3), NB(1, 1),
                                              addr(2, 0, i.y, i.z, i.w), NB(2, 0), M));
            break;
        }
        float s = 0.0;
        for (int m = 0; m < M; m++)
            s += ld(1, i.x, m, a2, a3) * ld(2, m, i.y, i.z, i.w);
        st(0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_OUT_PROD: {
        int r2 = NE(1, 2) / NE(0, 2), r3 = NE(1, 3) / NE(0, 3);
        float s = 0.0;
        bool f32 = both_f32();
        for (int c3 = i.w * r3; c3 < (i.w + 1) * r3; c3++)
            for (int c2 = i.z * r2; c2 < (i.z + 1) * r2; c2++)
                if (f32)
                    s += dot_f32(addr(1, i.x, 0, c2, c3), NB(1, 1), addr(2, i.y, 0, c2, c3),
                                 NB(2, 1), NE(1, 1));
                else
                    for (int kk = 0; kk < NE(1, 1); kk++)
                        s += ld(1, i.x, kk, c2, c3) * ld(2, i.y, kk, c2, c3);
        st(0, i.x, i.y, i.z, i.w, s);
        break;
    }
    case OP_REPEAT_BACK: {
        float s = 0.0;
        for (int c3 = i.w; c3 < NE(1, 3); c3 += NE(0, 3))
            for (int c2 = i.z; c2 < NE(1, 2); c2 += NE(0, 2))
                for (int c1 = i.y; c1 < NE(1, 1); c1 += NE(0, 1))
                    for (int c0 = i.x; c0 < NE(1, 0); c0 += NE(0, 0))
                        s += ld(1, c0, c1, c2, c3);
        st(0, i.x, i.y, i.z, i.w, s);
        break;
    }
    }
}

// Shared by every kernel of the OpenCL backend: the per-node parameter block (the
// layout ocl.h's ocl_params_t writes) and typed loads/stores on byte addresses.
#define NT 7   // tensors: 0 dst, 1..6 src0..src5

typedef struct {
    int ne[NT * 4];
    int nb[NT * 4];     // bytes
    uint off[NT];       // bytes
    int type[NT];
    int ip[8];
    float fp[8];
    int op;
    int n_src;
    int phase;
    uint n_items;
} P;

// What every helper reads: the tensors' base addresses and the parameters.
typedef struct {
    __global uchar *t[NT];
    const P *p;
} C;

#define KERNEL_ARGS __global uchar *t0, __global uchar *t1, __global uchar *t2, \
    __global uchar *t3, __global uchar *t4, __global uchar *t5, __global uchar *t6, const P p
#define KERNEL_CTX C c_ = {{t0, t1, t2, t3, t4, t5, t6}, &p}; const C *c = &c_

// SLM_TYPE_* ids
#define TY_F32 0
#define TY_F16 1
#define TY_Q4_0 2
#define TY_Q4_1 3
#define TY_Q5_0 6
#define TY_Q5_1 7
#define TY_Q8_0 8
#define TY_Q4_K 12
#define TY_Q5_K 13
#define TY_Q6_K 14
#define TY_I32 26
#define TY_BF16 30
#define TY_NF4 1024

uint ld8(const C *c, int t, uint b) { return c->t[t][b]; }
int lds8(const C *c, int t, uint b) { return (int)(char)c->t[t][b]; }
uint ld16(const C *c, int t, uint b) { return *(__global const ushort *)(c->t[t] + b); }
float ldh(const C *c, int t, uint b) { return vload_half(0, (__global const half *)(c->t[t] + b)); }
uint ldw(const C *c, int t, uint b) { return *(__global const uint *)(c->t[t] + b); }

int NE(const C *c, int t, int d) { return c->p->ne[t * 4 + d]; }
int NB(const C *c, int t, int d) { return c->p->nb[t * 4 + d]; }

// Byte address of element (i0,i1,i2,i3) of t (i0 counts elements; block types
// are addressed by block through ldq below).
uint addr(const C *c, int t, int i0, int i1, int i2, int i3)
{
    return c->p->off[t] + (uint)(i0 * NB(c, t, 0) + i1 * NB(c, t, 1) + i2 * NB(c, t, 2) +
                                 i3 * NB(c, t, 3));
}

__constant float nf4_levels[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f,
    -0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f,
    0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// Element k (0-based, innermost) of the row starting at byte `row` of a block type
// (GGUF's layouts; slmops' own NF4).
float ldq(const C *c, int t, int ty, uint row, int k)
{
    switch (ty) {
    case TY_Q8_0: {
        uint b = row + (uint)(k / 32) * 34u;
        return ldh(c, t, b) * (float)lds8(c, t, b + 2u + (uint)(k % 32));
    }
    case TY_Q4_0: {
        uint b = row + (uint)(k / 32) * 18u;
        int j = k % 32;
        uint q = ld8(c, t, b + 2u + (uint)(j % 16));
        q = j < 16 ? (q & 15u) : (q >> 4);
        return ldh(c, t, b) * (float)((int)q - 8);
    }
    case TY_Q4_1: {
        uint b = row + (uint)(k / 32) * 20u;
        int j = k % 32;
        uint q = ld8(c, t, b + 4u + (uint)(j % 16));
        q = j < 16 ? (q & 15u) : (q >> 4);
        return ldh(c, t, b) * (float)q + ldh(c, t, b + 2u);
    }
    case TY_Q5_0:
    case TY_Q5_1: {
        bool one = ty == TY_Q5_1;
        uint b = row + (uint)(k / 32) * (one ? 24u : 22u), qh = b + (one ? 4u : 2u);
        int j = k % 32;
        uint q = ld8(c, t, qh + 4u + (uint)(j % 16));
        q = (j < 16 ? (q & 15u) : (q >> 4)) |
            (((ld8(c, t, qh + (uint)(j / 8)) >> (uint)(j % 8)) & 1u) << 4);
        return one ? ldh(c, t, b) * (float)q + ldh(c, t, b + 2u)
                   : ldh(c, t, b) * (float)((int)q - 16);
    }
    case TY_NF4: {
        uint b = row + (uint)(k / 64) * 34u;
        int j = k % 64;
        uint q = ld8(c, t, b + 2u + (uint)(j % 32));
        q = j < 32 ? (q & 15u) : (q >> 4);
        return ldh(c, t, b) * nf4_levels[q];
    }
    case TY_Q4_K:
    case TY_Q5_K: {
        bool five = ty == TY_Q5_K;
        uint b = row + (uint)(k / 256) * (five ? 176u : 144u);
        int j = k % 256, il = j / 64, l = j % 32, is = 2 * il + ((j % 64) >= 32 ? 1 : 0);
        uint sb = b + 4u, sc, m;
        if (is < 4) {
            sc = ld8(c, t, sb + (uint)is) & 63u;
            m = ld8(c, t, sb + (uint)(is + 4)) & 63u;
        } else {
            sc = (ld8(c, t, sb + (uint)(is + 4)) & 15u) | ((ld8(c, t, sb + (uint)(is - 4)) >> 6) << 4);
            m = (ld8(c, t, sb + (uint)(is + 4)) >> 4) | ((ld8(c, t, sb + (uint)is) >> 6) << 4);
        }
        uint qs = b + (five ? 48u : 16u);
        uint q = ld8(c, t, qs + (uint)(il * 32 + l));
        q = (j % 64) >= 32 ? (q >> 4) : (q & 15u);
        if (five)
            q += ((ld8(c, t, b + 16u + (uint)l) >> (uint)is) & 1u) * 16u;
        return ldh(c, t, b) * (float)sc * (float)q - ldh(c, t, b + 2u) * (float)m;
    }
    case TY_Q6_K: {
        uint b = row + (uint)(k / 256) * 210u;
        int j = k % 256, n = j / 128, r = j % 128, g = r / 32, l = r % 32;
        uint qlb = ld8(c, t, b + (uint)(64 * n + l + (g & 1) * 32));
        uint nib = g < 2 ? (qlb & 15u) : (qlb >> 4);
        uint qhb = (ld8(c, t, b + 128u + (uint)(32 * n + l)) >> (uint)(2 * g)) & 3u;
        int q = (int)(nib | (qhb << 4)) - 32;
        int sc = lds8(c, t, b + 192u + (uint)(8 * n + l / 16 + 2 * g));
        return ldh(c, t, b + 208u) * (float)sc * (float)q;
    }
    }
    return 0.0f;
}

// Element (i0..i3) of tensor t as f32, whatever its type.
float ld(const C *c, int t, int i0, int i1, int i2, int i3)
{
    int ty = c->p->type[t];
    if (ty == TY_F32)
        return as_float(ldw(c, t, addr(c, t, i0, i1, i2, i3)));
    if (ty == TY_F16)
        return ldh(c, t, addr(c, t, i0, i1, i2, i3));
    if (ty == TY_BF16)
        return as_float(ld16(c, t, addr(c, t, i0, i1, i2, i3)) << 16);
    if (ty == TY_I32)
        return (float)(int)ldw(c, t, addr(c, t, i0, i1, i2, i3));
    return ldq(c, t, ty, addr(c, t, 0, i1, i2, i3), i0);
}

int ldi(const C *c, int t, int i0, int i1, int i2, int i3)
{
    return (int)ldw(c, t, addr(c, t, i0, i1, i2, i3));
}

void stf(const C *c, int t, uint a, float v)
{
    *(__global float *)(c->t[t] + a) = v;
}

void st(const C *c, int t, int i0, int i1, int i2, int i3, float v)
{
    uint a = addr(c, t, i0, i1, i2, i3);
    int ty = c->p->type[t];
    if (ty == TY_F16) {
        vstore_half_rte(v, 0, (__global half *)(c->t[t] + a));
    } else if (ty == TY_BF16) {
        uint u = as_uint(v);   // round to nearest even; NaN stays a quiet NaN
        u = isnan(v) ? 0x7fc0u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        *(__global ushort *)(c->t[t] + a) = (ushort)u;
    } else {
        stf(c, t, a, v);
    }
}

// The work item of this invocation, or -1 past the end.
int item(const C *c)
{
    size_t i = get_global_id(0);
    return i < c->p->n_items ? (int)i : -1;
}

// Unravel a flat index over tensor t's shape.
int4 unravel(const C *c, int t, int k)
{
    int4 i;
    i.x = k % NE(c, t, 0); k /= NE(c, t, 0);
    i.y = k % NE(c, t, 1); k /= NE(c, t, 1);
    i.z = k % NE(c, t, 2); k /= NE(c, t, 2);
    i.w = k;
    return i;
}

float sigmoid_(float x) { return 1.0f / (1.0f + exp(-x)); }

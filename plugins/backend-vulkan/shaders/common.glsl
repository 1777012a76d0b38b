// Shared by every shader of the Vulkan backend: the per-node parameter block (the
// layout vk.h's vk_params_t writes) and typed loads/stores on byte addresses.
#extension GL_EXT_control_flow_attributes : enable

#define NT 7   // tensors: 0 dst, 1..6 src0..src5

layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer T0 { uint w[]; } t0;
layout(std430, binding = 1) buffer T1 { uint w[]; } t1;
layout(std430, binding = 2) buffer T2 { uint w[]; } t2;
layout(std430, binding = 3) buffer T3 { uint w[]; } t3;
layout(std430, binding = 4) buffer T4 { uint w[]; } t4;
layout(std430, binding = 5) buffer T5 { uint w[]; } t5;
layout(std430, binding = 6) buffer T6 { uint w[]; } t6;
layout(std430, binding = 7) readonly buffer P {
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
    uint lanes;         // rows.comp: invocations sharing a row, 1 or a workgroup of 64
} p;

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

uint ldw(int t, uint i)
{
    switch (t) {
    case 0: return t0.w[i];
    case 1: return t1.w[i];
    case 2: return t2.w[i];
    case 3: return t3.w[i];
    case 4: return t4.w[i];
    case 5: return t5.w[i];
    default: return t6.w[i];
    }
}

void stw(int t, uint i, uint v)
{
    switch (t) {
    case 0: t0.w[i] = v; break;
    case 1: t1.w[i] = v; break;
    case 2: t2.w[i] = v; break;
    case 3: t3.w[i] = v; break;
    case 4: t4.w[i] = v; break;
    case 5: t5.w[i] = v; break;
    default: t6.w[i] = v; break;
    }
}

// Replace the 16-bit half `hi` of word i of tensor t without touching the other
// half, which another invocation may be writing.
void st16(int t, uint i, bool hi, uint v)
{
    uint keep = hi ? 0x0000ffffu : 0xffff0000u, bits = hi ? (v << 16) : (v & 0xffffu);
    switch (t) {
    case 0: atomicAnd(t0.w[i], keep); atomicOr(t0.w[i], bits); break;
    case 1: atomicAnd(t1.w[i], keep); atomicOr(t1.w[i], bits); break;
    case 2: atomicAnd(t2.w[i], keep); atomicOr(t2.w[i], bits); break;
    default: atomicAnd(t3.w[i], keep); atomicOr(t3.w[i], bits); break;
    }
}

uint ld8(int t, uint b)  { return (ldw(t, b >> 2) >> ((b & 3u) * 8u)) & 0xffu; }
int  lds8(int t, uint b) { return int(ld8(t, b) << 24) >> 24; }
uint ld16(int t, uint b) { return (ldw(t, b >> 2) >> ((b & 2u) * 8u)) & 0xffffu; }
float ldh(int t, uint b) { return unpackHalf2x16(ld16(t, b)).x; }

int NE(int t, int d) { return p.ne[t * 4 + d]; }
int NB(int t, int d) { return p.nb[t * 4 + d]; }

// Byte address of element (i0,i1,i2,i3) of t (i0 counts elements; block types
// are addressed by block through ldq below).
uint addr(int t, int i0, int i1, int i2, int i3)
{
    return p.off[t] + uint(i0 * NB(t, 0) + i1 * NB(t, 1) + i2 * NB(t, 2) + i3 * NB(t, 3));
}

// Element k (0-based, innermost) of the row starting at byte `row` of a block type.
const float nf4_levels[16] = float[16](-1.0, -0.6961928009986877, -0.5250730514526367,
    -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495,
    0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0);

#ifndef NO_QUANT
float ldq(int t, int ty, uint row, int k)
{
    switch (ty) {
    case TY_Q8_0: {
        uint b = row + uint(k / 32) * 34u;
        return ldh(t, b) * float(lds8(t, b + 2u + uint(k % 32)));
    }
    case TY_Q4_0: {
        uint b = row + uint(k / 32) * 18u;
        int j = k % 32;
        uint q = ld8(t, b + 2u + uint(j % 16));
        q = j < 16 ? (q & 15u) : (q >> 4);
        return ldh(t, b) * float(int(q) - 8);
    }
    case TY_Q4_1: {
        uint b = row + uint(k / 32) * 20u;
        int j = k % 32;
        uint q = ld8(t, b + 4u + uint(j % 16));
        q = j < 16 ? (q & 15u) : (q >> 4);
        return ldh(t, b) * float(q) + ldh(t, b + 2u);
    }
    case TY_Q5_0:
    case TY_Q5_1: {
        bool one = ty == TY_Q5_1;
        uint b = row + uint(k / 32) * (one ? 24u : 22u), qh = b + (one ? 4u : 2u);
        int j = k % 32;
        uint q = ld8(t, qh + 4u + uint(j % 16));
        q = (j < 16 ? (q & 15u) : (q >> 4)) | (((ld8(t, qh + uint(j / 8)) >> uint(j % 8)) & 1u) << 4);
        return one ? ldh(t, b) * float(q) + ldh(t, b + 2u) : ldh(t, b) * float(int(q) - 16);
    }
    case TY_NF4: {
        uint b = row + uint(k / 64) * 34u;
        int j = k % 64;
        uint q = ld8(t, b + 2u + uint(j % 32));
        q = j < 32 ? (q & 15u) : (q >> 4);
        return ldh(t, b) * nf4_levels[q];
    }
    case TY_Q4_K:
    case TY_Q5_K: {
        bool five = ty == TY_Q5_K;
        uint b = row + uint(k / 256) * (five ? 176u : 144u);
        int j = k % 256, il = j / 64, l = j % 32, is = 2 * il + ((j % 64) >= 32 ? 1 : 0);
        uint sb = b + 4u, sc, m;
        if (is < 4) {
            sc = ld8(t, sb + uint(is)) & 63u;
            m = ld8(t, sb + uint(is + 4)) & 63u;
        } else {
            sc = (ld8(t, sb + uint(is + 4)) & 15u) | ((ld8(t, sb + uint(is - 4)) >> 6) << 4);
            m = (ld8(t, sb + uint(is + 4)) >> 4) | ((ld8(t, sb + uint(is)) >> 6) << 4);
        }
        uint qs = b + (five ? 48u : 16u);
        uint q = ld8(t, qs + uint(il * 32 + l));
        q = (j % 64) >= 32 ? (q >> 4) : (q & 15u);
        if (five)
            q += ((ld8(t, b + 16u + uint(l)) >> uint(is)) & 1u) * 16u;
        return ldh(t, b) * float(sc) * float(q) - ldh(t, b + 2u) * float(m);
    }
    case TY_Q6_K: {
        uint b = row + uint(k / 256) * 210u;
        int j = k % 256, n = j / 128, r = j % 128, g = r / 32, l = r % 32;
        uint qlb = ld8(t, b + uint(64 * n + l + (g & 1) * 32));
        uint nib = g < 2 ? (qlb & 15u) : (qlb >> 4);
        uint qhb = (ld8(t, b + 128u + uint(32 * n + l)) >> uint(2 * g)) & 3u;
        int q = int(nib | (qhb << 4)) - 32;
        int sc = lds8(t, b + 192u + uint(8 * n + l / 16 + 2 * g));
        return ldh(t, b + 208u) * float(sc) * float(q);
    }
    }
    return 0.0;
}
#else
float ldq(int t, int ty, uint row, int k) { return 0.0; }
#endif

// Element (i0..i3) of tensor t as f32, whatever its type.
float ld(int t, int i0, int i1, int i2, int i3)
{
    int ty = p.type[t];
    if (ty == TY_F32)
        return uintBitsToFloat(ldw(t, addr(t, i0, i1, i2, i3) >> 2));
    if (ty == TY_F16)
        return ldh(t, addr(t, i0, i1, i2, i3));
    if (ty == TY_BF16)
        return uintBitsToFloat(ld16(t, addr(t, i0, i1, i2, i3)) << 16);
    if (ty == TY_I32)
        return float(int(ldw(t, addr(t, i0, i1, i2, i3) >> 2)));
    return ldq(t, ty, addr(t, 0, i1, i2, i3), i0);
}

int ldi(int t, int i0, int i1, int i2, int i3)
{
    return int(ldw(t, addr(t, i0, i1, i2, i3) >> 2));
}

void st(int t, int i0, int i1, int i2, int i3, float v)
{
    uint a = addr(t, i0, i1, i2, i3);
    if (p.type[t] == TY_F16) {
        st16(t, a >> 2, (a & 2u) != 0u, packHalf2x16(vec2(v, 0.0)) & 0xffffu);
    } else if (p.type[t] == TY_BF16) {
        uint u = floatBitsToUint(v);   // round to nearest even; NaN stays a quiet NaN
        u = isnan(v) ? 0x7fc0u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        st16(t, a >> 2, (a & 2u) != 0u, u);
    } else {
        stw(t, a >> 2, floatBitsToUint(v));
    }
}

// The work item of this invocation (dispatches are 2-D when one row of groups is
// not enough), or -1 past the end.
int item(void)
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    return i < p.n_items ? int(i) : -1;
}

// Unravel a flat index over tensor t's shape.
ivec4 unravel(int t, int k)
{
    ivec4 i;
    i.x = k % NE(t, 0); k /= NE(t, 0);
    i.y = k % NE(t, 1); k /= NE(t, 1);
    i.z = k % NE(t, 2); k /= NE(t, 2);
    i.w = k;
    return i;
}

float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

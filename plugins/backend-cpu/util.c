/* Small helpers shared by the CPU ops: descriptor checks, strided row conversion
 * and reductions written so the compiler vectorises them. */
#include "config.h"

#include <math.h>

#include "cpu.h"
#include "vmath.h"

bool cpu_same_shape(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b)
{
    for (int i = 0; i < SLM_MAX_DIMS; i++)
        if (a->ne[i] != b->ne[i])
            return false;
    return true;
}

bool cpu_can_repeat(const slm_tensor_desc_t *a, const slm_tensor_desc_t *b)
{
    for (int i = 0; i < SLM_MAX_DIMS; i++)
        if (b->ne[i] <= 0 || a->ne[i] % b->ne[i] != 0)
            return false;
    return true;
}

bool cpu_desc_ok(const slm_tensor_desc_t *t, int type)
{
    if (t->type != type)
        return false;
    for (int i = 0; i < SLM_MAX_DIMS; i++)
        if (t->ne[i] < 0 || t->nb[i] < 0)
            return false;
    return true;
}

bool cpu_is_contiguous(const slm_tensor_desc_t *t)
{
    int64_t expect = (int64_t)cpu_type_size(t->type);
    for (int i = 0; i < SLM_MAX_DIMS; i++) {
        if (t->ne[i] != 1 && t->nb[i] != expect)
            return false;
        expect *= t->ne[i];
    }
    return true;
}

void cpu_row_to_f32(int type, const char *src, int64_t stride, float *restrict dst, int64_t n)
{
    size_t es = cpu_type_size(type);
    if ((size_t)stride == es) {
        if (type == SLM_TYPE_F32)
            memcpy(dst, src, (size_t)n * sizeof(float));
        else if (type == SLM_TYPE_F16)
            cpu_row_f16_to_f32((const uint16_t *)(const void *)src, dst, n);
        else
            cpu_row_bf16_to_f32((const uint16_t *)(const void *)src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dst[i] = cpu_load(type, src + i * stride);
}

void cpu_row_from_f32(int type, char *dst, int64_t stride, const float *src, int64_t n)
{
    if (type == SLM_TYPE_F32 && stride == (int64_t)sizeof(float)) {
        memmove(dst, src, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++)
        cpu_store(type, dst + i * stride, src[i]);
}

#define ACC 16

float cpu_sum_f32(const float *restrict x, int64_t n)
{
    float acc[ACC] = {0};
    int64_t i = 0;
    for (; i + ACC <= n; i += ACC)
        for (int j = 0; j < ACC; j++)
            acc[j] += x[i + j];
    double s = 0.0;
    for (; i < n; i++)
        s += x[i];
    for (int j = 0; j < ACC; j++)
        s += acc[j];
    return (float)s;
}

float cpu_dot_f32(const float *restrict x, const float *restrict y, int64_t n)
{
    float acc[ACC] = {0};
    int64_t i = 0;
    for (; i + ACC <= n; i += ACC)
        for (int j = 0; j < ACC; j++)
            acc[j] += x[i + j] * y[i + j];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)x[i] * y[i];
    for (int j = 0; j < ACC; j++)
        s += acc[j];
    return (float)s;
}

size_t cpu_scratch_per_thread(size_t per_thread, int nth)
{
    size_t one = cpu_align64(per_thread);
    if (one < per_thread || (nth > 0 && one > SIZE_MAX / (size_t)nth))
        return SIZE_MAX;
    return one * (size_t)(nth > 0 ? nth : 1);
}

static bool packed_f32(const slm_tensor_desc_t *t)
{
    return t->type == SLM_TYPE_F32 && (t->ne[0] <= 1 || t->nb[0] == (int64_t)sizeof(float));
}

const float *cpu_row_in(const slm_tensor_desc_t *t, const char *row, float *buf)
{
    if (packed_f32(t))
        return (const float *)(const void *)row;
    cpu_row_to_f32(t->type, row, t->nb[0], buf, t->ne[0]);
    return buf;
}

float *cpu_row_out(const slm_tensor_desc_t *t, char *row, float *buf)
{
    return packed_f32(t) ? (float *)(void *)row : buf;
}

void cpu_row_flush(const slm_tensor_desc_t *t, char *row, const float *buf, const float *out)
{
    if (out == buf)
        cpu_row_from_f32(t->type, row, t->nb[0], buf, t->ne[0]);
}

size_t cpu_map_rows_scratch(const slm_node_t *n, int nth)
{
    if ((uint64_t)n->dst.ne[0] > SIZE_MAX / 16)
        return SIZE_MAX;
    return cpu_scratch_per_thread((size_t)n->dst.ne[0] * 3 * sizeof(float), nth);
}

void cpu_map_rows(const cpu_op_ctx_t *c, const slm_tensor_desc_t *a, const slm_tensor_desc_t *b,
                  cpu_row_fn f)
{
    const slm_tensor_desc_t *dst = &c->node->dst;
    int64_t ne0 = dst->ne[0];
    float *ba = cpu_thread_scratch(c, (size_t)ne0 * 3 * sizeof(float)), *bb = ba + ne0,
          *bd = bb + ne0;
    int64_t r0, r1;
    cpu_split(cpu_nrows(dst), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(dst, r, &i1, &i2, &i3);
        const float *pa = cpu_row_in(a, cpu_row(a, i1, i2, i3), ba);
        const float *pb = b ? cpu_row_in(b, cpu_row(b, i1, i2, i3), bb) : NULL;
        char *drow = cpu_row(dst, i1, i2, i3);
        float *pd = cpu_row_out(dst, drow, bd);
        f(pd, pa, pb, ne0, c->node);
        cpu_row_flush(dst, drow, bd, pd);
    }
}

void cpu_pack_rows(const cpu_op_ctx_t *c, const slm_tensor_desc_t *t, char *dst)
{
    size_t es = cpu_type_size(t->type);
    size_t row_bytes = (size_t)t->ne[0] * es;
    int64_t r0, r1;
    cpu_split(cpu_nrows(t), c->ith, c->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_unravel_row(t, r, &i1, &i2, &i3);
        const char *src = cpu_row(t, i1, i2, i3);
        char *out = dst + (size_t)r * row_bytes;
        for (int64_t i = 0; i < t->ne[0]; i++)
            memcpy(out + (size_t)i * es, src + i * t->nb[0], es);
    }
}

float cpu_exp_shifted(float *d, const float *v, int64_t n)
{
    float mx = cpu_max_f32(v, n);
    if (mx == -INFINITY) {
        for (int64_t i = 0; i < n; i++)
            d[i] = 0.0f;
        return 0.0f;
    }
    /* Fixed-length inner loops: -O2's cost model vectorises only those. */
    int64_t i = 0;
    for (; i + CPU_VW <= n; i += CPU_VW)
        for (int j = 0; j < CPU_VW; j++)
            d[i + j] = cpu_expf(v[i + j] - mx);
    for (; i < n; i++)
        d[i] = cpu_expf(v[i] - mx);
    return cpu_sum_f32(d, n);
}

/* `grain` units off one part of `size` (front: its owner; back: another thread),
 * the part's taken front and back counts packed in one 64-bit word (both < 2^32). */
static bool take_from_share(atomic_ullong *share, int64_t size, int64_t grain, bool front,
                            int64_t *off, int64_t *len)
{
    unsigned long long cur = atomic_load_explicit(share, memory_order_relaxed);
    for (;;) {
        int64_t f = (int64_t)(cur & 0xffffffffull), b = (int64_t)(cur >> 32);
        int64_t left = size - f - b;
        if (left <= 0)
            return false;
        int64_t t = grain < left ? grain : left;
        unsigned long long next = front ? cur + (unsigned long long)t
                                        : cur + ((unsigned long long)t << 32);
        if (atomic_compare_exchange_weak_explicit(share, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *off = front ? f : size - b - t;
            *len = t;
            return true;
        }
    }
}

int cpu_claim_streams(const cpu_op_ctx_t *c, int64_t n, int64_t grain, int streams,
                      int64_t lo[], int64_t hi[])
{
    if (c->nth > CPU_SHARES_MAX || !c->shares || n > (int64_t)0xffffffff || streams < 1 ||
        streams > CPU_STREAMS_MAX)
        return cpu_claim(c, n, grain, &lo[0], &hi[0]) ? 1 : 0;
    /* Part s of thread t's share is part t * streams + s of the whole. */
    int parts = c->nth * streams, got = 0;
    for (int k = 0; k < c->nth && got == 0; k++) {
        int t = (c->ith + k) % c->nth;
        for (int s = 0; s < streams; s++) {
            int64_t plo, phi, off, len;
            cpu_split(n, t * streams + s, parts, &plo, &phi);
            if (take_from_share(&c->shares[t * CPU_SHARE_STRIDE + s], phi - plo, grain, k == 0,
                                &off, &len)) {
                lo[got] = plo + off;
                hi[got] = plo + off + len;
                got++;
            }
        }
    }
    return got;
}

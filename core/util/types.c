/* Element type traits (built-in scalar types; quantized types are added by the
 * registry from quantizer manifests) and half/bfloat16 conversions. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <slmops/types.h>

#include "internal/types.h"

#define SCALAR(id, nm, bytes) \
    [id] = {.struct_size = sizeof(slm_type_traits_t), .name = nm, .block = 1, .size = bytes}

static slm_type_traits_t type_table[SLM_TYPE_COUNT_MAX] = {
    SCALAR(SLM_TYPE_F32, "f32", 4),
    SCALAR(SLM_TYPE_F16, "f16", 2),
    SCALAR(SLM_TYPE_BF16, "bf16", 2),
    SCALAR(SLM_TYPE_I8, "i8", 1),
    SCALAR(SLM_TYPE_I16, "i16", 2),
    SCALAR(SLM_TYPE_I32, "i32", 4),
    SCALAR(SLM_TYPE_I64, "i64", 8),
    SCALAR(SLM_TYPE_F64, "f64", 8),
};

const slm_type_traits_t *slm_type_get_traits(int type)
{
    if (type < 0 || type >= SLM_TYPE_COUNT_MAX || !type_table[type].name)
        return NULL;
    return &type_table[type];
}

int slm__type_register(int type, const char *name, uint32_t block, uint32_t size)
{
    if (type < 0 || type >= SLM_TYPE_COUNT_MAX || !name || block == 0 || size == 0)
        return -1;
    slm_type_traits_t *t = &type_table[type];
    if (t->name)   /* first registration wins; built-ins cannot be replaced */
        return (strcmp(t->name, name) == 0 && t->block == block && t->size == size) ? 0 : -1;
    *t = (slm_type_traits_t){.struct_size = sizeof *t, .name = name, .block = block,
                             .size = size, .is_quantized = block > 1};
    return 0;
}

/* Every message names a type through here, so an id no plugin registered still
 * reads as what it is. A few per-thread buffers let one message name several. */
const char *slm_type_name(int type)
{
    const slm_type_traits_t *t = slm_type_get_traits(type);
    if (t)
        return t->name;
    static _Thread_local char unknown[4][32];
    static _Thread_local unsigned next;
    char *buf = unknown[next++ % 4];
    snprintf(buf, sizeof unknown[0], "type %d (unknown)", type);
    return buf;
}

/* Names are unique ignoring case ("Q8_0" is q8_0), as llama.cpp's tools take them. */
int slm_type_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < SLM_TYPE_COUNT_MAX; i++)
        if (type_table[i].name && strcasecmp(type_table[i].name, name) == 0)
            return i;
    return -1;
}

size_t slm_type_row_size(int type, int64_t n)
{
    const slm_type_traits_t *t = slm_type_get_traits(type);
    if (!t || n < 0 || n % t->block)
        return 0;
    return (size_t)(n / t->block) * t->size;
}

float slm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {   /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t slm_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u)          /* NaN: keep it quiet */
        return (uint16_t)(sign | 0x7e00);
    if (abs >= 0x477ff000u)         /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000u) {        /* below the smallest normal half */
        if (abs < 0x33000000u)      /* below half the smallest subnormal */
            return (uint16_t)sign;
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;   /* 14 + (113 - e) ... aligns to 2^-24 units */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t bits = abs - 0x38000000u;  /* rebias exponent 127 -> 15, keep in place */
    uint32_t half = bits >> 13;
    uint32_t rem = bits & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++;
    return (uint16_t)(sign | half);
}

float slm_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t slm_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);  /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

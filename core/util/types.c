/* Element type traits (built-in scalar types; quantized types are added by the
 * registry from quantizer manifests) and half/bfloat16 conversions. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <slmops/fp16.h>
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

/* The SDK's header-only conversions, exported for applications. */
float slm_f16_to_f32(uint16_t h)
{
    return slm_half_to_float(h);
}

uint16_t slm_f32_to_f16(float f)
{
    return slm_float_to_half(f);
}

float slm_bf16_to_f32(uint16_t b)
{
    return slm_bf16_to_float(b);
}

uint16_t slm_f32_to_bf16(float f)
{
    return slm_float_to_bf16(f);
}

/* Element types. Ids equal GGUF's ggml_type ids so that files and blocks move
 * between slmops and llama.cpp unchanged; quantized types come from plugins. */
#ifndef SLMOPS_TYPES_H
#define SLMOPS_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slm_type {
    SLM_TYPE_F32 = 0,
    SLM_TYPE_F16 = 1,
    SLM_TYPE_Q4_0 = 2,
    SLM_TYPE_Q4_1 = 3,
    SLM_TYPE_Q5_0 = 6,
    SLM_TYPE_Q5_1 = 7,
    SLM_TYPE_Q8_0 = 8,
    SLM_TYPE_Q8_1 = 9,
    SLM_TYPE_Q2_K = 10,
    SLM_TYPE_Q3_K = 11,
    SLM_TYPE_Q4_K = 12,
    SLM_TYPE_Q5_K = 13,
    SLM_TYPE_Q6_K = 14,
    SLM_TYPE_Q8_K = 15,
    SLM_TYPE_I8 = 24,
    SLM_TYPE_I16 = 25,
    SLM_TYPE_I32 = 26,
    SLM_TYPE_I64 = 27,
    SLM_TYPE_F64 = 28,
    SLM_TYPE_BF16 = 30,
    /* Ids at or above this are slmops-only types (never written as GGUF types). */
    SLM_TYPE_SLMOPS_BASE = 1024,
    SLM_TYPE_COUNT_MAX = 2048
} slm_type_t;

/* Traits of a type: 'block' elements are stored in 'size' bytes. */
typedef struct slm_type_traits {
    uint32_t struct_size;
    const char *name;   /* lower-case, as in GGUF tools: "f32", "q4_0" */
    uint32_t block;     /* elements per block (1 for scalar types) */
    uint32_t size;      /* bytes per block */
    int is_quantized;
} slm_type_traits_t;

/* NULL when the type is unknown to the core and to every registered quantizer. */
const slm_type_traits_t *slm_type_get_traits(int type);
/* The type's name; for an id nothing registered, "type 1234 (unknown)" in a
 * per-thread buffer that stays valid for the next three unknown ids named. */
const char *slm_type_name(int type);
int slm_type_from_name(const char *name);   /* case-insensitive; -1 when unknown */
/* Bytes of a row of n elements; 0 when n is not a multiple of the block or type unknown. */
size_t slm_type_row_size(int type, int64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float slm_f16_to_f32(uint16_t h);
uint16_t slm_f32_to_f16(float f);
float slm_bf16_to_f32(uint16_t b);
uint16_t slm_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif
#endif

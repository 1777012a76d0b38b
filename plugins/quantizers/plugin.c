/* Entry point of one quantizer plugin library: built once per block type with
 * -DQUANT_TYPE=<GGUF or slmops type id>, exporting only slm_plugin_entry. */
#include "config.h"

#include <slmops/plugin-quantizer.h>

#include "quant.h"

#ifndef QUANT_TYPE
#error "build with -DQUANT_TYPE=<type id>"
#endif

/* id, name, elements per block, block struct, function suffix */
#if QUANT_TYPE == 2
#define QT(x) x(2, "q4_0", QK_LEGACY, blk_q4_0, q4_0)
#elif QUANT_TYPE == 3
#define QT(x) x(3, "q4_1", QK_LEGACY, blk_q4_1, q4_1)
#elif QUANT_TYPE == 6
#define QT(x) x(6, "q5_0", QK_LEGACY, blk_q5_0, q5_0)
#elif QUANT_TYPE == 7
#define QT(x) x(7, "q5_1", QK_LEGACY, blk_q5_1, q5_1)
#elif QUANT_TYPE == 8
#define QT(x) x(8, "q8_0", QK_LEGACY, blk_q8_0, q8_0)
#elif QUANT_TYPE == 12
#define QT(x) x(12, "q4_k", QK_K, blk_q4_k, q4_k)
#elif QUANT_TYPE == 13
#define QT(x) x(13, "q5_k", QK_K, blk_q5_k, q5_k)
#elif QUANT_TYPE == 14
#define QT(x) x(14, "q6_k", QK_K, blk_q6_k, q6_k)
#elif QUANT_TYPE == 1024
#define QT(x) x(1024, "nf4", QK_NF4, blk_nf4, nf4)
#else
#error "QUANT_TYPE names no type this folder implements"
#endif

#define IFACE(id, nm, blk, st, fn)                                \
    static const slm_quantizer_iface_t iface = {                  \
        .struct_size = sizeof(slm_quantizer_iface_t),             \
        .iface_version = SLM_QUANTIZER_IFACE_VERSION,             \
        .type = id,                                               \
        .block = blk,                                             \
        .block_bytes = sizeof(st),                                \
        .type_name = nm,                                          \
        .quantize_row = qz_quantize_##fn,                         \
        .dequantize_row = qz_dequantize_##fn,                     \
        .vec_dot_f32 = qz_dot_##fn,                               \
    };                                                            \
    static const slm_plugin_descriptor_t descriptor = {           \
        .struct_size = sizeof(slm_plugin_descriptor_t),           \
        .abi_version = 1,                                         \
        .kind = SLM_PLUGIN_KIND_QUANTIZER,                        \
        .name = "quantizer-" nm,                                  \
        .version = PACKAGE_VERSION,                               \
        .iface = &iface,                                          \
    };
QT(IFACE)

static const slm_plugin_descriptor_t *entry(const slm_host_t *host, uint32_t host_abi_version)
{
    (void)host;
    return host_abi_version >= 1 ? &descriptor : NULL;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)

/* The GGUF format plugin's entry point and descriptor, plus the tables of tensor
 * and metadata types that the reader and writer share. */
#include "config.h"

#include <stddef.h>

#include "gguf.h"

/* ggml's block layouts by type id (ggml-common.h); holes are retired ids. */
static const gguf_type_t types[] = {
    [0] = {"f32", 1, 4},         [1] = {"f16", 1, 2},
    [2] = {"q4_0", 32, 18},      [3] = {"q4_1", 32, 20},
    [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},      [9] = {"q8_1", 32, 36},
    [10] = {"q2_k", 256, 84},    [11] = {"q3_k", 256, 110},
    [12] = {"q4_k", 256, 144},   [13] = {"q5_k", 256, 176},
    [14] = {"q6_k", 256, 210},   [15] = {"q8_k", 256, 292},
    [16] = {"iq2_xxs", 256, 66}, [17] = {"iq2_xs", 256, 74},
    [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},   [21] = {"iq3_s", 256, 110},
    [22] = {"iq2_s", 256, 82},   [23] = {"iq4_xs", 256, 136},
    [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},        [27] = {"i64", 1, 8},
    [28] = {"f64", 1, 8},        [29] = {"iq1_m", 256, 56},
    [30] = {"bf16", 1, 2},       [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},   [39] = {"mxfp4", 32, 17},
    /* slmops-only ids (SLM_TYPE_SLMOPS_BASE and up, docs/quantization.md): GGUF
     * files holding them are slmops' own; llama.cpp refuses them. */
    [1024] = {"nf4", 64, 34},
};

const gguf_type_t *gguf_type_get(int64_t id)
{
    if (id < 0 || (uint64_t)id >= sizeof types / sizeof types[0] || !types[id].name)
        return NULL;
    return &types[id];
}

uint32_t gguf_value_size(int64_t type)
{
    switch (type) {
    case SLM_VALUE_U8: case SLM_VALUE_I8: case SLM_VALUE_BOOL: return 1;
    case SLM_VALUE_U16: case SLM_VALUE_I16: return 2;
    case SLM_VALUE_U32: case SLM_VALUE_I32: case SLM_VALUE_F32: return 4;
    case SLM_VALUE_U64: case SLM_VALUE_I64: case SLM_VALUE_F64: return 8;
    default: return 0;
    }
}

const char *gguf_value_type_name(int64_t type)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return type >= 0 && (uint64_t)type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

const slm_host_t *gguf_host;

static const slm_format_iface_t iface = {
    .struct_size = sizeof(slm_format_iface_t),
    .iface_version = SLM_FORMAT_IFACE_VERSION,
    .probe = gguf_probe,
    .read = gguf_read,
    .write_temp = gguf_write,
};

static const slm_plugin_descriptor_t descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = 1,
    .kind = SLM_PLUGIN_KIND_FORMAT,
    .name = "format-gguf",
    .version = PACKAGE_VERSION,
    .iface = &iface,
};

static const slm_plugin_descriptor_t *entry(const slm_host_t *host, uint32_t host_abi_version)
{
    if (host_abi_version < 1)
        return NULL;
    gguf_host = host;
    return &descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)

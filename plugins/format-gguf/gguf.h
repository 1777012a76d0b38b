/* GGUF v2/v3 container layout shared by the plugin's reader and writer: type
 * sizes, value types, and the error helper (a plugin cannot use the core's). */
#ifndef SLMOPS_FORMAT_GGUF_H
#define SLMOPS_FORMAT_GGUF_H

#include <stdint.h>

#include <slmops/plugin-format.h>

#include "../common/plugin-util.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_VERSION 3u
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_KEY_ALIGNMENT "general.alignment"
#define GGUF_MAX_DIMS 4
/* magic, version, tensor count, key-value count */
#define GGUF_HEADER_BYTES 24u

/* Elements per block and bytes per block of one ggml tensor type. The plugin keeps
 * its own table: which quantizer plugins the core has loaded must not change
 * which files it can read. */
typedef struct gguf_type {
    const char *name;
    uint32_t block;
    uint32_t bytes;
} gguf_type_t;

/* NULL for ids GGUF does not define (or has retired). */
const gguf_type_t *gguf_type_get(int64_t id);
/* Bytes of one element of a scalar metadata type; 0 for strings, arrays, unknown. */
uint32_t gguf_value_size(int64_t type);
const char *gguf_value_type_name(int64_t type);

/* Fill err as the core would (respecting err->struct_size); returns code. The
 * message starts with the path and, when offset >= 0, the byte offset. */
#define gguf_fail plugin_fail

/* Round up to a multiple of align (a power of two); false on overflow. */
static inline int gguf_align_up(uint64_t v, uint64_t align, uint64_t *out)
{
    if (v > UINT64_MAX - (align - 1))
        return 0;
    *out = (v + align - 1) & ~(align - 1);
    return 1;
}

int gguf_probe(const char *path, const uint8_t *head, size_t head_len);
int gguf_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err);
/* Interface version 2: fill the host's temporary file `temp` for OUT `path`. */
int gguf_write(const char *temp, const char *path, const slm_format_source_t *source,
               slm_error_t *err);

/* The host's log slot, or NULL before the entry point ran (e.g. in tests that
 * compile the plugin in). */
extern const slm_host_t *gguf_host;

#endif

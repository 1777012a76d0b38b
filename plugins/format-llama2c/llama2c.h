/* llama2.c files (checkpoints v0/v1/v2 and tokenizer.bin) as the plugin's parts
 * share them: the mapped file, the error helper and each reader's entry points. */
#ifndef SLMOPS_FORMAT_LLAMA2C_H
#define SLMOPS_FORMAT_LLAMA2C_H

#include <stdbool.h>
#include <stdint.h>

#include <slmops/plugin-format.h>

#include "../common/plugin-util.h"

/* "ak42" read as a little-endian uint32: the magic of v1 and v2 checkpoints. */
#define L2C_MAGIC 0x616b3432u
/* v1/v2 header size (magic, version, 7 params, flags, zero padding). */
#define L2C_HEADER_BYTES 256u
/* v0 header: 7 int32 params. */
#define L2C_V0_HEADER_BYTES 28u
/* Largest max_token_length a tokenizer.bin may claim. */
#define L2C_MAX_TOKEN_LENGTH (1u << 20)

/* A file mapped read-only; size 0 files are never mapped (base NULL). */
typedef struct l2c_file {
    const char *path;
    const uint8_t *base;
    uint64_t size;
} l2c_file_t;

int l2c_map(const char *path, l2c_file_t *f, slm_error_t *err);
void l2c_unmap(l2c_file_t *f);

/* Fill err as the core would (respecting err->struct_size); returns code. The
 * message starts with the path and, when offset >= 0, the byte offset. */
#define l2c_fail plugin_fail

static inline uint32_t l2c_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline float l2c_f32(const uint8_t *p)
{
    union { uint32_t u; float f; } v = {.u = l2c_u32(p)};
    return v.f;
}

/* Checkpoints (checkpoint.c). Probe scores: 0..100. */
int l2c_checkpoint_probe(const char *path, const uint8_t *head, size_t head_len, uint64_t size);
/* Validate the header and layout; header_ok: the parameters themselves are sane. */
int l2c_checkpoint_check(const l2c_file_t *f, bool *header_ok, slm_error_t *err);
int l2c_checkpoint_read(const l2c_file_t *f, const slm_format_sink_t *sink, slm_error_t *err);

/* tokenizer.bin (tokenizer.c). fits: every record is sane and they fill the file
 * exactly; looks_like: the first record is plausible (to choose which reader's
 * error a broken file gets). */
bool l2c_tokenizer_fits(const l2c_file_t *f);
bool l2c_tokenizer_looks_like(const uint8_t *head, size_t head_len);
int l2c_tokenizer_check(const l2c_file_t *f, slm_error_t *err);
int l2c_tokenizer_read(const l2c_file_t *f, const slm_format_sink_t *sink, slm_error_t *err);

/* The plugin's slots (plugin.c). */
int l2c_probe(const char *path, const uint8_t *head, size_t head_len);
int l2c_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err);

/* The host's log slot, or NULL before the entry point ran. */
extern const slm_host_t *l2c_host;

#endif

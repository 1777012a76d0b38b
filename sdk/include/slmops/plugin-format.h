/* Format plugin interface: sniff, read and write model containers. A reader
 * reports metadata and tensors to a sink the host provides; a writer pulls them
 * from a source the host provides. The core never names a format.
 *
 * Interface versions:
 *   1  probe, read (into a sink), write (from a source).
 *   2  layout and write_temp (taken from `reserved`; the struct keeps its size): the
 *      host owns the atomic output (checks OUT, makes the temporary, syncs,
 *      renames, removes it on failure or on a signal) and the plugin only fills
 *      the temporary it is handed. A host prefers write_temp; it calls `write`
 *      only for plugins without it.
 *   The sink's get_hint slot (taken from its `reserved`; hosts of this header fill
 *   it or leave it NULL) tells a reader what the host knows about the file that the
 *   file may not say itself: for an adapter, its base model's metadata. */
#ifndef SLMOPS_PLUGIN_FORMAT_H
#define SLMOPS_PLUGIN_FORMAT_H

#include <slmops/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_FORMAT_IFACE_VERSION 2u

typedef enum slm_value_type {
    SLM_VALUE_U8 = 0, SLM_VALUE_I8 = 1, SLM_VALUE_U16 = 2, SLM_VALUE_I16 = 3,
    SLM_VALUE_U32 = 4, SLM_VALUE_I32 = 5, SLM_VALUE_F32 = 6, SLM_VALUE_BOOL = 7,
    SLM_VALUE_STRING = 8, SLM_VALUE_ARRAY = 9, SLM_VALUE_U64 = 10, SLM_VALUE_I64 = 11,
    SLM_VALUE_F64 = 12
} slm_value_type_t;  /* same ids as GGUF metadata value types */

/* Host side of a read: the plugin reports what it found. Returning non-zero aborts. */
typedef struct slm_format_sink {
    uint32_t struct_size;
    void *ctx;
    /* Scalar or string metadata (for strings `value` is char*, `len` bytes). */
    int (*set_value)(void *ctx, const char *key, int32_t type, const void *value, uint64_t len);
    /* Array metadata: n elements of elem_type; strings are passed as const char *const[] with lens. */
    int (*set_array)(void *ctx, const char *key, int32_t elem_type, const void *values,
                     const uint64_t *lens, uint64_t n);
    /* A tensor whose bytes stay valid until the mapping is released by the host. */
    int (*add_tensor)(void *ctx, const char *name, int32_t type, int32_t n_dims,
                      const int64_t *ne, const void *data, uint64_t nbytes);
    /* Hand the host the resources backing tensor bytes (e.g. an mmap) and how to free them. */
    int (*set_mapping)(void *ctx, void *mapping, void (*release)(void *mapping));
    /* Optional (NULL: no hints). Metadata of the file this one belongs with (an
     * adapter's base model), read-only, valid during the read: *type, *value and *n
     * as slm_format_source_t.get_value gives them (arrays: *type SLM_VALUE_ARRAY,
     * *elem_type set). Returns 0 when the host has the key, non-zero otherwise. A
     * reader uses hints only for what the file leaves unsaid. */
    int (*get_hint)(void *ctx, const char *key, int32_t *type, int32_t *elem_type,
                    const void **value, uint64_t *n);
    void *reserved[7];
} slm_format_sink_t;

/* Host side of a write: the plugin pulls what to store. */
typedef struct slm_format_source {
    uint32_t struct_size;
    void *ctx;
    uint64_t (*n_values)(void *ctx);
    /* Metadata entry i; arrays have type SLM_VALUE_ARRAY and elem_type set. *n is the
     * element count of an array, the byte length of a string, 1 for a scalar. */
    int (*get_value)(void *ctx, uint64_t i, const char **key, int32_t *type, int32_t *elem_type,
                     const void **value, const uint64_t **lens, uint64_t *n);
    uint64_t (*n_tensors)(void *ctx);
    int (*get_tensor)(void *ctx, uint64_t i, const char **name, int32_t *type, int32_t *n_dims,
                      const int64_t **ne, const void **data, uint64_t *nbytes);
    void *reserved[8];
} slm_format_source_t;

/* What a write produces (slm_format_iface_t.layout). */
#define SLM_FORMAT_LAYOUT_FILE 0    /* one regular file */
#define SLM_FORMAT_LAYOUT_FOLDER 1  /* a folder of regular files */

typedef struct slm_format_iface {
    uint32_t struct_size;
    uint32_t iface_version;
    /* 0..100: how sure the plugin is that `path` (first bytes in head) is its format. */
    int (*probe)(const char *path, const uint8_t *head, size_t head_len);
    /* Optional (NULL: cannot read). */
    int (*read)(const char *path, const slm_format_sink_t *sink, slm_error_t *err);
    /* Optional, version 1 (NULL: cannot write, unless write_temp is set). Writes
     * atomically (temp name, fsync, rename) on its own; the host has followed a
     * symbolic link in path and refused non-files and the job's inputs. */
    int (*write)(const char *path, const slm_format_source_t *source, slm_error_t *err);
    /* Version 2, optional. What a write to final_path makes: SLM_FORMAT_LAYOUT_FILE
     * or SLM_FORMAT_LAYOUT_FOLDER; for a folder, *names gets the NULL-terminated
     * names of the files the plugin may put in it (an existing folder holding
     * anything else is not replaced). NULL: always one file. */
    int (*layout)(const char *final_path, const char *const **names);
    /* Version 2, optional (preferred over write). Fill temp_path, which the host
     * created empty: a regular file to open with O_WRONLY|O_TRUNC, or a folder to
     * create files in, as layout(final_path) said. final_path is OUT as named (for
     * the layout and for messages); never rename, sync or remove anything: on
     * failure the host removes the temporary. Check every write and close. */
    int (*write_temp)(const char *temp_path, const char *final_path,
                      const slm_format_source_t *source, slm_error_t *err);
    void *reserved[6];
} slm_format_iface_t;

#ifdef __cplusplus
}
#endif
#endif

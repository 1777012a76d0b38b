/* A model file in memory: ordered metadata and a tensor table, read and written
 * through whichever format plugin recognises the file (the core names no format).
 *
 * Tensors read from a file usually borrow their bytes from the file's mapping,
 * which lives as long as the container. Metadata value types are GGUF's ids
 * (slm_value_type_t in <slmops/plugin-format.h>, repeated here as plain ints). */
#ifndef SLMOPS_MODEL_FILE_H
#define SLMOPS_MODEL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/output.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_model_file slm_model_file_t;

/* Most dimensions a tensor of a model file may have. */
#define SLM_MODEL_FILE_MAX_DIMS 4

/* Value type ids (equal to GGUF's metadata value types). */
#define SLM_MF_U8 0
#define SLM_MF_I8 1
#define SLM_MF_U16 2
#define SLM_MF_I16 3
#define SLM_MF_U32 4
#define SLM_MF_I32 5
#define SLM_MF_F32 6
#define SLM_MF_BOOL 7
#define SLM_MF_STRING 8
#define SLM_MF_ARRAY 9
#define SLM_MF_U64 10
#define SLM_MF_I64 11
#define SLM_MF_F64 12

/* One metadata entry; pointers stay valid until the entry is changed or removed. */
typedef struct slm_model_value {
    uint32_t struct_size;
    const char *key;
    int32_t type;          /* SLM_MF_*; SLM_MF_ARRAY for arrays */
    int32_t elem_type;     /* arrays: type of the elements; otherwise equal to type */
    uint64_t n;            /* arrays: element count; strings: byte length; else 1 */
    const void *data;      /* scalar value, NUL-terminated string, or the elements
                            * (string arrays: const char *const *, each NUL-terminated) */
    const uint64_t *lens;  /* string arrays: byte length of each element, else NULL */
} slm_model_value_t;

/* One tensor; data stays valid until the tensor is replaced or the container freed. */
typedef struct slm_model_tensor {
    uint32_t struct_size;
    const char *name;
    int32_t type;          /* slm_type_t id (GGUF's ggml_type ids) */
    int32_t n_dims;
    int64_t ne[SLM_MODEL_FILE_MAX_DIMS];  /* unused dims are 1; ne[0] varies fastest */
    const void *data;
    uint64_t nbytes;
    bool borrowed;         /* bytes live in the file's mapping, not in a copy */
} slm_model_tensor_t;

/* An empty container (to build a file from scratch). */
slm_model_file_t *slm_model_file_new(void);
void slm_model_file_free(slm_model_file_t *mf);

/* Read `path`. format == NULL: every available format plugin probes the file's
 * first bytes and the most confident one reads it; otherwise the named plugin does. */
int slm_model_file_open(slm_registry_t *reg, const char *path, const char *format,
                        slm_model_file_t **out, slm_error_t *err);
/* The same for a file that belongs with another (an adapter with its base model):
 * the reader may consult related's metadata for what the file does not say itself
 * (a PEFT folder names no architecture). related may be NULL; it is only read, and
 * only during the call. */
int slm_model_file_open_for(slm_registry_t *reg, const char *path, const char *format,
                            const slm_model_file_t *related, slm_model_file_t **out,
                            slm_error_t *err);
/* Write atomically through <slmops/output.h> (temporary name, fsync, rename; a
 * symbolic link's target is replaced, a non-file or the file the container was
 * read from is refused). format == NULL: the writable format plugin whose
 * manifest lists the path's extension. */
int slm_model_file_save(const slm_model_file_t *mf, slm_registry_t *reg, const char *path,
                        const char *format, slm_error_t *err);
/* The same, with the job's inputs and in-place permission from `out` (its layout
 * and folder_names are the format plugin's to set; NULL: none). */
int slm_model_file_save_output(const slm_model_file_t *mf, slm_registry_t *reg, const char *path,
                               const char *format, const slm_output_params_t *out,
                               slm_error_t *err);
/* The plugin that read the container, or NULL for one built in memory. */
const char *slm_model_file_format(const slm_model_file_t *mf);

/* Metadata, in file order. */
size_t slm_model_file_n_values(const slm_model_file_t *mf);
int slm_model_file_value(const slm_model_file_t *mf, size_t i, slm_model_value_t *out);
/* Index of `key`, or SLM_E_NOT_FOUND. */
int slm_model_file_find_value(const slm_model_file_t *mf, const char *key, slm_model_value_t *out);

/* Typed reads: SLM_E_NOT_FOUND when absent, SLM_E_INVALID when of another kind.
 * get_int takes any integer type (u64 above INT64_MAX is refused); get_float f32/f64. */
int slm_model_file_get_int(const slm_model_file_t *mf, const char *key, int64_t *value,
                           slm_error_t *err);
int slm_model_file_get_float(const slm_model_file_t *mf, const char *key, double *value,
                             slm_error_t *err);
int slm_model_file_get_bool(const slm_model_file_t *mf, const char *key, bool *value,
                            slm_error_t *err);
int slm_model_file_get_string(const slm_model_file_t *mf, const char *key, const char **value,
                              slm_error_t *err);
/* Arrays: elem_type must match unless it is -1 (any). */
int slm_model_file_get_array(const slm_model_file_t *mf, const char *key, int32_t elem_type,
                             slm_model_value_t *out, slm_error_t *err);

/* Set a scalar (value points at the C type of `type`; bool: a uint8_t 0/1) or a
 * string (value is char *, len bytes). An existing key keeps its position. */
int slm_model_file_set_value(slm_model_file_t *mf, const char *key, int32_t type,
                             const void *value, uint64_t len, slm_error_t *err);
int slm_model_file_set_string(slm_model_file_t *mf, const char *key, const char *value,
                              slm_error_t *err);
/* Arrays of scalars (values: n packed elements) or strings (const char *const *,
 * lens may be NULL for NUL-terminated strings). */
int slm_model_file_set_array(slm_model_file_t *mf, const char *key, int32_t elem_type,
                             const void *values, const uint64_t *lens, uint64_t n,
                             slm_error_t *err);
int slm_model_file_remove_value(slm_model_file_t *mf, const char *key);
/* Copy every entry of src whose key starts with prefix into dst, replacing what dst
 * has under those keys ("tokenizer." gives a model the vocabulary of another file). */
int slm_model_file_copy_values(slm_model_file_t *dst, const slm_model_file_t *src,
                               const char *prefix, slm_error_t *err);

/* Tensors, in file order. */
size_t slm_model_file_n_tensors(const slm_model_file_t *mf);
int slm_model_file_tensor(const slm_model_file_t *mf, size_t i, slm_model_tensor_t *out);
/* Index of the tensor, or SLM_E_NOT_FOUND. */
int slm_model_file_find_tensor(const slm_model_file_t *mf, const char *name,
                               slm_model_tensor_t *out);

/* Flags for slm_model_file_add_tensor. */
#define SLM_MF_COPY 0u     /* the container keeps its own copy of the bytes */
#define SLM_MF_BORROW 1u   /* the caller keeps `data` alive as long as the container */

/* Append a tensor (a name already present is SLM_E_INVALID). nbytes must equal the
 * size the dims give when the type's traits are known. */
int slm_model_file_add_tensor(slm_model_file_t *mf, const char *name, int32_t type,
                              int32_t n_dims, const int64_t *ne, const void *data,
                              uint64_t nbytes, unsigned flags, slm_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

/* Inside the model-file container: its storage, shared by the file that keeps
 * the tables (model-file.c) and the one that connects them to format plugins (io.c). */
#ifndef SLMOPS_INTERNAL_MODEL_FILE_H
#define SLMOPS_INTERNAL_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <slmops/model-file.h>
#include <slmops/output.h>

typedef struct slm__mf_value {
    char *key;
    int32_t type;          /* SLM_MF_*, SLM_MF_ARRAY for arrays */
    int32_t elem_type;
    uint64_t n;            /* see slm_model_value_t */
    void *data;            /* owned: scalar bytes, string, elements or char *[] */
    uint64_t *lens;        /* string arrays only */
} slm__mf_value_t;

typedef struct slm__mf_tensor {
    char *name;
    int32_t type;
    int32_t n_dims;
    int64_t ne[SLM_MODEL_FILE_MAX_DIMS];
    const void *data;
    void *owned;           /* NULL when the bytes are borrowed */
    uint64_t nbytes;
} slm__mf_tensor_t;

/* Name -> position, open addressing; a slot holds position + 1, 0 when empty. */
typedef struct slm__mf_index {
    size_t *slots;
    size_t cap;            /* a power of two, or 0 */
} slm__mf_index_t;

typedef struct slm__mf_mapping {
    void *mapping;
    void (*release)(void *mapping);
} slm__mf_mapping_t;

struct slm_model_file {
    slm__mf_value_t *values;
    size_t n_values, cap_values;
    slm__mf_tensor_t *tensors;
    size_t n_tensors, cap_tensors;
    slm__mf_index_t value_index, tensor_index;
    slm__mf_mapping_t *maps;
    size_t n_maps;
    char *format;
    char *origin;          /* the path it was read from: saving over it is refused */
    const slm_model_file_t *hints;   /* during a read: what the sink's get_hint answers from */
    char sink_error[512];  /* why the container refused what a reader reported */
};

/* Byte size of one scalar element, 0 for strings, arrays and unknown ids. */
size_t slm__mf_scalar_size(int32_t type);
/* Keep a reader's mapping until the container is freed. */
int slm__mf_add_mapping(slm_model_file_t *mf, void *mapping, void (*release)(void *));

/* The checks slm_model_file_save_output makes before writing (the writer's
 * layout, OUT's kind, the inputs), for a job to run before its work. */
int slm__model_file_check_output(slm_registry_t *reg, const char *path, const char *format,
                                 const slm_output_params_t *out, slm_error_t *err);

#endif

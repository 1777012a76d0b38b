/* Inside an adapter: its targets' f32 arrays and what it knows of its base, shared
 * by the object (adapter.c), the reader (adapter-load.c) and the builder (adapter-new.c). */
#ifndef SLMOPS_INTERNAL_ADAPTER_H
#define SLMOPS_INTERNAL_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slmops/adapter.h>

typedef struct slm__adapter_target {
    char *name;
    int32_t rank;
    int64_t n_in, n_out;
    float *a, *b;          /* rank x n_in, n_out x rank; owned */
} slm__adapter_target_t;

struct slm_adapter {
    char *path;            /* read from, or NULL */
    char arch[64];
    float alpha;           /* llama.cpp's: scale = alpha / rank; 0: none */
    bool rslora;
    float dropout;
    slm__adapter_target_t *t;
    size_t n, cap;
    int64_t n_head, n_head_kv;   /* the base's, 0 when it has none */
    char *base_name;             /* the base's general.name, or NULL */
};

/* An empty adapter that knows base's architecture, head counts and name. */
int slm__adapter_create(const slm_model_file_t *base, slm_adapter_t **out, slm_error_t *err);
/* Append a target with zeroed A and B. */
int slm__adapter_add(slm_adapter_t *ad, const char *name, int32_t rank, int64_t n_in,
                     int64_t n_out, slm__adapter_target_t **out, slm_error_t *err);
/* "BASE" (the file base was read from) or "the base model", for messages. */
const char *slm__adapter_base_label(const slm_model_file_t *base);

#endif

/* The merge job: bake LoRA adapters into their base model (W' = W + scale * B * A, in
 * f32), keeping the base's types or re-quantizing as `slmops quantize` does. */
#ifndef SLMOPS_MERGE_H
#define SLMOPS_MERGE_H

#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/jobs.h>
#include <slmops/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One adapter and the user scale it is applied with (llama.cpp's --lora-scaled):
 * its weights gain scale * alpha / rank * B * A (slm_adapter_scale). */
typedef struct slm_merge_adapter {
    const char *path;
    float scale;
} slm_merge_adapter_t;

typedef struct slm_merge_params {
    uint32_t struct_size;
    const slm_merge_adapter_t *adapters;
    size_t n_adapters;
    /* NULL: every tensor keeps the base's type (a quantized weight is dequantized
     * through its quantizer plugin, merged and quantized again). Otherwise what
     * slm_quantize_params_t.type_name takes ("Q4_K_M", "q8_0", "f16"): the merged
     * model is quantized by the quantize job, already quantized tensors included. */
    const char *type_name;
    int32_t n_threads;                  /* <= 0: the number of online CPUs */
    const char *format;                 /* output format plugin; NULL: by OUT's extension */
    slm_job_progress_fn progress;       /* optional: bytes of tensor data merged */
    void *user;
    const volatile int *cancel;         /* optional: nonzero stops with SLM_E_CANCELLED */
} slm_merge_params_t;

typedef struct slm_merge_report {
    uint32_t struct_size;
    size_t n_adapters;
    size_t n_weights;                   /* base weights an adapter changed */
    int32_t type;                       /* most weights' type after re-quantizing, or -1 */
    char *mix;                          /* the mix applied ("Q4_K_M"), or NULL; free()d by
                                         * slm_merge_report_free */
    double seconds;
} slm_merge_report_t;

void slm_merge_params_default(slm_merge_params_t *p);
/* Read the base model (any readable format), load and check every adapter against it
 * (slm_adapter_load), merge, and write OUT atomically. OUT may be neither the base
 * nor an adapter; a bad adapter, type or OUT is refused before anything is written.
 * report may be NULL; otherwise free it with slm_merge_report_free. */
int slm_merge_model(slm_registry_t *reg, const char *base_path, const char *out_path,
                    const slm_merge_params_t *p, slm_merge_report_t *report, slm_error_t *err);
void slm_merge_report_free(slm_merge_report_t *r);

#ifdef __cplusplus
}
#endif
#endif

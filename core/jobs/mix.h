/* Quantization mixes (llama-quantize's file types such as Q4_K_M) read as data from
 * the *.mixes files on the plugin search path, and the interpreter of their rules. */
#ifndef SLMOPS_JOBS_MIX_H
#define SLMOPS_JOBS_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/registry.h>

typedef struct slm__mix_set slm__mix_set_t;   /* every mix found, by file */
typedef struct slm__mix slm__mix_t;           /* one mix */
typedef struct slm__mix_run slm__mix_run_t;   /* one model going through one mix */

/* Read every *.mixes file on reg's search path (sorted within each folder). A file
 * that cannot be read or parsed is skipped with a warning naming it and why; a mix
 * name already defined by an earlier file is shadowed, as manifests are. */
slm__mix_set_t *slm__mix_set_load(slm_registry_t *reg);
void slm__mix_set_free(slm__mix_set_t *s);

/* The mix called `name` or one of its aliases (ignoring case), or whose
 * general.file_type is the decimal number `name` (llama-quantize takes both); NULL
 * when none is. */
const slm__mix_t *slm__mix_find(const slm__mix_set_t *s, const char *name);
const char *slm__mix_name(const slm__mix_t *m);
const char *slm__mix_type(const slm__mix_t *m);      /* the type most weights get */
int32_t slm__mix_file_type(const slm__mix_t *m);      /* general.file_type */
bool slm__mix_has_rules(const slm__mix_t *m);         /* false: a name only */
bool slm__mix_needs_imatrix(const slm__mix_t *m);

/* What the rules may test about the model (llama.cpp's hparams). */
typedef struct slm__mix_model {
    int64_t n_layer;     /* block_count */
    int64_t n_gqa;       /* head_count / head_count_kv, 0 when unknown */
    int64_t n_expert;    /* expert_count, 0 without experts */
    bool imatrix;        /* an importance matrix is in use */
} slm__mix_model_t;

/* Start a run over a model whose tensors are called names[0..n) (used to count
 * each category and to tell tied embeddings); default_block is the block of the
 * mix's type. NULL when out of memory. */
slm__mix_run_t *slm__mix_run_new(const slm__mix_t *m, const slm__mix_model_t *model,
                                 const char *const *names, size_t n, uint32_t default_block);
void slm__mix_run_free(slm__mix_run_t *r);

/* The type name the mix gives the quantizable tensor `name` with rows of ne0, or
 * NULL when no rule matches (the mix's type). Call once per tensor in llama.cpp's
 * order (by block number, then by name): it advances the category's counter. Fails
 * (with err) only when a layered rule cannot find the tensor's block number. */
int slm__mix_run_type(slm__mix_run_t *r, const char *name, int64_t ne0, const char **type,
                      slm_error_t *err);

#endif

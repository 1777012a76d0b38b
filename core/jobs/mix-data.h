/* The parsed form of the *.mixes files, shared by their reader (mix-file.c) and
 * the rule interpreter (mix.c); nothing else sees it. */
#ifndef SLMOPS_JOBS_MIX_DATA_H
#define SLMOPS_JOBS_MIX_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jobs/mix.h"

enum { COUNT_NONE, COUNT_TENSORS, COUNT_LAYERS };

/* Where in its category's sequence a tensor must be (llama.cpp's layer tests). */
enum { LAYER_ANY, LAYER_USE_MORE_BITS, LAYER_FIRST_EIGHTH, LAYER_FIRST_SIXTEENTH, LAYER_MIDDLE };

typedef struct category {
    const char *name;
    json_t *names;       /* whole tensor names, or NULL */
    json_t *contains;    /* substrings, or NULL */
    int count;
    int tied_to;         /* category standing in when the file has none of it, or -1 */
} category_t;

/* A condition left at -1 is not tested. */
typedef struct rule {
    int category;
    int rows_fit, imatrix, layer;
    int64_t index_below, n_gqa_min, n_expert, n_expert_min, n_layer;
    const char *type;
} rule_t;

typedef struct mix_file mix_file_t;

struct slm__mix {
    const mix_file_t *file;
    const char *name;
    json_t *aliases;
    int32_t file_type;
    const char *type;
    bool has_rules, needs_imatrix;
    rule_t *rules;
    size_t n_rules;
};

struct mix_file {
    char *path;
    json_t *root;        /* every string above points into it */
    category_t *cats;
    size_t n_cats;
    slm__mix_t *mixes;
    size_t n_mixes;
};

struct slm__mix_set {
    mix_file_t *files;
    size_t n_files;
};

#endif

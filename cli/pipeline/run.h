/* What a stage's code sees while it runs (cli/pipeline/stages.c runs the stages,
 * package.c is the one that makes no job), and the path helpers they share. */
#ifndef SLMOPS_CLI_PIPELINE_RUN_H
#define SLMOPS_CLI_PIPELINE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "cli/pipeline/pipeline.h"

/* What one stage run sees: its settings with references as paths, its folder. */
typedef struct slm_pipe_stage {
    slm_pipe_t *p;
    size_t index;              /* in the recipe's stages */
    const char *name;
    const json_t *s;           /* resolved settings */
    const char *dir;           /* work/NAME */
    bool resume;               /* a run with this key was killed: continue it */
    json_t *outputs;           /* artifact -> path, filled by the stage */
    json_t *results;           /* what the report reads, filled by the stage */
} slm_pipe_stage_t;

/* dir/file (free()); NULL when out of memory. */
char *slm_pipe_path_in(const char *dir, const char *file);
/* o[key] = dir/file. */
void slm_pipe_set_path(json_t *o, const char *key, const char *dir, const char *file);

/* The package stage: a folder with the model, its adapters, the chat template and a
 * model card. Exit status. */
int slm_pipe_stage_package(slm_pipe_stage_t *r);

#endif

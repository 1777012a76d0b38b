/* `slmops pipeline RECIPE`: a JSON recipe of stages (distill, finetune, quantize, eval,
 * bench, package) run through the job contract, cached by content, and reported. */
#ifndef SLMOPS_CLI_PIPELINE_H
#define SLMOPS_CLI_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <slmops/registry.h>

/* The recipe format's version (docs/recipe.schema.json, "recipe"). */
#define SLM_PIPE_RECIPE_VERSION 1

typedef struct slm_pipe {
    const char *verb;          /* "pipeline", for messages */
    char *recipe_path;
    char *recipe_dir;          /* inputs are relative to it */
    char *work;                /* the work folder: stage outputs, state, report */
    json_t *recipe;            /* the parsed recipe */
    json_t *state;             /* work/state.json: {"version", "stages", "hashes"} */
    json_t *artifacts;         /* "inputs.NAME" / "STAGE.NAME" -> absolute-enough path */
    long threads;              /* 0: each job's default */
    const char *device;        /* NULL: each job's default (auto) */
    bool force;                /* ignore the cache */
    slm_registry_t *reg;
    int ran, cached;           /* stages run and stages found done */
} slm_pipe_t;

/* ---- recipe.c ---- */

/* Check doc against the recipe schema (docs/recipe.schema.json): on the first
 * violation, "RECIPE: /json/pointer: what is wrong" in msg and false. */
bool slm_pipe_recipe_check(const json_t *doc, char *msg, size_t cap);
/* Read and check the recipe; prints the error; returns a CLI exit status. */
int slm_pipe_recipe_load(slm_pipe_t *p, const char *path);
/* "@NAME.ARTIFACT", both names as recipe.schema.json's "ref" spells them: a
 * reference (any other string is a plain value). */
bool slm_pipe_is_ref(const char *s);
/* The stage's artifact names, in order ("model", "student", ...), NULL-terminated. */
const char *const *slm_pipe_stage_artifacts(const char *type);

/* ---- state.c ---- */

/* Load work/state.json (none: an empty state). Exit status. */
int slm_pipe_state_load(slm_pipe_t *p);
/* Write work/state.json atomically. Exit status. */
int slm_pipe_state_save(slm_pipe_t *p);
/* SHA-256 of a file's content, or of a folder's files (names and contents, sorted),
 * as hex; remembered in the state by path, size and mtime. NULL on failure (printed). */
const char *slm_pipe_hash(slm_pipe_t *p, const char *path);
/* Write text to path atomically. Exit status. */
int slm_pipe_write_text(slm_pipe_t *p, const char *path, const char *text, size_t len);
/* mkdir -p of the work folder's subfolder; returns the path (free()). */
char *slm_pipe_dir(slm_pipe_t *p, const char *name);
/* Remove a file or a folder tree under the work folder (rm -r). */
void slm_pipe_remove(const char *path);

/* ---- stages.c ---- */

/* Run every stage in order, each unless cached. Exit status. */
int slm_pipe_run(slm_pipe_t *p);

/* ---- measure.c ---- */

/* Peak resident set (KiB) of a fresh `slmops generate --json` of n tokens from
 * prompt on model: this very program run again, as a child (its stdout into out, its
 * stderr into log), the peak it reports for itself (VmHWM) read from out. */
int slm_pipe_measure_rss(slm_pipe_t *p, const char *model, const char *prompt, long n_tokens,
                         const char *out, const char *log, long *kib);

/* ---- report.c ---- */

/* report.json and report.html in the work folder, from the state and the stages'
 * reports. Exit status. */
int slm_pipe_report(slm_pipe_t *p);
/* The model card (README.md) of a package stage. */
char *slm_pipe_card(slm_pipe_t *p, const json_t *stage, const char *model_name,
                    const json_t *reports);

#endif

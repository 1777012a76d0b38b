/* The model catalog (`slmops models`): aliases for model files with their adapters and
 * chat template, kept in $XDG_DATA_HOME/slmops/models.json; verbs take an alias for -m. */
#ifndef SLMOPS_CLI_CATALOG_H
#define SLMOPS_CLI_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/options.h"

struct json_t;
struct slm_cli_model_opts;

/* An alias resolved: what it names, valid until slm_cli_alias_free. */
typedef struct slm_cli_alias {
    struct json_t *doc;        /* owns the strings */
    const char *name;          /* NULL: -m was not an alias */
    const char *path;
    const char *chat_template; /* or NULL */
    char *loras[SLM_CLI_MAX_STRS];   /* as --lora spells them */
    size_t n_loras;
} slm_cli_alias_t;

/* The catalog file (malloc'd), or NULL when neither XDG_DATA_HOME nor HOME is set. */
char *slm_cli_catalog_path(void);
/* The whole catalog ({"models": {ALIAS: {...}}}); an absent file is an empty one.
 * Prints why and returns NULL on failure. */
struct json_t *slm_cli_catalog_load(const char *verb);
/* Whether name may be an alias: letters, digits, '_', '.', '-', and not a path. */
bool slm_cli_alias_valid(const char *name);

/* When o->model names no file but is an alias: o->model becomes its file and its
 * adapters go before o->loras (with named, the ones added as NAME=FILE too, spelled
 * so; without, those are left out: only `serve` serves them per request). Returns
 * SLM_CLI_OK (a->name NULL when o->model is not an alias) or an exit status after
 * printing why. */
int slm_cli_alias_resolve(const char *verb, struct slm_cli_model_opts *o, bool named,
                          slm_cli_alias_t *a);
void slm_cli_alias_free(slm_cli_alias_t *a);

#endif

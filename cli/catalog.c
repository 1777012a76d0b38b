/* The model catalog's file and alias resolution: models.json in the XDG data folder,
 * read by every verb that takes -m, written by `slmops models` (cli/models.c). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/catalog.h"
#include "cli/common.h"
#include "cli/session.h"

#define MAX_CATALOG (16u << 20)

char *slm_cli_catalog_path(void)
{
    const char *xdg = secure_getenv("XDG_DATA_HOME"), *home = secure_getenv("HOME");
    char *p = NULL;
    if (xdg && *xdg == '/')
        return asprintf(&p, "%s/slmops/models.json", xdg) < 0 ? NULL : p;
    if (home && *home)
        return asprintf(&p, "%s/.local/share/slmops/models.json", home) < 0 ? NULL : p;
    return NULL;
}

json_t *slm_cli_catalog_load(const char *verb)
{
    char *path = slm_cli_catalog_path();
    if (!path) {
        fprintf(stderr, "slmops %s: no folder for the model catalog: set XDG_DATA_HOME or "
                "HOME\n", verb);
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        return json_pack("{s:i, s:{}}", "version", 1, "models");
    }
    json_error_t je;
    json_t *doc = S_ISREG(st.st_mode) && st.st_size <= MAX_CATALOG
                      ? json_load_file(path, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!doc || !json_is_object(json_object_get(doc, "models"))) {
        fprintf(stderr, "slmops %s: %s: %s (remove it or fix it; `slmops models` rewrites "
                "it)\n", verb, path, !S_ISREG(st.st_mode) ? "not a regular file"
                : st.st_size > MAX_CATALOG ? "larger than 16 MiB"
                : doc ? "no \"models\" object" : je.text);
        json_decref(doc);
        doc = NULL;
    }
    free(path);
    return doc;
}

bool slm_cli_alias_valid(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 128 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
               n;
}

void slm_cli_alias_free(slm_cli_alias_t *a)
{
    for (size_t i = 0; i < a->n_loras; i++)
        free(a->loras[i]);
    json_decref(a->doc);
    memset(a, 0, sizeof *a);
}

/* The alias's adapters as --lora spells them. */
static int alias_loras(const char *verb, json_t *loras, bool named, slm_cli_alias_t *a)
{
    size_t i;
    json_t *l;
    json_array_foreach(loras, i, l) {
        const char *name = json_string_value(json_object_get(l, "name"));
        const char *path = json_string_value(json_object_get(l, "path"));
        json_t *scale = json_object_get(l, "scale");
        if (!path || !json_is_number(scale)) {
            fprintf(stderr, "slmops %s: the catalog entry of '%s' has a bad adapter; add it "
                    "again with `slmops models add --force`\n", verb, a->name);
            return SLM_CLI_FAILED;
        }
        if (name && !named)
            continue;
        if (a->n_loras == SLM_CLI_MAX_STRS)
            return SLM_CLI_FAILED;
        char *s = NULL;
        if (asprintf(&s, "%s%s%s:%.9g", name ? name : "", name ? "=" : "", path,
                     json_number_value(scale)) < 0)
            return SLM_CLI_FAILED;
        a->loras[a->n_loras++] = s;
    }
    return SLM_CLI_OK;
}

int slm_cli_alias_resolve(const char *verb, slm_cli_model_opts_t *o, bool named,
                          slm_cli_alias_t *a)
{
    memset(a, 0, sizeof *a);
    struct stat st;
    if (!o->model || stat(o->model, &st) == 0 || !slm_cli_alias_valid(o->model))
        return SLM_CLI_OK;
    char *path = slm_cli_catalog_path();
    bool have = path && stat(path, &st) == 0;
    free(path);
    if (!have)
        return SLM_CLI_OK;   /* the model's own "not found" says enough */
    if (!(a->doc = slm_cli_catalog_load(verb)))
        return SLM_CLI_FAILED;
    json_t *e = json_object_get(json_object_get(a->doc, "models"), o->model);
    if (!e)
        return SLM_CLI_OK;
    a->name = o->model;
    a->path = json_string_value(json_object_get(e, "path"));
    a->chat_template = json_string_value(json_object_get(e, "chat_template"));
    if (!a->path) {
        fprintf(stderr, "slmops %s: the catalog entry of '%s' has no path\n", verb, a->name);
        return SLM_CLI_FAILED;
    }
    int rc = alias_loras(verb, json_object_get(e, "lora"), named, a);
    if (rc != SLM_CLI_OK)
        return rc;
    if (a->n_loras + o->loras.n > SLM_CLI_MAX_STRS) {
        fprintf(stderr, "slmops %s: more than %d adapters\n", verb, SLM_CLI_MAX_STRS);
        return SLM_CLI_USAGE;
    }
    memmove(o->loras.v + a->n_loras, o->loras.v, o->loras.n * sizeof *o->loras.v);
    for (size_t i = 0; i < a->n_loras; i++)
        o->loras.v[i] = a->loras[i];
    o->loras.n += a->n_loras;
    o->model = a->path;
    return SLM_CLI_OK;
}

/* The plugin registry: manifests discovered on the search path, the capability
 * table built from them without loading any library, and lazy loading.
 *
 * Search order (first manifest of a name wins; later ones are "shadowed"):
 *   $SLMOPS_PLUGIN_PATH (colon list; ignored in set-uid/set-gid processes),
 *   $XDG_DATA_HOME/slmops/plugins (default ~/.local/share/slmops/plugins),
 *   each $XDG_DATA_DIRS/slmops/plugins (default /usr/local/share:/usr/share),
 *   the compiled-in $(pkgdatadir)/plugins.
 * SLMOPS_PLUGIN_PATH_ONLY=1 (ignored like SLMOPS_PLUGIN_PATH) keeps only the first.
 * Within a folder, *.json entries are taken in byte-wise sorted order.
 *
 * The first time a library is met it is loaded in a forked child; one that
 * crashes, exits or hangs there is disabled with that reason. Verdicts are kept in
 * $XDG_CACHE_HOME/slmops/plugin-scan.json (in memory only with ignore_environment). */
#ifndef SLMOPS_REGISTRY_H
#define SLMOPS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_registry slm_registry_t;

typedef enum slm_plugin_state {
    SLM_PLUGIN_AVAILABLE = 0,   /* manifest valid, library not loaded yet */
    SLM_PLUGIN_LOADED = 1,      /* library loaded and descriptor accepted */
    SLM_PLUGIN_DISABLED = 2,    /* manifest or library rejected: see reason */
    SLM_PLUGIN_SHADOWED = 3,    /* an earlier manifest has the same name: see shadowed_by */
    SLM_PLUGIN_UNSUPPORTED = 4, /* valid, but this machine lacks what it requires: see reason */
    SLM_PLUGIN_SUPERSEDED = 5   /* usable, but a better variant of the same backend is used */
} slm_plugin_state_t;

/* One row of the capability table. Strings live as long as the registry. */
typedef struct slm_plugin_info {
    uint32_t struct_size;
    const char *name;
    const char *kind;            /* "backend" | "quantizer" | "trainer" | "format" */
    const char *version;
    uint32_t abi_version;
    const char *description;
    const char *manifest_path;
    const char *library_path;    /* resolved absolute path */
    int32_t priority;
    int32_t state;               /* slm_plugin_state_t */
    const char *reason;          /* why disabled/unsupported/superseded, else "" */
    const char *shadowed_by;     /* manifest path that wins, else "" */
    const char *backend;         /* backends: the device family ("cpu"), else "" */
    const char *manifest_json;   /* the manifest's "provides" object as compact JSON */
    const char *summary;         /* one line on what it provides ("methods: lora (...)"), or "" */
} slm_plugin_info_t;

typedef struct slm_registry_options {
    uint32_t struct_size;
    /* When non-NULL, use only this colon-separated list of folders (no env, no defaults). */
    const char *search_path;
    /* When true, do not read the environment (SLMOPS_PLUGIN_PATH[_ONLY], XDG_*). */
    bool ignore_environment;
} slm_registry_options_t;

/* Discover manifests and build the capability table. Broken manifests do not
 * fail the call: they become DISABLED rows (and a warning is logged). */
slm_registry_t *slm_registry_new(const slm_registry_options_t *opts, slm_error_t *err);
void slm_registry_free(slm_registry_t *reg);

/* The folders searched, in order, as one colon-separated string. */
const char *slm_registry_search_path(const slm_registry_t *reg);

size_t slm_registry_count(const slm_registry_t *reg);
/* Row i (0-based, discovery order), or NULL. */
const slm_plugin_info_t *slm_registry_get(const slm_registry_t *reg, size_t i);
/* The winning (non-shadowed) row of this kind and name, or NULL. kind may be NULL. */
const slm_plugin_info_t *slm_registry_find(const slm_registry_t *reg, const char *kind,
                                           const char *name);

/* Load the plugin's library now (it happens lazily otherwise). On failure the row
 * becomes DISABLED with the reason, and the error says the same. */
int slm_registry_load(slm_registry_t *reg, const char *name, slm_error_t *err);

/* Capability query: names of usable backends (best first) whose manifest says they
 * run `op` on `type` ("mul_mat", "f16"). Returns the count written (<= max). */
size_t slm_registry_backends_for(const slm_registry_t *reg, const char *op, const char *type,
                                 const char **names, size_t max);

/* Capability query: names of usable trainer plugins (best first) whose manifest
 * lists training method `method` ("lora"). Returns the count written (<= max). */
size_t slm_registry_trainers_for(const slm_registry_t *reg, const char *method,
                                 const char **names, size_t max);

/* Forces a variant: when set, the named plugin is used for its backend family even
 * if a higher-priority variant is usable (SLMOPS_CPU_VARIANT=name does the same). */
int slm_registry_prefer(slm_registry_t *reg, const char *plugin_name, slm_error_t *err);

const char *slm_plugin_state_name(int state);

/* The CPU features the core detected (space separated, e.g. "sse4.2 avx2 fma avx512f"). */
const char *slm_cpu_features_string(void);
bool slm_cpu_has_feature(const char *name);

#ifdef __cplusplus
}
#endif
#endif

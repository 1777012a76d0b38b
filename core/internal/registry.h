/* Internal view of the plugin registry: one row per manifest found, the parsed
 * manifest, the loaded library, and the helpers the registry files share. */
#ifndef SLMOPS_INTERNAL_REGISTRY_H
#define SLMOPS_INTERNAL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <slmops/device.h>
#include <slmops/registry.h>
#include <slmops/plugin.h>

/* Longest accepted plugin name (fits slm_device_info_t.plugin with its NUL). */
#define SLM__NAME_MAX 63
/* Manifests larger than this are refused before parsing. */
#define SLM__MANIFEST_MAX_BYTES (1024 * 1024)

/* One entry of a quantizer manifest's provides.types (file format 1.1 adds the
 * last three). Strings point into the manifest's `provides`. */
typedef struct slm__quant_type {
    const char *name;
    int32_t id;
    uint32_t block;             /* elements per block */
    uint32_t bytes;             /* bytes per block */
    const char *fallback;       /* type a row the block does not divide gets, or NULL */
    const char *output_type;    /* the output matrix's type in a model of this type, or NULL */
    int32_t gguf_file_type;     /* general.file_type of a model of this type, or -1 */
} slm__quant_type_t;

/* What a manifest says, once validated. The kind's entry (internal/kinds.h) reads
 * `provides` and fills the fields of its kind; the rest of provides stays in
 * `provides` for the kind's queries. */
typedef struct slm__manifest {
    char *name;
    char *kind;                 /* "backend" | ... */
    int kind_id;                /* slm_plugin_kind_t */
    char *version;
    uint32_t abi_version;
    char *description;
    char *library_path;         /* resolved absolute */
    int32_t priority;
    char *backend;              /* backends: provides.backend, the family; else "" */
    char **cpu_features;        /* requires.cpu_features */
    size_t n_cpu_features;
    char *unknown_require;      /* first "requires" key this host cannot check, or NULL */
    /* Formats, file format 1.2: the inputs the library may read are exactly those
     * whose name ends with provides.extensions, whose first bytes are one of
     * provides.magic, or folders when provides.folders. Older manifests could not
     * say so: their library is asked about every input. */
    bool declares_inputs;
    bool reads_folders;
    slm__quant_type_t *types;   /* quantizers: provides.types */
    size_t n_types;
    struct json_t *provides;    /* owned jansson reference */
    char *provides_json;        /* compact dump of provides */
} slm__manifest_t;

typedef struct slm__plugin {
    slm_plugin_info_t info;     /* the public row; strings point into this struct */
    char *file_stem;            /* manifest file name without ".json" */
    char *manifest_path;
    bool manifest_ok;
    slm__manifest_t m;
    /* Verdicts that never change once made; the remaining rows get AVAILABLE,
     * LOADED or SUPERSEDED from variant selection. */
    int fixed_state;            /* -1, or DISABLED / SHADOWED / UNSUPPORTED */
    char reason[512];
    char shadowed_by[4096];
    char summary[512];          /* the kind's one line on what it provides, or "" */
    char why[256];              /* backends: why this variant serves its family */
    void *dl;                   /* dlopen handle once loaded */
    const slm_plugin_descriptor_t *desc;
    void *kind_state;           /* what the kind's attach made (backends: slm__backend_t) */
} slm__plugin_t;

struct slm_registry {
    char *search_path;
    slm__plugin_t **rows;
    size_t n_rows;
    size_t cap_rows;
    bool use_env;
    char *prefer;               /* forced variant (slm_registry_prefer) */
    char prefer_source[32];     /* "slm_registry_prefer" | "SLMOPS_CPU_VARIANT" */
    struct slm__scan_cache *scan;   /* verdicts of first loads (scan-cache.c) */
    slm_host_t host;
};

/* manifest.c: parse and validate one manifest file. On failure returns a negative
 * status and writes a one-line reason (without the file name) into reason. */
int slm__manifest_load(const char *path, slm__manifest_t *m, char *reason, size_t reason_size);
void slm__manifest_clear(slm__manifest_t *m);
/* kind-backend.c: true when this manifest's provides.ops lists `type` for `op`
 * (NULL: any). */
bool slm__manifest_has_op(const slm__manifest_t *m, const char *op, const char *type);

/* discover.c: the search path as a NULL-terminated array of folders. */
char **slm__search_path_build(const slm_registry_options_t *opts, bool *use_env);
void slm__search_path_free(char **dirs);
/* Sorted *.json file names of one folder; NULL + *n = 0 when none or unreadable. */
char **slm__folder_list(const char *dir, size_t *n);

/* registry.c */
bool slm__plugin_usable(const slm__plugin_t *p);
void slm__registry_select(slm_registry_t *reg);
slm__plugin_t *slm__registry_row(const slm_registry_t *reg, const char *name);
/* Mark a row DISABLED with a reason and log "MANIFEST: reason". */
void slm__plugin_disable(slm_registry_t *reg, slm__plugin_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, logged at `level`: info for a backend whose hardware is absent (a
 * machine without a GPU is not a fault), warn for everything else. */
void slm__plugin_disable_at(slm_registry_t *reg, slm__plugin_t *p, slm_log_level_t level,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* kind-quantizer.c: the provides.types entry of the first usable quantizer
 * defining type id `type` (the plugin slm_quantize_rows would use), or NULL. */
const slm__quant_type_t *slm__registry_quant_type(const slm_registry_t *reg, int32_t type);
/* kind-backend.c: the usable variant serving a backend family, or NULL. */
slm__plugin_t *slm__registry_family_winner(const slm_registry_t *reg, const char *family);

/* loader.c: dlopen the row's library and check its descriptor (idempotent). */
int slm__plugin_load(slm_registry_t *reg, slm__plugin_t *p, slm_error_t *err);
void slm__plugin_unload(slm__plugin_t *p);
/* The kind-specific interface of a loaded plugin. */
const void *slm__plugin_iface(const slm__plugin_t *p);

/* What the first load of a library in a forked child showed (scan.c), as the
 * verdict cache keeps it (scan-cache.c). */
typedef struct slm__verdict {
    bool safe;              /* it loads without crashing, exiting or hanging */
    bool lasting;           /* a property of the library, worth caching */
    int64_t retry_after;    /* unix time after which a cached verdict is judged again
                             * (a hang may only have been a slow machine); 0: never */
    char reason[160];       /* why not safe: "library crashed while loading (SIGSEGV)" */
    bool answered;          /* the entry point returned a descriptor, described below */
    uint32_t abi_version;
    uint32_t iface_version;
    int32_t kind;
    char name[64];
    char version[64];
} slm__verdict_t;

/* scan.c: SLM_OK when the library at `path` (whose stat is *st) may be loaded in
 * this process: judged before by this registry or the verdict cache, or now in a
 * forked child. Otherwise SLM_E_PLUGIN and the reason. */
int slm__scan_library(slm_registry_t *reg, const char *path, const struct stat *st,
                      char *reason, size_t reason_size);

/* scan-cache.c: the verdict cache, keyed by library path and stamp (device, inode,
 * size, mtime, ctime), kept in $XDG_CACHE_HOME/slmops when the registry reads the
 * environment and in the registry only otherwise. */
void slm__scan_stamp(const struct stat *st, char *buf, size_t size);
bool slm__verdict_lookup(slm_registry_t *reg, const char *path, const char *stamp,
                         slm__verdict_t *v);
void slm__verdict_store(slm_registry_t *reg, const char *path, const char *stamp,
                        const slm__verdict_t *v);
void slm__verdict_cache_free(slm_registry_t *reg);

/* Open the highest-scoring usable device of type SLM_DEVICE_CPU: the scheduler's
 * fallback for ops another device lacks (the core never names a backend). */
slm_device_t *slm__device_open_cpu_fallback(slm_registry_t *reg, const slm_device_options_t *opts,
                                            slm_error_t *err);

#endif

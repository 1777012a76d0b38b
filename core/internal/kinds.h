/* The plugin kinds the core knows, one table entry each (core/registry/kind-*.c):
 * how a manifest's `provides` is read, which interfaces are accepted, and the indexes. */
#ifndef SLMOPS_INTERNAL_KINDS_H
#define SLMOPS_INTERNAL_KINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "internal/registry.h"

/* Reading one manifest: the file, where the one-line reason goes, its minor version. */
typedef struct slm__mf {
    const char *path;
    char *reason;
    size_t reason_size;
    unsigned long minor;        /* of file_format_version */
} slm__mf_t;

typedef struct slm__kind {
    const char *name;           /* as manifests spell it: "backend" */
    int32_t id;                 /* slm_plugin_kind_t */
    uint32_t iface_min;         /* the oldest interface version this host reads */
    uint32_t iface_max;         /* the newest: the SDK header's SLM_..._IFACE_VERSION */
    size_t iface_min_size;      /* the smallest struct_size of a version-iface_min interface */
    /* Validate `provides` (an object) and fill the fields of m this kind uses. */
    int (*parse)(slm__mf_t *c, const json_t *provides, slm__manifest_t *m);
    /* Why a loaded interface is unacceptable (its struct_size and iface_version
     * already checked against the fields above), or NULL; buf holds a formatted why. */
    const char *(*check)(const slm__plugin_t *p, const void *iface, char *buf, size_t size);
    /* Optional: enter an accepted manifest into the capability indexes the core
     * keeps outside the rows (quantizers: their types). May disable p. */
    void (*enter)(slm_registry_t *reg, slm__plugin_t *p);
    /* Optional: one line on what the plugin provides, for `slmops plugins`. */
    void (*summary)(const slm__manifest_t *m, char *buf, size_t size);
    /* Optional: after a library's interface passed check, before anything uses it
     * (backends: init, or adapting a version-1 table). Non-zero refuses the plugin
     * with the reason in buf. */
    int (*attach)(slm__plugin_t *p, const slm_host_t *host, char *buf, size_t size);
    /* Optional: undo attach, just before dlclose (backends: cleanup). */
    void (*detach)(slm__plugin_t *p);
    /* Rows of this kind are builds of one family (m->backend): the usable one of
     * highest priority serves it, the others are superseded. */
    bool variants;
} slm__kind_t;

/* kinds.c: the table. NULL for a name or id no entry has. */
const slm__kind_t *slm__kind_by_name(const char *name);
const slm__kind_t *slm__kind_by_id(int32_t id);
/* Entry i, 0 <= i < slm__kind_count(), in slm_plugin_kind_t order. */
size_t slm__kind_count(void);
const slm__kind_t *slm__kind_at(size_t i);
/* "backend, quantizer, trainer or format" into buf, for messages. */
void slm__kind_names(char *buf, size_t size);
/* host->iface_version: the newest interface version of `kind` this host reads. */
uint32_t slm__kind_iface_version(int32_t kind);
/* The last message a plugin logged through the host table at info level or above
 * on this thread since the reset (empty: none): what a plugin whose init fails
 * says about why, which becomes its reason (loader.c). */
void slm__plugin_said_reset(void);
const char *slm__plugin_said(void);

/* The entries, one file each. */
extern const slm__kind_t slm__kind_backend;
extern const slm__kind_t slm__kind_quantizer;
extern const slm__kind_t slm__kind_trainer;
extern const slm__kind_t slm__kind_format;

/* manifest.c: the strict reading helpers every entry's parse uses. */
int slm__mf_fail(slm__mf_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Member `key` of obj (reported as WHERE+KEY) of jansson type `type` (JSON_TRUE
 * accepts either boolean); *out NULL when optional and absent. */
int slm__mf_member(slm__mf_t *c, const json_t *obj, const char *where, const char *key,
                   json_type type, bool required, json_t **out);
/* Every element of arr is a non-empty string (field names arr in messages). */
int slm__mf_strings(slm__mf_t *c, const json_t *arr, const char *field);
/* [a-z0-9][a-z0-9_.-]*, at most SLM__NAME_MAX bytes. */
bool slm__mf_valid_name(const char *s);
/* "an object", "a string", ... */
const char *slm__mf_type_word(const json_t *v);

#endif

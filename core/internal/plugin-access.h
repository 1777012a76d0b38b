/* Reaching format plugins through the registry: the loaded interface of a named
 * plugin, and which plugins read or write a file, judged from their manifests
 * (the format kind's queries, core/registry/kind-format.c). */
#ifndef SLMOPS_INTERNAL_PLUGIN_ACCESS_H
#define SLMOPS_INTERNAL_PLUGIN_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slmops/error.h>
#include <slmops/registry.h>
#include <slmops/plugin-format.h>

/* Load the named format plugin (lazily) and return its interface, or NULL with err
 * filled (not found, not a format plugin, failed to load, interface too old). */
const slm_format_iface_t *slm__format_iface(slm_registry_t *reg, const char *name,
                                            slm_error_t *err);

/* Names of usable format plugins, in registry order, whose manifest says they can
 * read (want_write false) or write (true). Returns the count written (<= max). */
size_t slm__format_plugins(const slm_registry_t *reg, bool want_write, const char **names,
                           size_t max);

/* True when the plugin's manifest lists an extension `path` ends with (ASCII
 * case-insensitive). */
bool slm__format_has_extension(const slm_registry_t *reg, const char *name, const char *path);

/* The reader format plugins whose manifests say they might read `path` (a folder
 * when is_dir, else a file starting with the head_len bytes of head): it ends
 * with one of their extensions, starts with one of their magic strings, or is a
 * folder and they read folders. Manifests before file format 1.2 could not say,
 * so they are always candidates. Usable ones go to names (registry order); the
 * others are described in `skipped` ("NAME is disabled: why; ..."). Returns the
 * count written to names. */
size_t slm__format_candidates(const slm_registry_t *reg, const char *path, bool is_dir,
                              const uint8_t *head, size_t head_len, const char **names,
                              size_t max, char *skipped, size_t skipped_size);

/* Names the plugin and where its manifest came from when it hides another of the
 * same name: "format-gguf (A/format-gguf.json, which shadows B/format-gguf.json)",
 * else just "format-gguf". */
void slm__format_describe(const slm_registry_t *reg, const char *name, char *buf, size_t size);

#endif

/* Reaching format plugins through the registry: the loaded interface of a named
 * plugin, and which plugins read or write a file, judged from their manifests. */
#ifndef SLMOPS_INTERNAL_PLUGIN_ACCESS_H
#define SLMOPS_INTERNAL_PLUGIN_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

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

#endif

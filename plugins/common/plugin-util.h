/* Helpers the in-tree plugins share (libslmplugin_common.la, linked into each
 * module; plugins never link libslmops): error objects, file maps, folder sync. */
#ifndef SLMOPS_PLUGIN_UTIL_H
#define SLMOPS_PLUGIN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <slmops/error.h>
#include <slmops/plugin.h>

/* Fills err (when its struct_size has room) with "path: [offset N: ]message" and
 * returns code, so a reader can `return plugin_fail(...)`. */
int plugin_fail(slm_error_t *err, int code, const char *path, int64_t offset, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
int plugin_vfail(slm_error_t *err, int code, const char *path, int64_t offset, const char *fmt,
                 va_list ap) __attribute__((format(printf, 5, 0)));

/* A type's name for a message ("q8_0"): the host's, or "type 1234 (unknown)" in
 * buf when the host has none to lend. */
const char *plugin_type_name(const slm_host_t *host, int type, char *buf, size_t cap);
/* Open a file a user named, read-only and close-on-exec: only a regular file is
 * opened (stat first, then O_NONBLOCK and fstat, so a FIFO never blocks); anything
 * else fills err with "is a FIFO, not a regular file". Returns the descriptor
 * (blocking again) with *st filled, or a negative SLM_E_* code. */
int plugin_open_file(const char *path, struct stat *st, slm_error_t *err);
/* "a FIFO", "a directory", "a character device", ... for messages. */
const char *plugin_file_kind(mode_t mode);

/* A whole regular file mapped read-only; an empty file maps to base NULL. */
typedef struct plugin_map {
    const uint8_t *base;
    uint64_t size;
} plugin_map_t;

int plugin_map_file(const char *path, plugin_map_t *m, slm_error_t *err);
void plugin_unmap_file(plugin_map_t *m);

#endif

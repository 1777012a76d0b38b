/* Shared by the registry tests: temporary plugin folders, manifests pointing
 * at the fake plugins built in this folder, and capture of logged warnings. */
#ifndef SLMOPS_TESTS_REGISTRY_HELPERS_H
#define SLMOPS_TESTS_REGISTRY_HELPERS_H

#include <stddef.h>
#include <slmops/registry.h>

/* A fresh folder under $TMPDIR (or /tmp); aborts the test on failure. */
char *th_tmpdir(void);
/* Write text to DIR/FILE. */
void th_write(const char *dir, const char *file, const char *text);
/* Absolute path of a fake plugin library built here (fake-good -> .../fake-good.so). */
const char *th_lib(const char *module);
/* Write DIR/FILE: a backend manifest of family `family` using library `module`;
 * `extra` is inserted verbatim as further top-level members ("" for none). */
void th_backend(const char *dir, const char *file, const char *name, const char *module,
                const char *family, int priority, const char *extra);
/* Write DIR/FILE: a trainer manifest (file format 1.3) using library `module`;
 * `methods` is the JSON of provides.methods (NULL: fake-full and fake-lora). */
void th_trainer(const char *dir, const char *file, const char *name, const char *module,
                int priority, const char *methods);
/* The good plugin every isolation test keeps next to the broken one. */
void th_good(const char *dir);
/* Open a registry over exactly this colon list of folders. */
slm_registry_t *th_open(const char *search_path);
/* Any row (winner or not) whose name is `name`, or NULL. */
const slm_plugin_info_t *th_row(const slm_registry_t *reg, const char *name);
/* Index of that row, or -1. */
int th_index(const slm_registry_t *reg, const char *name);

/* Every warning logged since th_log_capture() as "line\n" lines. */
void th_log_capture(void);
const char *th_log_text(void);

#endif

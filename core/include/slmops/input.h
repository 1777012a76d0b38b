/* Opening files the user names (a model, a tokenizer, a text): only regular files
 * are opened, so that a FIFO or a device given by mistake is refused, not waited on. */
#ifndef SLMOPS_INPUT_H
#define SLMOPS_INPUT_H

#include <stddef.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags for slm_input_open. */
#define SLM_INPUT_FOLDER_OK 1u   /* a folder is opened too (for formats that read folders) */

/* Open path read-only (close-on-exec, blocking reads) into *fd. Anything but a
 * regular file (or a folder with SLM_INPUT_FOLDER_OK) is refused without blocking:
 * "PATH: is a FIFO, not a regular file". SLM_E_NOT_FOUND when it does not exist. */
int slm_input_open(const char *path, unsigned flags, int *fd, slm_error_t *err);

/* Read the whole regular file path into a NUL-terminated buffer (release with
 * free()); a file larger than max bytes is SLM_E_INVALID. */
int slm_input_read_all(const char *path, size_t max, char **buf, size_t *len, slm_error_t *err);

/* "a FIFO", "a directory", "a character device", ... for a stat mode; "a regular
 * file" for one. For messages. */
const char *slm_input_kind(unsigned mode);

#ifdef __cplusplus
}
#endif
#endif

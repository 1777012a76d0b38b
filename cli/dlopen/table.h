/* Optional shared libraries the CLI opens with dlopen on first use (libcurl for the
 * remote teacher, libmicrohttpd for serve), so other commands never map them. */
#ifndef SLM_CLI_DLOPEN_TABLE_H
#define SLM_CLI_DLOPEN_TABLE_H

#include <stdbool.h>
#include <stddef.h>

/* Opens soname and fills slots[i] with names[i] (n of them). On failure: false, and why (one line naming
 * the library, the missing symbol or dlerror's text, and the Debian package). */
bool slm_cli_dlopen_table(const char *soname, const char *package, const char *const *names,
                          void **slots, size_t n, char *why, size_t size);

/* Declares slm_<lib> (a struct of pointers, one per function the CLI calls, each
 * typed by the library's own prototype) and slm_<lib>_open(why, size). */
#define SLM_CLI_DLOPEN_SLOT(name) __typeof__(name) *name;
#define SLM_CLI_DLOPEN_NAME(name) #name,

#endif

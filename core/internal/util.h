/* Small internal helpers shared by core files: filling error objects,
 * overflow-checked arithmetic, and the privilege-aware environment read. */
#ifndef SLMOPS_INTERNAL_UTIL_H
#define SLMOPS_INTERNAL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>
#include <slmops/log.h>

/* Fill err (if non-NULL and large enough) with code, path ("" or NULL for none),
 * offset (-1 for none) and a printf message. Returns code, for `return slm__fail(...)`. */
int slm__fail(slm_error_t *err, int code, const char *path, int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The only way the core reads environment variables: secure_getenv, so that
 * set-uid/set-gid processes ignore them. */
const char *slm__getenv(const char *name);

/* a*b into *out; false on overflow (or negative operands). */
bool slm__mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out);
bool slm__add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out);

/* strdup that returns NULL on NULL. */
char *slm__strdup(const char *s);

#define SLM__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

/* Error codes in words, and filling the caller's error object without ever
 * writing past the size the caller declared. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/util.h"

void slm_error_init(slm_error_t *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->struct_size = sizeof *err;
    err->offset = -1;
}

const char *slm_strerror(int code)
{
    switch (code) {
    case SLM_OK: return "success";
    case SLM_E_NOMEM: return "out of memory";
    case SLM_E_INVALID: return "invalid argument";
    case SLM_E_IO: return "input/output error";
    case SLM_E_FORMAT: return "malformed input";
    case SLM_E_NOT_FOUND: return "not found";
    case SLM_E_UNSUPPORTED: return "not supported";
    case SLM_E_ABI: return "incompatible plugin interface version";
    case SLM_E_PLUGIN: return "plugin failure";
    case SLM_E_DEVICE: return "device failure";
    case SLM_E_CANCELLED: return "cancelled";
    case SLM_E_STATE: return "invalid state";
    default: return "unknown error";
    }
}

int slm__fail(slm_error_t *err, int code, const char *path, int64_t offset, const char *fmt, ...)
{
    /* Older callers may pass a smaller struct: only fill what fits. */
    if (!err || err->struct_size < offsetof(slm_error_t, path))
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    if (err->struct_size >= offsetof(slm_error_t, offset)) {
        snprintf(err->path, sizeof err->path, "%s", path ? path : "");
    }
    if (err->struct_size >= sizeof(slm_error_t))
        err->offset = offset;
    return code;
}

const char *slm__getenv(const char *name)
{
#ifdef HAVE_SECURE_GETENV
    return secure_getenv(name);
#else
    return getenv(name);
#endif
}

bool slm__mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool slm__add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

char *slm__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

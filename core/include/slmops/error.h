/* slmops error codes and the error object every fallible call may fill.
 * Codes are negative; 0 is success. slm_strerror() names a code in words. */
#ifndef SLMOPS_ERROR_H
#define SLMOPS_ERROR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slm_status {
    SLM_OK = 0,
    SLM_E_NOMEM = -1,        /* an allocation failed */
    SLM_E_INVALID = -2,      /* an argument is out of range or inconsistent */
    SLM_E_IO = -3,           /* reading or writing a file failed */
    SLM_E_FORMAT = -4,       /* a file or document is malformed */
    SLM_E_NOT_FOUND = -5,    /* a named plugin, device, tensor or file does not exist */
    SLM_E_UNSUPPORTED = -6,  /* valid request that no available plugin can serve */
    SLM_E_ABI = -7,          /* a plugin speaks an interface version we do not */
    SLM_E_PLUGIN = -8,       /* a plugin failed to load or misbehaved */
    SLM_E_DEVICE = -9,       /* a device reported a failure */
    SLM_E_CANCELLED = -10,   /* the caller's cancel flag was raised */
    SLM_E_STATE = -11        /* the call is not valid in the object's current state */
} slm_status_t;

/* Filled by calls that take one; pass NULL to ignore details.
 * The caller sets struct_size = sizeof(slm_error_t) so the library never
 * writes past what the caller allocated (fields may be appended later). */
typedef struct slm_error {
    uint32_t struct_size;
    int code;              /* an slm_status_t */
    char message[512];     /* one line: what failed and why */
    char path[256];        /* the file concerned, or "" */
    int64_t offset;        /* byte offset in that file, or -1 */
} slm_error_t;

/* Initialise an error object before first use. */
void slm_error_init(slm_error_t *err);

/* A constant English description of a status code. */
const char *slm_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif

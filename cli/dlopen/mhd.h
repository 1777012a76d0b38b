/* libmicrohttpd for `slmops serve`, opened on first use: call slm_mhd_open, then every
 * function through slm_mhd (slm_mhd.MHD_start_daemon(...)). */
#ifndef SLM_CLI_DLOPEN_MHD_H
#define SLM_CLI_DLOPEN_MHD_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "cli/dlopen/table.h"

#define SLM_MHD_FUNCTIONS(X) \
    X(MHD_start_daemon) X(MHD_stop_daemon) X(MHD_get_daemon_info) \
    X(MHD_get_connection_info) X(MHD_lookup_connection_value) X(MHD_queue_response) \
    X(MHD_create_response_from_buffer) X(MHD_create_response_from_callback) \
    X(MHD_add_response_header) X(MHD_destroy_response)

typedef struct slm_mhd_api {
    SLM_MHD_FUNCTIONS(SLM_CLI_DLOPEN_SLOT)
} slm_mhd_api_t;

extern slm_mhd_api_t slm_mhd;

/* Loads libmicrohttpd (once); false with a one-line reason in why when it cannot. */
bool slm_mhd_open(char *why, size_t size);

#endif

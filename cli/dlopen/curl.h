/* libcurl for the remote teacher (`slmops distill --teacher-url`), opened on first use:
 * call slm_curl_open, then every function through slm_curl (slm_curl.curl_easy_init()). */
#ifndef SLM_CLI_DLOPEN_CURL_H
#define SLM_CLI_DLOPEN_CURL_H

/* curl_easy_setopt is called through a pointer, which its type-checking macros
 * cannot wrap; the remote teacher's options are checked by its tests instead. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "cli/dlopen/table.h"

#define SLM_CURL_FUNCTIONS(X) \
    X(curl_global_init) X(curl_global_cleanup) X(curl_easy_init) X(curl_easy_cleanup) \
    X(curl_easy_reset) X(curl_easy_setopt) X(curl_easy_getinfo) X(curl_easy_strerror) \
    X(curl_slist_append) X(curl_slist_free_all) X(curl_multi_init) X(curl_multi_cleanup) \
    X(curl_multi_setopt) X(curl_multi_add_handle) X(curl_multi_remove_handle) \
    X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_info_read)

typedef struct slm_curl_api {
    SLM_CURL_FUNCTIONS(SLM_CLI_DLOPEN_SLOT)
} slm_curl_api_t;

extern slm_curl_api_t slm_curl;

/* Loads libcurl (once); false with a one-line reason in why when it cannot. */
bool slm_curl_open(char *why, size_t size);

#endif

/* The libcurl table: the soname configure found (SLM_CURL_SONAME) opened on first use. */
#include "config.h"

#include "cli/dlopen/curl.h"

slm_curl_api_t slm_curl;

bool slm_curl_open(char *why, size_t size)
{
    if (slm_curl.curl_global_init)   /* opened already */
        return true;
    static const char *const names[] = {SLM_CURL_FUNCTIONS(SLM_CLI_DLOPEN_NAME)};
    _Static_assert(sizeof names / sizeof names[0] * sizeof(void *) == sizeof slm_curl,
                   "one name per slot");
    return slm_cli_dlopen_table(SLM_CURL_SONAME, "libcurl4 (or another libcurl.so.4)", names,
                                (void **)&slm_curl, sizeof names / sizeof names[0], why, size);
}

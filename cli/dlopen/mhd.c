/* The libmicrohttpd table: the soname configure found (SLM_MHD_SONAME) opened on first use. */
#include "config.h"

#include "cli/dlopen/mhd.h"

slm_mhd_api_t slm_mhd;

bool slm_mhd_open(char *why, size_t size)
{
    if (slm_mhd.MHD_start_daemon)   /* opened already */
        return true;
    static const char *const names[] = {SLM_MHD_FUNCTIONS(SLM_CLI_DLOPEN_NAME)};
    _Static_assert(sizeof names / sizeof names[0] * sizeof(void *) == sizeof slm_mhd,
                   "one name per slot");
    return slm_cli_dlopen_table(SLM_MHD_SONAME, "libmicrohttpd12", names, (void **)&slm_mhd,
                                sizeof names / sizeof names[0], why, size);
}

/* The library's version at run time. */
#include "config.h"

#include <slmops/version.h>

const char *slm_version(void)
{
    return PACKAGE_VERSION;
}

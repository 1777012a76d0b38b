/* dlopen and dlsym for the CLI's optional libraries: all symbols resolved at once, so a
 * library too old for us fails with one clear message before any work starts. */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>

#include "cli/dlopen/table.h"

bool slm_cli_dlopen_table(const char *soname, const char *package, const char *const *names,
                          void **slots, size_t n, char *why, size_t size)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, size, "%s cannot be loaded (%s); install %s", soname,
                 e ? e : "unknown error", package);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        dlerror();
        slots[i] = dlsym(h, names[i]);
        if (!slots[i]) {
            snprintf(why, size, "%s has no %s: it is older than slmops needs; upgrade %s",
                     soname, names[i], package);
            dlclose(h);
            return false;
        }
    }
    /* Kept open for the life of the process: the pointers stay valid. */
    return true;
}

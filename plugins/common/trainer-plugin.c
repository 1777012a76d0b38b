/* The parts every in-tree trainer plugin shares: which hosts it serves and the
 * finish that saves the whole model. See trainer-plugin.h. */
#include "config.h"

#include <stddef.h>

#include "trainer-plugin.h"

bool trainer_plugin_accepts(const slm_host_t *host, uint32_t host_abi)
{
    if (host_abi < 1)
        return false;
    return !(host && host->struct_size > offsetof(slm_host_t, iface_version) &&
             host->iface_version && host->iface_version(SLM_PLUGIN_KIND_TRAINER) < 2);
}

int trainer_finish_model(void *state, const slm_trainer_save_t *save, slm_error_t *err)
{
    (void)state;
    (void)err;
    return save->model(save->ctx);
}

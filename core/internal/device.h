/* Internal view of an open device: the backend vtable and context behind the
 * public slm_device_t handle. Shared by the registry (which opens devices) and
 * the scheduler (which runs nodes on them). */
#ifndef SLMOPS_INTERNAL_DEVICE_H
#define SLMOPS_INTERNAL_DEVICE_H

#include <slmops/device.h>
#include <slmops/plugin-backend.h>

struct slm_device {
    slm_device_info_t info;
    slm_device_props_t props;
    const slm_backend_iface_t *iface;
    void *ctx;                  /* the backend's device context */
    int index;                  /* device index inside its backend */
    slm_registry_t *reg;
};

#endif

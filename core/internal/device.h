/* Internal view of backends and open devices: the version-2 vtable the core reads
 * (a version-1 plugin's adapted), and the contexts behind the public handles. */
#ifndef SLMOPS_INTERNAL_DEVICE_H
#define SLMOPS_INTERNAL_DEVICE_H

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/device.h>
#include <slmops/plugin-backend.h>

struct slm__plugin;

/* One loaded backend plugin as the core drives it (the row's kind_state). */
typedef struct slm__backend {
    slm_backend_iface_t iface;  /* every slot of version 2; absent optional ones NULL */
    void *ctx;                  /* the backend context: init's, or the version-1 table */
    uint32_t plugin_version;    /* the interface version the plugin speaks */
    bool initialized;           /* init ran: cleanup is owed */
} slm__backend_t;

struct slm_device {
    slm_device_info_t info;
    slm_device_props_t props;
    const slm_backend_iface_t *iface;   /* &backend->iface */
    const slm__backend_t *backend;
    void *ctx;                  /* the backend's device context */
    int index;                  /* device index inside its backend */
    slm_registry_t *reg;
};

/* device.c: `size` bytes with SLM_BUFFER_* flags through buffer_alloc_ex when the
 * backend has it, else buffer_alloc (hints dropped); a required HOST_VISIBLE that
 * cannot be met is SLM_E_UNSUPPORTED. */
int slm__device_alloc(struct slm_device *dev, uint64_t size, uint32_t flags, void **buffer,
                      void **base);
/* kind-backend.c: the backend of a loaded row (NULL when not loaded or not a backend). */
const slm__backend_t *slm__backend_of(const struct slm__plugin *p);
/* backend-v1.c: fill b->iface with adapters over a version-1 table (b->ctx = v1). */
void slm__backend_adapt_v1(slm__backend_t *b, const slm_backend_iface_v1_t *v1);

#endif

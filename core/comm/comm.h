/* Inside the communication layer: the plugin that was found (comm-find.c) and the
 * process-wide object built on it (comm.c). */
#ifndef SLMOPS_COMM_COMM_H
#define SLMOPS_COMM_COMM_H

#include <slmops/comm.h>
#include <slmops/plugin-comm.h>

typedef struct slm__comm_plugin {
    void *dl;
    const slm_comm_iface_t *ifc;
} slm__comm_plugin_t;

/* The plugin whose manifest recognises the launcher in the environment (pl->ifc NULL:
 * none, a single process); SLM_E_PLUGIN when it was recognised but cannot load. */
int slm__comm_find(slm__comm_plugin_t *pl, slm_error_t *err);

#endif

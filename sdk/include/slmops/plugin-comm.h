/* Communication plugin interface: the collectives a data-parallel job needs, over an
 * existing engine (MPI). The core reads the plugin's manifest from the comm/ subfolder
 * of each plugin folder and loads it only when one of provides.launch_env is set.
 *
 * Interface versions (SLM_COMM_IFACE_VERSION):
 *   1  init, allreduce_f32, broadcast, barrier, finish.
 *
 * The library exports one symbol, slm_comm_entry, which receives the host's version
 * and returns the interface (iface_version <= the host's; the host reads only the
 * fields inside struct_size). Every slot returns 0 on success, or nonzero with a
 * one-line reason in why (why_size bytes, NUL-terminated). A collective that does not
 * complete within the timeout given to init must fail, naming the ranks that did not
 * reach it: the host never waits forever. */
#ifndef SLMOPS_PLUGIN_COMM_H
#define SLMOPS_PLUGIN_COMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_COMM_IFACE_VERSION 1u

typedef struct slm_comm_iface {
    uint32_t struct_size;
    uint32_t iface_version;
    const char *name;
    /* Join the launched job: a context, this process's rank and the job's size. */
    void *(*init)(double timeout_s, int *rank, int *size, char *why, size_t why_size);
    /* In-place element-wise sum of buf[0..n) over every rank. */
    int (*allreduce_f32)(void *ctx, float *buf, size_t n, char *why, size_t why_size);
    /* buf[0..size) from rank root to every rank. */
    int (*broadcast)(void *ctx, void *buf, size_t size, int root, char *why, size_t why_size);
    /* timeout_s > 0 replaces init's timeout for this barrier. */
    int (*barrier)(void *ctx, double timeout_s, char *why, size_t why_size);
    /* The end: failed = 0 waits for the other ranks and shuts the engine down; 1 does
     * not wait (a peer may be gone) and leaves the ending to the launcher. */
    void (*finish)(void *ctx, int failed);
    void *reserved[4];
} slm_comm_iface_t;

typedef const slm_comm_iface_t *(*slm_comm_entry_fn)(uint32_t host_iface_version);
/* The one symbol a communication plugin exports. */
const slm_comm_iface_t *slm_comm_entry(uint32_t host_iface_version);

#ifdef __cplusplus
}
#endif
#endif

/* Backend plugin interface: devices, their memory, and execution of graph nodes.
 *
 * Interface versions:
 *   1  device enumeration and props, buffers (alloc/free/set/get/clear),
 *      supports_node, graph_compute, synchronize (optional),
 *      buffer_from_host (optional: use host memory such as a file mapping in place).
 *
 * The core owns the graph; a backend receives the nodes the scheduler placed on
 * one of its devices, in execution order, with every operand already resident in
 * that device's buffers. Everything here is called from one host thread per device
 * at a time; a backend may use its own threads inside a call. */
#ifndef SLMOPS_PLUGIN_BACKEND_H
#define SLMOPS_PLUGIN_BACKEND_H

#include <stdbool.h>
#include <slmops/plugin.h>
#include <slmops/ops.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_BACKEND_IFACE_VERSION 1u
#define SLM_MAX_DIMS 4
#define SLM_MAX_SRC 6
#define SLM_MAX_IPARAMS 8
#define SLM_MAX_FPARAMS 8

typedef enum slm_device_type {
    SLM_DEVICE_CPU = 0,
    SLM_DEVICE_IGPU = 1,
    SLM_DEVICE_DGPU = 2,
    SLM_DEVICE_ACCEL = 3
} slm_device_type_t;

/* What a backend tells about one of its devices. */
typedef struct slm_device_props {
    uint32_t struct_size;
    char name[128];            /* human name: "Intel Xeon (AVX-512)", "NVIDIA H200" */
    int32_t type;              /* slm_device_type_t */
    uint64_t memory_total;     /* bytes */
    uint64_t memory_free;      /* bytes, best estimate */
    int32_t score;             /* higher is preferred by --device auto */
    int32_t host_visible;      /* 1: buffers are host memory, buffer data pointers usable by the CPU */
    char description[256];     /* one line, e.g. the ISA in use and why */
} slm_device_props_t;

/* Options the host passes when opening a device. */
typedef struct slm_device_config {
    uint32_t struct_size;
    int32_t n_threads;         /* <= 0: backend default (CPU: number of cores) */
} slm_device_config_t;

/* A tensor as a backend sees it: up to 4 dims, byte strides, and where it lives.
 * ne[i] == 1 for unused dims; nb[0] is the element (or block) size for a
 * contiguous innermost dimension. */
typedef struct slm_tensor_desc {
    int32_t type;              /* slm_type_t */
    int32_t reserved0;
    int64_t ne[SLM_MAX_DIMS];  /* elements per dimension, ne[0] innermost */
    int64_t nb[SLM_MAX_DIMS];  /* byte stride per dimension */
    void *buffer;              /* the backend's buffer handle holding the tensor */
    uint64_t offset;           /* byte offset of element 0 inside that buffer */
    void *data;                /* buffer base + offset when the buffer has an address, else NULL */
} slm_tensor_desc_t;

/* One operation to execute: dst = op(src[0..n_src-1]; ip, fp). See slmops/ops.h. */
typedef struct slm_node {
    uint32_t struct_size;
    int32_t op;                /* slm_op_t */
    int32_t n_src;
    int32_t reserved0;
    slm_tensor_desc_t dst;
    slm_tensor_desc_t src[SLM_MAX_SRC];
    int64_t ip[SLM_MAX_IPARAMS];
    float fp[SLM_MAX_FPARAMS];
} slm_node_t;

/* The vtable a backend fills; the core wraps it. Slots marked optional may be NULL. */
typedef struct slm_backend_iface {
    uint32_t struct_size;
    uint32_t iface_version;    /* SLM_BACKEND_IFACE_VERSION the plugin was built against */

    /* Number of devices usable now (0 is allowed: e.g. no GPU present). */
    int (*device_count)(void);
    /* Describe device `index` (0-based). */
    int (*device_props)(int index, slm_device_props_t *props);
    /* Open device `index`; *dev receives the backend's context. */
    int (*device_open)(int index, const slm_device_config_t *cfg, void **dev);
    /* Release everything the device context holds. */
    void (*device_close)(void *dev);

    /* True when this device can execute the node as described (op, types, layouts). */
    bool (*supports_node)(void *dev, const slm_node_t *node);

    /* Allocate `size` bytes; *buffer is the handle, *base its address (NULL if none). */
    int (*buffer_alloc)(void *dev, uint64_t size, void **buffer, void **base);
    /* Free a buffer from buffer_alloc. */
    void (*buffer_free)(void *dev, void *buffer);
    /* Copy host memory into the buffer at offset. */
    int (*buffer_set)(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
    /* Copy from the buffer at offset into host memory. */
    int (*buffer_get)(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
    /* Fill a byte range with `value`. */
    int (*buffer_clear)(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value);

    /* Execute nodes in order; results visible after return or after synchronize. */
    int (*graph_compute)(void *dev, const slm_node_t *const *nodes, size_t n_nodes);
    /* Optional: wait for queued work. */
    int (*synchronize)(void *dev);
    /* Optional: wrap `size` bytes of host memory at `ptr` as a buffer without copying
     * (host_visible devices; the memory may be read-only and outlives the buffer).
     * buffer_free releases the wrapper only. NULL or SLM_E_UNSUPPORTED: the host copies. */
    int (*buffer_from_host)(void *dev, void *ptr, uint64_t size, void **buffer, void **base);

    void *reserved[8];
} slm_backend_iface_t;

#ifdef __cplusplus
}
#endif
#endif

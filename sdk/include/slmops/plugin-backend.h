/* Backend plugin interface: devices, their memory, and execution of graph nodes.
 *
 * Interface versions:
 *   1  device enumeration and props, buffers (alloc/free/set/get/clear),
 *      supports_node, graph_compute, synchronize (optional),
 *      buffer_from_host (optional: use host memory such as a file mapping in place).
 *   2  a backend context: init(host) before anything and cleanup before dlclose,
 *      passed to device_count/device_props/device_open; get_proc_address
 *      (extensions by name); buffer_alloc_ex (host-visible, pinned, resident
 *      buffers); buffer_copy between buffers of the backend's devices; asynchronous
 *      set/get with events; graph_record/replay (record once, replay every step).
 *      Everything new is optional except the backend-context signatures.
 * Choosing the version a source is written against (as FUSE_USE_VERSION does):
 * define SLM_BACKEND_USE_VERSION to 2 before including this header to get the
 * version-2 slm_backend_iface_t; left undefined it is 1, so that a version-1 source
 * rebuilt against this SDK stays a version-1 plugin instead of silently filling
 * version-2 slots with version-1 functions. Both tables are always declared as
 * slm_backend_iface_v1_t and slm_backend_iface_v2_t. Hosts read 1 and 2.
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

#ifndef SLM_BACKEND_USE_VERSION
#define SLM_BACKEND_USE_VERSION 1
#endif
#if SLM_BACKEND_USE_VERSION != 1 && SLM_BACKEND_USE_VERSION != 2
#error "SLM_BACKEND_USE_VERSION must be 1 or 2"
#endif
/* The version the including source is written against, and the newest there is. */
#define SLM_BACKEND_IFACE_VERSION ((uint32_t)SLM_BACKEND_USE_VERSION)
#define SLM_BACKEND_IFACE_LATEST 2u
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

/* Device scores (slm_device_props.score), from what a backend knows of the device;
 * `--device auto` picks the highest. Spaced so that new levels fit between. A
 * CPU-emulated GPU (lavapipe, PoCL) scores below the CPU backend, so that auto
 * never picks it unasked. */
enum {
    SLM_DEVICE_SCORE_EMULATED = 5,
    SLM_DEVICE_SCORE_CPU = 10,
    SLM_DEVICE_SCORE_IGPU = 50,
    SLM_DEVICE_SCORE_DGPU = 100
};

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

/* Flags of slm_device_config (each a request a backend may ignore). */
enum {
    /* Weights, the quantized operand 0 of MUL_MAT, may be kept a second time in a
     * layout private to the backend that multiplies faster with several columns
     * (batched decoding, prompts), built on first use: more memory for throughput.
     * The backend must notice writes to the tensors it copied (buffer_set,
     * buffer_clear, buffer_copy, a node's dst) and drop the copies. */
    SLM_DEVICE_CONFIG_REPACK = 1u << 0
};

/* Options the host passes when opening a device; grows at the end (struct_size). */
typedef struct slm_device_config {
    uint32_t struct_size;
    int32_t n_threads;         /* <= 0: backend default (CPU: number of cores) */
    uint32_t flags;            /* SLM_DEVICE_CONFIG_* */
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

/* Version 1 of the vtable (frozen). Slots marked optional may be NULL. */
typedef struct slm_backend_iface_v1 {
    uint32_t struct_size;
    uint32_t iface_version;    /* 1 */

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
} slm_backend_iface_v1_t;

/* Buffer flags of a version-2 allocation request. */
enum {
    /* The CPU must be able to read and write it: *base must be non-NULL. */
    SLM_BUFFER_HOST_VISIBLE = 1u << 0,
    /* Host memory pinned (page-locked) for fast transfers to and from the device;
     * implies HOST_VISIBLE. Used for staging. */
    SLM_BUFFER_HOST_PINNED = 1u << 1,
    /* Written once, read by many computes (weights, mirrors of weights): keep it in
     * the fastest memory for reading. A hint. */
    SLM_BUFFER_RESIDENT = 1u << 2,
    /* The host fills all of it from host memory right after allocating it and then
     * only reads it: weights buffer_from_host declined to wrap. With RESIDENT. A hint
     * (the CPU backend packs such buffers in huge pages). */
    SLM_BUFFER_FROM_HOST = 1u << 3
};

/* What buffer_alloc_ex is asked for; grows at the end (struct_size). */
typedef struct slm_buffer_request {
    uint32_t struct_size;
    uint32_t flags;            /* SLM_BUFFER_* */
    uint64_t size;             /* bytes */
} slm_buffer_request_t;

/* Version 2 of the vtable: the one the host reads (it adapts version-1 tables).
 * `backend` is the context init returned (NULL when init is NULL); `dev` a device
 * context from device_open. Slots marked optional may be NULL. */
typedef struct slm_backend_iface {
    uint32_t struct_size;
    uint32_t iface_version;    /* 2 */

    /* ---- the backend as a whole ---- */
    /* Optional: called once after loading, before any other slot; *backend receives
     * the backend context (instance, driver handles). A failure disables the plugin;
     * the last message it logged (info level or above) during init is the reason
     * `slmops plugins` shows ("no CUDA device (...)"). SLM_E_NOT_FOUND says the
     * hardware is absent: the host then logs the reason at info level, not as a
     * warning on every command. */
    int (*init)(const slm_host_t *host, void **backend);
    /* Optional: release the backend context; called before dlclose, after every
     * device is closed. */
    void (*cleanup)(void *backend);
    /* Number of devices usable now (0 is allowed: e.g. no GPU present). */
    int (*device_count)(void *backend);
    /* Describe device `index` (0-based); props->score ranks it (see slm_device_props). */
    int (*device_props)(void *backend, int index, slm_device_props_t *props);
    /* Open device `index`; *dev receives the device context. */
    int (*device_open)(void *backend, int index, const slm_device_config_t *cfg, void **dev);
    /* Release everything the device context holds. */
    void (*device_close)(void *dev);
    /* Optional: a backend-specific entry point by name ("vulkan.queue_family"), or
     * NULL; the caller knows its type from the extension's documentation. */
    void *(*get_proc_address)(void *backend, const char *name);

    /* ---- one device: as in version 1 ---- */
    bool (*supports_node)(void *dev, const slm_node_t *node);
    /* Device memory as the backend likes it best; *base NULL unless host-visible. */
    int (*buffer_alloc)(void *dev, uint64_t size, void **buffer, void **base);
    void (*buffer_free)(void *dev, void *buffer);
    int (*buffer_set)(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
    int (*buffer_get)(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
    int (*buffer_clear)(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value);
    int (*graph_compute)(void *dev, const slm_node_t *const *nodes, size_t n_nodes);
    /* Optional: wait for every queued operation of this device. */
    int (*synchronize)(void *dev);
    /* Optional: see version 1. */
    int (*buffer_from_host)(void *dev, void *ptr, uint64_t size, void **buffer, void **base);

    /* ---- version 2: memory ---- */
    /* Optional: allocate with flags; SLM_E_UNSUPPORTED for flags it cannot honour
     * (the host then uses buffer_alloc and, for HOST_VISIBLE, its own staging). */
    int (*buffer_alloc_ex)(void *dev, const slm_buffer_request_t *req, void **buffer, void **base);
    /* Optional: copy between buffers of this backend's devices (the same device or
     * two), queued after work already submitted to either; SLM_E_UNSUPPORTED for a
     * pair it cannot copy directly (the host stages through host memory). */
    int (*buffer_copy)(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                       uint64_t src_offset, uint64_t size);
    /* Optional: queue a copy from/to host memory and return; `src`/`dst` must stay
     * valid (and unread) until an event recorded after it completes. */
    int (*buffer_set_async)(void *dev, void *buffer, uint64_t offset, const void *src,
                            uint64_t size);
    int (*buffer_get_async)(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);

    /* ---- version 2: events (all five or none) ---- */
    int (*event_new)(void *dev, void **event);
    void (*event_free)(void *dev, void *event);
    /* Mark the point reached by the work queued on dev so far. */
    int (*event_record)(void *dev, void *event);
    /* Make dev's later work wait for the event (recorded on any device of this backend). */
    int (*event_wait)(void *dev, void *event);
    /* Block the calling thread until the event is reached. */
    int (*event_synchronize)(void *dev, void *event);

    /* ---- version 2: record once, replay (CUDA graphs, Vulkan command buffers) ---- */
    /* Optional: prepare nodes (as graph_compute takes them) for repeated execution;
     * the descriptions, buffers and offsets are fixed until graph_release, only the
     * data changes. SLM_E_UNSUPPORTED: the host keeps calling graph_compute. */
    int (*graph_record)(void *dev, const slm_node_t *const *nodes, size_t n_nodes, void **graph);
    /* Run a recorded graph as graph_compute would run its nodes. */
    int (*graph_replay)(void *dev, void *graph);
    void (*graph_release)(void *dev, void *graph);

    void *reserved[8];
} slm_backend_iface_v2_t;

#if SLM_BACKEND_USE_VERSION == 1
typedef slm_backend_iface_v1_t slm_backend_iface_t;
#else
typedef slm_backend_iface_v2_t slm_backend_iface_t;
#endif

#ifdef __cplusplus
}
#endif
#endif

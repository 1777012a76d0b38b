/* The CPU backend's vtable slots: device description, host-memory buffers and
 * graph execution (compute.c). */
#ifndef SLMOPS_CPU_DEVICE_H
#define SLMOPS_CPU_DEVICE_H

#include "cpu.h"

typedef struct cpu_device {
    cpu_pool_t *pool;
    void *scratch;             /* 64-byte aligned, grown on demand */
    size_t scratch_size;
    slm_node_t *nodes;         /* copies of the nodes being run, data pointers resolved */
    struct node_plan *plans;   /* per node: threads and barriers (compute.c) */
    size_t nodes_cap;          /* of both arrays */
    int solo_left;             /* graphs thread 0 still runs alone (compute.c, D54) */
    int strikes;               /* contended graphs in a row */
    int solo_backoff;          /* graphs before the watch may send the pool alone again */
    int64_t solo_ns;           /* the stretch alone so far */
    int64_t pooled_avg_ns;     /* the recent pooled graphs' mean time */
    struct cpu_repack *repack; /* repacked weights (repack.h), NULL unless asked for */
    /* Weights the host copies in (weights-arena.h, D60); NULL when buffer_from_host
     * wraps host memory in place instead (no huge pages, or SLMOPS_CPU_WEIGHTS=map). */
    struct cpu_arena *arena;
    const void **busy;         /* per graph: the buffers its nodes write (compute.c) */
    size_t busy_cap;
} cpu_device_t;

/* Host memory handed out as buffers. */
typedef struct cpu_buffer {
    void *base;
    uint64_t size;
    bool wrapped;              /* base is the caller's memory: never freed here */
    bool mapped;               /* base is an anonymous mapping of its own */
    bool pristine;             /* fresh mapping, not yet set nor cleared: all zero */
    struct cpu_arena_chunk *chunk; /* base is in this chunk of the device's arena */
} cpu_buffer_t;

/* Buffers from this size up are mapped: the kernel hands out zero pages lazily, so a
 * cleared but untouched buffer (a long KV cache) costs no memory until it is used. */
#define CPU_MAP_MIN ((uint64_t)1 << 20)

/* The first CPU feature this build needs and the CPU lacks, or NULL. */
const char *cpu_missing_feature(void);

int cpu_device_count(void *backend);
int cpu_device_props(void *backend, int index, slm_device_props_t *props);
int cpu_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev);
void cpu_device_close(void *dev);
bool cpu_supports_node(void *dev, const slm_node_t *node);
int cpu_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base);
void cpu_buffer_free(void *dev, void *buffer);
int cpu_buffer_alloc_ex(void *dev, const slm_buffer_request_t *req, void **buffer, void **base);
int cpu_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                    uint64_t src_offset, uint64_t size);
int cpu_buffer_from_host(void *dev, void *ptr, uint64_t size, void **buffer, void **base);
int cpu_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
int cpu_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
int cpu_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value);
int cpu_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes);

#endif

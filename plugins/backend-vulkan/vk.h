/* The Vulkan backend's shared state: the backend context (instance, physical
 * devices), one opened device (queue, pipelines, buffers) and the node parameters. */
#ifndef SLMOPS_VK_H
#define SLMOPS_VK_H

#include <stdbool.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

#include "gpu-nodes.h"

#define VK_PLUGIN_NAME "backend-vulkan"
#define VK_MAX_PHYS 16
#define VK_NT GPU_NT
#define VK_ROW_LANES_FROM 2048   /* rows longer than this: a workgroup per row */
#define VK_PARAMS_STRIDE 512     /* bytes per dispatch in the parameter buffer */

extern const slm_host_t *vk_host;
void vk_log(slm_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct vk_backend {
    VkInstance instance;
    uint32_t n_phys;
    VkPhysicalDevice phys[VK_MAX_PHYS];
} vk_backend_t;

typedef struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;
    void *map;                   /* non-NULL when the memory is host-visible and coherent */
} vk_buffer_t;

enum { VK_PIPE_ELEM = GPU_KERNEL_ELEM, VK_PIPE_MATMUL = GPU_KERNEL_MATMUL,
       VK_PIPE_ROWS = GPU_KERNEL_ROWS, VK_PIPE_COUNT };

typedef struct vk_device {
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    uint32_t mem_device;         /* memory type index for tensors */
    uint32_t mem_host;           /* host-visible coherent type (staging, parameters) */
    bool unified;                /* tensor memory is mappable: no staging */
    bool fp16;                   /* products use fp16 arithmetic (matmul-fp16) */
    int64_t wide_rows_from;      /* row ops on longer rows take a workgroup per row */
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipe_layout;
    VkPipeline pipe[VK_PIPE_COUNT];
    VkDescriptorPool desc_pool;
    uint32_t desc_cap;           /* sets the pool holds */
    vk_buffer_t params;          /* host-visible, VK_PARAMS_STRIDE per dispatch */
    vk_buffer_t staging;         /* host-visible, for non-mappable tensor memory */
    vk_buffer_t scratch;         /* partial sums of two-phase reductions */
} vk_device_t;

/* Parameters of one dispatch as the shaders' `P` block reads them (std430): the
 * generic block, then what only this backend's row shader reads. */
typedef struct vk_params {
    gpu_params_t g;
    uint32_t lanes;              /* rows.comp: invocations per row (1 or 64) */
} vk_params_t;

/* device.c */
/* SLMOPS_VULKAN_STAGING=1: treat device memory as not mappable (tests the
 * staging path on unified-memory devices). */
bool vk_force_staging(void);
/* VK_ROW_LANES_FROM, or 0 with SLMOPS_VULKAN_WIDE_ROWS=1 (every row op takes a
 * workgroup per row: tests that path on short rows). */
int64_t vk_wide_rows_from(void);
/* The device can run fp16 arithmetic (VK_KHR_shader_float16_int8 shaderFloat16). */
bool vk_has_fp16(VkPhysicalDevice pd);
int vk_buffer_make(vk_device_t *d, uint64_t size, uint32_t mem_type, VkBufferUsageFlags usage,
                   vk_buffer_t *b);
void vk_buffer_drop(vk_device_t *d, vk_buffer_t *b);
int vk_submit_wait(vk_device_t *d);
int vk_cmd_begin(vk_device_t *d);

/* device.c: the device and buffer slots of the interface */
int vk_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev);
void vk_device_close(void *dev);
int vk_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base);
void vk_buffer_free(void *dev, void *buffer);
int vk_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
int vk_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
int vk_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value);
int vk_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                   uint64_t src_offset, uint64_t size);

/* pipelines.c */
int vk_pipelines_create(vk_device_t *d);
void vk_pipelines_destroy(vk_device_t *d);

/* ops.c (the node set is plugins/common/gpu-nodes.h's) */
bool vk_supports_node(void *dev, const slm_node_t *n);
/* The pipeline, parameters and item count of dispatch `phase` of n. */
int vk_node_params(const vk_device_t *d, const slm_node_t *n, int phase, vk_params_t *p);

/* compute.c */
int vk_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes);

#endif

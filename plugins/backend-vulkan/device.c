/* One opened Vulkan device: its compute queue, memory types and buffers. Tensor
 * memory is device-local; where that memory is also host-visible (integrated GPUs,
 * lavapipe) it is mapped and copies are memcpy, else they go through a staging
 * buffer (SLMOPS_VULKAN_STAGING=1 forces that path, for testing). */
#include <stdlib.h>
#include <string.h>

#include "vk.h"

bool vk_force_staging(void)
{
    const char *v = getenv("SLMOPS_VULKAN_STAGING");
    return v && *v && strcmp(v, "0") != 0;
}

int64_t vk_wide_rows_from(void)
{
    const char *v = getenv("SLMOPS_VULKAN_WIDE_ROWS");
    return v && *v && strcmp(v, "0") != 0 ? 0 : VK_ROW_LANES_FROM;
}

/* The first memory type allowed by `bits` having every flag of `want`, or -1. */
static int find_mem(VkPhysicalDevice pd, uint32_t bits, VkMemoryPropertyFlags want)
{
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

int vk_buffer_make(vk_device_t *d, uint64_t size, uint32_t mem_type, VkBufferUsageFlags usage,
                   vk_buffer_t *b)
{
    memset(b, 0, sizeof *b);
    uint64_t bytes = (size + 15) & ~(uint64_t)15;   /* shaders read whole words */
    if (!bytes)
        bytes = 16;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = bytes,
                             .usage = usage,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (vkCreateBuffer(d->dev, &bi, NULL, &b->buf) != VK_SUCCESS)
        return SLM_E_NOMEM;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    if (!(req.memoryTypeBits & (1u << mem_type))) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        return SLM_E_DEVICE;
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = mem_type};
    if (vkAllocateMemory(d->dev, &ai, NULL, &b->mem) != VK_SUCCESS) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        return SLM_E_NOMEM;
    }
    vkBindBufferMemory(d->dev, b->buf, b->mem, 0);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(d->phys, &mp);
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if ((mp.memoryTypes[mem_type].propertyFlags & hv) == hv &&
        vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map) != VK_SUCCESS)
        b->map = NULL;
    b->size = size;
    return SLM_OK;
}

void vk_buffer_drop(vk_device_t *d, vk_buffer_t *b)
{
    if (b->buf)
        vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(d->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

int vk_cmd_begin(vk_device_t *d)
{
    vkResetCommandBuffer(d->cmd, 0);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    return vkBeginCommandBuffer(d->cmd, &bi) == VK_SUCCESS ? SLM_OK : SLM_E_DEVICE;
}

int vk_submit_wait(vk_device_t *d)
{
    if (vkEndCommandBuffer(d->cmd) != VK_SUCCESS)
        return SLM_E_DEVICE;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &d->cmd};
    VkResult r = vkQueueSubmit(d->queue, 1, &si, d->fence);
    if (r == VK_SUCCESS)
        r = vkWaitForFences(d->dev, 1, &d->fence, VK_TRUE, UINT64_MAX);
    vkResetFences(d->dev, 1, &d->fence);
    if (r != VK_SUCCESS) {
        vk_log(SLM_LOG_ERROR, "queue submit: VkResult %d", (int)r);
        return SLM_E_DEVICE;
    }
    return SLM_OK;
}

void vk_device_close(void *dev)
{
    vk_device_t *d = dev;
    if (!d)
        return;
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        vk_buffer_drop(d, &d->params);
        vk_buffer_drop(d, &d->staging);
        vk_buffer_drop(d, &d->scratch);
        if (d->desc_pool)
            vkDestroyDescriptorPool(d->dev, d->desc_pool, NULL);
        vk_pipelines_destroy(d);
        if (d->fence)
            vkDestroyFence(d->dev, d->fence, NULL);
        if (d->cmd_pool)
            vkDestroyCommandPool(d->dev, d->cmd_pool, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    free(d);
}

static int pick_queue(VkPhysicalDevice pd, uint32_t *family)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32)
        n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    /* a compute-only family first: it does not share time with graphics */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < n; i++)
            if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
                (pass || !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))) {
                *family = i;
                return SLM_OK;
            }
    return SLM_E_UNSUPPORTED;
}

static int open_memory(vk_device_t *d)
{
    /* Which types a storage buffer may use: ask a small one. */
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = 256,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer probe;
    if (vkCreateBuffer(d->dev, &bi, NULL, &probe) != VK_SUCCESS)
        return SLM_E_DEVICE;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, probe, &req);
    vkDestroyBuffer(d->dev, probe, NULL);
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int host = find_mem(d->phys, req.memoryTypeBits, hv);
    int unified = find_mem(d->phys, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    int local = find_mem(d->phys, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (host < 0)
        return SLM_E_UNSUPPORTED;
    d->mem_host = (uint32_t)host;
    d->unified = unified >= 0 && !vk_force_staging();
    if (d->unified) {
        d->mem_device = (uint32_t)unified;
        return SLM_OK;
    }
    /* Device-local memory the CPU cannot map; with SLMOPS_VULKAN_STAGING on a
     * unified device, pretend it cannot (buffers are not mapped, see alloc). */
    d->mem_device = (uint32_t)(local >= 0 ? local : host);
    return SLM_OK;
}

bool vk_has_fp16(VkPhysicalDevice pd)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *e = calloc(n ? n : 1, sizeof *e);
    bool found = false;
    if (e && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(e[i].extensionName, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME) == 0;
    free(e);
    if (!found)
        return false;
    VkPhysicalDeviceShaderFloat16Int8FeaturesKHR f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR};
    VkPhysicalDeviceFeatures2 f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
    vkGetPhysicalDeviceFeatures2(pd, &f);
    return f16.shaderFloat16;
}

/* fp16 arithmetic in the products: SLMOPS_VULKAN_FP16=1 forces it (refused when
 * the device lacks shaderFloat16), 0 forbids it; by default a GPU with
 * shaderFloat16 uses it, a CPU implementation (lavapipe) does not: it would
 * emulate fp16 in fp32 and only lose precision. */
static int choose_fp16(vk_device_t *d)
{
    const char *v = getenv("SLMOPS_VULKAN_FP16");
    bool can = vk_has_fp16(d->phys);
    if (v && *v && strcmp(v, "auto") != 0) {
        if (strcmp(v, "0") == 0) {
            d->fp16 = false;
            return SLM_OK;
        }
        if (strcmp(v, "1") != 0) {
            vk_log(SLM_LOG_ERROR, "SLMOPS_VULKAN_FP16 is '%s': use 0, 1 or auto", v);
            return SLM_E_INVALID;
        }
        if (!can) {
            vk_log(SLM_LOG_ERROR, "SLMOPS_VULKAN_FP16=1 but this device has no shaderFloat16: "
                                  "unset it or set it to 0");
            return SLM_E_UNSUPPORTED;
        }
        d->fp16 = true;
        return SLM_OK;
    }
    VkPhysicalDeviceProperties pr;
    vkGetPhysicalDeviceProperties(d->phys, &pr);
    d->fp16 = can && (pr.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ||
                      pr.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU);
    return SLM_OK;
}

int vk_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    vk_backend_t *b = backend;
    if (!b || index < 0 || (uint32_t)index >= b->n_phys || !dev)
        return SLM_E_INVALID;
    vk_device_t *d = calloc(1, sizeof *d);
    if (!d)
        return SLM_E_NOMEM;
    d->phys = b->phys[index];
    int rc = pick_queue(d->phys, &d->queue_family);
    if (rc)
        goto fail;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = d->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    VkPhysicalDeviceShaderFloat16Int8FeaturesKHR f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR,
        .shaderFloat16 = VK_TRUE};
    const char *ext = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    if ((rc = choose_fp16(d)))
        goto fail;
    d->wide_rows_from = vk_wide_rows_from();
    if (d->fp16) {
        di.pNext = &f16;
        di.enabledExtensionCount = 1;
        di.ppEnabledExtensionNames = &ext;
    }
    rc = SLM_E_DEVICE;
    if (vkCreateDevice(d->phys, &di, NULL, &d->dev) != VK_SUCCESS) {
        d->dev = VK_NULL_HANDLE;
        goto fail;
    }
    vkGetDeviceQueue(d->dev, d->queue_family, 0, &d->queue);
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = d->queue_family};
    if (vkCreateCommandPool(d->dev, &pi, NULL, &d->cmd_pool) != VK_SUCCESS)
        goto fail;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = d->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if (vkAllocateCommandBuffers(d->dev, &ai, &d->cmd) != VK_SUCCESS)
        goto fail;
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (vkCreateFence(d->dev, &fi, NULL, &d->fence) != VK_SUCCESS)
        goto fail;
    if ((rc = open_memory(d)) || (rc = vk_pipelines_create(d)))
        goto fail;
    *dev = d;
    return SLM_OK;
fail:
    vk_log(SLM_LOG_ERROR, "opening Vulkan device %d failed (%d)", index, rc);
    vk_device_close(d);
    return rc;
}

/* ---- buffers ---- */

static const VkBufferUsageFlags tensor_usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                               VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                               VK_BUFFER_USAGE_TRANSFER_DST_BIT;

int vk_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    vk_device_t *d = dev;
    if (!d || !buffer || !base || size > ((uint64_t)1 << 31))
        return SLM_E_INVALID;   /* shaders address bytes with 32 bits */
    vk_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    int rc = vk_buffer_make(d, size, d->mem_device, tensor_usage, b);
    if (rc) {
        free(b);
        return rc;
    }
    if (!d->unified && b->map) {   /* forced staging: never hand out the mapping */
        vkUnmapMemory(d->dev, b->mem);
        b->map = NULL;
    }
    *buffer = b;
    *base = b->map;
    return SLM_OK;
}

void vk_buffer_free(void *dev, void *buffer)
{
    vk_device_t *d = dev;
    if (!d || !buffer)
        return;
    vkDeviceWaitIdle(d->dev);
    vk_buffer_drop(d, buffer);
    free(buffer);
}

static bool in_range(const vk_buffer_t *b, uint64_t offset, uint64_t size)
{
    return b && offset <= b->size && size <= b->size - offset;
}

static int staging_reserve(vk_device_t *d, uint64_t size)
{
    if (d->staging.buf && d->staging.size >= size)
        return SLM_OK;
    vk_buffer_drop(d, &d->staging);
    uint64_t cap = size < (1u << 20) ? (1u << 20) : size;
    int rc = vk_buffer_make(d, cap, d->mem_host,
                            VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                            &d->staging);
    return rc ? rc : d->staging.map ? SLM_OK : SLM_E_DEVICE;
}

/* Copy between a device buffer and the staging buffer, in pieces of the staging
 * buffer's size. to_dev: staging -> buffer. */
static int staged(vk_device_t *d, vk_buffer_t *b, uint64_t offset, void *host, uint64_t size,
                  bool to_dev)
{
    int rc = staging_reserve(d, size < (64u << 20) ? size : (64u << 20));
    for (uint64_t done = 0; !rc && done < size;) {
        uint64_t n = size - done < d->staging.size ? size - done : d->staging.size;
        if (to_dev)
            memcpy(d->staging.map, (char *)host + done, (size_t)n);
        if ((rc = vk_cmd_begin(d)))
            break;
        VkBufferCopy c = {.srcOffset = to_dev ? 0 : offset + done,
                          .dstOffset = to_dev ? offset + done : 0,
                          .size = n};
        vkCmdCopyBuffer(d->cmd, to_dev ? d->staging.buf : b->buf, to_dev ? b->buf : d->staging.buf,
                        1, &c);
        if ((rc = vk_submit_wait(d)))
            break;
        if (!to_dev)
            memcpy((char *)host + done, d->staging.map, (size_t)n);
        done += n;
    }
    return rc;
}

int vk_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    vk_buffer_t *b = buffer;
    if (!dev || !in_range(b, offset, size) || (size && !src))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    if (b->map) {
        memcpy((char *)b->map + offset, src, (size_t)size);
        return SLM_OK;
    }
    return staged(dev, b, offset, (void *)src, size, true);
}

int vk_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    vk_buffer_t *b = buffer;
    if (!dev || !in_range(b, offset, size) || (size && !dst))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    if (b->map) {
        memcpy(dst, (char *)b->map + offset, (size_t)size);
        return SLM_OK;
    }
    return staged(dev, b, offset, dst, size, false);
}

int vk_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    vk_device_t *d = dev;
    vk_buffer_t *b = buffer;
    if (!d || !in_range(b, offset, size))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    if (b->map) {
        memset((char *)b->map + offset, value, (size_t)size);
        return SLM_OK;
    }
    if (offset % 4 == 0 && size % 4 == 0) {
        int rc = vk_cmd_begin(d);
        if (rc)
            return rc;
        vkCmdFillBuffer(d->cmd, b->buf, offset, size, 0x01010101u * value);
        return vk_submit_wait(d);
    }
    void *tmp = malloc((size_t)size);   /* unaligned range: rare (clears are whole tensors) */
    if (!tmp)
        return SLM_E_NOMEM;
    memset(tmp, value, (size_t)size);
    int rc = staged(d, b, offset, tmp, size, true);
    free(tmp);
    return rc;
}

int vk_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                   uint64_t src_offset, uint64_t size)
{
    vk_device_t *d = dst_dev;
    vk_buffer_t *db = dst, *sb = src;
    if (!d || !in_range(db, dst_offset, size) || !in_range(sb, src_offset, size))
        return SLM_E_INVALID;
    if (dst_dev != src_dev)
        return SLM_E_UNSUPPORTED;   /* two VkDevices share no memory: the host stages */
    if (!size)
        return SLM_OK;
    if (db->map && sb->map) {
        memmove((char *)db->map + dst_offset, (char *)sb->map + src_offset, (size_t)size);
        return SLM_OK;
    }
    if (db == sb && dst_offset < src_offset + size && src_offset < dst_offset + size)
        return SLM_E_UNSUPPORTED;   /* vkCmdCopyBuffer forbids overlapping regions */
    int rc = vk_cmd_begin(d);
    if (rc)
        return rc;
    VkBufferCopy c = {.srcOffset = src_offset, .dstOffset = dst_offset, .size = size};
    vkCmdCopyBuffer(d->cmd, sb->buf, db->buf, 1, &c);
    return vk_submit_wait(d);
}

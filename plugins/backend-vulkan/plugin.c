/* The Vulkan backend plugin: the backend context (one VkInstance and the physical
 * devices with a compute queue), device description and scores, the entry point. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

#define PLUGIN_VERSION PACKAGE_VERSION

const slm_host_t *vk_host;

void vk_log(slm_log_level_t level, const char *fmt, ...)
{
    if (!vk_host || !vk_host->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vk_host->log(level, VK_PLUGIN_NAME, "%s", msg);
}

static bool has_compute_queue(VkPhysicalDevice pd)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32)
        n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            return true;
    return false;
}

/* No loader or no driver is not an error: the plugin reports 0 devices, and
 * `slmops plugins` shows why. */
static int vkb_init(const slm_host_t *host, void **backend)
{
    vk_host = host;
    vk_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "slmops",
                             .pEngineName = "slmops",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ci, NULL, &b->instance);
    if (r != VK_SUCCESS) {
        vk_log(SLM_LOG_INFO, "no Vulkan instance (VkResult %d): no devices", (int)r);
        b->instance = VK_NULL_HANDLE;
        *backend = b;
        return SLM_OK;
    }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(b->instance, &n, NULL);
    VkPhysicalDevice all[VK_MAX_PHYS];
    if (n > VK_MAX_PHYS)
        n = VK_MAX_PHYS;
    if (n && vkEnumeratePhysicalDevices(b->instance, &n, all) < 0)
        n = 0;
    for (uint32_t i = 0; i < n; i++)
        if (has_compute_queue(all[i]))
            b->phys[b->n_phys++] = all[i];
    *backend = b;
    return SLM_OK;
}

static void vkb_cleanup(void *backend)
{
    vk_backend_t *b = backend;
    if (b && b->instance)
        vkDestroyInstance(b->instance, NULL);
    free(b);
}

static int vkb_device_count(void *backend)
{
    return backend ? (int)((vk_backend_t *)backend)->n_phys : 0;
}

static uint64_t local_heap_bytes(VkPhysicalDevice pd)
{
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    uint64_t best = 0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[i].size > best)
            best = mp.memoryHeaps[i].size;
    return best;
}

static int vkb_device_props(void *backend, int index, slm_device_props_t *p)
{
    vk_backend_t *b = backend;
    if (!b || index < 0 || (uint32_t)index >= b->n_phys || !p || p->struct_size < sizeof *p)
        return SLM_E_INVALID;
    VkPhysicalDeviceProperties pr;
    vkGetPhysicalDeviceProperties(b->phys[index], &pr);
    memset((char *)p + sizeof p->struct_size, 0, sizeof *p - sizeof p->struct_size);
    memcpy(p->name, pr.deviceName, sizeof p->name - 1);   /* both NUL-terminated */
    p->name[sizeof p->name - 1] = 0;
    p->memory_total = local_heap_bytes(b->phys[index]);
    p->memory_free = p->memory_total;
    const char *kind;
    switch (pr.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        p->type = SLM_DEVICE_DGPU;
        p->score = SLM_DEVICE_SCORE_DGPU;
        kind = "discrete GPU";
        break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        p->type = SLM_DEVICE_IGPU;
        p->score = SLM_DEVICE_SCORE_IGPU;
        p->host_visible = !vk_force_staging();
        kind = "integrated GPU";
        break;
    default:
        /* lavapipe and other CPU implementations: slower than the CPU backend. Not
         * SLM_DEVICE_CPU: the scheduler takes a CPU device for the fallback that runs
         * every op, and this one does not. */
        p->type = SLM_DEVICE_ACCEL;
        p->score = SLM_DEVICE_SCORE_EMULATED;
        p->host_visible = !vk_force_staging();
        kind = "CPU-emulated, ranked below the CPU backend";
        break;
    }
    snprintf(p->description, sizeof p->description, "Vulkan %u.%u, %s; fp16 arithmetic: %s",
             VK_API_VERSION_MAJOR(pr.apiVersion), VK_API_VERSION_MINOR(pr.apiVersion), kind,
             !vk_has_fp16(b->phys[index]) ? "none"
             : p->score > SLM_DEVICE_SCORE_CPU ? "shaderFloat16, used"
                                               : "shaderFloat16, off unless SLMOPS_VULKAN_FP16=1");
    return SLM_OK;
}

static const slm_backend_iface_t vk_iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .init = vkb_init,
    .cleanup = vkb_cleanup,
    .device_count = vkb_device_count,
    .device_props = vkb_device_props,
    .device_open = vk_device_open,
    .device_close = vk_device_close,
    .supports_node = vk_supports_node,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_set = vk_buffer_set,
    .buffer_get = vk_buffer_get,
    .buffer_clear = vk_buffer_clear,
    .graph_compute = vk_graph_compute,
    .buffer_copy = vk_buffer_copy,
};

SLM_PLUGIN_DEFINE(SLM_PLUGIN_KIND_BACKEND, VK_PLUGIN_NAME, PLUGIN_VERSION, NULL, &vk_iface)

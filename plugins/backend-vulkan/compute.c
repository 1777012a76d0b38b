/* graph_compute of the Vulkan backend: every node's dispatches recorded into one
 * command buffer with a barrier between them, submitted once, waited for. */
#include <stdlib.h>
#include <string.h>

#include "vk.h"

_Static_assert(sizeof(vk_params_t) <= VK_PARAMS_STRIDE, "parameter slot");

static int params_reserve(vk_device_t *d, uint64_t bytes)
{
    if (d->params.buf && d->params.size >= bytes)
        return SLM_OK;
    vk_buffer_drop(d, &d->params);
    uint64_t cap = 64 * VK_PARAMS_STRIDE;
    while (cap < bytes)
        cap *= 2;
    int rc = vk_buffer_make(d, cap, d->mem_host, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, &d->params);
    return rc ? rc : d->params.map ? SLM_OK : SLM_E_DEVICE;
}

static int pool_reserve(vk_device_t *d, uint32_t sets)
{
    if (d->desc_pool && d->desc_cap >= sets) {
        vkResetDescriptorPool(d->dev, d->desc_pool, 0);
        return SLM_OK;
    }
    if (d->desc_pool)
        vkDestroyDescriptorPool(d->dev, d->desc_pool, NULL);
    d->desc_pool = VK_NULL_HANDLE;
    uint32_t cap = d->desc_cap ? d->desc_cap : 64;
    while (cap < sets)
        cap *= 2;
    VkDescriptorPoolSize size = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                 .descriptorCount = cap * (VK_NT + 1)};
    VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = cap,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &size};
    if (vkCreateDescriptorPool(d->dev, &ci, NULL, &d->desc_pool) != VK_SUCCESS)
        return SLM_E_NOMEM;
    d->desc_cap = cap;
    return SLM_OK;
}

/* One dispatch: its descriptor set (the node's buffers and its parameter slot). */
static void record(vk_device_t *d, const slm_node_t *n, int pipe, const vk_params_t *p,
                   VkDescriptorSet set, uint32_t slot)
{
    bool scratch = gpu_node_scratch(n) > 0;
    VkDescriptorBufferInfo info[VK_NT + 1];
    VkWriteDescriptorSet w[VK_NT + 1];
    for (int t = 0; t < VK_NT; t++) {
        const slm_tensor_desc_t *td = t == 0 ? &n->dst : t <= n->n_src ? &n->src[t - 1] : NULL;
        const vk_buffer_t *b = td ? td->buffer : NULL;
        if (scratch && t == 3)
            b = &d->scratch;
        info[t] = (VkDescriptorBufferInfo){.buffer = b ? b->buf : d->params.buf,
                                           .offset = 0,
                                           .range = VK_WHOLE_SIZE};
    }
    info[VK_NT] = (VkDescriptorBufferInfo){.buffer = d->params.buf,
                                           .offset = (VkDeviceSize)slot * VK_PARAMS_STRIDE,
                                           .range = VK_PARAMS_STRIDE};
    for (uint32_t i = 0; i < VK_NT + 1; i++)
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &info[i]};
    vkUpdateDescriptorSets(d->dev, VK_NT + 1, w, 0, NULL);
    vkCmdBindPipeline(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe[pipe]);
    vkCmdBindDescriptorSets(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe_layout, 0, 1, &set, 0,
                            NULL);
    uint32_t groups = (p->g.n_items + 63) / 64, gx = groups < 65535 ? groups : 65535;
    uint32_t gy = (groups + gx - 1) / gx;
    vkCmdDispatch(d->cmd, gx, gy, 1);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(d->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &mb, 0, NULL, 0, NULL);
}

/* The scheduler asks supports_node before it allocates; by compute time every
 * operand must be in one of this backend's buffers. */
static bool buffers_bound(const slm_node_t *n)
{
    if (!n->dst.buffer)
        return false;
    for (int i = 0; i < n->n_src; i++)
        if (!n->src[i].buffer)
            return false;
    return true;
}

int vk_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    vk_device_t *d = dev;
    if (!d || (n_nodes && !nodes))
        return SLM_E_INVALID;
    uint32_t n_disp = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        if (!vk_supports_node(dev, nodes[i]) || !buffers_bound(nodes[i])) {
            vk_log(SLM_LOG_ERROR, "node %zu (op %d) is not supported", i, nodes[i] ? nodes[i]->op : -1);
            return SLM_E_UNSUPPORTED;
        }
        n_disp += (uint32_t)gpu_node_phases(nodes[i]);
    }
    if (!n_disp)
        return SLM_OK;
    uint64_t scratch = 0;
    for (size_t i = 0; i < n_nodes; i++)
        if (gpu_node_scratch(nodes[i]) > scratch)
            scratch = gpu_node_scratch(nodes[i]);
    int rc = params_reserve(d, (uint64_t)n_disp * VK_PARAMS_STRIDE);
    if (!rc && scratch * 4 > d->scratch.size) {
        vk_buffer_drop(d, &d->scratch);
        rc = vk_buffer_make(d, scratch * 4, d->mem_device, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                            &d->scratch);
    }
    if (!rc)
        rc = pool_reserve(d, n_disp);
    if (rc)
        return rc;
    VkDescriptorSet *sets = malloc(n_disp * sizeof *sets);
    VkDescriptorSetLayout *layouts = malloc(n_disp * sizeof *layouts);
    if (!sets || !layouts) {
        free(sets);
        free(layouts);
        return SLM_E_NOMEM;
    }
    for (uint32_t i = 0; i < n_disp; i++)
        layouts[i] = d->set_layout;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = d->desc_pool,
                                      .descriptorSetCount = n_disp,
                                      .pSetLayouts = layouts};
    if (vkAllocateDescriptorSets(d->dev, &ai, sets) != VK_SUCCESS)
        rc = SLM_E_NOMEM;
    if (!rc)
        rc = vk_cmd_begin(d);
    uint32_t slot = 0;
    for (size_t i = 0; !rc && i < n_nodes; i++)
        for (int ph = 0; ph < gpu_node_phases(nodes[i]); ph++, slot++) {
            vk_params_t *p = (vk_params_t *)((char *)d->params.map + (size_t)slot * VK_PARAMS_STRIDE);
            int pipe = vk_node_params(d, nodes[i], ph, p);
            record(d, nodes[i], pipe, p, sets[slot], slot);
        }
    if (!rc)
        rc = vk_submit_wait(d);
    free(sets);
    free(layouts);
    return rc;
}

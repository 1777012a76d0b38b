/* The compute pipelines of the Vulkan backend, made from the SPIR-V the build
 * compiled from shaders/ (embedded: no file is read at run time). */
#include "vk.h"

static const uint32_t spv_elem[] =
#include "shaders/elem.spv.h"
    ;
static const uint32_t spv_matmul[] =
#include "shaders/matmul.spv.h"
    ;
static const uint32_t spv_matmul_fp16[] =
#include "shaders/matmul-fp16.spv.h"
    ;
static const uint32_t spv_rows[] =
#include "shaders/rows.spv.h"
    ;

static const struct {
    const uint32_t *code;
    size_t size;
} shaders[VK_PIPE_COUNT] = {
    [VK_PIPE_ELEM] = {spv_elem, sizeof spv_elem},
    [VK_PIPE_MATMUL] = {spv_matmul, sizeof spv_matmul},
    [VK_PIPE_ROWS] = {spv_rows, sizeof spv_rows},
};

int vk_pipelines_create(vk_device_t *d)
{
    VkDescriptorSetLayoutBinding bind[VK_NT + 1];
    for (uint32_t i = 0; i < VK_NT + 1; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                                 .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                 .descriptorCount = 1,
                                                 .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo sl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = VK_NT + 1,
                                          .pBindings = bind};
    if (vkCreateDescriptorSetLayout(d->dev, &sl, NULL, &d->set_layout) != VK_SUCCESS)
        return SLM_E_DEVICE;
    VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &d->set_layout};
    if (vkCreatePipelineLayout(d->dev, &pl, NULL, &d->pipe_layout) != VK_SUCCESS)
        return SLM_E_DEVICE;
    for (int i = 0; i < VK_PIPE_COUNT; i++) {
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = shaders[i].size,
                                       .pCode = shaders[i].code};
        if (i == VK_PIPE_MATMUL && d->fp16) {
            mi.codeSize = sizeof spv_matmul_fp16;
            mi.pCode = spv_matmul_fp16;
        }
        VkShaderModule mod;
        if (vkCreateShaderModule(d->dev, &mi, NULL, &mod) != VK_SUCCESS)
            return SLM_E_DEVICE;
        VkComputePipelineCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = mod,
                      .pName = "main"},
            .layout = d->pipe_layout};
        VkResult r = vkCreateComputePipelines(d->dev, VK_NULL_HANDLE, 1, &ci, NULL, &d->pipe[i]);
        vkDestroyShaderModule(d->dev, mod, NULL);
        if (r != VK_SUCCESS) {
            vk_log(SLM_LOG_ERROR, "compute pipeline %d: VkResult %d", i, (int)r);
            return SLM_E_DEVICE;
        }
    }
    return SLM_OK;
}

void vk_pipelines_destroy(vk_device_t *d)
{
    for (int i = 0; i < VK_PIPE_COUNT; i++)
        if (d->pipe[i])
            vkDestroyPipeline(d->dev, d->pipe[i], NULL);
    if (d->pipe_layout)
        vkDestroyPipelineLayout(d->dev, d->pipe_layout, NULL);
    if (d->set_layout)
        vkDestroyDescriptorSetLayout(d->dev, d->set_layout, NULL);
}

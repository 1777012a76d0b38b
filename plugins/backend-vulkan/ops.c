/* The Vulkan backend's dispatches: the generic node set (plugins/common/gpu-nodes.c),
 * with the rows shader's lanes and its workgroup sum of the reductions' partials. */
#include <slmops/types.h>

#include "vk.h"

bool vk_supports_node(void *dev, const slm_node_t *n)
{
    (void)dev;
    return gpu_node_supported(n);
}

/* Fills *p for dispatch `phase` of n; returns its pipeline (VK_PIPE_*). */
int vk_node_params(const vk_device_t *d, const slm_node_t *n, int phase, vk_params_t *p)
{
    int pipe = gpu_node_params(n, phase, &p->g);
    p->lanes = 1;
    if (gpu_node_scratch(n) && phase == 1) {
        p->g.n_items = 64;   /* one workgroup sums the partials (rows.comp sum_scratch) */
    } else if (pipe == VK_PIPE_ROWS && n->op != SLM_OP_ROPE && n->op != SLM_OP_ROPE_BACK &&
               n->op != SLM_OP_SUM && n->src[0].ne[0] > d->wide_rows_from) {
        /* Long rows take a workgroup each (llvmpipe stops a loop at 65535
         * iterations); short ones an invocation each, which spares the barriers. */
        p->lanes = 64;
        p->g.n_items *= 64;
    }
    return pipe;
}

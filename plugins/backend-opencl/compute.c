/* graph_compute of the OpenCL backend: every node's dispatches enqueued in order on
 * the device's in-order queue (which orders them), then one wait for all. */
#include "ocl.h"

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

/* One dispatch: the node's buffers (unused slots get dst's), its parameters by value. */
static cl_int enqueue(ocl_device_t *d, const slm_node_t *n, int phase)
{
    ocl_params_t p;
    int which = ocl_node_params(n, phase, &p);
    cl_kernel k = d->kernel[which];
    bool scratch = gpu_node_scratch(n) > 0;
    cl_int r = CL_SUCCESS;
    for (cl_uint t = 0; r == CL_SUCCESS && t < OCL_NT; t++) {
        const slm_tensor_desc_t *td = t >= 1 && (int)t <= n->n_src ? &n->src[t - 1] : &n->dst;
        const ocl_buffer_t *b = scratch && t == 3 ? &d->scratch : td->buffer;
        r = clSetKernelArg(k, t, sizeof(cl_mem), &b->mem);
    }
    if (r == CL_SUCCESS)
        r = clSetKernelArg(k, OCL_NT, sizeof p, &p);
    size_t group = which == OCL_KERNEL_REDUCE ? 1 : OCL_GROUP, local = group;
    size_t global = ((size_t)p.n_items + group - 1) / group * group;
    if (r == CL_SUCCESS && global)
        r = clEnqueueNDRangeKernel(d->queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
    return r;
}

static int scratch_reserve(ocl_device_t *d, const slm_node_t *const *nodes, size_t n_nodes)
{
    uint64_t need = 0;
    for (size_t i = 0; i < n_nodes; i++)
        if (gpu_node_scratch(nodes[i]) > need)
            need = gpu_node_scratch(nodes[i]);
    if (need * 4 <= d->scratch.size)
        return SLM_OK;
    clFinish(d->queue);   /* the old one may still be in use */
    ocl_buffer_drop(&d->scratch);
    return ocl_buffer_make(d, need * 4, &d->scratch);
}

int ocl_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    ocl_device_t *d = dev;
    if (!d || (n_nodes && !nodes))
        return SLM_E_INVALID;
    for (size_t i = 0; i < n_nodes; i++)
        if (!ocl_supports_node(dev, nodes[i]) || !buffers_bound(nodes[i])) {
            ocl_log(SLM_LOG_ERROR, "node %zu (op %d) is not supported", i,
                    nodes[i] ? nodes[i]->op : -1);
            return SLM_E_UNSUPPORTED;
        }
    if (!n_nodes)
        return SLM_OK;
    int rc = scratch_reserve(d, nodes, n_nodes);
    if (rc)
        return rc;
    cl_int r = CL_SUCCESS;
    for (size_t i = 0; r == CL_SUCCESS && i < n_nodes; i++)
        for (int ph = 0; r == CL_SUCCESS && ph < gpu_node_phases(nodes[i]); ph++)
            r = enqueue(d, nodes[i], ph);
    cl_int f = clFinish(d->queue);
    if (r == CL_SUCCESS)
        r = f;
    if (r != CL_SUCCESS) {
        ocl_log(SLM_LOG_ERROR, "graph compute: OpenCL error %d", (int)r);
        return SLM_E_DEVICE;
    }
    return SLM_OK;
}

/* One opened OpenCL device: an in-order queue, the kernels of its slot's program,
 * and buffers. Transfers are clEnqueueRead/WriteBuffer (no host mapping: a mapped
 * buffer may not be used by kernels before OpenCL 2.0). */
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

static const char *const kernel_names[OCL_KERNEL_COUNT] = {
    [OCL_KERNEL_ELEM] = "elem",
    [OCL_KERNEL_MATMUL] = "matmul",
    [OCL_KERNEL_ROWS] = "rows",
    [OCL_KERNEL_REDUCE] = "reduce",
};

void ocl_device_close(void *dev)
{
    ocl_device_t *d = dev;
    if (!d)
        return;
    if (d->queue)
        clFinish(d->queue);
    ocl_buffer_drop(&d->scratch);
    for (int i = 0; i < OCL_KERNEL_COUNT; i++)
        if (d->kernel[i])
            clReleaseKernel(d->kernel[i]);
    if (d->queue)
        clReleaseCommandQueue(d->queue);
    free(d);
}

int ocl_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    ocl_backend_t *b = backend;
    if (!b || index < 0 || index >= b->n || !dev)
        return SLM_E_INVALID;
    ocl_device_t *d = calloc(1, sizeof *d);
    if (!d)
        return SLM_E_NOMEM;
    int rc = ocl_program_get(b, index, &d->slot);
    cl_int r = CL_SUCCESS;
    if (!rc) {
        d->queue = clCreateCommandQueue(d->slot->context, d->slot->device, 0, &r);
        rc = d->queue ? SLM_OK : SLM_E_DEVICE;
    }
    for (int i = 0; !rc && i < OCL_KERNEL_COUNT; i++)
        if (!(d->kernel[i] = clCreateKernel(d->slot->program, kernel_names[i], &r)))
            rc = SLM_E_DEVICE;
    cl_ulong max_alloc = 0;
    if (!rc)
        clGetDeviceInfo(d->slot->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc,
                        NULL);
    d->max_alloc = max_alloc;
    if (rc) {
        ocl_log(SLM_LOG_ERROR, "opening OpenCL device %d failed (%d, OpenCL error %d)", index, rc,
                (int)r);
        ocl_device_close(d);
        return rc;
    }
    *dev = d;
    return SLM_OK;
}

int ocl_synchronize(void *dev)
{
    ocl_device_t *d = dev;
    if (!d)
        return SLM_E_INVALID;
    return clFinish(d->queue) == CL_SUCCESS ? SLM_OK : SLM_E_DEVICE;
}

/* ---- buffers ---- */

int ocl_buffer_make(ocl_device_t *d, uint64_t size, ocl_buffer_t *b)
{
    memset(b, 0, sizeof *b);
    uint64_t bytes = (size + 15) & ~(uint64_t)15;   /* OpenCL refuses empty buffers */
    if (!bytes)
        bytes = 16;
    if (d->max_alloc && bytes > d->max_alloc)
        return SLM_E_NOMEM;
    cl_int r;
    b->mem = clCreateBuffer(d->slot->context, CL_MEM_READ_WRITE, (size_t)bytes, NULL, &r);
    if (!b->mem)
        return r == CL_OUT_OF_HOST_MEMORY || r == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                       r == CL_INVALID_BUFFER_SIZE
                   ? SLM_E_NOMEM
                   : SLM_E_DEVICE;
    b->size = size;
    return SLM_OK;
}

void ocl_buffer_drop(ocl_buffer_t *b)
{
    if (b->mem)
        clReleaseMemObject(b->mem);
    memset(b, 0, sizeof *b);
}

int ocl_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    ocl_device_t *d = dev;
    if (!d || !buffer || !base || size > ((uint64_t)1 << 31))
        return SLM_E_INVALID;   /* kernels address bytes with 32 bits */
    ocl_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    int rc = ocl_buffer_make(d, size, b);
    if (rc) {
        free(b);
        return rc;
    }
    *buffer = b;
    *base = NULL;
    return SLM_OK;
}

void ocl_buffer_free(void *dev, void *buffer)
{
    ocl_device_t *d = dev;
    if (!d || !buffer)
        return;
    clFinish(d->queue);   /* queued kernels may still read it */
    ocl_buffer_drop(buffer);
    free(buffer);
}

static bool in_range(const ocl_buffer_t *b, uint64_t offset, uint64_t size)
{
    return b && offset <= b->size && size <= b->size - offset;
}

static int status(cl_int r, const char *what)
{
    if (r == CL_SUCCESS)
        return SLM_OK;
    ocl_log(SLM_LOG_ERROR, "%s: OpenCL error %d", what, (int)r);
    return r == CL_OUT_OF_HOST_MEMORY || r == CL_OUT_OF_RESOURCES ? SLM_E_NOMEM : SLM_E_DEVICE;
}

int ocl_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    ocl_device_t *d = dev;
    ocl_buffer_t *b = buffer;
    if (!d || !in_range(b, offset, size) || (size && !src))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    return status(clEnqueueWriteBuffer(d->queue, b->mem, CL_TRUE, (size_t)offset, (size_t)size, src,
                                       0, NULL, NULL),
                  "buffer write");
}

int ocl_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    ocl_device_t *d = dev;
    ocl_buffer_t *b = buffer;
    if (!d || !in_range(b, offset, size) || (size && !dst))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    return status(clEnqueueReadBuffer(d->queue, b->mem, CL_TRUE, (size_t)offset, (size_t)size, dst, 0,
                                      NULL, NULL),
                  "buffer read");
}

int ocl_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    ocl_device_t *d = dev;
    ocl_buffer_t *b = buffer;
    if (!d || !in_range(b, offset, size))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    cl_int r = clEnqueueFillBuffer(d->queue, b->mem, &value, 1, (size_t)offset, (size_t)size, 0, NULL,
                                   NULL);
    if (r == CL_SUCCESS)
        r = clFinish(d->queue);
    return status(r, "buffer fill");
}

int ocl_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                    uint64_t src_offset, uint64_t size)
{
    ocl_device_t *d = dst_dev;
    ocl_buffer_t *db = dst, *sb = src;
    if (!d || !in_range(db, dst_offset, size) || !in_range(sb, src_offset, size))
        return SLM_E_INVALID;
    if (dst_dev != src_dev)
        return SLM_E_UNSUPPORTED;   /* two contexts share no memory: the host stages */
    if (!size)
        return SLM_OK;
    if (db == sb && dst_offset < src_offset + size && src_offset < dst_offset + size)
        return SLM_E_UNSUPPORTED;   /* clEnqueueCopyBuffer forbids overlapping regions */
    cl_int r = clEnqueueCopyBuffer(d->queue, sb->mem, db->mem, (size_t)src_offset, (size_t)dst_offset,
                                   (size_t)size, 0, NULL, NULL);
    if (r == CL_SUCCESS)
        r = clFinish(d->queue);
    return status(r, "buffer copy");
}

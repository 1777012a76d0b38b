/* One opened CUDA device: the non-blocking stream all its work is queued on, its
 * buffers (device memory; pinned host memory when host-visible), copies, events. */
#include <stdlib.h>
#include <string.h>

#include "cu.h"

int cu_use(const cu_device_t *d)
{
    cudaError_t e = cudaSetDevice(d->ordinal);
    return e == cudaSuccess ? SLM_OK : cu_fail("cudaSetDevice", e);
}

int cu_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    (void)cfg;
    cu_backend_t *b = backend;
    if (!b || index < 0 || index >= b->n_dev || !dev)
        return SLM_E_INVALID;
    cu_device_t *d = calloc(1, sizeof *d);
    if (!d)
        return SLM_E_NOMEM;
    d->ordinal = index;
    int rc = cu_use(d);
    cudaError_t e = cudaSuccess;
    if (!rc && (e = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking)) != cudaSuccess)
        rc = cu_fail("cudaStreamCreate", e);
    if (rc) {
        free(d);
        return rc;
    }
    *dev = d;
    return SLM_OK;
}

void cu_device_close(void *dev)
{
    cu_device_t *d = dev;
    if (!d)
        return;
    if (cu_use(d) == SLM_OK) {
        cudaStreamSynchronize(d->stream);
        cudaFree(d->scratch);
        cudaStreamDestroy(d->stream);
    }
    free(d);
}

int cu_scratch_reserve(char **scratch, uint64_t *have, uint64_t bytes)
{
    if (*have >= bytes)
        return SLM_OK;
    cudaFree(*scratch);
    *scratch = NULL;
    *have = 0;
    cudaError_t e = cudaMalloc((void **)scratch, bytes);
    if (e != cudaSuccess)
        return cu_fail("cudaMalloc (scratch)", e);
    *have = bytes;
    return SLM_OK;
}

/* ---- buffers ---- */

static int alloc(cu_device_t *d, uint64_t size, bool host, void **buffer, void **base)
{
    if (!d || !buffer || !base)
        return SLM_E_INVALID;
    int rc = cu_use(d);
    if (rc)
        return rc;
    cu_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    size_t bytes = size ? (size_t)size : 16;
    cudaError_t e = host ? cudaMallocHost((void **)&b->ptr, bytes)
                         : cudaMalloc((void **)&b->ptr, bytes);
    if (e != cudaSuccess) {
        free(b);
        return cu_fail(host ? "cudaMallocHost" : "cudaMalloc", e);
    }
    b->size = size;
    b->host = host;
    *buffer = b;
    *base = host ? b->ptr : NULL;
    return SLM_OK;
}

int cu_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    return alloc(dev, size, false, buffer, base);
}

/* Host-visible and pinned: page-locked host memory the kernels can read too
 * (unified addressing); resident: device memory, as every plain buffer is. */
int cu_buffer_alloc_ex(void *dev, const slm_buffer_request_t *req, void **buffer, void **base)
{
    if (!req || req->struct_size < sizeof *req)
        return SLM_E_INVALID;
    bool host = req->flags & (SLM_BUFFER_HOST_VISIBLE | SLM_BUFFER_HOST_PINNED);
    return alloc(dev, req->size, host, buffer, base);
}

void cu_buffer_free(void *dev, void *buffer)
{
    cu_device_t *d = dev;
    cu_buffer_t *b = buffer;
    if (!d || !b)
        return;
    cu_use(d);
    cudaStreamSynchronize(d->stream);   /* queued work may still read it */
    if (b->host)
        cudaFreeHost(b->ptr);
    else
        cudaFree(b->ptr);
    free(b);
}

static bool in_range(const cu_buffer_t *b, uint64_t offset, uint64_t size)
{
    return b && offset <= b->size && size <= b->size - offset;
}

static int copy_host(cu_device_t *d, cu_buffer_t *b, uint64_t offset, void *host, uint64_t size,
                     bool to_dev, bool wait)
{
    if (!d || !in_range(b, offset, size) || (size && !host))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    int rc = cu_use(d);
    if (rc)
        return rc;
    char *at = b->ptr + offset;
    cudaError_t e = cudaMemcpyAsync(to_dev ? at : host, to_dev ? host : at, (size_t)size,
                                    cudaMemcpyDefault, d->stream);
    if (e == cudaSuccess && wait)
        e = cudaStreamSynchronize(d->stream);
    return e == cudaSuccess ? SLM_OK : cu_fail(to_dev ? "copy to the device" : "copy from the device", e);
}

int cu_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    return copy_host(dev, buffer, offset, (void *)src, size, true, true);
}

int cu_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    return copy_host(dev, buffer, offset, dst, size, false, true);
}

int cu_buffer_set_async(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    return copy_host(dev, buffer, offset, (void *)src, size, true, false);
}

int cu_buffer_get_async(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    return copy_host(dev, buffer, offset, dst, size, false, false);
}

int cu_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    cu_device_t *d = dev;
    cu_buffer_t *b = buffer;
    if (!d || !in_range(b, offset, size))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    int rc = cu_use(d);
    if (rc)
        return rc;
    cudaError_t e = cudaMemsetAsync(b->ptr + offset, value, (size_t)size, d->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(d->stream);
    return e == cudaSuccess ? SLM_OK : cu_fail("cudaMemset", e);
}

/* Same device: a copy queued on its stream; overlapping ranges of one buffer are
 * refused (cudaMemcpy promises no memmove order) and the host stages them. Two
 * devices: a peer copy once the source device's queued work is done. */
int cu_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                   uint64_t src_offset, uint64_t size)
{
    cu_device_t *dd = dst_dev, *sd = src_dev;
    cu_buffer_t *db = dst, *sb = src;
    if (!dd || !sd || !in_range(db, dst_offset, size) || !in_range(sb, src_offset, size))
        return SLM_E_INVALID;
    if (!size)
        return SLM_OK;
    if (db == sb && dst_offset < src_offset + size && src_offset < dst_offset + size)
        return SLM_E_UNSUPPORTED;
    cudaError_t e;
    if (dd != sd) {
        if (cu_use(sd) || (e = cudaStreamSynchronize(sd->stream)) != cudaSuccess)
            return SLM_E_DEVICE;
    }
    int rc = cu_use(dd);
    if (rc)
        return rc;
    if (dd == sd || db->host || sb->host)
        e = cudaMemcpyAsync(db->ptr + dst_offset, sb->ptr + src_offset, (size_t)size,
                            cudaMemcpyDefault, dd->stream);
    else
        e = cudaMemcpyPeerAsync(db->ptr + dst_offset, dd->ordinal, sb->ptr + src_offset,
                                sd->ordinal, (size_t)size, dd->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(dd->stream);
    return e == cudaSuccess ? SLM_OK : cu_fail("device copy", e);
}

int cu_synchronize(void *dev)
{
    cu_device_t *d = dev;
    if (!d)
        return SLM_E_INVALID;
    int rc = cu_use(d);
    if (rc)
        return rc;
    cudaError_t e = cudaStreamSynchronize(d->stream);
    return e == cudaSuccess ? SLM_OK : cu_fail("cudaStreamSynchronize", e);
}

/* ---- events ---- */

int cu_event_new(void *dev, void **event)
{
    cu_device_t *d = dev;
    if (!d || !event)
        return SLM_E_INVALID;
    int rc = cu_use(d);
    if (rc)
        return rc;
    cudaEvent_t ev;
    cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e != cudaSuccess)
        return cu_fail("cudaEventCreate", e);
    *event = ev;
    return SLM_OK;
}

void cu_event_free(void *dev, void *event)
{
    (void)dev;
    if (event)
        cudaEventDestroy((cudaEvent_t)event);
}

int cu_event_record(void *dev, void *event)
{
    cu_device_t *d = dev;
    if (!d || !event)
        return SLM_E_INVALID;
    int rc = cu_use(d);
    if (rc)
        return rc;
    cudaError_t e = cudaEventRecord((cudaEvent_t)event, d->stream);
    return e == cudaSuccess ? SLM_OK : cu_fail("cudaEventRecord", e);
}

int cu_event_wait(void *dev, void *event)
{
    cu_device_t *d = dev;
    if (!d || !event)
        return SLM_E_INVALID;
    int rc = cu_use(d);
    if (rc)
        return rc;
    cudaError_t e = cudaStreamWaitEvent(d->stream, (cudaEvent_t)event, 0);
    return e == cudaSuccess ? SLM_OK : cu_fail("cudaStreamWaitEvent", e);
}

int cu_event_synchronize(void *dev, void *event)
{
    (void)dev;
    if (!event)
        return SLM_E_INVALID;
    cudaError_t e = cudaEventSynchronize((cudaEvent_t)event);
    return e == cudaSuccess ? SLM_OK : cu_fail("cudaEventSynchronize", e);
}

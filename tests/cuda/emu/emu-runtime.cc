// The emulator's runtime (emu.h): host memory, streams that run work at once,
// events that are always reached, graphs that replay recorded launches, and
// the launcher that runs a kernel's blocks in order.
#include <cstdlib>

#include "emu.h"

emu_dim threadIdx, blockIdx, blockDim, gridDim;

struct emu_launch_rec {
    void (*k)(const cu_params_t);
    unsigned grid;
    cu_params_t p;
};

struct emu_graph {
    emu_launch_rec *recs;
    size_t n, cap;
};

struct emu_stream {
    emu_graph *capture;   // non-NULL while capturing
};

static void run(void (*k)(const cu_params_t), unsigned grid, const cu_params_t &p)
{
    gridDim = {grid, 1, 1};
    blockDim = {1, 1, 1};
    threadIdx = {0, 0, 0};
    for (unsigned b = 0; b < grid; b++) {
        blockIdx = {b, 0, 0};
        k(p);
    }
}

void emu_launch(void (*k)(const cu_params_t), unsigned grid, cudaStream_t s, const cu_params_t &p)
{
    emu_graph *g = s ? s->capture : NULL;
    if (!g) {
        run(k, grid, p);
        return;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        void *r = realloc(g->recs, cap * sizeof *g->recs);
        if (!r)
            abort();
        g->recs = (emu_launch_rec *)r;
        g->cap = cap;
    }
    g->recs[g->n++] = emu_launch_rec{k, grid, p};
}

extern "C" {

const char *cudaGetErrorName(cudaError_t e)
{
    return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated";
}

const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error" : "emulated failure";
}

cudaError_t cudaGetLastError(void) { return cudaSuccess; }

// SLMOPS_CUDA_EMU_NODEV=1: the runtime finds no device (the no-GPU path).
cudaError_t cudaGetDeviceCount(int *n)
{
    const char *v = getenv("SLMOPS_CUDA_EMU_NODEV");
    *n = v && *v == '1' ? 0 : 1;
    return *n ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device)
{
    if (device != 0)
        return cudaErrorInvalidValue;
    memset(p, 0, sizeof *p);
    strcpy(p->name, "slmops CUDA emulator");
    p->totalGlobalMem = (size_t)1 << 30;
    p->major = 9;
    p->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int *v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    (void)flags;
    *s = (cudaStream_t)calloc(1, sizeof **s);
    return *s ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { (void)s; return cudaSuccess; }

cudaError_t cudaMalloc(void **p, size_t size)
{
    *p = malloc(size);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaMallocHost(void **p, size_t size) { return cudaMalloc(p, size); }
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t size, enum cudaMemcpyKind kind,
                            cudaStream_t s)
{
    (void)kind;
    (void)s;
    memcpy(dst, src, size);
    return cudaSuccess;
}

cudaError_t cudaMemcpyPeerAsync(void *dst, int dst_dev, const void *src, int src_dev, size_t size,
                                cudaStream_t s)
{
    (void)dst_dev;
    (void)src_dev;
    return cudaMemcpyAsync(dst, src, size, cudaMemcpyDefault, s);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t size, cudaStream_t s)
{
    (void)s;
    memset(p, value, size);
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags)
{
    (void)flags;
    *e = (cudaEvent_t)malloc(1);
    return *e ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { (void)e; (void)s; return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned f)
{
    (void)s;
    (void)e;
    (void)f;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { (void)e; return cudaSuccess; }

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode)
{
    (void)mode;
    if (s->capture)
        return cudaErrorInvalidValue;
    s->capture = (emu_graph *)calloc(1, sizeof *s->capture);
    return s->capture ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    *g = s->capture;
    s->capture = NULL;
    return *g ? cudaSuccess : cudaErrorStreamCaptureInvalidated;
}

// The executable graph is the graph itself; destroying both frees it once.
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long f)
{
    (void)f;
    *x = g;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s)
{
    (void)s;
    for (size_t i = 0; i < x->n; i++)
        run(x->recs[i].k, x->recs[i].grid, x->recs[i].p);
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) { (void)x; return cudaSuccess; }

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    if (g)
        free(g->recs);
    free(g);
    return cudaSuccess;
}
}

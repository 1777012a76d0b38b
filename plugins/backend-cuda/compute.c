/* graph_compute of the CUDA backend (every node's kernels queued on the device's
 * stream, then one wait) and graph_record/replay (CUDA graphs, see capture_after). */
#include <stdlib.h>
#include <string.h>

#include "cu.h"

typedef struct cu_graph {
    slm_node_t *nodes;           /* copies: fixed until release (the contract) */
    const slm_node_t **ptrs;
    size_t n;
    int replays;
    bool no_capture;             /* capture failed once: launch node by node */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    char *scratch;               /* the recording's own: the device's may move */
    uint64_t scratch_size;
} cu_graph_t;

/* By compute time every operand must be in one of this backend's buffers. */
static bool buffers_bound(const slm_node_t *n)
{
    if (!n->dst.buffer)
        return false;
    for (int i = 0; i < n->n_src; i++)
        if (!n->src[i].buffer)
            return false;
    return true;
}

static int check_nodes(void *dev, const slm_node_t *const *nodes, size_t n_nodes,
                       uint64_t *scratch_bytes)
{
    *scratch_bytes = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        if (!cu_supports_node(dev, nodes[i]) || !buffers_bound(nodes[i])) {
            cu_log(SLM_LOG_ERROR, "node %zu (op %d) is not supported", i, nodes[i] ? nodes[i]->op : -1);
            return SLM_E_UNSUPPORTED;
        }
        uint64_t s = cu_node_scratch(nodes[i]) * 4;
        if (s > *scratch_bytes)
            *scratch_bytes = s;
    }
    return SLM_OK;
}

static int launch_all(const slm_node_t *const *nodes, size_t n_nodes, char *scratch,
                      cudaStream_t stream)
{
    for (size_t i = 0; i < n_nodes; i++)
        for (int ph = 0; ph < cu_node_phases(nodes[i]); ph++) {
            int rc = cu_node_launch(nodes[i], ph, scratch, stream);
            if (rc)
                return rc;
        }
    return SLM_OK;
}

int cu_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n_nodes)
{
    cu_device_t *d = dev;
    if (!d || (n_nodes && !nodes))
        return SLM_E_INVALID;
    uint64_t scratch;
    int rc = check_nodes(dev, nodes, n_nodes, &scratch);
    if (rc || !n_nodes)
        return rc;
    if ((rc = cu_use(d)) || (rc = cu_scratch_reserve(&d->scratch, &d->scratch_size, scratch)) ||
        (rc = launch_all(nodes, n_nodes, d->scratch, d->stream)))
        return rc;
    return cu_synchronize(d);
}

/* Replays of one recording before it is captured. A recording the host drops
 * after one step (a decode step moves the KV cache's view: a new recording each
 * token) is never worth an instantiation; one replayed again (training steps) is.
 * SLMOPS_CUDA_GRAPHS=0: never capture; 1: capture at the first replay. */
static int capture_after(void)
{
    const char *v = getenv("SLMOPS_CUDA_GRAPHS");
    if (v && strcmp(v, "0") == 0)
        return -1;
    return v && strcmp(v, "1") == 0 ? 1 : 3;
}

void cu_graph_release(void *dev, void *graph)
{
    cu_device_t *d = dev;
    cu_graph_t *g = graph;
    if (!g)
        return;
    if (d && cu_use(d) == SLM_OK)
        cudaStreamSynchronize(d->stream);
    if (g->exec)
        cudaGraphExecDestroy(g->exec);
    if (g->graph)
        cudaGraphDestroy(g->graph);
    cudaFree(g->scratch);
    free(g->nodes);
    free(g->ptrs);
    free(g);
}

int cu_graph_record(void *dev, const slm_node_t *const *nodes, size_t n_nodes, void **graph)
{
    cu_device_t *d = dev;
    if (!d || !graph || (n_nodes && !nodes))
        return SLM_E_INVALID;
    *graph = NULL;
    if (capture_after() < 0 || !n_nodes)
        return SLM_E_UNSUPPORTED;
    uint64_t scratch;
    int rc = check_nodes(dev, nodes, n_nodes, &scratch);
    if (rc || (rc = cu_use(d)))
        return rc;
    cu_graph_t *g = calloc(1, sizeof *g);
    if (!g || !(g->nodes = malloc(n_nodes * sizeof *g->nodes)) ||
        !(g->ptrs = malloc(n_nodes * sizeof *g->ptrs))) {
        cu_graph_release(NULL, g);
        return SLM_E_NOMEM;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        g->nodes[i] = *nodes[i];
        g->ptrs[i] = &g->nodes[i];
    }
    g->n = n_nodes;
    if ((rc = cu_scratch_reserve(&g->scratch, &g->scratch_size, scratch))) {
        cu_graph_release(NULL, g);
        return rc;
    }
    *graph = g;
    return SLM_OK;
}

/* Capture g's launches. A failure is the driver's, not the nodes' (an old driver,
 * a launch capture refuses): g then launches node by node. */
static void capture(cu_device_t *d, cu_graph_t *g)
{
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeThreadLocal);
    int rc = SLM_OK;
    if (e == cudaSuccess) {
        rc = launch_all(g->ptrs, g->n, g->scratch, d->stream);
        e = cudaStreamEndCapture(d->stream, &graph);
    }
    if (e == cudaSuccess && !rc)
        e = cudaGraphInstantiateWithFlags(&g->exec, graph, 0);
    if (e == cudaSuccess && !rc) {
        g->graph = graph;
        return;
    }
    cu_log(SLM_LOG_DEBUG, "graph capture failed (%s): launching node by node",
           e != cudaSuccess ? cudaGetErrorString(e) : "a launch failed");
    cudaGetLastError();   /* clear the error the capture left */
    if (graph)
        cudaGraphDestroy(graph);
    g->exec = NULL;
    g->no_capture = true;
}

int cu_graph_replay(void *dev, void *graph)
{
    cu_device_t *d = dev;
    cu_graph_t *g = graph;
    if (!d || !g)
        return SLM_E_INVALID;
    int rc = cu_use(d);
    if (rc)
        return rc;
    if (!g->exec && !g->no_capture && ++g->replays >= capture_after())
        capture(d, g);
    if (!g->exec) {
        rc = launch_all(g->ptrs, g->n, g->scratch, d->stream);
        return rc ? rc : cu_synchronize(d);
    }
    cudaError_t e = cudaGraphLaunch(g->exec, d->stream);
    if (e != cudaSuccess)
        return cu_fail("cudaGraphLaunch", e);
    return cu_synchronize(d);
}

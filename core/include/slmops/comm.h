/* Communication between the processes of one data-parallel job: rank and size, a sum
 * of f32 arrays, a broadcast and a barrier, each bounded by a deadline.
 *
 * slm_comm_open joins the job a launcher (mpirun, srun) started when a communication
 * plugin (docs/decisions.md, D36) recognises the launcher's environment; otherwise it
 * gives a single process (rank 0 of 1) whose collectives return at once. A collective
 * that does not complete within the deadline (SLMOPS_COMM_TIMEOUT seconds, default
 * 20) fails with a message naming the ranks that never reached it: a rank that died
 * or hangs stops the job instead of hanging it. After a failed collective the object
 * can only be closed (with failed = true). */
#ifndef SLMOPS_COMM_H
#define SLMOPS_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <slmops/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slm_comm slm_comm_t;

/* What the collectives cost so far (for reports and bench/train-mpi). */
typedef struct slm_comm_stats {
    uint32_t struct_size;
    uint64_t collectives;      /* calls of the three collectives */
    uint64_t bytes_reduced;    /* bytes of this rank's arrays summed by allreduce */
    double seconds;            /* wall time spent inside collectives, waiting included */
} slm_comm_stats_t;

/* One per process: a second open while the first is in use answers the same object
 * (counted: close it as often). SLM_E_PLUGIN when a launcher was recognised but its
 * plugin cannot start (the message says why): running alone then would have every
 * process write the same outputs. */
int slm_comm_open(slm_comm_t **out, slm_error_t *err);
/* failed: the job failed (a collective may be pending), so the plugin does not wait
 * for the other ranks to finish; the launcher ends them when this process exits. */
void slm_comm_close(slm_comm_t *c, bool failed);

int slm_comm_rank(const slm_comm_t *c);
int slm_comm_size(const slm_comm_t *c);
/* "single", or the plugin's name ("comm-mpi"). */
const char *slm_comm_name(const slm_comm_t *c);

/* buf[0..n) becomes the element-wise sum over every rank's buf (same n everywhere). */
int slm_comm_allreduce_f32(slm_comm_t *c, float *buf, size_t n, slm_error_t *err);
/* buf[0..size) becomes rank root's bytes on every rank. */
int slm_comm_broadcast(slm_comm_t *c, void *buf, size_t size, int root, slm_error_t *err);
/* Every rank waits for the others, up to timeout_s seconds (0: the collective timeout),
 * e.g. longer while rank 0 alone prepares what the others read. */
int slm_comm_barrier(slm_comm_t *c, double timeout_s, slm_error_t *err);
void slm_comm_get_stats(const slm_comm_t *c, slm_comm_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif

/* The process's communication object: a single process (rank 0 of 1) or a plugin's
 * collectives, with the deadline, the statistics and the error reporting around them. */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm.h"
#include "internal/util.h"

#define DEFAULT_TIMEOUT_S 20.0

struct slm_comm {
    slm__comm_plugin_t pl;
    void *ctx;
    int rank, size, users;
    bool broken;               /* a collective failed: only close is left */
    bool finished;             /* the engine was shut down: it cannot start again */
    slm_comm_stats_t st;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slm_comm the_comm;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* SLMOPS_COMM_TIMEOUT: seconds a collective may wait for the slowest rank. */
static int timeout_of(double *out, slm_error_t *err)
{
    const char *s = slm__getenv("SLMOPS_COMM_TIMEOUT");
    *out = DEFAULT_TIMEOUT_S;
    if (!s || !*s)
        return SLM_OK;
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0) || !isfinite(v))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "SLMOPS_COMM_TIMEOUT=%s is not a number "
                         "of seconds above 0: unset it or give e.g. 20", s);
    *out = v;
    return SLM_OK;
}

static int start(struct slm_comm *c, slm_error_t *err)
{
    double timeout;
    int rc = timeout_of(&timeout, err);
    if (rc == SLM_OK)
        rc = slm__comm_find(&c->pl, err);
    if (rc)
        return rc;
    c->rank = 0;
    c->size = 1;
    if (!c->pl.ifc)
        return SLM_OK;
    char why[512] = "";
    c->ctx = c->pl.ifc->init(timeout, &c->rank, &c->size, why, sizeof why);
    if (!c->ctx || c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return slm__fail(err, SLM_E_PLUGIN, NULL, -1, "%s: cannot join the launched job: %s",
                         c->pl.ifc->name, why[0] ? why : "no reason given");
    slm_log(SLM_LOG_INFO, "comm", "%s: rank %d of %d (collective timeout %g s)",
            c->pl.ifc->name, c->rank, c->size, timeout);
    return SLM_OK;
}

int slm_comm_open(slm_comm_t **out, slm_error_t *err)
{
    *out = NULL;
    pthread_mutex_lock(&lock);
    struct slm_comm *c = &the_comm;
    int rc = SLM_OK;
    if (c->finished)
        rc = slm__fail(err, SLM_E_STATE, NULL, -1, "comm: the job's communication already "
                       "ended in this process; a process joins one launched job");
    else if (c->users == 0 && (rc = start(c, err)) != SLM_OK)
        memset(c, 0, sizeof *c);
    if (rc == SLM_OK) {
        c->users++;
        *out = c;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void slm_comm_close(slm_comm_t *c, bool failed)
{
    if (!c)
        return;
    pthread_mutex_lock(&lock);
    if (--c->users == 0 && c->ctx) {
        c->pl.ifc->finish(c->ctx, failed || c->broken);
        c->ctx = NULL;
        c->finished = true;   /* MPI, for one, cannot be initialised twice */
    }
    pthread_mutex_unlock(&lock);
}

int slm_comm_rank(const slm_comm_t *c)
{
    return c ? c->rank : 0;
}

int slm_comm_size(const slm_comm_t *c)
{
    return c ? c->size : 1;
}

const char *slm_comm_name(const slm_comm_t *c)
{
    return c && c->pl.ifc ? c->pl.ifc->name : "single";
}

/* Runs one collective of the plugin, timed; a failure breaks the object. */
#define COLLECTIVE(c, err, what, call)                                                       \
    do {                                                                                     \
        if ((c)->broken)                                                                     \
            return slm__fail(err, SLM_E_STATE, NULL, -1, "comm: an earlier collective "      \
                             "failed; the job must stop");                                   \
        char why[512] = "";                                                                  \
        double t0 = now();                                                                   \
        int prc = (call);                                                                    \
        (c)->st.seconds += now() - t0;                                                       \
        (c)->st.collectives++;                                                               \
        if (prc) {                                                                           \
            (c)->broken = true;                                                              \
            return slm__fail(err, SLM_E_IO, NULL, -1, "rank %d of %d: %s failed: %s",        \
                             (c)->rank, (c)->size, what, why[0] ? why : "no reason given");  \
        }                                                                                    \
    } while (0)

int slm_comm_allreduce_f32(slm_comm_t *c, float *buf, size_t n, slm_error_t *err)
{
    if (!c || c->size == 1 || n == 0)
        return SLM_OK;
    COLLECTIVE(c, err, "a sum over the ranks",
               c->pl.ifc->allreduce_f32(c->ctx, buf, n, why, sizeof why));
    c->st.bytes_reduced += n * sizeof *buf;
    return SLM_OK;
}

int slm_comm_broadcast(slm_comm_t *c, void *buf, size_t size, int root, slm_error_t *err)
{
    if (c && (root < 0 || root >= c->size))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "comm: broadcast from rank %d of %d",
                         root, c->size);
    if (!c || c->size == 1 || size == 0)
        return SLM_OK;
    COLLECTIVE(c, err, "broadcast", c->pl.ifc->broadcast(c->ctx, buf, size, root, why,
                                                         sizeof why));
    return SLM_OK;
}

int slm_comm_barrier(slm_comm_t *c, double timeout_s, slm_error_t *err)
{
    if (!c || c->size == 1)
        return SLM_OK;
    COLLECTIVE(c, err, "barrier", c->pl.ifc->barrier(c->ctx, timeout_s, why, sizeof why));
    return SLM_OK;
}

void slm_comm_get_stats(const slm_comm_t *c, slm_comm_stats_t *st)
{
    uint32_t size = st->struct_size ? st->struct_size : sizeof *st;
    slm_comm_stats_t s = c ? c->st : (slm_comm_stats_t){0};
    s.struct_size = size < sizeof s ? size : (uint32_t)sizeof s;
    memcpy(st, &s, s.struct_size);
}

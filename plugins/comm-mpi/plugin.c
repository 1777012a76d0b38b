/* The MPI communication plugin: the core's collectives as MPI nonblocking collectives
 * on a duplicate of MPI_COMM_WORLD, each waited for with a deadline (a watchdog). */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include <slmops/plugin-comm.h>

/* Tag of the arrival notices: before each collective a rank tells every other rank
 * the collective's number, so that a rank whose deadline passed can name who is
 * missing (MPI itself only says that the collective did not complete). */
#define TAG_ARRIVED 7301
/* When every rank reached a collective that still does not complete, the waiting
 * ranks ping each other: one stopped inside the collective (SIGSTOP, a debugger, a
 * swapped-out host) does not answer, and is named. */
#define TAG_PING 7302
#define TAG_PONG 7303
#define PING_WAIT_S 2.0

typedef struct ctx {
    MPI_Comm comm;
    int rank, size;
    double timeout;
    long long seq;             /* collectives started by this rank */
    long long *seen;           /* the latest number each rank said it reached */
    long long *note;           /* the number in flight to each rank (send buffers) */
    MPI_Request *note_req;
} ctx_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void mpi_why(int code, const char *what, char *why, size_t size)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof s, "MPI error %d", code);
    snprintf(why, size, "%s: %s", what, s);
}

/* Tell every rank we reached collective c->seq; a notice still in flight to a slow
 * rank is not replaced (its buffer is busy, and the rank is behind anyway). */
static void announce(ctx_t *c)
{
    c->seq++;
    c->seen[c->rank] = c->seq;
    for (int p = 0; p < c->size; p++) {
        if (p == c->rank)
            continue;
        int done = 1;
        if (c->note_req[p] != MPI_REQUEST_NULL)
            MPI_Test(&c->note_req[p], &done, MPI_STATUS_IGNORE);
        if (!done)
            continue;
        c->note[p] = c->seq;
        MPI_Isend(&c->note[p], 1, MPI_LONG_LONG, p, TAG_ARRIVED, c->comm, &c->note_req[p]);
    }
}

static void drain_notices(ctx_t *c)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ARRIVED, c->comm, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        long long v = 0;
        if (MPI_Recv(&v, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_ARRIVED, c->comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return;
        if (v > c->seen[st.MPI_SOURCE])
            c->seen[st.MPI_SOURCE] = v;
    }
}

/* Answer the pings of ranks checking that this one is alive (see TAG_PING). */
static void answer_pings(ctx_t *c)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_PING, c->comm, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        long long v = 0;
        if (MPI_Recv(&v, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_PING, c->comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return;
        MPI_Send(&v, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_PONG, c->comm);
    }
}

/* Ping every other rank and wait up to PING_WAIT_S for the answers; buf gets "rank 1"
 * or "ranks 1, 3" that did not answer ("" if all did). */
static void silent_ranks(ctx_t *c, char *buf, size_t size)
{
    long long *ping = calloc((size_t)c->size, sizeof *ping);
    char *answered = calloc((size_t)c->size, 1);
    MPI_Request *req = malloc((size_t)c->size * sizeof *req);
    buf[0] = '\0';
    if (!ping || !answered || !req)
        goto out;
    int waiting = 0;
    for (int p = 0; p < c->size; p++) {
        req[p] = MPI_REQUEST_NULL;
        if (p == c->rank)
            continue;
        ping[p] = c->seq;
        if (MPI_Isend(&ping[p], 1, MPI_LONG_LONG, p, TAG_PING, c->comm, &req[p]) == MPI_SUCCESS)
            waiting++;
    }
    double deadline = now() + PING_WAIT_S;
    while (waiting > 0 && now() < deadline) {
        answer_pings(c);
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_PONG, c->comm, &flag, &st) == MPI_SUCCESS && flag) {
            long long v = 0;
            MPI_Recv(&v, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_PONG, c->comm, MPI_STATUS_IGNORE);
            if (!answered[st.MPI_SOURCE]++)
                waiting--;
            continue;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    size_t len = 0;
    int n = 0;
    for (int p = 0; p < c->size && len < size; p++)
        if (p != c->rank && !answered[p])
            len += (size_t)snprintf(buf + len, size - len, "%s%d", n++ ? ", " : "", p);
    if (n) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s %s", n > 1 ? "ranks" : "rank", buf);
        snprintf(buf, size, "%s", tmp);
    }
    /* Unanswered pings stay posted: the job is ending, MPI_Finalize is skipped. */
out:
    free(ping);
    free(answered);
    free(req);
}

/* "rank 1" or "ranks 1, 3" that have not announced collective c->seq. */
static void missing_ranks(const ctx_t *c, char *buf, size_t size)
{
    size_t len = 0;
    int n = 0;
    buf[0] = '\0';
    for (int p = 0; p < c->size && len < size; p++)
        if (c->seen[p] < c->seq)
            len += (size_t)snprintf(buf + len, size - len, "%s%d", n++ ? ", " : "", p);
    if (n > 1) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "ranks %s", buf);
        snprintf(buf, size, "%s", tmp);
    } else if (n == 1) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "rank %s", buf);
        snprintf(buf, size, "%s", tmp);
    }
}

/* Polls req until it completes or the deadline passes. Spins briefly, then sleeps
 * 0.1 ms between polls so that a waiting rank leaves the cores to computing ones. */
static int wait_for(ctx_t *c, MPI_Request *req, double timeout, const char *what, char *why,
                    size_t size)
{
    double deadline = now() + timeout;
    for (long polls = 0;; polls++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            mpi_why(rc, what, why, size);
            return 1;
        }
        if (done || (polls & 63) == 0) {
            drain_notices(c);
            answer_pings(c);
        }
        if (done)
            return 0;
        if (polls > 2000) {
            if (now() > deadline)
                break;
            nanosleep(&(struct timespec){0, 100000}, NULL);
        }
    }
    drain_notices(c);
    char who[256];
    missing_ranks(c, who, sizeof who);
    if (who[0]) {
        snprintf(why, size, "%s did not reach collective %lld (%s) within %g s: it died or "
                 "hangs; the job stops (resume from its last checkpoint)", who, c->seq, what,
                 timeout);
        return 1;
    }
    silent_ranks(c, who, sizeof who);
    if (who[0])
        snprintf(why, size, "%s stopped answering inside collective %lld (%s), which did not "
                 "complete within %g s: it hangs; the job stops (resume from its last "
                 "checkpoint)", who, c->seq, what, timeout);
    else
        snprintf(why, size, "collective %lld (%s) did not complete within %g s although every "
                 "rank reached it (a network fault?); the job stops", c->seq, what, timeout);
    return 1;
}

static void *init(double timeout_s, int *rank, int *size, char *why, size_t why_size)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        snprintf(why, why_size, "MPI_Init_thread failed");
        return NULL;
    }
    ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    /* Errors come back as codes (reported with the rank), never abort on their own. */
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->timeout = timeout_s;
    c->seen = calloc((size_t)c->size, sizeof *c->seen);
    c->note = calloc((size_t)c->size, sizeof *c->note);
    c->note_req = malloc((size_t)c->size * sizeof *c->note_req);
    if (!c->seen || !c->note || !c->note_req) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    for (int p = 0; p < c->size; p++)
        c->note_req[p] = MPI_REQUEST_NULL;
    *rank = c->rank;
    *size = c->size;
    return c;
}

static int allreduce_f32(void *ctx, float *buf, size_t n, char *why, size_t why_size)
{
    ctx_t *c = ctx;
    for (size_t off = 0; off < n;) {
        int k = n - off > INT_MAX / 2 ? INT_MAX / 2 : (int)(n - off);
        MPI_Request req;
        announce(c);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + off, k, MPI_FLOAT, MPI_SUM, c->comm, &req);
        if (rc != MPI_SUCCESS) {
            mpi_why(rc, "MPI_Iallreduce", why, why_size);
            return 1;
        }
        if (wait_for(c, &req, c->timeout, "allreduce", why, why_size))
            return 1;
        off += (size_t)k;
    }
    return 0;
}

static int broadcast(void *ctx, void *buf, size_t size, int root, char *why, size_t why_size)
{
    ctx_t *c = ctx;
    for (size_t off = 0; off < size;) {
        int k = size - off > INT_MAX / 2 ? INT_MAX / 2 : (int)(size - off);
        MPI_Request req;
        announce(c);
        int rc = MPI_Ibcast((char *)buf + off, k, MPI_BYTE, root, c->comm, &req);
        if (rc != MPI_SUCCESS) {
            mpi_why(rc, "MPI_Ibcast", why, why_size);
            return 1;
        }
        if (wait_for(c, &req, c->timeout, "broadcast", why, why_size))
            return 1;
        off += (size_t)k;
    }
    return 0;
}

static int barrier(void *ctx, double timeout_s, char *why, size_t why_size)
{
    ctx_t *c = ctx;
    MPI_Request req;
    announce(c);
    int rc = MPI_Ibarrier(c->comm, &req);
    if (rc != MPI_SUCCESS) {
        mpi_why(rc, "MPI_Ibarrier", why, why_size);
        return 1;
    }
    return wait_for(c, &req, timeout_s > 0 ? timeout_s : c->timeout, "barrier", why, why_size);
}

/* A clean end: every rank reaches the barrier, so every notice sent has a receiver
 * waiting; they are drained before MPI_Finalize. */
static void finish(void *ctx, int failed)
{
    ctx_t *c = ctx;
    char why[256];
    if (!failed && barrier(c, 0, why, sizeof why) == 0) {
        for (int p = 0; p < c->size; p++)
            if (c->note_req[p] != MPI_REQUEST_NULL)
                MPI_Wait(&c->note_req[p], MPI_STATUS_IGNORE);
        drain_notices(c);
        MPI_Barrier(c->comm);
        drain_notices(c);
        MPI_Comm_free(&c->comm);
        MPI_Finalize();
    }
    /* failed: no MPI_Finalize, which would wait for ranks that may be gone; the
     * process exits with an error and the launcher ends the others. */
    free(c->seen);
    free(c->note);
    free(c->note_req);
    free(c);
}

static const slm_comm_iface_t iface = {
    .struct_size = sizeof(slm_comm_iface_t),
    .iface_version = SLM_COMM_IFACE_VERSION,
    .name = "comm-mpi",
    .init = init,
    .allreduce_f32 = allreduce_f32,
    .broadcast = broadcast,
    .barrier = barrier,
    .finish = finish,
};

__attribute__((visibility("default"))) const slm_comm_iface_t *slm_comm_entry(uint32_t host)
{
    return host >= 1 ? &iface : NULL;
}

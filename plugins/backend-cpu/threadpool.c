/* Persistent worker threads for the CPU backend. A waiting thread spins for a short,
 * time-bounded while, yields, then sleeps (futex on Linux) so a loaded machine is not starved. */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "threadpool.h"

#define CPU_MAX_THREADS 512
/* How long a waiter spins adapts, per thread, between these bounds: it doubles when
 * the partner arrived while spinning and halves when the waiter had to sleep. On an
 * idle machine the partners meet within the spin and nobody sleeps (a futex round
 * trip costs more than a decode node); on a loaded one the partner is often
 * preempted, and burning the core it may be queued on only delays it. Measured on a
 * loaded 2-core machine, a fixed 30 us spin decoded 1.5-2x slower than 2 us. */
#define CPU_SPIN_MIN_NS 2000
#define CPU_SPIN_MAX_NS 200000
/* After the spin, yielding this long lets a partner queued on our core run. */
#define CPU_YIELD_NS 10000
/* Inside a graph, a barrier waiter spins this long, whatever the adaptive spin says:
 * the partner is mid-graph and will come. Beside a busy process (2 cores, one busy
 * loop) a waiter that yielded or slept gave its core away at every barrier and decode
 * ran at a third of the speed it has spinning (measured: 23 -> 69 t/s, q4_0 135M);
 * between graphs (a worker waiting for work) the adaptive spin, then sleep, stays. */
#define CPU_BARRIER_SPIN_NS 5000000

static _Thread_local int64_t spin_ns = CPU_SPIN_MAX_NS / 4;
/* Wait counters per thread, one 64-byte line each. */
#define WAIT_STRIDE (64 / sizeof(atomic_llong))
/* This thread's index in the pool it works for (the caller of cpu_pool_run: 0). */
static _Thread_local int my_ith;

struct cpu_pool {
    int n;
    pthread_t *threads;
    cpu_task_fn fn;
    void *arg;
    /* Each on its own cache line: workers poll job_gen while the barrier counts. */
    _Alignas(64) atomic_uint job_gen;
    atomic_bool stop;
    _Alignas(64) atomic_int bar_count;
    _Alignas(64) atomic_uint bar_gen;
    _Alignas(64) atomic_int sleepers;
    /* Per thread, a cache line apart: nanoseconds spent waiting at barriers since
     * cpu_pool_take_wait (a worker's wait at the end of a run may land after the
     * caller has read it: take before a run too, to start from zero). */
    atomic_llong *wait_ns;
#ifndef __linux__
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
};

typedef struct worker_arg {
    cpu_pool_t *pool;
    int ith;
} worker_arg_t;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleep while *w == seen. Callers have announced themselves in pool->sleepers. */
static void sleep_on(cpu_pool_t *pool, atomic_uint *w, unsigned seen)
{
#ifdef __linux__
    (void)pool;
    while (atomic_load(w) == seen)
        syscall(SYS_futex, (unsigned *)w, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    pthread_mutex_lock(&pool->mu);
    while (atomic_load(w) == seen)
        pthread_cond_wait(&pool->cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
#endif
}

static void wake_all(cpu_pool_t *pool, atomic_uint *w)
{
#ifdef __linux__
    (void)pool;
    syscall(SYS_futex, (unsigned *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)w;
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
#endif
}

static void spin_result(bool arrived)
{
    if (arrived)
        spin_ns = spin_ns * 2 > CPU_SPIN_MAX_NS ? CPU_SPIN_MAX_NS : spin_ns * 2;
    else
        spin_ns = spin_ns / 2 < CPU_SPIN_MIN_NS ? CPU_SPIN_MIN_NS : spin_ns / 2;
}

/* Wait until *gen differs from seen: spin (at least min_spin_ns), then yield, then
 * sleep. */
static void wait_change(cpu_pool_t *pool, atomic_uint *gen, unsigned seen, int64_t min_spin_ns)
{
    for (int i = 0; i < 64; i++) {
        if (atomic_load_explicit(gen, memory_order_acquire) != seen)
            return;
        cpu_relax();
    }
    int64_t t0 = cpu_now_ns(), t;
    do {
        for (int i = 0; i < 32; i++) {
            if (atomic_load_explicit(gen, memory_order_acquire) != seen) {
                spin_result(true);
                return;
            }
            cpu_relax();
        }
        t = cpu_now_ns() - t0;
        if (t > spin_ns && t > min_spin_ns)
            sched_yield();
    } while (t < spin_ns + CPU_YIELD_NS || t < min_spin_ns);
    spin_result(false);
    /* seq_cst on both sides: either the publisher sees us counted, or we see its
     * new generation here and do not sleep. */
    atomic_fetch_add(&pool->sleepers, 1);
    sleep_on(pool, gen, seen);
    atomic_fetch_sub(&pool->sleepers, 1);
}

/* Publish a new generation; the futex call is made only when someone sleeps. */
static void bump(cpu_pool_t *pool, atomic_uint *gen)
{
#ifndef __linux__
    pthread_mutex_lock(&pool->mu);
#endif
    atomic_fetch_add(gen, 1);
#ifndef __linux__
    pthread_mutex_unlock(&pool->mu);
#endif
    if (atomic_load(&pool->sleepers) > 0)
        wake_all(pool, gen);
}

void cpu_pool_barrier(cpu_pool_t *pool)
{
    if (!pool || pool->n <= 1)
        return;
    unsigned gen = atomic_load_explicit(&pool->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->bar_count, 1, memory_order_acq_rel) == pool->n - 1) {
        atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
        bump(pool, &pool->bar_gen);
        return;
    }
    int64_t t0 = cpu_now_ns();
    wait_change(pool, &pool->bar_gen, gen, CPU_BARRIER_SPIN_NS);
    atomic_fetch_add_explicit(&pool->wait_ns[my_ith * WAIT_STRIDE], cpu_now_ns() - t0,
                              memory_order_relaxed);
}

int64_t cpu_pool_take_wait(cpu_pool_t *pool)
{
    int64_t most = 0;
    for (int i = 0; i < pool->n; i++) {
        int64_t w = atomic_exchange_explicit(&pool->wait_ns[i * WAIT_STRIDE], 0,
                                            memory_order_relaxed);
        most = w > most ? w : most;
    }
    return most;
}

static void *worker_main(void *p)
{
    worker_arg_t *wa = p;
    cpu_pool_t *pool = wa->pool;
    int ith = wa->ith;
    free(wa);
    my_ith = ith;
    unsigned seen = 0;
    for (;;) {
        wait_change(pool, &pool->job_gen, seen, 0);
        seen = atomic_load_explicit(&pool->job_gen, memory_order_acquire);
        if (atomic_load(&pool->stop))
            return NULL;
        pool->fn(pool->arg, ith, pool->n);
        cpu_pool_barrier(pool);   /* tells the caller this thread is done */
    }
}

int cpu_online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > CPU_MAX_THREADS ? CPU_MAX_THREADS : (int)n);
}

/* Worker threads take no process-directed signals (SIGINT, SIGTERM, ...): those go
 * to the thread that can act on them (the CLI's clean-up handler, chat's Ctrl-C).
 * Faults a thread causes itself still reach it. */
static int create_quiet_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static bool start_worker(cpu_pool_t *pool, int ith)
{
    worker_arg_t *wa = malloc(sizeof *wa);
    if (!wa)
        return false;
    wa->pool = pool;
    wa->ith = ith;
    if (create_quiet_thread(&pool->threads[ith], worker_main, wa) != 0) {
        free(wa);
        return false;
    }
    return true;
}

cpu_pool_t *cpu_pool_new(int n_threads)
{
    if (n_threads <= 0)
        n_threads = cpu_online_cores();
    if (n_threads > CPU_MAX_THREADS)
        n_threads = CPU_MAX_THREADS;
    cpu_pool_t *pool = NULL;
    if (posix_memalign((void **)&pool, 64, sizeof *pool) != 0)
        return NULL;
    *pool = (cpu_pool_t){0};
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (posix_memalign((void **)&pool->wait_ns, 64,
                       (size_t)n_threads * WAIT_STRIDE * sizeof *pool->wait_ns) == 0)
        memset(pool->wait_ns, 0, (size_t)n_threads * WAIT_STRIDE * sizeof *pool->wait_ns);
    else
        pool->wait_ns = NULL;
    if (!pool->threads || !pool->wait_ns) {
        free(pool->threads);
        free(pool->wait_ns);
        free(pool);
        return NULL;
    }
#ifndef __linux__
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
#endif
    /* Thread 0 is the caller; a worker that cannot start shrinks the pool. */
    pool->n = 1;
    for (int i = 1; i < n_threads; i++) {
        if (!start_worker(pool, i))
            break;
        pool->n = i + 1;
    }
    return pool;
}

void cpu_pool_free(cpu_pool_t *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->stop, true);
    bump(pool, &pool->job_gen);
    for (int i = 1; i < pool->n; i++)
        pthread_join(pool->threads[i], NULL);
#ifndef __linux__
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
#endif
    free(pool->threads);
    free(pool->wait_ns);
    free(pool);
}

int cpu_pool_size(const cpu_pool_t *pool)
{
    return pool->n;
}

void cpu_pool_run(cpu_pool_t *pool, cpu_task_fn fn, void *arg)
{
    if (pool->n <= 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    my_ith = 0;
    bump(pool, &pool->job_gen);
    fn(arg, 0, pool->n);
    cpu_pool_barrier(pool);
}

/* Persistent worker threads for the CPU backend: workers spin briefly (nodes follow
 * each other fast) and then sleep on a condition variable so idle pools cost nothing. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "threadpool.h"

/* Rough bound of a few tens of microseconds before a waiting thread sleeps. */
#define CPU_SPIN_ITERS 4000
#define CPU_MAX_THREADS 512

struct cpu_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t job_cv;
    pthread_cond_t bar_cv;
    cpu_task_fn fn;
    void *arg;
    atomic_uint job_gen;
    atomic_bool stop;
    atomic_int bar_count;
    atomic_uint bar_gen;
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

/* Wait until *gen differs from seen: spin, then sleep on cv. */
static void wait_change(cpu_pool_t *pool, atomic_uint *gen, unsigned seen, pthread_cond_t *cv)
{
    for (int i = 0; i < CPU_SPIN_ITERS; i++) {
        if (atomic_load_explicit(gen, memory_order_acquire) != seen)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->mu);
    while (atomic_load_explicit(gen, memory_order_acquire) == seen)
        pthread_cond_wait(cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}

/* Publish under the mutex so a thread about to sleep cannot miss the change. */
static void bump(cpu_pool_t *pool, atomic_uint *gen, pthread_cond_t *cv)
{
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(&pool->mu);
}

void cpu_pool_barrier(cpu_pool_t *pool)
{
    if (pool->n <= 1)
        return;
    unsigned gen = atomic_load_explicit(&pool->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->bar_count, 1, memory_order_acq_rel) == pool->n - 1) {
        atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
        bump(pool, &pool->bar_gen, &pool->bar_cv);
        return;
    }
    wait_change(pool, &pool->bar_gen, gen, &pool->bar_cv);
}

static void *worker_main(void *p)
{
    worker_arg_t *wa = p;
    cpu_pool_t *pool = wa->pool;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        wait_change(pool, &pool->job_gen, seen, &pool->job_cv);
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

static bool start_worker(cpu_pool_t *pool, int ith)
{
    worker_arg_t *wa = malloc(sizeof *wa);
    if (!wa)
        return false;
    wa->pool = pool;
    wa->ith = ith;
    if (pthread_create(&pool->threads[ith], NULL, worker_main, wa) != 0) {
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
    cpu_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->job_cv, NULL);
    pthread_cond_init(&pool->bar_cv, NULL);
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
    bump(pool, &pool->job_gen, &pool->job_cv);
    for (int i = 1; i < pool->n; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->bar_cv);
    pthread_cond_destroy(&pool->job_cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
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
    bump(pool, &pool->job_gen, &pool->job_cv);
    fn(arg, 0, pool->n);
    cpu_pool_barrier(pool);
}

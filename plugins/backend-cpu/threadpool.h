/* The CPU backend's thread pool: persistent workers that run one task on every
 * thread at once (the caller is thread 0) and meet at barriers between nodes. */
#ifndef SLMOPS_CPU_THREADPOOL_H
#define SLMOPS_CPU_THREADPOOL_H

#include <stdint.h>

typedef struct cpu_pool cpu_pool_t;

/* Called on every thread; ith in [0, nth). */
typedef void (*cpu_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one thread per online core. NULL when out of memory. */
cpu_pool_t *cpu_pool_new(int n_threads);
void cpu_pool_free(cpu_pool_t *pool);
int cpu_pool_size(const cpu_pool_t *pool);

/* Run fn on all threads and return when every thread has finished it. */
void cpu_pool_run(cpu_pool_t *pool, cpu_task_fn fn, void *arg);

/* Inside a task: wait until every thread of the pool has reached this point.
 * NULL (an op run on one thread alone) returns at once. */
void cpu_pool_barrier(cpu_pool_t *pool);

/* The longest time one thread spent waiting at barriers since the last call, in
 * nanoseconds (and start counting again). Call between runs. */
int64_t cpu_pool_take_wait(cpu_pool_t *pool);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t cpu_now_ns(void);
/* Online cores, at least 1. */
int cpu_online_cores(void);

#endif

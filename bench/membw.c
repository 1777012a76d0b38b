/* bench/membw: this machine's memory read bandwidth, the ceiling of decode (which
 * streams every weight once per token); bench/generate reports decode as a share of it.
 * usage: bench/membw [THREADS [MIB [REPS]]]   (default 2 threads, 1024 MiB, 5 reps) */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct part {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
    pthread_barrier_t *bar;
} part_t;

/* Eight independent sums so the loop is bound by loads, not by one add chain. */
static void *reader(void *arg)
{
    part_t *t = arg;
    pthread_barrier_wait(t->bar);
    uint64_t s[8] = {0};
    for (size_t i = 0; i + 8 <= t->n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += t->p[i + k];
    t->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    pthread_barrier_wait(t->bar);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 3 ? atoi(argv[3]) : 5;
    long mib = argc > 2 ? atol(argv[2]) : 1024;
    if (threads < 1 || threads > 256 || mib < 64 || reps < 1) {
        fprintf(stderr, "usage: bench/membw [THREADS (1-256) [MIB (>= 64) [REPS]]]\n");
        return 2;
    }
    size_t bytes = (size_t)mib << 20, n = bytes / sizeof(uint64_t);
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, bytes) != 0) {
        fprintf(stderr, "bench/membw: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    double best = 0.0;
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
        pthread_t tid[256];
        part_t parts[256];
        size_t per = n / (size_t)threads / 8 * 8;
        for (int t = 0; t < threads; t++) {
            parts[t] = (part_t){buf + (size_t)t * per, per, 0, &bar};
            pthread_create(&tid[t], NULL, reader, &parts[t]);
        }
        pthread_barrier_wait(&bar);
        double t0 = now();
        pthread_barrier_wait(&bar);
        double dt = now() - t0;
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            check += parts[t].sum;
        }
        pthread_barrier_destroy(&bar);
        double gbs = (double)(per * (size_t)threads * sizeof(uint64_t)) / dt / 1e9;
        best = gbs > best ? gbs : best;
    }
    printf("membw: %d threads, %ld MiB, read %.1f GB/s (best of %d; checksum %llu)\n", threads,
           mib, best, reps, (unsigned long long)(check & 0xffff));
    free(buf);
    return 0;
}

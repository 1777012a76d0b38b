/* bench/fma-peak: this machine's f32 FMA peak in FLOP/s for N threads, the yardstick
 * bench/train divides achieved training FLOP/s by. Prints "FLOPS unit-width". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <immintrin.h>

#define CHAINS 12       /* independent accumulators: more than FMA latency x ports */
#define ITERS 20000000L

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int lanes;       /* f32 lanes of the widest FMA the CPU has */
static volatile float sink;

/* Twelve named accumulators: an array of them is kept in memory by -O2, which
 * measures loads and stores instead of the FMA units. */
#define CHAIN_STEP(F, x) x = F(x, a, b)
#define TWELVE(F)                                                                   \
    do {                                                                            \
        CHAIN_STEP(F, c0); CHAIN_STEP(F, c1); CHAIN_STEP(F, c2); CHAIN_STEP(F, c3);     \
        CHAIN_STEP(F, c4); CHAIN_STEP(F, c5); CHAIN_STEP(F, c6); CHAIN_STEP(F, c7);     \
        CHAIN_STEP(F, c8); CHAIN_STEP(F, c9); CHAIN_STEP(F, c10); CHAIN_STEP(F, c11);   \
    } while (0)

__attribute__((target("avx512f"))) static void fma512(long n)
{
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2),
           c3 = _mm512_set1_ps(3), c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5),
           c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7), c8 = _mm512_set1_ps(8),
           c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    for (long i = 0; i < n; i++)
        TWELVE(_mm512_fmadd_ps);
    __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    t = _mm512_add_ps(t, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    sink = _mm512_reduce_add_ps(t);
}

__attribute__((target("avx2,fma"))) static void fma256(long n)
{
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2),
           c3 = _mm256_set1_ps(3), c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5),
           c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7), c8 = _mm256_set1_ps(8),
           c9 = _mm256_set1_ps(9), c10 = _mm256_set1_ps(10), c11 = _mm256_set1_ps(11);
    for (long i = 0; i < n; i++)
        TWELVE(_mm256_fmadd_ps);
    __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    t = _mm256_add_ps(t, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lane[8], sum = 0;
    _mm256_storeu_ps(lane, t);
    for (int k = 0; k < 8; k++)
        sum += lane[k];
    sink = sum;
}

static void *worker(void *arg)
{
    long n = *(const long *)arg;
    if (lanes == 16)
        fma512(n);
    else
        fma256(n);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "usage: fma-peak [THREADS]\n");
        return 2;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        lanes = 16;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        lanes = 8;
    else {
        fprintf(stderr, "fma-peak: no FMA unit this program knows (AVX2+FMA or AVX-512)\n");
        return 1;
    }
    long n = ITERS / 20;
    worker(&n); /* warm up: clocks and the wide units */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t tid[1024];
        n = ITERS;
        double t0 = now();
        for (int t = 0; t < threads; t++)
            if (pthread_create(&tid[t], NULL, worker, &n) != 0) {
                fprintf(stderr, "fma-peak: cannot start thread %d\n", t);
                return 1;
            }
        for (int t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
        double flops = 2.0 * lanes * CHAINS * (double)n * threads / (now() - t0);
        best = flops > best ? flops : best;
    }
    printf("%.4e %d\n", best, lanes * 32);
    return 0;
}

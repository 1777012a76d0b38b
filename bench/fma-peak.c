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

__attribute__((target("avx512f"))) static void fma512(long n)
{
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < n; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    float s = 0;
    for (int c = 0; c < CHAINS; c++)
        s += _mm512_reduce_add_ps(acc[c]);
    sink = s;
}

__attribute__((target("avx2,fma"))) static void fma256(long n)
{
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < n; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float lane[8], s = 0;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(lane, acc[c]);
        for (int k = 0; k < 8; k++)
            s += lane[k];
    }
    sink = s;
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

/* Start-up probe: run this variant's distinctive instructions in a child process, so
 * that a CPU or kernel which lists a feature yet faults on it skips the variant. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu.h"
#include "probe.h"

#if defined(__AVX512VNNI__)
#include <immintrin.h>
#define PROBE_WHAT "VNNI"

/* One vpdpbusd whose result the compiler cannot drop. */
static int probe_body(void)
{
    volatile int seed = 3;
    __m512i a = _mm512_set1_epi8((char)seed), b = _mm512_set1_epi8(2);
    __m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, b);
    return _mm512_reduce_add_epi32(r) == 16 * 4 * 3 * 2 ? 0 : 1;
}
#endif

#ifdef PROBE_WHAT
const char *cpu_probe_isa(char *why, size_t len)
{
    pid_t pid = fork();
    if (pid < 0)
        return NULL;   /* cannot tell: trust cpuid and XCR0, as without a probe */
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        _exit(probe_body());
    }
    int st = 0;
    pid_t got;
    while ((got = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (got != pid)
        return NULL;
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        snprintf(why, len, "probe died with SIG%s: " PROBE_WHAT " unusable here, skipping",
                 sig == SIGILL ? "ILL" : sig == SIGSEGV ? "SEGV" : sig == SIGBUS ? "BUS" : "NAL");
        return why;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, len, "probe computed a wrong result: " PROBE_WHAT " unusable here, skipping");
        return why;
    }
    return NULL;
}
#else
const char *cpu_probe_isa(char *why, size_t len)
{
    return NULL;
}
#endif

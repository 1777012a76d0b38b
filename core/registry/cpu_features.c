/* CPU feature detection for manifests' requires.cpu_features: cpuid plus the
 * OS's xgetbv state, so a feature counts only when the kernel saves its registers.
 *
 * Names are those of /proc/cpuinfo's flags line ("avx2", "avx512f", "sse4_2",
 * "avx512_vnni"), with two aliases accepted by slm_cpu_has_feature:
 * "sse4.1"/"sse4.2" (Intel's spelling) and "sse3" for cpuinfo's "pni".
 * AMX ("amx_tile", "amx_int8", "amx_bf16") counts only when XCR0 enables the tile
 * state and the kernel grants this process the tile data (arch_prctl
 * ARCH_REQ_XCOMP_PERM, which Linux requires before the first tile instruction).
 * On non-x86 hosts no feature is reported. */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SLM_X86 1
#endif
#if defined(SLM_X86) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <slmops/registry.h>

#include "internal/util.h"

static char features[1024];
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void append(const char *name)
{
    size_t len = strlen(features);
    size_t add = strlen(name) + (len ? 1 : 0);
    if (len + add + 1 > sizeof features)
        return;
    if (len)
        features[len++] = ' ';
    memcpy(features + len, name, strlen(name) + 1);
}

#ifdef SLM_X86
typedef struct feature_bit {
    const char *name;
    uint8_t reg;      /* 0 eax, 1 ebx, 2 ecx, 3 edx */
    uint8_t bit;
    uint8_t state;    /* OS state needed: 0 none, 1 YMM, 2 ZMM + opmask, 3 AMX tiles */
} feature_bit_t;

/* Leaf 1 */
static const feature_bit_t leaf1[] = {
    {"sse", 3, 25, 0},     {"sse2", 3, 26, 0},    {"pni", 2, 0, 0},
    {"pclmulqdq", 2, 1, 0}, {"ssse3", 2, 9, 0},   {"fma", 2, 12, 1},
    {"sse4_1", 2, 19, 0},  {"sse4_2", 2, 20, 0},  {"popcnt", 2, 23, 0},
    {"aes", 2, 25, 0},     {"avx", 2, 28, 1},     {"f16c", 2, 29, 1},
};

/* Leaf 7, sub-leaf 0 */
static const feature_bit_t leaf7[] = {
    {"bmi1", 1, 3, 0},           {"avx2", 1, 5, 1},           {"bmi2", 1, 8, 0},
    {"avx512f", 1, 16, 2},       {"avx512dq", 1, 17, 2},      {"avx512ifma", 1, 21, 2},
    {"avx512cd", 1, 28, 2},      {"sha_ni", 1, 29, 0},        {"avx512bw", 1, 30, 2},
    {"avx512vl", 1, 31, 2},      {"avx512vbmi", 2, 1, 2},     {"avx512_vbmi2", 2, 6, 2},
    {"gfni", 2, 8, 0},           {"vaes", 2, 9, 1},           {"vpclmulqdq", 2, 10, 1},
    {"avx512_vnni", 2, 11, 2},   {"avx512_bitalg", 2, 12, 2}, {"avx512_vpopcntdq", 2, 14, 2},
    {"avx512_fp16", 3, 23, 2},
    {"amx_bf16", 3, 22, 3},      {"amx_tile", 3, 24, 3},      {"amx_int8", 3, 25, 3},
};

/* Leaf 7, sub-leaf 1 */
static const feature_bit_t leaf7_1[] = {
    {"avx_vnni", 0, 4, 1},
    {"avx512_bf16", 0, 5, 2},
};

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Which register states the OS saves and lets this process use. */
typedef struct os_state {
    bool ymm, zmm, tiles;
} os_state_t;

/* Linux hands out the 8 KiB tile data state only on request (since 5.16). */
static bool amx_permitted(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return false;
#endif
}

static void add_bits(const feature_bit_t *t, size_t n, const uint32_t r[4], const os_state_t *os)
{
    for (size_t i = 0; i < n; i++) {
        if (!(r[t[i].reg] & (1u << t[i].bit)))
            continue;
        if ((t[i].state == 1 && !os->ymm) || (t[i].state == 2 && !os->zmm) ||
            (t[i].state == 3 && !os->tiles))
            continue;
        append(t[i].name);
    }
}

static void detect(void)
{
    uint32_t r[4];
    if (!__get_cpuid(1, &r[0], &r[1], &r[2], &r[3]))
        return;
    os_state_t os = {false, false, false};
    bool tile_state = false;
    if (r[2] & (1u << 27)) {   /* OSXSAVE: xgetbv is usable */
        uint64_t xcr0 = read_xcr0();
        os.ymm = (xcr0 & 0x6) == 0x6;               /* XMM + YMM */
        os.zmm = os.ymm && (xcr0 & 0xe0) == 0xe0;   /* opmask + ZMM_Hi256 + Hi16_ZMM */
        tile_state = (xcr0 & 0x60000) == 0x60000;   /* XTILECFG + XTILEDATA */
    }
    add_bits(leaf1, SLM__ARRAY_LEN(leaf1), r, &os);
    uint32_t max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7)
        return;
    __cpuid_count(7, 0, r[0], r[1], r[2], r[3]);
    uint32_t max_sub = r[0];
    /* Ask for the tile state only on CPUs that have tiles at all. */
    os.tiles = tile_state && (r[3] & (1u << 24)) && amx_permitted();
    add_bits(leaf7, SLM__ARRAY_LEN(leaf7), r, &os);
    if (max_sub >= 1) {
        __cpuid_count(7, 1, r[0], r[1], r[2], r[3]);
        add_bits(leaf7_1, SLM__ARRAY_LEN(leaf7_1), r, &os);
    }
}
#else
static void detect(void)
{
}
#endif

const char *slm_cpu_features_string(void)
{
    pthread_once(&features_once, detect);
    return features;
}

static const char *canonical(const char *name)
{
    if (strcmp(name, "sse4.1") == 0)
        return "sse4_1";
    if (strcmp(name, "sse4.2") == 0)
        return "sse4_2";
    if (strcmp(name, "sse3") == 0)
        return "pni";
    return name;
}

bool slm_cpu_has_feature(const char *name)
{
    if (!name || !*name)
        return false;
    name = canonical(name);
    size_t n = strlen(name);
    const char *p = slm_cpu_features_string();
    while (*p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

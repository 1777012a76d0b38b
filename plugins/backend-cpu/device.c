/* The CPU device: what it is called, how much memory it has, and buffers that are
 * plain 64-byte-aligned host memory. */
#include "config.h"

#include <sys/mman.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "matmul.h"
#include "repack.h"
#include "weights-arena.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define CPU_BUFFER_ALIGN 64

/* Features this build was compiled for, as the compiler saw them. */
static const char *const build_features[] = {
#ifdef __AVX512F__
    "avx512f",
#endif
#ifdef __AVX512BW__
    "avx512bw",
#endif
#ifdef __AVX512VL__
    "avx512vl",
#endif
#ifdef __AVX512DQ__
    "avx512dq",
#endif
#ifdef __AVX2__
    "avx2",
#endif
#ifdef __FMA__
    "fma",
#endif
#ifdef __F16C__
    "f16c",
#endif
    NULL
};

const char *cpu_missing_feature(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
#ifdef __AVX512F__
    if (!__builtin_cpu_supports("avx512f"))
        return "avx512f";
#endif
#ifdef __AVX512BW__
    if (!__builtin_cpu_supports("avx512bw"))
        return "avx512bw";
#endif
#ifdef __AVX512VL__
    if (!__builtin_cpu_supports("avx512vl"))
        return "avx512vl";
#endif
#ifdef __AVX512DQ__
    if (!__builtin_cpu_supports("avx512dq"))
        return "avx512dq";
#endif
#ifdef __AVX512VNNI__
    if (!__builtin_cpu_supports("avx512vnni"))
        return "avx512_vnni";
#endif
#ifdef __AVX2__
    if (!__builtin_cpu_supports("avx2"))
        return "avx2";
#endif
#ifdef __FMA__
    if (!__builtin_cpu_supports("fma"))
        return "fma";
#endif
#ifdef __F16C__
    if (!__builtin_cpu_supports("f16c"))
        return "f16c";
#endif
#endif
    return NULL;
}

int cpu_device_count(void *backend)
{
    (void)backend;
    return 1;
}

static void trim_copy(char *dst, size_t cap, const char *src)
{
    while (isspace((unsigned char)*src))
        src++;
    snprintf(dst, cap, "%s", src);
    size_t n = strlen(dst);
    while (n > 0 && isspace((unsigned char)dst[n - 1]))
        dst[--n] = '\0';
}

/* "model name" from /proc/cpuinfo, else the cpuid brand string, else "CPU". */
static void cpu_model_name(char *out, size_t cap)
{
    snprintf(out, cap, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon) {
                trim_copy(out, cap, colon + 1);
                fclose(f);
                return;
            }
        }
        fclose(f);
    }
#if defined(__x86_64__) || defined(__i386__)
    unsigned regs[12];
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                        &regs[4 * i + 3]);
        char brand[49];
        memcpy(brand, regs, 48);
        brand[48] = '\0';
        trim_copy(out, cap, brand);
    }
#endif
}

/* MemAvailable from /proc/meminfo in bytes, or 0. */
static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024u;
}

static void describe(char *out, size_t cap)
{
    char isa[128] = "";
    size_t used = 0;
    for (size_t i = 0; build_features[i] && used < sizeof isa; i++)
        used += (size_t)snprintf(isa + used, sizeof isa - used, "%s%s", i ? " " : "",
                                 build_features[i]);
    snprintf(out, cap, "%s build, ISA: %s; matmul kernels: %s; %d cores", CPU_VARIANT_NAME,
             isa[0] ? isa : "baseline", cpu_mul_mat_isa(), cpu_online_cores());
}

int cpu_device_props(void *backend, int index, slm_device_props_t *props)
{
    (void)backend;
    if (index != 0 || !props || props->struct_size < sizeof *props)
        return SLM_E_INVALID;
    char model[96];
    cpu_model_name(model, sizeof model);
    memset(props, 0, sizeof *props);
    props->struct_size = sizeof *props;
    snprintf(props->name, sizeof props->name, "%s (%s)", model, CPU_VARIANT_NAME);
    props->type = SLM_DEVICE_CPU;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    props->memory_total = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    props->memory_free = mem_available();
    if (props->memory_free == 0) {
        long avail = sysconf(_SC_AVPHYS_PAGES);
        props->memory_free = avail > 0 && page > 0 ? (uint64_t)avail * (uint64_t)page : 0;
    }
    props->score = SLM_DEVICE_SCORE_CPU;   /* below any real GPU, above emulated ones */
    props->host_visible = 1;
    describe(props->description, sizeof props->description);
    return SLM_OK;
}

/* Whether weights are copied into huge pages (D60) rather than read in place from
 * the host's memory (a file mapping): where huge pages exist, unless
 * SLMOPS_CPU_WEIGHTS=map asks for the mapping (several processes serving one file
 * then share the page cache instead of a copy each). */
static bool copy_weights(void)
{
    const char *how = getenv("SLMOPS_CPU_WEIGHTS");
    if (how && strcmp(how, "map") == 0)
        return false;
    if (how && *how && strcmp(how, "copy") != 0)
        cpu_log(SLM_LOG_WARN, "SLMOPS_CPU_WEIGHTS=%s: neither map nor copy; copying", how);
    return cpu_arena_huge_pages();
}

int cpu_device_open(void *backend, int index, const slm_device_config_t *cfg, void **dev)
{
    (void)backend;
    if (index != 0 || !dev)
        return SLM_E_INVALID;
    int n_threads = 0;
    if (cfg && cfg->struct_size >= offsetof(slm_device_config_t, n_threads) + sizeof(int32_t))
        n_threads = cfg->n_threads;
    bool repack = cfg &&
                  cfg->struct_size >= offsetof(slm_device_config_t, flags) + sizeof(uint32_t) &&
                  (cfg->flags & SLM_DEVICE_CONFIG_REPACK);
    cpu_device_t *d = calloc(1, sizeof *d);
    if (!d)
        return SLM_E_NOMEM;
    d->pool = cpu_pool_new(n_threads);
    if (repack)
        d->repack = cpu_repack_new();
    if (copy_weights())
        d->arena = cpu_arena_new();
    if (!d->pool || (repack && !d->repack)) {
        cpu_pool_free(d->pool);
        cpu_repack_free(d->repack);
        cpu_arena_free(d->arena);
        free(d);
        return SLM_E_NOMEM;
    }
    cpu_log(SLM_LOG_DEBUG, "device opened with %d threads", cpu_pool_size(d->pool));
    *dev = d;
    return SLM_OK;
}

void cpu_device_close(void *dev)
{
    cpu_device_t *d = dev;
    if (!d)
        return;
    cpu_pool_free(d->pool);
    cpu_repack_free(d->repack);
    cpu_arena_free(d->arena);
    free(d->busy);
    free(d->scratch);
    free(d->nodes);
    free(d->plans);
    free(d);
}

int cpu_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    if (!buffer || size > SIZE_MAX - CPU_BUFFER_ALIGN)
        return SLM_E_INVALID;
    cpu_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    /* A zero-byte buffer still gets a unique address. */
    size_t bytes = size ? (size_t)size : 1;
    if (size >= CPU_MAP_MIN) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            b->base = p;
            b->mapped = b->pristine = true;
        }
    }
    if (!b->base && posix_memalign(&b->base, CPU_BUFFER_ALIGN, bytes) != 0) {
        free(b);
        return SLM_E_NOMEM;
    }
    b->size = size;
    *buffer = b;
    if (base)
        *base = b->base;
    return SLM_OK;
}

/* Every CPU buffer is host memory, so every flag is already honoured. */
int cpu_buffer_alloc_ex(void *dev, const slm_buffer_request_t *req, void **buffer, void **base)
{
    if (!req || req->struct_size < offsetof(slm_buffer_request_t, size) + sizeof req->size)
        return SLM_E_INVALID;
    cpu_device_t *d = dev;
    if (!(req->flags & SLM_BUFFER_FROM_HOST) || !d || !d->arena)
        return cpu_buffer_alloc(dev, req->size, buffer, base);
    if (!buffer || req->size > SIZE_MAX - CPU_BUFFER_ALIGN)
        return SLM_E_INVALID;
    cpu_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    b->base = cpu_arena_take(d->arena, req->size, &b->chunk);
    if (!b->base) {
        free(b);
        return SLM_E_NOMEM;
    }
    b->size = req->size;
    *buffer = b;
    if (base)
        *base = b->base;
    return SLM_OK;
}

/* Memory left free beside copied weights (D60). */
#define COPY_RESERVE ((uint64_t)512 << 20)

/* Host memory is what this device computes on: a file mapping is used as is unless
 * the device copies weights into huge pages (D60), when the host copies instead. */
int cpu_buffer_from_host(void *dev, void *ptr, uint64_t size, void **buffer, void **base)
{
    if (!buffer || (!ptr && size))
        return SLM_E_INVALID;
    /* The host copies it into the arena (alloc_ex), unless the copy would not fit in
     * the memory available with room to spare: a copy cannot be paged back to the
     * file the way the mapping can, so a model larger than memory is read in place. */
    if (dev && ((cpu_device_t *)dev)->arena && size + COPY_RESERVE <= mem_available())
        return SLM_E_UNSUPPORTED;
    cpu_buffer_t *b = calloc(1, sizeof *b);
    if (!b)
        return SLM_E_NOMEM;
    b->base = ptr;
    b->size = size;
    b->wrapped = true;
    *buffer = b;
    if (base)
        *base = ptr;
    return SLM_OK;
}

/* The buffer's contents change: copies made from it are stale. */
static void changed(void *dev, const cpu_buffer_t *b)
{
    cpu_device_t *d = dev;
    if (d && d->repack)
        cpu_repack_forget(d->repack, b);
}

void cpu_buffer_free(void *dev, void *buffer)
{
    cpu_buffer_t *b = buffer;
    if (!b)
        return;
    changed(dev, b);
    if (b->chunk)
        cpu_arena_release(((cpu_device_t *)dev)->arena, b->chunk, b->base, b->size);
    else if (b->mapped)
        munmap(b->base, (size_t)b->size);
    else if (!b->wrapped)
        free(b->base);
    free(b);
}

/* The range [offset, offset+size) lies inside the buffer. */
static bool in_range(const cpu_buffer_t *b, uint64_t offset, uint64_t size)
{
    return b && offset <= b->size && size <= b->size - offset;
}

int cpu_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    cpu_buffer_t *b = buffer;
    if (!in_range(b, offset, size) || (size && !src))
        return SLM_E_INVALID;
    if (size) {
        changed(dev, b);
        memcpy((char *)b->base + offset, src, size);
        b->pristine = false;
    }
    return SLM_OK;
}

int cpu_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    cpu_buffer_t *b = buffer;
    if (!in_range(b, offset, size) || (size && !dst))
        return SLM_E_INVALID;
    if (size)
        memcpy(dst, (char *)b->base + offset, size);
    return SLM_OK;
}

int cpu_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t value)
{
    cpu_buffer_t *b = buffer;
    if (!in_range(b, offset, size))
        return SLM_E_INVALID;
    /* The clear that follows an allocation (slm_buffer_new) is free for a fresh
     * mapping; later ones write, since the memory may have been written through
     * its address since. */
    if (size)
        changed(dev, b);
    if (size && !(b->pristine && value == 0))
        memset((char *)b->base + offset, value, size);
    b->pristine = false;
    return SLM_OK;
}

/* Between two CPU buffers (of one device or two): a memmove, since a view may copy
 * within one buffer. */
int cpu_buffer_copy(void *dst_dev, void *dst, uint64_t dst_offset, void *src_dev, void *src,
                    uint64_t src_offset, uint64_t size)
{
    (void)dst_dev;
    (void)src_dev;
    cpu_buffer_t *d = dst, *s = src;
    if (!in_range(d, dst_offset, size) || !in_range(s, src_offset, size))
        return SLM_E_INVALID;
    if (size) {
        changed(dst_dev, d);
        memmove((char *)d->base + dst_offset, (const char *)s->base + src_offset, size);
        d->pristine = false;
    }
    return SLM_OK;
}

/* A fake backend plugin for the registry tests, built once per -D variant:
 * a good one with one device and no ops, and one per way a plugin can be broken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slmops/plugin-backend.h>

#ifndef FAKE_NAME
#define FAKE_NAME "fake-good"
#endif
#ifndef FAKE_DESC_NAME
#define FAKE_DESC_NAME FAKE_NAME
#endif
#ifndef FAKE_VERSION
#define FAKE_VERSION "1.0.0"
#endif
#ifndef FAKE_KIND
#define FAKE_KIND SLM_PLUGIN_KIND_BACKEND
#endif
#ifndef FAKE_ABI
#define FAKE_ABI SLM_PLUGIN_ABI_VERSION
#endif
#ifndef FAKE_SCORE
#define FAKE_SCORE 10
#endif
#ifndef FAKE_NULL_IFACE
#define FAKE_NULL_IFACE 0
#endif
#ifndef FAKE_TYPE
#define FAKE_TYPE SLM_DEVICE_CPU
#endif

/* FAKE_CTOR: what the library does the moment it is loaded, before any entry call. */
#define FAKE_CTOR_CRASH 1      /* dereferences NULL */
#define FAKE_CTOR_EXIT 2       /* calls exit(0) */
#define FAKE_CTOR_HANG 3       /* never returns */
#define FAKE_CTOR_FORK_CRASH 4 /* leaves a grandchild holding every fd, then crashes */
#ifdef FAKE_CTOR
__attribute__((constructor)) static void fake_ctor(void)
{
    /* volatile, so that the compiler cannot turn the store into a trap instruction */
    volatile int *volatile nowhere = NULL;
#if FAKE_CTOR == FAKE_CTOR_EXIT
    exit(0);
#elif FAKE_CTOR == FAKE_CTOR_HANG
    for (;;)
        pause();
#elif FAKE_CTOR == FAKE_CTOR_FORK_CRASH
    pid_t pid = fork();
    if (pid == 0) {
        sleep(60);
        _exit(0);
    }
    /* The test checks that this grandchild is gone when the load returns. */
    const char *pid_file = getenv("FAKE_GRANDCHILD_PID_FILE");
    FILE *f = pid_file ? fopen(pid_file, "w") : NULL;
    if (f) {
        fprintf(f, "%ld\n", (long)pid);
        fclose(f);
    }
#endif
    *nowhere = 1;
}
#endif

static int fake_device_count(void)
{
    return 1;
}

static int fake_device_props(int index, slm_device_props_t *props)
{
    if (index != 0)
        return -1;
    strcpy(props->name, FAKE_NAME " device");
    props->type = FAKE_TYPE;
    props->memory_total = 1u << 30;
    props->memory_free = 1u << 29;
    props->score = FAKE_SCORE;
    props->host_visible = 1;
    strcpy(props->description, "fake device for registry tests");
    return 0;
}

static int fake_device_open(int index, const slm_device_config_t *cfg, void **dev)
{
    if (index != 0)
        return -1;
    int *threads = malloc(sizeof *threads);
    if (!threads)
        return -1;
    *threads = cfg->n_threads;
    *dev = threads;
    return 0;
}

static void fake_device_close(void *dev)
{
    free(dev);
}

static bool fake_supports_node(void *dev, const slm_node_t *node)
{
    return false;
}

static int fake_buffer_alloc(void *dev, uint64_t size, void **buffer, void **base)
{
    *buffer = *base = malloc(size ? size : 1);
    return *buffer ? 0 : -1;
}

static void fake_buffer_free(void *dev, void *buffer)
{
    free(buffer);
}

static int fake_buffer_set(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size)
{
    memcpy((char *)buffer + offset, src, size);
    return 0;
}

static int fake_buffer_get(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size)
{
    memcpy(dst, (char *)buffer + offset, size);
    return 0;
}

static int fake_buffer_clear(void *dev, void *buffer, uint64_t offset, uint64_t size, uint8_t v)
{
    memset((char *)buffer + offset, v, size);
    return 0;
}

static int fake_graph_compute(void *dev, const slm_node_t *const *nodes, size_t n)
{
    return n == 0 ? 0 : -1;
}

static const slm_backend_iface_t fake_iface = {
    .struct_size = sizeof(slm_backend_iface_t),
    .iface_version = SLM_BACKEND_IFACE_VERSION,
    .device_count = fake_device_count,
    .device_props = fake_device_props,
    .device_open = fake_device_open,
    .device_close = fake_device_close,
    .supports_node = fake_supports_node,
    .buffer_alloc = fake_buffer_alloc,
    .buffer_free = fake_buffer_free,
    .buffer_set = fake_buffer_set,
    .buffer_get = fake_buffer_get,
    .buffer_clear = fake_buffer_clear,
    .graph_compute = fake_graph_compute,
};

static const slm_plugin_descriptor_t fake_descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = FAKE_ABI,
    .kind = FAKE_KIND,
    .name = FAKE_DESC_NAME,
    .version = FAKE_VERSION,
    /* A plugin that forgot its interface: the host must refuse it. */
    .iface = FAKE_NULL_IFACE ? NULL : &fake_iface,
};

static const slm_plugin_descriptor_t *fake_entry(const slm_host_t *host, uint32_t host_abi)
{
    if (host && host->struct_size >= sizeof *host && host->log)
        host->log(SLM_LOG_DEBUG, FAKE_NAME, "offered ABI %u", host_abi);
    return &fake_descriptor;
}

#ifdef FAKE_NO_ENTRY
/* Exported under the wrong name, as a plugin with a typo would be. */
SLM_PLUGIN_EXPORT const slm_plugin_descriptor_t *slm_plugin_entry_typo(const slm_host_t *host,
                                                                       uint32_t abi);
const slm_plugin_descriptor_t *slm_plugin_entry_typo(const slm_host_t *host, uint32_t abi)
{
    return fake_entry(host, abi);
}
#else
SLM_PLUGIN_DEFINE_ENTRY(fake_entry)
#endif

/* A format plugin of interface version 1 (write(path) does its own temporary and
 * rename), to show the host still serves it, after its own checks on OUT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/plugin-format.h>

static int probe(const char *path, const uint8_t *head, size_t head_len)
{
    (void)path, (void)head, (void)head_len;
    return 0;
}

/* What a v1 plugin did: PATH.tmp, then rename over PATH. */
static int write_v1(const char *path, const slm_format_source_t *source, slm_error_t *err)
{
    (void)source, (void)err;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return SLM_E_IO;
    int bad = fputs("written by fake-format-v1\n", f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return SLM_E_IO;
    }
    return SLM_OK;
}

/* Built with the version-2 header: a version-1 plugin leaves the new slots NULL
 * (as its zeroed `reserved` area did). */
static const slm_format_iface_t iface = {
    .struct_size = sizeof(slm_format_iface_t),
    .iface_version = 1,
    .probe = probe,
    .write = write_v1,
};

static const slm_plugin_descriptor_t descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = 1,
    .kind = SLM_PLUGIN_KIND_FORMAT,
    .name = "fake-format-v1",
    .version = "1.0.0",
    .iface = &iface,
};

static const slm_plugin_descriptor_t *entry(const slm_host_t *host, uint32_t host_abi_version)
{
    (void)host;
    return host_abi_version >= 1 ? &descriptor : NULL;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)

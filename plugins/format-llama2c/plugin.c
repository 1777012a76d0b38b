/* The llama2.c format plugin's entry point and descriptor (kept apart so that
 * tests can compile the readers in without a second slm_plugin_entry). */
#include "config.h"

#include "llama2c.h"

static const slm_format_iface_t iface = {
    .struct_size = sizeof(slm_format_iface_t),
    .iface_version = SLM_FORMAT_IFACE_VERSION,
    .probe = l2c_probe,
    .read = l2c_read,
    .write = NULL,  /* llama2.c files are an input format; convert writes GGUF */
};

static const slm_plugin_descriptor_t descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = 1,
    .kind = SLM_PLUGIN_KIND_FORMAT,
    .name = "format-llama2c",
    .version = PACKAGE_VERSION,
    .iface = &iface,
};

static const slm_plugin_descriptor_t *entry(const slm_host_t *host, uint32_t host_abi_version)
{
    if (host_abi_version < 1)
        return NULL;
    l2c_host = host;
    return &descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)

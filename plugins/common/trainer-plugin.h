/* What every in-tree trainer plugin declares the same way: its interface table,
 * descriptor and entry point (TRAINER_PLUGIN_DEFINE), and the finish of a method
 * that saves the whole model. */
#ifndef SLMOPS_PLUGIN_TRAINER_PLUGIN_H
#define SLMOPS_PLUGIN_TRAINER_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

#include <slmops/plugin-trainer.h>

/* Whether a host can run a trainer: plugin ABI 1 or later, and trainer interface 2
 * or later when it says which (the in-tree trainers speak version 2 only: a host
 * that reads version 1 would list them and never train with them). */
bool trainer_plugin_accepts(const slm_host_t *host, uint32_t host_abi);

/* A method's finish that saves the whole (trained) model. */
int trainer_finish_model(void *state, const slm_trainer_save_t *save, slm_error_t *err);

/* The interface (version 2: METHODS names the NULL-terminated TABLE), the
 * descriptor of plugin NAME and its entry point. */
#define TRAINER_PLUGIN_DEFINE(NAME, METHODS, TABLE)                                          \
    static const slm_trainer_iface_t trainer__iface = {                                      \
        .struct_size = sizeof(slm_trainer_iface_t),                                          \
        .iface_version = SLM_TRAINER_IFACE_VERSION,                                          \
        .methods = (METHODS),                                                                \
        .method_table = (TABLE),                                                             \
    };                                                                                       \
    static const slm_plugin_descriptor_t trainer__descriptor = {                             \
        .struct_size = sizeof(slm_plugin_descriptor_t),                                      \
        .abi_version = SLM_PLUGIN_ABI_VERSION,                                               \
        .kind = SLM_PLUGIN_KIND_TRAINER,                                                     \
        .name = (NAME),                                                                      \
        .version = PACKAGE_VERSION,                                                          \
        .iface = &trainer__iface,                                                            \
    };                                                                                       \
    static const slm_plugin_descriptor_t *trainer__entry(const slm_host_t *host,             \
                                                         uint32_t host_abi)                  \
    {                                                                                        \
        return trainer_plugin_accepts(host, host_abi) ? &trainer__descriptor : NULL;         \
    }                                                                                        \
    SLM_PLUGIN_DEFINE_ENTRY(trainer__entry)

#endif

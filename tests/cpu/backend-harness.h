/* Test harness for the CPU backend plugin: loads one variant's library directly,
 * opens its device and builds tensors and nodes by hand, as the core would. */
#ifndef SLMOPS_TEST_CPU_HARNESS_H
#define SLMOPS_TEST_CPU_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>

extern const slm_plugin_descriptor_t *h_desc;
extern const slm_backend_iface_t *h_iface;
extern void *h_backend;        /* the backend context from init (NULL without init) */
extern slm_plugin_entry_fn h_entry;
extern void *h_dev;

/* Load the variant's .so; returns NULL or a reason it could not be loaded. */
const char *h_load(const char *variant);
/* The first of the space-separated /proc/cpuinfo flags this CPU lacks, or NULL. */
const char *h_missing_cpu_feature(const char *features);

void h_open(int n_threads);   /* opens device 0 into h_dev */
void h_open_flags(int n_threads, uint32_t flags);   /* ... with SLM_DEVICE_CONFIG_* */
void h_close(void);           /* closes it and frees every tensor */

enum h_layout {
    H_CONTIG = 0,   /* packed */
    H_GAPS = 1,     /* every stride padded, ne0 stepping over every other element */
    H_TRANS = 2     /* dims 0 and 1 swapped in memory */
};

slm_tensor_desc_t h_tensor(int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
                           int layout);
void h_set(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v);
float h_get(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3);
void h_seti(const slm_tensor_desc_t *t, int64_t i0, int64_t i1, int64_t i2, int32_t v);
/* Fill with uniform values in [lo, hi) (rounded to the tensor's type). */
void h_fill(const slm_tensor_desc_t *t, float lo, float hi);

slm_node_t h_node(int op, slm_tensor_desc_t dst, int n_src, const slm_tensor_desc_t *src);
/* Run one node (or n nodes) through graph_compute; returns its status. */
int h_run(const slm_node_t *node);
int h_run_n(const slm_node_t *nodes, size_t n);

/* Whether the plugin logged a message (any level) containing needle. */
bool h_logged(const char *needle);

/* |got - want| <= atol + rtol * |want| for every element, else a Check failure naming it. */
void h_expect_close(const char *what, float got, double want, double atol, double rtol);

#define H_FOR(t, i0, i1, i2, i3)                                                  \
    for (int64_t i3 = 0; i3 < (t).ne[3]; i3++)                                    \
        for (int64_t i2 = 0; i2 < (t).ne[2]; i2++)                                \
            for (int64_t i1 = 0; i1 < (t).ne[1]; i1++)                            \
                for (int64_t i0 = 0; i0 < (t).ne[0]; i0++)

#endif

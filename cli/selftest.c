/* `slmops selftest [--device SPEC] [--json] [--threads N] [-v]`: the op conformance suite on every
 * device the usable backends offer, one summary per device; exit 1 on any failure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/device.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"
#include "sdk/conform/conform.h"

typedef struct selftest_args {
    bool json, verbose;
    long threads;
    const char *device;
} selftest_args_t;

#define OFF(f) offsetof(selftest_args_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--device", "SPEC", SLM_CLI_STR, OFF(device), 0, 0,
     "test only this device: auto, cpu, cpu:0, cpu-avx2:0, vulkan:1 ..."},
    {"-t, --threads", "N", SLM_CLI_LONG, OFF(threads), 1, 4096,
     "threads for each device (default: the backend's)"},
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "machine-readable report"},
    {"-v, --verbose", NULL, SLM_CLI_FLAG, OFF(verbose), 0, 0, "list passing cases too"},
    {0},
};

static const slm_cli_group_t groups[] = {{"Options", own_opts, 0}, {0}};

static void more_help(FILE *f)
{
    fprintf(f, "slmops-conform tests a single device or plugin with more options.\n");
}

static const slm_cli_spec_t spec = {
    .verb = "selftest",
    .synopsis = "[--device SPEC] [--json] [--threads N] [-v]",
    .about = "Run the op conformance suite (every op x type each backend declares, compared\n"
             "with a scalar reference, and backward ops against finite differences) on every\n"
             "device of every usable backend plugin, or on the one --device names. Exits 1\n"
             "when any case fails.\n",
    .groups = groups,
    .more_help = more_help,
};

static void print_device(const slm_device_info_t *info, const slm_conform_report_t *rep,
                         bool verbose)
{
    char line[1024];
    printf("%s (%s): %zu passed, %zu failed, %zu skipped\n", info->id, info->plugin, rep->n_pass,
           rep->n_fail, rep->n_skip);
    for (size_t i = 0; i < rep->n_results; i++) {
        if (rep->results[i].status == SLM_CONFORM_PASS && !verbose)
            continue;
        slm_conform_result_format(&rep->results[i], line, sizeof line);
        printf("    %s\n", line);
    }
}

/* Run the suite on one device; its JSON (or NULL) goes to *out. false: failures. */
static bool test_device(slm_registry_t *reg, const slm_device_info_t *info,
                        const selftest_args_t *a, json_t *devices)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_device_options_t o = {.struct_size = sizeof o, .n_threads = (int32_t)a->threads};
    slm_device_t *dev = slm_device_open(reg, a->device ? a->device : info->id, &o, &err);
    json_t *entry = json_pack("{s:s, s:s}", "id", info->id, "plugin", info->plugin);
    bool ok = false;
    slm_conform_report_t rep;
    slm_conform_options_t opts;
    slm_conform_options_default(&opts);
    /* The CPU is every other device's fallback, so it must run every layout. */
    opts.strict_layouts = strcmp(info->type, "cpu") == 0;
    if (!dev) {
        fprintf(stderr, "slmops selftest: cannot open %s: %s\n", info->id, err.message);
        json_object_set_new(entry, "error", json_string(err.message));
    } else if (slm_conform_run(reg, dev, &opts, &rep, &err) < 0) {
        fprintf(stderr, "slmops selftest: %s: %s\n", info->id, err.message);
        json_object_set_new(entry, "error", json_string(err.message));
    } else {
        ok = rep.n_fail == 0 && rep.n_pass > 0;
        if (!a->json)
            print_device(info, &rep, a->verbose);
        json_t *r = slm_conform_report_json(&rep, !a->verbose);
        if (r)
            json_object_update(entry, r);
        json_decref(r);
        slm_conform_report_free(&rep);
    }
    if (dev)
        slm_device_close(dev);
    json_object_set_new(entry, "ok", json_boolean(ok));
    json_array_append_new(devices, entry);
    return ok;
}

int slm_cli_selftest(int argc, char **argv)
{
    selftest_args_t a = {0};
    int rc = slm_cli_parse(&spec, argc, argv, &a);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    slm_error_t err;
    slm_error_init(&err);
    slm_device_info_t *v = NULL;
    size_t n = 0;
    if (a.device) {
        /* One device: resolving it first names a bad spec before any test runs. */
        v = calloc(1, sizeof *v);
        n = v ? 1 : 0;
        if (v)
            v->struct_size = sizeof *v;
        if (!v || slm_device_resolve(reg, a.device, v, &err) != SLM_OK) {
            fprintf(stderr, "slmops selftest: --device %s: %s\n", a.device,
                    v ? err.message : "out of memory");
            free(v);
            slm_registry_free(reg);
            return SLM_CLI_FAILED;
        }
    } else if (slm_devices_list(reg, &v, &n, &err) < 0) {
        fprintf(stderr, "slmops selftest: %s\n", err.message);
        slm_registry_free(reg);
        return SLM_CLI_FAILED;
    }
    json_t *devices = json_array();
    bool all_ok = n > 0;
    if (n == 0)
        fprintf(stderr, "slmops selftest: no devices: no usable backend plugin "
                        "(see 'slmops plugins')\n");
    for (size_t i = 0; i < n; i++)
        all_ok &= test_device(reg, &v[i], &a, devices);
    if (a.json) {
        json_t *doc = json_pack("{s:o, s:b}", "devices", devices, "ok", all_ok);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(doc);
    } else {
        printf("selftest: %s\n", all_ok ? "all devices conform" : "FAILED");
        json_decref(devices);
    }
    free(v);
    slm_registry_free(reg);
    return all_ok ? SLM_CLI_OK : SLM_CLI_FAILED;
}

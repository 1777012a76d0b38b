/* `slmops selftest [--json] [--threads N] [-v]`: the op conformance suite on every
 * device the usable backends offer, one summary per device; exit 1 on any failure. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/device.h>

#include "cli/common.h"
#include "cli/verbs.h"
#include "sdk/conform/conform.h"

static void selftest_usage(void)
{
    printf("Usage: slmops selftest [--json] [--threads N] [-v]\n"
           "Run the op conformance suite (every op x type each backend declares, compared\n"
           "with a scalar reference, and backward ops against finite differences) on every\n"
           "device of every usable backend plugin. Exits 1 when any case fails.\n"
           "  --json       machine-readable report\n"
           "  --threads N  threads for each device (default: the backend's)\n"
           "  -v           list passing cases too\n"
           "slmops-conform tests a single device or plugin with more options.\n");
}

typedef struct selftest_args {
    bool json, verbose;
    long threads;
} selftest_args_t;

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
    slm_device_t *dev = slm_device_open(reg, info->id, &o, &err);
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

static int parse(int argc, char **argv, selftest_args_t *a)
{
    for (int i = 1; i < argc; i++) {
        if (slm_cli_is_help(argv[i])) {
            selftest_usage();
            return -1;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            a->verbose = true;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            if (!slm_cli_parse_int(argv[++i], 1, 4096, &a->threads))
                return slm_cli_usage_error("selftest", "--threads wants 1..4096, not '%s'",
                                           argv[i]);
        } else {
            return slm_cli_usage_error("selftest", "unknown or incomplete option '%s'", argv[i]);
        }
    }
    return SLM_CLI_OK;
}

int slm_cli_selftest(int argc, char **argv)
{
    selftest_args_t a = {0};
    int rc = parse(argc, argv, &a);
    if (rc != SLM_CLI_OK)
        return rc < 0 ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    slm_error_t err;
    slm_error_init(&err);
    slm_device_info_t *v = NULL;
    size_t n = 0;
    if (slm_devices_list(reg, &v, &n, &err) < 0) {
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

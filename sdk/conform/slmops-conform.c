/* slmops-conform: run the op conformance suite against one backend plugin's
 * device, for plugin authors and CI. Exits 1 when any declared case fails. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/slmops.h>

#include "sdk/conform/conform.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slmops-conform [--device SPEC | --plugin NAME] [--op NAME] [--json] [-v]\n"
            "Run every op x type the backend's manifest declares on one of its devices and\n"
            "compare with the scalar reference; check backward ops by finite differences.\n"
            "  --device SPEC    device to test: auto (default, or $SLMOPS_DEVICE), cpu:0,\n"
            "                   cpu-avx2:0, ...\n"
            "  --plugin NAME    test device 0 of the backend plugin NAME\n"
            "  --op NAME        only this op (and gradchecks involving it)\n"
            "  --strict         fail layouts with a non-unit innermost stride the backend\n"
            "                   refuses (the CPU backend must run every layout)\n"
            "  --no-gradcheck   skip the finite-difference checks\n"
            "  --threads N      threads for the device (default: the backend's)\n"
            "  --json           print the report as JSON\n"
            "  -v, --verbose    list passing cases too\n"
            "Plugins are found as `slmops plugins` shows (SLMOPS_PLUGIN_PATH first).\n");
}

static void log_to_stderr(slm_log_level_t level, const char *category, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "slmops-conform: %s: %s: %s\n", slm_log_level_name(level), category, msg);
}

typedef struct args {
    const char *device, *plugin, *op;
    bool json, verbose;
    long threads;
    slm_conform_options_t opts;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout);
            exit(EXIT_OK);
        } else if (!strcmp(s, "--device") && has_value) {
            a->device = argv[++i];
        } else if (!strcmp(s, "--plugin") && has_value) {
            a->plugin = argv[++i];
        } else if (!strcmp(s, "--op") && has_value) {
            a->op = argv[++i];
        } else if (!strcmp(s, "--threads") && has_value) {
            char *end;
            a->threads = strtol(argv[++i], &end, 10);
            if (*end || a->threads < 1 || a->threads > 4096) {
                fprintf(stderr, "slmops-conform: --threads wants 1..4096, not '%s'\n", argv[i]);
                return EXIT_USAGE;
            }
        } else if (!strcmp(s, "--json")) {
            a->json = true;
        } else if (!strcmp(s, "--strict")) {
            a->opts.strict_layouts = true;
        } else if (!strcmp(s, "--no-gradcheck")) {
            a->opts.no_gradcheck = true;
        } else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
            a->verbose = true;
        } else {
            fprintf(stderr, "slmops-conform: unknown or incomplete option '%s'\n", s);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (a->device && a->plugin) {
        fprintf(stderr, "slmops-conform: --device and --plugin exclude each other\n");
        return EXIT_USAGE;
    }
    if (a->op && slm_op_from_name(a->op) <= 0) {
        fprintf(stderr, "slmops-conform: unknown op '%s'\n", a->op);
        return EXIT_USAGE;
    }
    a->opts.op = a->op;
    return EXIT_OK;
}

static slm_device_t *open_device(slm_registry_t *reg, const args_t *a)
{
    char spec[160];
    slm_error_t err;
    slm_error_init(&err);
    if (a->plugin) {
        const slm_plugin_info_t *p = slm_registry_find(reg, "backend", a->plugin);
        if (!p) {
            fprintf(stderr, "slmops-conform: no backend plugin named '%s' (see slmops plugins)\n",
                    a->plugin);
            return NULL;
        }
        snprintf(spec, sizeof spec, "%s:0", a->plugin);
    }
    slm_device_options_t o = {.struct_size = sizeof o, .n_threads = (int32_t)a->threads};
    slm_device_t *dev = slm_device_open(reg, a->plugin ? spec : a->device, &o, &err);
    if (!dev)
        fprintf(stderr, "slmops-conform: cannot open device %s: %s\n",
                a->plugin ? spec : a->device ? a->device : "auto", err.message);
    return dev;
}

static int print_report(const slm_device_info_t *info, const slm_conform_report_t *rep,
                        const args_t *a)
{
    if (a->json) {
        json_t *doc = slm_conform_report_json(rep, !a->verbose);
        if (!doc || json_object_set_new(doc, "device", json_string(info->id)) != 0 ||
            json_object_set_new(doc, "plugin", json_string(info->plugin)) != 0) {
            json_decref(doc);
            return EXIT_FAILED;
        }
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(doc);
        return EXIT_OK;
    }
    char line[1024];
    for (size_t i = 0; i < rep->n_results; i++) {
        const slm_conform_result_t *r = &rep->results[i];
        if (r->status == SLM_CONFORM_PASS && !a->verbose)
            continue;
        slm_conform_result_format(r, line, sizeof line);
        printf("%s\n", line);
    }
    printf("%s (%s): %zu passed, %zu failed, %zu skipped\n", info->id, info->plugin, rep->n_pass,
           rep->n_fail, rep->n_skip);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    args_t a = {0};
    slm_conform_options_default(&a.opts);
    slm_log_set_handler(log_to_stderr, NULL);
    int rc = parse_args(argc, argv, &a);
    if (rc != EXIT_OK)
        return rc;
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_options_t ro = {.struct_size = sizeof ro};
    slm_registry_t *reg = slm_registry_new(&ro, &err);
    if (!reg) {
        fprintf(stderr, "slmops-conform: %s\n", err.message);
        return EXIT_FAILED;
    }
    slm_device_t *dev = open_device(reg, &a);
    if (!dev) {   /* as a usage error: the spec names nothing that can run */
        slm_registry_free(reg);
        return EXIT_USAGE;
    }
    slm_conform_report_t rep;
    rc = slm_conform_run(reg, dev, &a.opts, &rep, &err);
    if (rc < 0) {
        fprintf(stderr, "slmops-conform: %s\n", err.message);
        rc = EXIT_FAILED;
    } else {
        rc = print_report(slm_device_get_info(dev), &rep, &a);
        if (rep.n_fail > 0 || rep.n_pass == 0)
            rc = EXIT_FAILED;
    }
    slm_conform_report_free(&rep);
    slm_device_close(dev);
    slm_registry_free(reg);
    return rc;
}

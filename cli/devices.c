/* `slmops devices [--json] [--device SPEC] [--threads N]`: every device the usable
 * backends offer, which plugin variant serves it, what "auto" picks and why. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <slmops/device.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    bool json;
    long threads;
    const char *device;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "machine-readable output"},
    {"--device", "SPEC", SLM_CLI_STR, OFF(device), 0, 0,
     "show what SPEC (auto, cpu, vulkan:0, PLUGIN:N) chooses instead of auto"},
    {"-t, --threads", "N", SLM_CLI_LONG, OFF(threads), 1, 4096,
     "open the automatic device with N threads to check it works"},
    {0},
};

static const slm_cli_group_t groups[] = {{"Options", own_opts, 0}, {0}};

static const slm_cli_spec_t spec = {
    .verb = "devices",
    .synopsis = "[--json] [--device SPEC] [--threads N]",
    .about = "List the devices of every usable backend plugin, the one --device auto\n"
             "would pick and why (SLMOPS_DEVICE or --device override it). Devices score\n"
             "discrete GPU > integrated GPU > CPU backend > CPU-emulated GPU.\n",
    .groups = groups,
};

typedef struct choice {
    const char *auto_id;
    const char *id;            /* the device chosen (auto or --device / SLMOPS_DEVICE) */
    const char *why;
} choice_t;

static void print_table(const slm_device_info_t *v, size_t n, const choice_t *c)
{
    const char *auto_id = c->auto_id;
    if (n == 0) {
        printf("No devices: no usable backend plugin (see 'slmops plugins').\n");
        return;
    }
    printf("%-10s %-16s %-6s %10s %6s  %s\n", "ID", "PLUGIN", "TYPE", "MEMORY(MiB)", "SCORE",
           "NAME");
    for (size_t i = 0; i < n; i++) {
        printf("%-10s %-16s %-6s %10llu %6d  %s%s\n", v[i].id, v[i].plugin, v[i].type,
               (unsigned long long)(v[i].memory_total >> 20), v[i].score, v[i].name,
               strcmp(v[i].id, auto_id) == 0 ? "  [auto]" : "");
        printf("    description: %s\n    why: %s\n", v[i].description, v[i].why);
    }
    printf("\nauto: %s\n", auto_id);
    printf("chosen: %s\n    why: %s\n", c->id, c->why);
}

static json_t *device_json(const slm_device_info_t *d)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:s}", "id", d->id, "plugin",
                     d->plugin, "name", d->name, "type", d->type, "memory_total",
                     (json_int_t)d->memory_total, "memory_free", (json_int_t)d->memory_free,
                     "score", (int)d->score, "description", d->description, "why", d->why);
}

static int print_json(const slm_device_info_t *v, size_t n, const choice_t *c)
{
    json_t *arr = json_array();
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o}", "auto", c->auto_id, "chosen", c->id, "why",
                            c->why, "devices", arr);
    if (!doc)
        return SLM_CLI_FAILED;
    for (size_t i = 0; i < n; i++) {
        json_t *d = device_json(&v[i]);
        if (!d || json_array_append_new(arr, d) != 0) {
            json_decref(doc);
            return SLM_CLI_FAILED;
        }
    }
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2)) == 0 ? SLM_CLI_OK : SLM_CLI_FAILED;
    printf("\n");
    json_decref(doc);
    return rc;
}

/* --threads: prove the automatic device opens with that many threads. */
static int try_open(slm_registry_t *reg, long threads)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_device_options_t opts = {.struct_size = sizeof opts, .n_threads = (int32_t)threads};
    slm_device_t *dev = slm_device_open(reg, NULL, &opts, &err);
    if (!dev) {
        fprintf(stderr, "slmops devices: cannot open the automatic device: %s\n", err.message);
        return SLM_CLI_FAILED;
    }
    slm_device_close(dev);
    return SLM_CLI_OK;
}

static int run(slm_registry_t *reg, bool as_json, long threads, const char *device)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_device_info_t *v = NULL;
    size_t n = 0;
    if (slm_devices_list(reg, &v, &n, &err) != SLM_OK) {
        fprintf(stderr, "slmops devices: %s\n", err.message);
        return SLM_CLI_FAILED;
    }
    slm_device_info_t pick;
    slm_error_init(&err);
    const char *auto_id = "";
    if (n > 0 && slm_device_resolve(reg, NULL, &pick, &err) == SLM_OK)
        auto_id = pick.id;
    else if (n > 0)
        fprintf(stderr, "slmops devices: SLMOPS_DEVICE: %s\n", err.message);
    slm_device_info_t chosen;
    char why[512] = "";
    choice_t c = {.auto_id = auto_id, .id = auto_id, .why = why};
    slm_error_init(&err);
    if (n > 0 && slm_device_choose(reg, device, &chosen, why, sizeof why, &err) == SLM_OK) {
        c.id = chosen.id;
    } else if (n > 0 && device) {
        fprintf(stderr, "slmops devices: --device %s: %s\n", device, err.message);
        free(v);
        return SLM_CLI_FAILED;
    }
    int rc = as_json ? print_json(v, n, &c) : (print_table(v, n, &c), SLM_CLI_OK);
    free(v);
    if (rc == SLM_CLI_OK && threads > 0 && n > 0)
        rc = try_open(reg, threads);
    return rc;
}

int slm_cli_devices(int argc, char **argv)
{
    opts_t o = {0};
    int rc = slm_cli_parse(&spec, argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    rc = run(reg, o.json, o.threads, o.device);
    slm_registry_free(reg);
    return rc;
}

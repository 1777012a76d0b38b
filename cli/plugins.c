/* `slmops plugins [--json] [--no-load]`: the capability table, one row per
 * manifest found, with each plugin's state and why. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    bool json, no_load;
    long threads;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"--json", NULL, SLM_CLI_FLAG, OFF(json), 0, 0, "machine-readable output"},
    {"--no-load", NULL, SLM_CLI_FLAG, OFF(no_load), 0, 0,
     "judge manifests only; do not load libraries to check them"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "plugins",
    .synopsis = "[--json] [--no-load]",
    .about = "List every plugin manifest on the search path with its state:\n"
             "available, loaded, disabled (reason), shadowed (by which manifest),\n"
             "unsupported (what this machine lacks) or superseded (by which variant).\n",
    .groups = groups,
};

/* Loading is how a missing library, entry symbol or ABI mismatch shows up;
 * failures only mark rows disabled (and are logged), they do not stop us. */
static void load_usable(slm_registry_t *reg)
{
    for (size_t i = 0; i < slm_registry_count(reg); i++) {
        const slm_plugin_info_t *p = slm_registry_get(reg, i);
        if (p->state == SLM_PLUGIN_AVAILABLE || p->state == SLM_PLUGIN_SUPERSEDED)
            slm_registry_load(reg, p->name, NULL);
    }
}

static const char *detail(const slm_plugin_info_t *p)
{
    if (p->state == SLM_PLUGIN_SHADOWED)
        return p->shadowed_by;
    return p->reason;
}

static int print_table(slm_registry_t *reg)
{
    printf("Search path:  %s\nCPU features: %s\n\n", slm_registry_search_path(reg),
           slm_cpu_features_string());
    size_t n = slm_registry_count(reg);
    if (n == 0) {
        printf("No plugin manifests found.\n");
        return SLM_CLI_OK;
    }
    printf("%-20s %-10s %-8s %-4s %-5s %-12s %s\n", "NAME", "KIND", "VERSION", "ABI", "PRIO",
           "STATE", "REASON / SHADOWED BY");
    for (size_t i = 0; i < n; i++) {
        const slm_plugin_info_t *p = slm_registry_get(reg, i);
        printf("%-20s %-10s %-8s %-4u %-5d %-12s %s\n", p->name, *p->kind ? p->kind : "-",
               *p->version ? p->version : "-", p->abi_version, p->priority,
               slm_plugin_state_name(p->state), detail(p));
        printf("    manifest: %s\n    library:  %s\n", p->manifest_path,
               *p->library_path ? p->library_path : "-");
        if (*p->summary)
            printf("    %s\n", p->summary);
    }
    return SLM_CLI_OK;
}

/* "provides" comes last: it holds "name" keys of its own (types, methods). */
static json_t *row_json(const slm_plugin_info_t *p)
{
    json_t *provides = json_loads(p->manifest_json, 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:o}",
                     "name", p->name, "kind", p->kind, "version", p->version, "abi_version",
                     (json_int_t)p->abi_version, "description", p->description,
                     "manifest_path", p->manifest_path, "library_path", p->library_path,
                     "priority", (json_int_t)p->priority, "state",
                     slm_plugin_state_name(p->state), "reason", p->reason, "shadowed_by",
                     p->shadowed_by, "backend", p->backend, "summary", p->summary, "provides",
                     provides ? provides : json_object());
}

static int print_json(slm_registry_t *reg)
{
    json_t *rows = json_array();
    json_t *doc = json_pack("{s:s, s:s, s:o}", "search_path", slm_registry_search_path(reg),
                            "cpu_features", slm_cpu_features_string(), "plugins", rows);
    if (!doc)
        return SLM_CLI_FAILED;
    for (size_t i = 0; i < slm_registry_count(reg); i++) {
        json_t *row = row_json(slm_registry_get(reg, i));
        if (!row || json_array_append_new(rows, row) != 0) {
            json_decref(doc);
            return SLM_CLI_FAILED;
        }
    }
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2)) == 0 ? SLM_CLI_OK : SLM_CLI_FAILED;
    printf("\n");
    json_decref(doc);
    return rc;
}

int slm_cli_plugins(int argc, char **argv)
{
    opts_t o = {0};
    int rc = slm_cli_parse(&spec, argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    if (!o.no_load)
        load_usable(reg);
    rc = o.json ? print_json(reg) : print_table(reg);
    slm_registry_free(reg);
    return rc;
}

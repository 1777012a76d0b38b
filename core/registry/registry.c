/* The capability table: one row per manifest on the search path, shadowing,
 * per-family variant selection and capability queries, all without dlopen. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/util.h"

const char *slm_plugin_state_name(int state)
{
    switch (state) {
    case SLM_PLUGIN_AVAILABLE: return "available";
    case SLM_PLUGIN_LOADED: return "loaded";
    case SLM_PLUGIN_DISABLED: return "disabled";
    case SLM_PLUGIN_SHADOWED: return "shadowed";
    case SLM_PLUGIN_UNSUPPORTED: return "unsupported";
    case SLM_PLUGIN_SUPERSEDED: return "superseded";
    default: return "unknown";
    }
}

/* Points the public row at the strings it describes; called after any change. */
static void sync_info(slm__plugin_t *p)
{
    const slm__manifest_t *m = &p->m;
    p->info = (slm_plugin_info_t){
        .struct_size = sizeof p->info,
        .name = m->name ? m->name : p->file_stem,
        .kind = m->kind ? m->kind : "",
        .version = m->version ? m->version : "",
        .abi_version = m->abi_version,
        .description = m->description ? m->description : "",
        .manifest_path = p->manifest_path,
        .library_path = m->library_path ? m->library_path : "",
        .priority = m->priority,
        .state = p->info.state,
        .reason = p->reason,
        .shadowed_by = p->shadowed_by,
        .backend = m->backend ? m->backend : "",
        .manifest_json = m->provides_json ? m->provides_json : "{}",
        .summary = p->summary,
    };
}

bool slm__plugin_usable(const slm__plugin_t *p)
{
    int s = p->info.state;
    return s == SLM_PLUGIN_AVAILABLE || s == SLM_PLUGIN_LOADED || s == SLM_PLUGIN_SUPERSEDED;
}

static void disable(slm_registry_t *reg, slm__plugin_t *p, slm_log_level_t level)
{
    p->fixed_state = SLM_PLUGIN_DISABLED;
    p->info.state = SLM_PLUGIN_DISABLED;
    p->why[0] = '\0';
    slm_log(level, "registry", "%s: %s", p->manifest_path, p->reason);
    if (reg)
        slm__registry_select(reg);
}

void slm__plugin_disable(slm_registry_t *reg, slm__plugin_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    disable(reg, p, SLM_LOG_WARN);
}

void slm__plugin_disable_at(slm_registry_t *reg, slm__plugin_t *p, slm_log_level_t level,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    disable(reg, p, level);
}

static void plugin_free(slm__plugin_t *p)
{
    if (!p)
        return;
    slm__plugin_unload(p);
    slm__manifest_clear(&p->m);
    free(p->file_stem);
    free(p->manifest_path);
    free(p);
}

static int add_row(slm_registry_t *reg, slm__plugin_t *p)
{
    if (reg->n_rows == reg->cap_rows) {
        size_t cap = reg->cap_rows ? reg->cap_rows * 2 : 16;
        slm__plugin_t **rows = realloc(reg->rows, cap * sizeof *rows);
        if (!rows)
            return SLM_E_NOMEM;
        reg->rows = rows;
        reg->cap_rows = cap;
    }
    reg->rows[reg->n_rows++] = p;
    return SLM_OK;
}

static slm__plugin_t *winner_named(const slm_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p->manifest_ok && p->fixed_state != SLM_PLUGIN_SHADOWED && strcmp(p->m.name, name) == 0)
            return p;
    }
    return NULL;
}

/* The CPU features a row requires that this machine lacks, space separated. */
static bool missing_features(const slm__plugin_t *p, char *out, size_t size)
{
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < p->m.n_cpu_features; i++) {
        if (slm_cpu_has_feature(p->m.cpu_features[i]))
            continue;
        int w = snprintf(out + len, size - len, "%s%s", len ? " " : "", p->m.cpu_features[i]);
        if (w < 0 || (size_t)w >= size - len)
            break;
        len += (size_t)w;
    }
    return out[0] != '\0';
}

static void judge_requires(slm__plugin_t *p)
{
    char missing[256];
    if (p->m.unknown_require) {
        p->fixed_state = SLM_PLUGIN_UNSUPPORTED;
        snprintf(p->reason, sizeof p->reason, "requires \"%s\", which this host cannot check",
                 p->m.unknown_require);
    } else if (missing_features(p, missing, sizeof missing)) {
        p->fixed_state = SLM_PLUGIN_UNSUPPORTED;
        snprintf(p->reason, sizeof p->reason, "this CPU lacks required features: %s", missing);
    }
}

static void add_manifest(slm_registry_t *reg, const char *dir, const char *file)
{
    slm__plugin_t *p = calloc(1, sizeof *p);
    size_t plen = strlen(dir) + 1 + strlen(file) + 1;
    if (!p || !(p->manifest_path = malloc(plen)) ||
        !(p->file_stem = strndup(file, strlen(file) - 5)) || add_row(reg, p) != SLM_OK) {
        plugin_free(p);
        slm_log(SLM_LOG_ERROR, "registry", "%s/%s: out of memory", dir, file);
        return;
    }
    snprintf(p->manifest_path, plen, "%s/%s", dir, file);
    p->fixed_state = -1;
    int rc = slm__manifest_load(p->manifest_path, &p->m, p->reason, sizeof p->reason);
    p->manifest_ok = rc == SLM_OK;
    sync_info(p);
    if (!p->manifest_ok) {
        p->fixed_state = SLM_PLUGIN_DISABLED;
        p->info.state = SLM_PLUGIN_DISABLED;
        slm_log(SLM_LOG_WARN, "registry", "%s: %s", p->manifest_path, p->reason);
        return;
    }
    const slm__kind_t *k = slm__kind_by_id(p->m.kind_id);
    if (k->summary)
        k->summary(&p->m, p->summary, sizeof p->summary);
    slm__plugin_t *first = winner_named(reg, p->m.name);
    if (first != p) {
        p->fixed_state = SLM_PLUGIN_SHADOWED;
        p->info.state = SLM_PLUGIN_SHADOWED;
        snprintf(p->shadowed_by, sizeof p->shadowed_by, "%s", first->manifest_path);
        snprintf(p->reason, sizeof p->reason, "shadowed by %s", first->manifest_path);
        slm_log(SLM_LOG_INFO, "registry", "%s: shadowed by %s", p->manifest_path,
                first->manifest_path);
        return;
    }
    judge_requires(p);
    if (p->fixed_state < 0 && k->enter)
        k->enter(reg, p);
}

static bool better(const slm__plugin_t *a, const slm__plugin_t *b)
{
    /* Rows are visited in discovery order, so ties go to the earlier one. */
    return !b || a->m.priority > b->m.priority;
}

/* Explains the choice in one line, listing the runners-up. */
static void explain(const slm_registry_t *reg, slm__plugin_t *w, bool forced)
{
    size_t len;
    if (forced) {
        len = (size_t)snprintf(w->why, sizeof w->why, "%s: forced by %s", w->m.name,
                               reg->prefer_source);
    } else if (w->m.n_cpu_features) {
        char feats[160] = "";
        for (size_t i = 0, l = 0; i < w->m.n_cpu_features && l < sizeof feats; i++)
            l += (size_t)snprintf(feats + l, sizeof feats - l, "%s%s", i ? " " : "",
                                  w->m.cpu_features[i]);
        len = (size_t)snprintf(w->why, sizeof w->why,
                               "%s: highest priority (%d) whose required CPU features (%s) "
                               "this CPU has", w->m.name, w->m.priority, feats);
    } else {
        len = (size_t)snprintf(w->why, sizeof w->why,
                               "%s: highest priority (%d) usable plugin of backend %s",
                               w->m.name, w->m.priority, w->m.backend);
    }
    const char *sep = "; also usable: ";
    for (size_t i = 0; i < reg->n_rows && len < sizeof w->why; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p == w || p->info.state != SLM_PLUGIN_SUPERSEDED || strcmp(p->m.backend, w->m.backend))
            continue;
        len += (size_t)snprintf(w->why + len, sizeof w->why - len, "%s%s", sep, p->m.name);
        sep = ", ";
    }
}

static void select_family(slm_registry_t *reg, const char *family)
{
    slm__plugin_t *best = NULL, *forced = NULL;
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p->fixed_state >= 0 || strcmp(p->m.backend, family) != 0)
            continue;
        if (reg->prefer && strcmp(reg->prefer, p->m.name) == 0)
            forced = p;
        if (better(p, best))
            best = p;
    }
    slm__plugin_t *w = forced ? forced : best;
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p->fixed_state >= 0 || p == w || strcmp(p->m.backend, family) != 0)
            continue;
        p->info.state = SLM_PLUGIN_SUPERSEDED;
        p->why[0] = '\0';
        if (forced)
            snprintf(p->reason, sizeof p->reason, "%s serves backend %s instead (forced by %s)",
                     w->m.name, family, reg->prefer_source);
        else
            snprintf(p->reason, sizeof p->reason,
                     "%s serves backend %s instead (priority %d, this one %d)", w->m.name, family,
                     w->m.priority, p->m.priority);
    }
    if (w) {
        w->info.state = w->dl ? SLM_PLUGIN_LOADED : SLM_PLUGIN_AVAILABLE;
        w->reason[0] = '\0';
        explain(reg, w, forced != NULL);
    }
}

void slm__registry_select(slm_registry_t *reg)
{
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p->fixed_state >= 0) {
            p->info.state = p->fixed_state;
            continue;
        }
        p->info.state = p->dl ? SLM_PLUGIN_LOADED : SLM_PLUGIN_AVAILABLE;
        if (slm__kind_by_id(p->m.kind_id)->variants)
            p->info.state = -1;   /* decided by its family below */
    }
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (p->fixed_state < 0 && p->info.state == -1)
            select_family(reg, p->m.backend);
    }
}

slm_registry_t *slm_registry_new(const slm_registry_options_t *opts, slm_error_t *err)
{
    slm_registry_t *reg = calloc(1, sizeof *reg);
    char **dirs = reg ? slm__search_path_build(opts, &reg->use_env) : NULL;
    if (!dirs) {
        free(reg);
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory building the plugin search path");
        return NULL;
    }
    size_t total = 1;
    for (char **d = dirs; *d; d++)
        total += strlen(*d) + 1;
    if (!(reg->search_path = calloc(1, total))) {
        slm__search_path_free(dirs);
        free(reg);
        slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
        return NULL;
    }
    for (char **d = dirs; *d; d++) {
        if (d != dirs)
            strcat(reg->search_path, ":");
        strcat(reg->search_path, *d);
        size_t n = 0;
        char **files = slm__folder_list(*d, &n);
        for (size_t i = 0; i < n; i++) {
            add_manifest(reg, *d, files[i]);
            free(files[i]);
        }
        free(files);
    }
    slm__search_path_free(dirs);
    const char *forced = reg->use_env ? slm__getenv("SLMOPS_CPU_VARIANT") : NULL;
    slm__registry_select(reg);
    slm_error_t perr;
    slm_error_init(&perr);
    if (forced && *forced && slm_registry_prefer(reg, forced, &perr) != SLM_OK) {
        slm_log(SLM_LOG_WARN, "registry", "SLMOPS_CPU_VARIANT=%s ignored: %s", forced,
                perr.message);
    } else if (forced && *forced) {
        snprintf(reg->prefer_source, sizeof reg->prefer_source, "SLMOPS_CPU_VARIANT");
        slm__registry_select(reg);
    }
    return reg;
}

void slm_registry_free(slm_registry_t *reg)
{
    if (!reg)
        return;
    slm__verdict_cache_free(reg);
    for (size_t i = 0; i < reg->n_rows; i++)
        plugin_free(reg->rows[i]);
    free(reg->rows);
    free(reg->search_path);
    free(reg->prefer);
    free(reg);
}

const char *slm_registry_search_path(const slm_registry_t *reg)
{
    return reg ? reg->search_path : "";
}

size_t slm_registry_count(const slm_registry_t *reg)
{
    return reg ? reg->n_rows : 0;
}

const slm_plugin_info_t *slm_registry_get(const slm_registry_t *reg, size_t i)
{
    if (!reg || i >= reg->n_rows)
        return NULL;
    return &reg->rows[i]->info;
}

slm__plugin_t *slm__registry_row(const slm_registry_t *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    slm__plugin_t *p = winner_named(reg, name);
    if (p)
        return p;
    /* A broken manifest has no trusted name: it is known by its file name. */
    for (size_t i = 0; i < reg->n_rows; i++)
        if (!reg->rows[i]->manifest_ok && strcmp(reg->rows[i]->file_stem, name) == 0)
            return reg->rows[i];
    return NULL;
}

const slm_plugin_info_t *slm_registry_find(const slm_registry_t *reg, const char *kind,
                                           const char *name)
{
    slm__plugin_t *p = slm__registry_row(reg, name);
    if (!p || (kind && strcmp(p->info.kind, kind) != 0))
        return NULL;
    return &p->info;
}

int slm_registry_load(slm_registry_t *reg, const char *name, slm_error_t *err)
{
    slm__plugin_t *p = slm__registry_row(reg, name);
    if (!p)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no plugin named %s",
                         name ? name : "(null)");
    return slm__plugin_load(reg, p, err);
}

int slm_registry_prefer(slm_registry_t *reg, const char *plugin_name, slm_error_t *err)
{
    if (!reg)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "no registry");
    if (!plugin_name || !*plugin_name) {
        free(reg->prefer);
        reg->prefer = NULL;
        slm__registry_select(reg);
        return SLM_OK;
    }
    slm__plugin_t *p = slm__registry_row(reg, plugin_name);
    if (!p || !p->manifest_ok || !slm__kind_by_id(p->m.kind_id)->variants)
        return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "no backend plugin named %s",
                         plugin_name);
    if (!slm__plugin_usable(p))
        return slm__fail(err, SLM_E_UNSUPPORTED, p->manifest_path, -1, "%s is %s: %s",
                         plugin_name, slm_plugin_state_name(p->info.state), p->reason);
    char *copy = strdup(plugin_name);
    if (!copy)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory");
    free(reg->prefer);
    reg->prefer = copy;
    snprintf(reg->prefer_source, sizeof reg->prefer_source, "slm_registry_prefer");
    slm__registry_select(reg);
    return SLM_OK;
}

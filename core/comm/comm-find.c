/* Which communication plugin joins this process to a launched job: the manifests in
 * the comm/ subfolder of each plugin folder, read before any dlopen, in search order. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "comm/comm.h"
#include "internal/registry.h"
#include "internal/util.h"

/* A manifest is a few hundred bytes; anything far larger is not one. */
#define MANIFEST_MAX (64 * 1024)

/* The first of provides.launch_env that is set, or NULL. */
static const char *launched_by(const json_t *m)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(m, "provides"), "launch_env"), i, v)
        if (json_is_string(v) && slm__getenv(json_string_value(v)))
            return json_string_value(v);
    return NULL;
}

static int bad(slm_error_t *err, const char *path, const char *why)
{
    return slm__fail(err, SLM_E_PLUGIN, path, -1, "%s: %s: reinstall the communication "
                     "plugin or run without the launcher", path, why);
}

/* The library named by the manifest at path, loaded and started. */
static int start(slm__comm_plugin_t *pl, const char *path, const json_t *m, slm_error_t *err)
{
    const char *lib = json_string_value(json_object_get(m, "library_path"));
    if (!lib || !*lib)
        return bad(err, path, "no \"library_path\" string");
    char *dirbuf = strdup(path), *full = NULL;
    if (!dirbuf)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "comm: out of memory");
    if (lib[0] != '/' && asprintf(&full, "%s/%s", dirname(dirbuf), lib) < 0)
        full = NULL;
    free(dirbuf);
    void *dl = dlopen(full ? full : lib, RTLD_NOW | RTLD_LOCAL);
    free(full);
    if (!dl)
        return slm__fail(err, SLM_E_PLUGIN, path, -1, "%s: cannot load its library: %s", path,
                         dlerror());
    slm_comm_entry_fn entry = (slm_comm_entry_fn)(uintptr_t)dlsym(dl, "slm_comm_entry");
    const slm_comm_iface_t *ifc = entry ? entry(SLM_COMM_IFACE_VERSION) : NULL;
    if (!ifc || ifc->struct_size < offsetof(slm_comm_iface_t, reserved) ||
        ifc->iface_version < 1 || ifc->iface_version > SLM_COMM_IFACE_VERSION || !ifc->init ||
        !ifc->allreduce_f32 || !ifc->broadcast || !ifc->barrier || !ifc->finish) {
        dlclose(dl);
        return bad(err, path, "its library has no usable slm_comm_entry (interface version 1)");
    }
    pl->dl = dl;
    pl->ifc = ifc;
    return SLM_OK;
}

static json_t *read_manifest(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MANIFEST_MAX)
        return NULL;
    json_error_t je;
    json_t *m = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!m)
        slm_log(SLM_LOG_WARN, "comm", "%s:%d:%d: %s (skipped)", path, je.line, je.column,
                je.text);
    else if (!json_is_object(m) ||
             strcmp(json_string_value(json_object_get(m, "kind")) ?: "", "comm") != 0) {
        slm_log(SLM_LOG_WARN, "comm", "%s: not a manifest of kind \"comm\" (skipped)", path);
        json_decref(m);
        m = NULL;
    }
    return m;
}

int slm__comm_find(slm__comm_plugin_t *pl, slm_error_t *err)
{
    memset(pl, 0, sizeof *pl);
    bool use_env;
    char **dirs = slm__search_path_build(NULL, &use_env);
    if (!dirs)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "comm: out of memory");
    int rc = SLM_OK;
    bool found = false;
    for (char **d = dirs; *d && !found && rc == SLM_OK; d++) {
        char *sub = NULL;
        if (asprintf(&sub, "%s/comm", *d) < 0)
            break;
        size_t n = 0;
        char **names = slm__folder_list(sub, &n);
        for (size_t i = 0; i < n && !found && rc == SLM_OK; i++) {
            char *path = NULL;
            json_t *m = asprintf(&path, "%s/%s", sub, names[i]) < 0 ? NULL : read_manifest(path);
            const char *env = m ? launched_by(m) : NULL;
            if (env) {
                found = true;
                slm_log(SLM_LOG_DEBUG, "comm", "%s: %s is set: joining the launched job", path,
                        env);
                rc = start(pl, path, m, err);
            }
            json_decref(m);
            free(path);
        }
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        free(sub);
    }
    slm__search_path_free(dirs);
    return rc;
}

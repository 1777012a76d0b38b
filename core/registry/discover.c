/* Where manifests are looked for: the documented search path (see
 * slmops/registry.h) and the sorted *.json entries of each folder. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/registry.h"
#include "internal/util.h"

#define SUBDIR "/slmops/plugins"

typedef struct dir_list {
    char **v;
    size_t n, cap;
    bool failed;
} dir_list_t;

/* Adds a folder once: the same folder twice would shadow its own manifests. */
static void list_add(dir_list_t *l, const char *dir, size_t len, const char *suffix)
{
    if (len == 0 || l->failed)
        return;
    size_t need = len + strlen(suffix) + 1;
    char *s = malloc(need);
    if (!s) {
        l->failed = true;
        return;
    }
    snprintf(s, need, "%.*s%s", (int)len, dir, suffix);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) {
            free(s);
            return;
        }
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(s);
            l->failed = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    l->v[l->n] = NULL;
}

/* XDG requires absolute entries; relative ones are ignored as the spec says. */
static void list_add_colon(dir_list_t *l, const char *list, const char *suffix, bool absolute_only)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!absolute_only || p[0] == '/')
            list_add(l, p, len, suffix);
        if (!end)
            break;
        p = end + 1;
    }
}

/* SLMOPS_PLUGIN_PATH_ONLY: any value but "" and "0" turns it on. */
static bool plugin_path_only(void)
{
    const char *only = slm__getenv("SLMOPS_PLUGIN_PATH_ONLY");
    return only && *only && strcmp(only, "0") != 0;
}

/* Returns false when SLMOPS_PLUGIN_PATH_ONLY ends the list there. */
static bool add_environment(dir_list_t *l)
{
    list_add_colon(l, slm__getenv("SLMOPS_PLUGIN_PATH"), "", false);
    if (plugin_path_only())
        return false;
    const char *data_home = slm__getenv("XDG_DATA_HOME");
    const char *home = slm__getenv("HOME");
    if (data_home && data_home[0] == '/')
        list_add(l, data_home, strlen(data_home), SUBDIR);
    else if (home && home[0] == '/')
        list_add(l, home, strlen(home), "/.local/share" SUBDIR);
    const char *data_dirs = slm__getenv("XDG_DATA_DIRS");
    if (!data_dirs || !*data_dirs)
        data_dirs = "/usr/local/share:/usr/share";
    list_add_colon(l, data_dirs, SUBDIR, true);
    return true;
}

char **slm__search_path_build(const slm_registry_options_t *opts, bool *use_env)
{
    dir_list_t l = {0};
    bool have_opts = opts && opts->struct_size >= offsetof(slm_registry_options_t, search_path) +
                                                     sizeof(opts->search_path);
    bool ignore_env = have_opts && opts->struct_size >= sizeof(slm_registry_options_t) &&
                      opts->ignore_environment;
    *use_env = !ignore_env;
    if (have_opts && opts->search_path) {
        list_add_colon(&l, opts->search_path, "", false);
    } else {
        bool more = true;
        if (!ignore_env)
            more = add_environment(&l);
        else
            list_add_colon(&l, "/usr/local/share:/usr/share", SUBDIR, true);
        if (more)
            list_add(&l, SLM_MANIFEST_DIR, strlen(SLM_MANIFEST_DIR), "");
    }
    if (l.failed || !l.v) {
        slm__search_path_free(l.v);
        return l.failed ? NULL : calloc(1, sizeof(char *));
    }
    return l.v;
}

void slm__search_path_free(char **dirs)
{
    if (!dirs)
        return;
    for (char **d = dirs; *d; d++)
        free(*d);
    free(dirs);
}

static int cmp_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_manifest_name(const char *n)
{
    size_t len = strlen(n);
    /* Dot files are editor and package-manager leftovers, never manifests. */
    return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".json") == 0;
}

char **slm__folder_list(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT && errno != ENOTDIR)
            slm_log(SLM_LOG_WARN, "registry", "%s: cannot read plugin folder: %s", dir,
                    strerror(errno));
        return NULL;
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_manifest_name(e->d_name))
            continue;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap = ncap;
        }
        if (!(v[cnt] = strdup(e->d_name)))
            break;
        cnt++;
    }
    closedir(d);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_bytes);
    *n = cnt;
    return v;
}

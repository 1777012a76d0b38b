/* Judging OUT before anything is written: symbolic links followed to the file they
 * name, non-files and the job's own inputs refused, foreign folders kept. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/input.h>
#include <slmops/output.h>

#include "internal/output.h"
#include "internal/util.h"

#define MAX_LINKS 40

void slm_output_params_init(slm_output_params_t *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->layout = SLM_OUTPUT_FILE;
}

char *slm__path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p)
        snprintf(p, a + b + 2, "%s/%s", dir, name);
    return p;
}

char *slm__path_dir(const char *path)
{
    char *copy = strdup(path);
    char *d = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    return d;
}

char *slm__path_base(const char *path)
{
    char *copy = strdup(path);
    char *b = copy ? strdup(basename(copy)) : NULL;
    free(copy);
    return b;
}

/* ---- which file OUT names ---- */

/* Follow symbolic links from path (trailing slashes dropped) to the name that is
 * not a link: an existing file, or the name a dangling link points to. */
static int resolve(const char *path, char **out, struct stat *st, bool *exists, slm_error_t *err)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    char *cur = strndup(path, n);
    for (int hops = 0; cur; hops++) {
        if (lstat(cur, st) != 0) {
            if (errno != ENOENT) {
                int e = errno;
                free(cur);
                return slm__fail(err, SLM_E_IO, path, -1, "%s: cannot stat: %s", path, strerror(e));
            }
            *exists = false;
            *out = cur;
            return SLM_OK;
        }
        if (!S_ISLNK(st->st_mode)) {
            *exists = true;
            *out = cur;
            return SLM_OK;
        }
        char link[PATH_MAX];
        ssize_t len = hops < MAX_LINKS ? readlink(cur, link, sizeof link - 1) : -1;
        if (len < 0) {
            int e = hops < MAX_LINKS ? errno : ELOOP;
            free(cur);
            return slm__fail(err, SLM_E_IO, path, -1, "%s: cannot follow the link: %s", path,
                             strerror(e));
        }
        while (len > 1 && link[len - 1] == '/')
            len--;
        link[len] = '\0';
        char *dir = link[0] == '/' ? NULL : slm__path_dir(cur);
        char *next = link[0] == '/' ? strdup(link) : dir ? slm__path_join(dir, link) : NULL;
        free(dir);
        free(cur);
        cur = next;
    }
    return slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", path);
}

/* "OUT" or "OUT (a link to TARGET)", for messages. */
static void name_of(const char *path, const char *target, char *buf, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (strncmp(path, target, n) == 0 && !target[n])
        snprintf(buf, cap, "%s", target);
    else
        snprintf(buf, cap, "%s (a link to %s)", path, target);
}

static bool is_listed(const char *name, const char *const *names)
{
    for (size_t i = 0; names && names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* An existing folder is replaced only when it holds nothing but regular files of
 * the names the writer produces: anything else may be the user's. */
int slm__output_check_folder(const char *shown, const char *target, const char *const *names,
                        slm_error_t *err)
{
    DIR *d = opendir(target);
    if (!d)
        return slm__fail(err, SLM_E_IO, target, -1, "%s: cannot list: %s", shown, strerror(errno));
    struct dirent *e;
    int rc = SLM_OK;
    while (!rc && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        bool file = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(st.st_mode);
        if (!file || !is_listed(e->d_name, names))
            rc = slm__fail(err, SLM_E_INVALID, target, -1,
                           "%s: folder exists and holds '%s', which slmops did not write; not "
                           "replacing it", shown, e->d_name);
    }
    closedir(d);
    return rc;
}

static int check_kind(const char *shown, const char *target, const struct stat *st, int layout,
                      const char *const *names, slm_error_t *err)
{
    if (S_ISREG(st->st_mode)) {
        if (layout == SLM_OUTPUT_FOLDER)
            return slm__fail(err, SLM_E_INVALID, target, -1, "%s: is a regular file, and this "
                             "output is a folder; not replacing it", shown);
        return SLM_OK;
    }
    if (S_ISDIR(st->st_mode) && layout == SLM_OUTPUT_FOLDER)
        return slm__output_check_folder(shown, target, names, err);
    if (S_ISDIR(st->st_mode) && layout == SLM_OUTPUT_ANY)
        return SLM_OK;
    return slm__fail(err, SLM_E_INVALID, target, -1, "%s: is %s, not a regular file; not "
                     "replacing it", shown, slm_input_kind(st->st_mode));
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* True when the folder `dir` (its stat) holds path at any depth. */
static bool folder_holds(const struct stat *dir, const char *path)
{
    char *p = slm__path_dir(path);
    for (int depth = 0; p && depth < 64; depth++) {
        struct stat st;
        if (stat(p, &st) == 0 && same_inode(&st, dir)) {
            free(p);
            return true;
        }
        char *up = slm__path_dir(p);
        bool top = !up || strcmp(up, p) == 0;
        free(p);
        p = top ? (free(up), NULL) : up;
    }
    free(p);
    return false;
}

/* OUT may not be an input, nor a folder that holds one, nor a file inside an
 * input folder (a Hugging Face model read from its folder). */
static int check_inputs(const char *shown, const char *target, bool exists,
                        const slm_output_params_t *p, slm_error_t *err)
{
    if (!exists || p->in_place)
        return SLM_OK;
    struct stat out;
    if (stat(target, &out) != 0)
        return SLM_OK;
    for (size_t i = 0; i < p->n_inputs; i++) {
        const char *in = p->inputs ? p->inputs[i] : NULL;
        struct stat st, in_parent;
        if (!in || stat(in, &st) != 0)
            continue;
        if (same_inode(&st, &out))
            return slm__fail(err, SLM_E_INVALID, target, -1, "%s: is the input %s; refusing to "
                             "overwrite the input (write to another name)", shown, in);
        char *idir = S_ISDIR(out.st_mode) ? slm__path_dir(in) : NULL;
        bool inside = idir && stat(idir, &in_parent) == 0 && same_inode(&in_parent, &out);
        free(idir);
        if (inside)
            return slm__fail(err, SLM_E_INVALID, target, -1, "%s: holds the input %s; refusing "
                             "to replace it (write to another name)", shown, in);
        if (S_ISDIR(st.st_mode) && folder_holds(&st, target))
            return slm__fail(err, SLM_E_INVALID, target, -1, "%s: is inside the input folder %s; "
                             "refusing to replace it (write to another name)", shown, in);
    }
    return SLM_OK;
}

int slm_output_check(const char *path, const slm_output_params_t *p, char **target,
                     slm_error_t *err)
{
    if (target)
        *target = NULL;
    slm_output_params_t d;
    slm_output_params_init(&d);
    if (p)
        memcpy(&d, p, p->struct_size < sizeof d ? p->struct_size : sizeof d);
    if (!path || !*path)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "no output file name given");
    if (d.layout < SLM_OUTPUT_FILE || d.layout > SLM_OUTPUT_ANY)
        return slm__fail(err, SLM_E_INVALID, path, -1, "%s: unknown output layout %d", path,
                         d.layout);
    char *t = NULL;
    struct stat st;
    bool exists = false;
    int rc = resolve(path, &t, &st, &exists, err);
    if (rc)
        return rc;
    char shown[2 * PATH_MAX + 32];
    name_of(path, t, shown, sizeof shown);
    if (exists)
        rc = check_kind(shown, t, &st, d.layout, d.folder_names, err);
    if (!rc)
        rc = check_inputs(shown, t, exists, &d, err);
    if (rc || !target)
        free(t);
    else
        *target = t;
    return rc;
}

/* Atomic outputs for every job: the temporary beside OUT (registered for signals,
 * locked while it lives), then sync and rename; see output-check.c for OUT's rules. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <slmops/log.h>
#include <slmops/output.h>

#include "internal/output.h"
#include "internal/util.h"

struct slm_output {
    char *target;        /* OUT, links followed */
    char *temp;          /* TARGET.slmops-tmp.PID.XXXXXX */
    int layout;
    int fd;              /* the temporary, holding its lock */
    int slot;            /* in the signal table, or -1 */
    int mode;            /* permissions of the file replaced, or -1 */
    const char *const *folder_names;
};

/* ---- the temporary ---- */

static void random_suffix(char *s)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16);
        for (int i = 0; i < 6; i++, x /= 61)
            r[i] = (unsigned char)(x + (unsigned long)i * 17);
    }
    for (int i = 0; i < 6; i++)
        s[i] = abc[r[i] % (sizeof abc - 1)];
    s[6] = '\0';
}

/* One try at creating the temporary: the descriptor, or -1 with errno. */
static int try_create(const char *path, bool folder)
{
    if (!folder)
        return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (mkdir(path, 0777) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        rmdir(path);
        errno = e;
    }
    return fd;
}

/* Create the temporary beside the target, registered for signals before it exists
 * (so no moment leaves it unregistered) and locked for as long as o lives. */
static int create_temp(slm_output_t *o, slm_error_t *err)
{
    size_t cap = strlen(o->target) + sizeof SLM__OUTPUT_TMP_MARK + 32;
    if (!(o->temp = malloc(cap)))
        return slm__fail(err, SLM_E_NOMEM, o->target, -1, "%s: out of memory", o->target);
    bool folder = o->layout == SLM_OUTPUT_FOLDER;
    for (int tries = 0; o->fd < 0; tries++) {
        char sfx[7];
        random_suffix(sfx);
        snprintf(o->temp, cap, "%s" SLM__OUTPUT_TMP_MARK "%d.%s", o->target, (int)getpid(), sfx);
        if ((o->slot = slm__output_register(o->temp, folder)) < 0)
            return slm__fail(err, SLM_E_INVALID, o->target, -1, "%s: too many outputs at once, "
                             "or the name is too long", o->target);
        if ((o->fd = try_create(o->temp, folder)) >= 0)
            break;
        int e = errno;
        slm__output_unregister(o->slot);
        o->slot = -1;
        if (e != EEXIST || tries == 100)
            return slm__fail(err, SLM_E_IO, o->target, -1, "%s: cannot create a temporary %s "
                             "beside it: %s", o->target, folder ? "folder" : "file", strerror(e));
    }
    /* Without locks (some network file systems) the PID alone tells later runs. */
    if (flock(o->fd, LOCK_EX | LOCK_NB) != 0)
        slm_log(SLM_LOG_DEBUG, "output", "%s: cannot lock: %s", o->temp, strerror(errno));
    return SLM_OK;
}

static void output_free(slm_output_t *o)
{
    if (o->fd >= 0)
        close(o->fd);
    free(o->target);
    free(o->temp);
    free(o);
}

int slm_output_prepare(const char *path, const slm_output_params_t *p, slm_output_t **out,
                       slm_error_t *err)
{
    if (!out)
        return slm__fail(err, SLM_E_INVALID, path, -1, "output: no result pointer");
    *out = NULL;
    slm_output_params_t d;
    slm_output_params_init(&d);
    if (p)
        memcpy(&d, p, p->struct_size < sizeof d ? p->struct_size : sizeof d);
    if (d.layout != SLM_OUTPUT_FILE && d.layout != SLM_OUTPUT_FOLDER)
        return slm__fail(err, SLM_E_INVALID, path, -1, "%s: an output is a file or a folder",
                         path ? path : "");
    slm_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory", path ? path : "");
    o->fd = -1;
    o->slot = -1;
    o->layout = d.layout;
    o->folder_names = d.folder_names;
    int rc = slm_output_check(path, &d, &o->target, err);
    struct stat old;
    o->mode = -1;
    if (!rc && lstat(o->target, &old) == 0 && S_ISREG(old.st_mode))
        o->mode = (int)(old.st_mode & 0777);
    if (!rc) {
        if (strcmp(path, o->target) != 0)
            slm_log(SLM_LOG_INFO, "output", "%s: a link; writing the file it names, %s", path,
                    o->target);
        slm__output_remove_dead(o->target);
        rc = create_temp(o, err);
    }
    if (rc) {
        slm_output_abort(o);
        return rc;
    }
    *out = o;
    return SLM_OK;
}

const char *slm_output_path(const slm_output_t *o)
{
    return o ? o->temp : NULL;
}

const char *slm_output_target(const slm_output_t *o)
{
    return o ? o->target : NULL;
}

void slm_output_abort(slm_output_t *o)
{
    if (!o)
        return;
    if (o->slot >= 0) {
        slm__output_remove(o->temp, o->layout == SLM_OUTPUT_FOLDER);
        slm__output_unregister(o->slot);
    }
    output_free(o);
}

/* ---- commit ---- */

static int sync_folder(slm_output_t *o, slm_error_t *err)
{
    DIR *d = fdopendir(dup(o->fd));
    if (!d)
        return slm__fail(err, SLM_E_IO, o->target, -1, "%s: cannot list the temporary folder: "
                         "%s", o->target, strerror(errno));
    struct dirent *e;
    int rc = SLM_OK;
    while (!rc && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
            rc = slm__fail(err, SLM_E_IO, o->target, -1, "%s: cannot write %s: %s", o->target,
                           e->d_name, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return rc;
}

/* The old folder now lies at the temporary name; it was checked just before the
 * exchange to hold only the writer's files. */
static void remove_old_folder(slm_output_t *o)
{
    slm__output_remove(o->temp, true);
    struct stat st;
    if (lstat(o->temp, &st) == 0)
        slm_log(SLM_LOG_WARN, "output", "%s: the earlier folder could not be removed; it is "
                "left as %s", o->target, o->temp);
}

/* No atomic exchange on this file system: move the old folder aside first, so
 * the target only ever names a complete folder. */
static int swap_by_two_renames(slm_output_t *o)
{
    /* Not a temporary's name: a later run's clean-up of dead writers' temporaries
     * must never take the user's earlier folder for one. */
    size_t cap = strlen(o->target) + 48;
    char *aside = malloc(cap);
    if (!aside)
        return ENOMEM;
    char sfx[7];
    random_suffix(sfx);
    snprintf(aside, cap, "%s.slmops-old.%d.%s", o->target, (int)getpid(), sfx);
    int e = 0;
    if (rename(o->target, aside) != 0) {
        e = errno;
    } else if (rename(o->temp, o->target) != 0) {
        e = errno;
        if (rename(aside, o->target) != 0)
            slm_log(SLM_LOG_WARN, "output", "%s: the earlier folder could not be put back; it "
                    "is kept as %s", o->target, aside);
    } else {
        /* The temporary's name now holds nothing; the slot takes the old folder. */
        rename(aside, o->temp);
    }
    free(aside);
    return e;
}

static int move_into_place(slm_output_t *o, slm_error_t *err)
{
    struct stat st;
    bool folder = o->layout == SLM_OUTPUT_FOLDER;
    bool swap = folder && lstat(o->target, &st) == 0 && S_ISDIR(st.st_mode);
    if (swap) {
        int rc = slm__output_check_folder(o->target, o->target, o->folder_names, err);
        if (rc)
            return rc;
    }
    int e = 0;
    slm__output_critical_enter();
    if (!swap && rename(o->temp, o->target) != 0)
        e = errno;
    else if (swap && renameat2(AT_FDCWD, o->temp, AT_FDCWD, o->target, RENAME_EXCHANGE) != 0)
        e = errno == EINVAL || errno == ENOSYS ? swap_by_two_renames(o) : errno;
    if (!e && !swap) {
        slm__output_unregister(o->slot);
        o->slot = -1;
    }
    slm__output_critical_leave();
    if (e)
        return slm__fail(err, SLM_E_IO, o->target, -1, "%s: cannot rename the temporary %s into "
                         "place: %s", o->target, o->temp, strerror(e));
    if (swap) {
        remove_old_folder(o);
        slm__output_unregister(o->slot);
        o->slot = -1;
    }
    return SLM_OK;
}

/* A test hook (SLMOPS_TEST_OUTPUT_DELAY_MS): hold every output just before it is
 * synced and renamed, so the suite can signal or kill a writer at that point. */
static void test_delay(void)
{
    const char *v = slm__getenv("SLMOPS_TEST_OUTPUT_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int slm_output_commit(slm_output_t *o, slm_error_t *err)
{
    if (!o)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "output: nothing to commit");
    test_delay();
    int rc = SLM_OK;
    if (o->layout == SLM_OUTPUT_FOLDER)
        rc = sync_folder(o, err);
    /* A replaced file keeps its permissions (set last: a read-only one would
     * have kept the writer out); a new one has the umask's. */
    if (!rc && o->mode >= 0 && fchmod(o->fd, (mode_t)o->mode) != 0)
        slm_log(SLM_LOG_DEBUG, "output", "%s: cannot keep the mode: %s", o->temp, strerror(errno));
    if (!rc && fsync(o->fd) != 0)
        rc = slm__fail(err, SLM_E_IO, o->target, -1, "%s: cannot write: %s", o->target,
                       strerror(errno));
    if (!rc)
        rc = move_into_place(o, err);
    if (rc) {
        slm_output_abort(o);
        return rc;
    }
    char *dir = slm__path_dir(o->target);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0 || fsync(dfd) != 0)
        slm_log(SLM_LOG_WARN, "output", "%s: cannot sync its folder: %s", o->target,
                strerror(errno));
    if (dfd >= 0)
        close(dfd);
    free(dir);
    output_free(o);
    return SLM_OK;
}

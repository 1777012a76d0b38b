/* Opening the files a user names: stat first and open with O_NONBLOCK, so that a
 * FIFO, a device or a socket is refused by name instead of blocking the process. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/input.h>

#include "internal/util.h"

const char *slm_input_kind(unsigned mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "not a regular file";
}

static bool acceptable(mode_t mode, unsigned flags)
{
    return S_ISREG(mode) || (S_ISDIR(mode) && (flags & SLM_INPUT_FOLDER_OK));
}

static int refuse(const char *path, mode_t mode, slm_error_t *err)
{
    return slm__fail(err, SLM_E_INVALID, path, -1, "%s: is %s, not a regular file", path,
                     slm_input_kind(mode));
}

int slm_input_open(const char *path, unsigned flags, int *fd, slm_error_t *err)
{
    *fd = -1;
    if (!path || !*path)
        return slm__fail(err, SLM_E_INVALID, path, -1, "no file name given");
    /* stat first: opening some devices has effects of its own. */
    struct stat st;
    if (stat(path, &st) != 0)
        return slm__fail(err, errno == ENOENT ? SLM_E_NOT_FOUND : SLM_E_IO, path, -1,
                         "%s: cannot open: %s", path, strerror(errno));
    if (!acceptable(st.st_mode, flags))
        return refuse(path, st.st_mode, err);
    /* The path may have changed since: O_NONBLOCK keeps a FIFO put there from
     * blocking the open, fstat judges what was opened. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0)
        return slm__fail(err, errno == ENOENT ? SLM_E_NOT_FOUND : SLM_E_IO, path, -1,
                         "%s: cannot open: %s", path, strerror(errno));
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return slm__fail(err, SLM_E_IO, path, -1, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!acceptable(st.st_mode, flags)) {
        close(f);
        return refuse(path, st.st_mode, err);
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return slm__fail(err, SLM_E_IO, path, -1, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = f;
    return SLM_OK;
}

static int too_large(const char *path, size_t max, slm_error_t *err)
{
    if (max >= 1u << 20)
        return slm__fail(err, SLM_E_INVALID, path, -1, "%s: larger than the %zu MiB allowed",
                         path, max >> 20);
    return slm__fail(err, SLM_E_INVALID, path, -1, "%s: larger than the %zu bytes allowed", path,
                     max);
}

int slm_input_read_all(const char *path, size_t max, char **buf, size_t *len, slm_error_t *err)
{
    *buf = NULL;
    *len = 0;
    int fd;
    int rc = slm_input_open(path, 0, &fd, err);
    if (rc)
        return rc;
    /* A regular file says its size: refuse a large one before reading any of it. */
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > (uint64_t)max) {
        close(fd);
        return too_large(path, max, err);
    }
    size_t cap = 0, n = 0;
    char *b = NULL;
    for (;;) {
        if (n == cap) {
            size_t want = cap ? cap * 2 : 1 << 16;
            if (cap > max) {
                rc = too_large(path, max, err);
                break;
            }
            char *nb = realloc(b, want + 1);
            if (!nb) {
                rc = slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory reading it", path);
                break;
            }
            b = nb;
            cap = want;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = slm__fail(err, SLM_E_IO, path, (int64_t)n, "%s: read error: %s", path,
                           strerror(errno));
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (!rc && n > max)
        rc = too_large(path, max, err);
    if (rc) {
        free(b);
        return rc;
    }
    if (!b && !(b = malloc(1)))
        return slm__fail(err, SLM_E_NOMEM, path, -1, "%s: out of memory reading it", path);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return SLM_OK;
}

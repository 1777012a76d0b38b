/* Helpers the in-tree plugins share: the error object filler, opening and mapping
 * the files a user names, type names for messages. See plugin-util.h. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin-util.h"

int plugin_vfail(slm_error_t *err, int code, const char *path, int64_t offset, const char *fmt,
                 va_list ap)
{
    /* The object may come from an older host: write only the fields it has. */
    if (!err || err->struct_size < offsetof(slm_error_t, path))
        return code;
    char what[400];
    vsnprintf(what, sizeof what, fmt, ap);
    if (!path)
        path = "";
    err->code = code;
    if (offset >= 0)
        snprintf(err->message, sizeof err->message, "%s: offset %lld: %s", path,
                 (long long)offset, what);
    else if (*path)
        snprintf(err->message, sizeof err->message, "%s: %s", path, what);
    else   /* no file to name: the message alone (a trainer's setting, say) */
        snprintf(err->message, sizeof err->message, "%s", what);
    if (err->struct_size >= offsetof(slm_error_t, offset))
        snprintf(err->path, sizeof err->path, "%s", path);
    if (err->struct_size >= sizeof(slm_error_t))
        err->offset = offset;
    return code;
}

int plugin_fail(slm_error_t *err, int code, const char *path, int64_t offset, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = plugin_vfail(err, code, path, offset, fmt, ap);
    va_end(ap);
    return code;
}

const char *plugin_file_kind(mode_t mode)
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
    return "not a regular file";
}

int plugin_open_file(const char *path, struct stat *st, slm_error_t *err)
{
    if (stat(path, st) != 0)
        return plugin_fail(err, errno == ENOENT ? SLM_E_NOT_FOUND : SLM_E_IO, path, -1,
                           "cannot open: %s", strerror(errno));
    if (!S_ISREG(st->st_mode))
        return plugin_fail(err, SLM_E_INVALID, path, -1, "is %s, not a regular file",
                           plugin_file_kind(st->st_mode));
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return plugin_fail(err, errno == ENOENT ? SLM_E_NOT_FOUND : SLM_E_IO, path, -1,
                           "cannot open: %s", strerror(errno));
    int fl;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || (fl = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        bool reg = S_ISREG(st->st_mode);
        close(fd);
        return reg ? plugin_fail(err, SLM_E_IO, path, -1, "cannot open: %s", strerror(e))
                   : plugin_fail(err, SLM_E_INVALID, path, -1, "is %s, not a regular file",
                                 plugin_file_kind(st->st_mode));
    }
    return fd;
}

int plugin_map_file(const char *path, plugin_map_t *m, slm_error_t *err)
{
    *m = (plugin_map_t){0};
    struct stat st;
    int fd = plugin_open_file(path, &st, err);
    if (fd < 0)
        return fd;
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return plugin_fail(err, SLM_E_IO, path, -1, "too large to map");
    }
    size_t size = (size_t)st.st_size;
    void *p = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return plugin_fail(err, SLM_E_IO, path, -1, "cannot map: %s", strerror(e));
    m->base = p;
    m->size = size;
    return SLM_OK;
}

void plugin_unmap_file(plugin_map_t *m)
{
    if (m->base)
        munmap((void *)m->base, (size_t)m->size);
    *m = (plugin_map_t){0};
}

const char *plugin_type_name(const slm_host_t *host, int type, char *buf, size_t cap)
{
    /* type_name took a reserved slot, so the size alone cannot tell an older host:
     * those zeroed their reserved slots, which reads as NULL here. */
    bool lent = host && host->struct_size >= offsetof(slm_host_t, type_name) +
                                                 sizeof host->type_name && host->type_name;
    const char *name = lent ? host->type_name(type) : NULL;
    if (name)
        return name;
    snprintf(buf, cap, "type %d (unknown)", type);
    return buf;
}

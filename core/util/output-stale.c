/* Temporaries that dead writers left (a SIGKILL, a power cut): found by their name
 * next to OUT and removed when no live process holds them. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/log.h>

#include "internal/output.h"
#include "internal/util.h"

/* PID from "BASE.slmops-tmp.PID.XXXXXX", or 0 when name is not one of ours for BASE. */
static pid_t temp_owner(const char *name, const char *base)
{
    size_t b = strlen(base), m = sizeof SLM__OUTPUT_TMP_MARK - 1;
    if (strncmp(name, base, b) != 0 || strncmp(name + b, SLM__OUTPUT_TMP_MARK, m) != 0)
        return 0;
    const char *s = name + b + m;
    char *end;
    errno = 0;
    long pid = strtol(s, &end, 10);
    if (errno || end == s || *s == '-' || *s == '+' || pid <= 0 || pid > INT_MAX || *end != '.' ||
        strlen(end + 1) != 6)
        return 0;
    return (pid_t)pid;
}

/* When process pid started, in seconds since the epoch; -1 when unknown. */
static double started_at(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
    if (f)
        fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');   /* the command name may hold spaces */
    unsigned long long ticks = 0;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
        return -1;
    unsigned long long boot = 0;
    f = fopen("/proc/stat", "re");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &boot) == 1)
            break;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    return boot && hz > 0 ? (double)boot + (double)ticks / (double)hz : -1;
}

/* A temporary's writer is gone when nobody holds its lock and its PID either runs
 * no process or one that started after the temporary last changed (the PID was
 * reused). A writer between creating and locking its temporary is running and
 * started earlier, so it is never taken for dead. */
static bool writer_gone(int fd, pid_t pid, const struct stat *st)
{
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        return false;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    double start = started_at(pid);
    return start >= 0 && start > (double)st->st_mtime + 1;
}

void slm__output_remove_dead(const char *target)
{
    char *dir = slm__path_dir(target), *base = slm__path_base(target);
    DIR *d = dir && base ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        pid_t pid = temp_owner(e->d_name, base);
        /* Our own PID too: a container often gives every run the same one, and a
         * temporary of this very process is locked, or newer than the process. */
        if (!pid)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                        O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            continue;
        bool kind = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
        if (kind && writer_gone(fd, pid, &st)) {
            char *p = slm__path_join(dir, e->d_name);
            if (p)
                slm__output_remove(p, S_ISDIR(st.st_mode));
            struct stat after;
            if (p && fstatat(dirfd(d), e->d_name, &after, AT_SYMLINK_NOFOLLOW) != 0)
                slm_log(SLM_LOG_INFO, "output", "%s: removed %s, left by process %d, which is "
                        "no longer running", target, e->d_name, (int)pid);
            else
                slm_log(SLM_LOG_WARN, "output", "%s: cannot remove %s, left by process %d",
                        target, e->d_name, (int)pid);
            free(p);
        }
        close(fd);
    }
    if (d)
        closedir(d);
    free(dir);
    free(base);
}

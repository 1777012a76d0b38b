/* The temporaries in flight, in a fixed table a signal handler can read: paths are
 * copied in before a slot is published, and removing them uses only syscalls. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <slmops/output.h>

#include "internal/output.h"

#define MAX_SLOTS 32

enum { FREE, CLAIMED, FILE_SLOT, FOLDER_SLOT };

typedef struct slot {
    atomic_int state;
    char path[PATH_MAX];
} slot_t;

static slot_t slots[MAX_SLOTS];
static atomic_int critical;
static __thread sigset_t saved_mask;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal handlers need lock-free atomics");

int slm__output_register(const char *path, bool folder)
{
    size_t n = strlen(path);
    if (n >= PATH_MAX)
        return -1;
    for (int i = 0; i < MAX_SLOTS; i++) {
        int want = FREE;
        if (!atomic_compare_exchange_strong(&slots[i].state, &want, CLAIMED))
            continue;
        memcpy(slots[i].path, path, n + 1);
        atomic_store(&slots[i].state, folder ? FOLDER_SLOT : FILE_SLOT);
        return i;
    }
    return -1;
}

void slm__output_unregister(int slot)
{
    if (slot >= 0 && slot < MAX_SLOTS)
        atomic_store(&slots[slot].state, FREE);
}

void slm__output_critical_enter(void)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &saved_mask);
    atomic_fetch_add(&critical, 1);
}

void slm__output_critical_leave(void)
{
    atomic_fetch_sub(&critical, 1);
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
}

/* One pass over the folder's entries; true when it removed something (removing
 * while reading may make getdents skip entries, so the caller passes again). */
static bool remove_entries(int dfd)
{
    char buf[4096] __attribute__((aligned(8)));
    bool removed = false;
    ssize_t n;
    if (lseek(dfd, 0, SEEK_SET) < 0)
        return false;
    while ((n = getdents64(dfd, buf, sizeof buf)) > 0) {
        for (ssize_t at = 0; at < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + at);
            at += d->d_reclen;
            const char *name = d->d_name;
            if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
                continue;
            if (unlinkat(dfd, name, 0) == 0 ||
                (errno == EISDIR && unlinkat(dfd, name, AT_REMOVEDIR) == 0))
                removed = true;
        }
    }
    return removed;
}

void slm__output_remove(const char *path, bool folder)
{
    if (!folder) {
        unlink(path);
        return;
    }
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0) {
        for (int pass = 0; pass < 8 && remove_entries(dfd); pass++)
            ;
        close(dfd);
    }
    rmdir(path);
}

void slm_output_signal_cleanup(void)
{
    int saved = errno;   /* a handler that returns must not change what errno says */
    /* A rename in progress on another thread finishes first (it is short). */
    while (atomic_load(&critical) > 0)
        poll(NULL, 0, 1);
    for (int i = 0; i < MAX_SLOTS; i++) {
        int s = atomic_load(&slots[i].state);
        if (s == FILE_SLOT || s == FOLDER_SLOT)
            slm__output_remove(slots[i].path, s == FOLDER_SLOT);
    }
    errno = saved;
}

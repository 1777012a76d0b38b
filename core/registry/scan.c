/* A library's first load happens in a forked child, as GStreamer's plugin scanner
 * does: one that crashes, exits or hangs while loading disables only its plugin. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <slmops/plugin.h>

#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/util.h"

/* Loading a plugin takes milliseconds; this is for a library that never returns. */
#define SCAN_TIMEOUT_S 5
/* How long a cached "did not answer" verdict stands before the library is tried again. */
#define SCAN_RETRY_HANG_S 600
/* How often a silent child is checked for having died (a grandchild may hold
 * the pipe open after it). */
#define SCAN_SLICE_MS 50
#define ANSWER_MAGIC 0x534c4d53u   /* "SLMS" */

enum { STAGE_NO_DLOPEN = 1, STAGE_NO_ENTRY, STAGE_REFUSED, STAGE_DESCRIPTOR };

/* What the child writes in one write(2): smaller than PIPE_BUF, so atomic. */
typedef struct answer {
    uint32_t magic;
    int32_t stage;
    uint32_t abi_version;
    uint32_t iface_version;
    int32_t kind;
    char name[64];
    char version[64];
} answer_t;

/* ---- the child: never returns ---- */

static void no_log(slm_log_level_t level, const char *category, const char *fmt, ...)
{
    (void)level;
    (void)category;
    (void)fmt;
}

/* The plugin must answer here as it will in the host: the same negotiation. */
static const slm_host_t scan_host = {
    .struct_size = sizeof(slm_host_t),
    .abi_version = SLM_PLUGIN_ABI_VERSION,
    .log = no_log,
    .type_name = slm_type_name,
    .iface_version = slm__kind_iface_version,
};

/* Registered last, so it runs first when a constructor calls exit(): the
 * parent's atexit handlers and stdio buffers are not the child's to run. */
static void exit_guard(void)
{
    _exit(0);
}

/* The parent's handlers (temporary-file clean-up, ...) must not run here, and a
 * child in its own process group must not stop on terminal output. */
static void child_signals(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &old) != 0)
            continue;
        bool caught = (old.sa_flags & SA_SIGINFO) ||
                      (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
        if (caught || sig == SIGCHLD)
            sigaction(sig, &dfl, NULL);
    }
    sigaction(SIGTTOU, &ign, NULL);
    sigaction(SIGTTIN, &ign, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void copy_name(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reading a descriptor that points nowhere crashes the child, as it would the
 * parent: that is the verdict. */
static void describe(const slm_plugin_descriptor_t *d, answer_t *a)
{
    a->stage = STAGE_DESCRIPTOR;
    if (d->struct_size < offsetof(slm_plugin_descriptor_t, iface) + sizeof d->iface)
        return;
    a->abi_version = d->abi_version;
    a->kind = d->kind;
    copy_name(a->name, sizeof a->name, d->name);
    copy_name(a->version, sizeof a->version, d->version);
    if (d->iface && ((const uint32_t *)d->iface)[0] >= 2 * sizeof(uint32_t))
        a->iface_version = ((const uint32_t *)d->iface)[1];
}

__attribute__((noreturn)) static void child_main(const char *path, int fd, pid_t parent)
{
    child_signals();
    setpgid(0, 0);
#ifdef __linux__
    /* A parent killed while this child hangs takes the child with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    /* A crash is the expected outcome here: no core dump, not even to a pipe. */
    prctl(PR_SET_DUMPABLE, 0);
#else
    (void)parent;
#endif
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    atexit(exit_guard);
    answer_t a;
    memset(&a, 0, sizeof a);
    a.magic = ANSWER_MAGIC;
    a.stage = STAGE_NO_DLOPEN;
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    slm_plugin_entry_fn entry = NULL;
    if (dl) {
        a.stage = STAGE_NO_ENTRY;
        *(void **)&entry = dlsym(dl, SLM_PLUGIN_ENTRY_SYMBOL);
    }
    if (entry) {
        a.stage = STAGE_REFUSED;
        const slm_plugin_descriptor_t *d = entry(&scan_host, SLM_PLUGIN_ABI_VERSION);
        if (d)
            describe(d, &a);
    }
    ssize_t w;
    while ((w = write(fd, &a, sizeof a)) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/* ---- the parent ---- */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* True once the child has ended; it stays a zombie (WNOWAIT) so that its process
 * group cannot be reused before the group is killed. */
static bool child_ended(pid_t pid, siginfo_t *si)
{
    memset(si, 0, sizeof *si);
    int rc;
    while ((rc = waitid(P_PID, (id_t)pid, si, WEXITED | WNOHANG | WNOWAIT)) < 0 && errno == EINTR)
        ;
    /* ECHILD: the application ignores SIGCHLD and the child is already gone. */
    return (rc == 0 && si->si_pid == pid) || (rc < 0 && errno == ECHILD);
}

/* Reads the answer until it is whole, the pipe closes, the child ends without
 * writing (a grandchild may keep the pipe open) or the deadline passes. */
static size_t read_answer(int fd, pid_t pid, long long deadline, answer_t *a, siginfo_t *si,
                          bool *ended)
{
    size_t got = 0;
    *ended = false;
    while (got < sizeof *a) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, left < SCAN_SLICE_MS ? (int)left : SCAN_SLICE_MS);
        if (r < 0 && errno != EINTR)
            break;
        if (r == 0) {
            if (*ended)
                break;   /* ended, and nothing came in a whole slice after */
            *ended = child_ended(pid, si);
            continue;
        }
        if (r < 0)
            continue;
        ssize_t n = read(fd, (char *)a + got, sizeof *a - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* Waits for a child that closed the pipe without answering, up to the deadline. */
static bool wait_end(pid_t pid, long long deadline, siginfo_t *si)
{
    while (!child_ended(pid, si)) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        poll(NULL, 0, left < 10 ? (int)left : 10);
    }
    return true;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGPIPE: return "SIGPIPE";
    default: return NULL;
    }
}

/* Faults the library causes itself; a signal sent from outside (SIGKILL from the
 * OOM killer, SIGINT from the terminal) says nothing lasting about it. */
static bool own_fault(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT ||
           sig == SIGTRAP || sig == SIGSYS;
}

static void judge(const answer_t *a, size_t got, bool timed_out, bool ended,
                  const siginfo_t *si, slm__verdict_t *v)
{
    memset(v, 0, sizeof *v);
    v->lasting = true;
    if (got == sizeof *a && a->magic == ANSWER_MAGIC) {
        v->safe = true;
        v->answered = a->stage == STAGE_DESCRIPTOR;
        v->abi_version = a->abi_version;
        v->iface_version = a->iface_version;
        v->kind = a->kind;
        copy_name(v->name, sizeof v->name, a->name);
        copy_name(v->version, sizeof v->version, a->version);
        return;
    }
    if (timed_out) {
        /* Cached, so that later runs do not wait again, but only for a while: a
         * first load can be slow on a loaded machine without the library hanging. */
        v->retry_after = (int64_t)time(NULL) + SCAN_RETRY_HANG_S;
        snprintf(v->reason, sizeof v->reason, "library did not answer in %d s", SCAN_TIMEOUT_S);
        return;
    }
    bool signaled = ended && si->si_pid && (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED);
    if (!signaled) {
        /* Without a status (SIGCHLD ignored) the cause is unknown: not cached. */
        v->lasting = ended && si->si_pid;
        snprintf(v->reason, sizeof v->reason, "library exited while loading");
        return;
    }
    const char *name = signal_name(si->si_status);
    v->lasting = own_fault(si->si_status);
    if (name)
        snprintf(v->reason, sizeof v->reason, "library crashed while loading (%s)", name);
    else
        snprintf(v->reason, sizeof v->reason, "library crashed while loading (signal %d)",
                 si->si_status);
}

/* Returns false when no child could be started. */
static bool run_child(const char *path, slm__verdict_t *v)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    pid_t parent = getpid();
    long long deadline = now_ms() + SCAN_TIMEOUT_S * 1000;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(path, fds[1], parent);
    }
    close(fds[1]);
    setpgid(pid, pid);   /* the child does the same; whichever runs first wins */
    answer_t a;
    siginfo_t si;
    bool ended;
    memset(&a, 0, sizeof a);
    memset(&si, 0, sizeof si);
    size_t got = read_answer(fds[0], pid, deadline, &a, &si, &ended);
    close(fds[0]);
    bool timed_out = false;
    if (got < sizeof a && !ended)
        timed_out = !(ended = wait_end(pid, deadline, &si));
    /* The child if it still runs, and whatever it left behind in its group. */
    if (kill(-pid, SIGKILL) != 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    judge(&a, got, timed_out, ended, &si, v);
    return true;
}

int slm__scan_library(slm_registry_t *reg, const char *path, const struct stat *st,
                      char *reason, size_t reason_size)
{
    char stamp[128];
    slm__scan_stamp(st, stamp, sizeof stamp);
    slm__verdict_t v;
    const char *source = "verdict cache";
    if (!slm__verdict_lookup(reg, path, stamp, &v)) {
        if (!run_child(path, &v)) {
            slm_log(SLM_LOG_WARN, "registry",
                    "%s: cannot check the library in a child process (%s); loading it directly",
                    path, strerror(errno));
            return SLM_OK;
        }
        source = "child process";
        if (v.lasting)
            slm__verdict_store(reg, path, stamp, &v);
    }
    if (v.answered)
        slm_log(SLM_LOG_DEBUG, "registry",
                "%s: loads (%s): %s %s, kind %d, ABI %u, interface version %u", path, source,
                v.name, v.version, v.kind, v.abi_version, v.iface_version);
    else
        slm_log(SLM_LOG_DEBUG, "registry", "%s: %s (%s)", path,
                v.safe ? "loads" : v.reason, source);
    if (v.safe)
        return SLM_OK;
    snprintf(reason, reason_size, "%s", v.reason);
    return SLM_E_PLUGIN;
}

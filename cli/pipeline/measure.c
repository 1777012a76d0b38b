/* Peak memory while generating, measured honestly: a fresh process (this program run
 * again as `slmops generate`) per model, its ru_maxrss read from wait4 when it ends. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"

int slm_pipe_measure_rss(slm_pipe_t *p, const char *model, const char *prompt, long n_tokens,
                         const char *log, long *kib)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "slmops %s: /proc/self/exe: %s (peak memory needs a fresh process)\n",
                p->verb, strerror(errno));
        return SLM_CLI_FAILED;
    }
    self[len] = '\0';
    char n[24], t[24];
    snprintf(n, sizeof n, "%ld", n_tokens);
    snprintf(t, sizeof t, "%ld", p->threads);
    char *argv[16] = {"slmops", "generate", "-m", (char *)model, "-p", (char *)prompt, "-n", n,
                      "--temp", "0"};
    int argc = 10;
    if (p->threads > 0) {
        argv[argc++] = "-t";
        argv[argc++] = t;
    }
    if (p->device) {
        argv[argc++] = "--device";
        argv[argc++] = (char *)p->device;
    }
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "slmops %s: fork: %s\n", p->verb, strerror(errno));
        return SLM_CLI_FAILED;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (null >= 0)
            dup2(null, 1);
        if (err >= 0)
            dup2(err, 2);
        execv(self, argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    pid_t got;
    while ((got = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
        ;
    if (got != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "slmops %s: measuring the memory of %s: `slmops generate` failed "
                "(%s %d; see %s)\n", p->verb, model, WIFSIGNALED(status) ? "signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), log);
        return SLM_CLI_FAILED;
    }
    *kib = ru.ru_maxrss;
    return SLM_CLI_OK;
}

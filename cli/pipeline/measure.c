/* Peak memory while generating, measured honestly: a fresh process (this program run
 * again as `slmops generate --json`) per model, reporting its own peak (VmHWM). A
 * parent's wait4 ru_maxrss would not do: Linux counts in it the memory of the forked
 * copy of this pipeline, which outweighs a small student. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/common.h"
#include "cli/pipeline/pipeline.h"

static int run_generate(slm_pipe_t *p, char *const *argv, const char *out, const char *log)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "slmops %s: /proc/self/exe: %s (peak memory needs a fresh process)\n",
                p->verb, strerror(errno));
        return SLM_CLI_FAILED;
    }
    self[len] = '\0';
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "slmops %s: fork: %s\n", p->verb, strerror(errno));
        return SLM_CLI_FAILED;
    }
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int e = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(self, argv);
        _exit(127);
    }
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (got != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "slmops %s: measuring the memory of %s: `slmops generate` failed "
                "(%s %d; see %s)\n", p->verb, argv[3], WIFSIGNALED(status) ? "signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), log);
        return SLM_CLI_FAILED;
    }
    return SLM_CLI_OK;
}

int slm_pipe_measure_rss(slm_pipe_t *p, const char *model, const char *prompt, long n_tokens,
                         const char *out, const char *log, long *kib)
{
    char n[24], t[24];
    snprintf(n, sizeof n, "%ld", n_tokens);
    snprintf(t, sizeof t, "%ld", p->threads);
    char *argv[16] = {"slmops", "generate", "-m", (char *)model, "-p", (char *)prompt, "-n", n,
                      "--temp", "0", "--json"};
    int argc = 11;
    if (p->threads > 0) {
        argv[argc++] = "-t";
        argv[argc++] = t;
    }
    if (p->device) {
        argv[argc++] = "--device";
        argv[argc++] = (char *)p->device;
    }
    argv[argc] = NULL;
    int rc = run_generate(p, argv, out, log);
    if (rc != SLM_CLI_OK)
        return rc;
    json_error_t jerr;   /* as reals: the seed may be a u64 jansson's integers do not hold */
    json_t *doc = json_load_file(out, JSON_DECODE_INT_AS_REAL, &jerr);
    double peak = json_number_value(json_object_get(json_object_get(doc, "timings"),
                                                    "peak_rss_bytes"));
    json_decref(doc);
    if (peak <= 0) {
        fprintf(stderr, "slmops %s: measuring the memory of %s: %s has no "
                "timings.peak_rss_bytes (this system's /proc gives no VmHWM)\n", p->verb, model,
                out);
        return SLM_CLI_FAILED;
    }
    *kib = (long)(peak / 1024);
    return SLM_CLI_OK;
}

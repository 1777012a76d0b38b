/* SIGTERM, SIGHUP and SIGINT end the command as 128 + the signal, after removing
 * the temporary outputs in flight, so an interrupted job leaves no partial file. */
#include "config.h"

#include <signal.h>
#include <stddef.h>
#include <unistd.h>

#include <slmops/job.h>
#include <slmops/output.h>

#include "cli/common.h"

static const int caught[] = {SIGTERM, SIGHUP, SIGINT};

/* A job that stops at its next safe point on the first signal (finetune: finish
 * the step, checkpoint); a second signal ends the command at once. */
static slm_job_t *volatile routed;
static volatile sig_atomic_t first_signal;

/* Only async-signal-safe calls: the library's cleanup is written for this. */
static void on_signal(int sig)
{
    slm_job_t *job = routed;
    if (job && !first_signal) {
        first_signal = sig;
        slm_job_cancel(job);
        return;
    }
    slm_output_signal_cleanup();
    _exit(128 + sig);
}

void slm_cli_signals_init(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++)
        sigaddset(&sa.sa_mask, caught[i]);
    for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) {
        struct sigaction old;
        /* A signal ignored by whoever started us (nohup, a shell's background
         * job's SIGINT) stays ignored. */
        if (sigaction(caught[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sigaction(caught[i], &sa, NULL);
    }
}

void slm_cli_signals_cancel_job(slm_job_t *job)
{
    routed = job;
}

int slm_cli_signals_caught(void)
{
    return first_signal;
}

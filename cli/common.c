/* Helpers every verb of the `slmops` command shares: logging to stderr,
 * opening the registry, argument parsing and usage errors. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/log.h>

#include "cli/common.h"

static void log_to_stderr(slm_log_level_t level, const char *category, const char *msg,
                          void *user)
{
    (void)user;
    fprintf(stderr, "slmops: %s: %s%s%s\n", slm_log_level_name(level), category,
            *category ? ": " : "", msg);
}

void slm_cli_log_init(void)
{
    slm_log_set_handler(log_to_stderr, NULL);
}

slm_registry_t *slm_cli_registry_open(void)
{
    slm_error_t err;
    slm_error_init(&err);
    slm_registry_t *reg = slm_registry_new(NULL, &err);
    if (!reg)
        fprintf(stderr, "slmops: cannot build the plugin registry: %s\n", err.message);
    return reg;
}

bool slm_cli_parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int slm_cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "slmops %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'slmops %s --help'.\n", verb);
    return SLM_CLI_USAGE;
}

bool slm_cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

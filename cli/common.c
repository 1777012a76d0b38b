/* Helpers every verb of the `slmops` command shares: logging to stderr,
 * opening the registry, argument parsing and usage errors. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <math.h>
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

bool slm_cli_parse_float(const char *s, double lo, double hi, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

const char *slm_cli_value(int argc, char **argv, int *i, const char *verb)
{
    if (*i + 1 >= argc) {
        slm_cli_usage_error(verb, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int slm_cli_fail(const char *verb, const slm_error_t *err)
{
    const char *msg = err && err->message[0] ? err->message : slm_strerror(err ? err->code : 0);
    fprintf(stderr, "slmops %s: %s", verb, msg);
    /* Library messages usually name the file; add it (and the offset) when not. */
    if (err && err->path[0] && !strstr(msg, err->path))
        fprintf(stderr, " (%s", err->path);
    if (err && err->path[0] && !strstr(msg, err->path))
        fprintf(stderr, err->offset >= 0 ? ", offset %lld)" : ")", (long long)err->offset);
    fprintf(stderr, "\n");
    return SLM_CLI_FAILED;
}

int slm_cli_print_json(struct json_t *doc)
{
    if (!doc)
        return SLM_CLI_FAILED;
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) == 0 ? SLM_CLI_OK
                                                                              : SLM_CLI_FAILED;
    printf("\n");
    json_decref(doc);
    return rc;
}

/* Length of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3
               : (s[0] >> 3) == 30 ? 4 : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    uint32_t cp = len == 3 ? ((s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6)
                : len == 4 ? ((s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12) : 0x80;
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

struct json_t *slm_cli_json_text(const char *s, size_t n)
{
    char *clean = malloc(n * 3 + 1);
    if (!clean)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (len) {
            memcpy(clean + out, s + i, len);
            out += len;
            i += len;
        } else {
            memcpy(clean + out, "\xef\xbf\xbd", 3);
            out += 3;
            i++;
        }
    }
    json_t *j = json_stringn(clean, out);
    free(clean);
    return j;
}

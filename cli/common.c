/* Helpers every verb of the `slmops` command shares: logging to stderr,
 * opening the registry, argument parsing and usage errors. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <math.h>
#include <slmops/input.h>
#include <slmops/log.h>

#include "cli/common.h"
#include "cli/options.h"

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

int slm_cli_run_with_registry(int parse_rc, int (*run)(const void *opts, slm_registry_t *reg),
                              const void *opts)
{
    if (parse_rc != SLM_CLI_OK)
        return parse_rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : parse_rc;
    slm_registry_t *reg = slm_cli_registry_open();
    if (!reg)
        return SLM_CLI_FAILED;
    int rc = run(opts, reg);
    slm_registry_free(reg);
    return rc;
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
    fprintf(stderr, " (see 'slmops %s --help')\n", verb);
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

/* jansson's integers are signed: a value above INT64_MAX is held as a string,
 * "\x01" + a random nonce + ":" + its digits, which slm_cli_print_json writes as the
 * bare number. The nonce, drawn once per process, is what no text a user gives can
 * hold by chance (JSON_ENSURE_ASCII writes the first byte as \u0001). */
static char u64_mark[40];

static const char *u64_marker(void)
{
    if (!u64_mark[0])
        snprintf(u64_mark, sizeof u64_mark, "\x01%016llx:",
                 (unsigned long long)slm_cli_fresh_seed());
    return u64_mark;
}

json_t *slm_cli_json_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char buf[64];
    snprintf(buf, sizeof buf, "%s%llu", u64_marker(), (unsigned long long)v);
    return json_string(buf);
}

/* Writes text with each marked string as the bare digits it holds. */
static void put_unmarked(const char *text)
{
    char dumped[48];
    const char *p = text, *m;
    if (u64_mark[0]) {
        snprintf(dumped, sizeof dumped, "\"\\u0001%s", u64_mark + 1);
        while ((m = strstr(p, dumped))) {
            fwrite(p, 1, (size_t)(m - p), stdout);
            m += strlen(dumped);
            size_t digits = strspn(m, "0123456789");
            fwrite(m, 1, digits, stdout);
            p = m + digits + (m[digits] == '"');
        }
    }
    fputs(p, stdout);
}

json_t *slm_cli_json_path(const char *path)
{
    return slm_cli_json_text(path, strlen(path));
}

int slm_cli_print_json(struct json_t *doc)
{
    if (!doc) {
        fprintf(stderr, "slmops: cannot build the JSON document (out of memory)\n");
        return SLM_CLI_FAILED;
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!text)
        return SLM_CLI_FAILED;
    put_unmarked(text);
    printf("\n");
    free(text);
    return SLM_CLI_OK;
}

/* Larger text inputs are refused: they are tokenized whole. */
#define MAX_TEXT_BYTES (1ull << 30)

static char *slurp(const char *verb, const char *path, int fd, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *b = cap <= MAX_TEXT_BYTES + 65536 ? realloc(buf, cap) : NULL;
            if (!b) {
                fprintf(stderr, "slmops %s: %s: larger than %llu MiB or out of memory\n", verb,
                        path, MAX_TEXT_BYTES >> 20);
                free(buf);
                return NULL;
            }
            buf = b;
        }
        ssize_t got = read(fd, buf + n, 65536);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "slmops %s: %s: cannot read: %s\n", verb, path, strerror(errno));
            free(buf);
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

char *slm_cli_read_text(const char *verb, const char *path, size_t *len)
{
    if (strcmp(path, "-") == 0)
        return slurp(verb, "standard input", STDIN_FILENO, len);
    char *text = NULL;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_input_read_all(path, MAX_TEXT_BYTES, &text, len, &err) != SLM_OK) {
        slm_cli_fail(verb, &err);
        return NULL;
    }
    return text;
}

int slm_cli_prompt_text(const char *verb, const char *arg, const char *file, char **text,
                        size_t *len)
{
    *text = NULL;
    *len = 0;
    const char *path = file ? file : arg && strcmp(arg, "-") == 0 ? "-" : NULL;
    if (path) {
        *text = slm_cli_read_text(verb, path, len);
        return *text ? SLM_CLI_OK : SLM_CLI_FAILED;
    }
    if (!arg)
        return SLM_CLI_OK;
    *len = strlen(arg);
    *text = strdup(arg);
    return *text ? SLM_CLI_OK : SLM_CLI_FAILED;
}

/* The first error a write to standard output met: a stream forgets it (errno is
 * long overwritten when the verb ends), and the message must name it. */
static int stdout_errno;

static ssize_t stdout_write(void *cookie, const char *buf, size_t n)
{
    (void)cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(STDOUT_FILENO, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            if (!stdout_errno)
                stdout_errno = errno;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)done;
}

void slm_cli_stdout_init(void)
{
    cookie_io_functions_t io = {.write = stdout_write};
    FILE *f = fopencookie(NULL, "w", io);
    if (!f)
        return;   /* keep the plain stream: errors are still caught, less precisely */
    setvbuf(f, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ);
    stdout = f;
}

int slm_cli_close_stdout(int status)
{
    /* fclose flushes what is left; ferror keeps any earlier failure. */
    bool failed = ferror(stdout) != 0;
    errno = 0;
    if (fclose(stdout) != 0 || failed) {
        int e = stdout_errno ? stdout_errno : errno;
        if (e)
            fprintf(stderr, "slmops: write error: %s\n", strerror(e));
        else
            fprintf(stderr, "slmops: write error\n");
        return status == SLM_CLI_OK ? SLM_CLI_FAILED : status;
    }
    return status;
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

/* The safetensors format plugin's entry point, probe, error and log helpers, and
 * the small file utilities its reader and writer share. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

const slm_host_t *st_host;

void st_log(slm_log_level_t level, const char *fmt, ...)
{
    if (!st_host || !st_host->log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    st_host->log(level, "format-safetensors", "%s", line);
}

char *st_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

bool st_exists(const char *dir, const char *name)
{
    char *p = st_join(dir, name);
    struct stat st;
    bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

int st_slurp(const char *path, char **out, size_t *len, slm_error_t *err)
{
    *out = NULL;
    struct stat st;
    int fd = plugin_open_file(path, &st, err);
    if (fd < 0)
        return fd;
    if ((uint64_t)st.st_size > ST_MAX_SIDE_FILE) {
        close(fd);
        return st_fail(err, SLM_E_FORMAT, path, -1, "file is %llu bytes, more than the %llu allowed",
                       (unsigned long long)st.st_size, (unsigned long long)ST_MAX_SIDE_FILE);
    }
    size_t n = (size_t)st.st_size, have = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return st_fail(err, SLM_E_NOMEM, path, -1, "out of memory reading %zu bytes", n);
    }
    while (have < n) {
        ssize_t got = read(fd, buf + have, n - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            int e = got < 0 ? errno : 0;
            free(buf);
            close(fd);
            return st_fail(err, SLM_E_IO, path, (int64_t)have, "cannot read: %s",
                           e ? strerror(e) : "file shrank while reading");
        }
        have += (size_t)got;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return SLM_OK;
}

int st_json_load(const char *path, json_t **out, slm_error_t *err)
{
    char *buf;
    size_t len;
    *out = NULL;
    int rc = st_slurp(path, &buf, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!j)
        return st_fail(err, SLM_E_FORMAT, path, je.position, "invalid JSON at line %d column %d: %s",
                       je.line, je.column, je.text);
    *out = j;
    return SLM_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* A folder is ours when it holds HF model, tokenizer or PEFT adapter files; a file when its
 * first 8 bytes are a plausible header length followed by '{'. */
int st_probe(const char *path, const uint8_t *head, size_t head_len)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return 0;
    if (S_ISDIR(st.st_mode)) {
        static const char *const marks[] = {"model.safetensors", "model.safetensors.index.json",
                                            "config.json", "tokenizer.json", "vocab.json",
                                            "encoder.json", "tokenizer.model",
                                            ST_PEFT_CONFIG, ST_PEFT_WEIGHTS};
        for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
            if (st_exists(path, marks[i]))
                return 80;
        return 0;
    }
    if (head && head_len >= 9 && head[8] == '{') {
        uint64_t n = 0;
        for (int i = 0; i < 8; i++)
            n |= (uint64_t)head[i] << (8 * i);
        if (n >= 2 && n <= ST_MAX_HEADER && n <= (uint64_t)st.st_size - 8)
            return 90;
    }
    /* A damaged .safetensors still reaches this reader, which can say what is wrong. */
    return ends_with(path, ".safetensors") ? 5 : 0;
}

static const slm_format_iface_t iface = {
    .struct_size = sizeof(slm_format_iface_t),
    .iface_version = SLM_FORMAT_IFACE_VERSION,
    .probe = st_probe,
    .read = st_read,
    .layout = st_layout,
    .write_temp = st_write,
};

static const slm_plugin_descriptor_t descriptor = {
    .struct_size = sizeof(slm_plugin_descriptor_t),
    .abi_version = 1,
    .kind = SLM_PLUGIN_KIND_FORMAT,
    .name = "format-safetensors",
    .version = PACKAGE_VERSION,
    .iface = &iface,
};

static const slm_plugin_descriptor_t *entry(const slm_host_t *host, uint32_t host_abi_version)
{
    if (host_abi_version < 1)
        return NULL;
    st_host = host;
    return &descriptor;
}

SLM_PLUGIN_DEFINE_ENTRY(entry)

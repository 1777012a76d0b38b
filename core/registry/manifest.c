/* Manifest format v1: strict parsing of one plugin manifest (untrusted input)
 * into slm__manifest_t, with a one-line reason naming what is wrong. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <slmops/input.h>

#include "internal/kinds.h"
#include "internal/registry.h"
#include "internal/util.h"

#define MANIFEST_MAJOR 1
/* 1.1 adds provides.types[].fallback, output_type and gguf_file_type.
 * 1.2 adds provides.folders, and makes a format's extensions, magic and folders
 * the whole list of inputs its library is asked about.
 * 1.3 lets a trainer's provides.methods name each method with a description. */
#define MANIFEST_MINOR 3

int slm__mf_fail(slm__mf_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, c->reason_size, fmt, ap);
    va_end(ap);
    return code;
}

/* Reads the whole file after checking it is a regular file under the size cap,
 * so a huge or special file is refused before any parsing. stat comes first and
 * the open does not block, so that a FIFO or a device is never waited on. */
static int read_capped(slm__mf_t *c, char **buf, size_t *len)
{
    struct stat st;
    if (stat(c->path, &st) != 0)
        return slm__mf_fail(c, SLM_E_IO, "cannot open: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return slm__mf_fail(c, SLM_E_IO, "is %s, not a regular file", slm_input_kind(st.st_mode));
    int fd = open(c->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return slm__mf_fail(c, SLM_E_IO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return slm__mf_fail(c, SLM_E_IO, "is %s, not a regular file", slm_input_kind(st.st_mode));
    }
    if (st.st_size > SLM__MANIFEST_MAX_BYTES) {
        close(fd);
        return slm__mf_fail(c, SLM_E_FORMAT, "manifest is %lld bytes, more than the %d allowed",
                            (long long)st.st_size, SLM__MANIFEST_MAX_BYTES);
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (!data) {
        close(fd);
        return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(data);
        return slm__mf_fail(c, SLM_E_IO, "short read");
    }
    data[size] = '\0';
    *buf = data;
    *len = size;
    return SLM_OK;
}

bool slm__mf_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SLM__NAME_MAX)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

const char *slm__mf_type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

int slm__mf_member(slm__mf_t *c, const json_t *obj, const char *where, const char *key,
                   json_type type, bool required, json_t **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (!required)
            return SLM_OK;
        return slm__mf_fail(c, SLM_E_FORMAT, "missing required field \"%s%s\"", where, key);
    }
    bool ok = json_typeof(v) == type ||
              (type == JSON_TRUE && json_typeof(v) == JSON_FALSE);
    if (!ok) {
        const char *want = type == JSON_STRING    ? "a string"
                           : type == JSON_INTEGER ? "an integer"
                           : type == JSON_OBJECT  ? "an object"
                           : type == JSON_ARRAY   ? "an array"
                                                  : "a boolean";
        return slm__mf_fail(c, SLM_E_FORMAT, "field \"%s%s\" has the wrong type: %s, expected %s",
                            where, key, slm__mf_type_word(v), want);
    }
    *out = v;
    return SLM_OK;
}

static int string_member(slm__mf_t *c, const json_t *obj, const char *key, char **out)
{
    json_t *v;
    int rc = slm__mf_member(c, obj, "", key, JSON_STRING, true, &v);
    if (rc)
        return rc;
    if (json_string_length(v) == 0 || json_string_length(v) > 4000 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return slm__mf_fail(c, SLM_E_FORMAT,
                            "field \"%s\" must be a non-empty string without NUL", key);
    *out = strdup(json_string_value(v));
    return *out ? SLM_OK : slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
}

int slm__mf_strings(slm__mf_t *c, const json_t *arr, const char *field)
{
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el) {
        if (!json_is_string(el) || json_string_length(el) == 0)
            return slm__mf_fail(c, SLM_E_FORMAT,
                                "field \"%s\" element %zu must be a non-empty string", field, i);
    }
    return SLM_OK;
}

static int parse_version_string(slm__mf_t *c, const char *s)
{
    unsigned long part[3];
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9')
            goto malformed;
        char *end;
        errno = 0;
        part[i] = strtoul(p, &end, 10);
        if (errno || part[i] > 65535)
            goto malformed;
        p = end;
        if (i < 2 && *p++ != '.')
            goto malformed;
    }
    if (*p)
        goto malformed;
    if (part[0] != MANIFEST_MAJOR)
        return slm__mf_fail(c, SLM_E_FORMAT,
                            "unsupported file_format_version %s (this host reads major version %d)",
                            s, MANIFEST_MAJOR);
    c->minor = part[1];
    if (part[1] > MANIFEST_MINOR)
        slm_log(SLM_LOG_INFO, "registry",
                "%s: file_format_version %s is newer than 1.%d; fields it adds are ignored",
                c->path, s, MANIFEST_MINOR);
    return SLM_OK;
malformed:
    return slm__mf_fail(c, SLM_E_FORMAT, "file_format_version \"%s\" is not MAJOR.MINOR.PATCH", s);
}

static int parse_kind(slm__mf_t *c, slm__manifest_t *m)
{
    const slm__kind_t *k = slm__kind_by_name(m->kind);
    char names[128];
    if (!k) {
        slm__kind_names(names, sizeof names);
        return slm__mf_fail(c, SLM_E_FORMAT, "field \"kind\" is \"%s\", expected %s", m->kind,
                            names);
    }
    m->kind_id = k->id;
    return SLM_OK;
}

static int parse_integer(slm__mf_t *c, const json_t *root, const char *key, bool required,
                         json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v;
    int rc = slm__mf_member(c, root, "", key, JSON_INTEGER, required, &v);
    if (rc || !v)
        return rc;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return slm__mf_fail(c, SLM_E_FORMAT, "field \"%s\" is %lld, outside %lld..%lld", key,
                            (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return SLM_OK;
}

/* library_path is relative to the manifest's folder, made absolute so that the
 * row names the same file whatever the working directory later becomes. */
static int resolve_library(slm__mf_t *c, slm__manifest_t *m, const char *lib)
{
    if (lib[0] == '/') {
        m->library_path = strdup(lib);
        return m->library_path ? SLM_OK : slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
    }
    char dir[PATH_MAX];
    const char *slash = strrchr(c->path, '/');
    size_t dlen = slash ? (size_t)(slash - c->path) : 0;
    if (dlen >= sizeof dir)
        return slm__mf_fail(c, SLM_E_FORMAT, "manifest path too long");
    memcpy(dir, c->path, dlen);
    dir[dlen] = '\0';
    char abs[PATH_MAX];
    if (!realpath(dlen ? dir : ".", abs))
        return slm__mf_fail(c, SLM_E_IO, "cannot resolve the manifest's folder: %s",
                            strerror(errno));
    size_t need = strlen(abs) + 1 + strlen(lib) + 1;
    if (need > PATH_MAX)
        return slm__mf_fail(c, SLM_E_FORMAT, "library_path too long");
    m->library_path = malloc(need);
    if (!m->library_path)
        return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
    snprintf(m->library_path, need, "%s/%s", abs, lib);
    return SLM_OK;
}

static int parse_requires(slm__mf_t *c, const json_t *root, slm__manifest_t *m)
{
    json_t *req;
    int rc = slm__mf_member(c, root, "", "requires", JSON_OBJECT, false, &req);
    if (rc || !req)
        return rc;
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        if (strcmp(key, "cpu_features") != 0) {
            /* A requirement we cannot check must not be assumed met. */
            if (!m->unknown_require && !(m->unknown_require = strdup(key)))
                return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
            continue;
        }
        if (!json_is_array(v))
            return slm__mf_fail(
                c, SLM_E_FORMAT,
                "field \"requires.cpu_features\" has the wrong type: %s, expected an array",
                slm__mf_type_word(v));
        if ((rc = slm__mf_strings(c, v, "requires.cpu_features")))
            return rc;
        size_t n = json_array_size(v);
        m->cpu_features = calloc(n ? n : 1, sizeof *m->cpu_features);
        if (!m->cpu_features)
            return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            m->cpu_features[i] = strdup(json_string_value(json_array_get(v, i)));
            if (!m->cpu_features[i])
                return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
            m->n_cpu_features = i + 1;
        }
    }
    return SLM_OK;
}

static int parse_provides(slm__mf_t *c, const json_t *root, slm__manifest_t *m)
{
    json_t *pv;
    int rc = slm__mf_member(c, root, "", "provides", JSON_OBJECT, true, &pv);
    if (rc)
        return rc;
    if ((rc = slm__kind_by_id(m->kind_id)->parse(c, pv, m)))
        return rc;
    m->provides = json_incref(pv);
    m->provides_json = json_dumps(pv, JSON_COMPACT);
    if (!m->backend)
        m->backend = strdup("");
    if (!m->provides_json || !m->backend)
        return slm__mf_fail(c, SLM_E_NOMEM, "out of memory");
    return SLM_OK;
}

static int parse_fields(slm__mf_t *c, const json_t *root, slm__manifest_t *m)
{
    char *ffv = NULL, *lib = NULL;
    json_int_t abi = 0, prio = 0;
    int rc;
    if ((rc = string_member(c, root, "file_format_version", &ffv)))
        return rc;
    rc = parse_version_string(c, ffv);
    free(ffv);
    if (rc)
        return rc;
    if ((rc = string_member(c, root, "name", &m->name)))
        return rc;
    if (!slm__mf_valid_name(m->name))
        return slm__mf_fail(
            c, SLM_E_FORMAT,
            "field \"name\" \"%s\" is not [a-z0-9][a-z0-9_.-]* of at most %d characters", m->name,
            SLM__NAME_MAX);
    if ((rc = string_member(c, root, "kind", &m->kind)) || (rc = parse_kind(c, m)) ||
        (rc = string_member(c, root, "version", &m->version)) ||
        (rc = parse_integer(c, root, "abi_version", true, 0, UINT32_MAX, &abi)) ||
        (rc = string_member(c, root, "description", &m->description)) ||
        (rc = parse_integer(c, root, "priority", false, INT32_MIN, INT32_MAX, &prio)))
        return rc;
    m->abi_version = (uint32_t)abi;
    m->priority = (int32_t)prio;
    if ((rc = string_member(c, root, "library_path", &lib)))
        return rc;
    rc = resolve_library(c, m, lib);
    free(lib);
    if (rc || (rc = parse_requires(c, root, m)) || (rc = parse_provides(c, root, m)))
        return rc;
    /* Checked last so the row still gets its name and kind for the report. */
    if (m->abi_version < SLM_PLUGIN_ABI_MIN_VERSION || m->abi_version > SLM_PLUGIN_ABI_VERSION)
        return slm__mf_fail(c, SLM_E_ABI,
                            "abi_version %u is outside the range this host speaks (%u..%u)",
                            m->abi_version, SLM_PLUGIN_ABI_MIN_VERSION, SLM_PLUGIN_ABI_VERSION);
    return SLM_OK;
}

int slm__manifest_load(const char *path, slm__manifest_t *m, char *reason, size_t reason_size)
{
    slm__mf_t c = {.path = path, .reason = reason, .reason_size = reason_size};
    memset(m, 0, sizeof *m);
    char *buf = NULL;
    size_t len = 0;
    int rc = read_capped(&c, &buf, &len);
    if (rc)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!root)
        return slm__mf_fail(&c, SLM_E_FORMAT, "not valid JSON at line %d, column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    if (!json_is_object(root))
        rc = slm__mf_fail(&c, SLM_E_FORMAT, "the top level is %s, expected an object",
                          slm__mf_type_word(root));
    else
        rc = parse_fields(&c, root, m);
    json_decref(root);
    return rc;
}

void slm__manifest_clear(slm__manifest_t *m)
{
    free(m->name);
    free(m->kind);
    free(m->version);
    free(m->description);
    free(m->library_path);
    free(m->backend);
    for (size_t i = 0; i < m->n_cpu_features; i++)
        free(m->cpu_features[i]);
    free(m->cpu_features);
    free(m->unknown_require);
    free(m->types);
    json_decref(m->provides);
    free(m->provides_json);
    memset(m, 0, sizeof *m);
}

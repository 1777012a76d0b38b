/* Reading and writing model files through format plugins: probing, the sink a
 * reader fills, the source a writer pulls from. The core names no format here. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slmops/input.h>

#include "internal/model-file.h"
#include "internal/plugin-access.h"
#include "internal/util.h"

/* Bytes every format plugin's probe sees. */
#define HEAD_BYTES 64
#define MAX_FORMATS 64

/* ---- sink: what a reader reports ---- */

__attribute__((format(printf, 2, 3)))
static int refuse(slm_model_file_t *mf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mf->sink_error, sizeof mf->sink_error, fmt, ap);
    va_end(ap);
    return -1;
}

static int sink_set_value(void *ctx, const char *key, int32_t type, const void *value,
                          uint64_t len)
{
    slm_model_file_t *mf = ctx;
    slm_error_t e;
    slm_error_init(&e);
    if (slm_model_file_find_value(mf, key, NULL) >= 0)
        return refuse(mf, "duplicate metadata key '%s'", key ? key : "");
    if (slm_model_file_set_value(mf, key, type, value, len, &e) != SLM_OK)
        return refuse(mf, "%s", e.message);
    return 0;
}

static int sink_set_array(void *ctx, const char *key, int32_t elem_type, const void *values,
                          const uint64_t *lens, uint64_t n)
{
    slm_model_file_t *mf = ctx;
    slm_error_t e;
    slm_error_init(&e);
    if (slm_model_file_find_value(mf, key, NULL) >= 0)
        return refuse(mf, "duplicate metadata key '%s'", key ? key : "");
    if (elem_type == SLM_MF_STRING && n && !lens)
        return refuse(mf, "string array '%s' reported without lengths", key ? key : "");
    if (slm_model_file_set_array(mf, key, elem_type, values, lens, n, &e) != SLM_OK)
        return refuse(mf, "%s", e.message);
    return 0;
}

static int sink_add_tensor(void *ctx, const char *name, int32_t type, int32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes)
{
    slm_model_file_t *mf = ctx;
    slm_error_t e;
    slm_error_init(&e);
    if (slm_model_file_add_tensor(mf, name, type, n_dims, ne, data, nbytes, SLM_MF_BORROW, &e))
        return refuse(mf, "%s", e.message);
    return 0;
}

static int sink_set_mapping(void *ctx, void *mapping, void (*release)(void *))
{
    slm_model_file_t *mf = ctx;
    if (slm__mf_add_mapping(mf, mapping, release) != SLM_OK)
        return refuse(mf, "out of memory keeping the file mapping");
    return 0;
}

/* What the reader may ask about the file this one belongs with. */
static int sink_get_hint(void *ctx, const char *key, int32_t *type, int32_t *elem_type,
                         const void **value, uint64_t *n)
{
    const slm_model_file_t *hints = ((const slm_model_file_t *)ctx)->hints;
    slm_model_value_t v = {.struct_size = sizeof v};
    if (!hints || !key || slm_model_file_find_value(hints, key, &v) < 0)
        return -1;
    *type = v.type;
    *elem_type = v.elem_type;
    *value = v.data;
    *n = v.n;
    return 0;
}

/* ---- source: what a writer pulls ---- */

static uint64_t src_n_values(void *ctx)
{
    return ((const slm_model_file_t *)ctx)->n_values;
}

/* Strings: value is the NUL-terminated bytes and *n their length; scalars: *n = 1;
 * arrays: the elements (string arrays: char *[] with lens) and their count. */
static int src_get_value(void *ctx, uint64_t i, const char **key, int32_t *type,
                         int32_t *elem_type, const void **value, const uint64_t **lens,
                         uint64_t *n)
{
    const slm_model_file_t *mf = ctx;
    if (i >= mf->n_values)
        return -1;
    const slm__mf_value_t *v = &mf->values[i];
    *key = v->key;
    *type = v->type;
    *elem_type = v->elem_type;
    *value = v->data;
    *lens = v->lens;
    *n = v->n;
    return 0;
}

static uint64_t src_n_tensors(void *ctx)
{
    return ((const slm_model_file_t *)ctx)->n_tensors;
}

static int src_get_tensor(void *ctx, uint64_t i, const char **name, int32_t *type,
                          int32_t *n_dims, const int64_t **ne, const void **data,
                          uint64_t *nbytes)
{
    const slm_model_file_t *mf = ctx;
    if (i >= mf->n_tensors)
        return -1;
    const slm__mf_tensor_t *t = &mf->tensors[i];
    *name = t->name;
    *type = t->type;
    *n_dims = t->n_dims;
    *ne = t->ne;
    *data = t->data;
    *nbytes = t->nbytes;
    return 0;
}

/* ---- choosing a plugin ---- */

static int read_head(const char *path, uint8_t *head, size_t *len, slm_error_t *err)
{
    int fd;
    int rc = slm_input_open(path, SLM_INPUT_FOLDER_OK, &fd, err);
    if (rc)
        return rc;
    ssize_t got;
    size_t have = 0;
    while (have < HEAD_BYTES && (got = read(fd, head + have, HEAD_BYTES - have)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EISDIR)
            break;   /* a folder (e.g. a Hugging Face model): probes see no bytes */
        if (got < 0) {
            int e = errno;
            close(fd);
            return slm__fail(err, SLM_E_IO, path, (int64_t)have, "%s: cannot read: %s", path,
                             strerror(e));
        }
        have += (size_t)got;
    }
    close(fd);
    *len = have;
    return SLM_OK;
}

/* Where a user whose build tree has no plugins on the search path looks next; the
 * library cannot know that folder, so the hint names it generically. */
#define NO_READER_HINT                                                                        \
    "run 'make install', or set SLMOPS_PLUGIN_PATH=<build>/manifests/uninstalled"

/* Appends sep (unless buf is empty) and s, truncating at the end of buf. */
static void join(char *buf, size_t size, const char *sep, const char *s)
{
    size_t used = strlen(buf);
    const char *parts[2] = {used ? sep : "", s};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(parts[i]);
        if (used + n >= size)
            n = size - 1 - used;
        memcpy(buf + used, parts[i], n);
        used += n;
        buf[used] = '\0';
    }
}

/* The most confident reader of path; ties go to the earlier registry row. Only
 * plugins whose manifests say they might read it are loaded and asked. */
static int probe_format(slm_registry_t *reg, const char *path, const char **name,
                        slm_error_t *err)
{
    uint8_t head[HEAD_BYTES];
    size_t head_len = 0;
    int rc = read_head(path, head, &head_len, err);
    if (rc)
        return rc;
    struct stat st;
    bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    const char *names[MAX_FORMATS];
    char skipped[400];
    size_t n = slm__format_candidates(reg, path, is_dir, head, head_len, names, MAX_FORMATS,
                                      skipped, sizeof skipped);
    if (!n && !skipped[0] && !slm__format_plugins(reg, false, names, MAX_FORMATS))
        return slm__fail(err, SLM_E_UNSUPPORTED, path, -1,
                         "%s: no format plugin that reads files is available (search path: %s); "
                         NO_READER_HINT, path, *slm_registry_search_path(reg) ?
                         slm_registry_search_path(reg) : "empty");
    int best = 0;
    char tried[400] = "";
    for (size_t i = 0; i < n; i++) {
        slm_error_t e;
        slm_error_init(&e);
        const slm_format_iface_t *f = slm__format_iface(reg, names[i], &e);
        if (!f || !f->read) {
            /* The registry disabled it and logged why; say which manifest it was. */
            const slm_plugin_info_t *row = slm_registry_find(reg, "format", names[i]);
            char who[600];
            slm__format_describe(reg, names[i], who, sizeof who);
            join(skipped, sizeof skipped, "; ", who);
            join(skipped, sizeof skipped, " ", f ? "cannot read files" : "is disabled: ");
            if (!f)
                join(skipped, sizeof skipped, "", row && row->reason[0] ? row->reason : e.message);
            continue;
        }
        int score = f->probe(path, head, head_len);
        slm_log(SLM_LOG_DEBUG, "model", "%s: format %s scores %d", path, names[i], score);
        char who[600];
        slm__format_describe(reg, names[i], who, sizeof who);
        join(tried, sizeof tried, ", ", who);
        if (score > best) {
            best = score;
            *name = names[i];
        }
    }
    if (best > 0)
        return SLM_OK;
    if (!tried[0] && !skipped[0])
        return slm__fail(err, SLM_E_UNSUPPORTED, path, 0,
                         "%s: no format plugin recognises this %s (no reader's manifest lists "
                         "its %s)", path, is_dir ? "folder" : "file",
                         is_dir ? "kind of folder" : "extension or first bytes");
    return slm__fail(err, SLM_E_UNSUPPORTED, path, 0,
                     "%s: no format plugin recognises this %s (tried: %s%s%s)", path,
                     is_dir ? "folder" : "file", tried[0] ? tried : "none",
                     skipped[0] ? "; " : "", skipped);
}

/* A plugin that failed without saying why still gets a message naming it. */
static int plugin_failed(int rc, const char *plugin, const char *what, const char *path,
                         slm_error_t *err)
{
    if (rc > 0 || rc < SLM_E_STATE)
        rc = SLM_E_PLUGIN;
    if (err && err->struct_size >= offsetof(slm_error_t, path) && err->code == SLM_OK)
        slm__fail(err, rc, path, -1, "%s: format plugin %s failed to %s it", path, plugin, what);
    return rc;
}

/* A failed read names the plugin that tried, and which manifest it came from when
 * it hides another of the same name (a stale copy in ~/.local/share, say). */
static void name_reader(slm_registry_t *reg, const char *name, slm_error_t *err)
{
    if (!err || err->struct_size < offsetof(slm_error_t, path))
        return;
    char who[600];
    slm__format_describe(reg, name, who, sizeof who);
    if (strcmp(who, name) == 0 && strstr(err->message, name))
        return;
    join(err->message, sizeof err->message, "", " (format plugin ");
    join(err->message, sizeof err->message, "", who);
    join(err->message, sizeof err->message, "", ")");
}

int slm_model_file_open(slm_registry_t *reg, const char *path, const char *format,
                        slm_model_file_t **out, slm_error_t *err)
{
    return slm_model_file_open_for(reg, path, format, NULL, out, err);
}

int slm_model_file_open_for(slm_registry_t *reg, const char *path, const char *format,
                            const slm_model_file_t *related, slm_model_file_t **out,
                            slm_error_t *err)
{
    if (out)
        *out = NULL;
    if (!reg || !path || !out)
        return slm__fail(err, SLM_E_INVALID, path, -1, "model file open: no registry, path or result");
    const char *name = format;
    int rc = name ? SLM_OK : probe_format(reg, path, &name, err);
    if (rc)
        return rc;
    const slm_format_iface_t *f = slm__format_iface(reg, name, err);
    if (!f)
        return err && err->code ? err->code : SLM_E_PLUGIN;
    if (!f->read)
        return slm__fail(err, SLM_E_UNSUPPORTED, path, -1, "format plugin %s cannot read files", name);
    slm_model_file_t *mf = slm_model_file_new();
    if (!mf || !(mf->format = strdup(name))) {
        slm_model_file_free(mf);
        return slm__fail(err, SLM_E_NOMEM, path, -1, "out of memory opening %s", path);
    }
    slm_format_sink_t sink = {.struct_size = sizeof sink, .ctx = mf,
                              .set_value = sink_set_value, .set_array = sink_set_array,
                              .add_tensor = sink_add_tensor, .set_mapping = sink_set_mapping,
                              .get_hint = related ? sink_get_hint : NULL};
    mf->hints = related;
    if (err && err->struct_size >= offsetof(slm_error_t, message))
        err->code = SLM_OK;
    rc = f->read(path, &sink, err);
    mf->hints = NULL;
    if (rc != SLM_OK) {
        if (mf->sink_error[0])   /* the container refused: its reason is the useful one */
            slm__fail(err, SLM_E_FORMAT, path, -1, "%s: %s", path, mf->sink_error);
        rc = mf->sink_error[0] ? SLM_E_FORMAT : plugin_failed(rc, name, "read", path, err);
        name_reader(reg, name, err);
        slm_model_file_free(mf);
        return rc;
    }
    slm_log(SLM_LOG_INFO, "model", "%s: read by %s: %zu metadata entries, %zu tensors", path, name,
            mf->n_values, mf->n_tensors);
    if (!(mf->origin = strdup(path))) {
        slm_model_file_free(mf);
        return slm__fail(err, SLM_E_NOMEM, path, -1, "out of memory opening %s", path);
    }
    *out = mf;
    return SLM_OK;
}

static int writer_for(slm_registry_t *reg, const char *path, const char **name, slm_error_t *err)
{
    const char *names[MAX_FORMATS];
    size_t n = slm__format_plugins(reg, true, names, MAX_FORMATS);
    for (size_t i = 0; i < n; i++)
        if (slm__format_has_extension(reg, names[i], path)) {
            *name = names[i];
            return SLM_OK;
        }
    return slm__fail(err, SLM_E_UNSUPPORTED, path, -1,
                     "%s: no available format plugin writes files with this extension", path);
}

/* A plugin with write_temp (interface version 2) fills a temporary the host made;
 * an older one writes on its own after the host's checks. */
static bool host_owns_output(const slm_format_iface_t *f)
{
    return f->iface_version >= 2 && f->write_temp;
}

/* The writer for path and what its output is (file, folder, or the plugin's call). */
static int writer_params(slm_registry_t *reg, const char *path, const char **name,
                         const slm_format_iface_t **f, const slm_output_params_t *out,
                         slm_output_params_t *p, slm_error_t *err)
{
    slm_output_params_init(p);
    if (out)
        memcpy(p, out, out->struct_size < sizeof *p ? out->struct_size : sizeof *p);
    p->struct_size = sizeof *p;
    int rc = *name ? SLM_OK : writer_for(reg, path, name, err);
    if (rc) {
        /* "is a character device" says more than "no writer for this extension". */
        slm_output_params_t any = *p;
        any.layout = SLM_OUTPUT_ANY;
        int why = slm_output_check(path, &any, NULL, err);
        return why ? why : rc;
    }
    if (!(*f = slm__format_iface(reg, *name, err)))
        return err && err->code ? err->code : SLM_E_PLUGIN;
    if (!(*f)->write && !host_owns_output(*f))
        return slm__fail(err, SLM_E_UNSUPPORTED, path, -1, "format plugin %s cannot write files",
                         *name);
    if (!host_owns_output(*f)) {
        p->layout = SLM_OUTPUT_ANY;
        return SLM_OK;
    }
    const char *const *names = NULL;
    int layout = (*f)->layout ? (*f)->layout(path, &names) : SLM_FORMAT_LAYOUT_FILE;
    if (layout != SLM_FORMAT_LAYOUT_FILE && layout != SLM_FORMAT_LAYOUT_FOLDER)
        return slm__fail(err, SLM_E_PLUGIN, path, -1, "%s: format plugin %s answers layout %d",
                         path, *name, layout);
    p->layout = layout == SLM_FORMAT_LAYOUT_FOLDER ? SLM_OUTPUT_FOLDER : SLM_OUTPUT_FILE;
    p->folder_names = layout == SLM_FORMAT_LAYOUT_FOLDER ? names : NULL;
    return SLM_OK;
}

int slm__model_file_check_output(slm_registry_t *reg, const char *path, const char *format,
                                 const slm_output_params_t *out, slm_error_t *err)
{
    const char *name = format;
    const slm_format_iface_t *f;
    slm_output_params_t p;
    int rc = writer_params(reg, path, &name, &f, out, &p, err);
    return rc ? rc : slm_output_check(path, &p, NULL, err);
}

static int write_with(const slm_format_iface_t *f, const char *name, const char *path,
                      const slm_output_params_t *p, const slm_format_source_t *src,
                      slm_error_t *err)
{
    if (err && err->struct_size >= offsetof(slm_error_t, message))
        err->code = SLM_OK;
    if (!host_owns_output(f)) {
        char *target;
        int rc = slm_output_check(path, p, &target, err);
        if (rc)
            return rc;
        rc = f->write(target, src, err);
        free(target);
        return rc ? plugin_failed(rc, name, "write", path, err) : SLM_OK;
    }
    slm_output_t *o;
    int rc = slm_output_prepare(path, p, &o, err);
    if (rc)
        return rc;
    rc = f->write_temp(slm_output_path(o), path, src, err);
    if (rc) {
        slm_output_abort(o);
        return plugin_failed(rc, name, "write", path, err);
    }
    return slm_output_commit(o, err);
}

int slm_model_file_save_output(const slm_model_file_t *mf, slm_registry_t *reg, const char *path,
                               const char *format, const slm_output_params_t *out,
                               slm_error_t *err)
{
    if (!mf || !reg || !path)
        return slm__fail(err, SLM_E_INVALID, path, -1, "model file save: no container, registry or path");
    const char *name = format;
    const slm_format_iface_t *f;
    slm_output_params_t p;
    int rc = writer_params(reg, path, &name, &f, out, &p, err);
    if (rc)
        return rc;
    /* The file the container was read from is an input too: its tensors may
     * borrow the bytes of that very file. */
    const char **inputs = calloc(p.n_inputs + 1, sizeof *inputs);
    if (!inputs)
        return slm__fail(err, SLM_E_NOMEM, path, -1, "out of memory");
    for (size_t i = 0; i < p.n_inputs; i++)
        inputs[i] = p.inputs[i];
    if (mf->origin)
        inputs[p.n_inputs++] = mf->origin;
    p.inputs = inputs;
    /* The source only reads through ctx; the interface has no const slot for it. */
    slm_format_source_t src = {.struct_size = sizeof src, .ctx = (void *)mf,
                               .n_values = src_n_values, .get_value = src_get_value,
                               .n_tensors = src_n_tensors, .get_tensor = src_get_tensor};
    rc = write_with(f, name, path, &p, &src, err);
    free(inputs);
    if (rc == SLM_OK)
        slm_log(SLM_LOG_INFO, "model", "%s: written by %s", path, name);
    return rc;
}

int slm_model_file_save(const slm_model_file_t *mf, slm_registry_t *reg, const char *path,
                        const char *format, slm_error_t *err)
{
    return slm_model_file_save_output(mf, reg, path, format, NULL, err);
}

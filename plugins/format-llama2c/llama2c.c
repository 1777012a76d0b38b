/* The llama2.c format plugin's file mapping (plugins/common), and the probe and
 * read slots that tell checkpoints from tokenizer.bin files. */
#include "config.h"

#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "llama2c.h"

const slm_host_t *l2c_host;

int l2c_map(const char *path, l2c_file_t *f, slm_error_t *err)
{
    plugin_map_t m;
    int rc = plugin_map_file(path, &m, err);
    *f = (l2c_file_t){.path = path, .base = m.base, .size = m.size};
    return rc;
}

void l2c_unmap(l2c_file_t *f)
{
    plugin_unmap_file(&(plugin_map_t){.base = f->base, .size = f->size});
    f->base = NULL;
}

/* Probing maps only files this small (a tokenizer.bin is at most a few MiB). */
#define PROBE_MAP_MAX (256u << 20)

int l2c_probe(const char *path, const uint8_t *head, size_t head_len)
{
    struct stat st;
    if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    int score = l2c_checkpoint_probe(path, head, head_len, (uint64_t)st.st_size);
    if (score >= 80 || !l2c_tokenizer_looks_like(head, head_len) ||
        (uint64_t)st.st_size > PROBE_MAP_MAX)
        return score;
    l2c_file_t f;
    if (l2c_map(path, &f, NULL) != SLM_OK)
        return score;
    if (l2c_tokenizer_fits(&f))
        score = 80;
    l2c_unmap(&f);
    return score;
}

/* The message of e without its "path: " prefix. */
static const char *reason(const slm_error_t *e, const char *path)
{
    size_t n = strlen(path);
    return strncmp(e->message, path, n) == 0 && e->message[n] == ':' ? e->message + n + 2
                                                                     : e->message;
}

/* A file that is exactly neither kind gets the error of the kind it resembles,
 * or both reasons when it resembles neither. */
int l2c_read(const char *path, const slm_format_sink_t *sink, slm_error_t *err)
{
    l2c_file_t f;
    int rc = l2c_map(path, &f, err);
    if (rc)
        return rc;
    bool magic = f.size >= 4 && l2c_u32(f.base) == L2C_MAGIC, header_ok = false;
    slm_error_t ck = {.struct_size = sizeof ck}, tok = {.struct_size = sizeof tok};
    int ck_rc = l2c_checkpoint_check(&f, &header_ok, &ck);
    /* The checkpoint reader keeps the mapping (tensors borrow it) or unmaps it. */
    if (magic || ck_rc == SLM_OK)
        return l2c_checkpoint_read(&f, sink, err);
    if (l2c_tokenizer_check(&f, &tok) == SLM_OK || l2c_tokenizer_looks_like(f.base, f.size)) {
        rc = l2c_tokenizer_read(&f, sink, err);
        l2c_unmap(&f);
        return rc;
    }
    if (header_ok)
        return l2c_checkpoint_read(&f, sink, err);
    l2c_unmap(&f);
    return l2c_fail(err, SLM_E_FORMAT, path, -1,
                    "neither a llama2.c checkpoint (%s) nor a tokenizer.bin (%s)",
                    reason(&ck, path), reason(&tok, path));
}

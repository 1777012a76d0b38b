/* The table of plugin kinds: adding a kind is a kind-NAME.c file and one line
 * here. Nothing else in the core lists the kinds. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "internal/kinds.h"
#include "internal/util.h"

/* In slm_plugin_kind_t order. */
static const slm__kind_t *const kinds[] = {
    &slm__kind_backend,
    &slm__kind_quantizer,
    &slm__kind_trainer,
    &slm__kind_format,
};

size_t slm__kind_count(void)
{
    return SLM__ARRAY_LEN(kinds);
}

const slm__kind_t *slm__kind_at(size_t i)
{
    return i < SLM__ARRAY_LEN(kinds) ? kinds[i] : NULL;
}

const slm__kind_t *slm__kind_by_name(const char *name)
{
    for (size_t i = 0; name && i < SLM__ARRAY_LEN(kinds); i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

const slm__kind_t *slm__kind_by_id(int32_t id)
{
    for (size_t i = 0; i < SLM__ARRAY_LEN(kinds); i++)
        if (kinds[i]->id == id)
            return kinds[i];
    return NULL;
}

void slm__kind_names(char *buf, size_t size)
{
    size_t n = SLM__ARRAY_LEN(kinds), len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        len += (size_t)snprintf(buf + len, size - len, "%s%s", sep, kinds[i]->name);
    }
}

uint32_t slm__kind_iface_version(int32_t kind)
{
    const slm__kind_t *k = slm__kind_by_id(kind);
    return k ? k->iface_max : 0;
}

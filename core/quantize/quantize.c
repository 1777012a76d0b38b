/* Row conversions between f32 and block types: f32/f16/bf16 here, every other
 * type through the quantizer plugin whose manifest provides it (loaded lazily). */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include <slmops/plugin-quantizer.h>
#include <slmops/quantize.h>
#include <slmops/types.h>

#include "internal/registry.h"
#include "internal/util.h"

static bool is_core_type(int type)
{
    return type == SLM_TYPE_F32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16;
}

static bool manifest_provides(const slm__plugin_t *p, int type)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(p->m.provides, "types"), i, t)
        if (json_integer_value(json_object_get(t, "id")) == type)
            return true;
    return false;
}

/* The loaded interface of the usable quantizer that defines `type`. The loader
 * has checked id and name against the manifest; block and bytes are checked here
 * because tensors were already sized from the manifest's traits. */
static int quantizer_for(slm_registry_t *reg, int type, const slm_quantizer_iface_t **out,
                         slm_error_t *err)
{
    if (!reg)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "type %s needs a registry to find its quantizer", slm_type_name(type));
    for (size_t i = 0; i < reg->n_rows; i++) {
        slm__plugin_t *p = reg->rows[i];
        if (!p->manifest_ok || p->m.kind_id != SLM_PLUGIN_KIND_QUANTIZER ||
            !slm__plugin_usable(p) || !manifest_provides(p, type))
            continue;
        int rc = slm__plugin_load(reg, p, err);
        if (rc != SLM_OK)
            return rc;
        const slm_quantizer_iface_t *q = slm__plugin_iface(p);
        const slm_type_traits_t *tr = slm_type_get_traits(type);
        if (!q || q->type != type || !tr || q->block != tr->block || q->block_bytes != tr->size)
            return slm__fail(err, SLM_E_PLUGIN, p->manifest_path, -1,
                             "quantizer %s: its interface disagrees with the manifest's traits of %s",
                             p->m.name, slm_type_name(type));
        *out = q;
        return SLM_OK;
    }
    return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1,
                     "no usable quantizer plugin provides %s", slm_type_name(type));
}

/* Shape checks shared by every entry point; *row_bytes gets one row's size. */
static int check_rows(int type, int64_t n_rows, int64_t row_len, size_t *row_bytes,
                      slm_error_t *err)
{
    const slm_type_traits_t *tr = slm_type_get_traits(type);
    if (!tr)
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "%s: no quantizer plugin registered it",
                         slm_type_name(type));
    if (n_rows < 0 || row_len <= 0 || row_len % tr->block)
        return slm__fail(err, SLM_E_INVALID, NULL, -1,
                         "%lld rows of %lld elements: rows of %s must be a positive multiple of %u",
                         (long long)n_rows, (long long)row_len, tr->name, tr->block);
    uint64_t total;
    *row_bytes = slm_type_row_size(type, row_len);
    if (!slm__mul_overflow_u64((uint64_t)n_rows, (uint64_t)row_len, &total) ||
        !slm__mul_overflow_u64((uint64_t)n_rows, *row_bytes, &total) || total > SIZE_MAX)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "%lld rows of %lld elements overflow",
                         (long long)n_rows, (long long)row_len);
    return SLM_OK;
}

static void core_from_f32(int type, const float *src, void *dst, size_t n)
{
    uint16_t *h = dst;
    if (type == SLM_TYPE_F32)
        memcpy(dst, src, n * sizeof(float));
    else if (type == SLM_TYPE_F16)
        for (size_t i = 0; i < n; i++)
            h[i] = slm_f32_to_f16(src[i]);
    else
        for (size_t i = 0; i < n; i++)
            h[i] = slm_f32_to_bf16(src[i]);
}

static void core_to_f32(int type, const void *src, float *dst, size_t n)
{
    const uint16_t *h = src;
    if (type == SLM_TYPE_F32)
        memcpy(dst, src, n * sizeof(float));
    else if (type == SLM_TYPE_F16)
        for (size_t i = 0; i < n; i++)
            dst[i] = slm_f16_to_f32(h[i]);
    else
        for (size_t i = 0; i < n; i++)
            dst[i] = slm_bf16_to_f32(h[i]);
}

int slm_quantize_rows(slm_registry_t *reg, int type, const float *src, void *dst,
                      int64_t n_rows, int64_t row_len, const float *imatrix, slm_error_t *err)
{
    size_t row_bytes;
    int rc = check_rows(type, n_rows, row_len, &row_bytes, err);
    if (rc)
        return rc;
    if ((!src || !dst) && n_rows > 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_quantize_rows: NULL buffer");
    if (is_core_type(type)) {
        core_from_f32(type, src, dst, (size_t)(n_rows * row_len));
        return SLM_OK;
    }
    const slm_quantizer_iface_t *q;
    if ((rc = quantizer_for(reg, type, &q, err)) != SLM_OK)
        return rc;
    for (int64_t r = 0; r < n_rows; r++) {
        if (q->quantize_row(src + r * row_len, (char *)dst + (size_t)r * row_bytes, row_len,
                            imatrix) != 0)
            return slm__fail(err, SLM_E_PLUGIN, NULL, -1, "quantizer for %s failed on row %lld",
                             q->type_name, (long long)r);
    }
    return SLM_OK;
}

int slm_dequantize_rows(slm_registry_t *reg, int type, const void *src, float *dst,
                        int64_t n_rows, int64_t row_len, slm_error_t *err)
{
    size_t row_bytes;
    int rc = check_rows(type, n_rows, row_len, &row_bytes, err);
    if (rc)
        return rc;
    if ((!src || !dst) && n_rows > 0)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_dequantize_rows: NULL buffer");
    if (is_core_type(type)) {
        core_to_f32(type, src, dst, (size_t)(n_rows * row_len));
        return SLM_OK;
    }
    const slm_quantizer_iface_t *q;
    if ((rc = quantizer_for(reg, type, &q, err)) != SLM_OK)
        return rc;
    for (int64_t r = 0; r < n_rows; r++) {
        if (q->dequantize_row((const char *)src + (size_t)r * row_bytes, dst + r * row_len,
                              row_len) != 0)
            return slm__fail(err, SLM_E_PLUGIN, NULL, -1, "dequantizer for %s failed on row %lld",
                             q->type_name, (long long)r);
    }
    return SLM_OK;
}

static float core_dot(int type, const void *x, const float *y, int64_t n)
{
    const float *f = x;
    const uint16_t *h = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float v = type == SLM_TYPE_F32   ? f[i]
                  : type == SLM_TYPE_F16 ? slm_f16_to_f32(h[i])
                                         : slm_bf16_to_f32(h[i]);
        sum += (double)v * (double)y[i];
    }
    return (float)sum;
}

int slm_quantized_dot(slm_registry_t *reg, int type, const void *x, const float *y, int64_t n,
                      float *out, slm_error_t *err)
{
    size_t row_bytes;
    int rc = check_rows(type, 1, n, &row_bytes, err);
    if (rc)
        return rc;
    if (!x || !y || !out)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "slm_quantized_dot: NULL argument");
    if (is_core_type(type)) {
        *out = core_dot(type, x, y, n);
        return SLM_OK;
    }
    const slm_quantizer_iface_t *q;
    if ((rc = quantizer_for(reg, type, &q, err)) != SLM_OK)
        return rc;
    *out = q->vec_dot_f32(x, y, n);
    return SLM_OK;
}

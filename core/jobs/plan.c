/* The type every tensor of a model gets when it is quantized: --type names, the
 * overrides, the mix's rules, the row rule, and the refusal to requantize. */
#include "config.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/jobs.h>
#include <slmops/log.h>
#include <slmops/model-file.h>
#include <slmops/types.h>

#include "internal/registry.h"
#include "internal/util.h"
#include "jobs/jobs.h"
#include "jobs/mix.h"

typedef struct planner {
    slm_registry_t *reg;
    const slm_quantize_params_t *p;
    const slm_model_file_t *in;
    regex_t *re;
    size_t n_re;
    slm__mix_set_t *mixes;
    const slm__mix_t *mix;
    slm__mix_run_t *run;
    bool has_output;
    slm__qplan_t *plan;
    slm_error_t *err;
} planner_t;

/* The id of a type a usable plugin (or the core, for f32/f16/bf16) provides, else -1. */
static int32_t provided(const slm_registry_t *reg, const char *name)
{
    int32_t id = slm_type_from_name(name);
    const slm_type_traits_t *t = slm_type_get_traits(id);
    if (!t || (t->is_quantized && !slm__registry_quant_type(reg, id)))
        return -1;
    return id;
}

/* "q4_0, q4_1, ..." for a message saying what is there instead. */
static void provided_list(const slm_registry_t *reg, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int id = 0; id < SLM_TYPE_COUNT_MAX && len + 1 < cap; id++) {
        const slm_type_traits_t *t = slm_type_get_traits(id);
        if (!t || !t->is_quantized || !slm__registry_quant_type(reg, id))
            continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", t->name);
        len += w > 0 ? (size_t)w : 0;
    }
}

static int missing_type(const slm_registry_t *reg, const char *what, const char *type,
                        slm_error_t *err)
{
    char have[512];
    provided_list(reg, have, sizeof have);
    return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "quantize: %s needs type %s, which no "
                     "quantizer plugin provides (this installation has %s)", what, type,
                     have[0] ? have : "none");
}

/* A type a weight may be written in: known, and not an integer/f64 type. */
int slm__jobs_check_weight_type(int32_t type, const char *what, slm_error_t *err)
{
    const slm_type_traits_t *t = slm_type_get_traits(type);
    if (!t || (!t->is_quantized && type != SLM_TYPE_F32 && type != SLM_TYPE_F16 &&
               type != SLM_TYPE_BF16))
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize: %s: %s is not a weight type "
                         "this build knows (f32, f16, bf16 or a quantizer plugin's type)", what,
                         slm_type_name(type));
    return SLM_OK;
}

/* A --type name: a mix first (llama-quantize's names win, so "q4_k" is its alias of
 * Q4_K_M), then a type. */
static int resolve(slm_registry_t *reg, const slm__mix_set_t *set, const char *name,
                   const slm__mix_t **mix, int32_t *type, slm_error_t *err)
{
    *mix = slm__mix_find(set, name);
    if (!*mix) {
        *type = slm_type_from_name(name);
        if (*type < 0)
            return slm__fail(err, SLM_E_NOT_FOUND, NULL, -1, "quantize: unknown type '%s' "
                             "(a type such as q8_0, or a llama-quantize file type such as "
                             "Q4_K_M)", name);
        return slm__jobs_check_weight_type(*type, name, err);
    }
    const char *mn = slm__mix_name(*mix), *tn = slm__mix_type(*mix);
    if ((*type = provided(reg, tn)) < 0)
        return missing_type(reg, mn, tn, err);
    if (!slm__mix_has_rules(*mix))
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "quantize: slmops does not have "
                         "llama-quantize's rules for %s; type %s alone is available", mn, tn);
    if (slm__mix_needs_imatrix(*mix))
        return slm__fail(err, SLM_E_UNSUPPORTED, NULL, -1, "quantize: %s needs an importance "
                         "matrix, which slmops quantize does not take", mn);
    return SLM_OK;
}

int slm_quantize_type_lookup(slm_registry_t *reg, const char *name, int32_t *type,
                             slm_error_t *err)
{
    if (!reg || !name || !type)
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "quantize: NULL argument");
    slm__mix_set_t *set = slm__mix_set_load(reg);
    const slm__mix_t *mix;
    int rc = set ? resolve(reg, set, name, &mix, type, err)
                 : slm__fail(err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    slm__mix_set_free(set);
    return rc;
}

static int compile_rules(planner_t *pl)
{
    const slm_quantize_params_t *p = pl->p;
    if (p->n_rules && !p->rules)
        return slm__fail(pl->err, SLM_E_INVALID, NULL, -1, "quantize: rules is NULL");
    pl->re = calloc(p->n_rules + 1, sizeof *pl->re);
    if (!pl->re)
        return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    for (size_t i = 0; i < p->n_rules; i++) {
        const slm_tensor_type_rule_t *r = &p->rules[i];
        if (!r->pattern)
            return slm__fail(pl->err, SLM_E_INVALID, NULL, -1, "quantize: rule %zu has no "
                             "pattern", i + 1);
        int rc = slm__jobs_check_weight_type(r->type, r->pattern, pl->err);
        if (rc)
            return rc;
        int e = regcomp(&pl->re[i], r->pattern, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char msg[128];
            regerror(e, &pl->re[i], msg, sizeof msg);
            return slm__fail(pl->err, SLM_E_INVALID, NULL, -1, "quantize: bad regular "
                             "expression '%s': %s", r->pattern, msg);
        }
        pl->n_re++;
    }
    return SLM_OK;
}

static int64_t get_int(const slm_model_file_t *in, const char *arch, const char *key,
                       int64_t fallback)
{
    char full[160];
    int64_t v;
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return slm_model_file_get_int(in, full, &v, NULL) == SLM_OK ? v : fallback;
}

/* Block number of "blk.N.…", or -1 (llama.cpp's loader sorts by it). */
static long block_of(const char *name)
{
    long b;
    return sscanf(name, "blk.%ld.", &b) == 1 ? b : -1;
}

/* llama.cpp's hparams that the rules test; blocks are counted when the file does
 * not say. */
static void model_facts(const slm_model_file_t *in, slm__mix_model_t *m)
{
    const char *arch = "";
    slm_model_file_get_string(in, "general.architecture", &arch, NULL);
    long blocks = 0;
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < slm_model_file_n_tensors(in); i++)
        if (slm_model_file_tensor(in, i, &t) >= 0 && block_of(t.name) >= blocks)
            blocks = block_of(t.name) + 1;
    int64_t heads = get_int(in, arch, "attention.head_count", 0);
    int64_t kv = get_int(in, arch, "attention.head_count_kv", heads);
    *m = (slm__mix_model_t){.n_layer = get_int(in, arch, "block_count", blocks),
                            .n_gqa = kv > 0 ? heads / kv : 0,
                            .n_expert = get_int(in, arch, "expert_count", 0)};
}

static int start_mix(planner_t *pl)
{
    size_t n = slm_model_file_n_tensors(pl->in);
    const char **names = calloc(n + 1, sizeof *names);
    if (!names)
        return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < n; i++)
        names[i] = slm_model_file_tensor(pl->in, i, &t) >= 0 ? t.name : "";
    slm__mix_model_t facts;
    model_facts(pl->in, &facts);
    const slm_type_traits_t *tr = slm_type_get_traits(pl->plan->type);
    pl->run = slm__mix_run_new(pl->mix, &facts, names, n, tr ? tr->block : 1);
    free(names);
    return pl->run ? SLM_OK : slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
}

/* The type the mix's rules (or, without a mix, the output default) give t. */
static int default_rules(planner_t *pl, const slm_model_tensor_t *t, int32_t *wanted)
{
    if (!pl->run) {
        bool is_output = strcmp(t->name, "output.weight") == 0 ||
                         (!pl->has_output && strcmp(t->name, "token_embd.weight") == 0);
        if (is_output)
            *wanted = slm__jobs_output_type(pl->reg, *wanted);
        return SLM_OK;
    }
    const char *name;
    int rc = slm__mix_run_type(pl->run, t->name, t->ne[0], &name, pl->err);
    if (rc || !name)
        return rc;
    if ((*wanted = provided(pl->reg, name)) >= 0)
        return SLM_OK;
    char what[320];
    snprintf(what, sizeof what, "%s (for %s)", slm__mix_name(pl->mix), t->name);
    return missing_type(pl->reg, what, name, pl->err);
}

/* Dimensions up to the last one above 1, as ggml counts them: a one-row matrix is
 * a vector to llama-quantize. */
static int32_t used_dims(const slm_model_tensor_t *t)
{
    int32_t n = t->n_dims < 4 ? t->n_dims : 4;
    while (n > 1 && t->ne[n - 1] == 1)
        n--;
    return n;
}

static int choose(planner_t *pl, size_t i, const slm_model_tensor_t *t)
{
    char why[256] = "";
    int32_t wanted = pl->plan->type;
    pl->plan->types[i] = t->type;
    if (!slm__jobs_is_quantizable(t->name, used_dims(t)))
        return SLM_OK;
    bool ruled = false;
    for (size_t r = 0; r < pl->n_re && !ruled; r++)
        if (regexec(&pl->re[r], t->name, 0, NULL, 0) == 0) {
            wanted = pl->p->rules[r].type;
            ruled = true;
        }
    int rc = ruled || pl->p->pure ? SLM_OK : default_rules(pl, t, &wanted);
    if (rc)
        return rc;
    pl->plan->types[i] = slm__jobs_fit_type(pl->reg, wanted, t->ne[0], why, sizeof why);
    if (why[0] && !(pl->plan->why[i] = slm__strdup(why)))
        return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    return SLM_OK;
}

typedef struct order {
    long block;
    const char *name;
    size_t index;
} order_t;

static int cmp_order(const void *a, const void *b)
{
    const order_t *x = a, *y = b;
    if (x->block != y->block)
        return x->block < y->block ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Tensors are visited in llama.cpp's order (block number, then name), since the
 * mixes' layer rules count tensors as they go. */
static int choose_all(planner_t *pl)
{
    size_t n = pl->plan->n;
    order_t *o = calloc(n + 1, sizeof *o);
    if (!o)
        return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    slm_model_tensor_t t = {.struct_size = sizeof t};
    int rc = SLM_OK;
    for (size_t i = 0; i < n && rc == SLM_OK; i++) {
        rc = slm_model_file_tensor(pl->in, i, &t);
        o[i] = (order_t){.block = block_of(t.name), .name = t.name, .index = i};
    }
    if (rc >= 0)
        qsort(o, n, sizeof *o, cmp_order);
    for (size_t k = 0; k < n && rc >= 0; k++)
        if ((rc = slm_model_file_tensor(pl->in, o[k].index, &t)) >= 0)
            rc = choose(pl, o[k].index, &t);
    free(o);
    return rc < 0 ? rc : SLM_OK;
}

/* llama-quantize's rule: a quantized tensor is converted again only on request. */
static int check_requantize(planner_t *pl, const char *in_path)
{
    int32_t seen[8];
    size_t n = 0, n_seen = 0;
    slm_model_tensor_t t = {.struct_size = sizeof t};
    for (size_t i = 0; i < pl->plan->n && !pl->p->allow_requantize; i++) {
        const slm_type_traits_t *tr;
        if (slm_model_file_tensor(pl->in, i, &t) < 0 || pl->plan->types[i] == t.type ||
            !(tr = slm_type_get_traits(t.type)) || !tr->is_quantized)
            continue;
        n++;
        bool dup = false;
        for (size_t k = 0; k < n_seen; k++)
            dup = dup || seen[k] == t.type;
        if (!dup && n_seen < SLM__ARRAY_LEN(seen))
            seen[n_seen++] = t.type;
    }
    if (n == 0)
        return SLM_OK;
    char types[256] = "";
    for (size_t k = 0, len = 0; k < n_seen && len < sizeof types; k++) {
        int w = snprintf(types + len, sizeof types - len, "%s%s", k ? ", " : "",
                         slm_type_name(seen[k]));
        len += w > 0 ? (size_t)w : 0;
    }
    return slm__fail(pl->err, SLM_E_INVALID, in_path, -1, "quantize: %s: %zu tensor%s already "
                     "quantized (%s); quantizing again loses precision: pass "
                     "--allow-requantize to do it anyway", in_path, n, n == 1 ? " is" : "s are",
                     types);
}

static int plan_start(planner_t *pl)
{
    slm__qplan_t *plan = pl->plan;
    plan->n = slm_model_file_n_tensors(pl->in);
    plan->types = calloc(plan->n + 1, sizeof *plan->types);
    plan->why = calloc(plan->n + 1, sizeof *plan->why);
    if (!plan->types || !plan->why)
        return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    plan->type = pl->p->type;
    int rc = SLM_OK;
    if (pl->p->type_name) {
        if (!(pl->mixes = slm__mix_set_load(pl->reg)))
            return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
        rc = resolve(pl->reg, pl->mixes, pl->p->type_name, &pl->mix, &plan->type, pl->err);
    } else {
        rc = slm__jobs_check_weight_type(plan->type, "type", pl->err);
    }
    if (rc)
        return rc;
    plan->file_type = pl->mix ? slm__mix_file_type(pl->mix)
                              : slm__jobs_file_type(pl->reg, plan->type);
    if (pl->mix && !(plan->mix = slm__strdup(slm__mix_name(pl->mix))))
        return slm__fail(pl->err, SLM_E_NOMEM, NULL, -1, "quantize: out of memory");
    pl->has_output = slm_model_file_find_tensor(pl->in, "output.weight", NULL) >= 0;
    return pl->mix ? start_mix(pl) : SLM_OK;
}

int slm__qplan_make(slm_registry_t *reg, const slm_model_file_t *in, const char *in_path,
                    const slm_quantize_params_t *p, slm__qplan_t *plan, slm_error_t *err)
{
    *plan = (slm__qplan_t){.file_type = -1};
    planner_t pl = {.reg = reg, .p = p, .in = in, .plan = plan, .err = err};
    int rc = compile_rules(&pl);
    if (rc == SLM_OK)
        rc = plan_start(&pl);
    if (rc == SLM_OK)
        rc = choose_all(&pl);
    if (rc == SLM_OK)
        rc = check_requantize(&pl, in_path);
    for (size_t i = 0; i < pl.n_re; i++)
        regfree(&pl.re[i]);
    free(pl.re);
    slm__mix_run_free(pl.run);
    slm__mix_set_free(pl.mixes);
    if (rc)
        slm__qplan_free(plan);
    return rc;
}

void slm__qplan_free(slm__qplan_t *plan)
{
    for (size_t i = 0; plan->why && i < plan->n; i++)
        free(plan->why[i]);
    free(plan->why);
    free(plan->types);
    free(plan->mix);
    *plan = (slm__qplan_t){.file_type = -1};
}

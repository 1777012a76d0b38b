/* The table of plugin kinds and the trainer kind: every kind has one entry, an
 * unknown kind disables its manifest alone, trainer manifests and interfaces are
 * checked (versions 1 to 3, per the negotiation rules), and interface version 2
 * can be driven the way the training job will drive it. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#define SLM_BACKEND_USE_VERSION 2
#include <slmops/plugin-backend.h>
#include <slmops/plugin-format.h>
#include <slmops/plugin-quantizer.h>
#include <slmops/plugin-trainer.h>

#include "internal/kinds.h"
#include "internal/plugin-access.h"
#include "internal/registry.h"
#include "internal/trainer.h"
#include "tests/registry/helpers.h"

/* ---- the table ---- */

START_TEST(every_kind_has_one_entry)
{
    static const struct { int32_t id; const char *name; uint32_t newest; } want[] = {
        {SLM_PLUGIN_KIND_BACKEND, "backend", SLM_BACKEND_IFACE_VERSION},
        {SLM_PLUGIN_KIND_QUANTIZER, "quantizer", SLM_QUANTIZER_IFACE_VERSION},
        {SLM_PLUGIN_KIND_TRAINER, "trainer", SLM_TRAINER_IFACE_VERSION},
        {SLM_PLUGIN_KIND_FORMAT, "format", SLM_FORMAT_IFACE_VERSION},
    };
    ck_assert_uint_eq(slm__kind_count(), 4);
    for (size_t i = 0; i < 4; i++) {
        const slm__kind_t *k = slm__kind_at(i);
        ck_assert_ptr_nonnull(k);
        ck_assert_int_eq(k->id, want[i].id);
        ck_assert_str_eq(k->name, want[i].name);
        ck_assert_ptr_eq(slm__kind_by_id(want[i].id), k);
        ck_assert_ptr_eq(slm__kind_by_name(want[i].name), k);
        ck_assert_ptr_nonnull(k->parse);
        ck_assert_ptr_nonnull(k->check);
        ck_assert_uint_ge(k->iface_min, 1);
        ck_assert_uint_le(k->iface_min, k->iface_max);
        ck_assert_uint_eq(k->iface_max, want[i].newest);
        ck_assert_uint_eq(slm__kind_iface_version(k->id), want[i].newest);
        ck_assert_uint_ge(k->iface_min_size, 2 * sizeof(uint32_t));
        /* Only backends come in variants of a family. */
        ck_assert(k->variants == (k->id == SLM_PLUGIN_KIND_BACKEND));
    }
    ck_assert_ptr_null(slm__kind_at(4));
    ck_assert_ptr_null(slm__kind_by_name("widget"));
    ck_assert_ptr_null(slm__kind_by_name(NULL));
    ck_assert_ptr_null(slm__kind_by_id(0));
    ck_assert_ptr_null(slm__kind_by_id(5));
    ck_assert_uint_eq(slm__kind_iface_version(5), 0);
    char names[128];
    slm__kind_names(names, sizeof names);
    ck_assert_str_eq(names, "backend, quantizer, trainer or format");
}
END_TEST

/* An unknown kind disables that manifest alone, naming the kind and the file. */
START_TEST(unknown_kind_is_an_error)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_trainer(dir, "trainer.json", "fake-trainer", "fake-trainer", 0, NULL);
    th_write(dir, "widget.json",
             "{\"file_format_version\": \"1.0.0\", \"name\": \"widget\", \"kind\": \"widget\", "
             "\"version\": \"1.0.0\", \"abi_version\": 1, \"library_path\": \"x.so\", "
             "\"description\": \"a kind nobody knows\", \"provides\": {\"extensions\": [\".w\"], "
             "\"read\": true, \"write\": false}}\n");
    th_log_capture();
    slm_registry_t *reg = th_open(dir);
    const slm_plugin_info_t *w = th_row(reg, "widget");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->state, SLM_PLUGIN_DISABLED);
    const char *why =
        "field \"kind\" is \"widget\", expected backend, quantizer, trainer or format";
    ck_assert_msg(strstr(w->reason, why), "reason '%s'", w->reason);
    ck_assert_msg(strstr(th_log_text(), w->manifest_path) && strstr(th_log_text(), why),
                  "log '%s'", th_log_text());
    /* It never fell through to another kind's index. */
    ck_assert(!slm__registry_row(reg, "widget")->manifest_ok);
    const char *names[8];
    size_t n = slm__format_plugins(reg, false, names, 8);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_ne(names[i], "widget");
    ck_assert_int_eq(slm_registry_load(reg, "fake-good", NULL), SLM_OK);
    ck_assert_int_eq(slm_registry_load(reg, "fake-trainer", NULL), SLM_OK);
    slm_registry_free(reg);
}
END_TEST

/* ---- trainer manifests ---- */

/* The reason the registry gives a trainer manifest with these methods. */
static void manifest_verdict(const char *version, const char *methods, const char *cause)
{
    char *dir = th_tmpdir();
    char text[4096];
    snprintf(text, sizeof text,
             "{\"file_format_version\": \"%s\", \"name\": \"t\", \"kind\": \"trainer\", "
             "\"version\": \"1.0.0\", \"abi_version\": 1, \"library_path\": \"t.so\", "
             "\"description\": \"d\", \"provides\": {\"methods\": %s}}\n",
             version, methods);
    th_write(dir, "t.json", text);
    slm_registry_t *reg = th_open(dir);
    const slm_plugin_info_t *t = th_row(reg, "t");
    ck_assert_ptr_nonnull(t);
    if (!cause) {
        ck_assert_msg(t->state == SLM_PLUGIN_AVAILABLE, "%s: %s", methods, t->reason);
    } else {
        ck_assert_int_eq(t->state, SLM_PLUGIN_DISABLED);
        ck_assert_msg(strstr(t->reason, cause), "%s: reason '%s' lacks '%s'", methods,
                      t->reason, cause);
    }
    slm_registry_free(reg);
}

START_TEST(trainer_manifest_methods)
{
    manifest_verdict("1.0.0", "[\"lora\", \"qlora\"]", NULL);
    manifest_verdict("1.3.0", "[\"lora\", {\"name\": \"qlora\", \"description\": \"q\"}]", NULL);
    manifest_verdict("1.2.0", "[{\"name\": \"lora\", \"description\": \"d\"}]",
                     "provides.methods[0] is an object, which needs file_format_version 1.3");
    manifest_verdict("1.3.0", "[{\"name\": \"lora\"}]",
                     "provides.methods[0].description must be a string of 1 to 200 characters");
    manifest_verdict("1.3.0", "[{\"description\": \"d\"}]",
                     "provides.methods[0] has no \"name\" string");
    manifest_verdict("1.3.0", "[\"lora\", {\"name\": \"lora\", \"description\": \"d\"}]",
                     "provides.methods names \"lora\" twice");
    manifest_verdict("1.0.0", "[\"LoRA\"]", "provides.methods[0] is not a method name");
    manifest_verdict("1.0.0", "[\"lo.ra\"]", "provides.methods[0] is not a method name");
    manifest_verdict("1.0.0", "[]", "field \"provides.methods\" is empty");
    manifest_verdict("1.0.0", "\"lora\"", "field \"provides.methods\" has the wrong type");
    /* 200 characters (not bytes: "é" is two) pass, 201 do not. */
    char methods[1024], desc[512] = "";
    for (int i = 0; i < 200; i++)
        strcat(desc, "\xc3\xa9");
    snprintf(methods, sizeof methods, "[{\"name\": \"lora\", \"description\": \"%s\"}]", desc);
    manifest_verdict("1.3.0", methods, NULL);
    snprintf(methods, sizeof methods, "[{\"name\": \"lora\", \"description\": \"%sx\"}]", desc);
    manifest_verdict("1.3.0", methods, "must be a string of 1 to 200 characters");
}
END_TEST

START_TEST(trainer_summary_lists_methods)
{
    char *dir = th_tmpdir();
    th_trainer(dir, "a.json", "fake-trainer", "fake-trainer", 0, NULL);
    th_trainer(dir, "b.json", "fake-trainer-v1", "fake-trainer-v1", 0,
               "[\"fake-full\", \"fake-lora\"]");
    th_good(dir);
    slm_registry_t *reg = th_open(dir);
    ck_assert_str_eq(th_row(reg, "fake-trainer")->summary,
                     "methods: fake-full (every weight trains), fake-lora (low-rank adapters)");
    ck_assert_str_eq(th_row(reg, "fake-trainer-v1")->summary, "methods: fake-full, fake-lora");
    ck_assert_str_eq(th_row(reg, "fake-good")->summary, "");
    slm_registry_free(reg);
}
END_TEST

/* ---- the trainer interface: struct layout and version negotiation ---- */

/* Version 2 took its slot from `reserved`: the layout of version 1 is unchanged,
 * for any pointer size (pointers after two uint32_t start at 8). */
START_TEST(trainer_struct_layout)
{
    const size_t P = sizeof(void *);
    ck_assert_uint_eq(offsetof(slm_trainer_iface_t, methods), 8);
    ck_assert_uint_eq(offsetof(slm_trainer_iface_t, trains_base_tensor), 8 + P);
    ck_assert_uint_eq(offsetof(slm_trainer_iface_t, adapter_rank), 8 + 2 * P);
    ck_assert_uint_eq(offsetof(slm_trainer_iface_t, method_table), 8 + 3 * P);
    ck_assert_uint_eq(sizeof(slm_trainer_iface_t), 8 + 3 * P + 8 * P);   /* version 1's size */
    /* The host table kept its size when iface_version took a reserved slot. */
    ck_assert_uint_eq(offsetof(slm_host_t, log), 8);
    ck_assert_uint_eq(offsetof(slm_host_t, type_name), 8 + P);
    ck_assert_uint_eq(offsetof(slm_host_t, iface_version), 8 + 2 * P);
    ck_assert_uint_eq(sizeof(slm_host_t), 8 + 9 * P);
    /* Every version-2 struct begins with struct_size and ends with reserved room. */
    ck_assert_uint_eq(offsetof(slm_trainer_method_t, struct_size), 0);
    ck_assert_uint_eq(offsetof(slm_trainer_method_t, name), P);
    ck_assert_uint_eq(sizeof(slm_trainer_method_t) - offsetof(slm_trainer_method_t, reserved),
                      8 * P);
    ck_assert_uint_eq(offsetof(slm_trainer_plan_t, ctx), P);
    ck_assert_uint_eq(offsetof(slm_trainer_graph_t, ctx), P);
    ck_assert_uint_eq(offsetof(slm_trainer_save_t, ctx), P);
    ck_assert_uint_eq(offsetof(slm_trainer_model_t, ctx), P);
    ck_assert_uint_eq(offsetof(slm_trainer_options_t, ctx), P);
    /* Version 1's tensor info is a prefix of version 2's. */
    ck_assert_uint_eq(offsetof(slm_trainer_tensor_info_t, hf_name),
                      offsetof(slm_trainer_tensor_info_t, ne) + 4 * sizeof(int64_t));
}
END_TEST

/* Loads `module` as trainer `name` beside the good backend; returns the load's
 * status, and the reason into why. */
static int load_trainer(const char *module, const char *methods, char *why, size_t size,
                        uint32_t *iface_version)
{
    char *dir = th_tmpdir();
    th_good(dir);
    th_trainer(dir, "t.json", module, module, 0, methods);
    slm_registry_t *reg = th_open(dir);
    slm_error_t err;
    slm_error_init(&err);
    int rc = slm_registry_load(reg, module, &err);
    const slm_plugin_info_t *t = th_row(reg, module);
    snprintf(why, size, "%s", rc ? t->reason : "");
    if (rc)
        ck_assert_int_eq(t->state, SLM_PLUGIN_DISABLED);
    else
        ck_assert_int_eq(t->state, SLM_PLUGIN_LOADED);
    if (!rc && iface_version)
        *iface_version = ((const slm_trainer_iface_t *)slm__plugin_iface(
                              slm__registry_row(reg, module)))->iface_version;
    /* Whatever the trainer did, the backend beside it still loads. */
    ck_assert_int_eq(slm_registry_load(reg, "fake-good", NULL), SLM_OK);
    slm_registry_free(reg);
    return rc;
}

START_TEST(trainer_versions_negotiated)
{
    char why[512];
    uint32_t v = 0;
    ck_assert_int_eq(load_trainer("fake-trainer", NULL, why, sizeof why, &v), SLM_OK);
    ck_assert_uint_eq(v, 2);
    /* A version-1 trainer still loads (it cannot train: see trainer_method_*). */
    ck_assert_int_eq(load_trainer("fake-trainer-v1", NULL, why, sizeof why, &v), SLM_OK);
    ck_assert_uint_eq(v, 1);
    /* One that answers 3 to a host offering 2 broke the negotiation. */
    ck_assert_int_eq(load_trainer("fake-trainer-v3", NULL, why, sizeof why, NULL), SLM_E_ABI);
    ck_assert_str_eq(why, "trainer interface version 3 is newer than this host reads (1..2)");
    /* One that speaks 3 but reads the host's offer answers 2, with its larger struct. */
    ck_assert_int_eq(load_trainer("fake-trainer-v3-negotiating", NULL, why, sizeof why, &v),
                     SLM_OK);
    ck_assert_uint_eq(v, 2);
}
END_TEST

START_TEST(trainer_interface_must_agree)
{
    char why[512];
    ck_assert_int_lt(load_trainer("fake-trainer-extra-method", NULL, why, sizeof why, NULL), 0);
    ck_assert_str_eq(why,
                     "trainer interface lists method \"fake-dora\", which the manifest does not");
    ck_assert_int_lt(load_trainer("fake-trainer", "[\"fake-full\", \"fake-lora\", \"fake-qlora\"]",
                                  why, sizeof why, NULL), 0);
    ck_assert_str_eq(why, "the manifest's method \"fake-qlora\" is missing from the trainer "
                          "interface");
    ck_assert_int_lt(load_trainer("fake-trainer-v1", "[\"fake-full\"]", why, sizeof why, NULL),
                     0);
    ck_assert_str_eq(why,
                     "trainer interface lists method \"fake-lora\", which the manifest does not");
    ck_assert_int_lt(load_trainer("fake-trainer-dup-method", NULL, why, sizeof why, NULL), 0);
    ck_assert_str_eq(why, "trainer interface lists method \"fake-full\" twice");
    ck_assert_int_lt(load_trainer("fake-trainer-no-finish", NULL, why, sizeof why, NULL), 0);
    ck_assert_str_eq(why, "trainer method \"fake-lora\" leaves finish NULL");
    ck_assert_int_lt(load_trainer("fake-trainer-bad-default", NULL, why, sizeof why, NULL), 0);
    ck_assert_str_eq(why, "trainer method \"fake-lora\" option \"rank\" has a bad default: is 0, "
                          "outside 1..256");
}
END_TEST

/* ---- finding the trainer of a method ---- */

START_TEST(trainers_for_best_first)
{
    char *dir = th_tmpdir();
    th_trainer(dir, "a.json", "fake-trainer", "fake-trainer", 0, NULL);
    th_trainer(dir, "b.json", "fake-trainer-v1", "fake-trainer-v1", 100, NULL);
    th_trainer(dir, "c.json", "fake-trainer-v3-negotiating", "fake-trainer-v3-negotiating", 0,
               "[\"fake-full\", \"fake-lora\"]");
    slm_registry_t *reg = th_open(dir);
    const char *names[4];
    ck_assert_uint_eq(slm_registry_trainers_for(reg, "fake-lora", names, 4), 3);
    ck_assert_str_eq(names[0], "fake-trainer-v1");
    ck_assert_str_eq(names[1], "fake-trainer");
    ck_assert_str_eq(names[2], "fake-trainer-v3-negotiating");
    ck_assert_uint_eq(slm_registry_trainers_for(reg, "fake-lora", names, 1), 1);
    ck_assert_uint_eq(slm_registry_trainers_for(reg, "dora", names, 4), 0);
    ck_assert_uint_eq(slm_registry_trainers_for(NULL, "fake-lora", names, 4), 0);
    /* The best is version 1 and cannot train: the next one serves. */
    const char *plugin = NULL;
    slm_error_t err;
    slm_error_init(&err);
    const slm_trainer_method_t *m = slm__trainer_method(reg, "fake-lora", &plugin, &err);
    ck_assert_msg(m != NULL, "%s", err.message);
    ck_assert_str_eq(m->name, "fake-lora");
    ck_assert_str_eq(plugin, "fake-trainer");
    ck_assert_ptr_null(slm__trainer_method(reg, "dora", NULL, &err));
    ck_assert_int_eq(err.code, SLM_E_NOT_FOUND);
    ck_assert_str_eq(err.message,
                     "no usable trainer plugin provides method \"dora\" (see `slmops plugins`)");
    slm_registry_free(reg);
}
END_TEST

START_TEST(trainer_method_needs_version_2)
{
    char *dir = th_tmpdir();
    th_trainer(dir, "b.json", "fake-trainer-v1", "fake-trainer-v1", 0, NULL);
    slm_registry_t *reg = th_open(dir);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_ptr_null(slm__trainer_method(reg, "fake-full", NULL, &err));
    ck_assert_int_eq(err.code, SLM_E_ABI);
    ck_assert_msg(strstr(err.message, "trainer plugin fake-trainer-v1 speaks trainer interface "
                                      "version 1, which cannot train"), "%s", err.message);
    /* It stays listed as loaded: it is not broken, only old. */
    ck_assert_int_eq(th_row(reg, "fake-trainer-v1")->state, SLM_PLUGIN_LOADED);
    slm_registry_free(reg);
}
END_TEST

/* ---- settings ---- */

static slm_registry_t *method_reg;

static const slm_trainer_method_t *method(const char *name)
{
    char *dir = th_tmpdir();
    th_trainer(dir, "t.json", "fake-trainer", "fake-trainer", 0, NULL);
    method_reg = th_open(dir);
    slm_error_t err;
    slm_error_init(&err);
    const slm_trainer_method_t *m = slm__trainer_method(method_reg, name, NULL, &err);
    ck_assert_msg(m != NULL, "%s", err.message);
    return m;
}

static void settings_refused(const slm_trainer_method_t *m, const char *json, const char *cause)
{
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_ptr_null(slm__trainer_options_new(m, json, &err));
    ck_assert_int_eq(err.code, SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, cause), "%s: '%s' lacks '%s'", json, err.message, cause);
}

START_TEST(settings_defaults_and_values)
{
    const slm_trainer_method_t *m = method("fake-lora");
    slm_error_t err;
    slm_error_init(&err);
    slm__trainer_options_t *o = slm__trainer_options_new(m, NULL, &err);
    ck_assert_msg(o != NULL, "%s", err.message);
    const slm_trainer_options_t *t = slm__trainer_options_table(o);
    ck_assert_uint_eq(t->struct_size, sizeof *t);
    ck_assert_str_eq(t->json, "{}");
    int64_t rank;
    double alpha;
    bool rs;
    const char *init;
    const char *const *targets;
    size_t n;
    ck_assert_int_eq(t->get_int(t->ctx, "rank", &rank), 1);
    ck_assert_int_eq(rank, 8);
    ck_assert_int_eq(t->get_float(t->ctx, "alpha", &alpha), 1);
    ck_assert_double_eq(alpha, 16.0);
    ck_assert_int_eq(t->get_bool(t->ctx, "rslora", &rs), 1);
    ck_assert(!rs);
    ck_assert_int_eq(t->get_string(t->ctx, "init", &init), 0);
    ck_assert_int_eq(t->get_strings(t->ctx, "targets", &targets, &n), 1);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(targets[0], "attn_q");
    ck_assert_str_eq(targets[1], "attn_v");
    ck_assert_ptr_null(targets[2]);
    /* A getter of another type, or an undeclared name, is refused. */
    ck_assert_int_eq(t->get_int(t->ctx, "alpha", &rank), SLM_E_INVALID);
    ck_assert_int_eq(t->get_int(t->ctx, "nope", &rank), SLM_E_INVALID);
    ck_assert_int_eq(t->get_float(t->ctx, "rank", &alpha), 1);   /* an integer reads as a number */
    ck_assert_double_eq(alpha, 8.0);
    slm__trainer_options_free(o);

    o = slm__trainer_options_new(
        m, "{\"rank\": 4, \"targets\": \" attn_q,attn_k \", \"rslora\": true, \"init\": \"peft\"}",
        &err);
    ck_assert_msg(o != NULL, "%s", err.message);
    t = slm__trainer_options_table(o);
    ck_assert_int_eq(t->get_int(t->ctx, "rank", &rank), 1);
    ck_assert_int_eq(rank, 4);
    ck_assert_int_eq(t->get_strings(t->ctx, "targets", &targets, &n), 1);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(targets[0], "attn_q");
    ck_assert_str_eq(targets[1], "attn_k");
    ck_assert_int_eq(t->get_bool(t->ctx, "rslora", &rs), 1);
    ck_assert(rs);
    ck_assert_int_eq(t->get_string(t->ctx, "init", &init), 1);
    ck_assert_str_eq(init, "peft");
    ck_assert_str_eq(t->json,
                     "{\"rank\":4,\"targets\":\" attn_q,attn_k \",\"rslora\":true,"
                     "\"init\":\"peft\"}");
    slm__trainer_options_free(o);
    slm_registry_free(method_reg);
}
END_TEST

START_TEST(settings_checked)
{
    const slm_trainer_method_t *m = method("fake-lora");
    settings_refused(m, "{\"rnak\": 4}", "method fake-lora has no setting \"rnak\" (its settings: "
                                         "rank, alpha, dropout, targets, rslora, init)");
    settings_refused(m, "{\"rank\": 0}", "method fake-lora: setting \"rank\" is 0, outside 1..256");
    settings_refused(m, "{\"rank\": \"4\"}", "setting \"rank\" must be an integer");
    settings_refused(m, "{\"rank\": 4.5}", "setting \"rank\" must be an integer");
    settings_refused(m, "{\"dropout\": 1.5}", "setting \"dropout\" is 1.5, outside 0..1");
    settings_refused(m, "{\"rslora\": 1}", "setting \"rslora\" must be true or false");
    settings_refused(m, "{\"targets\": []}", "setting \"targets\" must be a non-empty list");
    settings_refused(m, "{\"targets\": [\"q\", 2]}", "setting \"targets\" element 1 must be");
    settings_refused(m, "{\"targets\": \"q,,v\"}", "setting \"targets\" has an empty name");
    settings_refused(m, "{\"init\": \"\"}", "setting \"init\" must be a non-empty string");
    settings_refused(m, "[1]", "method fake-lora: settings must be a JSON object");
    settings_refused(m, "{\"rank\": 4", "method fake-lora: settings are not JSON");
    settings_refused(m, "{\"rank\": 4, \"rank\": 5}", "settings are not JSON");
    slm_registry_free(method_reg);
    m = method("fake-full");
    settings_refused(m, "{\"rank\": 4}",
                     "method fake-full has no setting \"rank\" (it takes none)");
    slm_registry_free(method_reg);
}
END_TEST

/* ---- driving version 2 as the training job will ---- */

static const slm_trainer_tensor_info_t model_tensors[] = {
    {.struct_size = sizeof(slm_trainer_tensor_info_t), .name = "blk.0.attn_q.weight",
     .type = SLM_TYPE_F16, .n_dims = 2, .ne = {64, 32, 1, 1},
     .hf_name = "model.layers.0.self_attn.q_proj.weight", .layer = 0},
    {.struct_size = sizeof(slm_trainer_tensor_info_t), .name = "blk.0.attn_v.weight",
     .type = SLM_TYPE_F16, .n_dims = 2, .ne = {64, 16, 1, 1},
     .hf_name = "model.layers.0.self_attn.v_proj.weight", .layer = 0},
    {.struct_size = sizeof(slm_trainer_tensor_info_t), .name = "blk.0.attn_norm.weight",
     .type = SLM_TYPE_F32, .n_dims = 1, .ne = {64, 1, 1, 1},
     .hf_name = "model.layers.0.input_layernorm.weight", .layer = 0},
};

static const slm_trainer_tensor_info_t *model_tensor(void *ctx, size_t i)
{
    (void)ctx;
    return &model_tensors[i];
}

/* What the plan and save slots were told. */
typedef struct record {
    char calls[4096];
    float params[8][64 * 32];
    char param_names[8][96];
    int64_t param_ne[8][2];
    int n_params;
    float scale[8];
    int n_adapters;
    uint32_t seed;
    char config[512];
} record_t;

static record_t rec;

static void note(const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(rec.calls);
    snprintf(rec.calls + len, sizeof rec.calls - len, fmt, a, b ? b : "-");
}

static int plan_train_base(void *ctx, const char *name, uint32_t flags)
{
    (void)ctx;
    note("train %s %s;", name, flags & SLM_TRAINER_PARAM_NO_DECAY ? "no-decay" : "decay");
    return 0;
}

static int plan_new_param(void *ctx, const char *name, int32_t n_dims, const int64_t *ne,
                          uint32_t flags, float **init)
{
    (void)ctx;
    (void)flags;
    ck_assert_int_eq(n_dims, 2);
    ck_assert_int_lt(rec.n_params, 8);
    int i = rec.n_params++;
    snprintf(rec.param_names[i], sizeof rec.param_names[i], "%s", name);
    rec.param_ne[i][0] = ne[0];
    rec.param_ne[i][1] = ne[1];
    *init = rec.params[i];
    return 0;
}

static int plan_add_adapter(void *ctx, const slm_trainer_adapter_t *a)
{
    (void)ctx;
    ck_assert_uint_ge(a->struct_size, offsetof(slm_trainer_adapter_t, reserved));
    rec.scale[rec.n_adapters++] = a->scale;
    note("adapter %s %s;", a->target, a->b);
    return 0;
}

static int plan_uniform(void *ctx, float *dst, size_t n, float lo, float hi)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        rec.seed = rec.seed * 1664525u + 1013904223u;
        dst[i] = lo + (hi - lo) * (float)(rec.seed >> 8) / 16777216.0f;
    }
    return 0;
}

static int save_model(void *ctx)
{
    (void)ctx;
    note("model%s%s;", "", "");
    return 0;
}

static int save_tensor(void *ctx, const char *param, const char *rows_of, const char *peft,
                       const char *gguf)
{
    (void)ctx;
    (void)param;
    note("%s rows_of %s;", peft, rows_of);
    ck_assert_ptr_nonnull(gguf);
    return 0;
}

static int save_config(void *ctx, const char *json)
{
    (void)ctx;
    snprintf(rec.config, sizeof rec.config, "%s", json);
    return 0;
}

/* Runs prepare and finish of `name` with `settings` over the three tensors above. */
static void drive(const char *name, const char *settings)
{
    memset(&rec, 0, sizeof rec);
    rec.seed = 42;
    const slm_trainer_method_t *m = method(name);
    slm_error_t err;
    slm_error_init(&err);
    slm__trainer_options_t *o = slm__trainer_options_new(m, settings, &err);
    ck_assert_msg(o != NULL, "%s", err.message);
    slm_trainer_model_t model = {
        .struct_size = sizeof model, .arch = "llama", .n_tensors = 3, .tensor = model_tensor,
    };
    slm_trainer_plan_t plan = {
        .struct_size = sizeof plan, .train_base = plan_train_base, .new_param = plan_new_param,
        .add_adapter = plan_add_adapter, .uniform = plan_uniform,
    };
    slm_trainer_save_t save = {
        .struct_size = sizeof save, .model = save_model, .tensor = save_tensor,
        .adapter_config = save_config,
    };
    void *state = NULL;
    ck_assert_int_eq(m->prepare(&model, slm__trainer_options_table(o), &plan, &state, &err), 0);
    ck_assert_int_eq(m->finish(state, &save, &err), 0);
    if (m->release)
        m->release(state);
    slm__trainer_options_free(o);
    slm_registry_free(method_reg);
}

START_TEST(drive_full)
{
    drive("fake-full", NULL);
    ck_assert_str_eq(rec.calls, "train blk.0.attn_q.weight decay;train blk.0.attn_v.weight decay;"
                                "train blk.0.attn_norm.weight no-decay;model;");
    ck_assert_int_eq(rec.n_params, 0);
}
END_TEST

START_TEST(drive_lora)
{
    drive("fake-lora", "{\"rank\": 4, \"alpha\": 8}");
    ck_assert_int_eq(rec.n_adapters, 2);
    ck_assert_float_eq(rec.scale[0], 2.0f);   /* alpha / rank */
    /* A is rank x in ({in, rank}), Kaiming-uniform; B is out x rank, zero. */
    ck_assert_str_eq(rec.param_names[0], "blk.0.attn_q.weight.lora_a");
    ck_assert_int_eq(rec.param_ne[0][0], 64);
    ck_assert_int_eq(rec.param_ne[0][1], 4);
    ck_assert_str_eq(rec.param_names[1], "blk.0.attn_q.weight.lora_b");
    ck_assert_int_eq(rec.param_ne[1][0], 4);
    ck_assert_int_eq(rec.param_ne[1][1], 32);
    ck_assert_int_eq(rec.param_ne[3][1], 16);
    float bound = 1.0f / 8.0f, most = 0;
    for (int i = 0; i < 64 * 4; i++) {
        ck_assert(fabsf(rec.params[0][i]) <= bound);
        most = fmaxf(most, fabsf(rec.params[0][i]));
    }
    ck_assert(most > bound / 2);
    for (int i = 0; i < 4 * 32; i++)
        ck_assert(rec.params[1][i] == 0.0f);
    ck_assert_str_eq(rec.calls,
                     "adapter blk.0.attn_q.weight blk.0.attn_q.weight.lora_b;"
                     "adapter blk.0.attn_v.weight blk.0.attn_v.weight.lora_b;"
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight rows_of -;"
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight rows_of "
                     "blk.0.attn_q.weight;"
                     "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight rows_of -;"
                     "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight rows_of "
                     "blk.0.attn_v.weight;");
    json_t *cfg = json_loads(rec.config, 0, NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(cfg, "peft"), "r")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cfg, "gguf"),
                                                       "adapter.type")), "lora");
    json_decref(cfg);
    /* rsLoRA scales by alpha / sqrt(rank). */
    drive("fake-lora", "{\"rank\": 4, \"alpha\": 8, \"rslora\": true, \"targets\": \"attn_v\"}");
    ck_assert_int_eq(rec.n_adapters, 1);
    ck_assert_float_eq(rec.scale[0], 4.0f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry-kinds");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, every_kind_has_one_entry);
    tcase_add_test(tc, unknown_kind_is_an_error);
    suite_add_tcase(s, tc);
    tc = tcase_create("trainer-manifest");
    tcase_add_test(tc, trainer_manifest_methods);
    tcase_add_test(tc, trainer_summary_lists_methods);
    suite_add_tcase(s, tc);
    tc = tcase_create("trainer-interface");
    tcase_add_test(tc, trainer_struct_layout);
    tcase_add_test(tc, trainer_versions_negotiated);
    tcase_add_test(tc, trainer_interface_must_agree);
    tcase_add_test(tc, trainers_for_best_first);
    tcase_add_test(tc, trainer_method_needs_version_2);
    suite_add_tcase(s, tc);
    tc = tcase_create("trainer-settings");
    tcase_add_test(tc, settings_defaults_and_values);
    tcase_add_test(tc, settings_checked);
    tcase_add_test(tc, drive_full);
    tcase_add_test(tc, drive_lora);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

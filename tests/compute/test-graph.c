/* Graph building without a device: shapes, strides and recorded errors of every
 * builder, view semantics, topological order and the structure autodiff appends. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/slmops.h>

static int status_of(slm_graph_t *g, slm_error_t *err)
{
    slm_error_init(err);
    return slm_graph_status(g, err);
}

static size_t index_of(slm_graph_t *g, const slm_tensor_t *t)
{
    for (size_t i = 0; i < slm_graph_n_tensors(g); i++)
        if (slm_graph_tensor(g, i) == t)
            return i;
    return (size_t)-1;
}

START_TEST(leaf_shapes_and_strides)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 3);
    const int64_t ne[3] = {4, 3, 2};
    slm_tensor_t *h = slm_tensor_new(g, SLM_TYPE_F16, 3, ne);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(slm_tensor_n_dims(a), 2);
    ck_assert_int_eq(slm_tensor_ne(a, 0), 5);
    ck_assert_int_eq(slm_tensor_ne(a, 2), 1);
    ck_assert_int_eq(slm_tensor_nb(a, 1), 20);
    ck_assert_int_eq(slm_tensor_nelements(a), 15);
    ck_assert_uint_eq(slm_tensor_nbytes(a), 60);
    ck_assert(slm_tensor_is_contiguous(a));
    ck_assert_int_eq(slm_tensor_nb(h, 0), 2);
    ck_assert_int_eq(slm_tensor_nb(h, 2), 24);
    ck_assert_uint_eq(slm_tensor_nbytes(h), 48);
    ck_assert_int_eq(slm_tensor_op(a), SLM_OP_NONE);
    slm_tensor_set_name(a, "weights");
    ck_assert_ptr_eq(slm_graph_find(g, "weights"), a);
    ck_assert_ptr_null(slm_graph_find(g, "missing"));
    slm_tensor_set_flags(a, SLM_TENSOR_PARAM);
    slm_tensor_set_flags(a, SLM_TENSOR_OUTPUT);
    ck_assert_uint_eq(slm_tensor_flags(a), SLM_TENSOR_PARAM | SLM_TENSOR_OUTPUT);
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_OK);
    slm_graph_free(g);
}
END_TEST

START_TEST(bad_leaf_is_recorded)
{
    slm_graph_t *g = slm_graph_new(0);
    ck_assert_ptr_null(slm_tensor_new_2d(g, SLM_TYPE_F32, 0, 3));
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "dimension 0"));
    slm_graph_free(g);
}
END_TEST

START_TEST(mul_mat_mismatch_stops_building)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 3);
    slm_tensor_t *b = slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 2);
    slm_tensor_t *ok = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 2);
    slm_tensor_set_name(a, "A");
    ck_assert_ptr_null(slm_mul_mat(g, a, b));
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "mul_mat"));
    ck_assert_ptr_nonnull(strstr(err.message, "'A'"));
    /* After the first error every builder returns NULL, and the error stays the first. */
    ck_assert_ptr_null(slm_mul_mat(g, a, ok));
    ck_assert_ptr_null(slm_silu(g, NULL));
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "mul_mat"));
    slm_graph_free(g);
}
END_TEST

START_TEST(mul_mat_shapes)
{
    slm_graph_t *g = slm_graph_new(0);
    const int64_t ane[4] = {8, 5, 1, 1}, bne[4] = {8, 3, 2, 4};
    slm_tensor_t *a = slm_tensor_new(g, SLM_TYPE_F16, 4, ane);
    slm_tensor_t *b = slm_tensor_new(g, SLM_TYPE_F32, 4, bne);
    slm_tensor_t *c = slm_mul_mat(g, a, b);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(slm_tensor_ne(c, 0), 5);
    ck_assert_int_eq(slm_tensor_ne(c, 1), 3);
    ck_assert_int_eq(slm_tensor_ne(c, 2), 2);
    ck_assert_int_eq(slm_tensor_ne(c, 3), 4);
    ck_assert_int_eq(slm_tensor_type(c), SLM_TYPE_F32);
    ck_assert_ptr_eq(slm_tensor_src(c, 0), a);
    ck_assert_ptr_eq(slm_tensor_src(c, 1), b);
    /* The activation operand must be f32. */
    ck_assert_ptr_null(slm_mul_mat(g, b, a));
    slm_graph_free(g);
}
END_TEST

START_TEST(null_operand_is_an_error)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_1d(g, SLM_TYPE_F32, 4);
    ck_assert_ptr_null(slm_add(g, a, NULL));
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_ptr_null(slm_add(NULL, a, a));
    slm_graph_free(g);
}
END_TEST

START_TEST(broadcast_rules)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 4);
    slm_tensor_t *row = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 1);
    slm_tensor_t *col = slm_tensor_new_2d(g, SLM_TYPE_F32, 1, 4);
    slm_tensor_t *two = slm_tensor_new_2d(g, SLM_TYPE_F32, 3, 2);
    ck_assert_ptr_nonnull(slm_add(g, a, row));
    ck_assert_ptr_nonnull(slm_mul(g, a, col));
    ck_assert_ptr_nonnull(slm_add(g, a, two));
    slm_tensor_t *r = slm_repeat_back(g, a, two);
    ck_assert_int_eq(slm_tensor_ne(r, 0), 3);
    ck_assert_int_eq(slm_tensor_ne(r, 1), 2);
    slm_tensor_t *bad = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 1);
    ck_assert_ptr_null(slm_add(g, a, bad));
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "broadcast"));
    slm_graph_free(g);
}
END_TEST

static void expect_fail(slm_tensor_t *t, slm_graph_t *g, const char *word)
{
    slm_error_t err;
    ck_assert_ptr_null(t);
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_msg(strstr(err.message, word) != NULL, "'%s' lacks '%s'", err.message, word);
    slm_graph_free(g);
}

START_TEST(op_specific_checks)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *table = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 9);
    expect_fail(slm_get_rows(g, table, slm_tensor_new_1d(g, SLM_TYPE_F32, 3)), g, "i32");

    g = slm_graph_new(0);
    const int64_t ne[4] = {8, 2, 3, 1};
    slm_tensor_t *x = slm_tensor_new(g, SLM_TYPE_F32, 4, ne);
    slm_tensor_t *pos = slm_tensor_new_1d(g, SLM_TYPE_I32, 3);
    ck_assert_ptr_nonnull(slm_rope(g, x, pos, 8, SLM_ROPE_NEOX, 10000.0f, 1.0f));
    expect_fail(slm_rope(g, x, pos, 5, SLM_ROPE_NORMAL, 10000.0f, 1.0f), g, "n_dims");

    g = slm_graph_new(0);
    x = slm_tensor_new(g, SLM_TYPE_F32, 4, ne);
    pos = slm_tensor_new_1d(g, SLM_TYPE_I32, 2);
    expect_fail(slm_rope(g, x, pos, 8, SLM_ROPE_NORMAL, 10000.0f, 1.0f), g, "positions");

    g = slm_graph_new(0);
    x = slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 4);
    expect_fail(slm_soft_max(g, x, slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 4), 1.0f, true, 0), g,
                "mask");

    /* A mask per batch (packed training rows) is broadcast like the rows: its batch
     * dims must divide x's. */
    g = slm_graph_new(0);
    const int64_t xne[4] = {6, 6, 4, 3}, mne[4] = {6, 6, 1, 3}, bad[4] = {6, 6, 1, 2};
    x = slm_tensor_new(g, SLM_TYPE_F32, 4, xne);
    ck_assert_ptr_nonnull(slm_soft_max(g, x, slm_tensor_new(g, SLM_TYPE_F32, 4, mne), 1.0f,
                                       false, 0));
    expect_fail(slm_soft_max(g, x, slm_tensor_new(g, SLM_TYPE_F32, 4, bad), 1.0f, false, 0), g,
                "mask");

    g = slm_graph_new(0);
    x = slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 4);
    expect_fail(slm_swiglu(g, x, slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 5)), g, "differ");

    g = slm_graph_new(0);
    x = slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 4);
    expect_fail(slm_cross_entropy(g, x, slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 3)), g, "differ");

    g = slm_graph_new(0);
    x = slm_tensor_new_2d(g, SLM_TYPE_F32, 5, 4);
    expect_fail(slm_cpy(g, x, slm_tensor_new_1d(g, SLM_TYPE_F16, 19)), g, "elements");

    g = slm_graph_new(0);
    x = slm_tensor_new_2d(g, SLM_TYPE_I32, 5, 4);
    expect_fail(slm_silu(g, x), g, "needs f32");
}
END_TEST

START_TEST(permute_and_transpose_strides)
{
    slm_graph_t *g = slm_graph_new(0);
    const int64_t ne[4] = {2, 3, 4, 5};
    slm_tensor_t *a = slm_tensor_new(g, SLM_TYPE_F32, 4, ne);
    slm_tensor_t *p = slm_permute(g, a, 1, 2, 0, 3);
    ck_assert_ptr_nonnull(p);
    /* Source dim i goes to position ax_i. */
    ck_assert_int_eq(slm_tensor_ne(p, 0), 4);
    ck_assert_int_eq(slm_tensor_ne(p, 1), 2);
    ck_assert_int_eq(slm_tensor_ne(p, 2), 3);
    ck_assert_int_eq(slm_tensor_ne(p, 3), 5);
    ck_assert_int_eq(slm_tensor_nb(p, 0), slm_tensor_nb(a, 2));
    ck_assert_int_eq(slm_tensor_nb(p, 1), slm_tensor_nb(a, 0));
    ck_assert_int_eq(slm_tensor_nb(p, 2), slm_tensor_nb(a, 1));
    ck_assert(!slm_tensor_is_contiguous(p));
    ck_assert_int_eq(slm_tensor_op(p), SLM_OP_NONE);
    ck_assert_ptr_eq(slm_tensor_src(p, 0), a);

    slm_tensor_t *m = slm_tensor_new_2d(g, SLM_TYPE_F32, 3, 5);
    slm_tensor_t *t = slm_transpose(g, m);
    ck_assert_int_eq(slm_tensor_ne(t, 0), 5);
    ck_assert_int_eq(slm_tensor_ne(t, 1), 3);
    ck_assert_int_eq(slm_tensor_nb(t, 0), 12);
    ck_assert_int_eq(slm_tensor_nb(t, 1), 4);
    slm_tensor_t *tt = slm_transpose(g, t);
    ck_assert(slm_tensor_is_contiguous(tt));
    slm_tensor_t *c = slm_cont(g, t);
    ck_assert(slm_tensor_is_contiguous(c));
    ck_assert_int_eq(slm_tensor_op(c), SLM_OP_CPY);

    ck_assert_ptr_null(slm_permute(g, a, 0, 1, 1, 3));
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "permutation"));
    slm_graph_free(g);
}
END_TEST

START_TEST(reshape_rules)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 4);
    const int64_t ne[3] = {3, 2, 4};
    slm_tensor_t *r = slm_reshape(g, a, 3, ne);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(slm_tensor_nb(r, 1), 12);
    ck_assert_int_eq(slm_tensor_nb(r, 2), 24);
    ck_assert_ptr_eq(slm_tensor_src(r, 0), a);
    const int64_t bad[2] = {5, 5};
    ck_assert_ptr_null(slm_reshape(g, a, 2, bad));
    slm_graph_free(g);

    g = slm_graph_new(0);
    a = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 4);
    const int64_t flat[1] = {24};
    expect_fail(slm_reshape(g, slm_transpose(g, a), 1, flat), g, "not contiguous");
}
END_TEST

START_TEST(view_bounds)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *a = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 4);
    const int64_t ne[2] = {3, 2}, nb[2] = {4, 24};
    slm_tensor_t *v = slm_view(g, a, 2, ne, nb, 2 * sizeof(float));
    ck_assert_ptr_nonnull(v);
    ck_assert(!slm_tensor_is_contiguous(v));
    ck_assert_int_eq(slm_tensor_nb(v, 1), 24);
    /* Rows 3 and 4 at stride 24 from the last row run past the 96 bytes of a. */
    expect_fail(slm_view(g, a, 2, ne, nb, 3 * 24), g, "exceed");
}
END_TEST

START_TEST(graph_capacity)
{
    slm_graph_t *g = slm_graph_new(3);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(slm_tensor_new_1d(g, SLM_TYPE_F32, 2));
    ck_assert_ptr_null(slm_tensor_new_1d(g, SLM_TYPE_F32, 2));
    slm_error_t err;
    ck_assert_int_eq(status_of(g, &err), SLM_E_NOMEM);
    ck_assert_uint_eq(slm_graph_n_tensors(g), 3);
    slm_graph_free(g);
}
END_TEST

/* x -> W1 -> rms_norm -> *gain -> silu -> W2 -> cross_entropy, plus backward. */
static slm_tensor_t *mlp(slm_graph_t *g, slm_tensor_t **w1, slm_tensor_t **gain,
                         slm_tensor_t **w2, slm_tensor_t **x)
{
    *x = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 5);
    *w1 = slm_tensor_new_2d(g, SLM_TYPE_F32, 6, 8);
    *gain = slm_tensor_new_1d(g, SLM_TYPE_F32, 8);
    *w2 = slm_tensor_new_2d(g, SLM_TYPE_F32, 8, 4);
    slm_tensor_t *t = slm_tensor_new_2d(g, SLM_TYPE_F32, 4, 5);
    slm_tensor_set_flags(*x, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(t, SLM_TENSOR_INPUT);
    slm_tensor_set_flags(*w1, SLM_TENSOR_PARAM);
    slm_tensor_set_flags(*gain, SLM_TENSOR_PARAM);
    slm_tensor_set_flags(*w2, SLM_TENSOR_PARAM);
    slm_tensor_t *h = slm_mul_mat(g, *w1, *x);
    h = slm_silu(g, slm_mul(g, slm_rms_norm(g, h, 1e-5f), *gain));
    return slm_cross_entropy(g, slm_mul_mat(g, *w2, h), t);
}

START_TEST(topological_order_and_grads)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *w1, *gain, *w2, *x;
    slm_tensor_t *loss = mlp(g, &w1, &gain, &w2, &x);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_OK);
    slm_optim_t *o = slm_optim_new(g, NULL, &err);
    ck_assert_msg(o != NULL, "optimizer: %s", err.message);
    size_t n = slm_graph_n_tensors(g);
    for (size_t i = 0; i < n; i++) {
        slm_tensor_t *t = slm_graph_tensor(g, i);
        for (int s = 0; s < 6 && slm_tensor_src(t, s); s++)
            ck_assert_msg(index_of(g, slm_tensor_src(t, s)) < i, "tensor %zu uses a later one", i);
    }
    slm_tensor_t *params[3] = {w1, gain, w2};
    for (int i = 0; i < 3; i++) {
        slm_tensor_t *gr = slm_tensor_grad(params[i]);
        ck_assert_ptr_nonnull(gr);
        for (int d = 0; d < 4; d++)
            ck_assert_int_eq(slm_tensor_ne(gr, d), slm_tensor_ne(params[i], d));
        ck_assert_int_eq(slm_tensor_type(gr), SLM_TYPE_F32);
        ck_assert(slm_tensor_is_contiguous(gr));
    }
    ck_assert_ptr_null(slm_tensor_grad(x));
    /* mul_mat's weight gradient is an outer product; the gain's a broadcast reduction. */
    ck_assert_int_eq(slm_tensor_op(slm_tensor_grad(w2)), SLM_OP_OUT_PROD);
    ck_assert_int_eq(slm_tensor_op(slm_tensor_grad(gain)), SLM_OP_REPEAT_BACK);
    int n_adamw = 0;
    for (size_t i = 0; i < n; i++) {
        slm_tensor_t *t = slm_graph_tensor(g, i);
        if (slm_tensor_op(t) != SLM_OP_ADAMW_STEP)
            continue;
        n_adamw++;
        ck_assert_ptr_eq(slm_tensor_src(t, 1), slm_tensor_grad(slm_tensor_src(t, 0)));
    }
    ck_assert_int_eq(n_adamw, 3);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_E_STATE);
    slm_optim_free(o);
    slm_graph_free(g);
}
END_TEST

static int grad_op(slm_tensor_t *(*build)(slm_graph_t *, slm_tensor_t *), int64_t n0, int64_t n1)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *p = slm_tensor_new_2d(g, SLM_TYPE_F32, n0, n1);
    slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
    slm_tensor_t *loss = slm_sum(g, build(g, p));
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_OK);
    int op = slm_tensor_op(slm_tensor_grad(p));
    slm_graph_free(g);
    return op;
}

static slm_tensor_t *b_rms(slm_graph_t *g, slm_tensor_t *p) { return slm_rms_norm(g, p, 1e-6f); }
static slm_tensor_t *b_silu(slm_graph_t *g, slm_tensor_t *p) { return slm_silu(g, p); }
static slm_tensor_t *b_gelu(slm_graph_t *g, slm_tensor_t *p) { return slm_gelu(g, p); }
static slm_tensor_t *b_smax(slm_graph_t *g, slm_tensor_t *p)
{
    return slm_soft_max(g, p, NULL, 0.5f, true, 0);
}
static slm_tensor_t *b_twice(slm_graph_t *g, slm_tensor_t *p) { return slm_mul(g, p, p); }

START_TEST(backward_ops_per_rule)
{
    ck_assert_int_eq(grad_op(b_rms, 4, 3), SLM_OP_RMS_NORM_BACK);
    ck_assert_int_eq(grad_op(b_silu, 4, 3), SLM_OP_SILU_BACK);
    ck_assert_int_eq(grad_op(b_gelu, 4, 3), SLM_OP_GELU_BACK);
    ck_assert_int_eq(grad_op(b_smax, 4, 3), SLM_OP_SOFT_MAX_BACK);
    /* A tensor feeding two operands accumulates its gradients with ADD. */
    ck_assert_int_eq(grad_op(b_twice, 4, 3), SLM_OP_ADD);
}
END_TEST

START_TEST(adamw_needs_backward)
{
    slm_graph_t *g = slm_graph_new(0);
    slm_tensor_t *p = slm_tensor_new_1d(g, SLM_TYPE_F32, 4);
    slm_tensor_set_flags(p, SLM_TENSOR_PARAM);
    slm_error_t err;
    slm_error_init(&err);
    ck_assert_ptr_null(slm_optim_new(g, NULL, &err));
    ck_assert_int_eq(err.code, SLM_E_STATE);
    slm_tensor_t *loss = slm_sum(g, slm_scale(g, p, 2.0f));
    ck_assert_int_eq(slm_graph_backward(g, slm_scale(g, p, 1.0f), &err), SLM_E_INVALID);
    ck_assert_int_eq(slm_graph_backward(g, loss, &err), SLM_OK);
    slm_optim_params_t bad;
    slm_optim_params_default(&bad);
    bad.beta1 = 1.5f;
    ck_assert_ptr_null(slm_optim_new(g, &bad, &err));
    ck_assert_int_eq(err.code, SLM_E_INVALID);
    slm_graph_free(g);
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, leaf_shapes_and_strides);
    tcase_add_test(tc, bad_leaf_is_recorded);
    tcase_add_test(tc, mul_mat_mismatch_stops_building);
    tcase_add_test(tc, mul_mat_shapes);
    tcase_add_test(tc, null_operand_is_an_error);
    tcase_add_test(tc, broadcast_rules);
    tcase_add_test(tc, op_specific_checks);
    tcase_add_test(tc, graph_capacity);
    suite_add_tcase(s, tc);
    tc = tcase_create("views");
    tcase_add_test(tc, permute_and_transpose_strides);
    tcase_add_test(tc, reshape_rules);
    tcase_add_test(tc, view_bounds);
    suite_add_tcase(s, tc);
    tc = tcase_create("autodiff");
    tcase_add_test(tc, topological_order_and_grads);
    tcase_add_test(tc, backward_ops_per_rule);
    tcase_add_test(tc, adamw_needs_backward);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(graph_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Kernels (runtime/kernels) against independent references: closed-form values computed by
 * hand or in double precision here, and central differences of each forward kernel for its
 * backward partner. */
#include "mtl_abi.h"
#include "mtl_kernels.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static double ref_act(double x, int act) {
    switch (act) {
    case MTL_ACT_RELU: return x > 0 ? x : 0;
    case MTL_ACT_TANH: return tanh(x);
    case MTL_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case MTL_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case MTL_ACT_SOFTPLUS: return x > 20 ? x : log1p(exp(x));
    default: return x;
    }
}

static void test_activation_values_and_derivatives(void **state) {
    (void)state;
    const double xs[] = {-3.5, -1.0, -0.2, 0.3, 1.7, 4.0, 25.0};
    for (int act = 0; act <= MTL_ACT_SOFTPLUS; act++)
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
            double x = xs[i];
            float y = mtk_act((float)x, act);
            assert_float_equal(y, ref_act(x, act), 1e-5 * fmax(1.0, fabs(ref_act(x, act))));
            double h = 1e-4, num = (ref_act(x + h, act) - ref_act(x - h, act)) / (2 * h);
            assert_float_equal(mtk_act_grad((float)x, y, act), num, 1e-4);
        }
    /* hand values: gelu(1) = 0.8413447, softplus(0) = ln 2, sigmoid(0) = 0.5 */
    assert_float_equal(mtk_act(1.0f, MTL_ACT_GELU), 0.8413447f, 1e-6);
    assert_float_equal(mtk_act(0.0f, MTL_ACT_SOFTPLUS), 0.6931472f, 1e-6);
    assert_float_equal(mtk_act(0.0f, MTL_ACT_SIGMOID), 0.5f, 1e-7);
    assert_true(mtk_act_needs_input(MTL_ACT_GELU) && !mtk_act_needs_input(MTL_ACT_RELU));
    /* NaN passes through relu as in PyTorch (a damaged input must not look like a zero) */
    assert_true(isnan(mtk_act(NAN, MTL_ACT_RELU)));
}

static void test_bias_act_pair(void **state) {
    (void)state;
    enum { B = 3, N = 4 };
    float y[B * N], z[B * N], b[N] = {0.1f, -0.2f, 0.3f, 0.0f}, x[B * N];
    for (int i = 0; i < B * N; i++) x[i] = y[i] = 0.37f * (float)(i - 5);
    mtk_bias_act_forward(y, z, b, B, N, MTL_ACT_GELU);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++) {
            assert_float_equal(z[i * N + j], x[i * N + j] + b[j], 1e-6);
            assert_float_equal(y[i * N + j], ref_act(x[i * N + j] + b[j], MTL_ACT_GELU), 1e-5);
        }
    float dy[B * N], dz[B * N], db[N];
    for (int i = 0; i < B * N; i++) dy[i] = 0.1f * (float)(i % 5) - 0.2f;
    mtk_bias_act_backward(dz, db, dy, y, z, B, N, MTL_ACT_GELU, 0);
    for (int j = 0; j < N; j++) {
        double s = 0;
        for (int i = 0; i < B; i++) {
            double h = 1e-4, zz = z[i * N + j];
            double num = (ref_act(zz + h, MTL_ACT_GELU) - ref_act(zz - h, MTL_ACT_GELU)) / (2 * h);
            assert_float_equal(dz[i * N + j], dy[i * N + j] * num, 1e-5);
            s += dz[i * N + j];
        }
        assert_float_equal(db[j], s, 1e-6);
    }
    /* accumulate adds to what is there */
    float db2[N] = {1, 1, 1, 1};
    mtk_bias_act_backward(dz, db2, dy, y, z, B, N, MTL_ACT_GELU, 1);
    for (int j = 0; j < N; j++) assert_float_equal(db2[j], 1.0f + db[j], 1e-6);
}

/* Central difference of a loss forward kernel, for checking its backward partner. */
typedef void (*LossFwd)(float *loss, float *pred, const float *t, int64_t B, int64_t N, float delta);
static void mse_f(float *l, float *p, const float *t, int64_t B, int64_t N, float d) { (void)d; mtk_mse_forward(l, p, t, B, N); }
static void mae_f(float *l, float *p, const float *t, int64_t B, int64_t N, float d) { (void)d; mtk_mae_forward(l, p, t, B, N); }
static void hub_f(float *l, float *p, const float *t, int64_t B, int64_t N, float d) { mtk_huber_forward(l, p, t, d, B, N); }
/* amnl has one value per sample: N is 1 and the `delta` slot carries the RUL cap */
static void amnl_f(float *l, float *p, const float *t, int64_t B, int64_t N, float cap) { (void)N; mtk_mse_amnl_forward(l, p, t, cap, B); }
static void ce_f(float *l, float *p, const float *t, int64_t B, int64_t N, float d) { (void)d; mtk_cross_entropy_forward(l, p, t, B, N); }

static void check_loss_grad(LossFwd f, const float *dpred, float *pred, const float *t, int64_t B, int64_t N, float delta,
                            float w) {
    for (int64_t i = 0; i < B * N; i++) {
        float s = pred[i], lp, lm, h = 1e-2f;
        pred[i] = s + h;
        f(&lp, pred, t, B, N, delta);
        pred[i] = s - h;
        f(&lm, pred, t, B, N, delta);
        pred[i] = s;
        assert_float_equal(dpred[i], w * (lp - lm) / (2 * h), 2e-4);
    }
}

static void test_regression_losses(void **state) {
    (void)state;
    float pred[] = {1.0f, 2.0f, -0.5f, 3.0f}, t[] = {0.0f, 4.0f, -0.25f, 3.0f}, loss, d[4];
    /* mse: (1 + 4 + 0.0625 + 0) / 4 */
    mtk_mse_forward(&loss, pred, t, 2, 2);
    assert_float_equal(loss, 5.0625f / 4, 1e-7);
    mtk_mse_backward(d, pred, t, 0.5f, 2, 2, 0);
    assert_float_equal(d[0], 0.5f * 2 * 1.0f / 4, 1e-7);
    check_loss_grad(mse_f, d, pred, t, 2, 2, 0, 0.5f);
    /* mae: (1 + 2 + 0.25 + 0) / 4; gradient at d = 0 is 0 like PyTorch */
    mtk_mae_forward(&loss, pred, t, 4, 1);
    assert_float_equal(loss, 3.25f / 4, 1e-7);
    mtk_mae_backward(d, pred, t, 1.0f, 4, 1, 0);
    assert_float_equal(d[1], -0.25f, 1e-7);
    assert_float_equal(d[3], 0.0f, 0);
    float p3[] = {0.4f, 1.1f, -2.0f, 2.5f};
    mtk_mae_backward(d, p3, t, 1.0f, 4, 1, 0);
    check_loss_grad(mae_f, d, p3, t, 4, 1, 0, 1.0f);
    /* huber delta 1: 0.5·1 (|d|=1 is the linear branch: 1·(1-0.5) = 0.5), 1·(2-0.5), 0.5·0.0625, 0 */
    mtk_huber_forward(&loss, pred, t, 1.0f, 4, 1);
    assert_float_equal(loss, (0.5f + 1.5f + 0.03125f + 0.0f) / 4, 1e-7);
    mtk_huber_backward(d, pred, t, 1.0f, 2.0f, 4, 1, 0);
    assert_float_equal(d[1], 2.0f * -1.0f / 4, 1e-7);
    float p2[] = {0.3f, -1.7f, 2.2f, 0.05f};
    mtk_huber_backward(d, p2, t, 0.7f, 1.0f, 4, 1, 0);
    check_loss_grad(hub_f, d, p2, t, 4, 1, 0.7f, 1.0f);
    /* accumulate adds */
    float acc[4] = {1, 1, 1, 1};
    mtk_mse_backward(acc, pred, t, 1.0f, 4, 1, 1);
    assert_float_equal(acc[0], 1.0f + 2 * 1.0f / 4, 1e-7);
}

/* AMNL's weighted MSE (`loss mse(amnl = 125)`), B = 4, R = 125.
 *   targets      0     62.5   125    200
 *   weights      2     1.5    1      1      (1 + clip(1 - y/125, 0, 1): 1 - 200/125 = -0.6 → 0)
 *   predictions  6     58.5   128    195
 *   errors p-y   6     -4     3      -5
 *   w e²         72    24     9      25     sum 130
 * loss = 130 / 4 = 32.5 (a plain mean over the batch: not 130 / Σw = 130 / 5.5)
 * dL/dp_i = 2 w_i e_i / B = 2·2·6/4 = 6, 2·1.5·(-4)/4 = -3, 2·1·3/4 = 1.5, 2·1·(-5)/4 = -2.5,
 * times the task weight (0.5 below: 3, -1.5, 0.75, -1.25). */
static void test_mse_amnl(void **state) {
    (void)state;
    float t[] = {0.0f, 62.5f, 125.0f, 200.0f}, pred[] = {6.0f, 58.5f, 128.0f, 195.0f}, loss, d[4];
    mtk_mse_amnl_forward(&loss, pred, t, 125.0f, 4);
    assert_float_equal(loss, 32.5f, 1e-6);
    mtk_mse_amnl_backward(d, pred, t, 125.0f, 1.0f, 4, 0);
    assert_float_equal(d[0], 6.0f, 1e-6);
    assert_float_equal(d[1], -3.0f, 1e-6);
    assert_float_equal(d[2], 1.5f, 1e-6);
    assert_float_equal(d[3], -2.5f, 1e-6);
    mtk_mse_amnl_backward(d, pred, t, 125.0f, 0.5f, 4, 0);
    assert_float_equal(d[0], 3.0f, 1e-6);
    assert_float_equal(d[1], -1.5f, 1e-6);
    assert_float_equal(d[2], 0.75f, 1e-6);
    assert_float_equal(d[3], -1.25f, 1e-6);
    /* accumulate adds to what is there */
    float acc[4] = {1, 1, 1, 1};
    mtk_mse_amnl_backward(acc, pred, t, 125.0f, 1.0f, 4, 1);
    assert_float_equal(acc[1], 1.0f - 3.0f, 1e-6);
    /* the weight is a constant of the target: central differences in the prediction agree
     * (small values, cap 2, so that float steps of h are exact enough; weights 2, 1.75, 1.25, 1) */
    float ts[] = {-0.5f, 0.5f, 1.5f, 3.0f}, ps[] = {0.3f, -0.2f, 2.0f, 2.5f};
    mtk_mse_amnl_backward(d, ps, ts, 2.0f, 0.5f, 4, 0);
    check_loss_grad(amnl_f, d, ps, ts, 4, 1, 2.0f, 0.5f);
    /* a target above the cap (weight 1) and a target at 0 (weight 2) bound the plain mse: with
     * every target >= R it IS plain mse, with every target <= 0 it is twice plain mse */
    float hi[] = {130.0f, 200.0f}, lo[] = {0.0f, -3.0f}, p2[] = {120.0f, 210.0f}, m;
    mtk_mse_amnl_forward(&loss, p2, hi, 125.0f, 2);
    mtk_mse_forward(&m, p2, hi, 2, 1);
    assert_float_equal(loss, m, 1e-6);
    mtk_mse_amnl_forward(&loss, p2, lo, 125.0f, 2);
    mtk_mse_forward(&m, p2, lo, 2, 1);
    assert_float_equal(loss, 2 * m, 1e-3);
}

static void test_cross_entropy(void **state) {
    (void)state;
    float z[] = {1.0f, 2.0f, 3.0f, 0.5f, 0.5f, 0.5f}, y[] = {2.0f, 0.0f}, loss, d[6];
    mtk_cross_entropy_forward(&loss, z, y, 2, 3);
    double l0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0, l1 = log(3.0);
    assert_float_equal(loss, (l0 + l1) / 2, 1e-6);
    mtk_cross_entropy_backward(d, z, y, 1.0f, 2, 3, 0);
    check_loss_grad(ce_f, d, z, y, 2, 3, 0, 1.0f);
    /* huge logits stay finite (log-sum-exp) */
    float big[] = {1e4f, -1e4f, 0.0f}, lab[] = {1.0f};
    mtk_cross_entropy_forward(&loss, big, lab, 1, 3);
    assert_true(isfinite(loss));
    assert_float_equal(loss, 2e4f, 1.0f);
    mtk_cross_entropy_backward(d, big, lab, 1.0f, 1, 3, 0);
    assert_float_equal(d[0], 1.0f, 1e-6);
    assert_float_equal(d[1], -1.0f, 1e-6);
}

/* The kernels work in chunks of rows (2048 floats of logits); these shapes cross chunk
 * boundaries (2000 rows of 3 and 7 classes), and 3000 classes take the row-by-row path.
 * Reference: log-sum-exp and softmax in double through libm. */
static void check_cross_entropy_shape(int64_t B, int64_t C) {
    float *z = malloc(sizeof(float) * B * C), *y = malloc(sizeof(float) * B), *d = malloc(sizeof(float) * B * C);
    assert_non_null(z);
    assert_non_null(y);
    assert_non_null(d);
    uint32_t r = 12345;
    for (int64_t i = 0; i < B * C; i++) {
        r = r * 1664525u + 1013904223u;
        z[i] = (float)((double)(r >> 8) / (double)(1u << 24) * 16.0 - 8.0);
    }
    for (int64_t i = 0; i < B; i++) y[i] = (float)((i * 7 + 3) % C);
    float loss;
    mtk_cross_entropy_forward(&loss, z, y, B, C);
    for (int64_t i = 0; i < B * C; i++) d[i] = 1.0f; /* accumulate onto ones */
    mtk_cross_entropy_backward(d, z, y, 0.5f, B, C, 1);
    double ref = 0.0;
    for (int64_t i = 0; i < B; i++) {
        const float *row = z + i * C;
        double m = row[0], e = 0.0;
        for (int64_t j = 1; j < C; j++) m = row[j] > m ? row[j] : m;
        for (int64_t j = 0; j < C; j++) e += exp((double)row[j] - m);
        ref += m + log(e) - row[(int64_t)y[i]];
        for (int64_t j = 0; j < C; j++) {
            double g = 0.5 / (double)B * (exp((double)row[j] - m) / e - (j == (int64_t)y[i] ? 1.0 : 0.0));
            assert_float_equal(d[i * C + j], 1.0 + g, 1e-6);
        }
    }
    assert_float_equal(loss, ref / (double)B, 1e-5 * fabs(ref / (double)B));
    free(z);
    free(y);
    free(d);
}

static void test_cross_entropy_chunks(void **state) {
    (void)state;
    check_cross_entropy_shape(2000, 3);
    check_cross_entropy_shape(2000, 7);
    check_cross_entropy_shape(5, 3000);
    check_cross_entropy_shape(1, 1);
}

static void test_dropout(void **state) {
    (void)state;
    enum { n = 20000 };
    static float x[n], y[n], dx[n], ones[n];
    for (int i = 0; i < n; i++) x[i] = ones[i] = 1.0f;
    mtk_dropout_forward(y, x, n, 0.25f, 7, 3, 1);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        assert_true(y[i] == 0.0f || fabsf(y[i] - 1.0f / 0.75f) < 1e-6f);
        kept += y[i] != 0.0f;
    }
    assert_in_range(kept, 14700, 15300); /* 75 % ± 4 sd */
    mtk_dropout_backward(dx, ones, n, 0.25f, 7, 3, 1, 0);
    for (int i = 0; i < n; i++) assert_float_equal(dx[i], y[i], 0); /* same mask */
    mtk_dropout_forward(dx, x, n, 0.25f, 8, 3, 1); /* another seed, another mask */
    assert_true(memcmp(dx, y, sizeof y) != 0);
    mtk_dropout_forward(y, x, n, 0.25f, 7, 3, 0); /* eval: identity */
    for (int i = 0; i < n; i++) assert_float_equal(y[i], 1.0f, 0);
}

static void test_standalone_act_and_bias_backward(void **state) {
    (void)state;
    float x[] = {-1.0f, 0.5f, 2.0f}, y[3], dy[] = {1.0f, 2.0f, 3.0f}, dx[3] = {10, 10, 10};
    mtk_act_forward(y, x, 3, MTL_ACT_TANH);
    mtk_act_backward(dx, dy, x, y, 3, MTL_ACT_TANH, 1);
    for (int i = 0; i < 3; i++) assert_float_equal(dx[i], 10 + dy[i] * (1 - tanh(x[i]) * tanh(x[i])), 1e-5);
    float g[] = {1, 2, 3, 4, 5, 6}, db[3];
    mtk_bias_backward(db, g, 2, 3, 0);
    assert_float_equal(db[0], 5, 0);
    assert_float_equal(db[2], 9, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_values_and_derivatives),
        cmocka_unit_test(test_bias_act_pair),
        cmocka_unit_test(test_regression_losses),
        cmocka_unit_test(test_mse_amnl),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_cross_entropy_chunks),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_standalone_act_and_bias_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

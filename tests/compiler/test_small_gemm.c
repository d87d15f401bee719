/* The small-matrix kernels (runtime/kernels/small_gemm.c) against products computed here in
 * double: every form, over shapes that hit each path (fewer than 8 outputs, whole and partial
 * vectors, one to four vectors, row counts that are and are not multiples of four, zero rows),
 * with and without bias, pre-activation save, activation and accumulation. Also the limits in
 * small_gemm.h that decide which products the code generator sends here. */
#include "mtl_abi.h"
#include "mtl_kernels.h"
#include "small_gemm.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float urand(void) { /* in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static float *rand_array(int64_t n) {
    float *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    assert_non_null(a);
    for (int64_t i = 0; i < n; i++) a[i] = urand();
    return a;
}

static double ref_act(double x, int act) {
    switch (act) {
    case MTL_ACT_RELU: return x > 0 ? x : 0;
    case MTL_ACT_TANH: return tanh(x);
    case MTL_ACT_SIGMOID: return 1 / (1 + exp(-x));
    default: return x;
    }
}

/* |got − want| within 1e-5 of the sum of the terms' magnitudes (float rounding of a sum of K
 * products), plus a few ulps of the activation */
static void assert_close(double got, double want, double scale, const char *what, int64_t i) {
    double tol = 1e-5 * scale + 1e-6 * fabs(want) + 1e-7;
    if (fabs(got - want) > tol)
        fail_msg("%s[%lld] = %.9g, expected %.9g (tolerance %.3g)", what, (long long)i, got, want, tol);
}

static const int64_t shapes[][3] = { /* M, N, K */
    {0, 5, 7},   {1, 1, 1},   {5, 3, 17},  {256, 1, 32}, {256, 3, 32}, {7, 7, 100}, {9, 8, 16},
    {13, 32, 17}, {6, 33, 5}, {4, 64, 64}, {11, 17, 64}, {3, 16, 1},  {10, 48, 20}, {2, 64, 128},
};

static void test_dense_forward(void **state) {
    (void)state;
    const int acts[] = {MTL_ACT_IDENTITY, MTL_ACT_RELU, MTL_ACT_TANH, MTL_ACT_SIGMOID};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        assert_true(mtk_small_gemm_fits(N, K, MTK_SG_NT));
        for (int variant = 0; variant < 8; variant++) {
            int act = acts[variant % 4], with_bias = variant < 4, with_z = variant % 2;
            float *x = rand_array(M * K), *w = rand_array(N * K), *b = rand_array(N);
            float *y = rand_array(M * N), *z = rand_array(M * N);
            mtk_small_dense_forward(y, with_z ? z : NULL, x, w, with_bias ? b : NULL, M, N, K, act);
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double sum = with_bias ? b[n] : 0, scale = with_bias ? fabs(b[n]) : 0;
                    for (int64_t k = 0; k < K; k++) {
                        sum += (double)x[m * K + k] * w[n * K + k];
                        scale += fabs((double)x[m * K + k] * w[n * K + k]);
                    }
                    assert_close(y[m * N + n], ref_act(sum, act), scale, "y", m * N + n);
                    if (with_z) assert_close(z[m * N + n], sum, scale, "z", m * N + n);
                }
            free(x), free(w), free(b), free(y), free(z);
        }
    }
}

/* got[r, c] (rows × cols, row-major) against (before[r, c] if given) + Σ_i a[r, i] · b[i, c] in
 * double, where a[r, i] = a[r·a_r + i·a_i] and b[i, c] = b[i·b_i + c·b_c]: one reference for every
 * product form by its strides. */
static void check_product(const float *got, const float *before, const float *a, int64_t a_r, int64_t a_i,
                          const float *b, int64_t b_i, int64_t b_c, int64_t rows, int64_t cols, int64_t inner,
                          const char *what) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double sum = before ? before[r * cols + c] : 0, scale = fabs(sum);
            for (int64_t i = 0; i < inner; i++) {
                double t = (double)a[r * a_r + i * a_i] * b[i * b_i + c * b_c];
                sum += t;
                scale += fabs(t);
            }
            assert_close(got[r * cols + c], sum, scale, what, r * cols + c);
        }
}

static void test_input_gradient(void **state) {
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        if (!mtk_small_gemm_fits(N, K, MTK_SG_NN)) continue; /* K > 64 */
        for (int accumulate = 0; accumulate <= 1; accumulate++) {
            float *dz = rand_array(M * N), *w = rand_array(N * K), *dx = rand_array(M * K);
            float *before = malloc((size_t)(M * K > 0 ? M * K : 1) * sizeof *before);
            memcpy(before, dx, (size_t)(M * K) * sizeof *dx);
            mtk_small_gemm_nn(dx, dz, w, M, N, K, accumulate);
            /* dx[m, k] = Σ_n dz[m, n] · w[n, k] */
            check_product(dx, accumulate ? before : NULL, dz, N, 1, w, K, 1, M, K, N, "dx");
            free(dz), free(w), free(dx), free(before);
        }
    }
}

static void test_weight_gradient(void **state) {
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        assert_true(mtk_small_gemm_fits(N, K, MTK_SG_TN));
        for (int accumulate = 0; accumulate <= 1; accumulate++) {
            float *dz = rand_array(M * N), *x = rand_array(M * K), *dw = rand_array(N * K);
            float *before = malloc((size_t)(N * K) * sizeof *before);
            memcpy(before, dw, (size_t)(N * K) * sizeof *dw);
            mtk_small_gemm_tn(dw, dz, x, M, N, K, accumulate);
            /* dW[n, k] = Σ_m dz[m, n] · x[m, k] */
            check_product(dw, accumulate ? before : NULL, dz, 1, N, x, K, 1, N, K, M, "dW");
            free(dz), free(x), free(dw), free(before);
        }
    }
}

/* The layers of the examples' funnels and heads that fit, and the ones that must go to BLAS. */
static void test_limits(void **state) {
    (void)state;
    assert_true(mtk_small_gemm_fits(32, 17, MTK_SG_NT));   /* dual_mlp trunk */
    assert_true(mtk_small_gemm_fits(3, 32, MTK_SG_NT));    /* a head */
    assert_true(mtk_small_gemm_fits(64, 128, MTK_SG_NT));  /* 128 × 64 floats packed: the limit */
    assert_false(mtk_small_gemm_fits(64, 129, MTK_SG_NT)); /* one more row would overflow it */
    assert_false(mtk_small_gemm_fits(65, 8, MTK_SG_NT));   /* more than four vectors of outputs */
    assert_false(mtk_small_gemm_fits(256, 512, MTK_SG_NT)); /* the DualTaskModel's funnel */
    assert_true(mtk_small_gemm_fits(7, 1024, MTK_SG_NT));  /* dot form: 7 rows of 1024 */
    assert_false(mtk_small_gemm_fits(7, 1200, MTK_SG_NT));
    assert_true(mtk_small_gemm_fits(32, 64, MTK_SG_NN));
    assert_false(mtk_small_gemm_fits(32, 65, MTK_SG_NN));
    assert_true(mtk_small_gemm_fits(100, 64, MTK_SG_TN));  /* vectorised over K */
    assert_true(mtk_small_gemm_fits(64, 100, MTK_SG_TN));  /* over N, stored transposed */
    assert_false(mtk_small_gemm_fits(100, 100, MTK_SG_TN));
    assert_false(mtk_small_gemm_fits(0, 5, MTK_SG_TN));
    assert_false(mtk_small_gemm_fits(5, 5, 7));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_forward),
        cmocka_unit_test(test_input_gradient),
        cmocka_unit_test(test_weight_gradient),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

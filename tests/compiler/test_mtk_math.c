/* The kernels' vectorisable exp, tanh and sigmoid (runtime/kernels/mtk_math.h) against glibc's
 * double-precision functions, over every float in the interesting ranges (about 2.1 billion
 * values would take minutes; every 37th bit pattern keeps the walk to a few seconds while still
 * visiting every exponent and all low-bit patterns mod 37), plus the limits and NaN. */
#include "mtk_math.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static float from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* error of y in units in the last place of the correctly rounded float of the exact value */
static double ulp_error(float y, double exact) {
    float r = (float)exact;
    if (r == 0.0f) return y == 0.0f ? 0.0 : 1e30;
    double ulp = (double)nextafterf(fabsf(r), INFINITY) - (double)fabsf(r);
    return fabs((double)y - exact) / ulp;
}

typedef float (*F)(float);
typedef double (*D)(double);
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static float f_exp(float x) { return mtk_expf(x); }
static float f_tanh(float x) { return mtk_tanhf(x); }
static float f_sigmoid(float x) { return mtk_sigmoidf(x); }

/* walks all floats of both signs with |x| ≤ limit; results below min_result (subnormal or
 * flushed) only need to be within an absolute 2^-126 */
static double max_ulp(F f, D ref, float limit, double min_result, float *worst_x) {
    double worst = 0.0;
    uint32_t top;
    float l = limit;
    memcpy(&top, &l, sizeof top);
    for (int sign = 0; sign < 2; sign++)
        for (uint32_t b = 0; b <= top; b += 37) {
            float x = from_bits(b | (sign ? 0x80000000u : 0u));
            double exact = ref((double)x);
            float y = f(x);
            double e;
            if (fabs(exact) < min_result) e = fabs((double)y - exact) <= 0x1p-126 ? 0.0 : 1e30;
            else e = ulp_error(y, exact);
            if (e > worst) worst = e, *worst_x = x;
        }
    return worst;
}

static void test_exp_accuracy(void **state) {
    (void)state;
    float wx = 0;
    double w = max_ulp(f_exp, exp, 88.72f, 0x1p-126, &wx);
    printf("exp: max %.2f ulp at %.9g\n", w, wx);
    assert_true(w <= 2.0);
}

static void test_tanh_accuracy(void **state) {
    (void)state;
    float wx = 0;
    double w = max_ulp(f_tanh, tanh, 20.0f, 0.0, &wx);
    printf("tanh: max %.2f ulp at %.9g\n", w, wx);
    assert_true(w <= 3.5);
}

static void test_sigmoid_accuracy(void **state) {
    (void)state;
    float wx = 0;
    double w = max_ulp(f_sigmoid, ref_sigmoid, 80.0f, 0x1p-126, &wx);
    printf("sigmoid: max %.2f ulp at %.9g\n", w, wx);
    assert_true(w <= 3.0);
}

static void test_limits_and_nan(void **state) {
    (void)state;
    assert_true(mtk_expf(-INFINITY) == 0.0f);
    assert_true(isinf(mtk_expf(INFINITY)) && mtk_expf(INFINITY) > 0);
    assert_true(isinf(mtk_expf(89.0f)));
    assert_true(mtk_expf(-104.0f) == 0.0f);
    assert_true(mtk_expf(0.0f) == 1.0f);
    assert_true(mtk_tanhf(INFINITY) == 1.0f && mtk_tanhf(-INFINITY) == -1.0f);
    assert_true(mtk_tanhf(0.0f) == 0.0f && !signbit(mtk_tanhf(0.0f)) && signbit(mtk_tanhf(-0.0f)));
    assert_true(mtk_tanhf(1e-30f) == 1e-30f); /* tanh x = x to float precision for tiny x */
    assert_true(mtk_sigmoidf(-INFINITY) == 0.0f && mtk_sigmoidf(INFINITY) == 1.0f);
    assert_true(mtk_sigmoidf(0.0f) == 0.5f);
    assert_true(isnan(mtk_expf(NAN)) && isnan(mtk_tanhf(NAN)) && isnan(mtk_sigmoidf(NAN)));
    /* hand values: e = 2.7182817, tanh(1) = 0.7615942, sigmoid(2) = 0.8807971 */
    assert_float_equal(mtk_expf(1.0f), 2.7182817f, 3e-7);
    assert_float_equal(mtk_tanhf(1.0f), 0.7615942f, 1e-7);
    assert_float_equal(mtk_sigmoidf(2.0f), 0.8807971f, 1e-7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_accuracy),
        cmocka_unit_test(test_tanh_accuracy),
        cmocka_unit_test(test_sigmoid_accuracy),
        cmocka_unit_test(test_limits_and_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Metric tests against values computed by hand (and cross-checked in Python/scikit-learn
 * terms): RMSE, MAE, the NASA score on both sides, accuracy, macro-F1 with a class that is
 * only predicted and one that never occurs, the confusion matrix, and argmax ties.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "mtl_metrics.h"

static void test_regression(void **state) {
    (void)state;
    const float pred[3] = {1, 2, 3}, truth[3] = {1, 4, 0};
    /* errors 0, -2, 3: sqrt(13 / 3) and 5 / 3 */
    assert_float_equal(mtl_rmse(pred, truth, 3), 2.0816659994661326, 1e-12);
    assert_float_equal(mtl_mae(pred, truth, 3), 5.0 / 3.0, 1e-12);
    assert_true(isnan(mtl_rmse(pred, truth, 0)));
    /* large values: float inputs, double accumulation */
    const float p2[2] = {100000.5f, 0}, t2[2] = {100000, 0};
    assert_float_equal(mtl_rmse(p2, t2, 2), sqrt(0.125), 1e-12);
}

static void test_nasa(void **state) {
    (void)state;
    /* d = 13 (late): e^1.3 - 1; d = -13 (early): e^1 - 1 */
    const float pred[2] = {13, 0}, truth[2] = {0, 13};
    assert_float_equal(mtl_nasa_score(pred, truth, 2), 4.387578496078289, 1e-12);
    assert_float_equal(mtl_nasa_score(pred, truth, 1), exp(1.3) - 1, 1e-12);
    assert_float_equal(mtl_nasa_score(pred + 1, truth + 1, 1), exp(1.0) - 1, 1e-12);
    /* d = 10 and d = -26: (e - 1) + (e^2 - 1); exact hits cost nothing */
    const float p3[3] = {20, 0, 5}, t3[3] = {10, 26, 5};
    assert_float_equal(mtl_nasa_score(p3, t3, 3), (exp(1.0) - 1) + (exp(2) - 1), 1e-12);
    assert_float_equal(mtl_nasa_score(p3, t3, 0), 0, 0);
}

static void test_classification(void **state) {
    (void)state;
    const int32_t pred[4] = {0, 1, 2, 1};
    const float truth[4] = {0, 2, 2, 1};
    assert_float_equal(mtl_accuracy(pred, truth, 4), 0.75, 1e-15);

    /* truth 0 0 1 1 2, pred 0 1 1 1 3: F1 class 0 = 2/3, class 1 = 4/5, class 2 = 0 (missed),
     * class 3 = 0 (only predicted), class 4 absent from both and left out:
     * (2/3 + 0.8 + 0 + 0) / 4, as sklearn f1_score(average='macro') */
    const float t5[5] = {0, 0, 1, 1, 2};
    const int32_t p5[5] = {0, 1, 1, 1, 3};
    int64_t conf[25];
    memset(conf, 0x55, sizeof conf); /* must be overwritten, not accumulated into */
    assert_float_equal(mtl_macro_f1(p5, t5, 5, 5, conf), 0.3666666666666667, 1e-12);
    const int64_t want[25] = {1, 1, 0, 0, 0, /* truth 0 */
                              0, 2, 0, 0, 0, /* truth 1 */
                              0, 0, 0, 1, 0, /* truth 2 -> predicted 3 */
                              0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(conf, want, sizeof want);
    assert_float_equal(mtl_macro_f1(p5, t5, 5, 4, NULL), 0.3666666666666667, 1e-12);
    assert_float_equal(mtl_accuracy(p5, t5, 5), 0.6, 1e-15);
    /* perfect prediction of a single class */
    const float t1[3] = {2, 2, 2};
    const int32_t p1[3] = {2, 2, 2};
    assert_float_equal(mtl_macro_f1(p1, t1, 3, 3, NULL), 1.0, 0);
}

static void test_argmax(void **state) {
    (void)state;
    const float logits[5 * 3] = {
        1, 3, 3,         /* tie between 1 and 2: lowest index */
        2, 2, 2,         /* all equal: 0 */
        -1, -5, -1,      /* tie at 0 and 2 */
        0, NAN, 5,       /* NaN wins, as torch.argmax */
        -3, -2, 1e30f,   /* plain maximum */
    };
    int32_t out[5];
    mtl_argmax_rows(out, logits, 5, 3);
    const int32_t want[5] = {1, 0, 0, 1, 2};
    assert_memory_equal(out, want, sizeof want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regression),
        cmocka_unit_test(test_nasa),
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* AdamW against hand-derived values: constant gradients make m_hat = g and v_hat = g^2 exactly at
 * every step (so each step moves by lr * sign(g), only true with correct bias correction), with
 * decoupled decay p *= 1 - lr*wd first; a varying-gradient group checked at t = 1..5 (t = 1, 2 by
 * hand, 3..5 from a double-precision loop written out separately); a frozen group must not move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "mtl_runtime.h"

static MtlGroupInfo group(const char *name, int64_t off, int64_t n, float lr, float wd, bool frozen) {
    MtlGroupInfo g = {(char *)name, off, n, lr, wd, 0.9f, 0.999f, 1e-8f, frozen};
    return g;
}

static void test_groups_and_bias_correction(void **state) {
    (void)state;
    /* A: params 0-1, lr 0.1, wd 0.5; B: param 2, lr 0.01, wd 0; C: params 3-4, frozen */
    MtlGroupInfo gs[3] = {group("a", 0, 2, 0.1f, 0.5f, false), group("b", 2, 1, 0.01f, 0.0f, false),
                          group("c", 3, 2, 0.1f, 0.5f, true)};
    MtlAdamW opt;
    assert_int_equal(mtl_adamw_init(&opt, gs, 3, 5, NULL, 0), 0);
    float p[5] = {1.0f, -1.0f, 2.0f, 3.0f, 4.0f};
    const float gb[5] = {1.0f, -1.0f, 2.0f, 0.5f, -3.0f};
    /* p_t = 0.95 p_{t-1} - 0.1 sign(g): 0.85, 0.7075, 0.572125, 0.44351875, 0.3213428125 */
    const double a[5] = {0.85, 0.7075, 0.572125, 0.44351875, 0.3213428125};
    /* t=1: m_hat = 1, v_hat = 1 -> 2 - 0.01; t=2: m = -0.01, m_hat = -0.01/0.19, v_hat = 1 */
    const double b[5] = {1.99, 1.99 + 0.01 / 19.0, 1.9855438944799402, 1.9803820829877645,
                         1.98178368907168};
    for (int t = 0; t < 5; t++) {
        float g[5] = {0.5f, -0.25f, gb[t], 1.0f, 1.0f};
        mtl_adamw_step(&opt, p, g);
        assert_float_equal(p[0], a[t], 2e-6);
        assert_float_equal(p[1], -a[t], 2e-6);
        assert_float_equal(p[2], b[t], 2e-6);
        assert_true(p[3] == 3.0f && p[4] == 4.0f); /* frozen: no decay, no update */
        assert_true(opt.m[3] == 0.0f && opt.v[4] == 0.0f);
        assert_int_equal(opt.step[0], t + 1);
        assert_int_equal(opt.step[1], t + 1);
        assert_int_equal(opt.step[2], 0);
    }
    mtl_adamw_free(&opt);
}

static void test_lr_mult_and_override(void **state) {
    (void)state;
    MtlGroupInfo gs[1] = {group("a", 0, 1, 0.1f, 0.0f, false)};
    MtlAdamW opt;
    assert_int_equal(mtl_adamw_init(&opt, gs, 1, 1, NULL, 0), 0);
    float p[1] = {0.0f}, g[1] = {-3.0f};
    opt.lr_mult = 0.5f;
    mtl_adamw_step(&opt, p, g);
    assert_float_equal(p[0], 0.05, 1e-6);
    opt.lr_mult = 1.0f;
    opt.groups[0].lr = 0.2f; /* a per-run override must not touch the caller's groups */
    mtl_adamw_step(&opt, p, g);
    assert_float_equal(p[0], 0.25, 1e-6);
    assert_float_equal(gs[0].lr, 0.1, 0);
    mtl_adamw_free(&opt);
}

static void test_non_trainable_tensor_skipped(void **state) {
    (void)state;
    /* One group holding a trainable tensor and a buffer (e.g. running statistics). */
    MtlGroupInfo gs[1] = {group("g", 0, 3, 0.1f, 0.5f, false)};
    MtlTensorInfo ts[2] = {
        {.name = "w", .ndim = 1, .shape = {2}, .offset = 0, .count = 2, .group = 0, .trainable = true},
        {.name = "running", .ndim = 1, .shape = {1}, .offset = 2, .count = 1, .group = 0,
         .trainable = false},
    };
    MtlAdamW opt;
    assert_int_equal(mtl_adamw_init(&opt, gs, 1, 3, ts, 2), 0);
    assert_int_equal(opt.n_ranges, 1);
    float p[3] = {1.0f, 1.0f, 7.0f}, g[3] = {1.0f, 1.0f, 1.0f};
    mtl_adamw_step(&opt, p, g);
    assert_float_equal(p[0], 0.85, 1e-6);
    assert_true(p[2] == 7.0f);
    mtl_adamw_free(&opt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_and_bias_correction),
        cmocka_unit_test(test_lr_mult_and_override),
        cmocka_unit_test(test_non_trainable_tensor_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

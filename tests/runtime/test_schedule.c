/* The training protocol's pieces (runtime/src/schedule.c) on small cases whose results are
 * worked out by hand in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "mtl_schedule.h"

/* cmocka 1.1's assert_float_equal accepts NaN: this one does not */
#define assert_near(a, b, tol)                                                              \
    do {                                                                                    \
        double a_ = (a), b_ = (b);                                                          \
        if (!(fabs(a_ - b_) <= (tol))) fail_msg("%s = %.9g, expected %.9g", #a, a_, b_);   \
    } while (0)

/* BOOK.md: multiplier 0.1 + 0.9 e / 10 over the first 10 epochs (e = 0 .. 9), then 1. */
static void test_warmup(void **state) {
    (void)state;
    const double want[12] = {0.1, 0.19, 0.28, 0.37, 0.46, 0.55, 0.64, 0.73, 0.82, 0.91, 1.0, 1.0};
    for (int e = 0; e < 12; e++) assert_near(mtl_warmup_multiplier(e, 10, 0.1f), want[e], 1e-7);
    /* off */
    assert_near(mtl_warmup_multiplier(0, 0, 0.1f), 1.0, 0);
    /* 4 epochs from 0.5: 0.5, 0.625, 0.75, 0.875, 1 */
    assert_near(mtl_warmup_multiplier(1, 4, 0.5f), 0.625, 1e-12);
    assert_near(mtl_warmup_multiplier(3, 4, 0.5f), 0.875, 1e-12);
    assert_near(mtl_warmup_multiplier(4, 4, 0.5f), 1.0, 0);
}

/* patience 2, factor 0.5, floor 0.3: scores 10, 9, 9, 9, 9 (no improvement from epoch 3 on:
 * 9 is not < 9 * (1 - 1e-4)), so after the third bad epoch (bad > patience) the lrs halve:
 * 1 -> 0.5 and 0.4 -> max(0.2, 0.3) = 0.3; the count restarts. Then 8.9995 is not an
 * improvement over 9 by the relative threshold 1e-4 (needs < 8.9991), 8.99 is. */
static void test_plateau(void **state) {
    (void)state;
    MtlPlateau p;
    mtl_plateau_init(&p);
    float lr[2] = {1.0f, 0.4f};
    assert_false(mtl_plateau_step(&p, 10, 0.5f, 2, 0.3f, lr, 2)); /* best 10 */
    assert_false(mtl_plateau_step(&p, 9, 0.5f, 2, 0.3f, lr, 2));  /* best 9 */
    assert_false(mtl_plateau_step(&p, 9, 0.5f, 2, 0.3f, lr, 2));  /* bad 1 */
    assert_false(mtl_plateau_step(&p, 9, 0.5f, 2, 0.3f, lr, 2));  /* bad 2 */
    assert_true(mtl_plateau_step(&p, 9, 0.5f, 2, 0.3f, lr, 2));   /* bad 3 > 2: reduce */
    assert_near(lr[0], 0.5, 0);
    assert_near(lr[1], 0.3, 1e-7);
    assert_int_equal(p.bad_epochs, 0);
    assert_int_equal(p.reductions, 1);
    assert_false(mtl_plateau_step(&p, 8.9995, 0.5f, 2, 0.3f, lr, 2));
    assert_int_equal(p.bad_epochs, 1);
    assert_false(mtl_plateau_step(&p, 8.99, 0.5f, 2, 0.3f, lr, 2));
    assert_int_equal(p.bad_epochs, 0);
    assert_near(p.best, 8.99, 0);
    /* at the floor nothing changes any more: no reduction is reported */
    float low[1] = {0.3f};
    MtlPlateau q;
    mtl_plateau_init(&q);
    for (int i = 0; i < 2; i++) mtl_plateau_step(&q, 1, 0.5f, 0, 0.3f, low, 1);
    assert_near(low[0], 0.3, 1e-7);
    assert_int_equal(q.reductions, 0);
    /* a NaN score is a bad epoch, never a new best */
    MtlPlateau n;
    mtl_plateau_init(&n);
    float one[1] = {1};
    mtl_plateau_step(&n, NAN, 0.5f, 5, 0, one, 1);
    assert_true(isinf(n.best));
    assert_int_equal(n.bad_epochs, 1);
}

/* grads (3, 4): norm 5. max 1: scale 1 / (5 + 1e-6); max 10: unchanged; 0: measured only. */
static void test_clip(void **state) {
    (void)state;
    float g[2] = {3, 4};
    assert_near(mtl_clip_grad_norm(g, 2, 1.0f), 5.0, 1e-12);
    assert_near(g[0], 3.0 / (5.0 + 1e-6), 1e-7);
    assert_near(g[1], 4.0 / (5.0 + 1e-6), 1e-7);
    float h[2] = {3, 4};
    assert_near(mtl_clip_grad_norm(h, 2, 10.0f), 5.0, 1e-12);
    assert_true(h[0] == 3 && h[1] == 4);
    float k[2] = {3, 4};
    assert_near(mtl_clip_grad_norm(k, 2, 0), 5.0, 1e-12);
    assert_true(k[0] == 3 && k[1] == 4);
    /* a non-finite gradient: the norm says so and nothing is scaled */
    float bad[3] = {1, INFINITY, 2};
    assert_true(!isfinite(mtl_clip_grad_norm(bad, 3, 1.0f)));
    assert_true(bad[0] == 1 && bad[2] == 2);
}

/* decay 0.5, weights 4, then 8: avg 2, then 0.5 * 2 + 0.5 * 8 = 5; corrected 5 / (1 - 0.25)
 * = 20/3 = (0.5 * 4 + 1 * 8) / 1.5, the weighted mean with weights 0.5, 1. */
static void test_ema(void **state) {
    (void)state;
    MtlEma e;
    assert_int_equal(mtl_ema_init(&e, 0.5f, 1), 0);
    float w = 4, out;
    mtl_ema_weights(&e, &w, &out); /* no update yet: the weights themselves */
    assert_near(out, 4, 0);
    mtl_ema_update(&e, &w);
    mtl_ema_weights(&e, &w, &out);
    assert_near(out, 4, 1e-6); /* 2 / (1 - 0.5) */
    w = 8;
    mtl_ema_update(&e, &w);
    assert_near(e.avg[0], 5, 1e-6);
    mtl_ema_weights(&e, &w, &out);
    assert_near(out, 20.0 / 3.0, 1e-5);
    assert_int_equal(e.updates, 2);
    mtl_ema_free(&e);
    /* constant weights stay exactly put under the correction, even after many steps at 0.999 */
    MtlEma c;
    assert_int_equal(mtl_ema_init(&c, 0.999f, 1), 0);
    float one = 1.5f;
    for (int i = 0; i < 5000; i++) mtl_ema_update(&c, &one);
    mtl_ema_weights(&c, &one, &out);
    assert_near(out, 1.5, 1e-3);
    mtl_ema_free(&c);
}

/* scores 5, 4, 4.5, 3, 3.5, 3.2 with patience 2: best epoch 4 (score 3); epochs 5 and 6 bring
 * nothing, so the run stops after epoch 6. */
static void test_early_stop(void **state) {
    (void)state;
    MtlEarlyStop s;
    mtl_early_stop_init(&s);
    const double sc[6] = {5, 4, 4.5, 3, 3.5, 3.2};
    const bool best[6] = {true, true, false, true, false, false};
    for (int e = 1; e <= 6; e++) {
        assert_int_equal(mtl_early_stop_update(&s, e, sc[e - 1]), best[e - 1]);
        assert_int_equal(mtl_early_stop_should_stop(&s, 2), e == 6);
    }
    assert_int_equal(s.best_epoch, 4);
    assert_near(s.best, 3, 0);
    assert_false(mtl_early_stop_should_stop(&s, 0)); /* patience 0: never */
}

static void test_defaults(void **state) {
    (void)state;
    MtlProtocol p;
    mtl_protocol_defaults(&p);
    assert_int_equal(p.warmup_epochs, 10);
    assert_near(p.warmup_start, 0.1, 1e-7);
    assert_near(p.plateau_factor, 0.5, 0);
    assert_int_equal(p.plateau_patience, 30);
    assert_near(p.min_lr, 5e-6, 1e-12);
    assert_near(p.clip_norm, 1.0, 0);
    assert_near(p.ema_decay, 0.999, 1e-7);
    assert_false(p.select_on_test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warmup),     cmocka_unit_test(test_plateau),
        cmocka_unit_test(test_clip),       cmocka_unit_test(test_ema),
        cmocka_unit_test(test_early_stop), cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

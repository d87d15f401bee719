/* Task balancing (mtl_balance.h) against hand-computed values. Each expected number is derived in
 * the comment next to it (closed forms for the EMA: with constant raw weights λ the EMA after t
 * updates from e0 is λ + (e0 - λ) β^t; exact fractions for PCGrad and GradNorm), never by calling
 * the module a second way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mtl_balance.h"

/* cmocka 1.1's assert_float_equal accepts NaN for any expected value (|NaN - b| > eps is false),
 * so every comparison here also rejects NaN explicitly. */
#define assert_near(a, b, eps)                                                                    \
    do {                                                                                          \
        double near_a_ = (a);                                                                     \
        assert_false(isnan(near_a_));                                                             \
        assert_float_equal(near_a_, (b), (eps));                                                  \
    } while (0)

static MtlBalancer make(MtlBalanceMethod m, int k) {
    MtlBalancer b;
    char err[MTL_ERR_SIZE];
    assert_int_equal(mtl_balancer_init(&b, m, k, err, sizeof err), 0);
    return b;
}

/* ---- GABA ---------------------------------------------------------------------------------- */

static void test_gaba_warmup_ema_floor(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_GABA, 2);
    const double norms[2] = {500.0, 1.0}; /* the book's typical 500:1 RUL : health ratio */
    double w[2];
    /* raw: λ_rul = g_h / (g_r + g_h) = 1/501, λ_h = 500/501 */
    for (int t = 1; t <= 100; t++) {
        assert_int_equal(mtl_gaba_step(&b, norms, w), MTL_BALANCE_OK);
        assert_true(w[0] == 0.5 && w[1] == 0.5); /* warm-up: exactly 1/K */
    }
    assert_near(b.last_raw[0], 1.0 / 501.0, 1e-15);
    /* the EMA ran during warm-up: 1/501 + (0.5 - 1/501) 0.99^100 = 0.18428157514505128 */
    assert_near(b.ema[0], 0.18428157514505128, 1e-12);
    assert_near(b.ema[1], 1.0 - 0.18428157514505128, 1e-12);
    /* step 101: 1/501 + (0.5 - 1/501) 0.99^101 (0.99^101 = 0.36237) = 0.18245871947344106; above
     * the floor, so the weights are the EMA itself */
    assert_int_equal(mtl_gaba_step(&b, norms, w), MTL_BALANCE_OK);
    assert_near(w[0], 0.18245871947344106, 1e-12);
    assert_near(w[1], 0.8175412805265589, 1e-12);
    for (int t = 102; t <= 300; t++) mtl_gaba_step(&b, norms, w);
    assert_int_equal(b.step, 300);
    /* step 300: ema_rul = 1/501 + (0.5 - 1/501) 0.99^300 (0.99^300 = 0.049041)
     * = 0.026418569003564447 < 0.05: floored to 0.05, ema_h = 0.9735814309964356;
     * sum 1.0235814309964356, so w = 0.05 / sum = 0.04884809208713959 (slightly below the floor,
     * as documented) and 0.9735814309964356 / sum = 0.9511519079128605 */
    assert_near(b.ema[0], 0.026418569003564447, 1e-12); /* the state is not floored */
    assert_near(w[0], 0.04884809208713959, 1e-12);
    assert_near(w[1], 0.9511519079128605, 1e-12);
    assert_near(w[0] + w[1], 1.0, 1e-15);
}

static void test_gaba_no_ema_during_warmup(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_GRACE, 2); /* GRACE: the same weights as GABA */
    b.gaba_ema_in_warmup = false;
    const double norms[2] = {500.0, 1.0};
    double w[2];
    for (int t = 1; t <= 100; t++) mtl_gaba_step(&b, norms, w);
    assert_true(b.ema[0] == 0.5 && b.ema[1] == 0.5); /* untouched during warm-up */
    assert_true(w[0] == 0.5 && w[1] == 0.5);
    /* step 101: 0.99 * 0.5 + 0.01 / 501 = 0.495 + 0.00001996007984 = 0.49501996007984034 */
    mtl_gaba_step(&b, norms, w);
    assert_near(w[0], 0.49501996007984034, 1e-14);
    assert_near(w[1], 1.0 - 0.49501996007984034, 1e-14);
}

static void test_gaba_raw_from_gradients(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_GABA, 2);
    b.gaba_warmup_steps = 0;
    b.gaba_beta = 0.0; /* the EMA is then the raw weight: checks raw + floor alone */
    const float g1[2] = {375.0f, 500.0f}; /* norm 625 */
    const float g2[2] = {0.75f, 1.0f};    /* norm 1.25 */
    const float *grads[2] = {g1, g2};
    double w[2];
    assert_int_equal(mtl_gaba_step_grads(&b, 2, grads, w), MTL_BALANCE_OK);
    assert_near(b.last_norm[0], 625.0, 1e-12);
    assert_near(b.last_norm[1], 1.25, 1e-12);
    /* λ = (1.25, 625) / 626.25 = (0.0019960079840319, 0.998003992015968); floored:
     * (0.05, 0.998003992015968) / 1.048003992015968 = (0.04770974192934006, 0.9522902580706599) */
    assert_near(b.ema[0], 1.25 / 626.25, 1e-15);
    assert_near(w[0], 0.05 / (0.05 + 625.0 / 626.25), 1e-15);
    assert_near(w[0], 0.04770974192934006, 1e-12);
    assert_near(w[1], 0.9522902580706599, 1e-12);
}

static void test_gaba_three_tasks(void **state) {
    (void)state;
    /* norms (1, 2, 3): S = 6, raw = (6 - g)/(2*6) = (5/12, 4/12, 3/12); no floor.
     * step 101: 1/3 + (λ - 1/3)(1 - 0.99^101) with 0.99^101 = 0.3623720178604969:
     * (0.38646899851162525, 1/3, 0.2801976681550414) */
    MtlBalancer b = make(MTL_BALANCE_GABA, 3);
    const double n1[3] = {1.0, 2.0, 3.0};
    double w[3];
    for (int t = 1; t <= 100; t++) {
        mtl_gaba_step(&b, n1, w);
        assert_true(w[0] == 1.0 / 3 && w[1] == 1.0 / 3 && w[2] == 1.0 / 3);
    }
    mtl_gaba_step(&b, n1, w);
    assert_near(w[0], 0.38646899851162525, 1e-12);
    assert_near(w[1], 1.0 / 3.0, 1e-12);
    assert_near(w[2], 0.2801976681550414, 1e-12);

    /* norms (1000, 1, 1): S = 1002, raw = (2/2004, 1001/2004, 1001/2004). After 300 steps
     * (0.99^300 = 0.04904089407128572): ema_0 = 2/2004 + (1/3 - 2/2004) 0.04904 = 0.0172960256744,
     * ema_1 = ema_2 = (1 - ema_0)/2 = 0.4913519871628053; floor: sum = 0.05 + 2 * 0.49135 =
     * 1.0327039743256106, w = (0.04841658523939703, 0.4757917073803015, 0.4757917073803015) */
    MtlBalancer c = make(MTL_BALANCE_GABA, 3);
    const double n2[3] = {1000.0, 1.0, 1.0};
    for (int t = 1; t <= 300; t++) mtl_gaba_step(&c, n2, w);
    assert_near(c.ema[0], 0.017296025674389363, 1e-12);
    assert_near(w[0], 0.04841658523939703, 1e-12);
    assert_near(w[1], 0.4757917073803015, 1e-12);
    assert_near(w[2], 0.4757917073803015, 1e-12);
}

static void test_gaba_degenerate(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_GABA, 2);
    b.gaba_warmup_steps = 2;
    double w[2];
    const double zero[2] = {0.0, 0.0};
    /* in warm-up: still 1/K, the EMA untouched, the step counted */
    assert_int_equal(mtl_gaba_step(&b, zero, w), MTL_BALANCE_DEGENERATE);
    assert_true(w[0] == 0.5 && w[1] == 0.5 && b.ema[0] == 0.5 && b.step == 1);
    const double ok[2] = {3.0, 1.0};
    mtl_gaba_step(&b, ok, w);
    mtl_gaba_step(&b, ok, w);
    /* two updates toward λ = (1/4, 3/4): 0.25 + 0.25 * 0.99^2 = 0.495025 */
    assert_near(w[0], 0.495025, 1e-14);
    double before[2] = {w[0], w[1]}, ema0 = b.ema[0];
    const double bad[4][2] = {{0.0, 0.0}, {NAN, 1.0}, {INFINITY, 1.0}, {-1.0, 2.0}};
    for (int c = 0; c < 4; c++) {
        assert_int_equal(mtl_gaba_step(&b, bad[c], w), MTL_BALANCE_DEGENERATE);
        assert_true(w[0] == before[0] && w[1] == before[1]);
        assert_true(b.ema[0] == ema0);
        assert_false(isnan(w[0]) || isnan(w[1]));
    }
    assert_int_equal(b.step, 7);
    /* one task with zero gradient is not degenerate: λ = (S - 0)/S = 1 for it */
    b.gaba_beta = 0.0;
    const double one_zero[2] = {0.0, 5.0};
    assert_int_equal(mtl_gaba_step(&b, one_zero, w), MTL_BALANCE_OK);
    /* ema = (1, 0) -> floored (1, 0.05) / 1.05 */
    assert_near(w[0], 1.0 / 1.05, 1e-15);
    assert_near(w[1], 0.05 / 1.05, 1e-15);
    /* K = 1: weight 1 */
    MtlBalancer one = make(MTL_BALANCE_GABA, 1);
    const double n1[1] = {0.0};
    assert_int_equal(mtl_gaba_step(&one, n1, w), MTL_BALANCE_OK);
    assert_true(w[0] == 1.0);
}

/* ---- AMNL ---------------------------------------------------------------------------------- */

static void test_amnl(void **state) {
    (void)state;
    /* 1 + clip(1 - y/125, 0, 1): y=0 -> 2; 62.5 -> 1.5; 125 -> 1; 200 -> clip(-0.6) = 0 -> 1;
     * y = -10 -> clip(1.08) = 1 -> 2 */
    assert_near(mtl_amnl_weight(0.0, 125.0), 2.0, 0);
    assert_near(mtl_amnl_weight(62.5, 125.0), 1.5, 0);
    assert_near(mtl_amnl_weight(125.0, 125.0), 1.0, 0);
    assert_near(mtl_amnl_weight(200.0, 125.0), 1.0, 0);
    assert_near(mtl_amnl_weight(-10.0, 125.0), 2.0, 0);
    const float y[4] = {0.0f, 62.5f, 125.0f, 200.0f};
    const float p[4] = {10.0f, 64.5f, 100.0f, 190.0f}; /* errors 10, 2, -25, -10 */
    float d[4];
    /* (2*100 + 1.5*4 + 1*625 + 1*100) / 4 = 931 / 4 = 232.75 (not / sum w = 5.5) */
    assert_near(mtl_amnl_mse(p, y, 4, 125.0, d), 232.75, 1e-12);
    /* 2 w e / B: 2*2*10/4 = 10, 2*1.5*2/4 = 1.5, 2*1*(-25)/4 = -12.5, 2*1*(-10)/4 = -5 */
    assert_near(d[0], 10.0, 1e-6);
    assert_near(d[1], 1.5, 1e-6);
    assert_near(d[2], -12.5, 1e-6);
    assert_near(d[3], -5.0, 1e-6);
    assert_near(mtl_amnl_mse(p, y, 0, 125.0, NULL), 0.0, 0);
}

/* ---- uncertainty --------------------------------------------------------------------------- */

static void test_uncertainty(void **state) {
    (void)state;
    /* s = (0, ln 4, 1), L = (2, 8, 3): exp(-s) = (1, 0.25, 1/e = 0.36787944117144233);
     * total = 2 + 0 + 2 + ln 4 + 3/e + 1 = 5 + 1.3862943611198906 + 1.103638323514327
     *       = 7.489932684634218; d/ds = 1 - exp(-s) L = (-1, -1, 1 - 3/e = -0.103638323514327) */
    const double s[3] = {0.0, log(4.0), 1.0}, L[3] = {2.0, 8.0, 3.0};
    double w[3], ds[3];
    assert_near(mtl_uncertainty(3, s, L, w, ds), 7.489932684634218, 1e-12);
    assert_near(w[0], 1.0, 1e-15);
    assert_near(w[1], 0.25, 1e-15);
    assert_near(w[2], 0.36787944117144233, 1e-15);
    assert_near(ds[0], -1.0, 1e-15);
    assert_near(ds[1], -1.0, 1e-14);
    assert_near(ds[2], -0.103638323514327, 1e-14);
    /* initial s = 0: total = sum L, weights 1, d/ds = 1 - L */
    const double s0[2] = {0.0, 0.0}, L0[2] = {1000.0, 1.1};
    assert_near(mtl_uncertainty(2, s0, L0, NULL, ds), 1001.1, 1e-12);
    assert_near(ds[0], -999.0, 1e-12);
    assert_near(ds[1], -0.1, 1e-12);
}

/* ---- GradNorm ------------------------------------------------------------------------------ */

static void test_gradnorm_sgd(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_GRADNORM, 2);
    b.gradnorm_optimizer = MTL_GRADNORM_SGD;
    b.gradnorm_lr = 0.1;
    const double norms[2] = {4.0, 1.0};
    double w[2];
    /* step 1: L(0) = L = (100, 2), r = (1, 1); G = (4, 1), mean 2.5 = T; G - T = (1.5, -1.5),
     * L_grad = 3; grad = (+4, -1); w = (1 - 0.4, 1 + 0.1) = (0.6, 1.1), sum 1.7
     * -> 2 w / 1.7 = (12/17, 22/17). This step's losses use w(0) = (1, 1). */
    const double l1[2] = {100.0, 2.0};
    assert_int_equal(mtl_gradnorm_step(&b, l1, norms, w), MTL_BALANCE_OK);
    assert_true(w[0] == 1.0 && w[1] == 1.0);
    assert_near(b.last_gradnorm_loss, 3.0, 1e-15);
    assert_near(b.weight[0], 12.0 / 17.0, 1e-15);
    assert_near(b.weight[1], 22.0 / 17.0, 1e-15);
    /* step 2: L = (50, 1.5): L~ = (0.5, 0.75), mean 0.625, r = (0.8, 1.2);
     * G = (48/17, 22/17), mean 35/17; T = 35/17 (0.8^1.5, 1.2^1.5) = 35/17 (0.71554175,
     * 1.31453414) = (1.47317420, 2.70639381); G - T = (+1.3504, -1.4122); L_grad = 26/17 +
     * 35/17 (1.31453414 - 0.71554175) = 2.762631381319782; grad = (+4, -1);
     * w = (12/17 - 0.4, 22/17 + 0.1) = (5.2/17, 23.7/17), sum 28.9/17 -> (104/289, 474/289) */
    const double l2[2] = {50.0, 1.5};
    assert_int_equal(mtl_gradnorm_step(&b, l2, norms, w), MTL_BALANCE_OK);
    assert_near(w[0], 12.0 / 17.0, 1e-15);
    assert_near(b.last_gradnorm_loss, 2.762631381319782, 1e-12);
    assert_near(b.weight[0], 104.0 / 289.0, 1e-14);
    assert_near(b.weight[1], 474.0 / 289.0, 1e-14);
    assert_true(b.has_loss0 && b.loss0[0] == 100.0 && b.loss0[1] == 2.0);
}

static void test_gradnorm_adam_clamp_degenerate(void **state) {
    (void)state;
    /* Adam: the first steps move each weight by lr * sign(grad) (m_hat = g, v_hat = g^2 with bias
     * correction), up to eps: (1 - 0.01, 1 + 0.01) sums to 2, so renormalising changes nothing;
     * the second step (same signs: G = (3.96, 1.01) vs T = 2.485) moves again by 0.01. */
    MtlBalancer b = make(MTL_BALANCE_GRADNORM, 2);
    b.gradnorm_lr = 0.01;
    const double norms[2] = {4.0, 1.0}, l[2] = {100.0, 2.0};
    double w[2];
    mtl_gradnorm_step(&b, l, norms, w);
    assert_near(b.weight[0], 0.99, 1e-9);
    assert_near(b.weight[1], 1.01, 1e-9);
    mtl_gradnorm_step(&b, l, norms, w);
    assert_near(b.weight[0], 0.98, 1e-9);
    assert_near(b.weight[1], 1.02, 1e-9);
    assert_int_equal(b.adam_t, 2);

    /* clamp: SGD lr 1 gives (1 - 4, 1 + 1) = (-3, 2) -> (1e-4, 2), sum 2.0001
     * -> (2e-4 / 2.0001, 4 / 2.0001) = (9.99950002499875e-05, 1.9999000049997497) */
    MtlBalancer c = make(MTL_BALANCE_GRADNORM, 2);
    c.gradnorm_optimizer = MTL_GRADNORM_SGD;
    c.gradnorm_lr = 1.0;
    mtl_gradnorm_step(&c, l, norms, w);
    assert_near(c.weight[0], 9.99950002499875e-05, 1e-15);
    assert_near(c.weight[1], 1.9999000049997497, 1e-14);

    /* degenerate: a zero first loss cannot be L(0); NaN norms; weights stay (1, 1) */
    MtlBalancer d = make(MTL_BALANCE_GRADNORM, 2);
    d.gradnorm_optimizer = MTL_GRADNORM_SGD;
    d.gradnorm_lr = 0.1;
    const double lz[2] = {0.0, 2.0}, nn[2] = {NAN, 1.0}, lnan[2] = {NAN, 1.0};
    assert_int_equal(mtl_gradnorm_step(&d, lz, norms, w), MTL_BALANCE_DEGENERATE);
    assert_false(d.has_loss0);
    assert_int_equal(mtl_gradnorm_step(&d, l, nn, w), MTL_BALANCE_DEGENERATE);
    assert_int_equal(mtl_gradnorm_step(&d, lnan, norms, w), MTL_BALANCE_DEGENERATE);
    assert_true(d.weight[0] == 1.0 && d.weight[1] == 1.0 && !d.has_loss0);
    assert_int_equal(d.step, 3);
    /* then the first valid step behaves as step 1 of test_gradnorm_sgd */
    assert_int_equal(mtl_gradnorm_step(&d, l, norms, w), MTL_BALANCE_OK);
    assert_near(d.weight[0], 12.0 / 17.0, 1e-15);
    /* all current losses 0: mean L~ = 0, no ratio */
    const double l00[2] = {0.0, 0.0};
    assert_int_equal(mtl_gradnorm_step(&d, l00, norms, w), MTL_BALANCE_DEGENERATE);
    assert_near(d.weight[0], 12.0 / 17.0, 1e-15);
}

/* ---- DWA ----------------------------------------------------------------------------------- */

static void test_dwa(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_DWA, 2);
    double w[2];
    assert_int_equal(mtl_balancer_step(&b, NULL, NULL, w), MTL_BALANCE_OK);
    assert_true(w[0] == 1.0 && w[1] == 1.0); /* epoch 0 */
    const double e0[2] = {10.0, 1.0}, e1[2] = {8.0, 0.5}, e2[2] = {6.0, 0.5};
    assert_int_equal(mtl_dwa_end_epoch(&b, e0, w), MTL_BALANCE_OK);
    assert_true(w[0] == 1.0 && w[1] == 1.0); /* epoch 1: still 1 */
    /* epoch 2: r = (8/10, 0.5/1) = (0.8, 0.5), r/T = (0.4, 0.25);
     * w_0 = 2 e^0.4 / (e^0.4 + e^0.25) = 2 / (1 + e^-0.15) = 2 / 1.8607079764250578
     *     = 1.0748596906874992, w_1 = 2 - w_0 = 0.9251403093125008 */
    assert_int_equal(mtl_dwa_end_epoch(&b, e1, w), MTL_BALANCE_OK);
    assert_near(w[0], 1.0748596906874992, 1e-14);
    assert_near(w[1], 0.9251403093125008, 1e-14);
    double ws[2];
    mtl_balancer_step(&b, NULL, NULL, ws); /* per step: the epoch's weights */
    assert_true(ws[0] == w[0] && ws[1] == w[1]);
    /* epoch 3: r = (6/8, 0.5/0.5) = (0.75, 1), r/T = (0.375, 0.5):
     * w_0 = 2 / (1 + e^0.125) = 0.9375812532524875, w_1 = 1.0624187467475124 */
    assert_int_equal(mtl_dwa_end_epoch(&b, e2, w), MTL_BALANCE_OK);
    assert_near(w[0], 0.9375812532524875, 1e-14);
    assert_near(w[1], 1.0624187467475124, 1e-14);
    /* NaN epoch loss: nothing recorded, weights kept */
    const double bad[2] = {NAN, 1.0};
    assert_int_equal(mtl_dwa_end_epoch(&b, bad, w), MTL_BALANCE_DEGENERATE);
    assert_int_equal(b.epoch, 3);
    assert_near(w[0], 0.9375812532524875, 1e-14);

    /* K = 3: e0 = (1, 1, 1), e1 = (1, 2, 0.5): r/T = (0.5, 1, 0.25);
     * e^x = (1.6487212707001282, 2.718281828459045, 1.2840254166877414), sum 5.651028515847915;
     * w = 3 e^x / sum = (0.8752678911865491, 1.4430727897601088, 0.6816593190533417) */
    MtlBalancer c = make(MTL_BALANCE_DWA, 3);
    const double f0[3] = {1.0, 1.0, 1.0}, f1[3] = {1.0, 2.0, 0.5};
    double w3[3];
    mtl_dwa_end_epoch(&c, f0, w3);
    mtl_dwa_end_epoch(&c, f1, w3);
    assert_near(w3[0], 0.8752678911865491, 1e-14);
    assert_near(w3[1], 1.4430727897601088, 1e-14);
    assert_near(w3[2], 0.6816593190533417, 1e-14);
    /* a zero loss two epochs back: ratio undefined, weights kept */
    MtlBalancer d = make(MTL_BALANCE_DWA, 2);
    const double z[2] = {0.0, 1.0};
    mtl_dwa_end_epoch(&d, z, w);
    assert_int_equal(mtl_dwa_end_epoch(&d, e0, w), MTL_BALANCE_DEGENERATE);
    assert_true(w[0] == 1.0 && w[1] == 1.0);
}

/* ---- PCGrad -------------------------------------------------------------------------------- */

static void test_pcgrad_two_tasks(void **state) {
    (void)state;
    MtlRng rng;
    mtl_rng_seed(&rng, 1);
    /* g1 = (1, 0), g2 = (-1, 1): g1.g2 = -1 < 0.
     * g1' = g1 - (-1/2) g2 = (1 - 0.5, 0.5) = (0.5, 0.5); g2' = g2 - (-1/1) g1 = (0, 1);
     * sum (0.5, 1.5) */
    float g1[2] = {1.0f, 0.0f}, g2[2] = {-1.0f, 1.0f}, p1[2], p2[2], sum[2];
    const float *grads[2] = {g1, g2};
    float *proj[2] = {p1, p2};
    assert_int_equal(mtl_pcgrad(2, 2, grads, &rng, proj, sum), MTL_BALANCE_OK);
    assert_near(p1[0], 0.5, 1e-7);
    assert_near(p1[1], 0.5, 1e-7);
    assert_near(p2[0], 0.0, 1e-7);
    assert_near(p2[1], 1.0, 1e-7);
    assert_near(sum[0], 0.5, 1e-7);
    assert_near(sum[1], 1.5, 1e-7);
    /* in place (outputs over the inputs) gives the same */
    float *inplace[2] = {g1, g2};
    assert_int_equal(mtl_pcgrad(2, 2, grads, &rng, inplace, NULL), MTL_BALANCE_OK);
    assert_near(g1[0], 0.5, 1e-7);
    assert_near(g1[1], 0.5, 1e-7);
    assert_near(g2[0], 0.0, 1e-7);
    assert_near(g2[1], 1.0, 1e-7);

    /* no conflict: (1, 0).(1, 1) = 1 >= 0: unchanged, sum (2, 1) */
    const float h1[2] = {1.0f, 0.0f}, h2[2] = {1.0f, 1.0f};
    const float *hs[2] = {h1, h2};
    assert_int_equal(mtl_pcgrad(2, 2, hs, &rng, proj, sum), MTL_BALANCE_OK);
    assert_true(p1[0] == 1.0f && p1[1] == 0.0f && p2[0] == 1.0f && p2[1] == 1.0f);
    assert_true(sum[0] == 2.0f && sum[1] == 1.0f);

    /* a zero gradient is never projected onto (and nothing is projected onto it) */
    const float z1[2] = {0.0f, 0.0f};
    const float *zs[2] = {z1, g2};
    assert_int_equal(mtl_pcgrad(2, 2, zs, &rng, proj, sum), MTL_BALANCE_OK);
    assert_true(p1[0] == 0.0f && p2[0] == g2[0] && p2[1] == g2[1]);

    /* NaN: no projection, the originals come back, DEGENERATE */
    const float n1[2] = {NAN, 0.0f}, c2[2] = {-1.0f, 1.0f};
    const float *ns[2] = {n1, c2};
    assert_int_equal(mtl_pcgrad(2, 2, ns, &rng, proj, sum), MTL_BALANCE_DEGENERATE);
    assert_true(p2[0] == -1.0f && p2[1] == 1.0f);
    assert_true(isnan(sum[0]) && sum[1] == 1.0f);
}

/* g1 = (1, 0, 0), g2 = (-1, 2, 0), g3 = (-1, -1, 1): g1.g2 = g1.g3 = g2.g3 = -1;
 * |g1|^2 = 1, |g2|^2 = 5, |g3|^2 = 3. Every task's result depends on the order:
 *  task 0, order (1, 2): + 1/5 g2 -> (4/5, 2/5, 0); .g3 = -6/5 -> + 2/5 g3 -> (2/5, 0, 2/5)
 *  task 0, order (2, 1): + 1/3 g3 -> (2/3, -1/3, 1/3); .g2 = -4/3 -> + 4/15 g2 -> (2/5, 1/5, 1/3)
 *  task 1, order (0, 2): + g1 -> (0, 2, 0); .g3 = -2 -> + 2/3 g3 -> (-2/3, 4/3, 2/3)
 *  task 1, order (2, 0): + 1/3 g3 -> (-4/3, 5/3, 1/3); .g1 = -4/3 -> + 4/3 g1 -> (0, 5/3, 1/3)
 *  task 2, order (0, 1): + g1 -> (0, -1, 1); .g2 = -2 -> + 2/5 g2 -> (-2/5, -1/5, 1)
 *  task 2, order (1, 0): + 1/5 g2 -> (-6/5, -3/5, 1); .g1 = -6/5 -> + 6/5 g1 -> (0, -3/5, 1)
 * (the projections use the ORIGINAL g_j; with the projected ones task 1's second step would
 * differ). Index [task][0: ascending order, 1: descending]. */
static const double pc3[3][2][3] = {
    {{2.0 / 5, 0.0, 2.0 / 5}, {2.0 / 5, 1.0 / 5, 1.0 / 3}},
    {{-2.0 / 3, 4.0 / 3, 2.0 / 3}, {0.0, 5.0 / 3, 1.0 / 3}},
    {{-2.0 / 5, -1.0 / 5, 1.0}, {0.0, -3.0 / 5, 1.0}},
};
static const float pg1[3] = {1, 0, 0}, pg2[3] = {-1, 2, 0}, pg3[3] = {-1, -1, 1};

static void test_pcgrad_three_tasks(void **state) {
    (void)state;
    const float *grads[3] = {pg1, pg2, pg3};
    float p[3][3], sum[3];
    float *proj[3] = {p[0], p[1], p[2]};
    for (int dir = 0; dir < 2; dir++) {
        /* all ascending: (1,2),(0,2),(0,1); all descending: (2,1),(2,0),(1,0) */
        const int order[2][6] = {{1, 2, 0, 2, 0, 1}, {2, 1, 2, 0, 1, 0}};
        assert_int_equal(mtl_pcgrad_ordered(3, 3, grads, order[dir], proj, sum), MTL_BALANCE_OK);
        for (int i = 0; i < 3; i++)
            for (int e = 0; e < 3; e++) assert_near(p[i][e], pc3[i][dir][e], 1e-6);
        /* ascending sum: (2/5 - 2/3 - 2/5, 4/3 - 1/5, 2/5 + 2/3 + 1) = (-2/3, 17/15, 31/15);
         * descending: (2/5, 1/5 + 5/3 - 3/5, 1/3 + 1/3 + 1) = (2/5, 19/15, 5/3) */
        const double want[2][3] = {{-2.0 / 3, 17.0 / 15, 31.0 / 15}, {2.0 / 5, 19.0 / 15, 5.0 / 3}};
        for (int e = 0; e < 3; e++) assert_near(sum[e], want[dir][e], 1e-6);
    }
    /* a row that is not a permutation of the other tasks */
    const int bad[6] = {1, 1, 0, 2, 0, 1};
    assert_int_equal(mtl_pcgrad_ordered(3, 3, grads, bad, proj, sum), MTL_BALANCE_EINVAL);

    /* seeded: the order mtl_pcgrad uses is the one mtl_pcgrad_draw_order draws from the same
     * state; the expected values come from the table above for that order. Over 64 seeds every
     * task must see both orders. */
    int seen[3][2] = {{0}};
    for (uint64_t seed = 0; seed < 64; seed++) {
        MtlRng r1, r2;
        mtl_rng_seed(&r1, seed);
        r2 = r1;
        int order[6];
        mtl_pcgrad_draw_order(3, &r2, order);
        assert_int_equal(mtl_pcgrad(3, 3, grads, &r1, proj, sum), MTL_BALANCE_OK);
        assert_memory_equal(&r1, &r2, sizeof r1); /* same number of draws */
        double want_sum[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            int first_other = i == 0 ? 1 : 0;
            int dir = order[i * 2] == first_other ? 0 : 1;
            seen[i][dir]++;
            for (int e = 0; e < 3; e++) {
                assert_near(p[i][e], pc3[i][dir][e], 1e-6);
                want_sum[e] += pc3[i][dir][e];
            }
        }
        for (int e = 0; e < 3; e++) assert_near(sum[e], want_sum[e], 1e-6);
    }
    for (int i = 0; i < 3; i++) assert_true(seen[i][0] > 0 && seen[i][1] > 0);
}

/* ---- diagnostics --------------------------------------------------------------------------- */

static void test_diagnostics(void **state) {
    (void)state;
    const float a[2] = {375.0f, 500.0f}, b[2] = {0.75f, 1.0f}, c[2] = {1.0f, 0.0f},
                d[2] = {1.0f, 1.0f}, e[2] = {-2.0f, 0.0f}, z[2] = {0.0f, 0.0f};
    assert_near(mtl_vec_norm(a, 2), 625.0, 0);
    assert_near(mtl_grad_norm_ratio(a, b, 2), 500.0, 1e-12); /* 625 / 1.25 */
    assert_true(isinf(mtl_grad_norm_ratio(a, z, 2)));
    assert_near(mtl_grad_cosine(c, d, 2), 0.70710678118654752, 1e-15); /* 1/sqrt 2 */
    assert_near(mtl_grad_cosine(c, e, 2), -1.0, 0);
    assert_near(mtl_grad_cosine(c, z, 2), 0.0, 0);
    const float *gs[3] = {a, b, e};
    double norms[3];
    mtl_task_norms(3, 2, gs, norms);
    assert_true(norms[0] == 625.0 && norms[1] == 1.25 && norms[2] == 2.0);
    /* odd length (the tail after the unrolled loop): (1,2,3,4,5).(1,1,1,1,1) = 15 */
    const float v5[5] = {1, 2, 3, 4, 5}, o5[5] = {1, 1, 1, 1, 1};
    assert_near(mtl_vec_dot(v5, o5, 5), 15.0, 0);

    /* 2^22 copies of 0.1f: 0.1f = 13421773 / 2^27, so ||x||^2 = 2^22 * 13421773^2 / 2^54 =
     * 180143990463529 / 2^32 = 41943.04125000001. A float accumulator would be off by percents
     * (its ulp near 41943 is 0.004 against addends of 0.01). */
    int64_t n = (int64_t)1 << 22;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++) {
        x[i] = 0.1f;
        y[i] = (i % 2) ? 0.1f : -0.1f; /* orthogonal to x */
    }
    assert_near(mtl_vec_dot(x, x, n), 41943.04125000001, 41943.0 * 1e-12);
    assert_near(mtl_grad_cosine(x, x, n), 1.0, 1e-12);
    assert_near(mtl_grad_cosine(x, y, n), 0.0, 1e-12);
    free(x);
    free(y);
}

/* ---- generic step, names, state ------------------------------------------------------------ */

static void test_generic_step_and_names(void **state) {
    (void)state;
    MtlBalancer b = make(MTL_BALANCE_FIXED, 2);
    b.fixed[0] = 0.5;
    b.fixed[1] = 0.5; /* the book's baseline */
    double w[2];
    assert_int_equal(mtl_balancer_step(&b, NULL, NULL, w), MTL_BALANCE_OK);
    assert_true(w[0] == 0.5 && w[1] == 0.5);
    MtlBalancer p = make(MTL_BALANCE_PCGRAD, 2);
    mtl_balancer_step(&p, NULL, NULL, w);
    assert_true(w[0] == 1.0 && w[1] == 1.0);
    MtlBalancer u = make(MTL_BALANCE_UNCERTAINTY, 2);
    assert_int_equal(mtl_balancer_step(&u, NULL, NULL, w), MTL_BALANCE_EINVAL);
    MtlBalancer g = make(MTL_BALANCE_GABA, 2);
    assert_int_equal(mtl_balancer_step(&g, NULL, NULL, w), MTL_BALANCE_EINVAL);
    const double norms[2] = {3.0, 1.0};
    assert_int_equal(mtl_balancer_step(&g, NULL, norms, w), MTL_BALANCE_OK);
    assert_true(w[0] == 0.5);
    assert_int_equal(mtl_gradnorm_step(&g, norms, norms, w), MTL_BALANCE_EINVAL);
    assert_true(mtl_balance_needs_norms(MTL_BALANCE_GRACE));
    assert_false(mtl_balance_needs_norms(MTL_BALANCE_DWA));
    assert_true(mtl_balance_needs_task_grads(MTL_BALANCE_PCGRAD));

    const char *names[7] = {"fixed", "gaba", "grace", "uncertainty", "gradnorm", "dwa", "pcgrad"};
    for (int i = 0; i < 7; i++) {
        MtlBalanceMethod m;
        assert_int_equal(mtl_balance_method_parse(names[i], &m), 0);
        assert_int_equal((int)m, i);
        assert_string_equal(mtl_balance_method_name(m), names[i]);
    }
    MtlBalanceMethod m;
    assert_int_equal(mtl_balance_method_parse("gradvac", &m), -1);
    char err[MTL_ERR_SIZE];
    assert_int_equal(mtl_balancer_init(&b, MTL_BALANCE_GABA, 0, err, sizeof err), -1);
    assert_int_equal(mtl_balancer_init(&b, MTL_BALANCE_GABA, MTL_BALANCE_MAX_TASKS + 1, err,
                                       sizeof err), -1);
}

static void test_state_round_trip(void **state) {
    (void)state;
    char err[MTL_ERR_SIZE];
    const double norms[3] = {40.0, 2.0, 1.0};
    /* GradNorm with Adam: every state field that matters (weights, L(0), moments, t) */
    MtlBalancer a = make(MTL_BALANCE_GRADNORM, 3);
    double wa[3], wb[3];
    for (int t = 0; t < 5; t++) {
        const double l[3] = {100.0 / (t + 1), 2.0 - 0.1 * t, 1.0 + 0.05 * t};
        mtl_gradnorm_step(&a, l, norms, wa);
    }
    assert_int_equal(mtl_balancer_state_size(3), 28); /* 7 + 7 * 3 */
    double st[28];
    mtl_balancer_state_get(&a, st);
    assert_true(st[0] == 1.0 && st[1] == MTL_BALANCE_GRADNORM && st[2] == 3.0 && st[3] == 5.0);
    assert_true(st[5] == 1.0 && st[6] == 5.0);
    assert_true(st[7] == a.weight[0] && st[7 + 3 * 2] == 100.0); /* weight[0], loss0[0] */
    MtlBalancer b = make(MTL_BALANCE_GRADNORM, 3);
    assert_int_equal(mtl_balancer_state_set(&b, st, 28, err, sizeof err), 0);
    for (int t = 5; t < 12; t++) {
        const double l[3] = {100.0 / (t + 1), 2.0 - 0.1 * t, 1.0 + 0.05 * t};
        mtl_gradnorm_step(&a, l, norms, wa);
        mtl_gradnorm_step(&b, l, norms, wb);
        assert_memory_equal(wa, wb, sizeof wa); /* bit-exact continuation */
    }
    assert_memory_equal(a.weight, b.weight, sizeof a.weight);

    /* GABA (ema, step inside warm-up) and DWA (epoch history) continue exactly too */
    MtlBalancer g = make(MTL_BALANCE_GABA, 3), h = make(MTL_BALANCE_GABA, 3);
    for (int t = 0; t < 60; t++) mtl_gaba_step(&g, norms, wa);
    mtl_balancer_state_get(&g, st);
    assert_int_equal(mtl_balancer_state_set(&h, st, 28, err, sizeof err), 0);
    for (int t = 60; t < 160; t++) {
        mtl_gaba_step(&g, norms, wa);
        mtl_gaba_step(&h, norms, wb);
        assert_memory_equal(wa, wb, sizeof wa);
    }
    MtlBalancer d = make(MTL_BALANCE_DWA, 3), e = make(MTL_BALANCE_DWA, 3);
    const double e0[3] = {3.0, 2.0, 1.0}, e1[3] = {2.5, 2.1, 0.7};
    mtl_dwa_end_epoch(&d, e0, NULL);
    mtl_balancer_state_get(&d, st);
    assert_int_equal(mtl_balancer_state_set(&e, st, 28, err, sizeof err), 0);
    mtl_dwa_end_epoch(&d, e1, wa);
    mtl_dwa_end_epoch(&e, e1, wb);
    assert_memory_equal(wa, wb, sizeof wa);
    assert_true(wa[0] != 1.0);

    /* refused: wrong size, method, K, version, counters, NaN; b is untouched */
    MtlBalancer before;
    memcpy(&before, &b, sizeof b);
    mtl_balancer_state_get(&a, st);
    assert_int_equal(mtl_balancer_state_set(&b, st, 27, err, sizeof err), -1);
    assert_int_equal(mtl_balancer_state_set(&g, st, 28, err, sizeof err), -1); /* GABA */
    MtlBalancer k2 = make(MTL_BALANCE_GRADNORM, 2);
    assert_int_equal(mtl_balancer_state_set(&k2, st, 21, err, sizeof err), -1);
    double bad[28];
    const int idx[4] = {0, 3, 5, 10};
    const double val[4] = {2.0, 1.5, 0.5, NAN};
    for (int c = 0; c < 4; c++) {
        memcpy(bad, st, sizeof bad);
        bad[idx[c]] = val[c];
        assert_int_equal(mtl_balancer_state_set(&b, bad, 28, err, sizeof err), -1);
    }
    assert_memory_equal(&b, &before, sizeof b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaba_warmup_ema_floor),
        cmocka_unit_test(test_gaba_no_ema_during_warmup),
        cmocka_unit_test(test_gaba_raw_from_gradients),
        cmocka_unit_test(test_gaba_three_tasks),
        cmocka_unit_test(test_gaba_degenerate),
        cmocka_unit_test(test_amnl),
        cmocka_unit_test(test_uncertainty),
        cmocka_unit_test(test_gradnorm_sgd),
        cmocka_unit_test(test_gradnorm_adam_clamp_degenerate),
        cmocka_unit_test(test_dwa),
        cmocka_unit_test(test_pcgrad_two_tasks),
        cmocka_unit_test(test_pcgrad_three_tasks),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_generic_step_and_names),
        cmocka_unit_test(test_state_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

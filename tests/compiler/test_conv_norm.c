/* Conv1d, batchnorm, layernorm, pooling and residual kernels (runtime/kernels/conv_norm.c)
 * against independent references: naive double-precision loops written straight from the
 * PyTorch definitions (no im2col, no blocking, one-pass formulas where the kernel uses two),
 * central differences of those references for every backward input and parameter, hand-worked
 * tiny cases, and the accumulate / NULL-gradient contract.
 * Tolerance: a float kernel against a double reference within 1e-5 of the tensor's largest
 * magnitude. The worst ratio seen per check is printed at the end.
 * Not here: LSTM and attention (their own test), performance. */
#include "seq_kernels.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define TOL 1e-5

/* ---------------------------------------------------------------- helpers */

/* Worst error / scale seen per label, reported after the run. */
enum { MAX_LABELS = 64 };
static struct {
    const char *label;
    double worst;
} g_worst[MAX_LABELS];
static int g_nworst;

static void note_worst(const char *label, double r) {
    for (int i = 0; i < g_nworst; i++)
        if (strcmp(g_worst[i].label, label) == 0) {
            if (r > g_worst[i].worst) g_worst[i].worst = r;
            return;
        }
    if (g_nworst < MAX_LABELS) {
        g_worst[g_nworst].label = label;
        g_worst[g_nworst++].worst = r;
    }
}

/* got [n] (float) against ref [n] (double): max |got − ref| ≤ TOL · max(|ref|, floor). */
static void check_close(const char *label, const float *got, const double *ref, int64_t n, double floor_scale) {
    double scale = floor_scale, err = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= err)) err = e; /* NaN lands here too */
    }
    double r = err / scale;
    note_worst(label, r);
    if (!(r <= TOL)) {
        for (int64_t i = 0; i < n; i++)
            if (fabs((double)got[i] - ref[i]) > TOL * scale) {
                print_error("%s: element %lld got %.9g want %.9g (scale %.3g)\n", label, (long long)i, got[i],
                            ref[i], scale);
                break;
            }
        fail_msg("%s: worst error %.3g of scale %.3g", label, err, scale);
    }
}

/* Deterministic values in [lo, hi) (xorshift; seeds differ per tensor). */
static void fill(float *a, int64_t n, uint32_t seed, float lo, float hi) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        a[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
    }
}

static double *to_double(const float *a, int64_t n) {
    double *d = malloc((size_t)n * sizeof(double));
    assert_non_null(d);
    for (int64_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

static float *falloc(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(p);
    return p;
}

/* A double-precision reference forward seen as a scalar loss L = Σ g ⊙ out, so that dL/dout = g
 * and dL/dθ by central differences is the quantity every backward kernel must return. */
typedef double (*RefLoss)(void *ctx);

/* Central differences of L w.r.t. each of p [n] into grad [n]. The references are smooth
 * (conv, pooling linear; norms smooth for these inputs), so h = 1e-4 in double is ample. */
static void numeric_grad(double *grad, double *p, int64_t n, RefLoss loss, void *ctx) {
    const double h = 1e-4;
    for (int64_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = loss(ctx);
        p[i] = keep - h;
        double lm = loss(ctx);
        p[i] = keep;
        grad[i] = (lp - lm) / (2 * h);
    }
}

static double dot_d(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---------------------------------------------------------------- conv1d */

/* Straight from the definition: y[b,t,o] = bias[o] + Σ_{i,k} w[o,i,k]·x[b, t·S + k − P, i],
 * out-of-range taps contribute zero. */
static void ref_conv(double *y, const double *x, const double *w, const double *bias, int64_t B, int64_t T,
                     int64_t Cin, int64_t Cout, int64_t K, int64_t S, int64_t P) {
    int64_t To = (T + 2 * P - K) / S + 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < To; t++)
            for (int64_t o = 0; o < Cout; o++) {
                double s = bias ? bias[o] : 0.0;
                for (int64_t i = 0; i < Cin; i++)
                    for (int64_t k = 0; k < K; k++) {
                        int64_t ti = t * S + k - P;
                        if (ti < 0 || ti >= T) continue;
                        s += w[(o * Cin + i) * K + k] * x[(b * T + ti) * Cin + i];
                    }
                y[(b * To + t) * Cout + o] = s;
            }
}

typedef struct {
    double *x, *w, *b, *g, *y;
    int64_t B, T, Cin, Cout, K, S, P, To;
} ConvCtx;

static double conv_loss(void *p) {
    ConvCtx *c = p;
    ref_conv(c->y, c->x, c->w, c->b, c->B, c->T, c->Cin, c->Cout, c->K, c->S, c->P);
    return dot_d(c->y, c->g, c->B * c->To * c->Cout);
}

static void run_conv_case(int64_t B, int64_t T, int64_t Cin, int64_t Cout, int64_t K, int64_t S, int64_t P,
                          int with_bias) {
    int64_t To = (T + 2 * P - K) / S + 1;
    assert_true(To > 0);
    int64_t nx = B * T * Cin, nw = Cout * Cin * K, ny = B * To * Cout;
    MtkScratch sc = mtk_conv1d_scratch(T, Cin, Cout, K, S, P);
    assert_true(sc.per_sample >= 0 && sc.fixed >= 0);
    /* exactly the declared size, so ASan sees any overrun */
    float *scratch = falloc(sc.per_sample * B + sc.fixed);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(Cout), *y = falloc(ny), *dy = falloc(ny);
    fill(x, nx, 1, -1, 1);
    fill(w, nw, 2, -0.5f, 0.5f);
    fill(b, Cout, 3, -0.3f, 0.3f);
    fill(dy, ny, 4, -1, 1);
    mtk_conv1d_forward(y, scratch, x, w, with_bias ? b : NULL, B, T, Cin, Cout, K, S, P);

    ConvCtx c = {to_double(x, nx), to_double(w, nw), with_bias ? to_double(b, Cout) : NULL, to_double(dy, ny),
                 malloc((size_t)ny * sizeof(double)), B, T, Cin, Cout, K, S, P, To};
    ref_conv(c.y, c.x, c.w, c.b, B, T, Cin, Cout, K, S, P);
    check_close("conv1d forward", y, c.y, ny, 1e-3);

    /* backward against central differences of the reference */
    float *dx = falloc(nx), *dw = falloc(nw), *db = falloc(Cout);
    fill(dx, nx, 90, 5, 6); /* garbage: overwrite mode must not read it */
    fill(dw, nw, 91, 5, 6);
    fill(db, Cout, 92, 5, 6);
    mtk_conv1d_backward(dx, dw, with_bias ? db : NULL, scratch, dy, x, w, B, T, Cin, Cout, K, S, P, 0, 0);
    double *nx_g = malloc((size_t)nx * sizeof(double)), *nw_g = malloc((size_t)nw * sizeof(double));
    double *nb_g = malloc((size_t)Cout * sizeof(double));
    numeric_grad(nx_g, c.x, nx, conv_loss, &c);
    numeric_grad(nw_g, c.w, nw, conv_loss, &c);
    check_close("conv1d dx (numeric)", dx, nx_g, nx, 1e-3);
    check_close("conv1d dw (numeric)", dw, nw_g, nw, 1e-3);
    if (with_bias) {
        numeric_grad(nb_g, c.b, Cout, conv_loss, &c);
        check_close("conv1d db (numeric)", db, nb_g, Cout, 1e-3);
    }

    /* accumulate: adds onto what is there, each flag on its own */
    float *dx2 = falloc(nx), *dw2 = falloc(nw), *db2 = falloc(Cout);
    double *want_x = malloc((size_t)nx * sizeof(double)), *want_w = malloc((size_t)nw * sizeof(double));
    double *want_b = malloc((size_t)Cout * sizeof(double));
    fill(dx2, nx, 7, -1, 1);
    fill(dw2, nw, 8, -1, 1);
    fill(db2, Cout, 9, -1, 1);
    for (int64_t i = 0; i < nx; i++) want_x[i] = (double)dx2[i] + dx[i];
    for (int64_t i = 0; i < nw; i++) want_w[i] = (double)dw2[i] + dw[i];
    for (int64_t i = 0; i < Cout; i++) want_b[i] = (double)db2[i] + db[i];
    mtk_conv1d_backward(dx2, dw2, with_bias ? db2 : NULL, scratch, dy, x, w, B, T, Cin, Cout, K, S, P, 1, 1);
    check_close("conv1d accumulate dx", dx2, want_x, nx, 1e-3);
    check_close("conv1d accumulate dw", dw2, want_w, nw, 1e-3);
    if (with_bias) check_close("conv1d accumulate db", db2, want_b, Cout, 1e-3);
    /* accumulate_dx only: params overwritten */
    fill(dx2, nx, 7, -1, 1);
    fill(dw2, nw, 93, 5, 6);
    mtk_conv1d_backward(dx2, dw2, NULL, scratch, dy, x, w, B, T, Cin, Cout, K, S, P, 1, 0);
    check_close("conv1d accumulate dx", dx2, want_x, nx, 1e-3);
    check_close("conv1d dw (numeric)", dw2, nw_g, nw, 1e-3);

    /* NULL gradients are skipped, the others still right */
    mtk_conv1d_backward(NULL, dw2, NULL, scratch, dy, x, w, B, T, Cin, Cout, K, S, P, 0, 0);
    check_close("conv1d dw (numeric)", dw2, nw_g, nw, 1e-3);
    mtk_conv1d_backward(dx2, NULL, NULL, scratch, dy, x, w, B, T, Cin, Cout, K, S, P, 0, 0);
    check_close("conv1d dx (numeric)", dx2, nx_g, nx, 1e-3);
    mtk_conv1d_backward(NULL, NULL, NULL, scratch, dy, x, w, B, T, Cin, Cout, K, S, P, 0, 0);

    free(dx2), free(dw2), free(db2), free(want_x), free(want_w), free(want_b), free(nb_g);
    free(nx_g), free(nw_g), free(dx), free(dw), free(db);
    free(c.x), free(c.w), free(c.b), free(c.g), free(c.y);
    free(scratch), free(x), free(w), free(b), free(y), free(dy);
}

static void test_conv1d_k3_p1_s1(void **state) {
    (void)state;
    run_conv_case(3, 7, 4, 5, 3, 1, 1, 1);
    run_conv_case(3, 7, 4, 5, 3, 1, 1, 0); /* no bias */
}

static void test_conv1d_k5_p0_s2(void **state) {
    (void)state;
    run_conv_case(3, 7, 4, 5, 5, 2, 0, 1); /* T = 7 not divisible by S = 2: last input unused */
    run_conv_case(3, 8, 4, 5, 5, 2, 0, 1);
}

static void test_conv1d_other_shapes(void **state) {
    (void)state;
    run_conv_case(3, 7, 4, 5, 3, 2, 1, 1); /* stride and padding together */
    run_conv_case(3, 7, 4, 3, 4, 3, 2, 1); /* even K, S = 3, P = 2 */
    run_conv_case(2, 7, 3, 6, 1, 1, 0, 1); /* pointwise */
    run_conv_case(3, 5, 2, 4, 7, 1, 3, 1); /* kernel wider than the input */
    run_conv_case(1, 6, 3, 66, 2, 1, 0, 1); /* Cout past one accumulator block (db) */
}

/* Hand case: x = [1, 2, 3, 4] (B = 1, Cin = 1), w = [1, 0, −1] (Cout = 1, K = 3), b = 0.5,
 * P = 1, S = 1, so y[t] = x[t−1] − x[t+1] + 0.5 with x[−1] = x[4] = 0:
 *   y = [0 − 2, 1 − 3, 2 − 4, 3 − 0] + 0.5 = [−1.5, −1.5, −1.5, 3.5].
 * Backward with dy = [1, 1, 1, 1]:
 *   dx[j] = Σ_t dy[t]·w[j − t + 1] = [w0, w0 + w1 + w2, w0 + w1 + w2, w1 + w2] = [1, 0, 0, −1]
 *   dw[k] = Σ_t x[t + k − 1] = [0+1+2+3, 1+2+3+4, 2+3+4+0] = [6, 10, 9];  db = 4. */
static void test_conv1d_hand(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, 4}, w[3] = {1, 0, -1}, b[1] = {0.5f}, y[4], dy[4] = {1, 1, 1, 1};
    float dx[4], dw[3], db[1];
    MtkScratch sc = mtk_conv1d_scratch(4, 1, 1, 3, 1, 1);
    float *scratch = falloc(sc.per_sample + sc.fixed);
    mtk_conv1d_forward(y, scratch, x, w, b, 1, 4, 1, 1, 3, 1, 1);
    const float want_y[4] = {-1.5f, -1.5f, -1.5f, 3.5f};
    for (int i = 0; i < 4; i++) assert_float_equal(y[i], want_y[i], 1e-6);
    mtk_conv1d_backward(dx, dw, db, scratch, dy, x, w, 1, 4, 1, 1, 3, 1, 1, 0, 0);
    const float want_dx[4] = {1, 0, 0, -1}, want_dw[3] = {6, 10, 9};
    for (int i = 0; i < 4; i++) assert_float_equal(dx[i], want_dx[i], 1e-6);
    for (int i = 0; i < 3; i++) assert_float_equal(dw[i], want_dw[i], 1e-6);
    assert_float_equal(db[0], 4.0f, 1e-6);
    /* scratch sizes as documented: col [To, K·Cin] per sample, Wp and dWp fixed */
    assert_int_equal(sc.per_sample, 4 * 3 * 1);
    assert_int_equal(sc.fixed, 2 * 3);
    free(scratch);
}

/* ---------------------------------------------------------------- batchnorm */

/* One-pass E[x²] − E[x]² in double (the kernel is two-pass): y = γ(x − μ)/sqrt(σ² + eps) + β,
 * batch statistics when `training`, else the given running ones. Also returns the batch
 * mean and the biased batch variance. */
static void ref_batchnorm(double *y, double *bmean, double *bvar, const double *x, const double *gamma,
                          const double *beta, const double *rmean, const double *rvar, int64_t n, int64_t C,
                          double eps, int training) {
    for (int64_t c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int64_t r = 0; r < n; r++) {
            s += x[r * C + c];
            ss += x[r * C + c] * x[r * C + c];
        }
        double m = s / (double)n, v = ss / (double)n - m * m;
        if (bmean) bmean[c] = m;
        if (bvar) bvar[c] = v;
        double mu = training ? m : rmean[c], var = training ? v : rvar[c];
        for (int64_t r = 0; r < n; r++)
            y[r * C + c] = gamma[c] * (x[r * C + c] - mu) / sqrt(var + eps) + beta[c];
    }
}

typedef struct {
    double *x, *gamma, *beta, *rmean, *rvar, *g, *y;
    int64_t n, C;
    int training;
} BnCtx;

static double bn_loss(void *p) {
    BnCtx *c = p;
    ref_batchnorm(c->y, NULL, NULL, c->x, c->gamma, c->beta, c->rmean, c->rvar, c->n, c->C, 1e-5, c->training);
    return dot_d(c->y, c->g, c->n * c->C);
}

static void run_batchnorm_case(int64_t B, int64_t T, int64_t C, int training) {
    int64_t n = B * T, nx = n * C;
    float *x = falloc(nx), *y = falloc(nx), *xhat = falloc(nx), *dy = falloc(nx), *dx = falloc(nx);
    float *gamma = falloc(C), *beta = falloc(C), *rstd = falloc(C), *rm = falloc(C), *rv = falloc(C);
    float *dgamma = falloc(C), *dbeta = falloc(C);
    fill(x, nx, 11, -2, 3); /* nonzero mean on purpose */
    fill(gamma, C, 12, 0.5f, 1.5f);
    fill(beta, C, 13, -0.5f, 0.5f);
    fill(rm, C, 14, -0.5f, 0.5f);
    fill(rv, C, 15, 0.5f, 2.0f);
    fill(dy, nx, 16, -1, 1);
    BnCtx c = {to_double(x, nx), to_double(gamma, C), to_double(beta, C), to_double(rm, C), to_double(rv, C),
               to_double(dy, nx), malloc((size_t)nx * sizeof(double)), n, C, training};
    double *bm = malloc((size_t)C * sizeof(double)), *bv = malloc((size_t)C * sizeof(double));

    mtk_batchnorm_forward(y, xhat, rstd, rm, rv, x, gamma, beta, B, T, C, 1e-5f, 0.1f, training);
    ref_batchnorm(c.y, bm, bv, c.x, c.gamma, c.beta, c.rmean, c.rvar, n, C, 1e-5, training);
    check_close(training ? "batchnorm forward (train)" : "batchnorm forward (eval)", y, c.y, nx, 1e-3);
    /* saved state: xhat = (y − β)/γ, rstd of the statistics used */
    double *want = malloc((size_t)nx * sizeof(double));
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < C; k++) want[r * C + k] = (c.y[r * C + k] - c.beta[k]) / c.gamma[k];
    check_close("batchnorm saved xhat", xhat, want, nx, 1e-3);
    for (int64_t k = 0; k < C; k++) want[k] = 1.0 / sqrt((training ? bv[k] : c.rvar[k]) + 1e-5);
    check_close("batchnorm saved rstd", rstd, want, C, 1e-3);
    /* running statistics: momentum 0.1, unbiased variance; untouched in eval */
    for (int64_t k = 0; k < C; k++) want[k] = training ? 0.9 * c.rmean[k] + 0.1 * bm[k] : c.rmean[k];
    check_close("batchnorm running_mean", rm, want, C, 1e-3);
    for (int64_t k = 0; k < C; k++)
        want[k] = training ? 0.9 * c.rvar[k] + 0.1 * bv[k] * (double)n / (double)(n - 1) : c.rvar[k];
    check_close("batchnorm running_var", rv, want, C, 1e-3);

    /* backward vs central differences of the reference in the same mode */
    mtk_batchnorm_backward(dx, dgamma, dbeta, dy, xhat, rstd, gamma, B, T, C, training, 0, 0);
    double *ng = malloc((size_t)nx * sizeof(double));
    const char *lx = training ? "batchnorm dx (numeric, train)" : "batchnorm dx (numeric, eval)";
    const char *lg = training ? "batchnorm dgamma (numeric, train)" : "batchnorm dgamma (numeric, eval)";
    const char *lb = training ? "batchnorm dbeta (numeric, train)" : "batchnorm dbeta (numeric, eval)";
    numeric_grad(ng, c.x, nx, bn_loss, &c);
    check_close(lx, dx, ng, nx, 1e-3);
    double *ngam = malloc((size_t)C * sizeof(double)), *nbet = malloc((size_t)C * sizeof(double));
    numeric_grad(ngam, c.gamma, C, bn_loss, &c);
    numeric_grad(nbet, c.beta, C, bn_loss, &c);
    check_close(lg, dgamma, ngam, C, 1e-3);
    check_close(lb, dbeta, nbet, C, 1e-3);

    /* accumulate and NULL */
    float *dx2 = falloc(nx), *dg2 = falloc(C), *db2 = falloc(C);
    fill(dx2, nx, 17, -1, 1);
    fill(dg2, C, 18, -1, 1);
    fill(db2, C, 19, -1, 1);
    double *wx = malloc((size_t)nx * sizeof(double)), *wg = malloc((size_t)C * sizeof(double)),
           *wb = malloc((size_t)C * sizeof(double));
    for (int64_t i = 0; i < nx; i++) wx[i] = (double)dx2[i] + dx[i];
    for (int64_t i = 0; i < C; i++) wg[i] = (double)dg2[i] + dgamma[i], wb[i] = (double)db2[i] + dbeta[i];
    mtk_batchnorm_backward(dx2, dg2, db2, dy, xhat, rstd, gamma, B, T, C, training, 1, 1);
    check_close("batchnorm accumulate dx", dx2, wx, nx, 1e-3);
    check_close("batchnorm accumulate dgamma", dg2, wg, C, 1e-3);
    check_close("batchnorm accumulate dbeta", db2, wb, C, 1e-3);
    mtk_batchnorm_backward(dx2, NULL, NULL, dy, xhat, rstd, gamma, B, T, C, training, 0, 0);
    check_close(lx, dx2, ng, nx, 1e-3);
    mtk_batchnorm_backward(NULL, dg2, NULL, dy, xhat, rstd, gamma, B, T, C, training, 0, 0);
    check_close(lg, dg2, ngam, C, 1e-3);
    mtk_batchnorm_backward(NULL, NULL, db2, dy, xhat, rstd, gamma, B, T, C, training, 0, 0);
    check_close(lb, db2, nbet, C, 1e-3);

    free(dx2), free(dg2), free(db2), free(wx), free(wg), free(wb);
    free(ng), free(ngam), free(nbet), free(want), free(bm), free(bv);
    free(c.x), free(c.gamma), free(c.beta), free(c.rmean), free(c.rvar), free(c.g), free(c.y);
    free(x), free(y), free(xhat), free(dy), free(dx), free(gamma), free(beta), free(rstd), free(rm), free(rv);
    free(dgamma), free(dbeta);
}

static void test_batchnorm_train(void **state) {
    (void)state;
    run_batchnorm_case(3, 7, 4, 1);
    run_batchnorm_case(2, 5, 67, 1); /* crosses a channel block */
}

static void test_batchnorm_eval(void **state) {
    (void)state;
    run_batchnorm_case(3, 7, 4, 0);
    run_batchnorm_case(2, 5, 67, 0);
}

/* Hand case, training, one channel, x = [1, 2, 3], γ = 1, β = 0, eps = 0:
 *   μ = 2, σ² = (1 + 0 + 1)/3 = 2/3, rstd = sqrt(3/2) = 1.2247449  →  y = [−1.2247449, 0, 1.2247449]
 *   running (momentum 0.1) from mean 0, var 0.5: mean 0.9·0 + 0.1·2 = 0.2;
 *   var 0.9·0.5 + 0.1·(2/2) = 0.55 (unbiased variance 2/(3−1) = 1).
 * Backward with dy = [1, 0, 0]: Σdy = 1, Σdy·x̂ = −1.2247449, so
 *   dx = rstd·(dy − 1/3 − x̂·(−1.2247449)/3) = 1.2247449·(dy − 1/3 + [−0.5, 0, 0.5])
 *      = [1.2247449/6, −1.2247449/3, 1.2247449/6] = [0.2041241, −0.4082483, 0.2041241]
 *   dgamma = −1.2247449, dbeta = 1.
 * Eval with those running stats (0.2, 0.55): y = (x − 0.2)/sqrt(0.55) = [1.0787, 2.4271, 3.7755];
 * eval dx = dy·rstd = [1.3483997, 0, 0]. */
static void test_batchnorm_hand(void **state) {
    (void)state;
    float x[3] = {1, 2, 3}, g[1] = {1}, be[1] = {0}, y[3], xh[3], rs[1], rm[1] = {0}, rv[1] = {0.5f};
    mtk_batchnorm_forward(y, xh, rs, rm, rv, x, g, be, 1, 3, 1, 0.0f, 0.1f, 1);
    assert_float_equal(y[0], -1.2247449f, 1e-6);
    assert_float_equal(y[1], 0.0f, 1e-6);
    assert_float_equal(y[2], 1.2247449f, 1e-6);
    assert_float_equal(rs[0], 1.2247449f, 1e-6);
    assert_float_equal(rm[0], 0.2f, 1e-7);
    assert_float_equal(rv[0], 0.55f, 1e-7);
    float dy[3] = {1, 0, 0}, dx[3], dg[1], db[1];
    mtk_batchnorm_backward(dx, dg, db, dy, xh, rs, g, 1, 3, 1, 1, 0, 0);
    assert_float_equal(dx[0], 0.2041241f, 1e-6);
    assert_float_equal(dx[1], -0.4082483f, 1e-6);
    assert_float_equal(dx[2], 0.2041241f, 1e-6);
    assert_float_equal(dg[0], -1.2247449f, 1e-6);
    assert_float_equal(db[0], 1.0f, 1e-6);
    mtk_batchnorm_forward(y, xh, rs, rm, rv, x, g, be, 1, 3, 1, 0.0f, 0.1f, 0);
    assert_float_equal(y[0], 0.8f / sqrtf(0.55f), 1e-6);
    assert_float_equal(y[2], 2.8f / sqrtf(0.55f), 1e-6);
    assert_float_equal(rm[0], 0.2f, 1e-7); /* eval leaves running stats alone */
    assert_float_equal(rv[0], 0.55f, 1e-7);
    mtk_batchnorm_backward(dx, NULL, NULL, dy, xh, rs, g, 1, 3, 1, 0, 0, 0);
    assert_float_equal(dx[0], 1.3483997f, 1e-6);
    assert_float_equal(dx[1], 0.0f, 1e-7);
    /* NULL running stats: nothing to update, and eval falls back to batch statistics */
    mtk_batchnorm_forward(y, xh, rs, NULL, NULL, x, g, be, 1, 3, 1, 0.0f, 0.1f, 0);
    assert_float_equal(y[0], -1.2247449f, 1e-6);
    /* affine off (NULL γ, β) is the identity affine */
    float y2[3];
    mtk_batchnorm_forward(y2, xh, rs, NULL, NULL, x, NULL, NULL, 1, 3, 1, 0.0f, 0.1f, 1);
    for (int i = 0; i < 3; i++) assert_float_equal(y2[i], y[i], 1e-7);
}

/* ---------------------------------------------------------------- layernorm */

/* One-pass reference per row, biased variance. */
static void ref_layernorm(double *y, const double *x, const double *gamma, const double *beta, int64_t R, int64_t C,
                          double eps) {
    for (int64_t r = 0; r < R; r++) {
        double s = 0, ss = 0;
        for (int64_t c = 0; c < C; c++) s += x[r * C + c], ss += x[r * C + c] * x[r * C + c];
        double m = s / (double)C, v = ss / (double)C - m * m;
        for (int64_t c = 0; c < C; c++) y[r * C + c] = gamma[c] * (x[r * C + c] - m) / sqrt(v + eps) + beta[c];
    }
}

typedef struct {
    double *x, *gamma, *beta, *g, *y;
    int64_t R, C;
} LnCtx;

static double ln_loss(void *p) {
    LnCtx *c = p;
    ref_layernorm(c->y, c->x, c->gamma, c->beta, c->R, c->C, 1e-5);
    return dot_d(c->y, c->g, c->R * c->C);
}

static void run_layernorm_case(int64_t R, int64_t C) {
    int64_t nx = R * C;
    float *x = falloc(nx), *y = falloc(nx), *xhat = falloc(nx), *dy = falloc(nx), *dx = falloc(nx);
    float *gamma = falloc(C), *beta = falloc(C), *rstd = falloc(R), *dg = falloc(C), *db = falloc(C);
    fill(x, nx, 21, -1, 2);
    fill(gamma, C, 22, 0.5f, 1.5f);
    fill(beta, C, 23, -0.5f, 0.5f);
    fill(dy, nx, 24, -1, 1);
    LnCtx c = {to_double(x, nx), to_double(gamma, C), to_double(beta, C), to_double(dy, nx),
               malloc((size_t)nx * sizeof(double)), R, C};
    mtk_layernorm_forward(y, xhat, rstd, x, gamma, beta, R, C, 1e-5f);
    ref_layernorm(c.y, c.x, c.gamma, c.beta, R, C, 1e-5);
    check_close("layernorm forward", y, c.y, nx, 1e-3);
    double *want = malloc((size_t)nx * sizeof(double));
    for (int64_t i = 0; i < nx; i++) want[i] = (c.y[i] - c.beta[i % C]) / c.gamma[i % C];
    check_close("layernorm saved xhat", xhat, want, nx, 1e-3);

    fill(dx, nx, 94, 5, 6);
    mtk_layernorm_backward(dx, dg, db, dy, xhat, rstd, gamma, R, C, 0, 0);
    double *ng = malloc((size_t)nx * sizeof(double)), *ngam = malloc((size_t)C * sizeof(double)),
           *nbet = malloc((size_t)C * sizeof(double));
    numeric_grad(ng, c.x, nx, ln_loss, &c);
    numeric_grad(ngam, c.gamma, C, ln_loss, &c);
    numeric_grad(nbet, c.beta, C, ln_loss, &c);
    check_close("layernorm dx (numeric)", dx, ng, nx, 1e-3);
    check_close("layernorm dgamma (numeric)", dg, ngam, C, 1e-3);
    check_close("layernorm dbeta (numeric)", db, nbet, C, 1e-3);

    float *dx2 = falloc(nx), *dg2 = falloc(C), *db2 = falloc(C);
    fill(dx2, nx, 25, -1, 1);
    fill(dg2, C, 26, -1, 1);
    fill(db2, C, 27, -1, 1);
    double *wx = malloc((size_t)nx * sizeof(double)), *wg = malloc((size_t)C * sizeof(double)),
           *wb = malloc((size_t)C * sizeof(double));
    for (int64_t i = 0; i < nx; i++) wx[i] = (double)dx2[i] + dx[i];
    for (int64_t i = 0; i < C; i++) wg[i] = (double)dg2[i] + dg[i], wb[i] = (double)db2[i] + db[i];
    mtk_layernorm_backward(dx2, dg2, db2, dy, xhat, rstd, gamma, R, C, 1, 1);
    check_close("layernorm accumulate dx", dx2, wx, nx, 1e-3);
    check_close("layernorm accumulate dgamma", dg2, wg, C, 1e-3);
    check_close("layernorm accumulate dbeta", db2, wb, C, 1e-3);
    mtk_layernorm_backward(dx2, NULL, NULL, dy, xhat, rstd, gamma, R, C, 0, 0);
    check_close("layernorm dx (numeric)", dx2, ng, nx, 1e-3);
    mtk_layernorm_backward(NULL, dg2, NULL, dy, xhat, rstd, gamma, R, C, 0, 1); /* adds onto dg2 = wg */
    for (int64_t i = 0; i < C; i++) wg[i] += dg[i];
    check_close("layernorm accumulate dgamma", dg2, wg, C, 1e-3);
    mtk_layernorm_backward(NULL, NULL, db2, dy, xhat, rstd, gamma, R, C, 0, 0);
    check_close("layernorm dbeta (numeric)", db2, nbet, C, 1e-3);

    free(dx2), free(dg2), free(db2), free(wx), free(wg), free(wb), free(ng), free(ngam), free(nbet), free(want);
    free(c.x), free(c.gamma), free(c.beta), free(c.g), free(c.y);
    free(x), free(y), free(xhat), free(dy), free(dx), free(gamma), free(beta), free(rstd), free(dg), free(db);
}

static void test_layernorm(void **state) {
    (void)state;
    run_layernorm_case(3 * 7, 4); /* B = 3, T = 7 */
    run_layernorm_case(5, 70);    /* wider rows, more than one accumulator block for dgamma */
}

/* Hand case: row [1, 2, 3], eps = 0 → x̂ = [−1.2247449, 0, 1.2247449], rstd = 1.2247449;
 * γ = 2, β = 1 → y = [−1.4494897, 1, 3.4494897].
 * Backward with dy = [1, 0, 0]: g = dy·γ = [2, 0, 0], mean(g) = 2/3, mean(g·x̂) = −0.8164966,
 *   dx = rstd·(g − 2/3 + 0.8164966·x̂) = 1.2247449·([2, 0, 0] − 2/3 + [−1, 0, 1])
 *      = 1.2247449·[1/3, −2/3, 1/3] = [0.4082483, −0.8164966, 0.4082483];
 *   dgamma = dy·x̂ = [−1.2247449, 0, 0], dbeta = [1, 0, 0]. */
static void test_layernorm_hand(void **state) {
    (void)state;
    float x[3] = {1, 2, 3}, g[3] = {2, 2, 2}, be[3] = {1, 1, 1}, y[3], xh[3], rs[1];
    mtk_layernorm_forward(y, xh, rs, x, g, be, 1, 3, 0.0f);
    assert_float_equal(y[0], -1.4494897f, 1e-6);
    assert_float_equal(y[1], 1.0f, 1e-6);
    assert_float_equal(y[2], 3.4494897f, 1e-6);
    assert_float_equal(rs[0], 1.2247449f, 1e-6);
    float dy[3] = {1, 0, 0}, dx[3], dg[3], db[3];
    mtk_layernorm_backward(dx, dg, db, dy, xh, rs, g, 1, 3, 0, 0);
    assert_float_equal(dx[0], 0.4082483f, 1e-6);
    assert_float_equal(dx[1], -0.8164966f, 1e-6);
    assert_float_equal(dx[2], 0.4082483f, 1e-6);
    assert_float_equal(dg[0], -1.2247449f, 1e-6);
    assert_float_equal(dg[1], 0.0f, 1e-7);
    assert_float_equal(db[0], 1.0f, 1e-7);
    assert_float_equal(db[2], 0.0f, 1e-7);
    /* affine off */
    mtk_layernorm_forward(y, xh, rs, x, NULL, NULL, 1, 3, 0.0f);
    assert_float_equal(y[0], -1.2247449f, 1e-6);
}

/* ---------------------------------------------------------------- pooling */

static void ref_pool(double *y, const double *x, int64_t B, int64_t T, int64_t C, int kind) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            double v = kind == 2 ? -INFINITY : 0.0;
            for (int64_t t = 0; t < T; t++) {
                double e = x[(b * T + t) * C + c];
                if (kind == 0 && t == T - 1) v = e;
                if (kind == 1) v += e / (double)T;
                if (kind == 2) v = fmax(v, e);
            }
            y[b * C + c] = v;
        }
}

typedef struct {
    double *x, *g, *y;
    int64_t B, T, C;
    int kind;
} PoolCtx;

static double pool_loss(void *p) {
    PoolCtx *c = p;
    ref_pool(c->y, c->x, c->B, c->T, c->C, c->kind);
    return dot_d(c->y, c->g, c->B * c->C);
}

static void test_pool(void **state) {
    (void)state;
    enum { B = 3, T = 7, C = 4 };
    static const char *names[3][3] = {{"pool last forward", "pool last dx (numeric)", "pool last accumulate dx"},
                                      {"pool mean forward", "pool mean dx (numeric)", "pool mean accumulate dx"},
                                      {"pool max forward", "pool max dx (numeric)", "pool max accumulate dx"}};
    float x[B * T * C], y[B * C], am[B * C], dy[B * C], dx[B * T * C];
    fill(x, B * T * C, 31, -1, 1); /* distinct values: max is away from ties by far more than h */
    fill(dy, B * C, 32, -1, 1);
    for (int kind = 0; kind < 3; kind++) {
        PoolCtx c = {to_double(x, B * T * C), to_double(dy, B * C), malloc(B * C * sizeof(double)), B, T, C, kind};
        mtk_pool_forward(y, am, x, B, T, C, kind);
        ref_pool(c.y, c.x, B, T, C, kind);
        check_close(names[kind][0], y, c.y, B * C, 1e-3);
        fill(dx, B * T * C, 95, 5, 6);
        mtk_pool_backward(dx, dy, kind == 2 ? am : NULL, B, T, C, kind, 0);
        double ng[B * T * C];
        numeric_grad(ng, c.x, B * T * C, pool_loss, &c);
        check_close(names[kind][1], dx, ng, B * T * C, 1e-3);
        float dx2[B * T * C];
        double want[B * T * C];
        fill(dx2, B * T * C, 33, -1, 1);
        for (int i = 0; i < B * T * C; i++) want[i] = (double)dx2[i] + dx[i];
        mtk_pool_backward(dx2, dy, kind == 2 ? am : NULL, B, T, C, kind, 1);
        check_close(names[kind][2], dx2, want, B * T * C, 1e-3);
        free(c.x), free(c.g), free(c.y);
    }
    /* forward without a saved argmax (inference) */
    float y2[B * C];
    mtk_pool_forward(y2, NULL, x, B, T, C, 2);
    mtk_pool_forward(y, am, x, B, T, C, 2);
    for (int i = 0; i < B * C; i++) assert_float_equal(y2[i], y[i], 0);
}

/* Hand case: B = 1, T = 3, C = 2, x = [[1, 5], [3, 5], [2, −1]] (rows are time steps):
 *   last = [2, −1]; mean = [6/3, 9/3] = [2, 3]; max = [3, 5] with argmax [1, 0] (5 ties at
 *   t = 0 and 1; the first wins).  Backward dy = [10, 20]:
 *   last → dx = [[0, 0], [0, 0], [10, 20]]; mean → every row [10/3, 20/3];
 *   max → [[0, 20], [10, 0], [0, 0]]. */
static void test_pool_hand(void **state) {
    (void)state;
    float x[6] = {1, 5, 3, 5, 2, -1}, y[2], am[2], dy[2] = {10, 20}, dx[6];
    mtk_pool_forward(y, am, x, 1, 3, 2, 0);
    assert_float_equal(y[0], 2, 0), assert_float_equal(y[1], -1, 0);
    mtk_pool_backward(dx, dy, NULL, 1, 3, 2, 0, 0);
    const float want_last[6] = {0, 0, 0, 0, 10, 20};
    for (int i = 0; i < 6; i++) assert_float_equal(dx[i], want_last[i], 0);
    mtk_pool_forward(y, am, x, 1, 3, 2, 1);
    assert_float_equal(y[0], 2, 1e-7), assert_float_equal(y[1], 3, 1e-7);
    mtk_pool_backward(dx, dy, NULL, 1, 3, 2, 1, 0);
    for (int t = 0; t < 3; t++) {
        assert_float_equal(dx[t * 2], 10.0f / 3, 1e-6);
        assert_float_equal(dx[t * 2 + 1], 20.0f / 3, 1e-6);
    }
    mtk_pool_forward(y, am, x, 1, 3, 2, 2);
    assert_float_equal(y[0], 3, 0), assert_float_equal(y[1], 5, 0);
    assert_float_equal(am[0], 1, 0), assert_float_equal(am[1], 0, 0);
    mtk_pool_backward(dx, dy, am, 1, 3, 2, 2, 0);
    const float want_max[6] = {0, 20, 10, 0, 0, 0};
    for (int i = 0; i < 6; i++) assert_float_equal(dx[i], want_max[i], 0);
}

/* ---------------------------------------------------------------- add / copy */

/* Hand values: [1, 2, 3] + [0.5, −2, 4] = [1.5, 0, 7]; copy overwrites, then accumulates to
 * twice the source; in place (y = a) is allowed for the residual. */
static void test_add_copy(void **state) {
    (void)state;
    float a[3] = {1, 2, 3}, b[3] = {0.5f, -2, 4}, y[3], d[3] = {9, 9, 9};
    mtk_add_forward(y, a, b, 3);
    assert_float_equal(y[0], 1.5f, 0), assert_float_equal(y[1], 0, 0), assert_float_equal(y[2], 7, 0);
    mtk_copy(d, y, 3, 0);
    for (int i = 0; i < 3; i++) assert_float_equal(d[i], y[i], 0);
    mtk_copy(d, y, 3, 1);
    for (int i = 0; i < 3; i++) assert_float_equal(d[i], 2 * y[i], 0);
    mtk_add_forward(a, a, b, 3);
    for (int i = 0; i < 3; i++) assert_float_equal(a[i], y[i], 0);
    mtk_copy(a, a, 3, 0); /* self-copy is a no-op */
    for (int i = 0; i < 3; i++) assert_float_equal(a[i], y[i], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv1d_k3_p1_s1), cmocka_unit_test(test_conv1d_k5_p0_s2),
        cmocka_unit_test(test_conv1d_other_shapes), cmocka_unit_test(test_conv1d_hand),
        cmocka_unit_test(test_batchnorm_train), cmocka_unit_test(test_batchnorm_eval),
        cmocka_unit_test(test_batchnorm_hand), cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_hand), cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_hand), cmocka_unit_test(test_add_copy),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("worst |kernel − reference| / max|reference| per check (tolerance %.0e):\n", TOL);
    for (int i = 0; i < g_nworst; i++) printf("  %-36s %.2e\n", g_worst[i].label, g_worst[i].worst);
    return failed;
}

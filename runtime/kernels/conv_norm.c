/* Conv1d, batchnorm, layernorm, pooling over time and the residual helpers (see seq_kernels.h
 * for the legend, argument order and the scratch contract).
 *
 * Layout is time-major [B, T, C] per sample, so a channel is a strided column. Reductions over
 * B·T rows (batchnorm statistics, bias and affine-parameter gradients, mean pooling) accumulate
 * in double, a block of channels at a time: a fixed-size double array per block keeps the row
 * reads contiguous without a per-channel buffer, which these kernels may not allocate (and
 * which batchnorm/layernorm get no scratch for).
 * Deliberately not here: LSTM and attention (their own file), and any allocation.
 */
#include "seq_kernels.h"

#include <cblas.h>
#include "mtk_colsum.h"

#include <math.h>
#include <string.h>

/* ================================ conv1d ================================
 * Scheme: im2col + one sgemm. col [B·To, K·Cin] holds, for output step (b, t), the K input rows
 * x[b, t·S + k − P, :] side by side (zeros where the window overhangs the padding), so each
 * entry of the window is one contiguous copy of Cin floats — time-major input makes that
 * natural. The weight is permuted once per call to Wp [Cout, K·Cin] (Wp[o, k·Cin + i] =
 * w[o, i, k]) to match; that costs Cout·Cin·K, negligible next to the B·To·Cout·Cin·K product.
 * The alternative col ordering [Cin·K] would use w as it is but turns every copy into a
 * stride-K gather, which is the loop that runs B·To times.
 *   forward:  y = col · Wpᵀ (+ b)
 *   backward: dWp = dyᵀ · col (col recomputed, not saved), then permuted into dw;
 *             dcol = dy · Wp into the same scratch rows, then col2im scatter-adds into dx.
 * Scratch: per sample To·K·Cin (col, reused for dcol); fixed 2·Cout·K·Cin (Wp, dWp).
 * BLAS sizes are int (OpenBLAS blasint); the shapes generated code uses are far below 2^31. */

static inline int64_t mtk_conv_out_len(int64_t T, int64_t K, int64_t S, int64_t P) { return (T + 2 * P - K) / S + 1; }

MtkScratch mtk_conv1d_scratch(int64_t T, int64_t Cin, int64_t Cout, int64_t K, int64_t S, int64_t P) {
    int64_t To = mtk_conv_out_len(T, K, S, P);
    MtkScratch s = {To * K * Cin, 2 * Cout * K * Cin};
    return s;
}

/* col [B·To, K·Cin] ← windows of x [B, T, Cin] */
static void mtk_im2col(float *restrict col, const float *restrict x, int64_t B, int64_t T, int64_t To,
                       int64_t Cin, int64_t K, int64_t S, int64_t P) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < To; t++) {
            float *row = col + (b * To + t) * K * Cin;
            for (int64_t k = 0; k < K; k++) {
                int64_t ti = t * S + k - P;
                if (ti >= 0 && ti < T)
                    memcpy(row + k * Cin, x + (b * T + ti) * Cin, (size_t)Cin * sizeof(float));
                else
                    memset(row + k * Cin, 0, (size_t)Cin * sizeof(float));
            }
        }
}

/* dx [B, T, Cin] += scatter of dcol [B·To, K·Cin] (inverse of mtk_im2col; padding drops out) */
static void mtk_col2im_add(float *restrict dx, const float *restrict dcol, int64_t B, int64_t T, int64_t To,
                           int64_t Cin, int64_t K, int64_t S, int64_t P) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < To; t++) {
            const float *row = dcol + (b * To + t) * K * Cin;
            for (int64_t k = 0; k < K; k++) {
                int64_t ti = t * S + k - P;
                if (ti < 0 || ti >= T) continue;
                float *dst = dx + (b * T + ti) * Cin;
                const float *src = row + k * Cin;
                for (int64_t i = 0; i < Cin; i++) dst[i] += src[i];
            }
        }
}

/* wp [Cout, K·Cin] ← w [Cout, Cin, K] */
static void mtk_conv_permute_w(float *restrict wp, const float *restrict w, int64_t Cin, int64_t Cout, int64_t K) {
    for (int64_t o = 0; o < Cout; o++)
        for (int64_t i = 0; i < Cin; i++)
            for (int64_t k = 0; k < K; k++) wp[(o * K + k) * Cin + i] = w[(o * Cin + i) * K + k];
}

/* y [B, To, Cout]; scratch per mtk_conv1d_scratch; x [B, T, Cin]; w [Cout, Cin, K]; b [Cout] or NULL */
void mtk_conv1d_forward(float *restrict y, float *restrict scratch, const float *restrict x,
                        const float *restrict w, const float *restrict b, int64_t B, int64_t T, int64_t Cin,
                        int64_t Cout, int64_t K, int64_t S, int64_t P) {
    int64_t To = mtk_conv_out_len(T, K, S, P), M = B * To, KC = K * Cin;
    if (M <= 0 || Cout <= 0) return;
    float *wp = scratch;            /* [Cout, K·Cin] */
    float *col = scratch + 2 * Cout * KC; /* [B·To, K·Cin], after the fixed part */
    mtk_conv_permute_w(wp, w, Cin, Cout, K);
    mtk_im2col(col, x, B, T, To, Cin, K, S, P);
    /* Seed y with the bias so the product lands on it (beta = 1) instead of a second pass. */
    for (int64_t m = 0; m < M; m++)
        for (int64_t o = 0; o < Cout; o++) y[m * Cout + o] = b ? b[o] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)Cout, (int)KC, 1.0f, col, (int)KC, wp,
                (int)KC, 1.0f, y, (int)Cout);
}

/* dx [B, T, Cin] or NULL; dw [Cout, Cin, K] or NULL; db [Cout] or NULL; scratch as forward;
 * dy [B, To, Cout]; x [B, T, Cin]; w [Cout, Cin, K] */
void mtk_conv1d_backward(float *restrict dx, float *restrict dw, float *restrict db, float *restrict scratch,
                         const float *restrict dy, const float *restrict x, const float *restrict w, int64_t B,
                         int64_t T, int64_t Cin, int64_t Cout, int64_t K, int64_t S, int64_t P, int accumulate_dx,
                         int accumulate_params) {
    int64_t To = mtk_conv_out_len(T, K, S, P), M = B * To, KC = K * Cin;
    float *wp = scratch;                  /* [Cout, K·Cin] */
    float *dwp = scratch + Cout * KC;     /* [Cout, K·Cin] */
    float *col = scratch + 2 * Cout * KC; /* [B·To, K·Cin]: col, then dcol */
    if (db) mtk_colsum(db, dy, NULL, M, Cout, accumulate_params);
    if (dw) {
        if (M > 0) {
            mtk_im2col(col, x, B, T, To, Cin, K, S, P);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Cout, (int)KC, (int)M, 1.0f, dy, (int)Cout,
                        col, (int)KC, 0.0f, dwp, (int)KC);
        } else {
            memset(dwp, 0, (size_t)(Cout * KC) * sizeof(float));
        }
        for (int64_t o = 0; o < Cout; o++)
            for (int64_t i = 0; i < Cin; i++)
                for (int64_t k = 0; k < K; k++) {
                    float g = dwp[(o * K + k) * Cin + i];
                    float *d = dw + (o * Cin + i) * K + k;
                    *d = accumulate_params ? *d + g : g;
                }
    }
    if (dx) {
        if (!accumulate_dx) memset(dx, 0, (size_t)(B * T * Cin) * sizeof(float));
        if (M <= 0) return;
        /* col is free again: dW has been taken from it. */
        mtk_conv_permute_w(wp, w, Cin, Cout, K);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)KC, (int)Cout, 1.0f, dy, (int)Cout, wp,
                    (int)KC, 0.0f, col, (int)KC);
        mtk_col2im_add(dx, col, B, T, To, Cin, K, S, P);
    }
}

/* ================================ batchnorm ================================
 * Per channel over n = B·T rows. Statistics are two-pass (mean, then Σ(x − mean)²) in double,
 * which stays accurate when |mean| ≫ std. gamma/beta may be NULL (affine=False: 1 and 0).
 * Running statistics NULL in eval means there are none to use (PyTorch
 * track_running_stats=False): batch statistics normalise, and the caller's backward should then
 * say training=1. */

/* y [B, T, C]; xhat [B, T, C]; rstd [C]; running_mean, running_var [C] or NULL (updated in
 * training, read in eval); x [B, T, C]; gamma, beta [C] or NULL */
void mtk_batchnorm_forward(float *restrict y, float *restrict xhat, float *restrict rstd,
                           float *restrict running_mean, float *restrict running_var, const float *restrict x,
                           const float *restrict gamma, const float *restrict beta, int64_t B, int64_t T, int64_t C,
                           float eps, float momentum, int64_t training) {
    int64_t n = B * T;
    int use_batch = training || !running_mean || !running_var;
    for (int64_t c0 = 0; c0 < C; c0 += MTK_CBLK) {
        int64_t nc = mtk_min64(MTK_CBLK, C - c0);
        double mean[MTK_CBLK], rs[MTK_CBLK];
        if (use_batch) {
            double s[MTK_CBLK] = {0}, ss[MTK_CBLK] = {0};
            for (int64_t r = 0; r < n; r++)
                for (int64_t j = 0; j < nc; j++) s[j] += x[r * C + c0 + j];
            for (int64_t j = 0; j < nc; j++) mean[j] = n > 0 ? s[j] / (double)n : 0.0;
            for (int64_t r = 0; r < n; r++)
                for (int64_t j = 0; j < nc; j++) {
                    double d = x[r * C + c0 + j] - mean[j];
                    ss[j] += d * d;
                }
            for (int64_t j = 0; j < nc; j++) {
                double var = n > 0 ? ss[j] / (double)n : 0.0;
                rs[j] = 1.0 / sqrt(var + (double)eps);
                if (training && running_mean)
                    running_mean[c0 + j] = (float)((1.0 - momentum) * running_mean[c0 + j] + momentum * mean[j]);
                if (training && running_var) {
                    /* unbiased for the running estimate; with one value it stays the biased 0 */
                    double unb = n > 1 ? ss[j] / (double)(n - 1) : var;
                    running_var[c0 + j] = (float)((1.0 - momentum) * running_var[c0 + j] + momentum * unb);
                }
            }
        } else {
            for (int64_t j = 0; j < nc; j++) {
                mean[j] = running_mean[c0 + j];
                rs[j] = 1.0 / sqrt((double)running_var[c0 + j] + (double)eps);
            }
        }
        for (int64_t j = 0; j < nc; j++) rstd[c0 + j] = (float)rs[j];
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < nc; j++) {
                int64_t q = r * C + c0 + j;
                float h = (float)((x[q] - mean[j]) * rs[j]);
                xhat[q] = h;
                y[q] = (gamma ? gamma[c0 + j] : 1.0f) * h + (beta ? beta[c0 + j] : 0.0f);
            }
    }
}

/* dx [B, T, C] or NULL; dgamma, dbeta [C] or NULL; dy [B, T, C]; xhat [B, T, C] and rstd [C]
 * saved by the forward; gamma [C] or NULL.
 * training: y = γ·x̂ + β with x̂ = (x − μ)·rstd through the batch μ, σ², which gives
 *   dx = γ·rstd · (dy − Σdy/n − x̂ · Σ(dy·x̂)/n)   (sums over the channel's n = B·T rows)
 * eval: μ, σ² are constants, dx = dy·γ·rstd. */
void mtk_batchnorm_backward(float *restrict dx, float *restrict dgamma, float *restrict dbeta,
                            const float *restrict dy, const float *restrict xhat, const float *restrict rstd,
                            const float *restrict gamma, int64_t B, int64_t T, int64_t C, int64_t training,
                            int accumulate_dx, int accumulate_params) {
    int64_t n = B * T;
    for (int64_t c0 = 0; c0 < C; c0 += MTK_CBLK) {
        int64_t nc = mtk_min64(MTK_CBLK, C - c0);
        double sdy[MTK_CBLK] = {0}, sdyx[MTK_CBLK] = {0};
        if (dgamma || dbeta || (dx && training))
            for (int64_t r = 0; r < n; r++)
                for (int64_t j = 0; j < nc; j++) {
                    int64_t q = r * C + c0 + j;
                    sdy[j] += dy[q];
                    sdyx[j] += (double)dy[q] * (double)xhat[q];
                }
        for (int64_t j = 0; j < nc; j++) {
            if (dbeta) dbeta[c0 + j] = accumulate_params ? dbeta[c0 + j] + (float)sdy[j] : (float)sdy[j];
            if (dgamma) dgamma[c0 + j] = accumulate_params ? dgamma[c0 + j] + (float)sdyx[j] : (float)sdyx[j];
        }
        if (!dx) continue;
        float scale[MTK_CBLK], mdy[MTK_CBLK], mdyx[MTK_CBLK];
        for (int64_t j = 0; j < nc; j++) {
            scale[j] = (gamma ? gamma[c0 + j] : 1.0f) * rstd[c0 + j];
            mdy[j] = training && n > 0 ? (float)(sdy[j] / (double)n) : 0.0f;
            mdyx[j] = training && n > 0 ? (float)(sdyx[j] / (double)n) : 0.0f;
        }
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < nc; j++) {
                int64_t q = r * C + c0 + j;
                float g = scale[j] * (dy[q] - mdy[j] - xhat[q] * mdyx[j]);
                dx[q] = accumulate_dx ? dx[q] + g : g;
            }
    }
}

/* ================================ layernorm ================================
 * Per row over C (biased variance, PyTorch LayerNorm). Row statistics in double, two-pass. */

/* y [R, C]; xhat [R, C]; rstd [R]; x [R, C]; gamma, beta [C] or NULL (elementwise_affine=False) */
void mtk_layernorm_forward(float *restrict y, float *restrict xhat, float *restrict rstd, const float *restrict x,
                           const float *restrict gamma, const float *restrict beta, int64_t R, int64_t C, float eps) {
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * C;
        double s = 0.0, ss = 0.0;
        for (int64_t c = 0; c < C; c++) s += xr[c];
        double mean = s / (double)C;
        for (int64_t c = 0; c < C; c++) {
            double d = xr[c] - mean;
            ss += d * d;
        }
        double rs = 1.0 / sqrt(ss / (double)C + (double)eps);
        rstd[r] = (float)rs;
        for (int64_t c = 0; c < C; c++) {
            float h = (float)((xr[c] - mean) * rs);
            xhat[r * C + c] = h;
            y[r * C + c] = (gamma ? gamma[c] : 1.0f) * h + (beta ? beta[c] : 0.0f);
        }
    }
}

/* dx [R, C] or NULL; dgamma, dbeta [C] or NULL; dy [R, C]; xhat [R, C], rstd [R] saved by the
 * forward; gamma [C] or NULL.  With g = dy·γ (the gradient reaching x̂), per row
 *   dx = rstd · (g − mean_c(g) − x̂ · mean_c(g·x̂)). */
void mtk_layernorm_backward(float *restrict dx, float *restrict dgamma, float *restrict dbeta,
                            const float *restrict dy, const float *restrict xhat, const float *restrict rstd,
                            const float *restrict gamma, int64_t R, int64_t C, int accumulate_dx,
                            int accumulate_params) {
    if (dx)
        for (int64_t r = 0; r < R; r++) {
            const float *dyr = dy + r * C, *hr = xhat + r * C;
            double sg = 0.0, sgh = 0.0;
            for (int64_t c = 0; c < C; c++) {
                double g = (double)dyr[c] * (gamma ? gamma[c] : 1.0f);
                sg += g;
                sgh += g * hr[c];
            }
            float mg = (float)(sg / (double)C), mgh = (float)(sgh / (double)C);
            for (int64_t c = 0; c < C; c++) {
                float g = dyr[c] * (gamma ? gamma[c] : 1.0f);
                float v = rstd[r] * (g - mg - hr[c] * mgh);
                dx[r * C + c] = accumulate_dx ? dx[r * C + c] + v : v;
            }
        }
    if (dgamma) mtk_colsum(dgamma, dy, xhat, R, C, accumulate_params);
    if (dbeta) mtk_colsum(dbeta, dy, NULL, R, C, accumulate_params);
}

/* ================================ pooling over time ================================ */

/* y [B, C]; argmax [B, C] (time index as float, kind 2 only; may be NULL when no backward
 * follows); x [B, T, C]; kind 0 last step, 1 mean, 2 max (first of equal maxima) */
void mtk_pool_forward(float *restrict y, float *restrict argmax, const float *restrict x, int64_t B, int64_t T,
                      int64_t C, int kind) {
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * T * C;
        float *yb = y + b * C;
        switch (kind) {
        case 0: memcpy(yb, xb + (T - 1) * C, (size_t)C * sizeof(float)); break;
        case 1:
            for (int64_t c0 = 0; c0 < C; c0 += MTK_CBLK) {
                int64_t nc = mtk_min64(MTK_CBLK, C - c0);
                double s[MTK_CBLK] = {0};
                for (int64_t t = 0; t < T; t++)
                    for (int64_t j = 0; j < nc; j++) s[j] += xb[t * C + c0 + j];
                for (int64_t j = 0; j < nc; j++) yb[c0 + j] = (float)(s[j] / (double)T);
            }
            break;
        default:
            for (int64_t c = 0; c < C; c++) {
                yb[c] = xb[c];
                if (argmax) argmax[b * C + c] = 0.0f;
            }
            /* strict > keeps the earliest of equal maxima */
            for (int64_t t = 1; t < T; t++)
                for (int64_t c = 0; c < C; c++)
                    if (xb[t * C + c] > yb[c]) {
                        yb[c] = xb[t * C + c];
                        if (argmax) argmax[b * C + c] = (float)t;
                    }
            break;
        }
    }
}

/* dx [B, T, C]; dy [B, C]; argmax [B, C] from the forward (kind 2; unused otherwise, may be NULL) */
void mtk_pool_backward(float *restrict dx, const float *restrict dy, const float *restrict argmax, int64_t B,
                       int64_t T, int64_t C, int kind, int accumulate_dx) {
    if (!accumulate_dx) memset(dx, 0, (size_t)(B * T * C) * sizeof(float));
    float inv_t = 1.0f / (float)T;
    for (int64_t b = 0; b < B; b++) {
        float *dxb = dx + b * T * C;
        const float *dyb = dy + b * C;
        switch (kind) {
        case 0:
            for (int64_t c = 0; c < C; c++) dxb[(T - 1) * C + c] += dyb[c];
            break;
        case 1:
            for (int64_t t = 0; t < T; t++)
                for (int64_t c = 0; c < C; c++) dxb[t * C + c] += dyb[c] * inv_t;
            break;
        default:
            for (int64_t c = 0; c < C; c++) dxb[(int64_t)argmax[b * C + c] * C + c] += dyb[c];
            break;
        }
    }
}

/* ================================ elementwise ================================
 * No restrict: an in-place residual (y == a) is legitimate. */

/* y [n] = a [n] + b [n] */
void mtk_add_forward(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* dst [n] (+)= src [n] */
void mtk_copy(float *dst, const float *src, int64_t n, int accumulate) {
    if (accumulate)
        for (int64_t i = 0; i < n; i++) dst[i] += src[i];
    else if (dst != src)
        memmove(dst, src, (size_t)n * sizeof(float));
}

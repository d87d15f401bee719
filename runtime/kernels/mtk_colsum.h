/* Column sums over many rows (bias and norm-parameter gradients), shared by the kernels.
 *
 * Summed in double so a gradient does not depend on the batch size beyond float rounding, and a
 * block of columns at a time so every row is read along memory: the plain column-at-a-time loop
 * strides a whole row per element, which for the LSTM's and attention's 7,680 × 1,024 gradients
 * was a cache miss per add. */
#ifndef MTK_COLSUM_H
#define MTK_COLSUM_H

#include <stddef.h>
#include <stdint.h>

/* Channels per block of double accumulators: 64 doubles stay in registers/L1 and each row read
 * is 256 contiguous bytes. */
enum { MTK_CBLK = 64 };

static inline int64_t mtk_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* out [cols] (+)= Σ_r a[r, c] · (b ? b[r, c] : 1), summed in double; rows lda floats apart in
 * both a and b. */
static inline void mtk_colsum_ld(float *restrict out, const float *restrict a, const float *restrict b, int64_t rows,
                                 int64_t cols, int64_t lda, int accumulate) {
    for (int64_t c0 = 0; c0 < cols; c0 += MTK_CBLK) {
        int64_t nc = mtk_min64(MTK_CBLK, cols - c0);
        double s[MTK_CBLK] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const float *ar = a + r * lda + c0;
            if (b) {
                const float *br = b + r * lda + c0;
                for (int64_t j = 0; j < nc; j++) s[j] += (double)ar[j] * (double)br[j];
            } else {
                for (int64_t j = 0; j < nc; j++) s[j] += ar[j];
            }
        }
        for (int64_t j = 0; j < nc; j++) out[c0 + j] = accumulate ? out[c0 + j] + (float)s[j] : (float)s[j];
    }
}

/* the same over contiguous rows: a, b [rows, cols]; conv db, layernorm dgamma/dbeta, LSTM and
 * attention biases */
static inline void mtk_colsum(float *restrict out, const float *restrict a, const float *restrict b, int64_t rows,
                              int64_t cols, int accumulate) {
    mtk_colsum_ld(out, a, b, rows, cols, cols, accumulate);
}

#endif

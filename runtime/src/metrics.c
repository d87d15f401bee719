/* Metrics over a whole data set: RMSE, MAE, the NASA/PHM08 score, accuracy, macro-F1 (as
 * scikit-learn's f1_score(average='macro')), the confusion matrix and row-wise argmax.
 *
 * Everything is accumulated in double over all samples; callers never average per batch.
 * An empty set gives NaN for the mean-based metrics (there is no meaningful value) and 0 for
 * the summed NASA score. Labels outside 0..k-1 are a caller bug; they are counted as wrong and
 * left out of the confusion matrix rather than written out of bounds.
 */
#include "mtl_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

double mtl_rmse(const float *pred, const float *truth, int64_t n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)truth[i];
        s += d * d;
    }
    return sqrt(s / (double)n);
}

double mtl_mae(const float *pred, const float *truth, int64_t n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)pred[i] - (double)truth[i]);
    return s / (double)n;
}

double mtl_nasa_score(const float *pred, const float *truth, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)truth[i];
        /* Late predictions (d > 0) are penalised harder than early ones: 10 vs 13. */
        s += d < 0 ? exp(-d / 13.0) - 1.0 : exp(d / 10.0) - 1.0;
    }
    return s;
}

/* A float label as a class index; -1 if it is not an exact non-negative integer. */
static int64_t label_of(float v) {
    if (!(v >= 0) || v != floorf(v) || v > 2147483647.0f) return -1;
    return (int64_t)v;
}

double mtl_accuracy(const int32_t *pred, const float *truth, int64_t n) {
    if (n <= 0) return NAN;
    int64_t hit = 0;
    for (int64_t i = 0; i < n; i++) hit += label_of(truth[i]) == (int64_t)pred[i];
    return (double)hit / (double)n;
}

double mtl_macro_f1(const int32_t *pred, const float *truth, int64_t n, int k, int64_t *confusion) {
    if (k <= 0) return NAN;
    if (confusion) memset(confusion, 0, (size_t)k * (size_t)k * sizeof *confusion);
    int64_t *tp = calloc((size_t)k * 3, sizeof *tp);
    if (!tp) return NAN;
    int64_t *fp = tp + k, *fn = tp + 2 * k;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = label_of(truth[i]), p = pred[i];
        bool t_ok = t >= 0 && t < k, p_ok = p >= 0 && p < k;
        if (t_ok && p_ok && confusion) confusion[t * k + p]++;
        if (t_ok && p_ok && t == p) {
            tp[t]++;
        } else {
            if (t_ok) fn[t]++;
            if (p_ok) fp[p]++;
        }
    }
    /* Classes with neither support nor predictions are left out, as scikit-learn does when
     * the labels are inferred from the data. */
    double sum = 0;
    int present = 0;
    for (int c = 0; c < k; c++) {
        int64_t denom = 2 * tp[c] + fp[c] + fn[c];
        if (denom == 0) continue;
        sum += 2.0 * (double)tp[c] / (double)denom;
        present++;
    }
    free(tp);
    return present > 0 ? sum / present : NAN;
}

void mtl_argmax_rows(int32_t *out, const float *logits, int64_t n, int k) {
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * k;
        int32_t best = 0;
        /* Strict ">" keeps the lowest index on ties; a NaN wins, as in torch.argmax. */
        for (int j = 1; j < k && !isnan(row[best]); j++)
            if (row[j] > row[best] || isnan(row[j])) best = j;
        out[i] = best;
    }
}

/* Metrics over a whole data set (never averaged per batch). */
#ifndef MTL_METRICS_H
#define MTL_METRICS_H

#include <stdint.h>

double mtl_rmse(const float *pred, const float *truth, int64_t n);
double mtl_mae(const float *pred, const float *truth, int64_t n);
/* NASA / PHM08 score, summed: d = pred - truth; exp(-d/13) - 1 if d < 0, exp(d/10) - 1 otherwise. */
double mtl_nasa_score(const float *pred, const float *truth, int64_t n);
/* labels as floats 0..k-1; confusion[k*k] row = truth, column = prediction (may be NULL). */
double mtl_accuracy(const int32_t *pred, const float *truth, int64_t n);
/* Macro-F1 as scikit-learn's f1_score(average='macro'): mean over classes present in truth or
 * prediction of per-class F1 (a class with no support and no predictions is left out). */
double mtl_macro_f1(const int32_t *pred, const float *truth, int64_t n, int k, int64_t *confusion);
/* argmax over each row of logits [n, k]; ties take the lowest index (as torch.argmax). */
void mtl_argmax_rows(int32_t *out, const float *logits, int64_t n, int k);

#endif

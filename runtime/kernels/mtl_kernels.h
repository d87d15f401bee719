/* Forward/backward kernels that generated code calls with constant shapes.
 *
 * These are plain C. The build compiles them twice: natively (libmtlkernels.a, for unit tests
 * and the reference checks) and to LLVM bitcode that mtlc embeds, links into every generated
 * module and inlines, so that constant sizes and activation kinds fold away.
 * Matrix products go to BLAS (cblas_sgemm), except those of dense layers with small weights
 * (small_gemm.h says which), which go to the mtk_small_gemm_* kernels below.
 *
 * Dimension legend:
 *   B  samples in the batch        N  features of a layer's output
 *   K  features of a layer's input C  classes of a classification target
 *   n  elements of an elementwise pass (B*N)
 * Argument order: outputs, then saved state, then inputs, then parameters, then sizes.
 * Backward kernels with an `accumulate` flag add into their output when it is nonzero (a value
 * used by several consumers, e.g. the trunk output read by every head) and overwrite otherwise.
 */
#ifndef MTL_KERNELS_H
#define MTL_KERNELS_H

#include <stdint.h>

/* ---- activations (per element) ---- */

/* act(x) for MtlAct kind `act`. */
float mtk_act(float x, int act);
/* d act / dx, given the pre-activation x and the output y = act(x). */
float mtk_act_grad(float x, float y, int act);
/* 1 when the activation's derivative needs its input (not only its output). */
int mtk_act_needs_input(int act);

/* ---- dense epilogue: y = act(y + b) in place, after y = x·Wᵀ from sgemm ---- */

/* y [B,N] in/out; z_save [B,N] pre-activation, written only when non-NULL; b [N] or NULL. */
void mtk_bias_act_forward(float *y, float *z_save, const float *b, int64_t B, int64_t N, int act);
/* dz [B,N] = dy ⊙ act'(z); db [N] (+)= Σ_b dz  (db may be NULL: no bias or frozen).
 * y [B,N] the saved output; z [B,N] the saved pre-activation or NULL when act does not need it. */
void mtk_bias_act_backward(float *dz, float *db, const float *dy, const float *y, const float *z,
                           int64_t B, int64_t N, int act, int accumulate_db);

/* ---- matrix products of dense layers with small weights (small_gemm.c, small_gemm.h) ----
 * W [N,K]; M rows; each adds into its output when `accumulate` is nonzero. */

/* y [M,N] = act(x [M,K] · Wᵀ + b): the whole dense layer (b [N] or NULL); z_save [M,N] gets the
 * pre-activation when non-NULL (as mtk_bias_act_forward) */
void mtk_small_dense_forward(float *y, float *z_save, const float *x, const float *w, const float *b, int64_t M,
                             int64_t N, int64_t K, int act);
/* dx [M,K] (+)= dz [M,N] · W */
void mtk_small_gemm_nn(float *dx, const float *dz, const float *w, int64_t M, int64_t N, int64_t K, int accumulate);
/* dW [N,K] (+)= dzᵀ · x, dz [M,N], x [M,K] */
void mtk_small_gemm_tn(float *dw, const float *dz, const float *x, int64_t M, int64_t N, int64_t K, int accumulate);

/* ---- standalone activation ---- */

/* y [n] = act(x [n]) */
void mtk_act_forward(float *y, const float *x, int64_t n, int act);
/* dx [n] (+)= dy ⊙ act'(x) ; y is act(x) */
void mtk_act_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, int act,
                      int accumulate);

/* ---- dropout (inverted): keep with probability 1-p, scale kept values by 1/(1-p) ----
 * The mask is not stored: element i of layer `site` is kept when a hash of (seed, site, i) is
 * at or above p, so backward recomputes exactly the forward mask. */
int mtk_dropout_keep(uint64_t seed, uint32_t site, uint64_t i, float p);
/* y [n] = training ? x ⊙ mask / (1-p) : x */
void mtk_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t seed, uint32_t site,
                         int64_t training);
/* dx [n] (+)= dy ⊙ mask / (1-p) */
void mtk_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t seed, uint32_t site,
                          int64_t training, int accumulate);

/* ---- losses: mean over the batch (and over output elements), PyTorch reduction='mean' ----
 * Backward kernels write w · dL/dpred, added into dpred when `accumulate` is nonzero. */

/* loss = mean((pred - t)^2) over B*N; pred, t [B,N] */
void mtk_mse_forward(float *loss, const float *pred, const float *t, int64_t B, int64_t N);
/* dpred [B,N] = w · 2 (pred - t) / (B N) */
void mtk_mse_backward(float *dpred, const float *pred, const float *t, float w, int64_t B, int64_t N,
                      int accumulate);
/* AMNL's failure-biased MSE (`loss mse(amnl = R)`), one value per sample: pred, t [B].
 * w_i = 1 + clip(1 - t_i / cap, 0, 1) in [1, 2] (2 at end of life, 1 from the cap up);
 * loss = (1/B) Σ_i w_i (pred_i - t_i)^2, a plain mean over the batch, NOT divided by Σ w. */
void mtk_mse_amnl_forward(float *loss, const float *pred, const float *t, float cap, int64_t B);
/* dpred [B] = w · 2 w_i (pred_i - t_i) / B   (w the task weight, w_i the AMNL weight) */
void mtk_mse_amnl_backward(float *dpred, const float *pred, const float *t, float cap, float w, int64_t B,
                           int accumulate);
/* loss = mean |pred - t| (PyTorch L1Loss; gradient sign(0) = 0) */
void mtk_mae_forward(float *loss, const float *pred, const float *t, int64_t B, int64_t N);
void mtk_mae_backward(float *dpred, const float *pred, const float *t, float w, int64_t B, int64_t N,
                      int accumulate);
/* PyTorch HuberLoss: 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta) */
void mtk_huber_forward(float *loss, const float *pred, const float *t, float delta, int64_t B, int64_t N);
void mtk_huber_backward(float *dpred, const float *pred, const float *t, float delta, float w, int64_t B,
                        int64_t N, int accumulate);
/* loss = mean_b (logsumexp(z_b) - z_b[label_b]); z [B,C] logits, labels [B] as floats */
void mtk_cross_entropy_forward(float *loss, const float *z, const float *labels, int64_t B, int64_t C);
/* dz [B,C] = w (softmax(z_b) - onehot(label_b)) / B */
void mtk_cross_entropy_backward(float *dz, const float *z, const float *labels, float w, int64_t B,
                                int64_t C, int accumulate);

/* db [N] (+)= Σ_b dy[b, :]  (bias gradient of a dense layer without activation) */
void mtk_bias_backward(float *db, const float *dy, int64_t B, int64_t N, int accumulate);

#endif

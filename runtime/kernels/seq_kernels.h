/* Forward/backward kernels for sequence layers (windows [T, C] per sample, row-major).
 *
 * Same contract as mtl_kernels.h: generated code calls these with constant sizes; they are
 * compiled natively (tests) and to bitcode (inlined into models). They may call cblas_sgemm
 * for their matrix products. No kernel allocates: whatever it needs beyond its inputs and
 * outputs comes in `scratch`, whose size is given by the matching *_scratch() function as
 * per_sample * B + fixed floats (callers size one shared scratch area for the largest op).
 *
 * Dimension legend:
 *   B batch   T time steps (input)   To time steps (output)   C, Cin, Cout channels
 *   K conv kernel width   S stride   P padding   H LSTM hidden size   G = 4H gates
 *   E embedding width   NH attention heads   D = E / NH head width   R rows = B·T
 * Argument order: outputs, then saved state, then inputs, then parameters, then sizes, then
 * flags. Backward kernels write parameter gradients (overwrite, or add when accumulate_params
 * is nonzero) and input gradients (overwrite, or add when accumulate_dx is nonzero); any
 * gradient pointer may be NULL when it is not wanted (frozen parameters, the model input).
 * Semantics follow PyTorch exactly (Conv1d cross-correlation, BatchNorm1d, LayerNorm, LSTM
 * gate order i, f, g, o with two bias vectors, MultiheadAttention with batch_first=True).
 */
#ifndef MTL_SEQ_KERNELS_H
#define MTL_SEQ_KERNELS_H

#include <stdint.h>

typedef struct MtkScratch {
    int64_t per_sample; /* floats per sample */
    int64_t fixed;      /* floats independent of B */
} MtkScratch;

/* ---- conv1d over time ----
 * x [B, T, Cin] → y [B, To, Cout], To = (T + 2P − K) / S + 1, zero padding;
 * w [Cout, Cin, K] (PyTorch layout), b [Cout] or NULL.
 * y[b, t, o] = b[o] + Σ_{i,k} w[o, i, k] · x[b, t·S + k − P, i] */
MtkScratch mtk_conv1d_scratch(int64_t T, int64_t Cin, int64_t Cout, int64_t K, int64_t S, int64_t P);
void mtk_conv1d_forward(float *y, float *scratch, const float *x, const float *w, const float *b, int64_t B,
                        int64_t T, int64_t Cin, int64_t Cout, int64_t K, int64_t S, int64_t P);
void mtk_conv1d_backward(float *dx, float *dw, float *db, float *scratch, const float *dy, const float *x,
                         const float *w, int64_t B, int64_t T, int64_t Cin, int64_t Cout, int64_t K, int64_t S,
                         int64_t P, int accumulate_dx, int accumulate_params);

/* ---- batchnorm over the last dim, statistics over B·T ----
 * training: mean and biased variance of the batch normalise; running_mean/var (if non-NULL)
 *   ← (1 − momentum)·running + momentum·batch (running_var uses the unbiased variance, n/(n−1)).
 * eval: running statistics normalise.
 * Saved for backward: xhat [B, T, C], rstd [C] = 1/sqrt(var + eps) of whichever statistics were used. */
void mtk_batchnorm_forward(float *y, float *xhat, float *rstd, float *running_mean, float *running_var,
                           const float *x, const float *gamma, const float *beta, int64_t B, int64_t T, int64_t C,
                           float eps, float momentum, int64_t training);
/* training: the full batch-statistics gradient; eval: dx = dy · gamma · rstd */
void mtk_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *xhat,
                            const float *rstd, const float *gamma, int64_t B, int64_t T, int64_t C,
                            int64_t training, int accumulate_dx, int accumulate_params);

/* ---- layernorm over the last dim, R = B·T rows ----
 * Saved: xhat [R, C], rstd [R]. */
void mtk_layernorm_forward(float *y, float *xhat, float *rstd, const float *x, const float *gamma,
                           const float *beta, int64_t R, int64_t C, float eps);
void mtk_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *xhat,
                            const float *rstd, const float *gamma, int64_t R, int64_t C, int accumulate_dx,
                            int accumulate_params);

/* ---- LSTM, one layer, one direction ----
 * x [B, T, I]; w_ih [G, I], w_hh [G, H], b_ih [G], b_hh [G] (G = 4H, gates i, f, g, o).
 * Writes h_t into y [B, T, Dout] at columns [col, col + H) (Dout = H, or 2H when bidirectional:
 * col 0 forward, col H reverse); reverse = 1 runs t = T−1 … 0. h_0 = c_0 = 0.
 * Saved: gates [B, T, G] after their nonlinearities (σ, σ, tanh, σ), cell [B, T, H]. */
MtkScratch mtk_lstm_scratch(int64_t T, int64_t I, int64_t H);
void mtk_lstm_forward(float *y, float *gates, float *cell, float *scratch, const float *x, const float *w_ih,
                      const float *w_hh, const float *b_ih, const float *b_hh, int64_t B, int64_t T, int64_t I,
                      int64_t H, int64_t Dout, int64_t col, int reverse);
/* dy [B, T, Dout] (its columns [col, col + H) are this direction's); y is the forward output
 * (h_{t−1} is read from it). db_ih and db_hh receive the same values (both biases add alike). */
void mtk_lstm_backward(float *dx, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *scratch,
                       const float *dy, const float *y, const float *gates, const float *cell, const float *x,
                       const float *w_ih, const float *w_hh, int64_t B, int64_t T, int64_t I, int64_t H,
                       int64_t Dout, int64_t col, int reverse, int accumulate_dx, int accumulate_params);
/* A bidirectional layer (Dout = 2H: direction 0 forward in columns [0, H), direction 1 reverse
 * in [H, 2H)): the same results as the one-direction calls, the two directions run at the same
 * time on two threads when OpenBLAS has two or more (MTL_LSTM_PARALLEL=0: one after the other).
 * Backward scratch: mtk_lstm_bidir_scratch; dx (+)= the reverse direction's part, then += the
 * forward direction's, as two one-direction calls in that order would. */
MtkScratch mtk_lstm_bidir_scratch(int64_t T, int64_t I, int64_t H);
void mtk_lstm_forward_bidir(float *y, float *gates0, float *gates1, float *cell0, float *cell1, const float *x,
                            const float *w_ih0, const float *w_hh0, const float *b_ih0, const float *b_hh0,
                            const float *w_ih1, const float *w_hh1, const float *b_ih1, const float *b_hh1,
                            int64_t B, int64_t T, int64_t I, int64_t H);
void mtk_lstm_backward_bidir(float *dx, float *dw_ih0, float *dw_hh0, float *db_ih0, float *db_hh0, float *dw_ih1,
                             float *dw_hh1, float *db_ih1, float *db_hh1, float *scratch, const float *dy,
                             const float *y, const float *gates0, const float *gates1, const float *cell0,
                             const float *cell1, const float *x, const float *w_ih0, const float *w_hh0,
                             const float *w_ih1, const float *w_hh1, int64_t B, int64_t T, int64_t I, int64_t H,
                             int accumulate_dx, int accumulate_params);

/* ---- multi-head self-attention (PyTorch nn.MultiheadAttention, batch_first, q = k = v = x) ----
 * qkv = x·w_inᵀ + b_in  [B, T, 3E] (q | k | v);  per head h: S = q_h k_hᵀ / sqrt(D),
 * P = softmax(S) over keys, P' = dropout(P) (training only; the mask is a hash of
 * (seed, site, b, h, i, j) like mtk_dropout_keep), o_h = P' v_h → o [B, T, E];
 * y = o·w_outᵀ + b_out.  Saved: qkv [B, T, 3E], probs [B, NH, T, T] (P before dropout), o [B, T, E]. */
MtkScratch mtk_attention_scratch(int64_t T, int64_t E, int64_t NH);
void mtk_attention_forward(float *y, float *qkv, float *probs, float *o, float *scratch, const float *x,
                           const float *w_in, const float *b_in, const float *w_out, const float *b_out, int64_t B,
                           int64_t T, int64_t E, int64_t NH, float p, uint64_t seed, uint32_t site,
                           int64_t training);
void mtk_attention_backward(float *dx, float *dw_in, float *db_in, float *dw_out, float *db_out, float *scratch,
                            const float *dy, const float *qkv, const float *probs, const float *o, const float *x,
                            const float *w_in, const float *w_out, int64_t B, int64_t T, int64_t E, int64_t NH,
                            float p, uint64_t seed, uint32_t site, int64_t training, int accumulate_dx,
                            int accumulate_params);

/* The same attention when only the last time step of its output is used (the compiler's
 * last-step pruning, compiler/ir/last_step.c): queries, scores, softmax and the output projection
 * for row T − 1 only; keys and values for every row. Same arguments and scratch; saved tensors
 * y [B, E], qkv [B, T, 3E] (q columns valid at row T − 1 only), probs [B, NH, T], o [B, E];
 * dy [B, E]. Row T − 1 of the full kernel's result, dropout masks included. */
void mtk_attention_last_forward(float *y, float *qkv, float *probs, float *o, float *scratch, const float *x,
                                const float *w_in, const float *b_in, const float *w_out, const float *b_out,
                                int64_t B, int64_t T, int64_t E, int64_t NH, float p, uint64_t seed,
                                uint32_t site, int64_t training);
void mtk_attention_last_backward(float *dx, float *dw_in, float *db_in, float *dw_out, float *db_out,
                                 float *scratch, const float *dy, const float *qkv, const float *probs,
                                 const float *o, const float *x, const float *w_in, const float *w_out, int64_t B,
                                 int64_t T, int64_t E, int64_t NH, float p, uint64_t seed, uint32_t site,
                                 int64_t training, int accumulate_dx, int accumulate_params);

/* ---- pooling over time: x [B, T, C] → y [B, C] ----
 * kind 0 last step, 1 mean, 2 max (saved argmax [B, C] as floats; ties take the first). */
void mtk_pool_forward(float *y, float *argmax, const float *x, int64_t B, int64_t T, int64_t C, int kind);
void mtk_pool_backward(float *dx, const float *dy, const float *argmax, int64_t B, int64_t T, int64_t C, int kind,
                       int accumulate_dx);

/* ---- elementwise helpers ---- */
/* y [n] = a + b (residual) */
void mtk_add_forward(float *y, const float *a, const float *b, int64_t n);
/* dst [n] (+)= src (gradient of add, flatten, identity) */
void mtk_copy(float *dst, const float *src, int64_t n, int accumulate);

#endif

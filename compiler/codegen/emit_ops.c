/* One emitter per IR op (the rows of compiler/ir/ir_ops.def): each turns a node into calls —
 * cblas_sgemm for matrix products, a kernel from runtime/kernels for everything else — with
 * every size and kind passed as a constant, so that after inlining LLVM specialises the loops.
 * Only the batch size B is a run-time value.
 */
#include "cg_internal.h"

#include "small_gemm.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static LLVMValueRef tp(CgCtx *c, int t) { return t >= 0 ? cg_tensor_ptr(c, t) : cg_null(c); }
static int64_t feat(CgCtx *c, int t) { return c->g->t[t].size; }

/* A dense layer on [T, K] samples works on B·T rows: rows_of(w-shaped operand) gives T. */
static LLVMValueRef dense_rows(CgCtx *c, int x, int64_t K) { return cg_mul(c, c->batch, feat(c, x) / K); }

/* A dense layer's product with weight [N, K] in the given form goes to the small-matrix kernels
 * (runtime/kernels/small_gemm.c) when the weight is small enough, else to BLAS.
 * MTLC_SMALL_GEMM=0 in mtlc's environment sends every product to BLAS (for benchmarks). */
static bool small_gemm(int64_t N, int64_t K, int form) {
    const char *env = getenv("MTLC_SMALL_GEMM");
    if (env && !strcmp(env, "0")) return false;
    return mtk_small_gemm_fits(N, K, form);
}

static void call_small_gemm(CgCtx *c, const char *kernel, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                            LLVMValueRef M, int64_t N, int64_t K, int accumulate) {
    LLVMValueRef args[] = {out, a, b, M, cg_i64(c, N), cg_i64(c, K), cg_i32(c, accumulate)};
    cg_call_specialised(c, kernel, args, 7);
}

/* y [B·T,N] = x [B·T,K] · Wᵀ, then y = act(y + b) in one pass over y (the fused epilogue) */
void cg_emit_dense(CgCtx *c, const IrNode *n) {
    int64_t N = c->g->t[n->in[1]].shape.dim[0], K = c->g->t[n->in[1]].shape.dim[1];
    LLVMValueRef y = tp(c, n->out[0]), M = dense_rows(c, n->in[0], K);
    LLVMValueRef M32 = LLVMBuildTrunc(c->b, M, c->t_i32, "");
    if (small_gemm(N, K, MTK_SG_NT)) { /* product and epilogue in one kernel */
        LLVMValueRef args[] = {y, tp(c, n->out[1]), tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), M,
                               cg_i64(c, N), cg_i64(c, K), cg_i32(c, n->act)};
        cg_call_specialised(c, "mtk_small_dense_forward", args, 9);
        return;
    }
    cg_sgemm(c, 0, 1, M32, cg_i32(c, N), cg_i32(c, K), tp(c, n->in[0]), cg_i32(c, K), tp(c, n->in[1]), cg_i32(c, K),
             0.0f, y, cg_i32(c, N));
    if (n->in[2] < 0 && n->act == MTL_ACT_IDENTITY && n->out[1] < 0) return;
    LLVMValueRef args[] = {y, tp(c, n->out[1]), tp(c, n->in[2]), M, cg_i64(c, N), cg_i32(c, n->act)};
    cg_call(c, "mtk_bias_act_forward", args, 6);
}

void cg_emit_act(CgCtx *c, const IrNode *n) {
    LLVMValueRef cnt = LLVMBuildMul(c->b, c->batch, cg_i64(c, feat(c, n->out[0])), "n");
    LLVMValueRef args[] = {tp(c, n->out[0]), tp(c, n->in[0]), cnt, cg_i32(c, n->act)};
    cg_call(c, "mtk_act_forward", args, 4);
}

void cg_emit_dropout(CgCtx *c, const IrNode *n) {
    LLVMValueRef cnt = LLVMBuildMul(c->b, c->batch, cg_i64(c, feat(c, n->out[0])), "n");
    LLVMValueRef args[] = {tp(c, n->out[0]), tp(c, n->in[0]), cnt, cg_f32(c, n->p), c->seed,
                           cg_i32(c, n->site), c->training};
    cg_call(c, "mtk_dropout_forward", args, 7);
}

/* width of the prediction a loss reads: logits for cross-entropy, values otherwise */
static int64_t loss_width(CgCtx *c, const IrNode *n) { return feat(c, n->in[0]); }

void cg_emit_loss(CgCtx *c, const IrNode *n) {
    LLVMValueRef out = tp(c, n->out[0]), pred = tp(c, n->in[0]), tgt = tp(c, n->in[1]);
    LLVMValueRef W = cg_i64(c, loss_width(c, n));
    switch (n->loss) {
    case MTL_LOSS_MSE: {
        /* AMNL's weighting is its own kernel (sema allows it on width-1 targets only), so plain
         * mse keeps its kernel untouched */
        if (n->amnl_cap > 0) {
            LLVMValueRef a[] = {out, pred, tgt, cg_f32(c, n->amnl_cap), c->batch};
            cg_call(c, "mtk_mse_amnl_forward", a, 5);
            break;
        }
        LLVMValueRef a[] = {out, pred, tgt, c->batch, W};
        cg_call(c, "mtk_mse_forward", a, 5);
        break;
    }
    case MTL_LOSS_MAE: {
        LLVMValueRef a[] = {out, pred, tgt, c->batch, W};
        cg_call(c, "mtk_mae_forward", a, 5);
        break;
    }
    case MTL_LOSS_HUBER: {
        LLVMValueRef a[] = {out, pred, tgt, cg_f32(c, n->delta), c->batch, W};
        cg_call(c, "mtk_huber_forward", a, 6);
        break;
    }
    case MTL_LOSS_CROSS_ENTROPY: {
        LLVMValueRef a[] = {out, pred, tgt, c->batch, W};
        cg_call(c, "mtk_cross_entropy_forward", a, 5);
        break;
    }
    }
}

void cg_emit_loss_bwd(CgCtx *c, const IrNode *n) {
    LLVMValueRef d = tp(c, n->out[0]), pred = tp(c, n->in[0]), tgt = tp(c, n->in[1]);
    LLVMValueRef W = cg_i64(c, loss_width(c, n));
    LLVMValueRef wp = LLVMBuildGEP2(c->b, c->t_f32, c->task_weights, (LLVMValueRef[]){cg_i64(c, n->task)}, 1, "");
    LLVMValueRef w = LLVMBuildLoad2(c->b, c->t_f32, wp, "w");
    LLVMValueRef acc = cg_i32(c, n->accumulate);
    switch (n->loss) {
    case MTL_LOSS_MSE: {
        if (n->amnl_cap > 0) {
            LLVMValueRef a[] = {d, pred, tgt, cg_f32(c, n->amnl_cap), w, c->batch, acc};
            cg_call(c, "mtk_mse_amnl_backward", a, 7);
            break;
        }
        LLVMValueRef a[] = {d, pred, tgt, w, c->batch, W, acc};
        cg_call(c, "mtk_mse_backward", a, 7);
        break;
    }
    case MTL_LOSS_MAE: {
        LLVMValueRef a[] = {d, pred, tgt, w, c->batch, W, acc};
        cg_call(c, "mtk_mae_backward", a, 7);
        break;
    }
    case MTL_LOSS_HUBER: {
        LLVMValueRef a[] = {d, pred, tgt, cg_f32(c, n->delta), w, c->batch, W, acc};
        cg_call(c, "mtk_huber_backward", a, 8);
        break;
    }
    case MTL_LOSS_CROSS_ENTROPY: {
        LLVMValueRef a[] = {d, pred, tgt, w, c->batch, W, acc};
        cg_call(c, "mtk_cross_entropy_backward", a, 7);
        break;
    }
    }
}

/* the last dim of a gradient tensor that mirrors a dense output [.., N] */
static int64_t last_dim(CgCtx *c, int t) {
    const IrTensor *x = &c->g->t[t];
    return x->shape.rank ? x->shape.dim[x->shape.rank - 1] : 1;
}

void cg_emit_dense_epi_bwd(CgCtx *c, const IrNode *n) {
    int64_t N = last_dim(c, n->in[0]);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]),
                        dense_rows(c, n->in[0], N), cg_i64(c, N), cg_i32(c, n->act), cg_i32(c, n->accumulate)};
    cg_call(c, "mtk_bias_act_backward", a, 9);
}

void cg_emit_bias_bwd(CgCtx *c, const IrNode *n) {
    int64_t N = last_dim(c, n->in[0]);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), dense_rows(c, n->in[0], N), cg_i64(c, N),
                        cg_i32(c, n->accumulate)};
    cg_call(c, "mtk_bias_backward", a, 5);
}

/* dW [N,K] (+)= dzᵀ [N,B·T] · x [B·T,K] */
void cg_emit_matmul_dw(CgCtx *c, const IrNode *n) {
    const IrTensor *dw = &c->g->t[n->out[0]];
    int64_t N = dw->shape.dim[0], K = dw->shape.dim[1];
    if (small_gemm(N, K, MTK_SG_TN)) {
        call_small_gemm(c, "mtk_small_gemm_tn", tp(c, n->out[0]), tp(c, n->in[0]), tp(c, n->in[1]),
                        dense_rows(c, n->in[1], K), N, K, n->accumulate);
        return;
    }
    LLVMValueRef M32 = LLVMBuildTrunc(c->b, dense_rows(c, n->in[1], K), c->t_i32, "");
    cg_sgemm(c, 1, 0, cg_i32(c, N), cg_i32(c, K), M32, tp(c, n->in[0]), cg_i32(c, N), tp(c, n->in[1]), cg_i32(c, K),
             n->accumulate ? 1.0f : 0.0f, tp(c, n->out[0]), cg_i32(c, K));
}

/* dx [B·T,K] (+)= dz [B·T,N] · W [N,K] */
void cg_emit_matmul_dx(CgCtx *c, const IrNode *n) {
    const IrTensor *w = &c->g->t[n->in[1]];
    int64_t N = w->shape.dim[0], K = w->shape.dim[1];
    if (small_gemm(N, K, MTK_SG_NN)) {
        call_small_gemm(c, "mtk_small_gemm_nn", tp(c, n->out[0]), tp(c, n->in[0]), tp(c, n->in[1]),
                        dense_rows(c, n->in[0], N), N, K, n->accumulate);
        return;
    }
    LLVMValueRef M32 = LLVMBuildTrunc(c->b, dense_rows(c, n->in[0], N), c->t_i32, "");
    cg_sgemm(c, 0, 0, M32, cg_i32(c, K), cg_i32(c, N), tp(c, n->in[0]), cg_i32(c, N), tp(c, n->in[1]), cg_i32(c, K),
             n->accumulate ? 1.0f : 0.0f, tp(c, n->out[0]), cg_i32(c, K));
}

void cg_emit_act_bwd(CgCtx *c, const IrNode *n) {
    LLVMValueRef cnt = LLVMBuildMul(c->b, c->batch, cg_i64(c, feat(c, n->out[0])), "n");
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), cnt,
                        cg_i32(c, n->act), cg_i32(c, n->accumulate)};
    cg_call(c, "mtk_act_backward", a, 7);
}

void cg_emit_dropout_bwd(CgCtx *c, const IrNode *n) {
    LLVMValueRef cnt = LLVMBuildMul(c->b, c->batch, cg_i64(c, feat(c, n->out[0])), "n");
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), cnt, cg_f32(c, n->p), c->seed,
                        cg_i32(c, n->site), c->training, cg_i32(c, n->accumulate)};
    cg_call(c, "mtk_dropout_backward", a, 8);
}

/* ---- sequence layers: one kernel call each (runtime/kernels/seq_kernels.h) ---- */

static LLVMValueRef i64c(CgCtx *c, int64_t v) { return cg_i64(c, v); }
static LLVMValueRef i32c(CgCtx *c, int64_t v) { return cg_i32(c, v); }

void cg_emit_conv1d(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[0]], *w = &c->g->t[n->in[1]];
    LLVMValueRef a[] = {tp(c, n->out[0]), c->scratch, tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), c->batch,
                        i64c(c, x->shape.dim[0]), i64c(c, x->shape.dim[1]), i64c(c, w->shape.dim[0]),
                        i64c(c, n->kernel), i64c(c, n->stride), i64c(c, n->padding)};
    cg_call(c, "mtk_conv1d_forward", a, 12);
}

void cg_emit_conv1d_bwd(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[1]], *w = &c->g->t[n->in[2]];
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), c->scratch, tp(c, n->in[0]),
                        tp(c, n->in[1]), tp(c, n->in[2]), c->batch, i64c(c, x->shape.dim[0]),
                        i64c(c, x->shape.dim[1]), i64c(c, w->shape.dim[0]), i64c(c, n->kernel), i64c(c, n->stride),
                        i64c(c, n->padding), i32c(c, n->accumulate), i32c(c, n->accumulate_params)};
    cg_call(c, "mtk_conv1d_backward", a, 16);
}

/* B·T rows of C channels for norms: C is the gamma length */
static void norm_dims(CgCtx *c, int x, int gamma, int64_t *T, int64_t *C) {
    *C = c->g->t[gamma].size;
    *T = c->g->t[x].size / *C;
}

void cg_emit_batchnorm(CgCtx *c, const IrNode *n) {
    int64_t T, C;
    norm_dims(c, n->in[0], n->in[1], &T, &C);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->in[3]), tp(c, n->in[4]),
                        tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), c->batch, i64c(c, T), i64c(c, C),
                        cg_f32(c, n->eps), cg_f32(c, n->momentum), c->training};
    cg_call(c, "mtk_batchnorm_forward", a, 14);
}

void cg_emit_batchnorm_bwd(CgCtx *c, const IrNode *n) {
    int64_t T, C;
    norm_dims(c, n->in[0], n->in[3], &T, &C);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->in[0]), tp(c, n->in[1]),
                        tp(c, n->in[2]), tp(c, n->in[3]), c->batch, i64c(c, T), i64c(c, C), c->training,
                        i32c(c, n->accumulate), i32c(c, n->accumulate_params)};
    cg_call(c, "mtk_batchnorm_backward", a, 13);
}

void cg_emit_layernorm(CgCtx *c, const IrNode *n) {
    int64_t T, C;
    norm_dims(c, n->in[0], n->in[1], &T, &C);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->in[0]), tp(c, n->in[1]),
                        tp(c, n->in[2]), cg_mul(c, c->batch, T), i64c(c, C), cg_f32(c, n->eps)};
    cg_call(c, "mtk_layernorm_forward", a, 9);
}

void cg_emit_layernorm_bwd(CgCtx *c, const IrNode *n) {
    int64_t T, C;
    norm_dims(c, n->in[0], n->in[3], &T, &C);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->in[0]), tp(c, n->in[1]),
                        tp(c, n->in[2]), tp(c, n->in[3]), cg_mul(c, c->batch, T), i64c(c, C),
                        i32c(c, n->accumulate), i32c(c, n->accumulate_params)};
    cg_call(c, "mtk_layernorm_backward", a, 11);
}

/* gates and cells hold both directions one after the other: [dirs][B, T, ·] */
static LLVMValueRef dir_slice(CgCtx *c, int t, int d, int64_t per_sample_per_dir) {
    LLVMValueRef base = tp(c, t);
    if (d == 0) return base;
    LLVMValueRef off = cg_mul(c, c->batch, per_sample_per_dir);
    return LLVMBuildGEP2(c->b, c->t_f32, base, &off, 1, "");
}

void cg_emit_lstm(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[0]], *y = &c->g->t[n->out[0]], *whh = &c->g->t[n->in[2]];
    int64_t T = x->shape.dim[0], I = x->shape.dim[1], H = whh->shape.dim[1], Dout = y->shape.dim[1];
    if (n->in[5] >= 0) { /* bidirectional: both directions at once */
        LLVMValueRef a[] = {tp(c, n->out[0]), dir_slice(c, n->out[1], 0, T * 4 * H), dir_slice(c, n->out[1], 1, T * 4 * H),
                            dir_slice(c, n->out[2], 0, T * H), dir_slice(c, n->out[2], 1, T * H), tp(c, n->in[0]),
                            tp(c, n->in[1]), tp(c, n->in[2]), tp(c, n->in[3]), tp(c, n->in[4]), tp(c, n->in[5]),
                            tp(c, n->in[6]), tp(c, n->in[7]), tp(c, n->in[8]), c->batch, i64c(c, T), i64c(c, I),
                            i64c(c, H)};
        cg_call(c, "mtk_lstm_forward_bidir", a, 18);
        return;
    }
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), c->scratch, tp(c, n->in[0]),
                        tp(c, n->in[1]), tp(c, n->in[2]), tp(c, n->in[3]), tp(c, n->in[4]), c->batch, i64c(c, T),
                        i64c(c, I), i64c(c, H), i64c(c, Dout), i64c(c, 0), i32c(c, 0)};
    cg_call(c, "mtk_lstm_forward", a, 16);
}

void cg_emit_lstm_bwd(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[4]], *y = &c->g->t[n->in[1]], *whh = &c->g->t[n->in[6]];
    int64_t T = x->shape.dim[0], I = x->shape.dim[1], H = whh->shape.dim[1], Dout = y->shape.dim[1];
    if (n->in[7] >= 0) { /* bidirectional: both directions at once */
        LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->out[3]), tp(c, n->out[4]),
                            tp(c, n->out[5]), tp(c, n->out[6]), tp(c, n->out[7]), tp(c, n->out[8]), c->scratch,
                            tp(c, n->in[0]), tp(c, n->in[1]), dir_slice(c, n->in[2], 0, T * 4 * H),
                            dir_slice(c, n->in[2], 1, T * 4 * H), dir_slice(c, n->in[3], 0, T * H),
                            dir_slice(c, n->in[3], 1, T * H), tp(c, n->in[4]), tp(c, n->in[5]), tp(c, n->in[6]),
                            tp(c, n->in[7]), tp(c, n->in[8]), c->batch, i64c(c, T), i64c(c, I), i64c(c, H),
                            i32c(c, n->accumulate), i32c(c, n->accumulate_params)};
        cg_call(c, "mtk_lstm_backward_bidir", a, 27);
        return;
    }
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->out[3]), tp(c, n->out[4]),
                        c->scratch, tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), tp(c, n->in[3]),
                        tp(c, n->in[4]), tp(c, n->in[5]), tp(c, n->in[6]), c->batch, i64c(c, T), i64c(c, I),
                        i64c(c, H), i64c(c, Dout), i64c(c, 0), i32c(c, 0), i32c(c, n->accumulate),
                        i32c(c, n->accumulate_params)};
    cg_call(c, "mtk_lstm_backward", a, 22);
}

void cg_emit_attention(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[0]];
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->out[3]), c->scratch,
                        tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), tp(c, n->in[3]), tp(c, n->in[4]),
                        c->batch, i64c(c, x->shape.dim[0]), i64c(c, x->shape.dim[1]), i64c(c, n->heads),
                        cg_f32(c, n->p), c->seed, i32c(c, n->site), c->training};
    cg_call(c, n->last_step ? "mtk_attention_last_forward" : "mtk_attention_forward", a, 18);
}

void cg_emit_attention_bwd(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[4]];
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->out[2]), tp(c, n->out[3]), tp(c, n->out[4]),
                        c->scratch, tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]), tp(c, n->in[3]),
                        tp(c, n->in[4]), tp(c, n->in[5]), tp(c, n->in[6]), c->batch, i64c(c, x->shape.dim[0]),
                        i64c(c, x->shape.dim[1]), i64c(c, n->heads), cg_f32(c, n->p), c->seed, i32c(c, n->site),
                        c->training, i32c(c, n->accumulate), i32c(c, n->accumulate_params)};
    cg_call(c, n->last_step ? "mtk_attention_last_backward" : "mtk_attention_backward", a, 23);
}

void cg_emit_pool(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->in[0]];
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->in[0]), c->batch, i64c(c, x->shape.dim[0]),
                        i64c(c, x->shape.dim[1]), i32c(c, n->pool)};
    cg_call(c, "mtk_pool_forward", a, 7);
}

void cg_emit_pool_bwd(CgCtx *c, const IrNode *n) {
    const IrTensor *x = &c->g->t[n->out[0]];
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), tp(c, n->in[1]), c->batch, i64c(c, x->shape.dim[0]),
                        i64c(c, x->shape.dim[1]), i32c(c, n->pool), i32c(c, n->accumulate)};
    cg_call(c, "mtk_pool_backward", a, 8);
}

void cg_emit_flatten(CgCtx *c, const IrNode *n) {
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), cg_mul(c, c->batch, feat(c, n->in[0])), i32c(c, 0)};
    cg_call(c, "mtk_copy", a, 4);
}

void cg_emit_copy(CgCtx *c, const IrNode *n) {
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), cg_mul(c, c->batch, feat(c, n->in[0])),
                        i32c(c, n->accumulate)};
    cg_call(c, "mtk_copy", a, 4);
}

void cg_emit_add(CgCtx *c, const IrNode *n) {
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), tp(c, n->in[1]), cg_mul(c, c->batch, feat(c, n->out[0]))};
    cg_call(c, "mtk_add_forward", a, 4);
}

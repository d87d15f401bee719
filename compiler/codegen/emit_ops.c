/* One emitter per IR op (the rows of compiler/ir/ir_ops.def): each turns a node into calls —
 * cblas_sgemm for matrix products, a kernel from runtime/kernels for everything else — with
 * every size and kind passed as a constant, so that after inlining LLVM specialises the loops.
 * Only the batch size B is a run-time value.
 */
#include "cg_internal.h"

#include "util/util.h"

static LLVMValueRef tp(CgCtx *c, int t) { return t >= 0 ? cg_tensor_ptr(c, t) : cg_null(c); }
static int64_t feat(CgCtx *c, int t) { return c->g->t[t].size; }

/* y [B,N] = x [B,K] · Wᵀ, then y = act(y + b) in one pass over y (the fused epilogue) */
void cg_emit_dense(CgCtx *c, const IrNode *n) {
    int64_t K = feat(c, n->in[0]), N = feat(c, n->out[0]);
    LLVMValueRef y = tp(c, n->out[0]);
    cg_sgemm(c, 0, 1, c->batch_i32, cg_i32(c, N), cg_i32(c, K), tp(c, n->in[0]), cg_i32(c, K), tp(c, n->in[1]),
             cg_i32(c, K), 0.0f, y, cg_i32(c, N));
    if (n->in[2] < 0 && n->act == MTL_ACT_IDENTITY && n->out[1] < 0) return;
    LLVMValueRef args[] = {y, tp(c, n->out[1]), tp(c, n->in[2]), c->batch, cg_i64(c, N), cg_i32(c, n->act)};
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

void cg_emit_dense_epi_bwd(CgCtx *c, const IrNode *n) {
    int64_t N = feat(c, n->in[0]);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->out[1]), tp(c, n->in[0]), tp(c, n->in[1]), tp(c, n->in[2]),
                        c->batch, cg_i64(c, N), cg_i32(c, n->act), cg_i32(c, n->accumulate)};
    cg_call(c, "mtk_bias_act_backward", a, 9);
}

void cg_emit_bias_bwd(CgCtx *c, const IrNode *n) {
    int64_t N = feat(c, n->in[0]);
    LLVMValueRef a[] = {tp(c, n->out[0]), tp(c, n->in[0]), c->batch, cg_i64(c, N), cg_i32(c, n->accumulate)};
    cg_call(c, "mtk_bias_backward", a, 5);
}

/* dW [N,K] (+)= dzᵀ [N,B] · x [B,K] */
void cg_emit_matmul_dw(CgCtx *c, const IrNode *n) {
    int64_t N = feat(c, n->in[0]), K = feat(c, n->in[1]);
    cg_sgemm(c, 1, 0, cg_i32(c, N), cg_i32(c, K), c->batch_i32, tp(c, n->in[0]), cg_i32(c, N), tp(c, n->in[1]),
             cg_i32(c, K), n->accumulate ? 1.0f : 0.0f, tp(c, n->out[0]), cg_i32(c, K));
}

/* dx [B,K] (+)= dz [B,N] · W [N,K] */
void cg_emit_matmul_dx(CgCtx *c, const IrNode *n) {
    int64_t N = feat(c, n->in[0]), K = c->g->t[n->in[1]].shape.dim[1];
    cg_sgemm(c, 0, 0, c->batch_i32, cg_i32(c, K), cg_i32(c, N), tp(c, n->in[0]), cg_i32(c, N), tp(c, n->in[1]),
             cg_i32(c, K), n->accumulate ? 1.0f : 0.0f, tp(c, n->out[0]), cg_i32(c, K));
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

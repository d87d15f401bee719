/* State shared by the LLVM module builder (codegen.c) and the per-op emitters (emit_ops.c). */
#ifndef MTLC_CG_INTERNAL_H
#define MTLC_CG_INTERNAL_H

#include "codegen/codegen.h"

#include <llvm-c/Core.h>

/* MtlStep field indices (runtime/include/mtl_abi.h) */
enum {
    CG_STEP_BATCH, CG_STEP_TRAINING, CG_STEP_SEED, CG_STEP_PARAMS, CG_STEP_GRADS, CG_STEP_ACTS,
    CG_STEP_INPUT, CG_STEP_TARGETS, CG_STEP_LOSSES, CG_STEP_TASK_WEIGHTS, CG_STEP_BUFFERS, CG_STEP_FIELDS
};

typedef struct CgCtx {
    const IrGraph *g;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef t_void, t_i32, t_i64, t_f32, t_ptr, t_step;
    /* values loaded from the MtlStep at the top of the function being built */
    LLVMValueRef batch, batch_i32, training, seed, params, grads, acts, input, targets, losses, task_weights, buffers;
    LLVMValueRef acts_fixed; /* acts + acts_per_sample * B: the fixed part */
    LLVMValueRef scratch;    /* the shared kernel scratch (per-sample part, then fixed part) */
} CgCtx;

/* Pointer to the first float of tensor t for this step. */
LLVMValueRef cg_tensor_ptr(CgCtx *c, int t);
/* Calls a kernel (a function of the linked kernel bitcode) by name. */
LLVMValueRef cg_call(CgCtx *c, const char *name, LLVMValueRef *args, unsigned n);
/* The same through an out-of-line wrapper specialised to the constant arguments (codegen.c). */
LLVMValueRef cg_call_specialised(CgCtx *c, const char *name, LLVMValueRef *args, unsigned n);
LLVMValueRef cg_i32(CgCtx *c, long long v);
LLVMValueRef cg_i64(CgCtx *c, long long v);
LLVMValueRef cg_f32(CgCtx *c, double v);
LLVMValueRef cg_null(CgCtx *c);
/* v * k for the run-time batch (or any i64 value) */
LLVMValueRef cg_mul(CgCtx *c, LLVMValueRef v, int64_t k);
/* cblas_sgemm(RowMajor, ta, tb, M, N, K, 1, A, lda, B, ldb, beta, C, ldc) */
void cg_sgemm(CgCtx *c, int trans_a, int trans_b, LLVMValueRef M, LLVMValueRef N, LLVMValueRef K,
              LLVMValueRef A, LLVMValueRef lda, LLVMValueRef Bm, LLVMValueRef ldb, float beta,
              LLVMValueRef C, LLVMValueRef ldc);

#define CG_EMIT_DECL(e, n, ni, no) void cg_emit_##n(CgCtx *c, const IrNode *node);
IR_ALL_OPS(CG_EMIT_DECL)
#undef CG_EMIT_DECL

#endif

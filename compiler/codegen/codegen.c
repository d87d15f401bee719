/* Builds the LLVM module for a planned graph and emits it.
 *
 * Steps: parse the embedded kernel bitcode and link it into a fresh module; strip the
 * target-cpu/target-features clang stamped on each kernel (so the host target machine applies);
 * add mtl_model_forward / mtl_model_backward as straight-line sequences of kernel and
 * cblas_sgemm calls with constant shapes; add the model info table; make every kernel internal;
 * verify; run default<O3> (inlines the kernels, folds shapes, vectorises); emit.
 * The object is position-independent so it links into PIE executables and shared objects.
 */
#include "cg_internal.h"

#include "util/util.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char mtl_kernels_bc[];
extern const unsigned long mtl_kernels_bc_size;

typedef void (*CgEmit)(CgCtx *, const IrNode *);
static const CgEmit cg_emitters[IR_OP_COUNT] = {
#define CG_ENTRY(e, n, ni, no) [e] = cg_emit_##n,
    IR_ALL_OPS(CG_ENTRY)
#undef CG_ENTRY
};

LLVMValueRef cg_i32(CgCtx *c, long long v) {
    /* sema bounds every size far below this; a wider value would be silently truncated */
    if (v < INT32_MIN || v > INT32_MAX) internal_error("constant %lld does not fit a 32-bit argument", v);
    return LLVMConstInt(c->t_i32, (unsigned long long)v, 1);
}
LLVMValueRef cg_i64(CgCtx *c, long long v) { return LLVMConstInt(c->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(CgCtx *c, double v) { return LLVMConstReal(c->t_f32, v); }
LLVMValueRef cg_null(CgCtx *c) { return LLVMConstNull(c->t_ptr); }
LLVMValueRef cg_mul(CgCtx *c, LLVMValueRef v, int64_t k) { return LLVMBuildMul(c->b, v, cg_i64(c, k), ""); }

LLVMValueRef cg_tensor_ptr(CgCtx *c, int id) {
    const IrTensor *t = &c->g->t[id];
    LLVMValueRef base, off;
    switch (t->role) {
    case IR_ROLE_PARAM:
        base = c->params;
        off = cg_i64(c, t->offset);
        break;
    case IR_ROLE_PARAM_GRAD:
        base = c->grads;
        off = cg_i64(c, t->offset);
        break;
    case IR_ROLE_ACT:
    case IR_ROLE_GRAD:
        if (t->batched) {
            base = c->acts;
            off = LLVMBuildMul(c->b, c->batch, cg_i64(c, t->offset), "");
        } else {
            base = c->acts_fixed;
            off = cg_i64(c, t->offset);
        }
        break;
    case IR_ROLE_BUFFER:
        base = c->buffers;
        off = cg_i64(c, t->offset);
        break;
    case IR_ROLE_INPUT:
        return c->input;
    case IR_ROLE_TARGET: {
        LLVMValueRef slot = LLVMBuildGEP2(c->b, c->t_ptr, c->targets, (LLVMValueRef[]){cg_i64(c, t->task)}, 1, "");
        return LLVMBuildLoad2(c->b, c->t_ptr, slot, "target");
    }
    case IR_ROLE_LOSS:
        base = c->losses;
        off = cg_i64(c, t->task);
        break;
    default:
        internal_error("tensor %s has no storage", t->name);
    }
    if (t->offset < 0 && t->role != IR_ROLE_LOSS) internal_error("tensor %s was not planned", t->name);
    return LLVMBuildGEP2(c->b, c->t_f32, base, &off, 1, t->name);
}

LLVMValueRef cg_call(CgCtx *c, const char *name, LLVMValueRef *args, unsigned n) {
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (!fn) internal_error("kernel %s is missing from the kernel bitcode", name);
    LLVMTypeRef ft = LLVMGlobalGetValueType(fn);
    if (LLVMCountParamTypes(ft) != n) internal_error("kernel %s takes %u arguments, not %u", name, LLVMCountParamTypes(ft), n);
    return LLVMBuildCall2(c->b, ft, fn, args, n, "");
}

/* A call of `name` through a function specialised to its constant arguments: the wrapper
 * `name.C1.C2...` takes the other arguments, calls the kernel with the constants in place (the
 * kernel is inlined into it and specialised there) and is itself kept out of line, one per
 * distinct set of constants. The calling pass then holds one call, not the kernel's body: the
 * small-matrix kernels inlined straight into a pass made LLVM's time grow with the square of
 * their number (a 300-layer model took minutes), and identical layers now share a wrapper. */
LLVMValueRef cg_call_specialised(CgCtx *c, const char *name, LLVMValueRef *args, unsigned n) {
    LLVMValueRef kernel = LLVMGetNamedFunction(c->mod, name);
    if (!kernel) internal_error("kernel %s is missing from the kernel bitcode", name);
    LLVMTypeRef kt = LLVMGlobalGetValueType(kernel);
    if (LLVMCountParamTypes(kt) != n) internal_error("kernel %s takes %u arguments, not %u", name, LLVMCountParamTypes(kt), n);
    char wname[512];
    size_t len = (size_t)snprintf(wname, sizeof wname, "%s", name);
    LLVMValueRef rt[16];
    LLVMTypeRef rt_types[16];
    unsigned n_rt = 0;
    if (n > 16) internal_error("cg_call_specialised: %u arguments", n);
    for (unsigned i = 0; i < n; i++) {
        LLVMValueRef a = args[i];
        const char *part = NULL;
        char buf[64];
        if (LLVMIsAConstantInt(a)) {
            snprintf(buf, sizeof buf, ".%lld", LLVMConstIntGetSExtValue(a));
            part = buf;
        } else if (LLVMIsAConstantPointerNull(a)) {
            part = ".null";
        } else if (LLVMIsAConstantFP(a)) {
            LLVMBool lossy;
            snprintf(buf, sizeof buf, ".%a", LLVMConstRealGetDouble(a, &lossy));
            part = buf;
        }
        if (part) {
            len += (size_t)snprintf(wname + len, len < sizeof wname ? sizeof wname - len : 0, "%s", part);
        } else {
            rt[n_rt] = a;
            rt_types[n_rt++] = LLVMTypeOf(a);
            len += (size_t)snprintf(wname + len, len < sizeof wname ? sizeof wname - len : 0, ".r");
        }
    }
    if (len >= sizeof wname) internal_error("cg_call_specialised: name too long for %s", name);
    LLVMValueRef w = LLVMGetNamedFunction(c->mod, wname);
    LLVMTypeRef wt = LLVMFunctionType(LLVMGetReturnType(kt), rt_types, n_rt, 0);
    if (!w) {
        w = LLVMAddFunction(c->mod, wname, wt);
        LLVMSetLinkage(w, LLVMInternalLinkage);
        unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
        LLVMAddAttributeAtIndex(w, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(c->ctx, noinline, 0));
        LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
        LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c->ctx, w, "entry");
        LLVMPositionBuilderAtEnd(c->b, entry);
        LLVMValueRef inner[16];
        for (unsigned i = 0, r = 0; i < n; i++) {
            LLVMValueRef a = args[i];
            bool constant = LLVMIsAConstantInt(a) || LLVMIsAConstantPointerNull(a) || LLVMIsAConstantFP(a);
            inner[i] = constant ? a : LLVMGetParam(w, r++);
        }
        LLVMValueRef call = LLVMBuildCall2(c->b, kt, kernel, inner, n, "");
        if (LLVMGetTypeKind(LLVMGetReturnType(kt)) == LLVMVoidTypeKind) LLVMBuildRetVoid(c->b);
        else LLVMBuildRet(c->b, call);
        LLVMPositionBuilderAtEnd(c->b, here);
    }
    return LLVMBuildCall2(c->b, wt, w, rt, n_rt, "");
}

/* An i32 argument of cblas_sgemm that is a constant must be a size in [0, INT32_MAX]: sema
 * should have refused any model where it is not, so this is a compiler bug, never a user error. */
static void check_sgemm_arg(LLVMValueRef v, const char *what) {
    if (!LLVMIsAConstantInt(v)) return; /* the run-time rows (batch · time) */
    long long x = LLVMConstIntGetSExtValue(v);
    if (x < 0 || x > INT32_MAX) internal_error("cblas_sgemm %s = %lld is not a 32-bit size", what, x);
}

void cg_sgemm(CgCtx *c, int trans_a, int trans_b, LLVMValueRef M, LLVMValueRef N, LLVMValueRef K,
              LLVMValueRef A, LLVMValueRef lda, LLVMValueRef Bm, LLVMValueRef ldb, float beta,
              LLVMValueRef C, LLVMValueRef ldc) {
    enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
    check_sgemm_arg(M, "M");
    check_sgemm_arg(N, "N");
    check_sgemm_arg(K, "K");
    check_sgemm_arg(lda, "lda");
    check_sgemm_arg(ldb, "ldb");
    check_sgemm_arg(ldc, "ldc");
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "cblas_sgemm");
    LLVMTypeRef params[] = {c->t_i32, c->t_i32, c->t_i32, c->t_i32, c->t_i32, c->t_i32, c->t_f32,
                            c->t_ptr, c->t_i32, c->t_ptr, c->t_i32, c->t_f32, c->t_ptr, c->t_i32};
    LLVMTypeRef ft = LLVMFunctionType(c->t_void, params, 14, 0);
    if (!fn) fn = LLVMAddFunction(c->mod, "cblas_sgemm", ft);
    LLVMValueRef args[] = {cg_i32(c, CBLAS_ROW_MAJOR), cg_i32(c, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS),
                           cg_i32(c, trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS), M, N, K, cg_f32(c, 1.0), A, lda, Bm,
                           ldb, cg_f32(c, beta), C, ldc};
    LLVMBuildCall2(c->b, ft, fn, args, 14, "");
}

static LLVMValueRef load_field(CgCtx *c, LLVMValueRef step, int field, LLVMTypeRef ty, const char *name) {
    LLVMValueRef p = LLVMBuildStructGEP2(c->b, c->t_step, step, (unsigned)field, "");
    return LLVMBuildLoad2(c->b, ty, p, name);
}

/* void NAME(MtlStep *s) running nodes [begin, end) */
static void build_pass(CgCtx *c, const char *name, int begin, int end) {
    LLVMTypeRef ft = LLVMFunctionType(c->t_void, &c->t_ptr, 1, 0);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, ft);
    LLVMSetLinkage(fn, LLVMExternalLinkage);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(c->b, entry);
    LLVMValueRef s = LLVMGetParam(fn, 0);
    LLVMSetValueName2(s, "step", 4);
    c->batch = load_field(c, s, CG_STEP_BATCH, c->t_i64, "B");
    c->batch_i32 = LLVMBuildTrunc(c->b, c->batch, c->t_i32, "B32");
    c->training = load_field(c, s, CG_STEP_TRAINING, c->t_i64, "training");
    c->seed = load_field(c, s, CG_STEP_SEED, c->t_i64, "seed");
    c->params = load_field(c, s, CG_STEP_PARAMS, c->t_ptr, "params");
    c->grads = load_field(c, s, CG_STEP_GRADS, c->t_ptr, "grads");
    c->acts = load_field(c, s, CG_STEP_ACTS, c->t_ptr, "acts");
    c->input = load_field(c, s, CG_STEP_INPUT, c->t_ptr, "input");
    c->targets = load_field(c, s, CG_STEP_TARGETS, c->t_ptr, "targets");
    c->losses = load_field(c, s, CG_STEP_LOSSES, c->t_ptr, "losses");
    c->task_weights = load_field(c, s, CG_STEP_TASK_WEIGHTS, c->t_ptr, "task_weights");
    c->buffers = load_field(c, s, CG_STEP_BUFFERS, c->t_ptr, "buffers");
    LLVMValueRef fixed_off = cg_mul(c, c->batch, c->g->acts_per_sample);
    c->acts_fixed = LLVMBuildGEP2(c->b, c->t_f32, c->acts, &fixed_off, 1, "acts_fixed");
    LLVMValueRef scratch_off = cg_mul(c, c->batch, c->g->acts_per_sample - ((c->g->scratch_per_sample + 15) & ~(int64_t)15));
    c->scratch = LLVMBuildGEP2(c->b, c->t_f32, c->acts, &scratch_off, 1, "scratch");
    for (int i = begin; i < end; i++) {
        const IrNode *n = &c->g->n[i];
        cg_emitters[n->op](c, n);
    }
    LLVMBuildRetVoid(c->b);
}

static void add_model_table(CgCtx *c) {
    char *json = cg_model_json(c->g);
    LLVMValueRef str = LLVMConstStringInContext(c->ctx, json, (unsigned)strlen(json), 0);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(str), "mtl_model_json");
    LLVMSetInitializer(gv, str);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMExternalLinkage);
    free(json);
}

/* Kernels whose work is dominated by their sgemm calls and whose bodies are large: inlining
 * them at each call site (a model has dozens) nearly doubled the DualTaskModel's compile time
 * (4.3 s against 2.4 s, measured together), and their time is mostly spent in sgemm where inlining
 * cannot help, so they stay out of line,
 * still optimised for the host CPU. */
static bool keep_out_of_line(const char *name) {
    static const char *const prefixes[] = {"mtk_lstm_", "mtk_attention_", "mtk_conv1d_", "mtk_batchnorm_",
                                           "mtk_layernorm_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) return true;
    return false;
}

/* Everything from the kernel bitcode becomes internal (so O3 may inline and drop it) and loses
 * clang's CPU stamp (so the host target machine decides the instruction set). */
static void internalise_kernels(CgCtx *c) {
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    for (LLVMValueRef fn = LLVMGetFirstFunction(c->mod); fn; fn = LLVMGetNextFunction(fn)) {
        LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, "target-cpu", 10);
        LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, "target-features", 15);
        LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, "tune-cpu", 8);
        if (LLVMIsDeclaration(fn)) continue;
        size_t len;
        const char *name = LLVMGetValueName2(fn, &len);
        if (strcmp(name, "mtl_model_forward") && strcmp(name, "mtl_model_backward") &&
            strcmp(name, "mtl_model_backward_heads"))
            LLVMSetLinkage(fn, LLVMInternalLinkage);
        if (keep_out_of_line(name))
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(c->ctx, noinline, 0));
    }
}

static LLVMTargetMachineRef host_target_machine(char **triple_out) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        fprintf(stderr, "mtlc: error: no LLVM target for %s: %s\n", triple, err);
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    *triple_out = triple;
    return tm;
}

int cg_compile(const IrGraph *g, const CgOptions *opt) {
    int rc = -1;
    CgCtx c = {.g = g};
    c.ctx = LLVMContextCreate();
    char *triple = NULL, *err = NULL;
    LLVMTargetMachineRef tm = host_target_machine(&triple);
    if (!tm) goto out_ctx;

    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)mtl_kernels_bc,
                                                                    (size_t)mtl_kernels_bc_size, "mtl_kernels", 0);
    LLVMModuleRef kernels;
    if (LLVMParseBitcodeInContext2(c.ctx, buf, &kernels)) internal_error("the embedded kernel bitcode does not parse");
    LLVMDisposeMemoryBuffer(buf);

    c.mod = LLVMModuleCreateWithNameInContext(g->model->name, c.ctx);
    LLVMSetTarget(c.mod, triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(c.mod, layout);
    LLVMSetDataLayout(kernels, layout);
    LLVMSetTarget(kernels, triple);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    if (LLVMLinkModules2(c.mod, kernels)) internal_error("linking the kernel bitcode failed");

    c.t_void = LLVMVoidTypeInContext(c.ctx);
    c.t_i32 = LLVMInt32TypeInContext(c.ctx);
    c.t_i64 = LLVMInt64TypeInContext(c.ctx);
    c.t_f32 = LLVMFloatTypeInContext(c.ctx);
    c.t_ptr = LLVMPointerTypeInContext(c.ctx, 0);
    LLVMTypeRef fields[CG_STEP_FIELDS] = {c.t_i64, c.t_i64, c.t_i64, c.t_ptr, c.t_ptr, c.t_ptr,
                                          c.t_ptr, c.t_ptr, c.t_ptr, c.t_ptr, c.t_ptr};
    c.t_step = LLVMStructTypeInContext(c.ctx, fields, CG_STEP_FIELDS, 0);
    c.b = LLVMCreateBuilderInContext(c.ctx);

    build_pass(&c, "mtl_model_forward", 0, g->n_forward);
    build_pass(&c, "mtl_model_backward", g->n_forward, g->n_n);
    build_pass(&c, "mtl_model_backward_heads", g->n_forward, g->n_head_backward);
    add_model_table(&c);
    internalise_kernels(&c);

    if (LLVMVerifyModule(c.mod, LLVMReturnStatusAction, &err))
        internal_error("generated module does not verify: %s", err);
    LLVMDisposeMessage(err);
    err = NULL;

    if (opt->opt_level > 0) {
        char passes[32];
        snprintf(passes, sizeof passes, "default<O%d>", opt->opt_level > 3 ? 3 : opt->opt_level);
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
        LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
        LLVMErrorRef e = LLVMRunPasses(c.mod, passes, tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (e) {
            char *msg = LLVMGetErrorMessage(e);
            internal_error("LLVM passes failed: %s", msg);
        }
    }

    /* Everything is produced in memory and written through the caller's stream, which checks
     * the writes (LLVM's own file output aborts the process on an I/O error). */
    if (opt->output == CG_OUT_LLVM) {
        char *s = LLVMPrintModuleToString(c.mod);
        fputs(s, opt->out);
        LLVMDisposeMessage(s);
    } else {
        LLVMCodeGenFileType ft = opt->output == CG_OUT_ASM ? LLVMAssemblyFile : LLVMObjectFile;
        LLVMMemoryBufferRef mb;
        if (LLVMTargetMachineEmitToMemoryBuffer(tm, c.mod, ft, &err, &mb)) {
            fprintf(stderr, "mtlc: error: code generation failed: %s\n", err);
            goto out;
        }
        fwrite(LLVMGetBufferStart(mb), 1, LLVMGetBufferSize(mb), opt->out);
        LLVMDisposeMemoryBuffer(mb);
    }
    rc = 0;
out:
    if (err) LLVMDisposeMessage(err);
    LLVMDisposeBuilder(c.b);
    LLVMDisposeModule(c.mod);
    LLVMDisposeTargetMachine(tm);
    LLVMDisposeMessage(triple);
out_ctx:
    LLVMContextDispose(c.ctx);
    return rc;
}

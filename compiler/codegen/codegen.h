/* LLVM back end: planned IR → LLVM module (with the kernel bitcode linked in) → optimised
 * object file, assembly or textual IR. Also builds the model info table (JSON) the runtime
 * reads. Deliberately not here: linking the trainer executable (the driver does that).
 */
#ifndef MTLC_CODEGEN_H
#define MTLC_CODEGEN_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdio.h>

typedef enum CgOutput {
    CG_OUT_LLVM, /* textual LLVM IR (after optimisation unless opt_level == 0) */
    CG_OUT_ASM,
    CG_OUT_OBJ,
} CgOutput;

typedef struct CgOptions {
    CgOutput output;
    int opt_level;      /* 0..3; 3 runs default<O3> */
    FILE *out;          /* where the output is written; the caller checks for write errors
                         * (ferror / fclose) and reports them */
} CgOptions;

/* Returns 0 on success; on failure prints "mtlc: error: ..." to stderr and returns -1. */
int cg_compile(const IrGraph *g, const CgOptions *opt);

/* The model info table described in runtime/include/mtl_abi.h; caller frees. */
char *cg_model_json(const IrGraph *g);

#endif

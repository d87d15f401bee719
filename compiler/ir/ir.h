/* Graph IR: tensors and nodes addressed by integer ids in growable arrays.
 *
 * Tensors carry a static per-sample shape (batched tensors: the batch dimension B is a run-time
 * argument and never stored) or a full shape (parameters). Node insertion order is a topological
 * order: the forward nodes come first (n_forward of them), then the backward nodes autodiff appends.
 * The memory planner gives every tensor an offset in its region; codegen only reads the result.
 * Deliberately simple: no reuse of activation memory yet (every tensor has its own slot).
 */
#ifndef MTLC_IR_H
#define MTLC_IR_H

#include "ir/ir_ops.def"
#include "sema/model.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum IrRole {
    IR_ROLE_PARAM,      /* region: params (offset in floats) */
    IR_ROLE_PARAM_GRAD, /* region: grads, same offset as its parameter */
    IR_ROLE_INPUT,      /* step->input */
    IR_ROLE_TARGET,     /* step->targets[task] */
    IR_ROLE_ACT,        /* region: acts, offset per sample (× B at run time) */
    IR_ROLE_GRAD,       /* gradient of an activation: region acts, like IR_ROLE_ACT */
    IR_ROLE_LOSS,       /* step->losses[task] */
    IR_ROLE_BUFFER,     /* region: buffers (batchnorm running statistics), offset in floats */
} IrRole;

typedef enum IrOp {
#define IR_ENUM(e, n, ni, no) e,
    IR_ALL_OPS(IR_ENUM)
#undef IR_ENUM
    IR_OP_COUNT
} IrOp;

typedef struct IrTensor {
    char *name;
    IrRole role;
    Shape shape;     /* per sample when batched */
    int64_t size;    /* floats (per sample when batched) */
    bool batched;    /* false for an ACT tensor: it lives in the fixed part of the acts region */
    int param;       /* Model param index for PARAM / PARAM_GRAD, Model buffer index for BUFFER, else -1 */
    int task;        /* TARGET / LOSS: task index, else -1 */
    int64_t offset;  /* set by ir_plan_memory */
    int grad;        /* set by autodiff: id of this tensor's gradient, -1 if none */
    bool needs_grad; /* a trainable parameter is upstream */
} IrTensor;

typedef struct IrNode {
    IrOp op;
    int in[IR_MAX_IN];
    int out[IR_MAX_OUT];
    MtlAct act;
    MtlLoss loss;
    float p;          /* dropout, attention dropout */
    float delta;      /* huber */
    float amnl_cap;   /* mse: AMNL per-sample weighting with this RUL cap, 0 = plain mse */
    float eps, momentum; /* norms */
    int64_t kernel, stride, padding; /* conv1d */
    int64_t heads;    /* attention */
    bool last_step;   /* attention: only the last time step's row is computed (ir_prune_last_step) */
    int pool;         /* PoolKind */
    uint32_t site;    /* dropout mask stream */
    int task;         /* loss ops */
    bool accumulate;  /* backward: add into the first output instead of overwriting */
    bool accumulate_params; /* backward: add into parameter gradients */
    int layer_block, layer; /* source layer, -1 if none */
    bool in_head;     /* forward: a task's head or loss (after the trunk); backward: derived from one */
} IrNode;

typedef struct IrGraph {
    const Model *model;
    IrTensor *t;
    int n_t, cap_t;
    IrNode *n;
    int n_n, cap_n;
    int n_forward;       /* nodes [0, n_forward) are the forward pass */
    int input;           /* tensor id of the model input */
    int trunk_out;       /* tensor id of the trunk's output (the heads' input) */
    int n_head_backward; /* backward nodes [n_forward, n_head_backward) are the heads' and losses':
                          * after them, the gradient of trunk_out is complete */
    int *task_output;    /* per task: head output tensor */
    int *task_target;    /* per task: target tensor */
    int *task_loss;      /* per task: loss tensor */
    int *param_tensor;   /* per Model param: tensor id */
    int *buffer_tensor;  /* per Model buffer: tensor id */
    int64_t n_params;        /* floats in the params region */
    int64_t n_buffer_floats; /* floats in the buffers region */
    int64_t acts_per_sample; /* floats per sample in the acts region (scratch included, last) */
    int64_t acts_fixed;      /* floats after the per-sample part (scratch first) */
    int64_t scratch_per_sample, scratch_fixed; /* the shared kernel scratch (largest op) */
    int *param_order;    /* Model param indices in memory order (grouped) */
} IrGraph;

extern const char *const ir_op_names[IR_OP_COUNT];

int ir_add_tensor(IrGraph *g, const char *name, IrRole role, const Shape *shape, bool batched);
int ir_add_node(IrGraph *g, IrNode node);
IrNode ir_node(IrOp op);   /* a node with every operand -1 */
void ir_free(IrGraph *g);

/* typed model → forward graph (every layer kind, losses) */
IrGraph *ir_lower(const Model *m);
/* merges dense → activation pairs into the dense epilogue where the intermediate has no other use */
void ir_fuse(IrGraph *g);
/* rewrites row-wise layers between an attention and a pool(last) to the last row only
 * (compiler/ir/last_step.c); returns how many pools it pruned */
int ir_prune_last_step(IrGraph *g);
/* appends the backward pass of sum_k w_k L_k (w_k read at run time) */
void ad_build_backward(IrGraph *g);
/* assigns offsets: parameters sorted by group, activations and gradients in the acts region */
void ir_plan_memory(IrGraph *g);
/* checks arity, shapes and single definition; aborts with an internal error on a violation */
void ir_verify(const IrGraph *g);
void ir_dump(const IrGraph *g, FILE *out, bool with_backward);

#endif

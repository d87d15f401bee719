/* Reverse-mode autodiff on the IR.
 *
 * Walks the forward nodes in reverse and asks each op's rule (ad_grad_<op>, one per row of
 * IR_FORWARD_OPS) to append backward nodes. grad_for() is the gradient map: the first
 * contribution to a value's gradient overwrites its buffer, later ones accumulate — this is
 * where a shared trunk sums the gradients of every head. Only values with a trainable
 * parameter upstream (needs_grad) receive gradients: frozen groups, inputs and targets are
 * pruned. The seed is each task's loss, scaled at run time by step->task_weights[k].
 * The heads' backward nodes come first (n_head_backward marks their end): run alone, with one-hot
 * weights, they give one task's gradient at the trunk output (balance norms = trunk_output).
 * Deliberately not here: second derivatives.
 */
#include "ir/ir.h"

#include "util/util.h"

#include <stdio.h>

/* Returns the gradient tensor of `t`, creating it on the first contribution. *accumulate tells
 * the caller whether its node must add (a gradient already exists) or overwrite. */
static int grad_for(IrGraph *g, int t, bool *accumulate) {
    if (g->t[t].grad >= 0) {
        *accumulate = true;
        return g->t[t].grad;
    }
    *accumulate = false;
    char name[600];
    int gt;
    if (g->t[t].role == IR_ROLE_PARAM) {
        snprintf(name, sizeof name, "grad(%s)", g->t[t].name);
        gt = ir_add_tensor(g, name, IR_ROLE_PARAM_GRAD, &g->t[t].shape, false);
        g->t[gt].param = g->t[t].param;
    } else {
        snprintf(name, sizeof name, "grad(%s)", g->t[t].name);
        gt = ir_add_tensor(g, name, IR_ROLE_GRAD, &g->t[t].shape, true);
    }
    g->t[t].grad = gt;
    return gt;
}

static bool wants_grad(const IrGraph *g, int t) { return t >= 0 && g->t[t].needs_grad; }

#define AD_RULE(e, n, ni, no) static void ad_grad_##n(IrGraph *g, const IrNode *fwd);
IR_FORWARD_OPS(AD_RULE)
#undef AD_RULE

/* loss: seeds d(w_k L_k)/d pred */
static void ad_grad_loss(IrGraph *g, const IrNode *fwd) {
    if (!wants_grad(g, fwd->in[0])) return;
    IrNode n = ir_node(IR_LOSS_BWD);
    n.in[0] = fwd->in[0];
    n.in[1] = fwd->in[1];
    n.out[0] = grad_for(g, fwd->in[0], &n.accumulate);
    n.loss = fwd->loss;
    n.delta = fwd->delta;
    n.amnl_cap = fwd->amnl_cap;
    n.task = fwd->task;
    ir_add_node(g, n);
}

/* dense: y = act(x·Wᵀ + b) → dz = dy ⊙ act'(z), db = Σ_b dz, dW = dzᵀ·x, dx = dz·W */
static void ad_grad_dense(IrGraph *g, const IrNode *fwd) {
    int x = fwd->in[0], w = fwd->in[1], b = fwd->in[2], y = fwd->out[0];
    int dy = g->t[y].grad;
    if (dy < 0) return;
    int dz = dy;
    bool acc;
    if (fwd->act != MTL_ACT_IDENTITY) {
        char name[600];
        snprintf(name, sizeof name, "grad(%s).preact", g->t[y].name);
        dz = ir_add_tensor(g, name, IR_ROLE_GRAD, &g->t[y].shape, true);
        IrNode n = ir_node(IR_DENSE_EPI_BWD);
        n.in[0] = dy;
        n.in[1] = y;
        n.in[2] = fwd->out[1];
        n.out[0] = dz;
        if (wants_grad(g, b)) n.out[1] = grad_for(g, b, &n.accumulate);
        n.act = fwd->act;
        n.layer_block = fwd->layer_block;
        n.layer = fwd->layer;
        ir_add_node(g, n);
    } else if (wants_grad(g, b)) {
        IrNode n = ir_node(IR_BIAS_BWD);
        n.in[0] = dy;
        n.out[0] = grad_for(g, b, &acc);
        n.accumulate = acc;
        ir_add_node(g, n);
    }
    if (wants_grad(g, w)) {
        IrNode n = ir_node(IR_MATMUL_DW);
        n.in[0] = dz;
        n.in[1] = x;
        n.out[0] = grad_for(g, w, &acc);
        n.accumulate = acc;
        ir_add_node(g, n);
    }
    if (wants_grad(g, x)) {
        IrNode n = ir_node(IR_MATMUL_DX);
        n.in[0] = dz;
        n.in[1] = w;
        n.out[0] = grad_for(g, x, &acc);
        n.accumulate = acc;
        ir_add_node(g, n);
    }
}

/* act: dx = dy ⊙ act'(x) */
static void ad_grad_act(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0 || !wants_grad(g, fwd->in[0])) return;
    IrNode n = ir_node(IR_ACT_BWD);
    n.in[0] = dy;
    n.in[1] = fwd->in[0];
    n.in[2] = fwd->out[0];
    n.act = fwd->act;
    n.out[0] = grad_for(g, fwd->in[0], &n.accumulate);
    ir_add_node(g, n);
}

/* dropout: dx = dy ⊙ mask / (1 - p), the mask recomputed from the step's seed */
static void ad_grad_dropout(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0 || !wants_grad(g, fwd->in[0])) return;
    IrNode n = ir_node(IR_DROPOUT_BWD);
    n.in[0] = dy;
    n.p = fwd->p;
    n.site = fwd->site;
    n.out[0] = grad_for(g, fwd->in[0], &n.accumulate);
    ir_add_node(g, n);
}

/* The gradient of input x of a node, or -1 when x needs none; sets *acc. */
static int grad_in(IrGraph *g, int x, bool *acc) {
    *acc = false;
    return wants_grad(g, x) ? grad_for(g, x, acc) : -1;
}

/* The gradient of parameter p, or -1 when frozen; ORs its accumulate flag into *acc. */
static int grad_param(IrGraph *g, int p, bool *acc) {
    if (!wants_grad(g, p)) return -1;
    bool a;
    int t = grad_for(g, p, &a);
    *acc = *acc || a;
    return t;
}

/* conv1d: dx, dW, db from one kernel (im2col recomputed, so x is all it keeps) */
static void ad_grad_conv1d(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0) return;
    IrNode n = ir_node(IR_CONV1D_BWD);
    n.in[0] = dy;
    n.in[1] = fwd->in[0];
    n.in[2] = fwd->in[1];
    n.kernel = fwd->kernel;
    n.stride = fwd->stride;
    n.padding = fwd->padding;
    n.out[0] = grad_in(g, fwd->in[0], &n.accumulate);
    n.out[1] = grad_param(g, fwd->in[1], &n.accumulate_params);
    if (fwd->in[2] >= 0) n.out[2] = grad_param(g, fwd->in[2], &n.accumulate_params);
    ir_add_node(g, n);
}

/* batchnorm / layernorm: dx through the statistics, dgamma, dbeta */
static void norm_grad(IrGraph *g, const IrNode *fwd, IrOp op) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0) return;
    IrNode n = ir_node(op);
    n.in[0] = dy;
    n.in[1] = fwd->out[1];
    n.in[2] = fwd->out[2];
    n.in[3] = fwd->in[1];
    n.eps = fwd->eps;
    n.out[0] = grad_in(g, fwd->in[0], &n.accumulate);
    n.out[1] = grad_param(g, fwd->in[1], &n.accumulate_params);
    n.out[2] = grad_param(g, fwd->in[2], &n.accumulate_params);
    ir_add_node(g, n);
}
static void ad_grad_batchnorm(IrGraph *g, const IrNode *fwd) { norm_grad(g, fwd, IR_BATCHNORM_BWD); }
static void ad_grad_layernorm(IrGraph *g, const IrNode *fwd) { norm_grad(g, fwd, IR_LAYERNORM_BWD); }

/* lstm (one layer, both directions): backward through time in the kernel */
static void ad_grad_lstm(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0) return;
    IrNode n = ir_node(IR_LSTM_BWD);
    n.in[0] = dy;
    n.in[1] = fwd->out[0];
    n.in[2] = fwd->out[1];
    n.in[3] = fwd->out[2];
    n.in[4] = fwd->in[0];
    n.in[5] = fwd->in[1];
    n.in[6] = fwd->in[2];
    n.in[7] = fwd->in[5];
    n.in[8] = fwd->in[6];
    n.out[0] = grad_in(g, fwd->in[0], &n.accumulate);
    for (int k = 1; k <= 8; k++)
        if (fwd->in[k] >= 0) n.out[k] = grad_param(g, fwd->in[k], &n.accumulate_params);
    ir_add_node(g, n);
}

/* attention: projections, per-head softmax and dropout mask recomputed from the seed */
static void ad_grad_attention(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0) return;
    IrNode n = ir_node(IR_ATTENTION_BWD);
    n.in[0] = dy;
    n.in[1] = fwd->out[1];
    n.in[2] = fwd->out[2];
    n.in[3] = fwd->out[3];
    n.in[4] = fwd->in[0];
    n.in[5] = fwd->in[1];
    n.in[6] = fwd->in[3];
    n.heads = fwd->heads;
    n.last_step = fwd->last_step;
    n.p = fwd->p;
    n.site = fwd->site;
    n.out[0] = grad_in(g, fwd->in[0], &n.accumulate);
    for (int k = 1; k <= 4; k++) n.out[k] = grad_param(g, fwd->in[k], &n.accumulate_params);
    ir_add_node(g, n);
}

static void ad_grad_pool(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    if (dy < 0 || !wants_grad(g, fwd->in[0])) return;
    IrNode n = ir_node(IR_POOL_BWD);
    n.in[0] = dy;
    n.in[1] = fwd->out[1];
    n.pool = fwd->pool;
    n.out[0] = grad_for(g, fwd->in[0], &n.accumulate);
    ir_add_node(g, n);
}

/* dst (+)= src: the gradient of flatten (same floats, another shape) and of each side of add */
static void add_copy(IrGraph *g, int dy, int x) {
    if (dy < 0 || !wants_grad(g, x)) return;
    IrNode n = ir_node(IR_COPY);
    n.in[0] = dy;
    n.out[0] = grad_for(g, x, &n.accumulate);
    ir_add_node(g, n);
}
static void ad_grad_flatten(IrGraph *g, const IrNode *fwd) { add_copy(g, g->t[fwd->out[0]].grad, fwd->in[0]); }
static void ad_grad_add(IrGraph *g, const IrNode *fwd) {
    int dy = g->t[fwd->out[0]].grad;
    add_copy(g, dy, fwd->in[0]);
    add_copy(g, dy, fwd->in[1]);
}

typedef void (*AdRule)(IrGraph *, const IrNode *);
static const AdRule ad_rules[IR_OP_COUNT] = {
#define AD_ENTRY(e, n, ni, no) [e] = ad_grad_##n,
    IR_FORWARD_OPS(AD_ENTRY)
#undef AD_ENTRY
};

void ad_build_backward(IrGraph *g) {
    if (g->n_n != g->n_forward) internal_error("backward already built");
    g->n_head_backward = -1;
    for (int i = g->n_forward - 1; i >= 0; i--) {
        IrNode fwd = g->n[i]; /* copy: appending may move the node array */
        /* forward order is trunk, heads, losses: the heads' backward nodes all come first */
        if (!fwd.in_head && g->n_head_backward < 0) g->n_head_backward = g->n_n;
        if (fwd.in_head && g->n_head_backward >= 0) internal_error("a head node precedes a trunk node");
        int first = g->n_n;
        AdRule rule = ad_rules[fwd.op];
        if (!rule) internal_error("op %s has no gradient rule", ir_op_names[fwd.op]);
        rule(g, &fwd);
        for (int j = first; j < g->n_n; j++) g->n[j].in_head = fwd.in_head;
    }
    if (g->n_head_backward < 0) g->n_head_backward = g->n_n;
    /* A trainable parameter that no loss reaches would keep a stale gradient: give it zeros
     * by construction instead (there is none today; sema rejects blocks that reach no task). */
    for (int p = 0; p < g->model->n_params; p++) {
        int t = g->param_tensor[p];
        if (g->model->params[p].trainable && g->t[t].grad < 0)
            internal_error("trainable parameter %s receives no gradient", g->t[t].name);
    }
}

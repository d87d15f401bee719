/* Last-step pruning: work on time steps that nothing reads is not done.
 *
 * The book's trunk ends "… attention (residual) → layernorm → pool(last) → funnel": of the
 * attention block's [T, E] output only row T − 1 reaches the loss, yet a direct translation computes
 * every row's query, scores, softmax, output projection, residual add and layernorm — about a
 * sixth of a DualTaskModel training step. This pass walks back from each pool(last) through
 * row-wise layers whose output has no other reader (layernorm, activations, residual adds) and
 * rewrites them to produce the last row only; an attention reached this way becomes the
 * last-query attention (keys and values still over all rows), and any other operand of a residual
 * add is sliced by a new pool(last). The pool itself becomes a copy of the now [C]-shaped row.
 *
 * Nothing changes numerically beyond float rounding: the pruned kernels compute the same row with
 * the same dropout masks (tests/compiler/test_lstm_attention.c), and only layers without an
 * element-indexed random mask are rewritten (a dropout's mask index depends on the tensor's shape,
 * so the walk stops there). Gated by mtlc --no-last-step-pruning for comparisons.
 * Runs on the forward graph, before autodiff, which then derives the smaller backward pass.
 */
#include "ir/ir.h"

#include "util/util.h"

#include <string.h>

static int producer(const IrGraph *g, int t) {
    for (int i = 0; i < g->n_n; i++)
        for (int j = 0; j < IR_MAX_OUT; j++)
            if (g->n[i].out[j] == t) return i;
    return -1;
}

static int uses(const IrGraph *g, int t) {
    int u = 0;
    for (int i = 0; i < g->n_n; i++)
        for (int j = 0; j < IR_MAX_IN; j++)
            if (g->n[i].in[j] == t) u++;
    return u;
}

static bool is_task_output(const IrGraph *g, int t) {
    for (int k = 0; k < g->model->n_tasks; k++)
        if (g->task_output[k] == t) return true;
    return false;
}

/* a [T, C] activation read once, by the pass's chain, and by nothing outside the graph */
static bool private_rows(const IrGraph *g, int t) {
    const IrTensor *x = &g->t[t];
    return x->role == IR_ROLE_ACT && x->batched && x->shape.rank == 2 && uses(g, t) == 1 && !is_task_output(g, t);
}

/* the per-sample shape of tensor t becomes [n] */
static void reshape1(IrGraph *g, int t, int64_t n) {
    g->t[t].shape = (Shape){.rank = 1, .dim = {n}};
    g->t[t].size = n;
}

/* can the chain ending in tensor t (produced by node i) be pruned to its last row, and does it
 * reach an attention (the only rewrite that saves real work)? */
static bool prunable(const IrGraph *g, int t) {
    for (int depth = 0; depth < 64; depth++) {
        if (!private_rows(g, t)) return false;
        int i = producer(g, t);
        if (i < 0) return false;
        const IrNode *n = &g->n[i];
        switch (n->op) {
        case IR_ATTENTION: return true;
        case IR_LAYERNORM:
        case IR_ACT: t = n->in[0]; break;
        case IR_ADD:
            for (int k = 0; k < 2; k++) {
                int p = producer(g, n->in[k]);
                if (p >= 0 && g->n[p].op == IR_ATTENTION && private_rows(g, n->in[k])) return true;
            }
            return false;
        default: return false;
        }
    }
    return false;
}

/* inserts pool(last) of tensor t before node `at`; returns the new [C] tensor */
static int insert_last_row(IrGraph *g, int at, int t) {
    const IrTensor *x = &g->t[t];
    int64_t C = x->shape.dim[1];
    char name[1024];
    snprintf(name, sizeof name, "%s.last", x->name);
    Shape s = {.rank = 1, .dim = {C}};
    bool needs_grad = x->needs_grad; /* x may move when the tensor table grows */
    int y = ir_add_tensor(g, name, IR_ROLE_ACT, &s, true);
    g->t[y].needs_grad = needs_grad;
    IrNode p = ir_node(IR_POOL);
    p.in[0] = t;
    p.out[0] = y;
    p.pool = POOL_LAST;
    p.layer_block = g->n[at].layer_block;
    p.layer = g->n[at].layer;
    p.in_head = g->n[at].in_head;
    ir_add_node(g, p); /* appended; move it in front of `at` */
    IrNode moved = g->n[g->n_n - 1];
    memmove(&g->n[at + 1], &g->n[at], (size_t)(g->n_n - 1 - at) * sizeof *g->n);
    g->n[at] = moved;
    g->n_forward++;
    return y;
}

/* rewrites the chain ending in tensor t to its last row; returns how many nodes were inserted
 * before the chain's end (so the caller's node index can be corrected) */
static int prune(IrGraph *g, int t) {
    int inserted = 0;
    for (;;) {
        int i = producer(g, t);
        IrNode *n = &g->n[i];
        const int64_t T = g->t[t].shape.dim[0], C = g->t[t].shape.dim[1];
        switch (n->op) {
        case IR_ATTENTION:
            reshape1(g, n->out[0], C);
            reshape1(g, n->out[2], n->heads * T); /* probs: the last row of each head */
            reshape1(g, n->out[3], C);            /* heads before out_proj */
            n->last_step = true;
            return inserted;
        case IR_LAYERNORM:
            reshape1(g, n->out[0], C);
            reshape1(g, n->out[1], C);
            reshape1(g, n->out[2], 1);
            t = n->in[0];
            break;
        case IR_ACT:
            reshape1(g, n->out[0], C);
            t = n->in[0];
            break;
        case IR_ADD: {
            reshape1(g, n->out[0], C);
            int follow = -1;
            for (int k = 0; k < 2 && follow < 0; k++) {
                int p = producer(g, n->in[k]);
                if (p >= 0 && g->n[p].op == IR_ATTENTION && private_rows(g, n->in[k])) follow = k;
            }
            int other = n->in[1 - follow], chain = n->in[follow];
            int y = insert_last_row(g, i, other); /* node i moves to i + 1 */
            inserted++;
            g->n[i + 1].in[1 - follow] = y;
            t = chain;
            break;
        }
        default: internal_error("last-step pruning reached a %s node", ir_op_names[n->op]);
        }
    }
}

int ir_prune_last_step(IrGraph *g) {
    if (g->n_forward != g->n_n) internal_error("last-step pruning runs before autodiff");
    int pruned = 0;
    for (int i = 0; i < g->n_n; i++) {
        IrNode *pool = &g->n[i];
        if (pool->op != IR_POOL || pool->pool != POOL_LAST) continue;
        int x = pool->in[0];
        if (!prunable(g, x)) continue;
        i += prune(g, x);
        /* the pool's input is now the [C] last row: the pool becomes a copy of it */
        pool = &g->n[i];
        pool->op = IR_FLATTEN;
        pool->pool = 0;
        pruned++;
    }
    return pruned;
}

/* Graph IR construction, lowering from the typed model, fusion, memory planning, verification
 * and dumps. Autodiff lives in autodiff.c; codegen reads the planned graph.
 * Deliberately not here: anything LLVM, anything about the runtime beyond the region layout.
 */
#include "ir/ir.h"

#include "kernels/mtl_kernels.h"
#include "util/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const char *const ir_op_names[IR_OP_COUNT] = {
#define IR_NAME(e, n, ni, no) #n,
    IR_ALL_OPS(IR_NAME)
#undef IR_NAME
};

static const int ir_op_arity[IR_OP_COUNT][2] = {
#define IR_ARITY(e, n, ni, no) {ni, no},
    IR_ALL_OPS(IR_ARITY)
#undef IR_ARITY
};

int ir_add_tensor(IrGraph *g, const char *name, IrRole role, const Shape *shape, bool batched) {
    /* callers often pass the shape of another tensor: copy it before the array may move */
    Shape sh = shape ? *shape : (Shape){.rank = 0};
    if (g->n_t == g->cap_t) {
        g->cap_t = g->cap_t ? 2 * g->cap_t : 32;
        g->t = xrealloc(g->t, (size_t)g->cap_t * sizeof *g->t);
    }
    IrTensor *t = &g->t[g->n_t];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->role = role;
    t->shape = sh;
    t->size = shape ? shape_count(&sh) : 1;
    t->batched = batched;
    t->param = -1;
    t->task = -1;
    t->offset = -1;
    t->grad = -1;
    return g->n_t++;
}

IrNode ir_node(IrOp op) {
    IrNode n;
    memset(&n, 0, sizeof n);
    n.op = op;
    for (int i = 0; i < 3; i++) n.in[i] = -1;
    n.out[0] = n.out[1] = -1;
    n.task = -1;
    n.layer_block = n.layer = -1;
    return n;
}

int ir_add_node(IrGraph *g, IrNode node) {
    if (g->n_n == g->cap_n) {
        g->cap_n = g->cap_n ? 2 * g->cap_n : 32;
        g->n = xrealloc(g->n, (size_t)g->cap_n * sizeof *g->n);
    }
    g->n[g->n_n] = node;
    return g->n_n++;
}

void ir_free(IrGraph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_t; i++) free(g->t[i].name);
    free(g->t);
    free(g->n);
    free(g->task_output);
    free(g->task_target);
    free(g->task_loss);
    free(g->param_tensor);
    free(g->param_order);
    free(g);
}

/* Lowers one block's layers onto `cur`; returns the block's output tensor. */
static int lower_block(IrGraph *g, const Model *m, int bi, int cur, uint32_t *site) {
    const Block *b = &m->blocks[bi];
    for (int li = 0; li < b->n_layers; li++) {
        const Layer *l = &b->layers[li];
        char name[512];
        snprintf(name, sizeof name, "%s.out", l->path);
        IrNode n;
        switch (l->kind) {
        case LAYER_DENSE:
            n = ir_node(IR_DENSE);
            n.in[0] = cur;
            n.in[1] = g->param_tensor[l->weight_param];
            n.in[2] = l->bias_param >= 0 ? g->param_tensor[l->bias_param] : -1;
            n.act = MTL_ACT_IDENTITY;
            break;
        case LAYER_ACT:
            n = ir_node(IR_ACT);
            n.in[0] = cur;
            n.act = l->act;
            break;
        case LAYER_DROPOUT:
            n = ir_node(IR_DROPOUT);
            n.in[0] = cur;
            n.p = l->p;
            n.site = (*site)++;
            break;
        default:
            internal_error("unknown layer kind %d", (int)l->kind);
        }
        n.out[0] = ir_add_tensor(g, name, IR_ROLE_ACT, &l->out, true);
        n.layer_block = bi;
        n.layer = li;
        ir_add_node(g, n);
        cur = n.out[0];
    }
    return cur;
}

IrGraph *ir_lower(const Model *m) {
    IrGraph *g = xcalloc(1, sizeof *g);
    g->model = m;
    g->input = ir_add_tensor(g, m->input_name, IR_ROLE_INPUT, &m->input, true);
    g->param_tensor = xcalloc((size_t)(m->n_params ? m->n_params : 1), sizeof(int));
    for (int i = 0; i < m->n_params; i++) {
        int t = ir_add_tensor(g, m->params[i].name, IR_ROLE_PARAM, &m->params[i].shape, false);
        g->t[t].param = i;
        g->t[t].needs_grad = m->params[i].trainable;
        g->param_tensor[i] = t;
    }
    uint32_t site = 0;
    int trunk_out = lower_block(g, m, 0, g->input, &site);
    g->task_output = xcalloc((size_t)m->n_tasks + 1, sizeof(int));
    g->task_target = xcalloc((size_t)m->n_tasks + 1, sizeof(int));
    g->task_loss = xcalloc((size_t)m->n_tasks + 1, sizeof(int));
    for (int k = 0; k < m->n_tasks; k++) {
        const Task *task = &m->tasks[k];
        int out = lower_block(g, m, task->block, trunk_out, &site);
        if (out == trunk_out || g->t[out].role != IR_ROLE_ACT) {
            /* an empty head: give the task its own output buffer so every task's predictions
             * live at a distinct place in the acts region */
            char name[512];
            snprintf(name, sizeof name, "%s.head.out", task->name);
            IrNode n = ir_node(IR_ACT);
            n.in[0] = out;
            n.act = MTL_ACT_IDENTITY;
            n.out[0] = ir_add_tensor(g, name, IR_ROLE_ACT, &g->t[out].shape, true);
            ir_add_node(g, n);
            out = n.out[0];
        }
        g->task_output[k] = out;
    }
    /* Losses after every head, so the forward order is: trunk, heads, losses. */
    for (int k = 0; k < m->n_tasks; k++) {
        const Task *task = &m->tasks[k];
        char name[512];
        Shape ts = {.rank = 1, .dim = {task->target_kind == MTL_TARGET_CLASS ? 1 : task->target_width}};
        snprintf(name, sizeof name, "%s.target", task->name);
        int tt = ir_add_tensor(g, name, IR_ROLE_TARGET, &ts, true);
        g->t[tt].task = k;
        Shape scalar = {.rank = 0};
        snprintf(name, sizeof name, "%s.loss", task->name);
        int lt = ir_add_tensor(g, name, IR_ROLE_LOSS, &scalar, false);
        g->t[lt].task = k;
        IrNode n = ir_node(IR_LOSS);
        n.in[0] = g->task_output[k];
        n.in[1] = tt;
        n.out[0] = lt;
        n.loss = task->loss;
        n.delta = task->huber_delta;
        n.task = k;
        ir_add_node(g, n);
        g->task_target[k] = tt;
        g->task_loss[k] = lt;
    }
    g->n_forward = g->n_n;
    /* needs_grad flows forward from trainable parameters */
    for (int i = 0; i < g->n_n; i++) {
        const IrNode *n = &g->n[i];
        bool any = false;
        for (int j = 0; j < 3; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].needs_grad) any = true;
        for (int j = 0; j < 2; j++)
            if (n->out[j] >= 0) g->t[n->out[j]].needs_grad = any;
    }
    return g;
}

static int count_uses(const IrGraph *g, int t) {
    int uses = 0;
    for (int i = 0; i < g->n_forward; i++)
        for (int j = 0; j < 3; j++)
            if (g->n[i].in[j] == t) uses++;
    return uses;
}

static bool is_task_output(const IrGraph *g, int t) {
    for (int k = 0; k < g->model->n_tasks; k++)
        if (g->task_output[k] == t) return true;
    return false;
}

void ir_fuse(IrGraph *g) {
    assert(g->n_forward == g->n_n && "fuse runs before autodiff");
    for (int i = 0; i + 1 < g->n_n; i++) {
        IrNode *d = &g->n[i];
        if (d->op != IR_DENSE || d->act != MTL_ACT_IDENTITY) continue;
        int y = d->out[0];
        if (count_uses(g, y) != 1 || is_task_output(g, y)) continue;
        int ai = -1;
        for (int j = i + 1; j < g->n_n; j++)
            if (g->n[j].op == IR_ACT && g->n[j].in[0] == y) ai = j;
        if (ai < 0) continue;
        IrNode a = g->n[ai];
        d->act = a.act;
        d->out[0] = a.out[0];
        /* the pre-activation stays materialised only when the derivative needs it */
        d->out[1] = mtk_act_needs_input((int)a.act) ? y : -1;
        memmove(&g->n[ai], &g->n[ai + 1], (size_t)(g->n_n - ai - 1) * sizeof *g->n);
        g->n_n--;
        g->n_forward--;
    }
}

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

void ir_plan_memory(IrGraph *g) {
    const Model *m = g->model;
    /* parameters: group by group, declaration order within a group, so each group is one range */
    g->param_order = xcalloc((size_t)(m->n_params ? m->n_params : 1), sizeof(int));
    int64_t off = 0;
    int k = 0;
    for (int gi = 0; gi < m->n_groups; gi++)
        for (int p = 0; p < m->n_params; p++)
            if (m->params[p].group == gi) {
                g->param_order[k++] = p;
                g->t[g->param_tensor[p]].offset = off;
                off += m->params[p].count;
            }
    if (k != m->n_params) internal_error("parameters outside every group reached the IR");
    g->n_params = off;
    /* activations and their gradients: one slot each, aligned to 64 bytes per sample */
    bool *used = xcalloc((size_t)g->n_t, 1);
    for (int i = 0; i < g->n_n; i++)
        for (int j = 0; j < 2; j++)
            if (g->n[i].out[j] >= 0) used[g->n[i].out[j]] = true;
    int64_t act = 0;
    for (int t = 0; t < g->n_t; t++) {
        IrTensor *x = &g->t[t];
        if (x->role == IR_ROLE_PARAM_GRAD) x->offset = g->t[g->param_tensor[x->param]].offset;
        if ((x->role == IR_ROLE_ACT || x->role == IR_ROLE_GRAD) && used[t]) {
            x->offset = act;
            act = align16(act + x->size);
        }
    }
    free(used);
    g->acts_per_sample = act;
}

void ir_verify(const IrGraph *g) {
    int *def = xcalloc((size_t)g->n_t, sizeof(int));
    for (int i = 0; i < g->n_n; i++) {
        const IrNode *n = &g->n[i];
        if (n->op < 0 || n->op >= IR_OP_COUNT) internal_error("node %d: bad op", i);
        int ni = ir_op_arity[n->op][0], no = ir_op_arity[n->op][1];
        for (int j = 0; j < 3; j++)
            if (n->in[j] >= g->n_t || (j >= ni && n->in[j] != -1))
                internal_error("node %d (%s): bad input %d", i, ir_op_names[n->op], j);
        for (int j = 0; j < 2; j++) {
            int o = n->out[j];
            if (o >= g->n_t || (j >= no && o != -1)) internal_error("node %d (%s): bad output", i, ir_op_names[n->op]);
            /* accumulating nodes add into a value defined earlier; everything else defines once */
            if (o >= 0 && !n->accumulate && def[o]++ && g->t[o].role != IR_ROLE_PARAM_GRAD)
                internal_error("tensor %s defined twice", g->t[o].name);
        }
        if (n->op == IR_DENSE) {
            const IrTensor *x = &g->t[n->in[0]], *w = &g->t[n->in[1]], *y = &g->t[n->out[0]];
            if (w->shape.rank != 2 || w->shape.dim[1] != x->size || w->shape.dim[0] != y->size)
                internal_error("dense %s: shape mismatch", y->name);
        }
    }
    free(def);
}

static const char *role_name(IrRole r) {
    switch (r) {
    case IR_ROLE_PARAM: return "param";
    case IR_ROLE_PARAM_GRAD: return "param_grad";
    case IR_ROLE_INPUT: return "input";
    case IR_ROLE_TARGET: return "target";
    case IR_ROLE_ACT: return "act";
    case IR_ROLE_GRAD: return "grad";
    case IR_ROLE_LOSS: return "loss";
    }
    return "?";
}

static void dump_tensor_ref(const IrGraph *g, FILE *out, int t) {
    const IrTensor *x = &g->t[t];
    fprintf(out, "%%%d:%s[", t, x->name);
    if (x->batched) fprintf(out, "B%s", x->shape.rank ? "," : "");
    for (int i = 0; i < x->shape.rank; i++) fprintf(out, "%s%lld", i ? "," : "", (long long)x->shape.dim[i]);
    fprintf(out, "]");
}

void ir_dump(const IrGraph *g, FILE *out, bool with_backward) {
    fprintf(out, "; model %s: %lld parameter floats, %lld activation floats per sample\n", g->model->name,
            (long long)g->n_params, (long long)g->acts_per_sample);
    fprintf(out, "; tensors\n");
    for (int t = 0; t < g->n_t; t++) {
        const IrTensor *x = &g->t[t];
        if (!with_backward && (x->role == IR_ROLE_GRAD || x->role == IR_ROLE_PARAM_GRAD)) continue;
        fprintf(out, ";   ");
        dump_tensor_ref(g, out, t);
        fprintf(out, " %s offset %lld%s\n", role_name(x->role), (long long)x->offset,
                x->needs_grad ? " needs_grad" : "");
    }
    int end = with_backward ? g->n_n : g->n_forward;
    for (int i = 0; i < end; i++) {
        const IrNode *n = &g->n[i];
        if (i == g->n_forward) fprintf(out, "; backward\n");
        fprintf(out, "  ");
        bool first = true;
        for (int j = 0; j < 2; j++)
            if (n->out[j] >= 0) {
                if (!first) fprintf(out, ", ");
                dump_tensor_ref(g, out, n->out[j]);
                first = false;
            }
        fprintf(out, " %s= %s(", n->accumulate ? "+" : "", ir_op_names[n->op]);
        first = true;
        for (int j = 0; j < 3; j++)
            if (n->in[j] >= 0) {
                if (!first) fprintf(out, ", ");
                dump_tensor_ref(g, out, n->in[j]);
                first = false;
            }
        fprintf(out, ")");
        if (n->op == IR_DENSE || n->op == IR_ACT || n->op == IR_DENSE_EPI_BWD || n->op == IR_ACT_BWD)
            fprintf(out, " act=%d", (int)n->act);
        if (n->op == IR_DROPOUT || n->op == IR_DROPOUT_BWD) fprintf(out, " p=%g site=%u", n->p, n->site);
        if (n->op == IR_LOSS || n->op == IR_LOSS_BWD) fprintf(out, " loss=%d task=%d", (int)n->loss, n->task);
        fprintf(out, "\n");
    }
}

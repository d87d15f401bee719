/* Graph IR construction, lowering from the typed model, fusion, memory planning, verification
 * and dumps. Autodiff lives in autodiff.c; codegen reads the planned graph.
 * Deliberately not here: anything LLVM, anything about the runtime beyond the region layout.
 */
#include "ir/ir.h"

#include "kernels/mtl_kernels.h"
#include "kernels/seq_kernels.h"
#include "util/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const char *const ir_op_names[IR_OP_COUNT] = {
#define IR_NAME(e, n, ni, no) #n,
    IR_ALL_OPS(IR_NAME)
#undef IR_NAME
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
    for (int i = 0; i < IR_MAX_IN; i++) n.in[i] = -1;
    for (int i = 0; i < IR_MAX_OUT; i++) n.out[i] = -1;
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
    free(g->buffer_tensor);
    free(g->param_order);
    free(g);
}

static int add_act(IrGraph *g, const char *path, const char *suffix, const Shape *shape, bool batched) {
    char name[1024];
    snprintf(name, sizeof name, "%s.%s", path, suffix);
    return ir_add_tensor(g, name, IR_ROLE_ACT, shape, batched);
}

static Shape shape1(int64_t a) { return (Shape){.rank = 1, .dim = {a}}; }

static int param_t(const IrGraph *g, int p) { return p >= 0 ? g->param_tensor[p] : -1; }

static int lower_layers(IrGraph *g, const Model *m, int bi, const Layer *layers, int n_layers, int cur,
                        uint32_t *site);

/* One layer applied to `cur`; returns its output tensor. */
static int lower_layer(IrGraph *g, const Model *m, int bi, int li, const Layer *l, int cur, uint32_t *site) {
    IrNode n;
    const Shape *xs = &g->t[cur].shape;
    switch (l->kind) {
    case LAYER_DENSE:
        n = ir_node(IR_DENSE);
        n.in[0] = cur;
        n.in[1] = param_t(g, l->weight_param);
        n.in[2] = param_t(g, l->bias_param);
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
    case LAYER_CONV1D:
        n = ir_node(IR_CONV1D);
        n.in[0] = cur;
        n.in[1] = param_t(g, l->weight_param);
        n.in[2] = param_t(g, l->bias_param);
        n.kernel = l->kernel;
        n.stride = l->stride;
        n.padding = l->padding;
        break;
    case LAYER_BATCHNORM: {
        int64_t C = xs->dim[xs->rank - 1];
        Shape c = shape1(C);
        n = ir_node(IR_BATCHNORM);
        n.in[0] = cur;
        n.in[1] = param_t(g, l->weight_param);
        n.in[2] = param_t(g, l->bias_param);
        n.in[3] = g->buffer_tensor[l->first_buffer];
        n.in[4] = g->buffer_tensor[l->first_buffer + 1];
        n.out[1] = add_act(g, l->path, "xhat", xs, true);
        n.out[2] = add_act(g, l->path, "rstd", &c, false);
        n.eps = l->eps;
        n.momentum = l->momentum;
        break;
    }
    case LAYER_LAYERNORM: {
        Shape rows = shape1(shape_count(xs) / xs->dim[xs->rank - 1]);
        n = ir_node(IR_LAYERNORM);
        n.in[0] = cur;
        n.in[1] = param_t(g, l->weight_param);
        n.in[2] = param_t(g, l->bias_param);
        n.out[1] = add_act(g, l->path, "xhat", xs, true);
        n.out[2] = add_act(g, l->path, "rstd", &rows, true);
        n.eps = l->eps;
        break;
    }
    case LAYER_LSTM: {
        int dirs = l->bidirectional ? 2 : 1;
        int64_t T = xs->dim[0], H = l->units;
        for (int layer = 0; layer < l->lstm_layers; layer++) {
            char sub[600];
            snprintf(sub, sizeof sub, "%s.l%d", l->path, layer);
            n = ir_node(IR_LSTM);
            n.in[0] = cur;
            for (int d = 0; d < dirs; d++)
                for (int k = 0; k < 4; k++)
                    n.in[1 + 4 * d + k] = param_t(g, l->first_param + (layer * dirs + d) * 4 + k);
            Shape ys = {.rank = 2, .dim = {T, H * dirs}};
            Shape gs = shape1(dirs * T * 4 * H), cs = shape1(dirs * T * H);
            n.out[0] = add_act(g, sub, "out", &ys, true);
            n.out[1] = add_act(g, sub, "gates", &gs, true);
            n.out[2] = add_act(g, sub, "cells", &cs, true);
            n.layer_block = bi;
            n.layer = li;
            ir_add_node(g, n);
            cur = n.out[0];
            if (layer + 1 < l->lstm_layers && l->p > 0.0f) { /* PyTorch: between layers, not after the last */
                IrNode d = ir_node(IR_DROPOUT);
                d.in[0] = cur;
                d.p = l->p;
                d.site = (*site)++;
                d.out[0] = add_act(g, sub, "dropout", &ys, true);
                d.layer_block = bi;
                d.layer = li;
                ir_add_node(g, d);
                cur = d.out[0];
            }
        }
        return cur;
    }
    case LAYER_ATTENTION: {
        int64_t T = xs->dim[0], E = xs->dim[1];
        Shape qkv = {.rank = 2, .dim = {T, 3 * E}}, pr = shape1(l->heads * T * T);
        n = ir_node(IR_ATTENTION);
        n.in[0] = cur;
        for (int k = 0; k < 4; k++) n.in[1 + k] = param_t(g, l->first_param + k);
        n.out[1] = add_act(g, l->path, "qkv", &qkv, true);
        n.out[2] = add_act(g, l->path, "probs", &pr, true);
        n.out[3] = add_act(g, l->path, "heads_out", xs, true);
        n.heads = l->heads;
        n.p = l->p;
        n.site = (*site)++;
        break;
    }
    case LAYER_RESIDUAL: {
        int body = lower_layers(g, m, bi, l->body, l->n_body, cur, site);
        n = ir_node(IR_ADD);
        n.in[0] = cur;
        n.in[1] = body;
        break;
    }
    case LAYER_POOL: {
        n = ir_node(IR_POOL);
        n.in[0] = cur;
        n.pool = (int)l->pool;
        if (l->pool == POOL_MAX) n.out[1] = add_act(g, l->path, "argmax", &l->out, true);
        break;
    }
    case LAYER_FLATTEN:
        n = ir_node(IR_FLATTEN);
        n.in[0] = cur;
        break;
    default:
        internal_error("unknown layer kind %d", (int)l->kind);
    }
    n.out[0] = add_act(g, l->path, "out", &l->out, true);
    n.layer_block = bi;
    n.layer = li;
    ir_add_node(g, n);
    return n.out[0];
}

static int lower_layers(IrGraph *g, const Model *m, int bi, const Layer *layers, int n_layers, int cur,
                        uint32_t *site) {
    for (int li = 0; li < n_layers; li++) cur = lower_layer(g, m, bi, li, &layers[li], cur, site);
    return cur;
}

/* Lowers one block's layers onto `cur`; returns the block's output tensor. */
static int lower_block(IrGraph *g, const Model *m, int bi, int cur, uint32_t *site) {
    const Block *b = &m->blocks[bi];
    return lower_layers(g, m, bi, b->layers, b->n_layers, cur, site);
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
    g->buffer_tensor = xcalloc((size_t)(m->n_buffers ? m->n_buffers : 1), sizeof(int));
    for (int i = 0; i < m->n_buffers; i++) {
        int t = ir_add_tensor(g, m->buffers[i].name, IR_ROLE_BUFFER, &m->buffers[i].shape, false);
        g->t[t].param = i;
        g->buffer_tensor[i] = t;
    }
    uint32_t site = 0;
    int trunk_out = lower_block(g, m, 0, g->input, &site);
    g->trunk_out = trunk_out;
    int first_head_node = g->n_n;
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
        n.amnl_cap = task->amnl_cap;
        n.task = k;
        ir_add_node(g, n);
        g->task_target[k] = tt;
        g->task_loss[k] = lt;
    }
    g->n_forward = g->n_n;
    for (int i = first_head_node; i < g->n_n; i++) g->n[i].in_head = true;
    /* needs_grad flows forward from trainable parameters */
    for (int i = 0; i < g->n_n; i++) {
        const IrNode *n = &g->n[i];
        bool any = false;
        for (int j = 0; j < IR_MAX_IN; j++)
            if (n->in[j] >= 0 && g->t[n->in[j]].needs_grad) any = true;
        for (int j = 0; j < IR_MAX_OUT; j++)
            if (n->out[j] >= 0) g->t[n->out[j]].needs_grad = any;
    }
    return g;
}

static int count_uses(const IrGraph *g, int t) {
    int uses = 0;
    for (int i = 0; i < g->n_forward; i++)
        for (int j = 0; j < IR_MAX_IN; j++)
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
        if (count_uses(g, y) != 1 || is_task_output(g, y) || y == g->trunk_out) continue;
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

static void scratch_max(IrGraph *g, MtkScratch s) {
    if (s.per_sample > g->scratch_per_sample) g->scratch_per_sample = s.per_sample;
    if (s.fixed > g->scratch_fixed) g->scratch_fixed = s.fixed;
}

/* The kernel scratch each node needs (asked of the kernels themselves, so the sizes cannot drift). */
static void plan_scratch(IrGraph *g) {
    for (int i = 0; i < g->n_n; i++) {
        const IrNode *n = &g->n[i];
        switch (n->op) {
        case IR_CONV1D:
        case IR_CONV1D_BWD: {
            const IrTensor *x = &g->t[n->op == IR_CONV1D ? n->in[0] : n->in[1]];
            const IrTensor *w = &g->t[n->op == IR_CONV1D ? n->in[1] : n->in[2]];
            scratch_max(g, mtk_conv1d_scratch(x->shape.dim[0], x->shape.dim[1], w->shape.dim[0], n->kernel,
                                              n->stride, n->padding));
            break;
        }
        case IR_LSTM:
        case IR_LSTM_BWD: {
            const IrTensor *x = &g->t[n->op == IR_LSTM ? n->in[0] : n->in[4]];
            const IrTensor *whh = &g->t[n->op == IR_LSTM ? n->in[2] : n->in[6]];
            int bidir = n->op == IR_LSTM ? n->in[5] >= 0 : n->in[7] >= 0;
            scratch_max(g, (bidir ? mtk_lstm_bidir_scratch : mtk_lstm_scratch)(x->shape.dim[0], x->shape.dim[1],
                                                                                whh->shape.dim[1]));
            break;
        }
        case IR_ATTENTION:
        case IR_ATTENTION_BWD: {
            const IrTensor *x = &g->t[n->op == IR_ATTENTION ? n->in[0] : n->in[4]];
            scratch_max(g, mtk_attention_scratch(x->shape.dim[0], x->shape.dim[1], n->heads));
            break;
        }
        default: break;
        }
    }
}

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
    int64_t boff = 0;
    for (int b = 0; b < m->n_buffers; b++) {
        g->t[g->buffer_tensor[b]].offset = boff;
        boff += m->buffers[b].count;
    }
    g->n_buffer_floats = boff;
    /* activations and their gradients: one slot each, 64-byte aligned; per-sample tensors first,
     * then the shared kernel scratch (its per-sample part last, its fixed part right after, so a
     * kernel sees one contiguous area), then tensors of fixed size */
    bool *used = xcalloc((size_t)g->n_t, 1);
    for (int i = 0; i < g->n_n; i++)
        for (int j = 0; j < IR_MAX_OUT; j++)
            if (g->n[i].out[j] >= 0) used[g->n[i].out[j]] = true;
    plan_scratch(g);
    int64_t act = 0, fixed = align16(g->scratch_fixed);
    for (int t = 0; t < g->n_t; t++) {
        IrTensor *x = &g->t[t];
        if (x->role == IR_ROLE_PARAM_GRAD) x->offset = g->t[g->param_tensor[x->param]].offset;
        if ((x->role == IR_ROLE_ACT || x->role == IR_ROLE_GRAD) && used[t]) {
            if (x->batched) {
                x->offset = act;
                act = align16(act + x->size);
            } else {
                x->offset = fixed;
                fixed = align16(fixed + x->size);
            }
        }
    }
    free(used);
    g->acts_per_sample = act + align16(g->scratch_per_sample);
    g->acts_fixed = fixed;
}

void ir_verify(const IrGraph *g) {
    static const int arity[IR_OP_COUNT][2] = {
#define IR_ARITY(e, n, ni, no) {ni, no},
        IR_ALL_OPS(IR_ARITY)
#undef IR_ARITY
    };
    int *def = xcalloc((size_t)g->n_t, sizeof(int));
    for (int i = 0; i < g->n_n; i++) {
        const IrNode *n = &g->n[i];
        if (n->op < 0 || n->op >= IR_OP_COUNT) internal_error("node %d: bad op", i);
        int ni = arity[n->op][0], no = arity[n->op][1];
        for (int j = 0; j < IR_MAX_IN; j++)
            if (n->in[j] >= g->n_t || (j >= ni && n->in[j] != -1))
                internal_error("node %d (%s): bad input %d", i, ir_op_names[n->op], j);
        for (int j = 0; j < IR_MAX_OUT; j++) {
            int o = n->out[j];
            if (o >= g->n_t || (j >= no && o != -1)) internal_error("node %d (%s): bad output", i, ir_op_names[n->op]);
            /* accumulating nodes add into a value defined earlier; everything else defines once */
            bool acc = j == 0 ? n->accumulate : n->accumulate_params;
            if (n->op == IR_DENSE_EPI_BWD && j == 1) acc = n->accumulate;
            if (o >= 0 && !acc && def[o]++ && g->t[o].role != IR_ROLE_PARAM_GRAD)
                internal_error("tensor %s defined twice", g->t[o].name);
        }
        if (n->op == IR_DENSE) {
            const IrTensor *x = &g->t[n->in[0]], *w = &g->t[n->in[1]], *y = &g->t[n->out[0]];
            int64_t K = w->shape.dim[1], N = w->shape.dim[0];
            if (w->shape.rank != 2 || x->size % K || y->size % N || x->size / K != y->size / N)
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
    case IR_ROLE_BUFFER: return "buffer";
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
    fprintf(out, "; model %s: %lld parameter floats, %lld buffer floats, activations %lld floats per sample + %lld fixed"
                 " (kernel scratch %lld per sample + %lld)\n",
            g->model->name, (long long)g->n_params, (long long)g->n_buffer_floats, (long long)g->acts_per_sample,
            (long long)g->acts_fixed, (long long)g->scratch_per_sample, (long long)g->scratch_fixed);
    fprintf(out, "; tensors\n");
    for (int t = 0; t < g->n_t; t++) {
        const IrTensor *x = &g->t[t];
        if (!with_backward && (x->role == IR_ROLE_GRAD || x->role == IR_ROLE_PARAM_GRAD)) continue;
        fprintf(out, ";   ");
        dump_tensor_ref(g, out, t);
        fprintf(out, " %s%s offset %lld%s\n", role_name(x->role), x->role == IR_ROLE_ACT && !x->batched ? " fixed" : "", (long long)x->offset,
                x->needs_grad ? " needs_grad" : "");
    }
    int end = with_backward ? g->n_n : g->n_forward;
    for (int i = 0; i < end; i++) {
        const IrNode *n = &g->n[i];
        if (i == g->n_forward) fprintf(out, "; backward\n");
        fprintf(out, "  ");
        bool first = true;
        for (int j = 0; j < IR_MAX_OUT; j++)
            if (n->out[j] >= 0) {
                if (!first) fprintf(out, ", ");
                dump_tensor_ref(g, out, n->out[j]);
                first = false;
            }
        fprintf(out, " %s= %s(", n->accumulate ? "+" : "", ir_op_names[n->op]);
        first = true;
        for (int j = 0; j < IR_MAX_IN; j++)
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
        if ((n->op == IR_LOSS || n->op == IR_LOSS_BWD) && n->amnl_cap > 0) fprintf(out, " amnl=%g", n->amnl_cap);
        if (n->op == IR_CONV1D) fprintf(out, " kernel=%lld stride=%lld padding=%lld", (long long)n->kernel,
                                        (long long)n->stride, (long long)n->padding);
        if (n->op == IR_ATTENTION) fprintf(out, " heads=%lld p=%g site=%u", (long long)n->heads, n->p, n->site);
        if (n->op == IR_POOL) fprintf(out, " pool=%d", n->pool);
        if (n->last_step) fprintf(out, " last_step");
        if (n->accumulate_params) fprintf(out, " accumulate_params");
        fprintf(out, "\n");
    }
}

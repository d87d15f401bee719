/* `--emit=typed`: the checked Model as text — blocks with per-sample shapes, every parameter
 * with its path, shape, group, init and reaching tasks, groups, tasks, data and train defaults.
 * For people and golden tests; the report (compiler/report) is the user-facing summary. */
#include "sema/model.h"

#include <string.h>

static void shape_str(const Shape *s, FILE *out)
{
    fputc('[', out);
    for (int i = 0; i < s->rank; i++)
        fprintf(out, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    fputc(']', out);
}

static const char *act_name(MtlAct a)
{
    static const char *const n[] = {"identity", "relu", "tanh", "sigmoid", "gelu", "softplus"};
    return (unsigned)a < 6 ? n[a] : "?";
}

static const char *loss_name(MtlLoss l)
{
    static const char *const n[] = {"mse", "mae", "huber", "cross_entropy"};
    return (unsigned)l < 4 ? n[l] : "?";
}

static void tasks_str(const Model *m, uint32_t mask, FILE *out)
{
    int k = 0;
    fputc('{', out);
    for (int t = 0; t < m->n_tasks; t++)
        if (mask & (1u << t))
            fprintf(out, "%s%s", k++ ? ", " : "", m->tasks[t].name);
    fputc('}', out);
}

/* One line per layer, with its options as they would be written (defaults included for the
 * sequence layers), then its body one level deeper. */
static void dump_layers(const Layer *layers, int n, int depth, FILE *out)
{
    static const char *const pools[] = {"last", "mean", "max"};
    for (int l = 0; l < n; l++) {
        const Layer *L = &layers[l];
        fprintf(out, "%*s%s ", 2 * depth, "", L->path);
        switch (L->kind) {
        case LAYER_DENSE:
            fprintf(out, "dense(%lld%s)", (long long)L->units, L->bias ? "" : ", bias = false");
            break;
        case LAYER_DROPOUT:
            fprintf(out, "dropout(%g)", (double)L->p);
            break;
        case LAYER_ACT:
            fputs(act_name(L->act), out);
            break;
        case LAYER_CONV1D:
            fprintf(out, "conv1d(%lld, kernel = %lld, padding = %lld, stride = %lld%s)", (long long)L->units,
                    (long long)L->kernel, (long long)L->padding, (long long)L->stride,
                    L->bias ? "" : ", bias = false");
            break;
        case LAYER_BATCHNORM:
            fprintf(out, "batchnorm(eps = %g, momentum = %g)", (double)L->eps, (double)L->momentum);
            break;
        case LAYER_LAYERNORM:
            fprintf(out, "layernorm(eps = %g)", (double)L->eps);
            break;
        case LAYER_LSTM:
            fprintf(out, "lstm(%lld, layers = %d, bidirectional = %s, dropout = %g)", (long long)L->units,
                    L->lstm_layers, L->bidirectional ? "true" : "false", (double)L->p);
            break;
        case LAYER_ATTENTION:
            fprintf(out, "attention(heads = %lld, dropout = %g)", (long long)L->heads, (double)L->p);
            break;
        case LAYER_RESIDUAL:
            fputs("residual", out);
            break;
        case LAYER_POOL:
            fprintf(out, "pool(%s)", (unsigned)L->pool < 3 ? pools[L->pool] : "?");
            break;
        case LAYER_FLATTEN:
            fputs("flatten", out);
            break;
        }
        fputc(' ', out);
        shape_str(&L->in, out);
        fputs(" -> ", out);
        shape_str(&L->out, out);
        fputc('\n', out);
        dump_layers(L->body, L->n_body, depth + 1, out);
    }
}

static const char *init_name(MtlInit i)
{
    return i == MTL_INIT_ZEROS ? "zeros" : i == MTL_INIT_ONES ? "ones" : "uniform";
}

void model_dump_typed(const Model *m, FILE *out)
{
    fprintf(out, "model %s\n", m->name);
    fprintf(out, "input %s ", m->input_name);
    shape_str(&m->input, out);
    fputc('\n', out);
    for (int b = 0; b < m->n_blocks; b++) {
        const Block *bl = &m->blocks[b];
        fprintf(out, "block %s (%s) ", bl->prefix, bl->is_trunk ? "trunk" : "head");
        shape_str(&bl->in, out);
        fputs(" -> ", out);
        shape_str(&bl->out, out);
        fputc('\n', out);
        dump_layers(bl->layers, bl->n_layers, 1, out);
    }
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        fprintf(out, "param %s ", p->name);
        shape_str(&p->shape, out);
        fprintf(out, " count %lld group %s %s init ", (long long)p->count,
                p->group >= 0 ? m->groups[p->group].name : "?", p->trainable ? "trainable" : "frozen");
        if (p->init == MTL_INIT_UNIFORM)
            fprintf(out, "uniform(%.6g)", (double)p->init_bound);
        else
            fputs(init_name(p->init), out);
        fputs(" tasks ", out);
        tasks_str(m, p->task_mask, out);
        fputc('\n', out);
    }
    for (int i = 0; i < m->n_buffers; i++) {
        const Buffer *b = &m->buffers[i];
        fprintf(out, "buffer %s ", b->name);
        shape_str(&b->shape, out);
        fprintf(out, " count %lld init %s\n", (long long)b->count, init_name(b->init));
    }
    for (int g = 0; g < m->n_groups; g++) {
        const Group *gr = &m->groups[g];
        fprintf(out, "group %s lr %g weight_decay %g betas (%g, %g) eps %g%s%s\n", gr->name, (double)gr->lr,
                (double)gr->weight_decay, (double)gr->beta1, (double)gr->beta2, (double)gr->eps,
                gr->frozen ? " frozen" : "", gr->implicit ? " implicit" : "");
    }
    for (int t = 0; t < m->n_tasks; t++) {
        const Task *tk = &m->tasks[t];
        fprintf(out, "task %s target ", tk->name);
        if (tk->target_kind == MTL_TARGET_CLASS)
            fprintf(out, "class(%lld)", (long long)tk->num_classes);
        else
            fprintf(out, "real[%lld]", (long long)tk->target_width);
        fprintf(out, " loss %s", loss_name(tk->loss));
        if (tk->loss == MTL_LOSS_HUBER)
            fprintf(out, "(delta = %g)", (double)tk->huber_delta);
        if (tk->amnl_cap > 0)
            fprintf(out, "(amnl = %g)", (double)tk->amnl_cap);
        fprintf(out, " weight %g out %lld bind %s\n", (double)tk->weight, (long long)tk->out_width, tk->bind);
    }
    const DataBinding *db = &m->data;
    if (db->kind == MTL_DATA_CMAPSS) {
        fprintf(out, "data cmapss rul_cap %g thresholds (", (double)db->rul_cap);
        for (int i = 0; i < db->n_thresholds; i++)
            fprintf(out, "%s%g", i ? ", " : "", (double)db->thresholds[i]);
        fputs(") features (", out);
        for (int i = 0; i < db->n_features; i++)
            fprintf(out, "%s%s", i ? ", " : "", db->features[i]);
        fputc(')', out);
    } else {
        fputs("data csv inputs (", out);
        for (int i = 0; i < db->n_input_columns; i++)
            fprintf(out, "%s\"%s\"", i ? ", " : "", db->input_columns[i]);
        fputc(')', out);
        if (db->group_column)
            fprintf(out, " group \"%s\"", db->group_column);
    }
    fprintf(out, " validation %g", (double)db->validation);
    if (db->window != 1 || db->window_stride != 1)
        fprintf(out, " window %lld stride %lld", (long long)db->window, (long long)db->window_stride);
    if (db->conditions > 1)
        fprintf(out, " conditions %d", db->conditions);
    if (db->synthetic_conditions > 1 || db->synthetic_fault_modes > 1)
        fprintf(out, " synthetic_conditions %d synthetic_fault_modes %d", db->synthetic_conditions,
                db->synthetic_fault_modes);
    if (db->train_path)
        fprintf(out, " train \"%s\"", db->train_path);
    if (db->test_path)
        fprintf(out, " test \"%s\"", db->test_path);
    if (db->rul_path)
        fprintf(out, " rul \"%s\"", db->rul_path);
    fputc('\n', out);
    if (m->balance.method) {
        fprintf(out, "balance %s", m->balance.method);
        for (int i = 0; i < m->balance.n_options; i++)
            fprintf(out, " %s %g", m->balance.option[i], m->balance.value[i]);
        if (m->balance.norms_on_output) fprintf(out, " norms trunk_output");
        fputc('\n', out);
    }
    fprintf(out, "train epochs %d batch %d seed %llu", m->train.epochs, m->train.batch,
            (unsigned long long)m->train.seed);
    if (m->train.lr > 0)
        fprintf(out, " lr %g", (double)m->train.lr);
    for (int i = 0; i < TRAIN_N_PROTOCOL; i++) {
        if (!m->train.has[i])
            continue;
        if (!strcmp(train_protocol_key(i), "select"))
            fprintf(out, " select %s", m->train.value[i] != 0 ? "test" : "validation");
        else
            fprintf(out, " %s %g", train_protocol_key(i), m->train.value[i]);
    }
    fputc('\n', out);
}

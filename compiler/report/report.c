/* The parameter report in text and JSON (see report.h). All numbers come from
 * report_totals() and the Model, so both forms always agree. It does not check the
 * model (sema did) and does not print diagnostics. */
#include "report/report.h"

#include "seq_kernels.h" /* the kernels' own scratch sizes, as the code generator plans them */

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define FLOPS_RULE                                                                                 \
    "dense: 2*in*out FLOPs (one multiply-add = 2); bias add, activation, dropout: 1 per element; " \
    "losses not counted; training step = forward + backward, where backward costs 2x forward "     \
    "for dense matrix products (input and weight gradients) and 1x for elementwise ops"
#define MEMORY_RULE                                                                                \
    "float32 parameters + gradients + 2 AdamW moments (trainable only), + activations "            \
    "(input and every layer output) and the gradients of the layer outputs, + targets, for one "   \
    "batch"
#define SCRATCH_RULE                                                                               \
    ", + the kernel scratch (one area shared by all layers, sized for the largest: per-sample "    \
    "part * batch + fixed part)"

/* Extra rules, one per layer kind, printed (and appended to the JSON rules) only for the kinds
 * a model uses, so a dense model's report says exactly what it always said. T is time steps,
 * E the attention width, NH its heads, H the LSTM hidden size, I its input width. */
static const struct KindRule {
    LayerKind kind;
    const char *flops, *memory; /* memory NULL: nothing saved beyond the layer's output, no scratch */
} kind_rules[] = {
    {LAYER_CONV1D, "conv1d = 2*To*Cout*Cin*K, bias 1 per output",
     "conv1d keeps only its output; scratch (im2col workspace) To*K*Cin per sample + 2*Cout*K*Cin"},
    {LAYER_BATCHNORM, "batchnorm = 5 per element", "batchnorm keeps its normalised input"},
    {LAYER_LAYERNORM, "layernorm = 5 per element", "layernorm keeps its normalised input and 1 statistic per row"},
    {LAYER_LSTM, "lstm = 2*T*4H*(I+H) + 17*T*H per layer and direction (bias adds, gates, cell, output), "
                 "dropout between layers 1 per element",
     "lstm keeps gates 4*T*H and cells T*H per layer and direction, every lower layer's output and its "
     "dropout output (with their gradients); scratch 4*T*H + 2*H per sample and direction (the "
     "two directions of a bidirectional layer run at once)"},
    {LAYER_ATTENTION, "attention = 2*T*E*3E (in projection) + 2*T*T*E*2 (scores, weighted sum) + "
                      "2*T*E*E (out projection), biases 1 per element, softmax 5 per score (NH*T*T), "
                      "dropout on the probabilities 1 per score",
     "attention keeps q, k, v (3*T*E), the probabilities NH*T*T and the context T*E; scratch 4*T*E per "
     "sample + 2*T*T"},
    {LAYER_RESIDUAL, "residual add = 1 per element", NULL},
    {LAYER_POOL, "pool(mean|max) = 1 per input element, pool(last) 0", "pool(max) keeps its argmax"},
    {LAYER_FLATTEN, "flatten = 0 (a view)", "flatten is a view and adds nothing"},
};
#define N_KIND_RULES (int)(sizeof kind_rules / sizeof kind_rules[0])

/* Saturating arithmetic: absurd specs must not overflow (sema bounds every tensor to 2^40). */
static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

static int64_t mul3(int64_t a, int64_t b, int64_t c)
{
    return sat_mul(sat_mul(a, b), c);
}

typedef struct Cost {
    int64_t mm;   /* matrix-product FLOPs (backward 2x) */
    int64_t elem; /* elementwise FLOPs (backward 1x) */
    int64_t acts;  /* floats kept per sample: the layer's output and its saved state */
    int64_t grads; /* gradient floats per sample: one per layer output (saved state has none) */
    MtkScratch scratch; /* the largest kernel scratch (per-sample and fixed parts, each the max) */
} Cost;

static void scratch_max(Cost *c, MtkScratch s)
{
    if (s.per_sample > c->scratch.per_sample)
        c->scratch.per_sample = s.per_sample;
    if (s.fixed > c->scratch.fixed)
        c->scratch.fixed = s.fixed;
}

/* Per-sample cost of a layer list (residual bodies included), by the rules above. */
static void layers_cost(const Layer *layers, int n, Cost *c)
{
    for (int l = 0; l < n; l++) {
        const Layer *L = &layers[l];
        int64_t in = shape_count(&L->in), out = shape_count(&L->out);
        int64_t t = L->in.rank == 2 ? L->in.dim[0] : 1;
        int64_t last = L->in.rank ? L->in.dim[L->in.rank - 1] : 1;
        int64_t e = last, h = L->units;
        if (L->kind != LAYER_FLATTEN) { /* flatten is a view of its input */
            c->acts = sat_add(c->acts, out);
            c->grads = sat_add(c->grads, out);
        }
        switch (L->kind) {
        case LAYER_DENSE:
            c->mm = sat_add(c->mm, mul3(2, in, L->units));
            if (L->bias)
                c->elem = sat_add(c->elem, out);
            break;
        case LAYER_ACT:
        case LAYER_DROPOUT:
            c->elem = sat_add(c->elem, out);
            break;
        case LAYER_CONV1D:
            c->mm = sat_add(c->mm, mul3(2, out, mul3(L->in.dim[L->in.rank - 1], L->kernel, 1)));
            if (L->bias)
                c->elem = sat_add(c->elem, out);
            scratch_max(c, mtk_conv1d_scratch(t, last, L->units, L->kernel, L->stride, L->padding));
            break;
        case LAYER_BATCHNORM:
        case LAYER_LAYERNORM:
            c->elem = sat_add(c->elem, sat_mul(5, out));
            c->acts = sat_add(c->acts, out);
            if (L->kind == LAYER_LAYERNORM) /* 1/std per row (batchnorm's is per channel, fixed) */
                c->acts = sat_add(c->acts, t);
            break;
        case LAYER_LSTM: {
            int64_t dirs = L->bidirectional ? 2 : 1;
            for (int k = 0; k < L->lstm_layers; k++) {
                int64_t i = k == 0 ? last : h * dirs;
                c->mm = sat_add(c->mm, sat_mul(dirs, mul3(2 * t, 4 * h, i + h)));
                c->elem = sat_add(c->elem, sat_mul(dirs, mul3(17, t, h)));
                c->acts = sat_add(c->acts, sat_mul(dirs, mul3(5, t, h)));
                if (k + 1 < L->lstm_layers) { /* a lower layer's output, then its dropout */
                    int64_t between = L->p > 0 ? 2 : 1;
                    c->acts = sat_add(c->acts, sat_mul(between, mul3(t, h, dirs)));
                    c->grads = sat_add(c->grads, sat_mul(between, mul3(t, h, dirs)));
                }
                if (k > 0 && L->p > 0)
                    c->elem = sat_add(c->elem, mul3(t, h, dirs));
                scratch_max(c, (dirs == 2 ? mtk_lstm_bidir_scratch : mtk_lstm_scratch)(t, i, h));
            }
            break;
        }
        case LAYER_ATTENTION: {
            int64_t scores = mul3(L->heads, t, t), drop = L->p > 0 ? 1 : 0;
            c->mm = sat_add(c->mm, mul3(2 * t, e, 3 * e));
            c->mm = sat_add(c->mm, mul3(4 * t, t, e));
            c->mm = sat_add(c->mm, mul3(2 * t, e, e));
            c->elem = sat_add(c->elem, mul3(4, t, e));
            c->elem = sat_add(c->elem, sat_mul(5 + drop, scores));
            /* the probabilities are kept before dropout; its mask is recomputed, not stored */
            c->acts = sat_add(c->acts, mul3(4, t, e));
            c->acts = sat_add(c->acts, scores);
            scratch_max(c, mtk_attention_scratch(t, e, L->heads));
            break;
        }
        case LAYER_RESIDUAL:
            layers_cost(L->body, L->n_body, c);
            c->elem = sat_add(c->elem, out);
            break;
        case LAYER_POOL:
            if (L->pool != POOL_LAST)
                c->elem = sat_add(c->elem, in);
            if (L->pool == POOL_MAX) /* argmax, one per output */
                c->acts = sat_add(c->acts, out);
            break;
        case LAYER_FLATTEN:
            break;
        }
    }
}

/* Which layer kinds the model uses (bit per LayerKind), residual bodies included. */
static unsigned kinds_used(const Layer *layers, int n)
{
    unsigned k = 0;
    for (int l = 0; l < n; l++)
        k |= (1u << layers[l].kind) | kinds_used(layers[l].body, layers[l].n_body);
    return k;
}

static unsigned model_kinds(const Model *m)
{
    unsigned k = 0;
    for (int b = 0; b < m->n_blocks; b++)
        k |= kinds_used(m->blocks[b].layers, m->blocks[b].n_layers);
    return k;
}

static int64_t buffer_floats(const Model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_buffers; i++)
        n = sat_add(n, m->buffers[i].count);
    return n;
}

void report_totals(const Model *m, ReportTotals *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        t->total += p->count;
        if (p->trainable)
            t->trainable += p->count;
        else
            t->frozen += p->count;
        if (m->blocks[p->block].is_trunk)
            t->shared += p->count;
        else
            t->task_specific += p->count;
    }
    t->shared_percent = t->total ? 100.0 * (double)t->shared / (double)t->total : 0.0;
    Cost c = {.acts = shape_count(&m->input)};
    for (int b = 0; b < m->n_blocks; b++)
        layers_cost(m->blocks[b].layers, m->blocks[b].n_layers, &c);
    t->acts_per_sample = c.acts;
    t->grads_per_sample = c.grads;
    t->scratch_per_sample = c.scratch.per_sample;
    t->scratch_fixed = c.scratch.fixed;
    t->forward_flops = sat_add(c.mm, c.elem);
    t->train_flops = sat_add(sat_mul(3, c.mm), sat_mul(2, c.elem));
    int64_t batch = m->train.batch, targets = 0;
    for (int k = 0; k < m->n_tasks; k++)
        targets += m->tasks[k].target_width;
    t->mem_params = 4 * t->total;
    t->mem_grads = 4 * t->trainable;
    t->mem_optimizer = 8 * t->trainable;
    t->mem_acts = mul3(4, sat_add(t->acts_per_sample, t->grads_per_sample), batch);
    t->mem_targets = 4 * targets * batch;
    /* one scratch area shared by every kernel, sized for the largest (as the code generator plans it) */
    t->mem_scratch = sat_mul(4, sat_add(sat_mul(t->scratch_per_sample, batch), t->scratch_fixed));
    /* buffers (batchnorm running statistics) are memory too, though not parameters */
    t->mem_total = sat_add(t->mem_params + t->mem_grads + t->mem_optimizer + t->mem_targets,
                           sat_add(sat_add(t->mem_acts, t->mem_scratch), sat_mul(4, buffer_floats(m))));
}

/* Floats of one training step at batch for what c has counted so far: activations, their
 * gradients and the kernel scratch (mem_acts + mem_scratch of report_totals, in floats). */
static int64_t step_floats(const Cost *c, int64_t batch)
{
    int64_t per_sample = sat_add(sat_add(c->acts, c->grads), c->scratch.per_sample);
    return sat_add(sat_mul(per_sample, batch), c->scratch.fixed);
}

int64_t report_step_floats(const Model *m, int64_t batch, int64_t limit, int *block, int *layer)
{
    Cost c = {.acts = shape_count(&m->input)};
    int64_t total = step_floats(&c, batch);
    *block = *layer = total > limit ? -1 : -2;
    for (int b = 0; b < m->n_blocks; b++)
        for (int l = 0; l < m->blocks[b].n_layers; l++) {
            layers_cost(&m->blocks[b].layers[l], 1, &c);
            total = step_floats(&c, batch);
            if (total > limit && *block == -2) {
                *block = b;
                *layer = l;
            }
        }
    return total;
}

/* ---- formatting helpers -------------------------------------------------------------- */

/* 3497220 -> "3,497,220" */
const char *report_thousands(int64_t v, char *buf, size_t cap)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(raw), o = 0;
    if (v < 0 && o + 1 < cap)
        buf[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        buf[o++] = raw[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n)
            buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}

static const char *human_bytes(int64_t b, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%lld B", (long long)b);
    else
        snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}

static void shape_text(const Shape *s, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < s->rank && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

static void tasks_text(const Model *m, uint32_t mask, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int k = 0; k < m->n_tasks && o < cap; k++)
        if (mask & (1u << k))
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", m->tasks[k].name);
    if (o == 0)
        snprintf(buf, cap, "-");
}

static const char *loss_name(MtlLoss l)
{
    static const char *const n[] = {"mse", "mae", "huber", "cross_entropy"};
    return (unsigned)l < 4 ? n[l] : "?";
}

/* Floats as their shortest decimal (1e-3f prints as 0.001, not 0.0010000000474974513). */
static double tidy(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

/* A small text table: columns sized to their widest cell, numbers right-aligned. */
#define TABLE_COLS 8
typedef struct Table {
    int n_cols, n_rows, cap;
    bool right[TABLE_COLS];
    char **cells; /* n_rows * n_cols */
} Table;

static void table_row(Table *t, const char *const *cells)
{
    if (t->n_rows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cells = realloc(t->cells, (size_t)t->cap * (size_t)t->n_cols * sizeof *t->cells);
        if (!t->cells)
            abort();
    }
    for (int c = 0; c < t->n_cols; c++) {
        t->cells[t->n_rows * t->n_cols + c] = strdup(cells[c]);
        if (!t->cells[t->n_rows * t->n_cols + c])
            abort();
    }
    t->n_rows++;
}

static void table_print(Table *t, FILE *out)
{
    size_t w[TABLE_COLS] = {0};
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->n_cols; c++) {
            size_t n = strlen(t->cells[r * t->n_cols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (int r = 0; r < t->n_rows; r++) {
        fputs("  ", out);
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = t->cells[r * t->n_cols + c];
            bool last = c == t->n_cols - 1;
            if (t->right[c] && r > 0)
                fprintf(out, "%*s", (int)w[c], s);
            else if (last)
                fputs(s, out);
            else
                fprintf(out, "%-*s", (int)w[c], s);
            if (!last)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
    for (int i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

static int64_t group_count(const Model *m, int g, bool trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].group == g && (!trainable_only || m->params[i].trainable))
            n += m->params[i].count;
    return n;
}

static int64_t block_count(const Model *m, int b)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].block == b)
            n += m->params[i].count;
    return n;
}

/* Parameters a task's gradient reaches. */
static int64_t task_reach(const Model *m, int k)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].task_mask & (1u << k))
            n += m->params[i].count;
    return n;
}

static uint32_t block_mask(const Model *m, int b)
{
    uint32_t mask = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].block == b)
            mask |= m->params[i].task_mask;
    return mask;
}

/* ---- text ---------------------------------------------------------------------------- */

/* Words of text on lines of at most 96 columns, each starting with `indent` spaces. */
static void print_wrapped(FILE *out, int indent, const char *text)
{
    const int width = 96;
    int col = 0;
    while (*text) {
        while (*text == ' ')
            text++;
        size_t n = strcspn(text, " ");
        if (n == 0)
            break;
        if (col > indent && col + 1 + (int)n > width) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0)
            col = fprintf(out, "%*s", indent, "");
        else
            col += fprintf(out, " ");
        col += fprintf(out, "%.*s", (int)n, text);
        text += n;
    }
    if (col)
        fputc('\n', out);
}

/* The rules of the kinds this model uses, one sentence each (flops or memory). */
static void print_kind_rules(const Model *m, bool memory, FILE *out)
{
    unsigned used = model_kinds(m);
    for (int i = 0; i < N_KIND_RULES; i++) {
        const char *r = memory ? kind_rules[i].memory : kind_rules[i].flops;
        if (!(used & (1u << kind_rules[i].kind)) || !r)
            continue;
        char line[512];
        snprintf(line, sizeof line, "%s.", r);
        print_wrapped(out, 8, line);
    }
}

/* The JSON rule: the base sentence, then "; " and each used kind's rule. */
static char *json_rule(const Model *m, const char *base, bool memory)
{
    unsigned used = model_kinds(m);
    size_t cap = strlen(base) + 1;
    for (int i = 0; i < N_KIND_RULES; i++) {
        const char *r = memory ? kind_rules[i].memory : kind_rules[i].flops;
        if (r)
            cap += strlen(r) + 2;
    }
    char *buf = malloc(cap);
    if (!buf)
        abort();
    size_t o = (size_t)snprintf(buf, cap, "%s", base);
    for (int i = 0; i < N_KIND_RULES; i++) {
        const char *r = memory ? kind_rules[i].memory : kind_rules[i].flops;
        if (r && (used & (1u << kind_rules[i].kind)))
            o += (size_t)snprintf(buf + o, cap - o, "; %s", r);
    }
    return buf;
}

/* What the balance method measures and trains, beyond the model's own parameters. */
static const char *balance_method(const Model *m)
{
    return m->balance.method ? m->balance.method : "fixed";
}

static void balance_describe(const Model *m, const ReportTotals *t, char *what, size_t wn, char *state,
                             size_t sn)
{
    const char *b = balance_method(m);
    char sh[32];
    report_thousands(t->shared, sh, sizeof sh);
    double every = 1;
    for (int i = 0; i < m->balance.n_options; i++)
        if (!strcmp(m->balance.option[i], "every"))
            every = m->balance.value[i];
    if (!strcmp(b, "fixed")) {
        snprintf(what, wn, "fixed task weights; one backward pass per step");
        snprintf(state, sn, "none");
    } else if ((!strcmp(b, "gaba") || !strcmp(b, "grace") || !strcmp(b, "gradnorm")) && m->balance.norms_on_output) {
        snprintf(what, wn, "each task's gradient norm at the trunk output (norms = trunk_output), from "
                 "the heads' backward pass per task, then one full backward pass, every %g step%s%s", every,
                 every == 1 ? "" : "s", !strcmp(b, "grace") ? "; AMNL-weighted MSE" : "");
    } else if (!strcmp(b, "gaba") || !strcmp(b, "grace") || !strcmp(b, "gradnorm")) {
        snprintf(what, wn, "each task's gradient norm on the %s shared parameters, from one backward "
                 "pass per task after one forward pass, every %g step%s%s", sh, every, every == 1 ? "" : "s",
                 !strcmp(b, "grace") ? "; AMNL-weighted MSE" : "");
        if (!strcmp(b, "gradnorm"))
            snprintf(state, sn, "%d task weights, trained by their own Adam (not an AdamW group), "
                     "renormalised to sum %d", m->n_tasks, m->n_tasks);
        else
            snprintf(state, sn, "%d task weights (an EMA of inverse-norm weights; not trained by "
                     "gradient descent)", m->n_tasks);
    } else if (!strcmp(b, "uncertainty")) {
        snprintf(what, wn, "weights exp(-s_k) from learned log-variances; one backward pass per step");
        snprintf(state, sn, "%d log-variances s_k, trained in AdamW group 'balance'", m->n_tasks);
    } else if (!strcmp(b, "dwa")) {
        snprintf(what, wn, "weights from the ratio of each task's last two epoch losses; one backward "
                 "pass per step");
        snprintf(state, sn, "the last two epochs' mean losses");
    } else {
        snprintf(what, wn, "each task's gradient on the %s shared parameters (one backward pass per "
                 "task), conflicting components projected away", sh);
        snprintf(state, sn, "none");
    }
}

static void balance_text(const Model *m, const ReportTotals *t, FILE *out)
{
    char what[512], state[256];
    balance_describe(m, t, what, sizeof what, state, sizeof state);
    fprintf(out, "\nBalance: %s", balance_method(m));
    for (int i = 0; i < m->balance.n_options; i++)
        fprintf(out, "%s%s = %g%s", i ? ", " : "(", m->balance.option[i], m->balance.value[i],
                i + 1 == m->balance.n_options && !m->balance.norms_on_output ? ")" : "");
    if (m->balance.norms_on_output)
        fprintf(out, "%snorms = trunk_output)", m->balance.n_options ? ", " : "(");
    fprintf(out, "\n  Measures: %s\n  Trains:   %s\n", what, state);
}

void report_text(const Model *m, FILE *out)
{
    ReportTotals t;
    report_totals(m, &t);
    char a[64], b[64], c[64], d[256], e[64], f[64];
    Table tab;

    shape_text(&m->input, a, sizeof a);
    fprintf(out, "Model %s: input %s %s, %d task%s\n\n", m->name, m->input_name, a, m->n_tasks,
            m->n_tasks == 1 ? "" : "s");

    fputs("Parameters\n", out);
    memset(&tab, 0, sizeof tab);
    tab.n_cols = 6;
    tab.right[2] = true;
    table_row(&tab, (const char *const[]){"Tensor", "Shape", "Params", "Group", "Trainable", "Tasks"});
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        shape_text(&p->shape, a, sizeof a);
        report_thousands(p->count, b, sizeof b);
        tasks_text(m, p->task_mask, d, sizeof d);
        table_row(&tab, (const char *const[]){p->name, a, b, p->group >= 0 ? m->groups[p->group].name : "?",
                                              p->trainable ? "yes" : "frozen", d});
    }
    table_print(&tab, out);

    if (m->n_buffers > 0) {
        fputs("\nBuffers (saved in checkpoints; not parameters, not trained, not in the totals)\n", out);
        tab.n_cols = 4;
        tab.right[2] = true;
        table_row(&tab, (const char *const[]){"Buffer", "Shape", "Count", "Init"});
        for (int i = 0; i < m->n_buffers; i++) {
            const Buffer *bf = &m->buffers[i];
            shape_text(&bf->shape, a, sizeof a);
            report_thousands(bf->count, b, sizeof b);
            table_row(&tab, (const char *const[]){bf->name, a, b, bf->init == MTL_INIT_ONES ? "ones" : "zeros"});
        }
        table_print(&tab, out);
        report_thousands(buffer_floats(m), a, sizeof a);
        fprintf(out, "  %-22s %12s\n", "Total buffers", a);
    }

    fputs("\nGroups\n", out);
    tab.n_cols = 7;
    tab.right[1] = true;
    table_row(&tab, (const char *const[]){"Group", "Params", "lr", "weight_decay", "betas", "eps", "State"});
    for (int g = 0; g < m->n_groups; g++) {
        const Group *gr = &m->groups[g];
        report_thousands(group_count(m, g, false), a, sizeof a);
        if (m->train.lr > 0)
            snprintf(b, sizeof b, "%g (train.lr)", tidy(m->train.lr));
        else
            snprintf(b, sizeof b, "%g", tidy(gr->lr));
        snprintf(c, sizeof c, "%g", tidy(gr->weight_decay));
        snprintf(d, sizeof d, "(%g, %g)", tidy(gr->beta1), tidy(gr->beta2));
        snprintf(e, sizeof e, "%g", tidy(gr->eps));
        table_row(&tab, (const char *const[]){gr->name, a, b, c, d, e,
                                              gr->frozen ? "frozen" : gr->implicit ? "trainable (implicit default group)" : "trainable"});
    }
    table_print(&tab, out);
    if (m->train.lr > 0)
        fprintf(out, "  Note: train.lr = %g overrides the lr of every group; the groups' own lr is not used.\n",
                tidy(m->train.lr));

    fputs("\nBlocks\n", out);
    tab.n_cols = 4;
    tab.right[2] = true;
    table_row(&tab, (const char *const[]){"Block", "Kind", "Params", "Reached by"});
    for (int bl = 0; bl < m->n_blocks; bl++) {
        report_thousands(block_count(m, bl), a, sizeof a);
        tasks_text(m, block_mask(m, bl), d, sizeof d);
        table_row(&tab, (const char *const[]){m->blocks[bl].prefix, m->blocks[bl].is_trunk ? "trunk (shared)" : "head",
                                              a, d});
    }
    table_print(&tab, out);

    fputs("\nTasks\n", out);
    tab.n_cols = 6;
    tab.right[4] = true;
    table_row(&tab, (const char *const[]){"Task", "Target", "Loss", "Weight", "Params reached", "Bind"});
    for (int k = 0; k < m->n_tasks; k++) {
        const Task *tk = &m->tasks[k];
        if (tk->target_kind == MTL_TARGET_CLASS)
            snprintf(a, sizeof a, "class(%lld)", (long long)tk->num_classes);
        else if (tk->target_width == 1)
            snprintf(a, sizeof a, "real");
        else
            snprintf(a, sizeof a, "real[%lld]", (long long)tk->target_width);
        if (tk->loss == MTL_LOSS_HUBER)
            snprintf(b, sizeof b, "huber(delta = %g)", tidy(tk->huber_delta));
        else if (tk->amnl_cap > 0)
            snprintf(b, sizeof b, "mse(amnl = %g)", tidy(tk->amnl_cap));
        else
            snprintf(b, sizeof b, "%s", loss_name(tk->loss));
        snprintf(c, sizeof c, "%g", tidy(tk->weight));
        report_thousands(task_reach(m, k), e, sizeof e);
        table_row(&tab, (const char *const[]){tk->name, a, b, c, e, tk->bind});
    }
    table_print(&tab, out);

    balance_text(m, &t, out);

    fputs("\nTotals\n", out);
    char pct[32];
    report_thousands(t.total, a, sizeof a);
    fprintf(out, "  %-22s %12s\n", "Total params", a);
    report_thousands(t.trainable, a, sizeof a);
    fprintf(out, "  %-22s %12s\n", "Trainable params", a);
    report_thousands(t.frozen, a, sizeof a);
    fprintf(out, "  %-22s %12s\n", "Frozen params", a);
    report_thousands(t.shared, a, sizeof a);
    snprintf(pct, sizeof pct, "%.1f", t.shared_percent);
    fprintf(out, "  %-22s %12s  (%s %% shared)\n", "Shared (trunk)", a, pct);
    report_thousands(t.task_specific, a, sizeof a);
    snprintf(pct, sizeof pct, "%.1f", t.total ? 100.0 - t.shared_percent : 0.0);
    fprintf(out, "  %-22s %12s  (%s %%)\n", "Task-specific (heads)", a, pct);

    fputs("\nCompute (estimated, per sample)\n", out);
    report_thousands(t.forward_flops, a, sizeof a);
    report_thousands(t.train_flops, b, sizeof b);
    fprintf(out, "  Forward FLOPs        %s\n  Training-step FLOPs  %s\n", a, b);
    fputs("  Rule: dense = 2*in*out (a multiply-add is 2 FLOPs); bias add, activation and dropout\n"
          "        = 1 per element; losses are not counted. Training step = forward + backward,\n"
          "        backward = 2x forward for dense products (input and weight gradients), 1x for\n"
          "        elementwise ops.\n", out);
    print_kind_rules(m, false, out);

    report_thousands(m->train.batch, a, sizeof a);
    fprintf(out, "\nMemory of one training step at batch %s\n", a);
    struct { const char *what; int64_t bytes; } rows[] = {
        {"Parameters", t.mem_params},       {"Gradients", t.mem_grads},
        {"AdamW moments", t.mem_optimizer}, {"Activations + gradients", t.mem_acts},
        {"Kernel scratch", t.mem_scratch},  {"Targets", t.mem_targets},
        {"Buffers", 4 * buffer_floats(m)},  {"Total", t.mem_total},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if ((!strcmp(rows[i].what, "Buffers") && m->n_buffers == 0) ||
            (!strcmp(rows[i].what, "Kernel scratch") && t.mem_scratch == 0))
            continue;
        report_thousands(rows[i].bytes, a, sizeof a);
        human_bytes(rows[i].bytes, f, sizeof f);
        fprintf(out, "  %-24s %12s bytes  (%s)\n", rows[i].what, a, f);
    }
    report_thousands(t.acts_per_sample, a, sizeof a);
    report_thousands(t.grads_per_sample, b, sizeof b);
    fprintf(out, "  Rule: float32 parameters, gradients and 2 AdamW moments (trainable only), plus\n"
                 "        activations (input and every layer output, %s floats per sample) and\n"
                 "        the gradients of the layer outputs (%s floats per sample), plus targets,\n"
                 "        for one batch.\n", a, b);
    if (t.mem_scratch > 0) {
        report_thousands(t.scratch_per_sample, a, sizeof a);
        report_thousands(t.scratch_fixed, b, sizeof b);
        fprintf(out, "        Plus the kernel scratch: one area shared by all layers, sized for the\n"
                     "        largest (%s floats per sample + %s).\n", a, b);
    }
    if (m->n_buffers > 0)
        fputs("        Plus the buffers, once.\n", out);
    print_kind_rules(m, true, out);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static cJSON *shape_json(const Shape *s)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < s->rank; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)s->dim[i]));
    return arr;
}

static cJSON *tasks_json(const Model *m, uint32_t mask)
{
    cJSON *arr = cJSON_CreateArray();
    for (int k = 0; k < m->n_tasks; k++)
        if (mask & (1u << k))
            cJSON_AddItemToArray(arr, cJSON_CreateString(m->tasks[k].name));
    return arr;
}

void report_json(const Model *m, FILE *out)
{
    ReportTotals t;
    report_totals(m, &t);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", m->name);
    cJSON *in = cJSON_AddObjectToObject(root, "input");
    cJSON_AddStringToObject(in, "name", m->input_name);
    cJSON_AddItemToObject(in, "shape", shape_json(&m->input));
    cJSON_AddNumberToObject(root, "total", (double)t.total);
    cJSON_AddNumberToObject(root, "trainable", (double)t.trainable);
    cJSON_AddNumberToObject(root, "frozen", (double)t.frozen);
    cJSON_AddNumberToObject(root, "shared", (double)t.shared);
    cJSON_AddNumberToObject(root, "task_specific", (double)t.task_specific);
    char pct[32];
    snprintf(pct, sizeof pct, "%.1f", t.shared_percent);
    cJSON_AddNumberToObject(root, "shared_percent", strtod(pct, NULL));

    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddItemToObject(o, "shape", shape_json(&p->shape));
        cJSON_AddNumberToObject(o, "count", (double)p->count);
        cJSON_AddStringToObject(o, "group", p->group >= 0 ? m->groups[p->group].name : "");
        cJSON_AddBoolToObject(o, "trainable", p->trainable);
        cJSON_AddItemToObject(o, "tasks", tasks_json(m, p->task_mask));
        cJSON_AddStringToObject(o, "block", m->blocks[p->block].prefix);
        cJSON_AddStringToObject(o, "init", p->init == MTL_INIT_UNIFORM ? "uniform" : p->init == MTL_INIT_ZEROS ? "zeros" : "ones");
        cJSON_AddNumberToObject(o, "bound", tidy(p->init_bound));
        cJSON_AddItemToArray(tensors, o);
    }

    /* always present (empty for most dense models), so tools see one schema */
    cJSON *buffers = cJSON_AddArrayToObject(root, "buffers");
    for (int i = 0; i < m->n_buffers; i++) {
        const Buffer *bf = &m->buffers[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", bf->name);
        cJSON_AddItemToObject(o, "shape", shape_json(&bf->shape));
        cJSON_AddNumberToObject(o, "count", (double)bf->count);
        cJSON_AddStringToObject(o, "block", m->blocks[bf->block].prefix);
        cJSON_AddStringToObject(o, "init", bf->init == MTL_INIT_ONES ? "ones" : "zeros");
        cJSON_AddItemToArray(buffers, o);
    }
    cJSON_AddNumberToObject(root, "buffer_total", (double)buffer_floats(m));

    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    for (int g = 0; g < m->n_groups; g++) {
        const Group *gr = &m->groups[g];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", gr->name);
        cJSON_AddNumberToObject(o, "count", (double)group_count(m, g, false));
        cJSON_AddNumberToObject(o, "trainable", (double)group_count(m, g, true));
        /* the lr the trainer uses, and where it comes from */
        cJSON_AddNumberToObject(o, "lr", tidy(m->train.lr > 0 ? m->train.lr : gr->lr));
        cJSON_AddStringToObject(o, "lr_from", m->train.lr > 0 ? "train.lr" : "group");
        cJSON_AddNumberToObject(o, "group_lr", tidy(gr->lr));
        cJSON_AddNumberToObject(o, "weight_decay", tidy(gr->weight_decay));
        cJSON *betas = cJSON_AddArrayToObject(o, "betas");
        cJSON_AddItemToArray(betas, cJSON_CreateNumber(tidy(gr->beta1)));
        cJSON_AddItemToArray(betas, cJSON_CreateNumber(tidy(gr->beta2)));
        cJSON_AddNumberToObject(o, "eps", tidy(gr->eps));
        cJSON_AddBoolToObject(o, "frozen", gr->frozen);
        cJSON_AddBoolToObject(o, "implicit", gr->implicit);
        cJSON_AddItemToArray(groups, o);
    }

    if (m->train.lr > 0)
        cJSON_AddNumberToObject(root, "train_lr", tidy(m->train.lr));
    else
        cJSON_AddNullToObject(root, "train_lr");
    if (m->train.lr > 0)
        cJSON_AddStringToObject(root, "lr_note", "train.lr overrides the lr of every group");

    cJSON *blocks = cJSON_AddArrayToObject(root, "blocks");
    for (int b = 0; b < m->n_blocks; b++) {
        const Block *bl = &m->blocks[b];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", bl->prefix);
        cJSON_AddStringToObject(o, "kind", bl->is_trunk ? "trunk" : "head");
        if (bl->is_trunk)
            cJSON_AddNullToObject(o, "task");
        else
            cJSON_AddStringToObject(o, "task", m->tasks[bl->task].name);
        cJSON_AddNumberToObject(o, "count", (double)block_count(m, b));
        cJSON_AddItemToObject(o, "tasks", tasks_json(m, block_mask(m, b)));
        cJSON_AddItemToObject(o, "input_shape", shape_json(&bl->in));
        cJSON_AddItemToObject(o, "output_shape", shape_json(&bl->out));
        cJSON_AddItemToArray(blocks, o);
    }

    cJSON *tasks = cJSON_AddArrayToObject(root, "tasks");
    for (int k = 0; k < m->n_tasks; k++) {
        const Task *tk = &m->tasks[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", tk->name);
        cJSON_AddStringToObject(o, "target", tk->target_kind == MTL_TARGET_CLASS ? "class" : "real");
        cJSON_AddNumberToObject(o, "target_width", (double)tk->target_width);
        cJSON_AddNumberToObject(o, "classes", (double)tk->num_classes);
        cJSON_AddStringToObject(o, "loss", loss_name(tk->loss));
        if (tk->loss == MTL_LOSS_HUBER)
            cJSON_AddNumberToObject(o, "huber_delta", tidy(tk->huber_delta));
        if (tk->amnl_cap > 0)
            cJSON_AddNumberToObject(o, "amnl_cap", tidy(tk->amnl_cap));
        cJSON_AddNumberToObject(o, "weight", tidy(tk->weight));
        cJSON_AddNumberToObject(o, "out_width", (double)tk->out_width);
        cJSON_AddNumberToObject(o, "params", (double)task_reach(m, k));
        cJSON_AddStringToObject(o, "bind", tk->bind);
        cJSON_AddItemToArray(tasks, o);
    }

    {
        char what[512], state[256];
        balance_describe(m, &t, what, sizeof what, state, sizeof state);
        cJSON *bo = cJSON_AddObjectToObject(root, "balance");
        cJSON_AddStringToObject(bo, "method", balance_method(m));
        cJSON *op = cJSON_AddObjectToObject(bo, "options");
        for (int i = 0; i < m->balance.n_options; i++)
            cJSON_AddNumberToObject(op, m->balance.option[i], m->balance.value[i]);
        cJSON_AddStringToObject(bo, "norms", m->balance.norms_on_output ? "trunk_output" : "shared_params");
        cJSON_AddStringToObject(bo, "measures", what);
        cJSON_AddStringToObject(bo, "trains", state);
    }

    cJSON *fl = cJSON_AddObjectToObject(root, "flops");
    cJSON_AddNumberToObject(fl, "forward_per_sample", (double)t.forward_flops);
    cJSON_AddNumberToObject(fl, "train_step_per_sample", (double)t.train_flops);
    char *rule = json_rule(m, FLOPS_RULE, false);
    cJSON_AddStringToObject(fl, "rule", rule);
    free(rule);

    cJSON *mem = cJSON_AddObjectToObject(root, "memory");
    cJSON_AddNumberToObject(mem, "batch", m->train.batch);
    cJSON_AddNumberToObject(mem, "bytes", (double)t.mem_total);
    cJSON_AddNumberToObject(mem, "params_bytes", (double)t.mem_params);
    cJSON_AddNumberToObject(mem, "grads_bytes", (double)t.mem_grads);
    cJSON_AddNumberToObject(mem, "optimizer_bytes", (double)t.mem_optimizer);
    cJSON_AddNumberToObject(mem, "activations_bytes", (double)t.mem_acts);
    cJSON_AddNumberToObject(mem, "scratch_bytes", (double)t.mem_scratch);
    cJSON_AddNumberToObject(mem, "targets_bytes", (double)t.mem_targets);
    cJSON_AddNumberToObject(mem, "buffers_bytes", (double)(4 * buffer_floats(m)));
    cJSON_AddNumberToObject(mem, "activations_per_sample", (double)t.acts_per_sample);
    cJSON_AddNumberToObject(mem, "gradients_per_sample", (double)t.grads_per_sample);
    cJSON_AddNumberToObject(mem, "scratch_per_sample", (double)t.scratch_per_sample);
    cJSON_AddNumberToObject(mem, "scratch_fixed", (double)t.scratch_fixed);
    char base[sizeof MEMORY_RULE SCRATCH_RULE ", + buffers once"];
    snprintf(base, sizeof base, "%s%s%s", MEMORY_RULE, t.mem_scratch ? SCRATCH_RULE : "",
             m->n_buffers ? ", + buffers once" : "");
    rule = json_rule(m, base, true);
    cJSON_AddStringToObject(mem, "rule", rule);
    free(rule);

    char *text = cJSON_Print(root);
    if (text) {
        fputs(text, out);
        fputc('\n', out);
        cJSON_free(text);
    }
    cJSON_Delete(root);
}

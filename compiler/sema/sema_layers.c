/* Layers: the layer table, option matching, per-layer shape rules and parameters.
 *
 * One table (layer_defs) names every layer, its options (the first n_positional may be given
 * without a name) and its check function. A check reads its options, enforces the layer's
 * input rank and limits, computes the output shape (per sample: [C] or [T, C]) and declares
 * the layer's parameters and buffers with PyTorch's names, order and default initialisation.
 * Errors point at the layer or the offending option; shape errors add a note where the input
 * shape was last set. After an error a layer still produces a plausible shape, so the layers
 * after it are checked too. Residual bodies are layer lists built recursively (nesting is
 * bounded by the parser's depth limit).
 * It does not check tasks, losses or groups (sema.c, sema_groups.c).
 */
#include "sema/sema_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every size (units, channels, kernel, heads, input dimensions…) is at most MAX_SIZE and every
 * layer output at most MAX_ELEMS elements per sample, so counts and FLOPs stay far from overflow;
 * the model's totals (parameters, training-step memory) are bounded by sema_check_size. */
#define MAX_SIZE SEMA_MAX_SIZE
#define MAX_ELEMS ((int64_t)1 << 40)

#define MAX_LSTM_LAYERS 100 /* each adds 4 or 8 tensors; far beyond any useful depth */
/* Parameter tensors in a model (a dense layer has 2, lstm(H, layers = 100, bidirectional = true)
 * 800): bounds the parameter table, and the group checks that visit it once per selector. */
#define MAX_TENSORS 65536

#define LAYER_MAX_OPTS 5

typedef struct LayerCtx {
    Sema *s;
    const Ast *la;   /* the AST_LAYER: the layer's span */
    const Ast *call; /* its AST_CALL: name and arguments */
    Layer *L;
    int block, top;  /* Param.block and Param.layer (the block's top-level layer holding this one) */
    Span from;       /* where the input shape was last set */
    const Ast *opt[LAYER_MAX_OPTS]; /* the argument given for each option key, or NULL */
} LayerCtx;

typedef struct LayerDef {
    const char *name;
    void (*check)(LayerCtx *c);
    MtlAct act;             /* activations only */
    int n_positional;       /* how many leading keys may also be given without a name (0 or 1) */
    const char *positional; /* what the positional argument is, for messages */
    const char *keys[LAYER_MAX_OPTS + 1]; /* option keys, NULL-terminated */
} LayerDef;

static void check_dense(LayerCtx *c);
static void check_dropout(LayerCtx *c);
static void check_act(LayerCtx *c);
static void check_conv1d(LayerCtx *c);
static void check_norm(LayerCtx *c);
static void check_lstm(LayerCtx *c);
static void check_attention(LayerCtx *c);
static void check_residual(LayerCtx *c);
static void check_pool(LayerCtx *c);
static void check_flatten(LayerCtx *c);

/* The dense-model layers first, in their historical order ("did you mean" prefers earlier ones). */
static const LayerDef layer_defs[] = {
    {"dense", check_dense, 0, 1, "its units", {"units", "bias"}},
    {"relu", check_act, MTL_ACT_RELU, 0, NULL, {NULL}},
    {"tanh", check_act, MTL_ACT_TANH, 0, NULL, {NULL}},
    {"sigmoid", check_act, MTL_ACT_SIGMOID, 0, NULL, {NULL}},
    {"gelu", check_act, MTL_ACT_GELU, 0, NULL, {NULL}},
    {"softplus", check_act, MTL_ACT_SOFTPLUS, 0, NULL, {NULL}},
    {"identity", check_act, MTL_ACT_IDENTITY, 0, NULL, {NULL}},
    {"dropout", check_dropout, 0, 1, "its probability", {"p"}},
    {"conv1d", check_conv1d, 0, 1, "its output channels", {"channels", "kernel", "padding", "stride", "bias"}},
    {"batchnorm", check_norm, 0, 0, NULL, {"eps", "momentum"}},
    {"layernorm", check_norm, 0, 0, NULL, {"eps"}},
    {"lstm", check_lstm, 0, 1, "its hidden size", {"hidden", "layers", "bidirectional", "dropout"}},
    {"attention", check_attention, 0, 1, "its number of heads", {"heads", "dropout"}},
    {"residual", check_residual, 0, 0, NULL, {NULL}},
    {"pool", check_pool, 0, 1, "its kind: last, mean or max", {"kind"}},
    {"flatten", check_flatten, 0, 0, NULL, {NULL}},
};
#define N_LAYER_DEFS (int)(sizeof layer_defs / sizeof layer_defs[0])

static Shape build_list(Sema *s, const Ast *list, const char *prefix, int block, int top, Shape in,
                        Span *from, Layer **layers, int *n_layers);

/* ---- helpers ------------------------------------------------------------------------- */

const char *sema_shape_str(const Shape *shape, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < shape->rank && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape->dim[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

static Shape shape1(int64_t a)
{
    Shape s = {1, {a}};
    return s;
}

static Shape shape2(int64_t a, int64_t b)
{
    Shape s = {2, {a, b}};
    return s;
}

static Shape shape3(int64_t a, int64_t b, int64_t c)
{
    Shape s = {3, {a, b, c}};
    return s;
}

/* a * b, or MAX_ELEMS + 1 when it would exceed MAX_ELEMS (both >= 0). */
static int64_t mul_capped(int64_t a, int64_t b)
{
    if (a != 0 && b > MAX_ELEMS / a)
        return MAX_ELEMS + 1;
    return a * b;
}

static int64_t count_capped(const Shape *shape)
{
    int64_t n = 1;
    for (int i = 0; i < shape->rank; i++)
        n = mul_capped(n, shape->dim[i]);
    return n;
}

static int add_param(LayerCtx *c, const char *leaf, Shape shape, MtlInit init, float bound)
{
    Sema *s = c->s;
    Model *m = s->m;
    if (m->n_params >= MAX_TENSORS) { /* not stored: the model is refused anyway */
        if (!s->too_many_tensors)
            diag_error(s->d, c->la->span, "more than %d parameter tensors in the model, with this layer", MAX_TENSORS);
        s->too_many_tensors = true;
        return -1;
    }
    if (m->n_params == s->cap_params) {
        s->cap_params = s->cap_params ? 2 * s->cap_params : 16;
        m->params = realloc(m->params, (size_t)s->cap_params * sizeof *m->params);
        s->param_span = realloc(s->param_span, (size_t)s->cap_params * sizeof *s->param_span);
        if (!m->params || !s->param_span)
            abort();
    }
    Param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    p->name = sema_path(c->L->path, leaf);
    p->shape = shape;
    /* exact up to INT64_MAX, then saturated (so is the total); sema_check_size reports a total
     * past SEMA_MAX_PARAMS at the layer that crossed it. */
    p->count = 1;
    for (int i = 0; i < shape.rank; i++)
        if (__builtin_mul_overflow(p->count, shape.dim[i], &p->count))
            p->count = INT64_MAX;
    if (__builtin_add_overflow(s->total_params, p->count, &s->total_params))
        s->total_params = INT64_MAX;
    if (s->total_params > SEMA_MAX_PARAMS && !s->params_over)
        s->params_over = c->L;
    p->block = c->block;
    p->layer = c->top;
    p->group = -1;
    p->init = init;
    p->init_bound = init == MTL_INIT_UNIFORM ? bound : 0.0f;
    p->trainable = true;
    s->param_span[m->n_params] = c->la->span;
    if (c->L->n_params++ == 0)
        c->L->first_param = m->n_params;
    return m->n_params++;
}

static void add_buffer(LayerCtx *c, const char *leaf, Shape shape, MtlInit init)
{
    Sema *s = c->s;
    Model *m = s->m;
    if (m->n_buffers == s->cap_buffers) {
        s->cap_buffers = s->cap_buffers ? 2 * s->cap_buffers : 8;
        m->buffers = realloc(m->buffers, (size_t)s->cap_buffers * sizeof *m->buffers);
        if (!m->buffers)
            abort();
    }
    Buffer *b = &m->buffers[m->n_buffers];
    memset(b, 0, sizeof *b);
    b->name = sema_path(c->L->path, leaf);
    b->shape = shape;
    b->count = shape_count(&shape);
    b->block = c->block;
    b->init = init;
    if (c->L->n_buffers++ == 0)
        c->L->first_buffer = m->n_buffers;
    m->n_buffers++;
}

/* "units, bias" */
static void key_list(const LayerDef *def, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; def->keys[i] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", def->keys[i]);
}

/* Matches the call's arguments to the layer's option keys (c->opt); reports unknown, repeated
 * and surplus positional arguments. */
static void read_args(LayerCtx *c, const LayerDef *def)
{
    Diags *d = c->s->d;
    const Ast *call = c->call;
    char keys[128];
    key_list(def, keys, sizeof keys);
    int positional = 0;
    bool surplus = false;
    for (int i = 0; i < call->n_kids; i++) {
        const Ast *arg = call->kids[i];
        int k = -1;
        if (!def->keys[0]) {
            if (!surplus)
                diag_error(d, arg->span, "%s takes no arguments", def->name);
            surplus = true;
            continue;
        }
        if (!arg->name) {
            if (positional < def->n_positional) {
                k = positional++;
            } else {
                if (surplus)
                    continue;
                surplus = true;
                if (def->n_positional == 0)
                    diag_error(d, arg->span, "%s takes no positional arguments; write its options as name = value (%s)",
                               def->name, keys);
                else
                    diag_error(d, arg->span, "%s takes one positional argument (%s)", def->name, def->positional);
                continue;
            }
        } else {
            for (int j = 0; def->keys[j]; j++)
                if (!strcmp(arg->name, def->keys[j]))
                    k = j;
            if (k < 0) {
                const char *hint = sema_suggest(arg->name, def->keys);
                if (hint)
                    diag_error(d, arg->name_span, "unknown option '%s' for %s; did you mean '%s'?", arg->name,
                               def->name, hint);
                else
                    diag_error(d, arg->name_span, "unknown option '%s' for %s (options: %s)", arg->name,
                               def->name, keys);
                continue;
            }
        }
        if (c->opt[k]) {
            diag_error(d, arg->name ? arg->name_span : arg->span, "option '%s' of %s is given twice",
                       def->keys[k], def->name);
            diag_note(d, c->opt[k]->span, "first given here");
            continue;
        }
        c->opt[k] = arg;
    }
}

/* A whole-number option in [min, max]; dflt when absent or wrong. what: "conv1d kernel". */
static int64_t opt_int_max(LayerCtx *c, int k, const char *what, int64_t min, int64_t max, int64_t dflt)
{
    const Ast *arg = c->opt[k];
    int64_t v;
    if (!arg || !sema_int(c->s, arg->a, what, &v))
        return dflt;
    if (v < min) {
        diag_error(c->s->d, arg->span, "%s must be at least %lld, got %s", what, (long long)min, arg->a->name);
        return dflt;
    }
    if (v > max) {
        diag_error(c->s->d, arg->span, "%s is too large (at most %lld)", what, (long long)max);
        return dflt;
    }
    return v;
}

static int64_t opt_int(LayerCtx *c, int k, const char *what, int64_t min, int64_t dflt)
{
    return opt_int_max(c, k, what, min, MAX_SIZE, dflt);
}

/* A probability in [0, 1) (dropout); 0 when absent. */
static float opt_prob(LayerCtx *c, int k, const char *what)
{
    const Ast *arg = c->opt[k];
    double v = 0;
    if (!arg || !sema_number(c->s, arg->a, what, &v))
        return 0.0f;
    if (!sema_below_one(v)) {
        diag_error(c->s->d, arg->span, "%s must be in [0, 1)%s, got %s", what,
                   v >= 0 && v < 1 ? " (as a 32-bit float: this rounds to 1)" : "", arg->a->name);
        return 0.0f;
    }
    return (float)v;
}

/* A number in (lo, hi] or [lo, hi] (closed_lo); dflt when absent or out of range. */
static float opt_real(LayerCtx *c, int k, const char *what, double lo, double hi, bool closed_lo, float dflt)
{
    const Ast *arg = c->opt[k];
    double v;
    if (!arg || !sema_number(c->s, arg->a, what, &v))
        return dflt;
    bool ok = (closed_lo ? v >= lo : v > lo) && v <= hi;
    if (!ok) {
        if (isinf(hi))
            diag_error(c->s->d, arg->span, "%s must be > %g, got %s", what, lo, arg->a->name);
        else
            diag_error(c->s->d, arg->span, "%s must be in %c%g, %g], got %s", what, closed_lo ? '[' : '(', lo, hi,
                       arg->a->name);
        return dflt;
    }
    return (float)v;
}

static bool opt_bool(LayerCtx *c, int k, const char *what, bool dflt)
{
    bool v = dflt;
    if (c->opt[k] && !sema_bool(c->s, c->opt[k]->a, what, &v))
        return dflt;
    return v;
}

/* The layer needs [time, channels]. On a vector input it reports and carries on as if the input
 * were [1, C], so the layers after it are still checked. Returns the shape to compute with. */
static Shape need_seq(LayerCtx *c, const char *what)
{
    const Shape *in = &c->L->in;
    if (in->rank == 2)
        return *in;
    char b[64];
    sema_shape_str(in, b, sizeof b);
    diag_error(c->s->d, c->la->span, "%s needs a [time, channels] input, but its input is %s", what, b);
    diag_note(c->s->d, c->from, "the input shape %s comes from here", b);
    c->s->rank_faked = true;
    return shape2(1, in->rank ? in->dim[in->rank - 1] : 1);
}

/* ---- the layers ---------------------------------------------------------------------- */

/* dense(N, bias = true): weight [N, C], bias [N]; on [C] -> [N], on [T, C] -> [T, N] (per step). */
static void check_dense(LayerCtx *c)
{
    Layer *L = c->L;
    L->kind = LAYER_DENSE;
    L->bias = opt_bool(c, 1, "option 'bias'", true);
    const Ast *units = c->opt[0];
    int64_t n = 1;
    if (!units) {
        diag_error(c->s->d, c->call->span, "dense needs its number of units: dense(N)");
    } else if (sema_int(c->s, units->a, "dense units", &n)) {
        if (n < 1) {
            diag_error(c->s->d, units->span, "dense needs at least 1 unit");
            n = 1;
        } else if (n > MAX_SIZE) {
            diag_error(c->s->d, units->span, "dense units is too large (at most %d)", MAX_SIZE);
            n = 1;
        }
    } else {
        n = 1;
    }
    L->units = n;
    int64_t fan_in = L->in.rank ? L->in.dim[L->in.rank - 1] : 1;
    L->out = L->in;
    if (L->out.rank == 0)
        L->out.rank = 1;
    L->out.dim[L->out.rank - 1] = n;
    float bound = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
    L->weight_param = add_param(c, "weight", shape2(n, fan_in), MTL_INIT_UNIFORM, bound);
    if (L->bias)
        L->bias_param = add_param(c, "bias", shape1(n), MTL_INIT_UNIFORM, bound);
}

/* dropout(P): any shape. */
static void check_dropout(LayerCtx *c)
{
    c->L->kind = LAYER_DROPOUT;
    if (!c->opt[0])
        diag_error(c->s->d, c->call->span, "dropout needs its probability: dropout(P)");
    else
        c->L->p = opt_prob(c, 0, "dropout probability");
}

/* relu, tanh, …: any shape. */
static void check_act(LayerCtx *c)
{
    c->L->kind = LAYER_ACT;
}

/* conv1d(Cout, kernel = 3, padding = 0, stride = 1, bias = true): [T, Cin] -> [To, Cout],
 * To = (T + 2P - K) / S + 1; weight [Cout, Cin, K], bias [Cout], both U(±1/sqrt(Cin·K)). */
static void check_conv1d(LayerCtx *c)
{
    Layer *L = c->L;
    L->kind = LAYER_CONV1D;
    if (!c->opt[0])
        diag_error(c->s->d, c->call->span, "conv1d needs its number of output channels: conv1d(C)");
    L->units = opt_int(c, 0, "conv1d channels", 1, 1);
    L->kernel = opt_int(c, 1, "conv1d kernel", 1, 3);
    L->padding = opt_int(c, 2, "conv1d padding", 0, 0);
    L->stride = opt_int(c, 3, "conv1d stride", 1, 1);
    L->bias = opt_bool(c, 4, "option 'bias'", true);
    Shape in = need_seq(c, "conv1d");
    int64_t t = in.dim[0], cin = in.dim[1];
    int64_t padded = t + 2 * L->padding;
    int64_t to = 1;
    if (padded < L->kernel) {
        char b[64];
        diag_error(c->s->d, c->opt[1] ? c->opt[1]->span : c->la->span,
                   "conv1d kernel %lld is larger than its padded input: time %lld + 2 * padding %lld = %lld",
                   (long long)L->kernel, (long long)t, (long long)L->padding, (long long)padded);
        diag_note(c->s->d, c->from, "the input shape %s comes from here", sema_shape_str(&L->in, b, sizeof b));
    } else {
        to = (padded - L->kernel) / L->stride + 1;
    }
    L->out = shape2(to, L->units);
    int64_t fan_in = cin * L->kernel;
    float bound = (float)(1.0 / sqrt((double)fan_in));
    L->weight_param = add_param(c, "weight", shape3(L->units, cin, L->kernel), MTL_INIT_UNIFORM, bound);
    if (L->bias)
        L->bias_param = add_param(c, "bias", shape1(L->units), MTL_INIT_UNIFORM, bound);
}

/* batchnorm(eps = 1e-5, momentum = 0.1), layernorm(eps = 1e-5): over the last dim C of [C] or
 * [T, C]; weight [C] ones, bias [C] zeros; batchnorm also has buffers running_mean (zeros) and
 * running_var (ones), which are not parameters. */
static void check_norm(LayerCtx *c)
{
    Layer *L = c->L;
    bool bn = c->call->name[0] == 'b';
    L->kind = bn ? LAYER_BATCHNORM : LAYER_LAYERNORM;
    char what[32];
    snprintf(what, sizeof what, "%s eps", c->call->name);
    L->eps = opt_real(c, 0, what, 0, INFINITY, false, 1e-5f);
    L->momentum = bn ? opt_real(c, 1, "batchnorm momentum", 0, 1, true, 0.1f) : 0.1f;
    int64_t ch = L->in.rank ? L->in.dim[L->in.rank - 1] : 1;
    L->weight_param = add_param(c, "weight", shape1(ch), MTL_INIT_ONES, 0);
    L->bias_param = add_param(c, "bias", shape1(ch), MTL_INIT_ZEROS, 0);
    if (bn) {
        add_buffer(c, "running_mean", shape1(ch), MTL_INIT_ZEROS);
        add_buffer(c, "running_var", shape1(ch), MTL_INIT_ONES);
    }
}

/* lstm(H, layers = 1, bidirectional = false, dropout = 0): [T, I] -> [T, H·dirs]. Per layer l
 * and direction (forward, then reverse): weight_ih_l{l}[_reverse] [4H, I_l] (I_0 = I, later
 * H·dirs), weight_hh [4H, H], bias_ih [4H], bias_hh [4H], all U(±1/sqrt(H)), gates i, f, g, o. */
static void check_lstm(LayerCtx *c)
{
    Layer *L = c->L;
    L->kind = LAYER_LSTM;
    if (!c->opt[0])
        diag_error(c->s->d, c->call->span, "lstm needs its hidden size: lstm(H)");
    L->units = opt_int(c, 0, "lstm hidden size", 1, 1);
    int errors = c->s->d->n_errors;
    L->lstm_layers = (int)opt_int_max(c, 1, "lstm layers", 1, MAX_LSTM_LAYERS, 1);
    bool layers_ok = c->s->d->n_errors == errors; /* a bad `layers` falls back to 1: no warning then */
    L->bidirectional = opt_bool(c, 2, "option 'bidirectional'", false);
    L->p = opt_prob(c, 3, "lstm dropout");
    /* PyTorch warns the same way: the dropout acts on the outputs of every layer but the last */
    if (L->p > 0 && L->lstm_layers == 1 && layers_ok)
        diag_warning(c->s->d, c->opt[3]->span,
                     "dropout applies between LSTM layers; with layers = 1 it has no effect");
    Shape in = need_seq(c, "lstm");
    int64_t h = L->units, dirs = L->bidirectional ? 2 : 1;
    L->out = shape2(in.dim[0], h * dirs);
    float bound = (float)(1.0 / sqrt((double)h));
    for (int l = 0; l < L->lstm_layers && !c->s->too_many_tensors; l++) {
        int64_t inputs = l == 0 ? in.dim[1] : h * dirs;
        for (int dir = 0; dir < dirs; dir++) {
            const char *suffix = dir ? "_reverse" : "";
            char leaf[64];
            snprintf(leaf, sizeof leaf, "weight_ih_l%d%s", l, suffix);
            add_param(c, leaf, shape2(4 * h, inputs), MTL_INIT_UNIFORM, bound);
            snprintf(leaf, sizeof leaf, "weight_hh_l%d%s", l, suffix);
            add_param(c, leaf, shape2(4 * h, h), MTL_INIT_UNIFORM, bound);
            snprintf(leaf, sizeof leaf, "bias_ih_l%d%s", l, suffix);
            add_param(c, leaf, shape1(4 * h), MTL_INIT_UNIFORM, bound);
            snprintf(leaf, sizeof leaf, "bias_hh_l%d%s", l, suffix);
            add_param(c, leaf, shape1(4 * h), MTL_INIT_UNIFORM, bound);
        }
    }
}

/* attention(heads = NH, dropout = 0): self-attention [T, E] -> [T, E], E % NH == 0 (PyTorch
 * nn.MultiheadAttention): in_proj_weight [3E, E] Xavier-uniform, in_proj_bias [3E] zeros,
 * out_proj.weight [E, E] U(±1/sqrt(E)), out_proj.bias [E] zeros. */
static void check_attention(LayerCtx *c)
{
    Layer *L = c->L;
    L->kind = LAYER_ATTENTION;
    if (!c->opt[0])
        diag_error(c->s->d, c->call->span, "attention needs its number of heads: attention(heads = H)");
    L->heads = opt_int(c, 0, "attention heads", 1, 1);
    L->p = opt_prob(c, 1, "attention dropout");
    Shape in = need_seq(c, "attention");
    int64_t e = in.dim[1];
    L->out = shape2(in.dim[0], e);
    if (e % L->heads != 0) {
        char b[64];
        diag_error(c->s->d, c->opt[0]->span,
                   "attention width %lld is not divisible by %lld heads (each head gets width / heads)",
                   (long long)e, (long long)L->heads);
        diag_note(c->s->d, c->from, "the input shape %s comes from here", sema_shape_str(&L->in, b, sizeof b));
    }
    add_param(c, "in_proj_weight", shape2(3 * e, e), MTL_INIT_UNIFORM, (float)sqrt(6.0 / (double)(e + 3 * e)));
    add_param(c, "in_proj_bias", shape1(3 * e), MTL_INIT_ZEROS, 0);
    add_param(c, "out_proj.weight", shape2(e, e), MTL_INIT_UNIFORM, (float)(1.0 / sqrt((double)e)));
    add_param(c, "out_proj.bias", shape1(e), MTL_INIT_ZEROS, 0);
}

/* residual { LAYERS }: x + body(x); the body's output shape must equal its input shape. Its
 * layers' paths continue the residual's path like a nested nn.Sequential. */
static void check_residual(LayerCtx *c)
{
    Layer *L = c->L;
    L->kind = LAYER_RESIDUAL;
    const Ast *body = c->la->b;
    if (!body) {
        diag_error(c->s->d, c->la->span, "residual needs a body: residual { LAYERS }");
        return;
    }
    if (body->n_kids == 0) { /* x + x would only double the input: surely not what was meant */
        diag_error(c->s->d, body->span, "residual body is empty (residual { LAYERS } needs at least one layer)");
        return;
    }
    Span from = c->from;
    Shape out = build_list(c->s, body, L->path, c->block, c->top, L->in, &from, &L->body, &L->n_body);
    if (out.rank != L->in.rank || memcmp(out.dim, L->in.dim, (size_t)out.rank * sizeof out.dim[0]) != 0) {
        char a[64], b[64];
        diag_error(c->s->d, c->call->span,
                   "residual body changes the shape from %s to %s; x + body(x) needs them equal",
                   sema_shape_str(&L->in, a, sizeof a), sema_shape_str(&out, b, sizeof b));
        diag_note(c->s->d, from, "the shape %s comes from here", b);
    }
}

/* pool(last | mean | max): over time, [T, C] -> [C]. */
static void check_pool(LayerCtx *c)
{
    static const char *const kinds[] = {"last", "mean", "max", NULL};
    Layer *L = c->L;
    L->kind = LAYER_POOL;
    L->pool = POOL_LAST;
    const Ast *arg = c->opt[0];
    if (!arg) {
        diag_error(c->s->d, c->call->span, "pool needs its kind: pool(last), pool(mean) or pool(max)");
    } else if (arg->a->kind != AST_PATH) {
        diag_error(c->s->d, arg->a->span, "pool kind expects last, mean or max");
    } else {
        int k = -1;
        for (int i = 0; kinds[i]; i++)
            if (!strcmp(arg->a->name, kinds[i]))
                k = i;
        if (k >= 0) {
            L->pool = (PoolKind)k;
        } else {
            const char *hint = sema_suggest(arg->a->name, kinds);
            if (hint)
                diag_error(c->s->d, arg->a->span, "unknown pool kind '%s'; did you mean '%s'?", arg->a->name, hint);
            else
                diag_error(c->s->d, arg->a->span, "unknown pool kind '%s' (expected last, mean or max)",
                           arg->a->name);
        }
    }
    Shape in = need_seq(c, "pool");
    L->out = shape1(in.dim[1]);
}

/* flatten: [T, C] -> [T·C]. */
static void check_flatten(LayerCtx *c)
{
    Layer *L = c->L;
    L->kind = LAYER_FLATTEN;
    Shape in = need_seq(c, "flatten");
    L->out = shape1(mul_capped(in.dim[0], in.dim[1]));
}

/* ---- lists and blocks ---------------------------------------------------------------- */

/* Checks one layer: finds it in the table, matches its options and runs its check. */
static void check_layer(LayerCtx *c)
{
    Layer *L = c->L;
    const Ast *call = c->call;
    L->span = c->la->span;
    L->out = L->in;
    L->weight_param = L->bias_param = -1;
    L->first_param = L->first_buffer = -1;
    L->kind = LAYER_ACT;
    L->act = MTL_ACT_IDENTITY;
    const LayerDef *def = NULL;
    for (int i = 0; i < N_LAYER_DEFS; i++)
        if (!strcmp(call->name, layer_defs[i].name))
            def = &layer_defs[i];
    if (!def) {
        const char *names[N_LAYER_DEFS + 1];
        char known[256];
        size_t o = 0;
        for (int i = 0; i < N_LAYER_DEFS; i++) {
            names[i] = layer_defs[i].name;
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", names[i]);
        }
        names[N_LAYER_DEFS] = NULL;
        const char *hint = sema_suggest(call->name, names);
        if (hint)
            diag_error(c->s->d, call->name_span, "unknown layer '%s'; did you mean '%s'?", call->name, hint);
        else
            diag_error(c->s->d, call->name_span, "unknown layer '%s' (known: %s)", call->name, known);
        return;
    }
    if (c->la->b && def->check != check_residual)
        diag_error(c->s->d, c->la->b->span, "%s takes no { ... } body (only residual does)", def->name);
    L->act = def->act;
    read_args(c, def);
    def->check(c);
    if (count_capped(&L->out) > MAX_ELEMS) {
        char b[64];
        diag_error(c->s->d, c->la->span, "the output of this layer, %s, is too large (more than 2^40 elements)",
                   sema_shape_str(&L->out, b, sizeof b));
        L->out = shape1(1);
    }
}

/* Builds a layer list (a block's, or a residual's body) whose paths start with prefix, from
 * shape in; *from is where that shape was last set, and is moved along. top >= 0: every layer
 * belongs to the block's top-level layer top (a residual body); -1: each is its own. */
static Shape build_list(Sema *s, const Ast *list, const char *prefix, int block, int top, Shape in,
                        Span *from, Layer **layers, int *n_layers)
{
    int n = list ? list->n_kids : 0;
    *n_layers = n;
    *layers = calloc((size_t)(n ? n : 1), sizeof **layers);
    if (!*layers)
        abort();
    Shape cur = in;
    for (int i = 0; i < n; i++) {
        const Ast *la = list->kids[i];
        Layer *L = &(*layers)[i];
        if (la->name) {
            for (int j = 0; j < i; j++) {
                const Ast *prev = list->kids[j];
                if (prev->name && !strcmp(prev->name, la->name)) {
                    diag_error(s->d, la->name_span, "duplicate layer name '%s' in %s", la->name, prefix);
                    diag_note(s->d, prev->name_span, "'%s' first used here", la->name);
                    break;
                }
            }
            L->path = sema_path(prefix, la->name);
        } else {
            char idx[24];
            snprintf(idx, sizeof idx, "%d", i);
            L->path = sema_path(prefix, idx);
        }
        LayerCtx c;
        memset(&c, 0, sizeof c);
        c.s = s;
        c.la = la;
        c.call = la->a;
        c.L = L;
        c.block = block;
        c.top = top >= 0 ? top : i;
        c.from = *from;
        L->in = cur;
        check_layer(&c);
        bool same = L->out.rank == cur.rank &&
                    memcmp(L->out.dim, cur.dim, (size_t)cur.rank * sizeof cur.dim[0]) == 0;
        if (!same || L->kind == LAYER_DENSE)
            *from = la->span;
        cur = L->out;
    }
    return cur;
}

void sema_build_block(Sema *s, int bi, const Ast *layers, Shape in, Span from)
{
    Block *b = &s->m->blocks[bi];
    b->in = in;
    b->out = build_list(s, layers, b->prefix, bi, -1, in, &from, &b->layers, &b->n_layers);
    s->block_width_from[bi] = from;
}

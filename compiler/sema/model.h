/* The typed model: what the front end (parse + sema) hands to the rest of the compiler.
 *
 * Every name is resolved, every tensor has a static shape (per sample: the batch dimension
 * is never stored), every parameter has its PyTorch-style path, its group and the set of
 * tasks whose gradients reach it. Spans point back into the spec for later diagnostics.
 * It owns all its memory; model_free() releases it.
 */
#ifndef MTLC_MODEL_H
#define MTLC_MODEL_H

#include "diag/diag.h"
#include "mtl_abi.h" /* MtlAct, MtlLoss, MtlInit, MtlTargetKind, MtlDataKind shared with the runtime */

#include <stdbool.h>
#include <stdint.h>

#define MODEL_MAX_RANK 4

typedef struct Shape {
    int rank;
    int64_t dim[MODEL_MAX_RANK];
} Shape;

typedef enum LayerKind {
    LAYER_DENSE,     /* weight [out, in], optional bias [out]; on [T, C] applies to the last dim */
    LAYER_ACT,       /* elementwise activation */
    LAYER_DROPOUT,   /* inverted dropout, identity in eval */
    LAYER_CONV1D,    /* over time: [T, Cin] -> [To, Cout]; weight [Cout, Cin, K], bias [Cout] */
    LAYER_BATCHNORM, /* per channel (last dim) over batch and time; weight, bias [C];
                        buffers running_mean, running_var [C] */
    LAYER_LAYERNORM, /* over the last dim; weight, bias [C] */
    LAYER_LSTM,      /* [T, I] -> [T, H·dirs]; PyTorch names and order (see Layer.first_param) */
    LAYER_ATTENTION, /* multi-head self-attention [T, E] -> [T, E]; in_proj_weight [3E, E],
                        in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E] */
    LAYER_RESIDUAL,  /* x + body(x); body's output shape must equal its input shape */
    LAYER_POOL,      /* over time: [T, C] -> [C] (last step, mean or max) */
    LAYER_FLATTEN,   /* [T, C] -> [T·C] */
} LayerKind;

typedef enum PoolKind { POOL_LAST, POOL_MEAN, POOL_MAX } PoolKind;

typedef struct Layer {
    LayerKind kind;
    Span span;      /* the whole layer call, e.g. `dense(32, bias = false)` */
    char *path;     /* "shared.0", "rul.head.2", or with a user name "shared.fc1" */
    Shape in, out;  /* per-sample shapes */
    /* LAYER_DENSE */
    int64_t units;
    bool bias;
    /* LAYER_ACT */
    MtlAct act;
    /* LAYER_DROPOUT: p; LAYER_LSTM: dropout between layers; LAYER_ATTENTION: on attention weights */
    float p;
    /* LAYER_CONV1D (units = out channels, bias as for dense) */
    int64_t kernel, stride, padding;
    /* LAYER_BATCHNORM, LAYER_LAYERNORM (PyTorch defaults eps 1e-5, momentum 0.1) */
    float eps, momentum;
    /* LAYER_LSTM (units = hidden size per direction) */
    int lstm_layers;
    bool bidirectional;
    /* LAYER_ATTENTION */
    int64_t heads;
    /* LAYER_POOL */
    PoolKind pool;
    /* LAYER_RESIDUAL: the body, whose layer paths continue this layer's path ("trunk.4.0") */
    struct Layer *body;
    int n_body;
    /* parameters owned by this layer: indices into Model.params, -1 if none */
    int weight_param, bias_param;
    /* all of this layer's parameters, contiguous in Model.params, in PyTorch's
     * named_parameters() order: dense/conv/norms weight, bias; LSTM for each layer l and
     * direction (forward, then reverse): weight_ih_l{l}[_reverse] [4H, I], weight_hh_l{l} [4H, H],
     * bias_ih_l{l} [4H], bias_hh_l{l} [4H]; attention in_proj_weight, in_proj_bias,
     * out_proj.weight, out_proj.bias. n_params = 0 when none. */
    int first_param, n_params;
    /* buffers (batchnorm running_mean then running_var), contiguous in Model.buffers */
    int first_buffer, n_buffers;
} Layer;

typedef struct Block {
    char *name;    /* "shared" (trunk's given name, or "trunk") or the task name */
    char *prefix;  /* parameter path prefix: "shared" / "trunk" / "rul.head" */
    bool is_trunk;
    int task;      /* owning task index, -1 for the trunk */
    Span span;
    Layer *layers;
    int n_layers;
    Shape in, out;
} Block;

typedef struct Param {
    char *name;    /* full path: "shared.0.weight" */
    Shape shape;
    int64_t count;
    int block, layer; /* where it is declared */
    int group;        /* index into Model.groups (exactly one, checked by sema) */
    MtlInit init;
    float init_bound; /* for MTL_INIT_UNIFORM: U(-bound, bound) */
    uint32_t task_mask; /* bit k set: task k's loss gradient reaches it (0 if frozen) */
    bool trainable;     /* false when its group is frozen */
} Param;

/* A non-trainable tensor saved in checkpoints (batchnorm running statistics). Not counted as a
 * parameter in reports' totals; listed separately. */
typedef struct Buffer {
    char *name;    /* "trunk.1.running_mean" */
    Shape shape;
    int64_t count;
    int block;
    MtlInit init;  /* running_mean zeros, running_var ones */
} Buffer;

typedef struct Group {
    char *name;
    Span span;
    float lr, weight_decay, beta1, beta2, eps;
    bool frozen;
    bool implicit; /* the default group created when the spec has no optimizer block */
} Group;

typedef struct Task {
    char *name;
    Span span;
    MtlTargetKind target_kind; /* MTL_TARGET_REAL or MTL_TARGET_CLASS */
    int64_t target_width;      /* real: number of values (1 by default); class: 1 label */
    Span target_span;          /* the target's declaration (`target a : real[3]`) */
    int64_t num_classes;       /* class targets only */
    MtlLoss loss;
    float huber_delta;         /* MTL_LOSS_HUBER only, default 1.0 */
    float amnl_cap;            /* MTL_LOSS_MSE only: AMNL per-sample weighting with this RUL cap, 0 = off */
    float weight;              /* from balance fixed(...); 1.0 when omitted */
    int block;                 /* its head block */
    int64_t out_width;         /* head output features per sample */
    char *bind;                /* data field / column this target reads */
} Task;

typedef struct DataBinding {
    MtlDataKind kind;          /* MTL_DATA_CMAPSS (default) or MTL_DATA_CSV */
    char *train_path, *test_path, *rul_path; /* optional defaults, may be NULL */
    /* C-MAPSS */
    float rul_cap;             /* default 125 */
    int n_thresholds;          /* default 2 */
    float thresholds[8];       /* descending, default {80, 30} */
    int n_features;            /* 0 means the default 17 */
    char **features;           /* column names: "setting1".."setting3", "s1".."s21" */
    /* CSV */
    char **input_columns;
    int n_input_columns;
    char *group_column;        /* may be NULL */
    /* both */
    float validation;          /* default 0.2 */
    /* windows over time (rank-2 input [T, F]): window length = T, stride between windows */
    int64_t window;            /* 1 for rank-1 inputs; T for [T, F] inputs */
    int64_t window_stride;     /* default 1 */
    /* C-MAPSS: normalisation per operating condition (k-means k, 1 = plain z-score) and the
     * synthetic fleet used without a training file (operating conditions, fault modes) */
    int conditions;            /* 1..64, default 1 */
    int synthetic_conditions;  /* 1..6, default 1 */
    int synthetic_fault_modes; /* 1..2, default 1 */
} DataBinding;

/* The training protocol's settings a spec may give (`train { warmup = 10; ema = 0.999 }`), in
 * the order of train_protocol_keys (sema.c). Only the given ones go into the model table; the
 * runtime supplies the book's defaults for the rest (runtime/src/schedule.c). */
enum { TRAIN_N_PROTOCOL = 11 };

typedef struct TrainDefaults {
    int epochs;      /* default 10 */
    int batch;       /* default 32 */
    uint64_t seed;   /* default 0 */
    float lr;        /* <= 0: keep per-group lr */
    bool has[TRAIN_N_PROTOCOL];
    double value[TRAIN_N_PROTOCOL]; /* select: 0 validation, 1 test */
} TrainDefaults;

/* Name, in the spec and the model table, of protocol setting i. */
const char *train_protocol_key(int i);

/* How task losses are combined (`balance METHOD(options)`). Methods other than fixed start every
 * task at weight 1 and learn or measure the weights in the trainer (runtime/src/balance.c);
 * only the options the spec gives are stored, the runtime holds the defaults. */
enum { BALANCE_MAX_OPTIONS = 8 };

typedef struct Balance {
    char *method;      /* "fixed" (default), "gaba", "grace", "uncertainty", "gradnorm", "dwa", "pcgrad" */
    int n_options;
    char *option[BALANCE_MAX_OPTIONS];
    double value[BALANCE_MAX_OPTIONS];
    bool norms_on_output; /* norms = trunk_output: task gradient norms on the trunk's output */
} Balance;

typedef struct Model {
    char *name;
    Span span;
    char *input_name;
    Shape input;
    Block *blocks;   /* blocks[0] is the trunk, then one head per task in task order */
    int n_blocks;
    Param *params;   /* declaration order (trunk first, then heads in task order) */
    int n_params;
    Buffer *buffers; /* declaration order */
    int n_buffers;
    Group *groups;
    int n_groups;
    Task *tasks;
    int n_tasks;
    DataBinding data;
    TrainDefaults train;
    Balance balance;
} Model;

/* Parses and checks a spec. Returns NULL (after reporting every error found) on failure. */
Model *model_load(Diags *d, const char *path);
/* Same, from in-memory text (tests). */
Model *model_load_text(Diags *d, const char *path, const char *text, size_t len);
void model_free(Model *m);

int64_t shape_count(const Shape *s);

/* `--emit=typed`: the checked model as text (blocks, shapes, params, groups, tasks, data). */
void model_dump_typed(const Model *m, FILE *out);

#endif

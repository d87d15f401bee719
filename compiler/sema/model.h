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
    LAYER_DENSE,   /* weight [out, in], optional bias [out] */
    LAYER_ACT,     /* elementwise activation */
    LAYER_DROPOUT, /* inverted dropout, identity in eval */
} LayerKind;

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
    /* LAYER_DROPOUT */
    float p;
    /* parameters owned by this layer: indices into Model.params, -1 if none */
    int weight_param, bias_param;
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
    int64_t num_classes;       /* class targets only */
    MtlLoss loss;
    float huber_delta;         /* MTL_LOSS_HUBER only, default 1.0 */
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
} DataBinding;

typedef struct TrainDefaults {
    int epochs;      /* default 10 */
    int batch;       /* default 32 */
    uint64_t seed;   /* default 0 */
    float lr;        /* <= 0: keep per-group lr */
} TrainDefaults;

typedef struct Model {
    char *name;
    Span span;
    char *input_name;
    Shape input;
    Block *blocks;   /* blocks[0] is the trunk, then one head per task in task order */
    int n_blocks;
    Param *params;   /* declaration order (trunk first, then heads in task order) */
    int n_params;
    Group *groups;
    int n_groups;
    Task *tasks;
    int n_tasks;
    DataBinding data;
    TrainDefaults train;
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

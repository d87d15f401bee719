/* Model info table: parses the JSON that generated code exports as mtl_model_json (layout in
 * mtl_abi.h) into MtlModelInfo and checks it is self-consistent (ABI version, shapes vs counts,
 * tensors inside their group, groups tiling the parameter buffer in order, buffers inside the
 * buffers region, a windowed input shaped [window, F]).
 *
 * The table is written by the compiler, not by users, so any inconsistency is reported as one
 * reason string for an internal error; there is no recovery and no user diagnostic here. Keys
 * this runtime does not know are ignored so the compiler can add information ahead of us.
 */
#include "mtl_balance.h"
#include "mtl_runtime.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Ctx {
    char *err;
    size_t err_size;
    int failed;
} Ctx;

#define FAIL(c, ...)                                      \
    do {                                                  \
        if (!(c)->failed) mtl_errf((c)->err, (c)->err_size, __VA_ARGS__); \
        (c)->failed = 1;                                  \
    } while (0)

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static const cJSON *need(Ctx *c, const cJSON *obj, const char *key, const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) FAIL(c, "%s: missing key \"%s\"", where, key);
    return it;
}

static double need_num(Ctx *c, const cJSON *obj, const char *key, const char *where) {
    const cJSON *it = need(c, obj, key, where);
    if (!it) return 0;
    if (!cJSON_IsNumber(it)) {
        FAIL(c, "%s: \"%s\" must be a number", where, key);
        return 0;
    }
    return it->valuedouble;
}

/* An integer that fits int64 exactly (JSON numbers are doubles; counts stay far below 2^53). */
static int64_t need_int(Ctx *c, const cJSON *obj, const char *key, const char *where, int64_t min) {
    double d = need_num(c, obj, key, where);
    if (c->failed) return 0;
    if (d != floor(d) || d < (double)min || d > 9007199254740992.0) {
        FAIL(c, "%s: \"%s\" must be an integer >= %lld", where, key, (long long)min);
        return 0;
    }
    return (int64_t)d;
}

static bool need_bool(Ctx *c, const cJSON *obj, const char *key, const char *where) {
    const cJSON *it = need(c, obj, key, where);
    if (!it) return false;
    if (!cJSON_IsBool(it)) FAIL(c, "%s: \"%s\" must be true or false", where, key);
    return cJSON_IsTrue(it);
}

static char *need_str(Ctx *c, const cJSON *obj, const char *key, const char *where) {
    const cJSON *it = need(c, obj, key, where);
    if (!it) return NULL;
    if (!cJSON_IsString(it) || !it->valuestring[0]) {
        FAIL(c, "%s: \"%s\" must be a non-empty string", where, key);
        return NULL;
    }
    return dup_str(it->valuestring);
}

/* A string or null (absent counts as null). */
static char *opt_str(Ctx *c, const cJSON *obj, const char *key, const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return NULL;
    if (!cJSON_IsString(it)) {
        FAIL(c, "%s: \"%s\" must be a string or null", where, key);
        return NULL;
    }
    return dup_str(it->valuestring);
}

static const cJSON *need_array(Ctx *c, const cJSON *obj, const char *key, const char *where) {
    const cJSON *it = need(c, obj, key, where);
    if (it && !cJSON_IsArray(it)) {
        FAIL(c, "%s: \"%s\" must be an array", where, key);
        return NULL;
    }
    return it;
}

/* shape array -> dims; returns the product. */
static int64_t parse_shape(Ctx *c, const cJSON *obj, const char *where, int *ndim, int64_t *dims) {
    const cJSON *a = need_array(c, obj, "shape", where);
    if (!a) return 0;
    int n = cJSON_GetArraySize(a);
    if (n > MTL_MAX_DIMS) {
        FAIL(c, "%s: shape has %d dimensions (at most %d)", where, n, MTL_MAX_DIMS);
        return 0;
    }
    int64_t prod = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, a) {
        if (!cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble) || d->valuedouble < 0 ||
            d->valuedouble > 1e15) {
            FAIL(c, "%s: shape entries must be non-negative integers", where);
            return 0;
        }
        dims[i++] = (int64_t)d->valuedouble;
        prod *= dims[i - 1];
    }
    *ndim = n;
    return prod;
}

static char **parse_str_list(Ctx *c, const cJSON *a, const char *where, int *n_out) {
    int n = cJSON_GetArraySize(a);
    char **list = calloc(n > 0 ? (size_t)n : 1, sizeof *list);
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, a) {
        if (!cJSON_IsString(s)) {
            FAIL(c, "%s: entries must be strings", where);
            break;
        }
        list[i++] = dup_str(s->valuestring);
    }
    *n_out = i;
    return list;
}

static void parse_tensor(Ctx *c, const cJSON *j, int idx, MtlTensorInfo *t) {
    char where[96];
    snprintf(where, sizeof where, "tensors[%d]", idx);
    t->name = need_str(c, j, "name", where);
    if (t->name) snprintf(where, sizeof where, "tensor \"%s\"", t->name);
    int64_t prod = parse_shape(c, j, where, &t->ndim, t->shape);
    t->offset = need_int(c, j, "offset", where, 0);
    t->count = need_int(c, j, "count", where, 0);
    t->group = (int)need_int(c, j, "group", where, 0);
    t->trainable = need_bool(c, j, "trainable", where);
    char *init = need_str(c, j, "init", where);
    if (c->failed) {
        free(init);
        return;
    }
    if (prod != t->count) FAIL(c, "%s: count %lld does not match shape (%lld)", where,
                               (long long)t->count, (long long)prod);
    if (!strcmp(init, "uniform")) {
        t->init = MTL_INIT_UNIFORM;
        double b = need_num(c, j, "bound", where);
        if (!c->failed && !(b >= 0 && isfinite(b))) FAIL(c, "%s: bound must be finite and >= 0", where);
        t->bound = (float)b;
    } else if (!strcmp(init, "zeros")) {
        t->init = MTL_INIT_ZEROS;
    } else if (!strcmp(init, "ones")) {
        t->init = MTL_INIT_ONES;
    } else {
        FAIL(c, "%s: unknown init \"%s\"", where, init);
    }
    free(init);
}

static void parse_buffer(Ctx *c, const cJSON *j, int idx, MtlBufferInfo *b) {
    char where[96];
    snprintf(where, sizeof where, "buffers[%d]", idx);
    b->name = need_str(c, j, "name", where);
    if (b->name) snprintf(where, sizeof where, "buffer \"%s\"", b->name);
    int64_t prod = parse_shape(c, j, where, &b->ndim, b->shape);
    b->offset = need_int(c, j, "offset", where, 0);
    b->count = need_int(c, j, "count", where, 0);
    char *init = need_str(c, j, "init", where);
    if (c->failed) {
        free(init);
        return;
    }
    if (prod != b->count) FAIL(c, "%s: count %lld does not match shape (%lld)", where,
                               (long long)b->count, (long long)prod);
    if (!strcmp(init, "zeros")) b->init = MTL_INIT_ZEROS;
    else if (!strcmp(init, "ones")) b->init = MTL_INIT_ONES;
    else FAIL(c, "%s: unknown buffer init \"%s\" (zeros or ones)", where, init);
    free(init);
}

static float parse_prob(Ctx *c, double x, const char *what, const char *where) {
    if (!(x >= 0 && x < 1)) FAIL(c, "%s: %s must be in [0, 1)", where, what);
    return (float)x;
}

static void parse_group(Ctx *c, const cJSON *j, int idx, MtlGroupInfo *g) {
    char where[96];
    snprintf(where, sizeof where, "groups[%d]", idx);
    g->name = need_str(c, j, "name", where);
    if (g->name) snprintf(where, sizeof where, "group \"%s\"", g->name);
    g->offset = need_int(c, j, "offset", where, 0);
    g->count = need_int(c, j, "count", where, 0);
    double lr = need_num(c, j, "lr", where);
    double wd = need_num(c, j, "weight_decay", where);
    double eps = need_num(c, j, "eps", where);
    g->frozen = need_bool(c, j, "frozen", where);
    const cJSON *betas = need_array(c, j, "betas", where);
    if (c->failed) return;
    if (cJSON_GetArraySize(betas) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(betas, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(betas, 1))) {
        FAIL(c, "%s: betas must be two numbers", where);
        return;
    }
    g->beta1 = parse_prob(c, cJSON_GetArrayItem(betas, 0)->valuedouble, "betas[0]", where);
    g->beta2 = parse_prob(c, cJSON_GetArrayItem(betas, 1)->valuedouble, "betas[1]", where);
    if (!(lr >= 0 && isfinite(lr))) FAIL(c, "%s: lr must be finite and >= 0", where);
    if (!(wd >= 0 && isfinite(wd))) FAIL(c, "%s: weight_decay must be finite and >= 0", where);
    if (!(eps > 0 && isfinite(eps))) FAIL(c, "%s: eps must be finite and > 0", where);
    g->lr = (float)lr;
    g->weight_decay = (float)wd;
    g->eps = (float)eps;
}

static void parse_task(Ctx *c, const cJSON *j, int idx, MtlTaskInfo *t) {
    char where[96];
    snprintf(where, sizeof where, "tasks[%d]", idx);
    t->name = need_str(c, j, "name", where);
    if (t->name) snprintf(where, sizeof where, "task \"%s\"", t->name);
    char *target = need_str(c, j, "target", where);
    char *loss = need_str(c, j, "loss", where);
    t->target_size = need_int(c, j, "target_size", where, 1);
    t->classes = need_int(c, j, "classes", where, 0);
    double hd = need_num(c, j, "huber_delta", where);
    double w = need_num(c, j, "weight", where);
    /* optional: tables written before AMNL weighting existed have no "amnl_cap" (off) */
    double amnl = cJSON_GetObjectItemCaseSensitive(j, "amnl_cap") ? need_num(c, j, "amnl_cap", where) : 0.0;
    t->out_width = need_int(c, j, "out_width", where, 1);
    t->output_offset = need_int(c, j, "output_offset", where, 0);
    t->bind = need_str(c, j, "bind", where);
    if (!c->failed) {
        t->huber_delta = (float)hd;
        t->weight = (float)w;
        t->amnl_cap = (float)amnl;
        if (!isfinite(w)) FAIL(c, "%s: weight must be finite", where);
        if (!(amnl >= 0 && isfinite(amnl))) FAIL(c, "%s: amnl_cap must be finite and >= 0", where);
        if (!strcmp(target, "real")) t->target = MTL_TARGET_REAL;
        else if (!strcmp(target, "class")) t->target = MTL_TARGET_CLASS;
        else FAIL(c, "%s: unknown target \"%s\"", where, target);
        if (!strcmp(loss, "mse")) t->loss = MTL_LOSS_MSE;
        else if (!strcmp(loss, "mae")) t->loss = MTL_LOSS_MAE;
        else if (!strcmp(loss, "huber")) t->loss = MTL_LOSS_HUBER;
        else if (!strcmp(loss, "cross_entropy")) t->loss = MTL_LOSS_CROSS_ENTROPY;
        else FAIL(c, "%s: unknown loss \"%s\"", where, loss);
    }
    if (!c->failed) {
        if (t->target == MTL_TARGET_CLASS) {
            if (t->classes < 2) FAIL(c, "%s: a class task needs classes >= 2", where);
            else if (t->out_width != t->classes)
                FAIL(c, "%s: out_width %lld != classes %lld", where, (long long)t->out_width,
                     (long long)t->classes);
            else if (t->target_size != 1) FAIL(c, "%s: a class target has size 1", where);
            else if (t->loss != MTL_LOSS_CROSS_ENTROPY)
                FAIL(c, "%s: a class task needs cross_entropy", where);
        } else {
            if (t->loss == MTL_LOSS_CROSS_ENTROPY) FAIL(c, "%s: cross_entropy on a real task", where);
            else if (t->out_width != t->target_size)
                FAIL(c, "%s: out_width %lld != target_size %lld", where, (long long)t->out_width,
                     (long long)t->target_size);
        }
        /* the same rules as the compiler's: AMNL weights an mse on one real value per sample */
        if (t->amnl_cap > 0 && (t->loss != MTL_LOSS_MSE || t->target != MTL_TARGET_REAL || t->target_size != 1))
            FAIL(c, "%s: amnl_cap applies to an mse task with one real target value", where);
    }
    free(target);
    free(loss);
}

static void parse_train(Ctx *c, const cJSON *j, MtlModelInfo *m) {
    const char *where = "train";
    m->train.epochs = need_int(c, j, "epochs", where, 0);
    m->train.batch = need_int(c, j, "batch", where, 1);
    m->train.seed = (uint64_t)need_int(c, j, "seed", where, 0);
    const cJSON *lr = need(c, j, "lr", where);
    if (c->failed) return;
    if (cJSON_IsNull(lr)) {
        m->train.has_lr = false;
    } else if (cJSON_IsNumber(lr) && lr->valuedouble > 0 && isfinite(lr->valuedouble)) {
        m->train.has_lr = true;
        m->train.lr = (float)lr->valuedouble;
    } else {
        FAIL(c, "train: \"lr\" must be a positive number or null");
    }
    /* protocol: what the spec gave; the book's defaults for the rest */
    MtlProtocol *p = &m->train.protocol;
    mtl_protocol_defaults(p);
    m->train.seeds = 1;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "protocol");
    if (!pr) return;
    if (!cJSON_IsObject(pr)) {
        FAIL(c, "train: \"protocol\" must be an object");
        return;
    }
    const cJSON *x;
    cJSON_ArrayForEach(x, pr) {
        const char *k = x->string;
        if (!strcmp(k, "select")) {
            if (!cJSON_IsString(x) || (strcmp(x->valuestring, "test") && strcmp(x->valuestring, "validation"))) {
                FAIL(c, "train.protocol: \"select\" must be \"test\" or \"validation\"");
                return;
            }
            p->select_on_test = !strcmp(x->valuestring, "test");
            continue;
        }
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0 || x->valuedouble > 1e30) {
            FAIL(c, "train.protocol: \"%s\" must be a number >= 0", k);
            return;
        }
        double v = x->valuedouble;
        if (!strcmp(k, "warmup")) p->warmup_epochs = (int64_t)v;
        else if (!strcmp(k, "warmup_start")) p->warmup_start = (float)v;
        else if (!strcmp(k, "plateau_factor")) p->plateau_factor = (float)v;
        else if (!strcmp(k, "plateau_patience")) p->plateau_patience = (int64_t)v;
        else if (!strcmp(k, "min_lr")) p->min_lr = (float)v;
        else if (!strcmp(k, "clip_norm")) p->clip_norm = (float)v;
        else if (!strcmp(k, "ema")) p->ema_decay = (float)v;
        else if (!strcmp(k, "patience")) p->patience = (int64_t)v;
        else if (!strcmp(k, "seeds")) m->train.seeds = (int64_t)v;
        else if (!strcmp(k, "max_bad_steps")) p->max_bad_steps = (int64_t)v;
        else FAIL(c, "train.protocol: unknown setting \"%s\"", k);
    }
    if (p->warmup_start <= 0 || p->warmup_start > 1 || p->plateau_factor <= 0 || p->plateau_factor > 1 ||
        p->ema_decay >= 1 || m->train.seeds < 1 || m->train.seeds > MTL_MAX_SEEDS || p->max_bad_steps < 1)
        FAIL(c, "train.protocol: a setting is out of range");
}

static void parse_data(Ctx *c, const cJSON *j, MtlModelInfo *m) {
    const char *where = "data";
    char *kind = need_str(c, j, "kind", where);
    if (c->failed) {
        free(kind);
        return;
    }
    m->data.train = opt_str(c, j, "train", where);
    m->data.test = opt_str(c, j, "test", where);
    m->data.rul = opt_str(c, j, "rul", where);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "validation");
    m->data.validation = 0.2f;
    if (v) {
        if (!cJSON_IsNumber(v)) FAIL(c, "data: \"validation\" must be a number");
        else m->data.validation = parse_prob(c, v->valuedouble, "validation", where);
    }
    if (!strcmp(kind, "cmapss")) {
        m->data.kind = MTL_DATA_CMAPSS;
        m->data.rul_cap = (float)need_num(c, j, "rul_cap", where);
        const cJSON *th = need_array(c, j, "health_thresholds", where);
        if (th) {
            int n = cJSON_GetArraySize(th);
            if (n > 8) FAIL(c, "data: at most 8 health thresholds");
            const cJSON *x;
            int i = 0;
            cJSON_ArrayForEach(x, th) {
                if (i >= 8) break;
                if (!cJSON_IsNumber(x)) FAIL(c, "data: health thresholds must be numbers");
                m->data.thresholds[i++] = (float)x->valuedouble;
            }
            m->data.n_thresholds = i;
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "features");
        if (f && !cJSON_IsNull(f)) {
            if (!cJSON_IsArray(f)) FAIL(c, "data: \"features\" must be an array");
            else m->data.features = parse_str_list(c, f, "data.features", &m->data.n_features);
        }
    } else if (!strcmp(kind, "csv")) {
        m->data.kind = MTL_DATA_CSV;
        const cJSON *in = need_array(c, j, "inputs", where);
        if (in) m->data.inputs = parse_str_list(c, in, "data.inputs", &m->data.n_inputs);
        m->data.group = opt_str(c, j, "group", where);
    } else {
        FAIL(c, "data: unknown kind \"%s\"", kind);
    }
    free(kind);
    /* optional: absent means no windows */
    m->data.window = 1;
    m->data.window_stride = 1;
    if (cJSON_GetObjectItemCaseSensitive(j, "window"))
        m->data.window = need_int(c, j, "window", where, 1);
    if (cJSON_GetObjectItemCaseSensitive(j, "window_stride"))
        m->data.window_stride = need_int(c, j, "window_stride", where, 1);
    /* optional: absent means one operating condition and the original synthetic fleet */
    static const struct {
        const char *key;
        int max;
    } counts[] = {{"conditions", 64}, {"synthetic_conditions", 6}, {"synthetic_fault_modes", 2}};
    int *dst[] = {&m->data.conditions, &m->data.synthetic_conditions, &m->data.synthetic_fault_modes};
    for (int i = 0; i < 3; i++) {
        *dst[i] = 1;
        if (!cJSON_GetObjectItemCaseSensitive(j, counts[i].key)) continue;
        int64_t v = need_int(c, j, counts[i].key, where, 1);
        if (c->failed) return;
        if (v > counts[i].max) FAIL(c, "data: \"%s\" must be from 1 to %d, got %lld", counts[i].key, counts[i].max, (long long)v);
        else if (v > 1 && m->data.kind != MTL_DATA_CMAPSS) FAIL(c, "data: \"%s\" applies to cmapss data only", counts[i].key);
        else *dst[i] = (int)v;
    }
}

/* Cross-checks that need the whole table. */
static void validate(Ctx *c, MtlModelInfo *m) {
    if (m->n_groups < 1) FAIL(c, "no parameter groups");
    if (m->n_tasks < 1) FAIL(c, "no tasks");
    if (c->failed) return;
    /* Groups tile [0, n_params) in order, so each one is a single flat range for AdamW. */
    int64_t at = 0;
    for (int g = 0; g < m->n_groups; g++) {
        if (m->groups[g].offset != at) {
            FAIL(c, "group \"%s\": offset %lld, expected %lld (groups must be contiguous and in "
                    "order)", m->groups[g].name, (long long)m->groups[g].offset, (long long)at);
            return;
        }
        at += m->groups[g].count;
    }
    if (at != m->n_params) {
        FAIL(c, "groups cover %lld parameters but n_params is %lld", (long long)at,
             (long long)m->n_params);
        return;
    }
    int64_t end = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const MtlTensorInfo *t = &m->tensors[i];
        if (t->offset < end) {
            FAIL(c, "tensor \"%s\": offset %lld overlaps the previous tensor or is out of order",
                 t->name, (long long)t->offset);
            return;
        }
        end = t->offset + t->count;
        if (end > m->n_params) {
            FAIL(c, "tensor \"%s\": ends at %lld beyond n_params %lld", t->name, (long long)end,
                 (long long)m->n_params);
            return;
        }
        if (t->group >= m->n_groups) {
            FAIL(c, "tensor \"%s\": group %d does not exist", t->name, t->group);
            return;
        }
        const MtlGroupInfo *g = &m->groups[t->group];
        if (t->offset < g->offset || end > g->offset + g->count) {
            FAIL(c, "tensor \"%s\": [%lld, %lld) is outside its group \"%s\"", t->name,
                 (long long)t->offset, (long long)end, g->name);
            return;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(m->tensors[k].name, t->name)) {
                FAIL(c, "tensor \"%s\" appears twice", t->name);
                return;
            }
    }
    end = 0;
    for (int i = 0; i < m->n_buffers; i++) {
        const MtlBufferInfo *b = &m->buffers[i];
        if (b->offset < end) {
            FAIL(c, "buffer \"%s\": offset %lld overlaps the previous buffer or is out of order",
                 b->name, (long long)b->offset);
            return;
        }
        end = b->offset + b->count;
        if (end > m->n_buffer_floats) {
            FAIL(c, "buffer \"%s\": ends at %lld beyond n_buffer_floats %lld", b->name,
                 (long long)end, (long long)m->n_buffer_floats);
            return;
        }
        /* buffers and tensors share the checkpoint's name space */
        for (int k = 0; k < m->n_tensors; k++)
            if (!strcmp(m->tensors[k].name, b->name)) {
                FAIL(c, "buffer \"%s\" has the name of a tensor", b->name);
                return;
            }
        for (int k = 0; k < i; k++)
            if (!strcmp(m->buffers[k].name, b->name)) {
                FAIL(c, "buffer \"%s\" appears twice", b->name);
                return;
            }
    }
    if (m->data.window > 1 && (m->input_ndim != 2 || m->input_shape[0] != m->data.window)) {
        char shape[160];
        size_t at = (size_t)snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < m->input_ndim && at < sizeof shape; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, d ? ", %lld" : "%lld",
                                   (long long)m->input_shape[d]);
        if (at < sizeof shape) snprintf(shape + at, sizeof shape - at, "]");
        FAIL(c, "data: window %lld needs an input of shape [%lld, F], input \"%s\" has shape %s",
             (long long)m->data.window, (long long)m->data.window, m->input_name, shape);
        return;
    }
    for (int k = 0; k < m->n_tasks; k++) {
        const MtlTaskInfo *t = &m->tasks[k];
        if (t->output_offset + t->out_width > m->acts_per_sample) {
            FAIL(c, "task \"%s\": output [%lld, +%lld) beyond acts_per_sample %lld", t->name,
                 (long long)t->output_offset, (long long)t->out_width,
                 (long long)m->acts_per_sample);
            return;
        }
        if (t->target == MTL_TARGET_REAL && t->target_size != 1) {
            FAIL(c, "task \"%s\": this runtime supports scalar real targets only (target_size %lld)",
                 t->name, (long long)t->target_size);
            return;
        }
        for (int i = 0; i < k; i++)
            if (!strcmp(m->tasks[i].name, t->name)) {
                FAIL(c, "task \"%s\" appears twice", t->name);
                return;
            }
    }
}

int mtl_model_info_parse(const char *json, MtlModelInfo *m, char *err, size_t err_size) {
    memset(m, 0, sizeof *m);
    Ctx c = {err, err_size, 0};
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        mtl_errf(err, err_size, "not valid JSON (near byte %ld)",
                 at ? (long)(at - json) : -1L);
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        FAIL(&c, "top level must be an object");
        goto done;
    }
    m->abi = (int)need_int(&c, root, "abi", "table", 0);
    if (!c.failed && m->abi != MTL_ABI_VERSION) {
        FAIL(&c, "ABI version %d, this runtime implements %d (recompile the model with a matching "
                 "mtlc)", m->abi, MTL_ABI_VERSION);
        goto done;
    }
    m->name = need_str(&c, root, "name", "table");
    m->n_params = need_int(&c, root, "n_params", "table", 0);
    m->acts_per_sample = need_int(&c, root, "acts_per_sample", "table", 0);
    m->acts_fixed = need_int(&c, root, "acts_fixed", "table", 0);
    m->n_buffer_floats = need_int(&c, root, "n_buffer_floats", "table", 0);
    const cJSON *input = need(&c, root, "input", "table");
    if (c.failed) goto done;
    m->input_name = need_str(&c, input, "name", "input");
    int64_t prod = parse_shape(&c, input, "input", &m->input_ndim, m->input_shape);
    m->input_size = need_int(&c, input, "size", "input", 1);
    if (!c.failed && prod != m->input_size)
        FAIL(&c, "input: size %lld does not match shape (%lld)", (long long)m->input_size,
             (long long)prod);

    const cJSON *arr;
    const cJSON *it;
    int i;
    if ((arr = need_array(&c, root, "tensors", "table"))) {
        m->n_tensors = cJSON_GetArraySize(arr);
        m->tensors = calloc(m->n_tensors ? (size_t)m->n_tensors : 1, sizeof *m->tensors);
        i = 0;
        cJSON_ArrayForEach(it, arr) { parse_tensor(&c, it, i, &m->tensors[i]); i++; }
    }
    if ((arr = need_array(&c, root, "buffers", "table"))) {
        m->n_buffers = cJSON_GetArraySize(arr);
        m->buffers = calloc(m->n_buffers ? (size_t)m->n_buffers : 1, sizeof *m->buffers);
        i = 0;
        cJSON_ArrayForEach(it, arr) { parse_buffer(&c, it, i, &m->buffers[i]); i++; }
    }
    if ((arr = need_array(&c, root, "groups", "table"))) {
        m->n_groups = cJSON_GetArraySize(arr);
        m->groups = calloc(m->n_groups ? (size_t)m->n_groups : 1, sizeof *m->groups);
        i = 0;
        cJSON_ArrayForEach(it, arr) { parse_group(&c, it, i, &m->groups[i]); i++; }
    }
    if ((arr = need_array(&c, root, "tasks", "table"))) {
        m->n_tasks = cJSON_GetArraySize(arr);
        m->tasks = calloc(m->n_tasks ? (size_t)m->n_tasks : 1, sizeof *m->tasks);
        i = 0;
        cJSON_ArrayForEach(it, arr) { parse_task(&c, it, i, &m->tasks[i]); i++; }
    }
    /* which tasks reach each tensor (needs the task names) */
    if (!c.failed && (arr = cJSON_GetObjectItemCaseSensitive(root, "tensors"))) {
        i = 0;
        cJSON_ArrayForEach(it, arr) {
            const cJSON *tl = cJSON_GetObjectItemCaseSensitive(it, "tasks"), *x;
            cJSON_ArrayForEach(x, tl) {
                int k = cJSON_IsString(x) ? mtl_model_find_task(m, x->valuestring) : -1;
                if (k < 0 || k >= 32) FAIL(&c, "tensor %d: \"tasks\" names an unknown task", i);
                else m->tensors[i].task_mask |= 1u << k;
            }
            i++;
        }
    }
    /* the trunk output's gradient: absent or null means none */
    m->trunk_grad_offset = -1;
    if (!c.failed && (it = cJSON_GetObjectItemCaseSensitive(root, "trunk_output")) && !cJSON_IsNull(it)) {
        int64_t size = need_int(&c, it, "size", "trunk_output", 1);
        int64_t off = need_int(&c, it, "grad_offset", "trunk_output", 0);
        if (!c.failed && (size > m->acts_per_sample || off > m->acts_per_sample - size))
            FAIL(&c, "trunk_output: gradient outside the per-sample activations");
        else if (!c.failed) {
            m->trunk_size = size;
            m->trunk_grad_offset = off;
        }
    }
    /* balance: absent means fixed (older tables) */
    if (!c.failed && (it = cJSON_GetObjectItemCaseSensitive(root, "balance"))) {
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(it, "method");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "norms");
        MtlBalanceMethod bm;
        if (!cJSON_IsString(mt) || mtl_balance_method_parse(mt->valuestring, &bm) != 0) {
            FAIL(&c, "balance: unknown method");
        } else if (nm && !(cJSON_IsString(nm) && (!strcmp(nm->valuestring, "shared_params") ||
                                                  !strcmp(nm->valuestring, "trunk_output")))) {
            FAIL(&c, "balance: \"norms\" is \"shared_params\" or \"trunk_output\"");
        } else if (nm && !strcmp(nm->valuestring, "trunk_output") && m->trunk_grad_offset < 0) {
            FAIL(&c, "balance: norms on the trunk output, but no gradient reaches it");
        } else {
            m->balance.method = (int)bm;
            m->balance.norms_on_output = nm && !strcmp(nm->valuestring, "trunk_output");
            const cJSON *x;
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(it, "options")) {
                if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || m->balance.n_options >= 8) {
                    FAIL(&c, "balance: bad option");
                    break;
                }
                size_t n = strlen(x->string) + 1;
                char *name = malloc(n);
                if (!name) abort();
                memcpy(name, x->string, n);
                m->balance.option[m->balance.n_options] = name;
                m->balance.value[m->balance.n_options++] = x->valuedouble;
            }
        }
    }
    if ((it = need(&c, root, "train", "table"))) parse_train(&c, it, m);
    if ((it = need(&c, root, "data", "table"))) parse_data(&c, it, m);
    if (!c.failed) validate(&c, m);
done:
    cJSON_Delete(root);
    if (c.failed) {
        mtl_model_info_free(m);
        return -1;
    }
    return 0;
}

static void free_list(char **l, int n) {
    if (!l) return;
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

void mtl_model_info_free(MtlModelInfo *m) {
    for (int i = 0; i < m->balance.n_options; i++) free(m->balance.option[i]);
    m->balance.n_options = 0;
    free(m->name);
    free(m->input_name);
    if (m->tensors)
        for (int i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    if (m->buffers)
        for (int i = 0; i < m->n_buffers; i++) free(m->buffers[i].name);
    if (m->groups)
        for (int i = 0; i < m->n_groups; i++) free(m->groups[i].name);
    if (m->tasks)
        for (int i = 0; i < m->n_tasks; i++) {
            free(m->tasks[i].name);
            free(m->tasks[i].bind);
        }
    free(m->tensors);
    free(m->buffers);
    free(m->groups);
    free(m->tasks);
    free(m->data.train);
    free(m->data.test);
    free(m->data.rul);
    free_list(m->data.features, m->data.n_features);
    free_list(m->data.inputs, m->data.n_inputs);
    free(m->data.group);
    memset(m, 0, sizeof *m);
}

int mtl_model_find_task(const MtlModelInfo *m, const char *name) {
    for (int k = 0; k < m->n_tasks; k++)
        if (!strcmp(m->tasks[k].name, name)) return k;
    return -1;
}

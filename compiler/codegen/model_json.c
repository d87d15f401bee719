/* Builds the model info table (JSON) that generated objects export as mtl_model_json.
 * The layout is specified in runtime/include/mtl_abi.h; the runtime parses it with cJSON.
 */
#include "codegen/codegen.h"

#include "util/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *act_names[] = {"identity", "relu", "tanh", "sigmoid", "gelu", "softplus"};
static const char *loss_names[] = {"mse", "mae", "huber", "cross_entropy"};
static const char *init_names[] = {"uniform", "zeros", "ones"};

/* The shortest decimal that reads back as the same float, so the table says 0.001, not
 * 0.0010000000474974513, and the runtime still gets the exact value. */
static double fnum(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

static cJSON *shape_json(const Shape *s) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < s->rank; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->dim[i]));
    return a;
}

static cJSON *strings_json(char *const *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static void add_opt_string(cJSON *o, const char *key, const char *v) {
    if (v) cJSON_AddStringToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

char *cg_model_json(const IrGraph *g) {
    const Model *m = g->model;
    (void)act_names;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "abi", MTL_ABI_VERSION);
    cJSON_AddStringToObject(root, "name", m->name);
    cJSON *in = cJSON_AddObjectToObject(root, "input");
    cJSON_AddStringToObject(in, "name", m->input_name);
    cJSON_AddItemToObject(in, "shape", shape_json(&m->input));
    cJSON_AddNumberToObject(in, "size", (double)shape_count(&m->input));
    cJSON_AddNumberToObject(root, "n_params", (double)g->n_params);
    cJSON_AddNumberToObject(root, "acts_per_sample", (double)g->acts_per_sample);
    cJSON_AddNumberToObject(root, "acts_fixed", (double)g->acts_fixed);
    cJSON_AddNumberToObject(root, "n_buffer_floats", (double)g->n_buffer_floats);

    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (int i = 0; i < m->n_params; i++) {
        int p = g->param_order[i];
        const Param *pa = &m->params[p];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", pa->name);
        cJSON_AddItemToObject(t, "shape", shape_json(&pa->shape));
        cJSON_AddNumberToObject(t, "offset", (double)g->t[g->param_tensor[p]].offset);
        cJSON_AddNumberToObject(t, "count", (double)pa->count);
        cJSON_AddNumberToObject(t, "group", pa->group);
        cJSON_AddBoolToObject(t, "trainable", pa->trainable);
        cJSON_AddStringToObject(t, "init", init_names[pa->init]);
        cJSON_AddNumberToObject(t, "bound", fnum(pa->init_bound));
        cJSON *tasks = cJSON_AddArrayToObject(t, "tasks");
        for (int k = 0; k < m->n_tasks; k++)
            if (pa->task_mask & (1u << k)) cJSON_AddItemToArray(tasks, cJSON_CreateString(m->tasks[k].name));
        cJSON_AddItemToArray(tensors, t);
    }

    cJSON *buffers = cJSON_AddArrayToObject(root, "buffers");
    for (int b = 0; b < m->n_buffers; b++) {
        const Buffer *bu = &m->buffers[b];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", bu->name);
        cJSON_AddItemToObject(t, "shape", shape_json(&bu->shape));
        cJSON_AddNumberToObject(t, "offset", (double)g->t[g->buffer_tensor[b]].offset);
        cJSON_AddNumberToObject(t, "count", (double)bu->count);
        cJSON_AddStringToObject(t, "init", init_names[bu->init]);
        cJSON_AddItemToArray(buffers, t);
    }

    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    for (int gi = 0; gi < m->n_groups; gi++) {
        const Group *gr = &m->groups[gi];
        int64_t off = -1, count = 0;
        for (int p = 0; p < m->n_params; p++)
            if (m->params[p].group == gi) {
                int64_t o = g->t[g->param_tensor[p]].offset;
                if (off < 0 || o < off) off = o;
                count += m->params[p].count;
            }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", gr->name);
        cJSON_AddNumberToObject(o, "offset", (double)(off < 0 ? 0 : off));
        cJSON_AddNumberToObject(o, "count", (double)count);
        cJSON_AddNumberToObject(o, "lr", fnum(gr->lr));
        cJSON_AddNumberToObject(o, "weight_decay", fnum(gr->weight_decay));
        cJSON *betas = cJSON_AddArrayToObject(o, "betas");
        cJSON_AddItemToArray(betas, cJSON_CreateNumber(fnum(gr->beta1)));
        cJSON_AddItemToArray(betas, cJSON_CreateNumber(fnum(gr->beta2)));
        cJSON_AddNumberToObject(o, "eps", fnum(gr->eps));
        cJSON_AddBoolToObject(o, "frozen", gr->frozen);
        cJSON_AddItemToArray(groups, o);
    }

    cJSON *tasks = cJSON_AddArrayToObject(root, "tasks");
    for (int k = 0; k < m->n_tasks; k++) {
        const Task *t = &m->tasks[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "target", t->target_kind == MTL_TARGET_CLASS ? "class" : "real");
        cJSON_AddNumberToObject(o, "target_size", t->target_kind == MTL_TARGET_CLASS ? 1 : (double)t->target_width);
        cJSON_AddNumberToObject(o, "classes", t->target_kind == MTL_TARGET_CLASS ? (double)t->num_classes : 0);
        cJSON_AddStringToObject(o, "loss", loss_names[t->loss]);
        cJSON_AddNumberToObject(o, "huber_delta", fnum(t->huber_delta));
        /* AMNL's RUL cap of `loss mse(amnl = R)`, 0 when off: the runtime learns from it that the
         * training loss is weighted (its test metrics stay plain RMSE / NASA score) */
        cJSON_AddNumberToObject(o, "amnl_cap", fnum(t->amnl_cap));
        cJSON_AddNumberToObject(o, "weight", fnum(t->weight));
        cJSON_AddNumberToObject(o, "out_width", (double)g->t[g->task_output[k]].size);
        cJSON_AddNumberToObject(o, "output_offset", (double)g->t[g->task_output[k]].offset);
        cJSON_AddStringToObject(o, "bind", t->bind ? t->bind : t->name);
        cJSON_AddItemToArray(tasks, o);
    }

    /* the trunk output's gradient, where mtl_model_backward_heads leaves it (per-sample floats
     * from acts + batch * grad_offset), for norms measured on the trunk output; null when no
     * gradient reaches it (a trunk without trainable parameters) */
    const IrTensor *to = &g->t[g->trunk_out];
    if (to->grad >= 0 && g->t[to->grad].batched) {
        cJSON *tj = cJSON_AddObjectToObject(root, "trunk_output");
        cJSON_AddStringToObject(tj, "name", to->name);
        cJSON_AddNumberToObject(tj, "size", (double)to->size);
        cJSON_AddNumberToObject(tj, "grad_offset", (double)g->t[to->grad].offset);
    } else {
        cJSON_AddNullToObject(root, "trunk_output");
    }

    /* balance: the method and the options the spec gives (the runtime holds the defaults) */
    cJSON *bal = cJSON_AddObjectToObject(root, "balance");
    cJSON_AddStringToObject(bal, "method", m->balance.method ? m->balance.method : "fixed");
    cJSON_AddStringToObject(bal, "norms", m->balance.norms_on_output ? "trunk_output" : "shared_params");
    cJSON *bo = cJSON_AddObjectToObject(bal, "options");
    for (int i = 0; i < m->balance.n_options; i++)
        cJSON_AddNumberToObject(bo, m->balance.option[i], m->balance.value[i]);

    cJSON *train = cJSON_AddObjectToObject(root, "train");
    cJSON_AddNumberToObject(train, "epochs", m->train.epochs);
    cJSON_AddNumberToObject(train, "batch", m->train.batch);
    cJSON_AddNumberToObject(train, "seed", (double)m->train.seed);
    if (m->train.lr > 0) cJSON_AddNumberToObject(train, "lr", fnum(m->train.lr));
    else cJSON_AddNullToObject(train, "lr");
    /* only the protocol settings the spec gives: the runtime holds the defaults */
    cJSON *proto = cJSON_AddObjectToObject(train, "protocol");
    for (int i = 0; i < TRAIN_N_PROTOCOL; i++) {
        if (!m->train.has[i]) continue;
        const char *key = train_protocol_key(i);
        if (!strcmp(key, "select"))
            cJSON_AddStringToObject(proto, key, m->train.value[i] != 0 ? "test" : "validation");
        else
            cJSON_AddNumberToObject(proto, key, m->train.value[i]);
    }

    const DataBinding *d = &m->data;
    cJSON *data = cJSON_AddObjectToObject(root, "data");
    cJSON_AddStringToObject(data, "kind", d->kind == MTL_DATA_CSV ? "csv" : "cmapss");
    add_opt_string(data, "train", d->train_path);
    add_opt_string(data, "test", d->test_path);
    cJSON_AddNumberToObject(data, "validation", fnum(d->validation));
    cJSON_AddNumberToObject(data, "window", (double)(d->window > 0 ? d->window : 1));
    cJSON_AddNumberToObject(data, "window_stride", (double)(d->window_stride > 0 ? d->window_stride : 1));
    if (d->kind == MTL_DATA_CMAPSS) {
        add_opt_string(data, "rul", d->rul_path);
        cJSON_AddNumberToObject(data, "rul_cap", fnum(d->rul_cap));
        cJSON_AddNumberToObject(data, "conditions", d->conditions > 0 ? d->conditions : 1);
        cJSON_AddNumberToObject(data, "synthetic_conditions", d->synthetic_conditions > 0 ? d->synthetic_conditions : 1);
        cJSON_AddNumberToObject(data, "synthetic_fault_modes", d->synthetic_fault_modes > 0 ? d->synthetic_fault_modes : 1);
        cJSON *th = cJSON_AddArrayToObject(data, "health_thresholds");
        for (int i = 0; i < d->n_thresholds; i++) cJSON_AddItemToArray(th, cJSON_CreateNumber(fnum(d->thresholds[i])));
        if (d->n_features > 0) cJSON_AddItemToObject(data, "features", strings_json(d->features, d->n_features));
        else {
            static char *const dflt[] = {"setting1", "setting2", "setting3", "s2", "s3", "s4", "s7", "s8", "s9",
                                         "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21"};
            cJSON_AddItemToObject(data, "features", strings_json(dflt, 17));
        }
    } else {
        cJSON_AddItemToObject(data, "inputs", strings_json(d->input_columns, d->n_input_columns));
        add_opt_string(data, "group", d->group_column);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) internal_error("cannot serialise the model info table");
    char *out = xstrdup(s);
    cJSON_free(s);
    return out;
}
